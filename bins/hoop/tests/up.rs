//! `hoop up` as a newcomer runs it: a fresh data directory, the example
//! configuration, curl-like API calls with the printed token, the real
//! PostgreSQL on 127.0.0.1:5432 as the reachable database.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

mod common;

use common::b64;

struct Up {
    child: Child,
    api: String,
    token: Option<String>,
    banner: String,
}

fn example_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hoop.toml")
}

async fn start(data_dir: &Path) -> Up {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoop"))
        .args([
            "up",
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
        .arg(data_dir)
        .arg("--config")
        .arg(example_config())
        .env("RUST_LOG", "debug")
        .env_remove("HOOP_ADMIN_TOKEN")
        .env_remove("HOOP_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let mut api = None;
    let mut token = None;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(Some(line)) = tokio::time::timeout_at(deadline.into(), lines.next_line())
        .await
        .expect("hoop up printed no banner in 30 s")
    {
        banner.push_str(&line);
        banner.push('\n');
        if let Some(url) = line.trim().strip_prefix("API:") {
            api = Some(url.trim().to_owned());
        }
        if let Some(value) = line.trim().strip_prefix("admin token:") {
            token = Some(value.trim().to_owned());
        }
        if line.contains("client listeners") {
            break;
        }
    }
    // Keep draining stdout so the process never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Up {
        child,
        api: api.unwrap_or_else(|| panic!("no API line in:\n{banner}")),
        token,
        banner,
    }
}

impl Up {
    /// Stops the process and returns everything it logged.
    async fn stop(mut self) -> String {
        let mut stderr = self.child.stderr.take().unwrap();
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        let mut logs = String::new();
        stderr.read_to_string(&mut logs).await.unwrap();
        format!("{}{logs}", self.banner)
    }
}

async fn wait_status(client: &ApiClient, name: &str, want: &str) {
    let started = Instant::now();
    loop {
        let response = client
            .get(&format!("/api/connections/{name}"))
            .await
            .unwrap();
        if response.body["status"] == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{name} is {} after 10 s, want {want}",
            response.body["status"]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn postgres(name: &str, host: &str, password: &str) -> Value {
    json!({
        "name": name,
        "type": "database",
        "subtype": "postgres",
        "agent_id": "default",
        "secret": {
            "envvar:HOST": b64(host),
            "envvar:PORT": b64("5432"),
            "envvar:USER": b64("postgres"),
            "envvar:PASS": b64(password),
        },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newcomer_quick_start_and_restart() {
    let data_dir = std::env::temp_dir().join(format!("hoop-up-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    const PASSWORD: &str = "E2e-Secret-Value-42";

    let up = start(&data_dir).await;
    let token = up
        .token
        .clone()
        .expect("first start prints the admin token");
    let client = ApiClient::new(&up.api, Some(token.clone())).unwrap();
    wait_status(&client, "local-postgres", "online").await;

    let created = client
        .json(
            Method::POST,
            "/api/connections",
            &postgres("mine", "127.0.0.1", PASSWORD),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let documented = client
        .json(
            Method::POST,
            "/api/connections",
            &postgres("docs", "mydb.example.com", PASSWORD),
        )
        .await
        .unwrap();
    assert_eq!(
        documented.status,
        StatusCode::CREATED,
        "{:?}",
        documented.body
    );
    wait_status(&client, "mine", "online").await;
    let list = client.get("/api/connections").await.unwrap().body;
    let status = |name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("mine"), Some(json!("online")));
    assert_eq!(status("docs"), Some(json!("offline")));

    // The CLI: `hoop login` saves URL and token; later commands use them.
    let home = data_dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let hoop = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_hoop"))
            .args(args)
            .env("HOME", &home)
            .env_remove("HOOP_API_URL")
            .env_remove("HOOP_TOKEN")
            .output()
            .unwrap()
    };
    let refused = hoop(&["login", "--api-url", &up.api, "--token", "wrong"]);
    assert!(!refused.status.success());
    let login = hoop(&["login", "--api-url", &up.api, "--token", &token]);
    assert!(login.status.success(), "{login:?}");
    let listed = hoop(&["connections", "list"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed = String::from_utf8(listed.stdout).unwrap();
    // A table: the connection's row names it and reads online.
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("local-postgres ") && l.contains(" online ")),
        "{listed}"
    );
    assert!(!listed.contains(PASSWORD));
    std::fs::remove_dir_all(&home).unwrap();

    let logs = up.stop().await;

    // No secret in plain text (nor base64) in the logs or the data directory.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&data_dir).unwrap() {
        let entry = entry.unwrap();
        // Files only: the handoff socket (left by the kill) holds nothing.
        if entry.file_type().unwrap().is_file() {
            stored.extend(std::fs::read(entry.path()).unwrap());
        }
    }
    for needle in [
        PASSWORD.to_owned(),
        b64(PASSWORD),
        "unused-with-trust-auth".to_owned(),
        token.clone(),
    ] {
        assert!(
            !logs.contains(&needle) || needle == token,
            "{needle} in logs"
        );
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} stored"
        );
    }
    assert!(
        logs.contains("DEBUG") || logs.contains("INFO"),
        "no logs captured"
    );

    // Restart: no new token, nothing lost, the old token still works.
    let up = start(&data_dir).await;
    assert_eq!(up.token, None, "{}", up.banner);
    let client = ApiClient::new(&up.api, Some(token)).unwrap();
    let list = client.get("/api/connections").await.unwrap().body;
    assert_eq!(list.as_array().unwrap().len(), 3, "{list}");
    wait_status(&client, "mine", "online").await;
    up.stop().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}
