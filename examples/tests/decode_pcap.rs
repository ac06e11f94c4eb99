//! Tests of the decode_pcap example: the public captures in
//! `testdata/captures` (in the repository), agreement with tshark, and captures built
//! here to reach what those files do not (escapes, Parse, TLS, other ports).
//!
//! The example's modules are compiled into this test by path, so their own
//! unit tests (reassembly, link layers, the capture reader) run here too.

#[path = "../decode_pcap/mod.rs"]
mod decode_pcap;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use decode_pcap::testing::{LINKTYPE_RAW, pcap, pcapng, resegment, tcp_packet, without_handshake};
use serde_json::Value;

/// A protocol's public captures and how tshark names their statements.
struct Corpus {
    /// The example's `--protocol`, also the folder under `testdata/captures`.
    protocol: &'static str,
    /// How many captures the folder holds.
    files: usize,
    /// tshark's field for a statement's SQL.
    tshark_field: &'static str,
    /// The messages that carry SQL.
    sql_messages: &'static [&'static str],
}

const POSTGRES: Corpus = Corpus {
    protocol: "postgres",
    files: 15,
    tshark_field: "pgsql.query",
    sql_messages: &["Query", "Parse"],
};

const MYSQL: Corpus = Corpus {
    protocol: "mysql",
    files: 8,
    tshark_field: "mysql.query",
    sql_messages: &["COM_QUERY", "COM_STMT_PREPARE"],
};

/// The public captures of a protocol, kept in the repository's
/// `testdata/captures` (their sources are in its `SOURCES.md`).
fn captures(corpus: &Corpus) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/captures")
        .join(corpus.protocol);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the captures in {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pcap" || e == "pcapng"))
        .collect();
    files.sort();
    assert_eq!(
        files.len(),
        corpus.files,
        "captures in {}: {files:?}",
        dir.display()
    );
    files
}

fn postgres_captures() -> Vec<PathBuf> {
    captures(&POSTGRES)
}

fn is_deliberately_bad(capture: &Path) -> bool {
    capture
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("zeek-bad-")
}

/// What one run of the example produced.
struct Run {
    status: u8,
    records: Vec<Value>,
    notes: String,
}

/// Runs the example in-process with these arguments.
fn decode(args: &[&str]) -> Run {
    let argv = std::iter::once("decode_pcap")
        .chain(args.iter().copied())
        .map(OsString::from);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let status = decode_pcap::run(argv, &mut out, &mut err);
    let records = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    Run {
        status,
        records,
        notes: String::from_utf8(err).unwrap(),
    }
}

fn decode_file(capture: &Path) -> Run {
    decode(&[capture.to_str().unwrap()])
}

fn decode_as(corpus: &Corpus, capture: &Path) -> Run {
    decode(&["--protocol", corpus.protocol, capture.to_str().unwrap()])
}

/// A built capture in a temporary file, removed when dropped.
struct TempCapture(PathBuf);

