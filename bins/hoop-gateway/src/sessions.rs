//! Opening a session: check the person's token, the connection's access
//! control and access modes and its agent's live status, record the
//! session, and open its stream on the agent link.
//!
//! ```text
//!  token --> user --> connection (visible to them?) --> protocol fits?
//!        --> access mode enabled? --> agent online? --> record "open" --> OPEN frame
//!  any "no" --> record "refused" with the reason; nothing reaches the agent
//! ```

use hoop_agent::messages::{OpenSession, SessionEnd, SessionEvents};
use hoop_agent::mux::{PumpEnd, PumpReport, StreamReceiver, StreamSender};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::api::ConnectionInput;
use crate::api::{AppState, Caller};
use crate::live::LiveSession;
use crate::session_stream::{Farewell, Protocol, SessionStream, Start};
use crate::store::{EventBatch, SessionRecord, Store, UserRecord, now_ms};

/// How long the gateway keeps a stream whose client left, for the agent to
/// finish the session and send its last audit events.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// What a session's client and record are told when its agent's link is
/// lost.
pub const AGENT_GONE: &str = "the agent serving this connection went away";

/// How a session uses its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    /// A native client (gateway listener or `hoop connect`).
    Connect,
    /// One script (`hoop exec`, `POST /api/sessions`).
    Exec,
}

impl AccessKind {
    /// The name used in records and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Exec => "exec",
        }
    }
}

/// Why a session was refused; the message is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Which check failed.
    pub reason: RefusalReason,
    /// What the client is told.
    pub message: String,
}

/// The check that refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// Missing, wrong or inactive token.
    Token,
    /// No such connection, or not one the person may see.
    NotFound,
    /// The connection speaks another protocol than the listener.
    Protocol,
    /// The access mode is disabled on the connection.
    ModeDisabled,
    /// The connection's agent is not linked, or cannot reach the target.
    Offline,
    /// The store failed.
    Internal,
}

/// A session that passed every check, with the way to its agent.
#[derive(Debug)]
pub struct Opened {
    /// Its id in the records.
    pub id: String,
    /// How its bytes reach the driver.
    pub route: Route,
    /// The person.
    pub user: UserRecord,
    /// The session among the live ones ([`crate::live`]): it fires when
    /// access is withdrawn, and forgets the session when dropped.
    pub live: LiveSession,
    /// The protocol its client speaks.
    pub(crate) protocol: Protocol,
}

/// How a session's bytes reach the agent's driver.
#[derive(Debug)]
pub enum Route {
    /// A stream over the agent's link.
    Link {
        /// Sends to the agent.
        sender: StreamSender,
        /// Receives from the agent.
        receiver: StreamReceiver,
    },
    /// The agent runs in this process: the caller runs the driver on the
    /// client's stream ([`crate::in_place`]). Only connect sessions take
    /// this route; exec always goes over the link.
    InPlace(Box<OpenSession>),
}

/// What a session asks for.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The person's access token.
    pub token: &'a str,
    /// The connection's name.
    pub connection: &'a str,
    /// How it is used.
    pub kind: AccessKind,
    /// The protocol the client speaks (`postgres`, `mysql`), when the
    /// entry point fixes it.
    pub protocol: Option<&'a str>,
    /// For exec: the input.
    pub script: Option<String>,
    /// For exec: `text` or `json`.
    pub output: Option<String>,
    /// The connection id the MySQL listener's greeting told the client,
    /// for the driver to register (its `KILL QUERY` then finds the thread).
    pub client_thread_id: Option<u32>,
}

impl<'a> Request<'a> {
    /// A `hoop connect` session (tunnelled or handed over): any protocol
    /// the connection speaks, no script.
    pub fn connect(token: &'a str, connection: &'a str) -> Self {
        Self {
            token,
            connection,
            kind: AccessKind::Connect,
            protocol: None,
            script: None,
            output: None,
            client_thread_id: None,
        }
    }
}

fn refuse(reason: RefusalReason, message: impl Into<String>) -> Refused {
    Refused {
        reason,
        message: message.into(),
    }
}

