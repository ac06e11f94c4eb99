//! `hoop connect` and `hoop exec` as a person runs them: the CLI binary
//! against a gateway with its embedded agent, psql and the mariadb CLI on
//! the local port, the real PostgreSQL and MariaDB behind.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

struct Setup {
    _gateway: Gateway,
    admin: ApiClient,
    token: String,
    api: String,
    agent: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
}

impl Setup {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("hoop-connect-test-{}", std::process::id()));
        let mut config = GatewayConfig::new(&dir);
        config.api_listen = "127.0.0.1:0".into();
        config.agent_listen = "127.0.0.1:0".into();
        let gateway = Gateway::start(config).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let api = format!("http://{}", gateway.api_addr);
        let admin = ApiClient::new(&api, Some(token.clone())).unwrap();
        let key = gateway.embedded_agent_key("default").await.unwrap();
        let agent = tokio::spawn(hoop_agent::run(hoop_agent::AgentConfig { key, tls: None }));
        Self {
            _gateway: gateway,
            admin,
            token,
            api,
            agent,
            dir,
        }
    }

    async fn connection(&self, name: &str, subtype: &str, secret: serde_json::Value) {
        let response = self
            .admin
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
        while self
            .admin
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

    fn hoop(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hoop"));
        command
            .env("HOOP_API_URL", &self.api)
            .env("HOOP_TOKEN", &self.token)
            .env("HOME", &self.dir)
            .kill_on_drop(true);
        command
    }

    /// Starts `hoop connect NAME` on a free port; returns it and the port.
    async fn connect(&self, name: &str) -> (Child, u16) {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let mut child = self
            .hoop()
            .args(["connect", name, "-p", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
                .await
                .expect("hoop connect printed nothing")
                .unwrap()
                .expect("hoop connect exited");
            if line.contains("no password needed") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        (child, port)
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_mariadb_and_exec_through_the_cli() {
    let setup = Setup::start().await;
    setup
        .connection(
            "pg",
            "postgres",
            json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                   "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                   "envvar:DB": b64("postgres")}),
        )
        .await;
    let mysql_user = format!("hoop_connect_{}", std::process::id());
    let created = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "-e"])
        .arg(format!(
            "DROP USER IF EXISTS '{mysql_user}'@'%'; CREATE USER '{mysql_user}'@'%' IDENTIFIED BY 'pw-{mysql_user}';"
        ))
        .output()
        .await
        .unwrap();
    assert!(created.status.success(), "{}", text(&created.stderr));
    setup
        .connection(
            "maria",
            "mysql",
            json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("3306"),
                   "envvar:USER": b64(&mysql_user), "envvar:PASS": b64(&format!("pw-{mysql_user}"))}),
        )
        .await;

    let (_pg, pg_port) = setup.connect("pg").await;
    let psql = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={pg_port} user=noop dbname=postgres"
        ))
        .args(["-X", "-At", "-c", "SELECT 40 + 2"])
        .output()
        .await
        .unwrap();
    assert!(psql.status.success(), "{}", text(&psql.stderr));
    assert_eq!(text(&psql.stdout), "42\n");

    let (_maria, maria_port) = setup.connect("maria").await;
    let mariadb = Command::new("mariadb")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &maria_port.to_string(),
            "-u",
            "noop",
        ])
        .args([
            "--skip-ssl",
            "-N",
            "-B",
            "-e",
            "SELECT CURRENT_USER(), 6 * 7",
        ])
        .output()
        .await
        .unwrap();
    assert!(mariadb.status.success(), "{}", text(&mariadb.stderr));
    assert_eq!(text(&mariadb.stdout), format!("{mysql_user}@%\t42\n"));

    let exec = setup
        .hoop()
        .args([
            "exec",
            "pg",
            "-i",
            "SELECT 'a', 1 UNION ALL SELECT 'b', NULL",
        ])
        .output()
        .await
        .unwrap();
    assert!(exec.status.success(), "{}", text(&exec.stderr));
    assert_eq!(text(&exec.stdout), "a\t1\nb\t\n");
    let failing = setup
        .hoop()
        .args(["exec", "pg", "-i", "SELECT * FROM no_such_table"])
        .output()
        .await
        .unwrap();
    assert_eq!(failing.status.code(), Some(1));
    assert!(
        text(&failing.stderr).contains("no_such_table"),
        "{}",
        text(&failing.stderr)
    );

    let sessions = setup
        .hoop()
        .args(["sessions", "list", "--connection", "maria"])
        .output()
        .await
        .unwrap();
    assert!(sessions.status.success(), "{}", text(&sessions.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&sessions.stdout).unwrap();
    assert_eq!(listed[0]["access_mode"], "connect");
    assert_eq!(listed[0]["protocol"], "mysql");

    setup.agent.abort();
    let _ = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "-e"])
        .arg(format!("DROP USER IF EXISTS '{mysql_user}'@'%'"))
        .output()
        .await;
    let _ = std::fs::remove_dir_all(&setup.dir);
}
