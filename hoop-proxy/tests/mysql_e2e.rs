//! End-to-end tests of the MySQL driver against the real MariaDB on
//! 127.0.0.1:3306 (root without a password): hoop in this process on a
//! loopback port, real clients (the mariadb CLI, PyMySQL,
//! mysql-connector-python, sysbench) as separate processes over real
//! sockets. Every test makes its own database and upstream users, with names
//! unique to its process, and drops them when it ends.
//!
//! Run alone with `cargo nextest run -p hoop-proxy --test mysql_e2e`. The
//! tests are named `e2e_mysql_*` so nextest runs them one at a time
//! (`.config/nextest.toml`, group `mysql-server`).

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hoop_proxy::auth::SharedSecret;
use hoop_proxy::mysql::MysqlProxy;
use hoop_proxy::pipeline::{
    ClientAction, Interest, Pipeline, Refusal, ServerAction, SessionHook, SessionInfo,
};
use hoop_proxy::{DatabaseTarget, Secret, SslMode};
use hoop_wire::event::Event;
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

const TOKEN: &str = "person-access-token-5678";

/// Runs SQL as MariaDB's root, directly (not through hoop).
fn root_sql(sql: &str) -> String {
    let output = std::process::Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "-e", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A database and an upstream user of the test's own, dropped at the end.
struct Fixture {
    db: String,
    user: String,
    password: String,
}

impl Fixture {
    /// A user identified with `plugin_clause` (e.g. `VIA
    /// mysql_native_password USING PASSWORD('pw')`) and a database of the
    /// same name holding a small table `t`.
    fn new(plugin: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        drop_leftovers();
        let name = format!(
            "hoopmy_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let password = format!("pw-{name}-x9");
        let identified = match plugin {
            "ed25519" => {
                if !root_sql("SELECT PLUGIN_NAME FROM information_schema.PLUGINS WHERE PLUGIN_NAME='ed25519'")
                    .contains("ed25519")
                {
                    root_sql("INSTALL SONAME 'auth_ed25519'");
                }
                format!("VIA ed25519 USING PASSWORD('{password}')")
            }
            _ => format!("VIA mysql_native_password USING PASSWORD('{password}')"),
        };
        root_sql(&format!(
            "CREATE DATABASE {name};
             CREATE USER '{name}'@'%' IDENTIFIED {identified};
             GRANT ALL ON *.* TO '{name}'@'%';
             CREATE TABLE {name}.t (id INT PRIMARY KEY, label VARCHAR(40));
             INSERT INTO {name}.t VALUES (1, 'one'), (2, 'secret'), (3, NULL);"
        ));
        Self {
            db: name.clone(),
            user: name,
            password,
        }
    }

    fn target(&self) -> DatabaseTarget {
        DatabaseTarget {
            host: "127.0.0.1".to_owned(),
            port: 3306,
            user: self.user.clone(),
            password: Some(Secret::new(self.password.clone())),
            database: Some(self.db.clone()),
            ssl_mode: SslMode::Disable,
        }
    }

    /// Server threads of this fixture's user.
    fn threads(&self) -> usize {
        root_sql(&format!(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = '{}'",
            self.user
        ))
        .trim()
        .parse()
        .unwrap()
    }
}

/// Drops the databases and users of test processes that died before their
/// fixtures' `Drop` ran (nextest ends a hung test with a signal).
fn drop_leftovers() {
    let names = root_sql(
        "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'hoopmy\\_%'
         UNION SELECT User FROM mysql.user WHERE User LIKE 'hoopmy\\_%'",
    );
    for name in names.lines() {
        let pid = name.split('_').nth(1).unwrap_or_default();
        if !pid.is_empty() && !std::path::Path::new("/proc").join(pid).exists() {
            root_sql(&format!(
                "DROP DATABASE IF EXISTS {name}; DROP USER IF EXISTS '{name}'@'%';"
            ));
        }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::process::Command::new("mariadb")
            .args(["-uroot", "-h127.0.0.1", "-P3306", "-e"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%';",
                self.db
            ))
            .output();
    }
}

async fn spawn(proxy: MysqlProxy) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { proxy.serve(listener).await });
    addr
}

/// A plain TCP relay in front of `to`, counting the bytes it passes back
/// towards the clients: what a client of hoop receives.
async fn counting_relay(to: SocketAddr) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(to).await.unwrap();
                if let Ok((_, to_client)) =
                    tokio::io::copy_bidirectional(&mut client, &mut server).await
                {
                    counter.fetch_add(to_client, Ordering::Relaxed);
                }
            });
        }
    });
    (addr, received)
}

/// The mariadb CLI through hoop as person `me` with `password`.
fn mariadb(proxy: SocketAddr, password: &str) -> Command {
    let mut command = Command::new("mariadb");
    command
        .arg("-h127.0.0.1")
        .arg(format!("-P{}", proxy.port()))
        .arg("-ume")
        .arg(format!("-p{password}"))
        .args(["-N", "-B"])
        .kill_on_drop(true);
    command
}

