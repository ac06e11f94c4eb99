//! End-to-end tests of the policy in the MySQL driver, with the same policy
//! file as PostgreSQL's (`postgres_policy.rs`): the real MariaDB on
//! 127.0.0.1:3306 (root without a password), hoop in this process, and real
//! clients (the mariadb CLI, PyMySQL, mysql-connector-python with its
//! prepared-statement cursor) as separate processes over real sockets.
//!
//! Run alone with `cargo nextest run -p hoop-proxy --test mysql_policy`.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;

use hoop_proxy::mysql::MysqlProxy;
use hoop_proxy::policy::PolicyPipeline;
use hoop_proxy::{DatabaseTarget, Secret, SslMode};
use tokio::process::Command;

/// The same policy as the PostgreSQL tests.
const POLICY: &str = r#"{
  "masking": {
    "columns": [{"columns": ["*.ssn"], "entity": "US_SOCIAL_SECURITY_NUMBER",
                 "transform": {"type": "mask", "keep_last": 4}}]
  },
  "guardrails": {"input": [{"type": "deny_without_where", "name": "no-unbounded-writes",
                            "message": "UPDATE and DELETE need a WHERE clause"},
                           {"type": "deny_words_list", "name": "no-codenames", "words": ["bluebird"],
                            "check_parameters": true, "message": "codenames stay out of queries"}]}
}"#;

/// The same fake people as the PostgreSQL tests (addresses as text).
const PEOPLE: &str = "
CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40), email VARCHAR(100), card VARCHAR(30),
                     ssn CHAR(11), phone VARCHAR(30), ip VARCHAR(45), account BIGINT, note TEXT);
INSERT INTO people VALUES
 (1, 'Ada Lovelace', 'ada.lovelace@example.com', '4111 1111 1111 1111', '123-45-6789',
  '(555) 234-5678', '192.168.10.20', 4111111111111111,
  'Met Ada (ada.lovelace@example.com) from 10.1.2.3'),
 (2, 'Alan Turing', 'alan.turing@example.org', '5555555555554444', '219-09-9999',
  '555-867-5309', '10.0.0.7', 4111111111111112,
  'not a card 4111111111111112, not an ssn 000-12-3456'),
 (3, 'Grace Hopper', 'grace@navy.example', '4000 0566 5566 5556', '078-05-1120',
  '+1 202-555-0143', '2001:db8::1', 42, 'nothing to see here');
CREATE TABLE scratch (id INT);
INSERT INTO scratch VALUES (1), (2), (3);
";

const SELECT: &str =
    "SELECT id, name, email, card, ssn, phone, ip, account, note FROM people ORDER BY id";

/// What the mariadb CLI prints (`-N -B`) for [`SELECT`] through hoop.
const MASKED: &str = "\
1\tAda Lovelace\t[REDACTED:EMAIL_ADDRESS]\t[REDACTED:CREDIT_CARD_NUMBER]\t*******6789\t[REDACTED:PHONE_NUMBER]\t[REDACTED:IP_ADDRESS]\tNULL\tMet Ada ([REDACTED:EMAIL_ADDRESS]) from [REDACTED:IP_ADDRESS]
2\tAlan Turing\t[REDACTED:EMAIL_ADDRESS]\t[REDACTED:CREDIT_CARD_NUMBER]\t*******9999\t[REDACTED:PHONE_NUMBER]\t[REDACTED:IP_ADDRESS]\t4111111111111112\tnot a card 4111111111111112, not an ssn 000-12-3456
3\tGrace Hopper\t[REDACTED:EMAIL_ADDRESS]\t[REDACTED:CREDIT_CARD_NUMBER]\t*******1120\t[REDACTED:PHONE_NUMBER]\t[REDACTED:IP_ADDRESS]\t42\tnothing to see here
";

const REFUSAL: &str =
    "UPDATE and DELETE need a WHERE clause (hoop policy rule no-unbounded-writes)";

