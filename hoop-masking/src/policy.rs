//! The policy as written: serde types for the JSON schema.
//!
//! These types only describe; [`Policy::compile`] checks them and builds the matcher.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::entity::EntityType;
use crate::error::{PolicyError, PolicyErrorKind};

/// A masking and guardrail policy, as loaded from JSON.
///
/// Every field has a default: `{}` is the default policy (the default entity set redacted,
/// no column rules, no guardrails). Unknown fields are errors, so a typo never silently
/// disables a rule. The crate README documents the schema with a full example.
///
/// # Examples
///
/// ```
/// let policy = hoop_masking::Policy::from_json(r#"{
///     "masking": {"columns": [{"columns": ["*.ssn"]}]},
///     "guardrails": {"input": [{"type": "deny_without_where"}]}
/// }"#)?;
/// let compiled = policy.compile()?;
/// assert!(compiled.memory_usage() > 0);
/// # Ok::<(), hoop_masking::PolicyError>(())
/// ```
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// What to mask in results.
    #[serde(default)]
    pub masking: MaskingConfig,
    /// Which statements to refuse and which results to deny.
    #[serde(default)]
    pub guardrails: GuardrailConfig,
}

impl Policy {
    /// Parses a policy from JSON text.
    ///
    /// # Errors
    ///
    /// A [`PolicyError`] whose [`path`](PolicyError::path) names the offending field
    /// (e.g. `masking.entities[2]`) and whose line and column point into `json`.
    pub fn from_json(json: &str) -> Result<Self, PolicyError> {
        let mut de = serde_json::Deserializer::from_str(json);
        let policy: Self = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let (line, column) = (inner.line(), inner.column());
            PolicyError::new(path, PolicyErrorKind::Syntax(inner.to_string())).at(line, column)
        })?;
        de.end().map_err(|e| {
            let (line, column) = (e.line(), e.column());
            PolicyError::new(".", PolicyErrorKind::Syntax(e.to_string())).at(line, column)
        })?;
        Ok(policy)
    }
}

/// The `masking` section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingConfig {
    /// Built-in entity types to detect in scanned cells. Absent: [`EntityType::DEFAULT`].
    /// `[]` turns detection off (column rules still apply).
    #[serde(default = "default_entities")]
    pub entities: Vec<EntityType>,
    /// The transform for every detection and column rule that names none. Absent: redact.
    #[serde(default)]
    pub transform: Transform,
    /// Per-entity transforms, keyed by entity name (built-in or custom).
    #[serde(default)]
    pub transforms: BTreeMap<String, Transform>,
    /// Entity types of this policy's own, from a regex or a word list.
    #[serde(default)]
    pub custom_entities: Vec<CustomEntity>,
    /// Column rules, first match wins: mask a column whole, or exempt it from scanning.
    #[serde(default)]
    pub columns: Vec<ColumnRule>,
    /// Field rules, first match wins: mask a document field (a MongoDB document's, a JSON
    /// body's, an HTTP header's) whole, or exempt it, by its path.
    #[serde(default)]
    pub fields: Vec<FieldRule>,
    /// Column names (case-insensitive) that hold birth dates, where
    /// [`EntityType::DateOfBirth`] looks for dates. Absent: `dob`, `date_of_birth`,
    /// `birth_date`, `birthdate`, `birthday`, `born_on`; any name containing `birth` also
    /// counts.
    #[serde(default = "default_dob_columns")]
    pub date_of_birth_columns: Vec<String>,
    /// The largest scanned value, in bytes, masked value by value. A larger one (a 50 MB
    /// text cell) is masked by a cheaper rule instead: the detectors stop at the first value
    /// they find, and the whole cell becomes that entity's label (or NULL, or the column's
    /// substitute, where a label would not do); a cell where they find nothing passes
    /// unchanged. So no cell is passed unscanned, and the work and memory for one cell stay
    /// bounded by one pass over it. Absent: [`DEFAULT_MAX_CELL_BYTES`].
    #[serde(default = "default_max_cell_bytes")]
    pub max_cell_bytes: usize,
}

/// The default of [`MaskingConfig::max_cell_bytes`]: 1 MiB. Masking value by value holds
/// up to about sixteen bytes of bookkeeping per byte of a cell dense with values (the
/// detections, the masked copy, the leak check's bitmap); past this size a cell is masked whole, which costs one
/// scan and no bookkeeping.
pub const DEFAULT_MAX_CELL_BYTES: usize = 1 << 20;

