//! The PostgreSQL session driver.
//!
//! ```text
//!  client                         hoop                              server
//!    │ SSLRequest / GSSENCRequest  │                                  │
//!    │◀── 'S' + TLS, or 'N' ───────│                                  │
//!    │ StartupMessage(user, db..)  │                                  │
//!    │◀── AuthenticationCleartext ─│  (only if the authenticator      │
//!    │ PasswordMessage(token) ────▶│   wants a token)                 │
//!    │                             │── SSLRequest, TLS per SSLMODE ──▶│
//!    │                             │── Startup(real USER, db, params)▶│
//!    │                             │◀─ SCRAM / md5 / cleartext / ok ─▶│
//!    │◀── AuthenticationOk ────────│◀─ ParameterStatus.., KeyData, Z ─│
//!    │◀── ParameterStatus.., BackendKeyData(server pid, hoop's secret), Z
//!    │◀════════ relay: decode, events to the hook, re-encode ════════▶│
//! ```
//!
//! What it promises:
//!
//! - The client never sees the connection's real password, and the startup
//!   exchange never shows it the real user (`session_authorization` is
//!   reported as the client's own user name; SQL such as `current_user`
//!   naturally still answers truthfully).
//! - Every message is framed by `hoop-wire`; untouched messages go out byte
//!   for byte, in order, batched into one write per read.
//! - Memory per session is bounded (about two read chunks plus the largest
//!   single message, capped by [`Limits`]); a slow client slows only its own
//!   session; a client that goes away releases its server connection at once
//!   (with a cancel request if a query was still running).
//! - Cancel requests work: clients get the server's real process id (what
//!   `pg_backend_pid()` and notifications report) with a secret of hoop's
//!   own, mapped to the server's key through a [`CancelRegistry`].
//! - Failures reach the client as an ErrorResponse with a SQLSTATE: `08001`
//!   server unreachable, `28P01` credentials or token refused (never saying
//!   which credentials), `08P01` protocol violation.

mod client;
pub(crate) mod codec;
mod copy;
pub mod error;
mod results;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hoop_wire::postgres::{
    Authentication, BackendKeyData, BackendMessage, Limits, Notice, ParameterStatus, StartupMessage,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use self::client::Hello;
use self::codec::PgCodec;
pub use self::error::client_error;
use crate::auth::ClientAuthenticator;
use crate::cancel::{CancelGuard, CancelKey, CancelRegistry, CancelTarget};
use crate::connection::DatabaseTarget;
use crate::driver::{Protocol, Settings};
use crate::error::{Culprit, SessionError};
use crate::pipeline::{Pipeline, SessionInfo};
use crate::relay::{Pump, RelayEnd, relay};
use crate::stream::{ClientIo, Stream};
use crate::tls::UpstreamTls;

/// The startup parameter naming the real user.
const USER: &[u8] = b"user";
/// The startup parameter naming the database.
const DATABASE: &[u8] = b"database";
/// The ParameterStatus that reports the session's user.
const SESSION_AUTHORIZATION: &[u8] = b"session_authorization";

/// PostgreSQL in the shared [`crate::driver::Builder`].
#[derive(Debug)]
pub enum Postgres {}

/// Settings only PostgreSQL has.
#[derive(Debug, Default)]
pub struct PostgresOptions {
    cancels: CancelRegistry,
}

impl Protocol for Postgres {
    type Limits = Limits;
    type Options = PostgresOptions;
    type Proxy = PostgresProxy;

    fn proxy(settings: Settings<Self>) -> PostgresProxy {
        PostgresProxy {
            inner: Arc::new(Inner {
                target: settings.target,
                client_tls: settings.client_tls,
                upstream_tls: settings.upstream_tls,
                authenticator: settings.authenticator,
                pipeline: settings.pipeline,
                cancels: settings.options.cancels,
                limits: settings.limits,
                handshake_timeout: settings.handshake_timeout,
            }),
        }
    }
}

/// Builds a [`PostgresProxy`].
pub type Builder = crate::driver::Builder<Postgres>;

impl Builder {
    /// Registers this proxy's sessions in `registry` instead of a registry
    /// of its own. Proxies built per connection (or per session, as an
    /// agent does) then share one: a cancel request, which arrives on a
    /// new connection and names no connection, finds its session whichever
    /// proxy or listener receives it (see [`cancel`]).
    pub fn cancel_registry(mut self, registry: CancelRegistry) -> Self {
        self.options.cancels = registry;
        self
    }
}

/// Forwards a client's cancel request to the server of the session its key
/// names in `registry`, with the server's own key; false when no open
/// session has that key (nothing is sent). For listeners that read the
/// opening message themselves; a [`PostgresProxy`] does this for the
/// requests it receives.
pub async fn cancel(
    registry: &CancelRegistry,
    request: hoop_wire::postgres::CancelRequest,
) -> bool {
    let key = CancelKey {
        process_id: request.process_id,
        secret: request.secret_key,
    };
    let Some(target) = registry.lookup(&key) else {
        tracing::info!("cancel request for no known session");
        return false;
    };
    upstream::send_cancel(target.server, target.process_id, &target.secret).await;
    true
}

struct Inner {
    target: DatabaseTarget,
    client_tls: Option<TlsAcceptor>,
    upstream_tls: UpstreamTls,
    authenticator: Arc<dyn ClientAuthenticator>,
    pipeline: Arc<dyn Pipeline>,
    cancels: CancelRegistry,
    limits: Limits,
    handshake_timeout: Duration,
}

/// A PostgreSQL proxy for one connection: many sessions, one upstream target.
/// Cloning shares it (and its cancel registry).
#[derive(Clone)]
pub struct PostgresProxy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PostgresProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresProxy")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

/// The server side of a session that completed its startup.
struct Opened {
    server: upstream::ServerLeg,
    cancel: Option<(CancelGuard, CancelTarget)>,
    info: SessionInfo,
}

impl PostgresProxy {
    /// Starts configuring a proxy to `target`.
    pub fn builder(target: DatabaseTarget) -> Builder {
        Builder::new(target)
    }

