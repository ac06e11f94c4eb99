//! The gateway's API as the CLI uses it: errors a person can act on. A
//! gateway that cannot be reached is named by its URL; a refusal shows the
//! server's message, never its JSON body.

use anyhow::anyhow;
use hoop_gateway::client::{ApiClient, ClientError, Response, StreamingResponse};
use hyper::{Method, StatusCode};
use serde_json::Value;

use crate::login;

/// A client of the gateway named by the environment or `hoop login`.
#[derive(Debug)]
pub(crate) struct Api {
    client: ApiClient,
    url: String,
}

impl Api {
    /// The API from `HOOP_API_URL` and `HOOP_TOKEN`, else the saved login.
    ///
    /// # Errors
    ///
    /// No token, or an unusable URL or CA file.
    pub(crate) fn from_login() -> anyhow::Result<Self> {
        let (url, token) = login::settings()?;
        let client = ApiClient::with_endpoint(login::endpoint(&url)?, Some(token));
        Ok(Self { client, url })
    }

    /// Sends a request and returns the response whatever its status.
    ///
    /// # Errors
    ///
    /// When the gateway cannot be reached or does not answer in HTTP.
    pub(crate) async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Response> {
        let body = body.map(|b| b.to_string().into_bytes());
        self.client
            .send(method, path, body)
            .await
            .map_err(|error| unreachable(&self.url, error))
    }

    /// Posts `body` asking for an answer of type `accept`, read as it
    /// arrives.
    ///
    /// # Errors
    ///
    /// When the gateway cannot be reached or does not answer in HTTP.
    pub(crate) async fn post_streaming(
        &self,
        path: &str,
        body: &Value,
        accept: &str,
    ) -> anyhow::Result<StreamingResponse> {
        self.client
            .post_streaming(path, body, accept)
            .await
            .map_err(|error| unreachable(&self.url, error))
    }

    /// Sends a request; a status other than 2xx is an error carrying the
    /// server's message. Returns the body (`null` for 204).
    ///
    /// # Errors
    ///
    /// As [`Api::send`], and the server's refusal.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<Value> {
        let response = self.send(method, path, body).await?;
        if response.status.is_success() {
            return Ok(if response.status == StatusCode::NO_CONTENT {
                Value::Null
            } else {
                response.body
            });
        }
        Err(refusal(&response))
    }

    /// A GET that must succeed.
    ///
    /// # Errors
    ///
    /// As [`Api::call`].
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// A GET of something that may not exist: `None` on 404.
    ///
    /// # Errors
    ///
    /// As [`Api::call`], 404 aside.
    pub(crate) async fn find(&self, path: &str) -> anyhow::Result<Option<Value>> {
        let response = self.send(Method::GET, path, None).await?;
        match response.status {
            StatusCode::NOT_FOUND => Ok(None),
            status if status.is_success() => Ok(Some(response.body)),
            _ => Err(refusal(&response)),
        }
    }
}

/// The gateway's reason for a refusal: its `message`, with what to do
/// about a token it does not accept.
pub(crate) fn refusal(response: &Response) -> anyhow::Error {
    let message = message(&response.body).unwrap_or_else(|| {
        response
            .status
            .canonical_reason()
            .unwrap_or("refused")
            .to_lowercase()
    });
    match response.status {
        StatusCode::UNAUTHORIZED => {
            anyhow!("the gateway refused the token ({message}): set HOOP_TOKEN or run `hoop login`")
        }
        StatusCode::FORBIDDEN => anyhow!("{message} (the token is not an administrator's)"),
        _ => anyhow!("{message}"),
    }
}

/// The `message` of an API error body, or a short text body.
pub(crate) fn message(body: &Value) -> Option<String> {
    match body {
        Value::Object(map) => map
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_owned),
        Value::String(text) if !text.trim().is_empty() => {
            Some(text.trim().chars().take(200).collect())
        }
        _ => None,
    }
}

/// A transport failure, naming the URL it was trying.
pub(crate) fn unreachable(url: &str, error: ClientError) -> anyhow::Error {
    match error {
        ClientError::Io(io) => anyhow!(
            "cannot reach the gateway at {url} ({io}); is it running? (`hoop up` starts one; \
             HOOP_API_URL or `hoop login --api-url` names another)"
        ),
        other => anyhow!(other),
    }
}
