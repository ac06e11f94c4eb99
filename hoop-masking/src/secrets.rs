//! Credential values taken out of a statement, hidden again wherever other text about the
//! statement quotes them.
//!
//! A server's error message often quotes the statement it rejects, and with it a password
//! the statement's record hides:
//!
//! ```text
//! ALTER USER PASSWORD 'hunter2'                   PostgreSQL: syntax error at or near "'hunter2'"
//! SET password_encryption = 'hunter2'             PostgreSQL: invalid value for parameter "password_encryption": "hunter2"
//! ALTER USER IDENTIFIED BY 'hunter2'              MariaDB:    ... to use near 'BY 'hunter2'' at line 1
//! ALTER USER IDENTIFIED BY '<90 characters>'      MariaDB:    ... to use near 'BY '<the first 77>...' at line 1
//! ```
//!
//! [`crate::redact_statement`] returns the values it replaced as [`Secrets`];
//! [`Secrets::scrub`] replaces them in such a message with `[REDACTED:PASSWORD]`, so the
//! last example is recorded as `near 'BY '[REDACTED:PASSWORD]...' at line 1`.

use std::borrow::Cow;

use memchr::{memchr_iter, memmem};

use crate::lexer::Dialect;
use crate::literal::{bit_bytes, hex_bytes, read_string, unicode_escapes};
use crate::statement::REDACTED_INNER;

/// How a server reads a credential literal's text, for the form it may quote back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// A quoted string: quotes doubled, and backslash escapes where they apply
    /// (PostgreSQL's `E'...'` escapes, which it also reads in plain strings with
    /// `standard_conforming_strings` off, when `postgres`; MySQL's otherwise).
    Quoted { postgres: bool },
    /// PostgreSQL's `U&'...'`, with its escape character.
    Unicode(char),
    /// Hex digits: `X'...'`, `0x...`.
    Hex,
    /// Binary digits: `B'...'`, `0b...`.
    Bits,
    /// As written: a dollar-quoted body, a word, a value inside a connection string.
    Verbatim,
}

/// Forms kept per statement at most. Each form costs one search of every message scrubbed;
/// a statement with more (a script creating dozens of users with passwords) makes
/// [`Secrets::scrub`] hide whole messages instead. 256 forms are about 85 credential
/// literals; a scrub of a 1 KB message then costs a few hundred thousand byte compares.
const MAX_FORMS: usize = 256;

/// Bytes kept per statement at most, over all forms. A statement that sets a megabyte
/// "password" must not make the recorder copy it; past this, whole messages are hidden.
const MAX_BYTES: usize = 16 * 1024;

/// Bytes one [`Secrets::scrub`] may look at, counting each form's passes over the text and
/// each byte compared at a candidate start: about 10-30 ms of work. Comparing at every start
/// is quadratic on repetitive text (a 16 KiB password of `a`s, then an error message of a
/// million `a`s raised by the session itself), and the recorder runs on the relay's thread;
/// past this budget the whole text is hidden instead.
const MAX_WORK: usize = 64 * 1024 * 1024;

/// The credential values of one statement, in the forms a server may quote them, for
/// hiding them in text about the statement with [`Secrets::scrub`].
///
/// Each value is kept as written (`it''s`, `hun\'ter2`) and as the server reads it (`it's`,
/// `hun'ter2`), and a quoted value inside a connection string without its quotes too.
/// Empty values are not kept: there is nothing to hide.
///
/// Cheap to create and clone when empty (no allocation), which it is for every statement
/// without a credential. `Debug` prints how many forms it holds, never a value.
#[derive(Clone, Default)]
pub struct Secrets {
    forms: Vec<Box<[u8]>>,
    /// More values than [`MAX_FORMS`] or [`MAX_BYTES`] allow: nothing quoting the statement
    /// can be shown.
    overflow: bool,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("forms", &self.forms.len())
            .field("overflow", &self.overflow)
            .finish()
    }
}

