//! Guardrails: statements judged before they reach the server, rows judged on the way back.
//!
//! Word and pattern rules read the statement's text. Statement-aware rules read the syntax
//! tree that `sqlparser` builds in the connection's dialect. Both judge what the server
//! will execute, which is not always the text as sent ([`crate::executed`]): MySQL's
//! executable comments, literals whose end a session setting moves, and dynamic SQL whose
//! text is a literal (`PREPARE s FROM '...'`, `EXECUTE IMMEDIATE '...'`, a `DO` block's
//! `EXECUTE '...'`, a function's body) are read every way a server could, and every
//! reading is judged. Reading is skipped when no statement-aware rule could fire and
//! nothing could hide code: none of the rules' keywords (`update`, `delete`, `drop`, a
//! listed table's name, `;`, ...) nor of the words that run or hide SQL (`prepare`,
//! `execute`, `do`, `create`, `U&`, ...) occurs anywhere in the text.
//!
//! # Statements that cannot be judged
//!
//! Dynamic SQL whose text is not a literal (`PREPARE s FROM @q`, `EXECUTE format(...)` in
//! PL/pgSQL), a body in another language (`LANGUAGE plpython3u`), and text that reads too
//! many ways cannot be judged before it runs: a statement-aware rule refuses it unless it
//! sets `allow_unparseable`.
//!
//! A reading `sqlparser` cannot parse (a `DO $$ ... $$` block followed by `DELETE FROM t`,
//! a dialect extension it does not know) must not slip past a rule unjudged either. But
//! refusing every unparseable statement would refuse harmless traffic real clients send and
//! `sqlparser` does not read (catalog queries with `OPERATOR(pg_catalog.~)`, vendor `SHOW`
//! and `SET` forms). So an unparseable reading is refused by a rule only when its code
//! could hold what the rule looks for, judged by a quote-aware scan of its tokens
//! ([`visit_code`]): the words `update` or `delete` for `deny_without_where`, a listed
//! statement kind's keyword for `deny_statements`, a listed table's name (also quoted) for
//! `deny_tables`, and a `;` followed by more code for `deny_multiple_statements`. String
//! literals are data and do not count (`\d payroll` sends the name in a regex literal);
//! dollar-quoted bodies are code and do count. A rule with `allow_unparseable: true` lets
//! every unparseable or opaque statement through (the word and pattern rules still judge
//! it).

mod commands;

use std::ops::ControlFlow;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use sqlparser::ast::{ObjectName, Statement, visit_relations, visit_statements};
use sqlparser::dialect;
use sqlparser::parser::Parser;

use crate::compiled::CompiledPolicy;
use crate::detect::{ends_word, starts_word, word_byte};
use crate::error::{PolicyError, PolicyErrorKind};
use crate::executed::{Opaque, Reading, read, reads_as_sent};
use crate::lexer::{CodeToken, Dialect, visit_code};
use crate::policy::{GuardrailConfig, InputRule, OutputRule, StatementKind};

/// A refusal: which rule, and the message for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    rule: usize,
    name: Arc<str>,
    message: Arc<str>,
}

impl Denial {
    /// The rule's position in its list (`guardrails.input` or `guardrails.output`).
    pub fn rule_index(&self) -> usize {
        self.rule
    }

    /// The rule's name (its `name` field, or its type).
    pub fn rule_name(&self) -> &str {
        &self.name
    }

    /// The message for the client.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The judgement on a statement, a parameter or a row.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Let it through.
    Allow,
    /// Refuse it.
    Deny(Denial),
}

impl Verdict {
    /// True for [`Verdict::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allow)
    }
}

/// Words matched ASCII-case-insensitively on word boundaries.
#[derive(Debug)]
struct WordSet(AhoCorasick);

impl WordSet {
    fn new(words: &[String], path: &str) -> Result<Self, PolicyError> {
        if words.is_empty() {
            return Err(PolicyError::new(
                format!("{path}.words"),
                PolicyErrorKind::Empty,
            ));
        }
        if let Some(k) = words.iter().position(|w| w.trim().is_empty()) {
            return Err(PolicyError::new(
                format!("{path}.words[{k}]"),
                PolicyErrorKind::Empty,
            ));
        }
        AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(words)
            .map(Self)
            .map_err(|e| {
                PolicyError::new(
                    format!("{path}.words"),
                    PolicyErrorKind::Regex(e.to_string()),
                )
            })
    }