impl std::ops::Deref for TempCapture {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempCapture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Writes a built capture to a temporary file named for the test.
fn temp_capture(name: &str, bytes: &[u8]) -> TempCapture {
    let name = format!("decode_pcap-{}-{name}.pcap", std::process::id());
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    TempCapture(path)
}

fn message_names(run: &Run) -> Vec<(&str, &str)> {
    run.records
        .iter()
        .map(|r| (r["dir"].as_str().unwrap(), r["message"].as_str().unwrap()))
        .collect()
}

#[test]
fn every_stream_of_every_good_capture_decodes() {
    for corpus in [POSTGRES, MYSQL] {
        every_stream_decodes(&corpus);
    }
}

fn every_stream_decodes(corpus: &Corpus) {
    for capture in captures(corpus).iter().filter(|c| !is_deliberately_bad(c)) {
        let run = decode_as(corpus, capture);
        let name = capture.display();
        assert_eq!(run.status, decode_pcap::EXIT_OK, "{name}: {}", run.notes);
        // No decode error, and nothing left over: no gap, no partial message.
        assert_eq!(run.notes, "", "{name}");
        assert!(!run.records.is_empty(), "{name} printed nothing");
        for record in &run.records {
            assert!(record["stream"].is_u64(), "{name}: {record}");
            assert!(
                matches!(record["dir"].as_str(), Some("client" | "server")),
                "{record}"
            );
            assert_eq!(record["protocol"], corpus.protocol, "{name}: {record}");
            let message = record["message"].as_str().unwrap();
            assert!(!message.is_empty(), "{name}: {record}");
            let carries_sql = corpus.sql_messages.contains(&message);
            assert_eq!(record["sql"].is_string(), carries_sql, "{name}: {record}");
        }
    }
}

#[test]
fn decodes_the_login_exchange_in_capture_order() {
    let capture = postgres_captures()
        .into_iter()
        .find(|c| c.ends_with("zeek-psql-select-now.pcap"))
        .unwrap();
    let run = decode_file(&capture);
    let names = message_names(&run);
    assert_eq!(
        names[..6],
        [
            ("client", "SSLRequest"),
            ("server", "NegotiationResponse"),
            ("client", "StartupMessage"),
            ("server", "AuthenticationSASL"),
            ("client", "PasswordMessage"),
            ("server", "AuthenticationSASLContinue"),
        ]
    );
    assert!(names.contains(&("client", "Query")));
    assert!(names.contains(&("server", "DataRow")));
    assert_eq!(names.last(), Some(&("client", "Terminate")));
    let frames: Vec<u64> = run
        .records
        .iter()
        .map(|r| r["frame"].as_u64().unwrap())
        .collect();
    assert!(
        frames.is_sorted(),
        "records out of capture order: {frames:?}"
    );
}

/// The deliberately malformed captures fail with the decode error's file,
/// stream, direction and offset, after printing what did decode.
#[test]
fn bad_captures_give_a_clean_decode_error() {
    for capture in postgres_captures()
        .iter()
        .filter(|c| is_deliberately_bad(c))
    {
        let run = decode_file(capture);
        assert_eq!(
            run.status,
            decode_pcap::EXIT_FAILED,
            "{}",
            capture.display()
        );
        let failure = format!(
            "{}: stream 0 server: does not decode at byte offset 0: ",
            capture.display()
        );
        assert!(run.notes.contains(&failure), "{}", run.notes);
    }
    // The backend's first message is bad; the client's StartupMessage is fine.
    let run = decode_file(
        &postgres_captures()
            .into_iter()
            .find(|c| c.ends_with("zeek-bad-backend-message-1.pcap"))
            .unwrap(),
    );
    assert_eq!(message_names(&run), [("client", "StartupMessage")]);
}

/// The same through the built binary: exit status 1, a message naming the
/// stream and offset, no panic, no hang.
#[test]
fn the_built_binary_exits_non_zero_on_bad_captures() {
    let binary = example_binary();
    for capture in postgres_captures()
        .iter()
        .filter(|c| is_deliberately_bad(c))
    {
        let mut child = Command::new(&binary)
            .arg(capture)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{} hangs", capture.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
        assert_eq!(status.code(), Some(1), "{}: {stderr}", capture.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
        let named = format!("{}: stream 0 ", capture.display());
        let failure = stderr
            .lines()
            .find(|l| l.contains("does not decode at byte offset "));
        assert!(failure.is_some_and(|l| l.contains(&named)), "{stderr}");
    }
}

/// The example binary, which `cargo test` and `cargo nextest run` build
/// beside this test's directory unless told to build only some targets.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let binary = profile_dir
        .join("examples")
        .join(format!("decode_pcap{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build --example decode_pcap`",
        binary.display()
    );
    binary
}

/// The tshark on PATH, or `None` with the reason printed.
fn tshark() -> Option<&'static str> {
    let found = Command::new("tshark")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        eprintln!(
            "SKIPPED: tshark is not installed (apt-get install tshark); not comparing with it"
        );
    }
    found.then_some("tshark")
}

