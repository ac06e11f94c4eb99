//! Fuzzes the MySQL session's server direction from each state a server
//! packet can arrive in.
//!
//! ```text
//! byte 0   state: 0 greeting, 1 authentication, 2 COM_QUERY, 3 COM_STMT_PREPARE,
//!          4 COM_STMT_EXECUTE (binary rows of every type), 5 COM_FIELD_LIST,
//!          6 COM_STATISTICS, 7 COM_PING
//! byte 1   capability flags (see mysql_common::capabilities)
//! bytes 2.. server bytes
//! ```
//!
//! Invariants: no panic, progress on every call, packets contiguous and
//! consuming exactly their bytes, exact re-encoding, sticky errors.
#![no_main]

// Each MySQL target uses its own part of the shared prefixes.
#[allow(dead_code)]
#[path = "mysql_common.rs"]
mod common;

use bytes::{Bytes, BytesMut};
use hoop_wire::mysql::{ClientMessage, Command, Session, encode_packet};
use libfuzzer_sys::fuzz_target;

fn command(session: &mut Session, command: Command) {
    let mut payload = BytesMut::new();
    ClientMessage::Command(command).encode_payload(&mut payload);
    let mut wire = BytesMut::new();
    encode_packet(&mut wire, 0, &payload);
    let _ = session.decode_client(&mut wire);
}

fuzz_target!(|data: &[u8]| {
    let [state, flags, bytes @ ..] = data else {
        return;
    };
    let caps = common::capabilities(*flags);
    let mut session = Session::new(common::limits());
    if *state % 8 != 0 {
        common::login(&mut session, caps);
    }
    if *state % 8 >= 2 {
        session = Session::after_handshake(common::limits(), caps);
    }
    match *state % 8 {
        2 => command(&mut session, Command::query(b"SELECT 1")),
        3 => command(
            &mut session,
            Command::StmtPrepare(Bytes::from_static(b"SELECT ?")),
        ),
        4 => common::execute_pending(&mut session, caps),
        5 => command(
            &mut session,
            Command::FieldList {
                table: Bytes::from_static(b"t"),
                wildcard: Bytes::new(),
            },
        ),
        6 => command(&mut session, Command::Statistics),
        7 => command(&mut session, Command::Ping),
        _ => {}
    }
    let mut buf = BytesMut::from(bytes);
    let mut next = None;
    if let Some(error) = common::drain(&mut session, &mut buf, false, &mut next) {
        buf.extend_from_slice(b"\x01\0\0\0\xfe");
        assert_eq!(
            session.decode_server(&mut buf).err(),
            Some(error),
            "errors are sticky"
        );
    }
});
