//! Issue 13, item 6: credentials reach the audit. Passwords written in every literal form
//! the real PostgreSQL (127.0.0.1:5432) and MariaDB (127.0.0.1:3306) accept, through the
//! gateway and its embedded agent, and an exec whose database error quotes the script's
//! password: neither the session's events nor its record's `error` field (which `hoop
//! exec` prints) nor any file of the store (the SQLite database and its WAL) holds any
//! part of them afterwards.

use hyper::Method;
use serde_json::{Value, json};
use tokio::process::Command;

mod common;

use common::*;

/// Every written or read form in these tests holds one of these.
const LEAKS: [&str; 4] = [
    // Each password starts `hunter2-` (read) or `hunt` and an escape (written).
    "hunt",
    // `hunte` in hex (`X'...'`, `0x...`) and `hunt` in bits (`b'...'`).
    "68756e7465",
    "01101000011101010110111001110100",
    // `hunter2` in PostgreSQL's U& escapes.
    "0068",
];

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn bits(text: &str) -> String {
    text.bytes().map(|b| format!("{b:08b}")).collect()
}

/// No part of a password in `text`.
fn assert_no_leak(what: &str, text: &str) {
    for leak in LEAKS {
        assert!(!text.contains(leak), "{leak} in {what}: {text}");
    }
}

