//! Native client listeners on the gateway: a PostgreSQL client connects
//! with the connection's name as its user name and the person's access
//! token as its password.
//!
//! ```text
//!  psql                      gateway                              agent
//!   | SSLRequest ------------> |                                     |
//!   | <------------ 'S' | 'N' -|  'S' with a certificate             |
//!   | <=== TLS handshake ====> |  (then everything below over TLS)   |
//!   | StartupMessage --------> |  (user = connection name)           |
//!   | <- AuthCleartextPassword |                                     |
//!   | PasswordMessage(token) > |  token, access, mode, agent online  |
//!   |                          | -- OPEN, DATA(StartupMessage) ----> | PostgresProxy (AllowAll)
//!   | <======================= relay (DATA frames) ================> | --> database
//! ```
//!
//! The gateway only reads the startup exchange; everything after it is
//! relayed as bytes to the agent, where the protocol driver applies the
//! connection's policy. Refusals reach the client as an ErrorResponse. For
//! the agent `hoop up` embeds, the driver runs here instead, on the client's
//! stream with the startup replayed to it ([`crate::in_place`]).
//!
//! With a certificate, the client's stream is TLS from the handshake on,
//! for both routes; a plain-text client off loopback is refused after its
//! StartupMessage, before it is asked for the token
//! ([`crate::client_tls`]).

use std::net::IpAddr;

