//! A private PostgreSQL cluster (15 on Debian 12) per test process, and helpers to run real
//! clients through hoop.
//!
//! The first test process on a machine builds a *template* cluster (initdb,
//! TLS certificates made here with rcgen, roles with SCRAM, md5, cleartext and
//! trust authentication) under Cargo's target tmp directory; every test
//! process then copies it (a fraction of a second), starts it on a free port,
//! and shares it between its tests. A watchdog process stops the cluster by
//! its pid (`pg_ctl stop`, which reads `postmaster.pid`) and removes its
//! directory when the test process exits, however it exits.

#![allow(dead_code, unreachable_pub)]

use std::fs;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use hoop_proxy::postgres::PostgresProxy;
use hoop_proxy::{DatabaseTarget, Secret, SslMode};

/// The newest PostgreSQL server binaries Debian installed (15 on Debian 12).
fn bin_dir() -> String {
    let mut versions: Vec<u32> = fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql (apt install postgresql)")
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions
        .last()
        .expect("a PostgreSQL version under /usr/lib/postgresql");
    format!("/usr/lib/postgresql/{version}/bin")
}
/// Bump when the template's contents change.
const TEMPLATE_VERSION: &str = "v1";

/// The superuser's password (over TCP; the unix socket trusts).
pub const SUPERUSER_PASSWORD: &str = "super-secret-pw";

/// An upstream role and how the server authenticates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// SCRAM-SHA-256 password.
    Scram,
    /// md5 password (stored as md5, md5 line in pg_hba).
    Md5,
    /// Cleartext `password` method.
    Cleartext,
    /// `trust`: no password.
    Trust,
    /// SCRAM, and only over TLS (`hostssl`; `hostnossl` rejects).
    TlsOnly,
}

impl Role {
    pub fn user(self) -> &'static str {
        match self {
            Self::Scram => "hoop_scram",
            Self::Md5 => "hoop_md5",
            Self::Cleartext => "hoop_clear",
            Self::Trust => "hoop_trust",
            Self::TlsOnly => "hoop_tls",
        }
    }

    pub fn password(self) -> Option<&'static str> {
        match self {
            Self::Scram => Some("scram-pw-7f3a"),
            Self::Md5 => Some("md5-pw-91c2"),
            Self::Cleartext => Some("clear-pw-55d0"),
            Self::Trust => None,
            Self::TlsOnly => Some("tls-pw-e81b"),
        }
    }
}

