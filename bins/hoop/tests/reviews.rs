//! Issue 16: reviews hold work until approved. A connection that lists
//! reviewers lets no session reach its database without an approved
//! review, on every path (API exec, `hoop exec`, the PostgreSQL and MySQL
//! listeners, `hoop connect` handed over and tunnelled), on PostgreSQL and
//! MariaDB. What reached the server is read from the server itself: a
//! `canary` table each attempt writes to, which must not change. Then
//! one-time exec reviews round trip through the CLI and the API, and
//! time-boxed (jit) connect access works inside its window and is cut at
//! its end and on revoke. Real psql and mariadb CLI, real servers.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::{Gateway, GatewayConfig};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod common;

use common::{b64, create_online, text};

/// Bounds every wait, so a hang fails the test.
const PATIENCE: Duration = Duration::from_secs(20);

/// What a refused client is told, in part.
const REQUIRED: &str = "requires an approved review (reviewers: dba)";

struct Setup {
    gateway: Gateway,
    admin: ApiClient,
    api: String,
    agent: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
    /// The PostgreSQL and MariaDB databases of this test, each with a
    /// `canary` table.
    database: String,
    /// A reviewer's token (group dba).
    bo: String,
    /// A person outside the reviewer groups.
    ana: String,
}

impl Setup {
    async fn start(tag: &str, review_timeout: Duration) -> Self {
        let database = format!("hoop_rev_{tag}_{}", std::process::id());
        let dir = std::env::temp_dir().join(&database);
        let _ = std::fs::remove_dir_all(&dir);
        let mut config = GatewayConfig::new(&dir);
        config.api_listen = "127.0.0.1:0".into();
        config.agent_listen = "127.0.0.1:0".into();
        config.postgres_listen = Some("127.0.0.1:0".into());
        config.mysql_listen = Some("127.0.0.1:0".into());
        config.review_timeout = review_timeout;
        let gateway = Gateway::start(config).await.unwrap();
        let token = gateway.first_admin_token.clone().unwrap();
        let api = format!("http://{}", gateway.api_addr);
        let admin = ApiClient::new(&api, Some(token)).unwrap();
        let key = gateway.embedded_agent_key("default").await.unwrap();
        let agent = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
            key,
            tls: None,
        }));
        sh(Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-U", "postgres", "-c"])
            .arg(format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")))
        .await;
        sh(Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-U", "postgres", "-c"])
            .arg(format!("CREATE DATABASE {database}")))
        .await;
        sh(Command::new("psql")
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                &database,
                "-c",
            ])
            .arg("CREATE TABLE canary (v text)"))
        .await;
        sh(Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!(
                "DROP USER IF EXISTS '{database}'@'%'; DROP DATABASE IF EXISTS {database}; \
                 CREATE DATABASE {database}; CREATE TABLE {database}.canary (v text); \
                 CREATE USER '{database}'@'%' IDENTIFIED BY 'pw-{database}'; \
                 GRANT ALL ON {database}.* TO '{database}'@'%';"
            )))
        .await;
        create_online(
            &admin,
            "pg",
            "postgres",
            json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                   "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                   "envvar:DB": b64(&database)}),
        )
        .await;
        create_online(
            &admin,
            "my",
            "mysql",
            json!({"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("3306"),
                   "envvar:USER": b64(&database), "envvar:PASS": b64(&format!("pw-{database}")),
                   "envvar:DB": b64(&database)}),
        )
        .await;
        for name in ["pg", "my"] {
            let patched = admin
                .json(
                    Method::PATCH,
                    &format!("/api/connections/{name}"),
                    &json!({"reviewers": ["dba"]}),
                )
                .await
                .unwrap();
            assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
        }
        let group = admin
            .json(Method::POST, "/api/users/groups", &json!({"name": "dba"}))
            .await
            .unwrap();
        assert!(group.status.is_success(), "{:?}", group.body);
        let bo = person(&admin, "bo@example.com", &["dba"]).await;
        let ana = person(&admin, "ana@example.com", &[]).await;
        Self {
            gateway,
            admin,
            api,
            agent,
            dir,
            database,
            bo,
            ana,
        }
    }

    fn hoop(&self, token: &str) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hoop"));
        command
            .env("HOOP_API_URL", &self.api)
            .env("HOOP_TOKEN", token)
            .env("HOME", &self.dir)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    fn client(&self, token: &str) -> ApiClient {
        ApiClient::new(&self.api, Some(token.to_owned())).unwrap()
    }

    fn psql(&self, port: u16, user: &str, password: &str, sql: &str) -> Command {
        let mut command = Command::new("psql");
        command
            .arg(format!(
                "host=127.0.0.1 port={port} user={user} dbname={} sslmode=disable connect_timeout=10",
                self.database
            ))
            .args(["-X", "-At", "-c", sql])
            .env("PGPASSWORD", password)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    fn mariadb(&self, port: u16, user: &str, password: &str, sql: &str) -> Command {
        let mut command = Command::new("mariadb");
        command
            .args(["-h", "127.0.0.1", "-P", &port.to_string(), "-u", user])
            .args(["--skip-ssl", "--connect-timeout=10", "-N", "-B"]);
        // `-p` alone would prompt for a password.
        if !password.is_empty() {
            command.arg(format!("-p{password}"));
        }
        command
            .arg(&self.database)
            .args(["-e", sql])
            .kill_on_drop(true);
        command
    }

    /// The rows of the canary tables, as PostgreSQL and MariaDB themselves
    /// report them.
    async fn canaries(&self) -> (String, String) {
        let pg = sh(Command::new("psql")
            .args([
                "-X",
                "-At",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-d",
                &self.database,
            ])
            .args([
                "-c",
                "SELECT coalesce(string_agg(v, ',' ORDER BY v), '') FROM canary",
            ]))
        .await;
        let my = sh(Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-N", "-B", "-e"])
            .arg(format!(
                "SELECT coalesce(group_concat(v ORDER BY v), '') FROM {}.canary",
                self.database
            )))
        .await;
        (
            text(&pg.stdout).trim().to_owned(),
            text(&my.stdout).trim().to_owned(),
        )
    }

    async fn review(&self, id: &str) -> Value {
        let response = self.admin.get(&format!("/api/reviews/{id}")).await.unwrap();
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response.body
    }

    /// Waits (bounded) until review `id` reads `status`.
    async fn review_in(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let review = self.review(id).await;
            if review["status"] == status {
                return review;
            }
            assert!(Instant::now() < deadline, "never {status}: {review}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn decide(&self, token: &str, id: &str, body: Value) -> hoop_gateway::client::Response {
        self.client(token)
            .json(Method::PUT, &format!("/api/reviews/{id}"), &body)
            .await
            .unwrap()
    }

    async fn stop(self) {
        self.agent.abort();
        drop(self.gateway);
        let _ = Command::new("psql")
            .args(["-X", "-h", "127.0.0.1", "-U", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.database
            ))
            .output()
            .await;
        let _ = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%';",
                self.database
            ))
            .output()
            .await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs a setup command that must succeed.
async fn sh(command: &mut Command) -> Output {
    let output = command.output().await.unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    output
}

/// A person with `groups`; returns a token of theirs.
async fn person(admin: &ApiClient, email: &str, groups: &[&str]) -> String {
    let user = admin
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": email, "groups": groups}),
        )
        .await
        .unwrap();
    assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
    let token = admin
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "t", "user_id": email}),
        )
        .await
        .unwrap();
    assert_eq!(token.status, StatusCode::CREATED, "{:?}", token.body);
    token.body["token"].as_str().unwrap().to_owned()
}

