//! The audit recorder: a pipeline hook around the connection's policy that
//! turns a session into events (statements with time, duration, rows,
//! errors and refusals; masked counts at the end) and reports them to the
//! gateway in `EVENTS` frames. Result values are never recorded.
//!
//! Statement texts are recorded as `AuditText` makes them: credential
//! literals (`ALTER USER ... PASSWORD '...'`, `IDENTIFIED BY '...'`, a
//! dblink connection string's password) replaced, and, when the connection
//! has a masking policy, the values its detectors find masked as the
//! session's output would be (`WHERE email = 'alice@example.com'` is
//! recorded with the address redacted).
//!
//! Server error messages go through the same: a message often quotes the
//! statement it rejects (PostgreSQL's `syntax error at or near
//! "'hunter2'"`, MariaDB's `near 'BY 'hunter2'' at line 1`, cut after 80
//! characters), so every credential value replaced in the session's recent
//! statements (`RECENT_SECRETS`) is replaced in the message too, as
//! written, as the server read it, and where the quote is cut inside it
//! ([`hoop_masking::Secrets::scrub`]); then the detectors apply. Only the
//! message is recorded: PostgreSQL's detail, hint and position fields are
//! not.
//!
//! ```text
//!  driver --Event--> Recorder --Event--> policy hook (masking, guardrails)
//!                       | statement / done / error / refusal
//!                       v
//!   (journal, in the gateway's process)   batch (<= BATCH events)
//!                                            |
//!             over a link: outbox --EVENTS frame--> gateway --> store --ack--> outbox
//!             in place:    the gateway's event writer --> store
//! ```
//!
//! A session's recorder always ends with an `end` event: when the driver
//! closes the session, or when the session's task is dropped (the link was
//! lost, the gateway stops), in which case the outbox sends it after the
//! next link is up.
//!
//! Its own module, beside [`crate::link`] rather than inside it, because a
//! recorder does not need a link: in-place sessions record straight into
//! the gateway's event writer. The [`outbox`] (batches kept until the
//! gateway acknowledges them, across links) and the [`journal`] (events on
//! disk before the client gets its answer, in the gateway's process) are
//! the two ways its batches are kept safe until stored.

pub mod journal;
pub mod outbox;

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hoop_masking::{CellMasker, Dialect, RedactedStatement, Secrets, redact_statement};
use hoop_wire::event::Event;
use serde::Serialize;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

use crate::link::frame::Frame;
use crate::link::messages::{BatchId, OpenSession, SessionEvents};
use crate::pipeline::{ClientAction, Interest, Pipeline, ServerAction, SessionHook, SessionInfo};
use crate::policy::{PolicyPipeline, SessionCounts};
use journal::{AuditJournal, JournalHolds};
use outbox::AuditOutbox;

/// Events gathered before a frame is sent: amortises the frame and the
/// gateway's store write over many statements.
const BATCH: usize = 64;

/// A batch is also sent when it is this old at the next event, so an
/// interactive session's statements reach the store while it runs.
const BATCH_AGE: Duration = Duration::from_secs(1);

/// The longest statement text or error message recorded; longer ones are
/// cut (and marked), so one huge statement, or a server quoting one back,
/// cannot bloat the audit store.
const MAX_STATEMENT: usize = 4096;

/// Epoch milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One recorded event, as stored and served by `GET /api/sessions/{id}/events`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum AuditEvent<'a> {
    /// The session reached its driver.
    Start {
        time: i64,
        protocol: &'a str,
        database: Option<&'a str>,
    },
    /// A statement finished, or was refused (then `rule` says by what).
    Statement {
        time: i64,
        statement: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<&'a str>,
        rows: Option<u64>,
        duration_ms: f64,
        refused: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        rule: Option<&'a str>,
    },
    /// The server answered a statement with an error.
    Error {
        time: i64,
        statement: &'a str,
        code: &'a str,
        message: &'a str,
    },
    /// What the policy masked and refused in the session, by entity type
    /// and by rule.
    Policy {
        time: i64,
        masked: Counts<'a>,
        refused: Counts<'a>,
    },
    /// The session ended.
    End { time: i64 },
}

/// An event with its place in the session's stream.
#[derive(Serialize)]
struct Sequenced<'a> {
    seq: i64,
    #[serde(flatten)]
    event: AuditEvent<'a>,
}