    fn matches(&self, text: &[u8]) -> bool {
        self.0.find_overlapping_iter(text).any(|m| {
            let (s, e) = (m.start(), m.end());
            (!word_byte(text[s]) || starts_word(text, s))
                && (!word_byte(text[e - 1]) || ends_word(text, e))
        })
    }
}

#[derive(Debug)]
enum Check {
    Words(WordSet),
    Pattern(regex::Regex),
    WithoutWhere { update: bool, delete: bool },
    Statements(Vec<StatementKind>),
    Tables(Vec<Vec<String>>),
    Multiple,
}

#[derive(Debug)]
struct Rule {
    check: Check,
    name: Arc<str>,
    message: Arc<str>,
    allow_unparseable: bool,
    check_parameters: bool,
    custom_message: bool,
}

impl Rule {
    /// A refusal because the statement does not parse: the rule's own message if the policy
    /// gave one, else one that says so (not the rule's default, which would name a reason
    /// that was never checked).
    fn deny_unparseable(&self, index: usize) -> Verdict {
        let message = if self.custom_message {
            self.message.clone()
        } else {
            format!(
                "statement could not be parsed, and rule {} does not allow unparseable statements",
                self.name
            )
            .into()
        };
        Verdict::Deny(Denial {
            rule: index,
            name: self.name.clone(),
            message,
        })
    }

    /// A refusal because the statement runs SQL that cannot be judged before it runs: the
    /// rule's own message if the policy gave one, else one that says why.
    fn deny_opaque(&self, index: usize, why: Opaque) -> Verdict {
        let message = if self.custom_message {
            self.message.clone()
        } else {
            format!(
                "statement could not be judged ({why}), and rule {} does not allow unparseable statements",
                self.name
            )
            .into()
        };
        Verdict::Deny(Denial {
            rule: index,
            name: self.name.clone(),
            message,
        })
    }

    fn deny(&self, index: usize) -> Verdict {
        Verdict::Deny(Denial {
            rule: index,
            name: self.name.clone(),
            message: self.message.clone(),
        })
    }
}

#[derive(Debug)]
enum OutputCheck {
    Words(WordSet),
    Pattern(regex::bytes::Regex),
}

#[derive(Debug)]
struct OutRule {
    check: OutputCheck,
    name: Arc<str>,
    message: Arc<str>,
}

#[derive(Debug)]
pub(crate) struct Guardrails {
    input: Vec<Rule>,
    output: Vec<OutRule>,
    // Keywords of the statement-aware rules and the words that run or hide SQL; `None` when
    // there are no input rules (reading is never needed).
    triggers: Option<Triggers>,
}

/// Words that run SQL from a literal or hide it from the text as sent: reading a statement
/// is needed when one occurs, whatever the rules' own keywords. PostgreSQL's `DO` too, as a
/// whole word ([`Triggers::occur_in`]; it occurs inside many).
const READING_TRIGGERS: [&str; 6] = [
    "prepare",
    "execute",
    "create",
    "u&",
    "dblink",
    "query_to_xml",
];

/// The statement-aware rules' keywords and [`READING_TRIGGERS`] in one automaton, and the
/// latter alone.
#[derive(Debug)]
struct Triggers {
    words: AhoCorasick,
    dynamic: AhoCorasick,
}

impl Triggers {
    /// Whether a word that runs SQL from a literal occurs in `text`.
    fn dynamic_in(&self, text: &str) -> bool {
        self.dynamic.is_match(text) || has_word_do(text.as_bytes())
    }

    /// Whether a trigger word, or the word `do`, occurs in `text`. `do` is found by a
    /// separate scan for `d`: a two-byte pattern in the automaton would weaken its
    /// prefilter for every statement.
    fn occur_in(&self, text: &str) -> bool {
        self.words.is_match(text) || has_word_do(text.as_bytes())
    }
}

