//! Audit records of failed statements end to end: clients through the
//! gateway and the embedded agent to the real PostgreSQL (127.0.0.1:5432)
//! and MariaDB (127.0.0.1:3306) send statements whose errors quote the
//! password typed in them. The client sees the server's message as sent;
//! the session's record keeps the error, without the password, and no
//! store file holds it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::Command;

mod common;

use common::*;

/// The session's error events' messages.
fn error_messages(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["type"] == "error")
        .filter_map(|e| e["message"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_postgres_errors_without_the_passwords_they_quote() {
    let setup = Setup::start(false).await;
    let role = unique("hoop_audit_err_role");
    let admin_db = server_admin("postgres").await;
    admin_db
        .batch_execute(&format!("CREATE ROLE {role}"))
        .await
        .unwrap();
    setup.connection("audited", 5432, json!({})).await;
    setup.wait_status("audited", "online").await;

    // Each fails, and PostgreSQL's message quotes the password: as written
    // (a syntax error at the literal, an unterminated literal) or as read
    // (a parameter's value, a cast).
    let script = format!(
        "ALTER USER PASSWORD 'hunter2-syntax';\n\
         SET password_encryption = 'hunter2-param';\n\
         SELECT 1 FROM (SELECT 1 AS password) t WHERE password = 'hunter2-cast';\n\
         ALTER ROLE {role} PASSWORD, 'hunter2-comma';\n\
         ALTER ROLE {role} PASSWORD E'hunter2\\'unterminated\n"
    );
    let output = run_with_input(
        setup
            .psql("audited", &setup.token, "")
            .args(["-v", "ON_ERROR_STOP=0", "-f", "-"]),
        &script,
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The client got the server's messages as they were.
    for quoted in [
        r#"syntax error at or near "'hunter2-syntax'""#,
        r#"invalid value for parameter "password_encryption": "hunter2-param""#,
        r#"invalid input syntax for type integer: "hunter2-cast""#,
        r#"unterminated quoted string at or near "E'hunter2\'unterminated"#,
    ] {
        assert!(stderr.contains(quoted), "{quoted} not in {stderr}");
    }

    // The extended protocol: the Parse fails, before any Execute.
    let addr = setup.gateway.postgres_addr.unwrap();
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user=audited password={} dbname={}",
            addr.ip(),
            addr.port(),
            setup.token,
            setup.database
        ),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    let driver = tokio::spawn(connection);
    let error = client
        .prepare("CREATE ROLE PASSWORD 'hunter2-parse'")
        .await
        .unwrap_err();
    let error = error.as_db_error().map(|e| e.message().to_owned());
    assert_eq!(
        error.as_deref(),
        Some(r#"syntax error at or near "'hunter2-parse'""#)
    );
    drop(client);
    let _ = driver.await;

    let deadline = Instant::now() + Duration::from_secs(20);
    let mut sessions;
    loop {
        sessions = setup.sessions("audited").await;
        if sessions.len() == 2 && sessions.iter().all(|s| s.status != "open") {
            break;
        }
        assert!(Instant::now() < deadline, "sessions never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut messages = Vec::new();
    for session in &sessions {
        let events = wait_events(&setup.admin, &session.id, "end").await;
        messages.extend(error_messages(&events));
    }
    messages.sort();
    let mut expected = vec![
        r#"syntax error at or near "'[REDACTED:PASSWORD]'""#.to_owned(),
        r#"invalid value for parameter "password_encryption": "[REDACTED:PASSWORD]""#.to_owned(),
        r#"invalid input syntax for type integer: "[REDACTED:PASSWORD]""#.to_owned(),
        r#"syntax error at or near ",""#.to_owned(),
        r#"unterminated quoted string at or near "E'[REDACTED:PASSWORD]""#.to_owned(),
        r#"syntax error at or near "'[REDACTED:PASSWORD]'""#.to_owned(),
    ];
    expected.sort();
    assert_eq!(messages, expected);

    let stored = store_text(&setup.dir);
    assert!(stored.contains("[REDACTED:PASSWORD]"));
    assert!(!stored.contains("hunter2"), "a password is in the store");

    let _ = admin_db
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_mariadb_errors_without_the_passwords_they_quote() {
    let setup = MysqlSetup::start("audit_err").await;
    setup.connection("my", json!({})).await;
    let (name, token) = (&setup.name, &setup.token);

    // MariaDB's syntax error quotes the statement from where parsing
    // failed, cut after 80 characters: the long password's start only.
    let long = format!("hunter2-long-{}", "0123456789".repeat(9));
    let script = format!(
        "ALTER USER IDENTIFIED BY 'hunter2-missing-user';\n\
         ALTER USER '{name}'@'%' IDENTIFIED BY , 'hunter2-comma';\n\
         ALTER USER '{name}'@'%' IDENTIFIED WITH BY 'hunter2-no-plugin';\n\
         CREATE USER IDENTIFIED BY '{long}';\n\
         SET PASSWORD FOR = 'hunter2-set';\n"
    );
    let addr = setup.gateway.mysql_addr.unwrap();
    // From stdin: with `-e`, `--force` does not go on after an error.
    let output = run_with_input(
        Command::new("mariadb")
            .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
            .args(["-u", "my", "--skip-ssl", "--connect-timeout=10", "--force"])
            .arg(format!("-p{token}"))
            .arg(name),
        &script,
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    for quoted in [
        "near 'BY 'hunter2-missing-user'' at line 1",
        "near ' 'hunter2-comma'' at line 1",
        "near 'BY 'hunter2-no-plugin'' at line 1",
        "near 'BY 'hunter2-long-0123456789",
        "near '= 'hunter2-set'' at line 1",
    ] {
        assert!(stderr.contains(quoted), "{quoted} not in {stderr}");
    }

    let session = ended_session(&setup.gateway, "my").await;
    let events = wait_events(&setup.admin, &session.id, "end").await;
    let near: Vec<String> = error_messages(&events)
        .iter()
        .map(|m| m.split("to use near ").nth(1).unwrap_or(m).to_owned())
        .collect();
    assert_eq!(
        near,
        [
            "'BY '[REDACTED:PASSWORD]'' at line 1",
            "' '[REDACTED:PASSWORD]'' at line 1",
            "'BY '[REDACTED:PASSWORD]'' at line 1",
            "'BY '[REDACTED:PASSWORD]...' at line 1",
            "'= '[REDACTED:PASSWORD]'' at line 1",
        ],
        "{events:?}"
    );

    let stored = store_text(&setup.dir);
    assert!(stored.contains("[REDACTED:PASSWORD]"));
    assert!(!stored.contains("hunter2"), "a password is in the store");
    setup.stop().await;
}