impl Secrets {
    /// From credential values as written, each with the quote that doubles itself inside
    /// it (if it was quoted) and how the server reads it.
    pub(crate) fn collect<'a>(
        values: impl Iterator<Item = (&'a [u8], Option<u8>, Encoding)>,
    ) -> Self {
        let mut secrets = Self::default();
        let mut bytes = 0usize;
        for (written, quote, encoding) in values {
            for form in forms(written, quote, encoding) {
                if form.is_empty() || secrets.forms.iter().any(|f| **f == *form) {
                    continue;
                }
                bytes += form.len();
                if secrets.forms.len() >= MAX_FORMS || bytes > MAX_BYTES {
                    return Self {
                        forms: Vec::new(),
                        overflow: true,
                    };
                }
                secrets.forms.push(form.into_boxed_slice());
            }
        }
        secrets
    }

    /// True when there is nothing to hide: [`Secrets::scrub`] returns every text as it is.
    pub fn is_empty(&self) -> bool {
        self.forms.is_empty() && !self.overflow
    }

    /// `text` with every occurrence of every value replaced by `[REDACTED:PASSWORD]`;
    /// borrowed when none occurs.
    ///
    /// Hidden:
    ///
    /// - every occurrence of each form, wherever it stands (inside a longer word too: a
    ///   one-letter password hides that letter everywhere in the text, a price paid only
    ///   by statements that set one);
    /// - a form's beginning where the server may have cut its quote of the statement short
    ///   (MariaDB quotes at most 80 characters after `near '`, then `...`): the longest
    ///   prefix of a form found at the text's start or after a byte other than an ASCII
    ///   letter or digit, when the text ends, or has a quote (`'`, `"`, `` ` ``) or `.`,
    ///   somewhere after its first byte and up to the byte after it, and the prefix holds
    ///   more than quotes and dots.
    ///
    /// Spans are widened to whole characters, so the result is valid UTF-8. When the
    /// statement held more values than are kept (over 256 forms or 16 KiB), the whole text
    /// becomes `[REDACTED:PASSWORD]`: fail closed. So it does when scrubbing would take more
    /// than about 64 M byte steps (repetitive text matching a long value at every byte).
    ///
    /// Cost: nothing for empty secrets; otherwise one substring search and one scan for
    /// each form's first byte over the text, per form, plus a compare at each candidate
    /// start; linear in the text's length, with the bound above.
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{Dialect, redact_statement};
    /// let secrets = redact_statement("ALTER USER bob PASSWORD E'hun\\'ter2'", Dialect::PostgreSql).secrets;
    /// assert_eq!(
    ///     secrets.scrub(r#"invalid input syntax for type integer: "hun'ter2""#),
    ///     r#"invalid input syntax for type integer: "[REDACTED:PASSWORD]""#
    /// );
    /// assert_eq!(
    ///     secrets.scrub("near 'BY 'hun...' at line 1"),
    ///     "near 'BY '[REDACTED:PASSWORD]...' at line 1"
    /// );
    /// assert!(matches!(secrets.scrub("role \"bob\" does not exist"), std::borrow::Cow::Borrowed(_)));
    /// ```
    pub fn scrub<'t>(&self, text: &'t str) -> Cow<'t, str> {
        if self.overflow {
            return Cow::Owned(REDACTED_INNER.to_owned());
        }
        if self.forms.is_empty() {
            return Cow::Borrowed(text);
        }
        let hidden = || Cow::Owned(REDACTED_INNER.to_owned());
        let bytes = text.as_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        let mut work = 0usize;
        for form in &self.forms {
            work += 2 * bytes.len();
            spans.extend(memmem::find_iter(bytes, &**form).map(|at| (at, at + form.len())));
            let Some(&first) = form.first() else {
                continue;
            };
            for at in memchr_iter(first, bytes) {
                if at > 0 && bytes.get(at - 1).is_some_and(u8::is_ascii_alphanumeric) {
                    continue;
                }
                let rest = bytes.get(at..).unwrap_or_default();
                // The quote may stop anywhere in the match where a terminator follows (the
                // value itself can hold `...'`, which the server's `...'` then matches); quotes
                // and dots alone (a value starting `''`) are the message's own.
                let (mut len, mut cut, mut content) = (0, false, false);
                for (&a, &b) in rest.iter().zip(form.iter()) {
                    if a != b {
                        break;
                    }
                    cut |= len > 0 && is_terminator(a);
                    content |= !is_terminator(a);
                    len += 1;
                }
                cut |= rest.get(len).is_none_or(|&b| is_terminator(b));
                work += len + 1;
                if work > MAX_WORK {
                    return hidden();
                }
                if len < form.len() && cut && content {
                    spans.push((at, at + len));
                }
            }
            if work > MAX_WORK {
                return hidden();
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        // Overlapping or touching spans become one placeholder.
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            let (start, end) = (
                floor_char_boundary(text, start),
                ceil_char_boundary(text, end),
            );
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        let mut out = String::with_capacity(text.len());
        let mut prev = 0;
        for (start, end) in merged {
            out.push_str(text.get(prev..start).unwrap_or_default());
            out.push_str(REDACTED_INNER);
            prev = end;
        }
        out.push_str(text.get(prev..).unwrap_or_default());
        Cow::Owned(out)
    }
}

