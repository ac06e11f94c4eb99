//! Session claims on synthetic conversations that exercise every packet kind,
//! with and without CLIENT_DEPRECATE_EOF. Real captures and real clients are
//! tested in `tests/` and by the `decode_pcap` example.

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::DecodeError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dir {
    Client,
    Server,
}

/// A conversation: which side sent each packet, its sequence id and payload.
struct Conversation {
    packets: Vec<(Dir, u8, Bytes)>,
    deprecate_eof: bool,
}

impl Conversation {
    fn new(deprecate_eof: bool) -> Self {
        Self {
            packets: Vec::new(),
            deprecate_eof,
        }
    }

    fn push(&mut self, dir: Dir, seq: u8, payload: impl Into<Bytes>) {
        self.packets.push((dir, seq, payload.into()));
    }

    fn server(&mut self, seq: u8, message: ServerMessage) {
        let mut payload = BytesMut::new();
        message.encode_payload(&mut payload);
        self.push(Dir::Server, seq, payload.freeze());
    }

    fn client(&mut self, seq: u8, message: ClientMessage) {
        let mut payload = BytesMut::new();
        message.encode_payload(&mut payload);
        self.push(Dir::Client, seq, payload.freeze());
    }

    fn eof(&mut self, seq: u8, status: u16) {
        if self.deprecate_eof {
            let mut ok = OkPacket::new(0, status);
            ok.header = 0xfe;
            self.server(seq, ServerMessage::Ok(ok));
        } else {
            self.server(
                seq,
                ServerMessage::Eof(EofPacket {
                    warnings: 0,
                    status,
                }),
            );
        }
    }

    /// EOF after column definitions: absent under CLIENT_DEPRECATE_EOF.
    fn columns_eof(&mut self, seq: u8, status: u16) -> u8 {
        if self.deprecate_eof {
            seq
        } else {
            self.server(
                seq,
                ServerMessage::Eof(EofPacket {
                    warnings: 0,
                    status,
                }),
            );
            seq + 1
        }
    }
}

fn column(name: &str, column_type: u8) -> ColumnDefinition {
    ColumnDefinition {
        catalog: Bytes::from_static(b"def"),
        schema: Bytes::from_static(b"shop"),
        table: Bytes::from_static(b"p"),
        org_table: Bytes::from_static(b"people"),
        name: Bytes::copy_from_slice(name.as_bytes()),
        org_name: Bytes::copy_from_slice(name.as_bytes()),
        extended_metadata: None,
        charset: 33,
        column_length: 255,
        column_type,
        flags: 0,
        decimals: 0,
        reserved: 0,
        default_values: None,
    }
}

const CAPS: u64 = capability::LONG_PASSWORD
    | capability::CONNECT_WITH_DB
    | capability::LOCAL_FILES
    | capability::PROTOCOL_41
    | capability::SECURE_CONNECTION
    | capability::MULTI_STATEMENTS
    | capability::MULTI_RESULTS
    | capability::PLUGIN_AUTH
    | capability::CONNECT_ATTRS
    | capability::PLUGIN_AUTH_LENENC_CLIENT_DATA;

fn types() -> Arc<[u8]> {
    Arc::from(vec![
        column_type::LONGLONG,
        column_type::VAR_STRING,
        column_type::DOUBLE,
        column_type::DATETIME,
        column_type::TIME,
        column_type::TINY,
        column_type::SHORT,
        column_type::LONG,
        column_type::FLOAT,
        column_type::NEWDECIMAL,
        column_type::BLOB,
        column_type::YEAR,
        column_type::DATE,
    ])
}

