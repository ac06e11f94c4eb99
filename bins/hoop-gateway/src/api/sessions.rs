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
use hoop_proxy::link::messages::SessionEnd;
use hoop_proxy::link::mux::{Inbound, StreamReceiver, StreamSender};
use serde_json::{Value, json};

use super::input::Fields;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::sessions::{self, AccessKind, RefusalReason, Refused, Request as SessionRequest};
use crate::store::{SessionFilter, SessionRecord};

/// The most exec output a JSON answer holds (it is built whole: about
/// three times this at its peak, the bytes, the text and the escaped
/// JSON). The agent is told, and sends only the whole rows that fit, with
/// `"truncated": true`; the script still runs to its end. Past it the
/// gateway reads and drops what an agent sends anyway, so a session always
/// ends. Clients that want everything ask for the output streamed
/// ([`EXEC_STREAM`]), which has no limit.
pub const MAX_EXEC_OUTPUT: usize = 16 * 1024 * 1024;

/// The media type that asks `POST /api/sessions` to stream: JSON lines,
/// `{"session_id"}` first, then `{"output": "..."}` as the rows arrive,
/// and last `{"session_id", "status", "error", "exit_code"}`.
pub const EXEC_STREAM: &str = "application/x-ndjson";

/// Output lines queued for a streaming exec's client: with the link's
/// window, what a slow client makes the gateway hold for one session.
const EXEC_LINES_BUFFERED: usize = 4;

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
            "Run a script on a connection (exec); returns the output (at most 16 MiB, then truncated at a row), status and exit code, or with Accept: application/x-ndjson streams it as JSON lines with no limit. On a connection with reviewers it answers 202 with the review it created (onetime; or jit, for connect access, with access_duration_sec and no script)",
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
        RefusalReason::ModeDisabled | RefusalReason::ReviewRequired => StatusCode::FORBIDDEN,
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
        Err(error) => {
            let message = error.to_string();
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
    let access_duration_sec = match fields.take("access_duration_sec") {
        None => None,
        Some(value) => Some(
            value
                .as_i64()
                .filter(|n| (1..=crate::reviews::MAX_ACCESS_DURATION_SEC).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "access_duration_sec",
                        format!(
                            "must be a whole number of seconds from 1 to {}",
                            crate::reviews::MAX_ACCESS_DURATION_SEC
                        ),
                    )
                })?,
        ),
    };
    let time_window = fields
        .take("time_window")
        .map(|value| crate::reviews::TimeWindow::parse(&value, "time_window"))
        .transpose()?;
    let script = match access_duration_sec {
        Some(_) => {
            if fields.has("script") {
                return Err(ApiError::invalid(
                    "script",
                    "asks for an exec; access_duration_sec asks for connect access: give one",
                ));
            }
            String::new()
        }
        None => fields.required_string("script")?,
    };
    let output = fields.string("output")?;
    fields.finish()?;
    if output
        .as_deref()
        .is_some_and(|format| format != "text" && format != "json")
    {
        return Err(ApiError::invalid("output", "must be text or json"));
    }
    if time_window.is_some() && access_duration_sec.is_none() {
        return Err(ApiError::invalid(
            "time_window",
            "limits connect access: give access_duration_sec too",
        ));
    }
    let streamed = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains(EXEC_STREAM));
    let token = bearer(&headers);
    let new = crate::reviews::NewReview {
        kind: if access_duration_sec.is_some() {
            crate::reviews::ReviewKind::Jit
        } else {
            crate::reviews::ReviewKind::OneTime
        },
        script: access_duration_sec.is_none().then(|| script.clone()),
        output: output.clone(),
        access_duration_sec,
        time_window,
    };
    if let Some(answer) = super::reviews::request(&state, &token, &connection, new).await? {
        return Ok(answer);
    }
    let opened = match sessions::open_with(
        &state,
        SessionRequest {
            token: &token,
            connection: &connection,
            kind: AccessKind::Exec,
            protocol: None,
            script: Some(script.clone()),
            output,
            client_thread_id: None,
            review: None,
        },
        (!streamed).then_some(MAX_EXEC_OUTPUT as u64),
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
    let sessions::Route::Link { sender, receiver } = opened.route else {
        return Err(ApiError::internal("exec sessions go over the link"));
    };
    let reader = ExecReader {
        state,
        id: opened.id,
        sender,
        receiver,
        ended: opened.live.end_signal(),
        live: opened.live,
        bytes_in: script.len() as u64,
        bytes_out: 0,
    };
    if streamed {
        return Ok(reader.stream());
    }
    // The reader runs on a task of its own, so the record is closed even
    // when this request is dropped (its client left); `held` tells it so,
    // and it stops the script.
    let (held, dropped) = tokio::sync::oneshot::channel::<()>();
    let answer = tokio::spawn(reader.collect(dropped))
        .await
        .map_err(ApiError::internal)?;
    drop(held);
    super::ok(&answer)
}

