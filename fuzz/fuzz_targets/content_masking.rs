//! Fuzzes the masking of the event kinds beyond rows (`hoop_masking`'s
//! `mask_json`, `mask_stream`, `mask_document`) on arbitrary bytes.
//!
//! ```text
//! byte 0   bit 0: a policy with field rules and max_cell_bytes 64 (long
//!          values take the whole-value rule, long lines go in pieces)
//!          instead of the default one
//! bytes 1..  the body; for the stream, cut into chunks at each 0xFF byte
//! ```
//!
//! Invariants: no panic; a JSON body's output is at most a constant factor
//! of its input, and a body that is valid JSON stays valid JSON; the stream
//! holds back at most `max_cell_bytes` plus a piece and a chunk, and releases
//! everything at its end; a document built from valid JSON is masked.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use hoop_masking::{CellOutcome, CompiledPolicy, Policy, TextStream};
use hoop_wire::event::{Document, Value};
use libfuzzer_sys::fuzz_target;

const RULES: &str = r#"{"masking": {
  "max_cell_bytes": 64,
  "fields": [
    {"paths": ["*.ssn", "$.card"], "transform": {"type": "null"}},
    {"paths": ["note*"], "transform": {"type": "mask", "keep_last": 2}},
    {"paths": ["public"], "action": "exempt"}
  ]
}}"#;

fn policy(rules: bool) -> &'static CompiledPolicy {
    static POLICIES: OnceLock<[CompiledPolicy; 2]> = OnceLock::new();
    let policies = POLICIES.get_or_init(|| {
        let compile = |json| Policy::from_json(json).and_then(|p| p.compile());
        [
            compile("{}").expect("the default policy"),
            compile(RULES).expect("the rules policy"),
        ]
    });
    &policies[usize::from(rules)]
}

/// A document from a JSON value (serde_json bounds its depth at 128).
fn value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => Value::Number {
            type_id: 1,
            text: n.to_string(),
        },
        serde_json::Value::String(s) => Value::Text(Bytes::from(s)),
        serde_json::Value::Array(items) => Value::Array(items.into_iter().map(value).collect()),
        serde_json::Value::Object(fields) => Value::Document(Document {
            fields: fields.into_iter().map(|(k, v)| (k, value(v))).collect(),
        }),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let rules = flags & 1 != 0;
    let policy = policy(rules);
    let mut masker = policy.masker();

    let mut out = Vec::new();
    let outcome = masker.mask_json(body, &mut out);
    assert_ne!(outcome, CellOutcome::Null);
    assert!(outcome == CellOutcome::Replaced || out.is_empty());
    assert!(
        out.len() <= 64 * body.len() + 64,
        "{} out for {}",
        out.len(),
        body.len()
    );
    if let Ok(parsed) = serde_json::from_slice::<serde_json::Value>(body) {
        if outcome == CellOutcome::Replaced {
            serde_json::from_slice::<serde_json::Value>(&out).expect("valid JSON stays valid");
        }
        let mut document = match value(parsed) {
            Value::Document(d) => d,
            other => Document {
                fields: vec![("value".to_owned(), other)],
            },
        };
        masker.mask_document(&mut document);
    }

    let max_cell_bytes = if rules { 64 } else { 1 << 20 };
    let mut stream = TextStream::new();
    let mut released = Vec::new();
    for chunk in body.split(|&b| b == 0xFF) {
        masker.mask_stream(&mut stream, chunk, false, &mut released);
        assert!(stream.pending() <= max_cell_bytes + 64 * 1024 + chunk.len());
    }
    masker.mask_stream(&mut stream, b"", true, &mut released);
    assert_eq!(stream.pending(), 0);
});
