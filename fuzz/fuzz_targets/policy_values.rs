//! Server bytes as result cells of any type, through hoop-proxy's policy pipeline: the
//! PostgreSQL binary decoders (arrays, records, ranges, multiranges, numeric, tsvector,
//! ...) and the renderings of MySQL's binary values, on hostile values.
//!
//! Input layout: byte 0 picks the protocol (bit 0: PostgreSQL or MySQL) and the format
//! (bit 1: text or binary); bytes 1-4 the column's type (a PostgreSQL OID, big-endian,
//! folded onto the built-in range; MySQL uses byte 1); the rest is the cell. Invariants:
//! nothing panics; a rewritten PostgreSQL binary cell parses when read again (the
//! policy would null a cell it cannot read). Masking it again may find more: a label's
//! `[` and `]` are word boundaries the text beside them did not have (`919::9W@M.MK`:
//! the email is masked, and `919::` before the label then reads as an IPv6 address the
//! input did not hold), so masking is not idempotent and the target does not ask it
//! to be. That no detected value survives is the masker's own leak check, fuzzed by
//! `masking_policy`.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use hoop_proxy::pipeline::{Pipeline, ServerAction, SessionInfo};
use hoop_proxy::policy::PolicyPipeline;
use hoop_wire::event::{CellFormat, Column, Event};
use libfuzzer_sys::fuzz_target;

fn pipeline() -> &'static PolicyPipeline {
    static PIPELINE: OnceLock<PolicyPipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| PolicyPipeline::from_json("{}").expect("the default policy"))
}

fn row(
    hook: &mut dyn hoop_proxy::pipeline::SessionHook,
    cell: &[u8],
) -> (ServerAction, Option<Bytes>) {
    let mut event = Event::Row {
        cells: vec![Some(Bytes::copy_from_slice(cell))],
    };
    let action = hook.server_event(&mut event);
    let Event::Row { mut cells } = event else {
        unreachable!("a row stays a row")
    };
    (action, cells.pop().flatten())
}

fuzz_target!(|input: &[u8]| {
    if input.len() < 5 {
        return;
    }
    let postgres = input[0] & 1 == 0;
    let format = if input[0] & 2 == 0 {
        CellFormat::Binary
    } else {
        CellFormat::Text
    };
    let type_id = if postgres {
        u32::from_be_bytes([input[1], input[2], input[3], input[4]]) % 8192
    } else {
        u32::from(input[1])
    };
    let cell = &input[5..];
    let mut hook = pipeline().open(&SessionInfo {
        protocol: if postgres { "postgres" } else { "mysql" },
        peer: "127.0.0.1:1".parse().expect("an address"),
        user: "fuzz".to_owned(),
        database: None,
    });
    let mut columns = Event::Columns {
        columns: vec![Column {
            name: "value".to_owned(),
            table: None,
            table_id: None,
            type_id,
            format,
        }],
    };
    hook.server_event(&mut columns);
    let (action, masked) = row(hook.as_mut(), cell);
    if postgres && format == CellFormat::Binary && action == ServerAction::Rewritten {
        if let Some(masked) = masked {
            let (_, again) = row(hook.as_mut(), &masked);
            assert!(again.is_some(), "masked output does not parse");
        }
    }
});