/// Counts by name, as a JSON object.
struct Counts<'a>(&'a [(String, u64)]);

impl Serialize for Counts<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, count)| (name, count)))
    }
}

/// Where a session's event batches go.
#[derive(Clone)]
pub(crate) enum EventRoute {
    /// Over the link: through the agent's outbox, which keeps each batch
    /// until the gateway stored it, on the session's stream of the link of
    /// `generation`.
    Link {
        outbox: AuditOutbox,
        stream: u32,
        generation: u64,
    },
    /// Straight to the gateway's event writer, for an agent embedded in
    /// the gateway's process: nothing to frame or serialise.
    InPlace(mpsc::Sender<AuditBatch>),
}

/// A batch on its way into the gateway's store, in the gateway's process:
/// its events, what keeps them journaled until then, and for a batch that
/// came over a link, that link's writer, told in an `EVENTS_ACK` frame once
/// the batch is stored.
#[derive(Debug)]
pub struct AuditBatch {
    /// The events.
    pub events: SessionEvents,
    /// Released once the batch is stored.
    pub journaled: JournalHolds,
    /// The link the batch arrived on.
    pub ack: Option<mpsc::Sender<Frame>>,
}

/// Sends a session's events to the gateway.
#[derive(Clone)]
pub(crate) struct EventSink {
    session_id: Arc<str>,
    route: EventRoute,
    /// In the gateway's process: each event is journaled as it is
    /// recorded, so a crash before its batch is stored does not lose it.
    journal: Option<AuditJournal>,
    state: Arc<Mutex<SinkState>>,
}

#[derive(Default)]
struct SinkState {
    batch: Vec<Box<RawValue>>,
    journaled: JournalHolds,
    next_seq: i64,
    first_in_batch: i64,
    oldest: Option<Instant>,
    dropped: u64,
}

impl EventSink {
    pub(crate) fn new(session_id: &str, route: EventRoute, journal: Option<AuditJournal>) -> Self {
        Self {
            session_id: session_id.into(),
            route,
            journal,
            state: Arc::new(Mutex::new(SinkState::default())),
        }
    }

    /// Numbers `event` and adds it to the batch; serialised here, once,
    /// since the gateway stores the JSON as it arrives. Journaled first
    /// (in the gateway's process), before the hook returns and so before
    /// the client sees the statement's answer.
    fn push(&self, event: AuditEvent<'_>, flush: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(event) = serde_json::value::to_raw_value(&Sequenced {
            seq: state.next_seq,
            event,
        }) else {
            state.dropped += 1;
            return;
        };
        if let Some(journal) = &self.journal {
            journal.append(&self.session_id, &event, &mut state.journaled);
        }
        if state.batch.is_empty() {
            state.first_in_batch = state.next_seq;
            state.oldest = Some(Instant::now());
        }
        state.next_seq += 1;
        state.batch.push(event);
        let old = state.oldest.is_some_and(|t| t.elapsed() >= BATCH_AGE);
        if flush || old || state.batch.len() >= BATCH {
            self.send(&mut state);
        }
    }

    fn send(&self, state: &mut SinkState) {
        let events = std::mem::take(&mut state.batch);
        let journaled = std::mem::take(&mut state.journaled);
        state.oldest = None;
        if events.is_empty() {
            return;
        }
        let count = events.len() as u64;
        let message = SessionEvents {
            session_id: self.session_id.to_string(),
            first_seq: state.first_in_batch,
            events,
            dropped: state.dropped,
        };
        // Never wait inside the relay: if the outbox or the queue is full
        // the batch is dropped and counted (the next batch reports it).
        let queued = match &self.route {
            EventRoute::Link {
                outbox,
                stream,
                generation,
            } => serde_json::to_vec(&message).is_ok_and(|payload| {
                let id = BatchId {
                    session_id: message.session_id,
                    first_seq: message.first_seq,
                };
                outbox.submit(id, *stream, *generation, payload.into(), journaled)
            }),
            EventRoute::InPlace(writer) => writer
                .try_send(AuditBatch {
                    events: message,
                    journaled,
                    ack: None,
                })
                .is_ok(),
        };
        if !queued {
            state.dropped += count;
        }
    }
}