/// Whether `do` occurs as a word (any case).
fn has_word_do(bytes: &[u8]) -> bool {
    memchr::memchr2_iter(b'd', b'D', bytes).any(|at| {
        bytes
            .get(at + 1)
            .is_some_and(|o| o.eq_ignore_ascii_case(&b'o'))
            && starts_word(bytes, at)
            && ends_word(bytes, at + 2)
    })
}

fn rule_message_given(r: &InputRule) -> bool {
    match r {
        InputRule::DenyWordsList { message, .. }
        | InputRule::PatternMatch { message, .. }
        | InputRule::DenyWithoutWhere { message, .. }
        | InputRule::DenyStatements { message, .. }
        | InputRule::DenyTables { message, .. }
        | InputRule::DenyMultipleStatements { message, .. } => message.is_some(),
    }
}

fn text(s: &Option<String>, default: String) -> Arc<str> {
    s.clone().unwrap_or(default).into()
}

impl Guardrails {
    pub(crate) fn new(config: &GuardrailConfig) -> Result<Self, PolicyError> {
        let mut input = Vec::new();
        let mut keywords: Vec<String> = Vec::new();
        for (i, r) in config.input.iter().enumerate() {
            let path = format!("guardrails.input[{i}]");
            let custom_message = rule_message_given(r);
            let rule = match r {
                InputRule::DenyWordsList {
                    words,
                    message,
                    name,
                    check_parameters,
                } => Rule {
                    check: Check::Words(WordSet::new(words, &path)?),
                    name: text(name, "deny_words_list".into()),
                    message: text(message, "statement contains a denied word".into()),
                    allow_unparseable: true,
                    check_parameters: *check_parameters,
                    custom_message,
                },
                InputRule::PatternMatch {
                    pattern_regex,
                    message,
                    name,
                    check_parameters,
                } => Rule {
                    check: Check::Pattern(regex::Regex::new(pattern_regex).map_err(|e| {
                        PolicyError::new(
                            format!("{path}.pattern_regex"),
                            PolicyErrorKind::Regex(e.to_string()),
                        )
                    })?),
                    name: text(name, "pattern_match".into()),
                    message: text(message, "statement matches a denied pattern".into()),
                    allow_unparseable: true,
                    check_parameters: *check_parameters,
                    custom_message,
                },
                InputRule::DenyWithoutWhere {
                    statements,
                    message,
                    name,
                    allow_unparseable,
                } => {
                    if statements.is_empty() {
                        return Err(PolicyError::new(
                            format!("{path}.statements"),
                            PolicyErrorKind::Empty,
                        ));
                    }
                    if let Some(k) = statements
                        .iter()
                        .position(|s| !matches!(s, StatementKind::Update | StatementKind::Delete))
                    {
                        return Err(PolicyError::new(
                            format!("{path}.statements[{k}]"),
                            PolicyErrorKind::StatementKind(statements[k].keyword()),
                        ));
                    }
                    keywords.extend(statements.iter().map(|s| s.keyword().to_owned()));
                    let upper: Vec<String> = statements
                        .iter()
                        .map(|s| s.keyword().to_uppercase())
                        .collect();
                    Rule {
                        check: Check::WithoutWhere {
                            update: statements.contains(&StatementKind::Update),
                            delete: statements.contains(&StatementKind::Delete),
                        },
                        name: text(name, "deny_without_where".into()),
                        message: text(
                            message,
                            format!(
                                "{} without a WHERE clause is not allowed",
                                upper.join(" or ")
                            ),
                        ),
                        allow_unparseable: *allow_unparseable,
                        check_parameters: false,
                        custom_message,
                    }
                }
                InputRule::DenyStatements {
                    statements,
                    message,
                    name,
                    allow_unparseable,
                } => {
                    if statements.is_empty() {
                        return Err(PolicyError::new(
                            format!("{path}.statements"),
                            PolicyErrorKind::Empty,
                        ));
                    }
                    for s in statements {
                        keywords.push(s.keyword().to_owned());
                        if *s == StatementKind::Select {
                            keywords.extend(["values", "table"].map(String::from));
                        }
                    }
                    let upper: Vec<String> = statements
                        .iter()
                        .map(|s| s.keyword().to_uppercase())
                        .collect();
                    Rule {
                        check: Check::Statements(statements.clone()),
                        name: text(name, "deny_statements".into()),
                        message: text(
                            message,
                            format!("{} statements are not allowed", upper.join(", ")),
                        ),
                        allow_unparseable: *allow_unparseable,
                        check_parameters: false,
                        custom_message,
                    }
                }
                InputRule::DenyTables {
                    tables,
                    message,
                    name,
                    allow_unparseable,
                } => {
                    if tables.is_empty() {
                        return Err(PolicyError::new(
                            format!("{path}.tables"),
                            PolicyErrorKind::Empty,
                        ));
                    }
                    let mut parsed = Vec::new();
                    for (k, t) in tables.iter().enumerate() {
                        let parts: Vec<String> = t
                            .split('.')
                            .map(|p| p.trim().trim_matches('"').to_lowercase())
                            .collect();
                        if parts.iter().any(String::is_empty) {
                            return Err(PolicyError::new(
                                format!("{path}.tables[{k}]"),
                                PolicyErrorKind::Empty,
                            ));
                        }
                        if let Some(last) = parts.last() {
                            keywords.push(last.clone());
                        }
                        parsed.push(parts);
                    }
                    Rule {
                        check: Check::Tables(parsed),
                        name: text(name, "deny_tables".into()),
                        message: text(
                            message,
                            format!("access to {} is not allowed", tables.join(", ")),
                        ),
                        allow_unparseable: *allow_unparseable,
                        check_parameters: false,
                        custom_message,
                    }
                }
                InputRule::DenyMultipleStatements {
                    message,
                    name,
                    allow_unparseable,
                } => {
                    keywords.push(";".into());
                    Rule {
                        check: Check::Multiple,
                        name: text(name, "deny_multiple_statements".into()),
                        message: text(message, "only one statement per query is allowed".into()),
                        allow_unparseable: *allow_unparseable,
                        check_parameters: false,
                        custom_message,
                    }
                }
            };
            input.push(rule);
        }
        let triggers = if input.is_empty() {
            None
        } else {
            keywords.extend(READING_TRIGGERS.map(String::from));
            let automaton = |words: &[String]| {
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(words)
                    .map_err(|e| {
                        PolicyError::new("guardrails.input", PolicyErrorKind::Regex(e.to_string()))
                    })
            };
            Some(Triggers {
                words: automaton(&keywords)?,
                dynamic: automaton(&READING_TRIGGERS.map(String::from))?,
            })
        };

        let mut output = Vec::new();
        for (i, r) in config.output.iter().enumerate() {
            let path = format!("guardrails.output[{i}]");
            output.push(match r {
                OutputRule::DenyWordsList {
                    words,
                    message,
                    name,
                } => OutRule {
                    check: OutputCheck::Words(WordSet::new(words, &path)?),
                    name: text(name, "deny_words_list".into()),
                    message: text(message, "result contains a denied word".into()),
                },
                OutputRule::PatternMatch {
                    pattern_regex,
                    message,
                    name,
                } => OutRule {
                    check: OutputCheck::Pattern(regex::bytes::Regex::new(pattern_regex).map_err(
                        |e| {
                            PolicyError::new(
                                format!("{path}.pattern_regex"),
                                PolicyErrorKind::Regex(e.to_string()),
                            )
                        },
                    )?),
                    name: text(name, "pattern_match".into()),
                    message: text(message, "result matches a denied pattern".into()),
                },
            });
        }
        Ok(Self {
            input,
            output,
            triggers,
        })
    }

