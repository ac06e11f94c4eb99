//! The hot path: one cell in, unchanged / replaced / NULL out.

use std::borrow::Cow;

use crate::columns::{ColumnPlan, ResultPlan, ValueKind};
use crate::compiled::CompiledPolicy;
use crate::detect::{ColumnGates, Detection, Every, FirstOnly, Scratch};
use crate::entity::EntityId;

/// What became of a cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum CellOutcome {
    /// Nothing to mask: send the original bytes. Nothing was copied or allocated.
    Unchanged,
    /// The new value was appended to the caller's output buffer.
    Replaced,
    /// The cell becomes NULL.
    Null,
}

/// Per-session masking state: regex caches, scratch buffers and counts of what was masked.
///
/// Create one per session with [`CompiledPolicy::masker`]; it is `Send` but not shared.
/// A session calls [`CompiledPolicy::plan`] once per result set and
/// [`mask_cell`](Self::mask_cell) for each non-NULL cell.
#[derive(Debug)]
pub struct CellMasker {
    policy: CompiledPolicy,
    scratch: Scratch,
    detections: Vec<Detection>,
    spans: Vec<Detection>,
    counts: Vec<u64>,
    leaks: LeakCheck,
    /// The policy's `masking.max_cell_bytes`, kept here for the hot path.
    pub(crate) max_cell_bytes: usize,
}

impl CellMasker {
    pub(crate) fn new(policy: CompiledPolicy) -> Self {
        let scratch = policy.inner.matcher.scratch();
        let counts = vec![0; policy.entity_count()];
        let max_cell_bytes = policy.inner.max_cell_bytes;
        Self {
            policy,
            scratch,
            detections: Vec::new(),
            spans: Vec::new(),
            counts,
            leaks: LeakCheck::default(),
            max_cell_bytes,
        }
    }

    /// The policy this masker applies.
    pub fn policy(&self) -> &CompiledPolicy {
        &self.policy
    }

    /// Masks one non-NULL cell of column `column` (an index into the columns given to
    /// [`CompiledPolicy::plan`]); a column index outside the plan leaves the cell unchanged.
    ///
    /// On [`CellOutcome::Replaced`] the new value has been appended to `out` (the caller
    /// notes `out.len()` before the call to find where it starts; this lets a driver write
    /// straight into its outgoing message). `out` is untouched otherwise.
    ///
    /// Hot path: a cell with nothing to mask costs one pass of SIMD compares (a byte table
    /// for cells under 16 bytes) and neither allocates nor copies. Masked values never leave
    /// text bytes in a `TypedText`, `Structured` or `Binary` column: those become the
    /// column's substitute or NULL. A detected value
    /// never survives into the output: if a transform would leave it visible (a fixed value
    /// or neighbouring text that repeats it), the whole cell is redacted instead.
    ///
    /// Cost: linear in the cell's length, however many values it holds (a cell of 130,000
    /// repeated emails costs 100 times one of 1,300). A cell longer than the policy's
    /// `masking.max_cell_bytes` is masked whole: the detectors stop at the first value, and
    /// the cell becomes its entity's label (or the substitute or NULL, as above).
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{CellOutcome, ColumnInfo, Policy, ValueKind};
    /// let policy = Policy::from_json("{}")?.compile()?;
    /// let plan = policy.plan(&[ColumnInfo::new("note", ValueKind::Text)]);
    /// let mut masker = policy.masker();
    /// let mut out = Vec::new();
    /// assert_eq!(masker.mask_cell(&plan, 0, b"card 4111 1111 1111 1112", &mut out), CellOutcome::Unchanged);
    /// assert_eq!(masker.mask_cell(&plan, 0, b"card 4111 1111 1111 1111", &mut out), CellOutcome::Replaced);
    /// assert_eq!(out, b"card [REDACTED:CREDIT_CARD_NUMBER]");
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn mask_cell(
        &mut self,
        plan: &ResultPlan,
        column: usize,
        cell: &[u8],
        out: &mut Vec<u8>,
    ) -> CellOutcome {
        match plan.columns.get(column) {
            None | Some(ColumnPlan::Skip) => CellOutcome::Unchanged,
            Some(ColumnPlan::Whole {
                entity,
                rule,
                kind,
                substitute,
            }) => {
                self.count(*entity);
                let transform = self.policy.column_rule_transform(*rule, *entity);
                if *kind != ValueKind::Text || transform.is_null() {
                    return substitute_or_null(substitute.as_deref(), None, &mut self.leaks, out);
                }
                let label = &self.policy.inner.entities[entity.index()].label;
                transform.apply(label, cell, out);
                CellOutcome::Replaced
            }
            Some(ColumnPlan::Scan {
                gates,
                typed,
                substitute,
            }) => self.mask_scanned(cell, *gates, *typed, substitute.as_deref(), out),
        }
    }