/// The pipeline of one session: the recorder around the policy (if any).
pub(crate) struct RecordingPipeline {
    policy: Option<PolicyPipeline>,
    sink: EventSink,
}

impl RecordingPipeline {
    pub(crate) fn new(policy: Option<PolicyPipeline>, sink: EventSink) -> Self {
        let policy = policy.map(|p| {
            let sink = sink.clone();
            p.on_session_end(Arc::new(
                move |_info: &SessionInfo, counts: &SessionCounts| {
                    sink.push(
                        AuditEvent::Policy {
                            time: now_ms(),
                            masked: Counts(&counts.masked),
                            refused: Counts(&counts.refused),
                        },
                        false,
                    );
                },
            ))
        });
        Self { policy, sink }
    }
}

impl Pipeline for RecordingPipeline {
    fn open(&self, session: &SessionInfo) -> Box<dyn SessionHook> {
        self.sink.push(
            AuditEvent::Start {
                time: now_ms(),
                protocol: session.protocol,
                database: session.database.as_deref(),
            },
            false,
        );
        Box::new(Recorder {
            ended: false,
            inner: self.policy.as_ref().map(|p| p.open(session)),
            audit: AuditText::new(session.protocol, self.policy.as_ref()),
            sink: self.sink.clone(),
            current: None,
            prepared: HashMap::new(),
            recent_secrets: VecDeque::new(),
            preparing: None,
        })
    }
}

struct Statement {
    text: String,
    time: i64,
    started: Instant,
}

struct Recorder {
    /// The `end` event was recorded.
    ended: bool,
    inner: Option<Box<dyn SessionHook>>,
    audit: AuditText,
    sink: EventSink,
    current: Option<Statement>,
    /// Prepared statement texts by name, as recorded, so executions name
    /// their SQL.
    prepared: HashMap<String, Recorded>,
    /// The credential values of the last [`RECENT_SECRETS`] statements that
    /// had any, newest last, scrubbed from every error message.
    recent_secrets: VecDeque<Arc<Secrets>>,
    /// The text of a statement prepared since the last query or execution:
    /// an error before any execution is its own (the server refused the
    /// Parse or COM_STMT_PREPARE), not the previous statement's.
    preparing: Option<String>,
}

/// Statements whose credential values are still scrubbed from error
/// messages. More than one: a client that pipelines (PostgreSQL's extended
/// protocol sends Parse, Bind, Execute for several statements before it
/// reads an answer) gets the error for a statement after the next ones were
/// seen, and an error for a failed Parse follows no Execute. An error that
/// quotes an older statement's password is not expected; hiding that
/// string in it costs nothing when the session set no password.
const RECENT_SECRETS: usize = 8;

/// A statement's text as recorded, and the credential values taken out of
/// it (`None`: there were none, the common case, with no allocation).
#[derive(Clone)]
struct Recorded {
    text: String,
    secrets: Option<Arc<Secrets>>,
}

/// Text read past [`MAX_STATEMENT`] before clipping, so a value the clip
/// cuts is still seen whole by the detectors (emails are at most 254
/// bytes); the last this many bytes of what was read are then dropped, so
/// a value cut at the end of the read text, which the detectors may have
/// missed, is never recorded.
const READ_AHEAD: usize = 512;

/// What every statement text goes through before it is recorded: credential
/// literals replaced (always), then the connection's detectors (when it has
/// a policy), then clipped to [`MAX_STATEMENT`]. The replaced values are
/// kept, to be replaced in the server's error messages too.
///
/// Cost per statement: one pass over the text for the credential words
/// (`pass`, `iden`, ...) and, with a policy, the detectors' prefilter, the
/// cell hot path's; a statement with neither is copied once, as before,
/// and keeps no values (nothing allocated). A statement longer than what is
/// read costs one more pass over all of it for the credential words. An
/// error message costs nothing more unless the session's recent statements
/// held credentials: then one search per value form.
struct AuditText {
    dialect: Dialect,
    /// The connection's detectors; its counts are never reported (the
    /// session's counts are of its results).
    masker: Option<CellMasker>,
}

impl AuditText {
    fn new(protocol: &str, policy: Option<&PolicyPipeline>) -> Self {
        let dialect = match protocol {
            "postgres" => Dialect::PostgreSql,
            "mysql" => Dialect::MySql,
            _ => Dialect::Generic,
        };
        Self {
            dialect,
            masker: policy.map(|p| p.policy().masker()),
        }
    }

