//! The MySQL (and MariaDB) session driver.
//!
//! ```text
//!  client                          hoop                               server
//!    │                              │── TCP connect ──────────────────▶│
//!    │                              │◀─ HandshakeV10 (id, caps, salt) ─│
//!    │◀─ hoop's HandshakeV10 ───────│  (server's id and version, caps  │
//!    │   ∩ what hoop relays, hoop's own challenge)                     │
//!    │ SSLRequest + TLS (optional) ▶│                                  │
//!    │ HandshakeResponse41 ────────▶│                                  │
//!    │◀─ AuthSwitchRequest ─────────│  (mysql_clear_password, only if  │
//!    │ access token ───────────────▶│   the authenticator wants one)   │
//!    │                              │── SSLRequest + TLS per SSLMODE ─▶│
//!    │                              │── HandshakeResponse41 (USER, the │
//!    │                              │   client's caps, DB) ───────────▶│
//!    │                              │◀─▶ native / caching_sha2 /       │
//!    │                              │    ed25519 exchanges, then OK ───│
//!    │◀─ OK ────────────────────────│                                  │
//!    │◀════════ relay: one codec session, events to the hook ═════════▶│
//! ```
//!
//! What it promises:
//!
//! - Both legs run with the same capabilities (the client's, within what
//!   the server offers and hoop can relay: never compression, LOCAL INFILE
//!   only when allowed), so every packet hoop does not change passes byte
//!   for byte, in order, batched into one write per read. The one
//!   exception is MariaDB's metadata cache, offered to every client: with
//!   a server that lacks it (MySQL), hoop adds the "metadata follows" byte
//!   to each column count itself, so one greeting suits every server (the
//!   gateway's MySQL listener greets before it knows which server a
//!   client will reach).
//! - The client never sees the connection's user or password; errors
//!   during the server's login are replaced by hoop's wording.
//! - `KILL QUERY <id>` from another connection through hoop reaches the
//!   right thread: the client is greeted with the server's connection id,
//!   or, greeted by a gateway with an id of its own, that id is translated
//!   ([`ThreadRegistry`]).
//! - Statements (COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE) go to the
//!   pipeline hook; a refused one is answered with an ERR packet (1227,
//!   SQLSTATE 42000, the refusal's message) in its turn, and the session
//!   goes on. Rows the hook rewrites are re-encoded (text or binary) under
//!   their original sequence id.
//! - A server asking for a local file (LOAD DATA LOCAL INFILE) when the
//!   connection does not allow it ends the session: fail closed.
//! - Memory per session is bounded (about two read chunks plus the largest
//!   packet, capped by [`Limits`]); a slow client slows only its own
//!   session; a client that goes away releases its server connection, and a
//!   thread still busy for it is ended with `KILL CONNECTION`.
//! - COM_CHANGE_USER resets the session on the connection's own account:
//!   the server leg logs in again with the connection's credentials, in the
//!   database and character set the client asks for; the account the client
//!   names is not used, so the identity stays the connection's.

mod client;
pub(crate) mod codec;
mod compress;
pub mod error;
mod packet;
mod scramble;
mod threads;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hoop_wire::mysql::{Limits, Session, capability};
use tokio::io::AsyncWriteExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use self::codec::MysqlCodec;
pub use self::error::client_error;
pub use self::packet::read_first_packet;
pub use self::threads::ThreadRegistry;
use self::upstream::LoginRequest;
use crate::auth::ClientAuthenticator;
use crate::connection::DatabaseTarget;
use crate::driver::{Protocol, Settings};
use crate::error::{Culprit, SessionError};
use crate::pipeline::{Pipeline, SessionInfo};
use crate::relay::{Pump, RelayEnd, relay};
use crate::stream::{ClientIo, Stream};
use crate::tls::UpstreamTls;

