//! Session-open latency: 200 sequential `POST /api/sessions` exec calls
//! (`SELECT 1`) through a gateway, its embedded agent and the real
//! PostgreSQL at 127.0.0.1:5432, on a masked connection (the `dlp` plugin
//! lists it, with a plugin-level configuration) and on a plain one. Each
//! call is the whole path: token and connection checks, the policy's store
//! reads, the OPEN frame, the agent's login to PostgreSQL, the query, the
//! records. Prints median, p95 and mean per connection, and the cost of
//! the one store read the `dlp` plugin adds to a session open; run with
//!
//! ```text
//! cargo bench -p hoop-gateway --bench session_open
//! HOOP_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/hoop_bench \
//!     cargo bench -p hoop-gateway --bench session_open
//! ```
//!
//! Wall time on a shared 2-core machine is noisy: compare runs made back
//! to back, and look at the median.

mod support;

use std::time::{Duration, Instant};

use base64::Engine;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

const CALLS: usize = 200;
const WARMUP: usize = 20;

fn b64(value: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(value)
}

async fn wait_online(admin: &ApiClient, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin
        .get(&format!("/api/connections/{name}"))
        .await
        .expect("read")
        .body["status"]
        != "online"
    {
        assert!(Instant::now() < deadline, "{name} never came online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn exec(admin: &ApiClient, connection: &str) -> Value {
    let response = admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": connection, "script": "SELECT 1"}),
        )
        .await
        .expect("exec");
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["output"], "1\n", "{:?}", response.body);
    response.body
}

async fn time_calls(admin: &ApiClient, connection: &str) {
    for _ in 0..WARMUP {
        exec(admin, connection).await;
    }
    let mut times = Vec::with_capacity(CALLS);
    for _ in 0..CALLS {
        let started = Instant::now();
        exec(admin, connection).await;
        times.push(started.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = times.iter().sum::<Duration>() / u32::try_from(CALLS).unwrap_or(u32::MAX);
    println!(
        "  {connection:<8} {CALLS} exec calls: median {:.2} ms, p95 {:.2} ms, mean {:.2} ms",
        ms(times[CALLS / 2]),
        ms(times[CALLS * 95 / 100]),
        ms(mean),
    );
}

/// The store read a session open adds (the connection's `dlp` entry with
/// the plugin's configuration), beside one it already made (the
/// connection by name), each run 2,000 times in a row.
async fn time_queries(gateway: &Gateway) {
    const QUERIES: u32 = 2_000;
    let store = &gateway.state().store;
    let connection = store
        .find_connection("masked")
        .await
        .expect("read")
        .expect("the connection");
    let started = Instant::now();
    for _ in 0..QUERIES {
        let entry = store
            .plugin_entry("dlp", &connection.id)
            .await
            .expect("read");
        assert!(entry.is_some());
    }
    let dlp = started.elapsed() / QUERIES;
    let started = Instant::now();
    for _ in 0..QUERIES {
        store.find_connection("masked").await.expect("read");
    }
    let find = started.elapsed() / QUERIES;
    println!(
        "  store    dlp entry + config: {:.1} us per read; connection by name: {:.1} us",
        dlp.as_secs_f64() * 1e6,
        find.as_secs_f64() * 1e6,
    );
}

async fn load(backend: &str, database_url: Option<String>) {
    let dir = std::env::temp_dir().join(format!(
        "hoop-bench-sessions-{}-{backend}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = GatewayConfig::new(&dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.database_url = database_url;
    config.admin_token = Some("bench-admin-token".into());
    let gateway = Gateway::start(config).await.expect("gateway starts");
    let key = gateway
        .embedded_agent_key("default")
        .await
        .expect("agent key");
    let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls: None,
    }));
    let admin = ApiClient::new(
        &format!("http://{}", gateway.api_addr),
        Some("bench-admin-token".into()),
    )
    .expect("client");
    for (name, redact) in [("masked", true), ("plain", false)] {
        let body = json!({
            "name": name,
            "type": "database",
            "subtype": "postgres",
            "agent_id": "default",
            "secret": {
                "envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                "envvar:USER": b64("postgres"), "envvar:PASS": b64("unused-with-trust"),
                "envvar:DB": b64("postgres"),
            },
            "redact_enabled": redact,
            "redact_types": ["EMAIL_ADDRESS"],
        });
        let response = admin
            .json(Method::POST, "/api/connections", &body)
            .await
            .expect("create");
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        wait_online(&admin, name).await;
    }
    // A plugin-level configuration, so the masked connection's policy has
    // every part the session read assembles (a gateway that does not read
    // the plugin stores it and masks from redact_types).
    let configured = admin
        .json(
            Method::PUT,
            "/api/plugins/dlp",
            &json!({
                "config": {"transform": {"type": "mask", "keep_last": 4},
                           "columns": [{"columns": ["*.ssn"]}]},
                "connections": [{"id": "masked", "config": ["EMAIL_ADDRESS"]}],
            }),
        )
        .await
        .expect("dlp");
    assert_eq!(configured.status, StatusCode::OK, "{:?}", configured.body);
    println!("{backend}:");
    time_calls(&admin, "masked").await;
    time_calls(&admin, "plain").await;
    time_queries(&gateway).await;
    agent.abort();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    support::on_each_store(load);
}
