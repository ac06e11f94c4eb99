//! MySQL sessions end to end: the mariadb CLI and sysbench through the
//! gateway's MySQL listener, the embedded agent running the driver, the real
//! MariaDB at 127.0.0.1:3306 (root, no password); refusals in the
//! client's protocol and their records.

use std::time::Duration;

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

mod common;

use common::{MysqlSetup, b64, other_addresses, text, wait_events, wait_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_reaches_mariadb_through_the_listener() {
    mariadb_cli_is_served("cli", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_reaches_mariadb_in_place() {
    mariadb_cli_is_served("cli_in_place", true).await;
}

async fn mariadb_cli_is_served(tag: &str, in_place: bool) {
    let setup = MysqlSetup::start_with(tag, in_place).await;
    setup.connection("my", json!({})).await;
    let output = setup
        .mariadb(
            "my",
            &setup.token,
            "SELECT current_user(), id, email FROM people ORDER BY id",
        )
        .await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let user = &setup.name;
    assert_eq!(
        text(&output.stdout),
        format!("{user}@%\t1\tana@example.com\n{user}@%\t2\tbo@example.com\n")
    );
    let sessions = setup.ended_sessions("my", 1).await;
    assert_eq!(sessions[0].status, "done", "{sessions:?}");
    assert_eq!(sessions[0].protocol, "mysql");
    assert!(sessions[0].bytes_in > 0 && sessions[0].bytes_out > 0);
    setup.stop().await;
}

/// A session that ends in an error is recorded as failed, with the error
/// event: the server kills the mariadb CLI's connection mid-script, the CLI
/// sees the lost connection, and `GET /api/sessions/{id}` says `failed`
/// and why, over the agent link and in place alike.
async fn a_lost_connection_is_recorded_as_failed(tag: &str, in_place: bool) {
    let setup = MysqlSetup::start_with(tag, in_place).await;
    setup.connection("my", json!({})).await;
    let output = setup
        .mariadb(
            "my",
            &setup.token,
            "SELECT 1; KILL CONNECTION_ID(); SELECT 2",
        )
        .await;
    assert!(!output.status.success(), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("ERROR"), "{stderr}");
    let sessions = setup.ended_sessions("my", 1).await;
    let id = &sessions[0].id;
    let record = setup
        .admin
        .get(&format!("/api/sessions/{id}"))
        .await
        .unwrap();
    assert_eq!(record.status, StatusCode::OK, "{:?}", record.body);
    assert_eq!(record.body["status"], "failed", "{:?}", record.body);
    let error = record.body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("Server connection failed"),
        "{:?}",
        record.body
    );
    let events = wait_events(&setup.admin, id, "end").await;
    assert!(
        events.iter().any(|e| e["type"] == "error"),
        "no error event: {events:?}"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_over_the_link_is_recorded_as_failed() {
    a_lost_connection_is_recorded_as_failed("lost", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_in_place_is_recorded_as_failed() {
    a_lost_connection_is_recorded_as_failed("lost_in_place", true).await;
}

/// A session on a connection whose server is down reaches the mariadb CLI
/// as an `ERROR` naming why, not as a lost connection: while the agent's
/// probe still finds the server (one restarting accepts and closes; here a
/// TCP listener of the test's own does, which is all the probe checks) and
/// the driver gets no greeting, and once the agent reports it `offline`
/// (the gateway refuses).
async fn a_server_that_is_down_is_named_to_the_client(tag: &str, in_place: bool) {
    let setup = MysqlSetup::start_with(tag, in_place).await;
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    let restarting = tokio::spawn(async move {
        loop {
            let _ = server.accept().await;
        }
    });
    let body = json!({
        "name": "down", "type": "database", "subtype": "mysql", "agent_id": "default",
        "secret": {
            "envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64(&port.to_string()),
            "envvar:USER": b64(&setup.name), "envvar:PASS": b64("unused"),
        },
    });
    let created = setup
        .admin
        .json(Method::POST, "/api/connections", &body)
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    wait_status(&setup.admin, "down", "online").await;
    let output = setup.mariadb("down", &setup.token, "SELECT 1").await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ERROR 1429")
            && stderr.contains("lost the connection to the database server"),
        "{stderr}"
    );
    restarting.abort();
    let _ = restarting.await;
    wait_status(&setup.admin, "down", "offline").await;
    let output = setup.mariadb("down", &setup.token, "SELECT 1").await;
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("ERROR") && stderr.contains("offline") && !stderr.contains("2013"),
        "{stderr}"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_named_over_the_link() {
    a_server_that_is_down_is_named_to_the_client("down", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_is_down_is_named_in_place() {
    a_server_that_is_down_is_named_to_the_client("down_in_place", true).await;
}

/// A client's cancel through the listener: PyMySQL reads the connection id
/// from the gateway's greeting (as the mariadb CLI's Ctrl-C and JDBC's
/// cancel do), runs `SELECT SLEEP(30)`, and a second connection sends
/// `KILL QUERY <that id>`; the sleep ends at once with MariaDB's 1317
/// "Query execution was interrupted". The greeting's id is the gateway's
/// own, so this needs the driver to translate it.
const KILL_QUERY_SCRIPT: &str = r#"
import sys, threading, time
import pymysql
host, port, user, token, database = sys.argv[1:6]
kw = dict(host=host, port=int(port), user=user, password=token, database=database)
first = pymysql.connect(**kw)
told = first.thread_id()
result = {}
def sleep():
    cursor = first.cursor()
    started = time.monotonic()
    try:
        cursor.execute("SELECT SLEEP(30)")
        result["value"] = cursor.fetchone()[0]
    except pymysql.err.OperationalError as error:
        result["value"] = f"error-{error.args[0]}"
    result["seconds"] = time.monotonic() - started
sleeper = threading.Thread(target=sleep)
sleeper.start()
time.sleep(1)
second = pymysql.connect(**kw)
second.cursor().execute(f"KILL QUERY {told}")
sleeper.join(25)
print(told, result.get("value"), round(result.get("seconds", 99)))
"#;

async fn kill_query_reaches_the_sleeping_thread(tag: &str, in_place: bool) {
    let setup = MysqlSetup::start_with(tag, in_place).await;
    setup.connection("my", json!({})).await;
    let addr = setup.gateway.mysql_addr.unwrap();
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        Command::new("python3")
            .args(["-c", KILL_QUERY_SCRIPT])
            .args([&addr.ip().to_string(), &addr.port().to_string(), "my"])
            .args([&setup.token, &setup.name])
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the script hung")
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let printed = text(&output.stdout);
    let fields: Vec<&str> = printed.split_whitespace().collect();
    let told: u32 = fields[0].parse().unwrap();
    assert!(told >= 0x8000_0000, "the greeting told {told}");
    assert_eq!(fields[1..], ["error-1317", "1"], "{printed}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_through_the_listener_reaches_the_thread() {
    kill_query_reaches_the_sleeping_thread("kill", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_query_through_the_listener_reaches_the_thread_in_place() {
    kill_query_reaches_the_sleeping_thread("kill_in_place", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_and_disabled_connect_are_refused_in_mysql_and_recorded() {
    let setup = MysqlSetup::start("refused").await;
    setup.connection("my", json!({})).await;
    setup
        .connection("myoff", json!({"access_mode_connect": "disabled"}))
        .await;
    let wrong = setup.mariadb("my", "not-a-token", "SELECT 1").await;
    assert!(!wrong.status.success());
    assert!(
        text(&wrong.stderr).contains("ERROR 1045 (28000): invalid access token"),
        "{}",
        text(&wrong.stderr)
    );
    let disabled = setup.mariadb("myoff", &setup.token, "SELECT 1").await;
    assert!(!disabled.status.success());
    assert!(
        text(&disabled.stderr)
            .contains("ERROR 1227 (42000): connect access is disabled on connection myoff"),
        "{}",
        text(&disabled.stderr)
    );
    for connection in ["my", "myoff"] {
        let sessions = setup.ended_sessions(connection, 1).await;
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].status, "refused", "{sessions:?}");
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_point_select_runs_through_the_listener() {
    sysbench_point_select(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sysbench_point_select_runs_in_place() {
    sysbench_point_select(true).await;
}

async fn sysbench_point_select(in_place: bool) {
    let tag = if in_place {
        "sysbench_in_place"
    } else {
        "sysbench"
    };
    let setup = MysqlSetup::start_with(tag, in_place).await;
    setup.connection("my", json!({})).await;
    let addr = setup.gateway.mysql_addr.unwrap();
    let common = [
        "oltp_point_select".to_owned(),
        "--db-driver=mysql".into(),
        format!("--mysql-db={}", setup.name),
        "--mysql-ssl=off".into(),
        "--tables=1".into(),
        "--table-size=100".into(),
    ];
    let prepare = Command::new("sysbench")
        .args(&common)
        .args(["--mysql-host=127.0.0.1", "--mysql-port=3306"])
        .arg(format!("--mysql-user={}", setup.name))
        .arg(format!("--mysql-password=pw-{}", setup.name))
        .arg("prepare")
        .output()
        .await
        .expect("the tests need sysbench");
    assert!(prepare.status.success(), "{}", text(&prepare.stderr));
    let run = Command::new("sysbench")
        .args(&common)
        .arg(format!("--mysql-host={}", addr.ip()))
        .arg(format!("--mysql-port={}", addr.port()))
        // libmariadb loads mysql_clear_password on first use without a
        // lock, and threads switching to it at once can fail with "plugin
        // ... is already loaded" (a client-side race); preloading it, as
        // the README tells libmariadb users, avoids that.
        .env("LIBMYSQL_PLUGINS", "mysql_clear_password")
        .args(["--mysql-user=my", "--threads=4", "--events=500", "--time=0"])
        .arg(format!("--mysql-password={}", setup.token))
        .arg("run")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    assert!(
        stdout.contains("transactions:                        500"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ignored errors:                      0"),
        "{stdout}"
    );
    let sessions = setup.ended_sessions("my", 4).await;
    assert!(sessions.iter().all(|s| s.status == "done"), "{sessions:?}");
    // The gateway's greeting offers MariaDB's metadata cache, and sysbench
    // (libmariadb) takes it: an execution's result is the column count,
    // the row and the OK, about 150 bytes, where resent column
    // definitions would make it over 200 (each session's login and
    // prepares add a few bytes per execution).
    let to_clients: i64 = sessions.iter().map(|s| s.bytes_out).sum();
    let per_execution = to_clients / 500;
    eprintln!("{per_execution} bytes to the client per point select");
    assert!(
        per_execution < 190,
        "{per_execution} bytes per execution: were column definitions resent?"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_on_a_mysql_connection_returns_the_rows_the_cli_sees_directly() {
    let setup = MysqlSetup::start("exec").await;
    setup
        .connection(
            "my",
            json!({"guardrail_rules": [{"type": "deny_words_list", "words": ["truncate"], "message": "no truncates"}]}),
        )
        .await;
    let sql = "SELECT id, email, NULL AS nothing FROM people ORDER BY id; SELECT 42 AS answer";
    let direct = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-P", "3306", "-u", "root", "-N", "-B"])
        .arg(&setup.name)
        .args(["-e", sql])
        .output()
        .await
        .unwrap();
    assert!(direct.status.success(), "{}", text(&direct.stderr));
    let exec = |script: &str, output: &str| {
        let body = json!({"connection": "my", "script": script, "output": output});
        let admin = &setup.admin;
        async move { admin.json(Method::POST, "/api/sessions", &body).await }
    };
    let response = exec(sql, "text").await.unwrap();
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["exit_code"], 0, "{:?}", response.body);
    assert_eq!(response.body["status"], "done");
    // The CLI prints NULL where exec leaves the field empty (as psql -At).
    assert_eq!(
        response.body["output"],
        text(&direct.stdout).replace("\tNULL\n", "\t\n")
    );

    let json_rows = exec("SELECT id, email FROM people WHERE id = 2", "json")
        .await
        .unwrap();
    let rows: Value = serde_json::from_str(json_rows.body["output"].as_str().unwrap()).unwrap();
    // Values keep their column's type: an INT is a JSON number.
    assert_eq!(rows, json!([{"id": 2, "email": "bo@example.com"}]));

    let failing = exec("SELECT * FROM no_such_table", "text").await.unwrap();
    assert_eq!(failing.body["exit_code"], 1, "{:?}", failing.body);
    assert_eq!(failing.body["status"], "failed");
    assert!(
        failing.body["error"]
            .as_str()
            .unwrap()
            .contains("ERROR 1146 (42S02)"),
        "{:?}",
        failing.body
    );

    let refused = exec("TRUNCATE TABLE people", "text").await.unwrap();
    assert_eq!(refused.body["exit_code"], 1, "{:?}", refused.body);
    assert!(
        refused.body["error"]
            .as_str()
            .unwrap()
            .contains("no truncates"),
        "{:?}",
        refused.body
    );
    let count = exec("SELECT count(*) FROM people", "text").await.unwrap();
    assert_eq!(count.body["output"], "2\n");
    setup.stop().await;
}

// ---- TLS on the MySQL listener ----

/// What the mariadb CLI's `status` prints when its own connection (the
/// client's leg, to the gateway) is encrypted; `SHOW STATUS LIKE
/// 'Ssl_cipher'` would tell about the driver's leg to MariaDB instead.
const CLI_TLS: &str = "SSL:\t\t\tCipher in use is ";
/// What it prints in plain text.
const CLI_PLAIN: &str = "SSL:\t\t\tNot in use";

async fn mariadb_cli_over_tls_is_served(tag: &str, in_place: bool) {
    let setup = MysqlSetup::start_full(tag, in_place, true).await;
    setup.connection("my", json!({})).await;
    let sql = "status; SELECT current_user(), id, email FROM people ORDER BY id";
    let user = &setup.name;
    let rows = format!("{user}@%\t1\tana@example.com\n{user}@%\t2\tbo@example.com\n");
    let ca = format!("--ssl-ca={}", setup.ca.as_ref().unwrap().display());
    let options: [&[&str]; 2] = [
        &["--ssl", "--ssl-verify-server-cert=off"],
        // The certificate is the gateway's, checked against its CA and name.
        &["--ssl", &ca, "--ssl-verify-server-cert"],
    ];
    for options in options {
        let output = setup.mariadb_at("127.0.0.1", options, sql).await;
        assert!(
            output.status.success(),
            "{options:?}: {}",
            text(&output.stderr)
        );
        let out = text(&output.stdout);
        assert!(out.contains(CLI_TLS), "{out}");
        assert!(out.ends_with(&rows), "{out}");
    }
    // Loopback may still speak plain text (arriving as ::ffff:127.0.0.1).
    let plain = setup.mariadb_at("127.0.0.1", &["--skip-ssl"], sql).await;
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    assert!(
        text(&plain.stdout).contains(CLI_PLAIN),
        "{}",
        text(&plain.stdout)
    );
    assert!(text(&plain.stdout).ends_with(&rows));

    let sessions = setup.ended_sessions("my", 3).await;
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    for session in sessions {
        assert_eq!(session.status, "done", "{session:?}");
        assert!(session.bytes_in > 0 && session.bytes_out > 0, "{session:?}");
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_over_tls_through_the_listener() {
    mariadb_cli_over_tls_is_served("tls", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_over_tls_in_place() {
    mariadb_cli_over_tls_is_served("tls_in_place", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_off_loopback_is_refused_in_mysql_before_the_token_and_tls_is_not() {
    let setup = MysqlSetup::start_full("tls_remote", false, true).await;
    setup.connection("my", json!({})).await;
    let addresses = other_addresses();
    assert!(
        !addresses.is_empty(),
        "the test needs an address other than loopback (hostname -I)"
    );
    for ip in addresses {
        let host = ip.to_string();
        let plain = setup.mariadb_at(&host, &["--skip-ssl"], "SELECT 1").await;
        assert!(!plain.status.success(), "{ip}");
        assert!(
            text(&plain.stderr).contains(
                "ERROR 3159 (HY000): this gateway requires TLS for clients not on loopback; connect with --ssl"
            ),
            "{ip}: {}",
            text(&plain.stderr)
        );
        let encrypted = setup
            .mariadb_at(
                &host,
                &["--ssl", "--ssl-verify-server-cert=off"],
                "status; SELECT 1",
            )
            .await;
        assert!(
            encrypted.status.success(),
            "{ip}: {}",
            text(&encrypted.stderr)
        );
        assert!(text(&encrypted.stdout).contains(CLI_TLS));
        assert!(text(&encrypted.stdout).ends_with("\n1\n"));
    }
    // The refused logins never reached the checks: no session was opened
    // for them, only for the encrypted ones.
    let sessions = setup.ended_sessions("my", 1).await;
    assert_eq!(sessions.len(), other_addresses().len(), "{sessions:?}");
    assert!(sessions.iter().all(|s| s.status == "done"), "{sessions:?}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_greeting_offers_tls_and_what_follows_an_ssl_request_is_read_only_as_tls() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH
    const SSL_REQUEST_CAPABILITIES: u32 = (1 << 9) | (1 << 11) | (1 << 15) | (1 << 19);
    let setup = MysqlSetup::start_full("tls_raw", false, true).await;
    let port = setup.gateway.mysql_addr.unwrap().port();
    let mut raw = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut header = [0u8; 4];
    raw.read_exact(&mut header).await.unwrap();
    let mut greeting = vec![0u8; u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize];
    raw.read_exact(&mut greeting).await.unwrap();
    // protocol version, server version (NUL-terminated), connection id,
    // 8 bytes of challenge, a filler, then the capabilities' low half.
    let version_end = greeting.iter().position(|&b| b == 0).unwrap();
    let at = 1 + version_end + 4 + 8 + 1;
    let low = u16::from_le_bytes([greeting[at], greeting[at + 1]]);
    assert_ne!(low & (1 << 11), 0, "CLIENT_SSL not offered: {low:#x}");

    // An SSLRequest with a plain-text login right behind it: the client
    // starts TLS without waiting for an answer, so what follows the
    // SSLRequest is its TLS handshake, never a login. Bytes that are not
    // TLS fail the handshake; the gateway answers nothing a MySQL client
    // would read (at most a TLS alert record) and closes.
    let mut payload = SSL_REQUEST_CAPABILITIES.to_le_bytes().to_vec();
    payload.extend(16_777_216u32.to_le_bytes());
    payload.push(45);
    payload.extend([0u8; 23]);
    let mut wire = vec![payload.len() as u8, 0, 0, 1];
    wire.extend(&payload);
    let login = b"\x05\x00\x00\x02early";
    wire.extend(login);
    raw.write_all(&wire).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), raw.read_to_end(&mut answer)).await;
    /// A TLS record of content type alert.
    const TLS_ALERT: u8 = 21;
    assert!(answer.is_empty() || answer[0] == TLS_ALERT, "{answer:?}");
    // The mariadb CLI's own SSLRequest and ClientHello often arrive in one
    // read; they must be served every time (over_tls tests run it once per
    // option set; here a few more).
    setup.connection("my", json!({})).await;
    for _ in 0..5 {
        let output = setup
            .mariadb_at(
                "127.0.0.1",
                &["--ssl", "--ssl-verify-server-cert=off"],
                "status",
            )
            .await;
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert!(text(&output.stdout).contains(CLI_TLS));
    }
    setup.stop().await;
}