/// The values the policy must never let through.
const SENSITIVE: [&str; 13] = [
    "ada.lovelace@example.com",
    "alan.turing@example.org",
    "grace@navy.example",
    "4111 1111 1111 1111",
    "5555555555554444",
    "4000 0566 5566 5556",
    "123-45-6789",
    "219-09-9999",
    "(555) 234-5678",
    "555-867-5309",
    "192.168.10.20",
    "10.1.2.3",
    "4111111111111111",
];

/// Runs SQL as MariaDB's root, directly (not through hoop).
fn root_sql(sql: &str) -> String {
    let output = std::process::Command::new("mariadb")
        .args(["-uroot", "-h127.0.0.1", "-P3306", "-N", "-B", "-e", sql])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A database and upstream user of the test's own holding [`PEOPLE`],
/// dropped at the end.
struct Fixture {
    name: String,
}

impl Fixture {
    fn new(test: &str) -> Self {
        let name = format!("hoopmp_{test}_{}", std::process::id());
        root_sql(&format!(
            "DROP DATABASE IF EXISTS {name}; DROP USER IF EXISTS '{name}'@'%';
             CREATE DATABASE {name};
             CREATE USER '{name}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('pw-{name}');
             GRANT ALL ON {name}.* TO '{name}'@'%';
             USE {name}; {PEOPLE}"
        ));
        let direct = root_sql(&format!("USE {name}; {SELECT}"));
        for value in [
            "ada.lovelace@example.com",
            "123-45-6789",
            "4111111111111111",
        ] {
            assert!(
                direct.contains(value),
                "the fixture lacks {value}: {direct}"
            );
        }
        Self { name }
    }

    async fn proxy(&self) -> SocketAddr {
        self.proxy_with(POLICY).await
    }

    async fn proxy_with(&self, policy: &str) -> SocketAddr {
        let target = DatabaseTarget {
            host: "127.0.0.1".to_owned(),
            port: 3306,
            user: self.name.clone(),
            password: Some(Secret::new(format!("pw-{}", self.name))),
            database: Some(self.name.clone()),
            ssl_mode: SslMode::Disable,
        };
        let proxy = MysqlProxy::builder(target)
            .pipeline(Arc::new(PolicyPipeline::from_json(policy).unwrap()))
            .build()
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { proxy.serve(listener).await });
        addr
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::process::Command::new("mariadb")
            .args(["-uroot", "-h127.0.0.1", "-P3306", "-e"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {0}; DROP USER IF EXISTS '{0}'@'%';",
                self.name
            ))
            .output();
    }
}

