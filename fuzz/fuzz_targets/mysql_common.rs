//! Shared by the MySQL fuzz targets: canned conversation prefixes that bring a
//! `Session` into each state the targets fuzz from, and the invariants every
//! decoded packet must keep.

use bytes::{Bytes, BytesMut};
use hoop_wire::DecodeError;
use hoop_wire::mysql::{
    ClientMessage, ColumnDefinition, Command, EofPacket, Handshake, HandshakeResponse, Limits,
    Packet, ServerMessage, Session, StmtPrepareOk, capability, column_type, encode_packet,
};

/// Small enough that the "too large" paths are reachable, large enough for
/// every packet of the seed captures.
pub fn limits() -> Limits {
    Limits {
        max_payload_len: 1 << 16,
        max_columns: 64,
        max_column_bytes: 1 << 16,
        max_statements: 16,
    }
}

/// Capabilities chosen by a fuzz byte: the flags that change packet layouts.
pub fn capabilities(flags: u8) -> u64 {
    let mut caps = capability::PROTOCOL_41
        | capability::SECURE_CONNECTION
        | capability::PLUGIN_AUTH
        | capability::PLUGIN_AUTH_LENENC_CLIENT_DATA
        | capability::CONNECT_WITH_DB
        | capability::MULTI_RESULTS
        | capability::LOCAL_FILES;
    for (bit, flag) in [
        (0, capability::DEPRECATE_EOF),
        (1, capability::QUERY_ATTRIBUTES),
        (2, capability::MARIADB_EXTENDED_METADATA),
        (3, capability::MARIADB_CACHE_METADATA),
        (4, capability::OPTIONAL_RESULTSET_METADATA),
        (5, capability::CONNECT_ATTRS),
        (6, capability::SESSION_TRACK),
    ] {
        if flags & (1 << bit) != 0 {
            caps |= flag;
        }
    }
    if caps >> 32 == 0 {
        caps |= capability::LONG_PASSWORD;
    }
    caps
}

fn server_packet(session: &mut Session, seq: u8, message: &ServerMessage) {
    let mut payload = BytesMut::new();
    message.encode_payload(&mut payload);
    let mut wire = BytesMut::new();
    encode_packet(&mut wire, seq, &payload);
    // The canned prefix is valid by construction.
    let _ = session.decode_server(&mut wire);
}

fn client_packet(session: &mut Session, seq: u8, message: &ClientMessage) {
    let mut payload = BytesMut::new();
    message.encode_payload(&mut payload);
    let mut wire = BytesMut::new();
    encode_packet(&mut wire, seq, &payload);
    let _ = session.decode_client(&mut wire);
}

pub fn greeting(session: &mut Session, caps: u64) {
    server_packet(
        session,
        0,
        &ServerMessage::Handshake(Handshake {
            server_version: Bytes::from_static(b"8.0.40"),
            connection_id: 1,
            auth_plugin_data: Bytes::from_static(b"abcdefgh0123456789ab\0"),
            capabilities: caps,
            charset: 255,
            status: 2,
            auth_plugin_data_len: 21,
            auth_plugin_name: Some(Bytes::from_static(b"caching_sha2_password")),
        }),
    );
}

pub fn login(session: &mut Session, caps: u64) {
    greeting(session, caps);
    client_packet(
        session,
        1,
        &ClientMessage::HandshakeResponse(HandshakeResponse {
            capabilities: caps,
            max_packet_size: 1 << 24,
            charset: 255,
            username: Bytes::from_static(b"app"),
            auth_response: Bytes::from_static(&[1; 32]),
            database: Some(Bytes::from_static(b"db")),
            auth_plugin_name: Some(Bytes::from_static(b"caching_sha2_password")),
            attributes: (caps & capability::CONNECT_ATTRS != 0).then(Bytes::new),
            trailer: Bytes::new(),
        }),
    );
}

fn column(column_type: u8) -> ColumnDefinition {
    ColumnDefinition {
        catalog: Bytes::from_static(b"def"),
        schema: Bytes::new(),
        table: Bytes::new(),
        org_table: Bytes::new(),
        name: Bytes::from_static(b"c"),
        org_name: Bytes::new(),
        extended_metadata: None,
        charset: 33,
        column_length: 10,
        column_type,
        flags: 0,
        decimals: 0,
        reserved: 0,
        default_values: None,
    }
}