/// Runs `tshark -r CAPTURE -Y FILTER -T fields -e FIELD` and returns its
/// output lines.
fn tshark_lines(tshark: &str, capture: &Path, filter: &str, field: &str) -> Vec<String> {
    let output = Command::new(tshark)
        .arg("-r")
        .arg(capture)
        .args(["-Y", filter, "-T", "fields", "-e", field])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tshark failed on {}",
        capture.display()
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// Our SQL in tshark's `-T fields` form: one line per frame that completed a
/// Query or Parse, in frame order, holding that frame's statements joined
/// with commas, each rendered as tshark 4.0 renders `pgsql.query`:
///
/// - the field is ASCII, so each byte above 0x7f becomes U+FFFD (a two-byte
///   UTF-8 character becomes two of them);
/// - backspace, tab, newline, form feed and carriage return are written as
///   `\b`, `\t`, `\n`, `\f`, `\r`; other control bytes pass through raw, and
///   a backslash is not escaped.
///
/// We escape our side rather than unescape tshark's: its escaping does not
/// escape the backslash, so `\n` in its output could be either a newline or
/// a backslash and an `n`, but the same text never renders two ways. Joining
/// with commas, as tshark joins several occurrences in one frame, makes the
/// comparison independent of that ambiguity too. Also returns each line's
/// stream number, to compare with tshark's `tcp.stream`.
fn our_sql_as_tshark_prints_it(run: &Run) -> (Vec<String>, Vec<String>) {
    let mut lines: Vec<(u64, String, Vec<String>)> = Vec::new();
    for record in run.records.iter().filter(|r| r["sql"].is_string()) {
        let frame = record["frame"].as_u64().unwrap();
        let stream = record["stream"].to_string();
        let sql = tshark_escape(record["sql"].as_str().unwrap());
        match lines.last_mut() {
            Some((f, _, statements)) if *f == frame => statements.push(sql),
            _ => lines.push((frame, stream, vec![sql])),
        }
    }
    lines.sort_by_key(|(frame, ..)| *frame);
    let streams = lines.iter().map(|(_, s, _)| s.clone()).collect();
    (
        lines.into_iter().map(|(.., s)| s.join(",")).collect(),
        streams,
    )
}

/// Renders SQL as tshark 4.0 prints `pgsql.query` (see above). The example
/// prints SQL decoded as lossy UTF-8; any U+FFFD it contains came from bytes
/// above 0x7f, as do all the other non-ASCII characters.
fn tshark_escape(sql: &str) -> String {
    let mut out = String::new();
    for c in sql.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c.is_ascii() => out.push(c),
            // One replacement character per byte of the original.
            '\u{fffd}' => out.push('\u{fffd}'),
            c => (0..c.len_utf8()).for_each(|_| out.push('\u{fffd}')),
        }
    }
    out
}

/// The SQL the example extracts equals, in order, what
/// `tshark -r FILE -Y pgsql.query -T fields -e pgsql.query` extracts on every
/// PostgreSQL capture (tshark's statements include Parse messages), and what
/// `-Y mysql.query -e mysql.query` extracts on every MySQL capture. The
/// frames that complete the statements and the stream numbers agree too.
#[test]
fn sql_matches_tshark_on_every_capture() {
    let Some(tshark) = tshark() else { return };
    for (corpus, at_least) in [(POSTGRES, 35), (MYSQL, 30)] {
        let field = corpus.tshark_field;
        let mut compared = 0;
        for capture in captures(&corpus) {
            let name = capture.display();
            let (ours, our_streams) = our_sql_as_tshark_prints_it(&decode_as(&corpus, &capture));
            let theirs = tshark_lines(tshark, &capture, field, field);
            assert_eq!(ours, theirs, "SQL of {name}");
            let their_streams = tshark_lines(tshark, &capture, field, "tcp.stream");
            assert_eq!(our_streams, their_streams, "streams of {name}");
            compared += theirs.len();
        }
        let protocol = corpus.protocol;
        assert!(
            compared >= at_least,
            "{protocol}: only {compared} statements compared"
        );
    }
}

