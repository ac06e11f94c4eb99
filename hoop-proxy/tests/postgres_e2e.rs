//! End-to-end tests of the PostgreSQL driver: a private PostgreSQL 15 cluster,
//! hoop in this process on a loopback port, and real clients (psql, pgbench,
//! pg_dump, psycopg, asyncpg) as separate processes over real sockets.
//!
//! Run alone with `cargo nextest run -p hoop-proxy --test postgres_e2e`.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use hoop_proxy::Secret;
use hoop_proxy::SslMode;
use hoop_proxy::auth::SharedSecret;
use hoop_proxy::pipeline::{
    ClientAction, Interest, Pipeline, Refusal, ServerAction, SessionHook, SessionInfo,
};
use hoop_proxy::postgres::PostgresProxy;
use hoop_wire::event::Event;
use support::{Role, client, cluster, output_ok, proxy_for, spawn_proxy};

const TOKEN: &str = "person-access-token-1234";

fn psql(proxy: std::net::SocketAddr, user: &str, db: &str) -> tokio::process::Command {
    let mut command = client("psql", proxy, user);
    command.args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db]);
    command
}

async fn proxy_with_token(role: Role, ssl_mode: SslMode) -> std::net::SocketAddr {
    let pg = cluster();
    let proxy = PostgresProxy::builder(pg.target(role, ssl_mode, Some("postgres")))
        .upstream_tls(pg.upstream_tls(ssl_mode))
        .authenticator(Arc::new(SharedSecret::new(Secret::new(TOKEN))))
        .build()
        .unwrap();
    spawn_proxy(proxy).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_command_runs_as_the_connection_user_with_the_person_token() {
    let proxy = proxy_with_token(Role::Scram, SslMode::Prefer).await;
    let out = output_ok(
        psql(proxy, "alice", "postgres")
            .env("PGPASSWORD", TOKEN)
            .args(["-c", "SELECT current_user, 6 * 7"]),
    )
    .await;
    assert_eq!(out, "hoop_scram|42\n");
    // The startup reports the person's name, not the connection's user.
    let out = python(
        proxy,
        "postgres",
        &format!(
            "import os, psycopg\n\
             c = psycopg.connect(os.environ['HOOP_DSN'].replace('user=pyuser', 'user=alice'), password='{TOKEN}')\n\
             print(c.info.parameter_status('session_authorization'))"
        ),
    )
    .await;
    assert_eq!(out, "alice\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_token_is_refused_with_28p01_without_revealing_credentials() {
    let proxy = proxy_with_token(Role::Scram, SslMode::Prefer).await;
    let output = psql(proxy, "alice", "postgres")
        .env("PGPASSWORD", "not-the-token")
        .args(["-c", "SELECT 1"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("access token refused"), "{stderr}");
    assert!(
        !stderr.contains(Role::Scram.password().unwrap()),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_server_authentication_method_works() {
    for role in [Role::Scram, Role::Md5, Role::Cleartext, Role::Trust] {
        let proxy = proxy_for(role, SslMode::Disable, Some("postgres")).await;
        let out = output_ok(psql(proxy, "bob", "postgres").args([
            "-c",
            "SELECT current_user, coalesce((SELECT auth_method FROM pg_hba_file_rules LIMIT 0), 'ok')",
        ]))
        .await;
        assert_eq!(out, format!("{}|ok\n", role.user()), "{role:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_connection_credentials_give_28p01_and_no_secret() {
    let pg = cluster();
    let mut target = pg.target(Role::Scram, SslMode::Disable, Some("postgres"));
    target.password = Some(Secret::new("wrong-password-zz9"));
    let proxy = spawn_proxy(PostgresProxy::builder(target).build().unwrap()).await;
    let output = psql(proxy, "carol", "postgres")
        .args(["-c", "SELECT 1"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refused the connection's credentials"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password-zz9"), "{stderr}");
    assert!(!stderr.contains("hoop_scram"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_server_gives_08001() {
    let mut target = cluster().target(Role::Scram, SslMode::Disable, None);
    target.port = support::free_port();
    let proxy = spawn_proxy(PostgresProxy::builder(target).build().unwrap()).await;
    let mut raw = support::RawClient::start(proxy, "dave", "postgres").await;
    let (code, message) = raw.until_ready().await.unwrap_err();
    assert_eq!(code, "08001");
    assert!(
        message.contains("cannot reach the database server"),
        "{message}"
    );
    // The proxy keeps serving: the next session gets the same clear answer.
    let output = psql(proxy, "dave", "postgres")
        .args(["-c", "SELECT 1"])
        .output()
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot reach"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_on_both_legs_with_verified_certificates() {
    let pg = cluster();
    let proxy =
        PostgresProxy::builder(pg.target(Role::TlsOnly, SslMode::VerifyFull, Some("postgres")))
            .upstream_tls(pg.upstream_tls(SslMode::VerifyFull))
            .client_tls(pg.client_tls())
            .build()
            .unwrap();
    let proxy = spawn_proxy(proxy).await;
    let ca = pg.file("client-ca.pem", &pg.ca_pem);
    let out = output_ok(
        psql(proxy, "erin", "postgres")
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", &ca)
            .args([
                "-c",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                "-c",
                "\\conninfo",
            ]),
    )
    .await;
    // The server saw TLS from hoop, and psql saw TLS from hoop.
    assert!(out.starts_with("t\n"), "{out}");
    assert!(out.contains("SSL connection"), "{out}");

    // The TLS-only role is rejected when hoop talks plain to the server.
    let plain = proxy_for(Role::TlsOnly, SslMode::Disable, Some("postgres")).await;
    let output = psql(plain, "erin", "postgres")
        .args(["-c", "SELECT 1"])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_refuses_a_server_certificate_it_cannot_verify() {
    let pg = cluster();
    // Trust a CA that did not sign the server's certificate.
    let other =
        hoop_proxy::tls::UpstreamTls::with_roots_pem(SslMode::VerifyFull, Some(&pg.cert_pem))
            .unwrap();
    let proxy =
        PostgresProxy::builder(pg.target(Role::Scram, SslMode::VerifyFull, Some("postgres")))
            .upstream_tls(other)
            .build()
            .unwrap();
    let proxy = spawn_proxy(proxy).await;
    let output = psql(proxy, "frank", "postgres")
        .args(["-c", "SELECT 1"])
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("TLS with the database server failed"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_interactive_session_from_stdin() {
    let pg = cluster();
    pg.create_database("hoop_interactive");
    let proxy = proxy_for(Role::Scram, SslMode::Prefer, None).await;
    let script = "\
CREATE TABLE t (id int PRIMARY KEY, note text);
\\set ON_ERROR_STOP 0
INSERT INTO t VALUES (1, 'one'), (2, 'two');
SELECT 1/0;
BEGIN;
INSERT INTO t VALUES (3, 'three');
ROLLBACK;
\\d t
SELECT string_agg(note, ',' ORDER BY id) FROM t;
\\q
";
    let mut command = psql(proxy, "gina", "hoop_interactive");
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    use tokio::io::AsyncWriteExt as _;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(script.as_bytes()).await.unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("division by zero"), "{stderr}");
    assert!(stdout.contains("note|text"), "{stdout}");
    assert!(stdout.trim_end().ends_with("one,two"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_initialises_and_runs_in_every_query_mode() {
    let pg = cluster();
    pg.create_database("hoop_pgbench");
    let proxy = proxy_for(Role::Md5, SslMode::Prefer, None).await;
    output_ok(client("pgbench", proxy, "x").args(["-i", "-q", "-s", "1", "hoop_pgbench"])).await;
    for mode in ["simple", "extended", "prepared"] {
        let out = output_ok(client("pgbench", proxy, "x").args([
            "-S",
            "-M",
            mode,
            "-c",
            "4",
            "-j",
            "2",
            "-t",
            "200",
            "hoop_pgbench",
        ]))
        .await;
        assert!(
            out.contains("number of transactions actually processed: 800/800"),
            "{mode}: {out}"
        );
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_dump_through_hoop_equals_pg_dump_direct() {
    let pg = cluster();
    pg.create_database("hoop_dump");
    pg.sql(
        "hoop_dump",
        "CREATE TABLE people (id serial PRIMARY KEY, name text, email text, born date, data jsonb, pic bytea);
         INSERT INTO people (name, email, born, data, pic)
           SELECT 'n' || i, 'u' || i || '@example.com', date '2000-01-01' + i, jsonb_build_object('k', i), decode(md5(i::text), 'hex')
           FROM generate_series(1, 5000) i;
         CREATE VIEW adults AS SELECT * FROM people WHERE born < now() - interval '18 years';
         CREATE FUNCTION add(a int, b int) RETURNS int LANGUAGE sql AS 'SELECT a + b';",
    );
    let proxy = proxy_for(Role::Scram, SslMode::Require, None).await;
    let through =
        output_ok(client("pg_dump", proxy, "x").args(["--no-owner", "-d", "hoop_dump"])).await;
    let direct = output_ok(
        tokio::process::Command::new("pg_dump")
            .env("PGPASSWORD", Role::Scram.password().unwrap())
            .args([
                "--no-owner",
                "-h",
                "127.0.0.1",
                "-p",
                &pg.port.to_string(),
                "-U",
                "hoop_scram",
                "-d",
                "hoop_dump",
            ]),
    )
    .await;
    // pg_dump 15.14+ brackets the script with a random `\restrict` key.
    let stable = |dump: &str| {
        dump.lines()
            .filter(|line| !line.starts_with("\\restrict") && !line.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(through.contains("u4999@example.com"));
    assert!(stable(&through) == stable(&direct), "dumps differ");
}

/// Runs a Python script with the proxy's address in `HOOP_DSN`.
async fn python(proxy: std::net::SocketAddr, db: &str, script: &str) -> String {
    let dsn = format!(
        "host={} port={} user=pyuser dbname={db}",
        proxy.ip(),
        proxy.port()
    );
    output_ok(
        tokio::process::Command::new("python3")
            .args(["-c", script])
            .env("HOOP_DSN", dsn)
            .env("HOOP_HOST", proxy.ip().to_string())
            .env("HOOP_PORT", proxy.port().to_string())
            .env("HOOP_DB", db)
            .kill_on_drop(true),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psycopg_binary_parameters_results_copy_and_notify() {
    let pg = cluster();
    pg.create_database("hoop_psycopg");
    let proxy = proxy_for(Role::Scram, SslMode::Prefer, None).await;
    let out = python(
        proxy,
        "hoop_psycopg",
        r#"
import os, psycopg
with psycopg.connect(os.environ["HOOP_DSN"], autocommit=True) as conn:
    cur = conn.cursor(binary=True)
    cur.execute("CREATE TABLE items (id int, name text, price numeric, blob bytea)")
    cur.execute("SELECT %b::int + 1, %b::text, %b::bytea", (41, "zé", b"\x00\x01\xff"), binary=True)
    print(cur.fetchone())
    with cur.copy("COPY items (id, name, price, blob) FROM STDIN") as copy:
        for i in range(1000):
            copy.write_row((i, f"item {i}", i * 1.5, bytes([i % 256])))
    cur.execute("SELECT count(*), sum(id), max(name) FROM items", binary=True)
    print(cur.fetchone())
    out = bytearray()
    with cur.copy("COPY (SELECT id, name FROM items ORDER BY id LIMIT 3) TO STDOUT") as copy:
        for chunk in copy:
            out += chunk
    print(bytes(out))
    listener = psycopg.connect(os.environ["HOOP_DSN"], autocommit=True)
    listener.execute("LISTEN hoop_channel")
    conn.execute("NOTIFY hoop_channel, 'hello through hoop'")
    for note in listener.notifies(timeout=30, stop_after=1):
        print(note.channel, note.payload)
    listener.close()
"#,
    )
    .await;
    assert_eq!(
        out,
        "(42, 'zé', b'\\x00\\x01\\xff')\n(1000, 499500, 'item 999')\nb'0\\titem 0\\n1\\titem 1\\n2\\titem 2\\n'\nhoop_channel hello through hoop\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asyncpg_prepared_binary_protocol_and_100_concurrent_sessions() {
    let proxy = proxy_for(Role::Scram, SslMode::Disable, Some("postgres")).await;
    let out = python(
        proxy,
        "postgres",
        r#"
import asyncio, os, asyncpg
async def session(i):
    conn = await asyncpg.connect(host=os.environ["HOOP_HOST"], port=int(os.environ["HOOP_PORT"]), user="u", database="postgres", password="x")
    return conn
async def main():
    conns = await asyncio.gather(*(session(i) for i in range(100)))
    # All 100 sessions are open at once; each runs queries concurrently.
    async def work(i, conn):
        total = 0
        for j in range(5):
            row = await conn.fetchrow("SELECT $1::int8 * 2 AS v, $2::text AS s, $3::bytea AS b, now() AS t", i * 10 + j, "x" * i, bytes([i]))
            total += row["v"]
            assert row["s"] == "x" * i and row["b"] == bytes([i])
        n = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE usename = 'hoop_scram'")
        return total, n
    results = await asyncio.gather(*(work(i, c) for i, c in enumerate(conns)))
    print(sum(t for t, _ in results), max(n for _, n in results) >= 100)
    await asyncio.gather(*(c.close() for c in conns))
asyncio.run(main())
"#,
    )
    .await;
    let expected: i64 = (0..100)
        .flat_map(|i| (0..5).map(move |j| (i * 10 + j) * 2))
        .sum();
    assert_eq!(out, format!("{expected} True\n"));
}

/// Issue 17, item 8: the client holds the server's real process id (what
/// `pg_backend_pid()` and `NotificationResponse` report, which applications
/// compare to skip their own notifications) with a secret of hoop's own,
/// and a cancel through hoop still stops the query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_request_through_hoop_stops_pg_sleep() {
    let proxy = proxy_for(Role::Scram, SslMode::Prefer, Some("postgres")).await;
    let out = python(
        proxy,
        "postgres",
        r#"
import os, threading, psycopg
conn = psycopg.connect(os.environ["HOOP_DSN"])
real_pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
conn.execute("LISTEN hoop_own")
conn.execute("NOTIFY hoop_own")
conn.commit()
note = next(conn.notifies(timeout=30, stop_after=1))
print(conn.info.backend_pid == real_pid == note.pid)
def cancel_when_running():
    watcher = psycopg.connect(os.environ["HOOP_DSN"], autocommit=True)
    while not watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s AND query LIKE 'SELECT pg_sleep%%'", (real_pid,)).fetchone()[0]:
        pass
    conn.cancel()
    watcher.close()
threading.Thread(target=cancel_when_running).start()
try:
    conn.execute("SELECT pg_sleep(60)")
    print("not cancelled")
except psycopg.errors.QueryCanceled:
    print("cancelled")
conn.rollback()
print(conn.execute("SELECT 'still usable'").fetchone()[0])
"#,
    )
    .await;
    assert_eq!(out, "True\ncancelled\nstill usable\n");
}

/// Polls until no backend runs under `application_name` (bounded; no timing
/// assertion, only a generous ceiling so a broken build fails instead of
/// hanging).
async fn wait_for_no_backends(application_name: &str) -> bool {
    let pg = cluster();
    for _ in 0..300 {
        let n = pg.sql(
            "postgres",
            &format!("SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application_name}'"),
        );
        if n.trim() == "0" {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

async fn wait_for_backends(application_name: &str, query_like: &str, count: usize) {
    wait_for_sql(
        &format!(
            "SELECT count(*) >= {count} FROM pg_stat_activity WHERE application_name = '{application_name}' \
             AND state = 'active' AND query LIKE '{query_like}'"
        ),
    )
    .await;
}

/// Polls until `query` (run directly on the cluster) answers `t`. Bounded, so
/// a broken build fails with a message instead of hanging; no timing claim.
async fn wait_for_sql(query: &str) {
    let pg = cluster();
    for _ in 0..1200 {
        if pg.sql("postgres", query).trim() == "t" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("never true: {query}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_clients_leave_no_server_connection_behind() {
    let proxy = proxy_for(Role::Scram, SslMode::Prefer, Some("postgres")).await;
    let mut children = Vec::new();
    // Mid-result: a stream of rows the client is reading.
    for _ in 0..3 {
        children.push(
            psql(proxy, "kim", "postgres")
                .env("PGAPPNAME", "hoop_kill_test")
                .args([
                    "-c",
                    "SELECT i, repeat('x', 100) FROM generate_series(1, 100000000) i",
                ])
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
    }
    // Mid-query: a statement that writes nothing for a minute.
    for _ in 0..2 {
        children.push(
            psql(proxy, "kim", "postgres")
                .env("PGAPPNAME", "hoop_kill_test")
                .args(["-c", "SELECT pg_sleep(60)"])
                .spawn()
                .unwrap(),
        );
    }
    wait_for_backends("hoop_kill_test", "SELECT i, repeat%", 3).await;
    wait_for_backends("hoop_kill_test", "SELECT pg_sleep%", 2).await;
    for child in &mut children {
        child.start_kill().unwrap();
    }
    for child in &mut children {
        child.wait().await.unwrap();
    }
    assert!(wait_for_no_backends("hoop_kill_test").await);
}

/// A hook that refuses statements mentioning `forbidden_table`, upper-cases
/// the text cells of rows, and counts rows.
#[derive(Default)]
struct TestPipeline {
    rows: Arc<AtomicU64>,
}

struct TestHook {
    rows: Arc<AtomicU64>,
}

impl SessionHook for TestHook {
    fn interest(&self) -> Interest {
        Interest {
            statements: true,
            rows: true,
            ..Interest::NONE
        }
    }

    fn client_event(&mut self, event: &Event) -> ClientAction {
        match event {
            Event::Query { text } if text.contains("forbidden_table") => {
                ClientAction::Refuse(Refusal {
                    code: "42501".to_owned(),
                    message: "blocked by guardrail".to_owned(),
                })
            }
            _ => ClientAction::Forward,
        }
    }

    fn server_event(&mut self, event: &mut Event) -> ServerAction {
        let Event::Row { cells } = event else {
            return ServerAction::Forward;
        };
        self.rows.fetch_add(1, Ordering::Relaxed);
        for cell in cells.iter_mut().flatten() {
            *cell = bytes::Bytes::from(cell.to_ascii_uppercase());
        }
        ServerAction::Rewritten
    }
}

impl Pipeline for TestPipeline {
    fn open(&self, _session: &SessionInfo) -> Box<dyn SessionHook> {
        Box::new(TestHook {
            rows: self.rows.clone(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_hook_rewrites_rows_refuses_statements_and_counts() {
    let pg = cluster();
    let pipeline = Arc::new(TestPipeline::default());
    let rows = pipeline.rows.clone();
    let proxy = PostgresProxy::builder(pg.target(Role::Scram, SslMode::Disable, Some("postgres")))
        .pipeline(pipeline)
        .build()
        .unwrap();
    let proxy = spawn_proxy(proxy).await;
    let output = psql(proxy, "lee", "postgres")
        .args([
            "-q",
            "-v",
            "ON_ERROR_STOP=0",
            "-c",
            "SELECT 'secret@example.com' AS email UNION ALL SELECT 'b'",
            "-c",
            "SELECT * FROM forbidden_table",
            "-c",
            "BEGIN",
            "-c",
            "SELECT * FROM forbidden_table",
            "-c",
            "SELECT 'still ' || 'usable'",
            "-c",
            "COMMIT",
        ])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stdout, "SECRET@EXAMPLE.COM\nB\nSTILL USABLE\n", "{stderr}");
    assert_eq!(
        stderr.matches("blocked by guardrail").count(),
        2,
        "{stderr}"
    );
    assert_eq!(rows.load(Ordering::Relaxed), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violation_gets_08p01_and_other_sessions_keep_working() {
    use hoop_wire::postgres::{FrontendMessage, Query};
    let proxy = proxy_for(Role::Trust, SslMode::Disable, Some("postgres")).await;
    let mut good = support::RawClient::start(proxy, "ok", "postgres").await;
    good.until_ready().await.unwrap();
    let mut bad = support::RawClient::start(proxy, "bad", "postgres").await;
    bad.until_ready().await.unwrap();
    // A message type the protocol does not define.
    bad.send_raw(&[0x01, 0, 0, 0, 4]).await;
    let (code, message) = bad.until_ready().await.unwrap_err();
    assert_eq!(code, "08P01");
    assert!(
        message.contains("invalid message from the client"),
        "{message}"
    );
    assert!(bad.message().await.is_none(), "session must be closed");

    good.send(&FrontendMessage::Query(Query {
        query: "SELECT 1".into(),
    }))
    .await;
    good.until_ready().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_sent_before_the_tls_answer_are_refused() {
    let pg = cluster();
    let proxy = PostgresProxy::builder(pg.target(Role::Trust, SslMode::Disable, Some("postgres")))
        .client_tls(pg.client_tls())
        .build()
        .unwrap();
    let proxy = spawn_proxy(proxy).await;
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // SSLRequest followed at once by a plaintext startup message: a
    // man-in-the-middle injection (CVE-2021-23222).
    let mut bytes = vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
    bytes.extend_from_slice(b"\0\0\0\x14\0\x03\0\0user\0alice\0\0");
    stream.write_all(&bytes).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert_eq!(answer.first(), Some(&b'E'), "{answer:?}");
    assert!(String::from_utf8_lossy(&answer).contains("08P01"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_million_rows_stream_in_bounded_memory() {
    use hoop_wire::postgres::{FrontendMessage, Query};
    let proxy = proxy_for(Role::Trust, SslMode::Disable, Some("postgres")).await;
    let mut raw = support::RawClient::start(proxy, "big", "postgres").await;
    raw.until_ready().await.unwrap();
    raw.send(&FrontendMessage::Query(Query {
        query: "SELECT i, 'row number ' || i FROM generate_series(1, 10000000) i".into(),
    }))
    .await;
    let mut rows = 0u64;
    let mut bytes = 0u64;
    loop {
        let frame = raw.frame().await.unwrap();
        bytes += frame.bytes.len() as u64;
        match frame.tag {
            Some(b'D') => rows += 1,
            Some(b'Z') => break,
            Some(b'E') => panic!("query failed"),
            _ => {}
        }
    }
    assert_eq!(rows, 10_000_000);
    assert!(bytes > 300_000_000, "{bytes}");
    // The whole test process (proxy, client, runtime) stayed small while
    // about 350 MB of rows went through.
    let peak = support::peak_rss();
    assert!(peak < 64 * 1024 * 1024, "peak RSS {peak} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_slows_only_its_own_session() {
    use hoop_wire::postgres::{FrontendMessage, Query};
    let proxy = proxy_for(Role::Trust, SslMode::Disable, Some("postgres")).await;
    let mut stalled = support::RawClient::start(proxy, "slow", "postgres").await;
    stalled.until_ready().await.unwrap();
    // Ask for about 1 GB of rows and never read them.
    stalled
        .send(&FrontendMessage::Query(Query {
            query: "SELECT i AS stalled, repeat('y', 100) FROM generate_series(1, 10000000) i"
                .into(),
        }))
        .await;
    // Wait until the server is blocked sending to the stalled session.
    wait_for_sql(
        "SELECT count(*) = 1 FROM pg_stat_activity WHERE wait_event = 'ClientWrite' \
         AND query LIKE 'SELECT i AS stalled%'",
    )
    .await;
    // Other sessions are served meanwhile.
    let out = output_ok(psql(proxy, "fast", "postgres").args(["-c", "SELECT 'served'"])).await;
    assert_eq!(out, "served\n");
    // And the stalled session holds only bounded buffers, not the result.
    let peak = support::peak_rss();
    assert!(peak < 64 * 1024 * 1024, "peak RSS {peak} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_is_the_default_database_and_startup_parameters_are_forwarded() {
    let pg = cluster();
    pg.create_database("hoop_default_db");
    let proxy = proxy_for(Role::Scram, SslMode::Prefer, Some("hoop_default_db")).await;
    // A client that names no database gets DB.
    let mut raw = support::RawClient::start(proxy, "nodb", "").await;
    raw.until_ready().await.unwrap();
    raw.send(&hoop_wire::postgres::FrontendMessage::Query(
        hoop_wire::postgres::Query {
            query: "SELECT current_database()".into(),
        },
    ))
    .await;
    let row = loop {
        if let Some(hoop_wire::postgres::BackendMessage::DataRow(row)) = raw.message().await {
            break row;
        }
    };
    assert_eq!(
        row.cells().next().unwrap().unwrap().as_ref(),
        b"hoop_default_db"
    );
    // One that names a database gets it, with its other parameters; notices
    // and ParameterStatus changes reach it.
    let out = python(
        proxy,
        "postgres",
        r#"
import os, psycopg
conn = psycopg.connect(os.environ["HOOP_DSN"] + " application_name=hoop_app options='-c search_path=pg_catalog'", autocommit=True)
notices = []
conn.add_notice_handler(lambda d: notices.append(d.message_primary))
print(conn.execute("SELECT current_database(), current_setting('application_name'), current_setting('search_path')").fetchone())
conn.execute("SET application_name = 'renamed'")
print(conn.info.parameter_status("application_name"))
conn.execute("DO $$ BEGIN RAISE NOTICE 'hello notice'; END $$")
print(notices)
"#,
    )
    .await;
    assert_eq!(
        out,
        "('postgres', 'hoop_app', 'pg_catalog')\nrenamed\n['hello notice']\n"
    );
}
