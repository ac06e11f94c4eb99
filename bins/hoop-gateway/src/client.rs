//! A small HTTP/1.1 client for the gateway's API, used by the `hoop` CLI
//! and the tests. It keeps one connection open and reconnects when the
//! server closes it.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

/// The largest response body read: the API's own lists stay far below it,
/// and a misdirected URL must not make the CLI buffer without end.
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// What can go wrong talking to the API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL is not `http://HOST:PORT`.
    #[error("the API URL must look like http://127.0.0.1:8009")]
    BadUrl,
    /// The server could not be reached.
    #[error("cannot reach the API: {0}")]
    Io(#[from] std::io::Error),
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
    address: String,
    token: Option<String>,
    sender: Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl ApiClient {
    /// A client for `url` (`http://HOST:PORT`), sending `token` if given.
    ///
    /// # Errors
    ///
    /// [`ClientError::BadUrl`] for anything but a plain `http://HOST:PORT`.
    pub fn new(url: &str, token: Option<String>) -> Result<Self, ClientError> {
        let address = url
            .trim_end_matches('/')
            .strip_prefix("http://")
            .filter(|a| !a.is_empty() && !a.contains('/'))
            .ok_or(ClientError::BadUrl)?;
        Ok(Self {
            address: address.to_owned(),
            token,
            sender: Mutex::new(None),
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
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
            .header(hyper::header::HOST, &self.address);
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
        let response = sender.send_request(request).await?;
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
}
