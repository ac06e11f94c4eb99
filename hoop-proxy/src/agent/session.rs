//! One session on the agent: the protocol driver runs here, inside the
//! agent's network, so masking and guardrails act before any data leaves it.
//!
//! ```text
//!  link stream <--pump--> in-memory duplex <--> PostgresProxy | MysqlProxy <--> database
//!                                               (AllowAll: the gateway
//!                                                already checked the person)
//! ```
//!
//! The driver serves the duplex as it would a directly connected client's
//! socket (`handle_stream`): no loopback connection, no extra trip through
//! the kernel per statement.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use crate::cancel::CancelRegistry;
use crate::mysql::{MysqlProxy, ThreadRegistry};
use crate::pipeline::Pipeline;
use crate::policy::PolicyPipeline;
use crate::postgres::PostgresProxy;
use crate::{Credentials, DatabaseTarget};
use bytes::{Bytes, BytesMut};
use hoop_wire::postgres::{CancelRequest, FrontendDecoder, FrontendMessage, Limits};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::link::frame::{Frame, FrameKind};
use crate::link::messages::{OpenSession, SessionEnd};
use crate::link::mux::{PumpEnd, StreamReceiver, StreamSender, pump_closing};
use crate::recorder::journal::AuditJournal;
use crate::recorder::outbox::AuditOutbox;
use crate::recorder::{AuditBatch, EventRoute, EventSink, RecordingPipeline};

/// Bytes the in-memory duplex between the link and the driver holds per
/// direction: one read of the driver's relay, so neither side waits on a
/// half-full pipe while the other has a chunk ready.
const DUPLEX_BUFFER: usize = 64 * 1024;

