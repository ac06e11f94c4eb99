//! Sessions end to end: psql through the gateway's PostgreSQL listener, an
//! agent running the driver, the real PostgreSQL at 127.0.0.1:5432; every
//! refusal; the agent killed mid-session; the records these leave.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

mod common;

use common::*;

async fn psql_reaches_the_database_and_is_recorded(postgres_store: bool, route: Route) {
    let setup = Setup::start_with(postgres_store, route).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    // While a session runs, the agent's link carries its stream, unless
    // the session is served in place.
    let agent_id = setup
        .gateway
        .state()
        .store
        .find_agent("default")
        .await
        .unwrap()
        .unwrap()
        .id;
    let mut sleeper = setup
        .psql("pg", &setup.token, "SELECT pg_sleep(0.5)")
        .spawn()
        .unwrap();
    let mut most_streams = 0;
    while sleeper.try_wait().unwrap().is_none() {
        most_streams = most_streams.max(setup.gateway.state().links.open_streams(&agent_id));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(most_streams > 0, route == Route::Link, "{most_streams}");
    let output = setup
        .run_psql(
            "pg",
            &setup.token,
            "SELECT id, email FROM people ORDER BY id",
        )
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "1|ana@example.com\n2|bo@example.com\n3|cy@example.com\n"
    );
    let session = setup.ended_session("pg").await;
    assert_eq!(session.status, "done", "{session:?}");
    assert_eq!(session.user_email, "admin@localhost");
    assert_eq!(session.access_mode, "connect");
    assert_eq!(session.protocol, "postgres");
    assert!(session.bytes_in > 0 && session.bytes_out > 0, "{session:?}");
    assert!(session.ended_at.is_some());
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_the_native_listener_on_sqlite() {
    psql_reaches_the_database_and_is_recorded(false, Route::Link).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_the_native_listener_with_the_store_on_postgres() {
    psql_reaches_the_database_and_is_recorded(true, Route::Link).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_through_the_native_listener_in_place() {
    psql_reaches_the_database_and_is_recorded(false, Route::InPlace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_cancels_its_query_through_the_listener() {
    let setup = Setup::start_with(false, Route::InPlace).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let sleeper = setup
        .psql("pg", &setup.token, "SELECT pg_sleep(60)")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let server = server_admin(&setup.database).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running: i64 = server
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(60)' AND state = 'active'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if running == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Ctrl-C: psql sends a CancelRequest, with the key the session's driver
    // gave it, on a new connection to the gateway's listener.
    let pid = sleeper.id().unwrap().to_string();
    let signalled = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .await
        .unwrap();
    assert!(signalled.success());
    let output = tokio::time::timeout(Duration::from_secs(20), sleeper.wait_with_output())
        .await
        .expect("the query was not cancelled")
        .unwrap();
    assert!(
        stderr(&output).contains("canceling statement due to user request"),
        "{}",
        stderr(&output)
    );
    let session = setup.ended_session("pg").await;
    assert_eq!(session.status, "done", "{session:?}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_clear_recorded_and_reach_nothing() {
    let setup = Setup::start(false).await;
    setup.connection("pg", 5432, json!({})).await;
    setup
        .connection(
            "noconnect",
            5432,
            json!({"access_mode_connect": "disabled"}),
        )
        .await;
    setup.connection("guarded", 5432, json!({})).await;
    // Nothing listens on port 1: the agent reports the target unreachable.
    setup.connection("unreachable", 1, json!({})).await;
    for name in ["pg", "noconnect", "guarded"] {
        setup.wait_status(name, "online").await;
    }
    setup.wait_status("unreachable", "offline").await;

    // A person outside the group access_control names.
    let created = setup
        .admin
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": "bob@example.com", "name": "Bob"}),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let bob = setup
        .admin
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "bob", "user_id": "bob@example.com"}),
        )
        .await
        .unwrap()
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    setup
        .admin
        .json(Method::POST, "/api/users/groups", &json!({"name": "dba"}))
        .await
        .unwrap();
    let set = setup
        .admin
        .json(
            Method::PUT,
            "/api/plugins/access_control",
            &json!({"connections": [{"id": "guarded", "config": ["dba"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);

    let application = |name: &str| format!("SELECT 'reached-{name}'");
    let cases = [
        ("pg", "not-a-token".to_owned(), "invalid access token"),
        (
            "noconnect",
            setup.token.clone(),
            "connect access is disabled on connection noconnect",
        ),
        ("guarded", bob.clone(), "connection guarded not found"),
        ("unreachable", setup.token.clone(), "is offline"),
        (
            "missing",
            setup.token.clone(),
            "connection missing not found",
        ),
    ];
    for (connection, token, message) in cases {
        let output = setup
            .run_psql(connection, &token, &application(connection))
            .await;
        assert!(
            !output.status.success(),
            "{connection}: {}",
            stdout(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{connection}: {}",
            stderr(&output)
        );
        let session = setup.ended_session(connection).await;
        assert_eq!(session.status, "refused", "{session:?}");
        assert!(
            session
                .error
                .as_deref()
                .is_some_and(|e| e.contains(message)),
            "{session:?}"
        );
        assert_eq!(session.bytes_in, 0);
    }
    // Nothing reached the database: no statement of ours ever ran there.
    let seen = server_admin(&setup.database)
        .await
        .query(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%reached-%' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(seen[0].get::<_, i64>(0), 0);
    // The person in the group gets in.
    let output = setup.run_psql("guarded", &setup.token, "SELECT 1").await;
    assert!(output.status.success(), "{}", stderr(&output));
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_agent_ends_the_session_with_an_error_and_a_failed_record() {
    let setup = Setup::start(false).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let warm = setup.run_psql("pg", &setup.token, "SELECT 1").await;
    assert!(warm.status.success());
    let exec = setup
        .admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "SELECT 1"}),
        )
        .await
        .unwrap();
    assert_eq!(exec.body["output"], "1\n");
    let marker = unique("kill_marker");
    let child = setup
        .psql(
            "pg",
            &setup.token,
            &format!("SELECT pg_sleep(60), '{marker}'"),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the statement runs on the server.
    let watcher = server_admin(&setup.database).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let rows = watcher
            .query(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()",
                &[&format!("%{marker}%")],
            )
            .await
            .unwrap();
        if !rows.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the statement never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    setup.agent.abort();
    let output = child.wait_with_output().await.unwrap();
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("the agent serving this connection went away"),
        "{}",
        stderr(&output)
    );
    let session = setup.ended_session("pg").await;
    assert_eq!(session.status, "failed", "{session:?}");
    assert!(session.ended_at.is_some());
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_returns_the_rows_psql_sees_directly() {
    let setup = Setup::start(false).await;
    setup.connection("pg", 5432, json!({})).await;
    setup
        .connection("noexec", 5432, json!({"access_mode_exec": "disabled"}))
        .await;
    setup.wait_status("pg", "online").await;
    setup.wait_status("noexec", "online").await;
    let sql = "SELECT id, email, NULL AS nothing FROM people ORDER BY id";
    let direct = Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port=5432 user=postgres dbname={}",
            setup.database
        ))
        .args(["-X", "-At", "-F", "\t", "-c", sql])
        .output()
        .await
        .unwrap();
    assert!(direct.status.success());
    let response = setup
        .admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": sql}),
        )
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    assert_eq!(response.body["output"], stdout(&direct));
    assert_eq!(response.body["exit_code"], 0);
    assert_eq!(response.body["status"], "done");
    let id = response.body["session_id"].as_str().unwrap().to_owned();
    let shown = setup
        .admin
        .get(&format!("/api/sessions/{id}"))
        .await
        .unwrap()
        .body;
    assert_eq!(shown["access_mode"], "exec");
    assert_eq!(shown["status"], "done");

    let json_output = setup
        .admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "SELECT id FROM people WHERE id = 2", "output": "json"}),
        )
        .await
        .unwrap();
    let rows: Value = serde_json::from_str(json_output.body["output"].as_str().unwrap()).unwrap();
    // Values keep their column's type: an int is a JSON number.
    assert_eq!(rows, json!([{"id": 2}]));

    let failing = setup
        .admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "SELECT * FROM no_such_table"}),
        )
        .await
        .unwrap();
    assert_eq!(failing.body["exit_code"], 1, "{:?}", failing.body);
    assert!(
        failing.body["error"]
            .as_str()
            .unwrap()
            .contains("no_such_table"),
        "{:?}",
        failing.body
    );
    let refused = setup
        .admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "noexec", "script": "SELECT 1"}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(refused.body["exit_code"], 1);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("exec access is disabled on connection noexec")
    );
    let listed = setup
        .admin
        .get("/api/sessions?connection=noexec&status=refused")
        .await
        .unwrap()
        .body;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_psql_session_is_recorded_statement_by_statement_without_values_or_secrets() {
    psql_session_is_recorded(Route::Link).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_place_psql_session_is_recorded_the_same_way() {
    psql_session_is_recorded(Route::InPlace).await;
}

async fn psql_session_is_recorded(route: Route) {
    let setup = Setup::start_with(false, route).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let script = "SELECT id FROM people ORDER BY id;\n\
                  SELECT email FROM people WHERE id = 2;\n\
                  UPDATE people SET id = id WHERE id < 3;\n\
                  SELECT * FROM no_such_table;\n";
    // `-c ""` then `-f -`: psql runs both; feed the script on stdin.
    let output = run_with_input(setup.psql("pg", &setup.token, "").args(["-f", "-"]), script).await;
    assert!(stdout(&output).contains("bo@example.com"));
    let session = setup.ended_session("pg").await;
    let events = wait_events(&setup.admin, &session.id, "end").await;
    let statements: Vec<(String, Value)> = events
        .iter()
        .filter(|e| e["type"] == "statement")
        .map(|e| {
            (
                e["statement"].as_str().unwrap().to_owned(),
                e["rows"].clone(),
            )
        })
        .collect();
    assert_eq!(
        statements,
        vec![
            ("SELECT id FROM people ORDER BY id;".to_owned(), json!(3)),
            (
                "SELECT email FROM people WHERE id = 2;".to_owned(),
                json!(1)
            ),
            (
                "UPDATE people SET id = id WHERE id < 3;".to_owned(),
                json!(2)
            ),
        ],
        "{events:?}"
    );
    let error = events.iter().find(|e| e["type"] == "error").unwrap();
    assert_eq!(error["code"], "42P01");
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // No result value, token or credential anywhere in the store's files.
    let stored = store_text(&setup.dir);
    assert!(stored.contains("SELECT email FROM people WHERE id = 2"));
    for secret in [
        "bo@example.com",
        "ana@example.com",
        setup.token.as_str(),
        "unused-with-trust",
    ] {
        assert!(!stored.contains(secret), "{secret} found in the store");
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_policy_masks_and_refuses_in_psql_and_exec() {
    policy_masks_and_refuses(Route::Link).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_policy_applies_in_place_too() {
    policy_masks_and_refuses(Route::InPlace).await;
}

async fn policy_masks_and_refuses(route: Route) {
    let setup = Setup::start_with(false, route).await;
    setup
        .connection(
            "masked",
            5432,
            json!({
                "redact_enabled": true,
                "redact_types": ["EMAIL_ADDRESS"],
                "guardrail_rules": [{"type": "deny_statements", "name": "no-drop", "statements": ["drop"], "message": "no drops here"}],
            }),
        )
        .await;
    setup.wait_status("masked", "online").await;
    let output = setup
        .run_psql(
            "masked",
            &setup.token,
            "SELECT id, email FROM people ORDER BY id",
        )
        .await;
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stdout(&output).contains("@example.com"),
        "{}",
        stdout(&output)
    );
    assert_eq!(stdout(&output).lines().count(), 3);
    assert!(
        stdout(&output).starts_with("1|[REDACTED:EMAIL_ADDRESS]"),
        "{}",
        stdout(&output)
    );
    let session = setup.ended_session("masked").await;
    let events = wait_events(&setup.admin, &session.id, "end").await;
    let policy = events.iter().find(|e| e["type"] == "policy").unwrap();
    assert_eq!(policy["masked"]["EMAIL_ADDRESS"], 3, "{events:?}");

    let refused = setup
        .run_psql("masked", &setup.token, "DROP TABLE people")
        .await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no drops here"),
        "{}",
        stderr(&refused)
    );
    let session = setup.ended_session("masked").await;
    let events = wait_events(&setup.admin, &session.id, "end").await;
    let statement = events.iter().find(|e| e["type"] == "statement").unwrap();
    assert_eq!(statement["refused"], true);
    assert!(
        statement["rule"]
            .as_str()
            .unwrap()
            .contains("no drops here")
    );
    let still_there = server_admin(&setup.database)
        .await
        .query("SELECT count(*) FROM people", &[])
        .await
        .unwrap();
    assert_eq!(still_there[0].get::<_, i64>(0), 3);

    let single = setup
        .run_psql(
            "masked",
            &setup.token,
            "SELECT email FROM people WHERE id = 1",
        )
        .await;
    assert_eq!(stdout(&single), "[REDACTED:EMAIL_ADDRESS]\n");
    let exec = setup
        .admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "masked", "script": "SELECT email FROM people WHERE id = 1"}),
        )
        .await
        .unwrap();
    assert_eq!(
        exec.body["output"], "[REDACTED:EMAIL_ADDRESS]\n",
        "{:?}",
        exec.body
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardrail_rule_set_from_the_api_guards_new_sessions_and_follows_its_changes() {
    let setup = Setup::start(false).await;
    let created = setup
        .admin
        .json(
            Method::POST,
            "/api/guardrails",
            &json!({
                "name": "no-deletes",
                "input": {"rules": [{"type": "deny_words_list", "words": ["delete"], "message": "no deletes here"}]},
            }),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    setup
        .connection("guarded", 5432, json!({"guardrail_rules": [id]}))
        .await;
    setup.wait_status("guarded", "online").await;
    let count = || async {
        server_admin(&setup.database)
            .await
            .query("SELECT count(*) FROM people", &[])
            .await
            .unwrap()[0]
            .get::<_, i64>(0)
    };

    let refused = setup
        .run_psql("guarded", &setup.token, "DELETE FROM people")
        .await;
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("no deletes here"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(count().await, 3);

    let replaced = setup
        .admin
        .json(
            Method::PUT,
            &format!("/api/guardrails/{id}"),
            &json!({
                "name": "no-updates",
                "input": {"rules": [{"type": "pattern_match", "pattern_regex": "(?i)^\\s*update\\b", "message": "no updates here"}]},
            }),
        )
        .await
        .unwrap();
    assert_eq!(replaced.status, StatusCode::OK, "{:?}", replaced.body);
    let update = setup
        .run_psql("guarded", &setup.token, "UPDATE people SET email = NULL")
        .await;
    assert!(
        stderr(&update).contains("no updates here"),
        "{}",
        stderr(&update)
    );
    let delete = setup
        .run_psql("guarded", &setup.token, "DELETE FROM people WHERE id = 3")
        .await;
    assert!(delete.status.success(), "{}", stderr(&delete));
    assert_eq!(count().await, 2);

    let in_use = setup
        .admin
        .send(Method::DELETE, &format!("/api/guardrails/{id}"), None)
        .await
        .unwrap();
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{:?}", in_use.body);
    setup.stop().await;
}

// ---- TLS on the PostgreSQL listener ----

/// psql's host for `ip`.
fn host(ip: std::net::IpAddr) -> String {
    ip.to_string()
}

impl Setup {
    /// psql to the listener at `host` as the connection `pg` with the
    /// person's token, with `options` added to the connection string, each
    /// of `commands` as one `-c`.
    fn psql_at(&self, host: &str, options: &str, commands: &[&str]) -> Command {
        let port = self.gateway.postgres_addr.unwrap().port();
        let mut command = Command::new("psql");
        command
            .arg(format!(
                "host={host} port={port} user=pg dbname={} connect_timeout=10 {options}",
                self.database
            ))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
            .env("PGPASSWORD", &self.token)
            // No ~/.postgresql/root.crt turning require into verify-ca.
            .env("PGSSLROOTCERT", self.dir.join("none.pem"))
            .kill_on_drop(true);
        for sql in commands {
            command.args(["-c", sql]);
        }
        command
    }

    fn ca(&self) -> String {
        self.ca.as_ref().unwrap().display().to_string()
    }
}

/// What psql's `\conninfo` adds when its own connection (the client's leg,
/// to the gateway) is encrypted.
const PSQL_TLS: &str = "SSL connection (protocol: TLSv1.3";

async fn psql_over_tls_is_served(route: Route) {
    let setup = Setup::start_full(false, route, true).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let rows = "SELECT id, email FROM people ORDER BY id";
    let expected = "1|ana@example.com\n2|bo@example.com\n3|cy@example.com\n";

    let required = setup
        .psql_at("127.0.0.1", "sslmode=require", &["\\conninfo", rows])
        .output()
        .await
        .unwrap();
    assert!(required.status.success(), "{}", stderr(&required));
    let out = stdout(&required);
    assert!(out.contains(PSQL_TLS), "{out}");
    assert!(out.ends_with(expected), "{out}");

    // The certificate is the gateway's, checked against its CA and name.
    let verify_full = format!("sslmode=verify-full sslrootcert={}", setup.ca());
    for host in ["127.0.0.1", "localhost"] {
        let verified = setup
            .psql_at(host, &verify_full, &["\\conninfo", rows])
            .output()
            .await
            .unwrap();
        assert!(verified.status.success(), "{host}: {}", stderr(&verified));
        assert!(
            stdout(&verified).contains(PSQL_TLS),
            "{}",
            stdout(&verified)
        );
        assert!(stdout(&verified).ends_with(expected));
    }
    let stranger = setup.dir.join("stranger");
    let stranger_ca = make_certificate(&stranger, "some other CA");
    let unverified = setup
        .psql_at(
            "127.0.0.1",
            &format!("sslmode=verify-full sslrootcert={}", stranger_ca.display()),
            &["SELECT 1"],
        )
        .output()
        .await
        .unwrap();
    assert!(!unverified.status.success());
    assert!(
        stderr(&unverified).contains("certificate verify failed"),
        "{}",
        stderr(&unverified)
    );

    // A result far larger than the socket buffers streams whole over TLS.
    let large = setup
        .psql_at(
            "127.0.0.1",
            "sslmode=require",
            &["SELECT md5(i::text) FROM generate_series(1, 100000) i"],
        )
        .output()
        .await
        .unwrap();
    assert!(large.status.success(), "{}", stderr(&large));
    let out = stdout(&large);
    assert_eq!(out.lines().count(), 100_000);
    // md5('100000')
    assert!(
        out.ends_with("14ee22eaba297944c96afdbe5b16c65b\n"),
        "{}",
        &out[out.len() - 40..]
    );

    // Loopback may still speak plain text (arriving as ::ffff:127.0.0.1).
    let plain = setup
        .psql_at("127.0.0.1", "sslmode=disable", &["\\conninfo", rows])
        .output()
        .await
        .unwrap();
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert!(
        !stdout(&plain).contains("SSL connection"),
        "{}",
        stdout(&plain)
    );
    assert!(stdout(&plain).ends_with(expected));

    let sessions = setup.sessions("pg").await;
    assert_eq!(sessions.len(), 5, "{sessions:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while setup
        .sessions("pg")
        .await
        .iter()
        .any(|s| s.status == "open")
    {
        assert!(Instant::now() < deadline, "the sessions never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for session in setup.sessions("pg").await {
        assert_eq!(session.status, "done", "{session:?}");
        assert!(session.bytes_in > 0 && session.bytes_out > 0, "{session:?}");
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_over_tls_through_the_listener() {
    psql_over_tls_is_served(Route::Link).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_over_tls_in_place() {
    psql_over_tls_is_served(Route::InPlace).await;
}

/// Reads what the gateway sends until it closes (bounded).
async fn read_to_close(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut got)).await;
    got
}

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
const GSSENC_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30];

fn startup_message(user: &str, database: &str) -> Vec<u8> {
    let mut body = 0x0003_0000u32.to_be_bytes().to_vec();
    for part in ["user", user, "database", database, ""] {
        body.extend_from_slice(part.as_bytes());
        body.push(0);
    }
    let mut message = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    message.extend(body);
    message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_text_off_loopback_is_refused_before_the_token_and_tls_is_not() {
    use tokio::io::AsyncWriteExt;
    let setup = Setup::start_full(false, Route::Link, true).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let addresses = other_addresses();
    assert!(
        !addresses.is_empty(),
        "the test needs an address other than loopback (hostname -I)"
    );
    let port = setup.gateway.postgres_addr.unwrap().port();
    for ip in addresses {
        // The gateway answers the StartupMessage with the refusal, not with
        // the request for a password: the token is never asked for.
        let mut raw = tokio::net::TcpStream::connect((ip, port)).await.unwrap();
        raw.write_all(&startup_message("pg", &setup.database))
            .await
            .unwrap();
        let answer = read_to_close(&mut raw).await;
        assert_eq!(answer.first(), Some(&b'E'), "{ip}: {answer:?}");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.contains("28000"), "{text}");
        assert!(
            text.contains(
                "this gateway requires TLS for clients not on loopback; connect with sslmode=require"
            ),
            "{text}"
        );

        let plain = setup
            .psql_at(&host(ip), "sslmode=disable", &["SELECT 1"])
            .output()
            .await
            .unwrap();
        assert!(!plain.status.success(), "{ip}");
        assert!(
            stderr(&plain).contains(
                "FATAL:  this gateway requires TLS for clients not on loopback; connect with sslmode=require"
            ),
            "{ip}: {}",
            stderr(&plain)
        );
        let encrypted = setup
            .psql_at(&host(ip), "sslmode=require", &["\\conninfo", "SELECT 1"])
            .output()
            .await
            .unwrap();
        assert!(encrypted.status.success(), "{ip}: {}", stderr(&encrypted));
        assert!(stdout(&encrypted).contains(PSQL_TLS));
        assert!(stdout(&encrypted).ends_with("1\n"));
    }
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_negotiation_that_breaks_the_protocol_is_refused() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let setup = Setup::start_full(false, Route::Link, true).await;
    let port = setup.gateway.postgres_addr.unwrap().port();
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));

    // A startup sent behind the SSLRequest, before the answer: it would be
    // taken as if it had come over TLS (CVE-2021-23222).
    let mut early = connect().await.unwrap();
    let mut both = SSL_REQUEST.to_vec();
    both.extend(startup_message("pg", &setup.database));
    early.write_all(&both).await.unwrap();
    let answer = read_to_close(&mut early).await;
    assert_eq!(answer.first(), Some(&b'E'), "{answer:?}");
    assert!(String::from_utf8_lossy(&answer).contains("08P01"));

    // GSS encryption is still declined; then TLS, and inside it a second
    // SSLRequest is refused, over TLS.
    let mut tcp = connect().await.unwrap();
    let mut reply = [0u8; 1];
    tcp.write_all(&GSSENC_REQUEST).await.unwrap();
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"N");
    tcp.write_all(&SSL_REQUEST).await.unwrap();
    tcp.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply, b"S");
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(setup.ca.as_ref().unwrap()).unwrap();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(&SSL_REQUEST).await.unwrap();
    tls.flush().await.unwrap();
    let answer = read_to_close(&mut tls).await;
    assert_eq!(answer.first(), Some(&b'E'), "{answer:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("08P01"), "{text}");
    assert!(text.contains("already encrypted"), "{text}");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoop_gateway_marks_its_listeners_tls_when_it_has_a_certificate() {
    use tokio::io::AsyncBufReadExt;
    let dir = std::env::temp_dir().join(unique("hoop-gateway-tls-banner"));
    make_certificate(&dir, "hoop test CA");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoop-gateway"))
        .args([
            "--api-listen",
            "127.0.0.1:0",
            "--agent-listen",
            "127.0.0.1:0",
        ])
        .args(["--postgres-listen", "127.0.0.1:0"])
        .args(["--mysql-listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .arg("--tls-cert")
        .arg(dir.join("cert.pem"))
        .arg("--tls-key")
        .arg(dir.join("key.pem"))
        .env_remove("HOOP_DATABASE_URL")
        .env_remove("HOOP_ADMIN_TOKEN")
        .env_remove("HOOP_SECRET_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut banner = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !banner.contains("mysql:") {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("no banner in 30 s")
            .unwrap()
            .expect("hoop-gateway exited");
        banner.push_str(&line);
        banner.push('\n');
    }
    child.start_kill().unwrap();
    child.wait().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let line = |prefix: &str| {
        banner
            .lines()
            .find(|line| line.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line in:\n{banner}"))
            .to_owned()
    };
    let postgres = line("postgres:");
    assert!(postgres.contains("(TLS)"), "{postgres}");
    assert!(postgres.contains("sslmode=require"), "{postgres}");
    let mysql = line("mysql:");
    assert!(mysql.contains("(TLS)"), "{mysql}");
    assert!(mysql.contains("--ssl,"), "{mysql}");
    let api = line("API:");
    assert!(api.contains("https://127.0.0.1:"), "{api}");
}

/// A PostgreSQL session hoop ends with an error is recorded as failed,
/// with the error event: psql's backend is terminated under it (the server
/// sends its FATAL and closes), over the agent link and in place alike.
/// And a server the agent's probe still finds but that gives no greeting
/// (one restarting accepts and closes; here a TCP listener of the test's
/// own does, which is all the probe checks) is named to psql, the session
/// recorded as failed with that reason.
async fn failed_sessions_are_recorded_as_failed(route: Route) {
    let setup = Setup::start_with(false, route).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let output = setup
        .run_psql(
            "pg",
            &setup.token,
            "SELECT pg_terminate_backend(pg_backend_pid())",
        )
        .await;
    assert!(!output.status.success(), "{}", stdout(&output));
    let session = setup.ended_session("pg").await;
    assert_eq!(session.status, "failed", "{session:?}");
    let record = setup
        .admin
        .get(&format!("/api/sessions/{}", session.id))
        .await
        .unwrap();
    assert_eq!(record.body["status"], "failed", "{:?}", record.body);
    assert!(record.body["error"].is_string(), "{:?}", record.body);
    let events = wait_events(&setup.admin, &session.id, "end").await;
    assert!(
        events.iter().any(|e| e["type"] == "error"),
        "no error event: {events:?}"
    );

    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = server.local_addr().unwrap().port();
    let restarting = tokio::spawn(async move {
        loop {
            let _ = server.accept().await;
        }
    });
    setup.connection("down", port, json!({})).await;
    setup.wait_status("down", "online").await;
    let output = setup.run_psql("down", &setup.token, "SELECT 1").await;
    restarting.abort();
    assert!(!output.status.success(), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("lost the connection to the database server"),
        "{}",
        stderr(&output)
    );
    let session = setup.ended_session("down").await;
    assert_eq!(session.status, "failed", "{session:?}");
    assert!(
        session
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Server connection failed")),
        "{session:?}"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sessions_over_the_link_are_recorded_as_failed() {
    failed_sessions_are_recorded_as_failed(Route::Link).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sessions_in_place_are_recorded_as_failed() {
    failed_sessions_are_recorded_as_failed(Route::InPlace).await;
}
