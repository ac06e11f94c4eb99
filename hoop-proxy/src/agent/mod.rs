//! The agent: it sits beside the services it serves, dials the gateway (the
//! gateway never dials it), keeps one long-lived link, reports whether each
//! of its connections' targets is reachable, and runs every session's
//! protocol driver beside the database (`session`, `exec`), so masking and
//! guardrails act before any data leaves its network.
//!
//! It is a module of this library rather than of the `hoop-agent` binary
//! because three processes run it: `hoop-agent` itself, `hoop up` (an agent
//! embedded in the gateway's process, [`run_embedded`]), and the gateway's
//! in-place sessions ([`InPlaceSession`]), which assemble a session exactly
//! as an agent would, on the client's own stream.
//!
//! Its side of the link: dial, authenticate, heartbeat, check targets, and
//! reconnect with backoff and jitter when anything breaks.
//!
//! ```text
//!  agent                                   gateway
//!    | -- TCP (TLS for hoops://) ------------> |
//!    | -- Hello {name, secret, metadata} ----> |
//!    | <------------- Welcome | Refused ------ |
//!    | <------------- Targets --------------- |   again whenever they change
//!    | -- Status {connection_id: bool} ------> |   when a check result changes
//!    | -- Ping ------------------------------> |   every heartbeat
//!    | <------------- Pong ------------------ |
//!    | -- Events (unacknowledged, stream 0) -> |   after each (re)link
//!    | <------------- EventsAck ------------- |   once stored
//! ```
//!
//! A link that stays silent for three heartbeats is dropped by either side.
//! The audit outbox outlives links: batches the gateway did not acknowledge
//! go to the next one (see [`crate::recorder::outbox`]).

mod exec;
mod exec_json;
mod exec_mysql;
mod session;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::Rng;
use tokio::io::AsyncRead;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

pub(crate) use session::compiled;
pub use session::{InPlaceSession, StartError, cancel, cancel_frame};

use crate::link::messages::{EventsAck, Hello, OpenSession, Status, Target, Targets, Welcome};
use crate::link::mux::{AbortOnDrop, Mux, OUTBOUND_QUEUE, write_frames};
use crate::link::{
    AgentKey, Frame, FrameKind, FramedLink, HANDSHAKE_TIMEOUT, LinkError, LinkIo, LinkTlsError,
    recv_frame, send, send_json,
};
use crate::recorder::journal::AuditJournal;
use crate::recorder::outbox::AuditOutbox;
use session::LinkAudit;

/// How long one reachability probe may take before the target counts as
/// unreachable: short enough that a dead target is reported well within the
/// product's 10-second promise.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How often targets are probed.
pub const CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// Even without changes, the full status is re-sent this often, so a lost
/// or ignored report heals.
const STATUS_REFRESH: Duration = Duration::from_secs(10);

/// First reconnect delay; doubles per failure up to [`BACKOFF_MAX`].
const BACKOFF_BASE: Duration = Duration::from_millis(250);