/// Login, then one of every command and response shape.
fn conversation(deprecate_eof: bool) -> Conversation {
    let caps = if deprecate_eof {
        CAPS | capability::DEPRECATE_EOF
    } else {
        CAPS
    };
    let mut c = Conversation::new(deprecate_eof);
    c.server(
        0,
        ServerMessage::Handshake(Handshake {
            server_version: Bytes::from_static(b"5.5.5-10.11.19-MariaDB"),
            connection_id: 42,
            auth_plugin_data: Bytes::from_static(b"abcdefgh0123456789ab\0"),
            capabilities: caps,
            charset: 45,
            status: 2,
            auth_plugin_data_len: 21,
            auth_plugin_name: Some(Bytes::from_static(b"mysql_native_password")),
        }),
    );
    c.client(
        1,
        ClientMessage::HandshakeResponse(HandshakeResponse {
            capabilities: caps,
            max_packet_size: 1 << 24,
            charset: 45,
            username: Bytes::from_static(b"app"),
            auth_response: Bytes::from_static(&[7; 20]),
            database: Some(Bytes::from_static(b"shop")),
            auth_plugin_name: Some(Bytes::from_static(b"mysql_native_password")),
            attributes: Some(Bytes::from_static(b"\x0c_client_name\x07pymysql")),
            trailer: Bytes::new(),
        }),
    );
    c.server(
        2,
        ServerMessage::AuthSwitchRequest(AuthSwitchRequest {
            plugin: Bytes::from_static(b"client_ed25519"),
            data: Bytes::from_static(b"0123456789abcdef0123456789abcdef"),
        }),
    );
    c.client(
        3,
        ClientMessage::AuthData(AuthData {
            data: Bytes::from_static(&[9; 64]),
        }),
    );
    c.server(
        4,
        ServerMessage::AuthMoreData(AuthMoreData {
            data: Bytes::from_static(&[3]),
        }),
    );
    c.server(5, ServerMessage::Ok(OkPacket::new(0, 2)));

    // COM_QUERY with two result sets: a text result with a NULL, then an OK.
    c.client(
        0,
        ClientMessage::Command(Command::query(b"SELECT id, email FROM people; DO 1")),
    );
    c.server(
        0,
        ServerMessage::ColumnCount(ColumnCount {
            count: 2,
            metadata_follows: None,
        }),
    );
    c.server(
        1,
        ServerMessage::ColumnDefinition(column("id", column_type::LONGLONG)),
    );
    c.server(
        2,
        ServerMessage::ColumnDefinition(column("email", column_type::VAR_STRING)),
    );
    let seq = c.columns_eof(3, 2);
    c.server(
        seq,
        ServerMessage::TextRow(TextRow::from_cells([
            Some(&b"1"[..]),
            Some(&b"alice@example.com"[..]),
        ])),
    );
    c.server(
        seq + 1,
        ServerMessage::TextRow(TextRow::from_cells([Some(&b"2"[..]), None])),
    );
    c.eof(seq + 2, status::MORE_RESULTS_EXISTS | 2);
    c.server(seq + 3, ServerMessage::Ok(OkPacket::new(0, 2)));

    // A failing query.
    c.client(0, ClientMessage::Command(Command::query(b"SELEC 1")));
    c.server(
        1,
        ServerMessage::Err(ErrPacket::new(1064, b"42000", "syntax error")),
    );

    // Prepare with two parameters and the thirteen result columns.
    c.client(
        0,
        ClientMessage::Command(Command::StmtPrepare(Bytes::from_static(
            b"SELECT ... WHERE id = ? AND note = ?",
        ))),
    );
    let t = types();
    c.server(
        1,
        ServerMessage::StmtPrepareOk(StmtPrepareOk {
            statement_id: 7,
            num_columns: t.len() as u16,
            num_params: 2,
            warnings: Some(0),
            metadata_follows: None,
        }),
    );
    c.server(
        2,
        ServerMessage::ColumnDefinition(column("?", column_type::LONGLONG)),
    );
    c.server(
        3,
        ServerMessage::ColumnDefinition(column("?", column_type::VAR_STRING)),
    );
    let mut seq = c.columns_eof(4, 2);
    for (i, ty) in t.iter().enumerate() {
        c.server(
            seq,
            ServerMessage::ColumnDefinition(column(&format!("c{i}"), *ty)),
        );
        seq += 1;
    }
    c.columns_eof(seq, 2);

    // Long data for the second parameter, then execute: the value is omitted.
    let mut long = BytesMut::new();
    long.put_u8(command::STMT_SEND_LONG_DATA);
    long.put_u32_le(7);
    long.put_u16_le(1);
    long.put_slice(b"a long note");
    c.push(Dir::Client, 0, long.freeze());
    let mut exec = BytesMut::new();
    exec.put_u8(command::STMT_EXECUTE);
    exec.put_u32_le(7);
    exec.put_u8(0);
    exec.put_u32_le(1);
    exec.put_u8(0); // NULL bitmap: none NULL
    exec.put_u8(1); // types bound
    exec.put_slice(&[column_type::LONGLONG, 0, column_type::VAR_STRING, 0]);
    exec.put_u64_le(1);
    c.push(Dir::Client, 0, exec.freeze());
    c.server(
        1,
        ServerMessage::ColumnCount(ColumnCount {
            count: t.len() as u64,
            metadata_follows: None,
        }),
    );
    let mut seq = 2;
    for (i, ty) in t.iter().enumerate() {
        c.server(
            seq,
            ServerMessage::ColumnDefinition(column(&format!("c{i}"), *ty)),
        );
        seq += 1;
    }
    let seq = c.columns_eof(seq, 2);
    let cells: Vec<Option<&[u8]>> = vec![
        Some(&[1, 0, 0, 0, 0, 0, 0, 0]),
        Some(b"alice@example.com"),
        None,
        Some(&[0xea, 0x07, 11, 28, 1, 2, 3]),
        Some(&[0, 0, 0, 0, 0, 1, 2, 3]),
        Some(&[5]),
        None,
        Some(&[1, 2, 3, 4]),
        Some(&[0, 0, 128, 63]),
        Some(b"12.50"),
        Some(&[0xde, 0xad]),
        Some(&[0xea, 0x07]),
        Some(&[]),
    ];
    c.server(
        seq,
        ServerMessage::BinaryRow(BinaryRow::from_cells(t.clone(), cells)),
    );
    c.eof(seq + 1, 2);

    // Execute again without rebinding types; a cursor; fetch.
    let mut exec = BytesMut::new();
    exec.put_u8(command::STMT_EXECUTE);
    exec.put_u32_le(7);
    exec.put_u8(1); // CURSOR_TYPE_READ_ONLY
    exec.put_u32_le(1);
    exec.put_u8(0b10); // second parameter NULL
    exec.put_u8(0); // types not rebound
    exec.put_u64_le(2);
    c.push(Dir::Client, 0, exec.freeze());
    c.server(
        1,
        ServerMessage::ColumnCount(ColumnCount {
            count: t.len() as u64,
            metadata_follows: None,
        }),
    );
    let mut seq = 2;
    for (i, ty) in t.iter().enumerate() {
        c.server(
            seq,
            ServerMessage::ColumnDefinition(column(&format!("c{i}"), *ty)),
        );
        seq += 1;
    }
    if !deprecate_eof {
        c.server(
            seq,
            ServerMessage::Eof(EofPacket {
                warnings: 0,
                status: status::CURSOR_EXISTS | 2,
            }),
        );
    } else {
        let mut ok = OkPacket::new(0, status::CURSOR_EXISTS | 2);
        ok.header = 0xfe;
        c.server(seq, ServerMessage::Ok(ok));
    }
    let mut fetch = BytesMut::new();
    fetch.put_u8(command::STMT_FETCH);
    fetch.put_u32_le(7);
    fetch.put_u32_le(10);
    c.push(Dir::Client, 0, fetch.freeze());
    let nulls: Vec<Option<&[u8]>> = vec![None; t.len()];
    c.server(
        1,
        ServerMessage::BinaryRow(BinaryRow::from_cells(t.clone(), nulls)),
    );
    c.eof(2, 2);

    // Simple commands.
    for (cmd, body) in [
        (command::STMT_RESET, &[7u8, 0, 0, 0][..]),
        (command::PING, &[][..]),
        (command::INIT_DB, &b"shop"[..]),
        (command::SET_OPTION, &[1, 0][..]),
        (command::RESET_CONNECTION, &[][..]),
    ] {
        let mut p = BytesMut::new();
        p.put_u8(cmd);
        p.put_slice(body);
        c.push(Dir::Client, 0, p.freeze());
        c.server(1, ServerMessage::Ok(OkPacket::new(0, 2)));
    }
    // Field list.
    c.push(Dir::Client, 0, Bytes::from_static(b"\x04people\0"));
    let mut field = column("email", column_type::VAR_STRING);
    field.default_values = Some(Bytes::from_static(b"\xfb"));
    c.server(1, ServerMessage::ColumnDefinition(field));
    c.eof(2, 2);
    // Statistics.
    c.push(Dir::Client, 0, Bytes::from_static(b"\x09"));
    c.server(
        1,
        ServerMessage::Statistics(Bytes::from_static(b"Uptime: 5  Threads: 1")),
    );
    // LOAD DATA LOCAL INFILE.
    c.client(
        0,
        ClientMessage::Command(Command::query(b"LOAD DATA LOCAL INFILE 'x' INTO TABLE t")),
    );
    c.server(
        1,
        ServerMessage::LocalInfileRequest(LocalInfileRequest {
            filename: Bytes::from_static(b"x"),
        }),
    );
    c.push(Dir::Client, 2, Bytes::from_static(b"1,alice\n"));
    c.push(Dir::Client, 3, Bytes::new());
    c.server(4, ServerMessage::Ok(OkPacket::new(1, 2)));
    // Close needs no answer; quit ends the session.
    c.push(Dir::Client, 0, Bytes::from_static(b"\x19\x07\0\0\0"));
    c.push(Dir::Client, 0, Bytes::from_static(b"\x01"));
    c
}