use bytes::{Bytes, BytesMut};
use hoop_proxy::link::mux::{PumpEnd, pump};
use hoop_proxy::stream::Stream;
use hoop_wire::postgres::{
    Authentication, BackendMessage, CancelRequest, FrontendDecoder, FrontendMessage, Limits, Notice,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::api::AppState;
use crate::client_tls;
use crate::in_place;
use crate::links::LinkRegistry;
use crate::listeners;
use crate::session_stream::{Farewell, Protocol, SessionStream, Start};
use crate::sessions::{self, AccessKind, RefusalReason, Request, Route};

/// The answer to SSLRequest that starts the TLS handshake.
const ACCEPT_TLS: &[u8] = b"S";
/// The answer to SSLRequest or GSSENCRequest that declines it; the client
/// continues in plain text or gives up, as its sslmode says.
const DECLINE: &[u8] = b"N";
/// SQLSTATE protocol_violation.
const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE too_many_connections, PostgreSQL's own answer when full.
const TOO_MANY_CONNECTIONS: &str = "53300";

/// Accepts PostgreSQL clients until the task is dropped, at most
/// `limits.max_connections` at once, each with `limits.login_timeout` to
/// finish its startup; with `tls`, offers TLS to each.
pub(crate) async fn serve_postgres(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: AppState,
    limits: listeners::Limits,
) {
    let refuse_tls = tls.clone();
    let links = state.links.clone();
    hoop_proxy::listener::serve_limited(
        listener,
        "postgres",
        limits.max_connections,
        |stream, peer| {
            let state = state.clone();
            let tls = tls.clone();
            async move {
                let client = postgres_client(stream, peer.ip(), tls.as_ref(), &state, limits);
                if let Err(error) = client.await {
                    tracing::info!(%error, "postgres client ended");
                }
            }
        },
        move |stream, _peer| {
            let tls = refuse_tls.clone();
            let links = links.clone();
            async move { refuse(stream, tls.as_ref(), &links, limits.max_connections).await }
        },
    )
    .await;
}

/// A client past the listener's cap: its opening messages are read as a
/// session's would be (TLS included, so a client that requires it still
/// reads why), then it gets FATAL 53300, as from a full PostgreSQL. A
/// cancel request is still forwarded: it holds no connection.
async fn refuse(tcp: TcpStream, tls: Option<&TlsAcceptor>, links: &LinkRegistry, limit: usize) {
    let mut decoder = FrontendDecoder::new(Limits::default());
    let mut buffer = BytesMut::new();
    match open(tcp, tls, &mut decoder, &mut buffer).await {
        Ok((mut stream, Opening::Startup { .. })) => {
            let mut out = BytesMut::new();
            let notice = Notice::error(
                "FATAL",
                TOO_MANY_CONNECTIONS,
                &listeners::at_capacity(limit),
            );
            BackendMessage::ErrorResponse(notice).encode(&mut out);
            listeners::say_and_close(&mut stream, &out).await;
        }
        Ok((_, Opening::Cancel(request))) => forward_cancel(request, links).await,
        Err(_) => {}
    }
}

/// Cancel keys are the drivers': those serving in this process (`hoop
/// up`) share one registry; a session behind a separate agent has its key
/// in that agent's process, and the request names no session, so every
/// linked agent is asked.
async fn forward_cancel(request: CancelRequest, links: &LinkRegistry) {
    let frame = hoop_proxy::agent::cancel_frame(&request);
    if !hoop_proxy::agent::cancel(request).await {
        links.broadcast(&frame);
    }
}

/// Why a client's startup failed before a session existed.
#[derive(Debug, thiserror::Error)]
enum StartupError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("protocol: {0}")]
    Decode(#[from] hoop_wire::DecodeError),
    #[error("the client closed during the startup")]
    Closed,
    #[error("the startup took too long")]
    Timeout,
    #[error("unexpected message during the startup")]
    Unexpected,
    #[error("refused: {0}")]
    Refused(&'static str),
}

struct Startup {
    /// The StartupMessage as the client sent it.
    bytes: Bytes,
    connection: String,
    token: String,
}

/// What the opening messages asked for.
enum Opening {
    /// A StartupMessage: its bytes and user name (the connection's name).
    Startup { bytes: Bytes, connection: String },
    /// A cancel request for a session whose driver handed out its key.
    Cancel(CancelRequest),
}

async fn next_message(
    stream: &mut (impl AsyncRead + Unpin),
    decoder: &mut FrontendDecoder,
    buffer: &mut BytesMut,
) -> Result<(FrontendMessage, Bytes), StartupError> {
    loop {
        if let Some(frame) = decoder.decode_frame(buffer)? {
            let message = FrontendMessage::parse(&frame)?;
            return Ok((message, frame.bytes));
        }
        if stream.read_buf(buffer).await? == 0 {
            return Err(StartupError::Closed);
        }
    }
}

async fn send(stream: &mut (impl AsyncWrite + Unpin), bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    // A TLS stream may hold the record until flushed.
    stream.flush().await
}

/// Reads the client's opening messages up to its StartupMessage, upgrading
/// to TLS when the client asks and `tls` is set. A client that breaks the
/// TLS negotiation is told why and refused.
async fn open(
    tcp: TcpStream,
    tls: Option<&TlsAcceptor>,
    decoder: &mut FrontendDecoder,
    buffer: &mut BytesMut,
) -> Result<(Stream, Opening), StartupError> {
    let mut stream = Stream::Plain(tcp);
    loop {
        let refusal = match next_message(&mut stream, decoder, buffer).await? {
            // Bytes sent after the request but before our answer would be
            // taken as if they had come over TLS (CVE-2021-23222).
            (FrontendMessage::SslRequest | FrontendMessage::GssEncRequest, _)
                if !buffer.is_empty() =>
            {
                "data arrived before the answer to the encryption request"
            }
            (FrontendMessage::SslRequest, _) if stream.is_tls() => {
                "SSLRequest on a connection already encrypted"
            }
            (FrontendMessage::SslRequest, _) => {
                stream = match (tls, stream) {
                    (Some(acceptor), Stream::Plain(mut tcp)) => {
                        send(&mut tcp, ACCEPT_TLS).await?;
                        let encrypted = acceptor.accept(tcp).await?;
                        // The startup begins afresh inside TLS.
                        *decoder = FrontendDecoder::new(Limits::default());
                        Stream::TlsServer(Box::new(encrypted))
                    }
                    (_, mut unchanged) => {
                        send(&mut unchanged, DECLINE).await?;
                        unchanged
                    }
                };
                continue;
            }
            (FrontendMessage::GssEncRequest, _) => {
                send(&mut stream, DECLINE).await?;
                continue;
            }
            (FrontendMessage::CancelRequest(request), _) => {
                return Ok((stream, Opening::Cancel(request)));
            }
            (FrontendMessage::Startup(startup), bytes) => {
                let connection = startup
                    .param(b"user")
                    .map(|u| String::from_utf8_lossy(u).into_owned())
                    .unwrap_or_default();
                return Ok((stream, Opening::Startup { bytes, connection }));
            }
            _ => return Err(StartupError::Unexpected),
        };
        send_fatal(&mut stream, PROTOCOL_VIOLATION, refusal).await;
        return Err(StartupError::Refused(refusal));
    }
}

/// Reads the startup exchange: the opening messages and, unless the client
/// must use TLS and did not, the password (the token). `None` when there is
/// no session to open (a cancel request, or a refused plain-text client,
/// who was told why).
async fn read_startup(
    tcp: TcpStream,
    peer: IpAddr,
    tls: Option<&TlsAcceptor>,
    buffer: &mut BytesMut,
    links: &LinkRegistry,
) -> Result<Option<(Stream, Startup)>, StartupError> {
    let mut decoder = FrontendDecoder::new(Limits::default());
    let (mut stream, opening) = open(tcp, tls, &mut decoder, buffer).await?;
    let (bytes, connection) = match opening {
        Opening::Startup { bytes, connection } => (bytes, connection),
        Opening::Cancel(request) => {
            forward_cancel(request, links).await;
            return Ok(None);
        }
    };
    if client_tls::refuses_plain_text(tls.is_some(), stream.is_tls(), peer) {
        tracing::info!(%peer, "postgres client refused: plain text off loopback");
        send_fatal(&mut stream, "28000", client_tls::POSTGRES_REFUSAL).await;
        return Ok(None);
    }
    let mut out = BytesMut::new();
    BackendMessage::Authentication(Authentication::CleartextPassword).encode(&mut out);
    send(&mut stream, &out).await?;
    let token = match next_message(&mut stream, &mut decoder, buffer).await? {
        (FrontendMessage::PasswordMessage(response), _) => {
            String::from_utf8_lossy(&response.read_password()?).into_owned()
        }
        _ => return Err(StartupError::Unexpected),
    };
    Ok(Some((
        stream,
        Startup {
            bytes,
            connection,
            token,
        },
    )))
}

/// Sends a FATAL ErrorResponse; the client shows `message`.
async fn send_fatal(stream: &mut (impl AsyncWrite + Unpin), code: &str, message: &str) {
    let mut out = BytesMut::new();
    BackendMessage::ErrorResponse(Notice::error("FATAL", code, message)).encode(&mut out);
    let _ = send(stream, &out).await;
    let _ = stream.shutdown().await;
}

fn sqlstate(reason: RefusalReason) -> &'static str {
    match reason {
        RefusalReason::Token => "28P01",
        RefusalReason::NotFound | RefusalReason::Protocol => "28000",
        RefusalReason::ModeDisabled | RefusalReason::ReviewRequired => "42501",
        RefusalReason::Offline => "08001",
        RefusalReason::Internal => "XX000",
    }
}