/// Checks and opens a session, recording it either way.
///
/// # Errors
///
/// [`Refused`] with the reason, after recording the refusal.
pub async fn open(state: &AppState, request: Request<'_>) -> Result<Opened, Refused> {
    let id =
        crate::crypto::new_id().map_err(|_| refuse(RefusalReason::Internal, "internal error"))?;
    let mut record = SessionRecord {
        id: id.clone(),
        user_id: None,
        user_email: "unknown".into(),
        connection_id: None,
        // What the client typed, which may be anything until it matches a
        // connection: quoted, so the record shows no control character.
        connection_name: crate::api::names::quoted(request.connection),
        access_mode: request.kind.as_str().into(),
        protocol: request.protocol.unwrap_or("").into(),
        status: "open".into(),
        error: None,
        started_at: now_ms(),
        ended_at: None,
        bytes_in: 0,
        bytes_out: 0,
    };
    match check(state, &request, &mut record).await {
        Ok((open, agent_id, user, protocol)) => {
            if let Err(error) = state.store.insert_session(&record).await {
                tracing::error!(%error, "could not record a session");
                return Err(refuse(RefusalReason::Internal, "internal error"));
            }
            let live = state.live.register(
                &id,
                &crate::crypto::hash_token(request.token.trim()),
                record.connection_id.as_deref().unwrap_or_default(),
                request.kind,
            );
            if request.kind == AccessKind::Connect && state.links.is_in_place(&agent_id) {
                return Ok(Opened {
                    id,
                    route: Route::InPlace(Box::new(open)),
                    user,
                    live,
                    protocol,
                });
            }
            let payload = serde_json::to_vec(&open)
                .map_err(|_| refuse(RefusalReason::Internal, "internal error"))?;
            match state.links.open_stream(&agent_id, payload).await {
                Ok((sender, receiver)) => Ok(Opened {
                    id,
                    route: Route::Link { sender, receiver },
                    user,
                    live,
                    protocol,
                }),
                Err(offline) => {
                    let message = format!("connection {}: {offline}", request.connection);
                    finish(state, &id, "refused", Some(message.clone()), 0, 0).await;
                    Err(refuse(RefusalReason::Offline, message))
                }
            }
        }
        Err(refused) => {
            record.status = "refused".into();
            record.error = Some(refused.message.clone());
            record.ended_at = Some(now_ms());
            if let Err(error) = state.store.insert_session(&record).await {
                tracing::error!(%error, "could not record a refused session");
            }
            tracing::info!(session = %id, connection = ?request.connection, reason = ?refused.reason, "session refused");
            Err(refused)
        }
    }
}

