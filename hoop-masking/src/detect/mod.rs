//! The matcher: every detector of a policy, compiled once, behind cheap prefilters.
//!
//! ```text
//! cell bytes ──► exactly a date or timestamp (fixed positions), outside birth-date
//!                 columns ──► no built-in detection (a timestamp's 14 digits would
//!                 otherwise reach every digit-window shape)
//!                 │
//!                 ▼
//!               gate: one pass of SIMD compares per 32-byte chunk into two lanes of
//!                 class bits (digit, ':', '-', '@', rare letters; a long-token bit),
//!                 reduced once per cell; digits, ':' and '-' counted only when present
//!                 │ nothing that any enabled detector needs ──► no detection (the common case)
//!                 ▼
//!   '@' (memchr)        ──► email window ──► email regex (ASCII) ──► length checks
//!   digit windows       ──► group shapes (4-4-4-4, 3-2-4, 3-3-4, d.d.d.d, ...) ──► Luhn,
//!                            SSN ranges, octets, IBAN mod-97, calendar dates
//!   5+ ':' or '::' / 5+ '-' ──► hex windows ──► IPv6 parse, MAC shape
//!   literals (memmem, each behind its own rare byte and the long-token bit:
//!             AKIA ASIA eyJ -----BEGIN bearer; :// www. for URLs) ──► token shapes
//!   custom words (Aho-Corasick, word boundaries), custom regexes (one multi-pattern regex)
//! ```
//!
//! Every detector reports spans; overlapping spans are merged by the masker.

mod numeric;
mod text;
pub(crate) mod validate;

use aho_corasick::AhoCorasick;
use memchr::memmem;
use regex_automata::meta;

use crate::entity::{EntityId, EntityType};

/// One detected value: which entity, and where in the cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detection {
    /// The entity type.
    pub entity: EntityId,
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
}

/// When [`Matcher::find`] stops: after every detection, or soon after the first.
pub(crate) trait Stop {
    /// Whether the detectors may stop, given what they found so far.
    fn reached(found: &[Detection]) -> bool;
}

/// Find every detection: the masker's value-by-value path.
pub(crate) struct Every;

impl Stop for Every {
    #[inline(always)]
    fn reached(_: &[Detection]) -> bool {
        false
    }
}

/// Stop at the first detection: the whole-cell rule past `max_cell_bytes`, which needs
/// one value and must not hold a detection per value of a 50 MB cell.
pub(crate) struct FirstOnly;

impl Stop for FirstOnly {
    #[inline(always)]
    fn reached(found: &[Detection]) -> bool {
        !found.is_empty()
    }
}

/// Per-column switches for detectors that only run in columns named for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ColumnGates {
    pub(crate) date_of_birth: bool,
    pub(crate) passport: bool,
}

const C_AT: u16 = 1;
const C_COLON: u16 = 2;
const C_DASH: u16 = 8;
// The rare bytes of the literal triggers: AKIA, ASIA, eyJ, bearer/Bearer/BEARER, www.
// `C_B` is `b` or `B` (for "earer"); `C_UPPER_B` is `B` alone (for "EARER", which prose
// of lowercase words never needs searched).
const C_K: u16 = 16;
const C_S: u16 = 32;
const C_J: u16 = 64;
const C_B: u16 = 128;
const C_W: u16 = 256;
/// Some aligned 8-byte block holds no space (always set for a tail of 8 bytes or more):
/// every token of 15 or more non-space bytes (AWS keys, JWTs, bearer tokens, key bodies)
/// covers such a block, so prose of short words skips the secret finders.
const C_LONG: u16 = 512;
const C_UPPER_B: u16 = 1024;
/// Some ASCII digit: only then are digits counted.
const C_DIGIT: u16 = 2048;

/// What the gate learnt about a cell: its classes in one pass, then exact counts of the
/// bytes whose class is present (most cells have none, and skip the counting).
#[derive(Clone, Copy, Debug)]
struct Gate {
    classes: u16,
    digits: usize,
    colons: usize,
    dashes: usize,
}

const CHUNK: usize = 32;

/// The same classes as [`Lanes`], by table.
static TAIL_CLASS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = C_DIGIT;
        b += 1;
    }
    t[b'@' as usize] = C_AT;
    t[b':' as usize] = C_COLON;
    t[b'-' as usize] = C_DASH;
    t[b'K' as usize] = C_K;
    t[b'S' as usize] = C_S;
    t[b'J' as usize] = C_J;
    t[b'b' as usize] = C_B;
    t[b'B' as usize] = C_B | C_UPPER_B;
    t[b'w' as usize] = C_W;
    t
};

