//! Issue 13, item 13: taking access away ends the sessions it opened,
//! within seconds, on every path a session takes: the PostgreSQL and MySQL
//! listeners, `hoop connect`'s tunnel and same-host handoff, and exec; with
//! the driver over the agent's link and in the gateway's process. The
//! client reads why in its own protocol, the record is closed as failed
//! with the reason, and sessions opened otherwise go on. Real psql and
//! mariadb CLI against the real servers.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use hoop_gateway::client::ApiClient;
use hoop_gateway::same_host::{self, ConnectSocket};
use hoop_gateway::store::SessionRecord;
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

mod common;

use common::{MysqlSetup, Route, Setup, stderr};

/// The bound on "within seconds": a session must have ended this long
/// after the change that withdrew its access. Generous for a loaded
/// two-core machine; the gateway acts at once on its own API's changes.
const WITHIN: Duration = Duration::from_secs(10);

const REVOKED: &str =
    "the access token of this session was revoked, or its user removed or deactivated";

/// A person with a token of their own; returns the token and its id.
async fn person(admin: &ApiClient, email: &str, groups: &[&str]) -> (String, String) {
    let user = admin
        .json(
            Method::POST,
            "/api/users",
            &json!({"email": email, "groups": groups}),
        )
        .await
        .unwrap();
    assert_eq!(user.status, StatusCode::CREATED, "{:?}", user.body);
    token_for(admin, email).await
}

async fn token_for(admin: &ApiClient, email: &str) -> (String, String) {
    let token = admin
        .json(
            Method::POST,
            "/api/tokens",
            &json!({"name": "t", "user_id": email}),
        )
        .await
        .unwrap();
    assert_eq!(token.status, StatusCode::CREATED, "{:?}", token.body);
    (
        token.body["token"].as_str().unwrap().to_owned(),
        token.body["id"].as_str().unwrap().to_owned(),
    )
}

