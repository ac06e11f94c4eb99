//! The audit recorder: a pipeline hook around the connection's policy that
//! turns a session into events (statements with time, duration, rows,
//! errors and refusals; masked counts at the end) and reports them to the
//! gateway in `EVENTS` frames. Result values are never recorded.
//!
//! ```text
//!  driver --Event--> Recorder --Event--> policy hook (masking, guardrails)
//!                       | statement / done / error / refusal
//!                       v
//!                 batch (<= BATCH events) --EVENTS frame--> gateway --> store
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hoop_proxy::pipeline::{
    ClientAction, Interest, Pipeline, ServerAction, SessionHook, SessionInfo,
};
use hoop_proxy::policy::{PolicyPipeline, SessionCounts};
use hoop_wire::event::Event;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::frame::{Frame, FrameKind};
use crate::messages::SessionEvents;

/// Events gathered before a frame is sent: amortises the frame and the
/// gateway's store write over many statements.
const BATCH: usize = 64;

/// A batch is also sent when it is this old at the next event, so an
/// interactive session's statements reach the store while it runs.
const BATCH_AGE: Duration = Duration::from_secs(1);

/// The longest statement text recorded; longer ones are cut (and marked),
/// so one huge statement cannot bloat the audit store.
const MAX_STATEMENT: usize = 4096;

/// Epoch milliseconds.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where a session's event batches go.
#[derive(Clone)]
pub(crate) enum EventRoute {
    /// Over the link: `EVENTS` frames on the session's stream.
    Link {
        stream: u32,
        outbound: mpsc::Sender<Frame>,
    },
    /// Straight to the gateway's event writer, for an agent embedded in
    /// the gateway's process: nothing to frame or serialise.
    InPlace(mpsc::Sender<SessionEvents>),
}

/// Sends a session's events to the gateway.
#[derive(Clone)]
pub(crate) struct EventSink {
    session_id: Arc<str>,
    route: EventRoute,
    state: Arc<Mutex<SinkState>>,
}

#[derive(Default)]
struct SinkState {
    batch: Vec<Value>,
    next_seq: i64,
    first_in_batch: i64,
    oldest: Option<Instant>,
    dropped: u64,
}

impl EventSink {
    pub(crate) fn new(session_id: &str, route: EventRoute) -> Self {
        Self {
            session_id: session_id.into(),
            route,
            state: Arc::new(Mutex::new(SinkState::default())),
        }
    }

    fn push(&self, mut event: Value, flush: bool) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        event["seq"] = json!(state.next_seq);
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
        // Never wait inside the relay: if the queue is full the batch is
        // dropped and counted (the next batch reports it).
        let queued = match &self.route {
            EventRoute::Link { stream, outbound } => {
                serde_json::to_vec(&message).is_ok_and(|payload| {
                    outbound
                        .try_send(Frame {
                            kind: FrameKind::Events,
                            stream: *stream,
                            payload: payload.into(),
                        })
                        .is_ok()
                })
            }
            EventRoute::InPlace(writer) => writer.try_send(message).is_ok(),
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
            p.on_session_end(Arc::new(move |_info: &SessionInfo, counts: &SessionCounts| {
                let pairs = |list: &[(String, u64)]| -> Value {
                    list.iter().map(|(k, v)| (k.clone(), json!(v))).collect()
                };
                sink.push(
                    json!({"type": "policy", "time": now_ms(), "masked": pairs(&counts.masked), "refused": pairs(&counts.refused)}),
                    false,
                );
            }))
        });
        Self { policy, sink }
    }
}

impl Pipeline for RecordingPipeline {
    fn open(&self, session: &SessionInfo) -> Box<dyn SessionHook> {
        self.sink.push(
            json!({"type": "start", "time": now_ms(), "protocol": session.protocol, "database": session.database}),
            false,
        );
        Box::new(Recorder {
            inner: self.policy.as_ref().map(|p| p.open(session)),
            sink: self.sink.clone(),
            current: None,
            prepared: HashMap::new(),
        })
    }
}

struct Statement {
    text: String,
    time: i64,
    started: Instant,
}

struct Recorder {
    inner: Option<Box<dyn SessionHook>>,
    sink: EventSink,
    current: Option<Statement>,
    /// Prepared statement texts by name, so executions name their SQL.
    prepared: HashMap<String, String>,
}

fn clip(text: &str) -> Value {
    if text.len() <= MAX_STATEMENT {
        return json!(text);
    }
    let mut end = MAX_STATEMENT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!(format!("{}...", &text[..end]))
}

/// Bounds the prepared-statement map: a client preparing endless unique
/// names must not grow the agent's memory.
const MAX_PREPARED: usize = 1024;

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
        let text = match event {
            Event::Query { text } => Some(text.clone()),
            Event::Prepare { name, text } => {
                if self.prepared.len() >= MAX_PREPARED {
                    self.prepared.clear();
                }
                self.prepared.insert(name.clone(), text.clone());
                None
            }
            Event::Execute { name, .. } => {
                Some(self.prepared.get(name).cloned().unwrap_or_default())
            }
            _ => None,
        };
        let action = self
            .inner
            .as_mut()
            .map_or(ClientAction::Forward, |inner| inner.client_event(event));
        if let ClientAction::Refuse(refusal) = &action {
            let text = match event {
                Event::Query { text } | Event::Prepare { text, .. } => text.clone(),
                _ => text.clone().unwrap_or_default(),
            };
            self.sink.push(
                json!({"type": "statement", "time": now_ms(), "statement": clip(&text), "refused": true, "rule": refusal.message, "duration_ms": 0, "rows": 0}),
                false,
            );
            return action;
        }
        if let Some(text) = text {
            self.current = Some(Statement {
                text,
                time: now_ms(),
                started: Instant::now(),
            });
        }
        action
    }

    fn server_event(&mut self, event: &mut Event) -> ServerAction {
        match &*event {
            Event::Done { tag, rows } => {
                if let Some(statement) = &self.current {
                    self.sink.push(
                        json!({
                            "type": "statement",
                            "time": statement.time,
                            "statement": clip(&statement.text),
                            "tag": tag,
                            "rows": rows,
                            "duration_ms": statement.started.elapsed().as_secs_f64() * 1000.0,
                            "refused": false,
                        }),
                        false,
                    );
                }
            }
            Event::Error { code, message } => {
                let text = self
                    .current
                    .as_ref()
                    .map(|s| s.text.as_str())
                    .unwrap_or_default();
                self.sink.push(
                    json!({"type": "error", "time": now_ms(), "statement": clip(text), "code": code, "message": message}),
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
        if let Some(inner) = self.inner.as_mut() {
            inner.closed();
        }
        self.sink
            .push(json!({"type": "end", "time": now_ms()}), true);
    }
}
