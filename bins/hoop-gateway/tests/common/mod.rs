//! What the gateway's end-to-end tests share: a gateway with its embedded
//! agent in front of the real PostgreSQL at 127.0.0.1:5432 (user
//! `postgres`, trust), test certificates, and small helpers. Each test
//! binary uses a part of it.
#![allow(dead_code)]

use std::process::Output;
use std::time::{Duration, Instant};

use hoop_gateway::client::{ApiClient, Endpoint};
use hoop_gateway::store::{SessionFilter, SessionRecord};
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

pub(crate) const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

pub(crate) fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

pub(crate) fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) async fn server_admin(database: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&format!("{SERVER}/{database}"), tokio_postgres::NoTls)
            .await
            .expect("the tests need PostgreSQL at 127.0.0.1:5432 (user postgres, trust)");
    tokio::spawn(connection);
    client
}

pub(crate) struct Setup {
    pub(crate) gateway: Gateway,
    pub(crate) admin: ApiClient,
    pub(crate) token: String,
    pub(crate) agent: tokio::task::JoinHandle<()>,
    pub(crate) database: String,
    pub(crate) dir: std::path::PathBuf,
    pub(crate) store_database: Option<String>,
    /// With a certificate: the CA that signed it (PEM file).
    pub(crate) ca: Option<std::path::PathBuf>,
}

/// How connect sessions reach the embedded agent's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// Over the agent's link, as for an agent in another process.
    Link,
    /// In the gateway's process, as `hoop up` serves them.
    InPlace,
}

impl Setup {
    /// A gateway (SQLite, or PostgreSQL when `postgres_store`), its
    /// embedded agent, and a fresh database with a small table.
    pub(crate) async fn start(postgres_store: bool) -> Self {
        Self::start_with(postgres_store, Route::Link).await
    }

    pub(crate) async fn start_with(postgres_store: bool, route: Route) -> Self {
        Self::start_full(postgres_store, route, false).await
    }

    /// With `tls`, the gateway has a certificate (made here for 127.0.0.1,
    /// localhost and this machine's other addresses, signed by a CA of its
    /// own, `self.ca`) and its PostgreSQL listener is on every address,
    /// IPv4 clients arriving as IPv4-mapped IPv6 addresses.
    pub(crate) async fn start_full(postgres_store: bool, route: Route, tls: bool) -> Self {
        let database = unique("hoop_sessions");
        let admin_db = server_admin("postgres").await;
        admin_db
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        let store_database = if postgres_store {
            let name = unique("hoop_sessions_store");
            admin_db
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            Some(name)
        } else {
            None
        };
        server_admin(&database)
            .await
            .batch_execute(
                "CREATE TABLE people (id int PRIMARY KEY, email text);
                 INSERT INTO people VALUES (1, 'ana@example.com'), (2, 'bo@example.com'), (3, 'cy@example.com');",
            )
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(unique("hoop-sessions-test"));
        let mut config = local_config(&dir);
        config.postgres_listen = Some("127.0.0.1:0".into());
        config.database_url = store_database
            .as_ref()
            .map(|name| format!("{SERVER}/{name}"));
        let Running {
            gateway,
            admin,
            token,
            agent,
            ca,
        } = start_gateway(&dir, config, route, tls).await;
        Self {
            gateway,
            admin,
            token,
            agent,
            database,
            dir,
            store_database,
            ca,
        }
    }

    pub(crate) async fn connection(&self, name: &str, port: u16, extra: Value) -> Value {
        let body = json!({
            "name": name,
            "type": "database",
            "subtype": "postgres",
            "agent_id": "default",
            "secret": {
                "envvar:HOST": b64("127.0.0.1"),
                "envvar:PORT": b64(&port.to_string()),
                "envvar:USER": b64("postgres"),
                "envvar:PASS": b64("unused-with-trust"),
                "envvar:DB": b64(&self.database),
            },
        });
        create_connection(&self.admin, body, &extra).await
    }

    /// Waits (bounded) until the connection reads `wanted`.
    pub(crate) async fn wait_status(&self, name: &str, wanted: &str) {
        wait_status(&self.admin, name, wanted).await;
    }

