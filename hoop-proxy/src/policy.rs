//! The policy pipeline: `hoop-masking`'s guardrails and masking as a
//! [`Pipeline`], the same for every protocol.
//!
//! ```text
//! Query / Prepare ──check_statement(sql, dialect)──► Forward | Refuse(42501, message + rule)
//! Execute params ──check_parameter──────────────────► Forward | Refuse
//! Columns ──ResultPlan (once per result set)
//! Row ──check_row (output rules)──mask_cell per cell──► Forward | Rewritten
//! ```
//!
//! The session driver turns its protocol into these events: it says which
//! columns each row has (PostgreSQL's extended protocol sends rows without a
//! RowDescription; the driver tracks them) and re-encodes rewritten rows. This
//! module maps each protocol's column types and formats to [`ValueKind`],
//! and reads the values that are not text:
//!
//! - PostgreSQL, text format: text-like types (`text`, `varchar`, `bpchar`,
//!   `name`, `"char"`, `json`, `xml`, `unknown`, ...) are
//!   [`ValueKind::Text`]; every other type is [`ValueKind::TypedText`], its
//!   text scanned and the value NULL when anything is found: arrays
//!   (`{a@b.com}`), records, `jsonb`, `tsvector`, and `bytea`, whose `\x`
//!   hex is decoded first.
//! - PostgreSQL, binary format: text-like types as in text; booleans, dates,
//!   times, timestamps and intervals hold no text and pass; every other
//!   value is read by `pg_binary`: numbers, addresses, `uuid`, `jsonb`,
//!   `tsvector`, ... rendered as text and scanned (NULL when anything is
//!   found); `bytea` scanned as its bytes; arrays and records decoded and
//!   each element or field masked as its own type (text in place), then
//!   encoded again; ranges NULL when a bound shows a value; and a type
//!   hoop does not know (an extension's, an enum, a named composite, an
//!   array of a domain) NULL: fail closed. Exempt such a column with a
//!   column rule to let it through.
//! - MySQL: string types (`VARCHAR`, `CHAR`, `TEXT`/`BLOB`, `ENUM`, `SET`,
//!   `JSON`) are [`ValueKind::Text`] in both protocols (the binary protocol
//!   sends them as length-encoded bytes); other types are
//!   [`ValueKind::TypedText`] in the text protocol. In the binary protocol
//!   integers and floats are rendered as text and scanned, `DECIMAL`, `BIT`
//!   and `GEOMETRY` scanned as their bytes, dates and times pass, and a type
//!   hoop does not know is NULL.
//!
//! A masked binary or typed value becomes NULL, never text bytes.
//!
//! A row the policy denies by an output rule has every cell set to NULL (the
//! rows before it were already sent; the refusal is counted). A row whose
//! columns the hook was never told about is treated the same way: fail
//! closed.

mod pg_binary;
mod render;

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use hoop_masking::{
    CellMasker, CellOutcome, ColumnInfo, ColumnTreatment, CompiledPolicy, Dialect, ResultPlan,
    ValueKind, Verdict,
};
use hoop_wire::event::{CellFormat, Column, Event};

use crate::pipeline::{
    ClientAction, Interest, Pipeline, Refusal, ServerAction, SessionHook, SessionInfo,
};
use pg_binary::{PartMasker, PgBinary};
use render::Render;

/// The SQLSTATE of a refused statement: insufficient privilege.
const REFUSED_SQLSTATE: &str = "42501";

/// What a session masked and refused, for the recorder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionCounts {
    /// Masked values per entity type name (`EMAIL_ADDRESS`, a column rule's
    /// entity, ...), only those masked at least once.
    pub masked: Vec<(String, u64)>,
    /// Refusals per rule name (statements refused by input rules, results
    /// blanked by output rules).
    pub refused: Vec<(String, u64)>,
}

/// Receives a session's [`SessionCounts`] when it ends.
pub type CountsSink = Arc<dyn Fn(&SessionInfo, &SessionCounts) + Send + Sync>;