    /// The statement text as recorded, and its credential values.
    ///
    /// The values of a text longer than what is read come from the whole
    /// text: a password past the clip is not recorded with the statement,
    /// but the server's error may quote it. That costs such a statement one
    /// more pass over its bytes for the credential words.
    fn statement(&mut self, text: &str) -> Recorded {
        let read = prefix(text, MAX_STATEMENT + READ_AHEAD);
        let cut = read.len() < text.len();
        let RedactedStatement {
            text: redacted,
            secrets,
        } = redact_statement(read, self.dialect);
        let secrets = if cut {
            redact_statement(text, self.dialect).secrets
        } else {
            secrets
        };
        let secrets = (!secrets.is_empty()).then(|| Arc::new(secrets));
        let masked = self.mask(redacted);
        let keep = if cut {
            masked.len().saturating_sub(READ_AHEAD).min(MAX_STATEMENT)
        } else {
            MAX_STATEMENT
        };
        let text = if !cut && masked.len() <= keep {
            masked.into_owned()
        } else {
            format!("{}...", prefix(&masked, keep))
        };
        Recorded { text, secrets }
    }

    /// A server error's message as recorded: the credential values of
    /// `secrets` replaced, then the detectors applied (a unique-violation
    /// detail quotes the duplicate value).
    fn message<'s>(&mut self, message: &str, secrets: impl Iterator<Item = &'s Secrets>) -> String {
        let mut scrubbed = Cow::Borrowed(message);
        for s in secrets {
            if let Cow::Owned(changed) = s.scrub(&scrubbed) {
                scrubbed = Cow::Owned(changed);
            }
        }
        let masked = self.mask(scrubbed);
        if masked.len() <= MAX_STATEMENT {
            return masked.into_owned();
        }
        // Cut after scrubbing and masking: no value is left half hidden.
        format!("{}...", prefix(&masked, MAX_STATEMENT))
    }

    fn mask<'t>(&mut self, text: Cow<'t, str>) -> Cow<'t, str> {
        match self.masker.as_mut() {
            Some(masker) => {
                if let Cow::Owned(masked) = masker.mask_text(&text) {
                    Cow::Owned(masked)
                } else {
                    text
                }
            }
            None => text,
        }
    }
}