/// An exec through `POST /api/sessions`: the response's `error`, and the session's record
/// as `GET /api/sessions/{id}` shows it.
async fn exec_error(
    admin: &hoop_gateway::client::ApiClient,
    connection: &str,
    script: &str,
) -> (String, Value) {
    let response = admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": connection, "script": script}),
        )
        .await
        .unwrap();
    assert_eq!(response.body["exit_code"], 1, "{:?}", response.body);
    let error = response.body["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let id = response.body["session_id"].as_str().unwrap().to_owned();
    let shown = admin.get(&format!("/api/sessions/{id}")).await.unwrap();
    (error, shown.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passwords_in_every_literal_form_never_reach_the_audit() {
    let setup = Setup::start(false).await;
    let role = unique("hoop_audit_forms");
    let admin_db = server_admin("postgres").await;
    admin_db
        .batch_execute(&format!("CREATE ROLE {role} LOGIN"))
        .await
        .unwrap();
    setup.connection("forms", 5432, json!({})).await;
    setup.wait_status("forms", "online").await;

    // What PostgreSQL accepts as a password literal, each a different password.
    let accepted = [
        "'hunter2-pg-1'".to_owned(),
        r"E'hunt\x65r2-pg-2'".to_owned(),
        r"E'hunt\145r2-pg-3'".to_owned(),
        r"U&'hunt\0065r2-pg-4'".to_owned(),
        "U&'hunt!0065r2-pg-5' UESCAPE '!'".to_owned(),
        "$$hunter2-pg-6$$".to_owned(),
        "$pw$hunter2-pg-7$pw$".to_owned(),
        "'hunter2-'\n'pg-8'".to_owned(),
        r"U&'\0068\0075\006e\0074er2-pg-9'".to_owned(),
    ];
    let mut script: String = accepted
        .iter()
        .map(|literal| format!("ALTER ROLE {role} PASSWORD {literal};\n"))
        .collect();
    // Refused by the server, whose syntax error quotes the literal as written.
    script.push_str(r"ALTER USER PASSWORD U&'hunt\0065r2-pg-10';");
    script.push('\n');
    let output = run_with_input(
        setup
            .psql("forms", &setup.token, "")
            .args(["-v", "ON_ERROR_STOP=0", "-f", "-"]),
        &script,
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.matches("ERROR").count(), 1, "{stderr}");
    assert!(
        stderr.contains(r#"syntax error at or near "U&'hunt\0065r2-pg-10'""#),
        "{stderr}"
    );

    // exec: the server's error quotes the password; the session's record keeps the error.
    let (error, shown) = exec_error(
        &setup.admin,
        "forms",
        r"SELECT 1; ALTER USER PASSWORD E'hunt\x65r2-pg-11'",
    )
    .await;
    assert!(error.contains("syntax error at or near"), "{error}");
    assert!(error.contains("[REDACTED:PASSWORD]"), "{error}");
    assert_no_leak("the exec's error", &error);
    assert_eq!(shown["error"], error, "{shown:?}");

    let mut sessions = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sessions.len() < 2
        || sessions
            .iter()
            .any(|s: &hoop_gateway::store::SessionRecord| s.status == "open")
    {
        assert!(std::time::Instant::now() < deadline, "sessions never ended");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        sessions = setup.sessions("forms").await;
    }
    for session in &sessions {
        let events = wait_events(&setup.admin, &session.id, "end").await;
        assert_no_leak("the events", &serde_json::to_string(&events).unwrap());
        assert_no_leak("the record", &format!("{session:?}"));
    }
    let stored = store_text(&setup.dir);
    assert!(stored.contains("[REDACTED:PASSWORD]"));
    assert_no_leak("the store", &stored);

    let _ = admin_db
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_passwords_in_every_literal_form_never_reach_the_audit() {
    let setup = MysqlSetup::start("audit_forms").await;
    setup.connection("my", json!({})).await;
    let (name, token) = (&setup.name, &setup.token);

    // MariaDB sets a password from a quoted string only (the connection's user sets its
    // own, then back to the connection's); every other literal form is an expression
    // (`SELECT PASSWORD(...)` reads each) and a syntax error where a password is set,
    // whose message quotes the literal as written.
    let strings = ["\"hunter2-my-1\"".to_owned(), r"'hunt\er2-my-2'".to_owned()];
    let others = [
        "_utf8mb4'hunter2-my-3'".to_owned(),
        "_utf8mb4 'hunter2-my-4'".to_owned(),
        "N'hunter2-my-5'".to_owned(),
        format!("X'{}'", hex("hunter2-my-6")),
        format!("0x{}", hex("hunter2-my-7")),
        format!("b'{}'", bits("hunter2-my-8")),
        format!("0b{}", bits("hunter2-my-9")),
        "'hunter2-' 'my-10'".to_owned(),
        format!("_binary X'{}'", hex("hunter2-my-11")),
    ];
    let mut script: String = strings
        .iter()
        .map(|literal| format!("SET PASSWORD = PASSWORD({literal});\n"))
        .collect();
    for literal in &others {
        script.push_str(&format!(
            "SELECT PASSWORD({literal}) IS NOT NULL;\nSET PASSWORD = PASSWORD({literal});\n"
        ));
    }
    script.push_str(&format!(
        "ALTER USER IDENTIFIED BY X'{}';\n",
        hex("hunter2-my-12")
    ));
    script.push_str(&format!("SET PASSWORD = PASSWORD('pw-{name}');\n"));
    let addr = setup.gateway.mysql_addr.unwrap();
    let output = run_with_input(
        Command::new("mariadb")
            .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
            .args([
                "-u",
                "my",
                "--skip-ssl",
                "--connect-timeout=10",
                "--force",
                "-N",
            ])
            .arg(format!("-p{token}"))
            .arg(name),
        &script,
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "1\n".repeat(others.len()),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("ERROR 1064").count(),
        others.len() + 1,
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("near 'BY X'{}'", hex("hunter2-my-12"))),
        "{stderr}"
    );

    let (error, shown) = exec_error(
        &setup.admin,
        "my",
        &format!(
            "SELECT 1; ALTER USER IDENTIFIED BY 0x{}",
            hex("hunter2-my-13")
        ),
    )
    .await;
    assert!(error.contains("ERROR 1064"), "{error}");
    assert!(error.contains("[REDACTED:PASSWORD]"), "{error}");
    assert_no_leak("the exec's error", &error);
    assert_eq!(shown["error"], error, "{shown:?}");

    for session in setup.ended_sessions("my", 2).await {
        let events = wait_events(&setup.admin, &session.id, "end").await;
        assert_no_leak("the events", &serde_json::to_string(&events).unwrap());
        assert_no_leak("the record", &format!("{session:?}"));
    }
    let stored = store_text(&setup.dir);
    assert!(stored.contains("[REDACTED:PASSWORD]"));
    assert_no_leak("the store", &stored);
    setup.stop().await;
}