fn default_max_cell_bytes() -> usize {
    DEFAULT_MAX_CELL_BYTES
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            entities: default_entities(),
            transform: Transform::default(),
            transforms: BTreeMap::new(),
            custom_entities: Vec::new(),
            columns: Vec::new(),
            fields: Vec::new(),
            date_of_birth_columns: default_dob_columns(),
            max_cell_bytes: DEFAULT_MAX_CELL_BYTES,
        }
    }
}

fn default_entities() -> Vec<EntityType> {
    EntityType::DEFAULT.to_vec()
}

fn default_dob_columns() -> Vec<String> {
    [
        "dob",
        "date_of_birth",
        "birth_date",
        "birthdate",
        "birthday",
        "born_on",
    ]
    .into_iter()
    .map(String::from)
    .collect()
}

/// What a masked value becomes.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transform {
    /// `[REDACTED:<ENTITY>]`.
    #[default]
    Redact,
    /// Every character replaced by `char`, except the last `keep_last` characters. At
    /// most half of a value is ever kept, so a short value is never left whole.
    Mask {
        /// How many trailing characters stay visible.
        #[serde(default)]
        keep_last: usize,
        /// The replacement character.
        #[serde(default = "default_mask_char")]
        char: char,
    },
    /// HMAC-SHA256 of the value under `key`, as 64 lowercase hex digits: the same value
    /// gives the same output under the same key, so joins and group-bys still work.
    HmacSha256 {
        /// The key; keep the policy file as secret as the key.
        key: String,
    },
    /// The cell becomes NULL.
    Null,
    /// A fixed text.
    Fixed {
        /// The replacement.
        value: String,
    },
}

fn default_mask_char() -> char {
    '*'
}

impl fmt::Debug for Transform {
    // The HMAC key never appears in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redact => f.write_str("Redact"),
            Self::Mask { keep_last, char } => f
                .debug_struct("Mask")
                .field("keep_last", keep_last)
                .field("char", char)
                .finish(),
            Self::HmacSha256 { .. } => f.write_str("HmacSha256 { key: <hidden> }"),
            Self::Null => f.write_str("Null"),
            Self::Fixed { value } => f.debug_struct("Fixed").field("value", value).finish(),
        }
    }
}

/// A custom entity type: a name and either a regex or a word list.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct CustomEntity {
    /// The name used in labels and counts, e.g. `EMPLOYEE_ID`.
    pub name: String,
    /// A regular expression (the `regex` crate's syntax, ASCII mode: write `(?u)` for
    /// Unicode classes). Give a literal prefix when you can: it is the prefilter.
    #[serde(default)]
    pub regex: Option<String>,
    /// Words or phrases, matched ASCII-case-insensitively on word boundaries.
    #[serde(default)]
    pub words: Vec<String>,
    /// The transform for this entity (overrides `masking.transform`).
    #[serde(default)]
    pub transform: Option<Transform>,
}

/// A column rule: which columns, and whether they are masked whole or exempt.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnRule {
    /// Column patterns: `column`, `table.column` or `schema.table.column`; `*` matches any
    /// run of characters; case-insensitive. A table part matches the whole table name or its
    /// last dotted part, and only `*` matches a column whose table is unknown.
    pub columns: Vec<String>,
    /// `mask` (the default) or `exempt`.
    #[serde(default)]
    pub action: ColumnAction,
    /// The transform for a masked column (overrides `masking.transform`).
    #[serde(default)]
    pub transform: Option<Transform>,
    /// The entity name for labels and counts. Absent: `COLUMN`.
    #[serde(default)]
    pub entity: Option<String>,
}

/// A field rule: which document fields, and whether they are masked whole or exempt.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldRule {
    /// Field paths: field names joined by `.` (`email`, `user.email`, `orders.card`),
    /// matched against the end of a value's path, or from the document's root when they
    /// start with `$.` (`$.address`). `*` matches any run of characters within one name;
    /// case-insensitive. Array elements share their field's path. A rule naming a field
    /// applies to everything under it (`address` masks `address.street`).
    pub paths: Vec<String>,
    /// `mask` (the default) or `exempt`.
    #[serde(default)]
    pub action: ColumnAction,
    /// The transform for a masked field (overrides `masking.transform`).
    #[serde(default)]
    pub transform: Option<Transform>,
    /// The entity name for labels and counts. Absent: `FIELD`.
    #[serde(default)]
    pub entity: Option<String>,
}

/// What a column rule does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnAction {
    /// Mask every non-NULL value of the column, whatever it holds.
    #[default]
    Mask,
    /// Never scan or mask the column.
    Exempt,
}