/// An exec session's error as its record keeps it (the session's `error`
/// field, which `hoop exec` also prints): the database's message often
/// quotes the script (`syntax error at or near "'hunter2'"`, MariaDB's
/// `near 'BY 'hunter2''`), so it goes through what an error event's
/// message does: the credential values of the whole script replaced, then
/// the connection's detectors, then the cut.
pub(crate) fn recorded_error(open: &OpenSession, message: &str) -> String {
    let policy = open
        .policy
        .as_deref()
        .and_then(|json| crate::agent::compiled(json).ok());
    let mut audit = AuditText::new(&open.protocol, policy.as_ref());
    let secrets = open
        .script
        .as_deref()
        .map(|script| redact_statement(script, audit.dialect).secrets);
    audit.message(message, secrets.iter())
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn prefix(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Bounds the prepared-statement map: a client preparing endless unique
/// names must not grow the agent's memory.
const MAX_PREPARED: usize = 1024;

impl Recorder {
    /// Keeps a statement's credential values for scrubbing the errors that
    /// follow; the same values again (a prepared statement executed in a
    /// loop) are kept once.
    fn remember_secrets(&mut self, secrets: &Arc<Secrets>) {
        if self.recent_secrets.iter().any(|s| Arc::ptr_eq(s, secrets)) {
            return;
        }
        if self.recent_secrets.len() >= RECENT_SECRETS {
            self.recent_secrets.pop_front();
        }
        self.recent_secrets.push_back(Arc::clone(secrets));
    }
}

impl SessionHook for Recorder {
    fn interest(&self) -> Interest {
        let inner = self
            .inner
            .as_ref()
            .map_or(Interest::NONE, |inner| inner.interest());
        Interest {
            statements: true,
            completions: true,
            errors: true,
            ..inner
        }
    }

    fn client_event(&mut self, event: &Event) -> ClientAction {
        // The text as it will be recorded; a prepared text is cleaned once,
        // when it is prepared, not at every execution.
        let recorded = match event {
            Event::Query { text } | Event::Prepare { text, .. } => Some(self.audit.statement(text)),
            Event::Execute { name, .. } => {
                Some(self.prepared.get(name).cloned().unwrap_or(Recorded {
                    text: String::new(),
                    secrets: None,
                }))
            }
            _ => None,
        };
        if let Some(secrets) = recorded.as_ref().and_then(|r| r.secrets.as_ref()) {
            self.remember_secrets(secrets);
        }
        if let (Event::Prepare { name, .. }, Some(recorded)) = (event, &recorded) {
            if self.prepared.len() >= MAX_PREPARED {
                self.prepared.clear();
            }
            self.prepared.insert(name.clone(), recorded.clone());
        }
        let text = recorded.map(|r| r.text);
        let action = self
            .inner
            .as_mut()
            .map_or(ClientAction::Forward, |inner| inner.client_event(event));
        if let ClientAction::Refuse(refusal) = &action {
            self.sink.push(
                AuditEvent::Statement {
                    time: now_ms(),
                    statement: text.as_deref().unwrap_or_default(),
                    tag: None,
                    rows: Some(0),
                    duration_ms: 0.0,
                    refused: true,
                    rule: Some(&refusal.message),
                },
                false,
            );
            return action;
        }
        if let Some(text) = text {
            if matches!(event, Event::Prepare { .. }) {
                self.preparing = Some(text);
            } else {
                self.preparing = None;
                self.current = Some(Statement {
                    text,
                    time: now_ms(),
                    started: Instant::now(),
                });
            }
        }
        action
    }

    fn server_event(&mut self, event: &mut Event) -> ServerAction {
        match &*event {
            Event::Done { tag, rows } => {
                if let Some(statement) = &self.current {
                    self.sink.push(
                        AuditEvent::Statement {
                            time: statement.time,
                            statement: &statement.text,
                            tag: Some(tag),
                            rows: *rows,
                            duration_ms: statement.started.elapsed().as_secs_f64() * 1000.0,
                            refused: false,
                            rule: None,
                        },
                        false,
                    );
                }
            }
            Event::Error { code, message } => {
                let preparing = self.preparing.take();
                let text = preparing
                    .as_deref()
                    .or(self.current.as_ref().map(|s| s.text.as_str()))
                    .unwrap_or_default();
                let message = self
                    .audit
                    .message(message, self.recent_secrets.iter().map(|s| &**s));
                self.sink.push(
                    AuditEvent::Error {
                        time: now_ms(),
                        statement: text,
                        code,
                        message: &message,
                    },
                    false,
                );
            }
            _ => {}
        }
        self.inner
            .as_mut()
            .map_or(ServerAction::Forward, |inner| inner.server_event(event))
    }

    fn closed(&mut self) {
        self.end();
    }
}

impl Recorder {
    /// Records the session's end (the policy's counts, then `end`) and
    /// sends what is batched, once.
    fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if let Some(inner) = self.inner.as_mut() {
            inner.closed();
        }
        self.sink.push(AuditEvent::End { time: now_ms() }, true);
    }
}

/// A session whose task is dropped (its link was lost, the gateway stops)
/// never reaches `closed`: its record still ends, and its last batch still
/// goes out.
impl Drop for Recorder {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    /// A sink whose batches land in a channel, and what reached it.
    fn sink() -> (EventSink, impl FnMut() -> String) {
        let (tx, mut rx) = mpsc::channel(64);
        let sink = EventSink::new("s", EventRoute::InPlace(tx), None);
        let drain = move || {
            let mut events = Vec::new();
            while let Ok(batch) = rx.try_recv() {
                events.extend(batch.events.events);
            }
            serde_json::to_string(&events).unwrap()
        };
        (sink, drain)
    }

    fn session(protocol: &'static str) -> SessionInfo {
        SessionInfo {
            protocol,
            peer: "127.0.0.1:1".parse().unwrap(),
            user: "alice".to_owned(),
            database: None,
        }
    }

    fn query(hook: &mut dyn SessionHook, text: &str) -> ClientAction {
        hook.client_event(&Event::Query {
            text: text.to_owned(),
        })
    }

    fn done(hook: &mut dyn SessionHook) {
        hook.server_event(&mut Event::Done {
            tag: "OK".to_owned(),
            rows: None,
        });
    }

    /// Every path a statement's text takes into the record: a query, a
    /// prepared statement and its executions, a refused statement, a
    /// statement that failed and the server's error message.
    #[test]
    fn passwords_and_detected_values_never_reach_the_record() {
        let (sink, mut drain) = sink();
        let policy = PolicyPipeline::from_json(
            r#"{"guardrails": {"input": [{"type": "deny_words_list", "name": "no-bluebird", "words": ["bluebird"]}]}}"#,
        )
        .unwrap();
        let pipeline = RecordingPipeline::new(Some(policy), sink);
        let mut hook = pipeline.open(&session("postgres"));
        let hook = hook.as_mut();

        assert_eq!(
            query(hook, "ALTER USER bob PASSWORD 'hunter2'"),
            ClientAction::Forward
        );
        done(hook);
        query(
            hook,
            "SELECT id FROM users WHERE email = 'alice@example.com'",
        );
        done(hook);
        hook.client_event(&Event::Prepare {
            name: "s1".to_owned(),
            text: "CREATE USER MAPPING FOR bob SERVER s OPTIONS (password 'hunter2')".to_owned(),
        });
        for _ in 0..2 {
            hook.client_event(&Event::Execute {
                name: "s1".to_owned(),
                params: vec![Some(Bytes::from_static(b"1"))],
            });
            done(hook);
        }
        let refused = query(
            hook,
            "ALTER USER bluebird PASSWORD 'hunter2' -- alice@example.com",
        );
        assert!(matches!(refused, ClientAction::Refuse(_)));
        query(
            hook,
            "INSERT INTO users (email) VALUES ('alice@example.com')",
        );
        hook.server_event(&mut Event::Error {
            code: "23505".to_owned(),
            message: "duplicate key value: Key (email)=(alice@example.com) already exists"
                .to_owned(),
        });
        hook.closed();

        let recorded = drain();
        assert!(!recorded.contains("hunter2"), "{recorded}");
        assert!(!recorded.contains("alice@example.com"), "{recorded}");
        assert_eq!(
            recorded.matches("[REDACTED:PASSWORD]").count(),
            4,
            "{recorded}"
        );
        assert_eq!(
            recorded.matches("[REDACTED:EMAIL_ADDRESS]").count(),
            4,
            "{recorded}"
        );
        assert!(recorded.contains("ALTER USER bob PASSWORD '[REDACTED:PASSWORD]'"));
        assert!(recorded.contains(r#""refused":true"#));
        // Masking the record is not masking output: the session's counts
        // stay those of its results.
        assert!(recorded.contains(r#""masked":{}"#), "{recorded}");
    }

    /// Without a policy only credentials are replaced: the detectors are the
    /// connection's, and it has none.
    #[test]
    fn without_a_policy_only_credentials_are_replaced() {
        let (sink, mut drain) = sink();
        let pipeline = RecordingPipeline::new(None, sink);
        let mut hook = pipeline.open(&session("mysql"));
        query(hook.as_mut(), r"SET PASSWORD FOR 'bob'@'%' = 'hun\'ter2'");
        done(hook.as_mut());
        query(hook.as_mut(), "SELECT 'alice@example.com'");
        done(hook.as_mut());
        hook.closed();
        let recorded = drain();
        assert!(!recorded.contains("hun"), "{recorded}");
        assert!(recorded.contains("SET PASSWORD FOR 'bob'@'%' = '[REDACTED:PASSWORD]'"));
        assert!(recorded.contains("alice@example.com"));
    }

    /// A long statement is clipped after it is cleaned, and a value the
    /// clip or the read-ahead cuts is never recorded in part.
    #[test]
    fn long_statements_are_cleaned_then_clipped() {
        let mut audit = AuditText {
            dialect: Dialect::PostgreSql,
            masker: Some(hoop_masking::CompiledPolicy::default().masker()),
        };
        let email = "alice.liddell@example.com";
        for pad in [0, 1, 7, 20, 500, 520, 4000] {
            let filler = "x".repeat(MAX_STATEMENT - email.len() / 2 + pad);
            let text = format!(
                "SELECT '{filler} {email} ' FROM t WHERE a = '{}' AND b = '{email}'",
                "y".repeat(pad * 3)
            );
            let recorded = audit.statement(&text).text;
            assert!(recorded.len() <= MAX_STATEMENT + 3, "{pad}");
            assert!(recorded.ends_with("..."), "{pad}");
            assert!(!recorded.contains("alice"), "{pad}: {recorded}");
        }
        let secret = format!(
            "ALTER USER bob PASSWORD '{}hunter2'",
            "z".repeat(MAX_STATEMENT)
        );
        let recorded = audit.statement(&secret).text;
        assert!(!recorded.contains('z') && !recorded.contains("hunter2"));
    }

    fn error(hook: &mut dyn SessionHook, code: &str, message: &str) {
        hook.server_event(&mut Event::Error {
            code: code.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Server errors quoting the password of the statement they answer (the
    /// messages are the real servers'): the error is recorded, the password
    /// is not. Also when the error comes for a failed Parse, after later
    /// statements of a pipeline, or quotes a password past the clip.
    #[test]
    fn error_messages_never_record_the_statements_passwords() {
        let (sink, mut drain) = sink();
        let policy = PolicyPipeline::from_json("{}").unwrap();
        let pipeline = RecordingPipeline::new(Some(policy), sink);
        let mut hook = pipeline.open(&session("postgres"));
        let hook = hook.as_mut();

        query(hook, "ALTER USER PASSWORD 'hunter2'");
        error(hook, "42601", r#"syntax error at or near "'hunter2'""#);
        query(hook, "SET password_encryption = 'hunter3'");
        error(
            hook,
            "22023",
            r#"invalid value for parameter "password_encryption": "hunter3""#,
        );
        // Extended protocol, pipelined: the failed Parse's error arrives after
        // the next statement was sent.
        hook.client_event(&Event::Prepare {
            name: "s1".to_owned(),
            text: "CREATE ROLE PASSWORD 'hunter4'".to_owned(),
        });
        query(hook, "SELECT 1");
        error(hook, "42601", r#"syntax error at or near "'hunter4'""#);
        done(hook);
        // A password past what is read of a long statement.
        let long = format!(
            "SELECT '{}'; ALTER USER IDENTIFIED BY 'hunter5'",
            "x".repeat(MAX_STATEMENT + READ_AHEAD)
        );
        query(hook, &long);
        error(hook, "42000", "... near 'BY 'hunt...' at line 1");
        // The detectors still apply, after the passwords.
        query(
            hook,
            "UPDATE u SET email = 'bob@example.com' WHERE password = 'hunter6'",
        );
        error(
            hook,
            "23505",
            "Key (email, password)=(bob@example.com, hunter6) already exists",
        );
        hook.closed();

        let recorded = drain();
        assert!(!recorded.contains("hunt"), "{recorded}");
        assert!(!recorded.contains("bob@example.com"), "{recorded}");
        for message in [
            r#"syntax error at or near \"'[REDACTED:PASSWORD]'\""#,
            r#"\"password_encryption\": \"[REDACTED:PASSWORD]\""#,
            "near 'BY '[REDACTED:PASSWORD]...' at line 1",
            "=([REDACTED:EMAIL_ADDRESS], [REDACTED:PASSWORD]) already exists",
        ] {
            assert!(recorded.contains(message), "{message} in {recorded}");
        }
        assert_eq!(
            recorded.matches(r#""type":"error""#).count(),
            5,
            "{recorded}"
        );
    }

    /// A session that set no password records its error messages as the
    /// server sent them.
    #[test]
    fn error_messages_without_passwords_are_recorded_as_sent() {
        let (sink, mut drain) = sink();
        let pipeline = RecordingPipeline::new(None, sink);
        let mut hook = pipeline.open(&session("mysql"));
        query(hook.as_mut(), "SELECT 'hunter2' FROM");
        error(hook.as_mut(), "42000", "near 'hunter2' at line 1");
        hook.closed();
        assert!(drain().contains("near 'hunter2' at line 1"));
    }

    #[test]
    fn an_error_for_a_refused_prepare_names_that_statement() {
        let (sink, mut drain) = sink();
        let pipeline = RecordingPipeline::new(None, sink);
        let mut hook = pipeline.open(&session("postgres"));
        query(hook.as_mut(), "SELECT 1");
        done(hook.as_mut());
        hook.client_event(&Event::Prepare {
            name: "s1".to_owned(),
            text: "SELEC broken".to_owned(),
        });
        error(hook.as_mut(), "42601", "syntax error at or near \"SELEC\"");
        query(hook.as_mut(), "SELECT 2");
        error(hook.as_mut(), "22012", "division by zero");
        hook.closed();
        let recorded: Vec<serde_json::Value> = serde_json::from_str(&drain()).unwrap();
        let statements: Vec<&str> = recorded
            .iter()
            .filter(|e| e["type"] == "error")
            .filter_map(|e| e["statement"].as_str())
            .collect();
        assert_eq!(statements, ["SELEC broken", "SELECT 2"], "{recorded:?}");
    }

    /// A session whose task is dropped (the link lost, the gateway
    /// stopping) still records its end, and its batch goes out.
    #[test]
    fn a_dropped_session_still_records_its_end() {
        let (sink, mut drain) = sink();
        let pipeline = RecordingPipeline::new(None, sink);
        let mut hook = pipeline.open(&session("postgres"));
        query(hook.as_mut(), "SELECT 1");
        done(hook.as_mut());
        drop(hook);
        let recorded: Vec<serde_json::Value> = serde_json::from_str(&drain()).unwrap();
        let types: Vec<&str> = recorded.iter().filter_map(|e| e["type"].as_str()).collect();
        assert_eq!(types, ["start", "statement", "end"]);
        // Closed, then dropped: one end.
        let (closed_sink, mut drain) = super::tests::sink();
        let pipeline = RecordingPipeline::new(None, closed_sink);
        let mut hook = pipeline.open(&session("postgres"));
        hook.closed();
        drop(hook);
        assert_eq!(drain().matches(r#""type":"end""#).count(), 1);
    }

    #[test]
    fn a_huge_error_message_is_recorded_cut() {
        let (sink, mut drain) = sink();
        let pipeline = RecordingPipeline::new(None, sink);
        let mut hook = pipeline.open(&session("postgres"));
        query(hook.as_mut(), "SELECT 1");
        let message = format!("é{}tail", "x".repeat(3 * MAX_STATEMENT));
        error(hook.as_mut(), "XX000", &message);
        hook.closed();
        let recorded = drain();
        assert!(!recorded.contains("tail"), "{}", recorded.len());
        assert!(recorded.contains(&format!("{}...", "x".repeat(MAX_STATEMENT - 2))));
        assert!(recorded.len() < 2 * MAX_STATEMENT, "{}", recorded.len());
    }

    fn exec(protocol: &str, script: &str, policy: Option<&str>) -> OpenSession {
        OpenSession {
            session_id: "s".to_owned(),
            connection: "c".to_owned(),
            protocol: protocol.to_owned(),
            mode: "exec".to_owned(),
            user: "alice@example.com".to_owned(),
            credentials: std::collections::BTreeMap::new(),
            script: Some(script.to_owned()),
            output: None,
            policy: policy.map(str::to_owned),
            client_thread_id: None,
            output_limit: None,
        }
    }

    /// Issue 13, item 6: the exec session's error field got the database's
    /// message as it came, quoting the script's password.
    #[test]
    fn an_exec_error_is_recorded_without_the_scripts_passwords() {
        let open = exec(
            "postgres",
            "SELECT 1;\nALTER USER PASSWORD U&'hunt\\0065r2';",
            None,
        );
        assert_eq!(
            recorded_error(&open, r#"ERROR: syntax error at or near "U&'hunt\0065r2'""#),
            r#"ERROR: syntax error at or near "U&'[REDACTED:PASSWORD]'""#
        );
        let open = exec(
            "mysql",
            "ALTER USER IDENTIFIED BY X'68756e74657232'",
            Some("{}"),
        );
        assert_eq!(
            recorded_error(
                &open,
                "ERROR 1064 (42000): ... near 'BY X'68756e74657232'' at line 1 (alice@example.com)"
            ),
            "ERROR 1064 (42000): ... near 'BY X'[REDACTED:PASSWORD]'' at line 1 ([REDACTED:EMAIL_ADDRESS])"
        );
        let open = exec("postgres", "SELECT 1", None);
        assert_eq!(
            recorded_error(&open, "ERROR: division by zero"),
            "ERROR: division by zero"
        );
    }
}
