//! Opening a session: check the person's token, the connection's access
//! control and access modes and its agent's live status, record the
//! session, and open its stream on the agent link.
//!
//! ```text
//!  token --> user --> connection (visible to them?) --> protocol fits?
//!        --> access mode enabled? --> agent online? --> record "open" --> OPEN frame
//!  any "no" --> record "refused" with the reason; nothing reaches the agent
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hoop_proxy::agent::StartError;
use hoop_proxy::link::messages::{BatchId, EventsAck, OpenSession, SessionEnd, SessionEvents};
use hoop_proxy::link::mux::{PumpEnd, PumpReport, StreamReceiver, StreamSender};
use hoop_proxy::link::{Frame, FrameKind};
use hoop_proxy::recorder::AuditBatch;
use hoop_proxy::recorder::journal::{AuditJournal, JournalHolds, Leftovers};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use crate::api::ConnectionInput;
use crate::api::{AppState, Caller};
use crate::live::LiveSession;
use crate::session_stream::{Farewell, Protocol, SessionStream, Start};
use crate::store::{EventBatch, SessionRecord, Store, StoreError, UserRecord, now_ms};

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
    /// The connection lists reviewers and no approved review covers the
    /// session ([`crate::reviews`]).
    ReviewRequired,
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
    /// For exec: the approved one-time review this session runs. Its
    /// requester's token (by hash) stands in for `token`, and its script
    /// for `script`.
    pub review: Option<&'a crate::store::ReviewRecord>,
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
            review: None,
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
    open_with(state, request, None).await
}

