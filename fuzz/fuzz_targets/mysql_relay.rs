//! Fuzzes the MySQL relay codec of `hoop-proxy` (what a session runs in the
//! command phase) under hoop's policy pipeline: arbitrary commands and
//! responses, interleaved, through statement judging, refusals answered in
//! order, result masking (text and binary rows), LOCAL INFILE handling and
//! MariaDB's metadata cache.
//!
//! ```text
//! byte 0   capability flags (mysql_common.rs, bits 0-6); bit 7: the
//!          guarded policy instead of the default one
//! byte 1   bit 0: the connection allows LOCAL INFILE
//! bytes 2..  records, see relay_common.rs
//! ```
//!
//! Invariants as for `postgres_relay`. Seeds: `fuzz/seed_relay.py` (the
//! captures' conversations from their first command).
#![no_main]

#[path = "relay_common.rs"]
mod common;
// Only the limits and capability flags are used here.
#[allow(dead_code)]
#[path = "mysql_common.rs"]
mod mysql;

use hoop_proxy::fuzzing::MysqlRelay;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [flags, options, records @ ..] = data else {
        return;
    };
    let limits = mysql::limits();
    let mut hook = common::hook("mysql", flags & 0x80 != 0);
    let mut relay = MysqlRelay::new(
        limits,
        mysql::capabilities(*flags),
        options & 1 != 0,
        hook.as_mut(),
    );
    common::run(&mut relay, records, limits.max_payload_len + 4);
});
