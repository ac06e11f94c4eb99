//! TLS for both legs, with rustls and the ring provider (the workspace's one
//! crypto provider).
//!
//! - Client leg: [`acceptor_from_pem`] builds the acceptor a listener uses when
//!   it has a certificate.
//! - Server leg: [`UpstreamTls`] follows the connection's [`SslMode`]:
//!   `prefer` and `require` encrypt without checking the certificate (as
//!   libpq does for those modes), `verify-full` checks the chain against
//!   trusted roots and the name against `HOST`.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::connection::SslMode;
use crate::error::UpstreamTlsError;
use crate::stream::Stream;

/// A TLS configuration that could not be built. Names the problem, never
/// prints key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsConfigError {
    /// The certificate or key file could not be read.
    #[error("cannot read {what}: {source}")]
    Read {
        /// Which file (`certificate`, `private key`, `root certificates`).
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The PEM data holds no usable certificate or key.
    #[error("no usable {0} in PEM data")]
    Pem(&'static str),
    /// rustls refused the configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client-leg acceptor from a PEM certificate chain and key.
///
/// # Errors
///
/// [`TlsConfigError`] when the PEM holds no certificate or key, or rustls
/// refuses the pair.
pub fn acceptor_from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, TlsConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsConfigError::Pem("certificate"))?;
    if certs.is_empty() {
        return Err(TlsConfigError::Pem("certificate"));
    }
    let key =
        PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| TlsConfigError::Pem("private key"))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Builds the client-leg acceptor from PEM files.
///
/// # Errors
///
/// [`TlsConfigError::Read`] when a file cannot be read, otherwise as
/// [`acceptor_from_pem`].
pub fn acceptor_from_files(
    cert_path: &std::path::Path,
    key_path: &std::path::Path,
) -> Result<TlsAcceptor, TlsConfigError> {
    let cert = std::fs::read(cert_path).map_err(|source| TlsConfigError::Read {
        what: "certificate",
        source,
    })?;
    let key = std::fs::read(key_path).map_err(|source| TlsConfigError::Read {
        what: "private key",
        source,
    })?;
    acceptor_from_pem(&cert, &key)
}

/// Where `verify-full` takes its trusted roots from when none are given: the
/// file named by `SSL_CERT_FILE`, else Debian's bundle.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Server-leg TLS, decided by the connection's `SSLMODE`.
#[derive(Clone)]
pub struct UpstreamTls {
    mode: SslMode,
    connector: Option<TlsConnector>,
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl UpstreamTls {
    /// TLS per `mode`; `verify-full` trusts the system's root certificates.
    ///
    /// # Errors
    ///
    /// [`TlsConfigError`] when `verify-full` finds no readable root bundle.
    pub fn new(mode: SslMode) -> Result<Self, TlsConfigError> {
        let roots = match mode {
            SslMode::VerifyFull => {
                let path = std::env::var_os("SSL_CERT_FILE").unwrap_or_else(|| SYSTEM_ROOTS.into());
                let pem = std::fs::read(path).map_err(|source| TlsConfigError::Read {
                    what: "root certificates",
                    source,
                })?;
                Some(pem)
            }
            _ => None,
        };
        Self::with_roots_pem(mode, roots.as_deref())
    }

    /// TLS per `mode`; `verify-full` trusts the certificates in `roots_pem`
    /// (ignored by the other modes).
    ///
    /// # Errors
    ///
    /// [`TlsConfigError`] when `verify-full` is given no usable certificate.
    pub fn with_roots_pem(mode: SslMode, roots_pem: Option<&[u8]>) -> Result<Self, TlsConfigError> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?;
        let config = match mode {
            SslMode::Disable => {
                return Ok(Self {
                    mode,
                    connector: None,
                });
            }
            SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoCertificateCheck(
                    provider().signature_verification_algorithms,
                )))
                .with_no_client_auth(),
            SslMode::VerifyFull => {
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(roots_pem.unwrap_or_default()) {
                    let cert = cert.map_err(|_| TlsConfigError::Pem("root certificate"))?;
                    // A bundle may hold certificates webpki cannot use; skip
                    // those rather than refusing the whole bundle.
                    let _ = roots.add(cert);
                }
                if roots.is_empty() {
                    return Err(TlsConfigError::Pem("root certificate"));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(Self {
            mode,
            connector: Some(TlsConnector::from(Arc::new(config))),
        })
    }

    /// The mode this configuration follows.
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// The connector, unless the mode is `disable`.
    pub fn connector(&self) -> Option<&TlsConnector> {
        self.connector.as_ref()
    }

    /// The name the certificate must carry: `HOST` as a DNS name or address.
    fn server_name(host: &str) -> Option<ServerName<'static>> {
        ServerName::try_from(host.to_owned()).ok()
    }

    /// Starts TLS over `tcp` with `connector` (this configuration's),
    /// checking the server's certificate against `host` as the mode asks.
    ///
    /// # Errors
    ///
    /// Why, for the session's error: `host` is not a valid TLS name, or the
    /// handshake failed.
    pub(crate) async fn encrypt(
        connector: &TlsConnector,
        host: &str,
        tcp: TcpStream,
    ) -> Result<Stream, UpstreamTlsError> {
        let name = Self::server_name(host).ok_or(UpstreamTlsError::InvalidName)?;
        let encrypted = connector
            .connect(name, tcp)
            .await
            .map_err(UpstreamTlsError::Handshake)?;
        Ok(Stream::TlsClient(Box::new(encrypted)))
    }
}

/// `prefer` and `require` semantics: encrypt, check the handshake signature,
/// but do not check who signed the certificate.
#[derive(Debug)]
struct NoCertificateCheck(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