/// A [`Pipeline`] applying one compiled policy to every session.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use hoop_masking::Policy;
/// use hoop_proxy::policy::PolicyPipeline;
/// let policy = Policy::from_json("{}")?.compile()?;
/// let pipeline = PolicyPipeline::new(policy).on_session_end(Arc::new(|_info, counts| {
///     let _ = &counts.masked;
/// }));
/// # let _ = pipeline;
/// # Ok::<(), hoop_masking::PolicyError>(())
/// ```
#[derive(Clone)]
pub struct PolicyPipeline {
    policy: CompiledPolicy,
    sink: Option<CountsSink>,
}

impl std::fmt::Debug for PolicyPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyPipeline").finish_non_exhaustive()
    }
}

impl PolicyPipeline {
    /// A pipeline applying `policy`.
    pub fn new(policy: CompiledPolicy) -> Self {
        Self { policy, sink: None }
    }

    /// A pipeline applying the policy in `json` (the schema is in
    /// `hoop-masking`'s README).
    ///
    /// # Errors
    ///
    /// The policy does not parse or compile; the error names the field.
    pub fn from_json(json: &str) -> Result<Self, hoop_masking::PolicyError> {
        Ok(Self::new(hoop_masking::Policy::from_json(json)?.compile()?))
    }

    /// Hands each session's counts to `sink` when the session ends.
    pub fn on_session_end(mut self, sink: CountsSink) -> Self {
        self.sink = Some(sink);
        self
    }

    /// The compiled policy, so code beside the pipeline can apply the same
    /// detectors to other text: the agent's recorder masks the statement
    /// texts it records with [`CellMasker::mask_text`].
    pub fn policy(&self) -> &CompiledPolicy {
        &self.policy
    }
}

