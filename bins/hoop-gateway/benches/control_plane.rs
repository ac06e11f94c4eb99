//! Control-plane load: 1,000 connection creates and 10,000 reads through
//! the real HTTP API, on SQLite (and PostgreSQL when
//! `HOOP_BENCH_DATABASE_URL` names an empty database), with a few
//! concurrent clients. A bounded loop that fails loudly on any error and
//! prints rates; run with
//!
//! ```text
//! cargo bench -p hoop-gateway --bench control_plane
//! HOOP_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/hoop_bench \
//!     cargo bench -p hoop-gateway --bench control_plane
//! ```

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::json;

const CREATES: usize = 1_000;
const READS: usize = 10_000;
const CLIENTS: usize = 4;

fn b64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

async fn run_phase<F, Fut>(label: &str, total: usize, clients: &[Arc<ApiClient>], op: F) -> Duration
where
    F: Fn(Arc<ApiClient>, usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (lane, client) in clients.iter().enumerate() {
        let client = Arc::clone(client);
        let op = op.clone();
        let lanes = clients.len();
        tasks.spawn(async move {
            let mut i = lane;
            while i < total {
                op(Arc::clone(&client), i).await;
                i += lanes;
            }
        });
    }
    while let Some(result) = tasks.join_next().await {
        result.expect("a load task failed");
    }
    let elapsed = started.elapsed();
    println!(
        "  {label:<8} {total:>6} requests in {:>7.3} s = {:>7.0} req/s ({} clients)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64(),
        clients.len()
    );
    elapsed
}

async fn load(backend: &str, database_url: Option<String>) {
    let dir = std::env::temp_dir().join(format!("hoop-bench-{}-{backend}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = GatewayConfig::new(&dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.database_url = database_url;
    config.admin_token = Some("bench-admin-token".into());
    let gateway = Gateway::start(config).await.expect("gateway starts");
    let url = format!("http://{}", gateway.api_addr);
    let clients: Vec<Arc<ApiClient>> = (0..CLIENTS)
        .map(|_| Arc::new(ApiClient::new(&url, Some("bench-admin-token".into())).expect("client")))
        .collect();
    let agent = clients[0]
        .json(Method::POST, "/api/agents", &json!({"name": "bench-agent"}))
        .await
        .expect("agent");
    assert_eq!(agent.status, StatusCode::CREATED, "{:?}", agent.body);
    println!("{backend}:");
    run_phase("create", CREATES, &clients, |client, i| async move {
        let body = json!({
            "name": format!("pg-{i}"),
            "type": "database",
            "subtype": "postgres",
            "agent_id": "bench-agent",
            "secret": {
                "envvar:HOST": b64("db.internal"), "envvar:PORT": b64("5432"),
                "envvar:USER": b64("app"), "envvar:PASS": b64("secret"),
            },
            "redact_enabled": true,
            "redact_types": ["EMAIL_ADDRESS"],
        });
        let response = client
            .json(Method::POST, "/api/connections", &body)
            .await
            .expect("create");
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    })
    .await;
    run_phase("read", READS, &clients, |client, i| async move {
        let name = format!("pg-{}", (i * 7919) % CREATES);
        let response = client
            .get(&format!("/api/connections/{name}"))
            .await
            .expect("read");
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        assert_eq!(response.body["name"], name.as_str());
    })
    .await;
    let started = Instant::now();
    let list = clients[0].get("/api/connections").await.expect("list");
    assert_eq!(list.body.as_array().map(Vec::len), Some(CREATES));
    println!(
        "  list of {CREATES} connections: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    support::on_each_store(load);
}
