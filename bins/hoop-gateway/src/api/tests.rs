//! The API over real HTTP against a real gateway, on both backends.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::client::{ApiClient, Response};
use crate::testing::{Backend, TestStore, on_both_backends};
use crate::{Gateway, GatewayConfig};

/// A gateway on a test store, with an admin client.
pub(crate) struct TestGateway {
    pub(crate) test: TestStore,
    pub(crate) gateway: Gateway,
    pub(crate) admin: ApiClient,
    pub(crate) token: String,
}

pub(crate) fn config(test: &TestStore) -> GatewayConfig {
    let mut config = GatewayConfig::new(test.dir.path());
    config.api_listen = "127.0.0.1:0".into();
    config.agent_listen = "127.0.0.1:0".into();
    config.database_url = test.database.as_ref().map(|db| db.url().to_owned());
    config
}

impl TestGateway {
    pub(crate) async fn start(backend: Backend) -> Self {
        let test = TestStore::new(backend).await;
        let gateway = Gateway::start(config(&test)).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let admin = client(&gateway, Some(&token));
        Self {
            test,
            gateway,
            admin,
            token,
        }
    }

    /// Stops the gateway and starts a new one on the same store.
    pub(crate) async fn restart(&mut self) {
        let port = self.gateway.api_addr;
        drop(std::mem::replace(
            &mut self.gateway,
            Gateway::start(config(&self.test)).await.unwrap(),
        ));
        assert_ne!(port, self.gateway.api_addr);
        self.admin = client(&self.gateway, Some(&self.token));
    }

    pub(crate) async fn agent(&self, name: &str) -> (String, String) {
        let response = self
            .admin
            .json(Method::POST, "/api/agents", &json!({"name": name}))
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        (
            response.body["id"].as_str().unwrap().to_owned(),
            response.body["token"].as_str().unwrap().to_owned(),
        )
    }
}

pub(crate) fn client(gateway: &Gateway, token: Option<&str>) -> ApiClient {
    ApiClient::new(
        &format!("http://{}", gateway.api_addr),
        token.map(str::to_owned),
    )
    .unwrap()
}

fn b64(value: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(value)
}

/// The documentation's example body.
pub(crate) fn documented_postgres(name: &str, agent_id: &str) -> Value {
    json!({
        "name": name,
        "type": "database",
        "subtype": "postgres",
        "agent_id": agent_id,
        "secret": {
            "envvar:HOST": "bXlkYi5leGFtcGxlLmNvbQ==",
            "envvar:PORT": b64("5432"),
            "envvar:USER": b64("app"),
            "envvar:PASS": b64("Very-Secret-Pa55word"),
        },
        "access_mode_exec": "enabled",
        "access_mode_connect": "enabled",
        "access_mode_runbooks": "disabled",
        "redact_enabled": true,
        "redact_types": ["EMAIL_ADDRESS"],
        "guardrail_rules": [{"type": "deny_words_list", "words": ["drop"]}],
        "reviewers": ["dba"],
        "tags": ["prod"],
    })
}

fn assert_invalid(response: &Response, field: &str) {
    assert_eq!(
        response.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{field}: {:?}",
        response.body
    );
    assert_eq!(response.body["field"], field, "{:?}", response.body);
}

async fn connection_lifecycle(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("agent-1").await;
    let created = gw
        .admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let body = &created.body;
    assert_eq!(body["name"], "pg");
    assert_eq!(body["type"], "database");
    assert_eq!(body["subtype"], "postgres");
    assert_eq!(body["agent_id"], agent_id.as_str());
    assert_eq!(body["status"], "offline");
    assert_eq!(body["redact_types"], json!(["EMAIL_ADDRESS"]));
    assert_eq!(
        body["secret"],
        json!({"envvar:HOST": "", "envvar:PASS": "", "envvar:PORT": "", "envvar:USER": ""})
    );
    let text = body.to_string();
    assert!(
        !text.contains("Very-Secret") && !text.contains("bXlkYi5"),
        "{text}"
    );

    let again = gw
        .admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);

    let list = gw.admin.get("/api/connections").await.unwrap();
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    for (query, count) in [
        ("type=database", 1),
        ("type=custom", 0),
        ("subtype=postgres", 1),
        ("agent_id=agent-1", 1),
        ("status=offline", 1),
        ("status=online", 0),
    ] {
        let filtered = gw
            .admin
            .get(&format!("/api/connections?{query}"))
            .await
            .unwrap();
        assert_eq!(filtered.body.as_array().unwrap().len(), count, "{query}");
    }
    assert_invalid(
        &gw.admin.get("/api/connections?colour=red").await.unwrap(),
        "colour",
    );

    // Default plugins: audit always, dlp (redact), review (reviewers); not
    // runbooks (disabled) nor access_control.
    let plugins = gw.admin.get("/api/plugins").await.unwrap();
    let enabled: Vec<&str> = plugins
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| !p["connections"].as_array().unwrap().is_empty())
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(enabled, ["audit", "dlp", "review"]);

    // PATCH keeps what it does not name, including the secret.
    let patched = gw
        .admin
        .json(
            Method::PATCH,
            "/api/connections/pg",
            &json!({"tags": ["a"]}),
        )
        .await
        .unwrap();
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["tags"], json!(["a"]));
    assert_eq!(patched.body["redact_enabled"], true);
    // Plugins follow the fields that enable them.
    let enabled = |plugins: Value| -> Vec<String> {
        plugins
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| !p["connections"].as_array().unwrap().is_empty())
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    gw.admin
        .json(Method::PATCH, "/api/connections/pg", &json!({"redact_enabled": false, "access_mode_runbooks": "enabled", "reviewers": ["dba", "sre"]}))
        .await
        .unwrap();
    let plugins = gw.admin.get("/api/plugins").await.unwrap().body;
    assert_eq!(enabled(plugins), ["audit", "review", "runbooks"]);
    let review = gw.admin.get("/api/plugins/review").await.unwrap().body;
    assert_eq!(review["connections"][0]["config"], json!(["dba", "sre"]));
    gw.admin
        .json(Method::PATCH, "/api/connections/pg", &json!({"redact_enabled": true, "access_mode_runbooks": "disabled", "reviewers": ["dba"]}))
        .await
        .unwrap();
    // A GET body sent back as a PUT keeps the withheld secret values.
    let mut round_trip = gw.admin.get("/api/connections/pg").await.unwrap().body;
    round_trip["access_mode_exec"] = json!("disabled");
    let put = gw
        .admin
        .json(Method::PUT, "/api/connections/pg", &round_trip)
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["access_mode_exec"], "disabled");
    // PUT replaces: omitted fields return to defaults.
    let minimal =
        json!({"name": "pg", "type": "database", "subtype": "postgres", "agent_id": agent_id});
    let put = gw
        .admin
        .json(
            Method::PUT,
            &format!("/api/connections/{}", body["id"].as_str().unwrap()),
            &minimal,
        )
        .await
        .unwrap();
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["tags"], json!([]));
    assert_eq!(put.body["secret"].as_object().unwrap().len(), 4);

    // Renaming onto an existing name conflicts and changes nothing.
    let mut other = documented_postgres("other", &agent_id);
    other["name"] = json!("other");
    gw.admin
        .json(Method::POST, "/api/connections", &other)
        .await
        .unwrap();
    let clash = gw
        .admin
        .json(
            Method::PATCH,
            "/api/connections/other",
            &json!({"name": "pg"}),
        )
        .await
        .unwrap();
    assert_eq!(clash.status, StatusCode::CONFLICT);
    assert_eq!(
        gw.admin.get("/api/connections/other").await.unwrap().status,
        StatusCode::OK
    );

    let deleted = gw
        .admin
        .send(Method::DELETE, "/api/connections/pg", None)
        .await
        .unwrap();
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(
        gw.admin.get("/api/connections/pg").await.unwrap().status,
        StatusCode::NOT_FOUND
    );
    let audit = gw.admin.get("/api/plugins/audit").await.unwrap();
    assert_eq!(audit.body["connections"].as_array().unwrap().len(), 1);
}

