//! Fuzzes whole MySQL conversations: both directions interleaved, as a proxy
//! or a capture decoder feeds them.
//!
//! ```text
//! records: Byte1 header (bit 7: 0 client, 1 server; bits 0-6: length n)
//!          then n bytes for that side
//! ```
//!
//! The seeds are the TCP streams of `testdata/captures/mysql` in capture
//! order. Invariants as for `mysql_server`, per direction.
#![no_main]

// Each MySQL target uses its own part of the shared prefixes.
#[allow(dead_code)]
#[path = "mysql_common.rs"]
mod common;

use bytes::BytesMut;
use hoop_wire::mysql::Session;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut session = Session::new(common::limits());
    let (mut client, mut server) = (BytesMut::new(), BytesMut::new());
    let (mut client_next, mut server_next) = (None, None);
    let (mut client_done, mut server_done) = (false, false);
    let mut rest = data;
    while let [header, tail @ ..] = rest {
        let len = usize::from(header & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        rest = tail;
        if header & 0x80 == 0 {
            if client_done {
                continue;
            }
            client.extend_from_slice(chunk);
            client_done =
                common::drain(&mut session, &mut client, true, &mut client_next).is_some();
        } else {
            if server_done {
                continue;
            }
            server.extend_from_slice(chunk);
            server_done =
                common::drain(&mut session, &mut server, false, &mut server_next).is_some();
        }
    }
});
