//! The matcher: every detector of a policy, compiled once, behind cheap prefilters.
//!
//! ```text
//! cell bytes ──► gate: one pass of SIMD compares per 32-byte chunk (counts of digits, ':'
//!                 and '-'; '@', '.', rare letters; a long-token bit)
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

/// Per-column switches for detectors that only run in columns named for them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ColumnGates {
    pub(crate) date_of_birth: bool,
    pub(crate) passport: bool,
}

const C_AT: u16 = 1;
const C_COLON: u16 = 2;
const C_DOT: u16 = 4;
const C_DASH: u16 = 8;
// The rare bytes of the literal triggers: AKIA, ASIA, eyJ, bearer/Bearer/BEARER, www.
const C_K: u16 = 16;
const C_S: u16 = 32;
const C_J: u16 = 64;
const C_B: u16 = 128;
const C_W: u16 = 256;
/// Some aligned 8-byte block holds no space (always set for a tail of 8 bytes or more):
/// every token of 15 or more non-space bytes (AWS keys, JWTs, bearer tokens, key bodies)
/// covers such a block, so prose of short words skips the secret finders.
const C_LONG: u16 = 512;

/// What the gate learnt about a cell in one pass.
#[derive(Clone, Copy, Debug)]
struct Gate {
    classes: u16,
    digits: usize,
    colons: usize,
    dashes: usize,
}

/// One chunk's share of a [`Gate`].
#[derive(Clone, Copy, Debug)]
struct Counts {
    digits: usize,
    colons: usize,
    dashes: usize,
    classes: u16,
}

const CHUNK: usize = 32;

/// The same classes as [`chunk_gate`], by table, with bit 15 marking digits.
static TAIL_CLASS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = 1 << 15;
        b += 1;
    }
    t[b'@' as usize] = C_AT;
    t[b':' as usize] = C_COLON;
    t[b'.' as usize] = C_DOT;
    t[b'-' as usize] = C_DASH;
    t[b'K' as usize] = C_K;
    t[b'S' as usize] = C_S;
    t[b'J' as usize] = C_J;
    t[b'b' as usize] = C_B;
    t[b'B' as usize] = C_B;
    t[b'w' as usize] = C_W;
    t
};

/// One chunk's digit count and classes. Written as plain reductions over a fixed-size
/// array so that the compiler turns it into SIMD compares (the crate forbids `unsafe`, so
/// no intrinsics): about 4x faster than a byte-class table lookup per byte.
#[inline(always)]
fn chunk_gate<const N: usize>(chunk: &[u8; N]) -> Counts {
    let (mut digits, mut at, mut colon, mut dot, mut dash) = (0u8, 0u8, 0u8, 0u8, 0u8);
    let (mut k, mut s, mut j, mut bb, mut w) = (0u8, 0u8, 0u8, 0u8, 0u8);
    for &b in chunk {
        digits += u8::from(b.wrapping_sub(b'0') < 10);
        at |= u8::from(b == b'@');
        colon += u8::from(b == b':');
        dot |= u8::from(b == b'.');
        dash += u8::from(b == b'-');
        k |= u8::from(b == b'K');
        s |= u8::from(b == b'S');
        j |= u8::from(b == b'J');
        bb |= u8::from(b | 0x20 == b'b');
        w |= u8::from(b == b'w');
    }
    let mut long = false;
    for block in chunk.chunks_exact(8) {
        let word = u64::from_le_bytes(<[u8; 8]>::try_from(block).unwrap_or([b' '; 8]));
        let x = word ^ 0x2020_2020_2020_2020;
        let has_space = x.wrapping_sub(0x0101_0101_0101_0101) & !x & 0x8080_8080_8080_8080 != 0;
        long |= !has_space;
    }
    let classes = (u16::from(long) * C_LONG)
        | (u16::from(at) * C_AT)
        | (u16::from(colon.min(1)) * C_COLON)
        | (u16::from(dot) * C_DOT)
        | (u16::from(dash.min(1)) * C_DASH)
        | (u16::from(k) * C_K)
        | (u16::from(s) * C_S)
        | (u16::from(j) * C_J)
        | (u16::from(bb) * C_B)
        | (u16::from(w) * C_W);
    Counts {
        digits: usize::from(digits),
        colons: usize::from(colon),
        dashes: usize::from(dash),
        classes,
    }
}

