//! The REST API, in hoop's paths and field names.
//!
//! Every route is declared once in [`route_docs`], with its documentation; the
//! router and the OpenAPI document (`/api/openapi.json`) are both built
//! from that list, so they cannot drift apart.
//!
//! Conventions: bodies are JSON objects read field by field (400 for
//! malformed JSON, 422 naming the field for anything else wrong, unknown
//! fields and keys given twice included; names follow `names`), bodies
//! over [`MAX_BODY`] get 413, a missing or unknown
//! token gets 401 and a non-admin writing gets 403. Errors are
//! `{"message": "...", "field": "..."}`. Every time, in responses, recorded
//! events and query parameters (`since`, `until`), is an integer count of
//! milliseconds since the Unix epoch (UTC): one convention, so a client
//! never has to guess a field's unit.
//!
//! Served over plain HTTP, or over TLS (`serve_https`) when the gateway
//! has a certificate: the API carries people's tokens.

mod agents;
mod connections;
pub mod dlp;
mod guardrails;
pub(crate) mod input;
pub(crate) mod names;
mod openapi;
mod plugins;
mod resources;
mod reviews;
mod sessions;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use bytes::Bytes;
use serde_json::{Value, json};

pub use connections::{ConnectionInput, connection_target};
pub use plugins::PLUGINS;
pub(crate) use sessions::run_approved_exec;
pub use sessions::{EXEC_STREAM, MAX_EXEC_OUTPUT, TUNNEL_PROTOCOL};

use crate::crypto::SecretBox;
use crate::links::LinkRegistry;
use crate::store::{Store, StoreError, UserRecord};

/// The largest request body accepted. Control-plane bodies are small; this
/// stops a client from making the gateway buffer megabytes per request.
pub const MAX_BODY: usize = 256 * 1024;

/// The group whose members are administrators.
pub const ADMIN_GROUP: &str = "admin";

/// Everything a request handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Seals and opens connection credentials.
    pub secrets: Arc<SecretBox>,
    /// Live agent links.
    pub links: LinkRegistry,
    /// The agent listener address written into new agent keys.
    pub agent_address: Arc<str>,
    /// Whether the agent listener uses TLS (`hoops://` keys).
    pub agent_tls: bool,
    /// Stores agents' session events.
    pub events: crate::sessions::EventWriter,
    /// The Unix socket through which `hoop connect` on this host hands
    /// over its clients ([`crate::same_host`]), when bound.
    pub connect_socket: Option<Arc<crate::same_host::ConnectSocket>>,
    /// The sessions running through this gateway, ended when access is
    /// withdrawn.
    pub live: crate::live::LiveSessions,
    /// How long a review waits for its reviewers before it expires.
    pub review_timeout: std::time::Duration,
    /// The base URL of Slack's Web API (`SLACK_API_URL`).
    pub slack_api_url: Arc<str>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("store", &self.store)
            .field("agent_address", &self.agent_address)
            .finish_non_exhaustive()
    }
}

/// A refusal, as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
}

impl ApiError {
    /// 422: a field's value is unusable.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: format!("{field}: {reason}"),
            field: Some(field),
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            field: None,
        }
    }

    pub(crate) fn not_found(what: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: format!("{what} not found"),
            field: None,
        }
    }

    pub(crate) fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            message: message.into(),
            field: None,
        }
    }

    pub(crate) fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or invalid token".into(),
            field: None,
        }
    }

    fn forbidden() -> Self {
        Self::forbidden_because("administrators only")
    }

    /// 403 with the reason.
    pub(crate) fn forbidden_because(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: message.into(),
            field: None,
        }
    }

    pub(crate) fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "request failed");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "internal error".into(),
            field: None,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The offending field, for 422.
    pub fn field(&self) -> Option<&str> {
        self.field.as_deref()
    }

    /// The message shown to the client.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => Self::conflict("already exists or still in use"),
            other => Self::internal(other),
        }
    }
}

impl From<crate::crypto::CryptoError> for ApiError {
    fn from(error: crate::crypto::CryptoError) -> Self {
        Self::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "message": self.message });
        if let Some(field) = self.field {
            body["field"] = Value::String(field);
        }
        json_response(self.status, &body)
    }
}

/// A JSON response.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

