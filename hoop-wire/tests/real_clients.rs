//! Traffic of real clients against the real PostgreSQL server on this machine,
//! recorded and decoded.
//!
//! Each test creates its own role and database on 127.0.0.1:5432 (trust
//! authentication, superuser `postgres`), starts a capturing relay on a free
//! port, points a real client at the relay (psql, pgbench, psycopg), and keeps
//! the bytes each side sent on every connection. The recorded streams must
//! decode completely in both directions, every message must re-encode to its
//! exact bytes, and the messages the client's protocol use implies must be
//! there; a client that upgrades to TLS must meet a decoder that refuses the
//! encrypted bytes. Nothing is committed as a capture file: the streams are
//! recorded fresh on every run.
//!
//! The tests skip, saying why, only when no server answers on 127.0.0.1:5432.
//! `scripts/test` installs the clients (PostgreSQL's and `psycopg[binary]`).

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use hoop_wire::postgres::{
    BackendDecoder, BackendMessage, Frame, FrontendDecoder, FrontendMessage, Limits,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const SERVER: &str = "127.0.0.1:5432";

// ---------------------------------------------------------------------------
// The server and a database of the test's own.

/// Whether a PostgreSQL server answers; prints why the test skips if not.
fn server_available(test: &str) -> bool {
    let addr: SocketAddr = SERVER.parse().unwrap();
    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!(
                "skipping {test}: no PostgreSQL server on {SERVER} ({e}); scripts/test starts it"
            );
            false
        }
    }
}

/// A role and a database owned by it, dropped when the test ends.
struct TestDatabase {
    name: String,
}

impl TestDatabase {
    fn create(test: &str) -> Self {
        let name = format!("hoop_rc_{test}_{}", std::process::id());
        let db = Self { name };
        db.drop_objects();
        admin_sql(&format!("CREATE ROLE {0} LOGIN", db.name));
        admin_sql(&format!("CREATE DATABASE {0} OWNER {0}", db.name));
        db
    }

    /// libpq connection options for a client going through `relay`, in plain
    /// text so the recorded bytes are readable.
    fn conninfo(&self, relay: &Relay) -> String {
        format!(
            "host=127.0.0.1 port={} user={1} dbname={1} sslmode=disable gssencmode=disable \
             application_name=hoop_real_clients connect_timeout=10",
            relay.port, self.name
        )
    }

    fn drop_objects(&self) {
        admin_sql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        admin_sql(&format!("DROP ROLE IF EXISTS {}", self.name));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.drop_objects();
    }
}

/// Runs SQL as the superuser, straight at the server (not recorded).
fn admin_sql(sql: &str) -> String {
    let out = Command::new("psql")
        .args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "host=127.0.0.1 port=5432 user=postgres dbname=postgres sslmode=disable",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs (scripts/test installs PostgreSQL's clients)");
    assert!(
        out.status.success(),
        "psql -c {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---------------------------------------------------------------------------
// The capturing relay.

/// What one TCP connection carried, per direction.
struct Recorded {
    client: Vec<u8>,
    server: Vec<u8>,
}

/// A TCP relay on a free port to the server that keeps every byte it passes.
struct Relay {
    runtime: tokio::runtime::Runtime,
    port: u16,
    accept: JoinHandle<()>,
    connections: Arc<Mutex<Vec<JoinHandle<Recorded>>>>,
}

impl Relay {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(Mutex::new(Vec::new()));
        let accept = runtime.spawn({
            let connections = Arc::clone(&connections);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let task = tokio::spawn(relay_connection(client));
                    connections.lock().unwrap().push(task);
                }
            }
        });
        Self {
            runtime,
            port,
            accept,
            connections,
        }
    }

    /// Stops accepting, waits until every connection has closed, and returns
    /// them in the order they were accepted.
    fn finish(self) -> Vec<Recorded> {
        self.accept.abort();
        let tasks = std::mem::take(&mut *self.connections.lock().unwrap());
        self.runtime.block_on(async {
            let mut recorded = Vec::new();
            for task in tasks {
                recorded.push(task.await.unwrap());
            }
            recorded
        })
    }
}