/// The gate over a whole cell. The counts may include some bytes twice (the last chunk
/// overlaps the one before): it is only compared against minimums, so counting high can
/// cost a search but never miss a value.
fn gate(cell: &[u8]) -> Gate {
    let mut classes = 0u16;
    let mut digits = 0usize;
    let mut colons = 0usize;
    let mut dashes = 0usize;
    let mut add = |c: Counts| {
        digits += c.digits;
        colons += c.colons;
        dashes += c.dashes;
        classes |= c.classes;
    };
    if cell.len() >= CHUNK {
        let mut chunks = cell.chunks_exact(CHUNK);
        for chunk in &mut chunks {
            if let Ok(chunk) = <&[u8; CHUNK]>::try_from(chunk) {
                add(chunk_gate(chunk));
            }
        }
        if !chunks.remainder().is_empty()
            && let Ok(last) = <&[u8; CHUNK]>::try_from(&cell[cell.len() - CHUNK..])
        {
            add(chunk_gate(last));
        }
    } else if cell.len() >= CHUNK / 2 {
        // Two overlapping half chunks cover 16 to 31 bytes.
        for half in [&cell[..CHUNK / 2], &cell[cell.len() - CHUNK / 2..]] {
            if let Ok(half) = <&[u8; CHUNK / 2]>::try_from(half) {
                add(chunk_gate(half));
            }
        }
    } else {
        // Short cells (names, numbers) by table, a byte at a time.
        let mut short = Counts {
            digits: 0,
            colons: 0,
            dashes: 0,
            classes: 0,
        };
        for &b in cell {
            let c = TAIL_CLASS[usize::from(b)];
            short.classes |= c;
            short.digits += usize::from(c >> 15);
            short.colons += usize::from(c & C_COLON != 0);
            short.dashes += usize::from(c & C_DASH != 0);
        }
        short.classes &= 0x7FFF;
        add(short);
    }
    // The overlapping last chunk keeps the long-token bit exact: a run of 15 non-space
    // bytes that crosses into it covers either the grid's last block before it or its own
    // first block. Short cells are too short to tell cheaply.
    if cell.len() < CHUNK / 2 && cell.len() >= 8 {
        classes |= C_LONG;
    }
    Gate {
        classes,
        digits,
        colons,
        dashes,
    }
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
            lit("EARER", Literal::Bearer, C_B, 23);
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

    /// Appends every detection in `cell` to `out` (unsorted, possibly overlapping).
    ///
    /// Hot path: a cell with nothing the enabled detectors need costs one pass over a
    /// byte table and no allocation.
    pub(crate) fn find(
        &self,
        cell: &[u8],
        gates: ColumnGates,
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
            text::emails(re, cache, cell, id, out);
        }
        if self.numeric && g.digits >= 4 {
            let dates = gates.date_of_birth && self.id(EntityType::DateOfBirth).is_some();
            // A dotted quad has three dots: a price like 1234.56 stops here.
            let ipv4 = || {
                g.classes & C_DOT != 0
                    && self.id(EntityType::IpAddress).is_some()
                    && cell.iter().filter(|&&b| b == b'.').count() >= 3
            };
            if g.digits >= numeric::MIN_DIGITS || dates || ipv4() {
                numeric::find(self, cell, gates, &mut scratch.groups, out);
            }
        }
        if self.hex && g.classes & (C_COLON | C_DASH) != 0 && cell.len() >= 3 {
            // A MAC address has five separators; an IPv6 address "::" or seven colons. A
            // time of day (two colons) stops here.
            // The gate counted them (high, never low).
            let double_colon =
                || memchr::memchr_iter(b':', cell).any(|i| cell.get(i + 1) == Some(&b':'));
            let colon = g.colons >= 5 || (g.colons >= 2 && double_colon());
            let dash = g.dashes >= 5;
            if colon || dash {
                text::hex_addresses(self, cell, colon, dash, out);
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
            {
                text::literal(self, lit, cell, out);
            }
        }
        if let Some((ac, owners)) = &self.words {
            text::words(ac, owners, cell, out);
        }
        if let (Some((re, owners)), Some(cache)) = (&self.regexes, scratch.regexes.as_mut()) {
            text::regexes(re, cache, owners, cell, out);
        }
    }
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
