//! Binary values rendered as text, so the detectors can scan them: a card
//! number in a `bigint`, a `numeric` or a `double precision`, an address in
//! an `inet`, a MAC address in a `macaddr`, an email in a `jsonb` or a
//! `tsvector`. A rendering only has to show what a detector could find; it
//! is never sent to the client (a masked value becomes NULL).
//!
//! Each rendering reads its value with checked lengths and gives `None` for
//! a layout it does not expect, which the caller turns into NULL: fail
//! closed.

use std::io::Write;

/// How a binary value is rendered as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Render {
    /// A signed integer of 1, 2, 4 or 8 bytes, network byte order
    /// (PostgreSQL `int2`, `int4`, `int8`, `money`).
    BigEndian,
    /// An unsigned integer of 4 or 8 bytes, network byte order (PostgreSQL
    /// `oid` and the `reg*` types, `xid`, `xid8`, `pg_lsn`).
    Unsigned,
    /// A signed integer, little-endian (MySQL).
    LittleEndian,
    /// An IEEE float of 4 or 8 bytes, network byte order (PostgreSQL
    /// `float4`, `float8`), in full digits: `4111111111111111` where
    /// PostgreSQL's text says `4.111111111111111e+15`, so a card number in
    /// a float is seen however it is sent.
    Float,
    /// The same, little-endian (MySQL `FLOAT`, `DOUBLE`).
    FloatLittleEndian,
    /// PostgreSQL's `numeric`: digits in base 10,000 with a weight and a
    /// display scale.
    Numeric,
    /// PostgreSQL's `inet`/`cidr`: family, bits, is-cidr, length, address.
    Inet,
    /// Six or eight bytes as colon-separated hex pairs (`macaddr`,
    /// `macaddr8`).
    Mac,
    /// Sixteen bytes as a UUID.
    Uuid,
    /// A version byte (1), then text: PostgreSQL's `jsonb` and `jsonpath`.
    Versioned,
    /// PostgreSQL's `tsvector`: its lexemes, one space between them.
    TsVector,
    /// PostgreSQL's `tsquery`: its operands, one space between them.
    TsQuery,
    /// PostgreSQL's `bit` and `varbit`: a bit count, then the bits.
    Bits,
    /// PostgreSQL's `tid`: a block number and an offset.
    Tid,
    /// PostgreSQL's geometric types: floats (8 bytes each, network byte
    /// order) after a header of this many bytes (`path`'s closed flag and
    /// point count, `polygon`'s point count).
    Floats(usize),
}

/// PostgreSQL's address families in binary `inet` (`PGSQL_AF_INET`,
/// `PGSQL_AF_INET6`).
const PG_AF_INET: u8 = 2;
const PG_AF_INET6: u8 = 3;

/// `numeric`'s sign word: positive, negative; the special values have
/// others (NaN, infinities) and no digits to show.
const NUMERIC_POS: u16 = 0x0000;
const NUMERIC_NEG: u16 = 0x4000;

/// `tsquery` item types: an operand, an operator; and the phrase operator,
/// which carries a distance.
const QI_VAL: u8 = 1;
const QI_OPR: u8 = 2;
const OP_PHRASE: u8 = 4;

