//! PostgreSQL values in binary format, for masking: which types hold text
//! to scan, and arrays, records, ranges and multiranges decoded into their
//! parts, each masked as its own type, and encoded again.
//!
//! In binary format `array_agg(email)`, `row(email)`, `email::bytea` and
//! `to_jsonb(email)` reach the client with the email inside bytes that are
//! not text; such values were passed through unscanned (issue 13, item 2).
//! Now every binary value is one of:
//!
//! ```text
//! text, varchar, bpchar, name, json, xml, ... ─► text: masked in place
//! int*, numeric, float*, inet, macaddr, uuid,
//!   jsonb, jsonpath, tsvector, tsquery, bit ... ─► rendered as text, scanned: a find makes it NULL
//! bytea, "char" ─────────────────────────────► its bytes scanned: a find makes it NULL
//! arrays, records ───────────────────────────► decoded; each element or field masked as its
//!                                              type (text in place, others to NULL), encoded again
//! ranges, multiranges ───────────────────────► each bound rendered and scanned: a find makes it NULL
//! bool, date, time[tz], timestamp[tz], interval, void ─► no text a detector could find: passed
//! anything else (an extension's type, an enum, a domain's array, a named
//!   composite, a value that does not parse) ──► NULL: fail closed
//! ```
//!
//! Layouts are PostgreSQL's `*_send` functions (`array_send`,
//! `record_send`, `range_send`, `multirange_send`); every count is checked
//! against the bytes left before it is trusted, and nesting stops at
//! [`MAX_DEPTH`].

use bytes::BufMut;
use hoop_masking::{CellMasker, CellOutcome, ResultPlan, ValueKind};

use super::render::{self, Cursor, Render};

/// Arrays and records nested deeper than this are NULL: the recursion's
/// bound. PostgreSQL's own arrays have at most 6 dimensions (in one
/// level); deeper nesting of records and arrays is rare.
const MAX_DEPTH: usize = 16;

/// `range_send`'s flags: an empty range, and bounds that are infinite or
/// NULL, for which no bytes follow.
const RANGE_EMPTY: u8 = 0x01;
const RANGE_LB_INF: u8 = 0x08;
const RANGE_UB_INF: u8 = 0x10;
const RANGE_LB_NULL: u8 = 0x20;
const RANGE_UB_NULL: u8 = 0x40;

/// What a binary value of a PostgreSQL type holds, for masking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PgBinary {
    /// Its binary form is its text (UTF-8): masked in place.
    Text,
    /// Bytes scanned as they are (and without their NULs, as text in UTF-16
    /// would show), NULL when anything is found (`bytea`, `"char"`).
    Raw,
    /// Rendered as text and scanned, NULL when anything is found.
    Render(Render),
    /// No text a detector could find: passed as it is.
    Opaque,
    /// An array of this element type.
    Array { element: u32 },
    /// A record: its fields name their own types.
    Record,
    /// A range over this subtype.
    Range { subtype: u32 },
    /// A multirange of ranges over this subtype.
    Multirange { subtype: u32 },
    /// A type hoop does not know: NULL.
    Unknown,
}