/// Runs an approved one-time review's script, as its requester, and
/// returns the answer `POST /api/sessions` would have given (`message`
/// when the session was refused).
pub(crate) async fn run_approved_exec(
    state: &AppState,
    review: &crate::store::ReviewRecord,
) -> Value {
    let opened = match sessions::open_with(
        state,
        SessionRequest {
            token: "",
            connection: &review.connection_name,
            kind: AccessKind::Exec,
            protocol: None,
            script: None,
            output: review.output_format.clone(),
            client_thread_id: None,
            review: Some(review),
        },
        Some(MAX_EXEC_OUTPUT as u64),
    )
    .await
    {
        Ok(opened) => opened,
        Err(refused) => {
            return json!({"message": refused.message, "status": "refused", "exit_code": 1});
        }
    };
    let sessions::Route::Link { sender, receiver } = opened.route else {
        return json!({"message": "exec sessions go over the link", "status": "failed", "exit_code": 1});
    };
    let reader = ExecReader {
        state: state.clone(),
        id: opened.id,
        sender,
        receiver,
        ended: opened.live.end_signal(),
        live: opened.live,
        bytes_in: review.input.as_deref().map_or(0, |s| s.len() as u64),
        bytes_out: 0,
    };
    // Nobody leaves: the gateway reads the output to its end.
    let (_held, dropped) = tokio::sync::oneshot::channel::<()>();
    reader.collect(dropped).await
}

/// The gateway's end of an exec session: reads the agent's output,
/// returning credit as it goes (so output of any size flows), and records
/// how the session ended, whatever happens to the HTTP client.
struct ExecReader {
    state: AppState,
    id: String,
    sender: StreamSender,
    receiver: StreamReceiver,
    /// The session among the live ones: its end signal fires when access
    /// is withdrawn ([`crate::live`]).
    live: crate::live::LiveSession,
    ended: crate::session_stream::EndSignal,
    bytes_in: u64,
    bytes_out: u64,
}

/// What the agent sent next.
enum ExecStep {
    Output(Bytes),
    End(SessionEnd),
}

impl ExecReader {
    /// The next output chunk, or how the session ended.
    async fn next(&mut self) -> ExecStep {
        let received = tokio::select! {
            received = self.receiver.recv() => Some(received),
            Ok(_) = self.ended.wait_for(Option::is_some) => None,
        };
        let Some(received) = received else {
            // Access withdrawn: closing the agent's stream ends the script
            // there.
            self.sender.close(Bytes::new()).await;
            let reason = self.live.ended().unwrap_or_default();
            return ExecStep::End(failed(&reason));
        };
        match received {
            Some(Inbound::Data(data)) => ExecStep::Output(data),
            Some(Inbound::Close(payload)) => ExecStep::End(
                serde_json::from_slice::<SessionEnd>(&payload)
                    .unwrap_or_else(|_| failed("the agent ended the session")),
            ),
            None => ExecStep::End(failed("the agent serving this connection went away")),
        }
    }

    /// Records the session's end.
    async fn finish(self, end: &SessionEnd) {
        sessions::finish(
            &self.state,
            &self.id,
            &end.status,
            end.error.clone(),
            self.bytes_in,
            self.bytes_out,
        )
        .await;
    }

    /// The client left before the end: the agent is told to stop the
    /// script, and the record says why.
    async fn abandon(self) {
        self.sender.close(Bytes::new()).await;
        let end = failed("the client left before the output was read");
        self.finish(&end).await;
    }

    /// Reads the whole output into one JSON answer, keeping at most
    /// [`MAX_EXEC_OUTPUT`] bytes of it. When the request is dropped first
    /// (`dropped` resolves) nobody reads the answer: it is `null`.
    async fn collect(mut self, mut dropped: tokio::sync::oneshot::Receiver<()>) -> Value {
        let mut collected = BytesMut::new();
        let mut cut = false;
        let end = loop {
            let step = tokio::select! {
                step = self.next() => step,
                _ = &mut dropped => {
                    self.abandon().await;
                    return Value::Null;
                }
            };
            match step {
                ExecStep::Output(data) => {
                    let room = MAX_EXEC_OUTPUT.saturating_sub(collected.len());
                    cut |= data.len() > room;
                    let kept = &data[..data.len().min(room)];
                    self.bytes_out += kept.len() as u64;
                    collected.extend_from_slice(kept);
                }
                ExecStep::End(end) => break end,
            }
        };
        let id = self.id.clone();
        self.finish(&end).await;
        json!({
            "session_id": id,
            "output": String::from_utf8_lossy(&collected),
            "truncated": cut || end.truncated,
            "status": end.status,
            "error": end.error,
            "exit_code": exit_code(&end),
        })
    }