    pub(crate) fn memory_usage(&self) -> usize {
        let words = |w: &WordSet| w.0.memory_usage();
        self.input
            .iter()
            .map(|r| {
                std::mem::size_of::<Rule>()
                    + r.name.len()
                    + r.message.len()
                    + match &r.check {
                        Check::Words(w) => words(w),
                        Check::Pattern(re) => re.as_str().len() * 16,
                        Check::Tables(t) => t.iter().flatten().map(String::len).sum(),
                        _ => 0,
                    }
            })
            .sum::<usize>()
            + self
                .output
                .iter()
                .map(|r| {
                    std::mem::size_of::<OutRule>()
                        + match &r.check {
                            OutputCheck::Words(w) => words(w),
                            OutputCheck::Pattern(re) => re.as_str().len() * 16,
                        }
                })
                .sum::<usize>()
            + self.triggers.as_ref().map_or(0, |t| t.words.memory_usage())
    }
}

fn parse(sql: &str, d: Dialect) -> Option<Vec<Statement>> {
    let result = match d {
        Dialect::PostgreSql => Parser::parse_sql(&dialect::PostgreSqlDialect {}, sql),
        Dialect::MySql => Parser::parse_sql(&dialect::MySqlDialect {}, sql),
        Dialect::MsSql => Parser::parse_sql(&dialect::MsSqlDialect {}, sql),
        Dialect::Sqlite => Parser::parse_sql(&dialect::SQLiteDialect {}, sql),
        Dialect::Generic => Parser::parse_sql(&dialect::GenericDialect {}, sql),
    };
    result.ok()
}