/// `v` where `c` holds, else 0: a byte compare ANDed with a constant in SIMD.
#[inline(always)]
fn bit(c: bool, v: u16) -> u8 {
    if c { v as u8 } else { 0 }
}

/// Lane accumulators of the gate: one byte of class bits per lane, ORed over
/// every chunk of a cell and reduced once.
struct Lanes<const N: usize> {
    lo: [u8; N],
    hi: [u8; N],
    long: bool,
}

impl<const N: usize> Lanes<N> {
    fn new() -> Self {
        Self {
            lo: [0; N],
            hi: [0; N],
            long: false,
        }
    }

    /// Adds one chunk. Written as plain lane-wise loops over fixed-size arrays so that the
    /// compiler turns them into SIMD compares (the crate forbids `unsafe`, so no
    /// intrinsics): about 3 vector instructions per class per 16 bytes.
    #[inline(always)]
    fn add(&mut self, chunk: &[u8; N]) {
        for ((l, h), &b) in self.lo.iter_mut().zip(self.hi.iter_mut()).zip(chunk) {
            *l |= bit(b == b'@', C_AT)
                | bit(b == b':', C_COLON)
                | bit(b == b'-', C_DASH)
                | bit(b == b'K', C_K)
                | bit(b == b'S', C_S)
                | bit(b == b'J', C_J)
                | bit(b | 0x20 == b'b', C_B);
            *h |= bit(b == b'w', C_W >> 8)
                | bit(b == b'B', C_UPPER_B >> 8)
                | bit(b.wrapping_sub(b'0') < 10, C_DIGIT >> 8);
        }
        for block in chunk.chunks_exact(8) {
            let word = u64::from_le_bytes(<[u8; 8]>::try_from(block).unwrap_or([b' '; 8]));
            let x = word ^ 0x2020_2020_2020_2020;
            let has_space = x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080 != 0;
            self.long |= !has_space;
        }
    }

    /// The classes seen in every chunk added.
    #[inline(always)]
    fn classes(&self) -> u16 {
        let lo = self.lo.iter().fold(0, |a, &l| a | l);
        let hi = self.hi.iter().fold(0, |a, &h| a | h);
        u16::from(lo) | (u16::from(hi) << 8) | (u16::from(self.long) * C_LONG)
    }
}

/// The gate over a whole cell: classes from [`Lanes`] (a table for cells under 16
/// bytes), then exact counts of digits, colons and dashes where their class is present.
#[inline(always)]
fn gate(cell: &[u8]) -> Gate {
    if cell.len() < CHUNK / 2 {
        return short_gate(cell);
    }
    let mut lanes = Lanes::new();
    if cell.len() >= CHUNK {
        // Whole chunks, then the last 32 bytes (overlapping: classes are sets).
        let mut chunks = cell.chunks_exact(CHUNK);
        for chunk in &mut chunks {
            if let Ok(chunk) = <&[u8; CHUNK]>::try_from(chunk) {
                lanes.add(chunk);
            }
        }
        if !chunks.remainder().is_empty()
            && let Ok(last) = <&[u8; CHUNK]>::try_from(&cell[cell.len() - CHUNK..])
        {
            lanes.add(last);
        }
    } else {
        // Two overlapping half chunks cover 16 to 31 bytes.
        let mut half = Lanes::<{ CHUNK / 2 }>::new();
        for part in [&cell[..CHUNK / 2], &cell[cell.len() - CHUNK / 2..]] {
            if let Ok(part) = <&[u8; CHUNK / 2]>::try_from(part) {
                half.add(part);
            }
        }
        return Gate::counted(cell, half.classes());
    }
    // The overlapping last chunk keeps the long-token bit exact: a run of 15 non-space
    // bytes that crosses into it covers either the grid's last block before it or its own
    // first block.
    Gate::counted(cell, lanes.classes())
}

/// Cells under 16 bytes (names, numbers) by table, a byte at a time.
fn short_gate(cell: &[u8]) -> Gate {
    let mut classes = cell
        .iter()
        .fold(0, |classes, &b| classes | TAIL_CLASS[usize::from(b)]);
    // Too short to tell the long-token bit cheaply.
    if cell.len() >= 8 {
        classes |= C_LONG;
    }
    Gate::counted(cell, classes)
}