async fn check(
    state: &AppState,
    request: &Request<'_>,
    record: &mut SessionRecord,
) -> Result<(OpenSession, String, UserRecord, Protocol), Refused> {
    let internal = |_| refuse(RefusalReason::Internal, "internal error");
    let user = match request.token.trim() {
        "" => None,
        token => state
            .store
            .user_for_token(&crate::crypto::hash_token(token))
            .await
            .map_err(internal)?
            .filter(|user| user.status == "active"),
    }
    .ok_or_else(|| refuse(RefusalReason::Token, "invalid access token"))?;
    record.user_id = Some(user.id.clone());
    record.user_email = user.email.clone();
    let caller = Caller { user };
    let typed = record.connection_name.clone();
    let not_found = || {
        refuse(
            RefusalReason::NotFound,
            format!("connection {typed} not found"),
        )
    };
    let connection = state
        .store
        .find_connection(request.connection)
        .await
        .map_err(internal)?
        .filter(|c| c.name == request.connection)
        .ok_or_else(not_found)?;
    let rules = crate::api::access_rules(state, &caller)
        .await
        .map_err(|_| refuse(RefusalReason::Internal, "internal error"))?;
    if !crate::api::visible(&rules, &caller, &connection.id) {
        return Err(not_found());
    }
    record.connection_id = Some(connection.id.clone());
    let subtype = connection.subtype.clone().unwrap_or_default();
    record.protocol = subtype.clone();
    let Some(protocol) = Protocol::of_subtype(&subtype) else {
        return Err(refuse(
            RefusalReason::Protocol,
            format!(
                "connection {} is of subtype {subtype:?}; sessions support postgres and mysql",
                connection.name
            ),
        ));
    };
    if let Some(wanted) = request.protocol
        && wanted != subtype
    {
        return Err(refuse(
            RefusalReason::Protocol,
            format!(
                "connection {} is a {subtype} connection; use the {subtype} listener",
                connection.name
            ),
        ));
    }
    let input = crate::api::stored_input(state, &connection)
        .map_err(|_| refuse(RefusalReason::Internal, "internal error"))?;
    let mode = match request.kind {
        AccessKind::Connect => input.access.connect,
        AccessKind::Exec => input.access.exec,
    };
    if !mode.is_enabled() {
        return Err(refuse(
            RefusalReason::ModeDisabled,
            format!(
                "{} access is disabled on connection {}",
                request.kind.as_str(),
                connection.name
            ),
        ));
    }
    let resources = crate::api::resources_by_name(state)
        .await
        .map_err(|_| refuse(RefusalReason::Internal, "internal error"))?;
    let agent_id = crate::api::effective_agent(&connection, &resources);
    let offline = || {
        refuse(
            RefusalReason::Offline,
            format!(
                "connection {} is offline: its agent is not connected or cannot reach the database",
                connection.name
            ),
        )
    };
    let agent_id = agent_id.ok_or_else(offline)?;
    if state
        .links
        .connection_status(Some(&agent_id), &connection.id)
        != "online"
    {
        return Err(offline());
    }
    let credentials = input
        .secret
        .iter()
        .filter_map(|(key, value)| {
            key.strip_prefix("envvar:")
                .map(|name| (name.to_owned(), value.clone()))
        })
        .collect();
    // One query; read now so a change to the plugin applies to this session.
    let dlp = crate::api::dlp::for_connection(state, &connection.id)
        .await
        .map_err(|error| {
            tracing::error!(%error, "could not read the dlp plugin");
            refuse(RefusalReason::Internal, "internal error")
        })?;
    let open = OpenSession {
        session_id: record.id.clone(),
        connection: connection.name.clone(),
        protocol: subtype,
        mode: request.kind.as_str().into(),
        user: caller.user.email.clone(),
        credentials,
        script: request.script.clone(),
        output: request.output.clone(),
        policy: policy_json(
            &with_rule_sets(state, input, &connection.name).await?,
            dlp.as_ref(),
        ),
        client_thread_id: request.client_thread_id,
    };
    Ok((open, agent_id, caller.user, protocol))
}

/// The connection's settings with each guardrail rule set it references
/// (by id in `guardrail_rules`) replaced by that set's rules, read now so a
/// changed set applies to this session. A set that no longer exists
/// refuses the session rather than run it unguarded.
async fn with_rule_sets(
    state: &AppState,
    mut input: ConnectionInput,
    connection: &str,
) -> Result<ConnectionInput, Refused> {
    let mut rules = Vec::with_capacity(input.guardrail_rules.len());
    for rule in std::mem::take(&mut input.guardrail_rules) {
        let Value::String(id) = rule else {
            rules.push(rule);
            continue;
        };
        let set = state
            .store
            .find_guardrail(&id)
            .await
            .map_err(|_| refuse(RefusalReason::Internal, "internal error"))?
            .filter(|set| set.id == id)
            .ok_or_else(|| {
                refuse(
                    RefusalReason::Internal,
                    format!("connection {connection} references guardrail rule set {id}, which no longer exists"),
                )
            })?;
        for (stored, direction) in [(&set.input, None), (&set.output, Some("output"))] {
            let Ok(Value::Array(set_rules)) = serde_json::from_str::<Value>(stored) else {
                return Err(refuse(RefusalReason::Internal, "internal error"));
            };
            for mut rule in set_rules {
                if let (Some(direction), Value::Object(object)) = (direction, &mut rule) {
                    object.insert("direction".into(), direction.into());
                }
                rules.push(rule);
            }
        }
    }
    input.guardrail_rules = rules;
    Ok(input)
}

/// Records how a session ended.
pub async fn finish(
    state: &AppState,
    id: &str,
    status: &str,
    error: Option<String>,
    bytes_in: u64,
    bytes_out: u64,
) {
    let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    if let Err(error) = state
        .store
        .finish_session(id, status, error, clamp(bytes_in), clamp(bytes_out))
        .await
    {
        tracing::error!(session = %id, %error, "could not record the end of a session");
    }
}