fn wire(seq: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::new();
    encode_packet(&mut out, seq, payload);
    out.freeze()
}

/// Feeds every packet, cut at `cuts` (relative to each packet), and returns
/// the message names decoded in order.
/// Both directions' input buffers of one session under test.
struct Feeder {
    session: Session,
    client: BytesMut,
    server: BytesMut,
}

impl Feeder {
    fn new(session: Session) -> Self {
        Self {
            session,
            client: BytesMut::new(),
            server: BytesMut::new(),
        }
    }

    /// Feeds bytes from one side; returns each packet decoded with its event,
    /// after checking it re-encodes exactly.
    fn feed(
        &mut self,
        dir: Dir,
        bytes: &[u8],
    ) -> Result<Vec<(&'static str, Option<crate::Event>)>, DecodeError> {
        let mut out = Vec::new();
        let session = &mut self.session;
        let buf = match dir {
            Dir::Client => &mut self.client,
            Dir::Server => &mut self.server,
        };
        buf.extend_from_slice(bytes);
        loop {
            let mut again = BytesMut::new();
            let decoded = match dir {
                Dir::Client => session.decode_client(buf)?.map(|(packet, message)| {
                    message.encode_payload(&mut again);
                    (packet, message.name(), session.client_event(&message))
                }),
                Dir::Server => session.decode_server(buf)?.map(|(packet, message)| {
                    message.encode_payload(&mut again);
                    (packet, message.name(), session.server_event(&message))
                }),
            };
            let Some((packet, name, event)) = decoded else {
                return Ok(out);
            };
            assert_eq!(again, packet.payload, "{name} re-encodes");
            out.push((name, event));
        }
    }

