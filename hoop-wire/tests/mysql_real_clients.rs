//! Traffic of real clients against the real MariaDB server on this machine,
//! recorded and decoded with `hoop_wire::mysql::Session`.
//!
//! Each test creates its own user (mysql_native_password) and database on
//! 127.0.0.1:3306 (root, no password), starts a capturing relay on a free
//! port, runs a real client through it (the mariadb CLI, PyMySQL,
//! mysql-connector-python with server-side prepared statements), and keeps
//! the bytes of every connection in the order they crossed the relay. MySQL
//! packets only make sense in conversation order, so the recording keeps the
//! interleaving of the two directions. Every packet must decode, re-encode to
//! its exact bytes, and the packets the client's usage implies must appear.
//!
//! The tests skip, saying why, only when no server answers on 127.0.0.1:3306.
//! `scripts/test` installs the clients (`mariadb-client`, PyMySQL,
//! mysql-connector-python).

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use hoop_wire::Event;
use hoop_wire::mysql::{ClientMessage, Limits, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const SERVER: &str = "127.0.0.1:3306";

fn server_available(test: &str) -> bool {
    let addr: SocketAddr = SERVER.parse().unwrap();
    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!(
                "skipping {test}: no MariaDB server on {SERVER} ({e}); scripts/test starts it"
            );
            false
        }
    }
}

