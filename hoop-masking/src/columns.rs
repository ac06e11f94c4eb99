//! Columns of a result set and the plan computed once per result set.

use crate::content::FieldPath;
use crate::detect::ColumnGates;
use crate::entity::EntityId;

/// How a column's cell bytes are to be read. The caller knows its protocol's types; this
/// crate does not.
///
/// For PostgreSQL: `Text` for text-like types (`text`, `varchar`, `bpchar`, `name`,
/// `json`, `xml`, `unknown`) in either format (their binary format is the same UTF-8);
/// `TypedText` for other types in text format (`int8`, `numeric`, `date`, `inet`, `uuid`,
/// arrays, ...) and for binary values the caller renders as their text (integers,
/// addresses); `Structured` for binary arrays and records, which the caller decodes and
/// masks element by element with [`CellMasker::mask_part`](crate::CellMasker::mask_part);
/// `Binary` for binary values that hold no text to scan (booleans, timestamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Text whose type accepts any string: scanned, and masked values become text.
    Text,
    /// Text of a type with its own syntax (a number, date, address): scanned, but a masked
    /// cell becomes the column's substitute or NULL, because replacement text would not parse
    /// as the type in the client.
    TypedText,
    /// Binary bytes holding values the caller decodes (PostgreSQL's binary arrays and
    /// records): planned as scanned, and masked part by part with
    /// [`CellMasker::mask_part`](crate::CellMasker::mask_part); under a masking column rule
    /// the whole cell becomes the column's substitute or NULL.
    /// [`CellMasker::mask_cell`](crate::CellMasker::mask_cell) on such a cell scans its
    /// raw bytes as `TypedText`.
    Structured,
    /// Opaque binary: never scanned; under a masking column rule it becomes the column's
    /// substitute or NULL, never text bytes.
    Binary,
}

/// One column of a result set, as the caller describes it.
///
/// # Examples
///
/// ```
/// use hoop_masking::{ColumnInfo, ValueKind};
/// let col = ColumnInfo::new("email", ValueKind::Text).in_table("public.users");
/// let id = ColumnInfo::new("id", ValueKind::Binary).with_substitute(&[0, 0, 0, 0]);
/// # let _ = (col, id);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ColumnInfo<'a> {
    name: &'a str,
    table: Option<&'a str>,
    kind: ValueKind,
    substitute: Option<&'a [u8]>,
}

impl<'a> ColumnInfo<'a> {
    /// A column by name, table unknown.
    pub fn new(name: &'a str, kind: ValueKind) -> Self {
        Self {
            name,
            table: None,
            kind,
            substitute: None,
        }
    }

    /// The table the column comes from (`table` or `schema.table`). Column rules that name
    /// a table only apply when the caller says which table.
    pub fn in_table(mut self, table: &'a str) -> Self {
        self.table = Some(table);
        self
    }

    /// A value of the column's own type (as it goes on the wire in the column's format) to
    /// send instead of a masked `TypedText` or `Binary` cell; without one such cells become
    /// NULL.
    pub fn with_substitute(mut self, value: &'a [u8]) -> Self {
        self.substitute = Some(value);
        self
    }
}

/// What happens to a column, per a [`ResultPlan`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnTreatment {
    /// Passed through untouched: exempt, or binary with no rule, or nothing to detect.
    Untouched,
    /// Each cell is scanned by the detectors.
    Scanned,
    /// Each non-NULL cell is masked whole, as this entity.
    Masked(EntityId),
}

#[derive(Clone, Debug)]
pub(crate) enum ColumnPlan {
    Skip,
    Scan {
        gates: ColumnGates,
        typed: bool,
        substitute: Option<Box<[u8]>>,
    },
    Whole {
        entity: EntityId,
        rule: Option<usize>,
        kind: ValueKind,
        substitute: Option<Box<[u8]>>,
    },
}

/// The per-result-set decision for every column, computed once by
/// [`CompiledPolicy::plan`](crate::CompiledPolicy::plan) and reused for every row.
#[derive(Clone, Debug)]
pub struct ResultPlan {
    pub(crate) columns: Vec<ColumnPlan>,
}

impl ResultPlan {
    /// How many columns the plan covers.
    pub fn column_count(&self) -> usize {
        self.columns.len()
    }

    /// True when no column is scanned or masked: rows can be forwarded without looking
    /// at them (output rules aside).
    pub fn is_passthrough(&self) -> bool {
        self.columns.iter().all(|c| matches!(c, ColumnPlan::Skip))
    }

    /// What happens to column `index` (out of range: untouched).
    pub fn treatment(&self, index: usize) -> ColumnTreatment {
        match self.columns.get(index) {
            None | Some(ColumnPlan::Skip) => ColumnTreatment::Untouched,
            Some(ColumnPlan::Scan { .. }) => ColumnTreatment::Scanned,
            Some(ColumnPlan::Whole { entity, .. }) => ColumnTreatment::Masked(*entity),
        }
    }
}

/// A compiled column pattern: `*` globs over the column and (optionally) table parts.
#[derive(Clone, Debug)]
pub(crate) struct ColumnGlob {
    table: Option<String>,
    column: String,
}