/// The capabilities hoop relays when both sides have them: everything the
/// codec follows. Left out: compression (hoop must read the packets),
/// SSL and LOCAL_FILES (decided per leg and per connection), client-side
/// only flags, multi-factor authentication, MySQL's capability extension
/// and MariaDB's bulk operations, whose responses the codec does not type;
/// and MySQL's optional result metadata, which leaves result sets with no
/// columns at all: masking decides per column, and rows of columns it was
/// never told about would be blanked. MariaDB's metadata cache is relayed:
/// the server skips only a prepared statement's definitions it already
/// sent, and the codec keeps those per statement, so the pipeline still
/// sees every result set's columns (and a skipped result set the codec
/// cannot name ends the session).
const RELAYED_CAPABILITIES: u64 = (0x0fff_ffff
    & !capability::COMPRESS
    & !capability::LOCAL_FILES
    & !capability::SSL
    & !capability::OPTIONAL_RESULTSET_METADATA
    & !ZSTD_COMPRESSION)
    | MARIADB_PROGRESS
    | capability::MARIADB_EXTENDED_METADATA
    | capability::MARIADB_CACHE_METADATA;

/// Offered to every client whatever the server: a client that takes it and
/// a server that lacks it are bridged by [`MysqlCodec`] adding the
/// "metadata follows" byte (always 1) to each column count.
///
/// CLIENT_COMPRESS too: hoop inflates and deflates the client leg itself
/// ([`compress`]) and keeps the server leg plain.
const EMULATED_CAPABILITIES: u64 = capability::MARIADB_CACHE_METADATA | capability::COMPRESS;

/// CLIENT_ZSTD_COMPRESSION_ALGORITHM.
const ZSTD_COMPRESSION: u64 = 1 << 26;
/// MariaDB's MARIADB_CLIENT_PROGRESS: progress reports as ERR 0xFFFF.
const MARIADB_PROGRESS: u64 = 1 << 32;

/// MySQL and MariaDB in the shared [`crate::driver::Builder`].
#[derive(Debug)]
pub enum Mysql {}

/// Settings only MySQL has.
#[derive(Debug, Default)]
pub struct MysqlOptions {
    allow_local_infile: bool,
    threads: Option<ThreadRegistry>,
    told_thread_id: Option<u32>,
}

impl Protocol for Mysql {
    type Limits = Limits;
    type Options = MysqlOptions;
    type Proxy = MysqlProxy;

    fn proxy(settings: Settings<Self>) -> MysqlProxy {
        MysqlProxy {
            inner: Arc::new(Inner {
                target: settings.target,
                client_tls: settings.client_tls,
                upstream_tls: settings.upstream_tls,
                authenticator: settings.authenticator,
                pipeline: settings.pipeline,
                limits: settings.limits,
                handshake_timeout: settings.handshake_timeout,
                allow_local_infile: settings.options.allow_local_infile,
                threads: settings.options.threads,
                told_thread_id: settings.options.told_thread_id,
            }),
        }
    }
}

/// Builds a [`MysqlProxy`].
pub type Builder = crate::driver::Builder<Mysql>;

impl Builder {
    /// Lets the server read files from the client's machine with `LOAD DATA
    /// LOCAL INFILE` (off by default: the capability is not offered, and a
    /// server that asks anyway ends the session).
    pub fn allow_local_infile(mut self, allow: bool) -> Self {
        self.options.allow_local_infile = allow;
        self
    }

    /// Shares `registry` with the process's other drivers: a client's
    /// `KILL [QUERY] <id>` naming a connection id registered there (one a
    /// gateway told its client, see [`Self::told_thread_id`]) reaches the
    /// server with the id of the thread it stands for.
    pub fn thread_registry(mut self, registry: ThreadRegistry) -> Self {
        self.options.threads = Some(registry);
        self
    }

    /// The connection id the client was told by whoever greeted it (a
    /// gateway that answers before it knows the server): registered in the
    /// thread registry for the session's server thread while the session
    /// lasts, so that `KILL QUERY <id>` from another session finds it. One
    /// client's id: set it on a proxy built for that client's session.
    pub fn told_thread_id(mut self, id: u32) -> Self {
        self.options.told_thread_id = Some(id);
        self
    }
}