fn assert_no_sensitive(out: &str) {
    for value in SENSITIVE {
        assert!(!out.contains(value), "{value} leaked: {out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_cli_sees_masked_rows_and_a_refused_delete_keeps_the_session() {
    let fixture = Fixture::new("cli");
    let proxy = fixture.proxy().await;
    let mut child = Command::new("mariadb")
        .arg("-h127.0.0.1")
        .arg(format!("-P{}", proxy.port()))
        .args(["-ume", "-N", "-B", "--force", &fixture.name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let script = format!(
        "{SELECT};\nDELETE FROM scratch;\nDELETE FROM scratch WHERE id = 1;\nSELECT count(*) FROM scratch;\n"
    );
    tokio::io::AsyncWriteExt::write_all(&mut stdin, script.as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stdout, format!("{MASKED}2\n"), "{stderr}");
    assert!(stderr.contains(REFUSAL), "{stderr}");
    assert_eq!(
        root_sql(&format!("SELECT count(*) FROM {}.scratch", fixture.name)),
        "2\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pymysql_and_mysql_connector_prepared_see_masked_text_and_binary_rows() {
    let fixture = Fixture::new("py");
    let proxy = fixture.proxy().await;
    let script = format!(
        r#"
import pymysql, mysql.connector
SELECT = "{SELECT}"
conn = pymysql.connect(host="127.0.0.1", port={port}, user="me", password="", database="{db}")
cur = conn.cursor()
cur.execute(SELECT)
print("pymysql", cur.fetchall())
try:
    cur.execute("DELETE FROM scratch")
except pymysql.err.MySQLError as e:
    print("pymysql refused", e.args)
cur.execute("DELETE FROM scratch WHERE id = %s", (1,))
cur.execute("SELECT count(*) FROM scratch")
print("pymysql after", cur.fetchone())
conn.commit()

conn = mysql.connector.connect(host="127.0.0.1", port={port}, user="me", password="", database="{db}")
cur = conn.cursor(prepared=True)
cur.execute(SELECT.replace(" ORDER BY id", " WHERE id <= %s ORDER BY id"), (3,))
print("prepared", [tuple(v.decode() if isinstance(v, (bytes, bytearray)) else v for v in row) for row in cur.fetchall()])
try:
    cur.execute("DELETE FROM scratch")
except mysql.connector.Error as e:
    print("prepared refused", e.errno, e.msg)
cur.execute("SELECT count(*) FROM scratch WHERE id > %s", (0,))
print("prepared after", cur.fetchall())
try:
    cur.execute("SELECT CONCAT('x', %s)", ("project bluebird",))
    cur.fetchall()
except mysql.connector.Error as e:
    print("parameter refused", e.errno, e.msg)
cur.execute("SELECT CONCAT('x', %s)", ("project kestrel",))
print("parameter after", cur.fetchall())
"#,
        port = proxy.port(),
        db = fixture.name,
    );
    let output = Command::new("python3")
        .args(["-c", &script])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_sensitive(&out);
    let rows = |account1: &str| {
        format!(
            "(1, 'Ada Lovelace', '[REDACTED:EMAIL_ADDRESS]', '[REDACTED:CREDIT_CARD_NUMBER]', '*******6789', '[REDACTED:PHONE_NUMBER]', '[REDACTED:IP_ADDRESS]', {account1}, 'Met Ada ([REDACTED:EMAIL_ADDRESS]) from [REDACTED:IP_ADDRESS]'), \
             (2, 'Alan Turing', '[REDACTED:EMAIL_ADDRESS]', '[REDACTED:CREDIT_CARD_NUMBER]', '*******9999', '[REDACTED:PHONE_NUMBER]', '[REDACTED:IP_ADDRESS]', 4111111111111112, 'not a card 4111111111111112, not an ssn 000-12-3456'), \
             (3, 'Grace Hopper', '[REDACTED:EMAIL_ADDRESS]', '[REDACTED:CREDIT_CARD_NUMBER]', '*******1120', '[REDACTED:PHONE_NUMBER]', '[REDACTED:IP_ADDRESS]', 42, 'nothing to see here')"
        )
    };
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        format!("pymysql ({},)", rows("None")).replace("),)", "))")
    );
    assert_eq!(lines[1], format!("pymysql refused (1227, '{REFUSAL}')"));
    assert_eq!(lines[2], "pymysql after (2,)");
    assert_eq!(lines[3], format!("prepared [{}]", rows("None")));
    assert_eq!(lines[4], format!("prepared refused 1227 {REFUSAL}"));
    assert_eq!(lines[5], "prepared after [(2,)]");
    assert_eq!(
        lines[6],
        "parameter refused 1227 codenames stay out of queries (hoop policy rule no-codenames)"
    );
    assert_eq!(lines[7], "parameter after [('xproject kestrel',)]");
}

/// libmariadb's prepared-statement API through ctypes (its binary rows,
/// MariaDB's metadata cache negotiated), four string columns bound.
/// Arguments: host, port, user, password, database, statement.
const LIBMARIADB_PREPARED: &str = r#"
import ctypes, sys
lib = ctypes.CDLL("libmariadb.so.3")
class BIND(ctypes.Structure):
    _fields_ = [("length", ctypes.POINTER(ctypes.c_ulong)), ("is_null", ctypes.POINTER(ctypes.c_char)),
                ("buffer", ctypes.c_void_p), ("error", ctypes.POINTER(ctypes.c_char)),
                ("row_ptr", ctypes.c_void_p), ("store_param_func", ctypes.c_void_p), ("fetch_result", ctypes.c_void_p), ("skip_result", ctypes.c_void_p),
                ("buffer_length", ctypes.c_ulong), ("offset", ctypes.c_ulong), ("length_value", ctypes.c_ulong),
                ("flags", ctypes.c_uint), ("pack_length", ctypes.c_uint), ("buffer_type", ctypes.c_int),
                ("error_value", ctypes.c_char), ("is_unsigned", ctypes.c_char), ("long_data_used", ctypes.c_char),
                ("is_null_value", ctypes.c_char), ("extension", ctypes.c_void_p)]
for f in ("mysql_init", "mysql_real_connect", "mysql_stmt_init"):
    getattr(lib, f).restype = ctypes.c_void_p
lib.mysql_real_connect.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_uint, ctypes.c_char_p, ctypes.c_ulong]
lib.mysql_error.restype = ctypes.c_char_p; lib.mysql_error.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_error.restype = ctypes.c_char_p; lib.mysql_stmt_error.argtypes = [ctypes.c_void_p]
lib.mysql_stmt_init.argtypes = [ctypes.c_void_p]
for f in ("mysql_stmt_execute", "mysql_stmt_fetch", "mysql_stmt_store_result", "mysql_stmt_close", "mysql_stmt_free_result"):
    getattr(lib, f).argtypes = [ctypes.c_void_p]
lib.mysql_stmt_prepare.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_ulong]
lib.mysql_stmt_bind_result.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
lib.mysql_stmt_bind_result.restype = ctypes.c_char
lib.mysql_close.argtypes = [ctypes.c_void_p]
host, port, user, pw, db, sql = sys.argv[1], int(sys.argv[2]), *[a.encode() for a in sys.argv[3:7]]
con = lib.mysql_init(None)
if not lib.mysql_real_connect(con, host.encode(), user, pw, db, port, None, 0):
    sys.exit("connect: " + lib.mysql_error(con).decode())
stmt = lib.mysql_stmt_init(con)
if lib.mysql_stmt_prepare(stmt, sql, len(sql)):
    sys.exit("prepare: " + lib.mysql_stmt_error(stmt).decode())
N = 4
binds = (BIND * N)()
bufs = [ctypes.create_string_buffer(256) for _ in range(N)]
lens = [ctypes.c_ulong() for _ in range(N)]
nulls = [ctypes.c_char() for _ in range(N)]
for i in range(N):
    binds[i].buffer_type = 254
    binds[i].buffer = ctypes.cast(bufs[i], ctypes.c_void_p)
    binds[i].buffer_length = 256
    binds[i].length = ctypes.pointer(lens[i])
    binds[i].is_null = ctypes.pointer(nulls[i])
lib.mysql_query.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
for run in (1, 2, 3):
    if run == 2 and lib.mysql_query(con, b"ALTER TABLE people MODIFY name VARCHAR(50)"):
        sys.exit("alter: " + lib.mysql_error(con).decode())
    if lib.mysql_stmt_execute(stmt):
        sys.exit("execute: " + lib.mysql_stmt_error(stmt).decode())
    if lib.mysql_stmt_bind_result(stmt, binds) != b"\0":
        sys.exit("bind: " + lib.mysql_stmt_error(stmt).decode())
    lib.mysql_stmt_store_result(stmt)
    while lib.mysql_stmt_fetch(stmt) in (0, 101):
        print(run, "|".join("NULL" if nulls[i].value != b"\0" else bufs[i].raw[:lens[i].value].decode() for i in range(N)))
    lib.mysql_stmt_free_result(stmt)
lib.mysql_stmt_close(stmt)
lib.mysql_close(con)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libmariadb_prepared_statement_is_masked_when_the_server_skips_its_metadata() {
    let fixture = Fixture::new("cache");
    let proxy = fixture.proxy().await;
    // The server sends the columns with COM_STMT_PREPARE's response, skips
    // them on the first execution, resends them once the ALTER changed
    // them, and skips them again on the third.
    let output = Command::new("python3")
        .args(["-c", LIBMARIADB_PREPARED, "127.0.0.1"])
        .arg(proxy.port().to_string())
        .args(["me", "", &fixture.name])
        .arg("SELECT id, name, ssn, email FROM people ORDER BY id")
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_sensitive(&out);
    let expected: String = (1..=3)
        .map(|run| {
            format!(
                "{run} 1|Ada Lovelace|*******6789|[REDACTED:EMAIL_ADDRESS]\n\
                 {run} 2|Alan Turing|*******9999|[REDACTED:EMAIL_ADDRESS]\n\
                 {run} 3|Grace Hopper|*******1120|[REDACTED:EMAIL_ADDRESS]\n"
            )
        })
        .collect();
    assert_eq!(out, expected);
}

/// One value per expression, for `FROM people WHERE id = 1`: ways to carry
/// row 1's values in a type the masking might not read.
const ATTACKS: [&str; 14] = [
    "CAST(account AS DOUBLE)",
    "CAST(account AS FLOAT)",
    "account + 0.0",
    "CAST(account AS UNSIGNED)",
    "CAST(account AS CHAR)",
    "CAST(email AS BINARY)",
    "UNHEX(HEX(email))",
    "CONVERT(email USING utf16)",
    "JSON_OBJECT('e', email)",
    "JSON_ARRAY(email, note)",
    "CAST(ip AS INET4)",
    "ST_X(POINT(account, 1))",
    "YEAR(NOW())",
    "NOW()",
];

/// Issue 13, item 2, for MySQL: every expression of [`ATTACKS`] through
/// PyMySQL (text protocol) and mysql-connector's prepared cursor (binary
/// protocol), then every column of `people` with the session's results in
/// UTF-16, UTF-32 and UCS-2 (`SET character_set_results`), where text
/// holds a NUL beside each ASCII character: no value survives (the NULs
/// removed before looking). Binary DOUBLEs were passed unscanned; a DOUBLE in
/// the text protocol (`4.111111111111111e15`) and UTF-16 text hid their
/// values from the detectors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_values_other_types_and_wide_charsets_are_masked_or_null() {
    let fixture = Fixture::new("types");
    let proxy = fixture.proxy().await;
    // Rust's quoting of these strings is Python's too.
    let attacks: Vec<String> = ATTACKS.iter().map(|a| format!("{a:?}")).collect();
    let attacks = attacks.join(", ");
    let script = format!(
        r#"
import pymysql, mysql.connector
ATTACKS = [{attacks}]
SELECT = "{SELECT}"
def show(v):
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).replace(b"\0", b"").decode("latin-1")
    if isinstance(v, str):
        v = v.replace("\0", "")
    return repr(v)
conn = pymysql.connect(host="127.0.0.1", port={port}, user="me", password="", database="{db}")
cur = conn.cursor()
for expr in ATTACKS:
    cur.execute(f"SELECT {{expr}} FROM people WHERE id = 1")
    print("pymysql", expr, "=>", show(cur.fetchone()[0]))
# Without decoders: numbers arrive in the wide charset too.
encoders = {{k: v for k, v in pymysql.converters.conversions.items() if not isinstance(k, int)}}
conn = pymysql.connect(host="127.0.0.1", port={port}, user="me", password="", database="{db}", conv=encoders)
cur = conn.cursor()
for charset in ("utf16", "utf32", "ucs2", "utf16le"):
    cur.execute("SET character_set_results = " + charset)
    cur.execute(SELECT)
    for row in cur.fetchall():
        print("pymysql", charset, [show(v) for v in row])
    print("pymysql", charset, "columns", [show(d[0]) for d in cur.description])
cur.execute("SET character_set_results = utf8mb4")

conn = mysql.connector.connect(host="127.0.0.1", port={port}, user="me", password="", database="{db}")
cur = conn.cursor(prepared=True)
for expr in ATTACKS:
    cur.execute(f"SELECT {{expr}} FROM people WHERE id = %s", (1,))
    print("prepared", expr, "=>", show(cur.fetchone()[0]))
plain = conn.cursor()
plain.execute("SET character_set_results = utf16")
cur.execute(SELECT.replace(" ORDER BY id", " WHERE id <= %s ORDER BY id"), (3,))
for row in cur.fetchall():
    print("prepared utf16", [show(v) for v in row])
"#,
        port = proxy.port(),
        db = fixture.name,
    );
    let output = Command::new("python3")
        .args(["-c", &script])
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_no_sensitive(&out);
    for line in [
        "prepared CAST(account AS DOUBLE) => None",
        "pymysql CAST(account AS DOUBLE) => None",
        "prepared CAST(account AS UNSIGNED) => None",
        "prepared JSON_OBJECT('e', email) => '{\"e\": \"[REDACTED:EMAIL_ADDRESS]\"}'",
        "pymysql utf16 [\"'3'\", \"'Grace Hopper'\", 'None', 'None', 'None', 'None', 'None', \"'42'\", \"'nothing to see here'\"]",
        "prepared utf16 ['1', \"'Ada Lovelace'\", 'None', 'None', 'None', 'None', 'None', 'None', 'None']",
    ] {
        assert!(out.lines().any(|l| l == line), "no line {line:?}: {out}");
    }
}