async fn output(command: &mut Command) -> (bool, String, String) {
    let output = command.output().await.unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `command` with `script` on its standard input.
async fn with_stdin(command: &mut Command, script: &str) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, script.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn output_ok(command: &mut Command) -> String {
    let (ok, stdout, stderr) = output(command).await;
    assert!(ok, "{command:?} failed: {stdout}{stderr}");
    stdout
}

/// Runs a Python script with `HOOP_PORT` (hoop) and `HOOP_TOKEN` set.
async fn python(proxy: SocketAddr, script: &str) -> String {
    output_ok(
        Command::new("python3")
            .arg("-c")
            .arg(script)
            .env("HOOP_PORT", proxy.port().to_string())
            .env("HOOP_TOKEN", TOKEN)
            .kill_on_drop(true),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_cli_runs_commands_and_scripts_as_the_connection_user() {
    let fixture = Fixture::new("native");
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .authenticator(Arc::new(SharedSecret::new(Secret::new(TOKEN))))
            .build()
            .unwrap(),
    )
    .await;
    let out = output_ok(mariadb(proxy, TOKEN).args([
        "-e",
        "SELECT CURRENT_USER(), DATABASE(), 6 * 7; SELECT label FROM t ORDER BY id",
    ]))
    .await;
    assert_eq!(
        out,
        format!("{0}@%\t{0}\t42\none\nsecret\nNULL\n", fixture.user)
    );

    let (ok, stdout, stderr) = with_stdin(
        &mut mariadb(proxy, TOKEN),
        "CREATE TABLE s (v INT);\nINSERT INTO s VALUES (1), (2), (3);\n\
         SELECT SUM(v) FROM s;\nDROP TABLE s;\n",
    )
    .await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "6\n");

    // A wrong token is refused without a word about the real credentials.
    let (ok, stdout, stderr) =
        output(mariadb(proxy, "not-the-token").args(["-e", "SELECT 1"])).await;
    assert!(!ok, "{stdout}");
    assert!(
        stderr.contains("1045") && stderr.contains("access token refused"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(&fixture.password) && !stderr.contains(&fixture.user),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_ed25519_upstream_user_logs_in() {
    let fixture = Fixture::new("ed25519");
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let out = output_ok(mariadb(proxy, "anything").args([
        "-e",
        "SELECT CURRENT_USER(), (SELECT plugin FROM mysql.user WHERE user = SUBSTRING_INDEX(CURRENT_USER(), '@', 1))",
    ]))
    .await;
    assert_eq!(out, format!("{}@%\ted25519\n", fixture.user));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_refused_credentials_and_unreachable_server_give_clear_errors() {
    let fixture = Fixture::new("native");
    let mut target = fixture.target();
    target.password = Some(Secret::new("wrong-password-zz9"));
    let proxy = spawn(MysqlProxy::builder(target.clone()).build().unwrap()).await;
    let (ok, _, stderr) = output(mariadb(proxy, "x").args(["-e", "SELECT 1"])).await;
    assert!(!ok);
    assert!(
        stderr.contains("1045") && stderr.contains("refused the connection's credentials"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("wrong-password-zz9") && !stderr.contains(&fixture.user),
        "{stderr}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    target.port = closed.local_addr().unwrap().port();
    drop(closed);
    let proxy = spawn(MysqlProxy::builder(target).build().unwrap()).await;
    let (ok, _, stderr) = output(mariadb(proxy, "x").args(["-e", "SELECT 1"])).await;
    assert!(!ok);
    assert!(
        stderr.contains("hoop cannot reach the database server"),
        "{stderr}"
    );
}

/// Types every client must read alike through hoop and directly: the
/// script prints the rows both ways and the test compares them.
const TYPES_TABLE: &str = "CREATE TABLE types (
    id INT PRIMARY KEY, ti TINYINT, si SMALLINT, mi MEDIUMINT, bi BIGINT UNSIGNED,
    fl FLOAT, db DOUBLE, de DECIMAL(12,4), d DATE, dt DATETIME(6), ts TIMESTAMP NULL,
    tm TIME(3), yr YEAR, ch CHAR(3), vc VARCHAR(50), tx TEXT, bl BLOB, bt BIT(5),
    en ENUM('a','b'), js JSON);
  INSERT INTO types VALUES
    (1, -5, 300, -70000, 18446744073709551615, 1.5, -2.25, 12345678.1234, '2024-02-29',
     '2024-02-29 13:14:15.123456', '2020-01-01 00:00:01', '-838:59:58.5', 2024, 'abc',
     'hello ☃', REPEAT('x', 300), X'00FF10', b'10101', 'b', '{\"k\": [1, 2]}'),
    (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL),
    (3, 0, 0, 0, 0, 0, 0, 0, '1000-01-01', '1000-01-01 00:00:00', NULL, '00:00:00', 1901,
     '', '', '', '', b'0', 'a', 'null');";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_pymysql_and_connector_read_every_common_type_alike() {
    let fixture = Fixture::new("native");
    root_sql(&format!("USE {}; {TYPES_TABLE}", fixture.db));
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let db = &fixture.db;
    let out = python(
        proxy,
        &format!(
            "import os, pymysql, mysql.connector
def pym(port, user, pw):
    c = pymysql.connect(host='127.0.0.1', port=port, user=user, password=pw, database='{db}')
    cur = c.cursor(); cur.execute('SELECT * FROM types ORDER BY id'); return cur.fetchall()
def conn(port, user, pw, prepared):
    c = mysql.connector.connect(host='127.0.0.1', port=port, user=user, password=pw, database='{db}')
    cur = c.cursor(prepared=prepared)
    # mysql-connector's pure-Python reader mis-reads a binary YEAR: leave it out.
    cur.execute('SELECT id, ti, si, mi, bi, fl, db, de, d, dt, ts, tm, ch, vc, tx, bl, bt, en, js FROM types WHERE id > %s ORDER BY id' if not prepared else
                'SELECT id, ti, si, mi, bi, fl, db, de, d, dt, ts, tm, ch, vc, tx, bl, bt, en, js FROM types WHERE id > ? ORDER BY id', (0,))
    rows = cur.fetchall(); c.close(); return rows
port = int(os.environ['HOOP_PORT'])
direct = (3306, 'root', '')
hoop = (port, 'me', 'x')
a, b = pym(*hoop), pym(*direct)
assert a == b, (a, b)
for prepared in (False, True):
    a, b = conn(*hoop, prepared), conn(*direct, prepared)
    assert a == b, (prepared, a, b)
print(len(a), a[1])
"
        ),
    )
    .await;
    assert_eq!(
        out,
        "3 (2, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None, None)\n"
    );
}

/// Refuses statements mentioning `forbidden_table` and masks text and binary
/// cells that read `secret`.
#[derive(Default)]
struct Policy {
    seen: Arc<Mutex<Vec<String>>>,
}

struct PolicyHook {
    seen: Arc<Mutex<Vec<String>>>,
}

impl Pipeline for Policy {
    fn open(&self, _session: &SessionInfo) -> Box<dyn SessionHook> {
        Box::new(PolicyHook {
            seen: self.seen.clone(),
        })
    }
}

impl SessionHook for PolicyHook {
    fn interest(&self) -> Interest {
        Interest {
            statements: true,
            rows: true,
            ..Interest::NONE
        }
    }

    fn client_event(&mut self, event: &Event) -> ClientAction {
        let text = match event {
            Event::Query { text } | Event::Prepare { text, .. } => text.clone(),
            _ => return ClientAction::Forward,
        };
        self.seen.lock().unwrap().push(text.clone());
        if text.contains("forbidden_table") {
            ClientAction::Refuse(Refusal {
                code: "42000".to_owned(),
                message: "statement refused by guardrail no-forbidden".to_owned(),
            })
        } else {
            ClientAction::Forward
        }
    }

    fn server_event(&mut self, event: &mut Event) -> ServerAction {
        let Event::Row { cells } = event else {
            return ServerAction::Forward;
        };
        let mut changed = false;
        for cell in cells.iter_mut().flatten() {
            if cell.as_ref() == b"secret" {
                *cell = bytes::Bytes::from_static(b"[MASKED]");
                changed = true;
            }
        }
        if changed {
            ServerAction::Rewritten
        } else {
            ServerAction::Forward
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_refusals_answer_in_place_and_rewritten_rows_reach_clients() {
    let fixture = Fixture::new("native");
    let policy = Arc::new(Policy::default());
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .pipeline(policy.clone())
            .build()
            .unwrap(),
    )
    .await;
    // The CLI goes on after the refusal (--force) on the same session.
    let (ok, stdout, stderr) = with_stdin(
        mariadb(proxy, "x").arg("--force"),
        "SELECT CONNECTION_ID();\nSELECT * FROM forbidden_table;\n\
         SELECT label FROM t ORDER BY id;\nSELECT CONNECTION_ID();\n",
    )
    .await;
    // --force: the CLI reports the error and goes on.
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("ERROR 1227 (42000)")
            && stderr.contains("refused by guardrail no-forbidden"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.get(1..4),
        Some(&["one", "[MASKED]", "NULL"][..]),
        "{stdout}{stderr}"
    );
    assert_eq!(lines[0], lines[4], "one session throughout: {stdout}");

    // Binary rows (prepared statements) are masked too, and a refused
    // COM_STMT_PREPARE leaves the connection usable.
    let db = &fixture.db;
    let out = python(
        proxy,
        &format!(
            "import os, mysql.connector
c = mysql.connector.connect(host='127.0.0.1', port=int(os.environ['HOOP_PORT']), user='me', password='x', database='{db}')
cur = c.cursor(prepared=True)
cur.execute('SELECT id, label FROM t WHERE id >= ? ORDER BY id', (1,))
print(cur.fetchall())
try:
    cur.execute('SELECT * FROM forbidden_table WHERE id = ?', (1,))
except mysql.connector.Error as e:
    print(e.errno, e.msg)
cur.execute('SELECT label FROM t WHERE id = ?', (1,))
print(cur.fetchall())
"
        ),
    )
    .await;
    assert_eq!(
        out,
        "[(1, 'one'), (2, '[MASKED]'), (3, None)]\n\
         1227 statement refused by guardrail no-forbidden\n[('one',)]\n"
    );
    assert!(
        policy
            .seen
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.starts_with("SELECT id, label FROM t WHERE id >= ?"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_client_leg_tls_carries_the_token() {
    use rcgen::{CertificateParams, KeyPair};
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let acceptor =
        hoop_proxy::tls::acceptor_from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes())
            .unwrap();
    let fixture = Fixture::new("native");
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .client_tls(acceptor)
            .authenticator(Arc::new(SharedSecret::new(Secret::new(TOKEN))))
            .build()
            .unwrap(),
    )
    .await;
    let out = output_ok(mariadb(proxy, TOKEN).args(["--ssl", "-e", "status"])).await;
    assert!(out.contains("Cipher in use is TLS"), "{out}");
    // mysql-connector sends a cleartext password only over TLS.
    let out = python(
        proxy,
        "import os, mysql.connector
c = mysql.connector.connect(host='127.0.0.1', port=int(os.environ['HOOP_PORT']), user='me',
    password=os.environ['HOOP_TOKEN'], ssl_disabled=False, ssl_verify_cert=False)
cur = c.cursor(); cur.execute('SELECT 1 + 1'); print(cur.fetchall())
",
    )
    .await;
    assert_eq!(out, "[(2,)]\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_local_infile_is_refused_unless_allowed() {
    let fixture = Fixture::new("native");
    let file = std::env::temp_dir().join(format!("{}.tsv", fixture.db));
    std::fs::write(&file, "10\tten\n11\televen\n").unwrap();
    let load = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE t; SELECT COUNT(*) FROM t",
        file.display()
    );
    let refusing = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let (ok, _, stderr) =
        output(mariadb(refusing, "x").args(["--local-infile=1", "-e", &load])).await;
    assert!(!ok, "the server read a client file: {stderr}");
    assert_eq!(
        root_sql(&format!("SELECT COUNT(*) FROM {}.t", fixture.db)),
        "3\n"
    );

    let allowing = spawn(
        MysqlProxy::builder(fixture.target())
            .allow_local_infile(true)
            .build()
            .unwrap(),
    )
    .await;
    let out = output_ok(mariadb(allowing, "x").args(["--local-infile=1", "-e", &load])).await;
    assert_eq!(out, "5\n");
    let _ = std::fs::remove_file(file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_kill_query_from_a_second_connection_reaches_the_thread() {
    let fixture = Fixture::new("native");
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let out = python(
        proxy,
        "import os, threading, time, pymysql
port = int(os.environ['HOOP_PORT'])
a = pymysql.connect(host='127.0.0.1', port=port, user='me', password='x')
cur = a.cursor(); cur.execute('SELECT CONNECTION_ID()')
assert cur.fetchone()[0] == a.thread_id(), 'greeting names the real thread'
result = []
def sleep():
    try:
        cur.execute('SELECT SLEEP(30)'); result.append(cur.fetchone()[0])
    except pymysql.err.OperationalError as e:
        result.append(e.args[0])
t = threading.Thread(target=sleep); t.start()
b = pymysql.connect(host='127.0.0.1', port=port, user='me', password='x')
bc = b.cursor()
while True:
    bc.execute('SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s AND INFO LIKE %s', (a.thread_id(), 'SELECT SLEEP%'))
    if bc.fetchone()[0]: break
    time.sleep(0.05)
bc.execute('KILL QUERY %s' % a.thread_id())
t.join()
cur.execute('SELECT 7'); print(result[0] in (1, 1317), cur.fetchone()[0])
",
    )
    .await;
    assert_eq!(out, "True 7\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_sysbench_prepares_and_runs_point_selects() {
    let fixture = Fixture::new("native");
    let recorder = Arc::new(Recorder::default());
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .pipeline(recorder.clone())
            .build()
            .unwrap(),
    )
    .await;
    let (proxy, received) = counting_relay(proxy).await;
    let sysbench = |phase: &str| {
        let mut command = Command::new("sysbench");
        command
            .arg("oltp_point_select")
            .args(["--db-driver=mysql", "--mysql-host=127.0.0.1"])
            .arg(format!("--mysql-port={}", proxy.port()))
            .args(["--mysql-user=me", "--mysql-password=x"])
            .arg(format!("--mysql-db={}", fixture.db))
            .args([
                "--tables=1",
                "--table-size=1000",
                "--threads=2",
                "--events=2000",
            ])
            .arg(phase)
            .kill_on_drop(true);
        command
    };
    output_ok(&mut sysbench("prepare")).await;
    let prepared = received.load(Ordering::Relaxed);
    let out = output_ok(&mut sysbench("run")).await;
    let figure = |label: &str| {
        out.lines()
            .find_map(|line| line.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
    };
    assert_eq!(figure("read:").as_deref(), Some("2000"), "{out}");
    assert_eq!(figure("ignored errors:").as_deref(), Some("0"), "{out}");
    // libmariadb and MariaDB agree on MariaDB's metadata cache through
    // hoop: each execution's result is the column count with "metadata
    // follows" 0, the row and the OK, with no column definition (about 60
    // bytes more each). The pipeline still learns the columns of every one
    // of the 2,000 executions, from the statement's prepare response
    // (masking decides per column).
    let per_execution = (received.load(Ordering::Relaxed) - prepared) / 2000;
    assert!(
        per_execution < 180,
        "{per_execution} bytes per execution: were column definitions resent?"
    );
    let events = recorder.events.lock().unwrap();
    let columns = events.iter().filter(|e| *e == "columns sbtest1.c").count();
    assert_eq!(columns, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_hundred_sessions_run_at_once() {
    let fixture = Fixture::new("native");
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let out = python(
        proxy,
        "import os, threading, pymysql
port = int(os.environ['HOOP_PORT'])
n = 100
barrier = threading.Barrier(n)
results = [None] * n
def session(i):
    c = pymysql.connect(host='127.0.0.1', port=port, user='me', password='x')
    cur = c.cursor()
    barrier.wait()  # all 100 sessions are open before any query
    cur.execute('SELECT %s * 2, COUNT(*) FROM t', (i,))
    results[i] = cur.fetchone()
    barrier.wait()
    c.close()
threads = [threading.Thread(target=session, args=(i,)) for i in range(n)]
for t in threads: t.start()
for t in threads: t.join()
print(all(results[i] == (i * 2, 3) for i in range(n)))
",
    )
    .await;
    assert_eq!(out, "True\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_clients_killed_mid_result_leave_no_server_thread() {
    let fixture = Fixture::new("native");
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    for query in [
        // Streaming: the server is writing rows when the client dies.
        "SELECT seq, REPEAT('x', 100) FROM seq_1_to_100000000",
        // Busy without writing: only a KILL frees this thread early.
        "SELECT 1; SELECT SLEEP(600)",
    ] {
        let mut client = mariadb(proxy, "x")
            .args(["--quick", "--unbuffered", "-e", query])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = client.stdout.take().unwrap();
        let mut first = [0u8; 1];
        stdout.read_exact(&mut first).await.unwrap();
        client.kill().await.unwrap();
        // Wait for the server to see the thread go; a thread left behind
        // keeps this loop going until nextest ends the test.
        while fixture.threads() > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_ten_million_rows_stream_in_bounded_memory() {
    let fixture = Fixture::new("native");
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    // Counted by awk, so this process holds only the proxy's buffers.
    let out = output_ok(Command::new("bash").arg("-c").arg(format!(
        "set -o pipefail; mariadb -h127.0.0.1 -P{} -ume -px -N -B --quick -e \
         \"SELECT seq, CONCAT('row-', seq, '-', REPEAT('y', 20)) FROM seq_1_to_10000000\" \
         | awk 'END {{ print NR; print }}'",
        proxy.port()
    )))
    .await;
    assert_eq!(
        out,
        "10000000\n10000000\trow-10000000-yyyyyyyyyyyyyyyyyyyy\n"
    );
    // This test process holds the proxy; its peak resident memory covers
    // hoop, the runtime and the test harness.
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let peak_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(peak_kb < 64 * 1024, "peak RSS {peak_kb} kB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_malformed_login_is_answered_with_an_err_packet() {
    let fixture = Fixture::new("native");
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let out = python(
        proxy,
        "import os, socket
s = socket.create_connection(('127.0.0.1', int(os.environ['HOOP_PORT'])))
def packet():
    header = b''
    while len(header) < 4: header += s.recv(4 - len(header))
    body = b''
    n = int.from_bytes(header[:3], 'little')
    while len(body) < n: body += s.recv(n - len(body))
    return header[3], body
seq, greeting = packet()
assert seq == 0 and greeting[0] == 10
s.sendall(b'\\x05\\x00\\x00\\x01hello')  # too short to be a login
seq, err = packet()
print(seq, err[0], int.from_bytes(err[1:3], 'little'), b'invalid packet from the client' in err)
",
    )
    .await;
    assert_eq!(out, "2 255 1158 True\n");
}

/// Records every event, the way the session recorder will.
#[derive(Default)]
struct Recorder {
    events: Arc<Mutex<Vec<String>>>,
}

struct RecorderHook {
    events: Arc<Mutex<Vec<String>>>,
}

impl Pipeline for Recorder {
    fn open(&self, session: &SessionInfo) -> Box<dyn SessionHook> {
        self.events.lock().unwrap().push(format!(
            "open {} {}",
            session.protocol,
            session.database.as_deref().unwrap_or("-")
        ));
        Box::new(RecorderHook {
            events: self.events.clone(),
        })
    }
}

impl SessionHook for RecorderHook {
    fn interest(&self) -> Interest {
        Interest::ALL
    }

    fn client_event(&mut self, event: &Event) -> ClientAction {
        if let Event::Query { text } = event {
            self.events.lock().unwrap().push(format!("query {text}"));
        }
        ClientAction::Forward
    }

    fn server_event(&mut self, event: &mut Event) -> ServerAction {
        let line = match event {
            Event::Columns { columns } => format!(
                "columns {}",
                columns
                    .iter()
                    .map(|c| format!("{}.{}", c.table.as_deref().unwrap_or("-"), c.name))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Event::Row { cells } => format!("row {}", cells.len()),
            Event::Done { rows, .. } => format!("done {rows:?}"),
            Event::Error { code, .. } => format!("error {code}"),
            _ => return ServerAction::Forward,
        };
        self.events.lock().unwrap().push(line);
        ServerAction::Forward
    }

    fn closed(&mut self) {
        self.events.lock().unwrap().push("closed".to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_the_hook_sees_statements_columns_rows_completions_and_errors() {
    let fixture = Fixture::new("native");
    let recorder = Arc::new(Recorder::default());
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .pipeline(recorder.clone())
            .build()
            .unwrap(),
    )
    .await;
    let (_, stdout, stderr) = with_stdin(
        mariadb(proxy, "x").args(["--force", "--skip-auto-rehash"]),
        "SELECT id, label FROM t ORDER BY id;\nSELECT * FROM no_such_table;\n",
    )
    .await;
    assert_eq!(stdout, "1\tone\n2\tsecret\n3\tNULL\n", "{stderr}");
    // The CLI's own statements (its version comment query) come first.
    // (`closed` follows once the proxy has seen the client go, which may be
    // after the client process has exited: not checked here.)
    let events = recorder.events.lock().unwrap().clone();
    let from = events
        .iter()
        .position(|e| e == "query SELECT id, label FROM t ORDER BY id")
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(events[0], format!("open mysql {}", fixture.db));
    assert_eq!(
        events[from..from + 8],
        [
            "query SELECT id, label FROM t ORDER BY id",
            "columns t.id,t.label",
            "row 2",
            "row 2",
            "row 2",
            "done Some(3)",
            "query SELECT * FROM no_such_table",
            "error 42S02",
        ],
        "{events:#?}"
    );
}

/// Issue 17, item 1: a result set sent while a stored procedure holds a
/// cursor open carries SERVER_STATUS_CURSOR_EXISTS on its end-of-metadata
/// EOF, and its rows still follow. Only a cursor-mode COM_STMT_EXECUTE's
/// rows wait for COM_STMT_FETCH. The mariadb CLI (no CLIENT_DEPRECATE_EOF)
/// shows it; hoop once took the rows for packets nobody asked for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_result_sets_beside_an_open_procedure_cursor_reach_the_cli() {
    let fixture = Fixture::new("native");
    let created = std::process::Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-P3306", "--delimiter=//", "-e"])
        .arg(format!(
            "CREATE PROCEDURE {0}.with_cursor() BEGIN
               DECLARE c CURSOR FOR SELECT id FROM {0}.t;
               OPEN c;
               SELECT label FROM {0}.t ORDER BY id;
               CLOSE c;
             END",
            fixture.db
        ))
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .authenticator(Arc::new(SharedSecret::new(Secret::new(TOKEN))))
            .build()
            .unwrap(),
    )
    .await;
    let script = "CALL with_cursor();\n\
                  DELIMITER //\n\
                  BEGIN NOT ATOMIC DECLARE c CURSOR FOR SELECT 1; OPEN c; SELECT 'inside'; CLOSE c; END//\n\
                  DELIMITER ;\n\
                  SELECT 'after';\n";
    let (ok, stdout, stderr) = with_stdin(&mut mariadb(proxy, TOKEN), script).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout, "one\nsecret\nNULL\ninside\nafter\n", "{stderr}");
}

/// Issue 17, item 3: a server connection that is killed or times out
/// reaches the client as it would directly, a closed connection (2013
/// "Lost connection" or 2006 "gone away"), which reconnecting clients act
/// on; never an ERR of hoop's own. PyMySQL, idle and busy `KILL`s and a
/// short `wait_timeout`, each followed by the client's own reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_killed_and_timed_out_server_connections_look_lost_to_the_client() {
    let fixture = Fixture::new("native");
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let out = python(
        proxy,
        "import os, threading, time, pymysql
port = int(os.environ['HOOP_PORT'])
root = pymysql.connect(host='127.0.0.1', port=3306, user='root', autocommit=True)
def kill(thread):
    root.cursor().execute('KILL CONNECTION %d' % thread)
def attempt(label, conn, sql):
    try:
        cur = conn.cursor(); cur.execute(sql); print(label, 'answered', cur.fetchall())
    except pymysql.err.MySQLError as e:
        print(label, e.args[0])
    conn.ping(reconnect=True)
    cur = conn.cursor(); cur.execute('SELECT 7'); assert cur.fetchone()[0] == 7
def connect():
    return pymysql.connect(host='127.0.0.1', port=port, user='me', password='x')
a = connect(); kill(a.thread_id()); time.sleep(0.3)
attempt('idle', a, 'SELECT 1')
b = connect()
threading.Timer(0.5, kill, (b.thread_id(),)).start()
attempt('busy', b, 'SELECT SLEEP(5)')
c = connect(); c.cursor().execute('SET SESSION wait_timeout = 1'); time.sleep(2.5)
attempt('timeout', c, 'SELECT 1')
",
    )
    .await;
    let codes: Vec<(&str, &str)> = out
        .lines()
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect();
    assert_eq!(codes.len(), 3, "{out}");
    for (label, code) in codes {
        assert!(code == "2013" || code == "2006", "{label}: {code}\n{out}");
    }
}

/// Issue 17, item 4: MariaDB caps a table at 4,096 columns but not a
/// SELECT list; a 68,001-column result reaches the mariadb CLI whole, and
/// the hook is told all its columns. Memory stays bounded by
/// `Limits::max_column_bytes`, not by a count the servers do not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_results_wider_than_a_table_reach_the_cli() {
    const WIDTH: usize = 68_001;
    let fixture = Fixture::new("native");
    let recorder = Arc::new(Recorder::default());
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .pipeline(recorder.clone())
            .build()
            .unwrap(),
    )
    .await;
    let select = (0..WIDTH)
        .map(|i| format!("{i} AS c{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let (ok, stdout, stderr) =
        with_stdin(&mut mariadb(proxy, "x"), &format!("SELECT {select};\n")).await;
    // The CLI echoes the whole statement before its error: the last line only.
    assert!(ok, "{}", stderr.lines().last().unwrap_or_default());
    let cells: Vec<&str> = stdout.trim_end().split('\t').collect();
    assert_eq!(cells.len(), WIDTH);
    assert_eq!((cells[0], cells[WIDTH - 1]), ("0", "68000"));
    let events = recorder.events.lock().unwrap().clone();
    let columns = events
        .iter()
        .find(|e| e.starts_with("columns ") && e.contains("c67999"))
        .unwrap_or_else(|| panic!("no columns event: {:?}", &events[..2]));
    assert_eq!(columns.split(',').count(), WIDTH);
    assert!(events.contains(&format!("row {WIDTH}")));
}

/// Issue 17, item 5: COM_CHANGE_USER (mysql-connector-python's
/// `cmd_change_user`, which pools use to reset a connection) resets the
/// session on the connection's own account: whatever account the client
/// names, the server leg logs in again with the connection's credentials,
/// in the database and character set the client asked for. Credentials the
/// server no longer accepts end the session in hoop's words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_change_user_resets_the_session_on_the_connections_account() {
    let fixture = Fixture::new("native");
    root_sql(&format!("CREATE DATABASE {0}_other", fixture.db));
    let proxy = spawn(MysqlProxy::builder(fixture.target()).build().unwrap()).await;
    let out = python(
        proxy,
        &format!(
            "import os, mysql.connector
c = mysql.connector.connect(host='127.0.0.1', port=int(os.environ['HOOP_PORT']), user='me', password='x', use_pure=True, ssl_disabled=True)
cur = c.cursor()
cur.execute('SET @v = 1'); cur.execute('CREATE TEMPORARY TABLE tmp (x INT)')
c.cmd_change_user(username='root', password='guess', database='{0}_other', charset=33)
cur = c.cursor()
cur.execute('SELECT CURRENT_USER(), DATABASE(), @v, @@character_set_client'); print(cur.fetchall())
try:
    cur.execute('SELECT * FROM tmp'); print('temporary table kept')
except mysql.connector.Error as e:
    print(e.errno)
cur = c.cursor(prepared=True); cur.execute('SELECT ? * 2', (21,)); print(cur.fetchall())
c.cmd_change_user(username='me', password='x')
cur = c.cursor(); cur.execute('SELECT DATABASE()'); print(cur.fetchall())
root = mysql.connector.connect(host='127.0.0.1', port=3306, user='root')
root.cursor().execute(\"ALTER USER '{1}'@'%' IDENTIFIED BY 'changed-meanwhile'\")
try:
    c.cmd_change_user(username='me', password='x'); print('accepted')
except mysql.connector.Error as e:
    print(e.errno, 'connection' in e.msg and '{1}' not in e.msg)
",
            fixture.db, fixture.user
        ),
    )
    .await;
    root_sql(&format!("DROP DATABASE {0}_other", fixture.db));
    assert_eq!(
        out,
        format!(
            "[('{0}@%', '{1}_other', None, 'utf8mb3')]\n1146\n[(42,)]\n[('{1}',)]\n1045 True\n",
            fixture.user, fixture.db
        )
    );
}

/// Issue 17, item 1: a session that fails is recorded with why. The error
/// hoop told its client (here: the server connection killed mid-query)
/// reaches the hook as an `Error` event before `closed`, so the recording
/// shows a failure, not a session that merely ended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_a_failed_session_leaves_its_error_with_the_hook() {
    let fixture = Fixture::new("native");
    let recorder = Arc::new(Recorder::default());
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .pipeline(recorder.clone())
            .build()
            .unwrap(),
    )
    .await;
    let out = python(
        proxy,
        "import os, threading, pymysql
root = pymysql.connect(host='127.0.0.1', port=3306, user='root', autocommit=True)
c = pymysql.connect(host='127.0.0.1', port=int(os.environ['HOOP_PORT']), user='me', password='x')
threading.Timer(0.5, lambda: root.cursor().execute('KILL CONNECTION %d' % c.thread_id())).start()
try:
    c.cursor().execute('SELECT SLEEP(5)'); print('answered')
except pymysql.err.MySQLError as e:
    print(e.args[0])
",
    )
    .await;
    assert!(out == "2013\n" || out == "2006\n", "{out}");
    let mut events = Vec::new();
    for _ in 0..100 {
        events = recorder.events.lock().unwrap().clone();
        if events.last().is_some_and(|e| e == "closed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        events[events.len().saturating_sub(3)..],
        ["query SELECT SLEEP(5)", "error HY000", "closed"],
        "{events:#?}"
    );
}

/// Issue 17, item 6: a client that asks for the compressed protocol
/// (CLIENT_COMPRESS, zlib) gets it on its leg; hoop inflates what it sends
/// and deflates what it receives, so statements are judged and rows masked
/// as without compression, while the server leg stays plain. The mariadb CLI
/// and mysql-connector-python (pure Python) with compression; the bytes the
/// client receives show the leg is compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_mysql_compressed_clients_are_judged_and_masked() {
    let fixture = Fixture::new("native");
    let policy = Arc::new(Policy::default());
    let proxy = spawn(
        MysqlProxy::builder(fixture.target())
            .pipeline(policy.clone())
            .build()
            .unwrap(),
    )
    .await;
    let (counted, received) = counting_relay(proxy).await;
    let (ok, stdout, stderr) = with_stdin(
        mariadb(counted, "x").args(["--force", "--compress"]),
        "SELECT label FROM t ORDER BY id;\nSELECT * FROM forbidden_table;\n\
         SELECT LENGTH(REPEAT('x', 1000000)), REPEAT('x', 1000000) = REPEAT('x', 1000000);\n\
         SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'COMPRESSION';\n\
         SELECT REPEAT('x', 1000000);\n",
    )
    .await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("ERROR 1227 (42000)")
            && stderr.contains("refused by guardrail no-forbidden"),
        "{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.get(..5),
        Some(&["one", "[MASKED]", "NULL", "1000000\t1", "OFF"][..]),
        "{stderr}"
    );
    assert_eq!(lines.get(5).map(|l| l.len()), Some(1_000_000));
    // A million 'x' crossed the client leg deflated.
    let received = received.load(std::sync::atomic::Ordering::Relaxed);
    assert!(received < 100_000, "{received} bytes reached the client");

    let db = &fixture.db;
    let out = python(
        proxy,
        &format!(
            "import os, mysql.connector
c = mysql.connector.connect(host='127.0.0.1', port=int(os.environ['HOOP_PORT']), user='me', password='x', database='{db}', use_pure=True, compress=True)
cur = c.cursor(prepared=True)
cur.execute('SELECT id, label FROM t WHERE id >= ? ORDER BY id', (1,))
print(cur.fetchall())
cur.execute('SELECT LENGTH(?)', ('z' * 70000,))
print(cur.fetchall())
try:
    cur.execute('SELECT * FROM forbidden_table WHERE id = ?', (1,))
except mysql.connector.Error as e:
    print(e.errno)
"
        ),
    )
    .await;
    assert_eq!(
        out,
        "[(1, 'one'), (2, '[MASKED]'), (3, None)]\n[(70000,)]\n1227\n"
    );
}