struct Inner {
    target: DatabaseTarget,
    client_tls: Option<TlsAcceptor>,
    upstream_tls: UpstreamTls,
    authenticator: Arc<dyn ClientAuthenticator>,
    pipeline: Arc<dyn Pipeline>,
    limits: Limits,
    handshake_timeout: Duration,
    allow_local_infile: bool,
    threads: Option<ThreadRegistry>,
    told_thread_id: Option<u32>,
}

/// A MySQL proxy for one connection: many sessions, one upstream target.
/// Cloning shares it.
#[derive(Clone)]
pub struct MysqlProxy {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for MysqlProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MysqlProxy")
            .field("target", &self.inner.target)
            .finish_non_exhaustive()
    }
}

/// A session whose both legs logged in.
struct Opened {
    client: client::ClientLeg,
    server: upstream::ServerLeg,
    capabilities: Capabilities,
    thread_id: u32,
    info: SessionInfo,
}

impl MysqlProxy {
    /// Starts configuring a proxy to `target`.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// use hoop_proxy::auth::SharedSecret;
    /// use hoop_proxy::mysql::MysqlProxy;
    /// use hoop_proxy::{Credentials, Secret};
    ///
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let target = Credentials::from_process_env().database_target(3306)?;
    /// let proxy = MysqlProxy::builder(target)
    ///     .authenticator(Arc::new(SharedSecret::new(Secret::new("token"))))
    ///     .build()?;
    /// proxy
    ///     .serve(tokio::net::TcpListener::bind("127.0.0.1:3307").await?)
    ///     .await;
    /// # Ok(()) }
    /// ```
    pub fn builder(target: DatabaseTarget) -> Builder {
        Builder::new(target)
    }