/// PostgreSQL's built-in type OIDs (`pg_type.dat`) that this module names.
mod oid {
    pub(super) const BOOL: u32 = 16;
    pub(super) const BYTEA: u32 = 17;
    pub(super) const CHAR: u32 = 18;
    pub(super) const NAME: u32 = 19;
    pub(super) const INT8: u32 = 20;
    pub(super) const INT2: u32 = 21;
    pub(super) const INT2VECTOR: u32 = 22;
    pub(super) const INT4: u32 = 23;
    pub(super) const REGPROC: u32 = 24;
    pub(super) const TEXT: u32 = 25;
    pub(super) const OID: u32 = 26;
    pub(super) const TID: u32 = 27;
    pub(super) const XID: u32 = 28;
    pub(super) const CID: u32 = 29;
    pub(super) const OIDVECTOR: u32 = 30;
    pub(super) const JSON: u32 = 114;
    pub(super) const XML: u32 = 142;
    pub(super) const PG_NODE_TREE: u32 = 194;
    pub(super) const POINT: u32 = 600;
    pub(super) const LSEG: u32 = 601;
    pub(super) const PATH: u32 = 602;
    pub(super) const BOX: u32 = 603;
    pub(super) const POLYGON: u32 = 604;
    pub(super) const LINE: u32 = 628;
    pub(super) const CIDR: u32 = 650;
    pub(super) const FLOAT4: u32 = 700;
    pub(super) const FLOAT8: u32 = 701;
    pub(super) const UNKNOWN: u32 = 705;
    pub(super) const CIRCLE: u32 = 718;
    pub(super) const MACADDR8: u32 = 774;
    pub(super) const MONEY: u32 = 790;
    pub(super) const MACADDR: u32 = 829;
    pub(super) const INET: u32 = 869;
    pub(super) const BPCHAR: u32 = 1042;
    pub(super) const VARCHAR: u32 = 1043;
    pub(super) const DATE: u32 = 1082;
    pub(super) const TIME: u32 = 1083;
    pub(super) const TIMESTAMP: u32 = 1114;
    pub(super) const TIMESTAMPTZ: u32 = 1184;
    pub(super) const INTERVAL: u32 = 1186;
    pub(super) const TIMETZ: u32 = 1266;
    pub(super) const BIT: u32 = 1560;
    pub(super) const VARBIT: u32 = 1562;
    pub(super) const NUMERIC: u32 = 1700;
    pub(super) const REFCURSOR: u32 = 1790;
    pub(super) const REGPROCEDURE: u32 = 2202;
    pub(super) const REGOPER: u32 = 2203;
    pub(super) const REGOPERATOR: u32 = 2204;
    pub(super) const REGCLASS: u32 = 2205;
    pub(super) const REGTYPE: u32 = 2206;
    pub(super) const RECORD: u32 = 2249;
    pub(super) const CSTRING: u32 = 2275;
    pub(super) const VOID: u32 = 2278;
    pub(super) const RECORD_ARRAY: u32 = 2287;
    pub(super) const UUID: u32 = 2950;
    pub(super) const PG_LSN: u32 = 3220;
    pub(super) const TSVECTOR: u32 = 3614;
    pub(super) const TSQUERY: u32 = 3615;
    pub(super) const REGCONFIG: u32 = 3734;
    pub(super) const REGDICTIONARY: u32 = 3769;
    pub(super) const JSONB: u32 = 3802;
    pub(super) const INT4RANGE: u32 = 3904;
    pub(super) const NUMRANGE: u32 = 3906;
    pub(super) const TSRANGE: u32 = 3908;
    pub(super) const TSTZRANGE: u32 = 3910;
    pub(super) const DATERANGE: u32 = 3912;
    pub(super) const INT8RANGE: u32 = 3926;
    pub(super) const JSONPATH: u32 = 4072;
    pub(super) const REGNAMESPACE: u32 = 4089;
    pub(super) const REGROLE: u32 = 4096;
    pub(super) const REGCOLLATION: u32 = 4191;
    pub(super) const INT4MULTIRANGE: u32 = 4451;
    pub(super) const NUMMULTIRANGE: u32 = 4532;
    pub(super) const TSMULTIRANGE: u32 = 4533;
    pub(super) const TSTZMULTIRANGE: u32 = 4534;
    pub(super) const DATEMULTIRANGE: u32 = 4535;
    pub(super) const INT8MULTIRANGE: u32 = 4536;
    pub(super) const XID8: u32 = 5069;
}