/// PostgreSQL messages for the built captures.
mod pg {
    fn tagged(tag: u8, body: &[u8]) -> Vec<u8> {
        let len = (body.len() + 4) as u32;
        [&[tag][..], &len.to_be_bytes(), body].concat()
    }

    pub(super) fn startup() -> Vec<u8> {
        let body = [&196_608u32.to_be_bytes()[..], b"user\0alice\0\0"].concat();
        [&((body.len() + 4) as u32).to_be_bytes()[..], &body].concat()
    }

    pub(super) fn ssl_request() -> Vec<u8> {
        [8u32.to_be_bytes(), 80_877_103u32.to_be_bytes()].concat()
    }

    pub(super) fn query(sql: &[u8]) -> Vec<u8> {
        tagged(b'Q', &[sql, b"\0"].concat())
    }

    pub(super) fn parse(name: &[u8], sql: &[u8]) -> Vec<u8> {
        // One parameter, of type int4 (OID 23).
        tagged(
            b'P',
            &[name, b"\0", sql, b"\0", &[0, 1, 0, 0, 0, 23]].concat(),
        )
    }

    pub(super) fn sync() -> Vec<u8> {
        tagged(b'S', b"")
    }

    pub(super) fn authentication_ok() -> Vec<u8> {
        tagged(b'R', &[0; 4])
    }

    pub(super) fn ready_for_query() -> Vec<u8> {
        tagged(b'Z', b"I")
    }
}

/// The two ends of a built conversation.
struct Ends {
    client: SocketAddr,
    server: SocketAddr,
    /// The client's initial sequence number.
    isn: u32,
}

impl Ends {
    fn v4(server_port: u16) -> Self {
        Self {
            client: "10.1.0.1:40000".parse().unwrap(),
            server: SocketAddr::new([10, 1, 0, 2].into(), server_port),
            isn: 999,
        }
    }
}

/// A conversation's frames, without link header: a handshake, then each
/// `(from_client, bytes)` as one segment, in order.
fn conversation_frames(ends: &Ends, turns: &[(bool, Vec<u8>)]) -> Vec<Vec<u8>> {
    let (client, server) = (ends.client, ends.server);
    let (mut client_seq, mut server_seq) = (ends.isn.wrapping_add(1), 9000u32);
    let mut frames = vec![
        tcp_packet(client, server, ends.isn, (true, false), b""),
        tcp_packet(server, client, server_seq - 1, (true, true), b""),
    ];
    for (from_client, bytes) in turns {
        let (src, dst, seq) = if *from_client {
            (client, server, &mut client_seq)
        } else {
            (server, client, &mut server_seq)
        };
        frames.push(tcp_packet(src, dst, *seq, (false, true), bytes));
        *seq = seq.wrapping_add(bytes.len() as u32);
    }
    frames
}

/// A raw-IP capture of one IPv4 conversation with the server on `server_port`.
fn conversation(server_port: u16, turns: &[(bool, Vec<u8>)]) -> Vec<u8> {
    pcap(
        LINKTYPE_RAW,
        &conversation_frames(&Ends::v4(server_port), turns),
    )
}

