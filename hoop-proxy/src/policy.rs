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
//! module maps each protocol's column types and formats to
//! [`ValueKind`]:
//!
//! - PostgreSQL: text-like types (`text`, `varchar`, `bpchar`, `name`, `char`,
//!   `json`, `xml`, `unknown`) are [`ValueKind::Text`] in both formats (their
//!   binary form is the same UTF-8); other types are [`ValueKind::TypedText`]
//!   in text format and [`ValueKind::Binary`] in binary format (`jsonb`'s
//!   binary form starts with a version byte, so it is binary too).
//! - MySQL: string types (`VARCHAR`, `CHAR`, `TEXT`/`BLOB`, `ENUM`, `SET`,
//!   `JSON`) are [`ValueKind::Text`] in both protocols (the binary protocol
//!   sends them as length-encoded bytes); numbers and dates are
//!   [`ValueKind::TypedText`] in the text protocol and [`ValueKind::Binary`] in
//!   the binary protocol (fixed layouts).
//!
//! Binary integers (and PostgreSQL's binary `inet`) are rendered as text and
//! scanned as typed text, so a card number stored in a `bigint` or an
//! address in an `inet` column is caught in either format; a masked binary
//! or typed cell becomes NULL, never text bytes. Other binary values
//! (`numeric`, dates, floats, `jsonb`) are not scanned; mask such columns
//! with a column rule.
//!
//! A row the policy denies by an output rule has every cell set to NULL (the
//! rows before it were already sent; the refusal is counted). A row whose
//! columns the hook was never told about is treated the same way: fail
//! closed.

use std::sync::Arc;

use bytes::Bytes;
use hoop_masking::{
    CellMasker, CellOutcome, ColumnInfo, CompiledPolicy, Dialect, ResultPlan, ValueKind, Verdict,
};
use hoop_wire::event::{CellFormat, Column, Event};

use crate::pipeline::{
    ClientAction, Interest, Pipeline, Refusal, ServerAction, SessionHook, SessionInfo,
};

/// The SQLSTATE of a refused statement: insufficient privilege.
const REFUSED_SQLSTATE: &str = "42501";

/// PostgreSQL type OIDs (`pg_type.dat`) whose binary form is their text.
mod pg_type {
    pub(super) const CHAR: u32 = 18;
    pub(super) const NAME: u32 = 19;
    pub(super) const INT8: u32 = 20;
    pub(super) const INT2: u32 = 21;
    pub(super) const INT4: u32 = 23;
    pub(super) const TEXT: u32 = 25;
    pub(super) const CIDR: u32 = 650;
    pub(super) const INET: u32 = 869;
    pub(super) const JSON: u32 = 114;
    pub(super) const XML: u32 = 142;
    pub(super) const UNKNOWN: u32 = 705;
    pub(super) const BPCHAR: u32 = 1042;
    pub(super) const VARCHAR: u32 = 1043;
}

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
            integers: Vec::new(),
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

    /// How a column's cells are read, and the byte layout of a binary
    /// integer column (scanned as its decimal rendering).
    fn kind(self, column: &Column) -> (ValueKind, Option<Render>) {
        match self {
            Self::Postgres => pg_kind(column),
            Self::Mysql => mysql_kind(column),
            Self::Other => match column.format {
                CellFormat::Text => (ValueKind::Text, None),
                CellFormat::Binary => (ValueKind::Binary, None),
            },
        }
    }
}

/// A binary cell rendered as text for the detectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Render {
    /// A signed integer, network byte order (PostgreSQL).
    BigEndian,
    /// A signed integer, little-endian (MySQL).
    LittleEndian,
    /// PostgreSQL's `inet`/`cidr`: family, bits, is-cidr, length, address.
    Inet,
}

/// PostgreSQL's address families in binary `inet` (`PGSQL_AF_INET`,
/// `PGSQL_AF_INET6`).
const PG_AF_INET: u8 = 2;
const PG_AF_INET6: u8 = 3;

impl Render {
    /// The text rendering of a cell: a signed integer of 1, 2, 4 or 8
    /// bytes, or an address; `None` for any other layout.
    fn render(self, cell: &[u8], out: &mut Vec<u8>) -> Option<()> {
        if self == Self::Inet {
            let address = match cell {
                [PG_AF_INET, _, _, 4, a @ ..] => {
                    std::net::IpAddr::from(<[u8; 4]>::try_from(a).ok()?)
                }
                [PG_AF_INET6, _, _, 16, a @ ..] => {
                    std::net::IpAddr::from(<[u8; 16]>::try_from(a).ok()?)
                }
                _ => return None,
            };
            out.clear();
            out.extend_from_slice(address.to_string().as_bytes());
            return Some(());
        }
        let mut bytes = [0u8; 8];
        let n = cell.len();
        if !matches!(n, 1 | 2 | 4 | 8) {
            return None;
        }
        match self {
            Self::BigEndian => bytes[8 - n..].copy_from_slice(cell),
            Self::LittleEndian | Self::Inet => {
                for (i, b) in cell.iter().enumerate() {
                    bytes[7 - i] = *b;
                }
            }
        }
        // Sign-extend from the cell's width.
        let shift = 64 - 8 * n as u32;
        let value = (i64::from_be_bytes(bytes) << shift) >> shift;
        out.clear();
        out.extend_from_slice(value.to_string().as_bytes());
        Some(())
    }
}

