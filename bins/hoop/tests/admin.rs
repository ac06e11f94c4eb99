//! The CLI as a hoop user types it (issue 14): `hoop admin` in hoop's
//! shapes, tables for people and typed JSON for scripts, one error style,
//! and `hoop connect` telling a refused client why in its own protocol.
//! Against `hoop up` with its embedded agent, the real PostgreSQL
//! (127.0.0.1:5432, trust, user postgres) and MariaDB (127.0.0.1:3306,
//! root without a password), psql and the mariadb CLI.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

mod common;

use common::text;

/// A `hoop up` on free ports in its own data directory.
struct Up {
    child: Child,
    api: String,
    token: String,
    /// Every address it listens on, as `(flag, address)`.
    listeners: Vec<(&'static str, String)>,
    dir: PathBuf,
}

impl Up {
    async fn start(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("hoop-admin-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("home")).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_hoop"))
            .args(["up", "--api-listen", "127.0.0.1:0", "--agent-listen"])
            .args(["127.0.0.1:0", "--postgres-listen", "127.0.0.1:0"])
            .args(["--mysql-listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .env_remove("HOOP_ADMIN_TOKEN")
            .env_remove("HOOP_SECRET_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut api, mut token, mut listeners, mut banner) =
            (None, None, Vec::new(), String::new());
        let deadline = Instant::now() + Duration::from_secs(30);
        while let Some(line) = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .expect("hoop up printed no banner in 30 s")
            .unwrap()
        {
            banner.push_str(&line);
            banner.push('\n');
            let line = line.trim();
            let address = |rest: &str| rest.split_whitespace().next().unwrap().to_owned();
            if let Some(url) = line.strip_prefix("API:") {
                let url = url.trim().to_owned();
                listeners.push(("--api-listen", url.trim_start_matches("http://").to_owned()));
                api = Some(url);
            } else if let Some(rest) = line.strip_prefix("agent link:") {
                listeners.push(("--agent-listen", address(rest)));
            } else if let Some(rest) = line.strip_prefix("postgres:") {
                listeners.push(("--postgres-listen", address(rest)));
            } else if let Some(rest) = line.strip_prefix("mysql:") {
                listeners.push(("--mysql-listen", address(rest)));
            } else if let Some(value) = line.strip_prefix("admin token:") {
                token = Some(value.trim().to_owned());
            }
            if line.contains("hoop exec pg") {
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        assert!(
            banner.contains("cargo install --path bins/hoop"),
            "the banner says how to put hoop on the PATH:\n{banner}"
        );
        Self {
            child,
            api: api.unwrap_or_else(|| panic!("no API line in:\n{banner}")),
            token: token.unwrap_or_else(|| panic!("no token in:\n{banner}")),
            listeners,
            dir,
        }
    }

    /// `hoop ARGS` against this gateway, as a person with a fresh HOME;
    /// RUST_BACKTRACE is set so a backtrace, if any, would show.
    fn hoop(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hoop"));
        command
            .env("HOOP_API_URL", &self.api)
            .env("HOOP_TOKEN", &self.token)
            .env("HOME", self.dir.join("home"))
            .env("RUST_BACKTRACE", "1")
            .env_remove("HOOP_TLS_CA")
            .stdin(Stdio::null());
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.hoop().args(args).output().await.unwrap()
    }

    /// Runs `hoop ARGS`, which must succeed; returns its standard output.
    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "hoop {args:?}: {}{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// Runs `hoop ARGS`, which must fail with status 1 and one line on
    /// standard error in the CLI's style; returns that line.
    async fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        refusal_line(&format!("hoop {args:?}"), &output)
    }

    async fn stop(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The one line a failed command printed: status 1, `hoop: ...`, no
/// backtrace, no JSON body.
fn refusal_line(what: &str, output: &Output) -> String {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{what}: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{what}: one line, got:\n{stderr}");
    assert!(lines[0].starts_with("hoop: "), "{what}: {stderr}");
    for noise in ["backtrace", "panicked", "{\"", "Error:"] {
        assert!(!stderr.contains(noise), "{what}: {noise} in {stderr}");
    }
    lines[0].to_owned()
}

/// The row of `name` in a table, split into its columns by the header's
/// column positions (which also proves the columns line up).
fn table_row(table: &str, name: &str) -> Vec<String> {
    let mut lines = table.lines();
    let header = lines.next().expect("a header row");
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|&(i, c)| c != ' ' && (i == 0 || header.as_bytes()[i - 1] == b' '))
        .filter(|&(i, _)| i == 0 || header[..i].ends_with("   "))
        .map(|(i, _)| i)
        .collect();
    let row = lines
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"));
    starts
        .iter()
        .enumerate()
        .map(|(index, &start)| {
            let end = starts
                .get(index + 1)
                .copied()
                .unwrap_or(row.len())
                .min(row.len());
            let cell = row.get(start..end).unwrap_or_default();
            assert!(
                start == 0 || row.as_bytes().get(start - 1) == Some(&b' '),
                "column {index} of {name} is not aligned:\n{table}"
            );
            cell.trim().to_owned()
        })
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_take_hoops_shapes_and_print_tables_and_typed_json() {
    let up = Up::start("shapes").await;

    // The issue's own commands: no PASS, online at once, typed JSON.
    let created = up
        .ok(&[
            "admin",
            "create",
            "conn",
            "pg",
            "-a",
            "default",
            "-t",
            "database/postgres",
            "-e",
            "HOST=127.0.0.1",
            "-e",
            "PORT=5432",
            "-e",
            "USER=postgres",
        ])
        .await;
    assert_eq!(created, "connection pg created (online)\n");
    let table = up.ok(&["admin", "get", "conn"]).await;
    assert!(table.starts_with("NAME "), "{table}");
    let row = table_row(&table, "pg");
    assert_eq!(
        row[..5],
        [
            "pg",
            "database/postgres",
            "default",
            "online",
            "exec,connect,runbooks"
        ],
        "{table}"
    );
    assert!(row[5].contains("audit"), "{table}");
    assert_eq!(
        up.ok(&["exec", "pg", "-i", "select 1 as one", "-o", "json"])
            .await,
        "[{\"one\":1}]\n"
    );
    let sql = "select 7 as n, 1.50::numeric as d, true as b, null as z, 'x\ty' as s, \
               'NaN'::float8 as f, 2 as n";
    assert_eq!(
        up.ok(&["exec", "pg", "-i", sql, "-o", "json"]).await,
        "[{\"n\":7,\"d\":1.50,\"b\":true,\"z\":null,\"s\":\"x\\ty\",\"f\":\"NaN\",\"n\":2}]\n"
    );
    assert_eq!(
        up.ok(&["exec", "pg", "-i", sql]).await,
        "n\td\tb\tz\ts\tf\tn\n7\t1.50\ttrue\t\tx\ty\tNaN\t2\n"
    );

    // MariaDB's stock root has no password either.
    let created = up
        .ok(&[
            "admin",
            "create",
            "conn",
            "my",
            "-a",
            "default",
            "-t",
            "database/mysql",
            "-e",
            "HOST=127.0.0.1",
            "-e",
            "PORT=3306",
            "-e",
            "USER=root",
        ])
        .await;
    assert_eq!(created, "connection my created (online)\n");
    assert_eq!(
        up.ok(&[
            "exec",
            "my",
            "-i",
            "select 1 as one, 2.50 as d, null as z, 'a' as s",
            "-o",
            "json"
        ])
        .await,
        "[{\"one\":1,\"d\":2.50,\"z\":null,\"s\":\"a\"}]\n"
    );

    // Unreachable: offline in the create response and in the list alike.
    let port = free_port().to_string();
    let created = up
        .ok(&[
            "admin",
            "create",
            "conn",
            "gone",
            "-a",
            "default",
            "-t",
            "database/postgres",
            "-e",
            "HOST=127.0.0.1",
            "-e",
            &format!("PORT={port}"),
            "-e",
            "USER=postgres",
        ])
        .await;
    assert_eq!(created, "connection gone created (offline)\n");
    let listed: Value =
        serde_json::from_str(&up.ok(&["admin", "get", "conn", "-o", "json"]).await).unwrap();
    let status = |name: &str| {
        listed
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .map(|c| c["status"].clone())
    };
    assert_eq!(status("gone"), Some("offline".into()));
    assert_eq!(status("pg"), Some("online".into()));
    let one: Value =
        serde_json::from_str(&up.ok(&["admin", "get", "conn/pg", "-o", "json"]).await).unwrap();
    assert_eq!(one["name"], "pg");
    let yaml = up.ok(&["admin", "get", "conn", "pg", "-o", "yaml"]).await;
    assert!(yaml.lines().any(|l| l == "name: pg"), "{yaml}");
    assert!(yaml.lines().any(|l| l == "status: online"), "{yaml}");

    // --overwrite replaces; without it the server's refusal, in one line.
    let overwrite = [
        "admin",
        "create",
        "conn",
        "pg",
        "-a",
        "default",
        "-t",
        "database/postgres",
        "-e",
        "HOST=127.0.0.1",
        "-e",
        "PORT=5432",
        "-e",
        "USER=postgres",
        "--access-modes",
        "exec,connect",
        "--tags",
        "env=dev,team=db",
    ];
    let mut again = overwrite.to_vec();
    again.push("--overwrite");
    assert_eq!(up.ok(&again).await, "connection pg updated (online)\n");
    assert_eq!(
        up.fails(&overwrite).await,
        "hoop: creating connection pg: a connection with this name exists"
    );
    let shown: Value =
        serde_json::from_str(&up.ok(&["admin", "get", "conn", "pg", "-o", "json"]).await).unwrap();
    assert_eq!(shown["access_mode_runbooks"], "disabled");
    assert_eq!(shown["tags"], serde_json::json!(["env=dev", "team=db"]));
    let unknown = up
        .fails(&[
            "admin",
            "create",
            "conn",
            "x",
            "-a",
            "nobody",
            "-t",
            "database/postgres",
            "-e",
            "HOST=h",
            "-e",
            "PORT=5432",
            "-e",
            "USER=u",
        ])
        .await;
    assert_eq!(
        unknown,
        "hoop: creating connection x: agent_id: no such agent"
    );
    let custom = up
        .fails(&["admin", "create", "conn", "x", "-a", "default"])
        .await;
    assert!(custom.contains("after --"), "{custom}");
    assert_eq!(
        up.ok(&[
            "admin", "create", "conn", "hello", "-a", "default", "--", "bash", "-c", "echo hi"
        ])
        .await,
        "connection hello created (online)\n"
    );
    assert_eq!(
        table_row(&up.ok(&["connections", "list"]).await, "hello")[1],
        "custom"
    );

    // Agents: the key once, a table, delete.
    let key = up.ok(&["admin", "create", "agent", "edge"]).await;
    assert!(
        key.starts_with("hoop://edge:") && key.lines().count() == 1,
        "{key}"
    );
    let agents = up.ok(&["admin", "get", "agents"]).await;
    assert_eq!(table_row(&agents, "default")[1], "online", "{agents}");
    assert_eq!(table_row(&agents, "edge")[1], "offline", "{agents}");
    assert_eq!(up.ok(&["agents", "list"]).await, agents);
    assert_eq!(
        up.ok(&["admin", "delete", "agent", "edge"]).await,
        "agent edge deleted\n"
    );
    assert_eq!(
        up.fails(&["admin", "delete", "agent/edge"]).await,
        "hoop: deleting agent edge: agent not found"
    );

    // Users, plugins, guardrails.
    assert_eq!(
        up.ok(&[
            "admin",
            "create",
            "user",
            "ana@example.com",
            "--name",
            "Ana"
        ])
        .await,
        "user ana@example.com created\n"
    );
    let users = up.ok(&["admin", "get", "users"]).await;
    assert_eq!(table_row(&users, "ana@example.com")[1], "Ana", "{users}");
    let plugins = up.ok(&["admin", "get", "plugins"]).await;
    assert!(table_row(&plugins, "audit")[1].contains("pg"), "{plugins}");
    assert!(
        up.ok(&["admin", "get", "guardrails"])
            .await
            .starts_with("ID "),
        "a header even with none"
    );

    // Sessions: a table with local start times and durations; filters.
    let sessions = up.ok(&["sessions", "list"]).await;
    assert!(sessions.starts_with("ID "), "{sessions}");
    assert!(sessions.contains(" exec "), "{sessions}");
    assert_eq!(up.ok(&["admin", "get", "sessions"]).await, sessions);
    let limited: Value = serde_json::from_str(
        &up.ok(&["sessions", "list", "--limit", "2", "-o", "json"])
            .await,
    )
    .unwrap();
    assert_eq!(limited.as_array().unwrap().len(), 2);
    let mine: Value = serde_json::from_str(
        &up.ok(&[
            "sessions",
            "list",
            "--connection",
            "my",
            "--since",
            "1h",
            "-o",
            "json",
        ])
        .await,
    )
    .unwrap();
    assert!(
        !mine.as_array().unwrap().is_empty()
            && mine
                .as_array()
                .unwrap()
                .iter()
                .all(|s| s["connection"] == "my"),
        "{mine}"
    );
    let future = up
        .ok(&[
            "sessions",
            "list",
            "--since",
            "2999-01-01T00:00:00Z",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(future.trim(), "[]");
    assert!(
        up.fails(&["sessions", "list", "--since", "soon"])
            .await
            .contains("--since")
    );

    // Deletes, and the errors a person can act on.
    assert_eq!(
        up.ok(&["admin", "delete", "conn", "hello"]).await,
        "connection hello deleted\n"
    );
    let away = up
        .hoop()
        .env("HOOP_API_URL", format!("http://127.0.0.1:{port}"))
        .args(["admin", "get", "conn"])
        .output()
        .await
        .unwrap();
    let away = refusal_line("unreachable gateway", &away);
    assert!(
        away.starts_with(&format!(
            "hoop: listing connections: cannot reach the gateway at http://127.0.0.1:{port}"
        )),
        "{away}"
    );
    let bad_token = up
        .hoop()
        .env("HOOP_TOKEN", "wrong")
        .args(["admin", "get", "conn"])
        .output()
        .await
        .unwrap();
    assert!(
        refusal_line("bad token", &bad_token).contains("HOOP_TOKEN"),
        "{}",
        text(&bad_token.stderr)
    );
    let usage = up.run(&["admin", "fetch", "conn"]).await;
    assert_eq!(usage.status.code(), Some(1));
    assert!(
        text(&usage.stderr).starts_with("hoop: "),
        "{}",
        text(&usage.stderr)
    );
    let failing = up
        .run(&["exec", "pg", "-i", "select * from no_such_table"])
        .await;
    assert_eq!(failing.status.code(), Some(1));
    assert!(
        text(&failing.stderr).starts_with("hoop: exec on pg: ")
            && text(&failing.stderr).contains("no_such_table"),
        "{}",
        text(&failing.stderr)
    );
    up.stop().await;
}

/// `hoop exec NAME` with a terminal for input and no -i/-f says how to
/// give it input instead of waiting (run under `script`, a real pty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_on_a_terminal_without_input_says_how_to_give_it() {
    let up = Up::start("tty").await;
    let hoop = Path::new(env!("CARGO_BIN_EXE_hoop")).display().to_string();
    let output = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new("script")
            .env("HOOP_API_URL", &up.api)
            .env("HOOP_TOKEN", &up.token)
            .env("HOOP_BIN", &hoop)
            .env("RUST_BACKTRACE", "1")
            .args(["-qec", "\"$HOOP_BIN\" exec pg", "/dev/null"])
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("hoop exec waited for input on a terminal")
    .unwrap();
    // `script` merges the terminal's output into its own.
    let said = format!("{}{}", text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("hoop: exec on pg: no input"), "{said}");
    assert!(said.contains("-i ") && said.contains("-f FILE"), "{said}");
    assert!(!said.contains("backtrace"), "{said}");
    up.stop().await;
}

/// A second `hoop up` on ports already taken fails at once with one line
/// naming the busy address and the flag that moves it, no backtrace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_hoop_up_on_the_same_ports_names_the_busy_address() {
    let up = Up::start("busy").await;
    let address = |flag: &str| {
        up.listeners
            .iter()
            .find(|(f, _)| *f == flag)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| panic!("no {flag} in the banner"))
    };
    let free = || format!("127.0.0.1:{}", free_port());
    let second = |taken: &'static str| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hoop"));
        command.arg("up");
        for flag in [
            "--api-listen",
            "--agent-listen",
            "--postgres-listen",
            "--mysql-listen",
        ] {
            let value = if flag == taken { address(flag) } else { free() };
            command.args([flag, &value]);
        }
        command
            .arg("--data-dir")
            .arg(up.dir.join("second"))
            .env("RUST_BACKTRACE", "1")
            .env_remove("HOOP_ADMIN_TOKEN")
            .stdin(Stdio::null());
        command
    };
    for (flag, optional) in [
        ("--api-listen", false),
        ("--agent-listen", false),
        ("--postgres-listen", true),
        ("--mysql-listen", true),
    ] {
        let output = tokio::time::timeout(Duration::from_secs(30), second(flag).output())
            .await
            .expect("the second hoop up did not stop")
            .unwrap();
        let line = refusal_line(&format!("second hoop up, {flag} taken"), &output);
        let busy = address(flag);
        assert!(
            line.starts_with(&format!(
                "hoop: starting the gateway: cannot listen on {busy}"
            )),
            "{line}"
        );
        assert!(line.contains(&format!("{flag} ADDRESS")), "{line}");
        assert_eq!(line.contains(&format!("{flag} off")), optional, "{line}");
        assert!(text(&output.stdout).is_empty(), "{}", text(&output.stdout));
    }
    up.stop().await;
}

/// A client of `hoop connect` whose session cannot start hears why in its
/// own protocol: psql a FATAL error, the mariadb CLI an ERROR, whether the
/// socket was handed to the gateway on this host, tunnelled, or the
/// gateway went away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hoop_connect_tells_a_refused_client_why_in_its_protocol() {
    let up = Up::start("connect").await;
    let port = free_port().to_string();
    for (name, kind, target_port) in [
        ("gone", "database/postgres", port.as_str()),
        ("gonemy", "database/mysql", port.as_str()),
        ("pg", "database/postgres", "5432"),
    ] {
        let user = if kind.ends_with("mysql") {
            "USER=root"
        } else {
            "USER=postgres"
        };
        up.ok(&[
            "admin",
            "create",
            "conn",
            name,
            "-a",
            "default",
            "-t",
            kind,
            "-e",
            "HOST=127.0.0.1",
            "-e",
            &format!("PORT={target_port}"),
            "-e",
            user,
        ])
        .await;
    }
    let psql = |port: u16| async move {
        Command::new("psql")
            .arg(format!(
                "host=127.0.0.1 port={port} user=noop dbname=postgres connect_timeout=10"
            ))
            .args(["-X", "-Atc", "SELECT 1"])
            .env_remove("PGPASSWORD")
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap()
    };
    let mariadb = |port: u16| async move {
        Command::new("mariadb")
            .args([
                "-h",
                "127.0.0.1",
                "-P",
                &port.to_string(),
                "-u",
                "noop",
                "--skip-ssl",
            ])
            .args(["--connect-timeout=10", "-e", "SELECT 1"])
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap()
    };
    let offline = "is offline";
    for flags in [&[][..], &["--tunnel"][..]] {
        let mut connect = common::start_connect(up.hoop(), "gone", flags).await;
        let refused = psql(connect.port).await;
        connect.child.kill().await.unwrap();
        let said = text(&refused.stderr);
        assert!(!refused.status.success());
        assert!(
            said.contains("FATAL:  hoop connect: connection gone") && said.contains(offline),
            "{flags:?}: {said}"
        );
        let mut connect = common::start_connect(up.hoop(), "gonemy", flags).await;
        let refused = mariadb(connect.port).await;
        connect.child.kill().await.unwrap();
        let said = text(&refused.stderr);
        assert!(
            said.contains("ERROR 1105 (08001)") && said.contains(offline),
            "{flags:?}: {said}"
        );
    }

    // The agent's probe still finds the server (it reads online) but the
    // server gives no greeting, as one restarting accepts and closes (here
    // a TCP listener of the test's own, all the probe checks): the client
    // is told so.
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server_port = server.local_addr().unwrap().port().to_string();
    let restarting = tokio::spawn(async move {
        loop {
            let _ = server.accept().await;
        }
    });
    for (name, flags) in [("windowmy", &[][..]), ("windowmytunnel", &["--tunnel"][..])] {
        let created = up
            .ok(&[
                "admin",
                "create",
                "conn",
                name,
                "-a",
                "default",
                "-t",
                "database/mysql",
                "-e",
                "HOST=127.0.0.1",
                "-e",
                &format!("PORT={server_port}"),
                "-e",
                "USER=root",
            ])
            .await;
        assert_eq!(created, format!("connection {name} created (online)\n"));
        let mut connect = common::start_connect(up.hoop(), name, flags).await;
        let refused = mariadb(connect.port).await;
        connect.child.kill().await.unwrap();
        let said = text(&refused.stderr);
        assert!(
            said.contains("ERROR 1429")
                && said.contains("lost the connection to the database server"),
            "{flags:?}: {said}"
        );
    }
    restarting.abort();

    // The gateway goes away behind a tunnel: the client is told so.
    let mut connect = common::start_connect(up.hoop(), "pg", &["--tunnel"]).await;
    let before = psql(connect.port).await;
    assert_eq!(text(&before.stdout), "1\n", "{}", text(&before.stderr));
    let api = up.api.clone();
    up.stop().await;
    let refused = psql(connect.port).await;
    connect.child.kill().await.unwrap();
    let said = text(&refused.stderr);
    assert!(
        said.contains(&format!(
            "FATAL:  hoop connect: cannot reach the gateway at {api}"
        )),
        "{said}"
    );
}