    pub(crate) fn psql(&self, user: &str, password: &str, sql: &str) -> Command {
        let addr = self.gateway.postgres_addr.unwrap();
        let mut command = Command::new("psql");
        command
            .arg(format!(
                "host={} port={} user={user} dbname={} sslmode=prefer connect_timeout=10",
                addr.ip(),
                addr.port(),
                self.database
            ))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", password)
            .kill_on_drop(true);
        command
    }

    pub(crate) async fn run_psql(&self, user: &str, password: &str, sql: &str) -> Output {
        self.psql(user, password, sql).output().await.unwrap()
    }

    pub(crate) async fn sessions(&self, connection: &str) -> Vec<SessionRecord> {
        let filter = SessionFilter {
            connection: Some(connection.into()),
            ..SessionFilter::default()
        };
        self.gateway
            .state()
            .store
            .list_sessions(&filter, 100)
            .await
            .unwrap()
    }

    /// Waits (bounded) until the newest session on `connection` has ended.
    pub(crate) async fn ended_session(&self, connection: &str) -> SessionRecord {
        ended_session(&self.gateway, connection).await
    }

    pub(crate) async fn stop(self) {
        self.agent.abort();
        drop(self.gateway);
        let admin_db = server_admin("postgres").await;
        for name in std::iter::once(&self.database).chain(self.store_database.as_ref()) {
            let _ = admin_db
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A gateway and its embedded agent, running.
pub(crate) struct Running {
    pub(crate) gateway: Gateway,
    /// An admin client of its API (HTTPS with a certificate).
    pub(crate) admin: ApiClient,
    pub(crate) token: String,
    pub(crate) agent: tokio::task::JoinHandle<()>,
    /// With a certificate: the CA that signed it (PEM file).
    pub(crate) ca: Option<std::path::PathBuf>,
}

/// Starts a gateway on `config` (its client listeners already chosen) and
/// its embedded agent, serving connect sessions in place for
/// [`Route::InPlace`]. With `tls`, the gateway has a certificate made in
/// `dir` (for 127.0.0.1, localhost and this machine's other addresses,
/// signed by a CA of its own) for its API, link and listeners, and every
/// configured client listener is on every address, IPv4 clients arriving
/// as IPv4-mapped IPv6 addresses.
pub(crate) async fn start_gateway(
    dir: &std::path::Path,
    mut config: GatewayConfig,
    route: Route,
    tls: bool,
) -> Running {
    let ca = tls.then(|| {
        let ca = make_certificate(dir, "hoop test CA");
        config.tls_cert = Some(dir.join("cert.pem"));
        config.tls_key = Some(dir.join("key.pem"));
        for listen in [&mut config.postgres_listen, &mut config.mysql_listen] {
            if listen.is_some() {
                *listen = Some("[::]:0".into());
            }
        }
        ca
    });
    let gateway = Gateway::start(config).await.unwrap();
    let token = gateway.first_admin_token.clone().unwrap();
    let endpoint = Endpoint::new(&gateway.api_url(), ca.as_deref()).unwrap();
    let admin = ApiClient::with_endpoint(endpoint, Some(token.clone()));
    let key = gateway.embedded_agent_key("default").await.unwrap();
    if route == Route::InPlace {
        gateway.serve_in_place("default").await.unwrap();
    }
    let agent_tls = ca
        .as_ref()
        .map(|ca| hoop_proxy::agent::tls_client_config(ca).unwrap());
    let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls: agent_tls,
    }));
    Running {
        gateway,
        admin,
        token,
        agent,
        ca,
    }
}