async fn postgres_client(
    tcp: TcpStream,
    peer: IpAddr,
    tls: Option<&TlsAcceptor>,
    state: &AppState,
    limits: listeners::Limits,
) -> Result<(), StartupError> {
    let mut buffer = BytesMut::with_capacity(1024);
    let startup = tokio::time::timeout(
        limits.login_timeout,
        read_startup(tcp, peer, tls, &mut buffer, &state.links),
    )
    .await
    .map_err(|_| StartupError::Timeout)??;
    let Some((mut stream, startup)) = startup else {
        return Ok(());
    };
    let request = Request {
        token: &startup.token,
        connection: &startup.connection,
        kind: AccessKind::Connect,
        protocol: Some("postgres"),
        script: None,
        output: None,
        client_thread_id: None,
        review: None,
    };
    let opened = match sessions::open(state, request).await {
        Ok(opened) => opened,
        Err(refused) => {
            send_fatal(&mut stream, sqlstate(refused.reason), &refused.message).await;
            return Ok(());
        }
    };
    let mut first = BytesMut::from(startup.bytes.as_ref());
    first.extend_from_slice(&buffer);
    // From here the driver speaks to the client: watched, so the client
    // can be told why in its protocol when the session must end.
    let signal = Some(opened.live.end_signal());
    let mut stream = SessionStream::new(stream, Protocol::Postgres, Start::LoggedIn, signal);
    let (sender, receiver) = match opened.route {
        Route::Link { sender, receiver } => (sender, receiver),
        Route::InPlace(open) => {
            let session = match in_place::prepare(state, &open) {
                Ok(session) => session,
                Err(error) => {
                    let message = error.to_string();
                    send_fatal(&mut stream, "08001", &message).await;
                    sessions::finish(state, &opened.id, "failed", Some(message), 0, 0).await;
                    return Ok(());
                }
            };
            let client = in_place::Replay::new(first.freeze(), stream);
            let served = in_place::serve(session, client).await;
            let (status, error) = served.outcome();
            let (status, error) = opened.live.outcome(status, error);
            let (bytes_in, bytes_out) = (served.bytes_in, served.bytes_out);
            sessions::finish(state, &opened.id, status, error, bytes_in, bytes_out).await;
            return Ok(());
        }
    };
    let first_len = first.len() as u64;
    let report = if sender.send(first.freeze()).await.is_err() {
        hoop_proxy::link::mux::PumpReport {
            sent: 0,
            received: 0,
            end: PumpEnd::LinkLost,
        }
    } else {
        pump(&mut stream, sender, receiver, Some(sessions::LINGER)).await
    };
    let (status, error) = sessions::outcome(&report);
    if report.end == PumpEnd::LinkLost {
        stream
            .say_farewell(Farewell::agent_gone(sessions::AGENT_GONE))
            .await;
    }
    let (status, error) = opened.live.outcome(status, error);
    sessions::finish(
        state,
        &opened.id,
        status,
        error,
        report.sent + first_len,
        report.received,
    )
    .await;
    Ok(())
}