impl Gate {
    /// `classes` with exact counts of digits, colons and dashes, each counted only when
    /// its class is present.
    fn counted(cell: &[u8], classes: u16) -> Self {
        let count = |class: u16, f: fn(u8) -> bool| {
            if classes & class == 0 {
                0
            } else {
                count_bytes(cell, f)
            }
        };
        Self {
            classes,
            digits: count(C_DIGIT, |b| b.wrapping_sub(b'0') < 10),
            colons: count(C_COLON, |b| b == b':'),
            dashes: count(C_DASH, |b| b == b'-'),
        }
    }
}

/// How many bytes of `cell` satisfy `f`: byte sums per 32-byte chunk (SIMD), then the rest.
#[inline(always)]
fn count_bytes(cell: &[u8], f: fn(u8) -> bool) -> usize {
    let mut chunks = cell.chunks_exact(CHUNK);
    let mut n = 0;
    for chunk in &mut chunks {
        n += usize::from(chunk.iter().fold(0u8, |a, &b| a + u8::from(f(b))));
    }
    n + chunks.remainder().iter().filter(|&&b| f(b)).count()
}

/// What a literal trigger announces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Literal {
    Aws,
    Jwt,
    PrivateKey,
    Bearer,
    UrlScheme,
    UrlWww,
}

/// A literal trigger: its finder, what it announces, its gate bit, and the shortest cell
/// that can hold what it announces.
#[derive(Debug)]
pub(crate) struct LiteralFinder {
    finder: memmem::Finder<'static>,
    kind: Literal,
    bit: u16,
    // Whether the announced value is a long token (see `C_LONG`).
    long: bool,
    min_len: usize,
}

/// All detectors of one policy. Immutable; shared by every session.
#[derive(Debug)]
pub(crate) struct Matcher {
    ids: [Option<EntityId>; EntityType::ALL.len()],
    email: Option<meta::Regex>,
    literals: Vec<LiteralFinder>,
    literal_min_len: usize,
    words: Option<(AhoCorasick, Vec<EntityId>)>,
    regexes: Option<(meta::Regex, Vec<EntityId>)>,
    numeric: bool,
    hex: bool,
}

/// Mutable search state of one session: regex caches and reusable buffers.
#[derive(Debug)]
pub(crate) struct Scratch {
    email: Option<meta::Cache>,
    regexes: Option<meta::Cache>,
    groups: Vec<numeric::Group>,
}

/// Builds an ASCII-mode multi-pattern regex: Unicode off, so `\b` and classes are byte
/// based (Unicode word boundaries cost 50x here), and a match may end anywhere.
pub(crate) fn ascii_regex(patterns: &[&str]) -> Result<meta::Regex, String> {
    meta::Builder::new()
        .syntax(
            regex_automata::util::syntax::Config::new()
                .unicode(false)
                .utf8(false),
        )
        .configure(meta::Config::new().utf8_empty(false))
        .build_many(patterns)
        .map_err(|e| e.to_string())
}

impl Matcher {
    /// `builtins` maps each enabled built-in type to its id; `words` and `regexes` are the
    /// custom entities (already checked).
    pub(crate) fn new(
        builtins: &[(EntityType, EntityId)],
        words: &[(Vec<String>, EntityId)],
        regexes: &[(String, EntityId)],
    ) -> Result<Self, (usize, String)> {
        let mut ids = [None; EntityType::ALL.len()];
        for &(ty, id) in builtins {
            ids[ty as usize] = Some(id);
        }
        let has = |ty: EntityType| ids[ty as usize].is_some();
        let email = if has(EntityType::EmailAddress) {
            Some(
                ascii_regex(&[EntityType::EmailAddress.reference_pattern()])
                    .map_err(|e| (usize::MAX, e))?,
            )
        } else {
            None
        };

        let mut literals: Vec<LiteralFinder> = Vec::new();
        // Each finder names a class of the gate that a cell must have to hold its literal: a
        // cell without it skips the finder without searching.
        let mut lit = |needle: &'static str, kind: Literal, bit: u16, min_len: usize| {
            literals.push(LiteralFinder {
                finder: memmem::Finder::new(needle),
                kind,
                bit,
                long: !matches!(kind, Literal::UrlScheme | Literal::UrlWww),
                min_len,
            });
        };
        if has(EntityType::AwsAccessKey) {
            lit("AKIA", Literal::Aws, C_K, 20);
            lit("ASIA", Literal::Aws, C_S, 20);
        }
        if has(EntityType::Jwt) {
            lit("eyJ", Literal::Jwt, C_J, 16);
        }
        if has(EntityType::PrivateKey) {
            lit("-----BEGIN ", Literal::PrivateKey, C_DASH, 30);
        }
        if has(EntityType::BearerToken) {
            // "bearer" and "Bearer" share "earer"; "BEARER" has its own.
            lit("earer", Literal::Bearer, C_B, 23);
            lit("EARER", Literal::Bearer, C_UPPER_B, 23);
        }
        if has(EntityType::Url) {
            lit("://", Literal::UrlScheme, C_COLON, 8);
            lit("www.", Literal::UrlWww, C_W, 8);
        }

