//! The matcher: every detector of a policy, compiled once, behind cheap prefilters.
//!
//! ```text
//! cell bytes ──► gate: one pass over a byte-class table (digit count, '@', ':', '.', '-')
//!                 │ nothing that any enabled detector needs ──► no detection (the common case)
//!                 ▼
//!   '@' (memchr)        ──► email window ──► email regex (ASCII) ──► length checks
//!   digit windows       ──► group shapes (4-4-4-4, 3-2-4, 3-3-4, d.d.d.d, ...) ──► Luhn,
//!                            SSN ranges, octets, IBAN mod-97, calendar dates
//!   ':' / '-' (memchr)  ──► hex windows ──► IPv6 parse, MAC shape
//!   literals (Aho-Corasick: AKIA ASIA eyJ -----BEGIN bearer ://) ──► token shapes
//!   custom words (Aho-Corasick, word boundaries), custom regexes (one multi-pattern regex)
//! ```
//!
//! Every detector reports spans; overlapping spans are merged by the masker.

mod numeric;
mod text;
pub(crate) mod validate;

use aho_corasick::AhoCorasick;
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

const C_DIGIT: u8 = 1;
const C_AT: u8 = 2;
const C_COLON: u8 = 4;
const C_DOT: u8 = 8;
const C_DASH: u8 = 16;
const C_LITERAL: u8 = 32;

/// Byte classes for the gate, without the literal bits (which depend on the policy).
const BASE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = b'0';
    while b <= b'9' {
        t[b as usize] = C_DIGIT;
        b += 1;
    }
    t[b'@' as usize] = C_AT;
    t[b':' as usize] = C_COLON;
    t[b'.' as usize] = C_DOT;
    t[b'-' as usize] = C_DASH;
    t
};

/// What the gate learnt about a cell in one pass.
#[derive(Clone, Copy, Debug)]
struct Gate {
    classes: u8,
    digits: usize,
}

fn gate(class: &[u8; 256], cell: &[u8]) -> Gate {
    let mut classes = 0u8;
    let mut digits = 0usize;
    for &b in cell {
        let c = class[b as usize];
        classes |= c;
        digits += usize::from(c & C_DIGIT);
    }
    Gate { classes, digits }
}

/// Literal triggers, in the order of the Aho-Corasick patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Literal {
    Aws,
    Jwt,
    PrivateKey,
    Bearer,
    UrlScheme,
    UrlWww,
}

/// All detectors of one policy. Immutable; shared by every session.
#[derive(Debug)]
pub(crate) struct Matcher {
    ids: [Option<EntityId>; EntityType::ALL.len()],
    email: Option<meta::Regex>,
    literals: Option<(AhoCorasick, Vec<Literal>)>,
    class: [u8; 256],
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

        let mut pats: Vec<&str> = Vec::new();
        let mut kinds = Vec::new();
        let mut class = BASE_CLASS;
        // Each literal marks one of its rarer bytes (both cases where the match is
        // case-insensitive): a cell without any marked byte holds no literal.
        let mut lit = |p: &'static [&'static str], k: Literal, rare: &[u8]| {
            for s in p {
                pats.push(s);
                kinds.push(k);
            }
            for &b in rare {
                class[b as usize] |= C_LITERAL;
            }
        };
        if has(EntityType::AwsAccessKey) {
            lit(&["AKIA", "ASIA"], Literal::Aws, b"KS");
        }
        if has(EntityType::Jwt) {
            lit(&["eyJ"], Literal::Jwt, b"J");
        }
        if has(EntityType::PrivateKey) {
            lit(&["-----BEGIN "], Literal::PrivateKey, b"-");
        }
        if has(EntityType::BearerToken) {
            lit(&["bearer"], Literal::Bearer, b"bB");
        }
        if has(EntityType::Url) {
            lit(&["://"], Literal::UrlScheme, b":");
            lit(&["www."], Literal::UrlWww, b"wW");
        }
        let literals = if pats.is_empty() {
            None
        } else {
            let ac = AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .build(&pats)
                .map_err(|e| (usize::MAX, e.to_string()))?;
            Some((ac, kinds))
        };

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
        Ok(Self {
            ids,
            email,
            literals,
            class,
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
            + self
                .literals
                .as_ref()
                .map_or(0, |(ac, k)| ac.memory_usage() + k.len())
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
        let g = gate(&self.class, cell);
        if g.classes & C_AT != 0
            && let (Some(re), Some(cache), Some(id)) = (
                &self.email,
                scratch.email.as_mut(),
                self.id(EntityType::EmailAddress),
            )
        {
            text::emails(re, cache, cell, id, out);
        }
        if self.numeric {
            let ipv4 = g.classes & C_DOT != 0 && self.id(EntityType::IpAddress).is_some();
            let dates = gates.date_of_birth && self.id(EntityType::DateOfBirth).is_some();
            if g.digits >= numeric::MIN_DIGITS || (g.digits >= 4 && (ipv4 || dates)) {
                numeric::find(self, cell, gates, &mut scratch.groups, out);
            }
        }
        if self.hex && g.classes & (C_COLON | C_DASH) != 0 && cell.len() >= 3 {
            text::hex_addresses(self, cell, g.classes & C_COLON != 0, out);
        }
        if let Some((ac, kinds)) = &self.literals
            && cell.len() >= 10
            && g.classes & C_LITERAL != 0
        {
            text::literals(self, ac, kinds, cell, out);
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