/// The outcome of a relayed session as recorded: `done`, or `failed` with
/// the reason (the agent's, or the link's loss).
pub fn outcome(report: &PumpReport) -> (&'static str, Option<String>) {
    match &report.end {
        PumpEnd::Local => ("done", None),
        PumpEnd::Remote(payload) if payload.is_empty() => ("done", None),
        PumpEnd::Remote(payload) => match serde_json::from_slice::<SessionEnd>(payload) {
            Ok(end) if end.status == "done" => ("done", None),
            Ok(end) => (
                "failed",
                end.error.or(Some("the agent ended the session".into())),
            ),
            Err(_) => ("failed", Some("the agent ended the session".into())),
        },
        PumpEnd::LinkLost => ("failed", Some(AGENT_GONE.into())),
    }
}

/// A connect session ready for its client's stream: the stream to the
/// agent over the link, or the driver prepared to run in this process.
#[derive(Debug)]
pub struct Ready {
    leg: Leg,
    live: LiveSession,
    protocol: Protocol,
}

#[derive(Debug)]
enum Leg {
    /// Bytes go over the agent's link.
    Link {
        sender: StreamSender,
        receiver: StreamReceiver,
    },
    /// The driver runs here, on the client's stream.
    InPlace(hoop_agent::InPlaceSession),
}

impl Opened {
    /// Makes the session ready for its client: an in-place driver is
    /// built now, so a session that cannot start is refused before the
    /// client is told it may go on.
    ///
    /// # Errors
    ///
    /// Why the driver cannot start, after recording the session as failed.
    pub async fn ready(self, state: &AppState) -> Result<Ready, String> {
        let leg = match self.route {
            Route::Link { sender, receiver } => Leg::Link { sender, receiver },
            Route::InPlace(open) => match crate::in_place::prepare(state, &open) {
                Ok(session) => Leg::InPlace(session),
                Err(message) => {
                    finish(state, &self.id, "failed", Some(message.clone()), 0, 0).await;
                    return Err(message);
                }
            },
        };
        Ok(Ready {
            leg,
            live: self.live,
            protocol: self.protocol,
        })
    }
}

impl Ready {
    /// Serves the client's stream to the session's end, then records how
    /// it ended. The tunnel and the same-host handoff of `hoop connect`
    /// both end here, so their sessions are served and recorded alike.
    ///
    /// The client's stream is watched (`SessionStream`) from its first
    /// byte: when the agent goes away, or access is withdrawn, the client
    /// reads why in its protocol.
    pub async fn serve<S>(self, state: &AppState, id: &str, client: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let signal = Some(self.live.end_signal());
        let mut client = SessionStream::new(client, self.protocol, Start::Fresh, signal);
        match self.leg {
            Leg::Link { sender, receiver } => {
                let report =
                    hoop_agent::mux::pump(&mut client, sender, receiver, Some(LINGER)).await;
                if report.end == PumpEnd::LinkLost {
                    client.say_farewell(Farewell::agent_gone(AGENT_GONE)).await;
                }
                let (status, error) = outcome(&report);
                let (status, error) = self.live.outcome(status, error);
                finish(state, id, status, error, report.sent, report.received).await;
            }
            Leg::InPlace(session) => {
                let (bytes_in, bytes_out) = crate::in_place::serve(session, client).await;
                let (status, error) = self.live.outcome("done", None);
                finish(state, id, status, error, bytes_in, bytes_out).await;
            }
        }
    }

    /// Gives up before any client byte (the client never arrived) and
    /// records the session as failed with `error`.
    pub async fn abandon(self, state: &AppState, id: &str, error: String) {
        if let Leg::Link { sender, .. } = self.leg {
            sender.close(bytes::Bytes::new()).await;
        }
        finish(state, id, "failed", Some(error), 0, 0).await;
    }
}