/// The built-in array types: (array, element), from `pg_type` where
/// `typelem <> 0` and the OID is fixed (below 10,000), plus `record[]`.
/// `int2vector` and `oidvector` are sent as arrays too.
const ARRAYS: [(u32, u32); 87] = [
    (22, 21),
    (30, 26),
    (143, 142),
    (199, 114),
    (210, 71),
    (270, 75),
    (271, 5069),
    (272, 81),
    (273, 83),
    (629, 628),
    (651, 650),
    (719, 718),
    (775, 774),
    (791, 790),
    (1000, 16),
    (1001, 17),
    (1002, 18),
    (1003, 19),
    (1005, 21),
    (1006, 22),
    (1007, 23),
    (1008, 24),
    (1009, 25),
    (1010, 27),
    (1011, 28),
    (1012, 29),
    (1013, 30),
    (1014, 1042),
    (1015, 1043),
    (1016, 20),
    (1017, 600),
    (1018, 601),
    (1019, 602),
    (1020, 603),
    (1021, 700),
    (1022, 701),
    (1027, 604),
    (1028, 26),
    (1034, 1033),
    (1040, 829),
    (1041, 869),
    (1115, 1114),
    (1182, 1082),
    (1183, 1083),
    (1185, 1184),
    (1187, 1186),
    (1231, 1700),
    (1263, 2275),
    (1270, 1266),
    (1561, 1560),
    (1563, 1562),
    (2201, 1790),
    (2207, 2202),
    (2208, 2203),
    (2209, 2204),
    (2210, 2205),
    (2211, 2206),
    (2287, 2249),
    (2949, 2970),
    (2951, 2950),
    (3221, 3220),
    (3643, 3614),
    (3644, 3642),
    (3645, 3615),
    (3735, 3734),
    (3770, 3769),
    (3807, 3802),
    (3905, 3904),
    (3907, 3906),
    (3909, 3908),
    (3911, 3910),
    (3913, 3912),
    (3927, 3926),
    (4073, 4072),
    (4090, 4089),
    (4097, 4096),
    (4192, 4191),
    (5039, 5038),
    (6150, 4451),
    (6151, 4532),
    (6152, 4533),
    (6153, 4534),
    (6155, 4535),
    (6157, 4536),
    (oid::INT2VECTOR, oid::INT2),
    (oid::OIDVECTOR, oid::OID),
    (oid::RECORD_ARRAY, oid::RECORD),
];

/// What a binary value of type `type_oid` holds.
pub(super) fn classify(type_oid: u32) -> PgBinary {
    use oid::*;
    match type_oid {
        TEXT | VARCHAR | BPCHAR | NAME | JSON | XML | UNKNOWN | CSTRING | REFCURSOR
        | PG_NODE_TREE => PgBinary::Text,
        BYTEA | CHAR => PgBinary::Raw,
        INT2 | INT4 | INT8 | MONEY => PgBinary::Render(Render::BigEndian),
        OID | XID | CID | XID8 | PG_LSN | REGPROC | REGPROCEDURE | REGOPER | REGOPERATOR
        | REGCLASS | REGTYPE | REGCONFIG | REGDICTIONARY | REGNAMESPACE | REGROLE
        | REGCOLLATION => PgBinary::Render(Render::Unsigned),
        FLOAT4 | FLOAT8 => PgBinary::Render(Render::Float),
        NUMERIC => PgBinary::Render(Render::Numeric),
        INET | CIDR => PgBinary::Render(Render::Inet),
        MACADDR | MACADDR8 => PgBinary::Render(Render::Mac),
        UUID => PgBinary::Render(Render::Uuid),
        JSONB | JSONPATH => PgBinary::Render(Render::Versioned),
        TSVECTOR => PgBinary::Render(Render::TsVector),
        TSQUERY => PgBinary::Render(Render::TsQuery),
        BIT | VARBIT => PgBinary::Render(Render::Bits),
        TID => PgBinary::Render(Render::Tid),
        POINT | LSEG | BOX | LINE | CIRCLE => PgBinary::Render(Render::Floats(0)),
        // A closed flag and a point count; a point count.
        PATH => PgBinary::Render(Render::Floats(5)),
        POLYGON => PgBinary::Render(Render::Floats(4)),
        BOOL | DATE | TIME | TIMETZ | TIMESTAMP | TIMESTAMPTZ | INTERVAL | VOID => PgBinary::Opaque,
        RECORD => PgBinary::Record,
        INT4RANGE | INT4MULTIRANGE => range(INT4, type_oid == INT4MULTIRANGE),
        INT8RANGE | INT8MULTIRANGE => range(INT8, type_oid == INT8MULTIRANGE),
        NUMRANGE | NUMMULTIRANGE => range(NUMERIC, type_oid == NUMMULTIRANGE),
        TSRANGE | TSMULTIRANGE => range(TIMESTAMP, type_oid == TSMULTIRANGE),
        TSTZRANGE | TSTZMULTIRANGE => range(TIMESTAMPTZ, type_oid == TSTZMULTIRANGE),
        DATERANGE | DATEMULTIRANGE => range(DATE, type_oid == DATEMULTIRANGE),
        _ => match ARRAYS.iter().find(|(array, _)| *array == type_oid) {
            Some(&(_, element)) => PgBinary::Array { element },
            None => PgBinary::Unknown,
        },
    }
}