/// A free local port.
fn free_port() -> u16 {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap().port()
}

/// `hoop connect NAME -p PORT FLAGS..` as `token`'s person; returns the
/// process once it serves its port. Its stderr is piped (what it says
/// while it waits for a review).
async fn connect(hoop: &mut Command, name: &str, port: u16, flags: &[&str]) -> Child {
    let mut child = hoop
        .args(["connect", name, "-p", &port.to_string()])
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("hoop connect never served its port")
            .unwrap()
            .expect("hoop connect exited");
        if line.contains("no password needed") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

/// Reads `child`'s stderr until the line naming how to approve, and
/// returns the review id in it.
async fn review_id_said(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("no review id said")
            .unwrap()
            .expect("exited before saying the review id");
        if let Some(id) = line.split("hoop reviews approve ").nth(1) {
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return id.trim().to_owned();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_outside_the_reviewers_reaches_no_database_on_any_path() {
    let setup = Setup::start("closed", Duration::from_secs(3600)).await;
    let ana = setup.ana.clone();
    let pg_listener = setup.gateway.postgres_addr.unwrap().port();
    let my_listener = setup.gateway.mysql_addr.unwrap().port();
    let insert = |path: &str| format!("INSERT INTO canary VALUES ('{path}')");

    // API exec: a review is created, nothing runs.
    let api = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": insert("api")}),
        )
        .await
        .unwrap();
    assert_eq!(api.status, StatusCode::ACCEPTED, "{:?}", api.body);
    assert_eq!(api.body["status"], "PENDING");
    assert_eq!(api.body["type"], "onetime");
    // Asking to run it anyway, streamed, is the same.
    let streamed = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "my", "script": insert("api")}),
        )
        .await
        .unwrap();
    assert_eq!(streamed.status, StatusCode::ACCEPTED);

    // hoop exec --no-wait: the review id, and how to approve.
    for name in ["pg", "my"] {
        let exec = setup
            .hoop(&ana)
            .args(["exec", name, "--no-wait", "-i", &insert("cli")])
            .output()
            .await
            .unwrap();
        assert!(exec.status.success(), "{}", text(&exec.stderr));
        let id = text(&exec.stdout).trim().to_owned();
        assert_eq!(setup.review(&id).await["status"], "PENDING");
        let said = text(&exec.stderr);
        assert!(said.contains("waiting for approval"), "{said}");
        assert!(
            said.contains(&format!("hoop reviews approve {id}")),
            "{said}"
        );
    }

    // The listeners, with the person's own token.
    let psql = setup
        .psql(pg_listener, "pg", &ana, &insert("listener"))
        .output()
        .await
        .unwrap();
    assert!(!psql.status.success());
    assert!(
        text(&psql.stderr).contains(REQUIRED),
        "{}",
        text(&psql.stderr)
    );
    let mariadb = setup
        .mariadb(my_listener, "my", &ana, &insert("listener"))
        .output()
        .await
        .unwrap();
    assert!(!mariadb.status.success());
    let said = text(&mariadb.stderr);
    assert!(
        said.contains("ERROR 1227") && said.contains(REQUIRED),
        "{said}"
    );

    // hoop connect, handed over (same host) and tunnelled.
    for flags in [&[][..], &["--tunnel"][..]] {
        let port = free_port();
        let _pg = connect(&mut setup.hoop(&ana), "pg", port, flags).await;
        let psql = setup
            .psql(port, "noop", "", &insert("connect"))
            .output()
            .await
            .unwrap();
        assert!(!psql.status.success(), "{flags:?}");
        assert!(
            text(&psql.stderr).contains(REQUIRED),
            "{flags:?}: {}",
            text(&psql.stderr)
        );
        let port = free_port();
        let _my = connect(&mut setup.hoop(&ana), "my", port, flags).await;
        let mariadb = setup
            .mariadb(port, "noop", "", &insert("connect"))
            .output()
            .await
            .unwrap();
        assert!(!mariadb.status.success(), "{flags:?}");
        let said = text(&mariadb.stderr);
        assert!(said.contains(REQUIRED), "{flags:?}: {said}");
    }

    // Ana cannot approve her own request, even as its only witness.
    let own = api.body["id"].as_str().unwrap();
    let refused = setup.decide(&ana, own, json!({"status": "APPROVED"})).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    assert_eq!(setup.review(own).await["status"], "PENDING");

    // The gateway's own timers had time to run something: they did not.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(setup.canaries().await, (String::new(), String::new()));
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exec_review_runs_once_when_approved_through_the_cli_and_the_api() {
    let setup = Setup::start("exec", Duration::from_secs(3600)).await;
    let (ana, bo) = (setup.ana.clone(), setup.bo.clone());

    // CLI: hoop exec waits, a reviewer approves, the output arrives.
    let mut waiting = setup
        .hoop(&ana)
        .args([
            "exec",
            "pg",
            "-i",
            "INSERT INTO canary VALUES ('cli') RETURNING v",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = review_id_said(&mut waiting).await;
    let own = setup
        .hoop(&ana)
        .args(["reviews", "approve", &id])
        .output()
        .await
        .unwrap();
    assert!(!own.status.success());
    assert!(
        text(&own.stderr).contains("the requester cannot approve"),
        "{}",
        text(&own.stderr)
    );
    let listed = setup
        .hoop(&bo)
        .args(["reviews", "list", "--status", "PENDING"])
        .output()
        .await
        .unwrap();
    assert!(
        text(&listed.stdout).contains(&id),
        "{}",
        text(&listed.stdout)
    );
    assert_eq!(setup.canaries().await.0, "", "ran before approval");
    let approved = setup
        .hoop(&bo)
        .args(["reviews", "approve", &id])
        .output()
        .await
        .unwrap();
    assert!(approved.status.success(), "{}", text(&approved.stderr));
    assert_eq!(text(&approved.stdout), format!("review {id} APPROVED\n"));
    let done = tokio::time::timeout(PATIENCE, waiting.wait_with_output())
        .await
        .expect("hoop exec kept waiting")
        .unwrap();
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert_eq!(text(&done.stdout), "v\ncli\n");
    let review = setup.review(&id).await;
    assert_eq!(review["status"], "EXECUTED");
    assert_eq!(review["exit_code"], 0);
    let statuses: Vec<(&str, &str)> = review["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(
        statuses,
        [
            ("PENDING", "ana@example.com"),
            ("APPROVED", "bo@example.com"),
            ("PROCESSING", "gateway"),
            ("EXECUTED", "gateway"),
        ]
    );
    // hoop reviews show has the output too; the session is recorded.
    let shown = setup
        .hoop(&ana)
        .args(["reviews", "show", &id])
        .output()
        .await
        .unwrap();
    assert!(
        text(&shown.stdout).contains("EXECUTED"),
        "{}",
        text(&shown.stdout)
    );
    let session = setup
        .client(&ana)
        .get(&format!(
            "/api/sessions/{}",
            review["session"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert_eq!(session.body["status"], "done", "{:?}", session.body);
    assert_eq!(session.body["review_id"], id.as_str());
    assert_eq!(session.body["output"], review["output"]);
    assert_eq!(session.body["exit_code"], 0);
    // Malformed decisions and filters are refused, naming the field.
    for (body, field) in [
        (json!({"status": "MAYBE"}), "status"),
        (json!({}), "status"),
        (
            json!({"status": "APPROVED", "force_review": "yes"}),
            "force_review",
        ),
        (json!({"status": "APPROVED", "extra": 1}), "extra"),
        (
            json!({"status": "APPROVED", "time_window": {"type": "time_range"}}),
            "time_window.start_time",
        ),
    ] {
        let refused = setup.decide(&bo, &id, body).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}",
            refused.body
        );
        assert_eq!(refused.body["field"], field);
    }
    let bogus = setup.admin.get("/api/reviews?owner=x").await.unwrap();
    assert_eq!(bogus.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bogus = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "access_duration_sec": 0}),
        )
        .await
        .unwrap();
    assert_eq!(
        bogus.body["field"], "access_duration_sec",
        "{:?}",
        bogus.body
    );
    // Approving again runs nothing twice.
    let again = setup.decide(&bo, &id, json!({"status": "APPROVED"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    // API: 202, approve, EXECUTED with the output.
    let asked = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "my", "script": "INSERT INTO canary VALUES ('api')"}),
        )
        .await
        .unwrap();
    assert_eq!(asked.status, StatusCode::ACCEPTED);
    let id = asked.body["id"].as_str().unwrap().to_owned();
    let approved = setup.decide(&bo, &id, json!({"status": "APPROVED"})).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let executed = setup.review_in(&id, "EXECUTED").await;
    assert_eq!(executed["exit_code"], 0, "{executed}");

    // Rejected: nothing runs. A person outside the groups cannot decide.
    let asked = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "INSERT INTO canary VALUES ('rejected')"}),
        )
        .await
        .unwrap();
    let id = asked.body["id"].as_str().unwrap().to_owned();
    let rejected = setup
        .hoop(&bo)
        .args(["reviews", "reject", &id, "--reason", "not today"])
        .output()
        .await
        .unwrap();
    assert!(rejected.status.success(), "{}", text(&rejected.stderr));
    assert_eq!(setup.review(&id).await["status"], "REJECTED");

    // An administrator outside the groups forces an approval: recorded so.
    let asked = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "script": "INSERT INTO canary VALUES ('forced')"}),
        )
        .await
        .unwrap();
    let id = asked.body["id"].as_str().unwrap().to_owned();
    let unforced = setup
        .admin
        .json(
            Method::PUT,
            &format!("/api/reviews/{id}"),
            &json!({"status": "APPROVED"}),
        )
        .await
        .unwrap();
    assert_eq!(
        unforced.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        unforced.body
    );
    let forced = setup
        .admin
        .json(
            Method::PUT,
            &format!("/api/reviews/{id}"),
            &json!({"status": "APPROVED", "force_review": true}),
        )
        .await
        .unwrap();
    assert_eq!(forced.status, StatusCode::OK, "{:?}", forced.body);
    assert_eq!(forced.body["review_groups_data"][0]["forced_review"], true);
    let executed = setup.review_in(&id, "EXECUTED").await;
    assert!(
        executed["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "APPROVED"
                && e["forced"] == true
                && e["actor"] == "admin@localhost"),
        "{executed}"
    );
    assert_eq!(
        setup.canaries().await,
        ("cli,forced".to_owned(), "api".to_owned())
    );

    // Filters.
    let mine = setup
        .admin
        .get("/api/reviews?status=REJECTED&connection=pg&requester=ana@example.com")
        .await
        .unwrap();
    assert_eq!(mine.body.as_array().unwrap().len(), 1, "{:?}", mine.body);

    // Two reviewer groups: each must approve, unless min_review_approvals
    // says fewer.
    setup
        .admin
        .json(Method::POST, "/api/users/groups", &json!({"name": "sre"}))
        .await
        .unwrap();
    let ask = || async {
        let asked = setup
            .client(&ana)
            .json(
                Method::POST,
                "/api/sessions",
                &json!({"connection": "my", "script": "SELECT 1"}),
            )
            .await
            .unwrap();
        assert_eq!(asked.status, StatusCode::ACCEPTED, "{:?}", asked.body);
        asked.body["id"].as_str().unwrap().to_owned()
    };
    let admin = &setup.admin;
    let patch = |body: Value| async move {
        let patched = admin
            .json(Method::PATCH, "/api/connections/my", &body)
            .await
            .unwrap();
        assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    };
    patch(json!({"reviewers": ["dba", "sre"]})).await;
    let both = ask().await;
    let half = setup
        .decide(&bo, &both, json!({"status": "APPROVED"}))
        .await;
    assert_eq!(half.status, StatusCode::OK, "{:?}", half.body);
    assert_eq!(half.body["status"], "PENDING", "{:?}", half.body);
    patch(json!({"min_review_approvals": 1})).await;
    let one = ask().await;
    let enough = setup.decide(&bo, &one, json!({"status": "APPROVED"})).await;
    assert_eq!(enough.body["status"], "APPROVED", "{:?}", enough.body);
    assert_eq!(enough.body["min_approvals"], 1);
    setup.review_in(&one, "EXECUTED").await;
    assert_eq!(setup.review(&both).await["status"], "PENDING");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_review_expires_after_the_review_timeout() {
    let setup = Setup::start("expiry", Duration::from_secs(1)).await;
    let exec = setup
        .hoop(&setup.ana)
        .args(["exec", "pg", "-i", "INSERT INTO canary VALUES ('late')"])
        .output()
        .await
        .unwrap();
    assert!(!exec.status.success());
    let said = text(&exec.stderr);
    assert!(said.contains("was EXPIRED"), "{said}");
    let id = said
        .split("hoop reviews approve ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap()
        .trim()
        .to_owned();
    let late = setup
        .decide(&setup.bo, &id, json!({"status": "APPROVED"}))
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{:?}", late.body);
    let review = setup.review(&id).await;
    assert_eq!(review["events"][1]["actor"], "gateway");
    assert_eq!(setup.canaries().await.0, "");
    setup.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jit_access_works_inside_its_window_and_ends_at_its_end_and_on_revoke() {
    let setup = Setup::start("jit", Duration::from_secs(3600)).await;
    let (ana, bo) = (setup.ana.clone(), setup.bo.clone());
    let listener = setup.gateway.postgres_addr.unwrap().port();

    // hoop connect --duration waits for approval, then serves its port.
    let port = free_port();
    let mut hoop = setup.hoop(&ana);
    hoop.args(["connect", "pg", "-p", &port.to_string(), "--duration", "3s"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut asking = hoop.spawn().unwrap();
    let id = review_id_said(&mut asking).await;
    let approved = setup.decide(&bo, &id, json!({"status": "APPROVED"})).await;
    assert_eq!(approved.status, StatusCode::OK, "{:?}", approved.body);
    let mut lines = BufReader::new(asking.stdout.take().unwrap()).lines();
    while let Some(line) = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("hoop connect never served")
        .unwrap()
    {
        if line.contains("no password needed") {
            break;
        }
    }
    let inside = setup
        .psql(
            port,
            "noop",
            "",
            "INSERT INTO canary VALUES ('inside') RETURNING v",
        )
        .output()
        .await
        .unwrap();
    assert!(inside.status.success(), "{}", text(&inside.stderr));
    // The listener lets the same person through in the window too; a
    // session still open at its end is cut, and psql reads why.
    let sleeping = setup
        .psql(listener, "pg", &ana, "SELECT pg_sleep(60)")
        .spawn()
        .unwrap();
    // Cut at the end, not at the next periodic check (every 5 s).
    let cut = tokio::time::timeout(Duration::from_secs(5), sleeping.wait_with_output())
        .await
        .expect("the session outlived its window")
        .unwrap();
    assert!(
        text(&cut.stderr).contains(&format!(
            "FATAL:  the access window of review {id} on connection pg ended"
        )),
        "{}",
        text(&cut.stderr)
    );
    let after = setup
        .psql(listener, "pg", &ana, "INSERT INTO canary VALUES ('after')")
        .output()
        .await
        .unwrap();
    assert!(
        text(&after.stderr).contains(REQUIRED),
        "{}",
        text(&after.stderr)
    );
    // Bo's approval was for ana: bo has no access of his own.
    let other = setup
        .psql(listener, "pg", &bo, "INSERT INTO canary VALUES ('bo')")
        .output()
        .await
        .unwrap();
    assert!(
        text(&other.stderr).contains(REQUIRED),
        "{}",
        text(&other.stderr)
    );

    // Revoked: the open session ends at once.
    let asked = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "pg", "access_duration_sec": 600}),
        )
        .await
        .unwrap();
    assert_eq!(asked.status, StatusCode::ACCEPTED, "{:?}", asked.body);
    assert_eq!(asked.body["type"], "jit");
    let id = asked.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        setup
            .decide(&bo, &id, json!({"status": "APPROVED"}))
            .await
            .status,
        StatusCode::OK
    );
    let sleeping = setup
        .psql(listener, "pg", &ana, "SELECT pg_sleep(60)")
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let revoked = setup
        .hoop(&bo)
        .args(["reviews", "revoke", &id])
        .output()
        .await
        .unwrap();
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let cut = tokio::time::timeout(Duration::from_secs(10), sleeping.wait_with_output())
        .await
        .expect("the session outlived its revoked review")
        .unwrap();
    assert!(
        text(&cut.stderr).contains(&format!("FATAL:  review {id} of connection pg was revoked")),
        "{}",
        text(&cut.stderr)
    );
    assert_eq!(setup.canaries().await.0, "inside");

    // The same on MariaDB: inside its window the mariadb CLI works; on
    // revoke its session ends with the reason.
    let my_listener = setup.gateway.mysql_addr.unwrap().port();
    let asked = setup
        .client(&ana)
        .json(
            Method::POST,
            "/api/sessions",
            &json!({"connection": "my", "access_duration_sec": 600}),
        )
        .await
        .unwrap();
    let id = asked.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        setup
            .decide(&bo, &id, json!({"status": "APPROVED"}))
            .await
            .status,
        StatusCode::OK
    );
    let inside = setup
        .mariadb(
            my_listener,
            "my",
            &ana,
            "INSERT INTO canary VALUES ('inside')",
        )
        .output()
        .await
        .unwrap();
    assert!(inside.status.success(), "{}", text(&inside.stderr));
    let sleeping = setup
        .mariadb(my_listener, "my", &ana, "SELECT SLEEP(60)")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let revoked = setup.decide(&bo, &id, json!({"status": "REVOKED"})).await;
    assert_eq!(revoked.status, StatusCode::OK, "{:?}", revoked.body);
    let cut = tokio::time::timeout(Duration::from_secs(10), sleeping.wait_with_output())
        .await
        .expect("the mariadb session outlived its revoked review")
        .unwrap();
    assert!(
        text(&cut.stderr).contains(&format!("review {id} of connection my was revoked")),
        "{}",
        text(&cut.stderr)
    );
    assert_eq!(setup.canaries().await.1, "inside");

    // A session opened while the connection had no reviewers ends when
    // they are added.
    let admin = &setup.admin;
    let set_reviewers = |reviewers: Value| async move {
        let patched = admin
            .json(
                Method::PATCH,
                "/api/connections/pg",
                &json!({"reviewers": reviewers}),
            )
            .await
            .unwrap();
        assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    };
    set_reviewers(json!([])).await;
    let before = setup
        .psql(listener, "pg", &ana, "SELECT pg_sleep(60)")
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    set_reviewers(json!(["dba"])).await;
    let cut = tokio::time::timeout(Duration::from_secs(10), before.wait_with_output())
        .await
        .expect("the session outlived the reviewers' arrival")
        .unwrap();
    assert!(
        text(&cut.stderr).contains("FATAL:  connection pg now requires an approved review"),
        "{}",
        text(&cut.stderr)
    );
    setup.stop().await;
}
