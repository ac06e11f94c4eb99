//! Exec output larger than the link's flow-control window (256 KiB),
//! through a separately started `hoop-agent` process, on the real
//! PostgreSQL and MariaDB (issue 13, item 4: past one window the output
//! stopped for good and the session stayed `open`).
//!
//! `POST /api/sessions` answers whole up to its documented cap (whole rows,
//! `"truncated": true` past it, the script still run); asked for
//! `application/x-ndjson` it streams output of any size; a client that
//! leaves stops the script and closes the record.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use hoop_gateway::api::{EXEC_STREAM, MAX_EXEC_OUTPUT};
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

/// Bounds every exchange, so the hang this guards against fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

fn b64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

struct Setup {
    gateway: Gateway,
    client: ApiClient,
    _agent: Child,
    dir: std::path::PathBuf,
    mysql_user: String,
}

impl Setup {
    /// A gateway, a `hoop-agent` process named `edge`, and connections
    /// `pg` (PostgreSQL) and `maria` (MariaDB, a user of its own) served
    /// by it.
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("hoop-agent-exec-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = GatewayConfig::new(&dir);
        config.api_listen = "127.0.0.1:0".into();
        config.agent_listen = "127.0.0.1:0".into();
        let gateway = Gateway::start(config).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let client = ApiClient::new(&format!("http://{}", gateway.api_addr), Some(token)).unwrap();
        let agent = client
            .json(Method::POST, "/api/agents", &json!({"name": "edge"}))
            .await
            .unwrap();
        assert_eq!(agent.status, StatusCode::CREATED);
        let key = agent.body["token"].as_str().unwrap().to_owned();
        let mysql_user = format!("hoop_exec_out_{}", std::process::id());
        let created = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!(
                "DROP USER IF EXISTS '{mysql_user}'@'%'; DROP DATABASE IF EXISTS {mysql_user}; \
                 CREATE DATABASE {mysql_user}; \
                 CREATE USER '{mysql_user}'@'%' IDENTIFIED BY 'pw-{mysql_user}'; \
                 GRANT ALL ON {mysql_user}.* TO '{mysql_user}'@'%';"
            ))
            .output()
            .await
            .unwrap();
        assert!(created.status.success(), "{created:?}");
        for (name, subtype, port, user, password, database) in [
            (
                "pg",
                "postgres",
                "5432",
                "postgres".to_owned(),
                "x".to_owned(),
                "postgres".to_owned(),
            ),
            (
                "maria",
                "mysql",
                "3306",
                mysql_user.clone(),
                format!("pw-{mysql_user}"),
                mysql_user.clone(),
            ),
        ] {
            let created = client
                .json(
                    Method::POST,
                    "/api/connections",
                    &json!({
                        "name": name, "type": "database", "subtype": subtype, "agent_id": "edge",
                        "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(port),
                                   "envvar:USER": b64(&user), "envvar:PASS": b64(&password),
                                   "envvar:DB": b64(&database)},
                    }),
                )
                .await
                .unwrap();
            assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        }
        let agent = Command::new(env!("CARGO_BIN_EXE_hoop-agent"))
            .env("HOOP_KEY", &key)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        for name in ["pg", "maria"] {
            while client
                .get(&format!("/api/connections/{name}"))
                .await
                .unwrap()
                .body["status"]
                != "online"
            {
                assert!(Instant::now() < deadline, "{name} never came online");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Self {
            gateway,
            client,
            _agent: agent,
            dir,
            mysql_user,
        }
    }

    async fn exec(&self, connection: &str, script: &str, output: &str) -> Value {
        let body = json!({"connection": connection, "script": script, "output": output});
        let answer = tokio::time::timeout(
            PATIENCE,
            self.client.json(Method::POST, "/api/sessions", &body),
        )
        .await
        .unwrap_or_else(|_| panic!("exec on {connection} never answered: {script}"))
        .unwrap();
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer.body
    }

    /// The newest exec session's record, once it has ended.
    async fn record(&self, connection: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let listed = self
                .client
                .get(&format!("/api/sessions?connection={connection}"))
                .await
                .unwrap()
                .body;
            let newest = listed[0].clone();
            if newest["status"] != "open" {
                return newest;
            }
            assert!(Instant::now() < deadline, "still open: {newest}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(self) {
        let _ = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!(
                "DROP USER IF EXISTS '{0}'@'%'; DROP DATABASE IF EXISTS {0}",
                self.mysql_user
            ))
            .output()
            .await;
        drop(self.gateway);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `rows` rows of `width` x's, in each server's SQL (MariaDB's sequence
/// engine, in the connection's database).
fn rows_sql(connection: &str, rows: u32, width: u32) -> String {
    match connection {
        "pg" => format!("SELECT repeat('x', {width}) FROM generate_series(1, {rows})"),
        _ => format!("SELECT repeat('x', {width}) FROM seq_1_to_{rows}"),
    }
}

/// 270 rows of 1000 bytes (past one window; 260 fitted in one) come back
/// whole, as text and as JSON, and the session is closed as done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_output_past_one_window_comes_back_whole() {
    let setup = Setup::start().await;
    let row = "x".repeat(1000);
    for connection in ["pg", "maria"] {
        let script = rows_sql(connection, 270, 1000);
        let text = setup.exec(connection, &script, "text").await;
        assert_eq!(text["exit_code"], 0, "{connection}: {}", text["error"]);
        assert_eq!(text["truncated"], false);
        assert_eq!(
            text["output"].as_str().unwrap(),
            format!("{row}\n").repeat(270),
            "{connection}"
        );
        let record = setup.record(connection).await;
        assert_eq!(record["status"], "done", "{record}");
        assert_eq!(record["bytes_out"], 270 * 1001, "{record}");

        let json = setup.exec(connection, &script, "json").await;
        let rows: Vec<Value> = serde_json::from_str(json["output"].as_str().unwrap()).unwrap();
        assert_eq!(rows.len(), 270, "{connection}");
    }
    setup.stop().await;
}

/// Past the JSON answer's cap the answer holds the whole rows that fit
/// (the JSON array still parses), says it was cut, and the script still ran
/// to its end: the statement after the big one took effect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_past_the_cap_is_cut_at_a_row_and_says_so() {
    let setup = Setup::start().await;
    let rows = u32::try_from(MAX_EXEC_OUTPUT / 1001 + 500).unwrap();
    let table = format!("hoop_exec_cap_{}", std::process::id());
    let admin = |sql: String| async move {
        let status = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "-q", "-c", &sql])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    };
    admin(format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (n int)"
    ))
    .await;
    let script = format!(
        "{}; INSERT INTO {table} VALUES (7)",
        rows_sql("pg", rows, 1000)
    );
    let text = setup.exec("pg", &script, "text").await;
    assert_eq!(text["exit_code"], 0, "{}", text["error"]);
    assert_eq!(text["truncated"], true);
    let output = text["output"].as_str().unwrap();
    assert!(output.len() <= MAX_EXEC_OUTPUT);
    assert!(output.len() > MAX_EXEC_OUTPUT - 1001);
    assert_eq!(output.len() % 1001, 0, "cut inside a row");
    let json = setup.exec("pg", &rows_sql("pg", rows, 1000), "json").await;
    assert_eq!(json["truncated"], true);
    let parsed: Vec<Value> = serde_json::from_str(json["output"].as_str().unwrap()).unwrap();
    assert!(parsed.len() > 16_000, "{}", parsed.len());
    let check = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "-At", "-c"])
        .arg(format!("SELECT count(*) FROM {table}"))
        .output()
        .await
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&check.stdout), "1\n");
    admin(format!("DROP TABLE {table}")).await;
    assert_eq!(setup.record("pg").await["status"], "done");
    setup.stop().await;
}