fn range(subtype: u32, multi: bool) -> PgBinary {
    if multi {
        PgBinary::Multirange { subtype }
    } else {
        PgBinary::Range { subtype }
    }
}

/// Masks binary values of one column, part by part, under the column's
/// plan.
pub(super) struct PartMasker<'a> {
    pub(super) masker: &'a mut CellMasker,
    pub(super) plan: &'a ResultPlan,
    pub(super) column: usize,
    /// Reused for renderings.
    pub(super) rendered: &'a mut Vec<u8>,
}

impl PartMasker<'_> {
    /// Masks `value`, of `class`: `Replaced` appends the new value to `out`;
    /// `Unchanged` and `Null` leave `out` as it was.
    pub(super) fn mask(&mut self, class: PgBinary, value: &[u8], out: &mut Vec<u8>) -> CellOutcome {
        self.value(class, value, 0, out)
    }

    fn value(
        &mut self,
        class: PgBinary,
        value: &[u8],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> CellOutcome {
        match class {
            PgBinary::Text => {
                self.masker
                    .mask_part(self.plan, self.column, value, ValueKind::Text, out)
            }
            PgBinary::Raw => match self.typed(value) {
                // Bytes of text in UTF-16 or UTF-32 show it without their NULs.
                CellOutcome::Unchanged => {
                    self.rendered.clear();
                    render::without_nuls(value, self.rendered);
                    let stripped = std::mem::take(self.rendered);
                    let outcome = if stripped.is_empty() {
                        CellOutcome::Unchanged
                    } else {
                        self.typed(&stripped)
                    };
                    *self.rendered = stripped;
                    outcome
                }
                found => found,
            },
            PgBinary::Render(render) => {
                if render.render(value, self.rendered).is_none() {
                    return CellOutcome::Null;
                }
                let rendered = std::mem::take(self.rendered);
                let outcome = self.typed(&rendered);
                *self.rendered = rendered;
                outcome
            }
            PgBinary::Opaque => CellOutcome::Unchanged,
            PgBinary::Unknown => CellOutcome::Null,
            _ if depth >= MAX_DEPTH => CellOutcome::Null,
            PgBinary::Array { .. } | PgBinary::Record => {
                let base = out.len();
                let outcome = match class {
                    PgBinary::Array { element } => self.array(element, value, depth, out),
                    _ => self.record(value, depth, out),
                };
                outcome.unwrap_or_else(|| {
                    // A part that did not parse: nothing of it is kept.
                    out.truncate(base);
                    CellOutcome::Null
                })
            }
            PgBinary::Range { subtype } => self
                .range(subtype, value, depth)
                .unwrap_or(CellOutcome::Null),
            PgBinary::Multirange { subtype } => self
                .multirange(subtype, value, depth)
                .unwrap_or(CellOutcome::Null),
        }
    }

    /// Text scanned as typed: a find makes it NULL (never written to).
    fn typed(&mut self, text: &[u8]) -> CellOutcome {
        self.masker.mask_part(
            self.plan,
            self.column,
            text,
            ValueKind::TypedText,
            &mut Vec::new(),
        )
    }

    /// Masks one part (an element or a field) of a value being encoded
    /// again into `out`: writes its length and bytes, or -1 for NULL.
    /// Returns whether it changed and whether it became NULL.
    fn part(
        &mut self,
        class: PgBinary,
        part: Option<&[u8]>,
        depth: usize,
        out: &mut Vec<u8>,
    ) -> (bool, bool) {
        let Some(bytes) = part else {
            out.put_i32(-1);
            return (false, true);
        };
        let length_at = out.len();
        out.put_i32(0);
        let start = out.len();
        match self.value(class, bytes, depth + 1, out) {
            CellOutcome::Unchanged => {
                out.extend_from_slice(bytes);
                patch_length(out, length_at, bytes.len());
                (false, false)
            }
            CellOutcome::Replaced => match i32::try_from(out.len() - start) {
                Ok(_) => {
                    let len = out.len() - start;
                    patch_length(out, length_at, len);
                    (true, false)
                }
                Err(_) => {
                    out.truncate(length_at);
                    out.put_i32(-1);
                    (true, true)
                }
            },
            CellOutcome::Null => {
                out.truncate(length_at);
                out.put_i32(-1);
                (true, true)
            }
        }
    }

    /// `array_send`: dimensions, a has-NULLs flag, the element type, each
    /// dimension's size and lower bound, then the elements. `None` when it
    /// does not parse (the caller drops what was written).
    fn array(
        &mut self,
        element: u32,
        value: &[u8],
        depth: usize,
        out: &mut Vec<u8>,
    ) -> Option<CellOutcome> {
        let mut r = Cursor(value);
        let dims = usize::try_from(r.i32()?).ok().filter(|&d| d <= 6)?;
        let flags = r.i32()?;
        if r.u32()? != element || !matches!(flags, 0 | 1) {
            return None;
        }
        let header = r.take(dims * 8)?;
        let mut items = usize::from(dims > 0);
        for size in header.chunks_exact(8) {
            let size = i32::from_be_bytes([size[0], size[1], size[2], size[3]]);
            items = items.checked_mul(usize::try_from(size).ok()?)?;
        }
        if items.checked_mul(4)? > r.0.len() {
            return None;
        }
        let base = out.len();
        out.extend_from_slice(&value[..value.len() - r.0.len()]);
        let class = classify(element);
        let (mut changed, mut nulls) = (false, flags == 1);
        for _ in 0..items {
            let part = read_part(&mut r)?;
            let (c, n) = self.part(class, part, depth, out);
            changed |= c;
            nulls |= n;
        }
        if !r.0.is_empty() {
            return None;
        }
        if !changed {
            out.truncate(base);
            return Some(CellOutcome::Unchanged);
        }
        // The has-NULLs flag, after the dimension count.
        out[base + 4..base + 8].copy_from_slice(&i32::from(nulls).to_be_bytes());
        Some(CellOutcome::Replaced)
    }

    /// `record_send`: a field count, then each field's type, length and
    /// bytes. `None` when it does not parse (the caller drops what was
    /// written).
    fn record(&mut self, value: &[u8], depth: usize, out: &mut Vec<u8>) -> Option<CellOutcome> {
        let mut r = Cursor(value);
        let fields = r.count(8)?;
        let base = out.len();
        out.put_i32(i32::try_from(fields).ok()?);
        let mut changed = false;
        for _ in 0..fields {
            let type_oid = r.u32()?;
            out.put_u32(type_oid);
            let part = read_part(&mut r)?;
            changed |= self.part(classify(type_oid), part, depth, out).0;
        }
        if !r.0.is_empty() {
            return None;
        }
        if !changed {
            out.truncate(base);
            return Some(CellOutcome::Unchanged);
        }
        Some(CellOutcome::Replaced)
    }

    /// `range_send`: flags, then the bounds the flags say are there. A
    /// bound with anything to mask makes the range NULL (a range with a
    /// bound removed would mean another range).
    fn range(&mut self, subtype: u32, value: &[u8], depth: usize) -> Option<CellOutcome> {
        let mut r = Cursor(value);
        let flags = r.u8()?;
        let class = classify(subtype);
        let mut outcome = CellOutcome::Unchanged;
        for (infinite, null) in [(RANGE_LB_INF, RANGE_LB_NULL), (RANGE_UB_INF, RANGE_UB_NULL)] {
            if flags & (RANGE_EMPTY | infinite | null) != 0 {
                continue;
            }
            let bound = read_part(&mut r)??;
            if self.value(class, bound, depth + 1, &mut Vec::new()) != CellOutcome::Unchanged {
                outcome = CellOutcome::Null;
            }
        }
        r.0.is_empty().then_some(outcome)
    }

    /// `multirange_send`: a range count, then each range's length and
    /// bytes.
    fn multirange(&mut self, subtype: u32, value: &[u8], depth: usize) -> Option<CellOutcome> {
        let mut r = Cursor(value);
        let ranges = r.count(5)?;
        let mut outcome = CellOutcome::Unchanged;
        for _ in 0..ranges {
            let range = read_part(&mut r)??;
            if self.range(subtype, range, depth + 1)? != CellOutcome::Unchanged {
                outcome = CellOutcome::Null;
            }
        }
        r.0.is_empty().then_some(outcome)
    }
}

