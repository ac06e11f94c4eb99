//! Issue 16, item 6: the `slack` plugin posts a new review with Approve
//! and Reject buttons, and a click approves it end to end.
//!
//! No real Slack is reachable from these machines: the gateway talks to a
//! local Slack-shaped server (`SLACK_API_URL`) that checks what Slack's
//! Web API checks (the bot token, the method's arguments) and answers in
//! its shapes. The clicks are signed as Slack signs them (v0); a bad
//! signature or an old timestamp is refused with 401 and changes nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};

mod common;

use common::b64;

const BOT_TOKEN: &str = "xoxb-test-token";
const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// What the Slack-shaped server was asked: (method, body).
type Calls = Arc<Mutex<Vec<(String, Value)>>>;

async fn slack_method(
    State(calls): State<Calls>,
    axum::extract::Path(method): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (AxumStatus, String) {
    // As Slack: a wrong token is `invalid_auth`, with 200.
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {BOT_TOKEN}"))
    {
        return (
            AxumStatus::OK,
            json!({"ok": false, "error": "invalid_auth"}).to_string(),
        );
    }
    let answer = match method.as_str() {
        "chat.postMessage" | "chat.update" => {
            let Ok(body) = serde_json::from_slice::<Value>(&body) else {
                return (
                    AxumStatus::OK,
                    json!({"ok": false, "error": "invalid_json"}).to_string(),
                );
            };
            if body["channel"].as_str().is_none() || body["text"].as_str().is_none() {
                return (
                    AxumStatus::OK,
                    json!({"ok": false, "error": "channel_not_found"}).to_string(),
                );
            }
            let ts = body["ts"]
                .as_str()
                .unwrap_or("1700000000.000100")
                .to_owned();
            let channel = body["channel"].clone();
            calls.lock().unwrap().push((method.clone(), body));
            json!({"ok": true, "channel": channel, "ts": ts})
        }
        // users.info takes form arguments.
        "users.info" => {
            let form = String::from_utf8_lossy(&body).into_owned();
            calls.lock().unwrap().push((method.clone(), json!(form)));
            match form.as_str() {
                "user=U0BO" => {
                    json!({"ok": true, "user": {"id": "U0BO", "profile": {"email": "bo@example.com"}}})
                }
                _ => json!({"ok": false, "error": "user_not_found"}),
            }
        }
        _ => json!({"ok": false, "error": "unknown_method"}),
    };
    (AxumStatus::OK, answer.to_string())
}

fn sign(timestamp: i64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SIGNING_SECRET.as_bytes());
    let tag = ring::hmac::sign(&key, format!("v0:{timestamp}:{body}").as_bytes());
    format!(
        "v0={}",
        tag.as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

fn form(value: &Value) -> String {
    let mut out = String::from("payload=");
    for byte in value.to_string().bytes() {
        if byte.is_ascii_alphanumeric() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Sends a click as Slack would, with `signature` and `timestamp`.
async fn click(api: &str, body: &str, timestamp: i64, signature: &str) -> (StatusCode, Value) {
    let response = hoop_gateway::client::post(
        &format!("{api}/api/plugins/slack/interactions"),
        "application/x-www-form-urlencoded",
        &[
            ("x-slack-request-timestamp", timestamp.to_string()),
            ("x-slack-signature", signature.to_owned()),
        ],
        bytes::Bytes::from(body.to_owned()),
    )
    .await
    .unwrap();
    (response.status, response.body)
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_in_slack_approves_a_review_and_a_forged_one_changes_nothing() {
    let calls: Calls = Arc::default();
    let slack = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slack_url = format!("http://{}/api", slack.local_addr().unwrap());
    let server = Router::new()
        .route("/api/{method}", post(slack_method))
        .with_state(Arc::clone(&calls));
    tokio::spawn(async move { axum::serve(slack, server).await });

    let dir = std::env::temp_dir().join(format!("hoop-slack-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut config = GatewayConfig::new(&dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.slack_api_url = slack_url;
    let gateway = Gateway::start(config).await.unwrap();
    let api = format!("http://{}", gateway.api_addr);
    let admin = ApiClient::new(&api, gateway.first_admin_token.clone()).unwrap();
    let key = gateway.embedded_agent_key("default").await.unwrap();
    let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls: None,
    }));
    let created = admin
        .json(
            Method::POST,
            "/api/connections",
            &json!({"name": "pg", "type": "database", "subtype": "postgres", "agent_id": "default",
                    "reviewers": ["dba"],
                    "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                               "envvar:USER": b64("postgres"), "envvar:DB": b64("postgres")}}),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    admin
        .json(Method::POST, "/api/users/groups", &json!({"name": "dba"}))
        .await
        .unwrap();
    for (email, groups) in [
        ("bo@example.com", json!(["dba"])),
        ("ana@example.com", json!([])),
    ] {
        let user = admin
            .json(
                Method::POST,
                "/api/users",
                &json!({"email": email, "groups": groups}),
            )
            .await
            .unwrap();
        assert_eq!(user.status, StatusCode::CREATED);
    }
    let ana = admin
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "t", "user_id": "ana@example.com"}),
        )
        .await
        .unwrap()
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let set = admin
        .json(
            Method::PUT,
            "/api/plugins/slack",
            &json!({"config": {"slack_bot_token": BOT_TOKEN, "slack_signing_secret": SIGNING_SECRET},
                    "connections": [{"id": "pg", "config": ["C0REVIEWS"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["config"]["slack_bot_token"], "");
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin.get("/api/connections/pg").await.unwrap().body["status"] != "online" {
        assert!(Instant::now() < deadline, "pg never came online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Ana asks; the review is posted to the channel with its buttons.
    let asked = ApiClient::new(&api, Some(ana))
        .unwrap()
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "SELECT 42"}),
        )
        .await
        .unwrap();
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{:?}", asked.body);
    let id = asked.body["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let posted = loop {
        if let Some((_, body)) = calls
            .lock()
            .unwrap()
            .iter()
            .find(|(method, _)| method == "chat.postMessage")
        {
            break body.clone();
        }
        assert!(Instant::now() < deadline, "nothing posted to Slack");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(posted["channel"], "C0REVIEWS");
    let buttons = &posted["blocks"][1]["elements"];
    assert_eq!(buttons[0]["action_id"], "approve");
    assert_eq!(buttons[0]["value"], id.as_str());
    assert_eq!(buttons[1]["action_id"], "reject");

    // Bo clicks Approve. Forged and stale clicks first: refused, nothing changes.
    let payload = json!({"type": "block_actions", "user": {"id": "U0BO"},
                         "actions": [{"action_id": "approve", "value": id}]});
    let body = form(&payload);
    let now = now();
    let (status, _) = click(&api, &body, now, &sign(now, "something else")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stale = now - 6 * 60;
    let (status, _) = click(&api, &body, stale, &sign(stale, &body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = click(&api, &body, now, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        admin.get(&format!("/api/reviews/{id}")).await.unwrap().body["status"],
        "PENDING"
    );

    let (status, answer) = click(&api, &body, now, &sign(now, &body)).await;
    assert_eq!(status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer["text"], format!("review {id} is APPROVED"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let review = loop {
        let review = admin.get(&format!("/api/reviews/{id}")).await.unwrap().body;
        if review["status"] == "EXECUTED" {
            break review;
        }
        assert!(Instant::now() < deadline, "never executed: {review}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        review["review_groups_data"][0]["reviewed_by"],
        "bo@example.com"
    );
    assert!(
        review["output"].as_str().unwrap().contains("42"),
        "{review}"
    );
    // The message shows the outcome.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !calls.lock().unwrap().iter().any(|(method, body)| {
        method == "chat.update"
            && body["ts"] == "1700000000.000100"
            && body["text"]
                .as_str()
                .is_some_and(|t| t.contains("*EXECUTED* by bo@example.com"))
    }) {
        assert!(
            Instant::now() < deadline,
            "the message was not updated: {calls:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A Slack user with no hoop account acts on nothing.
    let payload = json!({"type": "block_actions", "user": {"id": "U0NOBODY"},
                         "actions": [{"action_id": "reject", "value": id}]});
    let body = form(&payload);
    let (status, answer) = click(&api, &body, now, &sign(now, &body)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        answer["text"].as_str().unwrap().contains("user_not_found"),
        "{answer:?}"
    );
    agent.abort();
    drop(gateway);
    let _ = std::fs::remove_dir_all(&dir);
}