impl Render {
    /// Writes the text rendering of `cell` into `out` (cleared first);
    /// `None` for a layout this rendering does not expect.
    pub(super) fn render(self, cell: &[u8], out: &mut Vec<u8>) -> Option<()> {
        out.clear();
        let mut r = Cursor(cell);
        match self {
            Self::BigEndian | Self::LittleEndian => {
                let value = signed(cell, self == Self::LittleEndian)?;
                write!(out, "{value}").ok()?;
            }
            Self::Unsigned => match cell.len() {
                4 => write!(out, "{}", r.u32()?).ok()?,
                8 => write!(out, "{}", u64::from_be_bytes(r.array()?)).ok()?,
                _ => return None,
            },
            Self::Float | Self::FloatLittleEndian => {
                let little = self == Self::FloatLittleEndian;
                match cell.len() {
                    4 => {
                        let bytes = r.array()?;
                        let v = if little {
                            f32::from_le_bytes(bytes)
                        } else {
                            f32::from_be_bytes(bytes)
                        };
                        write!(out, "{v}").ok()?;
                    }
                    8 => {
                        let bytes = r.array()?;
                        let v = if little {
                            f64::from_le_bytes(bytes)
                        } else {
                            f64::from_be_bytes(bytes)
                        };
                        write!(out, "{v}").ok()?;
                    }
                    _ => return None,
                }
            }
            Self::Numeric => numeric(&mut r, out)?,
            Self::Inet => {
                let address = match cell {
                    [PG_AF_INET, _, _, 4, a @ ..] => {
                        std::net::IpAddr::from(<[u8; 4]>::try_from(a).ok()?)
                    }
                    [PG_AF_INET6, _, _, 16, a @ ..] => {
                        std::net::IpAddr::from(<[u8; 16]>::try_from(a).ok()?)
                    }
                    _ => return None,
                };
                write!(out, "{address}").ok()?;
            }
            Self::Mac => {
                if !matches!(cell.len(), 6 | 8) {
                    return None;
                }
                for (i, b) in cell.iter().enumerate() {
                    if i > 0 {
                        out.push(b':');
                    }
                    write!(out, "{b:02x}").ok()?;
                }
            }
            Self::Uuid => {
                if cell.len() != 16 {
                    return None;
                }
                for (i, b) in cell.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        out.push(b'-');
                    }
                    write!(out, "{b:02x}").ok()?;
                }
            }
            Self::Versioned => match cell {
                [1, text @ ..] => {
                    out.extend_from_slice(text);
                    if !append_hidden(text, out) {
                        return None;
                    }
                }
                _ => return None,
            },
            Self::TsVector => {
                let count = r.count(4)?;
                for i in 0..count {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend_from_slice(r.cstring()?);
                    let positions = usize::from(r.u16()?);
                    r.take(positions.checked_mul(2)?)?;
                }
            }
            Self::TsQuery => {
                let count = r.count(2)?;
                for _ in 0..count {
                    match r.u8()? {
                        QI_VAL => {
                            r.take(2)?;
                            if !out.is_empty() {
                                out.push(b' ');
                            }
                            out.extend_from_slice(r.cstring()?);
                        }
                        QI_OPR => {
                            if r.u8()? == OP_PHRASE {
                                r.take(2)?;
                            }
                        }
                        _ => return None,
                    }
                }
            }
            Self::Bits => {
                let bits = usize::try_from(r.u32()?).ok()?;
                let bytes = r.take(bits.div_ceil(8))?;
                for i in 0..bits {
                    let set = bytes[i / 8] & (0x80 >> (i % 8)) != 0;
                    out.push(if set { b'1' } else { b'0' });
                }
            }
            Self::Tid => {
                let block = r.u32()?;
                let offset = r.u16()?;
                write!(out, "({block},{offset})").ok()?;
            }
            Self::Floats(header) => {
                r.take(header)?;
                if r.0.len() % 8 != 0 {
                    return None;
                }
                while !r.0.is_empty() {
                    if !out.is_empty() {
                        out.push(b',');
                    }
                    write!(out, "{}", f64::from_be_bytes(r.array()?)).ok()?;
                }
            }
        }
        if matches!(
            self,
            Self::TsVector | Self::TsQuery | Self::Bits | Self::Tid | Self::Numeric
        ) && !r.0.is_empty()
        {
            return None;
        }
        Some(())
    }
}

/// Numbers in exponent notation expanded, when they have this many integer
/// digits or more (a card number has 13 to 19, a phone number 10 to 15, and
/// the digit shapes start at 8) ...
const HIDDEN_MIN_EXPONENT: i32 = 7;
/// ... and this many at most: past 10^21 a float's full digits are padding.
const HIDDEN_MAX_EXPONENT: i32 = 21;