/// A length-prefixed part: `Some(None)` for NULL (length -1).
fn read_part<'a>(r: &mut Cursor<'a>) -> Option<Option<&'a [u8]>> {
    match r.i32()? {
        -1 => Some(None),
        len => Some(Some(r.take(usize::try_from(len).ok()?)?)),
    }
}

fn patch_length(out: &mut [u8], at: usize, len: usize) {
    let len = i32::try_from(len).unwrap_or(i32::MAX);
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use hoop_masking::{ColumnInfo, CompiledPolicy};

    use super::*;

    /// `array_send` of a one-dimensional array of `element` values.
    fn array(element: u32, items: &[Option<&[u8]>]) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_i32(1);
        out.put_i32(i32::from(items.iter().any(Option::is_none)));
        out.put_u32(element);
        out.put_i32(items.len() as i32);
        out.put_i32(1);
        for item in items {
            match item {
                Some(bytes) => {
                    out.put_i32(bytes.len() as i32);
                    out.extend_from_slice(bytes);
                }
                None => out.put_i32(-1),
            }
        }
        out
    }

    /// `record_send` of fields (type, value).
    fn record(fields: &[(u32, Option<&[u8]>)]) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_i32(fields.len() as i32);
        for (type_oid, value) in fields {
            out.put_u32(*type_oid);
            match value {
                Some(bytes) => {
                    out.put_i32(bytes.len() as i32);
                    out.extend_from_slice(bytes);
                }
                None => out.put_i32(-1),
            }
        }
        out
    }

    /// Masks `value` of `class` with the default policy: `None` for NULL.
    fn masked(class: PgBinary, value: &[u8]) -> Option<Vec<u8>> {
        let policy = CompiledPolicy::default();
        let plan = policy.plan(&[ColumnInfo::new("v", ValueKind::Structured)]);
        let mut masker = policy.masker();
        let mut rendered = Vec::new();
        let mut out = b"before".to_vec();
        let outcome = PartMasker {
            masker: &mut masker,
            plan: &plan,
            column: 0,
            rendered: &mut rendered,
        }
        .mask(class, value, &mut out);
        match outcome {
            CellOutcome::Unchanged => {
                assert_eq!(out, b"before");
                Some(value.to_vec())
            }
            CellOutcome::Replaced => Some(out[6..].to_vec()),
            CellOutcome::Null => {
                assert_eq!(out, b"before");
                None
            }
        }
    }

    const EMAIL: &[u8] = b"ada@example.com";
    const REDACTED: &[u8] = b"[REDACTED:EMAIL_ADDRESS]";

    #[test]
    fn text_arrays_are_masked_element_by_element() {
        let value = array(oid::TEXT, &[Some(EMAIL), None, Some(b"plain")]);
        assert_eq!(
            masked(classify(1009), &value).unwrap(),
            array(oid::TEXT, &[Some(REDACTED), None, Some(b"plain")])
        );
        let clean = array(oid::TEXT, &[Some(b"a"), Some(b"b")]);
        assert_eq!(masked(classify(1009), &clean).unwrap(), clean);
        // A card in an int8 array: that element becomes NULL, and the array
        // says it has NULLs now.
        let card = 4_111_111_111_111_111_i64.to_be_bytes();
        let seven = 7_i64.to_be_bytes();
        let ints = array(oid::INT8, &[Some(&card), Some(&seven)]);
        assert_eq!(
            masked(classify(1016), &ints).unwrap(),
            array(oid::INT8, &[None, Some(&seven)])
        );
    }

    #[test]
    fn records_mask_each_field_as_its_type_and_unknown_fields_become_null() {
        let inner = array(oid::VARCHAR, &[Some(EMAIL)]);
        let value = record(&[
            (oid::TEXT, Some(EMAIL)),
            (oid::INT4, Some(&42_i32.to_be_bytes())),
            (1015, Some(&inner)),
            // A domain's or enum's OID: unknown, so NULL.
            (19_918, Some(b"ada")),
        ]);
        let expected = record(&[
            (oid::TEXT, Some(REDACTED)),
            (oid::INT4, Some(&42_i32.to_be_bytes())),
            (1015, Some(&array(oid::VARCHAR, &[Some(REDACTED)]))),
            (19_918, None),
        ]);
        assert_eq!(masked(PgBinary::Record, &value).unwrap(), expected);
        // Only known, clean fields: unchanged.
        let clean = record(&[(oid::TEXT, Some(b"x")), (oid::BOOL, Some(&[1]))]);
        assert_eq!(masked(PgBinary::Record, &clean).unwrap(), clean);
    }

    #[test]
    fn values_that_do_not_parse_or_lie_become_null() {
        let value = array(oid::TEXT, &[Some(EMAIL)]);
        // An element type other than the array type's.
        assert_eq!(masked(classify(1015), &value), None);
        // Truncated, with trailing bytes, with a count past the bytes.
        assert_eq!(masked(classify(1009), &value[..value.len() - 1]), None);
        assert_eq!(masked(classify(1009), &[&value[..], b"x"].concat()), None);
        let mut huge = value.clone();
        huge[12..16].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(masked(classify(1009), &huge), None);
        assert_eq!(masked(PgBinary::Record, &[0x7f, 0xff, 0xff, 0xff]), None);
        // Types hoop does not know.
        assert_eq!(masked(classify(16_384), b"ada@example.com"), None);
        // Nesting past the bound: the part that is too deep becomes NULL.
        let mut nested = record(&[(oid::TEXT, Some(b"deepest"))]);
        for _ in 0..MAX_DEPTH {
            nested = record(&[(oid::RECORD, Some(&nested))]);
        }
        let out = masked(PgBinary::Record, &nested).unwrap();
        assert!(out.ends_with(&(-1_i32).to_be_bytes()));
        assert!(!out.windows(7).any(|w| w == b"deepest"));
    }

    #[test]
    fn ranges_with_a_bound_to_mask_become_null() {
        // int8range [4111111111111111, 4111111111111112): lower inclusive.
        let mut range = vec![0x02];
        for bound in [4_111_111_111_111_111_i64, 4_111_111_111_111_112] {
            range.put_i32(8);
            range.extend_from_slice(&bound.to_be_bytes());
        }
        assert_eq!(masked(classify(oid::INT8RANGE), &range), None);
        let mut multi = Vec::new();
        multi.put_i32(1);
        multi.put_i32(range.len() as i32);
        multi.extend_from_slice(&range);
        assert_eq!(masked(classify(oid::INT8MULTIRANGE), &multi), None);
        // [1, 5) and an empty range pass.
        let mut small = vec![0x02];
        for bound in [1_i64, 5] {
            small.put_i32(8);
            small.extend_from_slice(&bound.to_be_bytes());
        }
        assert_eq!(masked(classify(oid::INT8RANGE), &small).unwrap(), small);
        assert_eq!(masked(classify(oid::INT8RANGE), &[0x01]).unwrap(), [0x01]);
    }
}