    fn is_drained(&self) -> bool {
        self.client.is_empty() && self.server.is_empty()
    }
}

/// Feeds every packet, cut at `cuts` (relative to each packet), and returns
/// the message names decoded in order.
fn run(conversation: &Conversation, cuts: &[usize]) -> Result<Vec<&'static str>, DecodeError> {
    Ok(run_events(conversation, cuts)?
        .into_iter()
        .map(|(name, _)| name)
        .collect())
}

fn run_events(
    conversation: &Conversation,
    cuts: &[usize],
) -> Result<Vec<(&'static str, Option<crate::Event>)>, DecodeError> {
    let mut feeder = Feeder::new(Session::new(Limits::default()));
    let mut decoded = Vec::new();
    for (i, (dir, seq, payload)) in conversation.packets.iter().enumerate() {
        let bytes = wire(*seq, payload);
        let cut = cuts.get(i % cuts.len().max(1)).copied().unwrap_or(0) % (bytes.len() + 1);
        for chunk in [bytes.slice(..cut), bytes.slice(cut..)] {
            decoded.extend(feeder.feed(*dir, &chunk)?);
        }
    }
    assert!(feeder.is_drained());
    Ok(decoded)
}

#[test]
fn decodes_every_packet_kind_exactly() {
    for deprecate_eof in [false, true] {
        let c = conversation(deprecate_eof);
        let names = run(&c, &[]).unwrap();
        assert_eq!(names.len(), c.packets.len());
        for expected in [
            "HandshakeV10",
            "HandshakeResponse41",
            "AuthSwitchRequest",
            "AuthSwitchResponse",
            "AuthMoreData",
            "COM_QUERY",
            "ResultSetRow",
            "ERR",
            "COM_STMT_PREPARE_OK",
            "COM_STMT_SEND_LONG_DATA",
            "COM_STMT_EXECUTE",
            "BinaryResultSetRow",
            "COM_STMT_FETCH",
            "COM_FIELD_LIST",
            "Statistics",
            "LOCAL_INFILE_Request",
            "LocalInfileData",
            "COM_STMT_CLOSE",
            "COM_QUIT",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing (deprecate_eof {deprecate_eof}): {names:?}"
            );
        }
    }
}

#[test]
fn binary_rows_yield_typed_cells_and_nulls() {
    let row = BinaryRow::from_cells(types(), {
        let mut cells: Vec<Option<&[u8]>> = vec![None; 13];
        cells[1] = Some(b"x@example.com");
        cells[3] = Some(&[0xea, 0x07, 11, 28]);
        cells
    });
    let cells: Vec<_> = row.cells().collect();
    assert_eq!(cells[1].as_deref(), Some(&b"x@example.com"[..]));
    assert_eq!(cells[3].as_deref(), Some(&[0xea, 0x07, 11, 28][..]));
    assert_eq!(cells.iter().filter(|c| c.is_none()).count(), 11);
}