    /// Masks one part of a [`ValueKind::Structured`] cell of column `column`: an element of
    /// a PostgreSQL array, a field of a record, which the caller decoded and will encode
    /// again. `kind` says how to read the part: a `Text` part's values are replaced in the
    /// text (appended to `out` on [`CellOutcome::Replaced`]); a `TypedText` part with a
    /// detection becomes [`CellOutcome::Null`] (parts have no substitute); a `Binary` or
    /// `Structured` part cannot be read and is `Null` unless the column is exempt. Counts
    /// as [`mask_cell`](Self::mask_cell) does, with the same cost per byte.
    ///
    /// A column masked whole by a column rule gives `Null` for every part: mask such a
    /// cell with [`mask_cell`](Self::mask_cell), which gives the column's substitute or
    /// NULL ([`ResultPlan::treatment`] tells which columns).
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{CellOutcome, ColumnInfo, Policy, ValueKind};
    /// let policy = Policy::from_json("{}")?.compile()?;
    /// let plan = policy.plan(&[ColumnInfo::new("emails", ValueKind::Structured)]);
    /// let mut masker = policy.masker();
    /// let mut out = Vec::new();
    /// let element = b"ada@example.com";
    /// assert_eq!(masker.mask_part(&plan, 0, element, ValueKind::Text, &mut out), CellOutcome::Replaced);
    /// assert_eq!(out, b"[REDACTED:EMAIL_ADDRESS]");
    /// assert_eq!(masker.mask_part(&plan, 0, element, ValueKind::TypedText, &mut out), CellOutcome::Null);
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn mask_part(
        &mut self,
        plan: &ResultPlan,
        column: usize,
        part: &[u8],
        kind: ValueKind,
        out: &mut Vec<u8>,
    ) -> CellOutcome {
        match plan.columns.get(column) {
            None | Some(ColumnPlan::Skip) => CellOutcome::Unchanged,
            Some(ColumnPlan::Whole { .. }) => CellOutcome::Null,
            Some(ColumnPlan::Scan { gates, .. }) => match kind {
                ValueKind::Text => self.mask_scanned(part, *gates, false, None, out),
                ValueKind::TypedText => self.mask_scanned(part, *gates, true, None, out),
                ValueKind::Structured | ValueKind::Binary => CellOutcome::Null,
            },
        }
    }

