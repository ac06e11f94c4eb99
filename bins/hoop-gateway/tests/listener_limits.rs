//! Issue 13, item 9: each client listener (the API, PostgreSQL, MySQL)
//! lets go of a client that is silent or sends half a request or login,
//! and serves at most `max_connections` clients at once, refusing the
//! next in its own protocol while the sessions it serves go on. Real
//! clients (psql, the mariadb CLI) against the real servers; raw sockets
//! for the clients that misbehave on purpose.

use std::process::Stdio;
use std::time::Duration;

use hoop_gateway::GatewayConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

mod common;

use common::{Route, b64, mariadb_root, start_gateway, stderr, text, wait_status};

/// How long a test waits for the gateway to let a client go, well past
/// the one second it is configured with: a bound on a hang, not a
/// measurement.
const LET_GO_WITHIN: Duration = Duration::from_secs(15);

fn config(dir: &std::path::Path) -> GatewayConfig {
    let mut config = GatewayConfig::new(dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.postgres_listen = Some("127.0.0.1:0".into());
    config.mysql_listen = Some("127.0.0.1:0".into());
    config
}

/// Reads until the gateway closes the connection; returns what it sent.
/// Panics if it is still open after [`LET_GO_WITHIN`].
async fn read_until_closed(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(LET_GO_WITHIN, async {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: still held after {LET_GO_WITHIN:?}");
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_half_sent_clients_are_let_go() {
    let dir = std::env::temp_dir().join(common::unique("hoop-limits-silent"));
    let mut config = config(&dir);
    config.login_timeout = Duration::from_secs(1);
    config.api_idle_timeout = Duration::from_secs(1);
    let running = start_gateway(&dir, config, Route::Link, false).await;
    let gateway = &running.gateway;
    let api = gateway.api_addr;
    let postgres = gateway.postgres_addr.unwrap();
    let mysql = gateway.mysql_addr.unwrap();
    let cases: Vec<(&str, std::net::SocketAddr, &[u8])> = vec![
        ("API, silent", api, b""),
        (
            "API, half a head",
            api,
            b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n",
        ),
        ("PostgreSQL, silent", postgres, b""),
        (
            "PostgreSQL, half a startup",
            postgres,
            b"\0\0\0\x30\0\x03\0\0user\0",
        ),
        ("MySQL, silent", mysql, b""),
        ("MySQL, half a login", mysql, b"\x40\0\0\x01\x8d\xa6"),
    ];
    let mut clients = Vec::new();
    for (what, addr, bytes) in cases {
        clients.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(bytes).await.unwrap();
            read_until_closed(&mut stream, what).await;
        }));
    }
    // A body announced and never finished: 408, then the connection ends.
    let head = format!(
        "POST /api/users/groups HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Content-Length: 100\r\n\r\n{{\"na",
        running.token
    );
    clients.push(tokio::spawn(async move {
        let mut stream = TcpStream::connect(api).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        let answer = text(&read_until_closed(&mut stream, "API, half a body").await);
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("did not arrive in time"), "{answer}");
    }));
    // A keep-alive connection left idle after its answer is closed.
    clients.push(tokio::spawn(async move {
        let mut stream = TcpStream::connect(api).await.unwrap();
        stream
            .write_all(b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = text(&read_until_closed(&mut stream, "API, idle after a request").await);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }));
    for client in clients {
        client.await.unwrap();
    }
    // Clients that keep to the time are served as ever.
    let health = running.admin.get("/api/healthz").await.unwrap();
    assert_eq!(health.body["status"], "ok");
    running.agent.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

/// An interactive psql through the listener: statements on its standard
/// input, answers read line by line.
struct Psql {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Psql {
    fn start(addr: std::net::SocketAddr, token: &str, connection: &str) -> Self {
        let mut child = Command::new("psql")
            .arg(format!(
                "host={} port={} user={connection} dbname=postgres sslmode=disable connect_timeout=10",
                addr.ip(),
                addr.port()
            ))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
            .env("PGPASSWORD", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            input,
            output,
        }
    }

    async fn query(&mut self, sql: &str) -> String {
        self.input
            .write_all(format!("{sql};\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(20), self.output.read_line(&mut line))
            .await
            .expect("psql answers")
            .unwrap();
        line.trim_end().to_owned()
    }
}

/// The same with the mariadb CLI (batch mode, unbuffered).
struct Mariadb {
    _child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
}

impl Mariadb {
    fn start(addr: std::net::SocketAddr, token: &str, connection: &str) -> Self {
        let mut child = Command::new("mariadb")
            .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
            .args(["-u", connection, "--skip-ssl", "--connect-timeout=10"])
            .args(["-N", "-B", "--unbuffered"])
            .arg(format!("-p{token}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        Self {
            _child: child,
            input,
            output,
        }
    }

    async fn query(&mut self, sql: &str) -> String {
        self.input
            .write_all(format!("{sql};\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        tokio::time::timeout(Duration::from_secs(20), self.output.read_line(&mut line))
            .await
            .expect("mariadb answers")
            .unwrap();
        line.trim_end().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_their_cap_the_listeners_refuse_in_their_protocol_and_sessions_go_on() {
    let dir = std::env::temp_dir().join(common::unique("hoop-limits-cap"));
    let mut config = config(&dir);
    config.max_connections = 2;
    let running = start_gateway(&dir, config, Route::Link, false).await;
    let (gateway, admin, token) = (&running.gateway, &running.admin, &running.token);
    let name = format!("hoop_cap_{}", std::process::id());
    mariadb_root(&format!(
        "DROP USER IF EXISTS '{name}'@'%'; CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}';"
    ))
    .await;
    for (connection, subtype, port, user, password) in [
        (
            "pg",
            "postgres",
            "5432",
            "postgres".to_owned(),
            "x".to_owned(),
        ),
        ("my", "mysql", "3306", name.clone(), format!("pw-{name}")),
    ] {
        let body = json!({
            "name": connection, "type": "database", "subtype": subtype, "agent_id": "default",
            "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(port),
                       "envvar:USER": b64(&user), "envvar:PASS": b64(&password)},
        });
        let created = admin
            .json(hyper::Method::POST, "/api/connections", &body)
            .await
            .unwrap();
        assert_eq!(
            created.status,
            hyper::StatusCode::CREATED,
            "{:?}",
            created.body
        );
        wait_status(admin, connection, "online").await;
    }

    // PostgreSQL: two sessions, the third is told FATAL 53300.
    let postgres = gateway.postgres_addr.unwrap();
    let mut first = Psql::start(postgres, token, "pg");
    let mut second = Psql::start(postgres, token, "pg");
    assert_eq!(first.query("SELECT 1").await, "1");
    assert_eq!(second.query("SELECT 2").await, "2");
    for sslmode in ["disable", "prefer"] {
        let refused = Command::new("psql")
            .arg(format!(
                "host={} port={} user=pg dbname=postgres sslmode={sslmode} connect_timeout=10",
                postgres.ip(),
                postgres.port()
            ))
            .args(["-X", "-At", "-c", "SELECT 3"])
            .env("PGPASSWORD", token)
            .output()
            .await
            .unwrap();
        assert!(!refused.status.success());
        let said = stderr(&refused);
        assert!(
            said.contains("FATAL:  too many connections to this gateway listener (at most 2)"),
            "{sslmode}: {said}"
        );
    }
    assert_eq!(first.query("SELECT 4").await, "4");
    assert_eq!(second.query("SELECT 5").await, "5");

    // MySQL: the same, with ERROR 1040.
    let mysql = gateway.mysql_addr.unwrap();
    let mut one = Mariadb::start(mysql, token, "my");
    let mut two = Mariadb::start(mysql, token, "my");
    assert_eq!(one.query("SELECT 1").await, "1");
    assert_eq!(two.query("SELECT 2").await, "2");
    let refused = Command::new("mariadb")
        .args([
            "-h",
            &mysql.ip().to_string(),
            "-P",
            &mysql.port().to_string(),
        ])
        .args(["-u", "my", "--skip-ssl", "--connect-timeout=10", "-N", "-B"])
        .arg(format!("-p{token}"))
        .args(["-e", "SELECT 3"])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(
        said.contains("ERROR 1040 (08004): too many connections to this gateway listener"),
        "{said}"
    );
    assert_eq!(one.query("SELECT 4").await, "4");
    assert_eq!(two.query("SELECT 5").await, "5");

    // Once a session ends, the listener serves again.
    drop(first);
    let mut third = loop {
        let mut psql = Psql::start(postgres, token, "pg");
        psql.input.write_all(b"SELECT 6;\n").await.unwrap();
        let mut line = String::new();
        let _ = psql.output.read_line(&mut line).await;
        if line.trim_end() == "6" {
            break psql;
        }
        let _ = psql.child.wait().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(third.query("SELECT 7").await, "7");
    drop((second, third, one, two));
    mariadb_root(&format!("DROP USER IF EXISTS '{name}'@'%';")).await;
    running.agent.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_its_cap_the_api_answers_503_and_open_connections_go_on() {
    let dir = std::env::temp_dir().join(common::unique("hoop-limits-api"));
    let mut config = config(&dir);
    config.max_connections = 2;
    config.postgres_listen = None;
    config.mysql_listen = None;
    let gateway = hoop_gateway::Gateway::start(config).await.unwrap();
    let api = gateway.api_addr;
    let health = b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    async fn ask(stream: &mut TcpStream) -> String {
        stream
            .write_all(b"GET /api/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut answer = vec![0u8; 4096];
        let n = stream.read(&mut answer).await.unwrap();
        text(&answer[..n])
    }
    let mut first = TcpStream::connect(api).await.unwrap();
    let mut second = TcpStream::connect(api).await.unwrap();
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second).await.starts_with("HTTP/1.1 200"));
    let mut third = TcpStream::connect(api).await.unwrap();
    third.write_all(health).await.unwrap();
    let answer = text(&read_until_closed(&mut third, "API past its cap").await);
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(
        body["message"],
        "too many connections to this gateway listener (at most 2); try again later"
    );
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second).await.starts_with("HTTP/1.1 200"));
    let _ = std::fs::remove_dir_all(&dir);
}