pub(crate) type ApiResult = Result<Response, ApiError>;

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Who they are.
    pub user: UserRecord,
}

impl Caller {
    /// Whether they are an administrator.
    pub fn is_admin(&self) -> bool {
        self.user.groups.iter().any(|g| g == ADMIN_GROUP)
    }

    pub(crate) fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(ApiError::unauthorized)?;
        let user = state
            .store
            .user_for_token(&crate::crypto::hash_token(token))
            .await?
            .filter(|user| user.status == "active")
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Self { user })
    }
}

/// One documented route.
#[derive(Debug, Clone)]
pub struct RouteDoc {
    /// HTTP method.
    pub method: Method,
    /// Path, with `{param}` segments.
    pub path: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The schema of the request body, if any (a name in the document's
    /// components).
    pub request: Option<&'static str>,
    /// The schema of a success body, if any.
    pub response: Option<&'static str>,
    /// The success status.
    pub success: u16,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without a token.
    Public,
    /// Any valid token.
    User,
    /// Tokens of the `admin` group.
    Admin,
}

/// A documented route and its handler.
pub(crate) struct Route {
    pub(crate) doc: RouteDoc,
    pub(crate) handler: MethodRouter<AppState>,
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn route(
    method: Method,
    path: &'static str,
    summary: &'static str,
    access: Access,
    request: Option<&'static str>,
    response: Option<&'static str>,
    success: u16,
    handler: MethodRouter<AppState>,
) -> Route {
    Route {
        doc: RouteDoc {
            method,
            path,
            summary,
            access,
            request,
            response,
            success,
        },
        handler,
    }
}

/// Every route of the API.
pub(crate) fn routes() -> Vec<Route> {
    let mut all = Vec::new();
    all.extend(openapi::routes());
    all.extend(agents::routes());
    all.extend(resources::routes());
    all.extend(connections::routes());
    all.extend(guardrails::routes());
    all.extend(plugins::routes());
    all.extend(users::routes());
    all.extend(sessions::routes());
    all.extend(reviews::routes());
    all
}

/// The documentation of every route.
pub fn route_docs() -> Vec<RouteDoc> {
    routes().into_iter().map(|r| r.doc).collect()
}

/// The OpenAPI document, generated from [`route_docs`].
pub fn openapi_document() -> Value {
    openapi::document(&route_docs())
}

async fn no_such_route() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({ "message": "no such route" }),
    )
}

/// After every change that succeeded, live sessions are checked again
/// ([`crate::live`]): a change (a token revoked, a user deactivated, an
/// `access_control` list, a connection's access mode) may have withdrawn
/// the access one was opened with. Creations grant, never withdraw.
async fn revalidate_after_changes(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let changes = matches!(
        *request.method(),
        Method::PUT | Method::PATCH | Method::DELETE
    );
    let response = next.run(request).await;
    if changes && response.status().is_success() {
        state.live.nudge();
    }
    response
}

/// The API router over `state`; each request's body has `body_timeout`
/// to arrive.
pub fn router(state: AppState, body_timeout: std::time::Duration) -> Router {
    let mut router: Router<AppState> = Router::new();
    for route in routes() {
        router = router.route(route.doc.path, route.handler);
    }
    router
        .fallback(no_such_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            revalidate_after_changes,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(move |request, next| {
            body_deadline(body_timeout, request, next)
        }))
        .with_state(state)
}

