//! Arbitrary text through `redact_credentials` and `redact_statement` in every dialect, the
//! statement's `Secrets::scrub` over arbitrary messages, and the default policy's
//! `mask_text`.
//!
//! Input layout: the first byte picks the dialect; the rest, read as UTF-8 (lossily), is
//! the statement, then, after the first NUL, a server message about it (without a NUL, the
//! statement is the message too, as a syntax error quoting all of it). Invariants: nothing
//! panics; a borrowed answer is the input itself; the answer grows by at most one marker
//! per marker it holds (replacements only shrink or swap text for markers);
//! `redact_statement` records the same text as `redact_credentials` and finds no secrets
//! in a statement left as it was; a scrubbed message left borrowed is the message itself;
//! `mask_text` of the answer does not panic either.

#![no_main]

use std::borrow::Cow;
use std::cell::RefCell;

use hoop_masking::{
    CompiledPolicy, Dialect, REDACTED_PASSWORD, redact_credentials, redact_statement,
};
use libfuzzer_sys::fuzz_target;

thread_local! {
    static MASKER: RefCell<hoop_masking::CellMasker> = RefCell::new(CompiledPolicy::default().masker());
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let dialect = match first % 5 {
        0 => Dialect::PostgreSql,
        1 => Dialect::MySql,
        2 => Dialect::MsSql,
        3 => Dialect::Sqlite,
        _ => Dialect::Generic,
    };
    let input = String::from_utf8_lossy(rest);
    let (text, message) = input.split_once('\0').unwrap_or((&input, &input));
    let out = redact_credentials(text, dialect);
    if let Cow::Borrowed(b) = &out {
        assert_eq!(*b, text);
    }
    let markers =
        out.matches(REDACTED_PASSWORD).count() + out.matches("[REDACTED:PASSWORD]").count();
    assert!(out.len() <= text.len() + markers * REDACTED_PASSWORD.len());

    let redacted = redact_statement(text, dialect);
    assert_eq!(redacted.text, out);
    if matches!(redacted.text, Cow::Borrowed(_)) {
        assert!(redacted.secrets.is_empty());
    }
    let scrubbed = redacted.secrets.scrub(message);
    if let Cow::Borrowed(b) = &scrubbed {
        assert_eq!(*b, message);
    }
    let _ = redacted.secrets.scrub(&out);

    MASKER.with(|m| {
        let _ = m.borrow_mut().mask_text(&out);
    });
});