impl Pipeline for PolicyPipeline {
    fn open(&self, session: &SessionInfo) -> Box<dyn SessionHook> {
        let protocol = match session.protocol {
            "postgres" => Protocol::Postgres,
            "mysql" => Protocol::Mysql,
            _ => Protocol::Other,
        };
        Box::new(PolicyHook {
            masker: self.policy.masker(),
            policy: self.policy.clone(),
            protocol,
            plan: None,
            decoders: Vec::new(),
            rendered: Vec::new(),
            stripped: Vec::new(),
            refused: Vec::new(),
            out: Vec::new(),
            sink: self.sink.clone().map(|sink| (sink, session.clone())),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Postgres,
    Mysql,
    Other,
}

impl Protocol {
    fn dialect(self) -> Dialect {
        match self {
            Self::Postgres => Dialect::PostgreSql,
            Self::Mysql => Dialect::MySql,
            Self::Other => Dialect::Generic,
        }
    }

    /// How a column's cells are read, and how the hook decodes them.
    fn kind(self, column: &Column) -> (ValueKind, Decode) {
        match self {
            Self::Postgres => pg_kind(column),
            Self::Mysql => mysql_kind(column),
            Self::Other => match column.format {
                CellFormat::Text => (ValueKind::Text, Decode::AsIs),
                CellFormat::Binary => (ValueKind::Binary, Decode::AsIs),
            },
        }
    }
}

/// How the hook reads a column's cells before masking them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decode {
    /// As they are: text, typed text, or opaque binary.
    AsIs,
    /// Rendered as text, then scanned as typed text (MySQL's binary
    /// numbers).
    Render(Render),
    /// Text of a type with its own syntax: scanned with the values its
    /// encoding hides spelled out (`render::append_hidden`: floats in
    /// exponent notation, `bytea` hex; and without NULs, for MySQL's UTF-16
    /// and UTF-32 result charsets, which convert numbers too), NULL when
    /// anything is found.
    Expand,
    /// A `json` document (text): NULL when a value its encoding hides (a
    /// float in exponent notation) shows something; else masked in place.
    Json,
    /// MySQL text, which `SET character_set_results = utf16` (or `utf32`,
    /// `ucs2`) turns into bytes with a NUL beside every ASCII character,
    /// where no detector finds anything: a cell with NULs is scanned without
    /// them too, and NULL when that shows something; else masked in place.
    Wide,
    /// A PostgreSQL binary value, masked by `pg_binary`.
    Pg(PgBinary),
    /// A MySQL binary value of a type hoop does not know: NULL whenever the
    /// column is scanned.
    Unknown,
}

/// PostgreSQL's `"char"` (one byte; text in text format) and `json`.
const PG_CHAR: u32 = 18;
const PG_JSON: u32 = 114;

fn pg_kind(column: &Column) -> (ValueKind, Decode) {
    let class = pg_binary::classify(column.type_id);
    if column.type_id == PG_JSON {
        return (ValueKind::Text, Decode::Json);
    }
    match column.format {
        CellFormat::Text if class == PgBinary::Text || column.type_id == PG_CHAR => {
            (ValueKind::Text, Decode::AsIs)
        }
        CellFormat::Text => (ValueKind::TypedText, Decode::Expand),
        CellFormat::Binary => match class {
            PgBinary::Text => (ValueKind::Text, Decode::AsIs),
            PgBinary::Opaque => (ValueKind::Binary, Decode::AsIs),
            class => (ValueKind::Structured, Decode::Pg(class)),
        },
    }
}

fn mysql_kind(column: &Column) -> (ValueKind, Decode) {
    use hoop_wire::mysql::column_type::*;
    let Ok(ty) = u8::try_from(column.type_id) else {
        return (ValueKind::Structured, Decode::Unknown);
    };
    let string = matches!(
        ty,
        VARCHAR
            | VAR_STRING
            | STRING
            | TINY_BLOB
            | MEDIUM_BLOB
            | LONG_BLOB
            | BLOB
            | JSON
            | ENUM
            | SET
    );
    if string {
        return (ValueKind::Text, Decode::Wide);
    }
    match (column.format, ty) {
        // MariaDB prints a DOUBLE as 4.111111111111111e15.
        (CellFormat::Text, _) => (ValueKind::TypedText, Decode::Expand),
        // Digits, bits and WKB travel as their bytes in the binary protocol too.
        (CellFormat::Binary, DECIMAL | NEWDECIMAL | BIT | GEOMETRY) => {
            (ValueKind::TypedText, Decode::AsIs)
        }
        (CellFormat::Binary, TINY | SHORT | LONG | INT24 | LONGLONG | YEAR) => {
            (ValueKind::TypedText, Decode::Render(Render::LittleEndian))
        }
        (CellFormat::Binary, FLOAT | DOUBLE) => (
            ValueKind::TypedText,
            Decode::Render(Render::FloatLittleEndian),
        ),
        (
            CellFormat::Binary,
            DATE | DATETIME | TIMESTAMP | TIME | NEWDATE | DATETIME2 | TIMESTAMP2 | TIME2 | NULL,
        ) => (ValueKind::Binary, Decode::AsIs),
        (CellFormat::Binary, _) => (ValueKind::Structured, Decode::Unknown),
    }
}

/// One session's policy state.
struct PolicyHook {
    policy: CompiledPolicy,
    masker: CellMasker,
    protocol: Protocol,
    /// The current result set's plan; `None` until a `Columns` event.
    plan: Option<ResultPlan>,
    /// Per column: how its cells are decoded before masking.
    decoders: Vec<Decode>,
    /// Reused for renderings of binary values.
    rendered: Vec<u8>,
    /// Reused for text without its NULs.
    stripped: Vec<u8>,
    refused: Vec<(String, u64)>,
    /// Reused for masked values and rendered integers.
    out: Vec<u8>,
    sink: Option<(CountsSink, SessionInfo)>,
}

impl PolicyHook {
    fn count_refusal(&mut self, rule: &str) {
        match self.refused.iter_mut().find(|(name, _)| name == rule) {
            Some((_, n)) => *n += 1,
            None => self.refused.push((rule.to_owned(), 1)),
        }
    }

    fn refuse(&mut self, verdict: Verdict) -> ClientAction {
        match verdict {
            Verdict::Allow => ClientAction::Forward,
            Verdict::Deny(denial) => {
                self.count_refusal(denial.rule_name());
                ClientAction::Refuse(Refusal {
                    code: REFUSED_SQLSTATE.to_owned(),
                    message: format!(
                        "{} (hoop policy rule {})",
                        denial.message(),
                        denial.rule_name()
                    ),
                })
            }
        }
    }

    fn set_columns(&mut self, columns: &[Column]) {
        let kinds: Vec<(ValueKind, Decode)> =
            columns.iter().map(|c| self.protocol.kind(c)).collect();
        // Names as a UTF-16 or UTF-32 result charset spells them (MySQL's
        // `character_set_results`) match the column rules without their NULs.
        let names: Vec<(Cow<'_, str>, Option<Cow<'_, str>>)> = columns
            .iter()
            .map(|c| (without_nul(&c.name), c.table.as_deref().map(without_nul)))
            .collect();
        let infos: Vec<ColumnInfo<'_>> = names
            .iter()
            .zip(&kinds)
            .map(|((name, table), (kind, _))| {
                let info = ColumnInfo::new(name, *kind);
                match table {
                    Some(table) => info.in_table(table),
                    None => info,
                }
            })
            .collect();
        self.plan = Some(self.policy.plan(&infos));
        self.decoders = kinds.into_iter().map(|(_, decode)| decode).collect();
    }

    fn mask_row(&mut self, cells: &mut [Option<Bytes>]) -> ServerAction {
        let Some(plan) = self.plan.as_ref() else {
            return blank(cells);
        };
        if plan.column_count() != cells.len() {
            return blank(cells);
        }
        if self.policy.has_output_rules()
            && let Verdict::Deny(denial) = self.policy.check_row(cells.iter().map(|c| c.as_deref()))
        {
            let rule = denial.rule_name().to_owned();
            self.count_refusal(&rule);
            return blank(cells);
        }
        if plan.is_passthrough() {
            return ServerAction::Forward;
        }
        let mut rewritten = false;
        for (i, slot) in cells.iter_mut().enumerate() {
            let Some(cell) = slot.as_ref() else { continue };
            self.out.clear();
            let decode = self.decoders.get(i).copied().unwrap_or(Decode::AsIs);
            let outcome = match (decode, plan.treatment(i)) {
                (Decode::AsIs, _) => self.masker.mask_cell(plan, i, cell, &mut self.out),
                (Decode::Render(render), _) => match render.render(cell, &mut self.rendered) {
                    Some(()) => typed(&mut self.masker, plan, i, &self.rendered),
                    None => CellOutcome::Null,
                },
                (Decode::Expand, _) if !render::hides_values(cell) => {
                    self.masker.mask_cell(plan, i, cell, &mut self.out)
                }
                (Decode::Expand, _) => {
                    let mut text = std::mem::take(&mut self.stripped);
                    text.clear();
                    render::without_nuls(cell, &mut text);
                    let text_ref: &[u8] = if text.is_empty() { cell } else { &text };
                    self.rendered.clear();
                    self.rendered.extend_from_slice(text_ref);
                    let outcome = if render::append_hidden(text_ref, &mut self.rendered) {
                        typed(&mut self.masker, plan, i, &self.rendered)
                    } else {
                        CellOutcome::Null
                    };
                    self.stripped = text;
                    outcome
                }
                (Decode::Json | Decode::Wide, _) => {
                    self.rendered.clear();
                    let complete = if decode == Decode::Json {
                        render::append_hidden(cell, &mut self.rendered)
                    } else {
                        render::without_nuls(cell, &mut self.rendered);
                        true
                    };
                    let shows = !complete
                        || (!self.rendered.is_empty()
                            && typed(&mut self.masker, plan, i, &self.rendered)
                                != CellOutcome::Unchanged);
                    if shows {
                        CellOutcome::Null
                    } else {
                        self.masker.mask_cell(plan, i, cell, &mut self.out)
                    }
                }
                (_, ColumnTreatment::Untouched) => CellOutcome::Unchanged,
                (_, ColumnTreatment::Masked(_)) => {
                    self.masker.mask_cell(plan, i, cell, &mut self.out)
                }
                (Decode::Pg(class), ColumnTreatment::Scanned) => PartMasker {
                    masker: &mut self.masker,
                    plan,
                    column: i,
                    rendered: &mut self.rendered,
                }
                .mask(class, cell, &mut self.out),
                (Decode::Unknown, ColumnTreatment::Scanned) => CellOutcome::Null,
            };
            match outcome {
                CellOutcome::Unchanged => {}
                CellOutcome::Replaced => {
                    *slot = Some(Bytes::copy_from_slice(&self.out));
                    rewritten = true;
                }
                CellOutcome::Null => {
                    *slot = None;
                    rewritten = true;
                }
            }
        }
        if rewritten {
            ServerAction::Rewritten
        } else {
            ServerAction::Forward
        }
    }

    fn counts(&self) -> SessionCounts {
        SessionCounts {
            masked: self
                .masker
                .counts()
                .map(|(_, name, n)| (name.to_owned(), n))
                .collect(),
            refused: self.refused.clone(),
        }
    }
}

/// `name` without NUL characters.
fn without_nul(name: &str) -> Cow<'_, str> {
    if name.contains('\0') {
        Cow::Owned(name.replace('\0', ""))
    } else {
        Cow::Borrowed(name)
    }
}

/// Masks `text` (a rendering of cell `column`) as typed text: anything
/// found makes the cell NULL, since no other value of its type stands for
/// "hidden".
fn typed(masker: &mut CellMasker, plan: &ResultPlan, column: usize, text: &[u8]) -> CellOutcome {
    match masker.mask_cell(plan, column, text, &mut Vec::new()) {
        CellOutcome::Unchanged => CellOutcome::Unchanged,
        CellOutcome::Replaced | CellOutcome::Null => CellOutcome::Null,
    }
}

/// Fail closed: every cell of the row becomes NULL.
fn blank(cells: &mut [Option<Bytes>]) -> ServerAction {
    cells.iter_mut().for_each(|c| *c = None);
    ServerAction::Rewritten
}

impl SessionHook for PolicyHook {
    fn interest(&self) -> Interest {
        Interest {
            statements: true,
            columns: true,
            rows: true,
            completions: false,
            errors: false,
        }
    }