/// Writes `bytes` without their NUL bytes into `out` if they have any (text
/// in UTF-16 or UTF-32 then shows its ASCII characters side by side);
/// leaves `out` alone otherwise.
pub(super) fn without_nuls(bytes: &[u8], out: &mut Vec<u8>) {
    if memchr::memchr(0, bytes).is_none() {
        return;
    }
    out.extend(bytes.iter().copied().filter(|&b| b != 0));
}

/// Whether `text` may hide a value from the detectors: it has an `e` or an
/// `x` ([`append_hidden`] spells such values out) or a NUL (text in UTF-16
/// or UTF-32, read with [`without_nuls`]). Two passes of memchr; most typed
/// text has none of them.
pub(super) fn hides_values(text: &[u8]) -> bool {
    memchr::memchr3(b'e', b'E', b'x', text).is_some() || memchr::memchr(0, text).is_some()
}

/// Appends to `out` the values that `text` shows in an encoding its client
/// undoes, so the detectors see them: numbers in exponent notation in full
/// digits (`4.111111111111111e+15` is how PostgreSQL prints a `float8`, in
/// a float column, an array, a record or a `json` document; a client shows
/// `4111111111111111.0`), and `\x` hex decoded (`bytea` in text format,
/// alone or inside an array or a record). Each goes after a space.
///
/// False when the additions would pass twice the text's length (64 bytes at
/// least): a text crafted to grow its own rendering is not scanned further,
/// and the caller fails closed.
pub(super) fn append_hidden(text: &[u8], out: &mut Vec<u8>) -> bool {
    let limit = out.len() + text.len().saturating_mul(2).max(64);
    for at in memchr::memchr3_iter(b'e', b'E', b'x', text) {
        if text[at] == b'x' {
            if at > 0 && text[at - 1] == b'\\' {
                out.push(b' ');
                for pair in text[at + 1..].chunks_exact(2) {
                    let (Some(high), Some(low)) = (hex_digit(pair[0]), hex_digit(pair[1])) else {
                        break;
                    };
                    out.push(high << 4 | low);
                }
            }
        } else if let Some(value) = exponent_number(text, at) {
            out.push(b' ');
            if write!(out, "{value}").is_err() {
                return false;
            }
        }
        if out.len() > limit {
            return false;
        }
    }
    true
}

/// The number in exponent notation whose `e` is at `at`, if it is one and
/// has between [`HIDDEN_MIN_EXPONENT`] and [`HIDDEN_MAX_EXPONENT`] integer
/// digits.
fn exponent_number(text: &[u8], at: usize) -> Option<f64> {
    let mut start = at;
    while start > 0 && (text[start - 1].is_ascii_digit() || text[start - 1] == b'.') {
        start -= 1;
    }
    // PostgreSQL prints at most 17 significant digits.
    if at - start > 32 || !text[start..at].iter().any(u8::is_ascii_digit) {
        return None;
    }
    if start > 0 && text[start - 1] == b'-' {
        start -= 1;
    }
    let mut end = at + 1;
    if matches!(text.get(end), Some(b'+' | b'-')) {
        end += 1;
    }
    let digits = end;
    while end < text.len() && end - digits < 4 && text[end].is_ascii_digit() {
        end += 1;
    }
    if end == digits {
        return None;
    }
    let value: f64 = std::str::from_utf8(&text[start..end]).ok()?.parse().ok()?;
    let exponent = value.abs().log10().floor();
    (value.is_finite()
        && exponent >= f64::from(HIDDEN_MIN_EXPONENT)
        && exponent <= f64::from(HIDDEN_MAX_EXPONENT))
    .then_some(value)
}

/// A signed integer of 1, 2, 4 or 8 bytes.
fn signed(cell: &[u8], little: bool) -> Option<i64> {
    let n = cell.len();
    if !matches!(n, 1 | 2 | 4 | 8) {
        return None;
    }
    let mut bytes = [0u8; 8];
    if little {
        for (i, b) in cell.iter().enumerate() {
            bytes[7 - i] = *b;
        }
    } else {
        bytes[8 - n..].copy_from_slice(cell);
    }
    // Sign-extend from the cell's width.
    let shift = 64 - 8 * n as u32;
    Some((i64::from_be_bytes(bytes) << shift) >> shift)
}