        let words = if words.is_empty() {
            None
        } else {
            let mut pats = Vec::new();
            let mut owners = Vec::new();
            for (list, id) in words {
                for w in list {
                    pats.push(w.as_str());
                    owners.push(*id);
                }
            }
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&pats)
                .map_err(|e| (usize::MAX, e.to_string()))?;
            Some((ac, owners))
        };

        let regexes = if regexes.is_empty() {
            None
        } else {
            for (i, (p, _)) in regexes.iter().enumerate() {
                ascii_regex(&[p.as_str()]).map_err(|e| (i, e))?;
            }
            let pats: Vec<&str> = regexes.iter().map(|(p, _)| p.as_str()).collect();
            let re = ascii_regex(&pats).map_err(|e| (usize::MAX, e))?;
            Some((re, regexes.iter().map(|(_, id)| *id).collect()))
        };

        let numeric = [
            EntityType::CreditCardNumber,
            EntityType::UsSocialSecurityNumber,
            EntityType::PhoneNumber,
            EntityType::IpAddress,
            EntityType::IbanCode,
            EntityType::UsPassport,
            EntityType::DateOfBirth,
        ]
        .into_iter()
        .any(has);
        let hex = has(EntityType::IpAddress) || has(EntityType::MacAddress);
        let literal_min_len = literals
            .iter()
            .map(|l| l.min_len)
            .min()
            .unwrap_or(usize::MAX);
        Ok(Self {
            ids,
            email,
            literals,
            literal_min_len,
            words,
            regexes,
            numeric,
            hex,
        })
    }

    pub(crate) fn scratch(&self) -> Scratch {
        Scratch {
            email: self.email.as_ref().map(meta::Regex::create_cache),
            regexes: self.regexes.as_ref().map(|(re, _)| re.create_cache()),
            groups: Vec::new(),
        }
    }

    /// True when no detector is enabled: scanning would find nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.ids.iter().all(Option::is_none) && self.words.is_none() && self.regexes.is_none()
    }

    pub(crate) fn id(&self, ty: EntityType) -> Option<EntityId> {
        self.ids[ty as usize]
    }

    /// Heap bytes held by the compiled automata.
    pub(crate) fn memory_usage(&self) -> usize {
        self.email.as_ref().map_or(0, meta::Regex::memory_usage)
            + self.literals.len() * (std::mem::size_of::<LiteralFinder>() + 16)
            + self
                .words
                .as_ref()
                .map_or(0, |(ac, o)| ac.memory_usage() + o.len() * 2)
            + self
                .regexes
                .as_ref()
                .map_or(0, |(re, o)| re.memory_usage() + o.len() * 2)
    }

    /// Appends every detection in `cell` to `out` (unsorted, possibly overlapping), or
    /// with [`FirstOnly`], stops soon after the first (each detector checks between
    /// values: one may add a few past it). The choice is a type, so the hot instantiation,
    /// [`Every`], checks nothing.
    ///
    /// Hot path: a cell with nothing the enabled detectors need costs one pass of SIMD
    /// compares (a byte table under 16 bytes) and no allocation.
    ///
    /// Cost: linear in the cell's length for the built-in detectors and word lists (each
    /// detector moves forward through the cell; no window is scanned twice but for a
    /// bounded look-around), plus the custom regexes' search, whose iteration over matches
    /// is bounded by the `regex` crate's guarantees.
    // Inlined into the masker's two callers, as it was into its one before the
    // whole-cell rule added the second: a call per cell costs about 5% of the mix.
    #[inline(always)]
    pub(crate) fn find<S: Stop>(
        &self,
        cell: &[u8],
        gates: ColumnGates,
        scratch: &mut Scratch,
        out: &mut Vec<Detection>,
    ) {
        let dates = gates.date_of_birth && self.id(EntityType::DateOfBirth).is_some();
        // A cell that is exactly a date or timestamp (15% of a typical table) holds no
        // built-in entity outside birth-date columns; its digit count would otherwise send
        // it through every digit-window shape.
        if dates || !is_timestamp(cell) {
            self.find_builtin::<S>(cell, gates, dates, scratch, out);
        }
        if let Some((ac, owners)) = self.words.as_ref().filter(|_| !S::reached(out)) {
            text::words::<S>(ac, owners, cell, out);
        }
        if let (Some((re, owners)), Some(cache)) = (&self.regexes, scratch.regexes.as_mut())
            && !S::reached(out)
        {
            text::regexes::<S>(re, cache, owners, cell, out);
        }
    }

    /// The built-in detectors, each behind its prefilter on the gate.
    #[inline(always)]
    fn find_builtin<S: Stop>(
        &self,
        cell: &[u8],
        gates: ColumnGates,
        dates: bool,
        scratch: &mut Scratch,
        out: &mut Vec<Detection>,
    ) {
        let g = gate(cell);
        if g.classes & C_AT != 0
            && let (Some(re), Some(cache), Some(id)) = (
                &self.email,
                scratch.email.as_mut(),
                self.id(EntityType::EmailAddress),
            )
        {
            text::emails::<S>(re, cache, cell, id, out);
        }
        if self.numeric && g.digits >= 4 && !S::reached(out) {
            // A dotted quad has three dots: a price like 1234.56 stops here. (Dots are
            // counted here, not in the gate: only cells with digits need them.)
            let ipv4 = || {
                self.id(EntityType::IpAddress).is_some()
                    && cell.iter().filter(|&&b| b == b'.').count() >= 3
            };
            if g.digits >= numeric::MIN_DIGITS || dates || ipv4() {
                numeric::find::<S>(self, cell, gates, &mut scratch.groups, out);
            }
        }
        if self.hex && g.classes & (C_COLON | C_DASH) != 0 && cell.len() >= 3 && !S::reached(out) {
            // A MAC address has five separators; an IPv6 address "::" or seven colons. A
            // time of day (two colons) stops here.
            // The gate counted them (high, never low).
            let double_colon =
                || memchr::memchr_iter(b':', cell).any(|i| cell.get(i + 1) == Some(&b':'));
            let colon = g.colons >= 5 || (g.colons >= 2 && double_colon());
            let dash = g.dashes >= 5;
            if colon || dash {
                text::hex_addresses::<S>(self, cell, colon, dash, out);
            }
        }
        for lit in self
            .literals
            .iter()
            .filter(|_| cell.len() >= self.literal_min_len)
        {
            if g.classes & lit.bit != 0
                && (!lit.long || g.classes & C_LONG != 0)
                && cell.len() >= lit.min_len
                && !S::reached(out)
            {
                text::literal::<S>(self, lit, cell, out);
            }
        }
    }
}

