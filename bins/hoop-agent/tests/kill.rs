//! A separately started `hoop-agent` process against a real gateway:
//! links with its key, drives status, and `kill -9` turns its connections
//! offline within 10 seconds.

use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

fn b64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

fn spawn_agent(key: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hoop-agent"))
        .env("HOOP_KEY", key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_for(client: &ApiClient, path: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let body = client.get(path).await.unwrap().body;
        if body["status"] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path} is {} after 10 s, want {want}",
            body["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_goes_offline_and_returns() {
    let data_dir = std::env::temp_dir().join(format!("hoop-agent-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    let mut config = GatewayConfig::new(&data_dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    let gateway = Gateway::start(config).await.unwrap();
    let client = ApiClient::new(
        &format!("http://{}", gateway.api_addr),
        gateway.first_admin_token.clone(),
    )
    .unwrap();
    let agent = client
        .json(Method::POST, "/api/agents", &json!({"name": "edge"}))
        .await
        .unwrap();
    assert_eq!(agent.status, StatusCode::CREATED);
    let key = agent.body["token"].as_str().unwrap().to_owned();
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = target.local_addr().unwrap().port().to_string();
    let created = client
        .json(
            Method::POST,
            "/api/connections",
            &json!({
                "name": "svc", "type": "application", "subtype": "tcp", "agent_id": "edge",
                "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(&port)},
            }),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);

    let mut process = spawn_agent(&key);
    wait_for(&client, "/api/agents/edge", "CONNECTED").await;
    wait_for(&client, "/api/connections/svc", "online").await;
    process.start_kill().unwrap(); // SIGKILL, as kill -9
    process.wait().await.unwrap();
    wait_for(&client, "/api/connections/svc", "offline").await;
    wait_for(&client, "/api/agents/edge", "DISCONNECTED").await;

    let mut process = spawn_agent(&key);
    wait_for(&client, "/api/connections/svc", "online").await;
    process.start_kill().unwrap();
    process.wait().await.unwrap();
    wait_for(&client, "/api/agents/edge", "DISCONNECTED").await;

    // A wrong key never links, and the agent keeps retrying rather than exit.
    let mut wrong = spawn_agent(&key.replace("://edge:", "://edge:x"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(wrong.try_wait().unwrap().is_none());
    assert_eq!(
        client.get("/api/agents/edge").await.unwrap().body["status"],
        "DISCONNECTED"
    );
    wrong.start_kill().unwrap();
    wrong.wait().await.unwrap();
    drop(target);
    drop(gateway);
    let _ = std::fs::remove_dir_all(&data_dir);
}
