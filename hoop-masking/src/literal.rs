//! Decoding literals as the servers read them: quotes doubled, backslash escapes (MySQL's,
//! PostgreSQL's `E'...'`), PostgreSQL's `U&'...'` escapes, hex and bit strings. The
//! guardrails judge the text a literal runs as code; the recorder hides a credential in
//! every form a server may quote it.

use crate::lexer::{Dialect, Multibyte};

/// A string literal's content (between its quotes) as the server reads it: the doubled
/// quote as one, and with `backslash` the escapes (MySQL's, or PostgreSQL's `E'...'`); a
/// multibyte character is copied whole.
pub(crate) fn read_string(
    content: &[u8],
    quote: u8,
    backslash: bool,
    dialect: Dialect,
    multibyte: Option<Multibyte>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len());
    let mut i = 0;
    while let Some(&b) = content.get(i) {
        if let (Some(mb), Some(&trail)) = (multibyte, content.get(i + 1))
            && mb.pair(b, trail)
        {
            out.extend([b, trail]);
            i += 2;
        } else if b == quote && content.get(i + 1) == Some(&quote) {
            out.push(quote);
            i += 2;
        } else if b == b'\\' && backslash && i + 1 < content.len() {
            i += if dialect == Dialect::MySql {
                mysql_escape(content, i, &mut out)
            } else {
                pg_escape(content, i, &mut out)
            };
        } else {
            out.push(b);
            i += 1;
        }
    }
    out
}

/// MySQL's escape at `content[at]` (a backslash): appended to `out`; its length.
fn mysql_escape(content: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
    let Some(&c) = content.get(at + 1) else {
        return 1;
    };
    match c {
        b'0' => out.push(0),
        b'b' => out.push(0x08),
        b'n' => out.push(b'\n'),
        b'r' => out.push(b'\r'),
        b't' => out.push(b'\t'),
        b'Z' => out.push(0x1a),
        // `\%` and `\_` keep their backslash (for LIKE).
        b'%' | b'_' => out.extend([b'\\', c]),
        _ => out.push(c),
    }
    2
}

/// PostgreSQL's escape at `content[at]` (a backslash) in an `E'...'` string: appended to
/// `out`; its length.
fn pg_escape(content: &[u8], at: usize, out: &mut Vec<u8>) -> usize {
    let Some(&c) = content.get(at + 1) else {
        return 1;
    };
    let digits = |from: usize, max: usize, radix: u32| -> (u32, usize) {
        let mut value = 0u32;
        let mut n = 0;
        while n < max {
            let Some(d) = content
                .get(from + n)
                .and_then(|&b| char::from(b).to_digit(radix))
            else {
                break;
            };
            value = value * radix + d;
            n += 1;
        }
        (value, n)
    };
    let push_char = |out: &mut Vec<u8>, value: u32| {
        let c = char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER);
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    };
    match c {
        b'b' => out.push(0x08),
        b'f' => out.push(0x0c),
        b'n' => out.push(b'\n'),
        b'r' => out.push(b'\r'),
        b't' => out.push(b'\t'),
        b'0'..=b'7' => {
            let (value, n) = digits(at + 1, 3, 8);
            out.push(u8::try_from(value & 0xff).unwrap_or_default());
            return 1 + n;
        }
        b'x' => {
            let (value, n) = digits(at + 2, 2, 16);
            if n == 0 {
                out.push(b'x');
            } else {
                out.push(u8::try_from(value).unwrap_or_default());
            }
            return 2 + n;
        }
        b'u' | b'U' => {
            let len = if c == b'u' { 4 } else { 8 };
            let (value, n) = digits(at + 2, len, 16);
            if n == len {
                push_char(out, value);
                return 2 + n;
            }
            out.push(c);
        }
        _ => out.push(c),
    }
    2
}

/// `''` (or `""`) as one quote.
pub(crate) fn undouble(content: &str, quote: char) -> String {
    let doubled: String = [quote, quote].iter().collect();
    content.replace(&doubled, &quote.to_string())
}

/// PostgreSQL's `U&` escapes: `\XXXX`, `\+XXXXXX`, `\\` (with `escape` for `\`). `None`
/// for an invalid escape or code point (the server refuses the literal).
pub(crate) fn unicode_escapes(content: &str, escape: char) -> Option<String> {
    let mut out = String::with_capacity(content.len());
    let mut chars = content.chars().peekable();
    while let Some(c) = chars.next() {
        if c != escape {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&escape) {
            chars.next();
            out.push(escape);
            continue;
        }
        let len = if chars.peek() == Some(&'+') {
            chars.next();
            6
        } else {
            4
        };
        let hex: String = chars.by_ref().take(len).collect();
        if hex.len() != len {
            return None;
        }
        let value = u32::from_str_radix(&hex, 16).ok()?;
        out.push(char::from_u32(value)?);
    }
    Some(out)
}

/// `X'..'` / `0x..` digits as bytes (an odd count as if a `0` led).
pub(crate) fn hex_bytes(digits: &str) -> Vec<u8> {
    let nibbles: Vec<u8> = digits
        .chars()
        .filter_map(|c| c.to_digit(16))
        .map(|d| u8::try_from(d).unwrap_or_default())
        .collect();
    let pad = usize::from(nibbles.len() % 2 == 1);
    let mut out = Vec::with_capacity(nibbles.len() / 2 + 1);
    let mut iter = std::iter::repeat_n(0u8, pad).chain(nibbles);
    while let (Some(hi), Some(lo)) = (iter.next(), iter.next()) {
        out.push(hi << 4 | lo);
    }
    out
}

/// `B'..'` / `0b..` digits as bytes, right-aligned.
pub(crate) fn bit_bytes(digits: &str) -> Vec<u8> {
    let bits: Vec<u8> = digits
        .bytes()
        .filter(|b| matches!(b, b'0' | b'1'))
        .map(|b| b - b'0')
        .collect();
    let pad = (8 - bits.len() % 8) % 8;
    let all: Vec<u8> = std::iter::repeat_n(0, pad).chain(bits).collect();
    all.chunks(8)
        .map(|byte| byte.iter().fold(0u8, |n, b| n << 1 | b))
        .collect()
}
