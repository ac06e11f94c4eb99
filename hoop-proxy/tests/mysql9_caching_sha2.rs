//! caching_sha2_password against a real MySQL 9 server (MariaDB has no
//! such plugin), from the chroot `scripts/mysql9-chroot.sh` builds under
//! /var/cache/hoop-mysql9. Without the chroot the test says so and passes
//! without checking anything; build it once with
//! `scripts/mysql9-chroot.sh build` (about a minute and 930 MB).
//!
//! Run with `cargo nextest run -p hoop-proxy --test mysql9_caching_sha2`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use hoop_proxy::mysql::MysqlProxy;
use hoop_proxy::{DatabaseTarget, Secret, SslMode};
use tokio::process::Command;

const CHROOT: &str = "/var/cache/hoop-mysql9";
/// The user and password `scripts/mysql9-chroot.sh start` creates.
const USER: &str = "hoop_sha2";
const PASSWORD: &str = "sha2-pw-4b1d";
/// The port the script starts mysqld on, unless one already runs.
const PORT: &str = "63306";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/mysql9-chroot.sh")
}

fn run_script(args: &[&str]) -> (bool, String) {
    let output = StdCommand::new("bash")
        .arg(script())
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr),
    )
}

/// Empties the server's cache of password hashes, so the next login takes
/// full authentication.
fn flush_cache() {
    let (ok, out) = run_script(&["sql", "FLUSH PRIVILEGES"]);
    assert!(ok, "{out}");
}

async fn spawn(port: u16, password: &str, ssl_mode: SslMode) -> SocketAddr {
    let target = DatabaseTarget {
        host: "127.0.0.1".to_owned(),
        port,
        user: USER.to_owned(),
        password: Some(Secret::new(password)),
        database: None,
        ssl_mode,
    };
    let proxy = MysqlProxy::builder(target).build().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { proxy.serve(listener).await });
    addr
}

/// The user and the server-leg TLS cipher, as seen through hoop.
async fn whoami(proxy: SocketAddr) -> Result<String, String> {
    let output = Command::new("mariadb")
        .arg("-h127.0.0.1")
        .arg(format!("-P{}", proxy.port()))
        .args(["-ume", "-px", "-N", "-B", "-e"])
        .arg(
            "SELECT CURRENT_USER(), IFNULL(NULLIF((SELECT VARIABLE_VALUE FROM \
             performance_schema.session_status WHERE VARIABLE_NAME = 'Ssl_cipher'), ''), 'plain')",
        )
        .output()
        .await
        .unwrap();
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caching_sha2_password_logs_in_by_every_path() {
    if !Path::new(CHROOT).join(".hoop-initialised").exists() {
        println!(
            "SKIPPED: no MySQL 9 chroot at {CHROOT}; build it with scripts/mysql9-chroot.sh build"
        );
        return;
    }
    let was_running = run_script(&["status"]).0;
    let (ok, out) = run_script(&["start", PORT]);
    assert!(ok, "{out}");
    let port: u16 = out.lines().last().unwrap().trim().parse().unwrap();
    let expected_user = format!("{USER}@%");

    // Full authentication without TLS: hoop fetches the server's RSA key
    // and sends the password encrypted with it.
    flush_cache();
    let plain = spawn(port, PASSWORD, SslMode::Disable).await;
    assert_eq!(whoami(plain).await, Ok(format!("{expected_user}\tplain\n")));
    // The server cached the hash: this login takes the fast path.
    assert_eq!(whoami(plain).await, Ok(format!("{expected_user}\tplain\n")));

    // Full authentication over TLS: the password itself, encrypted by TLS.
    flush_cache();
    let tls = spawn(port, PASSWORD, SslMode::Require).await;
    let out = whoami(tls).await.unwrap();
    assert!(out.starts_with(&format!("{expected_user}\tTLS_")), "{out}");

    // A wrong password is refused after the RSA exchange, in hoop's words.
    flush_cache();
    let wrong = spawn(port, "not-the-password", SslMode::Disable).await;
    let error = whoami(wrong).await.unwrap_err();
    assert!(
        error.contains("1045") && error.contains("refused the connection's credentials"),
        "{error}"
    );
    assert!(
        !error.contains("not-the-password") && !error.contains(USER),
        "{error}"
    );

    // MySQL 9's own client (query attributes, caching_sha2 by default)
    // through hoop, with an access token: libmysqlclient sends a cleartext
    // password only when told to.
    let proxy = {
        let target = DatabaseTarget {
            host: "127.0.0.1".to_owned(),
            port,
            user: USER.to_owned(),
            password: Some(Secret::new(PASSWORD)),
            database: None,
            ssl_mode: SslMode::Require,
        };
        let proxy = MysqlProxy::builder(target)
            .authenticator(std::sync::Arc::new(hoop_proxy::auth::SharedSecret::new(
                Secret::new("tok-42"),
            )))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { proxy.serve(listener).await });
        addr
    };
    let mysql = |extra: &'static [&'static str]| {
        let mut command = Command::new("chroot");
        command
            .args([CHROOT, "mysql", "-h127.0.0.1"])
            .arg(format!("-P{}", proxy.port()))
            .args(["-ume", "-ptok-42", "--ssl-mode=DISABLED", "-N", "-B"])
            .args(extra)
            .args(["-e", "SELECT CURRENT_USER()"]);
        command
    };
    let refused = mysql(&[]).output().await.unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("mysql_clear_password"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let allowed = mysql(&["--enable-cleartext-plugin"])
        .output()
        .await
        .unwrap();
    assert!(
        allowed.status.success(),
        "{}",
        String::from_utf8_lossy(&allowed.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&allowed.stdout),
        format!("{expected_user}\n")
    );

    if !was_running {
        let (ok, out) = run_script(&["stop"]);
        assert!(ok, "{out}");
    }
}