async fn invalid_connections_name_the_field_and_write_nothing(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("a").await;
    let good = documented_postgres("pg", &agent_id);
    let with = |path: &[&str], value: Value| {
        let mut body = good.clone();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target[path[path.len() - 1]] = value;
        body
    };
    let without = |path: &[&str]| {
        let mut body = good.clone();
        let mut target = &mut body;
        for key in &path[..path.len() - 1] {
            target = &mut target[*key];
        }
        target.as_object_mut().unwrap().remove(path[path.len() - 1]);
        body
    };
    let cases = [
        (
            with(&["secret", "envvar:HOST"], json!("not base64!")),
            "secret.envvar:HOST",
        ),
        (
            with(&["secret", "envvar:HOST"], json!(42)),
            "secret.envvar:HOST",
        ),
        (with(&["type"], json!("spreadsheet")), "type"),
        (with(&["subtype"], json!("nosql")), "subtype"),
        (with(&["subtype"], json!("ssh")), "subtype"),
        (without(&["secret", "envvar:USER"]), "secret.envvar:USER"),
        (
            with(&["secret", "envvar:PORT"], json!(b64("http"))),
            "secret.envvar:PORT",
        ),
        (with(&["agent_id"], json!("no-such-agent")), "agent_id"),
        (without(&["agent_id"]), "agent_id"),
        (with(&["resource_name"], json!("nowhere")), "resource_name"),
        (
            with(&["access_mode_exec"], json!("maybe")),
            "access_mode_exec",
        ),
        (with(&["redact_enabled"], json!("yes")), "redact_enabled"),
        (with(&["tags"], json!("prod")), "tags"),
        (with(&["reviewers"], json!([1])), "reviewers"),
        (
            with(&["guardrail_rules"], json!(["x"])),
            "guardrail_rules[0]",
        ),
        (with(&["name"], json!(7)), "name"),
        (with(&["name"], json!("has space")), "name"),
        (with(&["surprise"], json!(1)), "surprise"),
        (without(&["name"]), "name"),
        (
            json!({"name": "c", "type": "custom", "agent_id": agent_id}),
            "command",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in cases {
        let response = gw
            .admin
            .json(Method::POST, "/api/connections", &body)
            .await
            .unwrap();
        assert_invalid(&response, field);
    }
    let malformed = gw
        .admin
        .send(
            Method::POST,
            "/api/connections",
            Some(b"{\"name\": ".to_vec()),
        )
        .await
        .unwrap();
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let huge = vec![b' '; super::MAX_BODY + 1];
    let oversized = gw
        .admin
        .send(Method::POST, "/api/connections", Some(huge))
        .await
        .unwrap();
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    // The same checks on update, leaving the stored connection unchanged.
    gw.admin
        .json(Method::POST, "/api/connections", &good)
        .await
        .unwrap();
    let before = gw.admin.get("/api/connections/pg").await.unwrap().body;
    let bad_patch = gw
        .admin
        .json(
            Method::PATCH,
            "/api/connections/pg",
            &json!({"tags": ["x"], "subtype": "mysql", "secret": {"envvar:HOST": "%"}}),
        )
        .await
        .unwrap();
    assert_invalid(&bad_patch, "secret.envvar:HOST");
    let bad_put = gw
        .admin
        .json(
            Method::PUT,
            "/api/connections/pg",
            &json!({"name": "pg", "type": "application"}),
        )
        .await
        .unwrap();
    assert_invalid(&bad_put, "subtype");
    assert_eq!(
        gw.admin.get("/api/connections/pg").await.unwrap().body,
        before
    );
    assert_eq!(
        gw.admin
            .get("/api/connections")
            .await
            .unwrap()
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let plugins = gw.admin.get("/api/plugins/audit").await.unwrap();
    assert_eq!(plugins.body["connections"].as_array().unwrap().len(), 1);
}

/// Issue 13, item 10: inline `guardrail_rules` are compiled when written,
/// on every path that writes them (POST, PUT, PATCH, the configuration
/// file): a rule no session could compile is a 422 naming the field, and
/// nothing is stored, instead of a connection that refuses every session.
async fn inline_guardrail_rules_are_compiled_on_write(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("a").await;
    let good_rule = json!({"type": "deny_words_list", "words": ["drop"]});
    let cases = [
        (json!([{"type": "no_such_rule"}]), "guardrail_rules[0].type"),
        (
            json!([good_rule, {"type": "pattern_match", "pattern_regex": "(a"}]),
            "guardrail_rules[1].pattern_regex",
        ),
        (
            json!([{"type": "pattern_match", "pattern_regex": "a{1000}{1000}{1000}"}]),
            "guardrail_rules[0].pattern_regex",
        ),
        (
            json!([{"type": "pattern_match", "pattern_regex": "(", "direction": "output"}]),
            "guardrail_rules[0].pattern_regex",
        ),
        (
            json!([{"type": "deny_statements", "statements": [], "direction": "input"}]),
            "guardrail_rules[0].statements",
        ),
        (
            json!([{"type": "deny_words_list", "words": ["x"], "direction": "sideways"}]),
            "guardrail_rules[0].direction",
        ),
        (
            json!([{"type": "deny_words_list", "words": ["x"], "surprise": 1}]),
            "guardrail_rules[0]",
        ),
        (json!([[]]), "guardrail_rules[0]"),
    ];
    for (rules, field) in &cases {
        let mut body = documented_postgres("pg", &agent_id);
        body["guardrail_rules"] = rules.clone();
        let response = gw
            .admin
            .json(Method::POST, "/api/connections", &body)
            .await
            .unwrap();
        assert_invalid(&response, field);
    }
    let created = gw
        .admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let before = gw.admin.get("/api/connections/pg").await.unwrap().body;
    for (rules, field) in &cases {
        let patch = gw
            .admin
            .json(
                Method::PATCH,
                "/api/connections/pg",
                &json!({"guardrail_rules": rules}),
            )
            .await
            .unwrap();
        assert_invalid(&patch, field);
        let mut body = documented_postgres("pg", &agent_id);
        body["guardrail_rules"] = rules.clone();
        let put = gw
            .admin
            .json(Method::PUT, "/api/connections/pg", &body)
            .await
            .unwrap();
        assert_invalid(&put, field);
    }
    assert_eq!(
        gw.admin.get("/api/connections/pg").await.unwrap().body,
        before
    );
    // Rules that compile are kept as written, direction included.
    let valid = json!([
        {"type": "pattern_match", "pattern_regex": "(?i)drop\\s+table", "direction": "input"},
        {"type": "deny_words_list", "words": ["secret"], "direction": "output"},
    ]);
    let patched = gw
        .admin
        .json(
            Method::PATCH,
            "/api/connections/pg",
            &json!({"guardrail_rules": valid}),
        )
        .await
        .unwrap();
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.body["guardrail_rules"], valid);
    // The configuration file takes the same path.
    let file = format!(
        "[[connections]]\nname = \"from-file\"\ntype = \"database\"\nsubtype = \"postgres\"\n\
         agent_id = \"{agent_id}\"\nguardrail_rules = [{{type = \"pattern_match\", pattern_regex = \"(a\"}}]\n\
         [connections.secret]\n\"envvar:HOST\" = \"db\"\n\"envvar:PORT\" = \"5432\"\n\"envvar:USER\" = \"u\"\n\"envvar:PASS\" = \"p\"\n"
    );
    let inputs = crate::config::parse_connections(&file, "default").unwrap();
    let error = gw.gateway.apply_connections(&inputs).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("guardrail_rules[0].pattern_regex"),
        "{error}"
    );
    assert_eq!(
        gw.admin
            .get("/api/connections/from-file")
            .await
            .unwrap()
            .status,
        StatusCode::NOT_FOUND
    );
}

/// Issue 13, item 12: every name goes through one rule for its kind, on
/// every endpoint that takes it; names differing only in case are one
/// name; no name or label takes a control or invisible character; and no
/// body may give a key twice.
async fn names_follow_one_rule_everywhere(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let admin = &gw.admin;
    let (agent_id, _) = gw.agent("a").await;
    let post = |path: &'static str, body: Value| async move {
        admin.json(Method::POST, path, &body).await.unwrap()
    };
    let hostile = ["a\0b", "a\u{1b}[31mb", "a\nb", "a\u{202e}b"];
    // Groups: identifiers, unique regardless of case.
    for bad in hostile
        .iter()
        .copied()
        .chain(["admin ", " admin", ".", "..", "-x", "a/b", ""])
    {
        assert_invalid(
            &post("/api/users/groups", json!({"name": bad})).await,
            "name",
        );
    }
    for taken in ["ADMIN", "Admin"] {
        assert_eq!(
            post("/api/users/groups", json!({"name": taken}))
                .await
                .status,
            StatusCode::CONFLICT,
            "{taken}"
        );
    }
    assert_eq!(
        post("/api/users/groups", json!({"name": "dba"}))
            .await
            .status,
        StatusCode::CREATED
    );
    // Users: e-mail addresses and names.
    for bad in [
        "bob\0@example.com",
        "bob@example.com\n",
        "\u{1b}[2Jbob@example.com",
        "bob@@x",
        "bob@.x",
        "bob @x",
    ] {
        assert_invalid(&post("/api/users", json!({"email": bad})).await, "email");
    }
    for bad in hostile {
        assert_invalid(
            &post(
                "/api/users",
                json!({"email": "bob@example.com", "name": bad}),
            )
            .await,
            "name",
        );
    }
    assert_eq!(
        post("/api/users", json!({"email": "ADMIN@LOCALHOST"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(
            "/api/users",
            json!({"email": "bob@example.com", "name": "Bob"})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    for bad in hostile.iter().copied().chain([" t"]) {
        assert_invalid(
            &post(
                "/api/tokens",
                json!({"name": bad, "user_id": "bob@example.com"}),
            )
            .await,
            "name",
        );
    }
    // Guardrail rule sets: labels, unique regardless of case; descriptions.
    for bad in hostile.iter().copied().chain(["careful ", ""]) {
        assert_invalid(&post("/api/guardrails", json!({"name": bad})).await, "name");
    }
    assert_eq!(
        post(
            "/api/guardrails",
            json!({"name": "careful", "description": "two\nlines"})
        )
        .await
        .status,
        StatusCode::CREATED
    );
    assert_eq!(
        post("/api/guardrails", json!({"name": "CAREFUL"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_invalid(
        &post(
            "/api/guardrails",
            json!({"name": "other", "description": "bell\u{7}"}),
        )
        .await,
        "description",
    );
    // Connections, agents, resources: identifiers, unique regardless of case.
    for bad in hostile
        .iter()
        .copied()
        .chain([".", "..", "-x", "a b", "é", &"x".repeat(64)])
    {
        assert_invalid(
            &post("/api/connections", documented_postgres(bad, &agent_id)).await,
            "name",
        );
        assert_invalid(&post("/api/agents", json!({"name": bad})).await, "name");
        assert_invalid(
            &post("/api/resources", json!({"name": bad, "type": "database"})).await,
            "name",
        );
    }
    assert_eq!(
        post("/api/connections", documented_postgres("pg", &agent_id))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        post("/api/connections", documented_postgres("PG", &agent_id))
            .await
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post("/api/agents", json!({"name": "A"})).await.status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post("/api/resources", json!({"name": "r", "type": "database"}))
            .await
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        post("/api/resources", json!({"name": "R", "type": "database"}))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let renamed = admin
        .json(
            Method::PATCH,
            "/api/connections/pg",
            &json!({"name": "pg\n"}),
        )
        .await
        .unwrap();
    assert_invalid(&renamed, "name");
    let mut sixty_three = documented_postgres(&"x".repeat(63), &agent_id);
    sixty_three["tags"] = json!(["ok"]);
    assert_eq!(
        post("/api/connections", sixty_three).await.status,
        StatusCode::CREATED
    );
    // The lists a connection carries, and the plugins' entries.
    for (field, value, named) in [
        ("tags", json!(["prod", "x\u{1b}"]), "tags[1]"),
        ("reviewers", json!(["dba\n"]), "reviewers[0]"),
        ("reviewers", json!(["db a"]), "reviewers[0]"),
        ("command", json!(["psql", "a\0b"]), "command[1]"),
    ] {
        let mut body = documented_postgres("other", &agent_id);
        body[field] = value;
        assert_invalid(&post("/api/connections", body).await, named);
    }
    for (plugin, config) in [
        ("access_control", json!(["ad min"])),
        ("review", json!(["x\0"])),
        ("slack", json!(["#ops\n"])),
    ] {
        let response = admin
            .json(
                Method::PUT,
                &format!("/api/plugins/{plugin}"),
                &json!({"connections": [{"id": "pg", "config": config}]}),
            )
            .await
            .unwrap();
        assert_invalid(&response, "connections[0].config[0]");
    }
    // A refused session records the name as typed, its control
    // characters escaped.
    let (bob, _) = user_with_token(&gw, "carol@example.com", &[]).await;
    let refused = bob
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg\n\u{1b}[2J", "script": "x"}),
        )
        .await
        .unwrap();
    assert_eq!(refused.status, StatusCode::NOT_FOUND, "{:?}", refused.body);
    let listed = bob.get("/api/sessions").await.unwrap().body;
    assert_eq!(listed[0]["connection"], "pg\\n\\u{1b}[2J", "{listed}");
    assert_eq!(
        refused.body["message"],
        "connection pg\\n\\u{1b}[2J not found"
    );
    // Nothing refused was stored.
    let groups = admin.get("/api/users/groups").await.unwrap().body;
    assert_eq!(groups, json!(["admin", "dba"]));
    let connections = admin.get("/api/connections").await.unwrap().body;
    assert_eq!(connections.as_array().unwrap().len(), 2, "{connections}");
}

async fn every_endpoint_checks_the_caller(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    // A non-admin user with a token.
    let user = gw
        .admin
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": "bob@example.com", "name": "Bob"}),
        )
        .await
        .unwrap();
    assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
    let token = gw
        .admin
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "bob", "user_id": "bob@example.com"}),
        )
        .await
        .unwrap();
    assert_eq!(token.status, StatusCode::CREATED, "{:?}", token.body);
    let bob = client(&gw.gateway, token.body["token"].as_str());
    let anonymous = client(&gw.gateway, None);
    let wrong = client(&gw.gateway, Some("not-a-token"));
    for doc in super::route_docs() {
        let path = doc
            .path
            .replace("{name_or_id}", "x")
            .replace("{id_or_email}", "x")
            .replace("{name}", "audit")
            .replace("{id}", "x");
        let body = doc.request.map(|_| b"{}".to_vec());
        // Slack's calls carry no token: Slack's signature is what they
        // need, and without it every caller gets 401 (tests/slack.rs).
        if doc.path == "/api/plugins/slack/interactions" {
            for caller in [&anonymous, &wrong, &bob] {
                let response = caller.send(doc.method.clone(), &path, None).await.unwrap();
                assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{path}");
            }
            continue;
        }
        for caller in [&anonymous, &wrong] {
            let response = caller
                .send(doc.method.clone(), &path, body.clone())
                .await
                .unwrap();
            let expected = if doc.access == super::Access::Public {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            assert_eq!(response.status, expected, "{} {path}", doc.method);
        }
        let response = bob
            .send(doc.method.clone(), &path, body.clone())
            .await
            .unwrap();
        if doc.access == super::Access::Admin {
            assert_eq!(
                response.status,
                StatusCode::FORBIDDEN,
                "{} {path}",
                doc.method
            );
        } else {
            assert!(
                response.status != StatusCode::FORBIDDEN
                    && response.status != StatusCode::UNAUTHORIZED,
                "{} {path}: {}",
                doc.method,
                response.status
            );
        }
    }
    // access_control: once on, only the listed groups see the connection.
    let (agent_id, _) = gw.agent("a").await;
    gw.admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("guarded", &agent_id),
        )
        .await
        .unwrap();
    gw.admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("open", &agent_id),
        )
        .await
        .unwrap();
    assert_eq!(
        bob.get("/api/connections/guarded").await.unwrap().status,
        StatusCode::OK
    );
    gw.admin
        .json(Method::POST, "/api/users/groups", &json!({"name": "dba"}))
        .await
        .unwrap();
    let set = gw
        .admin
        .json(
            Method::PUT,
            "/api/plugins/access_control",
            &json!({"connections": [{"id": "guarded", "config": ["dba"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(
        bob.get("/api/connections/guarded").await.unwrap().status,
        StatusCode::NOT_FOUND
    );
    let seen = bob.get("/api/connections").await.unwrap().body;
    assert_eq!(seen.as_array().unwrap().len(), 1, "{seen}");
    assert_eq!(
        gw.admin
            .get("/api/connections")
            .await
            .unwrap()
            .body
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let bob_id = user.body["id"].as_str().unwrap();
    gw.admin
        .json(
            Method::PUT,
            &format!("/api/users/{bob_id}"),
            &json!({"email": "bob@example.com", "groups": ["dba"]}),
        )
        .await
        .unwrap();
    assert_eq!(
        bob.get("/api/connections/guarded").await.unwrap().status,
        StatusCode::OK
    );

    let me = bob.get("/api/userinfo").await.unwrap();
    assert_eq!(me.body["email"], "bob@example.com");
    assert_eq!(me.body["role"], "standard");
    // Revoked tokens stop working; inactive users too.
    let id = token.body["id"].as_str().unwrap();
    gw.admin
        .send(Method::DELETE, &format!("/api/tokens/{id}"), None)
        .await
        .unwrap();
    assert_eq!(
        bob.get("/api/userinfo").await.unwrap().status,
        StatusCode::UNAUTHORIZED
    );
}

/// Issue 13, item 8: a connection `access_control` hides from a person
/// appears in no answer they can get, whatever the route: its name, id
/// and groups stay out of `/api/plugins` as out of `/api/connections`.
async fn hidden_connections_appear_in_no_answer(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("a").await;
    let mut hidden = documented_postgres("ledger-hidden", &agent_id);
    hidden["reviewers"] = json!(["auditors-only"]);
    let created = gw
        .admin
        .json(Method::POST, "/api/connections", &hidden)
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let hidden_id = created.body["id"].as_str().unwrap().to_owned();
    gw.admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("open", &agent_id),
        )
        .await
        .unwrap();
    for group in ["auditors-only", "staff"] {
        gw.admin
            .json(Method::POST, "/api/users/groups", &json!({"name": group}))
            .await
            .unwrap();
    }
    let set = gw
        .admin
        .json(
            Method::PUT,
            "/api/plugins/access_control",
            &json!({"connections": [{"id": "ledger-hidden", "config": ["auditors-only"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    let (bob, _) = user_with_token(&gw, "bob@example.com", &["staff"]).await;
    // The groups guarding it are listed with every group; what must not
    // show is that they guard a connection, or which.
    let leaks = |text: &str| text.contains(&hidden_id) || text.contains("ledger-hidden");
    for doc in super::route_docs() {
        if doc.method != Method::GET || doc.access == super::Access::Admin {
            continue;
        }
        let mut paths = vec![doc.path.to_owned()];
        for (param, values) in [
            ("{name_or_id}", vec!["ledger-hidden", hidden_id.as_str()]),
            ("{name}", super::PLUGINS.to_vec()),
            ("{id}", vec![hidden_id.as_str()]),
        ] {
            paths = paths
                .iter()
                .flat_map(|p| {
                    if p.contains(param) {
                        values.iter().map(|v| p.replace(param, v)).collect()
                    } else {
                        vec![p.clone()]
                    }
                })
                .collect();
        }
        for path in paths {
            let response = bob.get(&path).await.unwrap();
            let text = response.body.to_string();
            assert!(
                !leaks(&text),
                "GET {path} shows the hidden connection: {text}"
            );
        }
    }
    let plugins = bob.get("/api/plugins").await.unwrap().body.to_string();
    assert!(
        plugins.contains("\"open\"") && !plugins.contains("auditors-only"),
        "{plugins}"
    );
    // Administrators see it; so does bob once in the group.
    let all = gw.admin.get("/api/plugins").await.unwrap().body.to_string();
    assert!(
        all.contains("ledger-hidden") && all.contains(&hidden_id),
        "{all}"
    );
    let (carol, _) = user_with_token(&gw, "carol@example.com", &["auditors-only"]).await;
    let seen = carol
        .get("/api/plugins/dlp")
        .await
        .unwrap()
        .body
        .to_string();
    assert!(seen.contains("ledger-hidden"), "{seen}");
}

/// A non-admin user in `groups` and a client with a token of theirs;
/// returns the client and the user's id.
pub(crate) async fn user_with_token(
    gw: &TestGateway,
    email: &str,
    groups: &[&str],
) -> (ApiClient, String) {
    let user = gw
        .admin
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": email, "groups": groups}),
        )
        .await
        .unwrap();
    assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
    let token = gw
        .admin
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "t", "user_id": email}),
        )
        .await
        .unwrap();
    assert_eq!(token.status, StatusCode::CREATED, "{:?}", token.body);
    (
        client(&gw.gateway, token.body["token"].as_str()),
        user.body["id"].as_str().unwrap().to_owned(),
    )
}

async fn users_groups_tokens_and_plugins_validate(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let admin = &gw.admin;
    assert_invalid(
        &admin
            .json(Method::POST, "/api/users", &json!({"email": "nope"}))
            .await
            .unwrap(),
        "email",
    );
    assert_invalid(
        &admin
            .json(
                Method::POST,
                "/api/users",
                &json!({"email": "a@b", "groups": ["ghosts"]}),
            )
            .await
            .unwrap(),
        "groups",
    );
    assert_invalid(
        &admin
            .json(
                Method::POST,
                "/api/users",
                &json!({"email": "a@b", "status": "asleep"}),
            )
            .await
            .unwrap(),
        "status",
    );
    assert_eq!(
        admin
            .json(Method::POST, "/api/users/groups", &json!({"name": "sre"}))
            .await
            .unwrap()
            .status,
        StatusCode::CREATED
    );
    assert_eq!(
        admin
            .json(Method::POST, "/api/users/groups", &json!({"name": "sre"}))
            .await
            .unwrap()
            .status,
        StatusCode::CONFLICT
    );
    let user = admin
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": "a@b", "groups": ["sre"]}),
        )
        .await
        .unwrap();
    assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
    assert_eq!(
        admin
            .json(Method::POST, "/api/users", &json!({"email": "a@b"}))
            .await
            .unwrap()
            .status,
        StatusCode::CONFLICT
    );
    assert_invalid(
        &admin
            .json(
                Method::POST,
                "/api/tokens",
                &json!({"name": "t", "user_id": "ghost"}),
            )
            .await
            .unwrap(),
        "user_id",
    );
    assert_eq!(
        admin
            .send(Method::DELETE, "/api/users/groups/admin", None)
            .await
            .unwrap()
            .status,
        StatusCode::CONFLICT
    );
    assert_eq!(
        admin
            .send(Method::DELETE, "/api/users/admin@localhost", None)
            .await
            .unwrap()
            .status,
        StatusCode::CONFLICT
    );
    assert_invalid(
        &admin
            .json(Method::POST, "/api/agents", &json!({"name": "bad name"}))
            .await
            .unwrap(),
        "name",
    );
    assert_invalid(
        &admin
            .json(
                Method::POST,
                "/api/agents",
                &json!({"name": "a", "mode": "turbo"}),
            )
            .await
            .unwrap(),
        "mode",
    );

    let (agent_id, _) = gw.agent("a").await;
    let created = admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    let connection_id = created.body["id"].as_str().unwrap();
    // audit cannot be disabled.
    assert_invalid(
        &admin
            .json(
                Method::PUT,
                "/api/plugins/audit",
                &json!({"connections": []}),
            )
            .await
            .unwrap(),
        "connections",
    );
    assert_invalid(
        &admin
            .json(
                Method::PUT,
                "/api/plugins/dlp",
                &json!({"connections": [{"id": "ghost"}]}),
            )
            .await
            .unwrap(),
        "connections[0].id",
    );
    assert_invalid(
        &admin
            .json(
                Method::PUT,
                "/api/plugins/dlp",
                &json!({"connections": [{"id": "pg", "config": "x"}]}),
            )
            .await
            .unwrap(),
        "connections[0].config",
    );
    assert_invalid(
        &admin
            .json(Method::PUT, "/api/plugins/dlp", &json!({"name": "slack"}))
            .await
            .unwrap(),
        "name",
    );
    assert_eq!(
        admin
            .json(Method::PUT, "/api/plugins/nope", &json!({}))
            .await
            .unwrap()
            .status,
        StatusCode::NOT_FOUND
    );
    let set = admin
        .json(
            Method::PUT,
            "/api/plugins/access_control",
            &json!({"connections": [{"id": "pg", "config": ["sre"]}]}),
        )
        .await
        .unwrap();
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(
        set.body["connections"],
        json!([{"id": connection_id, "name": "pg", "config": ["sre"]}])
    );
    // An agent in use cannot be deleted.
    assert_eq!(
        admin
            .send(Method::DELETE, "/api/agents/a", None)
            .await
            .unwrap()
            .status,
        StatusCode::CONFLICT
    );
}

async fn resources_lend_their_agent(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("a").await;
    let resource = gw
        .admin
        .json(Method::POST, "/api/resources", &json!({"name": "billing-db", "type": "database", "subtype": "postgres", "agent_id": "a"}))
        .await
        .unwrap();
    assert_eq!(resource.status, StatusCode::CREATED, "{:?}", resource.body);
    let mut body = documented_postgres("billing-ro", "");
    body.as_object_mut().unwrap().remove("agent_id");
    body["resource_name"] = json!("billing-db");
    let created = gw
        .admin
        .json(Method::POST, "/api/connections", &body)
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(created.body["agent_id"], agent_id.as_str());
    let filtered = gw
        .admin
        .get(&format!("/api/connections?agent_id={agent_id}"))
        .await
        .unwrap();
    assert_eq!(filtered.body.as_array().unwrap().len(), 1);
    // A resource without an agent lends none.
    gw.admin
        .json(
            Method::POST,
            "/api/resources",
            &json!({"name": "orphan", "type": "database"}),
        )
        .await
        .unwrap();
    body["name"] = json!("orphan-ro");
    body["resource_name"] = json!("orphan");
    assert_invalid(
        &gw.admin
            .json(Method::POST, "/api/connections", &body)
            .await
            .unwrap(),
        "agent_id",
    );
}

async fn data_survives_restart_and_admin_token_is_printed_once(backend: Backend) {
    let mut gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("a").await;
    let created = gw
        .admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    gw.restart().await;
    assert_eq!(gw.gateway.first_admin_token, None);
    let after = gw.admin.get("/api/connections/pg").await.unwrap();
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body, created.body);
    assert_eq!(
        gw.admin.get("/api/agents/a").await.unwrap().body["id"],
        agent_id.as_str()
    );
}

async fn secrets_never_appear_in_plain_text_in_the_store(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("a").await;
    gw.admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    let needles = [
        "Very-Secret-Pa55word",
        "mydb.example.com",
        "bXlkYi5leGFtcGxlLmNvbQ==",
        &gw.token,
    ];
    match backend {
        Backend::Sqlite => {
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(gw.test.dir.path()).unwrap() {
                let entry = entry.unwrap();
                // Files only: the handoff socket holds nothing.
                if entry.file_type().unwrap().is_file() {
                    bytes.extend(std::fs::read(entry.path()).unwrap());
                }
            }
            assert!(bytes.windows(3).any(|w| w == b"pg\0") || bytes.windows(2).any(|w| w == b"pg"));
            for needle in needles {
                assert!(
                    !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
                    "{needle} found"
                );
            }
        }
        Backend::Postgres => {
            let store = gw.gateway.state().store.clone();
            let rows = store
                .query(
                    "SELECT name || attributes || encode(secret, 'escape') FROM connections",
                    vec![],
                )
                .await
                .unwrap();
            let tokens = store
                .query("SELECT token_hash FROM api_tokens", vec![])
                .await
                .unwrap();
            let text = format!("{rows:?}{tokens:?}");
            assert!(text.contains("pg"));
            for needle in needles {
                assert!(!text.contains(needle), "{needle} found");
            }
        }
    }
}

async fn guardrail_rule_sets_validate_round_trip_and_are_referenced(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let (agent_id, _) = gw.agent("a").await;
    let invalid = [
        (json!({"input": {"rules": []}}), "name"),
        (
            json!({"name": "g", "input": {"rules": [{"type": "deny_words_list"}]}}),
            "input.rules[0]",
        ),
        (
            json!({"name": "g", "input": {"rules": [{"type": "pattern_match", "pattern_regex": "("}]}}),
            "input.rules[0].pattern_regex",
        ),
        (
            json!({"name": "g", "output": {"rules": [{"type": "deny_words_list", "words": ["x"]}, {"type": "nope"}]}}),
            "output.rules[1].type",
        ),
        (
            json!({"name": "g", "input": {"rules": ["x"]}}),
            "input.rules[0]",
        ),
        (json!({"name": "g", "input": {"rule": []}}), "input.rule"),
        (json!({"name": "g", "surprise": 1}), "surprise"),
    ];
    for (body, field) in invalid {
        let response = gw
            .admin
            .json(Method::POST, "/api/guardrails", &body)
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(response.body["field"], field, "{body}: {:?}", response.body);
    }
    assert_eq!(
        gw.admin.get("/api/guardrails").await.unwrap().body,
        json!([])
    );
    let rules = json!([
        {"type": "deny_words_list", "words": ["truncate"], "message": "no truncates"},
        {"type": "deny_without_where", "statements": ["delete", "update"]},
    ]);
    let created = gw
        .admin
        .json(
            Method::POST,
            "/api/guardrails",
            &json!({"name": "careful", "description": "d", "input": {"rules": rules}}),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["input"]["rules"], rules);
    assert_eq!(created.body["output"]["rules"], json!([]));
    let again = gw
        .admin
        .json(Method::POST, "/api/guardrails", &json!({"name": "careful"}))
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);
    let shown = gw
        .admin
        .get(&format!("/api/guardrails/{id}"))
        .await
        .unwrap();
    assert_eq!(shown.body, created.body);
    let listed = gw.admin.get("/api/guardrails").await.unwrap();
    assert_eq!(listed.body, json!([created.body]));
    let replaced = gw
        .admin
        .json(
            Method::PUT,
            &format!("/api/guardrails/{id}"),
            &json!({"name": "careful", "output": {"rules": [{"type": "pattern_match", "pattern_regex": "secret"}]}}),
        )
        .await
        .unwrap();
    assert_eq!(replaced.status, StatusCode::OK, "{:?}", replaced.body);
    assert_eq!(replaced.body["input"]["rules"], json!([]));
    let bad_put = gw
        .admin
        .json(
            Method::PUT,
            &format!("/api/guardrails/{id}"),
            &json!({"name": "careful", "input": {"rules": [{"type": "deny_words_list", "words": 3}]}}),
        )
        .await
        .unwrap();
    assert_eq!(bad_put.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(bad_put.body["field"], "input.rules[0]");
    assert_eq!(
        gw.admin
            .get(&format!("/api/guardrails/{id}"))
            .await
            .unwrap()
            .body,
        replaced.body
    );

    let mut connection = documented_postgres("pg", &agent_id);
    connection["guardrail_rules"] = json!([id, {"type": "deny_words_list", "words": ["drop"]}]);
    let response = gw
        .admin
        .json(Method::POST, "/api/connections", &connection)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
    let mut dangling = documented_postgres("pg2", &agent_id);
    dangling["guardrail_rules"] = json!(["no-such-id"]);
    let response = gw
        .admin
        .json(Method::POST, "/api/connections", &dangling)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(response.body["field"], "guardrail_rules[0]");
    let in_use = gw
        .admin
        .send(Method::DELETE, &format!("/api/guardrails/{id}"), None)
        .await
        .unwrap();
    assert_eq!(in_use.status, StatusCode::CONFLICT, "{:?}", in_use.body);
    let removed = gw
        .admin
        .send(Method::DELETE, "/api/connections/pg", None)
        .await
        .unwrap();
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let removed = gw
        .admin
        .send(Method::DELETE, &format!("/api/guardrails/{id}"), None)
        .await
        .unwrap();
    assert_eq!(removed.status, StatusCode::NO_CONTENT);
    let gone = gw
        .admin
        .get(&format!("/api/guardrails/{id}"))
        .await
        .unwrap();
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

/// The session policy the gateway would send for a connection now.
async fn session_policy(gw: &TestGateway, name: &str) -> Option<Value> {
    let state = gw.gateway.state();
    let record = state.store.find_connection(name).await.unwrap().unwrap();
    let input = super::stored_input(state, &record).unwrap();
    let dlp = super::dlp::for_connection(state, &record.id).await.unwrap();
    crate::sessions::policy_json(&input, dlp.as_ref()).map(|p| serde_json::from_str(&p).unwrap())
}

async fn dlp_plugin_validates_and_drives_the_session_policy(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let admin = &gw.admin;
    let (agent_id, _) = gw.agent("a").await;
    let created = admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let mut other = documented_postgres("other", &agent_id);
    other["redact_enabled"] = json!(false);
    other["guardrail_rules"] = json!([]);
    admin
        .json(Method::POST, "/api/connections", &other)
        .await
        .unwrap();
    // Derived from redact_types on create: only EMAIL_ADDRESS, redacted.
    assert_eq!(
        session_policy(&gw, "pg").await.unwrap()["masking"],
        json!({"entities": ["EMAIL_ADDRESS"]})
    );
    assert_eq!(session_policy(&gw, "other").await, None);

    let before = admin.get("/api/plugins/dlp").await.unwrap().body;
    let put = |body: Value| async move {
        admin
            .json(Method::PUT, "/api/plugins/dlp", &body)
            .await
            .unwrap()
    };
    let listed = |types: Value| json!([{"id": "pg", "config": types}]);
    let cases = [
        (
            json!({"config": {"entities": ["EMAIL_ADDRESS"]}}),
            "config.entities",
        ),
        (json!({"config": {"colour": "red"}}), "config.colour"),
        (
            json!({"config": {"transform": {"type": "partial"}}}),
            "config.transform.type",
        ),
        (
            // Inside a transform, serde names the transform, not its field.
            json!({"config": {"transform": {"type": "mask", "keep_last": "4"}}}),
            "config.transform",
        ),
        (
            json!({"config": {"transforms": {"EMAIL_ADDRESS": {"type": "hmac_sha256", "key": "k"}}}}),
            "config.transforms.EMAIL_ADDRESS.type",
        ),
        (
            json!({"config": {"custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-("}]}}),
            "config.custom_entities[0].regex",
        ),
        (
            json!({"config": {"columns": [{"columns": ["*.ssn"], "action": "hide"}]}}),
            "config.columns[0].action",
        ),
        (
            json!({"connections": listed(json!(["EMAIL_ADDRESS", "NOT_A_TYPE"]))}),
            "connections[0].config[1]",
        ),
        (
            json!({"connections": listed(json!(["EMPLOYEE_ID"]))}),
            "connections[0].config[0]",
        ),
        (
            json!({"connections": listed(json!(["IBAN_CODE", "IBAN_CODE"]))}),
            "connections[0].config[1]",
        ),
    ];
    for (body, field) in cases {
        assert_invalid(&put(body).await, field);
        assert_eq!(
            admin.get("/api/plugins/dlp").await.unwrap().body,
            before,
            "{field}"
        );
    }

    // A configuration and a list: the next session's policy follows both.
    let config = json!({
        "transform": {"type": "mask", "keep_last": 4},
        "custom_entities": [
            {"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"},
            {"name": "CODENAME", "words": ["bluebird"], "transform": {"type": "null"}},
        ],
        "columns": [{"columns": ["*.ssn"], "transform": {"type": "fixed", "value": "xxx"}}],
    });
    let set = put(json!({
        "config": config,
        "connections": [{"id": "pg", "config": ["EMAIL_ADDRESS", "EMPLOYEE_ID"]}, {"id": "other"}],
    }))
    .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["config"], config);
    assert_eq!(
        session_policy(&gw, "pg").await.unwrap()["masking"],
        json!({
            "entities": ["EMAIL_ADDRESS"],
            "transform": {"type": "mask", "keep_last": 4},
            "custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"}],
            "columns": [{"columns": ["*.ssn"], "transform": {"type": "fixed", "value": "xxx"}}],
        })
    );
    // Listed with no types: the default set and every custom entity.
    assert_eq!(
        session_policy(&gw, "other").await.unwrap()["masking"],
        config
    );
    // The connections' own fields follow the plugin.
    let pg = admin.get("/api/connections/pg").await.unwrap().body;
    assert_eq!(pg["redact_enabled"], true);
    assert_eq!(pg["redact_types"], json!(["EMAIL_ADDRESS", "EMPLOYEE_ID"]));
    let other_now = admin.get("/api/connections/other").await.unwrap().body;
    assert_eq!(other_now["redact_enabled"], true);
    assert_eq!(other_now["redact_types"], json!([]));

    // redact_types are checked against the stored configuration when they
    // would become a dlp entry: a custom entity is fine, a typo is not.
    let patch = |body: Value| async move {
        admin
            .json(Method::PATCH, "/api/connections/other", &body)
            .await
            .unwrap()
    };
    assert_invalid(
        &patch(json!({"redact_enabled": true, "redact_types": ["EMAIL", "PHONE_NUMBER"]})).await,
        "redact_types[0]",
    );
    let patched = patch(json!({"redact_enabled": true, "redact_types": ["CODENAME"]})).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(
        session_policy(&gw, "other").await.unwrap()["masking"]["custom_entities"],
        json!([{"name": "CODENAME", "words": ["bluebird"], "transform": {"type": "null"}}])
    );
    // Off, the types are not an entry and not checked; turning masking on
    // checks them.
    let off = patch(json!({"redact_enabled": false, "redact_types": ["NOPE"]})).await;
    assert_eq!(off.status, StatusCode::OK, "{:?}", off.body);
    assert_eq!(session_policy(&gw, "other").await, None);
    assert_invalid(
        &patch(json!({"redact_enabled": true})).await,
        "redact_types[0]",
    );
    let mut bad = documented_postgres("bad", &agent_id);
    bad["redact_types"] = json!(["EMAIL_ADDRESS", "SSN"]);
    assert_invalid(
        &admin
            .json(Method::POST, "/api/connections", &bad)
            .await
            .unwrap(),
        "redact_types[1]",
    );
    assert_eq!(
        admin.get("/api/connections/bad").await.unwrap().status,
        StatusCode::NOT_FOUND
    );

    // Left out of the plugin: no masking, and the connection says so.
    let set = put(json!({"config": config, "connections": []})).await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    let pg = admin.get("/api/connections/pg").await.unwrap().body;
    assert_eq!(pg["redact_enabled"], false);
    assert_eq!(pg["redact_types"], json!(["EMAIL_ADDRESS", "EMPLOYEE_ID"]));
    assert_eq!(
        session_policy(&gw, "pg").await.unwrap()["masking"],
        json!({"entities": []}),
        "pg keeps its guardrail rules and loses its masking"
    );
    // Turning it back on through the connection writes its entry again.
    let on = admin
        .json(
            Method::PATCH,
            "/api/connections/pg",
            &json!({"redact_enabled": true, "redact_types": ["PHONE_NUMBER"]}),
        )
        .await
        .unwrap();
    assert_eq!(on.status, StatusCode::OK, "{:?}", on.body);
    assert_eq!(
        session_policy(&gw, "pg").await.unwrap()["masking"]["entities"],
        json!(["PHONE_NUMBER"])
    );
    let dlp = admin.get("/api/plugins/dlp").await.unwrap().body;
    assert_eq!(dlp["connections"][0]["name"], "pg");
    assert_eq!(dlp["connections"][0]["config"], json!(["PHONE_NUMBER"]));
}

/// A long session's events stream out page by page, all of them, in order.
async fn session_events_stream_in_order_past_many_pages(backend: Backend) {
    let gw = TestGateway::start(backend).await;
    let store = &gw.gateway.state().store;
    let session = crate::store::SessionRecord {
        id: "s-long".into(),
        user_id: None,
        user_email: "admin@localhost".into(),
        connection_id: None,
        connection_name: "pg".into(),
        access_mode: "connect".into(),
        protocol: "postgres".into(),
        status: "done".into(),
        error: None,
        started_at: 1,
        ended_at: Some(2),
        bytes_in: 0,
        bytes_out: 0,
    };
    store.insert_session(&session).await.unwrap();
    // 150 batches of 3 events: more than two pages of the stream.
    let batches: Vec<crate::store::EventBatch> = (0..150)
        .map(|batch| crate::store::EventBatch {
            session_id: session.id.clone(),
            first_seq: batch * 3,
            events: (0..3)
                .map(|i| json!({"seq": batch * 3 + i, "type": "statement"}).to_string())
                .collect(),
        })
        .collect();
    store.append_session_events(&batches).await.unwrap();
    let response = gw.admin.get("/api/sessions/s-long/events").await.unwrap();
    assert_eq!(response.status, StatusCode::OK);
    let text = response.body.as_str().unwrap_or_default().to_owned();
    let seqs: Vec<i64> = text
        .lines()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["seq"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seqs, (0..450).collect::<Vec<_>>());
    let none = gw.admin.get("/api/sessions/nope/events").await.unwrap();
    assert_eq!(none.status, StatusCode::NOT_FOUND);
}

on_both_backends!(
    session_events_stream_in_order_past_many_pages,
    connection_lifecycle,
    invalid_connections_name_the_field_and_write_nothing,
    inline_guardrail_rules_are_compiled_on_write,
    every_endpoint_checks_the_caller,
    hidden_connections_appear_in_no_answer,
    names_follow_one_rule_everywhere,
    users_groups_tokens_and_plugins_validate,
    resources_lend_their_agent,
    data_survives_restart_and_admin_token_is_printed_once,
    secrets_never_appear_in_plain_text_in_the_store,
    guardrail_rule_sets_validate_round_trip_and_are_referenced,
    dlp_plugin_validates_and_drives_the_session_policy,
);

#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let anonymous = client(&gw.gateway, None);
    let document = anonymous.get("/api/openapi.json").await.unwrap().body;
    let paths = document["paths"].as_object().unwrap();
    let docs = super::route_docs();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, docs.len());
    // Every documented operation is served (the router's fallback answers
    // "no such route" for anything else).
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let concrete = path
                .split('/')
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let response = gw
                .admin
                .send(method.clone(), &concrete, Some(b"{}".to_vec()))
                .await
                .unwrap();
            assert_ne!(response.body["message"], "no such route", "{method} {path}");
            assert_ne!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
        }
    }
    // And what is not documented is not served.
    for (method, path) in [
        (Method::GET, "/api/nothing"),
        (Method::POST, "/api/healthz"),
        (Method::DELETE, "/api/plugins/audit"),
    ] {
        let response = gw.admin.send(method.clone(), path, None).await.unwrap();
        assert!(
            response.body["message"] == "no such route"
                || response.status == StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
    }
    // hoop's own paths are all there.
    for path in [
        "/api/agents",
        "/api/agents/{name_or_id}",
        "/api/connections",
        "/api/connections/{name_or_id}",
        "/api/plugins",
        "/api/plugins/{name}",
        "/api/users",
        "/api/users/groups",
        "/api/userinfo",
    ] {
        assert!(paths.contains_key(path), "{path}");
    }
    let connection = &paths["/api/connections"]["post"];
    assert!(connection["responses"]["422"].is_object());
    assert_eq!(
        connection["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ConnectionRequest"
    );
}

/// Polls `GET path` until `field` equals `want`, for at most 10 seconds
/// (the product's promise); returns how long it took.
pub(crate) async fn wait_for(admin: &ApiClient, path: &str, field: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let response = admin.get(path).await.unwrap();
        if response.body[field] == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{path}: {field} is {} after 10 s, want {want}",
            response.body[field]
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_on_one_postgres_share_state() {
    let test = TestStore::new(Backend::Postgres).await;
    // Both start together: the migration lock lets exactly one migrate.
    let key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode([3u8; 32])
    };
    let mut first_config = config(&test);
    first_config.secret_key = Some(key.clone());
    first_config.admin_token = Some("shared-admin".into());
    let second_config = first_config.clone();
    let (first, second) = tokio::join!(Gateway::start(first_config), Gateway::start(second_config));
    let (first, second) = (first.unwrap(), second.unwrap());
    let one = client(&first, Some("shared-admin"));
    let two = client(&second, Some("shared-admin"));
    let agent = one
        .json(Method::POST, "/api/agents", &json!({"name": "a"}))
        .await
        .unwrap();
    let agent_id = agent.body["id"].as_str().unwrap();
    let created = one
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", agent_id),
        )
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED);
    let seen = two.get("/api/connections/pg").await.unwrap();
    assert_eq!(seen.body, created.body);
    // A write through the second is a conflict for the first.
    let again = two
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", agent_id),
        )
        .await
        .unwrap();
    assert_eq!(again.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn every_body_endpoint_refuses_malformed_wrong_and_oversized_bodies() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let (agent_id, _) = gw.agent("a").await;
    gw.admin
        .json(
            Method::POST,
            "/api/connections",
            &documented_postgres("pg", &agent_id),
        )
        .await
        .unwrap();
    gw.admin
        .json(
            Method::POST,
            "/api/resources",
            &json!({"name": "r", "type": "database"}),
        )
        .await
        .unwrap();
    gw.admin
        .json(Method::POST, "/api/guardrails", &json!({"name": "g1"}))
        .await
        .unwrap();
    let before = gw.admin.get("/api/connections/pg").await.unwrap().body;
    let docs: Vec<_> = super::route_docs()
        .into_iter()
        .filter(|d| d.request.is_some())
        .collect();
    assert!(docs.len() >= 8);
    for doc in docs {
        let path = doc
            .path
            .replace("/api/connections/{name_or_id}", "/api/connections/pg")
            .replace("{id_or_email}", "admin@localhost")
            .replace("{name}", "dlp")
            .replace("/api/guardrails/{id}", "/api/guardrails/g1");
        let label = format!("{} {path}", doc.method);
        let send = |body: Vec<u8>| gw.admin.send(doc.method.clone(), &path, Some(body));
        assert_eq!(
            send(b"{\"name\": ".to_vec()).await.unwrap().status,
            StatusCode::BAD_REQUEST,
            "{label}"
        );
        assert_eq!(
            send(b"not json".to_vec()).await.unwrap().status,
            StatusCode::BAD_REQUEST,
            "{label}"
        );
        assert_invalid(&send(b"[]".to_vec()).await.unwrap(), "body");
        // Issue 13, item 12: a key given twice, at the top or nested.
        assert_invalid(
            &send(br#"{"name": "a", "name": "b"}"#.to_vec())
                .await
                .unwrap(),
            "name",
        );
        assert_invalid(
            &send(br#"{"x": {"k": 1, "k": 2}}"#.to_vec()).await.unwrap(),
            "x.k",
        );
        assert_invalid(&send(b"\"text\"".to_vec()).await.unwrap(), "body");
        let oversized = send(vec![b' '; super::MAX_BODY + 1]).await.unwrap();
        assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE, "{label}");
    }
    assert_eq!(
        gw.admin.get("/api/connections/pg").await.unwrap().body,
        before
    );
    assert_eq!(
        gw.admin
            .get("/api/connections")
            .await
            .unwrap()
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// Issue 14: every time the API returns is milliseconds since the epoch,
/// guardrail rule sets' (stored in seconds) included.
#[tokio::test]
async fn every_time_in_the_api_is_milliseconds_since_the_epoch() {
    let gw = TestGateway::start(Backend::Sqlite).await;
    let before = crate::store::now_ms();
    let created = gw
        .admin
        .json(Method::POST, "/api/guardrails", &json!({"name": "times"}))
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let after = crate::store::now_ms();
    for field in ["created_at", "updated_at"] {
        let at = created.body[field].as_i64().unwrap();
        // Stored with second precision: within a second before the call.
        assert!(
            (before - 1000..=after).contains(&at),
            "{field} = {at}, not milliseconds near {before}"
        );
    }
}
