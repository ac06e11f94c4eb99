//! What the CLI's end-to-end tests share: small helpers and starting
//! `hoop connect` the way a person does. Each test binary uses a part of it.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub(crate) fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A running `hoop connect`.
pub(crate) struct Connect {
    /// The process (killed on drop).
    pub(crate) child: Child,
    /// Its local port.
    pub(crate) port: u16,
    /// What it printed before it was ready.
    pub(crate) banner: String,
}

/// Starts `hoop` (configured by the caller: API URL, token, CA) as `hoop
/// connect NAME FLAGS..` on a free port and waits until it says clients
/// may connect.
pub(crate) async fn start_connect(mut hoop: Command, name: &str, flags: &[&str]) -> Connect {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let mut child = hoop
        .args(["connect", name, "-p", &port.to_string()])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut banner = String::new();
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("hoop connect printed nothing")
            .unwrap()
            .expect("hoop connect exited");
        banner.push_str(&line);
        banner.push('\n');
        if line.contains("no password needed") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Connect {
        child,
        port,
        banner,
    }
}

/// Creates a database connection of `subtype` served by the embedded agent
/// ("default") and waits (bounded) until it reads `online`.
pub(crate) async fn create_online(admin: &ApiClient, name: &str, subtype: &str, secret: Value) {
    let response = admin
        .json(
            Method::POST,
            "/api/connections",
            &json!({"name": name, "type": "database", "subtype": subtype,
                    "agent_id": "default", "secret": secret}),
        )
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
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