    /// Streams the output to the client as JSON lines (see
    /// [`EXEC_STREAM`]). A slow client slows the agent and the database:
    /// the gateway holds at most [`EXEC_LINES_BUFFERED`] lines and the
    /// link's window.
    fn stream(mut self) -> Response {
        let (lines, queued) = tokio::sync::mpsc::channel::<Bytes>(EXEC_LINES_BUFFERED);
        let (watch, mut gone) = tokio::sync::oneshot::channel::<()>();
        let body = OutputLines {
            queued,
            _watch: watch,
        };
        tokio::spawn(async move {
            let first = json_line(&json!({"session_id": self.id}));
            if lines.send(first).await.is_err() {
                return self.abandon().await;
            }
            let mut text = Utf8Cut::default();
            let end = loop {
                let step = tokio::select! {
                    step = self.next() => step,
                    _ = &mut gone => return self.abandon().await,
                };
                match step {
                    ExecStep::Output(data) => {
                        let output = text.complete(&data);
                        self.bytes_out += data.len() as u64;
                        if output.is_empty() {
                            continue;
                        }
                        if lines
                            .send(json_line(&json!({ "output": output })))
                            .await
                            .is_err()
                        {
                            return self.abandon().await;
                        }
                    }
                    ExecStep::End(end) => break end,
                }
            };
            let rest = text.rest();
            if !rest.is_empty() {
                let _ = lines.send(json_line(&json!({ "output": rest }))).await;
            }
            let last = json_line(&json!({
                "session_id": self.id,
                "status": end.status,
                "error": end.error,
                "exit_code": exit_code(&end),
            }));
            let _ = lines.send(last).await;
            self.finish(&end).await;
        });
        let mut response = (StatusCode::OK, axum::body::Body::from_stream(body)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(EXEC_STREAM));
        response
    }
}

fn failed(error: &str) -> SessionEnd {
    SessionEnd {
        status: "failed".into(),
        error: Some(error.into()),
        exit_code: Some(1),
        truncated: false,
    }
}

fn exit_code(end: &SessionEnd) -> i32 {
    end.exit_code
        .unwrap_or(if end.status == "done" { 0 } else { 1 })
}

fn json_line(value: &Value) -> Bytes {
    let mut line = value.to_string();
    line.push('\n');
    Bytes::from(line)
}

/// A streaming exec's response body; dropping it (the client left, or
/// hyper is done with it) drops `_watch`, which the reader hears.
struct OutputLines {
    queued: tokio::sync::mpsc::Receiver<Bytes>,
    _watch: tokio::sync::oneshot::Sender<()>,
}

impl futures_core::Stream for OutputLines {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.queued.poll_recv(cx).map(|line| line.map(Ok))
    }
}

/// Output bytes to text, chunk by chunk: the link cuts the output anywhere,
/// so a character cut in two waits for its end (at most 3 bytes held);
/// bytes that are not UTF-8 become U+FFFD, as the JSON answer's do.
#[derive(Debug, Default)]
struct Utf8Cut {
    held: Vec<u8>,
}

impl Utf8Cut {
    /// The text of what arrived, up to the last whole character.
    fn complete(&mut self, data: &[u8]) -> String {
        let mut bytes = std::mem::take(&mut self.held);
        bytes.extend_from_slice(data);
        let whole = whole_characters(&bytes);
        self.held = bytes.split_off(whole);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// What is held at the end: an incomplete character, as U+FFFD.
    fn rest(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.held)).into_owned()
    }
}

/// The length of `bytes` without an incomplete UTF-8 sequence at its end.
fn whole_characters(bytes: &[u8]) -> usize {
    for back in 1..=bytes.len().min(3) {
        let start = bytes.len() - back;
        let lead = bytes[start];
        if lead & 0xC0 == 0x80 {
            continue;
        }
        let length = match lead {
            0xF0.. => 4,
            0xE0.. => 3,
            0xC0.. => 2,
            _ => 1,
        };
        return if back < length { start } else { bytes.len() };
    }
    bytes.len()
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

/// One session; one that ran an approved review also carries the review's
/// id, output and exit code (the requester reads them here too).
async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let session = find(&state, &caller, &id).await?;
    let mut body = session_json(&session);
    if let Some(review) = state.store.review_of_session(&session.id).await? {
        body["review_id"] = json!(review.id);
        body["output"] = json!(review.output);
        body["exit_code"] = json!(review.exit_code);
    }
    super::ok(&body)
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
