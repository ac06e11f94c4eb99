//! A small HTTP/1.1 client for the gateway's API, used by the `hoop` CLI
//! and the tests. It keeps one connection open and reconnects when the
//! server closes it.
//!
//! `http://` and `https://` URLs both work. Over `https://` the server's
//! certificate is checked against the platform's trusted roots plus, when
//! given, a CA file (the CLI's `HOOP_TLS_CA`), since a gateway's
//! certificate is often signed by a private CA. The token goes out only
//! after the handshake succeeded.
//!
//! ```text
//!  Endpoint::new(url, ca) --connect--> ApiStream::Plain(TcpStream)
//!                                      ApiStream::Tls(TlsStream)
//!        |                                      |
//!        +-- ApiClient (hyper, requests)        +-- hoop connect (raw upgrade)
//! ```

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Mutex;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The largest response body read: the API's own lists stay far below it,
/// and a misdirected URL must not make the CLI buffer without end.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// What can go wrong talking to the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://HOST[:PORT]` or `https://HOST[:PORT]`.
    #[error("the API URL must look like http://127.0.0.1:8009 or https://gateway.example:8009")]
    BadUrl,
    /// The server could not be reached.
    #[error("cannot reach the API: {0}")]
    Io(#[from] std::io::Error),
    /// The CA file given for `https://` could not be used.
    #[error("the CA file {path}: {reason}")]
    CaFile {
        /// The file, as given.
        path: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// The server's certificate is not signed by a trusted CA, or does
    /// not name the host of the URL.
    #[error(
        "the API at {address} presented a certificate this client does not trust ({reason}); \
         set HOOP_TLS_CA to the PEM file of the CA that signed the gateway's certificate"
    )]
    Untrusted {
        /// The API's `HOST:PORT`.
        address: String,
        /// What rustls found wrong with the certificate.
        reason: String,
    },
    /// The TLS handshake failed for another reason, such as a server that
    /// speaks plain HTTP.
    #[error("TLS with the API at {address} failed: {reason} (does it serve https://?)")]
    Tls {
        /// The API's `HOST:PORT`.
        address: String,
        /// What failed.
        reason: String,
    },
    /// rustls refused the client configuration.
    #[error("TLS configuration refused: {0}")]
    TlsConfig(#[from] rustls::Error),
    /// A plain-HTTP request got an answer that is not HTTP, as from a
    /// gateway whose API speaks only TLS.
    #[error("the API at {0} did not answer in HTTP (does it serve https://?)")]
    NotHttp(String),
    /// HTTP failed.
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("bad request: {0}")]
    Request(#[from] hyper::http::Error),
    /// The response body was cut short or larger than the client accepts.
    #[error("response body cut short or too large")]
    TooLarge,
}