/// The address sessions report for a client on the link: the person
/// reached the agent through the gateway, which records where they came
/// from; the agent never sees their address.
const LINK_PEER: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The connection's subtype has no driver.
    #[error("unsupported protocol {0:?}")]
    Protocol(String),
    /// The connection's credentials do not name a usable target.
    #[error("connection settings: {0}")]
    Config(#[from] crate::ConfigError),
    /// The driver could not be built (its TLS settings, say).
    #[error("driver: {0}")]
    Driver(#[from] crate::tls::TlsConfigError),
    /// The connection's policy does not compile.
    #[error("policy: {0}")]
    Policy(#[from] hoop_masking::PolicyError),
}

pub(crate) enum Driver {
    Postgres(PostgresProxy),
    Mysql(MysqlProxy),
}

/// Compiled policies by their JSON, so sessions on one connection compile
/// it once. Cleared when it grows past [`POLICY_CACHE`] entries.
static POLICIES: std::sync::LazyLock<Mutex<HashMap<String, PolicyPipeline>>> =
    std::sync::LazyLock::new(|| Mutex::new(HashMap::new()));

/// Most distinct policies kept compiled.
const POLICY_CACHE: usize = 64;

/// The cancel keys of every PostgreSQL session this process serves. Each
/// session gets its own driver, but a cancel request comes on a connection
/// of its own and names no connection, so the keys live in one registry:
/// a cancel reaching any session's driver (a `hoop connect` tunnel opens
/// one for it), or the gateway's listener in the process ([`cancel`]),
/// finds its session.
static POSTGRES_CANCELS: std::sync::LazyLock<CancelRegistry> =
    std::sync::LazyLock::new(CancelRegistry::new);

/// The server threads behind the connection ids the gateway's MySQL
/// listener told its clients, for every MySQL session of this process: a
/// client's `KILL QUERY <id>` comes on a session of its own.
static MYSQL_THREADS: std::sync::LazyLock<ThreadRegistry> =
    std::sync::LazyLock::new(ThreadRegistry::new);

/// Forwards a PostgreSQL cancel request to the database of the session, in
/// this process, that handed out its key; false when none did (a session
/// served by an agent in another process, or one that ended).
pub async fn cancel(request: hoop_wire::postgres::CancelRequest) -> bool {
    crate::postgres::cancel(&POSTGRES_CANCELS, request).await
}

/// The link frame that asks every agent to forward `request`: a cancel
/// request reaches the gateway's listener on a connection of its own,
/// naming no session, and the session may be any agent's. The payload is
/// the CancelRequest message itself, as the client sent it.
pub fn cancel_frame(request: &CancelRequest) -> Frame {
    let mut payload = BytesMut::new();
    FrontendMessage::CancelRequest(request.clone()).encode(&mut payload);
    Frame::control(FrameKind::Cancel, payload.freeze())
}

/// The cancel request a [`cancel_frame`] carries, read by the same decoder
/// as a client's (its length and key limits); `None` for anything else.
pub(crate) fn cancel_from_frame(payload: &Bytes) -> Option<CancelRequest> {
    let mut bytes = BytesMut::from(payload.as_ref());
    let frame = FrontendDecoder::new(Limits::default())
        .decode_frame(&mut bytes)
        .ok()??;
    match FrontendMessage::parse(&frame) {
        Ok(FrontendMessage::CancelRequest(request)) if bytes.is_empty() => Some(request),
        _ => None,
    }
}

/// The connection's policy, compiled once. Compiling (every pattern into
/// one automaton) happens outside the cache's lock, so sessions opening
/// on other connections meanwhile do not wait for it; two sessions racing
/// on a new policy both compile it.
pub(crate) fn compiled(json: &str) -> Result<PolicyPipeline, StartError> {
    if let Some(policy) = POLICIES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(json)
    {
        return Ok(policy.clone());
    }
    let policy = PolicyPipeline::from_json(json)?;
    let mut cache = POLICIES.lock().unwrap_or_else(PoisonError::into_inner);
    if cache.len() >= POLICY_CACHE {
        cache.clear();
    }
    cache.insert(json.to_owned(), policy.clone());
    Ok(policy)
}

/// How the sessions of one link record: through the agent's outbox (kept
/// until the gateway stored them), naming the link they were opened on,
/// and journaled too for an agent in the gateway's own process.
#[derive(Debug, Clone)]
pub(crate) struct LinkAudit {
    pub(crate) outbox: AuditOutbox,
    pub(crate) generation: u64,
    pub(crate) journal: Option<AuditJournal>,
}

impl LinkAudit {
    /// The session's pipeline, its events on `sender`'s stream.
    pub(crate) fn pipeline(
        &self,
        open: &OpenSession,
        sender: &StreamSender,
    ) -> Result<Arc<dyn Pipeline>, StartError> {
        let route = EventRoute::Link {
            outbox: self.outbox.clone(),
            stream: sender.id(),
            generation: self.generation,
        };
        pipeline(open, route, self.journal.clone())
    }
}

/// The session's pipeline: the recorder around the connection's policy.
fn pipeline(
    open: &OpenSession,
    events: EventRoute,
    journal: Option<AuditJournal>,
) -> Result<Arc<dyn Pipeline>, StartError> {
    let policy = match &open.policy {
        None => None,
        Some(json) => Some(compiled(json)?),
    };
    let sink = EventSink::new(&open.session_id, events, journal);
    Ok(Arc::new(RecordingPipeline::new(policy, sink)))
}

fn target(open: &OpenSession, default_port: u16) -> Result<DatabaseTarget, StartError> {
    let mut credentials = Credentials::new();
    for (name, value) in &open.credentials {
        credentials.set(name, value.clone());
    }
    Ok(credentials.database_target(default_port)?)
}

pub(crate) fn driver(
    open: &OpenSession,
    pipeline: Arc<dyn Pipeline>,
) -> Result<Driver, StartError> {
    match open.protocol.as_str() {
        "postgres" => Ok(Driver::Postgres(
            PostgresProxy::builder(target(open, 5432)?)
                .pipeline(pipeline)
                .cancel_registry(POSTGRES_CANCELS.clone())
                .build()?,
        )),
        "mysql" => {
            let mut builder = MysqlProxy::builder(target(open, 3306)?)
                .pipeline(pipeline)
                .thread_registry(MYSQL_THREADS.clone());
            if let Some(id) = open.client_thread_id {
                builder = builder.told_thread_id(id);
            }
            Ok(Driver::Mysql(builder.build()?))
        }
        other => Err(StartError::Protocol(other.to_owned())),
    }
}

/// Runs a session: for `connect` the bytes on the stream are a native
/// client's; for `exec` the agent runs the script itself.
pub(crate) async fn run(
    open: OpenSession,
    sender: StreamSender,
    receiver: StreamReceiver,
    audit: LinkAudit,
) {
    use tracing::Instrument;
    let span = tracing::info_span!("session", id = %open.session_id, connection = %open.connection);
    if open.mode == "exec" {
        let end = super::exec::run(&open, &sender, receiver, &audit)
            .instrument(span)
            .await;
        if let Ok(payload) = serde_json::to_vec(&end) {
            sender.close(payload).await;
        }
        return;
    }
    let end = match serve(&open, sender.clone(), receiver, &audit)
        .instrument(span)
        .await
    {
        Ok((PumpEnd::LinkLost, _)) => return,
        Ok((PumpEnd::Remote(_), failure)) => ended(failure),
        Ok((PumpEnd::Local, _)) => {
            // The driver ended the session and the pump told the gateway,
            // with the driver's verdict, already.
            return;
        }
        Err(error) => {
            tracing::warn!(session = %open.session_id, %error, "session could not start");
            SessionEnd {
                status: "failed".into(),
                error: Some(error.to_string()),
                exit_code: Some(1),
                truncated: false,
            }
        }
    };
    if let Ok(payload) = serde_json::to_vec(&end) {
        sender.close(payload).await;
    }
}

/// How a `connect` session ended, as the gateway records it: `done`, or
/// `failed` with why the driver ended it.
fn ended(failure: Option<String>) -> SessionEnd {
    SessionEnd {
        status: if failure.is_some() { "failed" } else { "done" }.into(),
        error: failure,
        exit_code: None,
        truncated: false,
    }
}

/// Starts the driver on one end of an in-memory stream, for the agent's
/// own exec client on the other end: the driver's task, and that end.
pub(crate) fn driven(driver: Driver) -> (tokio::task::JoinHandle<()>, tokio::io::DuplexStream) {
    let (client, server) = tokio::io::duplex(DUPLEX_BUFFER);
    let driving = async move {
        drive(driver, server, LINK_PEER).await;
    };
    (tokio::spawn(driving), client)
}

/// Runs the driver over `client`, one client's stream, to the session's
/// end; returns why the session failed, if it did.
pub(crate) async fn drive<S>(driver: Driver, client: S, peer: SocketAddr) -> Option<String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    match &driver {
        Driver::Postgres(proxy) => proxy.serve_stream(client, peer).await,
        Driver::Mysql(proxy) => proxy.serve_stream(client, peer).await,
    }
}

async fn serve(
    open: &OpenSession,
    sender: StreamSender,
    receiver: StreamReceiver,
    audit: &LinkAudit,
) -> Result<(PumpEnd, Option<String>), StartError> {
    let driver = driver(open, audit.pipeline(open, &sender)?)?;
    let (link, client) = tokio::io::duplex(DUPLEX_BUFFER);
    // The pump sees the driver's end of the duplex close as the driver
    // returns: its close waits for the driver's verdict.
    let (verdict, verdict_rx) = tokio::sync::oneshot::channel();
    let farewell = async move {
        let failure = verdict_rx.await.ok().flatten();
        serde_json::to_vec(&ended(failure))
            .map(Bytes::from)
            .unwrap_or_default()
    };
    let driving = async move {
        let failure = drive(driver, client, LINK_PEER).await;
        let _ = verdict.send(failure.clone());
        failure
    };
    let (report, failure) = tokio::join!(
        pump_closing(link, sender, receiver, None, farewell),
        driving
    );
    Ok((report.end, failure))
}

/// A `connect` session served in this process, on the client's own stream,
/// for an agent embedded in the gateway (`hoop up`): the same driver,
/// policy and recorder as a session over the link, without the link's hop.
/// Events go straight to the gateway's writer.
pub struct InPlaceSession {
    driver: Driver,
    span: tracing::Span,
}

impl std::fmt::Debug for InPlaceSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InPlaceSession").finish_non_exhaustive()
    }
}

