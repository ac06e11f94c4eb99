//! `hoop exec` with output larger than the link's flow-control window
//! (256 KiB), as `hoop up` serves it (a gateway and its embedded agent over
//! the link), on the real PostgreSQL and MariaDB (issue 13, item 4: past
//! one window `hoop exec` never returned). The CLI streams: output past the
//! JSON answer's cap comes through whole.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::api::MAX_EXEC_OUTPUT;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use serde_json::json;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

mod common;

use common::{b64, create_online, text};

/// Bounds every run, so the hang this guards against fails the test.
const PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoop_exec_prints_output_of_any_size() {
    let dir = std::env::temp_dir().join(format!("hoop-exec-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = GatewayConfig::new(&dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    let gateway = Gateway::start(config).await.unwrap();
    let token = gateway.first_admin_token.clone().unwrap();
    let api = format!("http://{}", gateway.api_addr);
    let admin = ApiClient::new(&api, Some(token.clone())).unwrap();
    let key = gateway.embedded_agent_key("default").await.unwrap();
    let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls: None,
    }));
    let user = format!("hoop_cli_exec_{}", std::process::id());
    let created = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "-e"])
        .arg(format!(
            "DROP USER IF EXISTS '{user}'@'%'; DROP DATABASE IF EXISTS {user}; CREATE DATABASE {user}; \
             CREATE USER '{user}'@'%' IDENTIFIED BY 'pw-{user}'; GRANT ALL ON {user}.* TO '{user}'@'%';"
        ))
        .output()
        .await
        .unwrap();
    assert!(created.status.success(), "{}", text(&created.stderr));
    create_online(
        &admin,
        "pg",
        "postgres",
        json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
               "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
               "envvar:DB": b64("postgres")}),
    )
    .await;
    create_online(
        &admin,
        "maria",
        "mysql",
        json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("3306"),
               "envvar:USER": b64(&user), "envvar:PASS": b64(&format!("pw-{user}")),
               "envvar:DB": b64(&user)}),
    )
    .await;
    let hoop = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hoop"));
        command
            .env("HOOP_API_URL", &api)
            .env("HOOP_TOKEN", &token)
            .env("HOME", &dir)
            .kill_on_drop(true);
        command
    };
    // 270 rows of 1000 bytes (260 fitted in one window), then past the
    // JSON answer's cap.
    let big = u32::try_from(MAX_EXEC_OUTPUT / 1001 + 1000).unwrap();
    for rows in [270, big] {
        for (connection, from) in [
            ("pg", format!("generate_series(1, {rows})")),
            ("maria", format!("seq_1_to_{rows}")),
        ] {
            let script = format!("SELECT repeat('x', 1000) AS x FROM {from}");
            let run = tokio::time::timeout(
                PATIENCE,
                hoop().args(["exec", connection, "-i", &script]).output(),
            )
            .await
            .unwrap_or_else(|_| panic!("hoop exec {connection} never returned ({rows} rows)"))
            .unwrap();
            assert!(run.status.success(), "{connection}: {}", text(&run.stderr));
            // A header row names the column, then every row follows.
            assert_eq!(run.stdout.len(), 2 + rows as usize * 1001, "{connection}");
            assert!(run.stdout.starts_with(b"x\n"));
            assert!(run.stdout.iter().all(|&b| b == b'x' || b == b'\n'));
            assert!(run.stderr.is_empty(), "{}", text(&run.stderr));
        }
    }

    // A reader that stops after a little (`hoop exec ... | head`): hoop
    // exec ends quietly, and the session is closed.
    let mut child = hoop()
        .args([
            "exec",
            "pg",
            "-i",
            "SELECT repeat('x', 1000) FROM generate_series(1, 2000000)",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = vec![0u8; 100_000];
    stdout.read_exact(&mut first).await.unwrap();
    drop(stdout);
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("hoop exec went on after its reader left")
        .unwrap();
    assert_eq!(status.code(), Some(141));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let newest = admin.get("/api/sessions?connection=pg").await.unwrap().body[0].clone();
        if newest["status"] == "failed" {
            break;
        }
        assert!(Instant::now() < deadline, "{newest}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.abort();
    let _ = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "-e"])
        .arg(format!(
            "DROP USER IF EXISTS '{user}'@'%'; DROP DATABASE IF EXISTS {user}"
        ))
        .output()
        .await;
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}
