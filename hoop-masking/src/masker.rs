//! The hot path: one cell in, unchanged / replaced / NULL out.

use std::borrow::Cow;

use crate::columns::{ColumnPlan, ResultPlan, ValueKind};
use crate::compiled::CompiledPolicy;
use crate::detect::{Detection, Scratch};
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
}

impl CellMasker {
    pub(crate) fn new(policy: CompiledPolicy) -> Self {
        let scratch = policy.inner.matcher.scratch();
        let counts = vec![0; policy.entity_count()];
        Self {
            policy,
            scratch,
            detections: Vec::new(),
            spans: Vec::new(),
            counts,
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
    /// text bytes in a `TypedText` or `Binary` column: those become the column's substitute
    /// or NULL. A detected value
    /// never survives into the output: if a transform would leave it visible (a fixed value
    /// or neighbouring text that repeats it), the whole cell is redacted instead.
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
                    return substitute_or_null(substitute.as_deref(), &[], out);
                }
                let label = &self.policy.inner.entities[entity.index()].label;
                transform.apply(label, cell, out);
                CellOutcome::Replaced
            }
            Some(ColumnPlan::Scan {
                gates,
                typed,
                substitute,
            }) => {
                if !self.find_spans(cell, *gates) {
                    return CellOutcome::Unchanged;
                }
                for i in 0..self.spans.len() {
                    let entity = self.spans[i].entity;
                    self.count(entity);
                }
                let spans = &self.spans;
                let entities = &self.policy.inner.entities;
                let null = spans
                    .iter()
                    .any(|s| entities[s.entity.index()].transform.is_null());
                if *typed || null {
                    let values: Vec<&[u8]> = spans.iter().map(|s| &cell[s.start..s.end]).collect();
                    return substitute_or_null(substitute.as_deref(), &values, out);
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
                if leaks(&out[base..], cell, spans) {
                    out.truncate(base);
                    out.extend_from_slice(&entities[spans[0].entity.index()].label);
                    if leaks(&out[base..], cell, spans) {
                        out.truncate(base);
                    }
                }
                CellOutcome::Replaced
            }
        }
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
        let bytes = text.as_bytes();
        if self.policy.inner.matcher.is_empty()
            || !self.find_spans(bytes, crate::detect::ColumnGates::default())
        {
            return Cow::Borrowed(text);
        }
        let entities = &self.policy.inner.entities;
        let mut out = Vec::with_capacity(text.len());
        let mut prev = 0;
        for s in &self.spans {
            out.extend_from_slice(&bytes[prev..s.start]);
            let e = &entities[s.entity.index()];
            e.transform
                .apply(&e.label, &bytes[s.start..s.end], &mut out);
            prev = s.end;
        }
        out.extend_from_slice(&bytes[prev..]);
        if leaks(&out, bytes, &self.spans) {
            // A transform left a value visible (a fixed value repeating it): labels only.
            out.clear();
            let mut prev = 0;
            for s in &self.spans {
                out.extend_from_slice(&bytes[prev..s.start]);
                out.extend_from_slice(&entities[s.entity.index()].label);
                prev = s.end;
            }
            out.extend_from_slice(&bytes[prev..]);
        }
        // Spans cover whole characters and transforms write UTF-8 (a mask of non-UTF-8
        // bytes cannot arise from a `&str`).
        Cow::Owned(
            String::from_utf8(out)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    }

    /// The spans [`mask_cell`](Self::mask_cell) would mask in this cell, merged and in
    /// order (a whole-column mask is one span over the cell). Counts are not touched.
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

    fn count(&mut self, entity: EntityId) {
        if let Some(n) = self.counts.get_mut(entity.index()) {
            *n += 1;
        }
    }

    /// Fills `self.spans` with merged detections; false when there are none.
    fn find_spans(&mut self, cell: &[u8], gates: crate::detect::ColumnGates) -> bool {
        self.detections.clear();
        self.spans.clear();
        self.policy
            .inner
            .matcher
            .find(cell, gates, &mut self.scratch, &mut self.detections);
        if self.detections.is_empty() {
            return false;
        }
        for d in &mut self.detections {
            // Custom regexes in byte mode may cut a UTF-8 character: widen to whole ones.
            while d.start > 0 && is_continuation(cell[d.start]) {
                d.start -= 1;
            }
            while d.end < cell.len() && is_continuation(cell[d.end]) {
                d.end += 1;
            }
        }
        self.detections
            .sort_unstable_by_key(|d| (d.start, std::cmp::Reverse(d.end), d.entity));
        for d in &self.detections {
            match self.spans.last_mut() {
                Some(last) if d.start < last.end => last.end = last.end.max(d.end),
                _ => self.spans.push(*d),
            }
        }
        true
    }
}

fn is_continuation(b: u8) -> bool {
    b & 0xC0 == 0x80
}

/// Whether any detected value still appears in `output`.
fn leaks(output: &[u8], cell: &[u8], spans: &[Detection]) -> bool {
    spans
        .iter()
        .any(|s| contains(output, &cell[s.start..s.end]))
}

/// Substring search without building a searcher: outputs are one cell, and the first byte
/// of a detected value is rarely repeated in them.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    memchr::memchr_iter(first, haystack)
        .any(|i| haystack.get(i + 1..i + 1 + rest.len()) == Some(rest))
}

fn substitute_or_null(
    substitute: Option<&[u8]>,
    values: &[&[u8]],
    out: &mut Vec<u8>,
) -> CellOutcome {
    match substitute {
        Some(v) if !values.iter().any(|d| contains(v, d)) => {
            out.extend_from_slice(v);
            CellOutcome::Replaced
        }
        _ => CellOutcome::Null,
    }
}
