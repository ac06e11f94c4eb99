//! Shared by the relay targets: the session hooks (hoop's policy pipeline) and
//! the loop that feeds a relay codec records of client and server bytes, as a
//! session's relay would, checking that it neither panics nor stalls nor
//! multiplies what it forwards.
//!
//! ```text
//! records: Byte1 header (bit 7: 0 client, 1 server; bits 0-6: length n)
//!          then n bytes from that peer
//! ```

use std::sync::OnceLock;

use bytes::BytesMut;
use hoop_proxy::pipeline::{Pipeline, SessionHook, SessionInfo};
use hoop_proxy::policy::PolicyPipeline;
use hoop_proxy::relay::RelayCodec;

/// Guardrails that refuse statements (in place, keeping the protocol in step)
/// and results, and a column rule, on top of the default masking.
const GUARDED: &str = r#"{
  "masking": {"columns": [{"columns": ["*.secret"]}]},
  "guardrails": {
    "input": [
      {"type": "deny_words_list", "words": ["pg_sleep", "benchmark"], "check_parameters": true},
      {"type": "deny_statements", "statements": ["drop", "truncate"]},
      {"type": "deny_without_where", "statements": ["update", "delete"]},
      {"type": "deny_multiple_statements"}
    ],
    "output": [{"type": "deny_words_list", "words": ["forbidden"]}]
  }
}"#;

/// The default policy (`{}`) or the guarded one, built once.
fn pipeline(guarded: bool) -> &'static PolicyPipeline {
    static PIPELINES: OnceLock<[PolicyPipeline; 2]> = OnceLock::new();
    let pipelines = PIPELINES.get_or_init(|| {
        [
            PolicyPipeline::from_json("{}").expect("the default policy"),
            PolicyPipeline::from_json(GUARDED).expect("the guarded policy"),
        ]
    });
    &pipelines[usize::from(guarded)]
}

/// A session hook of the chosen policy.
pub fn hook(protocol: &'static str, guarded: bool) -> Box<dyn SessionHook> {
    pipeline(guarded).open(&SessionInfo {
        protocol,
        peer: "127.0.0.1:1".parse().expect("an address"),
        user: "fuzz".to_owned(),
        database: None,
    })
}

/// What a relay may send per byte received (a refusal's error message
/// answers a statement of a few bytes; a label replaces a short value) ...
const OUTPUT_PER_BYTE: usize = 32;
/// ... and per record, on top.
const OUTPUT_PER_RECORD: usize = 4096;

/// Feeds the records to `codec`. Stops at the first error, as the session
/// would end. Asserts, after each record, that the codec left at most one
/// incomplete message (`max_partial` bytes) unconsumed, and that its output
/// stays within a constant factor of its input.
pub fn run<C: RelayCodec>(codec: &mut C, mut records: &[u8], max_partial: usize) {
    let (mut client, mut server) = (BytesMut::new(), BytesMut::new());
    let (mut to_server, mut to_client) = (Vec::new(), Vec::new());
    let (mut fed, mut calls) = (0usize, 0usize);
    while let [header, tail @ ..] = records {
        let len = usize::from(header & 0x7f).min(tail.len());
        let (chunk, tail) = tail.split_at(len);
        records = tail;
        fed += chunk.len();
        calls += 1;
        let left = if header & 0x80 == 0 {
            client.extend_from_slice(chunk);
            let result = codec.client_bytes(&mut client, &mut to_server);
            codec.client_replies(&mut to_client);
            result.map(|()| client.len())
        } else {
            server.extend_from_slice(chunk);
            codec
                .server_bytes(&mut server, &mut to_client)
                .map(|()| server.len())
        };
        let Ok(left) = left else {
            return;
        };
        assert!(
            left <= max_partial,
            "{left} bytes left unconsumed, more than one message"
        );
        let sent = to_server.len() + to_client.len();
        assert!(
            sent <= OUTPUT_PER_BYTE * fed + OUTPUT_PER_RECORD * calls,
            "{sent} bytes out for {fed} in"
        );
    }
    let _ = codec.closed(true, client.len());
    let _ = codec.closed(false, server.len());
}
