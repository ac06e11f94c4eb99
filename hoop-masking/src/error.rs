//! Policy errors: each names the field it is about.

use std::fmt;

/// A policy that cannot be loaded or compiled.
///
/// [`path`](Self::path) names the offending field the way a reader finds it in the file,
/// e.g. `masking.custom_entities[1].regex`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    path: String,
    kind: PolicyErrorKind,
    position: Option<(usize, usize)>,
}

/// Why a policy was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// Not valid JSON, or not the schema (unknown field, wrong type, unknown entity).
    #[error("{0}")]
    Syntax(String),
    /// A regular expression that does not compile.
    #[error("invalid regex: {0}")]
    Regex(String),
    /// A list or string that must not be empty.
    #[error("must not be empty")]
    Empty,
    /// A custom entity with both or neither of `regex` and `words`.
    #[error("give exactly one of `regex` and `words`")]
    RegexOrWords,
    /// A name used twice, or a custom entity named like a built-in one.
    #[error("duplicate name `{0}`")]
    Duplicate(String),
    /// A transform keyed by a name that is no entity of the policy.
    #[error("unknown entity `{0}`")]
    UnknownEntity(String),
    /// A statement kind a rule cannot judge (e.g. `select` in `deny_without_where`).
    #[error("statement kind `{0}` is not allowed here")]
    StatementKind(&'static str),
    /// A field path with an empty name (`a..b`, a leading or trailing `.`, `$.` alone).
    #[error("a field path is names joined by `.`, none of them empty, optionally after `$.`")]
    FieldPath,
    /// A policy larger than this crate compiles (entity count).
    #[error("too many entities (at most {0})")]
    TooManyEntities(usize),
}

impl PolicyError {
    pub(crate) fn new(path: impl Into<String>, kind: PolicyErrorKind) -> Self {
        Self {
            path: path.into(),
            kind,
            position: None,
        }
    }

    pub(crate) fn at(mut self, line: usize, column: usize) -> Self {
        self.position = Some((line, column));
        self
    }

    /// The offending field, e.g. `guardrails.input[0].pattern_regex`; `.` for the whole
    /// document.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Why.
    pub fn kind(&self) -> &PolicyErrorKind {
        &self.kind
    }

    /// Line and column (1-based) in the JSON text, for errors found while parsing it.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "policy field `{}`: {}", self.path, self.kind)?;
        if let Some((line, column)) = self.position {
            write!(f, " (line {line}, column {column})")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyError {}
