//! A real PostgreSQL server (a private cluster on a free port, started and
//! stopped by this test) behind a connection: stopping the database turns
//! the connection offline within 10 seconds, starting it brings it back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::json;

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries under /usr/lib/postgresql")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    versions.sort();
    versions.pop().unwrap().join("bin").join(name)
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Runs a server binary, as the postgres user when we are root (initdb and
/// postgres refuse to run as root).
fn pg(name: &str, args: &[&str]) {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(name));
        c
    } else {
        Command::new(pg_bin(name))
    };
    let output = command.args(args).output().unwrap();
    assert!(output.status.success(), "{name} {args:?}: {output:?}");
}

struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn data(&self) -> String {
        self.dir.join("data").display().to_string()
    }

    fn start(&self) {
        let log = self.dir.join("log").display().to_string();
        pg("pg_ctl", &["-D", &self.data(), "-l", &log, "-w", "start"]);
    }

    fn stop(&self) {
        pg(
            "pg_ctl",
            &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(pg_bin("pg_ctl"))
            .args(["-D", &self.data(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_cluster(dir: &Path) -> Cluster {
    std::fs::create_dir_all(dir).unwrap();
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cluster = Cluster {
        dir: dir.to_owned(),
        port,
    };
    pg(
        "initdb",
        &[
            "-D",
            &cluster.data(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
        ],
    );
    let conf = format!(
        "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
        dir.display()
    );
    let path = dir.join("data").join("postgresql.conf");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&conf);
    std::fs::write(&path, text).unwrap();
    cluster
}

async fn wait_for(client: &ApiClient, path: &str, want: &str) {
    let started = Instant::now();
    loop {
        let body = client.get(path).await.unwrap().body;
        if body["status"] == want {
            return;
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
async fn stopped_database_goes_offline_and_returns() {
    let base = std::env::temp_dir().join(format!("hoop-db-stop-{}", std::process::id()));
    let cluster = new_cluster(&base.join("pg"));
    cluster.start();

    let mut config = GatewayConfig::new(base.join("gateway"));
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    let gateway = Gateway::start(config).await.unwrap();
    let key = gateway.embedded_agent_key("default").await.unwrap();
    let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls: None,
    }));
    let client = ApiClient::new(
        &format!("http://{}", gateway.api_addr),
        gateway.first_admin_token.clone(),
    )
    .unwrap();
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let created = client
        .json(
            Method::POST,
            "/api/connections",
            &json!({
                "name": "db", "type": "database", "subtype": "postgres", "agent_id": "default",
                "secret": {
                    "envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(&cluster.port.to_string()),
                    "envvar:USER": b64("postgres"), "envvar:PASS": b64("unused"),
                },
            }),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    wait_for(&client, "/api/connections/db", "online").await;
    cluster.stop();
    wait_for(&client, "/api/connections/db", "offline").await;
    cluster.start();
    wait_for(&client, "/api/connections/db", "online").await;
    agent.abort();
    drop(gateway);
    drop(cluster);
    let _ = std::fs::remove_dir_all(&base);
}
