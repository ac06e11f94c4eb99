//! The `hoop-gateway` process: flags and environment as an operator sets
//! them, on PostgreSQL, with the admin token from `HOOP_ADMIN_TOKEN`.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hyper::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

async fn admin() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&format!("{SERVER}/postgres"), tokio_postgres::NoTls)
            .await
            .expect("the tests need PostgreSQL at 127.0.0.1:5432 (user postgres, trust)");
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_on_postgres_with_the_admin_token_from_the_environment() {
    let database = format!("hoop_gateway_bin_{}", std::process::id());
    admin()
        .await
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let data_dir = std::env::temp_dir().join(format!("hoop-gateway-bin-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoop-gateway"))
        .args([
            "--api-listen",
            "127.0.0.1:0",
            "--agent-listen",
            "127.0.0.1:0",
            "--postgres-listen",
            "127.0.0.1:0",
            "--mysql-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&data_dir)
        .env("HOOP_DATABASE_URL", format!("{SERVER}/{database}"))
        .env("HOOP_ADMIN_TOKEN", "operator-chosen-token")
        .env(
            "HOOP_SECRET_KEY",
            "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut api = None;
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.is_none() || !banner.contains("agent link") {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("no banner in 30 s")
            .unwrap()
            .expect("hoop-gateway exited");
        if let Some(url) = line.trim().strip_prefix("API:") {
            api = Some(url.trim().to_owned());
        }
        banner.push_str(&line);
        banner.push('\n');
    }
    assert!(!banner.contains("admin token"), "{banner}");
    let api = api.unwrap();
    let client = ApiClient::new(&api, Some("operator-chosen-token".into())).unwrap();
    let me = client.get("/api/userinfo").await.unwrap();
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["role"], "admin");
    let other = ApiClient::new(&api, Some("guess".into())).unwrap();
    assert_eq!(
        other.get("/api/userinfo").await.unwrap().status,
        StatusCode::UNAUTHORIZED
    );
    // State lives in PostgreSQL, not the data directory; the key came from
    // the environment, so no key file was written.
    assert!(!data_dir.join("hoop.db").exists());
    assert!(!data_dir.join("secret.key").exists());
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&data_dir);
    admin()
        .await
        .batch_execute(&format!("DROP DATABASE {database} WITH (FORCE)"))
        .await
        .unwrap();
}