    /// A scanned cell: `typed` ones become the substitute or NULL when anything is found.
    /// Inlined into `mask_cell`, the hot path, as it was before `mask_part` shared it.
    #[inline(always)]
    pub(crate) fn mask_scanned(
        &mut self,
        cell: &[u8],
        gates: ColumnGates,
        typed: bool,
        substitute: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> CellOutcome {
        if cell.len() > self.max_cell_bytes {
            return self.mask_oversized(cell, gates, typed, substitute, out);
        }
        if !self.find_spans(cell, gates) {
            return CellOutcome::Unchanged;
        }
        self.mask_spans(cell, typed, substitute, out)
    }

    /// Masks the values `find_spans` found in `cell`. Out of line: the hot path is a cell
    /// with nothing found, which stays small.
    #[inline(never)]
    fn mask_spans(
        &mut self,
        cell: &[u8],
        typed: bool,
        substitute: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> CellOutcome {
        for i in 0..self.spans.len() {
            let entity = self.spans[i].entity;
            self.count(entity);
        }
        let spans = &self.spans;
        let entities = &self.policy.inner.entities;
        let null = spans
            .iter()
            .any(|s| entities[s.entity.index()].transform.is_null());
        if typed || null {
            return substitute_or_null(substitute, Some((cell, spans)), &mut self.leaks, out);
        }
        let base = out.len();
        let mut prev = 0;
        for s in spans {
            out.extend_from_slice(&cell[prev..s.start]);
            let e = &entities[s.entity.index()];
            e.transform.apply(&e.label, &cell[s.start..s.end], out);
            prev = s.end;
        }
        out.extend_from_slice(&cell[prev..]);
        if self.leaks.survives(&out[base..], cell, spans) {
            out.truncate(base);
            out.extend_from_slice(&entities[spans[0].entity.index()].label);
            if self.leaks.survives(&out[base..], cell, spans) {
                out.truncate(base);
            }
        }
        CellOutcome::Replaced
    }

    /// The cheaper rule for a cell past `max_cell_bytes`: the first value found masks the
    /// whole cell with its entity's label (the substitute or NULL where a label would not
    /// do); no value found, no change.
    #[cold]
    #[inline(never)]
    fn mask_oversized(
        &mut self,
        cell: &[u8],
        gates: ColumnGates,
        typed: bool,
        substitute: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> CellOutcome {
        let Some(first) = self.find_first(cell, gates) else {
            return CellOutcome::Unchanged;
        };
        self.count(first.entity);
        let spans = [first];
        let e = &self.policy.inner.entities[first.entity.index()];
        if typed || e.transform.is_null() {
            return substitute_or_null(substitute, Some((cell, &spans)), &mut self.leaks, out);
        }
        if !self.leaks.survives(&e.label, cell, &spans) {
            out.extend_from_slice(&e.label);
        }
        CellOutcome::Replaced
    }

    /// Masks free text that is no result cell, such as a statement's text for the audit
    /// record: every value the policy's detectors find (built-in and custom entities; column
    /// rules do not apply) becomes what its entity's transform makes of it in a text column,
    /// except that a `null` transform gives the entity's label, since text cannot hold a
    /// NULL. Counts are not touched: the session's counts stay those of its results.
    ///
    /// Borrowed when nothing was found; the cost of that case is the cell hot path's (one
    /// pass of SIMD compares, no allocation).
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::Policy;
    /// let policy = Policy::from_json("{}")?.compile()?;
    /// let mut masker = policy.masker();
    /// assert_eq!(
    ///     masker.mask_text("SELECT * FROM users WHERE email = 'alice@example.com'"),
    ///     "SELECT * FROM users WHERE email = '[REDACTED:EMAIL_ADDRESS]'"
    /// );
    /// assert!(matches!(masker.mask_text("SELECT 1"), std::borrow::Cow::Borrowed(_)));
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn mask_text<'t>(&mut self, text: &'t str) -> Cow<'t, str> {
        let mut out = Vec::new();
        if !self.mask_free_text(text.as_bytes(), &mut out) {
            return Cow::Borrowed(text);
        }
        // Spans cover whole characters and transforms write UTF-8 (a mask of non-UTF-8
        // bytes cannot arise from a `&str`).
        Cow::Owned(
            String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }

    /// [`mask_text`](Self::mask_text) for bytes: appends the masked text to `out` and
    /// returns true, or returns false (nothing found, `out` untouched). Inlined into
    /// `mask_text`, whose cost for a statement with nothing found it is.
    #[inline(always)]
    pub(crate) fn mask_free_text(&mut self, bytes: &[u8], out: &mut Vec<u8>) -> bool {
        let gates = ColumnGates::default();
        if self.policy.inner.matcher.is_empty() {
            return false;
        }
        if bytes.len() > self.max_cell_bytes {
            // As a cell past the limit: the first value's label stands for the whole text.
            let Some(first) = self.find_first(bytes, gates) else {
                return false;
            };
            let label = &self.policy.inner.entities[first.entity.index()].label;
            if !self.leaks.survives(label, bytes, &[first]) {
                out.extend_from_slice(label);
            }
            return true;
        }
        if !self.find_spans(bytes, gates) {
            return false;
        }
        let entities = &self.policy.inner.entities;
        let base = out.len();
        out.reserve(bytes.len());
        let mut prev = 0;
        for s in &self.spans {
            out.extend_from_slice(&bytes[prev..s.start]);
            let e = &entities[s.entity.index()];
            e.transform.apply(&e.label, &bytes[s.start..s.end], out);
            prev = s.end;
        }
        out.extend_from_slice(&bytes[prev..]);
        if self.leaks.survives(&out[base..], bytes, &self.spans) {
            // A transform left a value visible (a fixed value repeating it): labels only.
            out.truncate(base);
            let mut prev = 0;
            for s in &self.spans {
                out.extend_from_slice(&bytes[prev..s.start]);
                out.extend_from_slice(&entities[s.entity.index()].label);
                prev = s.end;
            }
            out.extend_from_slice(&bytes[prev..]);
            if self.leaks.survives(&out[base..], bytes, &self.spans) {
                // The text repeats a value where its context hid it from the detector:
                // the first value's label stands for the whole text.
                out.truncate(base);
                let label = &entities[self.spans[0].entity.index()].label;
                if !self.leaks.survives(label, bytes, &self.spans) {
                    out.extend_from_slice(label);
                }
            }
        }
        true
    }

    /// The spans [`mask_cell`](Self::mask_cell) would mask in this cell, merged and in
    /// order (a whole-column mask is one span over the cell). Counts are not touched. A
    /// cell past `masking.max_cell_bytes`, which `mask_cell` masks whole, still gets every
    /// span: for tests and tools, not the hot path.
    pub fn detect(&mut self, plan: &ResultPlan, column: usize, cell: &[u8]) -> &[Detection] {
        match plan.columns.get(column) {
            None | Some(ColumnPlan::Skip) => self.spans.clear(),
            Some(ColumnPlan::Whole { entity, .. }) => {
                self.spans.clear();
                self.spans.push(Detection {
                    entity: *entity,
                    start: 0,
                    end: cell.len(),
                });
            }
            Some(ColumnPlan::Scan { gates, .. }) => {
                self.find_spans(cell, *gates);
            }
        }
        &self.spans
    }

    /// What this session masked so far: (entity, name, count) for each entity masked at
    /// least once. Each masked span counts once; a whole-column mask counts once per cell.
    pub fn counts(&self) -> impl Iterator<Item = (EntityId, &str, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let id = EntityId(i as u16);
                (id, self.policy.entity_name(id), *n)
            })
    }