/// The guardrails issue 13 item 3 names.
const GUARD_POLICY: &str = r#"{"guardrails": {"input": [
  {"type": "deny_statements", "statements": ["drop", "truncate"], "name": "no-drops"},
  {"type": "deny_without_where", "name": "no-unbounded-writes"}]}}"#;

/// Statements that hide a DROP, a TRUNCATE or an unbounded DELETE from the text as sent
/// (issue 13, item 3): `(session setup, statement)`, `{t}` the table, `{hex}` the hex of
/// `DROP TABLE {t}`. Each runs on MariaDB as the server reads it.
const HIDDEN: &[(&str, &str)] = &[
    ("", "/*!50000 DROP TABLE {t} */"),
    ("", "/*M! DROP TABLE {t} */"),
    ("", "/*!DELETE FROM {t}*/"),
    ("", "/*M!100000 DROP TABLE {t} */"),
    // MariaDB skips the text of MySQL 5.7+ versioned comments.
    ("", "DELETE FROM {t} /*!99999 WHERE 1 = 0 */"),
    ("", "DELETE FROM {t} /*!50700 WHERE 1 = 0 */"),
    ("", "SELECT 1; /*!50000 DROP TABLE {t} */"),
    ("", "PREPARE s FROM 'DROP TABLE {t}'; EXECUTE s"),
    ("", "PREPARE s FROM X'{hex}'; EXECUTE s"),
    ("", "EXECUTE IMMEDIATE 'DR' 'OP TABLE {t}'"),
    ("", "EXECUTE IMMEDIATE _utf8mb4 'TRUNCATE {t}'"),
    ("SET @q = 'DROP TABLE {t}'", "PREPARE s FROM @q; EXECUTE s"),
    ("", "EXECUTE IMMEDIATE CONCAT('DR', 'OP TABLE {t}')"),
    (
        "SET sql_mode = 'NO_BACKSLASH_ESCAPES'",
        r"SELECT 'a\' ; DROP TABLE {t}; -- '",
    ),
    (
        "SET sql_mode = 'ANSI_QUOTES'",
        r#"SELECT 1 AS "a\" ; DROP TABLE {t}; -- ""#,
    ),
    // UTF-8's `ė` (C4 97): Shift-JIS reads 97 and the backtick as one character.
    (
        "SET NAMES sjis",
        "SELECT 1 AS `\u{117}`, `; DROP TABLE {t}; -- `",
    ),
    ("", "DELETE FROM {t} --\u{7f} WHERE id = 1"),
    (
        "",
        "CREATE PROCEDURE p_{t}() BEGIN DROP TABLE {t}; END; CALL p_{t}()",
    ),
];

