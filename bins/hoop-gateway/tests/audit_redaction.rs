//! Audit records end to end: psql through the gateway's PostgreSQL listener
//! and the embedded agent to the real PostgreSQL at 127.0.0.1:5432 sets
//! passwords and filters on an email; neither reaches the session's events
//! or the store's files, though the statements ran.

use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::store::SessionFilter;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

async fn server_admin(database: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&format!("{SERVER}/{database}"), tokio_postgres::NoTls)
            .await
            .expect("the tests need PostgreSQL at 127.0.0.1:5432 (user postgres, trust)");
    tokio::spawn(connection);
    client
}

/// Polls (bounded) until `f` returns something.
async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(value) = f().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_masked_values_never_reach_the_session_record() {
    let database = unique("hoop_audit");
    let role = unique("hoop_audit_role");
    let admin_db = server_admin("postgres").await;
    admin_db
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    server_admin(&database)
        .await
        .batch_execute(
            "CREATE TABLE people (id int PRIMARY KEY, email text);
             INSERT INTO people VALUES (1, 'ana@example.com'), (2, 'bo@example.com');",
        )
        .await
        .unwrap();

    let dir = std::env::temp_dir().join(unique("hoop-audit-test"));
    let mut config = GatewayConfig::new(&dir);
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.postgres_listen = Some("127.0.0.1:0".into());
    let gateway = Gateway::start(config).await.unwrap();
    let token = gateway.first_admin_token.clone().unwrap();
    let admin =
        ApiClient::new(&format!("http://{}", gateway.api_addr), Some(token.clone())).unwrap();
    let key = gateway.embedded_agent_key("default").await.unwrap();
    let agent = tokio::spawn(hoop_agent::run(hoop_agent::AgentConfig { key, tls: None }));

    let created = admin
        .json(
            Method::POST,
            "/api/connections",
            &json!({
                "name": "audited",
                "type": "database",
                "subtype": "postgres",
                "agent_id": "default",
                "redact_enabled": true,
                "redact_types": ["EMAIL_ADDRESS"],
                "secret": {
                    "envvar:HOST": b64("127.0.0.1"),
                    "envvar:PORT": b64("5432"),
                    "envvar:USER": b64("postgres"),
                    "envvar:PASS": b64("unused-with-trust"),
                    "envvar:DB": b64(&database),
                },
            }),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    eventually("the connection to be online", || async {
        let body = admin.get("/api/connections/audited").await.ok()?.body;
        (body["status"] == "online").then_some(())
    })
    .await;

    // What psql's \password sends is a SCRAM verifier; the server stores it as given.
    let verifier = "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=:ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    let script = format!(
        "CREATE ROLE {role} LOGIN PASSWORD 'hunter2-first';\n\
         ALTER ROLE {role} WITH ENCRYPTED PASSWORD E'hunter2\\'second';\n\
         ALTER USER {role} PASSWORD '{verifier}';\n\
         SELECT id FROM people WHERE email = 'bo@example.com';\n\
         ALTER ROLE {role} PASSWORD 'hunter2-' || 'broken';\n"
    );
    let addr = gateway.postgres_addr.unwrap();
    let mut child = Command::new("psql")
        .arg(format!(
            "host={} port={} user=audited dbname={database} sslmode=prefer connect_timeout=10",
            addr.ip(),
            addr.port(),
        ))
        .args(["-X", "-At", "-f", "-"])
        .env("PGPASSWORD", &token)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(script.as_bytes()).await.unwrap();
    }
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The statements ran (the last one is a syntax error, recorded as one).
    assert!(stdout.lines().any(|l| l == "2"), "{stdout}\n{stderr}");
    assert!(stderr.contains("syntax error"), "{stderr}");
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

    let session = eventually("the session to end", || async {
        let filter = SessionFilter {
            connection: Some("audited".into()),
            ..SessionFilter::default()
        };
        let sessions = gateway
            .state()
            .store
            .list_sessions(&filter, 10)
            .await
            .ok()?;
        sessions.into_iter().find(|s| s.status != "open")
    })
    .await;
    let events: Vec<Value> = eventually("the session's end event", || async {
        let response = admin
            .get(&format!("/api/sessions/{}/events", session.id))
            .await
            .ok()?;
        let text = match &response.body {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let events: Vec<Value> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        events
            .last()
            .is_some_and(|e| e["type"] == "end")
            .then_some(events)
    })
    .await;
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
            format!("ALTER ROLE {role} PASSWORD '[REDACTED:PASSWORD]' || '[REDACTED:PASSWORD]';"),
        ],
        "{events:?}"
    );

    // Nothing of them in the store's files either.
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        stored.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("[REDACTED:PASSWORD]"));
    for secret in [
        "hunter2",
        "broken",
        "MDEyMzQ1Njc4OWFiY2Rl",
        "ZmVkY2JhOTg3NjU0MzIx",
        "bo@example.com",
        token.as_str(),
    ] {
        assert!(!stored.contains(secret), "{secret} found in the store");
    }

    agent.abort();
    drop(gateway);
    let _ = admin_db
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {database} WITH (FORCE); DROP ROLE IF EXISTS {role}"
        ))
        .await;
    let _ = std::fs::remove_dir_all(&dir);
}