/// SQL with every character tshark escapes, others it does not, non-ASCII,
/// commas, two queries in one segment, a Parse, and a query split over two
/// segments: the conversation's turns and the statements in order.
fn tricky_sql_turns() -> (Vec<(bool, Vec<u8>)>, Vec<String>) {
    let odd: &[u8] = b"select 'a\tb'\n, 2 -- x\\y \"z\" \xc3\xa9 \x08\x0c\x07\x1b\r\n;";
    let split = pg::query(b"select 3");
    let turns = vec![
        (true, pg::startup()),
        (
            false,
            [pg::authentication_ok(), pg::ready_for_query()].concat(),
        ),
        (true, [pg::query(odd), pg::query(b"select 1,2")].concat()),
        (false, pg::ready_for_query()),
        (
            true,
            [pg::parse(b"s1", b"select $1\nfrom t"), pg::sync()].concat(),
        ),
        (true, split[..7].to_vec()),
        (true, split[7..].to_vec()),
    ];
    let sql: [&[u8]; 4] = [odd, b"select 1,2", b"select $1\nfrom t", b"select 3"];
    (
        turns,
        sql.iter()
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect(),
    )
}

fn tricky_sql_conversation() -> (Vec<u8>, Vec<String>) {
    let (turns, sql) = tricky_sql_turns();
    (conversation(5432, &turns), sql)
}

fn sql_of(run: &Run) -> Vec<&str> {
    run.records
        .iter()
        .filter_map(|r| r["sql"].as_str())
        .collect()
}

#[test]
fn extracts_sql_from_query_and_parse_exactly() {
    let (capture, expected) = tricky_sql_conversation();
    let run = decode_file(&temp_capture("tricky", &capture));
    assert_eq!(run.status, decode_pcap::EXIT_OK, "{}", run.notes);
    assert_eq!(sql_of(&run), expected);
    let parse = run
        .records
        .iter()
        .find(|r| r["message"] == "Parse")
        .unwrap();
    assert_eq!(parse["dir"], "client");
    // The split query is completed by the last frame: 2 handshake frames
    // and 7 turns.
    assert_eq!(
        run.records
            .iter()
            .rev()
            .find(|r| r["sql"].is_string())
            .unwrap()["frame"],
        9
    );
}

/// The same capture through tshark: our escaping of its output is right for
/// tabs, newlines, the other control bytes and non-ASCII bytes, and it shows
/// Parse statements in `pgsql.query` as we print them.
#[test]
fn tricky_sql_matches_tshark() {
    let Some(tshark) = tshark() else { return };
    let (capture, _) = tricky_sql_conversation();
    let path = temp_capture("tricky-tshark", &capture);
    let (ours, _) = our_sql_as_tshark_prints_it(&decode_file(&path));
    let theirs = tshark_lines(tshark, &path, "pgsql.query", "pgsql.query");
    assert_eq!(
        theirs.len(),
        3,
        "tshark did not see all statements: {theirs:?}"
    );
    assert!(
        theirs[1].contains("select $1\\nfrom t"),
        "Parse missing: {theirs:?}"
    );
    assert_eq!(ours, theirs);
}

/// A run's records without the fields that name the file and frame.
fn strip(run: &Run) -> Vec<Value> {
    run.records
        .iter()
        .map(|r| {
            let mut r = r.clone();
            let object = r.as_object_mut().unwrap();
            object.remove("frame");
            object.remove("file");
            r
        })
        .collect()
}

/// Real streams cut into pieces of 1 to 7 bytes, sent in reverse order
/// within each segment, each piece retransmitted and overlapped by a
/// segment spanning it and its neighbour, decode to the same messages.
#[test]
fn resegmented_captures_decode_to_the_same_messages() {
    for corpus in [POSTGRES, MYSQL] {
        for capture in captures(&corpus) {
            let original = decode_as(&corpus, &capture);
            let name = capture.file_name().unwrap().to_str().unwrap();
            let cut = temp_capture(name, &resegment(&std::fs::read(&capture).unwrap()));
            let resegmented = decode_as(&corpus, &cut);
            assert_eq!(strip(&resegmented), strip(&original), "{name}");
            assert_eq!(resegmented.status, original.status, "{name}");
        }
    }
}

