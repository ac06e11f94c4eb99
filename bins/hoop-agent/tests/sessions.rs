//! A separately started `hoop-agent` process serves sessions: psql through
//! the gateway's PostgreSQL listener and exec reach the real PostgreSQL via
//! the agent binary, psql's Ctrl-C through the listener cancels its
//! statement in the agent's process, and the agent's `kill -9`
//! mid-statement ends the client's session with an error and the record
//! as failed.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::process::Command;

fn b64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_agent_process_serves_psql_and_exec() {
    let data_dir = std::env::temp_dir().join(format!("hoop-agent-sessions-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut config = GatewayConfig::new(&data_dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.postgres_listen = Some("127.0.0.1:0".into());
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
    let created = client
        .json(
            Method::POST,
            "/api/connections",
            &json!({
                "name": "pg", "type": "database", "subtype": "postgres", "agent_id": "edge",
                "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                           "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                           "envvar:DB": b64("postgres")},
            }),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let mut agent = Command::new(env!("CARGO_BIN_EXE_hoop-agent"))
        .env("HOOP_KEY", &key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get("/api/connections/pg").await.unwrap().body["status"] != "online" {
        assert!(Instant::now() < deadline, "pg never came online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let addr = gateway.postgres_addr.unwrap();
    let conninfo = format!(
        "host={} port={} user=pg dbname=postgres",
        addr.ip(),
        addr.port()
    );
    let psql = Command::new("psql")
        .arg(&conninfo)
        .args(["-X", "-At", "-c", "SELECT 'via-' || 'agent'"])
        .env("PGPASSWORD", &token)
        .output()
        .await
        .unwrap();
    assert!(
        psql.status.success(),
        "{}",
        String::from_utf8_lossy(&psql.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&psql.stdout), "via-agent\n");
    let exec = client
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "SELECT 6 * 7"}),
        )
        .await
        .unwrap();
    assert_eq!(exec.body["output"], "42\n", "{:?}", exec.body);

    let (watcher, connection) = tokio_postgres::connect(
        "postgres://postgres@127.0.0.1:5432/postgres",
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    // psql through the listener, running a statement marked `marker` that
    // the server is executing.
    let running = |marker: String| {
        let child = Command::new("psql")
            .arg(&conninfo)
            .args(["-X", "-At", "-c"])
            .arg(format!("SELECT pg_sleep(60), '{marker}'"))
            .env("PGPASSWORD", &token)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let watcher = &watcher;
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while watcher
                .query(
                    "SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' \
                     AND pid <> pg_backend_pid()",
                    &[&format!("%{marker}%")],
                )
                .await
                .unwrap()
                .is_empty()
            {
                assert!(Instant::now() < deadline, "the statement never started");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            child
        }
    };

    // psql's Ctrl-C: its cancel request reaches the gateway's listener on
    // a connection of its own; the key is the agent process's, so the
    // gateway asks its linked agents, and this one forwards it.
    let child = running(format!("agent_cancel_marker_{}", std::process::id())).await;
    let pid = child.id().unwrap().to_string();
    let interrupted = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(interrupted.success());
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the statement was not cancelled")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("canceling statement due to user request"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // kill -9 of the agent mid-statement: the client gets an error in its
    // protocol and the record is closed as failed.
    let child = running(format!("agent_kill_marker_{}", std::process::id())).await;
    agent.start_kill().unwrap();
    agent.wait().await.unwrap();
    let output = child.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("the agent serving this connection went away"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let failed = client
            .get("/api/sessions?connection=pg&status=failed")
            .await
            .unwrap()
            .body;
        if failed.as_array().is_some_and(|a| a.len() == 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no failed session: {failed}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(gateway);
    let _ = std::fs::remove_dir_all(&data_dir);
}
