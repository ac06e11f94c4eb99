//! Sessions served by a separately started `hoop-agent` that end on the
//! gateway's side, the client reading why in its own protocol wherever it
//! was (waiting for a statement, or inside a large result):
//!
//! - issue 13, item 11: the agent goes away (`kill -9`). Before, libmariadb
//!   showed `ERROR 2027 Received malformed packet`: the gateway's ERR
//!   carried a client-side error code (2002), which libmariadb refuses
//!   from a server, and could land inside a row;
//! - issue 13, item 13: the person's token is revoked.
//!
//! The real mariadb CLI and psql, the real MariaDB and PostgreSQL, the
//! real agent binary.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const GONE: &str = "the agent serving this connection went away";

fn b64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

async fn mariadb_root(sql: &str) {
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

/// A gateway with both listeners, an agent `edge` registered for a
/// separate process, and a connection of each protocol on it.
struct World {
    gateway: Gateway,
    client: ApiClient,
    token: String,
    key: String,
    name: String,
    data_dir: std::path::PathBuf,
}

impl World {
    async fn start() -> Self {
        let name = format!("hoop_loss_{}", std::process::id());
        mariadb_root(&format!(
            "DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name};
             DROP USER IF EXISTS '{name}'@'%'; CREATE USER '{name}'@'%' IDENTIFIED BY 'pw-{name}';
             GRANT ALL ON {name}.* TO '{name}'@'%';"
        ))
        .await;
        let data_dir = std::env::temp_dir().join(&name);
        let _ = std::fs::remove_dir_all(&data_dir);
        let mut config = GatewayConfig::new(&data_dir);
        config.api_listen = "127.0.0.1:0".into();
        config.agent_listen = "127.0.0.1:0".into();
        config.postgres_listen = Some("127.0.0.1:0".into());
        config.mysql_listen = Some("127.0.0.1:0".into());
        let gateway = Gateway::start(config).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let client =
            ApiClient::new(&format!("http://{}", gateway.api_addr), Some(token.clone())).unwrap();
        let agent = client
            .json(Method::POST, "/api/agents", &json!({"name": "edge"}))
            .await
            .unwrap();
        assert_eq!(agent.status, StatusCode::CREATED);
        let key = agent.body["token"].as_str().unwrap().to_owned();
        for body in [
            json!({
                "name": "pg", "type": "database", "subtype": "postgres", "agent_id": "edge",
                "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                           "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                           "envvar:DB": b64("postgres")},
            }),
            json!({
                "name": "my", "type": "database", "subtype": "mysql", "agent_id": "edge",
                "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("3306"),
                           "envvar:USER": b64(&name), "envvar:PASS": b64(&format!("pw-{name}")),
                           "envvar:DB": b64(&name)},
            }),
        ] {
            let created = client
                .json(Method::POST, "/api/connections", &body)
                .await
                .unwrap();
            assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        }
        Self {
            gateway,
            client,
            token,
            key,
            name,
            data_dir,
        }
    }

    /// Starts the agent process and waits until both connections are
    /// online through it.
    async fn agent(&self) -> Child {
        let agent = Command::new(env!("CARGO_BIN_EXE_hoop-agent"))
            .env("HOOP_KEY", &self.key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        for connection in ["pg", "my"] {
            let deadline = Instant::now() + Duration::from_secs(20);
            while self
                .client
                .get(&format!("/api/connections/{connection}"))
                .await
                .unwrap()
                .body["status"]
                != "online"
            {
                assert!(Instant::now() < deadline, "{connection} never came online");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        agent
    }

    fn mariadb(&self, options: &[&str], sql: &str) -> Child {
        let addr = self.gateway.mysql_addr.unwrap();
        Command::new("mariadb")
            .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
            .args(["-u", "my", "--skip-ssl", "--connect-timeout=10", "-N", "-B"])
            .args(options)
            .arg(format!("-p{}", self.token))
            .arg(&self.name)
            .args(["-e", sql])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    fn psql(&self, variables: &[&str], sql: &str) -> Child {
        let addr = self.gateway.postgres_addr.unwrap();
        let mut command = Command::new("psql");
        command
            .arg(format!(
                "host={} port={} user=pg dbname=postgres sslmode=disable",
                addr.ip(),
                addr.port()
            ))
            .args(["-X", "-At"]);
        for variable in variables {
            command.args(["-v", variable]);
        }
        command
            .args(["-c", sql])
            .env("PGPASSWORD", &self.token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    }

    /// Waits until `count` sessions on `connection` ended as failed with
    /// the agent's loss.
    async fn failed_sessions(&self, connection: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let failed = self
                .client
                .get(&format!(
                    "/api/sessions?connection={connection}&status=failed"
                ))
                .await
                .unwrap()
                .body;
            let failed = failed.as_array().unwrap();
            if failed.len() == count {
                assert!(failed.iter().all(|s| s["error"] == GONE), "{failed:?}");
                return;
            }
            assert!(Instant::now() < deadline, "{failed:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        mariadb_root(&format!(
            "DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%';",
            self.name
        ))
        .await;
        drop(self.gateway);
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Waits until MariaDB runs a statement containing `marker`.
async fn mariadb_running(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-N", "-B", "-e"])
            .arg(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'"
            ))
            .output()
            .await
            .unwrap();
        if String::from_utf8_lossy(&output.stdout).trim() != "0" {
            return;
        }
        assert!(Instant::now() < deadline, "the statement never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the client's output until `lines` lines arrived: it is inside
/// its result.
async fn read_lines(child: &mut Child, lines: usize) -> BufReader<tokio::process::ChildStdout> {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    for _ in 0..lines {
        line.clear();
        let read = tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
            .await
            .expect("rows arrive")
            .unwrap();
        assert!(read > 0, "the result ended early");
    }
    stdout
}

async fn kill(agent: &mut Child) {
    agent.start_kill().unwrap();
    agent.wait().await.unwrap();
}

/// The client's error output once it exited, within a bound.
async fn stderr_of(
    mut child: Child,
    stdout: Option<BufReader<tokio::process::ChildStdout>>,
) -> String {
    // Keep reading what it prints, or a full pipe would stall it.
    let drain = stdout.map(|mut out| {
        tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = out.read_to_end(&mut sink).await;
        })
    });
    let mut stderr = child.stderr.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("the client exits")
        .unwrap();
    assert!(!status.success());
    let mut said = String::new();
    stderr.read_to_string(&mut said).await.unwrap();
    if let Some(drain) = drain {
        let _ = drain.await;
    }
    said
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mariadb_cli_reads_the_agents_loss_waiting_or_inside_a_result() {
    let world = World::start().await;

    // Waiting for its statement.
    let mut agent = world.agent().await;
    let marker = format!("loss_sleep_{}", std::process::id());
    let client = world.mariadb(&[], &format!("SELECT SLEEP(5), '{marker}'"));
    mariadb_running(&marker).await;
    kill(&mut agent).await;
    let said = stderr_of(client, None).await;
    assert!(
        said.contains(&format!("ERROR 1158 (08S01) at line 1: {GONE}")),
        "{said}"
    );

    // Inside a large result, rows streaming (--quick reads them as they
    // come): the ERR follows the last whole row with the next sequence id.
    // Rows longer than a link frame, as for psql below.
    let mut agent = world.agent().await;
    let mut client = world.mariadb(
        &["--quick"],
        "SELECT seq, REPEAT('x', 40000) FROM seq_1_to_1000000",
    );
    let stdout = read_lines(&mut client, 20).await;
    kill(&mut agent).await;
    let said = stderr_of(client, Some(stdout)).await;
    assert!(
        !said.contains("2027") && !said.contains("malformed"),
        "{said}"
    );
    assert!(
        said.contains(&format!("ERROR 1158 (08S01) at line 1: {GONE}")),
        "{said}"
    );

    // With the agent gone, a new client is refused in words it reads too.
    let refused = world.mariadb(&[], "SELECT 1");
    let said = stderr_of(refused, None).await;
    assert!(
        said.contains("ERROR 1429 (08001)") && said.contains("connection my"),
        "{said}"
    );

    world.failed_sessions("my", 2).await;
    world.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_reads_the_agents_loss_inside_a_result() {
    let world = World::start().await;
    let mut agent = world.agent().await;
    // Rows streaming to psql without a pause (COPY OUT: one CopyData
    // message a row, printed as they come). The series is in the select
    // list, so the server streams it instead of materialising it first.
    // Each row is longer than a link frame (32 KiB) and shorter than what
    // the gateway holds back (64 KiB): the agent's last frame ends inside
    // a row, where an error appended would be read as row data.
    let mut client = world.psql(
        &[],
        "COPY (SELECT generate_series(1, 1000000), repeat('x', 40000)) TO STDOUT",
    );
    let stdout = read_lines(&mut client, 20).await;
    kill(&mut agent).await;
    let said = stderr_of(client, Some(stdout)).await;
    assert!(!said.contains("lost synchronization"), "{said}");
    assert!(said.contains(&format!("FATAL:  {GONE}")), "{said}");
    world.failed_sessions("pg", 1).await;
    drop(agent);
    world.stop().await;
}

const REVOKED: &str =
    "the access token of this session was revoked, or its user removed or deactivated";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_sessions_served_by_a_separate_agent() {
    let world = World::start().await;
    let _agent = world.agent().await;
    let user = world
        .client
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": "ana@example.com"}),
        )
        .await
        .unwrap();
    assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
    let token = world
        .client
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "t", "user_id": "ana@example.com"}),
        )
        .await
        .unwrap();
    let (id, value) = (
        token.body["id"].as_str().unwrap().to_owned(),
        token.body["token"].as_str().unwrap().to_owned(),
    );
    let person = World {
        token: value,
        ..world
    };
    let marker = format!("revoked_sep_{}", std::process::id());
    let mysql = person.mariadb(&[], &format!("SELECT SLEEP(60), '{marker}'"));
    mariadb_running(&marker).await;
    let mut postgres = person.psql(
        &["FETCH_COUNT=5000"],
        "SELECT generate_series(1, 50000000), repeat('x', 300)",
    );
    let rows = read_lines(&mut postgres, 2000).await;
    let revoked = person
        .client
        .send(Method::DELETE, &format!("/api/tokens/{id}"), None)
        .await
        .unwrap();
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let said = stderr_of(mysql, None).await;
    assert!(
        said.contains(&format!("ERROR 1927 (70100) at line 1: {REVOKED}")),
        "{said}"
    );
    let said = stderr_of(postgres, Some(rows)).await;
    assert!(said.contains(&format!("FATAL:  {REVOKED}")), "{said}");
    for connection in ["my", "pg"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let failed = person
                .client
                .get(&format!(
                    "/api/sessions?connection={connection}&status=failed"
                ))
                .await
                .unwrap()
                .body;
            if failed.as_array().is_some_and(|f| f.len() == 1) {
                assert_eq!(failed[0]["error"], REVOKED);
                break;
            }
            assert!(Instant::now() < deadline, "{connection}: {failed}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    person.stop().await;
}