#[test]
fn tls_after_an_accepted_sslrequest_is_reported_as_encrypted() {
    let client_hello = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0].to_vec();
    let capture = conversation(
        5432,
        &[
            (true, pg::ssl_request()),
            (false, b"S".to_vec()),
            (true, client_hello),
        ],
    );
    let run = decode_file(&temp_capture("tls", &capture));
    assert_eq!(run.status, decode_pcap::EXIT_OK, "{}", run.notes);
    assert_eq!(
        message_names(&run),
        [("client", "SSLRequest"), ("server", "NegotiationResponse")]
    );
    assert!(
        run.notes
            .contains("stream 0 client: encrypted from byte offset 8"),
        "{}",
        run.notes
    );
}

#[test]
fn port_option_selects_the_server_port() {
    let capture = conversation(
        6000,
        &[(true, pg::startup()), (false, pg::authentication_ok())],
    );
    let path = temp_capture("port", &capture);
    let path = path.to_str().unwrap();
    let default = decode(&[path]);
    assert!(default.records.is_empty());
    assert!(
        default.notes.contains("no TCP connection to port 5432"),
        "{}",
        default.notes
    );
    let run = decode(&["--protocol", "postgres", "--port", "6000", path]);
    assert_eq!(
        message_names(&run),
        [("client", "StartupMessage"), ("server", "AuthenticationOk")]
    );
}