impl ColumnGlob {
    pub(crate) fn new(pattern: &str) -> Self {
        let lower = pattern.to_ascii_lowercase();
        match lower.rsplit_once('.') {
            Some((table, column)) => Self {
                table: Some(table.to_owned()),
                column: column.to_owned(),
            },
            None => Self {
                table: None,
                column: lower,
            },
        }
    }

    pub(crate) fn matches(&self, column: &str, table: Option<&str>) -> bool {
        if !glob(self.column.as_bytes(), column.as_bytes()) {
            return false;
        }
        match (&self.table, table) {
            (None, _) => true,
            (Some(pat), None) => pat == "*",
            (Some(pat), Some(t)) => {
                let last = t.rsplit_once('.').map_or(t, |(_, l)| l);
                glob(pat.as_bytes(), t.as_bytes()) || glob(pat.as_bytes(), last.as_bytes())
            }
        }
    }
}

/// A compiled field path pattern: `*` globs over names, matched at the end of a path (or
/// from its root when anchored with `$.`), and at every depth above it, so a rule naming a
/// field covers everything under it.
#[derive(Clone, Debug)]
pub(crate) struct PathGlob {
    anchored: bool,
    names: Vec<Vec<u8>>,
}

impl PathGlob {
    /// `None` for a pattern with an empty name.
    pub(crate) fn new(pattern: &str) -> Option<Self> {
        let lower = pattern.to_ascii_lowercase();
        let (anchored, rest) = match lower.strip_prefix("$.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let names: Vec<Vec<u8>> = rest.split('.').map(|n| n.as_bytes().to_vec()).collect();
        if names.iter().any(Vec::is_empty) {
            return None;
        }
        Some(Self { anchored, names })
    }

    pub(crate) fn matches(&self, path: &FieldPath) -> bool {
        let n = self.names.len();
        let at = |end: usize| {
            self.names
                .iter()
                .enumerate()
                .all(|(j, name)| glob(name, path.segment(end - n + j)))
        };
        if self.anchored {
            return path.len() >= n && at(n);
        }
        (n..=path.len()).any(at)
    }
}

/// `*` matches any run of bytes; everything else matches itself, ASCII-case-insensitively
/// (`pat` is lowercase already).
pub(crate) fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut backtrack = None;
    while t < text.len() {
        if p < pat.len() && pat[p] == b'*' {
            backtrack = Some((p, t));
            p += 1;
        } else if p < pat.len() && pat[p] == text[t].to_ascii_lowercase() {
            p += 1;
            t += 1;
        } else if let Some((bp, bt)) = backtrack {
            p = bp + 1;
            t = bt + 1;
            backtrack = Some((bp, bt + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&b| b == b'*')
}

pub(crate) fn plan_scan(info: &ColumnInfo<'_>, gates: ColumnGates) -> ColumnPlan {
    ColumnPlan::Scan {
        gates,
        typed: info.kind != ValueKind::Text,
        substitute: info.substitute.map(Into::into),
    }
}

pub(crate) fn plan_whole(
    info: &ColumnInfo<'_>,
    entity: EntityId,
    rule: Option<usize>,
) -> ColumnPlan {
    ColumnPlan::Whole {
        entity,
        rule,
        kind: info.kind,
        substitute: info.substitute.map(Into::into),
    }
}

impl ColumnInfo<'_> {
    pub(crate) fn name(&self) -> &str {
        self.name
    }

    pub(crate) fn table(&self) -> Option<&str> {
        self.table
    }

    pub(crate) fn kind(&self) -> ValueKind {
        self.kind
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(names: &[&str]) -> FieldPath {
        let mut p = FieldPath::new();
        for n in names {
            p.push(n.as_bytes());
        }
        p
    }

    #[test]
    fn path_globs_match_the_end_of_a_path_or_from_the_root() {
        let g = PathGlob::new("user.email").expect("valid");
        assert!(g.matches(&path(&["user", "email"])));
        assert!(g.matches(&path(&["a", "User", "EMAIL"])));
        assert!(
            g.matches(&path(&["user", "email", "primary"])),
            "under the field"
        );
        assert!(!g.matches(&path(&["email"])));
        assert!(!g.matches(&path(&["user", "emails"])));
        let g = PathGlob::new("$.address").expect("valid");
        assert!(g.matches(&path(&["address", "street"])));
        assert!(!g.matches(&path(&["home", "address"])));
        let g = PathGlob::new("*card*").expect("valid");
        assert!(g.matches(&path(&["orders", "credit_card"])));
        for bad in ["", ".", "a.", ".a", "a..b", "$."] {
            assert!(PathGlob::new(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn glob_matches_table_and_column_patterns() {
        let g = ColumnGlob::new("*.ssn");
        assert!(g.matches("ssn", Some("users")));
        assert!(g.matches("SSN", None));
        assert!(!g.matches("ssn_hash", Some("users")));
        let g = ColumnGlob::new("users.email");
        assert!(g.matches("email", Some("users")));
        assert!(g.matches("email", Some("public.users")));
        assert!(!g.matches("email", Some("admins")));
        assert!(!g.matches("email", None));
        let g = ColumnGlob::new("*card*");
        assert!(g.matches("credit_card_no", Some("t")));
        assert!(!g.matches("cart", None));
    }
}