/// A running private cluster.
#[derive(Debug)]
pub struct PgCluster {
    pub port: u16,
    pub dir: PathBuf,
    /// The CA that signed `server.crt` (PostgreSQL's and the proxy's).
    pub ca_pem: Vec<u8>,
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a PostgreSQL program as the `postgres` user when we are root.
fn pg_command(program: &str) -> Command {
    let path = format!("{}/{program}", bin_dir());
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", &path]);
        command
    } else {
        Command::new(path)
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn give_to_postgres(path: &Path) {
    if is_root() {
        run(Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(path));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Tls {
    ca: String,
    cert: String,
    key: String,
}

fn make_tls() -> Tls {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "hoop test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&server_key, &issuer).unwrap();
    Tls {
        ca: ca_cert.pem(),
        cert: cert.pem(),
        key: server_key.serialize_pem(),
    }
}

fn psql_socket(dir: &Path, port: u16, db: &str, sql: &str) -> String {
    let output = pg_command("psql")
        .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(dir)
        .args([
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            db,
            "-c",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "psql {sql:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn start(data: &Path, socket_dir: &Path, port: u16, log: &Path) {
    run(pg_command("pg_ctl")
        .arg("-D")
        .arg(data)
        .arg("-l")
        .arg(log)
        .args([
            "-w",
            "-o",
            &format!("-p {port} -k {}", socket_dir.display()),
            "start",
        ]));
}

/// Builds the template cluster once per machine (under a file lock).
fn template() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hoop-pg");
    fs::create_dir_all(&root).unwrap();
    let template = root.join(format!("template-{TEMPLATE_VERSION}"));
    let lock = fs::File::create(root.join("template.lock")).unwrap();
    lock.lock().unwrap();
    if template.join("ready").exists() {
        return template;
    }
    let building = root.join(format!("building-{}", std::process::id()));
    let _ = fs::remove_dir_all(&building);
    fs::create_dir_all(&building).unwrap();
    // The postgres user must be able to reach the directory.
    for dir in [root.as_path(), building.as_path()] {
        run(Command::new("chmod").arg("755").arg(dir));
    }
    fs::write(building.join("pw"), SUPERUSER_PASSWORD).unwrap();
    give_to_postgres(&building);
    let data = building.join("data");
    run(pg_command("initdb")
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "postgres",
            "-N",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .arg(format!("--pwfile={}", building.join("pw").display())));
    let tls = make_tls();
    fs::write(data.join("server.crt"), &tls.cert).unwrap();
    fs::write(data.join("server.key"), &tls.key).unwrap();
    fs::write(building.join("ca.pem"), &tls.ca).unwrap();
    fs::write(building.join("server.crt"), &tls.cert).unwrap();
    fs::write(building.join("server.key"), &tls.key).unwrap();
    run(Command::new("chmod")
        .arg("600")
        .arg(data.join("server.key")));
    let mut conf = fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .unwrap();
    use std::io::Write as _;
    writeln!(
        conf,
        "listen_addresses = '127.0.0.1'\nmax_connections = 300\nfsync = off\n\
         synchronous_commit = off\nfull_page_writes = off\nssl = on\n\
         ssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
         shared_buffers = 32MB\nlogging_collector = off"
    )
    .unwrap();
    // First matching line wins: the special roles before the catch-all.
    let hba = fs::read_to_string(data.join("pg_hba.conf")).unwrap();
    let special = "\
host all hoop_md5 127.0.0.1/32 md5
host all hoop_clear 127.0.0.1/32 password
host all hoop_trust 127.0.0.1/32 trust
hostssl all hoop_tls 127.0.0.1/32 scram-sha-256
hostnossl all hoop_tls 127.0.0.1/32 reject
";
    fs::write(data.join("pg_hba.conf"), format!("{special}{hba}")).unwrap();
    give_to_postgres(&building);

    let port = free_port();
    start(&data, &building, port, &building.join("log"));
    let mut sql = String::new();
    for role in [
        Role::Scram,
        Role::Md5,
        Role::Cleartext,
        Role::Trust,
        Role::TlsOnly,
    ] {
        if role == Role::Md5 {
            sql.push_str("SET password_encryption = 'md5';");
        } else {
            sql.push_str("SET password_encryption = 'scram-sha-256';");
        }
        match role.password() {
            Some(pw) => sql.push_str(&format!(
                "CREATE ROLE {} LOGIN SUPERUSER PASSWORD '{pw}';",
                role.user()
            )),
            None => sql.push_str(&format!("CREATE ROLE {} LOGIN SUPERUSER;", role.user())),
        }
    }
    psql_socket(&building, port, "postgres", &sql);
    run(pg_command("pg_ctl")
        .arg("-D")
        .arg(&data)
        .args(["-m", "fast", "-w", "stop"]));
    let _ = fs::remove_file(building.join("log"));
    let _ = fs::remove_dir_all(&template);
    fs::rename(&building, &template).unwrap();
    fs::write(template.join("ready"), "").unwrap();
    template
}

/// The cluster shared by every test of this process.
pub fn cluster() -> &'static PgCluster {
    static CLUSTER: OnceLock<PgCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let template = template();
        let dir = std::env::temp_dir().join(format!("hoop-pg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        run(Command::new("chmod").arg("755").arg(&dir));
        run(Command::new("cp")
            .arg("-a")
            .arg(template.join("data"))
            .arg(dir.join("data")));
        give_to_postgres(&dir);
        let port = free_port();
        // The watchdog outlives this process: when it is gone (normal exit,
        // panic, kill), it stops the cluster and removes its directory.
        let data = dir.join("data");
        let pg_ctl = if is_root() {
            format!("runuser -u postgres -- {}/pg_ctl", bin_dir())
        } else {
            format!("{}/pg_ctl", bin_dir())
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.3; done; \
             {pg_ctl} -D '{data}' -m immediate -w stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = data.display(),
            dir = dir.display(),
        );
        // `setsid -f` forks the watchdog into its own session and returns.
        Command::new("setsid")
            .args(["-f", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        start(&data, &dir, port, &dir.join("log"));
        PgCluster {
            port,
            dir,
            ca_pem: fs::read(template.join("ca.pem")).unwrap(),
            cert_pem: fs::read(template.join("server.crt")).unwrap(),
            key_pem: fs::read(template.join("server.key")).unwrap(),
        }
    })
}

impl PgCluster {
    /// Runs SQL as the superuser over the unix socket (not through hoop).
    pub fn sql(&self, db: &str, sql: &str) -> String {
        psql_socket(&self.dir, self.port, db, sql)
    }

    /// Creates a fresh database (dropping a leftover of the same name).
    pub fn create_database(&self, name: &str) {
        self.sql(
            "postgres",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        );
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
    }

    /// The upstream target for `role`.
    pub fn target(&self, role: Role, ssl_mode: SslMode, database: Option<&str>) -> DatabaseTarget {
        DatabaseTarget {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            user: role.user().to_owned(),
            password: role.password().map(Secret::new),
            database: database.map(str::to_owned),
            ssl_mode,
        }
    }

    /// Writes a file readable by clients (e.g. the CA for `sslrootcert`).
    pub fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    /// Server-leg TLS trusting this cluster's CA.
    pub fn upstream_tls(&self, mode: SslMode) -> hoop_proxy::tls::UpstreamTls {
        hoop_proxy::tls::UpstreamTls::with_roots_pem(mode, Some(&self.ca_pem)).unwrap()
    }

    /// Client-leg TLS with the cluster's certificate (named localhost and
    /// 127.0.0.1, signed by [`Self::ca_pem`]).
    pub fn client_tls(&self) -> tokio_rustls::TlsAcceptor {
        hoop_proxy::tls::acceptor_from_pem(&self.cert_pem, &self.key_pem).unwrap()
    }
}

/// Starts `proxy` on a free loopback port; it serves until the test's runtime
/// ends.
pub async fn spawn_proxy(proxy: PostgresProxy) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { proxy.serve(listener).await });
    addr
}

/// A proxy to `role` with default settings, server TLS trusting the CA.
pub async fn proxy_for(role: Role, ssl_mode: SslMode, database: Option<&str>) -> SocketAddr {
    let pg = cluster();
    let proxy = PostgresProxy::builder(pg.target(role, ssl_mode, database))
        .upstream_tls(pg.upstream_tls(ssl_mode))
        .build()
        .unwrap();
    spawn_proxy(proxy).await
}

/// A client command pointed at the proxy: `psql`, `pgbench`, `pg_dump` with
/// host, port and user set through libpq's environment.
pub fn client(program: &str, proxy: SocketAddr, user: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(program);
    command
        .env("PGHOST", proxy.ip().to_string())
        .env("PGPORT", proxy.port().to_string())
        .env("PGUSER", user)
        .env("PGCONNECT_TIMEOUT", "20")
        .env_remove("PGPASSWORD")
        .env_remove("PGDATABASE")
        .kill_on_drop(true);
    command
}

/// Runs a command to completion, returning stdout; panics with stderr on
/// failure.
pub async fn output_ok(command: &mut tokio::process::Command) -> String {
    let output = command.output().await.unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A minimal protocol client over a raw socket, for what real clients do not
/// expose (SQLSTATEs of connection errors, malformed input, counting rows
/// without storing them).
pub struct RawClient {
    pub stream: tokio::net::TcpStream,
    decoder: hoop_wire::postgres::BackendDecoder,
    buf: bytes::BytesMut,
}

impl RawClient {
    /// Connects and sends a startup message (no TLS).
    pub async fn start(addr: SocketAddr, user: &str, db: &str) -> Self {
        use hoop_wire::postgres::{FrontendMessage, StartupMessage};
        let mut client = Self {
            stream: tokio::net::TcpStream::connect(addr).await.unwrap(),
            decoder: hoop_wire::postgres::BackendDecoder::new(Default::default()),
            buf: bytes::BytesMut::with_capacity(64 * 1024),
        };
        client
            .send(&FrontendMessage::Startup(StartupMessage {
                protocol_version: 0x0003_0000,
                params: vec![
                    (
                        "user".into(),
                        bytes::Bytes::copy_from_slice(user.as_bytes()),
                    ),
                    (
                        "database".into(),
                        bytes::Bytes::copy_from_slice(db.as_bytes()),
                    ),
                ],
            }))
            .await;
        client
    }

    pub async fn send(&mut self, message: &hoop_wire::postgres::FrontendMessage) {
        use tokio::io::AsyncWriteExt as _;
        let mut bytes = bytes::BytesMut::new();
        message.encode(&mut bytes);
        self.stream.write_all(&bytes).await.unwrap();
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next whole message's frame, or `None` at end of stream.
    pub async fn frame(&mut self) -> Option<hoop_wire::postgres::Frame> {
        use tokio::io::AsyncReadExt as _;
        loop {
            if let Some(frame) = self.decoder.decode_frame(&mut self.buf).unwrap() {
                return Some(frame);
            }
            if self.buf.capacity() - self.buf.len() < 16 * 1024 {
                self.buf.reserve(64 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await.unwrap() == 0 {
                return None;
            }
        }
    }

    pub async fn message(&mut self) -> Option<hoop_wire::postgres::BackendMessage> {
        let frame = self.frame().await?;
        Some(hoop_wire::postgres::BackendMessage::parse(&frame).unwrap())
    }

    /// Reads until ReadyForQuery (true) or an ErrorResponse (its SQLSTATE
    /// and message).
    pub async fn until_ready(&mut self) -> Result<(), (String, String)> {
        use hoop_wire::postgres::BackendMessage;
        loop {
            match self.message().await {
                Some(BackendMessage::ReadyForQuery(_)) => return Ok(()),
                Some(BackendMessage::ErrorResponse(notice)) => {
                    return Err((
                        String::from_utf8_lossy(notice.code().unwrap()).into_owned(),
                        String::from_utf8_lossy(notice.message().unwrap()).into_owned(),
                    ));
                }
                Some(_) => {}
                None => return Err(("EOF".to_owned(), String::new())),
            }
        }
    }
}

/// The peak resident set size of this process, in bytes.
pub fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}