    fn client_event(&mut self, event: &Event) -> ClientAction {
        let dialect = self.protocol.dialect();
        match event {
            Event::Query { text } | Event::Prepare { text, .. } => {
                let verdict = self.policy.check_statement(text, dialect);
                self.refuse(verdict)
            }
            Event::Execute { params, .. } => {
                let verdict = params
                    .iter()
                    .flatten()
                    .map(|p| self.policy.check_parameter(p))
                    .find(|v| !v.is_allowed())
                    .unwrap_or(Verdict::Allow);
                self.refuse(verdict)
            }
            _ => ClientAction::Forward,
        }
    }

    fn server_event(&mut self, event: &mut Event) -> ServerAction {
        match event {
            Event::Columns { columns } => {
                self.set_columns(columns);
                ServerAction::Forward
            }
            Event::Row { cells } => self.mask_row(cells),
            _ => ServerAction::Forward,
        }
    }

    fn closed(&mut self) {
        if let Some((sink, info)) = &self.sink {
            sink(info, &self.counts());
        }
    }
}

#[cfg(test)]
mod tests {
    use hoop_masking::Policy;

    use super::*;

    fn hook(protocol: &'static str) -> Box<dyn SessionHook> {
        let policy = Policy::from_json(
            r#"{"guardrails": {"input": [{"type": "deny_without_where", "name": "nowhere", "message": "add WHERE"}]}}"#,
        )
        .unwrap()
        .compile()
        .unwrap();
        PolicyPipeline::new(policy).open(&SessionInfo {
            protocol,
            peer: "127.0.0.1:1".parse().unwrap(),
            user: "u".to_owned(),
            database: None,
        })
    }