/// Where a gateway's API is and how to reach it: the address, and for
/// `https://` the TLS connector and the name its certificate must carry.
/// Cheap to clone, for callers that open connections of their own (`hoop
/// connect` opens one per local client).
#[derive(Clone)]
pub struct Endpoint {
    address: String,
    loopback: bool,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// A connection to the API, plain or TLS. Callers match it once and run
/// their code generically on either stream, so the plain path carries no
/// TLS cost: no box, no dispatch per read.
#[derive(Debug)]
pub enum ApiStream {
    /// `http://`.
    Plain(TcpStream),
    /// `https://`, after a successful handshake (boxed: the TLS state is
    /// large, and only this path pays for it).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Endpoint {
    /// The endpoint of `url`: `http://HOST[:PORT]` (port 80 by default) or
    /// `https://HOST[:PORT]` (443). For `https://`, the server's
    /// certificate must chain to one of the platform's trusted roots or to
    /// a certificate in `ca_file` (PEM), and name `HOST`. `ca_file` is not
    /// read for `http://`.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadUrl`] for another URL shape,
    /// [`ClientError::CaFile`] when `ca_file` cannot be read or holds no
    /// certificate.
    pub fn new(url: &str, ca_file: Option<&Path>) -> Result<Self, ClientError> {
        let url = url.trim_end_matches('/');
        let (authority, default_port, tls) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, 80, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            (rest, 443, true)
        } else {
            return Err(ClientError::BadUrl);
        };
        if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
            return Err(ClientError::BadUrl);
        }
        let (host, has_port) = split_host(authority).ok_or(ClientError::BadUrl)?;
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let address = if has_port {
            authority.to_owned()
        } else {
            format!("{authority}:{default_port}")
        };
        let tls = if tls {
            let name = ServerName::try_from(host.to_owned()).map_err(|_| ClientError::BadUrl)?;
            Some((TlsConnector::from(tls_config(ca_file)?), name))
        } else {
            None
        };
        Ok(Self {
            address,
            loopback,
            tls,
        })
    }

    /// The API's `HOST:PORT`, as connected to and sent in `Host`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Whether the URL names this host (`localhost` or a loopback
    /// address): the gateway is then on the same host as the caller.
    pub fn is_loopback(&self) -> bool {
        self.loopback
    }

    /// Whether this endpoint speaks TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Opens a connection (Nagle off: requests and the tunnel's protocol
    /// messages are small) and, for `https://`, completes the TLS
    /// handshake, verifying the server's certificate.
    ///
    /// # Errors
    ///
    /// [`ClientError::Io`] when the server cannot be reached,
    /// [`ClientError::Untrusted`] for a certificate that does not verify,
    /// [`ClientError::Tls`] for any other handshake failure.
    pub async fn connect(&self) -> Result<ApiStream, ClientError> {
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let Some((connector, name)) = &self.tls else {
            return Ok(ApiStream::Plain(stream));
        };
        match connector.connect(name.clone(), stream).await {
            Ok(tls) => Ok(ApiStream::Tls(Box::new(tls))),
            Err(error) => Err(self.handshake_error(error)),
        }
    }

    fn handshake_error(&self, error: std::io::Error) -> ClientError {
        let address = self.address.clone();
        match error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            Some(rustls::Error::InvalidCertificate(reason)) => ClientError::Untrusted {
                address,
                reason: reason.to_string(),
            },
            Some(other) => ClientError::Tls {
                address,
                reason: other.to_string(),
            },
            None => ClientError::Tls {
                address,
                reason: error.to_string(),
            },
        }
    }
}

/// The host of `HOST[:PORT]` or `[IPV6][:PORT]`, without brackets, and
/// whether a port follows; `None` when the port is not a number.
fn split_host(authority: &str) -> Option<(&str, bool)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() || port.is_some_and(|p| p.parse::<u16>().is_err()) {
        return None;
    }
    Some((host, port.is_some()))
}