#[test]
fn events_name_statements_columns_rows_and_errors() {
    let events: Vec<_> = run_events(&conversation(true), &[])
        .unwrap()
        .into_iter()
        .filter_map(|(_, event)| event)
        .collect();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, crate::Event::Query { text } if text.starts_with("SELECT id")))
    );
    assert!(events.iter().any(|e| matches!(e, crate::Event::Columns { columns } if columns.len() == 2 && columns[1].name == "email" && columns[1].table.as_deref() == Some("people"))));
    assert!(events.iter().any(|e| matches!(e, crate::Event::Row { cells } if cells[1].as_deref() == Some(&b"alice@example.com"[..]))));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, crate::Event::Done { rows: Some(2), .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, crate::Event::Error { code, .. } if code == "42000"))
    );
    assert!(events.iter().any(|e| matches!(e, crate::Event::Execute { params, .. } if params.len() == 2 && params[1].is_none())));
}

#[test]
fn joins_packets_of_sixteen_megabytes_and_more() {
    let big = vec![b'x'; MAX_PHYSICAL_PAYLOAD + 10];
    let mut wire_bytes = BytesMut::new();
    encode_packet(&mut wire_bytes, 0, &big);
    assert_eq!(wire_bytes.len(), big.len() + 8, "two physical packets");
    let mut exact = BytesMut::new();
    encode_packet(&mut exact, 0, &big[..MAX_PHYSICAL_PAYLOAD]);
    assert_eq!(
        exact.len(),
        MAX_PHYSICAL_PAYLOAD + 8,
        "a full packet needs an empty one after it"
    );

    let mut c = conversation(true);
    c.packets.truncate(6);
    let mut query = vec![command::QUERY];
    query.extend_from_slice(&big);
    c.push(Dir::Client, 0, query);
    let names = run(&c, &[]).unwrap();
    assert_eq!(names.last(), Some(&"COM_QUERY"));
}

const MAX_PHYSICAL_PAYLOAD: usize = 0xff_ffff;

#[test]
fn refuses_oversized_packets_on_their_header() {
    let mut session = Session::new(Limits {
        max_payload_len: 1000,
        ..Limits::default()
    });
    let mut buf = BytesMut::from(&b"\xff\xff\x00\x00"[..]);
    assert!(matches!(
        session.decode_server(&mut buf),
        Err(DecodeError::TooLarge { .. })
    ));
}

#[test]
fn ssl_request_takes_both_directions_out_of_sight() {
    let c = conversation(true);
    let mut session = Session::new(Limits::default());
    let mut server = BytesMut::from(&wire(0, &c.packets[0].2)[..]);
    session.decode_server(&mut server).unwrap().unwrap();
    let mut ssl = BytesMut::new();
    ClientMessage::SslRequest(SslRequest {
        capabilities: CAPS | capability::SSL,
        max_packet_size: 1 << 24,
        charset: 45,
    })
    .encode_payload(&mut ssl);
    let mut client = BytesMut::from(&wire(1, &ssl)[..]);
    let (_, message) = session.decode_client(&mut client).unwrap().unwrap();
    assert_eq!(message.name(), "SSLRequest");
    let mut tls = BytesMut::from(&b"\x16\x03\x01\x00\x05hello"[..]);
    assert!(matches!(
        session.decode_client(&mut tls),
        Err(DecodeError::Encrypted { .. })
    ));
    let mut tls = BytesMut::from(&b"\x16\x03\x03\x00\x05hello"[..]);
    assert!(matches!(
        session.decode_server(&mut tls),
        Err(DecodeError::Encrypted { .. })
    ));
}

#[test]
fn compressed_sessions_are_refused() {
    let mut c = conversation(false);
    c.packets.truncate(6);
    let compress = |payload: &Bytes, caps_at: usize| {
        let mut p = BytesMut::from(&payload[..]);
        p[caps_at] |= capability::COMPRESS as u8;
        p.freeze()
    };
    // Capability low byte sits after version, id and scramble in the
    // handshake, first in the response.
    let version_end = c.packets[0].2.iter().position(|&b| b == 0).unwrap();
    c.packets[0].2 = compress(&c.packets[0].2, version_end + 1 + 4 + 8 + 1);
    c.packets[1].2 = compress(&c.packets[1].2, 0);
    assert!(matches!(
        run(&c, &[]),
        Err(DecodeError::Unsupported {
            reason: "compressed protocol",
            ..
        })
    ));
}