/// [`open`] for an exec whose output the gateway holds whole: the agent
/// sends at most `output_limit` bytes of it (whole rows), or everything,
/// streamed, with `None`.
///
/// # Errors
///
/// [`Refused`] with the reason, after recording the refusal.
pub async fn open_with(
    state: &AppState,
    request: Request<'_>,
    output_limit: Option<u64>,
) -> Result<Opened, Refused> {
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
    let checked = if state.events.is_stopping() {
        Err(refuse(
            RefusalReason::Offline,
            "the gateway is shutting down",
        ))
    } else {
        check(state, &request, &mut record).await
    };
    match checked {
        Ok((mut open, agent_id, user, protocol, review)) => {
            open.output_limit = output_limit;
            if let Err(error) = state
                .store
                .insert_served_session(&record, Some(&agent_id))
                .await
            {
                tracing::error!(%error, "could not record a session");
                return Err(refuse(RefusalReason::Internal, "internal error"));
            }
            state.events.opened(&id);
            if let Some(connection_id) = &record.connection_id {
                crate::webhooks::emit(state, connection_id, "session.open", event_json(&record))
                    .await;
            }
            let live = state.live.register(
                &id,
                &token_hash(&request),
                record.connection_id.as_deref().unwrap_or_default(),
                request.kind,
                review.as_ref().map(|(id, _)| id.clone()),
            );
            if let Some((_, Some(end))) = review {
                cut_at(state, &live, end);
            }
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
            match state.links.open_stream(&agent_id, &id, payload).await {
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

/// The hash of the token a session is opened with: the person's, or for
/// an approved review's exec, its requester's.
fn token_hash(request: &Request<'_>) -> String {
    match request.review {
        Some(review) => review.token_hash.clone(),
        None => crate::crypto::hash_token(request.token.trim()),
    }
}

/// What passed the checks: the agent's open message, the agent, the
/// person, the client's protocol and the review that allowed it, if one
/// had to.
type Checked = (
    OpenSession,
    String,
    UserRecord,
    Protocol,
    Option<(String, Option<i64>)>,
);

/// Asks for a revalidation when a session's approved access ends at `end`
/// (ms), so it is cut then rather than at the next periodic check; the
/// wait ends with the session.
fn cut_at(state: &AppState, live: &LiveSession, end: i64) {
    // A few milliseconds past the end: the monotonic clock the wait uses
    // and the wall clock the check reads may differ by that much.
    let wait = std::time::Duration::from_millis(
        u64::try_from(end.saturating_sub(now_ms()).saturating_add(20)).unwrap_or(0),
    );
    let mut ended = live.end_signal();
    let registry = state.live.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(wait) => registry.nudge(),
            // The session ended (or was ended) first.
            _ = ended.changed() => {}
        }
    });
}

async fn check(
    state: &AppState,
    request: &Request<'_>,
    record: &mut SessionRecord,
) -> Result<Checked, Refused> {
    let internal = |_| refuse(RefusalReason::Internal, "internal error");
    let user = match (request.token.trim(), request.review) {
        ("", None) => None,
        _ => state
            .store
            .user_for_token(&token_hash(request))
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
    let review = reviewed(state, request, &caller.user, &connection, &input).await?;
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
        script: match request.review {
            Some(review) => review.input.clone(),
            None => request.script.clone(),
        },
        output: request.output.clone(),
        policy: policy_json(
            &with_rule_sets(state, input, &connection.name).await?,
            dlp.as_ref(),
        ),
        client_thread_id: request.client_thread_id,
        output_limit: None,
    };
    Ok((open, agent_id, caller.user, protocol, review))
}

/// On a connection with reviewers, the review that lets this session
/// through: for exec, the approved one-time review it runs (of this
/// person, on this connection); for connect, the person's approved `jit`
/// access, with the end of its window. Without one the session is
/// refused, saying how to ask. `None` when the connection has no
/// reviewers.
async fn reviewed(
    state: &AppState,
    request: &Request<'_>,
    user: &UserRecord,
    connection: &crate::store::ConnectionRecord,
    input: &ConnectionInput,
) -> Result<Option<(String, Option<i64>)>, Refused> {
    let groups = crate::reviews::reviewer_groups(state, &connection.id, input)
        .await
        .map_err(|_| refuse(RefusalReason::Internal, "internal error"))?;
    if groups.is_empty() {
        return Ok(None);
    }
    let name = &connection.name;
    let groups = groups.join(", ");
    match request.kind {
        AccessKind::Exec => match request.review {
            Some(review)
                if review.connection_id == connection.id
                    && review.user_id == user.id
                    && review.kind == crate::reviews::ReviewKind::OneTime.as_str()
                    && review.status == "PROCESSING" =>
            {
                Ok(Some((review.id.clone(), None)))
            }
            _ => Err(refuse(
                RefusalReason::ReviewRequired,
                format!(
                    "connection {name} requires an approved review (reviewers: {groups}); \
                     run the script with hoop exec or POST /api/sessions to request one"
                ),
            )),
        },
        AccessKind::Connect => {
            let access = crate::reviews::active_access(state, &user.id, &connection.id)
                .await
                .map_err(|_| refuse(RefusalReason::Internal, "internal error"))?;
            match access {
                Some(review) => Ok(Some((review.id, review.revoke_at))),
                None => Err(refuse(
                    RefusalReason::ReviewRequired,
                    format!(
                        "connection {name} requires an approved review (reviewers: {groups}); \
                         request access with: hoop connect {name} --duration 30m"
                    ),
                )),
            }
        }
    }
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
    // A session the gateway cut as it stops ended for that reason, whatever
    // its driver made of it.
    let (status, error) = if state.events.was_cut(id) {
        ("failed", Some(SHUT_DOWN.to_owned()))
    } else {
        (status, error)
    };
    if let Err(error) = state
        .store
        .finish_session(id, status, error, clamp(bytes_in), clamp(bytes_out))
        .await
    {
        tracing::error!(session = %id, %error, "could not record the end of a session");
    }
    state.events.finished(id);
    if let Ok(Some(session)) = state.store.find_session(id).await
        && let Some(connection_id) = &session.connection_id
    {
        crate::webhooks::emit(state, connection_id, "session.close", event_json(&session)).await;
    }
}

/// A session as webhook events carry it.
fn event_json(session: &SessionRecord) -> Value {
    json!({
        "id": session.id,
        "user": session.user_email,
        "connection": session.connection_name,
        "access_mode": session.access_mode,
        "protocol": session.protocol,
        "status": session.status,
        "error": session.error,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
    })
}

/// Why the sessions a stopping gateway ends are recorded as failed.
pub const SHUT_DOWN: &str = "the gateway shut down";

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
    InPlace(crate::in_place::Prepared),
}

