//! The REST API, in hoop's paths and field names.
//!
//! Every route is declared once in [`route_docs`], with its documentation; the
//! router and the OpenAPI document (`/api/openapi.json`) are both built
//! from that list, so they cannot drift apart.
//!
//! Conventions: bodies are JSON objects read field by field (400 for
//! malformed JSON, 422 naming the field for anything else wrong, unknown
//! fields and keys given twice included; names follow [`names`]), bodies
//! over [`MAX_BODY`] get 413, a missing or unknown
//! token gets 401 and a non-admin writing gets 403. Errors are
//! `{"message": "...", "field": "..."}`.
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
mod sessions;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use serde_json::{Value, json};

pub use connections::{ConnectionInput, connection_target};
pub use plugins::PLUGINS;
pub use sessions::TUNNEL_PROTOCOL;

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

    fn unauthorized() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            message: "missing or invalid token".into(),
            field: None,
        }
    }

    fn forbidden() -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            message: "administrators only".into(),
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

/// The API router over `state`.
pub fn router(state: AppState) -> Router {
    let mut router: Router<AppState> = Router::new();
    for route in routes() {
        router = router.route(route.doc.path, route.handler);
    }
    router
        .fallback(no_such_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// How long a client of the HTTPS API has for its TLS handshake. A client
/// that connects and stays silent, or sends plain HTTP and waits for an
/// answer, must not hold its task and socket for ever.
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `router` over TLS on `listener` until dropped: the API with a
/// certificate, so tokens do not cross the network in clear text.
///
/// Each connection's handshake runs on its own task (hoop-proxy's accept
/// loop, as the other listeners), so a slow, failed or plain-HTTP
/// handshake ends that connection only, never the loop. Connections speak
/// HTTP/1.1 with upgrades, as `axum::serve` does on the plain path, so the
/// `hoop connect` tunnel works inside TLS too.
pub(crate) async fn serve_https(
    listener: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: Router,
) {
    hoop_proxy::listener::serve(listener, "api", move |stream, _peer| {
        let acceptor = acceptor.clone();
        let service = hyper_util::service::TowerToHyperService::new(router.clone());
        async move {
            let tls =
                match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(error)) => {
                        tracing::info!(%error, "API TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::info!("API TLS handshake timed out");
                        return;
                    }
                };
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .with_upgrades();
            if let Err(error) = connection.await {
                tracing::debug!(%error, "API connection ended");
            }
        }
    })
    .await;
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