    /// The registry mapping client cancel keys to server keys.
    pub fn cancel_registry(&self) -> &CancelRegistry {
        &self.inner.cancels
    }

    /// Serves every connection `listener` accepts, forever.
    pub async fn serve(&self, listener: TcpListener) {
        crate::listener::serve(listener, "postgres", |stream, peer| {
            let proxy = self.clone();
            async move { proxy.handle(stream, peer).await }
        })
        .await;
    }

    /// Runs one accepted TCP connection to its end, as
    /// [`handle_stream`](Self::handle_stream) does.
    pub async fn handle(&self, stream: TcpStream, peer: SocketAddr) {
        self.handle_stream(stream, peer).await;
    }

    /// Runs one already-accepted client to its end over any byte stream (a
    /// socket, an in-memory duplex, a stream multiplexed over a link);
    /// `peer` is the client's address as the session reports it. Client-leg
    /// TLS, when configured, runs over `stream`. Failures are reported to
    /// the client (when it can still hear) and logged; they never propagate.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # use hoop_proxy::postgres::PostgresProxy;
    /// # async fn run(proxy: PostgresProxy, client: tokio::io::DuplexStream) {
    /// // `client` is the driver's end of an in-memory pipe whose other end
    /// // something else feeds with a client's bytes.
    /// proxy.handle_stream(client, ([127, 0, 0, 1], 0).into()).await;
    /// # }
    /// ```
    pub async fn handle_stream<S>(&self, stream: S, peer: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.serve_stream(stream, peer).await;
    }

    /// Serves `stream` as [`handle_stream`](Self::handle_stream) does, and
    /// returns why the session failed, if it did, for the session's record.
    pub(crate) async fn serve_stream<S>(&self, stream: S, peer: SocketAddr) -> Option<String>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let result = self.session(Box::new(stream), peer).await;
        crate::error::log_session_end(result)
    }

    async fn session(&self, stream: ClientIo, peer: SocketAddr) -> Result<(), SessionError> {
        let inner = &*self.inner;
        let hello = tokio::time::timeout(
            inner.handshake_timeout,
            client::accept(stream, inner.client_tls.as_ref(), inner.limits),
        )
        .await
        .map_err(|_| SessionError::Timeout(Culprit::Client))??;
        let mut client = match hello {
            Hello::Closed => return Ok(()),
            Hello::Cancel(request) => {
                cancel(&inner.cancels, request).await;
                return Ok(());
            }
            Hello::Startup(client) => client,
        };
        let opened = tokio::time::timeout(inner.handshake_timeout, self.open(&mut client, peer))
            .await
            .unwrap_or(Err(SessionError::Timeout(Culprit::Server)));
        match opened {
            Ok(opened) => self.relay(client, opened).await,
            Err(error) => {
                send_fatal(&mut client.stream, &[], &error).await;
                Err(error)
            }
        }
    }