/// A byte that may end a server's cut quote of a statement: a closing quote, or the `...`
/// it adds.
fn is_terminator(b: u8) -> bool {
    matches!(b, b'\'' | b'"' | b'`' | b'.')
}

/// The forms of one value: as written; with doubled quotes and then also backslash escapes
/// read, and as its encoding reads it (a server quoting the value it parsed: PostgreSQL's
/// `E'\x68'` is `h`, `U&'\0068'` too, MySQL's `X'68'` and `0x68` too); and each of those
/// without surrounding quotes (a quoted value of a connection string).
fn forms(written: &[u8], quote: Option<u8>, encoding: Encoding) -> Vec<Vec<u8>> {
    let mut out = vec![written.to_vec()];
    if let Some(quote) = quote {
        let undoubled = undouble(written, quote);
        out.push(unescape(&undoubled));
        out.push(undoubled);
    }
    let text = || String::from_utf8_lossy(written);
    match encoding {
        Encoding::Quoted { postgres: true } => {
            out.push(read_string(
                written,
                quote.unwrap_or(b'\''),
                true,
                Dialect::PostgreSql,
                None,
            ));
        }
        Encoding::Unicode(escape) => {
            let undoubled = undouble(written, quote.unwrap_or(b'\''));
            if let Some(read) = unicode_escapes(&String::from_utf8_lossy(&undoubled), escape) {
                out.push(read.into_bytes());
            }
        }
        Encoding::Hex => out.push(hex_bytes(digits(&text(), 'x'))),
        Encoding::Bits => out.push(bit_bytes(digits(&text(), 'b'))),
        Encoding::Quoted { postgres: false } | Encoding::Verbatim => {}
    }
    for i in 0..out.len() {
        if let Some(inner) = out.get(i).and_then(|f| unquote(f)) {
            out.push(inner.to_vec());
        }
    }
    out
}

/// A hex or bit string's digits: without `0x` (`0b`) when written as a number.
fn digits(written: &str, radix: char) -> &str {
    let mut chars = written.chars();
    match (chars.next(), chars.next()) {
        (Some('0'), Some(r)) if r.eq_ignore_ascii_case(&radix) => {
            written.get(2..).unwrap_or_default()
        }
        _ => written,
    }
}

/// `''` read as `'` (for the value's quote).
fn undouble(text: &[u8], quote: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        out.push(b);
        i += if b == quote && text.get(i + 1) == Some(&quote) {
            2
        } else {
            1
        };
    }
    out
}