/// Waits (bounded) until the newest session on `connection` has ended.
pub(crate) async fn ended_session(gateway: &Gateway, connection: &str) -> SessionRecord {
    let filter = SessionFilter {
        connection: Some(connection.into()),
        ..SessionFilter::default()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(session) = gateway
            .state()
            .store
            .list_sessions(&filter, 1)
            .await
            .unwrap()
            .into_iter()
            .next()
            && session.status != "open"
        {
            return session;
        }
        assert!(Instant::now() < deadline, "the session never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs SQL on the machine's MariaDB as root.
pub(crate) async fn mariadb_root(sql: &str) {
    let output = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-e", sql])
        .output()
        .await
        .expect("the tests need the mariadb CLI");
    assert!(
        output.status.success(),
        "the tests need MariaDB at 127.0.0.1:3306 (root, no password): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Writes a CA and a server certificate it signs (`cert.pem`, `key.pem`)
/// into `dir`, for 127.0.0.1, localhost and this machine's other
/// addresses; returns the CA's file. The CA is named `ca_name`.
pub(crate) fn make_certificate(dir: &std::path::Path, ca_name: &str) -> std::path::PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Distinct names: OpenSSL (psql, mariadb) takes a certificate whose
    // subject is its issuer's for self-signed.
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let mut names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    names.extend(other_addresses().iter().map(ToString::to_string));
    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "hoop gateway");
    let server = params.signed_by(&server_key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), server_key.serialize_pem()).unwrap();
    dir.join("ca.pem")
}

/// This machine's addresses that are not loopback (nor link-local), for
/// clients the gateway must see as remote.
pub(crate) fn other_addresses() -> Vec<std::net::IpAddr> {
    let output = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .expect("the TLS tests need hostname -I");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|word| word.parse::<std::net::IpAddr>().ok())
        .filter(|ip| match ip {
            std::net::IpAddr::V4(v4) => !v4.is_loopback() && !v4.is_link_local(),
            std::net::IpAddr::V6(v6) => !v6.is_loopback() && !v6.is_unicast_link_local(),
        })
        .collect()
}

/// Waits (bounded) until session `id`'s recorded events end with one of
/// type `last_type`, read through the API as a SIEM would.
pub(crate) async fn wait_events(admin: &ApiClient, id: &str, last_type: &str) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = admin
            .get(&format!("/api/sessions/{id}/events"))
            .await
            .unwrap();
        let text = match &response.body {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let events: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if events.last().is_some_and(|e| e["type"] == last_type) {
            return events;
        }
        assert!(Instant::now() < deadline, "no {last_type} event: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every file of the gateway's data directory and its subdirectories (the
/// audit journal), as text: what a search for a leaked secret must cover.
/// Files only (the handoff socket holds none).
pub(crate) fn store_text(dir: &std::path::Path) -> String {
    let mut stored = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                stored.extend(std::fs::read(path).unwrap());
            } else if path.is_dir() {
                dirs.push(path);
            }
        }
    }
    String::from_utf8_lossy(&stored).into_owned()
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A gateway with its MySQL listener and embedded agent, and a MariaDB
/// user and database of the test's own (`name`, password `pw-NAME`).
pub(crate) struct MysqlSetup {
    pub(crate) gateway: Gateway,
    pub(crate) admin: ApiClient,
    pub(crate) token: String,
    pub(crate) agent: tokio::task::JoinHandle<()>,
    pub(crate) name: String,
    pub(crate) dir: std::path::PathBuf,
    /// With a certificate: the CA that signed it (PEM file).
    pub(crate) ca: Option<std::path::PathBuf>,
}

impl MysqlSetup {
    /// A gateway with its MySQL listener and embedded agent, and a MariaDB
    /// user and database of this test's own, with a small table.
    pub(crate) async fn start(tag: &str) -> Self {
        Self::start_with(tag, false).await
    }

    /// With `in_place`, connect sessions run their driver in the gateway's
    /// process, as `hoop up` serves them; otherwise over the agent's link.
    pub(crate) async fn start_with(tag: &str, in_place: bool) -> Self {
        Self::start_full(tag, in_place, false).await
    }

    /// With `tls`, the gateway has a certificate (made here for 127.0.0.1,
    /// localhost and this machine's other addresses, signed by a CA of its
    /// own, `self.ca`) and its MySQL listener is on every address, IPv4
    /// clients arriving as IPv4-mapped IPv6 addresses.
    pub(crate) async fn start_full(tag: &str, in_place: bool, tls: bool) -> Self {
        let name = format!("hoop_my_{tag}_{}", std::process::id());
        mariadb_root(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name};
             CREATE TABLE {name}.people (id int PRIMARY KEY, email varchar(64));
             INSERT INTO {name}.people VALUES (1, 'ana@example.com'), (2, 'bo@example.com');
             DROP USER IF EXISTS '{name}'@'%'; CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}';
             GRANT ALL ON {name}.* TO '{name}'@'%';"
        ))
        .await;
        let dir = std::env::temp_dir().join(&name);
        let mut config = local_config(&dir);
        config.mysql_listen = Some("127.0.0.1:0".into());
        let route = if in_place {
            Route::InPlace
        } else {
            Route::Link
        };
        let Running {
            gateway,
            admin,
            token,
            agent,
            ca,
        } = start_gateway(&dir, config, route, tls).await;
        Self {
            gateway,
            admin,
            token,
            agent,
            name,
            dir,
            ca,
        }
    }

    pub(crate) async fn connection(&self, connection: &str, extra: Value) {
        let body = json!({
            "name": connection,
            "type": "database",
            "subtype": "mysql",
            "agent_id": "default",
            "secret": {
                "envvar:HOST": b64("127.0.0.1"),
                "envvar:PORT": b64("3306"),
                "envvar:USER": b64(&self.name),
                "envvar:PASS": b64(&format!("pw-{}", self.name)),
                "envvar:DB": b64(&self.name),
            },
        });
        create_connection(&self.admin, body, &extra).await;
        wait_status(&self.admin, connection, "online").await;
    }

    pub(crate) async fn mariadb(&self, user: &str, password: &str, sql: &str) -> Output {
        let addr = self.gateway.mysql_addr.unwrap();
        Command::new("mariadb")
            .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
            .args(["-u", user, "--skip-ssl", "--connect-timeout=10", "-N", "-B"])
            .arg(format!("-p{password}"))
            .arg(&self.name)
            .args(["-e", sql])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    }

    /// Waits (bounded) until `connection` has `count` ended sessions.
    pub(crate) async fn ended_sessions(
        &self,
        connection: &str,
        count: usize,
    ) -> Vec<SessionRecord> {
        let filter = SessionFilter {
            connection: Some(connection.into()),
            ..SessionFilter::default()
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let sessions = self
                .gateway
                .state()
                .store
                .list_sessions(&filter, 100)
                .await
                .unwrap();
            if sessions.len() >= count && sessions.iter().all(|s| s.status != "open") {
                return sessions;
            }
            assert!(
                Instant::now() < deadline,
                "sessions never ended: {sessions:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn stop(self) {
        self.agent.abort();
        mariadb_root(&format!(
            "DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%';",
            self.name
        ))
        .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The mariadb CLI to the listener at `host` as the connection `my`
    /// with the person's token, with `options` (TLS), running `sql`.
    pub(crate) async fn mariadb_at(&self, host: &str, options: &[&str], sql: &str) -> Output {
        let port = self.gateway.mysql_addr.unwrap().port();
        Command::new("mariadb")
            .args(["-h", host, "-P", &port.to_string(), "-u", "my"])
            .args(options)
            .args(["--connect-timeout=10", "-N", "-B"])
            .arg(format!("-p{}", self.token))
            .arg(&self.name)
            .args(["-e", sql])
            .kill_on_drop(true)
            .output()
            .await
            .unwrap()
    }
}

/// A gateway's configuration in `dir` with its API and agent listeners on
/// free loopback ports; the caller adds client listeners.
fn local_config(dir: &std::path::Path) -> GatewayConfig {
    let mut config = GatewayConfig::new(dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config
}

/// Creates the connection `body` with `extra`'s fields over it; returns
/// the API's answer.
async fn create_connection(admin: &ApiClient, mut body: Value, extra: &Value) -> Value {
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let response = admin
        .json(Method::POST, "/api/connections", &body)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    response.body
}

/// Waits (bounded) until the connection `name` reads `wanted`.
pub(crate) async fn wait_status(admin: &ApiClient, name: &str, wanted: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let body = admin
            .get(&format!("/api/connections/{name}"))
            .await
            .unwrap()
            .body;
        if body["status"] == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "{name} never became {wanted}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs `command` (a client: psql, mariadb) with `script` on its standard
/// input, as a person pipes a file into it; returns what it printed.
pub(crate) async fn run_with_input(command: &mut Command, script: &str) -> Output {
    use tokio::io::AsyncWriteExt;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).await.unwrap();
    }
    child.wait_with_output().await.unwrap()
}