fn admin_sql(sql: &str) {
    let out = Command::new("mariadb")
        .args(["-h127.0.0.1", "-P3306", "-uroot", "--skip-ssl", "-e", sql])
        .output()
        .expect("the mariadb client runs (scripts/test installs it)");
    assert!(
        out.status.success(),
        "mariadb -e {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A user and a database of the test's own, dropped at the end.
struct TestDatabase {
    name: String,
}

const PASSWORD: &str = "hoop-wire-pw";

impl TestDatabase {
    fn create(test: &str) -> Self {
        let db = Self {
            name: format!("hoop_myrc_{test}_{}", std::process::id()),
        };
        db.drop_objects();
        admin_sql(&format!(
            "CREATE DATABASE {0}; CREATE USER '{0}'@'%' IDENTIFIED BY '{PASSWORD}'; \
             GRANT ALL ON {0}.* TO '{0}'@'%'; GRANT FILE ON *.* TO '{0}'@'%'",
            db.name
        ));
        db
    }

    fn drop_objects(&self) {
        admin_sql(&format!(
            "DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%'",
            self.name
        ));
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        self.drop_objects();
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Client,
    Server,
}

type Chunks = Arc<Mutex<Vec<(Dir, Vec<u8>)>>>;

/// Each accepted connection's recording and the task relaying it.
type Connections = Arc<Mutex<Vec<(Chunks, JoinHandle<()>)>>>;

/// A relay on a free port that records each connection's chunks in the
/// order they were read, both directions interleaved.
struct Relay {
    runtime: tokio::runtime::Runtime,
    port: u16,
    accept: JoinHandle<()>,
    connections: Connections,
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
        let connections = Connections::default();
        let accept = runtime.spawn({
            let connections = Arc::clone(&connections);
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let chunks: Chunks = Arc::default();
                    let task = tokio::spawn(relay(client, Arc::clone(&chunks)));
                    connections.lock().unwrap().push((chunks, task));
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

    fn finish(self) -> Vec<Vec<(Dir, Vec<u8>)>> {
        self.accept.abort();
        let connections = std::mem::take(&mut *self.connections.lock().unwrap());
        self.runtime.block_on(async {
            let mut out = Vec::new();
            for (chunks, task) in connections {
                task.await.unwrap();
                out.push(std::mem::take(&mut *chunks.lock().unwrap()));
            }
            out
        })
    }
}

async fn relay(client: tokio::net::TcpStream, chunks: Chunks) {
    let server = tokio::net::TcpStream::connect(SERVER).await.unwrap();
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(
        copy(client_read, server_write, Dir::Client, Arc::clone(&chunks)),
        copy(server_read, client_write, Dir::Server, chunks)
    );
}

async fn copy(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    dir: Dir,
    chunks: Chunks,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                // Recorded before forwarding: the peer cannot answer bytes it
                // has not received, so the recording keeps causal order.
                chunks.lock().unwrap().push((dir, buf[..n].to_vec()));
                if to.write_all(&buf[..n]).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown().await;
}

/// What one connection decoded to.
#[derive(Default)]
struct Decoded {
    names: Vec<&'static str>,
    sql: Vec<String>,
    events: Vec<Event>,
}

impl Decoded {
    fn count(&self, name: &str) -> usize {
        self.names.iter().filter(|n| **n == name).count()
    }
}

/// Decodes one recorded connection completely, checking exact re-encoding.
fn decode(chunks: &[(Dir, Vec<u8>)]) -> Decoded {
    let mut session = Session::new(Limits::default());
    let mut decoded = Decoded::default();
    let (mut client, mut server) = (BytesMut::new(), BytesMut::new());
    for (dir, chunk) in chunks {
        match dir {
            Dir::Client => {
                client.extend_from_slice(chunk);
                while let Some((packet, message)) = session.decode_client(&mut client).unwrap() {
                    let mut again = BytesMut::new();
                    message.encode_payload(&mut again);
                    assert_eq!(again, packet.payload, "{} re-encodes", message.name());
                    if let ClientMessage::Command(command) = &message
                        && let Some(sql) = command.sql()
                    {
                        decoded.sql.push(String::from_utf8_lossy(sql).into_owned());
                    }
                    decoded.events.extend(session.client_event(&message));
                    decoded.names.push(message.name());
                }
            }
            Dir::Server => {
                server.extend_from_slice(chunk);
                while let Some((packet, message)) = session.decode_server(&mut server).unwrap() {
                    let mut again = BytesMut::new();
                    message.encode_payload(&mut again);
                    assert_eq!(again, packet.payload, "{} re-encodes", message.name());
                    decoded.events.extend(session.server_event(&message));
                    decoded.names.push(message.name());
                }
            }
        }
    }
    assert!(client.is_empty(), "{} client bytes undecoded", client.len());
    assert!(server.is_empty(), "{} server bytes undecoded", server.len());
    decoded
}

impl Decoded {
    fn assert_has(&self, names: &[&str]) {
        for name in names {
            assert!(self.count(name) > 0, "{name} missing: {:?}", self.names);
        }
    }
}

/// Runs a Python client through a fresh relay and decodes its connection.
/// The script connects with `PORT`, `USER` and `PASSWORD`, which are set
/// before it runs.
fn python_session(db: &TestDatabase, script: &str) -> Decoded {
    let relay = Relay::start();
    let prelude = format!(
        "PORT = {}\nUSER = {:?}\nPASSWORD = {PASSWORD:?}\n",
        relay.port, db.name
    );
    run("python3", &["-c", &(prelude + script)]);
    let connections = relay.finish();
    assert_eq!(connections.len(), 1);
    decode(&connections[0])
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    assert!(
        out.status.success(),
        "{program} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mariadb_cli_session_decodes() {
    if !server_available("mariadb_cli_session_decodes") {
        return;
    }
    let db = TestDatabase::create("cli");
    let relay = Relay::start();
    let port = relay.port.to_string();
    let infile = std::env::temp_dir().join(format!("hoop_myrc_{}.csv", std::process::id()));
    std::fs::write(&infile, "3,carol@example.com\n4,\\N\n").unwrap();
    let script = format!(
        "CREATE TABLE people (id INT PRIMARY KEY, email VARCHAR(100));\n\
         INSERT INTO people VALUES (1, 'alice@example.com'), (2, NULL);\n\
         LOAD DATA LOCAL INFILE '{}' INTO TABLE people FIELDS TERMINATED BY ',';\n\
         SELECT id, email FROM people ORDER BY id;\n\
         SELECT 1 FROM nonexistent_table;\n",
        infile.display()
    );
    let out = Command::new("mariadb")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            &format!("-u{}", db.name),
            &format!("-p{PASSWORD}"),
            "--skip-ssl",
            "--local-infile=1",
            "--force",
            &db.name,
            "-e",
            &script,
        ])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&infile);
    assert!(String::from_utf8_lossy(&out.stdout).contains("carol@example.com"));
    let connections = relay.finish();
    assert_eq!(connections.len(), 1);
    let d = decode(&connections[0]);
    d.assert_has(&[
        "HandshakeV10",
        "HandshakeResponse41",
        "COM_QUERY",
        "ColumnDefinition41",
        "ResultSetRow",
        "LOCAL_INFILE_Request",
        "LocalInfileData",
        "ERR",
        "COM_QUIT",
    ]);
    assert!(
        d.sql
            .iter()
            .any(|s| s.starts_with("SELECT id, email FROM people"))
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Row { cells } if cells.iter().any(Option::is_none)))
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Done { rows: Some(4), .. }))
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Error { code, .. } if code == "42S02"))
    );
}