impl Opened {
    /// Makes the session ready for its client: an in-place driver is
    /// built now, so a session that cannot start is refused before the
    /// client is told it may go on.
    ///
    /// # Errors
    ///
    /// Why the driver cannot start, after recording the session as failed.
    pub async fn ready(self, state: &AppState) -> Result<Ready, StartError> {
        let leg = match self.route {
            Route::Link { sender, receiver } => Leg::Link { sender, receiver },
            Route::InPlace(open) => match crate::in_place::prepare(state, &open) {
                Ok(session) => Leg::InPlace(session),
                Err(error) => {
                    finish(state, &self.id, "failed", Some(error.to_string()), 0, 0).await;
                    return Err(error);
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
                    hoop_proxy::link::mux::pump(&mut client, sender, receiver, Some(LINGER)).await;
                if report.end == PumpEnd::LinkLost {
                    client.say_farewell(Farewell::agent_gone(AGENT_GONE)).await;
                }
                let (status, error) = outcome(&report);
                let (status, error) = self.live.outcome(status, error);
                finish(state, id, status, error, report.sent, report.received).await;
            }
            Leg::InPlace(session) => {
                let served = crate::in_place::serve(session, client).await;
                let (status, error) = served.outcome();
                let (status, error) = self.live.outcome(status, error);
                finish(state, id, status, error, served.bytes_in, served.bytes_out).await;
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
/// batches are dropped (and logged) rather than slowing any link. A
/// dropped batch from an agent is not acknowledged, so the agent sends it
/// again; one from an in-place session is still in the journal.
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

/// The audit's side of the gateway: writes sessions' event batches to the
/// store off the sessions' path, acknowledges the agents' once committed,
/// keeps the journal of the sessions served in this process, and knows
/// which session records this process holds open, so that it can close
/// them when it stops (`Gateway::shutdown`).
#[derive(Debug, Clone)]
pub struct EventWriter {
    queue: mpsc::Sender<AuditBatch>,
    journal: Option<AuditJournal>,
    live: Arc<Mutex<Live>>,
    stopping: Arc<watch::Sender<bool>>,
    drain: Arc<Mutex<Option<oneshot::Sender<()>>>>,
}

#[derive(Debug, Default)]
struct Live {
    /// Records this process opened and has not closed.
    open: HashSet<String>,
    /// Of those, the sessions it cut because it stops.
    cut: HashSet<String>,
    /// When the last batch arrived, to wait for agents' last batches.
    last_batch: Option<Instant>,
}

impl EventWriter {
    /// Starts the writer task over `store`; `journal` is the journal of
    /// this process's own sessions, if it keeps one.
    pub fn spawn(
        store: Store,
        journal: Option<AuditJournal>,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (queue, batches) = mpsc::channel::<AuditBatch>(EVENT_QUEUE);
        let (drain, drained) = oneshot::channel();
        let task = tokio::spawn(write_batches(store, batches, drained));
        let (stopping, _) = watch::channel(false);
        (
            Self {
                queue,
                journal,
                live: Arc::default(),
                stopping: Arc::new(stopping),
                drain: Arc::new(Mutex::new(Some(drain))),
            },
            task,
        )
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        // Single inserts and removes: consistent at every panic point.
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The queue itself, for a recorder in this process (an embedded
    /// agent's in-place sessions).
    pub fn queue(&self) -> mpsc::Sender<AuditBatch> {
        self.queue.clone()
    }

    /// The journal of this process's own sessions.
    pub fn journal(&self) -> Option<AuditJournal> {
        self.journal.clone()
    }

    /// Queues a batch that came over a link without waiting; `ack` is
    /// the link's writer, told once the batch is stored.
    pub fn submit(&self, events: SessionEvents, ack: mpsc::Sender<Frame>) {
        self.live().last_batch = Some(Instant::now());
        let batch = AuditBatch {
            events,
            journaled: JournalHolds::default(),
            ack: Some(ack),
        };
        if let Err(error) = self.queue.try_send(batch) {
            tracing::warn!(%error, "audit event queue full; a batch was dropped (its agent sends it again)");
        }
    }

    /// A session record was opened.
    pub(crate) fn opened(&self, id: &str) {
        self.live().open.insert(id.to_owned());
    }

    /// A session record was closed.
    pub(crate) fn finished(&self, id: &str) {
        let mut live = self.live();
        live.open.remove(id);
        live.cut.remove(id);
    }

    /// Whether the gateway ended the session because it stops.
    pub(crate) fn was_cut(&self, id: &str) -> bool {
        self.live().cut.contains(id)
    }

    /// Marks a session as ended by the stopping gateway.
    pub(crate) fn cut(&self, id: &str) {
        self.live().cut.insert(id.to_owned());
    }

    /// Becomes true when the gateway stops: in-place sessions end.
    pub(crate) fn stopping(&self) -> watch::Receiver<bool> {
        self.stopping.subscribe()
    }

    /// Session records this process holds open.
    pub fn open_records(&self) -> usize {
        self.live().open.len()
    }

    /// The gateway stops: no new session opens (each is refused), and
    /// in-place sessions end.
    pub(crate) fn stop_sessions(&self) {
        self.stopping.send_replace(true);
    }

    /// Whether the gateway stops.
    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Waits until every session record this process opened is closed, or
    /// `deadline`.
    pub(crate) async fn sessions_ended(&self, deadline: Instant) {
        while self.open_records() > 0 && Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The last step of a gateway that stops: waits (until `deadline`)
    /// until agents' batches stopped arriving, stores every queued batch,
    /// closes the records still open as failed ([`SHUT_DOWN`]) and the
    /// journal. `task` is the writer's, from [`EventWriter::spawn`].
    pub(crate) async fn drain(
        &self,
        store: &Store,
        task: tokio::task::JoinHandle<()>,
        deadline: Instant,
    ) {
        // Agents send their sessions' last batches after the streams end;
        // what comes later is sent again to the next gateway.
        loop {
            let quiet = self
                .live()
                .last_batch
                .is_none_or(|t| t.elapsed() >= AGENT_QUIET);
            if quiet || Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let drain = self
            .drain
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(drain) = drain {
            let _ = drain.send(());
            let _ = task.await;
        }
        let open: Vec<String> = self.live().open.iter().cloned().collect();
        if !open.is_empty()
            && let Err(error) = store.fail_sessions(&open, SHUT_DOWN).await
        {
            tracing::error!(%error, "could not close the open session records");
        }
        if let Some(journal) = &self.journal {
            journal.close();
        }
    }
}

/// Agents' last batches have stopped coming when none arrived for this
/// long.
const AGENT_QUIET: std::time::Duration = std::time::Duration::from_millis(300);

/// The writer: group commits of what queued meanwhile; after each, the
/// journal's holds are released and each link is told which of its
/// batches are stored. A failed commit is logged; its batches stay in the
/// journal (in place) or with their agent (no ack), for later. `drain`
/// makes it take no more batches, store what is queued, and end.
async fn write_batches(
    store: Store,
    mut batches: mpsc::Receiver<AuditBatch>,
    mut drain: oneshot::Receiver<()>,
) {
    // What queued since the previous write goes in one transaction (group
    // commit): each commit writes whole pages, so one per agent batch made
    // the store recording's largest cost under load.
    let mut received = Vec::with_capacity(WRITE_BATCHES);
    loop {
        let got = tokio::select! {
            got = batches.recv_many(&mut received, WRITE_BATCHES) => got,
            _ = &mut drain, if !batches.is_closed() => {
                batches.close();
                continue;
            }
        };
        if got == 0 {
            return;
        }
        let rows: Vec<EventBatch> = received
            .iter()
            .map(|batch| {
                let events = &batch.events;
                if events.dropped > 0 {
                    tracing::warn!(session = %events.session_id, dropped = events.dropped, "the agent dropped audit events");
                }
                EventBatch {
                    events: events.events.iter().map(|e| one_line(e.get())).collect(),
                    session_id: events.session_id.clone(),
                    first_seq: events.first_seq,
                }
            })
            .collect();
        match store.append_session_events(&rows).await {
            Ok(()) => acknowledge(received.drain(..)),
            Err(error) => {
                tracing::error!(batches = rows.len(), %error, "could not store session events");
                received.clear();
            }
        }
        if !batches.is_closed() {
            tokio::time::sleep(COMMIT_INTERVAL).await;
        }
    }
}

/// Stores what the journal of an earlier process holds and its store does
/// not (that process stopped before storing it, or was killed), then
/// removes it. Events are told apart by session and sequence number, so
/// events stored already are not stored twice; events of a session with no
/// record are dropped (logged). When the store fails the journal is kept
/// for the next start.
pub(crate) async fn store_leftovers(store: &Store, leftovers: Leftovers) {
    let mut stored: HashMap<String, Vec<(i64, i64)>> = HashMap::new();
    let mut failed = false;
    let mut recovered = 0usize;
    for segment in leftovers.segments() {
        let events = match Leftovers::read(segment) {
            Ok(events) => events,
            Err(error) => {
                tracing::error!(%error, segment = %segment.display(), "could not read the audit journal");
                failed = true;
                continue;
            }
        };
        let mut by_session: BTreeMap<String, BTreeMap<i64, String>> = BTreeMap::new();
        for event in events {
            if let Some(seq) = event.seq() {
                by_session
                    .entry(event.session_id)
                    .or_default()
                    .insert(seq, one_line(event.event.get()));
            }
        }
        for (session, events) in by_session {
            let covered = match stored.get(&session) {
                Some(covered) => covered.clone(),
                None => match stored_ranges(store, &session).await {
                    Ok(Some(covered)) => covered,
                    Ok(None) => {
                        tracing::warn!(session = %session, "the audit journal holds events of a session with no record");
                        stored.insert(session, vec![(i64::MIN, i64::MAX)]);
                        continue;
                    }
                    Err(error) => {
                        tracing::error!(%error, "could not read stored session events");
                        failed = true;
                        continue;
                    }
                },
            };
            let mut batches: Vec<EventBatch> = Vec::new();
            for (seq, event) in events {
                if covered.iter().any(|&(from, to)| from <= seq && seq < to) {
                    continue;
                }
                match batches.last_mut() {
                    Some(batch) if batch.first_seq + batch.events.len() as i64 == seq => {
                        batch.events.push(event);
                    }
                    _ => batches.push(EventBatch {
                        session_id: session.clone(),
                        first_seq: seq,
                        events: vec![event],
                    }),
                }
            }
            let mut covered = covered;
            if !batches.is_empty() {
                if let Err(error) = store.append_session_events(&batches).await {
                    tracing::error!(%error, "could not store the audit journal's events");
                    failed = true;
                    continue;
                }
                for batch in &batches {
                    recovered += batch.events.len();
                    covered.push((batch.first_seq, batch.first_seq + batch.events.len() as i64));
                }
            }
            stored.insert(session, covered);
        }
    }
    if recovered > 0 {
        tracing::info!(
            events = recovered,
            "stored audit events an earlier process had not"
        );
    }
    if !failed {
        leftovers.discard();
    }
}

/// The sequence numbers a session's stored batches cover, as ranges
/// `[from, to)`; `None` when the session has no record.
async fn stored_ranges(
    store: &Store,
    session: &str,
) -> Result<Option<Vec<(i64, i64)>>, StoreError> {
    if store.session_agent(session).await?.is_none() {
        return Ok(None);
    }
    let mut covered = Vec::new();
    let mut after = -1;
    loop {
        let page = store.session_event_page(session, after, 64).await?;
        for (first_seq, events) in &page {
            covered.push((*first_seq, first_seq + events.lines().count() as i64));
        }
        match page.last() {
            Some(&(last, _)) if page.len() == 64 => after = last,
            _ => return Ok(Some(covered)),
        }
    }
}

/// Releases the stored batches' journal holds and tells each link, in one
/// `EVENTS_ACK` frame, which of its batches are stored.
fn acknowledge(stored: impl Iterator<Item = AuditBatch>) {
    let mut acks: Vec<(mpsc::Sender<Frame>, Vec<BatchId>)> = Vec::new();
    for batch in stored {
        batch.journaled.release();
        let Some(link) = batch.ack else { continue };
        let id = BatchId {
            session_id: batch.events.session_id,
            first_seq: batch.events.first_seq,
        };
        match acks.iter_mut().find(|(l, _)| l.same_channel(&link)) {
            Some((_, ids)) => ids.push(id),
            None => acks.push((link, vec![id])),
        }
    }
    for (link, batches) in acks {
        let Ok(payload) = serde_json::to_vec(&EventsAck { batches }) else {
            continue;
        };
        let frame = Frame::control(FrameKind::EventsAck, payload);
        // Never wait on one link's queue: the others' acks would wait too.
        if let Err(mpsc::error::TrySendError::Full(frame)) = link.try_send(frame) {
            tokio::spawn(async move { link.send(frame).await });
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