/// The connection's policy in `hoop-masking`'s schema: masking from the
/// `dlp` plugin's entry for the connection, if the plugin lists it (its
/// entity types under the plugin's configuration, see
/// [`crate::api::dlp`]; `redact_enabled` and `redact_types` only write
/// that entry), and the connection's `guardrail_rules` (rule objects;
/// those with `"direction": "output"` judge results). `None` when there is
/// nothing to apply, so the session pays for no policy at all.
pub fn policy_json(
    input: &ConnectionInput,
    dlp: Option<&crate::api::dlp::DlpPolicy>,
) -> Option<String> {
    let mut input_rules = Vec::new();
    let mut output_rules = Vec::new();
    for rule in &input.guardrail_rules {
        let Value::Object(rule) = rule else { continue };
        let mut rule = rule.clone();
        match rule.remove("direction").as_ref().and_then(Value::as_str) {
            Some("output") => output_rules.push(Value::Object(rule)),
            _ => input_rules.push(Value::Object(rule)),
        }
    }
    if dlp.is_none() && input_rules.is_empty() && output_rules.is_empty() {
        return None;
    }
    let masking = dlp.map_or_else(
        || json!({"entities": []}),
        crate::api::dlp::DlpPolicy::masking,
    );
    Some(
        json!({
            "masking": masking,
            "guardrails": {"input": input_rules, "output": output_rules},
        })
        .to_string(),
    )
}

/// Event batches waiting for the store, across all links; when full, new
/// batches are dropped (and logged) rather than slowing any link.
const EVENT_QUEUE: usize = 1024;

/// Most queued batches written in one transaction.
const WRITE_BATCHES: usize = 256;

/// The writer's pause after each transaction, so batches arriving
/// meanwhile share the next commit: at most about 50 commits a second
/// however busy the sessions, for at most this much more delay before
/// events are readable.
const COMMIT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(20);

/// An event as stored: on one line. The agent writes compact JSON, but raw
/// JSON may carry newlines between its tokens, and the store keeps a batch
/// as JSON lines.
fn one_line(event: &str) -> String {
    if !event.contains(['\n', '\r']) {
        return event.to_owned();
    }
    serde_json::from_str::<Value>(event).map_or_else(|_| "null".to_owned(), |v| v.to_string())
}

/// Writes agents' session events to the store, off the link's path.
#[derive(Debug, Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<SessionEvents>,
}

impl EventWriter {
    /// Starts the writer task over `store`.
    pub fn spawn(store: Store) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, mut batches) = mpsc::channel::<SessionEvents>(EVENT_QUEUE);
        let task = tokio::spawn(async move {
            // What queued since the previous write goes in one
            // transaction (group commit): each commit writes whole pages,
            // so one per agent batch made the store recording's largest
            // cost under load.
            let mut received = Vec::with_capacity(WRITE_BATCHES);
            while batches.recv_many(&mut received, WRITE_BATCHES).await > 0 {
                let rows: Vec<EventBatch> = received
                    .drain(..)
                    .map(|batch| {
                        if batch.dropped > 0 {
                            tracing::warn!(session = %batch.session_id, dropped = batch.dropped, "the agent dropped audit events");
                        }
                        EventBatch {
                            events: batch.events.iter().map(|e| one_line(e.get())).collect(),
                            session_id: batch.session_id,
                            first_seq: batch.first_seq,
                        }
                    })
                    .collect();
                if let Err(error) = store.append_session_events(&rows).await {
                    tracing::error!(batches = rows.len(), %error, "could not store session events");
                }
                tokio::time::sleep(COMMIT_INTERVAL).await;
            }
        });
        (Self { queue }, task)
    }

    /// The queue itself, for a recorder in this process (an embedded
    /// agent's in-place sessions).
    pub fn queue(&self) -> mpsc::Sender<SessionEvents> {
        self.queue.clone()
    }

    /// Queues a batch without waiting.
    pub fn submit(&self, batch: SessionEvents) {
        if let Err(error) = self.queue.try_send(batch) {
            tracing::warn!(%error, "audit event queue full; a batch was dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_event_with_newlines_between_its_tokens_is_stored_on_one_line() {
        assert_eq!(
            super::one_line("{\"a\":\n1,\r\n\"b\":\"x\\ny\"}"),
            r#"{"a":1,"b":"x\ny"}"#
        );
        assert_eq!(super::one_line(r#"{"a":1}"#), r#"{"a":1}"#);
    }
}