async fn relay_connection(client: tokio::net::TcpStream) -> Recorded {
    let server = tokio::net::TcpStream::connect(SERVER).await.unwrap();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let (client, server) = tokio::join!(
        copy_recording(client_read, server_write),
        copy_recording(server_read, client_write)
    );
    Recorded { client, server }
}

/// Copies until EOF (then half-closes the other side) and returns the bytes.
async fn copy_recording(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
) -> Vec<u8> {
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
    seen
}

// ---------------------------------------------------------------------------
// Decoding.

/// One connection, decoded in both directions.
struct Decoded {
    client: Vec<FrontendMessage>,
    server: Vec<BackendMessage>,
    client_frames: Vec<Frame>,
    server_frames: Vec<Frame>,
}

impl Decoded {
    fn client_names(&self) -> Vec<&'static str> {
        self.client.iter().map(FrontendMessage::name).collect()
    }

    fn server_names(&self) -> Vec<&'static str> {
        self.server.iter().map(BackendMessage::name).collect()
    }

    fn count_client(&self, name: &str) -> usize {
        self.client_names().iter().filter(|n| **n == name).count()
    }

    fn count_server(&self, name: &str) -> usize {
        self.server_names().iter().filter(|n| **n == name).count()
    }
}

/// How many SSLRequest/GSSENCRequest the client sent: the server answers each
/// with one untagged byte the backend decoder must be told about.
fn negotiations(client: &[FrontendMessage]) -> usize {
    client
        .iter()
        .filter(|m| {
            matches!(
                m,
                FrontendMessage::SslRequest | FrontendMessage::GssEncRequest
            )
        })
        .count()
}

fn new_backend_decoder(negotiations: usize) -> BackendDecoder {
    let mut decoder = BackendDecoder::new(Limits::default());
    for _ in 0..negotiations {
        decoder.expect_negotiation_response();
    }
    decoder
}

/// Frames a whole stream, asserting it decodes to the last byte, that the
/// frames are the stream cut in order, and that each message re-encodes to
/// exactly its frame.
fn frames_of(
    what: &str,
    stream: &[u8],
    mut next: impl FnMut(&mut BytesMut) -> Result<Option<Frame>, hoop_wire::DecodeError>,
) -> Vec<Frame> {
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    let mut offset = 0usize;
    loop {
        match next(&mut buf) {
            Ok(Some(frame)) => {
                let len = frame.bytes.len();
                assert!(len > 0, "{what}: an empty frame at offset {offset}");
                assert_eq!(
                    frame.bytes.as_ref(),
                    &stream[offset..offset + len],
                    "{what}: frame at offset {offset} is not the stream's bytes"
                );
                assert_eq!(frame.offset, offset as u64, "{what}: frame offset");
                offset += len;
                frames.push(frame);
            }
            Ok(None) => break,
            Err(e) => panic!("{what}: {e} (stream of {} bytes)", stream.len()),
        }
    }
    assert_eq!(
        offset,
        stream.len(),
        "{what}: {} trailing bytes left undecoded",
        stream.len() - offset
    );
    frames
}

