//! The gateway's end of the agent link (see `hoop_proxy::agent` for the
//! exchange). An agent proves itself with its key's secret; a wrong secret
//! and an unknown name get the same refusal, after the same work, so the
//! answer does not reveal whether an agent exists.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hoop_proxy::link::messages::{
    BatchId, EventsAck, Hello, SessionEvents, Status, Targets, Welcome,
};
use hoop_proxy::link::mux::{AbortOnDrop, Mux, OUTBOUND_QUEUE, write_frames};
use hoop_proxy::link::{
    Frame, FrameKind, FramedLink, HANDSHAKE_TIMEOUT, LinkError, LinkIo, recv_frame, send, send_json,
};
use tokio::io::AsyncRead;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use crate::api::AppState;
use crate::crypto::hash_token;

/// How often agents are told to ping. With the link dropped after three
/// silent heartbeats, a cut link is noticed within about 6 seconds, inside
/// the product's promise of 10.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// Accepts agent links until the task is dropped; dropping it also ends
/// every link it accepted (they live in its `JoinSet`), so a stopped
/// gateway leaves no link behind and its agents dial the next one.
pub(crate) async fn serve(listener: TcpListener, tls: Option<TlsAcceptor>, state: AppState) {
    let mut links = tokio::task::JoinSet::new();
    loop {
        while links.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "agent listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let tls = tls.clone();
        let state = state.clone();
        links.spawn(async move {
            let _ = stream.set_nodelay(true);
            match handle(stream, tls, state).await {
                Ok(()) | Err(LinkError::Refused) => {}
                Err(error) => tracing::info!(%peer, %error, "agent link ended"),
            }
        });
    }
}

async fn handle(
    stream: tokio::net::TcpStream,
    tls: Option<TlsAcceptor>,
    state: AppState,
) -> Result<(), LinkError> {
    let io: Box<dyn LinkIo> = match tls {
        None => Box::new(stream),
        Some(acceptor) => Box::new(
            tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                .await
                .map_err(|_| LinkError::Timeout)??,
        ),
    };
    let mut conn = FramedLink::new(io);
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, conn.recv())
        .await
        .map_err(|_| LinkError::Timeout)??
        .ok_or(LinkError::Protocol("closed before hello"))?;
    if first.kind != FrameKind::Hello {
        return Err(LinkError::Protocol("first frame is not a hello"));
    }
    let hello: Hello =
        serde_json::from_slice(&first.payload).map_err(|_| LinkError::Protocol("bad hello"))?;
    let presented = hash_token(&hello.secret);
    let agent = match state.store.find_agent(&hello.name).await {
        Ok(agent) => agent.filter(|a| a.name == hello.name),
        Err(error) => {
            tracing::error!(%error, "agent lookup failed");
            None
        }
    };
    // Compare in constant time against the real hash, or against a hash
    // that cannot match when there is no such agent: same work either way.
    let expected = agent
        .as_ref()
        .map_or_else(|| hash_token("\0no such agent"), |a| a.key_hash.clone());
    let matches = constant_time_eq(expected.as_bytes(), presented.as_bytes());
    let agent = match agent {
        Some(agent) if matches => agent,
        _ => {
            tracing::warn!("agent link refused: invalid key");
            conn.send(&Frame::control(
                FrameKind::Refused,
                &b"invalid agent key"[..],
            ))
            .await?;
            conn.shutdown().await;
            return Err(LinkError::Refused);
        }
    };
    let metadata = serde_json::json!({
        "hostname": hello.hostname,
        "version": hello.version,
        "platform": hello.platform,
    });
    if let Err(error) = state
        .store
        .set_agent_metadata(&agent.id, &metadata.to_string())
        .await
    {
        tracing::warn!(%error, "could not record agent metadata");
    }
    tracing::info!(agent = %agent.name, "agent linked");
    let result = run_link(conn, &state, &agent.id, &agent.name).await;
    tracing::info!(agent = %agent.name, "agent unlinked");
    result
}

async fn send_targets(
    outbound: &mpsc::Sender<Frame>,
    state: &AppState,
    agent_id: &str,
) -> Result<(), LinkError> {
    match crate::api::targets_for_agent(state, agent_id).await {
        Ok(targets) => send_json(outbound, FrameKind::Targets, &Targets { targets }).await,
        Err(error) => {
            tracing::error!(status = %error.status(), "could not compute agent targets");
            Ok(())
        }
    }
}

/// Serves a linked agent: control frames here, session frames to their
/// streams, everything outbound through one writer task.
async fn run_link(
    conn: FramedLink,
    state: &AppState,
    agent_id: &str,
    agent_name: &str,
) -> Result<(), LinkError> {
    let (io, mut buffer) = conn.into_parts();
    let (mut reader, writer) = tokio::io::split(io);
    let (outbound, queue) = mpsc::channel(OUTBOUND_QUEUE);
    let mux = Mux::new(outbound.clone());
    let mut writer = AbortOnDrop(tokio::spawn(write_frames(writer, queue)));
    let mut ticket = state.links.register(agent_id, mux.clone());
    let mut gate = EventsGate {
        agent_id: agent_id.to_owned(),
        agent_name: agent_name.to_owned(),
        served: HashMap::new(),
    };
    let result = serve_link(
        &mut reader,
        &mut buffer,
        &mux,
        &mut writer.0,
        state,
        &mut ticket,
        &mut gate,
    )
    .await;
    state.links.unregister(&ticket);
    mux.shutdown();
    result
}