/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Everything the agent needs to run.
#[derive(Clone)]
pub struct AgentConfig {
    /// The key from `POST /api/agents` (`HOOP_KEY`).
    pub key: AgentKey,
    /// Roots trusted for a `hoops://` gateway; `None` uses none, so a TLS
    /// key then needs a CA file.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for AgentConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentConfig")
            .field("key", &self.key)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A TLS client configuration trusting the PEM certificates in `ca_file`.
///
/// # Errors
///
/// When the file cannot be read or holds no usable certificate.
pub fn tls_client_config(ca_file: &Path) -> Result<Arc<rustls::ClientConfig>, LinkError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certificates =
        CertificateDer::pem_file_iter(ca_file).map_err(|source| LinkTlsError::ReadCa {
            path: ca_file.to_owned(),
            source,
        })?;
    for certificate in certificates {
        let certificate = certificate.map_err(LinkTlsError::Certificate)?;
        roots.add(certificate).map_err(LinkTlsError::Rustls)?;
    }
    if roots.is_empty() {
        return Err(LinkTlsError::NoCertificate.into());
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(LinkTlsError::Rustls)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Runs the agent until the task is dropped: link, serve, and on any failure
/// wait (exponential backoff with jitter) and link again.
pub async fn run(config: AgentConfig) {
    run_with(config, None).await;
}

/// [`run`] for an agent in the gateway's own process (`hoop up`): its
/// sessions also write each event to the gateway's audit journal, so a
/// crash of the process, which takes the agent's unacknowledged batches
/// with it, loses no statement a client got an answer for.
pub async fn run_embedded(config: AgentConfig, journal: AuditJournal) {
    run_with(config, Some(journal)).await;
}

async fn run_with(config: AgentConfig, journal: Option<AuditJournal>) {
    let outbox = AuditOutbox::new();
    let mut failures: u32 = 0;
    loop {
        let started = Instant::now();
        match link_once(&config, &outbox, journal.as_ref()).await {
            Ok(()) => tracing::info!("agent link closed by the gateway"),
            Err(LinkError::Refused) => tracing::error!("the gateway refused this agent's key"),
            Err(error) => tracing::warn!(%error, "agent link lost"),
        }
        // A link that lived a while was healthy: start backing off afresh.
        if started.elapsed() > BACKOFF_MAX {
            failures = 0;
        }
        let delay = backoff(failures);
        failures = failures.saturating_add(1);
        tokio::time::sleep(delay).await;
    }
}

/// The delay before reconnect attempt `failures + 1`: exponential, capped,
/// with "equal jitter" (half fixed, half random) so agents cut off together
/// do not return together.
pub fn backoff(failures: u32) -> Duration {
    let exponential = BACKOFF_BASE.saturating_mul(1u32 << failures.min(16));
    let capped = exponential.min(BACKOFF_MAX);
    let half = capped / 2;
    let jitter = rand::rng().random_range(0..=half.as_millis() as u64);
    half + Duration::from_millis(jitter)
}

async fn dial(config: &AgentConfig) -> Result<Box<dyn LinkIo>, LinkError> {
    let tcp = TcpStream::connect(&config.key.address).await?;
    tcp.set_nodelay(true)?;
    if !config.key.tls {
        return Ok(Box::new(tcp));
    }
    let tls = config.tls.clone().ok_or(LinkTlsError::NoCa)?;
    let host = config
        .key
        .address
        .rsplit_once(':')
        .map_or(config.key.address.as_str(), |(host, _)| host)
        .trim_start_matches('[')
        .trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(LinkTlsError::ServerName)?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await?;
    Ok(Box::new(stream))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_owned())
}

async fn link_once(
    config: &AgentConfig,
    outbox: &AuditOutbox,
    journal: Option<&AuditJournal>,
) -> Result<(), LinkError> {
    let mut link = FramedLink::new(dial(config).await?);
    let hello = Hello {
        name: config.key.name.clone(),
        secret: config.key.secret.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        hostname: hostname(),
        platform: format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    };
    link.send_json(FrameKind::Hello, &hello).await?;
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, link.recv())
        .await
        .map_err(|_| LinkError::Timeout)??
        .ok_or(LinkError::Protocol("closed during the handshake"))?;
    let welcome: Welcome = match first.kind {
        FrameKind::Welcome => serde_json::from_slice(&first.payload)
            .map_err(|_| LinkError::Protocol("bad welcome"))?,
        FrameKind::Refused => return Err(LinkError::Refused),
        _ => return Err(LinkError::Protocol("unexpected first frame")),
    };
    let heartbeat = Duration::from_millis(welcome.heartbeat_ms.clamp(200, 30_000));
    tracing::info!(agent_id = %welcome.agent_id, "agent linked to the gateway");
    serve(link, heartbeat, outbox, journal).await
}

async fn serve(
    link: FramedLink,
    heartbeat: Duration,
    outbox: &AuditOutbox,
    journal: Option<&AuditJournal>,
) -> Result<(), LinkError> {
    let (io, mut buffer) = link.into_parts();
    let (mut reader, writer) = tokio::io::split(io);
    let (outbound, queue) = mpsc::channel(OUTBOUND_QUEUE);
    let mux = Mux::new(outbound.clone());
    let mut writer = AbortOnDrop(tokio::spawn(write_frames(writer, queue)));
    let audit = LinkAudit {
        outbox: outbox.clone(),
        generation: outbox.linked(outbound.clone(), mux.clone()),
        journal: journal.cloned(),
    };
    // Dropping the set aborts every session of this link; their recorders
    // still end their records, through the outbox.
    let mut sessions = tokio::task::JoinSet::new();
    let result = serve_frames(
        &mut reader,
        &mut buffer,
        &mux,
        &mut writer.0,
        &mut sessions,
        heartbeat,
        &audit,
    )
    .await;
    outbox.unlinked(audit.generation);
    drop(sessions);
    mux.shutdown();
    result
}

fn open_session(
    frame: &Frame,
    mux: &Mux,
    sessions: &mut tokio::task::JoinSet<()>,
    audit: &LinkAudit,
) -> Result<(), LinkError> {
    let open: OpenSession =
        serde_json::from_slice(&frame.payload).map_err(|_| LinkError::Protocol("bad open"))?;
    let Some((sender, receiver)) = mux.register(frame.stream) else {
        return Err(LinkError::Protocol("open on a stream in use"));
    };
    tracing::info!(session = %open.session_id, connection = %open.connection, mode = %open.mode, "session opened");
    sessions.spawn(session::run(open, sender, receiver, audit.clone()));
    Ok(())
}

