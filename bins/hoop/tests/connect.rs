//! `hoop connect` and `hoop exec` as a person runs them: the CLI binary
//! against a gateway with its embedded agent, psql and the mariadb CLI on
//! the local port, the real PostgreSQL and MariaDB behind.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use serde_json::json;
use tokio::process::{Child, Command};

mod common;

use common::{b64, create_online, start_connect, text};

struct Setup {
    gateway: Gateway,
    admin: ApiClient,
    token: String,
    api: String,
    agent: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
}

impl Setup {
    async fn start() -> Self {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hoop-connect-test-{}-{n}", std::process::id()));
        let mut config = GatewayConfig::new(&dir);
        config.api_listen = "127.0.0.1:0".into();
        config.agent_listen = "127.0.0.1:0".into();
        config.postgres_listen = Some("127.0.0.1:0".into());
        let gateway = Gateway::start(config).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let api = format!("http://{}", gateway.api_addr);
        let admin = ApiClient::new(&api, Some(token.clone())).unwrap();
        let key = gateway.embedded_agent_key("default").await.unwrap();
        let agent = tokio::spawn(hoop_agent::run(hoop_agent::AgentConfig { key, tls: None }));
        Self {
            gateway,
            admin,
            token,
            api,
            agent,
            dir,
        }
    }

    async fn connection(&self, name: &str, subtype: &str, secret: serde_json::Value) {
        create_online(&self.admin, name, subtype, secret).await;
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
        start_connect(self.hoop(), name).await
    }
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
    psql_cancels_through(pg_port).await;

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

/// psql's Ctrl-C during a query on the local port: its cancel request
/// takes a tunnel of its own to the gateway, and the driver that handed
/// out the key forwards it to the database.
async fn psql_cancels_through(port: u16) {
    let marker = format!("SELECT pg_sleep(60) /* cancel {} */", std::process::id());
    let sleeper = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user=noop dbname=postgres"
        ))
        .args(["-X", "-At", "-c", &marker])
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let active = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE query = '{marker}' AND state = 'active'"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while run(Command::new("psql").args([
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-X",
        "-At",
        "-c",
        &active,
    ]))
    .await
    .trim()
        != "1"
    {
        assert!(Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid = sleeper.id().unwrap().to_string();
    run(Command::new("kill").args(["-INT", &pid])).await;
    let output = tokio::time::timeout(Duration::from_secs(20), sleeper.wait_with_output())
        .await
        .expect("the query was not cancelled")
        .unwrap();
    assert!(
        text(&output.stderr).contains("canceling statement due to user request"),
        "{}",
        text(&output.stderr)
    );
}

async fn run(command: &mut Command) -> String {
    let output = command.output().await.unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_and_sysbench_run_through_each_path() {
    let setup = Setup::start().await;
    let suffix = std::process::id();
    let database = format!("hoop_bench_paths_{suffix}");
    run(Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
        .arg(format!("CREATE DATABASE {database}")))
    .await;
    run(Command::new("pgbench").args([
        "-h",
        "127.0.0.1",
        "-U",
        "postgres",
        "-i",
        "-q",
        "-s",
        "1",
        &database,
    ]))
    .await;
    setup
        .connection(
            "pgb",
            "postgres",
            json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                   "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                   "envvar:DB": b64(&database)}),
        )
        .await;
    let native = setup.gateway.postgres_addr.unwrap().port().to_string();
    let (_connect, local) = setup.connect("pgb").await;
    for (port, user, password) in [
        (native.as_str(), "pgb", setup.token.as_str()),
        (&local.to_string(), "noop", ""),
    ] {
        let out = run(Command::new("pgbench")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                port,
                "-U",
                user,
                "-S",
                "-n",
                "-c",
                "2",
                "-t",
                "200",
                &database,
            ])
            .env("PGPASSWORD", password))
        .await;
        assert!(
            out.contains("number of transactions actually processed: 400/400"),
            "{out}"
        );
    }

    let my_user = format!("hoop_sysb_{suffix}");
    let my_db = format!("hoop_sysb_{suffix}");
    run(Command::new("mariadb").args(["-h", "127.0.0.1", "-u", "root", "-e"]).arg(format!(
        "DROP DATABASE IF EXISTS {my_db}; CREATE DATABASE {my_db}; DROP USER IF EXISTS '{my_user}'@'%'; \
         CREATE USER '{my_user}'@'%' IDENTIFIED BY 'pw'; GRANT ALL ON {my_db}.* TO '{my_user}'@'%';"
    )))
    .await;
    setup
        .connection(
            "sysb",
            "mysql",
            json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("3306"),
                   "envvar:USER": b64(&my_user), "envvar:PASS": b64("pw"), "envvar:DB": b64(&my_db)}),
        )
        .await;
    let (_sysb, port) = setup.connect("sysb").await;
    let sysbench = |phase: &'static str| {
        let mut command = Command::new("sysbench");
        command.args([
            "oltp_point_select",
            "--mysql-host=127.0.0.1",
            &format!("--mysql-port={port}"),
            "--mysql-user=noop",
            &format!("--mysql-db={my_db}"),
            "--mysql-ssl=off",
            "--tables=1",
            "--table-size=100",
            "--threads=2",
            "--events=400",
            "--time=0",
            phase,
        ]);
        command
    };
    run(&mut sysbench("prepare")).await;
    let out = run(&mut sysbench("run")).await;
    assert!(
        out.contains("total number of events:              400"),
        "{out}"
    );

    setup.agent.abort();
    let _ = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-c"])
        .arg(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .output()
        .await;
    let _ = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", "root", "-e"])
        .arg(format!(
            "DROP DATABASE IF EXISTS {my_db}; DROP USER IF EXISTS '{my_user}'@'%'"
        ))
        .output()
        .await;
    let _ = std::fs::remove_dir_all(&setup.dir);
}
