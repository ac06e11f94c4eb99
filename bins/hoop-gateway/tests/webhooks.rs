//! Issue 16, item 5: the `webhooks` plugin delivers session and review
//! events, signed as Svix signs them, at least once, through an outbox
//! that survives a restart. The receiver verifies every request with
//! `standardwebhooks` (pip), the reference verifier Svix publishes for
//! its signing scheme; it is down while the events happen and across a
//! gateway restart, then comes up: every event arrives, none is lost.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod common;

use common::b64;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A receiver on `port`: each request verified by `standardwebhooks`;
/// a good one is printed (`id type`) and answered 204, a bad one 401.
const RECEIVER: &str = r#"
import sys, http.server
from standardwebhooks.webhooks import Webhook
hook = Webhook(sys.argv[2])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        try:
            event = hook.verify(body, dict(self.headers))
        except Exception as error:
            print("REFUSED", error, flush=True)
            self.send_response(401); self.end_headers(); return
        print(self.headers["webhook-id"], event["type"], flush=True)
        self.send_response(204); self.end_headers()
    def log_message(self, *args):
        pass
print("READY", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

async fn start(dir: &std::path::Path) -> (Gateway, ApiClient, tokio::task::JoinHandle<()>) {
    let mut config = GatewayConfig::new(dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.admin_token = Some("admin-token-webhooks-test".into());
    let gateway = Gateway::start(config).await.unwrap();
    let admin = ApiClient::new(
        &format!("http://{}", gateway.api_addr),
        Some("admin-token-webhooks-test".into()),
    )
    .unwrap();
    let key = gateway.embedded_agent_key("default").await.unwrap();
    let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls: None,
    }));
    (gateway, admin, agent)
}

async fn online(admin: &ApiClient, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin
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

async fn deliveries(admin: &ApiClient) -> Vec<Value> {
    let listed = admin.get("/api/plugins/webhooks/deliveries").await.unwrap();
    assert_eq!(listed.status, StatusCode::OK, "{:?}", listed.body);
    listed.body.as_array().unwrap().clone()
}

fn receiver(port: u16) -> Child {
    Command::new("python3")
        .args(["-c", RECEIVER, &port.to_string(), SECRET])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_arrives_signed_after_the_receiver_and_the_gateway_come_back() {
    let dir = std::env::temp_dir().join(format!("hoop-webhooks-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (gateway, admin, agent) = start(&dir).await;
    let created = admin
        .json(
            Method::POST,
            "/api/connections",
            &json!({"name": "pg", "type": "database", "subtype": "postgres", "agent_id": "default",
                    "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                               "envvar:USER": b64("postgres"), "envvar:DB": b64("postgres")}}),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    online(&admin, "pg").await;
    let bad = admin
        .json(
            Method::PUT,
            "/api/plugins/webhooks",
            &json!({"config": {"endpoints": [{"url": "http://127.0.0.1:1/", "secret": "not-svix"}]},
                    "connections": [{"id": "pg"}]}),
        )
        .await
        .unwrap();
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        bad.body
    );
    let set = admin
        .json(
            Method::PUT,
            "/api/plugins/webhooks",
            &json!({"config": {"endpoints": [{"url": format!("http://127.0.0.1:{port}/hook"), "secret": SECRET}]},
                    "connections": [{"id": "pg"}]}),
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    // Any user may read a plugin: the secret is not shown.
    assert_eq!(set.body["config"]["endpoints"][0]["secret"], "");

    // A session with the receiver down is not slowed: it answers at once.
    let exec = admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "SELECT 1"}),
        )
        .await
        .unwrap();
    assert_eq!(exec.body["status"], "done", "{:?}", exec.body);
    // A review: created, approved, run (its session too).
    admin
        .json(Method::POST, "/api/users/groups", &json!({"name": "dba"}))
        .await
        .unwrap();
    admin
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": "bo@example.com", "groups": ["dba"]}),
        )
        .await
        .unwrap();
    let bo = admin
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "t", "user_id": "bo@example.com"}),
        )
        .await
        .unwrap()
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let patched = admin
        .json(
            Method::PATCH,
            "/api/connections/pg",
            &json!({"reviewers": ["dba"]}),
        )
        .await
        .unwrap();
    assert_eq!(patched.status, StatusCode::OK);
    let asked = admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "SELECT 2"}),
        )
        .await
        .unwrap();
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{:?}", asked.body);
    let id = asked.body["id"].as_str().unwrap();
    let approved = ApiClient::new(&format!("http://{}", gateway.api_addr), Some(bo))
        .unwrap()
        .json(
            Method::PUT,
            &format!("/api/reviews/{id}"),
            &json!({"status": "APPROVED"}),
        )
        .await
        .unwrap();
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let expected = [
        "session.open",
        "session.close",
        "review.create",
        "review.update",
        "review.update",
        "session.open",
        "session.close",
        "review.update",
    ];
    // Queued, attempted, failing.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = deliveries(&admin).await;
        if listed.len() == expected.len()
            && listed
                .iter()
                .all(|d| !d["attempts"].as_array().unwrap().is_empty())
        {
            assert!(
                listed.iter().all(|d| d["status"] == "pending"),
                "{listed:?}"
            );
            assert!(
                listed[0]["attempts"][0]["error"].as_str().is_some(),
                "{listed:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not attempted: {listed:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The gateway restarts; then the receiver comes up.
    agent.abort();
    drop(gateway);
    let (gateway, admin, agent) = start(&dir).await;
    let mut receiving = receiver(port);
    let mut lines = BufReader::new(receiving.stdout.take().unwrap()).lines();
    let mut received = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.len() < expected.len() {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("only {received:?} arrived"))
            .unwrap()
            .expect("the receiver stopped");
        assert!(!line.starts_with("REFUSED"), "{line}");
        if line != "READY" {
            received.push(line);
        }
    }
    let listed = deliveries(&admin).await;
    let delivered: BTreeSet<String> = listed
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["id"].as_str().unwrap(),
                d["event_type"].as_str().unwrap()
            )
        })
        .collect();
    let arrived: BTreeSet<String> = received.iter().cloned().collect();
    assert_eq!(arrived, delivered);
    let mut kinds: Vec<&str> = listed
        .iter()
        .rev()
        .map(|d| d["event_type"].as_str().unwrap())
        .collect();
    let mut wanted = expected.to_vec();
    kinds.sort_unstable();
    wanted.sort_unstable();
    assert_eq!(kinds, wanted);
    // Recorded as delivered, each with its failed attempts before.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !deliveries(&admin)
        .await
        .iter()
        .all(|d| d["status"] == "delivered")
    {
        assert!(Instant::now() < deadline, "not all recorded as delivered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for delivery in deliveries(&admin).await {
        let attempts = delivery["attempts"].as_array().unwrap();
        assert!(attempts.len() >= 2, "{delivery}");
        assert_eq!(attempts.last().unwrap()["status_code"], 204, "{delivery}");
    }
    agent.abort();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}
