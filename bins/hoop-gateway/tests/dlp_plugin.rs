//! The `dlp` plugin end to end: `PUT /api/plugins/dlp` changes what the
//! next session masks, with no restart, through psql on the gateway's
//! PostgreSQL listener and through exec, with an agent and the real
//! PostgreSQL at 127.0.0.1:5432; on both stores.

use std::process::Output;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::process::Command;

const SERVER: &str = "postgres://postgres@127.0.0.1:5432";

fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

async fn server_admin(database: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&format!("{SERVER}/{database}"), tokio_postgres::NoTls)
            .await
            .expect("the tests need PostgreSQL at 127.0.0.1:5432 (user postgres, trust)");
    tokio::spawn(connection);
    client
}

/// A gateway with its embedded agent and a fresh database; dropped
/// databases and directory on `stop`.
struct Setup {
    gateway: Gateway,
    admin: ApiClient,
    token: String,
    agent: tokio::task::JoinHandle<()>,
    database: String,
    dir: std::path::PathBuf,
    store_database: Option<String>,
}

impl Setup {
    async fn start(postgres_store: bool) -> Self {
        let database = unique("hoop_dlp");
        let admin_db = server_admin("postgres").await;
        admin_db
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        let store_database = if postgres_store {
            let name = unique("hoop_dlp_store");
            admin_db
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            Some(name)
        } else {
            None
        };
        server_admin(&database)
            .await
            .batch_execute(
                "CREATE TABLE staff (id int PRIMARY KEY, email text, note text, secret text);
                 INSERT INTO staff VALUES (1, 'ana@example.com', 'badge EMP-123456', 'swordfish');",
            )
            .await
            .unwrap();
        let dir = std::env::temp_dir().join(unique("hoop-dlp-test"));
        let mut config = GatewayConfig::new(&dir);
        config.api_listen = "127.0.0.1:0".into();
        config.agent_listen = "127.0.0.1:0".into();
        config.postgres_listen = Some("127.0.0.1:0".into());
        config.database_url = store_database
            .as_ref()
            .map(|name| format!("{SERVER}/{name}"));
        let gateway = Gateway::start(config).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let admin =
            ApiClient::new(&format!("http://{}", gateway.api_addr), Some(token.clone())).unwrap();
        let key = gateway.embedded_agent_key("default").await.unwrap();
        let agent = tokio::spawn(hoop_agent::run(hoop_agent::AgentConfig { key, tls: None }));
        Self {
            gateway,
            admin,
            token,
            agent,
            database,
            dir,
            store_database,
        }
    }

    async fn connection(&self, name: &str, extra: Value) {
        let mut body = json!({
            "name": name,
            "type": "database",
            "subtype": "postgres",
            "agent_id": "default",
            "secret": {
                "envvar:HOST": b64("127.0.0.1"),
                "envvar:PORT": b64("5432"),
                "envvar:USER": b64("postgres"),
                "envvar:PASS": b64("unused-with-trust"),
                "envvar:DB": b64(&self.database),
            },
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let response = self
            .admin
            .json(Method::POST, "/api/connections", &body)
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self
            .admin
            .get(&format!("/api/connections/{name}"))
            .await
            .unwrap()
            .body["status"]
            != "online"
        {
            assert!(Instant::now() < deadline, "{name} never came online");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn psql(&self, connection: &str, sql: &str) -> String {
        let addr = self.gateway.postgres_addr.unwrap();
        let output: Output = Command::new("psql")
            .arg(format!(
                "host={} port={} user={connection} dbname={} sslmode=prefer connect_timeout=10",
                addr.ip(),
                addr.port(),
                self.database
            ))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .env("PGPASSWORD", &self.token)
            .kill_on_drop(true)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    async fn exec(&self, connection: &str, sql: &str) -> String {
        let response = self
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

    async fn put_dlp(&self, body: &Value) -> Value {
        let response = self
            .admin
            .json(Method::PUT, "/api/plugins/dlp", body)
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response.body
    }

    async fn stop(self) {
        self.agent.abort();
        drop(self.gateway);
        let admin_db = server_admin("postgres").await;
        for name in std::iter::once(&self.database).chain(self.store_database.as_ref()) {
            let _ = admin_db
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const SELECT: &str = "SELECT email, note, secret FROM staff";

async fn a_put_to_the_dlp_plugin_changes_what_the_next_session_masks(postgres_store: bool) {
    let setup = Setup::start(postgres_store).await;
    setup
        .connection(
            "pg",
            json!({"redact_enabled": true, "redact_types": ["EMAIL_ADDRESS"]}),
        )
        .await;
    // As created: the entry derived from redact_types, hoop-masking's
    // defaults otherwise.
    assert_eq!(
        setup.psql("pg", SELECT).await,
        "[REDACTED:EMAIL_ADDRESS]|badge EMP-123456|swordfish\n"
    );

    // The plugin's configuration and the connection's list: a custom
    // entity instead of emails, a partial mask, a column rule. No restart.
    setup
        .put_dlp(&json!({
            "config": {
                "transform": {"type": "mask", "keep_last": 4},
                "custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"}],
                "columns": [{"columns": ["*.secret"], "transform": {"type": "fixed", "value": "hidden"}}],
            },
            "connections": [{"id": "pg", "config": ["EMPLOYEE_ID"]}],
        }))
        .await;
    let masked = "ana@example.com|badge ******3456|hidden\n";
    assert_eq!(setup.psql("pg", SELECT).await, masked);
    assert_eq!(
        setup.exec("pg", SELECT).await,
        masked.replace('|', "\t"),
        "exec applies the same policy"
    );

    // An empty list: the default built-in set and every custom entity.
    setup
        .put_dlp(&json!({
            "config": {"custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"}]},
            "connections": [{"id": "pg", "config": []}],
        }))
        .await;
    assert_eq!(
        setup.psql("pg", SELECT).await,
        "[REDACTED:EMAIL_ADDRESS]|badge [REDACTED:EMPLOYEE_ID]|swordfish\n"
    );

    // Left out of the plugin: no masking, and the connection reads so.
    setup.put_dlp(&json!({"connections": []})).await;
    assert_eq!(
        setup.psql("pg", SELECT).await,
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
        setup.exec("pg", "SELECT email FROM staff").await,
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
