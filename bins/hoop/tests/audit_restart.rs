//! The audit across a gateway's stop (issue 13, item 7: SIGTERM to the
//! gateway under load lost about 5% of the statements clients had their
//! answers for, and the sessions their `end`). `hoop up` is the gateway,
//! in a process of its own; psql and pgbench run through its PostgreSQL
//! listener, on a connection served in place (its embedded agent) and on
//! one served by a separate agent (in this test's process, so it outlives
//! the gateway as an agent on another machine would). Then the gateway
//! gets SIGTERM, and later `kill -9`, and starts again: every statement a
//! client got an answer for is in the audit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

mod common;

use common::{b64, text};

const TOKEN: &str = "audit-restart-admin-token-0123456789";

/// The listeners of `hoop up`, the same at each start, so the agent's key
/// (which names the agent port) finds the gateway again.
struct Ports {
    api: u16,
    agent: u16,
    postgres: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_up(dir: &Path, ports: &Ports) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hoop"))
        .args(["up", "--mysql-listen", "off", "--data-dir"])
        .arg(dir)
        .args(["--api-listen", &format!("127.0.0.1:{}", ports.api)])
        .args(["--agent-listen", &format!("127.0.0.1:{}", ports.agent)])
        .args([
            "--postgres-listen",
            &format!("127.0.0.1:{}", ports.postgres),
        ])
        .env("HOOP_ADMIN_TOKEN", TOKEN)
        .env_remove("HOOP_SECRET_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait_online(client: &ApiClient, names: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(40);
    for name in names {
        loop {
            let online = client
                .get(&format!("/api/connections/{name}"))
                .await
                .is_ok_and(|r| r.body["status"] == "online");
            if online {
                break;
            }
            assert!(Instant::now() < deadline, "{name} never came online");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A client under load: psql fed `SELECT 'TAG-n'` statements as fast as it
/// answers them (its output lists the answered ones), or pgbench running
/// `SELECT 'TAG'` (it reports how many it completed).
enum Load {
    Psql { child: Child, tag: String },
    Pgbench { child: Child, tag: String },
}

impl Load {
    fn psql(ports: &Ports, connection: &str, tag: &str) -> Self {
        let mut child = Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={} user={connection} dbname=postgres",
                ports.postgres
            ))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
            .env("PGPASSWORD", TOKEN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = tag.to_owned();
        tokio::spawn(async move {
            for n in 0.. {
                let line = format!("SELECT '{feed}-{n}';\n");
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
                if n % 50 == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        });
        Self::Psql {
            child,
            tag: tag.to_owned(),
        }
    }

    fn pgbench(dir: &Path, ports: &Ports, connection: &str, tag: &str) -> Self {
        let script = dir.join(format!("{tag}.sql"));
        std::fs::write(&script, format!("SELECT '{tag}';\n")).unwrap();
        let child = Command::new("pgbench")
            .args(["-h", "127.0.0.1", "-p", &ports.postgres.to_string()])
            .args(["-U", connection, "-n", "-c", "2", "-T", "120", "-f"])
            .arg(&script)
            .arg("postgres")
            .env("PGPASSWORD", TOKEN)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self::Pgbench {
            child,
            tag: tag.to_owned(),
        }
    }

    /// Once the gateway is gone: the statements the client got answers
    /// for, as (text, how many times).
    async fn answered(self) -> (String, usize) {
        let (child, tag) = match self {
            Self::Psql { child, tag } | Self::Pgbench { child, tag } => (child, tag),
        };
        let pgbench = tag.starts_with("pgb");
        let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("a client went on without its gateway")
            .unwrap();
        let out = text(&output.stdout);
        if pgbench {
            let processed = out
                .lines()
                .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
                .and_then(|rest| rest.split(['/', ' ']).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no count from pgbench: {out}"));
            (tag, processed)
        } else {
            (tag, out.lines().filter(|l| !l.is_empty()).count())
        }
    }
}

/// The statement texts recorded on `connection`.
async fn recorded(client: &ApiClient, connection: &str) -> Vec<String> {
    let sessions = client
        .get(&format!("/api/sessions?connection={connection}"))
        .await
        .unwrap()
        .body;
    let mut statements = Vec::new();
    for session in sessions.as_array().unwrap() {
        let id = session["id"].as_str().unwrap();
        let events = client
            .get(&format!("/api/sessions/{id}/events"))
            .await
            .unwrap()
            .body;
        let events = match events {
            Value::String(text) => text,
            other => other.to_string(),
        };
        for line in events.lines().filter(|l| !l.is_empty()) {
            let event: Value = serde_json::from_str(line).unwrap();
            if event["type"] == "statement" {
                // psql sends the statement with its semicolon.
                let statement = event["statement"].as_str().unwrap();
                statements.push(statement.trim_end_matches(';').to_owned());
            }
        }
    }
    statements
}

/// Whether every answered statement is recorded: each psql marker, and
/// pgbench's statement at least as often as it completed.
fn all_recorded(statements: &[String], answered: &[(String, usize)]) -> Result<(), String> {
    let texts: BTreeSet<&str> = statements.iter().map(String::as_str).collect();
    for (tag, count) in answered {
        if tag.starts_with("pgb") {
            let statement = format!("SELECT '{tag}'");
            let seen = statements.iter().filter(|s| **s == statement).count();
            if seen < *count {
                return Err(format!("{tag}: {seen} recorded of {count} answered"));
            }
        } else {
            let missing: Vec<usize> = (0..*count)
                .filter(|n| !texts.contains(format!("SELECT '{tag}-{n}'").as_str()))
                .collect();
            if !missing.is_empty() {
                return Err(format!(
                    "{tag}: {} of {count} answered not recorded, first {:?}",
                    missing.len(),
                    &missing[..missing.len().min(5)]
                ));
            }
        }
    }
    Ok(())
}

/// The store's sessions right after a stop, read from its file.
async fn stored_sessions(dir: &Path) -> Vec<hoop_gateway::store::SessionRecord> {
    let store = hoop_gateway::store::Store::open_sqlite(&dir.join("hoop.db"))
        .await
        .unwrap();
    store
        .list_sessions(&hoop_gateway::store::SessionFilter::default(), 1000)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_statement_survives_sigterm_and_kill_9() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hoop-audit-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ports = Ports {
        api: free_port(),
        agent: free_port(),
        postgres: free_port(),
    };
    let mut up = start_up(&dir, &ports);
    let client = ApiClient::new(
        &format!("http://127.0.0.1:{}", ports.api),
        Some(TOKEN.to_owned()),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get("/api/healthz").await.is_err() {
        assert!(Instant::now() < deadline, "hoop up never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let agent = client
        .json(Method::POST, "/api/agents", &json!({"name": "edge"}))
        .await
        .unwrap();
    assert_eq!(agent.status, StatusCode::CREATED, "{:?}", agent.body);
    let key = agent.body["token"].as_str().unwrap().parse().unwrap();
    for (name, agent) in [("inplace", "default"), ("linked", "edge")] {
        let created = client
            .json(
                Method::POST,
                "/api/connections",
                &json!({"name": name, "type": "database", "subtype": "postgres", "agent_id": agent,
                        "secret": {"envvar:HOST": b64("127.0.0.1"), "envvar:PORT": b64("5432"),
                                   "envvar:USER": b64("postgres"), "envvar:PASS": b64("x"),
                                   "envvar:DB": b64("postgres")}}),
            )
            .await
            .unwrap();
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    // The separate agent: it outlives the gateway and links again.
    let edge = tokio::spawn(hoop_proxy::agent::run(hoop_proxy::agent::AgentConfig {
        key,
        tls: None,
    }));
    wait_online(&client, &["inplace", "linked"]).await;

    let mut answered = Vec::new();
    for (round, signal) in ["TERM", "KILL"].into_iter().enumerate() {
        let mut loads = Vec::new();
        for connection in ["inplace", "linked"] {
            let short = &connection[..2];
            loads.push(Load::psql(&ports, connection, &format!("ps{round}{short}")));
            loads.push(Load::pgbench(
                &dir,
                &ports,
                connection,
                &format!("pgb{round}{short}"),
            ));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let pid = up.id().unwrap().to_string();
        let signalled = Command::new("kill")
            .args([&format!("-{signal}"), &pid])
            .status()
            .await
            .unwrap();
        assert!(signalled.success());
        let exit = tokio::time::timeout(Duration::from_secs(20), up.wait())
            .await
            .expect("the gateway did not stop")
            .unwrap();
        let mut this_round = Vec::new();
        for load in loads {
            this_round.push(load.answered().await);
        }
        for (tag, count) in &this_round {
            assert!(*count > 0, "{tag} got no answer before the {signal}");
        }
        if signal == "TERM" {
            // Stopped in order: every record closed, and each in-place
            // statement and session end stored before the process left.
            assert!(exit.success(), "{exit:?}");
            let sessions = stored_sessions(&dir).await;
            assert!(sessions.iter().all(|s| s.status != "open"), "{sessions:?}");
            let shut = sessions
                .iter()
                .filter(|s| s.error.as_deref() == Some("the gateway shut down"))
                .count();
            assert!(shut >= 6, "{sessions:?}");
        }
        answered.extend(this_round);

        up = start_up(&dir, &ports);
        wait_online(&client, &["inplace", "linked"]).await;
        // The agent sends what the gateway had not stored when it relinks.
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let mut statements = recorded(&client, "inplace").await;
            statements.extend(recorded(&client, "linked").await);
            match all_recorded(&statements, &answered) {
                Ok(()) => break,
                Err(missing) => {
                    assert!(Instant::now() < deadline, "after {signal}: {missing}");
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        eprintln!("after {signal}: {answered:?} all recorded");
    }
    edge.abort();
    let _ = up.start_kill();
    let _ = up.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
}