impl InPlaceSession {
    /// Builds the session's driver and pipeline; `events` is the gateway's
    /// event writer queue, `journal` the gateway's audit journal.
    ///
    /// # Errors
    ///
    /// [`StartError`] when the session cannot start (bad settings, a policy
    /// that does not compile); the caller tells its client.
    pub fn prepare(
        open: &OpenSession,
        events: tokio::sync::mpsc::Sender<AuditBatch>,
        journal: Option<AuditJournal>,
    ) -> Result<Self, StartError> {
        let driver = driver(open, pipeline(open, EventRoute::InPlace(events), journal)?)?;
        let span =
            tracing::info_span!("session", id = %open.session_id, connection = %open.connection);
        Ok(Self { driver, span })
    }

    /// Runs the driver on `client` until the session ends; returns why the
    /// session failed, if it did, for its record.
    pub async fn serve<S>(self, client: S) -> Option<String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        use tracing::Instrument;
        drive(self.driver, client, LINK_PEER)
            .instrument(self.span)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_frame_carries_the_key_and_nothing_else_is_taken_for_one() {
        for secret in [&b"\x01\x02\x03\x04"[..], &[7u8; 32][..]] {
            let request = CancelRequest {
                process_id: 0x0102_0304,
                secret_key: Bytes::copy_from_slice(secret),
            };
            let frame = cancel_frame(&request);
            assert_eq!(frame.kind, FrameKind::Cancel);
            assert_eq!(frame.stream, 0);
            assert_eq!(cancel_from_frame(&frame.payload), Some(request));
        }
        for payload in [
            &b""[..],
            &b"\x00\x00\x01"[..],
            &b"\x00\x00\x00\x01"[..],
            &[0u8; 261][..],
        ] {
            assert_eq!(cancel_from_frame(&Bytes::copy_from_slice(payload)), None);
        }
    }
}