    /// Serves every connection `listener` accepts, forever.
    pub async fn serve(&self, listener: TcpListener) {
        crate::listener::serve(listener, "mysql", |stream, peer| {
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
    /// # use hoop_proxy::mysql::MysqlProxy;
    /// # async fn run(proxy: MysqlProxy, client: tokio::io::DuplexStream) {
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
        let greeted = tokio::time::timeout(
            inner.handshake_timeout,
            upstream::greet(&inner.target, inner.limits),
        )
        .await
        .unwrap_or(Err(SessionError::Timeout(Culprit::Server)));
        let greeted = match greeted {
            Ok(greeted) => greeted,
            Err(error) => {
                // In place of a greeting, as a server that refuses a
                // connection does.
                let mut stream = Stream::Plain(stream);
                send_error(&mut stream, 0, &[], &error, None).await;
                return Err(error);
            }
        };
        let mut offered = Capabilities::offer(greeted.handshake.capabilities);
        if inner.client_tls.is_some() {
            offered |= capability::SSL;
        }
        if inner.allow_local_infile {
            offered |= greeted.handshake.capabilities & capability::LOCAL_FILES;
        }
        let greeting = client::greeting(&greeted.handshake, offered);
        let accepted = tokio::time::timeout(
            inner.handshake_timeout,
            client::accept(stream, greeting, inner.client_tls.as_ref(), inner.limits),
        )
        .await
        .unwrap_or(Err(SessionError::Timeout(Culprit::Client)))?;
        let Some(mut client) = accepted else {
            return Ok(());
        };
        let opened = tokio::time::timeout(
            inner.handshake_timeout,
            self.open(&mut client, greeted, offered, peer),
        )
        .await
        .unwrap_or(Err(SessionError::Timeout(Culprit::Server)));
        match opened {
            Ok((server, capabilities, thread_id, info)) => {
                self.relay(Opened {
                    client,
                    server,
                    capabilities,
                    thread_id,
                    info,
                })
                .await
            }
            Err(error) => {
                send_error(&mut client.stream, client.seq, &[], &error, None).await;
                Err(error)
            }
        }
    }

    /// Client authentication, then the server's login with the same
    /// capabilities; answers the client with the server's OK.
    async fn open(
        &self,
        client: &mut client::ClientLeg,
        greeted: upstream::Greeted,
        offered: u64,
        peer: SocketAddr,
    ) -> Result<(upstream::ServerLeg, Capabilities, u32, SessionInfo), SessionError> {
        let inner = &*self.inner;
        let identity = client::authenticate(client, inner.authenticator.as_ref()).await?;
        let response = &client.response;
        let capabilities = Capabilities::negotiate(
            response.capabilities,
            offered,
            greeted.handshake.capabilities,
        );
        let database = response
            .database
            .clone()
            .filter(|db| !db.is_empty())
            .or_else(|| {
                inner
                    .target
                    .database
                    .as_ref()
                    .map(|db| bytes::Bytes::copy_from_slice(db.as_bytes()))
            });
        let request = LoginRequest {
            capabilities: capabilities.server,
            max_packet_size: response.max_packet_size,
            charset: response.charset,
            database: database.clone(),
            attributes: response.attributes.clone(),
        };
        let thread_id = greeted.handshake.connection_id;
        let server = upstream::login(
            greeted,
            &inner.target,
            &inner.upstream_tls,
            inner.limits,
            &request,
        )
        .await?;
        packet::write(&mut client.stream, client.seq, &server.ok, Culprit::Client).await?;
        Ok((
            server,
            capabilities,
            thread_id,
            SessionInfo {
                protocol: "mysql",
                peer,
                user: identity.user,
                database: database.map(|db| String::from_utf8_lossy(&db).into_owned()),
            },
        ))
    }

    async fn relay(&self, opened: Opened) -> Result<(), SessionError> {
        let Opened {
            client,
            server,
            capabilities,
            thread_id,
            info,
        } = opened;
        let inner = &*self.inner;
        let mut client_stream = client.stream;
        let mut server_stream = server.stream;
        let mut hook = inner.pipeline.open(&info);
        let account = threads::Account {
            host: inner.target.host.clone(),
            port: inner.target.port,
            user: inner.target.user.clone(),
        };
        // While the session lasts, the id its client was told finds its thread.
        let _told = inner
            .threads
            .as_ref()
            .zip(inner.told_thread_id)
            .map(|(threads, told)| threads.register(told, account.clone(), thread_id));
        let mut to_server = Pump::new(client.buf);
        let mut to_client = Pump::new(server.buf);
        let mut compression = (capabilities.client & capability::COMPRESS != 0)
            .then(compress::ClientCompression::default);
        let (result, quit, abandoned, seq) = loop {
            // A fresh conversation each run: COM_CHANGE_USER drops the
            // server's prepared statements along with the rest.
            let session = Session::after_handshake(inner.limits, capabilities.server);
            let mut codec = MysqlCodec::new(session, hook.as_mut(), inner.allow_local_infile)
                .announcing_metadata(capabilities.announces_metadata())
                .translating_kills(
                    inner
                        .threads
                        .clone()
                        .map(|threads| (threads, account.clone())),
                );
            let result = match compression.as_mut() {
                Some(state) => {
                    let mut compressed = compress::Compressed {
                        inner: &mut codec,
                        state,
                    };
                    relay(
                        &mut compressed,
                        &mut client_stream,
                        &mut server_stream,
                        &mut to_server,
                        &mut to_client,
                    )
                    .await
                }
                None => {
                    relay(
                        &mut codec,
                        &mut client_stream,
                        &mut server_stream,
                        &mut to_server,
                        &mut to_client,
                    )
                    .await
                }
            };
            let quit = codec.quit();
            let abandoned = !quit && codec.busy();
            let seq = codec.client_seq();
            let change = codec.take_change_user();
            drop(codec);
            let (Err(SessionError::ChangeUser), Some(body)) = (&result, change) else {
                break (result, quit, abandoned, seq);
            };
            let answered = self
                .change_user(
                    ChangeUserLegs {
                        client: &mut client_stream,
                        server: &mut server_stream,
                        to_server: &mut to_server,
                        to_client: &mut to_client,
                        compression: compression.as_mut(),
                    },
                    &server.relogin,
                    capabilities,
                    body,
                    seq,
                )
                .await;
            if let Err(error) = answered {
                break (Err(error), false, false, seq);
            }
        };
        // A server that closes a connection its client did not quit (killed,
        // timed out, shut down) lost it, whether or not a command was
        // waiting: the session failed.
        let result = match result {
            Ok(RelayEnd::ServerClosed) if !quit => Err(SessionError::server_io(
                std::io::ErrorKind::UnexpectedEof.into(),
            )),
            other => other,
        };
        if let Err(error) = &result
            && let Some((_, state, message)) = client_error(error)
        {
            crate::pipeline::record_failure(
                hook.as_mut(),
                String::from_utf8_lossy(&state).into_owned(),
                message,
            );
        }
        hook.closed();
        let client_gone = matches!(result, Ok(RelayEnd::ClientClosed))
            || matches!(&result, Err(e) if e.culprit() == Culprit::Client);
        if client_gone && abandoned {
            // The server is still working for a client that left: closing
            // the socket alone frees the thread only when it next writes.
            drop(server_stream);
            upstream::kill(&inner.target, &inner.upstream_tls, inner.limits, thread_id).await;
            return result.map(drop);
        }
        match result {
            Ok(_) => Ok(()),
            Err(error) if error.lost_server() => {
                // What the server sent before it went is passed on, then the
                // client's connection closes as the server's did: the client
                // sees 2013 or 2006, the errors its reconnect logic knows.
                // An ERR of hoop's own would have no command to answer (the
                // server went while idle) and no code a client retries on.
                let _ = client_stream.write_all(to_client.unwritten()).await;
                let _ = client_stream.shutdown().await;
                Err(error)
            }
            Err(error) => {
                send_error(
                    &mut client_stream,
                    seq,
                    to_client.unwritten(),
                    &error,
                    compression.as_mut(),
                )
                .await;
                Err(error)
            }
        }
    }
}

/// What the command phase runs with on each leg: the same but for what
/// hoop emulates ([`EMULATED_CAPABILITIES`]) toward a client whose server
/// lacks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Capabilities {
    client: u64,
    server: u64,
}

impl Capabilities {
    /// What hoop's greeting offers the client of a server that offered
    /// `server`, before the per-connection TLS and LOCAL INFILE.
    fn offer(server: u64) -> u64 {
        // MariaDB's extended capabilities are read only from a greeting
        // without CLIENT_MYSQL (LONG_PASSWORD's bit); no client of a 4.1+
        // server depends on that bit.
        ((server & RELAYED_CAPABILITIES) | EMULATED_CAPABILITIES) & !capability::LONG_PASSWORD
    }