    fn column(name: &str, type_id: u32, format: CellFormat) -> Column {
        Column {
            name: name.to_owned(),
            table: None,
            table_id: None,
            type_id,
            format,
        }
    }

    #[test]
    fn binary_integer_holding_a_card_number_becomes_null_and_text_is_redacted() {
        let mut hook = hook("postgres");
        let mut columns = Event::Columns {
            columns: vec![
                column("card", 20, CellFormat::Binary),
                column("note", 25, CellFormat::Binary),
                column("id", 23, CellFormat::Binary),
            ],
        };
        assert_eq!(hook.server_event(&mut columns), ServerAction::Forward);
        let card = 4_111_111_111_111_111_i64.to_be_bytes();
        let mut row = Event::Row {
            cells: vec![
                Some(Bytes::copy_from_slice(&card)),
                Some(Bytes::from_static(b"mail ada@example.com")),
                Some(Bytes::copy_from_slice(&7_i32.to_be_bytes())),
            ],
        };
        assert_eq!(hook.server_event(&mut row), ServerAction::Rewritten);
        let Event::Row { cells } = row else {
            unreachable!()
        };
        assert_eq!(cells[0], None);
        assert_eq!(
            cells[1].as_deref(),
            Some(&b"mail [REDACTED:EMAIL_ADDRESS]"[..])
        );
        assert_eq!(cells[2].as_deref(), Some(&7_i32.to_be_bytes()[..]));
    }