#[test]
fn execution_of_an_unknown_statement_is_an_error() {
    let mut c = conversation(true);
    c.packets.truncate(6);
    c.push(
        Dir::Client,
        0,
        Bytes::from_static(b"\x17\x63\0\0\0\0\x01\0\0\0"),
    );
    assert!(matches!(
        run(&c, &[]),
        Err(DecodeError::Malformed {
            message: "COM_STMT_EXECUTE",
            ..
        })
    ));
}

#[test]
fn unsolicited_server_packets_other_than_err_are_rejected() {
    let mut c = conversation(true);
    c.packets.truncate(6);
    c.server(0, ServerMessage::Ok(OkPacket::new(0, 2)));
    assert!(run(&c, &[]).is_err());
}

proptest! {
    #[test]
    fn any_split_of_each_packet_gives_the_same_messages(
        cuts in proptest::collection::vec(any::<usize>(), 1..40),
        deprecate_eof in any::<bool>(),
    ) {
        let c = conversation(deprecate_eof);
        prop_assert_eq!(run(&c, &cuts).unwrap(), run(&c, &[]).unwrap());
    }

    #[test]
    /// Arbitrary bytes from either side, after any prefix of a valid
    /// conversation: no panic, no loop (every packet consumes its header at
    /// least), and whatever decodes re-encodes exactly.
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600), prefix in 0usize..40) {
        let c = conversation(prefix % 2 == 0);
        let mut feeder = Feeder::new(Session::new(Limits::default()));
        for (dir, seq, payload) in c.packets.iter().take(prefix) {
            feeder.feed(*dir, &wire(*seq, payload)).unwrap();
        }
        let _ = feeder.feed(Dir::Server, &bytes);
        let _ = feeder.feed(Dir::Client, &bytes);
    }
}

/// Found by the `mysql_session` fuzz target: a packet in the place of an EOF
/// was taken for one whatever its first byte, and re-encoded as `0xFE ...`.
#[test]
fn rejects_a_non_eof_packet_where_an_eof_belongs() {
    let mut c = Conversation::new(false);
    c.client(0, ClientMessage::Command(Command::query(b"SELECT 1")));
    c.server(
        1,
        ServerMessage::ColumnCount(ColumnCount {
            count: 1,
            metadata_follows: None,
        }),
    );
    c.server(
        2,
        ServerMessage::ColumnDefinition(column("1", column_type::LONGLONG)),
    );
    c.push(Dir::Server, 3, Bytes::from_static(b"\xfc\0\0\x02\0"));
    let mut feeder = Feeder::new(Session::after_handshake(Limits::default(), CAPS));
    let mut result = Ok(Vec::new());
    for (dir, seq, payload) in &c.packets {
        result = feeder.feed(*dir, &wire(*seq, payload));
    }
    assert!(
        matches!(result, Err(DecodeError::Malformed { message: "EOF", .. })),
        "{result:?}"
    );
}

/// A real MariaDB 10.11 conversation under MARIADB_CLIENT_CACHE_METADATA,
/// recorded by a raw-socket client: COM_STMT_PREPARE of
/// `SELECT id, name, ssn, email FROM people ORDER BY id`, two
/// COM_STMT_EXECUTEs (both answered with the column count and "metadata
/// follows" 0: the server counts the prepare response as sent metadata),
/// COM_STMT_CLOSE and COM_QUIT. Chunks: direction (`C`/`S`), u32 length,
/// the bytes as they crossed the wire.
const MARIADB_CACHE_METADATA: &[u8] = include_bytes!("../../testdata/mariadb_cache_metadata.bin");

/// What the recording client and MariaDB agreed on.
const MARIADB_CACHE_CAPS: u64 = capability::CONNECT_WITH_DB
    | capability::PROTOCOL_41
    | capability::SECURE_CONNECTION
    | capability::MULTI_STATEMENTS
    | capability::MULTI_RESULTS
    | capability::PLUGIN_AUTH
    | capability::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | capability::DEPRECATE_EOF
    | capability::MARIADB_CACHE_METADATA;

fn recorded_chunks(mut bytes: &[u8]) -> Vec<(Dir, Vec<u8>)> {
    let mut chunks = Vec::new();
    while let [dir, a, b, c, d, rest @ ..] = bytes {
        let len = u32::from_le_bytes([*a, *b, *c, *d]) as usize;
        let dir = if *dir == b'C' {
            Dir::Client
        } else {
            Dir::Server
        };
        chunks.push((dir, rest[..len].to_vec()));
        bytes = &rest[len..];
    }
    chunks
}

fn feed_all(
    feeder: &mut Feeder,
    chunks: &[(Dir, Vec<u8>)],
) -> Result<Vec<(&'static str, Option<crate::Event>)>, DecodeError> {
    let mut out = Vec::new();
    for (dir, bytes) in chunks {
        out.extend(feeder.feed(*dir, bytes)?);
    }
    Ok(out)
}