    /// Sets every count back to zero (after the recorder took them).
    pub fn reset_counts(&mut self) {
        self.counts.iter_mut().for_each(|n| *n = 0);
    }

    pub(crate) fn count(&mut self, entity: EntityId) {
        if let Some(n) = self.counts.get_mut(entity.index()) {
            *n += 1;
        }
    }

    /// The first detection the detectors report in `cell`, if any (widened to whole
    /// characters); `self.detections` holds it and perhaps a few more.
    pub(crate) fn find_first(&mut self, cell: &[u8], gates: ColumnGates) -> Option<Detection> {
        self.detections.clear();
        self.spans.clear();
        self.policy.inner.matcher.find::<FirstOnly>(
            cell,
            gates,
            &mut self.scratch,
            &mut self.detections,
        );
        let mut first = *self.detections.first()?;
        widen(cell, &mut first);
        Some(first)
    }

    /// Fills `self.spans` with merged detections; false when there are none.
    ///
    /// Cost: the detectors' (linear in the cell), then sorting the detections.
    fn find_spans(&mut self, cell: &[u8], gates: ColumnGates) -> bool {
        self.detections.clear();
        self.spans.clear();
        self.policy.inner.matcher.find::<Every>(
            cell,
            gates,
            &mut self.scratch,
            &mut self.detections,
        );
        if self.detections.is_empty() {
            return false;
        }
        self.merge_detections(cell);
        true
    }

