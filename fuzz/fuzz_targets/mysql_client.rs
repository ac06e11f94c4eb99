//! Fuzzes the MySQL session's client direction: the handshake response and
//! authentication data after a greeting, or commands (with a prepared
//! statement to execute) after login.
//!
//! ```text
//! byte 0   state: even = after the server's greeting, odd = command phase with
//!          statement 1 prepared (two parameters)
//! byte 1   capability flags (see mysql_common::capabilities)
//! bytes 2.. client bytes
//! ```
//!
//! Invariants as for `mysql_server`.
#![no_main]

// Each MySQL target uses its own part of the shared prefixes.
#[allow(dead_code)]
#[path = "mysql_common.rs"]
mod common;

use bytes::BytesMut;
use hoop_wire::mysql::Session;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [state, flags, bytes @ ..] = data else {
        return;
    };
    let caps = common::capabilities(*flags);
    let mut session = if state % 2 == 0 {
        let mut session = Session::new(common::limits());
        common::greeting(&mut session, caps);
        session
    } else {
        let mut session = Session::after_handshake(common::limits(), caps);
        common::prepare(&mut session, caps);
        session
    };
    let mut buf = BytesMut::from(bytes);
    let mut next = None;
    if let Some(error) = common::drain(&mut session, &mut buf, true, &mut next) {
        buf.extend_from_slice(b"\x01\0\0\0\x0e");
        assert_eq!(
            session.decode_client(&mut buf).err(),
            Some(error),
            "errors are sticky"
        );
    }
});