#[test]
fn executions_without_metadata_use_the_prepared_columns() {
    let chunks = recorded_chunks(MARIADB_CACHE_METADATA);
    let mut feeder = Feeder::new(Session::after_handshake(
        Limits::default(),
        MARIADB_CACHE_CAPS,
    ));
    let decoded = feed_all(&mut feeder, &chunks).unwrap();
    assert!(feeder.is_drained());
    let counts: Vec<_> = decoded
        .iter()
        .filter(|(name, _)| *name == "ColumnCount")
        .collect();
    assert_eq!(counts.len(), 2, "two executions");
    for (_, event) in counts {
        let Some(crate::Event::Columns { columns }) = event else {
            panic!("a skipped-metadata column count completes the columns: {event:?}");
        };
        let names: Vec<_> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "name", "ssn", "email"]);
        assert_eq!(columns[3].table.as_deref(), Some("people"));
        assert_eq!(columns[0].format, crate::event::CellFormat::Binary);
    }
    let emails: Vec<_> = decoded
        .iter()
        .filter_map(|(_, event)| match event {
            Some(crate::Event::Row { cells }) => cells[3].clone(),
            _ => None,
        })
        .collect();
    assert_eq!(
        emails,
        [
            &b"ada.lovelace@example.com"[..],
            b"alan.turing@example.org",
            b"ada.lovelace@example.com",
            b"alan.turing@example.org"
        ]
    );
    // Every cut of the recorded stream decodes the same.
    for cut in 1..chunks[3].1.len() {
        let mut split = chunks.clone();
        let tail = split[3].1.split_off(cut);
        split.insert(4, (Dir::Server, tail));
        let mut feeder = Feeder::new(Session::after_handshake(
            Limits::default(),
            MARIADB_CACHE_CAPS,
        ));
        assert_eq!(feed_all(&mut feeder, &split).unwrap(), decoded, "cut {cut}");
    }
}

