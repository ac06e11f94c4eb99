//! The CLI against a gateway whose API speaks HTTPS (`--tls-cert`): `hoop
//! exec`, `hoop login`, `hoop sessions`, `hoop connect` with psql, the
//! certificate checked against `HOOP_TLS_CA`; an untrusted certificate
//! and plain HTTP refused; the real PostgreSQL at 127.0.0.1:5432 behind.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use hoop_gateway::client::{ApiClient, ClientError, Endpoint};
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

mod common;

use common::{Connect, b64, create_online, start_connect, text};

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Writes a CA named `ca_name` and a server certificate it signs for
/// 127.0.0.1 and localhost (`cert.pem`, `key.pem`) into `dir`; returns the
/// CA's file.
fn make_certificate(dir: &Path, ca_name: &str) -> PathBuf {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    std::fs::create_dir_all(dir).unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "hoop gateway");
    let server = params.signed_by(&server_key, &ca).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), server.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), server_key.serialize_pem()).unwrap();
    dir.join("ca.pem")
}

/// Runs `sql` in `database` as the server's superuser.
async fn psql_admin(database: &str, sql: &str) -> Output {
    Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-X",
            "-v",
            "ON_ERROR_STOP=1",
        ])
        .args(["-d", database, "-c", sql])
        .output()
        .await
        .expect("the tests need psql and PostgreSQL at 127.0.0.1:5432")
}

/// A gateway with a certificate (so its API, agent link and listener all
/// use TLS), its embedded agent, and a database of its own with a table.
struct Setup {
    gateway: Gateway,
    admin: ApiClient,
    token: String,
    ca: PathBuf,
    agent: tokio::task::JoinHandle<()>,
    dir: PathBuf,
    database: String,
}