/// How long a client of the HTTPS API has for its TLS handshake. A client
/// that connects and stays silent, or sends plain HTTP and waits for an
/// answer, must not hold its task and socket for ever.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `router` on `listener` until dropped, over TLS when `tls` is
/// set (the API with a certificate, so tokens do not cross the network
/// in clear text).
///
/// Each connection runs on its own task (hoop-proxy's accept loop, as the
/// other listeners), at most `limits.max_connections` at once (a tunnel
/// counts while it lasts); past that, a client gets 503 and the others go
/// on. A slow, failed or plain-HTTP handshake ends that connection only.
/// Connections speak HTTP/1.1 with upgrades, so the `hoop connect` tunnel
/// works inside TLS too. A request's head must arrive within
/// `limits.api_idle_timeout` of the connection opening or of the previous
/// response (hyper's header timeout, which is also what closes an idle
/// keep-alive connection), and its body within the same time of its head
/// ([`DeadlineBody`]).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: crate::listeners::Limits,
) {
    let refuse_tls = tls.clone();
    hoop_proxy::listener::serve_limited(
        listener,
        "api",
        limits.max_connections,
        move |stream, _peer| {
            let tls = tls.clone();
            let service = hyper_util::service::TowerToHyperService::new(router.clone());
            async move {
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(limits.api_idle_timeout);
                let served = match tls {
                    None => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        http.serve_connection(io, service).with_upgrades().await
                    }
                    Some(acceptor) => {
                        let Some(tls) = accept_tls(&acceptor, stream).await else {
                            return;
                        };
                        let io = hyper_util::rt::TokioIo::new(tls);
                        http.serve_connection(io, service).with_upgrades().await
                    }
                };
                if let Err(error) = served {
                    tracing::debug!(%error, "API connection ended");
                }
            }
        },
        move |stream, _peer| {
            let tls = refuse_tls.clone();
            let limit = limits.max_connections;
            async move {
                let body = json!({"message": crate::listeners::at_capacity(limit)}).to_string();
                let response = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                match tls {
                    None => {
                        let mut stream = stream;
                        crate::listeners::say_and_close(&mut stream, response.as_bytes()).await;
                    }
                    Some(acceptor) => {
                        if let Some(mut tls) = accept_tls(&acceptor, stream).await {
                            crate::listeners::say_and_close(&mut tls, response.as_bytes()).await;
                        }
                    }
                }
            }
        },
    )
    .await;
}

async fn accept_tls(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
) -> Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(error)) => {
            tracing::info!(%error, "API TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!("API TLS handshake timed out");
            None
        }
    }
}

/// A request body that must arrive by a deadline: without one, a client
/// that sends a head announcing a body and then too little of it holds
/// its connection and handler for ever (hyper's header timeout ends with
/// the head). Past the deadline the body fails, and [`body_deadline`]
/// answers 408 in place of whatever the handler made of the failure.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    expired: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl hyper::body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.expired
                    .store(true, std::sync::atomic::Ordering::Relaxed);
                Poll::Ready(Some(Err(axum::Error::new(std::io::Error::from(
                    std::io::ErrorKind::TimedOut,
                )))))
            }
            ready => ready,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Gives each request's body `timeout` from now to arrive (see
/// [`DeadlineBody`]); a request whose body missed it gets 408 and its
/// connection is closed (its unread body makes it unusable).
async fn body_deadline(
    timeout: std::time::Duration,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let expired = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Box::pin(tokio::time::sleep(timeout));
    let request = request.map(|inner| {
        axum::body::Body::new(DeadlineBody {
            inner,
            deadline,
            expired: std::sync::Arc::clone(&expired),
        })
    });
    let response = next.run(request).await;
    if !expired.load(std::sync::atomic::Ordering::Relaxed) {
        return response;
    }
    let mut response = json_response(
        StatusCode::REQUEST_TIMEOUT,
        &json!({"message": "the request body did not arrive in time"}),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A handler helper: 201 with a JSON body.
pub(crate) fn created(body: &Value) -> ApiResult {
    Ok(json_response(StatusCode::CREATED, body))
}

/// A handler helper: 200 with a JSON body.
pub(crate) fn ok(body: &Value) -> ApiResult {
    Ok(json_response(StatusCode::OK, body))
}

/// A handler helper: 204.
pub(crate) fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Refuses query parameters other than `allowed`.
pub(crate) fn check_query(
    query: &std::collections::HashMap<String, String>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match query.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(unknown) => Err(ApiError::invalid(
            unknown.as_str(),
            "unknown query parameter",
        )),
        None => Ok(()),
    }
}

/// Parses a `POST /api/connections` body.
///
/// # Errors
///
/// 400 or 422 as the API would answer.
pub fn parse_new_connection(body: &[u8]) -> Result<ConnectionInput, ApiError> {
    connections::parse_new(body)
}

pub(crate) use agents::register as register_agent;
pub(crate) use connections::{
    access_rules, effective_agent, resources_by_name, stored_input, targets_for_agent,
    upsert as upsert_connection, visible,
};
pub(crate) use users::issue_token as issue_admin_token;

#[cfg(test)]
pub(crate) mod tests;