/// Backslash escapes read the way MySQL and PostgreSQL's `E'...'` read them: `\n`, `\t`,
/// `\r`, `\b`, `\f`, `\0`, `\Z`, and any other byte as itself.
fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while let Some(&b) = text.get(i) {
        if b == b'\\'
            && let Some(&next) = text.get(i + 1)
        {
            out.push(match next {
                b'n' => b'\n',
                b't' => b'\t',
                b'r' => b'\r',
                b'b' => 0x08,
                b'f' => 0x0c,
                b'0' => 0,
                b'Z' => 0x1a,
                other => other,
            });
            i += 2;
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// The text inside a pair of surrounding `'` or `"`, if it has them.
fn unquote(text: &[u8]) -> Option<&[u8]> {
    let (&first, rest) = text.split_first()?;
    let (&last, inner) = rest.split_last()?;
    (matches!(first, b'\'' | b'"') && last == first).then_some(inner)
}

/// The last character boundary at or before `i`.
fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// The first character boundary at or after `i`.
fn ceil_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(values: &[(&str, Option<u8>)]) -> Secrets {
        Secrets::collect(
            values
                .iter()
                .map(|(v, q)| (v.as_bytes(), *q, Encoding::Quoted { postgres: false })),
        )
    }

    #[test]
    fn keeps_written_read_and_unquoted_forms_once_each() {
        let s = secrets(&[(r"it''s \'x\'", Some(b'\'')), ("", Some(b'\''))]);
        let forms: Vec<&[u8]> = s.forms.iter().map(|f| &**f).collect();
        assert_eq!(
            forms,
            [&br"it''s \'x\'"[..], &b"it's 'x'"[..], &br"it's \'x\'"[..]]
        );
        let s = secrets(&[("''a b''", Some(b'\''))]);
        assert!(s.forms.iter().any(|f| **f == *b"a b"), "{:?}", s.forms);
        assert!(secrets(&[("", None)]).is_empty());
    }

    #[test]
    fn merges_overlapping_and_touching_spans_into_one_placeholder() {
        let s = secrets(&[("abcd", None), ("cdef", None)]);
        assert_eq!(s.scrub("xabcdefx"), "x[REDACTED:PASSWORD]x");
        assert_eq!(s.scrub("abcdabcd"), "[REDACTED:PASSWORD]");
        assert_eq!(s.scrub("abcd"), "[REDACTED:PASSWORD]");
    }

    #[test]
    fn hides_non_ascii_values_whole() {
        let s = secrets(&[("pé1ü", None)]);
        assert_eq!(s.scrub("near 'pé1ü' x"), "near '[REDACTED:PASSWORD]' x");
        assert_eq!(s.scrub("near 'pé1..."), "near '[REDACTED:PASSWORD]...");
        assert!(matches!(s.scrub("near 'pè'"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_cut_prefix_needs_a_boundary_before_and_a_quote_or_end_after() {
        let s = secrets(&[("hunter2", None)]);
        assert_eq!(s.scrub("near 'hunt' at"), "near '[REDACTED:PASSWORD]' at");
        assert_eq!(s.scrub("near 'hunt..."), "near '[REDACTED:PASSWORD]...");
        assert_eq!(s.scrub("near 'hunt"), "near '[REDACTED:PASSWORD]");
        assert!(matches!(s.scrub("the hunt is on"), Cow::Borrowed(_)));
        assert!(matches!(s.scrub("shunt'"), Cow::Borrowed(_)));
        let s = secrets(&[("''a b''", None)]);
        assert!(matches!(s.scrub("near '' at line 1"), Cow::Borrowed(_)));
        assert_eq!(s.scrub("near ''a..."), "near [REDACTED:PASSWORD]...");
    }

    /// A value holding `...'` itself: the server's own `...'` after a cut inside it
    /// matches further than the cut (found by the property test in `statement`).
    #[test]
    fn a_cut_inside_a_value_holding_dots_and_a_quote_is_found() {
        let s = secrets(&[("zq...'$", None)]);
        assert_eq!(
            s.scrub("near '\"zq...' at line 1"),
            "near '\"[REDACTED:PASSWORD] at line 1"
        );
    }

    /// Quadratic text: a long value that repeats a short run holding a non-word byte, and
    /// a message repeating it too, so every run's start is a candidate compared far.
    #[test]
    fn repetitive_text_past_the_work_budget_is_hidden_whole() {
        let value = "a,".repeat(MAX_BYTES / 4);
        let s = secrets(&[(&value, None)]);
        let message = format!("x {}'", "a,".repeat(MAX_BYTES / 8));
        assert_eq!(s.scrub(&message), "x [REDACTED:PASSWORD]'");
        let message = "a,".repeat(100_000);
        assert_eq!(s.scrub(&message), "[REDACTED:PASSWORD]");
    }

    #[test]
    fn too_many_values_hide_the_whole_text() {
        let many: Vec<String> = (0..300).map(|i| format!("pw{i}")).collect();
        let s = Secrets::collect(
            many.iter()
                .map(|v| (v.as_bytes(), None, Encoding::Verbatim)),
        );
        assert_eq!(s.scrub("anything"), "[REDACTED:PASSWORD]");
        assert!(!s.is_empty());
        let huge = "x".repeat(MAX_BYTES + 1);
        let s = secrets(&[(&huge, None)]);
        assert_eq!(s.scrub("anything"), "[REDACTED:PASSWORD]");
        assert_eq!(format!("{s:?}"), "Secrets { forms: 0, overflow: true }");
    }
}