#[test]
fn resent_metadata_replaces_the_kept_columns() {
    let chunks = recorded_chunks(MARIADB_CACHE_METADATA);
    let mut feeder = Feeder::new(Session::after_handshake(
        Limits::default(),
        MARIADB_CACHE_CAPS,
    ));
    // Prepare and the first execute command, as recorded.
    feed_all(&mut feeder, &chunks[..3]).unwrap();
    // The table changed: the server resends two definitions.
    let mut c = Conversation::new(true);
    c.server(
        1,
        ServerMessage::ColumnCount(ColumnCount {
            count: 2,
            metadata_follows: Some(1),
        }),
    );
    c.server(
        2,
        ServerMessage::ColumnDefinition(column("id", column_type::LONG)),
    );
    c.server(
        3,
        ServerMessage::ColumnDefinition(column("phone", column_type::VAR_STRING)),
    );
    c.eof(4, 0x22);
    c.push(Dir::Client, 0, Bytes::copy_from_slice(&chunks[2].1[4..]));
    c.server(
        1,
        ServerMessage::ColumnCount(ColumnCount {
            count: 2,
            metadata_follows: Some(0),
        }),
    );
    let row = BinaryRow::from_cells(
        Arc::from([column_type::LONG, column_type::VAR_STRING]),
        [Some(&7_i32.to_le_bytes()[..]), Some(b"555-867-5309")],
    );
    c.server(2, ServerMessage::BinaryRow(row));
    c.eof(3, 0x22);
    let mut events = Vec::new();
    for (dir, seq, payload) in &c.packets {
        events.extend(feeder.feed(*dir, &wire(*seq, payload)).unwrap());
    }
    let columns: Vec<_> = events
        .iter()
        .filter_map(|(_, event)| match event {
            Some(crate::Event::Columns { columns }) => {
                Some(columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
            }
            _ => None,
        })
        .collect();
    assert_eq!(columns, [["id", "phone"], ["id", "phone"]]);
    assert!(events.iter().any(|(_, event)| matches!(
        event,
        Some(crate::Event::Row { cells }) if cells[1].as_deref() == Some(&b"555-867-5309"[..])
    )));
}

#[test]
fn skipped_metadata_of_a_closed_or_mismatched_statement_is_an_error() {
    let chunks = recorded_chunks(MARIADB_CACHE_METADATA);
    // A column count other than the prepared statement's.
    let mut wrong_count = chunks[..4].to_vec();
    wrong_count[3].1[4] = 3;
    // The statement closed before its execution's response.
    let mut closed = chunks[..3].to_vec();
    closed.push(chunks[6].clone());
    closed.push(chunks[3].clone());
    for case in [wrong_count, closed] {
        let mut feeder = Feeder::new(Session::after_handshake(
            Limits::default(),
            MARIADB_CACHE_CAPS,
        ));
        let result = feed_all(&mut feeder, &case);
        assert!(
            matches!(
                result,
                Err(DecodeError::Malformed {
                    message: "ColumnCount",
                    ..
                })
            ),
            "{result:?}"
        );
    }
}

/// Issue 17, item 4: a result set may be wider than a table (MariaDB
/// answers a 68,001-column SELECT), and its definitions are bounded by
/// bytes, not by a count: past `max_column_bytes` the stream is refused
/// before more definitions are kept.
#[test]
fn wide_results_are_bounded_by_the_bytes_of_their_definitions() {
    let limits = Limits {
        max_column_bytes: 4 << 20,
        ..Limits::default()
    };
    for (width, accepted) in [(5_000, true), (100_000, false)] {
        let mut feeder = Feeder::new(Session::after_handshake(limits, CAPS));
        let mut query = vec![command::QUERY];
        query.extend_from_slice(b"SELECT ...");
        feeder.feed(Dir::Client, &wire(0, &query)).unwrap();
        let mut count = BytesMut::new();
        ServerMessage::ColumnCount(ColumnCount {
            count: width,
            metadata_follows: None,
        })
        .encode_payload(&mut count);
        feeder.feed(Dir::Server, &wire(1, &count)).unwrap();
        let mut result = Ok(());
        for i in 0..width {
            let mut definition = BytesMut::new();
            ServerMessage::ColumnDefinition(column(&format!("c{i}"), 3))
                .encode_payload(&mut definition);
            if let Err(error) = feeder.feed(Dir::Server, &wire(2, &definition)) {
                result = Err(error);
                break;
            }
        }
        assert_eq!(result.is_ok(), accepted, "{width}: {result:?}");
        if accepted {
            assert_eq!(feeder.session.columns().len(), 5_000);
        } else {
            assert!(feeder.session.columns().len() < 50_000);
        }
    }
}

/// Issue 17, item 2: under CLIENT_QUERY_ATTRIBUTES a COM_STMT_EXECUTE of a
/// statement with parameters carries their count and a name per bound type
/// even without PARAMETER_COUNT_AVAILABLE. Bytes as mysql-connector-python
/// 9 (pure Python) sent them to MySQL 9.7 for `SELECT ? + 1, ?` with
/// (41, 'x'), and as it sends one query attribute `p` = 7 after them.
#[test]
fn executions_with_query_attributes_read_their_count_and_names() {
    use super::client::{Command, StatementParams};
    let caps = CAPS | capability::QUERY_ATTRIBUTES;
    let two = || {
        Some(StatementParams {
            count: 2,
            ..StatementParams::default()
        })
    };
    let captured: &[u8] = b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\
        \x02\x00\x01\x01\x80\x00\xfe\x00\x00\x29\x01x";
    let with_attribute: &[u8] = b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\
        \x03\x00\x01\x01\x80\x00\xfe\x00\x00\x08\x00\x01p\x29\x01x\x07\x00\x00\x00\x00\x00\x00\x00";
    for (bytes, params) in [
        (captured, vec![Some(&b")"[..]), Some(&b"x"[..])]),
        (
            with_attribute,
            vec![
                Some(&b")"[..]),
                Some(&b"x"[..]),
                Some(&[7, 0, 0, 0, 0, 0, 0, 0][..]),
            ],
        ),
    ] {
        let mut r = crate::reader::Reader::new(Bytes::copy_from_slice(bytes));
        let Command::StmtExecute(execute) = Command::parse(&mut r, caps, |_| two()).unwrap() else {
            panic!("not an execution");
        };
        let got: Vec<Option<&[u8]>> = execute.params.iter().map(|p| p.as_deref()).collect();
        assert_eq!(got, params);
        let mut again = BytesMut::new();
        ClientMessage::Command(Command::StmtExecute(execute)).encode_payload(&mut again);
        assert_eq!(&again[..], bytes);
    }
    // Without the capability the same statement's values follow at once.
    let plain: &[u8] = b"\x17\x01\x00\x00\x00\x00\x01\x00\x00\x00\
        \x00\x01\x01\x80\xfe\x00\x29\x01x";
    let mut r = crate::reader::Reader::new(Bytes::copy_from_slice(plain));
    assert!(Command::parse(&mut r, CAPS, |_| two()).is_ok());
}
