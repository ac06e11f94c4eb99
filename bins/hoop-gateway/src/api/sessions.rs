//! Sessions over the API: the tunnel `hoop connect` uses, exec, and the
//! session records.
//!
//! The tunnel is an HTTP/1.1 upgrade: `POST /api/connections/{name}/tunnel`
//! with the person's token and `Upgrade: hoop-session` answers
//! `101 Switching Protocols` once every check passed, and the connection
//! then carries the native client's bytes to the agent's driver, whatever
//! the protocol.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use hoop_agent::messages::SessionEnd;
use hoop_agent::mux::Inbound;
use serde_json::{Value, json};

use super::input::Fields;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::sessions::{self, AccessKind, RefusalReason, Refused, Request as SessionRequest};
use crate::store::{SessionFilter, SessionRecord};

/// The most exec output returned; the rest is cut off (and says so), so a
/// huge result cannot exhaust the gateway's memory.
const MAX_EXEC_OUTPUT: usize = 16 * 1024 * 1024;

/// The most sessions one list returns.
const LIST_LIMIT: i64 = 1000;

/// The `Upgrade` protocol name of the tunnel.
pub const TUNNEL_PROTOCOL: &str = "hoop-session";

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/connections/{name_or_id}/tunnel",
            "Open a native-protocol session (HTTP upgrade to hoop-session), as hoop connect does",
            Access::User,
            None,
            None,
            101,
            post(tunnel),
        ),
        route(
            Method::POST,
            "/api/sessions",
            "Run a script on a connection (exec); returns the output, status and exit code",
            Access::User,
            Some("ExecRequest"),
            Some("ExecResult"),
            200,
            post(exec),
        ),
        route(
            Method::GET,
            "/api/sessions",
            "List sessions, newest first; filter with ?connection=&user=&status=&since=&until= (ms)",
            Access::User,
            None,
            Some("Session"),
            200,
            get(list),
        ),
        route(
            Method::GET,
            "/api/sessions/{id}",
            "One session",
            Access::User,
            None,
            Some("Session"),
            200,
            get(show),
        ),
        route(
            Method::GET,
            "/api/sessions/{id}/events",
            "A session's events as JSON lines",
            Access::User,
            None,
            None,
            200,
            get(events),
        ),
    ]
}