/// Issue 17, item 2: query attributes (CLIENT_QUERY_ATTRIBUTES) from
/// mysql-connector-python's pure-Python client against MySQL 9, in
/// COM_QUERY and COM_STMT_EXECUTE, with and without attributes. Its
/// executions carry a parameter count and per-parameter names that hoop
/// once misread ("parameter types were never bound"), and its login sets
/// CONNECT_WITH_DB with an empty name, which hoop passed on without one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_python_query_attributes_reach_mysql_9() {
    if !Path::new(CHROOT).join(".hoop-initialised").exists() {
        println!(
            "SKIPPED: no MySQL 9 chroot at {CHROOT}; build it with scripts/mysql9-chroot.sh build"
        );
        return;
    }
    let was_running = run_script(&["status"]).0;
    let (ok, out) = run_script(&["start", PORT]);
    assert!(ok, "{out}");
    let port: u16 = out.lines().last().unwrap().trim().parse().unwrap();
    // mysql_query_attribute_string() comes with this component.
    let (ok, installed) = run_script(&[
        "sql",
        "SELECT COUNT(*) FROM mysql.component WHERE component_urn = 'file://component_query_attributes'",
    ]);
    assert!(ok, "{installed}");
    if installed.trim().ends_with('0') {
        let (ok, out) = run_script(&[
            "sql",
            "INSTALL COMPONENT 'file://component_query_attributes'",
        ]);
        assert!(ok, "{out}");
    }
    let proxy = spawn(port, PASSWORD, SslMode::Require).await;
    let output = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, mysql.connector
c = mysql.connector.connect(host='127.0.0.1', port=int(sys.argv[1]), user='me', password='x', use_pure=True, ssl_disabled=True)
cur = c.cursor(prepared=True)
cur.execute('SELECT ? + 1, ?', (41, 'x')); print(cur.fetchall())
cur.execute('SELECT ? + 1, ?', (1, 'again')); print(cur.fetchall())
cur = c.cursor()
cur.clear_attributes(); cur.add_attribute('who', 'query')
cur.execute('SELECT mysql_query_attribute_string(%s), %s', ('who', 'y')); print(cur.fetchall())
cur = c.cursor(prepared=True)
cur.clear_attributes(); cur.add_attribute('p', 7)
cur.execute('SELECT mysql_query_attribute_string(?), ?', ('p', 'z')); print(cur.fetchall())
cur = c.cursor(prepared=True)
cur.clear_attributes(); cur.add_attribute('n', 'no parameters')
cur.execute('SELECT mysql_query_attribute_string(\\'n\\')'); print(cur.fetchall())
",
        )
        .arg(proxy.port().to_string())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "[(42, 'x')]\n[(2, 'again')]\n[('query', 'y')]\n[('7', 'z')]\n[('no parameters',)]\n"
    );
    if !was_running {
        let (ok, out) = run_script(&["stop"]);
        assert!(ok, "{out}");
    }
}