/// The TLS client configuration for `https://` API URLs: the platform's
/// trusted roots (those it cannot parse are skipped, as a browser would)
/// plus every certificate in `ca_file`, on the workspace's ring provider.
///
/// # Errors
///
/// [`ClientError::CaFile`] when `ca_file` cannot be read, is not PEM, or
/// holds no usable certificate.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, ClientError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    // Errors here are unreadable or unparsable system stores; the CA file
    // may still be all this client needs, and a handshake against an
    // untrusted certificate fails with its own clear error.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca_file {
        let ca_error = |reason: String| ClientError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let mut added = 0;
        for certificate in
            CertificateDer::pem_file_iter(path).map_err(|e| ca_error(e.to_string()))?
        {
            let certificate = certificate.map_err(|e| ca_error(e.to_string()))?;
            roots
                .add(certificate)
                .map_err(|e| ca_error(e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ca_error("holds no PEM certificate".into()));
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

/// A response: status and body (JSON when it parses, else a string).
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body.
    pub body: Value,
}

/// A client of one gateway.
#[derive(Debug)]
pub struct ApiClient {
    endpoint: Endpoint,
    token: Option<String>,
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl ApiClient {
    /// A client for `url` (`http://HOST:PORT`, or `https://HOST:PORT`
    /// trusting the platform's roots only), sending `token` if given.
    ///
    /// # Errors
    ///
    /// As [`Endpoint::new`] without a CA file.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        Ok(Self::with_endpoint(Endpoint::new(url, None)?, token))
    }

    /// A client for `endpoint` (see [`Endpoint::new`] for trusting a CA
    /// of one's own), sending `token` if given.
    pub fn with_endpoint(endpoint: Endpoint, token: Option<String>) -> Self {
        Self {
            endpoint,
            token,
            sender: Mutex::new(None),
        }
    }

    /// Where this client sends its requests.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let sender = match self.endpoint.connect().await? {
            ApiStream::Plain(stream) => handshake(stream).await?,
            ApiStream::Tls(stream) => handshake(stream).await?,
        };
        Ok(sender)
    }
    /// Sends a request with an optional raw body.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the exchange fails.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        self.send_with_token(method, path, body, self.token.as_deref())
            .await
    }

    /// Like [`ApiClient::send`] with another token (or none).
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the exchange fails.
    pub async fn send_with_token(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<&str>,
    ) -> Result<Response, ClientError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, self.endpoint.address());
        if let Some(token) = token {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let mut guard = self.sender.lock().await;
        let reusable = match guard.take() {
            Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
            None => None,
        };
        let mut sender = match reusable {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) if error.is_parse() && !self.endpoint.is_tls() => {
                return Err(ClientError::NotHttp(self.endpoint.address.clone()));
            }
            Err(error) => return Err(error.into()),
        };
        *guard = Some(sender);
        drop(guard);
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|_| ClientError::TooLarge)?
            .to_bytes();
        let body = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok(Response { status, body })
    }

    /// Sends JSON.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the exchange fails.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Response, ClientError> {
        self.send(method, path, Some(body.to_string().into_bytes()))
            .await
    }

    /// A GET.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the exchange fails.
    pub async fn get(&self, path: &str) -> Result<Response, ClientError> {
        self.send(Method::GET, path, None).await
    }

    /// POSTs JSON whose answer arrives piece by piece and may be of any
    /// size (an exec's output streamed, `accept` naming the media type):
    /// the body is read as it comes, never whole. On a connection of its
    /// own, closed with the answer.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached or the exchange fails.
    pub async fn post_streaming(
        &self,
        path: &str,
        body: &Value,
        accept: &str,
    ) -> Result<StreamingResponse, ClientError> {
        let mut builder = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(hyper::header::HOST, self.endpoint.address())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .header(hyper::header::ACCEPT, accept);
        if let Some(token) = &self.token {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = builder.body(Full::new(Bytes::from(body.to_string())))?;
        let mut sender = self.connect().await?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) if error.is_parse() && !self.endpoint.is_tls() => {
                return Err(ClientError::NotHttp(self.endpoint.address.clone()));
            }
            Err(error) => return Err(error.into()),
        };
        let content_type = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        Ok(StreamingResponse {
            status: response.status(),
            content_type,
            body: response.into_body(),
        })
    }
}

/// The most of an answer [`post`] reads: webhook receivers and Slack's
/// API answer in a few hundred bytes.
const MAX_POST_ANSWER: usize = 64 * 1024;

/// POSTs `body` of `content_type` to `url` (`http://` or `https://`, with
/// a path) with `headers`, on a connection of its own, and returns the answer (its
/// body as JSON, or a string): the gateway's own outgoing calls, webhook
/// deliveries and Slack's API.
///
/// # Errors
///
/// [`ClientError::BadUrl`] for another URL shape, or when the server
/// cannot be reached or the exchange fails.
pub async fn post(
    url: &str,
    content_type: &str,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Response, ClientError> {
    let (scheme, rest) = url.split_once("://").ok_or(ClientError::BadUrl)?;
    let (authority, path) = match rest.find('/') {
        Some(slash) => rest.split_at(slash),
        None => (rest, "/"),
    };
    let endpoint = Endpoint::new(&format!("{scheme}://{authority}"), None)?;
    let mut builder = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(hyper::header::HOST, endpoint.address())
        .header(hyper::header::CONTENT_TYPE, content_type);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    let request = builder.body(Full::new(body))?;
    let mut sender = match endpoint.connect().await? {
        ApiStream::Plain(stream) => handshake(stream).await?,
        ApiStream::Tls(stream) => handshake(stream).await?,
    };
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_POST_ANSWER)
        .collect()
        .await
        .map_err(|_| ClientError::TooLarge)?
        .to_bytes();
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    Ok(Response { status, body })
}