/// `numeric` as PostgreSQL prints it: `-`, the integer digits, and the
/// display scale's fraction digits.
fn numeric(r: &mut Cursor<'_>, out: &mut Vec<u8>) -> Option<()> {
    let ndigits = usize::from(r.u16()?);
    let weight = i32::from(r.u16()? as i16);
    let sign = r.u16()?;
    let dscale = usize::from(r.u16()?);
    let mut digits = Vec::with_capacity(ndigits.min(r.0.len() / 2));
    for _ in 0..ndigits {
        let d = r.u16()?;
        if d > 9999 {
            return None;
        }
        digits.push(d);
    }
    match sign {
        NUMERIC_POS => {}
        NUMERIC_NEG => out.push(b'-'),
        // NaN and the infinities: no digits.
        _ => return Some(()),
    }
    let digit = |i: i32| {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i))
            .copied()
            .unwrap_or(0)
    };
    if weight < 0 {
        out.push(b'0');
    } else {
        write!(out, "{}", digit(0)).ok()?;
        for i in 1..=weight {
            write!(out, "{:04}", digit(i)).ok()?;
        }
    }
    if dscale > 0 {
        out.push(b'.');
        let mut written = 0;
        let mut i = weight + 1;
        while written < dscale {
            let group = format!("{:04}", digit(i));
            for b in group.bytes() {
                if written < dscale {
                    out.push(b);
                    written += 1;
                }
            }
            i += 1;
        }
    }
    Some(())
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// A reader over a value's bytes with checked takes only.
pub(super) struct Cursor<'a>(pub(super) &'a [u8]);

