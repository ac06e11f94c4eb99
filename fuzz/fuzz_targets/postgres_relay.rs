//! Fuzzes the PostgreSQL relay codec of `hoop-proxy` (what a session runs
//! after its handshake) under hoop's policy pipeline: arbitrary client and
//! server messages, interleaved, through framing, statement judging,
//! refusals kept in step, row and notice masking and COPY.
//!
//! ```text
//! byte 0   bit 0: the guarded policy (guardrails, output rules, a column
//!          rule) instead of the default one
//! bytes 1..  records, see relay_common.rs
//! ```
//!
//! Invariants: no panic; the codec consumes every complete message (at most
//! one partial message is left); output within a constant factor of input.
//! Seeds: `fuzz/seed_relay.py` (the captures' conversations after startup).
#![no_main]

#[path = "relay_common.rs"]
mod common;

use hoop_proxy::fuzzing::PostgresRelay;
use hoop_wire::postgres::Limits;
use libfuzzer_sys::fuzz_target;

/// Small enough for the "too large" paths; above every message of the seeds.
const LIMITS: Limits = Limits {
    max_message_len: 1 << 16,
    max_startup_len: 10_000,
};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, records)) = data.split_first() else {
        return;
    };
    let mut hook = common::hook("postgres", flags & 1 != 0);
    let mut relay = PostgresRelay::new(LIMITS, hook.as_mut());
    common::run(&mut relay, records, LIMITS.max_message_len + 5);
});