/// Whether the whole cell is an ISO 8601 date or timestamp as databases print them:
/// `YYYY-MM-DD`, then optionally `[ T]HH:MM`, `:SS`, `.` and 1 to 6 fraction digits, and a
/// zone `Z`, `+HH`, `-HH`, `+HH:MM` or `+HHMM`.
///
/// Such a cell holds no built-in entity but a birth date: its bytes are digits and
/// `- :.+TZ`, so no `@`, no literal trigger's byte, at most three colons and three dashes
/// (no IPv6 or MAC window), and its digit groups have 1 to 6 digits with no two uppercase
/// letters before them (no card, SSN, phone, IPv4, IBAN or passport shape).
#[inline(always)]
fn is_timestamp(cell: &[u8]) -> bool {
    let digits = |from: usize, n: usize| {
        cell.get(from..from + n)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    let byte = |at: usize, b: u8| cell.get(at) == Some(&b);
    if !(byte(4, b'-') && byte(7, b'-') && digits(0, 4) && digits(5, 2) && digits(8, 2)) {
        return false;
    }
    let mut pos = 10;
    if (byte(10, b' ') || byte(10, b'T')) && digits(11, 2) && byte(13, b':') && digits(14, 2) {
        pos = 16;
        if byte(16, b':') && digits(17, 2) {
            pos = 19;
            if byte(19, b'.') {
                let fraction = cell[20..].iter().take_while(|b| b.is_ascii_digit()).count();
                if !(1..=6).contains(&fraction) {
                    return false;
                }
                pos = 20 + fraction;
            }
        }
        if byte(pos, b'Z') {
            pos += 1;
        } else if (byte(pos, b'+') || byte(pos, b'-')) && digits(pos + 1, 2) {
            pos += 3;
            if byte(pos, b':') && digits(pos + 1, 2) {
                pos += 3;
            } else if digits(pos, 2) {
                pos += 2;
            }
        }
    }
    pos == cell.len()
}

/// A byte that can be part of a word: ASCII alphanumerics, `_`, and any non-ASCII byte
/// (so a match never starts or ends inside a UTF-8 letter).
pub(crate) fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Whether a match may start at `pos`: the byte before is not a word byte.
pub(crate) fn starts_word(cell: &[u8], pos: usize) -> bool {
    pos == 0 || cell.get(pos - 1).is_none_or(|&b| !word_byte(b))
}

/// Whether a match may end at `pos`: the byte at `pos` is not a word byte.
pub(crate) fn ends_word(cell: &[u8], pos: usize) -> bool {
    cell.get(pos).is_none_or(|&b| !word_byte(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_builtins() -> Matcher {
        let builtins: Vec<(EntityType, EntityId)> = EntityType::ALL
            .iter()
            .enumerate()
            .map(|(i, &ty)| (ty, EntityId(i as u16)))
            .collect();
        Matcher::new(&builtins, &[], &[]).expect("builtins compile")
    }

    #[test]
    fn timestamps_skipped_by_the_prefilter_hold_no_builtin_entity() {
        let m = all_builtins();
        let mut scratch = m.scratch();
        // Every gate on but birth dates: a passport column must not see a 9-digit
        // fraction as a passport, so fractions stop at 6 digits.
        let gates = ColumnGates {
            date_of_birth: false,
            passport: true,
        };
        for cell in [
            "2024-01-05",
            "2024-01-05 10:22",
            "2024-01-05 10:22:33",
            "2024-01-05T10:22:33Z",
            "2024-01-05 10:22:33+00",
            "2024-01-05 10:22:33.123456+05:30",
            "2024-01-05 10:22:33.1-0800",
            "9999-99-99 99:99:99.999999-99:99",
        ] {
            assert!(is_timestamp(cell.as_bytes()), "{cell}");
            let mut out = Vec::new();
            m.find_builtin::<Every>(cell.as_bytes(), gates, false, &mut scratch, &mut out);
            assert!(out.is_empty(), "{cell}: {out:?}");
        }
        for cell in [
            "2024-01-05 10:22:33.123456789",
            "2024-01-05 10:22:33 555-234-5678",
            "2024-01-05x",
            "2024-1-05",
            "12345",
            "",
        ] {
            assert!(!is_timestamp(cell.as_bytes()), "{cell}");
        }
    }

    #[test]
    fn birth_date_columns_still_see_dates_in_timestamps() {
        let m = all_builtins();
        let mut scratch = m.scratch();
        let gates = ColumnGates {
            date_of_birth: true,
            passport: false,
        };
        let mut out = Vec::new();
        m.find::<Every>(b"1990-05-17 00:00:00", gates, &mut scratch, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].start, out[0].end), (0, 10));
    }

    #[test]
    fn gate_counts_are_exact_and_classes_match_the_table() {
        for cell in [
            &b"call 555-234-5678 or 10.0.0.1: ok"[..],
            b"Bearer abcdefghijklmnopqrstuvwxyz 12:34",
            b"a@b.cd JKS www",
            b"0123456789abcdef",
        ] {
            let g = gate(cell);
            let count = |f: fn(&u8) -> bool| cell.iter().filter(|b| f(b)).count();
            assert_eq!(g.digits, count(u8::is_ascii_digit));
            assert_eq!(g.colons, count(|&b| b == b':'));
            assert_eq!(g.dashes, count(|&b| b == b'-'));
            let table = cell.iter().fold(0, |c, &b| c | TAIL_CLASS[usize::from(b)]);
            assert_eq!(
                g.classes & !C_LONG,
                table,
                "{}",
                String::from_utf8_lossy(cell)
            );
        }
    }
}