fn pg_kind(column: &Column) -> (ValueKind, Option<Render>) {
    use pg_type::*;
    let text_like = matches!(
        column.type_id,
        CHAR | NAME | TEXT | JSON | XML | UNKNOWN | BPCHAR | VARCHAR
    );
    match (column.format, text_like) {
        (_, true) => (ValueKind::Text, None),
        (CellFormat::Text, false) => (ValueKind::TypedText, None),
        (CellFormat::Binary, false) => match column.type_id {
            INT2 | INT4 | INT8 => (ValueKind::TypedText, Some(Render::BigEndian)),
            INET | CIDR => (ValueKind::TypedText, Some(Render::Inet)),
            _ => (ValueKind::Binary, None),
        },
    }
}

fn mysql_kind(column: &Column) -> (ValueKind, Option<Render>) {
    use hoop_wire::mysql::column_type::*;
    let Ok(ty) = u8::try_from(column.type_id) else {
        return (ValueKind::Binary, None);
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
    match (column.format, string) {
        (_, true) => (ValueKind::Text, None),
        (CellFormat::Text, false) => (ValueKind::TypedText, None),
        // DECIMAL travels as digits even in the binary protocol.
        (CellFormat::Binary, false) if matches!(ty, DECIMAL | NEWDECIMAL) => {
            (ValueKind::TypedText, None)
        }
        (CellFormat::Binary, false) if matches!(ty, TINY | SHORT | LONG | INT24 | LONGLONG) => {
            (ValueKind::TypedText, Some(Render::LittleEndian))
        }
        (CellFormat::Binary, false) => (ValueKind::Binary, None),
    }
}

/// One session's policy state.
struct PolicyHook {
    policy: CompiledPolicy,
    masker: CellMasker,
    protocol: Protocol,
    /// The current result set's plan; `None` until a `Columns` event.
    plan: Option<ResultPlan>,
    /// Per column: the layout of a binary integer to render before scanning.
    integers: Vec<Option<Render>>,
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
        let kinds: Vec<(ValueKind, Option<Render>)> =
            columns.iter().map(|c| self.protocol.kind(c)).collect();
        let infos: Vec<ColumnInfo<'_>> = columns
            .iter()
            .zip(&kinds)
            .map(|(c, (kind, _))| {
                let info = ColumnInfo::new(&c.name, *kind);
                match &c.table {
                    Some(table) => info.in_table(table),
                    None => info,
                }
            })
            .collect();
        self.plan = Some(self.policy.plan(&infos));
        self.integers = kinds.into_iter().map(|(_, integer)| integer).collect();
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
            let outcome = match self.integers.get(i).copied().flatten() {
                Some(layout) => {
                    let mut rendered = std::mem::take(&mut self.out);
                    let outcome = match layout.render(cell, &mut rendered) {
                        // A masked integer becomes NULL: no other value of
                        // its type stands for "hidden".
                        Some(()) => {
                            match self.masker.mask_cell(plan, i, &rendered, &mut Vec::new()) {
                                CellOutcome::Unchanged => CellOutcome::Unchanged,
                                CellOutcome::Replaced | CellOutcome::Null => CellOutcome::Null,
                            }
                        }
                        None => CellOutcome::Null,
                    };
                    self.out = rendered;
                    outcome
                }
                None => {
                    self.out.clear();
                    self.masker.mask_cell(plan, i, cell, &mut self.out)
                }
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
                column("card", pg_type::INT8, CellFormat::Binary),
                column("note", pg_type::TEXT, CellFormat::Binary),
                column("id", pg_type::INT4, CellFormat::Binary),
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
            columns: vec![column("note", pg_type::TEXT, CellFormat::Text)],
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
    fn binary_inet_renders_as_its_address() {
        let mut out = Vec::new();
        Render::Inet
            .render(&[2, 32, 0, 4, 10, 1, 2, 3], &mut out)
            .unwrap();
        assert_eq!(out, b"10.1.2.3");
        assert!(Render::Inet.render(&[2, 32, 0, 4, 10], &mut out).is_none());
    }

    #[test]
    fn mysql_little_endian_integers_render_with_their_sign() {
        let mut out = Vec::new();
        Render::LittleEndian
            .render(&(-5_i16).to_le_bytes(), &mut out)
            .unwrap();
        assert_eq!(out, b"-5");
        Render::BigEndian
            .render(&300_i32.to_be_bytes(), &mut out)
            .unwrap();
        assert_eq!(out, b"300");
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