    /// From what the client took, what hoop `offered` it and what the
    /// server's greeting offered.
    fn negotiate(client: u64, offered: u64, server: u64) -> Self {
        let client = client & offered & !capability::SSL;
        // LONG_PASSWORD is hidden from the client (see `session`), but a
        // MySQL server that offers it gets it, as from any 4.1+ client.
        let server_side = (client | capability::LONG_PASSWORD) & server & !capability::COMPRESS;
        Self {
            client,
            server: server_side,
        }
    }

    /// Whether hoop adds the "metadata follows" byte the client expects.
    fn announces_metadata(self) -> bool {
        (self.client & !self.server) & capability::MARIADB_CACHE_METADATA != 0
    }
}

/// The two legs of a session and their pumps, while the relay is stopped.
struct ChangeUserLegs<'a> {
    client: &'a mut Stream<ClientIo>,
    server: &'a mut crate::stream::Stream,
    to_server: &'a mut Pump,
    to_client: &'a mut Pump,
    compression: Option<&'a mut compress::ClientCompression>,
}

impl MysqlProxy {
    /// Answers a client's COM_CHANGE_USER (`body`, its packet's sequence id
    /// plus one in `seq`) as a reset of the session on the connection's own
    /// account: whatever user and credentials the client names, the server
    /// leg logs in again as the connection's user with its credentials,
    /// with the database (or the connection's `DB` when none) and character
    /// set the client asked for, and the client gets the server's OK. The
    /// identity stays the connection's, as it was when the client logged in
    /// to hoop with its token.
    async fn change_user(
        &self,
        legs: ChangeUserLegs<'_>,
        relogin: &upstream::Relogin,
        capabilities: Capabilities,
        body: bytes::Bytes,
        seq: u8,
    ) -> Result<(), SessionError> {
        let inner = &*self.inner;
        let ChangeUserLegs {
            client,
            server,
            to_server,
            to_client,
            compression,
        } = legs;
        let request = hoop_wire::mysql::ComChangeUser::parse(body, capabilities.client)
            .map_err(SessionError::client_protocol)?;
        // Packets that preceded it and need no answer (COM_STMT_CLOSE), and
        // what the server sent last, go first.
        let earlier = to_server.take_unwritten();
        server
            .write_all(&earlier)
            .await
            .map_err(SessionError::server_io)?;
        let replies = to_client.take_unwritten();
        client
            .write_all(&replies)
            .await
            .map_err(SessionError::client_io)?;
        if to_client.unprocessed() > 0 {
            return Err(SessionError::Unexpected {
                culprit: Culprit::Server,
                message: "data before COM_CHANGE_USER",
            });
        }
        let database = Some(request.database)
            .filter(|db| !db.is_empty())
            .or_else(|| {
                inner
                    .target
                    .database
                    .as_ref()
                    .map(|db| bytes::Bytes::copy_from_slice(db.as_bytes()))
            });
        let ok = upstream::change_user(
            server,
            relogin,
            &inner.target,
            inner.limits,
            capabilities.server,
            database,
            request.charset,
        )
        .await?;
        match compression {
            Some(state) => client
                .write_all(&state.frame_packet(seq, &ok))
                .await
                .map_err(SessionError::client_io),
            None => packet::write(client, seq, &ok, Culprit::Client).await,
        }
    }
}