/// Each [`HIDDEN`] statement drops or empties a table when sent to MariaDB directly (PyMySQL,
/// several statements per query allowed), and is refused through hoop, whose table keeps
/// its three rows: the guardrails judge what the server runs, not the text as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_hidden_from_the_text_are_refused_and_the_table_survives() {
    let fixture = Fixture::new("hidden");
    let proxy = fixture.proxy_with(GUARD_POLICY).await;
    // Each case as hex (`setup:statement`): no quoting to get wrong on the way.
    let hex = |text: &str| text.bytes().map(|b| format!("{b:02x}")).collect::<String>();
    let cases: Vec<String> = HIDDEN
        .iter()
        .map(|(setup, sql)| format!("{}:{}", hex(setup), hex(sql)))
        .collect();
    let script = format!(
        r#"
import sys, pymysql
from pymysql.constants import CLIENT
DB = "{db}"
CASES = [[bytes.fromhex(part).decode() for part in case.split(":")] for case in sys.argv[1:]]

def connect(port, user):
    return pymysql.connect(host="127.0.0.1", port=port, user=user, password="", database=DB,
                           charset="latin1", autocommit=True, client_flag=CLIENT.MULTI_STATEMENTS,
                           read_timeout=20)

def run(conn, sql):
    conn.query(sql.encode("utf-8"))
    while conn._result.has_next:
        conn.next_result()

def fill(sql, table):
    return sql.replace("{{hex}}", ("DROP TABLE " + table).encode().hex()).replace("{{t}}", table)

def rows(table):
    conn = connect(3306, "root")
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s", (DB, table))
    if cur.fetchone()[0] == 0:
        return "gone"
    cur.execute("SELECT count(*) FROM " + table)
    return str(cur.fetchone()[0])

for i, (setup, sql) in enumerate(CASES):
    root = connect(3306, "root")
    run(root, "DROP TABLE IF EXISTS victim; DROP PROCEDURE IF EXISTS p_victim; CREATE TABLE victim (id INT); INSERT INTO victim VALUES (1), (2), (3)")
    direct = connect(3306, "root")
    try:
        if setup:
            run(direct, fill(setup, "victim"))
        run(direct, fill(sql, "victim"))
    except pymysql.err.MySQLError as e:
        pass
    print(i, "direct", rows("victim"), flush=True)
    hooped = connect({port}, "me")
    try:
        if setup:
            run(hooped, fill(setup, "scratch"))
        run(hooped, fill(sql, "scratch"))
        print(i, "hoop ran")
    except pymysql.err.MySQLError as e:
        print(i, "hoop refused", e.args[0], e.args[1], flush=True)
    print(i, "scratch", rows("scratch"))
"#,
        db = fixture.name,
        port = proxy.port(),
    );
    let output = Command::new("python3")
        .args(["-c", &script])
        .args(&cases)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3 * HIDDEN.len(), "{out}");
    for (i, (setup, sql)) in HIDDEN.iter().enumerate() {
        let case = &lines[3 * i..3 * i + 3];
        assert!(
            case[0] == format!("{i} direct gone") || case[0] == format!("{i} direct 0"),
            "{setup} / {sql}: the attack does not work on MariaDB: {case:?}"
        );
        assert!(
            case[1].starts_with(&format!("{i} hoop refused 1227 "))
                && case[1].contains("(hoop policy rule no-"),
            "{setup} / {sql}: {case:?}"
        );
        assert_eq!(case[2], format!("{i} scratch 3"), "{setup} / {sql}");
    }
}