async fn serve_frames(
    reader: &mut (impl AsyncRead + Unpin),
    buffer: &mut BytesMut,
    mux: &Mux,
    writer: &mut tokio::task::JoinHandle<std::io::Result<()>>,
    sessions: &mut tokio::task::JoinSet<()>,
    heartbeat: Duration,
    audit: &LinkAudit,
) -> Result<(), LinkError> {
    let outbound = mux.outbound();
    let mut targets: Vec<Target> = Vec::new();
    let mut reported: Option<BTreeMap<String, bool>> = None;
    let mut last_report = Instant::now();
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(heartbeat);
    let mut check = tokio::time::interval(CHECK_INTERVAL);
    let (results_tx, mut results) = mpsc::channel::<(Vec<Target>, BTreeMap<String, bool>)>(1);
    let mut checking = false;
    loop {
        while sessions.try_join_next().is_some() {}
        tokio::select! {
            frame = recv_frame(reader, buffer) => {
                let Some(frame) = frame? else { return Ok(()) };
                last_heard = Instant::now();
                match frame.kind {
                    FrameKind::Ping => {
                        send(outbound, Frame::control(FrameKind::Pong, frame.payload)).await?;
                    }
                    FrameKind::Targets => {
                        let update: Targets = serde_json::from_slice(&frame.payload)
                            .map_err(|_| LinkError::Protocol("bad targets"))?;
                        targets = update.targets;
                        reported = None;
                        check.reset_immediately();
                    }
                    FrameKind::Cancel => {
                        // Every agent hears it; the one whose driver
                        // handed out the key forwards it, others ignore it.
                        if let Some(request) = session::cancel_from_frame(&frame.payload) {
                            tokio::spawn(cancel(request));
                        }
                    }
                    FrameKind::Open => open_session(&frame, mux, sessions, audit)?,
                    FrameKind::EventsAck => {
                        let ack: EventsAck = serde_json::from_slice(&frame.payload)
                            .map_err(|_| LinkError::Protocol("bad events ack"))?;
                        audit.outbox.acked(&ack);
                    }
                    FrameKind::Data | FrameKind::Close | FrameKind::Window => mux.dispatch(frame),
                    _ => {}
                }
            }
            written = &mut *writer => {
                return match written {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) => Err(error.into()),
                    Err(_) => Err(LinkError::Protocol("link writer stopped")),
                };
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > heartbeat * 3 {
                    return Err(LinkError::Timeout);
                }
                send(outbound, Frame::control(FrameKind::Ping, bytes::Bytes::new())).await?;
                audit.outbox.resend_stale();
            }
            _ = check.tick(), if !checking => {
                checking = true;
                let snapshot = targets.clone();
                let tx = results_tx.clone();
                tokio::spawn(async move {
                    let result = check_targets(&snapshot).await;
                    let _ = tx.send((snapshot, result)).await;
                });
            }
            Some((snapshot, result)) = results.recv() => {
                checking = false;
                // The targets changed while the check ran: its result may
                // lack new connections, so check again rather than report
                // them offline.
                if snapshot != targets {
                    check.reset_immediately();
                    continue;
                }
                // Drop results for connections no longer in the target list
                // (it may have changed while the check ran).
                let result: BTreeMap<String, bool> = result
                    .into_iter()
                    .filter(|(id, _)| targets.iter().any(|t| &t.connection_id == id))
                    .collect();
                if reported.as_ref() != Some(&result) || last_report.elapsed() > STATUS_REFRESH {
                    send_json(outbound, FrameKind::Status, &Status { reachable: result.clone() }).await?;
                    reported = Some(result);
                    last_report = Instant::now();
                }
            }
        }
    }
}

/// Probes every target concurrently with a TCP connect.
pub async fn check_targets(targets: &[Target]) -> BTreeMap<String, bool> {
    let mut probes = tokio::task::JoinSet::new();
    for target in targets {
        let target = target.clone();
        probes.spawn(async move {
            let reachable = match &target.host {
                None => true,
                Some(host) => matches!(
                    tokio::time::timeout(
                        CHECK_TIMEOUT,
                        TcpStream::connect((host.as_str(), target.port))
                    )
                    .await,
                    Ok(Ok(_))
                ),
            };
            (target.connection_id, reachable)
        });
    }
    let mut out = BTreeMap::new();
    while let Some(result) = probes.join_next().await {
        if let Ok((id, reachable)) = result {
            out.insert(id, reachable);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        for failures in 0..40 {
            let delay = backoff(failures);
            assert!(delay <= BACKOFF_MAX);
            let full = BACKOFF_BASE
                .saturating_mul(1u32 << failures.min(16))
                .min(BACKOFF_MAX);
            assert!(delay >= full / 2, "{failures}: {delay:?}");
        }
        let spread: std::collections::BTreeSet<_> = (0..50).map(|_| backoff(10)).collect();
        assert!(spread.len() > 1, "no jitter");
    }

    #[tokio::test]
    async fn probes_report_open_and_closed_ports() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed_port = closed.local_addr().unwrap().port();
        drop(closed);
        let targets = vec![
            Target {
                connection_id: "up".into(),
                host: Some("127.0.0.1".into()),
                port: open.local_addr().unwrap().port(),
            },
            Target {
                connection_id: "down".into(),
                host: Some("127.0.0.1".into()),
                port: closed_port,
            },
            Target {
                connection_id: "custom".into(),
                host: None,
                port: 0,
            },
        ];
        let result = check_targets(&targets).await;
        assert_eq!(result.get("up"), Some(&true));
        assert_eq!(result.get("down"), Some(&false));
        assert_eq!(result.get("custom"), Some(&true));
    }
}