    /// Client authentication, then the server leg; answers the client's
    /// startup with the server's parameters and a cancel key of the server's process id and hoop's own secret.
    async fn open(
        &self,
        client: &mut client::ClientLeg,
        peer: SocketAddr,
    ) -> Result<Opened, SessionError> {
        let inner = &*self.inner;
        let identity = client::authenticate(client, inner.authenticator.as_ref()).await?;
        let client_user = client.param(USER).unwrap_or_default().to_owned();
        let database = client
            .param(DATABASE)
            .filter(|db| !db.is_empty())
            .map(str::to_owned)
            .or_else(|| inner.target.database.clone());

        let mut params = vec![(
            Bytes::from_static(USER),
            Bytes::copy_from_slice(inner.target.user.as_bytes()),
        )];
        if let Some(database) = &database {
            params.push((
                Bytes::from_static(DATABASE),
                Bytes::copy_from_slice(database.as_bytes()),
            ));
        }
        params.extend(
            client
                .startup
                .params
                .iter()
                .filter(|(name, _)| name.as_ref() != USER && name.as_ref() != DATABASE)
                .cloned(),
        );
        let startup = StartupMessage {
            protocol_version: client.startup.protocol_version,
            params,
        };
        let server =
            upstream::connect(&inner.target, &inner.upstream_tls, inner.limits, startup).await?;

        let cancel = server.key.as_ref().map(|key| {
            let target = CancelTarget {
                server: server.addr,
                process_id: key.process_id,
                secret: key.secret_key.clone(),
            };
            (
                inner.cancels.register(target.clone(), key.secret_key.len()),
                target,
            )
        });

        let mut answer = BytesMut::new();
        if let Some(negotiation) = &server.negotiation {
            negotiation.encode(&mut answer);
        }
        BackendMessage::Authentication(Authentication::Ok).encode(&mut answer);
        for message in &server.startup {
            match message {
                BackendMessage::ParameterStatus(status)
                    if status.name.as_ref() == SESSION_AUTHORIZATION =>
                {
                    BackendMessage::ParameterStatus(ParameterStatus {
                        name: status.name.clone(),
                        value: Bytes::copy_from_slice(client_user.as_bytes()),
                    })
                    .encode(&mut answer);
                }
                BackendMessage::ReadyForQuery(_) => {
                    if let Some((guard, _)) = &cancel {
                        BackendMessage::BackendKeyData(BackendKeyData {
                            process_id: guard.key().process_id,
                            secret_key: guard.key().secret.clone(),
                        })
                        .encode(&mut answer);
                    }
                    message.encode(&mut answer);
                }
                other => other.encode(&mut answer),
            }
        }
        client::write(&mut client.stream, &answer).await?;

        Ok(Opened {
            server,
            cancel,
            info: SessionInfo {
                protocol: "postgres",
                peer,
                user: identity.user,
                database,
            },
        })
    }

    async fn relay(&self, client: client::ClientLeg, opened: Opened) -> Result<(), SessionError> {
        let Opened {
            server,
            cancel,
            info,
        } = opened;
        let mut client_stream = client.stream;
        let mut server_stream = server.stream;
        let mut hook = self.inner.pipeline.open(&info);
        let mut codec = PgCodec::new(client.decoder, server.decoder, hook.as_mut());
        let mut to_server = Pump::new(client.buf);
        let mut to_client = Pump::new(server.buf);
        let result = relay(
            &mut codec,
            &mut client_stream,
            &mut server_stream,
            &mut to_server,
            &mut to_client,
        )
        .await;
        let abandoned = !codec.terminated() && codec.busy();
        // A server that closes a connection its client did not terminate
        // (its backend terminated, crashed, shut down) lost the session:
        // it failed. The client has what the server sent (its FATAL, if
        // any) and sees the close as it would without hoop.
        let lost = !codec.terminated() && matches!(result, Ok(RelayEnd::ServerClosed));
        drop(codec);
        let result = if lost {
            Err(SessionError::server_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            ))
        } else {
            result
        };
        if let Err(error) = &result
            && let Some((code, message)) = client_error(error)
        {
            crate::pipeline::record_failure(hook.as_mut(), code.to_owned(), message);
        }
        hook.closed();
        // The client went away while the server was still working for it:
        // stop the query so the server connection is released now, not when
        // the query would next write.
        let client_gone = matches!(result, Ok(RelayEnd::ClientClosed))
            || matches!(&result, Err(e) if e.culprit() == Culprit::Client);
        if client_gone && abandoned {
            if let Some((_, target)) = &cancel {
                drop(server_stream);
                upstream::send_cancel(target.server, target.process_id, &target.secret).await;
            }
            return result.map(drop);
        }
        match result {
            Ok(_) => Ok(()),
            // Everything the server sent was relayed: its close ends the
            // client's connection too, with no FATAL of hoop's own.
            Err(error) if lost => Err(error),
            Err(error) => {
                send_fatal(&mut client_stream, to_client.unwritten(), &error).await;
                Err(error)
            }
        }
    }
}

/// How long a final error may take to reach a client that stopped reading.
const FAREWELL_TIMEOUT: Duration = Duration::from_secs(5);

/// Best effort: sends what was already relayed, then a FATAL ErrorResponse
/// describing `error`, unless the client is the one that failed.
async fn send_fatal(client: &mut Stream<ClientIo>, unwritten: &[u8], error: &SessionError) {
    let Some((code, message)) = client_error(error) else {
        return;
    };
    let mut bytes = BytesMut::from(unwritten);
    BackendMessage::ErrorResponse(Notice::error("FATAL", code, &message)).encode(&mut bytes);
    let _ = tokio::time::timeout(FAREWELL_TIMEOUT, client::write(client, &bytes)).await;
}