/// psql at `port` on 127.0.0.1 with `password`, running `sql`.
fn psql(port: u16, user: &str, database: &str, password: &str, sql: &str) -> Child {
    Command::new("psql")
        .arg(format!(
            "host=127.0.0.1 port={port} user={user} dbname={database} sslmode=disable connect_timeout=10"
        ))
        .args(["-X", "-At", "-c", sql])
        .env("PGPASSWORD", password)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits until PostgreSQL runs a statement containing `marker`.
async fn postgres_running(marker: &str) {
    let admin = common::server_admin("postgres").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while admin
        .query(
            "SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' \
             AND pid <> pg_backend_pid()",
            &[&format!("%{marker}%")],
        )
        .await
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "{marker} never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The client's output once it exited, at most `WITHIN` from now.
async fn ended_within(child: Child, what: &str) -> Output {
    tokio::time::timeout(WITHIN, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: still running {WITHIN:?} after the change"))
        .unwrap()
}

/// A tunnel as `hoop connect` opens it: a local port whose every client
/// is relayed over an upgraded API connection with `token`.
async fn tunnel(api: std::net::SocketAddr, connection: &str, token: &str) -> u16 {
    let local = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = local.local_addr().unwrap().port();
    let request = format!(
        "POST /api/connections/{connection}/tunnel HTTP/1.1\r\nHost: {api}\r\n\
         Authorization: Bearer {token}\r\nConnection: upgrade\r\nUpgrade: {}\r\n\r\n",
        hoop_gateway::api::TUNNEL_PROTOCOL
    );
    tokio::spawn(async move {
        while let Ok((mut client, _)) = local.accept().await {
            let request = request.clone();
            tokio::spawn(async move {
                let mut remote = TcpStream::connect(api).await.unwrap();
                remote.write_all(request.as_bytes()).await.unwrap();
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if remote.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                assert!(
                    head.starts_with(b"HTTP/1.1 101"),
                    "{}",
                    String::from_utf8_lossy(&head)
                );
                let _ = tokio::io::copy_bidirectional(&mut client, &mut remote).await;
            });
        }
    });
    port
}

/// A local port whose every client is handed over to the gateway's
/// socket with `token`, as `hoop connect` on the gateway's host does.
async fn handoff(socket: ConnectSocket, connection: &'static str, token: String) -> u16 {
    let local = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = local.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = local.accept().await {
            if same_host::hand_over(&socket, client, connection, &token)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    port
}

async fn socket_of(admin: &ApiClient) -> ConnectSocket {
    let info = admin.get("/api/serverinfo").await.unwrap().body;
    ConnectSocket {
        path: PathBuf::from(info["connect_socket"].as_str().unwrap()),
        instance_id: info["instance_id"].as_str().unwrap().to_owned(),
    }
}

/// Waits until `count` sessions on `pg` recorded for `user` have ended;
/// returns them all.
async fn ended_sessions(setup: &Setup, user: &str, count: usize) -> Vec<SessionRecord> {
    let deadline = Instant::now() + WITHIN;
    loop {
        let sessions: Vec<SessionRecord> = setup
            .sessions("pg")
            .await
            .into_iter()
            .filter(|s| s.user_email == user)
            .collect();
        if sessions.iter().filter(|s| s.status != "open").count() == count {
            return sessions;
        }
        assert!(Instant::now() < deadline, "not closed: {sessions:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_sessions_on_every_route_over_the_link() {
    revoking_a_token_ends_its_sessions(Route::Link).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_sessions_on_every_route_in_place() {
    revoking_a_token_ends_its_sessions(Route::InPlace).await;
}

async fn revoking_a_token_ends_its_sessions(route: Route) {
    let setup = Setup::start_with(false, route).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let (token, token_id) = person(&setup.admin, "ana@example.com", &[]).await;
    // Ana's second token, and another person: neither is revoked.
    let (kept, _) = token_for(&setup.admin, "ana@example.com").await;
    let (other, _) = person(&setup.admin, "bo@example.com", &[]).await;
    let listener = setup.gateway.postgres_addr.unwrap().port();
    let tunnelled = tunnel(setup.gateway.api_addr, "pg", &token).await;
    let handed = handoff(socket_of(&setup.admin).await, "pg", token.clone()).await;
    let database = setup.database.clone();
    let marker = |n: &str| format!("revoked_{n}_{}", std::process::id());
    let sleep = |n: &str| format!("SELECT pg_sleep(60), '{}'", marker(n));
    let mut running = Vec::new();
    for (what, port, user) in [
        ("listener", listener, "pg"),
        ("tunnel", tunnelled, "noop"),
        ("handoff", handed, "noop"),
    ] {
        running.push((what, psql(port, user, &database, &token, &sleep(what))));
        postgres_running(&marker(what)).await;
    }
    let survivors = [
        psql(listener, "pg", &database, &kept, &sleep("kept")),
        psql(listener, "pg", &database, &other, &sleep("other")),
    ];
    postgres_running(&marker("kept")).await;
    postgres_running(&marker("other")).await;
    let exec = {
        let client = ApiClient::new(
            &format!("http://{}", setup.gateway.api_addr),
            Some(token.clone()),
        )
        .unwrap();
        let script = sleep("exec");
        tokio::spawn(async move {
            client
                .json(
                    Method::POST,
                    "/api/sessions",
                    &json!({"connection": "pg", "script": script}),
                )
                .await
                .unwrap()
        })
    };
    postgres_running(&marker("exec")).await;

    let revoked = setup
        .admin
        .send(Method::DELETE, &format!("/api/tokens/{token_id}"), None)
        .await
        .unwrap();
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    for (what, child) in running {
        let output = ended_within(child, what).await;
        assert!(!output.status.success(), "{what}");
        let said = stderr(&output);
        assert!(
            said.contains(&format!("FATAL:  {REVOKED}")),
            "{what}: {said}"
        );
    }
    let exec = tokio::time::timeout(WITHIN, exec)
        .await
        .expect("exec still running")
        .unwrap();
    assert_eq!(exec.body["status"], "failed", "{:?}", exec.body);
    assert_eq!(exec.body["error"], REVOKED);
    assert_eq!(exec.body["exit_code"], 1);
    // Ana's four sessions of the revoked token are closed as failed; the
    // one of her other token is still open.
    let sessions = ended_sessions(&setup, "ana@example.com", 4).await;
    let (ended, open): (Vec<&SessionRecord>, Vec<&SessionRecord>) =
        sessions.iter().partition(|s| s.status != "open");
    assert_eq!(open.len(), 1, "{sessions:?}");
    assert!(
        ended
            .iter()
            .all(|s| s.status == "failed" && s.error.as_deref() == Some(REVOKED)),
        "{sessions:?}"
    );
    // Sessions of a token not revoked go on.
    for mut survivor in survivors {
        assert!(
            survivor.try_wait().unwrap().is_none(),
            "a session not revoked ended"
        );
    }
    setup.stop().await;
}

/// An interactive mariadb CLI through the listener.
fn mariadb(setup: &MysqlSetup, token: &str, sql: &str) -> Child {
    let addr = setup.gateway.mysql_addr.unwrap();
    Command::new("mariadb")
        .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
        .args(["-u", "my", "--skip-ssl", "--connect-timeout=10", "-N", "-B"])
        .arg(format!("-p{token}"))
        .arg(&setup.name)
        .args(["-e", sql])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn mariadb_running(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-N", "-B", "-e"])
            .arg(format!(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST \
                 WHERE INFO LIKE '%{marker}%' AND INFO NOT LIKE '%PROCESSLIST%'"
            ))
            .output()
            .await
            .unwrap();
        if String::from_utf8_lossy(&output.stdout).trim() != "0" {
            return;
        }
        assert!(Instant::now() < deadline, "{marker} never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_token_ends_its_mariadb_sessions() {
    for in_place in [false, true] {
        let tag = if in_place { "revoke_ip" } else { "revoke_link" };
        let setup = MysqlSetup::start_with(tag, in_place).await;
        setup.connection("my", json!({})).await;
        let (token, token_id) = person(&setup.admin, "ana@example.com", &[]).await;
        let marker = format!("revoked_my_{}", std::process::id());
        let waiting = mariadb(&setup, &token, &format!("SELECT SLEEP(60), '{marker}'"));
        mariadb_running(&marker).await;
        // Inside a result too: rows stream (--quick) when it is revoked.
        let addr = setup.gateway.mysql_addr.unwrap();
        let mut streaming = Command::new("mariadb")
            .args(["-h", &addr.ip().to_string(), "-P", &addr.port().to_string()])
            .args(["-u", "my", "--skip-ssl", "-N", "-B", "--quick"])
            .arg(format!("-p{token}"))
            .arg(&setup.name)
            .args(["-e", "SELECT seq, REPEAT('x', 300) FROM seq_1_to_50000000"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut rows = BufReader::new(streaming.stdout.take().unwrap());
        let mut line = String::new();
        for _ in 0..1000 {
            line.clear();
            assert!(rows.read_line(&mut line).await.unwrap() > 0);
        }
        let draining = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = rows.read_to_end(&mut sink).await;
        });
        let revoked = setup
            .admin
            .send(Method::DELETE, &format!("/api/tokens/{token_id}"), None)
            .await
            .unwrap();
        assert_eq!(revoked.status, StatusCode::NO_CONTENT);
        for (what, child) in [("waiting", waiting), ("streaming", streaming)] {
            let output = ended_within(child, what).await;
            let said = stderr(&output);
            assert!(
                said.contains(&format!("ERROR 1927 (70100) at line 1: {REVOKED}")),
                "{what}: {said}"
            );
        }
        let _ = draining.await;
        let sessions = setup.ended_sessions("my", 2).await;
        assert!(
            sessions
                .iter()
                .all(|s| s.status == "failed" && s.error.as_deref() == Some(REVOKED)),
            "{sessions:?}"
        );
        setup.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_withdrawals_of_access_end_sessions_too() {
    let setup = Setup::start_with(false, Route::Link).await;
    setup.connection("pg", 5432, json!({})).await;
    setup.wait_status("pg", "online").await;
    let admin = &setup.admin;
    for group in ["dba", "staff"] {
        admin
            .json(Method::POST, "/api/users/groups", &json!({"name": group}))
            .await
            .unwrap();
    }
    let (ana, _) = person(admin, "ana@example.com", &["dba"]).await;
    let (bo, _) = person(admin, "bo@example.com", &["dba", "staff"]).await;
    let listener = setup.gateway.postgres_addr.unwrap().port();
    let database = setup.database.clone();
    let start = |token: &str, n: &str| {
        let marker = format!("withdrawn_{n}_{}", std::process::id());
        (
            psql(
                listener,
                "pg",
                &database,
                token,
                &format!("SELECT pg_sleep(60), '{marker}'"),
            ),
            marker,
        )
    };
    // access_control: only dba may see pg; then only staff. Ana (dba
    // only) loses it; Bo (both) keeps it.
    let set = |groups: Value| async move {
        let response = admin
            .json(
                Method::PUT,
                "/api/plugins/access_control",
                &json!({"connections": [{"id": "pg", "config": groups}]}),
            )
            .await
            .unwrap();
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
    };
    set(json!(["dba"])).await;
    let (ana_session, marker) = start(&ana, "ana");
    postgres_running(&marker).await;
    let (bo_session, marker) = start(&bo, "bo");
    postgres_running(&marker).await;
    set(json!(["staff"])).await;
    let said = stderr(&ended_within(ana_session, "hidden by access_control").await);
    assert!(
        said.contains("FATAL:  connection pg is no longer available to you"),
        "{said}"
    );
    // A user deactivated.
    let bo_id = admin.get("/api/users/bo@example.com").await.unwrap().body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deactivated = admin
        .json(
            Method::PUT,
            &format!("/api/users/{bo_id}"),
            &json!({"email": "bo@example.com", "groups": ["dba", "staff"], "status": "inactive"}),
        )
        .await
        .unwrap();
    assert_eq!(deactivated.status, StatusCode::OK, "{:?}", deactivated.body);
    let said = stderr(&ended_within(bo_session, "user deactivated").await);
    assert!(said.contains(&format!("FATAL:  {REVOKED}")), "{said}");
    // Connect access disabled on the connection ends the admin's own.
    let (admin_session, marker) = start(&setup.token, "admin");
    postgres_running(&marker).await;
    let patched = admin
        .json(
            Method::PATCH,
            "/api/connections/pg",
            &json!({"access_mode_connect": "disabled"}),
        )
        .await
        .unwrap();
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let said = stderr(&ended_within(admin_session, "connect access disabled").await);
    assert!(
        said.contains("FATAL:  connect access was disabled on connection pg"),
        "{said}"
    );
    setup.stop().await;
}