fn kind_of(s: &Statement) -> Option<StatementKind> {
    Some(match s {
        Statement::Query(_) => StatementKind::Select,
        Statement::Insert(_) => StatementKind::Insert,
        Statement::Update { .. } => StatementKind::Update,
        Statement::Delete(_) => StatementKind::Delete,
        Statement::Merge { .. } => StatementKind::Merge,
        Statement::Truncate { .. } => StatementKind::Truncate,
        Statement::Copy { .. } => StatementKind::Copy,
        Statement::Grant { .. } => StatementKind::Grant,
        Statement::Revoke { .. } => StatementKind::Revoke,
        // The many DROP/ALTER/CREATE variants print with their keyword first.
        other => {
            let shown = other.to_string();
            let first = shown
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase();
            match first.as_str() {
                "drop" => StatementKind::Drop,
                "alter" => StatementKind::Alter,
                "create" => StatementKind::Create,
                _ => return None,
            }
        }
    })
}

fn name_matches(name: &ObjectName, wanted: &[String]) -> bool {
    let parts: Vec<&str> = name
        .0
        .iter()
        .filter_map(|p| p.as_ident())
        .map(|i| i.value.as_str())
        .collect();
    parts.len() >= wanted.len()
        && parts[parts.len() - wanted.len()..]
            .iter()
            .zip(wanted)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

fn sql_denies(check: &Check, stmts: &[Statement]) -> bool {
    stmts
        .iter()
        .any(|stmt| statement_denies(check, stmt, stmts.len()))
}

fn statement_denies(check: &Check, stmts: &Statement, count: usize) -> bool {
    match check {
        Check::Words(_) | Check::Pattern(_) => false,
        Check::Multiple => count > 1,
        Check::WithoutWhere { update, delete } => visit_statements(stmts, |s| match s {
            Statement::Update {
                selection: None, ..
            } if *update => ControlFlow::Break(()),
            Statement::Delete(d) if *delete && d.selection.is_none() => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        })
        .is_break(),
        Check::Statements(kinds) => visit_statements(stmts, |s| {
            if kind_of(s).is_some_and(|k| kinds.contains(&k)) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .is_break(),
        Check::Tables(tables) => {
            let hit = |n: &ObjectName| tables.iter().any(|t| name_matches(n, t));
            let relations = visit_relations(stmts, |n| {
                if hit(n) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            });
            // DROP names and multi-table DELETE targets are not visited as relations.
            relations.is_break()
                || visit_statements(stmts, |s| {
                    let names: &[ObjectName] = match s {
                        Statement::Drop { names, .. } => names,
                        Statement::Delete(d) => &d.tables,
                        _ => &[],
                    };
                    if names.iter().any(hit) {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                })
                .is_break()
        }
    }
}

/// Whether the code of a statement sqlparser could not parse may hold what `check` looks
/// for (see the module docs): a quote-aware scan, so that words in string literals and
/// comments do not count, and dollar-quoted bodies do.
fn may_hold(check: &Check, sql: &str, dialect: Dialect) -> bool {
    let is = |w: &[u8], k: &str| w.eq_ignore_ascii_case(k.as_bytes());
    let mut after_semicolon = false;
    visit_code(sql.as_bytes(), dialect, &mut |token| {
        let hit = match (token, check) {
            (CodeToken::TooDeep, _) => true,
            (_, Check::Multiple) if after_semicolon => true,
            (
                CodeToken::Other {
                    top_level: true,
                    semicolon: true,
                },
                Check::Multiple,
            ) => {
                after_semicolon = true;
                false
            }
            (CodeToken::Word(w), Check::WithoutWhere { update, delete }) => {
                *update && is(w, "update") || *delete && is(w, "delete")
            }
            (CodeToken::Word(w), Check::Statements(kinds)) => kinds.iter().any(|k| {
                is(w, k.keyword())
                    || *k == StatementKind::Select && (is(w, "values") || is(w, "table"))
            }),
            (CodeToken::Word(w), Check::Tables(tables)) => tables
                .iter()
                .any(|t| t.last().is_some_and(|name| is(w, name))),
            _ => false,
        };
        if hit {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// A statement as its readings, each parsed at most once, when a rule first needs it.
struct Judged {
    reading: Reading,
    /// The only reading is the text as sent.
    as_sent: bool,
    parsed: Vec<Option<Option<Vec<Statement>>>>,
}

impl Judged {
    fn new(reading: Reading, as_sent: bool) -> Self {
        let parsed = reading.views.iter().map(|_| None).collect();
        Self {
            reading,
            as_sent,
            parsed,
        }
    }

    /// The statement's readings, read now if not yet: only the text as sent when it reads
    /// one way and runs no literal.
    fn of<'j>(
        judged: &'j mut Option<Self>,
        sql: &str,
        dialect: Dialect,
        triggers: &Triggers,
    ) -> &'j mut Self {
        judged.get_or_insert_with(|| {
            if reads_as_sent(sql, dialect) && !triggers.dynamic_in(sql) {
                Self::new(Reading::as_sent(sql), true)
            } else {
                Self::new(read(sql, dialect), false)
            }
        })
    }

    /// The readings' texts, unless the only one is the text as sent (which word and
    /// pattern rules read already).
    fn other_views(&self) -> impl Iterator<Item = &str> {
        let skip = if self.as_sent {
            self.reading.views.len()
        } else {
            0
        };
        self.reading.views.iter().skip(skip).map(|v| v.sql.as_str())
    }

    /// A statement-aware rule's refusal, if any reading earns one; `None`: every reading
    /// passes.
    fn judge(
        &mut self,
        rule: &Rule,
        index: usize,
        check: &Check,
        dialect: Dialect,
    ) -> Option<Verdict> {
        if let Some(why) = self.reading.opaque
            && !rule.allow_unparseable
        {
            return Some(rule.deny_opaque(index, why));
        }
        for (view, parsed) in self.reading.views.iter().zip(self.parsed.iter_mut()) {
            // Only the statements the client sent count as several; a body's do not.
            if matches!(check, Check::Multiple) && !view.top_level {
                continue;
            }
            match parsed.get_or_insert_with(|| parse(&view.sql, dialect)) {
                Some(stmts) if sql_denies(check, stmts) => return Some(rule.deny(index)),
                None if !rule.allow_unparseable && may_hold(check, &view.sql, dialect) => {
                    return Some(rule.deny_unparseable(index));
                }
                _ => {}
            }
        }
        None
    }
}

impl CompiledPolicy {
    /// Judges a statement (a simple query's text, or a prepared statement's) before it is
    /// sent: the first input rule that denies it, in policy order, decides.
    ///
    /// Every rule judges what the server will execute: each reading of the text a server
    /// could take, and the dynamic SQL it runs from literals (see the module docs). A
    /// statement that cannot be judged, or does not parse and could hold what a
    /// statement-aware rule looks for, is refused by that rule unless it sets
    /// `allow_unparseable`.
    ///
    /// Cost: word and pattern rules scan the text; statement-aware rules read and parse it,
    /// once, and only when one of their keywords, or a word that runs or hides SQL
    /// (`prepare`, `execute`, `do`, `create`, `U&`, ...), occurs in it. A text of plain
    /// ASCII without comments, escapes or dollar quotes is parsed as sent; others once per
    /// reading (a MySQL statement with a `\'` escape: twice).
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{Dialect, Policy, Verdict};
    /// let policy = Policy::from_json(r#"{"guardrails": {"input": [
    ///     {"type": "deny_without_where", "message": "add a WHERE clause"},
    ///     {"type": "deny_statements", "statements": ["drop"]}]}}"#)?.compile()?;
    /// let Verdict::Deny(d) = policy.check_statement("DELETE FROM t", Dialect::PostgreSql) else { panic!() };
    /// assert_eq!(d.message(), "add a WHERE clause");
    /// assert!(policy.check_statement("DELETE FROM t WHERE id = 1", Dialect::PostgreSql).is_allowed());
    /// // What MySQL runs, not what the text shows; and SQL it cannot see before it runs.
    /// assert!(!policy.check_statement("/*!50000 DROP TABLE t */", Dialect::MySql).is_allowed());
    /// assert!(!policy.check_statement("PREPARE s FROM @q", Dialect::MySql).is_allowed());
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn check_statement(&self, sql: &str, dialect: Dialect) -> Verdict {
        let g = &self.inner.guardrails;
        let triggers = g.triggers.as_ref().filter(|t| t.occur_in(sql));
        // Read at most once, when a rule first needs it.
        let mut judged: Option<Judged> = None;
        for (i, rule) in g.input.iter().enumerate() {
            let denied = match (&rule.check, triggers) {
                // The text as sent, and every other reading of it.
                (Check::Words(w), _) if w.matches(sql.as_bytes()) => true,
                (Check::Pattern(re), _) if re.is_match(sql) => true,
                (Check::Words(w), Some(t)) => Judged::of(&mut judged, sql, dialect, t)
                    .other_views()
                    .any(|v| w.matches(v.as_bytes())),
                (Check::Pattern(re), Some(t)) => Judged::of(&mut judged, sql, dialect, t)
                    .other_views()
                    .any(|v| re.is_match(v)),
                (Check::Words(_) | Check::Pattern(_), None) => false,
                (check, Some(t)) => {
                    match Judged::of(&mut judged, sql, dialect, t).judge(rule, i, check, dialect) {
                        Some(verdict) => return verdict,
                        None => false,
                    }
                }
                (_, None) => false,
            };
            if denied {
                return rule.deny(i);
            }
        }
        Verdict::Allow
    }

    /// Judges one bound parameter value by the word and pattern rules that set
    /// `check_parameters`.
    pub fn check_parameter(&self, value: &[u8]) -> Verdict {
        for (i, rule) in self.inner.guardrails.input.iter().enumerate() {
            if !rule.check_parameters {
                continue;
            }
            let denied = match &rule.check {
                Check::Words(w) => w.matches(value),
                Check::Pattern(re) => std::str::from_utf8(value).is_ok_and(|v| re.is_match(v)),
                _ => false,
            };
            if denied {
                return rule.deny(i);
            }
        }
        Verdict::Allow
    }

    /// True when the policy has output rules, so rows need [`check_row`](Self::check_row).
    pub fn has_output_rules(&self) -> bool {
        !self.inner.guardrails.output.is_empty()
    }

    /// Judges a result row, before masking, by the output rules: the first rule matching
    /// any non-NULL cell denies the result.
    pub fn check_row<'a>(&self, cells: impl IntoIterator<Item = Option<&'a [u8]>>) -> Verdict {
        let rules = &self.inner.guardrails.output;
        if rules.is_empty() {
            return Verdict::Allow;
        }
        for cell in cells.into_iter().flatten() {
            for (i, r) in rules.iter().enumerate() {
                let hit = match &r.check {
                    OutputCheck::Words(w) => w.matches(cell),
                    OutputCheck::Pattern(re) => re.is_match(cell),
                };
                if hit {
                    return Verdict::Deny(Denial {
                        rule: i,
                        name: r.name.clone(),
                        message: r.message.clone(),
                    });
                }
            }
        }
        Verdict::Allow
    }
}