/// Writes what was pending, then the ERR packet for `error` (if the client
/// can still hear), then closes.
async fn send_error(
    stream: &mut Stream<ClientIo>,
    seq: u8,
    pending: &[u8],
    error: &SessionError,
    compression: Option<&mut compress::ClientCompression>,
) {
    let mut bytes = BytesMut::from(pending);
    if let Some((code, state, message)) = client_error(error) {
        let payload = packet::err_payload(code, &state, &message);
        match compression {
            Some(framing) => bytes.extend_from_slice(&framing.frame_packet(seq, &payload)),
            None => hoop_wire::mysql::encode_packet(&mut bytes, seq, &payload),
        }
    }
    let _ = stream.write_all(&bytes).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: u64 = capability::LONG_PASSWORD
        | capability::PROTOCOL_41
        | capability::SECURE_CONNECTION
        | capability::PLUGIN_AUTH
        | capability::DEPRECATE_EOF
        | capability::MARIADB_CACHE_METADATA;

    #[test]
    fn a_mysql_server_gets_long_password_and_the_cache_is_announced_by_hoop() {
        let mysql = capability::LONG_PASSWORD
            | capability::PROTOCOL_41
            | capability::SECURE_CONNECTION
            | capability::PLUGIN_AUTH
            | capability::DEPRECATE_EOF;
        let negotiated = Capabilities::negotiate(CLIENT, Capabilities::offer(mysql), mysql);
        assert_eq!(negotiated.server, mysql);
        assert!(negotiated.announces_metadata());
    }

    #[test]
    fn a_mariadb_server_keeps_its_own_cache() {
        let mariadb = capability::PROTOCOL_41
            | capability::SECURE_CONNECTION
            | capability::PLUGIN_AUTH
            | capability::DEPRECATE_EOF
            | capability::MARIADB_CACHE_METADATA;
        let negotiated = Capabilities::negotiate(CLIENT, Capabilities::offer(mariadb), mariadb);
        assert_eq!(negotiated.server, mariadb);
        assert_eq!(negotiated.client, mariadb);
        assert!(!negotiated.announces_metadata());
    }
}
