//! The `dlp` plugin end to end: `PUT /api/plugins/dlp` changes what the
//! next session masks, with no restart, through psql on the gateway's
//! PostgreSQL listener and through exec, with an agent and the real
//! PostgreSQL at 127.0.0.1:5432; on both stores.

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

mod common;

use common::*;

/// The table the policies are tried on.
async fn staff_table(setup: &Setup) {
    server_admin(&setup.database)
        .await
        .batch_execute(
            "CREATE TABLE staff (id int PRIMARY KEY, email text, note text, secret text);
             INSERT INTO staff VALUES (1, 'ana@example.com', 'badge EMP-123456', 'swordfish');",
        )
        .await
        .unwrap();
}

async fn connection(setup: &Setup, name: &str, extra: Value) {
    setup.connection(name, 5432, extra).await;
    setup.wait_status(name, "online").await;
}

/// psql's rows, the statement having succeeded.
async fn psql(setup: &Setup, connection: &str, sql: &str) -> String {
    let output = setup.run_psql(connection, &setup.token, sql).await;
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

async fn exec(setup: &Setup, connection: &str, sql: &str) -> String {
    let response = setup
        .admin
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": connection, "script": sql}),
        )
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body["output"].as_str().unwrap().to_owned()
}

async fn put_dlp(setup: &Setup, body: &Value) -> Value {
    let response = setup
        .admin
        .json(Method::PUT, "/api/plugins/dlp", body)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    response.body
}

const SELECT: &str = "SELECT email, note, secret FROM staff";

async fn a_put_to_the_dlp_plugin_changes_what_the_next_session_masks(postgres_store: bool) {
    let setup = Setup::start(postgres_store).await;
    staff_table(&setup).await;
    connection(
        &setup,
        "pg",
        json!({"redact_enabled": true, "redact_types": ["EMAIL_ADDRESS"]}),
    )
    .await;
    // As created: the entry derived from redact_types, hoop-masking's
    // defaults otherwise.
    assert_eq!(
        psql(&setup, "pg", SELECT).await,
        "[REDACTED:EMAIL_ADDRESS]|badge EMP-123456|swordfish\n"
    );

    // The plugin's configuration and the connection's list: a custom
    // entity instead of emails, a partial mask, a column rule. No restart.
    put_dlp(
        &setup,
        &json!({
            "config": {
                "transform": {"type": "mask", "keep_last": 4},
                "custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"}],
                "columns": [{"columns": ["*.secret"], "transform": {"type": "fixed", "value": "hidden"}}],
            },
            "connections": [{"id": "pg", "config": ["EMPLOYEE_ID"]}],
        }))
        .await;
    let masked = "ana@example.com|badge ******3456|hidden\n";
    assert_eq!(psql(&setup, "pg", SELECT).await, masked);
    assert_eq!(
        exec(&setup, "pg", SELECT).await,
        masked.replace('|', "\t"),
        "exec applies the same policy"
    );

    // An empty list: the default built-in set and every custom entity.
    put_dlp(
        &setup,
        &json!({
            "config": {"custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"}]},
            "connections": [{"id": "pg", "config": []}],
        }),
    )
    .await;
    assert_eq!(
        psql(&setup, "pg", SELECT).await,
        "[REDACTED:EMAIL_ADDRESS]|badge [REDACTED:EMPLOYEE_ID]|swordfish\n"
    );

    // Left out of the plugin: no masking, and the connection reads so.
    put_dlp(&setup, &json!({"connections": []})).await;
    assert_eq!(
        psql(&setup, "pg", SELECT).await,
        "ana@example.com|badge EMP-123456|swordfish\n"
    );
    let connection = setup.admin.get("/api/connections/pg").await.unwrap().body;
    assert_eq!(connection["redact_enabled"], false);

    // An unknown entity type is refused when written, and the sessions
    // keep the stored policy.
    let refused = setup
        .admin
        .json(
            Method::PUT,
            "/api/plugins/dlp",
            &json!({"connections": [{"id": "pg", "config": ["EMAIL"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(refused.body["field"], "connections[0].config[0]");
    assert_eq!(
        exec(&setup, "pg", "SELECT email FROM staff").await,
        "ana@example.com\n"
    );
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlp_changes_apply_to_new_sessions_on_sqlite() {
    a_put_to_the_dlp_plugin_changes_what_the_next_session_masks(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlp_changes_apply_to_new_sessions_with_the_store_on_postgres() {
    a_put_to_the_dlp_plugin_changes_what_the_next_session_masks(true).await;
}