/// An answer read as it arrives ([`ApiClient::post_streaming`]).
#[derive(Debug)]
pub struct StreamingResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `Content-Type` header, empty when absent.
    pub content_type: String,
    body: hyper::body::Incoming,
}

impl StreamingResponse {
    /// The next piece of the body, `None` at its end.
    ///
    /// # Errors
    ///
    /// When the connection fails before the body's end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, ClientError> {
        while let Some(frame) = self.body.frame().await {
            if let Ok(data) = frame?.into_data() {
                return Ok(Some(data));
            }
        }
        Ok(None)
    }

    /// The whole body as JSON (or a string when it is not JSON), for a
    /// short answer such as a refusal; at most the client's usual limit.
    ///
    /// # Errors
    ///
    /// When the body is cut short or too large.
    pub async fn json(self) -> Result<Value, ClientError> {
        let body = http_body_util::Limited::new(self.body, MAX_RESPONSE)
            .collect()
            .await
            .map_err(|_| ClientError::TooLarge)?
            .to_bytes();
        Ok(serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned())))
    }
}

/// An HTTP/1.1 connection over `io`, driven on its own task.
async fn handshake<I>(io: I) -> Result<SendRequest<Full<Bytes>>, hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_http_and_https_urls() {
        struct Case {
            url: &'static str,
            address: Option<&'static str>,
            tls: bool,
        }
        let cases = [
            Case {
                url: "http://127.0.0.1:8009",
                address: Some("127.0.0.1:8009"),
                tls: false,
            },
            Case {
                url: "http://127.0.0.1:8009/",
                address: Some("127.0.0.1:8009"),
                tls: false,
            },
            Case {
                url: "http://gw.example",
                address: Some("gw.example:80"),
                tls: false,
            },
            Case {
                url: "https://gw.example",
                address: Some("gw.example:443"),
                tls: true,
            },
            Case {
                url: "https://gw.example:8443",
                address: Some("gw.example:8443"),
                tls: true,
            },
            Case {
                url: "https://[::1]:8009",
                address: Some("[::1]:8009"),
                tls: true,
            },
            Case {
                url: "https://[::1]",
                address: Some("[::1]:443"),
                tls: true,
            },
            Case {
                url: "ftp://gw.example",
                address: None,
                tls: false,
            },
            Case {
                url: "gw.example:8009",
                address: None,
                tls: false,
            },
            Case {
                url: "http://",
                address: None,
                tls: false,
            },
            Case {
                url: "http://gw.example:80/api",
                address: None,
                tls: false,
            },
            Case {
                url: "http://user@gw.example",
                address: None,
                tls: false,
            },
            Case {
                url: "https://gw.example:port",
                address: None,
                tls: true,
            },
            Case {
                url: "https://:8009",
                address: None,
                tls: true,
            },
            Case {
                url: "https://[::1",
                address: None,
                tls: true,
            },
        ];
        for case in cases {
            match (Endpoint::new(case.url, None), case.address) {
                (Ok(endpoint), Some(address)) => {
                    assert_eq!(endpoint.address(), address, "{}", case.url);
                    assert_eq!(endpoint.is_tls(), case.tls, "{}", case.url);
                }
                (Err(ClientError::BadUrl), None) => {}
                (other, _) => panic!("{}: {other:?}", case.url),
            }
        }
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = std::env::temp_dir().join(format!("hoop-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").unwrap();
        for path in [empty, dir.join("missing.pem")] {
            let error = Endpoint::new("https://127.0.0.1:1", Some(&path)).unwrap_err();
            assert!(matches!(error, ClientError::CaFile { .. }), "{error:?}");
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
        // Plain http:// never reads it.
        assert!(Endpoint::new("http://127.0.0.1:1", Some(&dir.join("missing.pem"))).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