/// Every column type, so binary rows reach every value layout.
pub const TYPES: [u8; 16] = [
    column_type::TINY,
    column_type::SHORT,
    column_type::LONG,
    column_type::FLOAT,
    column_type::DOUBLE,
    column_type::NULL,
    column_type::TIMESTAMP,
    column_type::LONGLONG,
    column_type::INT24,
    column_type::DATE,
    column_type::TIME,
    column_type::DATETIME,
    column_type::YEAR,
    column_type::VAR_STRING,
    column_type::NEWDECIMAL,
    column_type::BLOB,
];

/// Prepares statement 1 (two parameters, the [`TYPES`] columns) in a session
/// already in the command phase.
pub fn prepare(session: &mut Session, caps: u64) {
    client_packet(
        session,
        0,
        &ClientMessage::Command(Command::StmtPrepare(Bytes::from_static(b"SELECT ?, ?"))),
    );
    server_packet(
        session,
        1,
        &ServerMessage::StmtPrepareOk(StmtPrepareOk {
            statement_id: 1,
            num_columns: TYPES.len() as u16,
            num_params: 2,
            warnings: Some(0),
            metadata_follows: None,
        }),
    );
    let mut seq = 2;
    let eof = caps & capability::DEPRECATE_EOF == 0;
    for ty in [column_type::LONGLONG, column_type::VAR_STRING] {
        server_packet(session, seq, &ServerMessage::ColumnDefinition(column(ty)));
        seq += 1;
    }
    if eof {
        server_packet(
            session,
            seq,
            &ServerMessage::Eof(EofPacket {
                warnings: 0,
                status: 2,
            }),
        );
        seq += 1;
    }
    for ty in TYPES {
        server_packet(session, seq, &ServerMessage::ColumnDefinition(column(ty)));
        seq += 1;
    }
    if eof {
        server_packet(
            session,
            seq,
            &ServerMessage::Eof(EofPacket {
                warnings: 0,
                status: 2,
            }),
        );
    }
}

/// Brings the server side to the start of an executed statement's result.
pub fn execute_pending(session: &mut Session, caps: u64) {
    prepare(session, caps);
    // COM_STMT_EXECUTE of statement 1: no NULLs, types bound, two values.
    let mut exec = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    exec.extend_from_slice(&[column_type::LONGLONG, 0, column_type::VAR_STRING, 0]);
    exec.extend_from_slice(&7u64.to_le_bytes());
    exec.extend_from_slice(b"\x01x");
    let mut wire = BytesMut::new();
    encode_packet(&mut wire, 0, &exec);
    let _ = session.decode_client(&mut wire);
}

/// Checks one decoded packet: it consumed exactly its own bytes, which start
/// where the previous packet ended, and its payload re-encodes exactly.
fn check_packet(
    packet: &Packet,
    consumed: usize,
    next_offset: &mut Option<u64>,
    payload: BytesMut,
) {
    assert_eq!(
        packet.bytes.len(),
        consumed,
        "a packet consumed other bytes than its own"
    );
    assert!(consumed >= 4, "a packet without a header");
    if let Some(expected) = *next_offset {
        assert_eq!(packet.offset, expected, "packets are not contiguous");
    }
    *next_offset = Some(packet.offset + consumed as u64);
    assert_eq!(
        payload, packet.payload,
        "payload does not re-encode exactly"
    );
}

/// Decodes everything in `buf` from one side, checking every packet; returns
/// the error that ended it, if any.
pub fn drain(
    session: &mut Session,
    buf: &mut BytesMut,
    from_client: bool,
    next_offset: &mut Option<u64>,
) -> Option<DecodeError> {
    loop {
        let before = buf.len();
        let result = if from_client {
            session.decode_client(buf).map(|o| {
                o.map(|(p, m)| {
                    let mut payload = BytesMut::new();
                    m.encode_payload(&mut payload);
                    (p, payload)
                })
            })
        } else {
            session
                .decode_server(buf)
                .map(|o| {
                    o.map(|(p, m)| {
                        let mut payload = BytesMut::new();
                        m.encode_payload(&mut payload);
                        (p, payload, m)
                    })
                })
                .map(|o| {
                    o.map(|(p, payload, m)| {
                        // The event mapping runs on every packet too (columns
                        // completed from kept definitions, rows, completions).
                        let _ = session.server_event(&m);
                        (p, payload)
                    })
                })
        };
        match result {
            Ok(Some((packet, payload))) => {
                check_packet(&packet, before - buf.len(), next_offset, payload);
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "need-more consumed bytes");
                return None;
            }
            Err(error) => return Some(error),
        }
    }
}
