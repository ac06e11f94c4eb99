//! Audit records end to end: psql through the gateway's PostgreSQL listener
//! and the embedded agent to the real PostgreSQL at 127.0.0.1:5432 sets
//! passwords (also as an inserted column's value) and filters on an email;
//! neither reaches the session's events or the store's files, though the
//! statements ran.

use serde_json::{Value, json};

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_masked_values_never_reach_the_session_record() {
    let setup = Setup::start(false).await;
    let role = unique("hoop_audit_role");
    setup
        .connection(
            "audited",
            5432,
            json!({"redact_enabled": true, "redact_types": ["EMAIL_ADDRESS"]}),
        )
        .await;
    setup.wait_status("audited", "online").await;

    // What psql's \password sends is a SCRAM verifier; the server stores it as given.
    let verifier = "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let script = format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'hunter2-first';\n\
         ALTER ROLE {role} WITH ENCRYPTED PASSWORD E'hunter2\\'second';\n\
         ALTER USER {role} PASSWORD '{verifier}';\n\
         SELECT id FROM people WHERE email = 'bo@example.com';\n\
         CREATE TEMP TABLE creds (login text, password text);\n\
         INSERT INTO creds (login, password) VALUES ('ana', 'hunter2-column');\n\
         ALTER ROLE {role} PASSWORD 'hunter2-' || 'broken';\n"
    );
    let output = run_with_input(
        setup.psql("audited", &setup.token, "").args(["-f", "-"]),
        &script,
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The statements ran (the last one is a syntax error, recorded as one).
    assert!(stdout.lines().any(|l| l == "2"), "{stdout}\n{stderr}");
    assert!(stderr.contains("syntax error"), "{stderr}");
    let admin_db = server_admin("postgres").await;
    let rolpassword = admin_db
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .unwrap();
    assert_eq!(
        rolpassword.get::<_, Option<String>>(0).as_deref(),
        Some(verifier)
    );

    let session = setup.ended_session("audited").await;
    let events: Vec<Value> = wait_events(&setup.admin, &session.id, "end").await;
    let statements: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "statement" || e["type"] == "error")
        .filter_map(|e| e["statement"].as_str())
        .collect();
    assert_eq!(
        statements,
        [
            format!("CREATE ROLE {role} LOGIN PASSWORD '[REDACTED:PASSWORD]';"),
            format!("ALTER ROLE {role} WITH ENCRYPTED PASSWORD '[REDACTED:PASSWORD]';"),
            format!("ALTER USER {role} PASSWORD '[REDACTED:PASSWORD]';"),
            "SELECT id FROM people WHERE email = '[REDACTED:EMAIL_ADDRESS]';".to_owned(),
            "CREATE TEMP TABLE creds (login text, password text);".to_owned(),
            "INSERT INTO creds (login, password) VALUES ('ana', '[REDACTED:PASSWORD]');".to_owned(),
            format!("ALTER ROLE {role} PASSWORD '[REDACTED:PASSWORD]' || '[REDACTED:PASSWORD]';"),
        ],
        "{events:?}"
    );

    // Nothing of them in the store's files either.
    let stored = store_text(&setup.dir);
    assert!(stored.contains("[REDACTED:PASSWORD]"));
    for secret in [
        "hunter2",
        "broken",
        "MDEyMzQ1Njc4OWFiY2Rl",
        "ZmVkY2JhOTg3NjU0MzIx",
        "bo@example.com",
        setup.token.as_str(),
    ] {
        assert!(!stored.contains(secret), "{secret} found in the store");
    }

    let _ = admin_db
        .batch_execute(&format!("DROP ROLE IF EXISTS {role}"))
        .await;
    setup.stop().await;
}
