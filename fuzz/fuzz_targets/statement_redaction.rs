//! Arbitrary text through `redact_credentials` in every dialect, and the default policy's
//! `mask_text`.
//!
//! Input layout: the first byte picks the dialect; the rest, read as UTF-8 (lossily), is
//! the statement. Invariants: nothing panics; a borrowed answer is the input itself; the
//! answer grows by at most one marker per marker it holds (replacements only shrink or
//! swap text for markers); `mask_text` of the answer does not panic either.

#![no_main]

use std::borrow::Cow;
use std::cell::RefCell;

use hoop_masking::{CompiledPolicy, Dialect, REDACTED_PASSWORD, redact_credentials};
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
    let text = String::from_utf8_lossy(rest);
    let out = redact_credentials(&text, dialect);
    if let Cow::Borrowed(b) = &out {
        assert_eq!(*b, &*text);
    }
    let markers =
        out.matches(REDACTED_PASSWORD).count() + out.matches("[REDACTED:PASSWORD]").count();
    assert!(out.len() <= text.len() + markers * REDACTED_PASSWORD.len());
    MASKER.with(|m| {
        let _ = m.borrow_mut().mask_text(&out);
    });
});