/// Reads a streamed exec answer to its end: the output and the last line.
async fn read_stream(response: &mut hoop_gateway::client::StreamingResponse) -> (Vec<u8>, Value) {
    let mut pending = Vec::new();
    let mut output = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Value = serde_json::from_slice(&pending[..end]).unwrap();
            pending.drain(..=end);
            if let Some(text) = line["output"].as_str() {
                output.extend_from_slice(text.as_bytes());
            } else if line.get("status").is_some() {
                return (output, line);
            }
        }
    }
    panic!("the stream ended without its last line");
}

/// Streamed, output of any size comes through: 20 MB, past the JSON cap,
/// each character whole (the link cuts its frames anywhere).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_output_has_no_cap() {
    let setup = Setup::start().await;
    for connection in ["pg", "maria"] {
        let rows = 10_000;
        // 3-byte characters, so frame boundaries fall inside them.
        let script = format!(
            "SELECT repeat('€', 700) FROM {}",
            match connection {
                "pg" => format!("generate_series(1, {rows})"),
                _ => format!("seq_1_to_{rows}"),
            }
        );
        let mut response = setup
            .client
            .post_streaming(
                "/api/sessions",
                &json!({"connection": connection, "script": script}),
                EXEC_STREAM,
            )
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK);
        assert_eq!(response.content_type, EXEC_STREAM);
        let (output, last) = tokio::time::timeout(PATIENCE, read_stream(&mut response))
            .await
            .expect("the stream never ended");
        assert_eq!(last["exit_code"], 0, "{last}");
        assert_eq!(
            String::from_utf8(output).unwrap(),
            format!("{}\n", "€".repeat(700)).repeat(rows),
            "{connection}"
        );
        assert_eq!(setup.record(connection).await["status"], "done");
    }
    setup.stop().await;
}

/// A client that stops reading and leaves: the record is closed as failed,
/// and the statement (2 GB of output) no longer runs on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_leaves_stops_the_script_and_closes_the_record() {
    let setup = Setup::start().await;
    let marker = format!("hoop_exec_leave_{}", std::process::id());
    let script = format!("SELECT repeat('x', 1000), '{marker}' FROM generate_series(1, 2000000)");
    let mut response = setup
        .client
        .post_streaming(
            "/api/sessions",
            &json!({"connection": "pg", "script": script}),
            EXEC_STREAM,
        )
        .await
        .unwrap();
    let mut read = 0;
    while read < 1_000_000 {
        read += response.chunk().await.unwrap().unwrap().len();
    }
    drop(response);
    let record = setup.record("pg").await;
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(
        record["error"], "the client left before the output was read",
        "{record}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "-At", "-c"])
            .arg(format!(
                "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' \
                 AND query LIKE '%{marker}%' AND pid <> pg_backend_pid()"
            ))
            .output()
            .await
            .unwrap();
        if String::from_utf8_lossy(&running.stdout) == "0\n" {
            break;
        }
        assert!(Instant::now() < deadline, "the statement still runs");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    setup.stop().await;
}