fn refusal_status(reason: RefusalReason) -> StatusCode {
    match reason {
        RefusalReason::Token => StatusCode::UNAUTHORIZED,
        RefusalReason::NotFound => StatusCode::NOT_FOUND,
        RefusalReason::Protocol => StatusCode::UNPROCESSABLE_ENTITY,
        RefusalReason::ModeDisabled => StatusCode::FORBIDDEN,
        RefusalReason::Offline => StatusCode::SERVICE_UNAVAILABLE,
        RefusalReason::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refused_response(refused: &Refused) -> Response {
    super::json_response(
        refusal_status(refused.reason),
        &json!({"message": refused.message}),
    )
}

fn bearer(headers: &HeaderMap) -> String {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .unwrap_or_default()
}

async fn tunnel(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
    mut request: Request,
) -> Response {
    let wants_upgrade = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(TUNNEL_PROTOCOL));
    if !wants_upgrade {
        return ApiError::bad_request(format!("this route needs Upgrade: {TUNNEL_PROTOCOL}"))
            .into_response();
    }
    let token = bearer(request.headers());
    let opened = match sessions::open(&state, SessionRequest::connect(&token, &name)).await {
        Ok(opened) => opened,
        Err(refused) => return refused_response(&refused),
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let id = opened.id.clone();
    let ready = match opened.ready(&state).await {
        Ok(ready) => ready,
        Err(message) => {
            return super::json_response(StatusCode::BAD_GATEWAY, &json!({"message": message}));
        }
    };
    tokio::spawn(async move {
        match upgrade.await {
            Ok(upgraded) => {
                ready
                    .serve(&state, &id, hyper_util::rt::TokioIo::new(upgraded))
                    .await;
            }
            Err(error) => ready.abandon(&state, &id, error.to_string()).await,
        }
    });
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, HeaderValue::from_static(TUNNEL_PROTOCOL));
    response
}

async fn exec(
    State(state): State<AppState>,
    _caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let mut fields = Fields::parse(&body)?;
    let connection = fields.required_string("connection")?;
    let script = fields.required_string("script")?;
    let output = fields.string("output")?;
    fields.finish()?;
    if output
        .as_deref()
        .is_some_and(|format| format != "text" && format != "json")
    {
        return Err(ApiError::invalid("output", "must be text or json"));
    }
    let token = bearer(&headers);
    let opened = match sessions::open(
        &state,
        SessionRequest {
            token: &token,
            connection: &connection,
            kind: AccessKind::Exec,
            protocol: None,
            script: Some(script.clone()),
            output,
            client_thread_id: None,
        },
    )
    .await
    {
        Ok(opened) => opened,
        Err(refused) => {
            return Ok(super::json_response(
                refusal_status(refused.reason),
                &json!({"message": refused.message, "status": "refused", "exit_code": 1}),
            ));
        }
    };
    let sessions::Route::Link {
        mut receiver,
        sender,
    } = opened.route
    else {
        return Err(ApiError::internal("exec sessions go over the link"));
    };
    let mut collected = BytesMut::new();
    let mut truncated = false;
    let mut ended = opened.live.end_signal();
    let end = loop {
        let received = tokio::select! {
            received = receiver.recv() => Some(received),
            Ok(_) = ended.wait_for(Option::is_some) => None,
        };
        let Some(received) = received else {
            // Access withdrawn ([`crate::live`]): closing the agent's
            // stream ends the script there.
            sender.close(Bytes::new()).await;
            break SessionEnd {
                status: "failed".into(),
                error: opened.live.ended().map(|reason| reason.to_string()),
                exit_code: Some(1),
            };
        };
        match received {
            Some(Inbound::Data(data)) => {
                let room = MAX_EXEC_OUTPUT.saturating_sub(collected.len());
                truncated |= data.len() > room;
                collected.extend_from_slice(&data[..data.len().min(room)]);
            }
            Some(Inbound::Close(payload)) => {
                break serde_json::from_slice::<SessionEnd>(&payload).unwrap_or(SessionEnd {
                    status: "failed".into(),
                    error: Some("the agent ended the session".into()),
                    exit_code: Some(1),
                });
            }
            None => {
                break SessionEnd {
                    status: "failed".into(),
                    error: Some("the agent serving this connection went away".into()),
                    exit_code: Some(1),
                };
            }
        }
    };
    sessions::finish(
        &state,
        &opened.id,
        &end.status,
        end.error.clone(),
        script.len() as u64,
        collected.len() as u64,
    )
    .await;
    super::ok(&json!({
        "session_id": opened.id,
        "output": String::from_utf8_lossy(&collected),
        "truncated": truncated,
        "status": end.status,
        "error": end.error,
        "exit_code": end.exit_code.unwrap_or(if end.status == "done" { 0 } else { 1 }),
    }))
}

fn session_json(session: &SessionRecord) -> Value {
    json!({
        "id": session.id,
        "user": session.user_email,
        "user_id": session.user_id,
        "connection": session.connection_name,
        "connection_id": session.connection_id,
        "access_mode": session.access_mode,
        "protocol": session.protocol,
        "status": session.status,
        "error": session.error,
        "started_at": session.started_at,
        "ended_at": session.ended_at,
        "bytes_in": session.bytes_in,
        "bytes_out": session.bytes_out,
    })
}

/// Administrators see every session; others their own.
fn may_see(caller: &Caller, session: &SessionRecord) -> bool {
    caller.is_admin() || session.user_id.as_deref() == Some(caller.user.id.as_str())
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    super::check_query(&query, &["connection", "user", "status", "since", "until"])?;
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        query
            .get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(name, "must be milliseconds since the epoch"))
            })
            .transpose()
    };
    let filter = SessionFilter {
        connection: query.get("connection").cloned(),
        user: if caller.is_admin() {
            query.get("user").cloned()
        } else {
            Some(caller.user.email.clone())
        },
        status: query.get("status").cloned(),
        since: time("since")?,
        until: time("until")?,
    };
    let sessions = state.store.list_sessions(&filter, LIST_LIMIT).await?;
    super::ok(&Value::Array(
        sessions
            .iter()
            .filter(|s| may_see(&caller, s))
            .map(session_json)
            .collect(),
    ))
}

async fn find(state: &AppState, caller: &Caller, id: &str) -> Result<SessionRecord, ApiError> {
    state
        .store
        .find_session(id)
        .await?
        .filter(|s| may_see(caller, s))
        .ok_or_else(|| ApiError::not_found("session"))
}

async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    super::ok(&session_json(&find(&state, &caller, &id).await?))
}

/// Event batches read from the store per page of the events stream.
const EVENT_PAGE: i64 = 64;

/// Pages of the events stream waiting for the client; with [`EVENT_PAGE`]
/// batches of at most 64 events each, this bounds what one request holds.
const EVENT_PAGES_BUFFERED: usize = 2;

async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    let session = find(&state, &caller, &id).await?;
    // The first page is read here, so a store failure is still an error
    // status; the rest streams, page by page, while the client reads.
    let first = state
        .store
        .session_event_page(&session.id, -1, EVENT_PAGE)
        .await?;
    let (mut sender, body) =
        http_body_util::channel::Channel::<Bytes, std::io::Error>::new(EVENT_PAGES_BUFFERED);
    tokio::spawn(async move {
        let mut page = first;
        loop {
            let Some(&(last, _)) = page.last() else {
                return;
            };
            let full = page.len() as i64 == EVENT_PAGE;
            let mut chunk = String::new();
            for (_, events) in page {
                chunk.push_str(&events);
                chunk.push('\n');
            }
            if sender.send_data(Bytes::from(chunk)).await.is_err() || !full {
                return;
            }
            page = match state
                .store
                .session_event_page(&session.id, last, EVENT_PAGE)
                .await
            {
                Ok(page) => page,
                Err(error) => {
                    tracing::error!(session = %session.id, %error, "reading session events failed");
                    sender.abort(std::io::Error::other("the store failed"));
                    return;
                }
            };
        }
    });
    let mut response = (StatusCode::OK, axum::body::Body::new(body)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    Ok(response)
}
