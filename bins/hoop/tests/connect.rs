//! `hoop connect` and `hoop exec` as a person runs them: the CLI binary
//! against a gateway with its embedded agent, psql and the mariadb CLI on
//! the local port, the real PostgreSQL and MariaDB behind.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use serde_json::json;
use tokio::process::Command;

mod common;

use common::{Connect, b64, create_online, start_connect, text};

/// `hoop connect` to a gateway on this host hands it each client's socket;
/// with `--tunnel` it relays each client over an HTTP upgrade, as to a
/// gateway elsewhere. Both must serve the same.
const MODES: [&[&str]; 2] = [&[], &["--tunnel"]];

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
        let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
            key,
            tls: None,
        }));
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

    /// A connection `name` to the machine's PostgreSQL, database postgres.
    async fn postgres(&self, name: &str) {
        let secret = json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                            "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                            "envvar:DB": b64("postgres")});
        self.connection(name, "postgres", secret).await;
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

    /// Starts `hoop connect NAME FLAGS..` on a free port.
    async fn connect(&self, name: &str, flags: &[&str]) -> Connect {
        start_connect(self.hoop(), name, flags).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_mariadb_and_exec_through_the_cli() {
    let setup = Setup::start().await;
    setup.postgres("pg").await;
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

    for flags in MODES {
        let pg = setup.connect("pg", flags).await;
        assert_eq!(
            pg.banner.contains("the gateway is on this host"),
            flags.is_empty(),
            "{}",
            pg.banner
        );
        let psql = Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user=noop dbname=postgres",
                pg.port
            ))
            .args(["-X", "-At", "-c", "SELECT 40 + 2"])
            .output()
            .await
            .unwrap();
        assert!(psql.status.success(), "{flags:?}: {}", text(&psql.stderr));
        assert_eq!(text(&psql.stdout), "42\n");
        psql_cancels_through(pg.port).await;

        let maria = setup.connect("maria", flags).await;
        let mariadb = Command::new("mariadb")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                &maria.port.to_string(),
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
        assert!(
            mariadb.status.success(),
            "{flags:?}: {}",
            text(&mariadb.stderr)
        );
        assert_eq!(text(&mariadb.stdout), format!("{mysql_user}@%\t42\n"));
    }

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
    // A header row (psql's names for unnamed columns), then the rows.
    assert_eq!(text(&exec.stdout), "?column?\t?column?\na\t1\nb\t\n");
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
        .args(["sessions", "list", "--connection", "maria", "-o", "json"])
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

/// The handoff is real: a client handed to the gateway is the gateway's
/// own, so its session goes on after `hoop connect` stops; a tunnelled
/// client's session ends with `hoop connect`, its relay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_over_session_outlives_hoop_connect_and_a_tunnelled_one_does_not() {
    let setup = Setup::start().await;
    setup.postgres("pg").await;
    for flags in MODES {
        let mut connect = setup.connect("pg", flags).await;
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=noop dbname=postgres",
                connect.port
            ),
            tokio_postgres::NoTls,
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        let one: i32 = client.query_one("SELECT 1", &[]).await.unwrap().get(0);
        assert_eq!(one, 1);
        connect.child.kill().await.unwrap();
        let after =
            tokio::time::timeout(Duration::from_secs(20), client.query_one("SELECT 2", &[]))
                .await
                .expect("the session hung after hoop connect stopped");
        if flags.is_empty() {
            let two: i32 = after.unwrap().get(0);
            assert_eq!(two, 2);
        } else {
            assert!(after.is_err(), "a tunnelled session survived its relay");
        }
    }
    setup.agent.abort();
    let _ = std::fs::remove_dir_all(&setup.dir);
}

/// psql's Ctrl-C during a query on the local port: its cancel request
/// reaches the gateway as a client of its own (handed over or tunnelled),
/// and the driver that handed out the key forwards it to the database.
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
    let connect = setup.connect("pgb", &[]).await;
    let tunnel = setup.connect("pgb", &["--tunnel"]).await;
    for (port, user, password) in [
        (native.as_str(), "pgb", setup.token.as_str()),
        (&connect.port.to_string(), "noop", ""),
        (&tunnel.port.to_string(), "noop", ""),
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
    let connect = setup.connect("sysb", &[]).await;
    let tunnel = setup.connect("sysb", &["--tunnel"]).await;
    let sysbench = |port: u16, phase: &'static str| {
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
    run(&mut sysbench(connect.port, "prepare")).await;
    for port in [connect.port, tunnel.port] {
        let out = run(&mut sysbench(port, "run")).await;
        assert!(
            out.contains("total number of events:              400"),
            "{out}"
        );
    }

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
