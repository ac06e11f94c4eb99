//! What every protocol's proxy is configured with: one [`Builder`],
//! parameterised by a small per-protocol [`Protocol`] trait that names the
//! codec's limits, the protocol's own options and the proxy it builds.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::auth::{AllowAll, ClientAuthenticator};
use crate::connection::DatabaseTarget;
use crate::pipeline::{NoopPipeline, Pipeline};
use crate::tls::{TlsConfigError, UpstreamTls};

/// How long a client and the server together get to finish the startup
/// (TLS, both authentications); stops idle half-open connections from
/// holding a slot.
const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long to wait for the server's TCP handshake.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a TCP connection to `target`'s server, with Nagle's algorithm off
/// (small protocol messages must not wait).
///
/// # Errors
///
/// The connect error, or `TimedOut` after [`CONNECT_TIMEOUT`].
pub(crate) async fn connect_server(target: &DatabaseTarget) -> io::Result<TcpStream> {
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| io::Error::from(io::ErrorKind::TimedOut))??;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// A database protocol hoop proxies: what its builder holds beyond the
/// shared settings, and the proxy it builds.
pub trait Protocol: Sized {
    /// The codec's limits (largest message, counts).
    type Limits: Default;
    /// Settings only this protocol has.
    type Options: Default + std::fmt::Debug;
    /// The proxy [`Builder::build`] returns.
    type Proxy;

    /// The proxy for `settings`.
    fn proxy(settings: Settings<Self>) -> Self::Proxy;
}

/// A finished configuration, handed to the protocol's proxy.
pub struct Settings<P: Protocol> {
    pub(crate) target: DatabaseTarget,
    pub(crate) client_tls: Option<TlsAcceptor>,
    pub(crate) upstream_tls: UpstreamTls,
    pub(crate) authenticator: Arc<dyn ClientAuthenticator>,
    pub(crate) pipeline: Arc<dyn Pipeline>,
    pub(crate) limits: P::Limits,
    pub(crate) handshake_timeout: Duration,
    pub(crate) options: P::Options,
}

impl<P: Protocol> std::fmt::Debug for Settings<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("target", &self.target)
            .field("client_tls", &self.client_tls.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Builds a protocol's proxy (`PostgresProxy::builder`,
/// `MysqlProxy::builder`).
pub struct Builder<P: Protocol> {
    target: DatabaseTarget,
    client_tls: Option<TlsAcceptor>,
    upstream_tls: Option<UpstreamTls>,
    authenticator: Arc<dyn ClientAuthenticator>,
    pipeline: Arc<dyn Pipeline>,
    limits: P::Limits,
    handshake_timeout: Duration,
    pub(crate) options: P::Options,
}

impl<P: Protocol> std::fmt::Debug for Builder<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("target", &self.target)
            .field("client_tls", &self.client_tls.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<P: Protocol> Builder<P> {
    /// Defaults for `target`: no client-leg TLS, server-leg TLS per its
    /// `SSLMODE`, [`AllowAll`], [`NoopPipeline`], default limits.
    pub(crate) fn new(target: DatabaseTarget) -> Self {
        Self {
            target,
            client_tls: None,
            upstream_tls: None,
            authenticator: Arc::new(AllowAll),
            pipeline: Arc::new(NoopPipeline),
            limits: P::Limits::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            options: P::Options::default(),
        }
    }

    /// Client-leg TLS: offered to clients (PostgreSQL's SSLRequest is
    /// answered `S`, MySQL's greeting carries CLIENT_SSL) and accepted with
    /// this acceptor.
    pub fn client_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.client_tls = Some(acceptor);
        self
    }

    /// Server-leg TLS; by default built from the target's `SSLMODE` with the
    /// system's roots.
    pub fn upstream_tls(mut self, tls: UpstreamTls) -> Self {
        self.upstream_tls = Some(tls);
        self
    }

    /// Who may open sessions; by default [`AllowAll`].
    pub fn authenticator(mut self, authenticator: Arc<dyn ClientAuthenticator>) -> Self {
        self.authenticator = authenticator;
        self
    }

    /// The hook every session's traffic passes; by default [`NoopPipeline`].
    pub fn pipeline(mut self, pipeline: Arc<dyn Pipeline>) -> Self {
        self.pipeline = pipeline;
        self
    }

    /// Codec limits (largest message or packet accepted from either side).
    pub fn limits(mut self, limits: P::Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long the startup of both legs may take.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// The proxy.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError`] when no server-leg TLS was given and the one
    /// `SSLMODE` needs cannot be built (`verify-full` without readable roots).
    pub fn build(self) -> Result<P::Proxy, TlsConfigError> {
        let upstream_tls = match self.upstream_tls {
            Some(tls) => tls,
            None => UpstreamTls::new(self.target.ssl_mode)?,
        };
        Ok(P::proxy(Settings {
            target: self.target,
            client_tls: self.client_tls,
            upstream_tls,
            authenticator: self.authenticator,
            pipeline: self.pipeline,
            limits: self.limits,
            handshake_timeout: self.handshake_timeout,
            options: self.options,
        }))
    }
}