fn decode(what: &str, recorded: &Recorded) -> Decoded {
    let mut frontend = FrontendDecoder::new(Limits::default());
    let client_frames = frames_of(&format!("{what}, client"), &recorded.client, |b| {
        frontend.decode_frame(b)
    });
    let client: Vec<FrontendMessage> = client_frames
        .iter()
        .map(|frame| {
            let message =
                FrontendMessage::parse(frame).unwrap_or_else(|e| panic!("{what}, client: {e}"));
            let mut encoded = BytesMut::new();
            message.encode(&mut encoded);
            assert_eq!(
                encoded.as_ref(),
                frame.bytes.as_ref(),
                "{what}, client: {} at offset {} does not re-encode to its bytes",
                message.name(),
                frame.offset
            );
            message
        })
        .collect();

    let mut backend = new_backend_decoder(negotiations(&client));
    let server_frames = frames_of(&format!("{what}, server"), &recorded.server, |b| {
        backend.decode_frame(b)
    });
    let server: Vec<BackendMessage> = server_frames
        .iter()
        .map(|frame| {
            let message =
                BackendMessage::parse(frame).unwrap_or_else(|e| panic!("{what}, server: {e}"));
            let mut encoded = BytesMut::new();
            message.encode(&mut encoded);
            assert_eq!(
                encoded.as_ref(),
                frame.bytes.as_ref(),
                "{what}, server: {} at offset {} does not re-encode to its bytes",
                message.name(),
                frame.offset
            );
            message
        })
        .collect();

    // The typed decoders agree with framing followed by parsing.
    assert_eq!(
        decode_all_frontend(&recorded.client),
        client,
        "{what}: FrontendDecoder::decode"
    );
    assert_eq!(
        decode_all_backend(&recorded.server, negotiations(&client)),
        server,
        "{what}: BackendDecoder::decode"
    );

    Decoded {
        client,
        server,
        client_frames,
        server_frames,
    }
}

fn decode_all_frontend(stream: &[u8]) -> Vec<FrontendMessage> {
    let mut decoder = FrontendDecoder::new(Limits::default());
    let mut buf = BytesMut::from(stream);
    let mut messages = Vec::new();
    while let Some(message) = decoder.decode(&mut buf).unwrap() {
        messages.push(message);
    }
    messages
}

fn decode_all_backend(stream: &[u8], negotiations: usize) -> Vec<BackendMessage> {
    let mut decoder = new_backend_decoder(negotiations);
    let mut buf = BytesMut::from(stream);
    let mut messages = Vec::new();
    while let Some(message) = decoder.decode(&mut buf).unwrap() {
        messages.push(message);
    }
    messages
}

/// Records what `run` makes clients send through a new relay, then decodes
/// every connection.
fn record(what: &str, run: impl FnOnce(&Relay)) -> (Vec<Recorded>, Vec<Decoded>) {
    let relay = Relay::start();
    run(&relay);
    let recorded = relay.finish();
    assert!(
        !recorded.is_empty(),
        "{what}: no connection went through the relay"
    );
    let decoded = recorded
        .iter()
        .enumerate()
        .map(|(i, r)| decode(&format!("{what}, connection {i}"), r))
        .collect();
    (recorded, decoded)
}

// ---------------------------------------------------------------------------
// Clients.

fn run_ok(what: &str, command: &mut Command) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn psql(conninfo: &str) -> Command {
    let mut command = Command::new("psql");
    command.args(["-X", "-v", "ON_ERROR_STOP=0", conninfo]);
    command
}