    /// Counts reach the recorder's sink when the session ends: masked
    /// values per entity, refusals per rule (a statement refused, a row
    /// blanked by an output rule).
    #[test]
    fn counts_reach_the_sink_and_output_rules_blank_the_row() {
        let seen = Arc::new(std::sync::Mutex::new(None));
        let sink_seen = Arc::clone(&seen);
        let pipeline = PolicyPipeline::from_json(
            r#"{"guardrails": {
                "input": [{"type": "deny_words_list", "name": "no-bluebird", "words": ["bluebird"],
                           "check_parameters": true}],
                "output": [{"type": "pattern_match", "name": "no-keys", "pattern_regex": "BEGIN PRIVATE KEY"}]}}"#,
        )
        .unwrap()
        .on_session_end(Arc::new(move |info, counts| {
            *sink_seen.lock().unwrap() = Some((info.user.clone(), counts.clone()));
        }));
        let mut hook = pipeline.open(&SessionInfo {
            protocol: "postgres",
            peer: "127.0.0.1:1".parse().unwrap(),
            user: "alice".to_owned(),
            database: None,
        });
        let params = Event::Execute {
            name: String::new(),
            params: vec![None, Some(Bytes::from_static(b"the bluebird"))],
        };
        assert!(matches!(
            hook.client_event(&params),
            ClientAction::Refuse(_)
        ));
        let mut columns = Event::Columns {
            columns: vec![column("note", 25, CellFormat::Text)],
        };
        hook.server_event(&mut columns);
        for cell in [
            &b"a@example.com b@example.com"[..],
            b"-----BEGIN PRIVATE KEY-----",
        ] {
            let mut row = Event::Row {
                cells: vec![Some(Bytes::copy_from_slice(cell))],
            };
            assert_eq!(hook.server_event(&mut row), ServerAction::Rewritten);
        }
        let mut blanked = Event::Row {
            cells: vec![Some(Bytes::from_static(b"x -----BEGIN PRIVATE KEY----- y"))],
        };
        hook.server_event(&mut blanked);
        assert_eq!(blanked, Event::Row { cells: vec![None] });
        hook.closed();
        let (user, counts) = seen.lock().unwrap().take().unwrap();
        assert_eq!(user, "alice");
        assert_eq!(counts.masked, [("EMAIL_ADDRESS".to_owned(), 2)]);
        assert_eq!(
            counts.refused,
            [("no-bluebird".to_owned(), 1), ("no-keys".to_owned(), 2)]
        );
    }

    #[test]
    fn example_policy_file_loads() {
        let json = include_str!("../../examples/policy.json");
        PolicyPipeline::from_json(json).unwrap();
    }

    #[test]
    fn rows_without_columns_fail_closed_and_refusals_name_the_rule() {
        let mut hook = hook("mysql");
        let mut row = Event::Row {
            cells: vec![Some(Bytes::from_static(b"x"))],
        };
        assert_eq!(hook.server_event(&mut row), ServerAction::Rewritten);
        assert_eq!(row, Event::Row { cells: vec![None] });
        let refused = hook.client_event(&Event::Query {
            text: "DELETE FROM t".to_owned(),
        });
        let ClientAction::Refuse(refusal) = refused else {
            panic!("DELETE without WHERE passed")
        };
        assert_eq!(refusal.code, "42501");
        assert!(refusal.message.contains("add WHERE") && refusal.message.contains("nowhere"));
        let allowed = hook.client_event(&Event::Query {
            text: "DELETE FROM t WHERE id = 1".to_owned(),
        });
        assert_eq!(allowed, ClientAction::Forward);
    }
}