#[test]
fn pymysql_multi_statement_session_decodes() {
    if !server_available("pymysql_multi_statement_session_decodes") {
        return;
    }
    let db = TestDatabase::create("pymysql");
    let d = python_session(
        &db,
        r#"
import pymysql
from pymysql.constants import CLIENT
c = pymysql.connect(host="127.0.0.1", port=PORT, user=USER, password=PASSWORD,
                    database=USER, client_flag=CLIENT.MULTI_STATEMENTS)
cur = c.cursor()
cur.execute("CREATE TABLE t (id INT, note TEXT, amount DECIMAL(10,2), at DATETIME)")
cur.executemany("INSERT INTO t VALUES (%s, %s, %s, %s)",
                [(1, "x", "1.50", "2026-11-28 01:02:03"), (2, None, None, None)])
cur.execute("SELECT * FROM t ORDER BY id; SELECT COUNT(*) FROM t")
assert len(cur.fetchall()) == 2
assert cur.nextset()
assert cur.fetchone()[0] == 2
c.ping()
c.select_db(USER)
c.commit()
c.close()
"#,
    );
    d.assert_has(&[
        "COM_QUERY",
        "ResultSetRow",
        "COM_PING",
        "COM_INIT_DB",
        "COM_QUIT",
    ]);
    assert!(d.sql.iter().any(|s| s.contains("SELECT COUNT(*)")));
}

#[test]
fn connector_prepared_statements_with_binary_rows_decode() {
    if !server_available("connector_prepared_statements_with_binary_rows_decode") {
        return;
    }
    // No YEAR column: mysql-connector-python's pure-Python reader takes a
    // binary YEAR (two bytes, as the protocol and MariaDB send it) for a
    // length-prefixed string and loses its place in the row.
    let db = TestDatabase::create("connector");
    let d = python_session(
        &db,
        r#"
import mysql.connector, datetime, decimal
c = mysql.connector.connect(host="127.0.0.1", port=PORT, user=USER, password=PASSWORD,
                            database=USER, use_pure=True, ssl_disabled=True)
cur = c.cursor(prepared=True)
cur.execute("""CREATE TABLE every_type (
  i INT, bi BIGINT, ti TINYINT, si SMALLINT, mi MEDIUMINT, f FLOAT, d DOUBLE,
  dec_ DECIMAL(12,3), dt DATE, dtm DATETIME(6), ts TIMESTAMP NULL, tm TIME(3),
  ch CHAR(3), vc VARCHAR(50), tx TEXT, bl BLOB, bt BIT(8), en ENUM('a','b'), st SET('x','y'),
  js JSON)""")
row = (1, 2**40, -5, 300, 70000, 1.5, 2.25, decimal.Decimal("123.456"), datetime.date(2026, 11, 28),
       datetime.datetime(2026, 11, 28, 1, 2, 3, 456789), datetime.datetime(2026, 1, 1, 0, 0, 0),
       datetime.timedelta(hours=5, minutes=6, seconds=7, milliseconds=8),
       "abc", "alice@example.com", "long text " * 50, b"\x00\x01\xff", 5, "b", "x,y", '{"k": 1}')
cur.execute("INSERT INTO every_type VALUES (" + ",".join(["?"] * 20) + ")", row)
cur.execute("INSERT INTO every_type VALUES (" + ",".join(["?"] * 20) + ")", (None,) * 20)
cur.execute("SELECT * FROM every_type WHERE i = ? OR i IS NULL ORDER BY i", (1,))
rows = cur.fetchall()
assert len(rows) == 2, rows
nulls, full = rows  # ORDER BY puts the NULL row first
assert all(v is None for v in nulls), nulls
assert full[13] == "alice@example.com", full
cur.close()
c.close()
"#,
    );
    d.assert_has(&[
        "COM_STMT_PREPARE",
        "COM_STMT_PREPARE_OK",
        "COM_STMT_EXECUTE",
        "BinaryResultSetRow",
        "COM_STMT_CLOSE",
    ]);
    let binary_rows: Vec<_> = d
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Row { cells } if cells.len() == 20 => Some(cells),
            _ => None,
        })
        .collect();
    assert_eq!(binary_rows.len(), 2);
    assert!(
        binary_rows
            .iter()
            .any(|cells| cells.iter().all(Option::is_none))
    );
    assert!(
        binary_rows
            .iter()
            .any(|cells| cells[13].as_deref() == Some(&b"alice@example.com"[..]))
    );
    assert!(
        d.events
            .iter()
            .any(|e| matches!(e, Event::Execute { params, .. } if params.len() == 20))
    );
}