/// Runs psql with `script` on its standard input.
fn psql_script(conninfo: &str, script: &str) -> Output {
    let mut child = psql(conninfo)
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("psql runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn pgbench(conninfo: &str, args: &[&str]) -> Command {
    // pgbench takes the database as its last argument and the rest from the
    // environment, which libpq reads the same way.
    let mut command = Command::new("pgbench");
    for option in conninfo.split_whitespace() {
        let (key, value) = option.split_once('=').unwrap();
        let var = match key {
            "host" => "PGHOST",
            "port" => "PGPORT",
            "user" => "PGUSER",
            "dbname" => "PGDATABASE",
            "sslmode" => "PGSSLMODE",
            "gssencmode" => "PGGSSENCMODE",
            "application_name" => "PGAPPNAME",
            "connect_timeout" => "PGCONNECT_TIMEOUT",
            other => panic!("no environment variable for {other}"),
        };
        command.env(var, value);
    }
    command.args(args);
    command
}

const PSQL_SCRIPT: &str = r"
CREATE TABLE people (id int PRIMARY KEY, name text, email text, note text);
INSERT INTO people VALUES
  (1, 'Ada', 'ada@example.com', NULL),
  (2, 'Grace', NULL, repeat('long free text ', 200)),
  (3, '', 'x@example.org', 'short');
SELECT id, name, email, length(note) FROM people ORDER BY id;
SELECT 1/0;
DO $$ BEGIN RAISE NOTICE 'a notice for the decoder'; END $$;
LISTEN hoop_channel;
NOTIFY hoop_channel, 'payload';
BEGIN;
UPDATE people SET name = 'Ada L.' WHERE id = 1;
ROLLBACK;
SELECT count(*) FROM people WHERE email IS NULL;
";

// ---------------------------------------------------------------------------
// The tests.

#[test]
fn psql_command_and_script_decode_in_both_directions() {
    if !server_available("psql_command_and_script_decode_in_both_directions") {
        return;
    }
    let db = TestDatabase::create("psql");
    let command_sql = "SELECT 1 AS one, 'two' AS two; SELECT NULL::int, now() > '2000-01-01'";
    let (_, decoded) = record("psql", |relay| {
        let out = run_ok(
            "psql -c",
            psql(&db.conninfo(relay)).args(["-c", command_sql]),
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("two"));
        let out = psql_script(&db.conninfo(relay), PSQL_SCRIPT);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("division by zero"), "psql script: {stderr}");
    });
    assert_eq!(decoded.len(), 2, "one connection per psql run");

    // psql -c: one Query carrying both statements, exactly as given.
    let command = &decoded[0];
    let queries: Vec<&[u8]> = command
        .client
        .iter()
        .filter_map(|m| match m {
            FrontendMessage::Query(q) => Some(q.query.as_ref()),
            _ => None,
        })
        .collect();
    assert_eq!(queries, [command_sql.as_bytes()]);
    assert_eq!(command.client_names().first(), Some(&"StartupMessage"));
    assert_eq!(command.client_names().last(), Some(&"Terminate"));
    for name in [
        "AuthenticationOk",
        "ParameterStatus",
        "BackendKeyData",
        "ReadyForQuery",
        "RowDescription",
        "DataRow",
        "CommandComplete",
    ] {
        assert!(command.count_server(name) > 0, "psql -c: no {name}");
    }
    assert_eq!(command.count_server("RowDescription"), 2);
    let nulls = command
        .server
        .iter()
        .filter_map(|m| match m {
            BackendMessage::DataRow(row) => Some(row.cells().filter(Option::is_none).count()),
            _ => None,
        })
        .sum::<usize>();
    assert_eq!(nulls, 1, "psql -c: the NULL cell");

    // The script: one Query per statement, and every kind of answer.
    let script = &decoded[1];
    assert_eq!(script.count_client("Query"), 11);
    for name in [
        "ErrorResponse",
        "NoticeResponse",
        "NotificationResponse",
        "DataRow",
    ] {
        assert!(script.count_server(name) > 0, "psql script: no {name}");
    }
    let error_codes: Vec<_> = script
        .server
        .iter()
        .filter_map(|m| match m {
            BackendMessage::ErrorResponse(notice) => notice.code().cloned(),
            _ => None,
        })
        .collect();
    assert_eq!(error_codes, [bytes::Bytes::from_static(b"22012")]);
    let emails: Vec<Option<bytes::Bytes>> = script
        .server
        .iter()
        .filter_map(|m| match m {
            BackendMessage::DataRow(row) if row.len() == 4 => row.cells().nth(2),
            _ => None,
        })
        .collect();
    assert_eq!(
        emails,
        [
            Some(bytes::Bytes::from_static(b"ada@example.com")),
            None,
            Some(bytes::Bytes::from_static(b"x@example.org")),
        ]
    );
}