#[test]
fn several_files_are_told_apart() {
    let captures = postgres_captures();
    let paths: Vec<&str> = captures
        .iter()
        .take(3)
        .map(|p| p.to_str().unwrap())
        .collect();
    let run = decode(&paths);
    let files: BTreeSet<&str> = run
        .records
        .iter()
        .map(|r| r["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, paths.iter().copied().collect());
}

#[test]
fn rejects_a_bad_command_line() {
    assert_eq!(decode(&[]).status, decode_pcap::EXIT_USAGE);
    let unknown = decode(&["--protocol", "gopher", "x.pcap"]);
    assert_eq!(unknown.status, decode_pcap::EXIT_USAGE);
    assert!(unknown.notes.contains("postgres"), "{}", unknown.notes);
    let (mut help, mut notes) = (Vec::new(), Vec::new());
    let argv = ["decode_pcap", "--help"].map(OsString::from);
    assert_eq!(
        decode_pcap::run(argv, &mut help, &mut notes),
        decode_pcap::EXIT_OK
    );
    assert!(String::from_utf8(help).unwrap().contains("--port"));
}

#[test]
fn reports_unreadable_files_and_goes_on() {
    let captures = postgres_captures();
    let good = captures.iter().find(|c| !is_deliberately_bad(c)).unwrap();
    let not_a_capture = temp_capture("text", b"not a capture at all");
    let run = decode(&[
        "/nonexistent.pcap",
        not_a_capture.to_str().unwrap(),
        good.to_str().unwrap(),
    ]);
    assert_eq!(run.status, decode_pcap::EXIT_FAILED);
    assert!(
        run.notes.contains("/nonexistent.pcap: cannot read"),
        "{}",
        run.notes
    );
    assert!(
        run.notes.contains("not a pcap or pcapng file"),
        "{}",
        run.notes
    );
    assert!(!run.records.is_empty(), "the readable file was not decoded");
}

/// The same statements over IPv6, captured on Linux's "any" device (cooked
/// v2 headers) into a pcapng file.
#[test]
fn reads_pcapng_with_linux_cooked_headers_over_ipv6() {
    let (turns, expected) = tricky_sql_turns();
    let ends = Ends {
        client: "[2001:db8::1]:40000".parse().unwrap(),
        server: "[2001:db8::2]:5432".parse().unwrap(),
        isn: 7,
    };
    // SLL2: protocol IPv6, reserved, interface 1, ARPHRD_ETHER, packet type,
    // address length 6, address.
    let sll2 = [&[0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6][..], &[0; 8]].concat();
    let packets: Vec<(u32, Vec<u8>)> = conversation_frames(&ends, &turns)
        .into_iter()
        .map(|frame| (0, [&sll2[..], &frame].concat()))
        .collect();
    let run = decode_file(&temp_capture("sll2", &pcapng(&[276], &packets)));
    assert_eq!(run.status, decode_pcap::EXIT_OK, "{}", run.notes);
    assert_eq!(sql_of(&run), expected);
}

/// A second connection from the same address and port, told apart by its
/// SYN, gets the next stream number, as in tshark.
#[test]
fn a_reused_address_pair_starts_a_new_stream() {
    let turns = |sql: &[u8]| vec![(true, pg::startup()), (true, pg::query(sql))];
    let mut frames = conversation_frames(&Ends::v4(5432), &turns(b"select 'first'"));
    let second = Ends {
        isn: 77_777,
        ..Ends::v4(5432)
    };
    frames.extend(conversation_frames(&second, &turns(b"select 'second'")));
    let path = temp_capture("reuse", &pcap(LINKTYPE_RAW, &frames));
    let run = decode_file(&path);
    let queries: Vec<(u64, &str)> = run
        .records
        .iter()
        .filter(|r| r["sql"].is_string())
        .map(|r| (r["stream"].as_u64().unwrap(), r["sql"].as_str().unwrap()))
        .collect();
    assert_eq!(queries, [(0, "select 'first'"), (1, "select 'second'")]);
    if let Some(tshark) = tshark() {
        let (_, our_streams) = our_sql_as_tshark_prints_it(&run);
        assert_eq!(
            our_streams,
            tshark_lines(tshark, &path, "pgsql.query", "tcp.stream")
        );
    }
}

/// Captures damaged at random places, or cut short anywhere, never make the
/// example panic or hang: each run ends with a status and valid JSON lines.
#[test]
fn damaged_captures_fail_cleanly() {
    // xorshift32: a fixed, reproducible sequence of positions and bit flips.
    let mut state = 0x2545_f491_u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state as usize
    };
    for (corpus, capture) in captures(&POSTGRES)
        .into_iter()
        .map(|c| (&POSTGRES, c))
        .chain(captures(&MYSQL).into_iter().map(|c| (&MYSQL, c)))
    {
        let bytes = std::fs::read(&capture).unwrap();
        let name = capture.file_name().unwrap().to_str().unwrap();
        let path =
            std::env::temp_dir().join(format!("decode_pcap-{}-damaged-{name}", std::process::id()));
        let check = |damaged: &[u8]| {
            std::fs::write(&path, damaged).unwrap();
            let run = decode_as(corpus, &path);
            assert!(
                [decode_pcap::EXIT_OK, decode_pcap::EXIT_FAILED].contains(&run.status),
                "{name}: {}",
                run.notes
            );
        };
        for _ in 0..64 {
            let mut damaged = bytes.clone();
            for _ in 0..4 {
                let at = next() % damaged.len();
                damaged[at] ^= (next() as u8) | 1;
            }
            check(&damaged);
        }
        for cut in (0..bytes.len()).step_by(97) {
            check(&bytes[..cut]);
        }
        std::fs::remove_file(&path).unwrap();
    }
}

/// Captures that start after the handshake, with no SYN to say where each
/// direction begins, decode to the same messages.
#[test]
fn captures_without_the_handshake_decode_to_the_same_messages() {
    for corpus in [POSTGRES, MYSQL] {
        for capture in captures(&corpus) {
            let name = capture.file_name().unwrap().to_str().unwrap();
            let original = decode_as(&corpus, &capture);
            let path = temp_capture(
                &format!("synless-{name}"),
                &without_handshake(&std::fs::read(&capture).unwrap()),
            );
            let synless = decode_as(&corpus, &path);
            assert_eq!(strip(&synless), strip(&original), "{name}");
            assert_eq!(synless.status, original.status, "{name}");
        }
    }
}