impl<'a> Cursor<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    pub(super) fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(super) fn u8(&mut self) -> Option<u8> {
        Some(self.array::<1>()?[0])
    }

    pub(super) fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.array()?))
    }

    pub(super) fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.array()?))
    }

    pub(super) fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.array()?))
    }

    /// A count of items that each take at least `min` bytes: more than the
    /// bytes left could hold is a lie, refused before any loop trusts it.
    pub(super) fn count(&mut self, min: usize) -> Option<usize> {
        let n = usize::try_from(self.i32()?).ok()?;
        (n.checked_mul(min)? <= self.0.len()).then_some(n)
    }

    /// A NUL-terminated string, without its NUL.
    fn cstring(&mut self) -> Option<&'a [u8]> {
        let end = self.0.iter().position(|&b| b == 0)?;
        let s = self.take(end)?;
        self.take(1)?;
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(render: Render, cell: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        render.render(cell, &mut out)?;
        Some(String::from_utf8(out).unwrap())
    }

    #[test]
    fn integers_render_with_their_sign_and_width() {
        assert_eq!(
            rendered(Render::LittleEndian, &(-5_i16).to_le_bytes()).unwrap(),
            "-5"
        );
        assert_eq!(
            rendered(Render::BigEndian, &300_i32.to_be_bytes()).unwrap(),
            "300"
        );
        assert_eq!(
            rendered(Render::Unsigned, &u32::MAX.to_be_bytes()).unwrap(),
            "4294967295"
        );
        assert!(rendered(Render::BigEndian, &[1, 2, 3]).is_none());
    }

    #[test]
    fn floats_render_in_full_digits() {
        assert_eq!(
            rendered(Render::Float, &4_111_111_111_111_111_f64.to_be_bytes()).unwrap(),
            "4111111111111111"
        );
        assert_eq!(
            rendered(Render::FloatLittleEndian, &1.5_f32.to_le_bytes()).unwrap(),
            "1.5"
        );
    }

    /// Bytes from PostgreSQL 15's `numeric_send`.
    #[test]
    fn numeric_renders_as_postgresql_prints_it() {
        // 4111111111111111: 4 digits, weight 3, positive, scale 0.
        let card = [
            0, 4, 0, 3, 0, 0, 0, 0, 0x10, 0x0f, 0x04, 0x57, 0x04, 0x57, 0x04, 0x57,
        ];
        assert_eq!(
            rendered(Render::Numeric, &card).unwrap(),
            "4111111111111111"
        );
        // -0.0012: 1 digit (12), weight -1, negative, scale 4.
        let small = [0, 1, 0xff, 0xff, 0x40, 0, 0, 4, 0, 12];
        assert_eq!(rendered(Render::Numeric, &small).unwrap(), "-0.0012");
        // 12.5 with scale 2: digits 12, 5000.
        let frac = [0, 2, 0, 0, 0, 0, 0, 2, 0, 12, 0x13, 0x88];
        assert_eq!(rendered(Render::Numeric, &frac).unwrap(), "12.50");
        // A digit over 9999, a short cell, trailing bytes: refused.
        assert!(rendered(Render::Numeric, &[0, 1, 0, 0, 0, 0, 0, 0, 0x27, 0x10]).is_none());
        assert!(rendered(Render::Numeric, &card[..10]).is_none());
        assert!(rendered(Render::Numeric, &[&card[..], &[0]].concat()).is_none());
    }

    #[test]
    fn text_hidden_in_binary_layouts_comes_out() {
        assert_eq!(
            rendered(Render::Versioned, b"\x01{\"a\": \"x@y.io\"}").unwrap(),
            "{\"a\": \"x@y.io\"}"
        );
        // jsonb of a float keeps its digits hidden in exponent notation.
        assert_eq!(
            rendered(Render::Versioned, b"\x01[4.111111111111111e+15]").unwrap(),
            "[4.111111111111111e+15] 4111111111111111"
        );
        assert!(rendered(Render::Versioned, b"\x02{}").is_none());
        // to_tsvector('simple', 'a@b.com x'): two lexemes, one position each.
        let tsv = b"\x00\x00\x00\x02a@b.com\x00\x00\x01\x00\x01x\x00\x00\x01\x00\x02";
        assert_eq!(rendered(Render::TsVector, tsv).unwrap(), "a@b.com x");
        // A count the bytes cannot hold.
        assert!(rendered(Render::TsVector, b"\x7f\xff\xff\xffa\x00").is_none());
        assert_eq!(
            rendered(Render::Mac, &[8, 0, 0x2b, 1, 2, 3]).unwrap(),
            "08:00:2b:01:02:03"
        );
        assert_eq!(
            rendered(Render::Bits, &[0, 0, 0, 4, 0b1010_0000]).unwrap(),
            "1010"
        );
        assert_eq!(
            rendered(Render::Inet, &[2, 32, 0, 4, 10, 1, 2, 3]).unwrap(),
            "10.1.2.3"
        );
        assert!(rendered(Render::Inet, &[2, 32, 0, 4, 10]).is_none());
    }

    #[test]
    fn hidden_values_are_spelled_out() {
        let hidden = |text: &[u8]| {
            let mut out = Vec::new();
            assert!(append_hidden(text, &mut out));
            String::from_utf8_lossy(&out).into_owned()
        };
        // A float8 as PostgreSQL prints it, alone and in an array or JSON.
        assert_eq!(hidden(b"4.111111111111111e+15"), " 4111111111111111");
        assert_eq!(
            hidden(b"{1.5e+00,-4.111111111111111e+15}"),
            " -4111111111111111"
        );
        assert_eq!(
            hidden(b"{\"n\" : 5.555555555554444e+15}"),
            " 5555555555554444"
        );
        // bytea in an array's text: the backslash doubled by the quoting.
        assert_eq!(hidden(b"{\"\\\\x6140622e636f\"}"), " a@b.co");
        assert_eq!(hidden(b"\\x6140622e636f"), " a@b.co");
        // Words with an e, small numbers, huge exponents: nothing.
        assert_eq!(hidden(b"the index 1e3 and 1e300"), "");
        // A text that would grow its own rendering past the bound fails.
        let mut out = Vec::new();
        assert!(!append_hidden(&b"1e20,".repeat(100), &mut out));
    }
}