#[test]
fn pgbench_in_simple_extended_and_prepared_modes_decodes() {
    if !server_available("pgbench_in_simple_extended_and_prepared_modes_decodes") {
        return;
    }
    let db = TestDatabase::create("pgbench");

    // Initialisation loads its tables with COPY FROM STDIN.
    let (_, init) = record("pgbench -i", |relay| {
        run_ok(
            "pgbench -i",
            &mut pgbench(&db.conninfo(relay), &["-i", "-s", "1", "-q"]),
        );
    });
    let copy_data: usize = init.iter().map(|c| c.count_client("CopyData")).sum();
    let copy_in: usize = init.iter().map(|c| c.count_server("CopyInResponse")).sum();
    assert!(copy_in >= 1, "pgbench -i: no CopyInResponse");
    assert!(copy_data >= 1, "pgbench -i: no CopyData");
    assert!(init.iter().any(|c| c.count_client("CopyDone") > 0));

    let transactions = 50;
    for mode in ["simple", "extended", "prepared"] {
        let (_, decoded) = record(&format!("pgbench -M {mode}"), |relay| {
            run_ok(
                &format!("pgbench -M {mode}"),
                &mut pgbench(
                    &db.conninfo(relay),
                    &["-n", "-S", "-M", mode, "-c", "1", "-t", "50"],
                ),
            );
        });
        let count = |name: &str| -> usize { decoded.iter().map(|c| c.count_client(name)).sum() };
        let rows: usize = decoded.iter().map(|c| c.count_server("DataRow")).sum();
        assert!(rows >= transactions, "pgbench -M {mode}: {rows} DataRows");
        match mode {
            "simple" => {
                assert!(count("Query") >= transactions, "simple: Query");
                assert_eq!(
                    count("Parse") + count("Bind"),
                    0,
                    "simple uses no extended messages"
                );
            }
            "extended" => {
                // Every statement is parsed, bound and executed afresh.
                for name in ["Parse", "Bind", "Execute", "Sync"] {
                    assert!(
                        count(name) >= transactions,
                        "extended: {name} {}",
                        count(name)
                    );
                }
                let parse_complete: usize = decoded
                    .iter()
                    .map(|c| c.count_server("ParseComplete"))
                    .sum();
                assert!(parse_complete >= transactions, "extended: ParseComplete");
            }
            _ => {
                // Prepared once, then only bound and executed.
                assert!(count("Bind") >= transactions, "prepared: Bind");
                assert!(count("Execute") >= transactions, "prepared: Execute");
                assert!(
                    (1..transactions).contains(&count("Parse")),
                    "prepared: {} Parse",
                    count("Parse")
                );
                let named = decoded
                    .iter()
                    .flat_map(|c| &c.client)
                    .any(|m| matches!(m, FrontendMessage::Bind(b) if !b.statement.is_empty()));
                assert!(named, "prepared: Bind names its prepared statement");
            }
        }
    }
}

/// psycopg sends parameters and asks for results in binary format; the
/// binary values must come through the decoder intact.
const PSYCOPG_SCRIPT: &str = r#"
import sys
import psycopg

with psycopg.connect(sys.argv[1]) as conn:
    cur = conn.cursor(binary=True)
    cur.execute(
        "SELECT %b::int4 + 1, %b::text, %b::bytea, %b::int8, NULL::int4",
        (41, "naïve", b"\x00\x01\xff", 2**40),
    )
    row = cur.fetchone()
    assert row == (42, "naïve", b"\x00\x01\xff", 2**40, None), row
    cur.execute("CREATE TABLE t (id int8, v float8)")
    cur.executemany("INSERT INTO t VALUES (%b, %b)", [(i, i / 3) for i in range(10)])
    cur.execute("SELECT sum(id), count(v) FROM t WHERE id > %b", (-1,))
    assert cur.fetchone() == (45, 10)
print("ok")
"#;