/// The `guardrails` section.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailConfig {
    /// Rules judging statements before they reach the server, in order.
    #[serde(default)]
    pub input: Vec<InputRule>,
    /// Rules judging result rows.
    #[serde(default)]
    pub output: Vec<OutputRule>,
}

/// A rule judging a statement. Each has an optional `name` (default: its type) and
/// `message` (default: a sentence naming what it refuses).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InputRule {
    /// hoop's word list: refuse a statement containing any of `words` as a whole word
    /// (ASCII-case-insensitive; `drop` does not match `dropped_at`).
    DenyWordsList {
        /// The words or phrases.
        words: Vec<String>,
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
        /// Also judge bound parameter values.
        #[serde(default)]
        check_parameters: bool,
    },
    /// hoop's pattern rule: refuse a statement matching `pattern_regex`.
    PatternMatch {
        /// A regular expression (the `regex` crate's syntax, Unicode on).
        pattern_regex: String,
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
        /// Also judge bound parameter values.
        #[serde(default)]
        check_parameters: bool,
    },
    /// Refuse UPDATE or DELETE statements without a WHERE clause.
    DenyWithoutWhere {
        /// Which statements: `update`, `delete`. Absent: both.
        #[serde(default = "default_without_where")]
        statements: Vec<StatementKind>,
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
        /// Whether a statement the SQL parser cannot read passes this rule. Default false:
        /// such a statement is refused if its code could hold what the rule looks for
        /// (see [`CompiledPolicy::check_statement`](crate::CompiledPolicy::check_statement)).
        #[serde(default)]
        allow_unparseable: bool,
    },
    /// Refuse statements of the listed kinds (e.g. `drop`, `truncate`, `alter`).
    DenyStatements {
        /// The kinds.
        statements: Vec<StatementKind>,
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
        /// Whether a statement the SQL parser cannot read passes this rule. Default false:
        /// such a statement is refused if its code could hold what the rule looks for
        /// (see [`CompiledPolicy::check_statement`](crate::CompiledPolicy::check_statement)).
        #[serde(default)]
        allow_unparseable: bool,
    },
    /// Refuse statements that read or write any of the listed tables (`table` or
    /// `schema.table`, case-insensitive).
    DenyTables {
        /// The tables.
        tables: Vec<String>,
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
        /// Whether a statement the SQL parser cannot read passes this rule. Default false:
        /// such a statement is refused if its code could hold what the rule looks for
        /// (see [`CompiledPolicy::check_statement`](crate::CompiledPolicy::check_statement)).
        #[serde(default)]
        allow_unparseable: bool,
    },
    /// Refuse a query string holding more than one statement.
    DenyMultipleStatements {
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
        /// Whether a statement the SQL parser cannot read passes this rule. Default false:
        /// such a statement is refused if its code could hold what the rule looks for
        /// (see [`CompiledPolicy::check_statement`](crate::CompiledPolicy::check_statement)).
        #[serde(default)]
        allow_unparseable: bool,
    },
}

fn default_without_where() -> Vec<StatementKind> {
    vec![StatementKind::Update, StatementKind::Delete]
}

/// A rule judging result rows: a result with a matching cell is denied.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputRule {
    /// Deny a result containing any of `words` as a whole word.
    DenyWordsList {
        /// The words or phrases.
        words: Vec<String>,
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
    },
    /// Deny a result with a cell matching `pattern_regex`.
    PatternMatch {
        /// A regular expression (the `regex` crate's syntax, Unicode on).
        pattern_regex: String,
        /// Shown to the client on refusal.
        #[serde(default)]
        message: Option<String>,
        /// The rule's name in refusals and counts.
        #[serde(default)]
        name: Option<String>,
    },
}

/// A kind of SQL statement, as statement-aware rules name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StatementKind {
    /// `SELECT`, `VALUES`, `WITH ... SELECT`.
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `MERGE`.
    Merge,
    /// `DROP ...` of any object.
    Drop,
    /// `TRUNCATE`.
    Truncate,
    /// `ALTER ...` of any object.
    Alter,
    /// `CREATE ...` of any object.
    Create,
    /// `GRANT`.
    Grant,
    /// `REVOKE`.
    Revoke,
    /// `COPY`.
    Copy,
}

impl StatementKind {
    /// The statement's leading keyword, lowercase.
    pub const fn keyword(self) -> &'static str {
        match self {
            Self::Select => "select",
            Self::Insert => "insert",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Merge => "merge",
            Self::Drop => "drop",
            Self::Truncate => "truncate",
            Self::Alter => "alter",
            Self::Create => "create",
            Self::Grant => "grant",
            Self::Revoke => "revoke",
            Self::Copy => "copy",
        }
    }
}