    /// Widens, sorts and merges `self.detections` into `self.spans`. Out of line, as
    /// [`mask_spans`](Self::mask_spans).
    #[inline(never)]
    fn merge_detections(&mut self, cell: &[u8]) {
        for d in &mut self.detections {
            widen(cell, d);
        }
        self.detections
            .sort_unstable_by_key(|d| (d.start, std::cmp::Reverse(d.end), d.entity));
        for d in &self.detections {
            match self.spans.last_mut() {
                Some(last) if d.start < last.end => last.end = last.end.max(d.end),
                _ => self.spans.push(*d),
            }
        }
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Custom regexes in byte mode may cut a UTF-8 character: widens a detection to whole
/// ones. At most three bytes each way (the longest character has three continuation
/// bytes), so a run of stray continuation bytes in binary data costs no more.
fn widen(cell: &[u8], d: &mut Detection) {
    for _ in 0..3 {
        if d.start > 0 && is_continuation(cell[d.start]) {
            d.start -= 1;
        }
        if d.end < cell.len() && is_continuation(cell[d.end]) {
            d.end += 1;
        }
    }
}

/// Up to this many values are each searched for in the output in turn (a linear substring
/// search each: the common case of a cell with a value or two).
const DIRECT_SEARCHES: usize = 8;

/// Values that pass the 4-gram filter and are then searched for in the output, at most;
/// one more and the output counts as leaking (the whole cell is redacted), so a cell
/// crafted to pass the filter with many values costs at most this many searches.
const MAX_CANDIDATES: usize = 8;

/// Bits of the 4-gram filter: about eight per byte of output, at least 4 Kib, at most
/// 16 Mib (2 MiB of memory) whatever the output's size. At eight bits per 4-gram a value of
/// 17 bytes absent from the output passes the filter with a probability of about 10^-11.
const MIN_FILTER_BITS: usize = 1 << 12;
const MAX_FILTER_BITS: usize = 1 << 24;

/// Whether a masked output still shows a detected value, in time linear in the output
/// and the values: the check behind "no detected value survives".
///
/// A handful of values is searched for one by one. More (a cell of 100,000 repeated
/// emails would cost 100,000 searches of the whole output: quadratic, 14 s of CPU for a
/// 2 MB cell) go through a filter first: a bitmap of the output's 4-grams, hashed. A value
/// that occurs in the output has every one of its 4-grams there, so a value with any 4-gram
/// missing cannot survive; the few that pass (values under four bytes, and rare false
/// positives) are searched for in full.
#[derive(Debug, Default)]
struct LeakCheck {
    filter: Vec<u64>,
}

impl LeakCheck {
    /// Whether any value of `spans` (positions in `cell`) occurs in `output`.
    #[inline]
    fn survives(&mut self, output: &[u8], cell: &[u8], spans: &[Detection]) -> bool {
        let value = |s: &Detection| &cell[s.start..s.end];
        if spans.len() <= DIRECT_SEARCHES {
            return spans.iter().any(|s| contains(output, value(s)));
        }
        let bits = output
            .len()
            .saturating_mul(8)
            .next_power_of_two()
            .clamp(MIN_FILTER_BITS, MAX_FILTER_BITS);
        let shift = 64 - bits.trailing_zeros();
        self.filter.clear();
        self.filter.resize(bits / 64, 0);
        for gram in grams(output) {
            let bit = filter_bit(gram, shift);
            self.filter[bit / 64] |= 1 << (bit % 64);
        }
        let filter = &self.filter;
        let mut candidates: Vec<&[u8]> = Vec::new();
        for s in spans {
            let v = value(s);
            let possible = v.len() < 4
                || grams(v).all(|gram| {
                    let bit = filter_bit(gram, shift);
                    filter[bit / 64] & (1 << (bit % 64)) != 0
                });
            if !possible || candidates.contains(&v) {
                continue;
            }
            if candidates.len() == MAX_CANDIDATES || contains(output, v) {
                return true;
            }
            candidates.push(v);
        }
        false
    }
}

/// Every 4-byte window of `bytes`, as an integer.
fn grams(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .windows(4)
        .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// The filter bit of a 4-gram: Fibonacci hashing into the top bits.
fn filter_bit(gram: u32, shift: u32) -> usize {
    (u64::from(gram).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
}

/// Needles up to this long are searched for by their first byte and a compare at each
/// occurrence: at most this many byte compares per byte of the haystack, and no searcher
/// to build (memmem's costs hundreds of instructions, more than the search of a short
/// cell). Longer ones (a private key) take memmem's linear search.
const SHORT_NEEDLE: usize = 64;

/// Substring search in time linear in the haystack.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    if needle.len() > SHORT_NEEDLE {
        return memchr::memmem::find(haystack, needle).is_some();
    }
    memchr::memchr_iter(first, haystack)
        .any(|i| haystack.get(i + 1..i + 1 + rest.len()) == Some(rest))
}

/// The substitute, unless it shows one of the detected values (`found`: the cell and its
/// spans); else NULL.
fn substitute_or_null(
    substitute: Option<&[u8]>,
    found: Option<(&[u8], &[Detection])>,
    leaks: &mut LeakCheck,
    out: &mut Vec<u8>,
) -> CellOutcome {
    match substitute {
        Some(v) if !found.is_some_and(|(cell, spans)| leaks.survives(v, cell, spans)) => {
            out.extend_from_slice(v);
            CellOutcome::Replaced
        }
        _ => CellOutcome::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values spelled out in `cell` (joined by spaces) as spans of one entity.
    fn spans_of(cell: &str) -> Vec<Detection> {
        let mut spans = Vec::new();
        let mut start = 0;
        for word in cell.split(' ') {
            spans.push(Detection {
                entity: EntityId(0),
                start,
                end: start + word.len(),
            });
            start += word.len() + 1;
        }
        spans
    }

    #[test]
    fn leak_check_finds_any_value_and_fails_closed_past_its_candidate_budget() {
        let mut check = LeakCheck::default();
        let values: Vec<String> = (b'a'..=b'l')
            .map(|c| format!("{}x", (c as char).to_string().repeat(4)))
            .collect();
        let cell = values.join(" ");
        let spans = spans_of(&cell);
        assert!(spans.len() > DIRECT_SEARCHES);
        assert!(!check.survives(b"[REDACTED] [REDACTED]", cell.as_bytes(), &spans));
        assert!(check.survives(b"[REDACTED] ccccx", cell.as_bytes(), &spans));
        // Each value's two 4-grams ("aaaa", "aaax") without the value: candidates the
        // filter lets through, searched in full and absent. Eight are searched; a ninth
        // counts as a leak.
        let decoys = |n: usize| {
            values[..n]
                .iter()
                .map(|v| format!("{} {}", &v[..4], &v[1..]))
                .collect::<Vec<_>>()
                .join(" | ")
        };
        assert!(!check.survives(decoys(MAX_CANDIDATES).as_bytes(), cell.as_bytes(), &spans));
        assert!(check.survives(
            decoys(MAX_CANDIDATES + 1).as_bytes(),
            cell.as_bytes(),
            &spans
        ));
        // Values under four bytes have no 4-gram: each is a candidate, searched in full.
        let short = "abc de fg hi jk lm no pq abc";
        let spans = spans_of(short);
        assert!(spans.len() > DIRECT_SEARCHES);
        assert!(check.survives(b"..pq..", short.as_bytes(), &spans));
        assert!(!check.survives(b"..p q..", short.as_bytes(), &spans));
        assert!(check.survives(
            b"..",
            format!("{short} rs").as_bytes(),
            &spans_of(&format!("{short} rs"))
        ));
    }
}