#[test]
fn psycopg_binary_parameters_and_results_decode() {
    if !server_available("psycopg_binary_parameters_and_results_decode") {
        return;
    }
    let db = TestDatabase::create("psycopg");
    let (_, decoded) = record("psycopg", |relay| {
        let out = run_ok(
            "python3 psycopg (scripts/test installs psycopg[binary])",
            Command::new("python3").args(["-c", PSYCOPG_SCRIPT, &db.conninfo(relay)]),
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
    });
    let conn = decoded
        .iter()
        .find(|c| c.count_client("Bind") > 0)
        .expect("psycopg used the extended protocol");

    let first_bind = conn
        .client
        .iter()
        .find_map(|m| match m {
            FrontendMessage::Bind(b) => Some(b),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_bind.param_formats, [1, 1, 1, 1], "binary parameters");
    assert_eq!(first_bind.result_formats, [1], "binary results");
    // psycopg sends a Python int in the narrowest integer type that holds it.
    let first = first_bind.params[0].as_deref().expect("a value");
    assert!(
        matches!(first.len(), 2 | 4 | 8),
        "binary integer: {first:?}"
    );
    assert_eq!(
        first.iter().fold(0i64, |n, b| n << 8 | i64::from(*b)),
        41,
        "integer parameter in network order"
    );
    assert_eq!(first_bind.params[1].as_deref(), Some("naïve".as_bytes()));
    assert_eq!(first_bind.params[2].as_deref(), Some(&[0u8, 1, 0xff][..]));

    let first_row = conn
        .server
        .iter()
        .find_map(|m| match m {
            BackendMessage::DataRow(row) => Some(row.cells().collect::<Vec<_>>()),
            _ => None,
        })
        .unwrap();
    assert_eq!(first_row.len(), 5);
    assert_eq!(first_row[0].as_deref(), Some(&42i32.to_be_bytes()[..]));
    assert_eq!(first_row[1].as_deref(), Some("naïve".as_bytes()));
    assert_eq!(
        first_row[3].as_deref(),
        Some(&(1i64 << 40).to_be_bytes()[..])
    );
    assert_eq!(first_row[4], None);
    assert!(
        conn.count_client("Bind") >= 12,
        "one Bind per statement run"
    );
    for name in ["Parse", "Execute", "Sync"] {
        assert!(conn.count_client(name) > 0, "psycopg: no {name}");
    }
    for name in ["ParseComplete", "BindComplete", "RowDescription"] {
        assert!(conn.count_server(name) > 0, "psycopg: no {name}");
    }
}

#[test]
fn copy_in_and_out_decodes() {
    if !server_available("copy_in_and_out_decodes") {
        return;
    }
    let db = TestDatabase::create("copy");
    let script = "CREATE TABLE items (id int, label text);\n\
                  COPY items FROM STDIN;\n1\tfirst\n2\t\\N\n3\tthird\n\\.\n\
                  COPY items TO STDOUT;\n\
                  COPY (SELECT id FROM items ORDER BY id) TO STDOUT (FORMAT binary);\n";
    let (_, decoded) = record("copy", |relay| {
        let out = psql_script(&db.conninfo(relay), script);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("1\tfirst\n2\t\\N\n3\tthird\n"));
    });
    let conn = &decoded[0];
    assert_eq!(conn.count_server("CopyInResponse"), 1, "COPY FROM STDIN");
    assert_eq!(
        conn.count_server("CopyOutResponse"),
        2,
        "COPY TO STDOUT twice"
    );
    assert_eq!(conn.count_client("CopyDone"), 1);
    assert_eq!(conn.count_server("CopyDone"), 2);

    let sent: Vec<u8> = conn
        .client
        .iter()
        .filter_map(|m| match m {
            FrontendMessage::CopyData(d) => Some(d.data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect();
    // psql passes the script's end-of-data line on as data; the server
    // accepts it either way.
    let sent = sent.strip_suffix(b"\\.\n").unwrap_or(&sent);
    assert_eq!(sent, b"1\tfirst\n2\t\\N\n3\tthird\n");

    // The binary COPY's output starts with its signature.
    let received: Vec<Vec<u8>> = conn
        .server
        .iter()
        .filter_map(|m| match m {
            BackendMessage::CopyData(d) => Some(d.data.to_vec()),
            _ => None,
        })
        .collect();
    let text: Vec<u8> = received
        .iter()
        .take_while(|d| !d.starts_with(b"PGCOPY\n"))
        .flatten()
        .copied()
        .collect();
    assert_eq!(text, b"1\tfirst\n2\t\\N\n3\tthird\n");
    assert!(
        received
            .iter()
            .any(|d| d.starts_with(b"PGCOPY\n\xff\r\n\0"))
    );
    let copy_out_formats: Vec<u8> = conn
        .server
        .iter()
        .filter_map(|m| match m {
            BackendMessage::CopyOutResponse(r) => Some(r.format),
            _ => None,
        })
        .collect();
    assert_eq!(copy_out_formats, [0, 1], "text, then binary");
}

#[test]
fn cancelled_query_and_its_cancel_request_decode() {
    if !server_available("cancelled_query_and_its_cancel_request_decode") {
        return;
    }
    let db = TestDatabase::create("cancel");
    let (_, decoded) = record("cancel", |relay| {
        let child = psql(&db.conninfo(relay))
            .args(["-c", "SELECT pg_sleep(120)"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql runs");
        // Wait until the query runs on the server, then interrupt psql, which
        // sends a CancelRequest on a new connection through the relay.
        let deadline = Instant::now() + Duration::from_secs(60);
        let running = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' \
             AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
            db.name
        );
        while admin_sql(&running).trim() != "1" {
            assert!(Instant::now() < deadline, "the query never started");
            std::thread::sleep(Duration::from_millis(50));
        }
        run_ok(
            "kill -INT psql",
            Command::new("kill").args(["-INT", &child.id().to_string()]),
        );
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("canceling statement due to user request"),
            "psql: {stderr}"
        );
    });
    assert_eq!(decoded.len(), 2, "the session and the cancel connection");
    let (session, cancel) = (&decoded[0], &decoded[1]);

    assert_eq!(cancel.client_names(), ["CancelRequest"]);
    assert!(
        cancel.server.is_empty(),
        "the server answers a cancel by closing"
    );
    let FrontendMessage::CancelRequest(request) = &cancel.client[0] else {
        unreachable!()
    };
    let key = session
        .server
        .iter()
        .find_map(|m| match m {
            BackendMessage::BackendKeyData(k) => Some(k),
            _ => None,
        })
        .expect("BackendKeyData");
    assert_eq!(request.process_id, key.process_id);
    assert_eq!(request.secret_key, key.secret_key);

    let codes: Vec<_> = session
        .server
        .iter()
        .filter_map(|m| match m {
            BackendMessage::ErrorResponse(e) => e.code().cloned(),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [bytes::Bytes::from_static(b"57014")],
        "query_canceled"
    );
}

/// Feeds `stream` in pieces cut at `cuts` and returns the frames.
fn frames_split(
    stream: &[u8],
    cuts: &[usize],
    mut next: impl FnMut(&mut BytesMut) -> Result<Option<Frame>, hoop_wire::DecodeError>,
) -> Vec<Frame> {
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut start = 0;
    for &end in cuts.iter().chain(std::iter::once(&stream.len())) {
        buf.extend_from_slice(&stream[start..end]);
        start = end;
        while let Some(frame) = next(&mut buf).unwrap() {
            frames.push(frame);
        }
    }
    assert!(buf.is_empty(), "{} bytes left undecoded", buf.len());
    frames
}

#[test]
fn random_splits_of_real_streams_decode_to_the_same_messages() {
    if !server_available("random_splits_of_real_streams_decode_to_the_same_messages") {
        return;
    }
    let db = TestDatabase::create("splits");
    let (recorded, decoded) = record("splits", |relay| {
        psql_script(&db.conninfo(relay), PSQL_SCRIPT);
        let out = psql_script(
            &db.conninfo(relay),
            "COPY people FROM STDIN;\n9\tnine\tn@example.com\t\\N\n\\.\nCOPY people TO STDOUT;\n",
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        run_ok(
            "python3 psycopg",
            Command::new("python3").args(["-c", PSYCOPG_SCRIPT, &db.conninfo(relay)]),
        );
    });

    let mut runner = TestRunner::new(Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        0..recorded.len(),
        proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
    );
    runner
        .run(&strategy, |(which, cut_points)| {
            let (recorded, expected) = (&recorded[which], &decoded[which]);
            let cuts = |len: usize| -> Vec<usize> {
                let mut cuts: Vec<usize> = cut_points.iter().map(|i| i.index(len + 1)).collect();
                cuts.sort_unstable();
                cuts
            };

            let mut frontend = FrontendDecoder::new(Limits::default());
            let client = frames_split(&recorded.client, &cuts(recorded.client.len()), |b| {
                frontend.decode_frame(b)
            });
            prop_assert_eq!(&client, &expected.client_frames);

            let mut backend = new_backend_decoder(negotiations(&expected.client));
            let server = frames_split(&recorded.server, &cuts(recorded.server.len()), |b| {
                backend.decode_frame(b)
            });
            prop_assert_eq!(&server, &expected.server_frames);

            // The typed messages too.
            let messages: Vec<BackendMessage> = server
                .iter()
                .map(|f| BackendMessage::parse(f).unwrap())
                .collect();
            prop_assert_eq!(&messages, &expected.server);
            Ok(())
        })
        .unwrap();
}

/// Frames a stream until "need more" or an error, which it returns.
fn frames_until_error(
    stream: &[u8],
    mut next: impl FnMut(&mut BytesMut) -> Result<Option<Frame>, hoop_wire::DecodeError>,
) -> (Vec<Frame>, Option<hoop_wire::DecodeError>) {
    let mut buf = BytesMut::from(stream);
    let mut frames = Vec::new();
    loop {
        match next(&mut buf) {
            Ok(Some(frame)) => frames.push(frame),
            Ok(None) => return (frames, None),
            Err(e) => return (frames, Some(e)),
        }
    }
}

#[test]
fn tls_after_a_real_ssl_request_is_refused_as_encrypted() {
    if !server_available("tls_after_a_real_ssl_request_is_refused_as_encrypted") {
        return;
    }
    let db = TestDatabase::create("tls");
    let relay = Relay::start();
    let conninfo = db
        .conninfo(&relay)
        .replace("sslmode=disable", "sslmode=prefer");
    let out = run_ok(
        "psql sslmode=prefer",
        psql(&conninfo).args(["-c", "SELECT 1"]),
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains('1'));
    let recorded = relay.finish();
    assert_eq!(recorded.len(), 1);
    let conn = &recorded[0];

    let mut frontend = FrontendDecoder::new(Limits::default());
    let (client, client_error) = frames_until_error(&conn.client, |b| frontend.decode_frame(b));
    assert_eq!(
        FrontendMessage::parse(&client[0]).unwrap(),
        FrontendMessage::SslRequest
    );
    let mut backend = new_backend_decoder(1);
    let (server, server_error) = frames_until_error(&conn.server, |b| backend.decode_frame(b));
    let answer = BackendMessage::parse(&server[0]).unwrap();
    if answer == BackendMessage::NegotiationResponse(b'N') {
        // A server without TLS: the session goes on in plain text.
        assert_eq!(client_error, None);
        assert_eq!(server_error, None);
        return;
    }
    // The server accepted: what follows is TLS, and both decoders refuse it
    // at the first encrypted byte rather than guess at it.
    assert_eq!(answer, BackendMessage::NegotiationResponse(b'S'));
    assert_eq!(client.len(), 1);
    assert!(matches!(
        client_error,
        Some(hoop_wire::DecodeError::Encrypted { offset: 8 })
    ));
    assert_eq!(server.len(), 1);
    assert!(matches!(
        server_error,
        Some(hoop_wire::DecodeError::Encrypted { offset: 1 })
    ));
}