impl Setup {
    /// With `in_place`, connect sessions run in the gateway's process, as
    /// `hoop up` serves them; otherwise over the agent's link.
    async fn start(in_place: bool) -> Self {
        let database = unique("hoop_https");
        let created = psql_admin("postgres", &format!("CREATE DATABASE {database}")).await;
        assert!(created.status.success(), "{}", text(&created.stderr));
        let filled = psql_admin(
            &database,
            "CREATE TABLE people (id int PRIMARY KEY, email text);
             INSERT INTO people VALUES (1, 'ana@example.com'), (2, 'bo@example.com');",
        )
        .await;
        assert!(filled.status.success(), "{}", text(&filled.stderr));
        let dir = std::env::temp_dir().join(unique("hoop-https-test"));
        let ca = make_certificate(&dir, "hoop https test CA");
        let mut config = GatewayConfig::new(dir.join("data"));
        config.api_listen = "127.0.0.1:0".into();
        config.agent_listen = "127.0.0.1:0".into();
        config.postgres_listen = None;
        config.tls_cert = Some(dir.join("cert.pem"));
        config.tls_key = Some(dir.join("key.pem"));
        let gateway = Gateway::start(config).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let admin = ApiClient::with_endpoint(
            Endpoint::new(&gateway.api_url(), Some(&ca)).unwrap(),
            Some(token.clone()),
        );
        let key = gateway.embedded_agent_key("default").await.unwrap();
        if in_place {
            gateway.serve_in_place("default").await.unwrap();
        }
        let tls = hoop_proxy::agent::tls_client_config(&ca).unwrap();
        let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
            key,
            tls: Some(tls),
        }));
        let setup = Self {
            gateway,
            admin,
            token,
            ca,
            agent,
            dir,
            database,
        };
        setup.connection("pg").await;
        setup
    }

    async fn connection(&self, name: &str) {
        let secret = json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                            "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                            "envvar:DB": b64(&self.database)});
        create_online(&self.admin, name, "postgres", secret).await;
    }

    /// The CLI with the API URL, token and (when given) `HOOP_TLS_CA`.
    fn hoop(&self, ca: Option<&Path>) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hoop"));
        command
            .env("HOOP_API_URL", self.gateway.api_url())
            .env("HOOP_TOKEN", &self.token)
            .env("HOME", &self.dir)
            .env_remove("HOOP_TLS_CA")
            .kill_on_drop(true);
        if let Some(ca) = ca {
            command.env("HOOP_TLS_CA", ca);
        }
        command
    }

    /// Starts `hoop connect NAME FLAGS..` on a free port.
    async fn connect(&self, name: &str, flags: &[&str]) -> Connect {
        start_connect(self.hoop(Some(&self.ca)), name, flags).await
    }

    async fn sessions(&self) -> Vec<Value> {
        let response = self.admin.get("/api/sessions").await.unwrap();
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response.body.as_array().cloned().unwrap_or_default()
    }

    async fn stop(self) {
        self.agent.abort();
        drop(self.gateway);
        let _ = psql_admin(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
        )
        .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_login_and_sessions_over_https_trust_hoop_tls_ca() {
    let setup = Setup::start(false).await;
    assert!(setup.gateway.api_url().starts_with("https://127.0.0.1:"));

    let exec = setup
        .hoop(Some(&setup.ca))
        .args([
            "exec",
            "pg",
            "-i",
            "SELECT id, email FROM people ORDER BY id",
        ])
        .output()
        .await
        .unwrap();
    assert!(exec.status.success(), "{}", text(&exec.stderr));
    assert_eq!(
        text(&exec.stdout),
        "id\temail\n1\tana@example.com\n2\tbo@example.com\n"
    );

    let listed = setup
        .hoop(Some(&setup.ca))
        .args(["sessions", "list", "--connection", "pg", "-o", "json"])
        .output()
        .await
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed[0]["access_mode"], "exec", "{listed}");
    assert_eq!(listed[0]["status"], "done", "{listed}");

    // `hoop login` checks the token over https and saves the URL and the
    // CA it trusted; later commands read them back, HOOP_TLS_CA unset.
    let login = setup
        .hoop(Some(&setup.ca))
        .env_remove("HOOP_API_URL")
        .env_remove("HOOP_TOKEN")
        .args(["login", "--api-url", &setup.gateway.api_url()])
        .args(["--token", &setup.token])
        .output()
        .await
        .unwrap();
    assert!(login.status.success(), "{}", text(&login.stderr));
    let connections = setup
        .hoop(None)
        .env_remove("HOOP_API_URL")
        .env_remove("HOOP_TOKEN")
        .args(["connections", "list"])
        .output()
        .await
        .unwrap();
    assert!(
        connections.status.success(),
        "{}",
        text(&connections.stderr)
    );
    let connections = text(&connections.stdout);
    assert!(
        connections
            .lines()
            .any(|l| l.starts_with("pg ") && l.contains(" online ")),
        "{connections}"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_over_https_serves_psql_on_both_routes() {
    for in_place in [false, true] {
        let setup = Setup::start(in_place).await;
        // Tunnelled over TLS, as to a remote gateway; and handed over to
        // this host's gateway, whose socket needs no TLS.
        for flags in [&["--tunnel"][..], &[]] {
            let connect = setup.connect("pg", flags).await;
            for _ in 0..2 {
                let psql = Command::new("psql")
                    .arg(format!(
                        "host=127.0.0.1 port={} user=noop dbname={}",
                        connect.port, setup.database
                    ))
                    .args(["-X", "-At", "-c", "SELECT email FROM people ORDER BY id"])
                    .output()
                    .await
                    .unwrap();
                assert!(
                    psql.status.success(),
                    "in place {in_place}, {flags:?}: {}",
                    text(&psql.stderr)
                );
                assert_eq!(text(&psql.stdout), "ana@example.com\nbo@example.com\n");
            }
        }
        let sessions = setup.sessions().await;
        assert_eq!(sessions.len(), 4, "{sessions:?}");
        assert!(
            sessions
                .iter()
                .all(|s| s["access_mode"] == "connect" && s["protocol"] == "postgres"),
            "{sessions:?}"
        );
        setup.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_gateway_certificate_is_refused_with_a_clear_error() {
    let setup = Setup::start(false).await;
    let other_ca = make_certificate(&setup.dir.join("other"), "some other CA");
    // A CA that did not sign the certificate, or none (the platform's
    // roots do not know the test CA): the token is never sent.
    for ca in [Some(other_ca.as_path()), None] {
        let exec = setup
            .hoop(ca)
            .args(["exec", "pg", "-i", "SELECT 1"])
            .output()
            .await
            .unwrap();
        assert!(!exec.status.success());
        let stderr = text(&exec.stderr);
        assert!(stderr.contains("does not trust"), "{stderr}");
        assert!(stderr.contains("HOOP_TLS_CA"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains(&setup.token), "{stderr}");

        let connect = tokio::time::timeout(
            Duration::from_secs(20),
            setup.hoop(ca).args(["connect", "pg", "-p", "0"]).output(),
        )
        .await
        .expect("hoop connect with an untrusted gateway did not exit")
        .unwrap();
        assert!(!connect.status.success());
        let stderr = text(&connect.stderr);
        assert!(stderr.contains("does not trust"), "{stderr}");
    }
    let missing = setup
        .hoop(Some(&setup.dir.join("missing.pem")))
        .args(["sessions", "list"])
        .output()
        .await
        .unwrap();
    assert!(!missing.status.success());
    let stderr = text(&missing.stderr);
    assert!(stderr.contains("HOOP_TLS_CA is unusable"), "{stderr}");
    assert!(stderr.contains("missing.pem"), "{stderr}");

    // The library says the same.
    let client = ApiClient::with_endpoint(
        Endpoint::new(&setup.gateway.api_url(), Some(&other_ca)).unwrap(),
        Some(setup.token.clone()),
    );
    let error = client.get("/api/userinfo").await.unwrap_err();
    assert!(matches!(error, ClientError::Untrusted { .. }), "{error:?}");

    // Nothing reached a session.
    assert_eq!(setup.sessions().await, Vec::<Value>::new());
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_https_api_is_refused_and_the_listener_keeps_serving() {
    let setup = Setup::start(false).await;
    let addr = setup.gateway.api_addr;
    // A client that connects and never speaks holds only its own
    // handshake, not the listener.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();

    for _ in 0..5 {
        let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET /api/healthz HTTP/1.1\r\nHost: gateway\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(15), plain.read_to_end(&mut answer))
            .await
            .expect("the TLS port kept a plain-HTTP connection open")
            .ok();
        assert!(!answer.starts_with(b"HTTP/"), "{}", text(&answer));
    }

    let plain_client =
        ApiClient::new(&format!("http://{addr}"), Some(setup.token.clone())).unwrap();
    let error = plain_client.get("/api/healthz").await.unwrap_err();
    assert!(matches!(error, ClientError::NotHttp(_)), "{error:?}");

    let exec = setup
        .hoop(Some(&setup.ca))
        .env("HOOP_API_URL", format!("http://{addr}"))
        .args(["exec", "pg", "-i", "SELECT 1"])
        .output()
        .await
        .unwrap();
    assert!(!exec.status.success());
    assert!(
        text(&exec.stderr).contains("does it serve https://?"),
        "{}",
        text(&exec.stderr)
    );
    assert!(
        !text(&exec.stderr).contains("panicked"),
        "{}",
        text(&exec.stderr)
    );

    // Still serving, over TLS, with the silent client still connected.
    let health = setup.admin.get("/api/healthz").await.unwrap();
    assert_eq!(health.status, StatusCode::OK, "{:?}", health.body);
    let exec = setup
        .hoop(Some(&setup.ca))
        .args(["exec", "pg", "-i", "SELECT count(*) FROM people"])
        .output()
        .await
        .unwrap();
    assert!(exec.status.success(), "{}", text(&exec.stderr));
    assert_eq!(text(&exec.stdout), "count\n2\n");

    // The silent client is let go once its handshake time (10 s) is up.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(20), silent.read(&mut byte))
        .await
        .expect("a silent client still held the TLS port after 20 s");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoop_up_with_a_certificate_prints_and_serves_an_https_api() {
    let dir = std::env::temp_dir().join(unique("hoop-up-https"));
    let ca = make_certificate(&dir, "hoop up https test CA");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoop"))
        .args(["up", "--api-listen", "127.0.0.1:0", "--agent-listen"])
        .args(["127.0.0.1:0", "--postgres-listen", "off", "--mysql-listen"])
        .args(["off", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .env("HOOP_TLS_CA", &ca)
        .env_remove("HOOP_ADMIN_TOKEN")
        .env_remove("HOOP_SECRET_KEY")
        .env_remove("HOOP_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // The banner ends with its curl example.
    while !banner.contains("curl -s") {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("no banner in 30 s")
            .unwrap()
            .expect("hoop up exited");
        banner.push_str(&line);
        banner.push('\n');
    }
    let field = |prefix: &str| {
        banner
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in:\n{banner}"))
            .trim()
            .to_owned()
    };
    let api = field("API:");
    assert!(api.starts_with("https://127.0.0.1:"), "{banner}");
    let token = field("admin token:");
    assert!(
        banner.contains(&format!("--cacert {}", ca.display())),
        "{banner}"
    );
    assert!(
        banner.contains(&format!("HOOP_TLS_CA={}", ca.display())),
        "{banner}"
    );

    let agents = Command::new(env!("CARGO_BIN_EXE_hoop"))
        .args(["agents", "list"])
        .env("HOOP_API_URL", &api)
        .env("HOOP_TOKEN", &token)
        .env("HOOP_TLS_CA", &ca)
        .env("HOME", &dir)
        .output()
        .await
        .unwrap();
    assert!(agents.status.success(), "{}", text(&agents.stderr));
    assert!(
        text(&agents.stdout)
            .lines()
            .any(|l| l.starts_with("default ") && l.contains(" online ")),
        "{}",
        text(&agents.stdout)
    );
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