async fn serve_link(
    reader: &mut (impl AsyncRead + Unpin),
    buffer: &mut BytesMut,
    mux: &Mux,
    writer: &mut tokio::task::JoinHandle<std::io::Result<()>>,
    state: &AppState,
    ticket: &mut crate::links::LinkTicket,
    gate: &mut EventsGate,
) -> Result<(), LinkError> {
    let outbound = mux.outbound();
    let mut targets_changed = state.links.watch_targets();
    targets_changed.mark_unchanged();
    send_json(
        outbound,
        FrameKind::Welcome,
        &Welcome {
            agent_id: ticket.agent_id.clone(),
            heartbeat_ms: HEARTBEAT.as_millis() as u64,
        },
    )
    .await?;
    send_targets(outbound, state, &ticket.agent_id).await?;
    // Silence is measured from the last frame heard, whatever else happens.
    let mut deadline = tokio::time::Instant::now() + HEARTBEAT * 3;
    loop {
        tokio::select! {
            frame = tokio::time::timeout_at(deadline, recv_frame(reader, buffer)) => {
                let Some(frame) = frame.map_err(|_| LinkError::Timeout)?? else {
                    return Ok(());
                };
                deadline = tokio::time::Instant::now() + HEARTBEAT * 3;
                match frame.kind {
                    FrameKind::Ping => {
                        send(outbound, Frame::control(FrameKind::Pong, frame.payload)).await?;
                    }
                    FrameKind::Status => {
                        let status: Status = serde_json::from_slice(&frame.payload)
                            .map_err(|_| LinkError::Protocol("bad status"))?;
                        state.links.set_reachable(ticket, status.reachable);
                    }
                    FrameKind::Data | FrameKind::Close | FrameKind::Window => mux.dispatch(frame),
                    FrameKind::Events => gate.receive(state, mux, &frame).await?,
                    // Unknown kinds are skipped so agents may be upgraded first.
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
            changed = targets_changed.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                send_targets(outbound, state, &ticket.agent_id).await?;
            }
            _ = ticket.kicked.changed() => {
                return Ok(());
            }
        }
    }
}

/// Most sessions whose owner a link remembers; past it, it forgets them
/// all and asks the store again.
const SERVED_CACHE: usize = 4096;

/// Judges the audit events an agent sends: a batch is stored only for the
/// session it may speak for. On a stream the gateway opened, that is the
/// stream's session, nothing else; on stream 0 (a batch sent again after a
/// relink) or a stream that already ended, a session the records say this
/// agent served. Anything else is refused and logged with the agent's
/// name: an agent's key is no licence to write other agents' sessions.
struct EventsGate {
    agent_id: String,
    agent_name: String,
    /// Sessions looked up in the store: served by this agent or not.
    served: HashMap<String, bool>,
}

impl EventsGate {
    async fn receive(
        &mut self,
        state: &AppState,
        mux: &Mux,
        frame: &Frame,
    ) -> Result<(), LinkError> {
        let outbound = mux.outbound();
        let batch: SessionEvents = serde_json::from_slice(&frame.payload)
            .map_err(|_| LinkError::Protocol("bad events"))?;
        let refusal = match mux.session(frame.stream) {
            Some(bound) if *bound == *batch.session_id => None,
            Some(_) => Some("the stream carries another session"),
            None => match self.served(state, &batch.session_id).await {
                Some(true) => None,
                Some(false) => Some("the agent did not serve that session"),
                // The store failed: the agent sends the batch again later.
                None => return Ok(()),
            },
        };
        let Some(reason) = refusal else {
            state.events.submit(batch, outbound.clone());
            return Ok(());
        };
        tracing::warn!(
            agent = %self.agent_name,
            stream = frame.stream,
            session = %batch.session_id,
            reason,
            "refused audit events an agent sent for a session not its own"
        );
        // Acknowledged all the same, so the agent stops sending it.
        let ack = EventsAck {
            batches: vec![BatchId {
                session_id: batch.session_id,
                first_seq: batch.first_seq,
            }],
        };
        send_json(outbound, FrameKind::EventsAck, &ack).await
    }

    /// Whether the store records this agent as the session's; `None` when
    /// the store cannot tell now.
    async fn served(&mut self, state: &AppState, session_id: &str) -> Option<bool> {
        if let Some(&served) = self.served.get(session_id) {
            return Some(served);
        }
        let served = match state.store.session_agent(session_id).await {
            Ok(agent) => agent.flatten().as_deref() == Some(self.agent_id.as_str()),
            Err(error) => {
                tracing::error!(%error, "could not look up a session's agent");
                return None;
            }
        };
        if self.served.len() >= SERVED_CACHE {
            self.served.clear();
        }
        self.served.insert(session_id.to_owned(), served);
        Some(served)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A TLS acceptor from PEM certificate chain and key files.
///
/// # Errors
///
/// When a file cannot be read or holds no usable certificate or key.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<TlsAcceptor, crate::GatewayError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let tls_error = |e: &dyn std::fmt::Display| crate::GatewayError::Tls(e.to_string());
    let chain = CertificateDer::pem_file_iter(cert)
        .map_err(|e| tls_error(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(&e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| tls_error(&e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_error(&e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| tls_error(&e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn compares_whole_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
