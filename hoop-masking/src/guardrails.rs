//! Guardrails: statements judged before they reach the server, rows judged on the way back.
//!
//! Word and pattern rules read the statement's text. Statement-aware rules read the syntax
//! tree that `sqlparser` builds in the connection's dialect. Parsing is skipped when no
//! statement-aware rule could fire: none of their keywords (`update`, `delete`, `drop`, a
//! listed table's name, `;`, ...) occurs anywhere in the text.
//!
//! # Statements sqlparser cannot parse
//!
//! A statement-aware rule fails closed by default: a statement `sqlparser` cannot parse
//! (a `DO $$ ... $$` block followed by `DELETE FROM t`, a dialect extension it does not
//! know) must not slip past the rule unjudged. But refusing every unparseable statement
//! would refuse harmless traffic real clients send and `sqlparser` does not read (catalog
//! queries with `OPERATOR(pg_catalog.~)`, vendor `SHOW` and `SET` forms). So an unparseable
//! statement is refused by a rule only when its code could hold what the rule looks for,
//! judged by a quote-aware scan of its tokens ([`visit_code`]): the words `update` or
//! `delete` for `deny_without_where`, a listed statement kind's keyword for
//! `deny_statements`, a listed table's name (also quoted) for `deny_tables`, and a `;`
//! followed by more code for `deny_multiple_statements`. String literals and comments are
//! data and do not count (`\d payroll` sends the name in a regex literal); dollar-quoted
//! bodies are code and do count. A rule with `allow_unparseable: true` lets every
//! unparseable statement through (the word and pattern rules still judge it).

use std::ops::ControlFlow;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use sqlparser::ast::{ObjectName, Statement, visit_relations, visit_statements};
use sqlparser::dialect;
use sqlparser::parser::Parser;

use crate::compiled::CompiledPolicy;
use crate::detect::{ends_word, starts_word, word_byte};
use crate::error::{PolicyError, PolicyErrorKind};
use crate::policy::{GuardrailConfig, InputRule, OutputRule, StatementKind};
use crate::statement::{CodeToken, visit_code};

/// The SQL dialect a statement is parsed in: the connection's protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// PostgreSQL (and protocol-compatible servers).
    PostgreSql,
    /// MySQL and MariaDB.
    MySql,
    /// Microsoft SQL Server (T-SQL).
    MsSql,
    /// SQLite.
    Sqlite,
    /// Any other: sqlparser's permissive generic dialect.
    Generic,
}

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
    // Keywords of the statement-aware rules; `None` when there are none (parsing is never
    // needed).
    triggers: Option<AhoCorasick>,
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
        let triggers = if keywords.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build(&keywords)
                    .map_err(|e| {
                        PolicyError::new("guardrails.input", PolicyErrorKind::Regex(e.to_string()))
                    })?,
            )
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
            + self.triggers.as_ref().map_or(0, AhoCorasick::memory_usage)
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

impl CompiledPolicy {
    /// Judges a statement (a simple query's text, or a prepared statement's) before it is
    /// sent: the first input rule that denies it, in policy order, decides.
    ///
    /// Cost: word and pattern rules scan the text; statement-aware rules parse it once, and
    /// only when one of their keywords occurs in it. A statement that does not parse is
    /// refused by a statement-aware rule unless the rule sets `allow_unparseable`, or a
    /// quote-aware scan shows it cannot hold what the rule looks for (see the module docs).
    ///
    /// # Examples
    ///
    /// ```
    /// use hoop_masking::{Dialect, Policy, Verdict};
    /// let policy = Policy::from_json(r#"{"guardrails": {"input": [
    ///     {"type": "deny_without_where", "message": "add a WHERE clause"}]}}"#)?.compile()?;
    /// let Verdict::Deny(d) = policy.check_statement("DELETE FROM t", Dialect::PostgreSql) else { panic!() };
    /// assert_eq!(d.message(), "add a WHERE clause");
    /// assert!(policy.check_statement("DELETE FROM t WHERE id = 1", Dialect::PostgreSql).is_allowed());
    /// # Ok::<(), hoop_masking::PolicyError>(())
    /// ```
    pub fn check_statement(&self, sql: &str, dialect: Dialect) -> Verdict {
        let g = &self.inner.guardrails;
        let sql_possible = g.triggers.as_ref().is_some_and(|t| t.is_match(sql));
        let mut parsed: Option<Option<Vec<Statement>>> = None;
        for (i, rule) in g.input.iter().enumerate() {
            let denied = match &rule.check {
                Check::Words(w) => w.matches(sql.as_bytes()),
                Check::Pattern(re) => re.is_match(sql),
                check if sql_possible => match parsed.get_or_insert_with(|| parse(sql, dialect)) {
                    Some(stmts) => sql_denies(check, stmts),
                    None if !rule.allow_unparseable && may_hold(check, sql, dialect) => {
                        return rule.deny_unparseable(i);
                    }
                    None => false,
                },
                _ => false,
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
