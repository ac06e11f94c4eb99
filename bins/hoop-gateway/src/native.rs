//! Native client listeners on the gateway: a PostgreSQL client connects
//! with the connection's name as its user name and the person's access
//! token as its password.
//!
//! ```text
//!  psql                      gateway                              agent
//!   | SSLRequest ------------> |                                     |
//!   | <----------------- 'N' - |                                     |
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
//! socket with the startup replayed to it ([`crate::in_place`]).

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use hoop_agent::mux::{PumpEnd, pump};
use hoop_wire::postgres::{
    Authentication, BackendMessage, FrontendDecoder, FrontendMessage, Limits, Notice,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::api::AppState;
use crate::in_place;
use crate::sessions::{self, AccessKind, RefusalReason, Request, Route};

/// Time a client gets to finish the startup exchange.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Accepts PostgreSQL clients until the task is dropped.
pub(crate) async fn serve_postgres(listener: TcpListener, state: AppState) {
    let mut clients = tokio::task::JoinSet::new();
    loop {
        while clients.try_join_next().is_some() {}
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "postgres listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let state = state.clone();
        clients.spawn(async move {
            let _ = stream.set_nodelay(true);
            if let Err(error) = postgres_client(stream, &state).await {
                tracing::info!(%peer, %error, "postgres client ended");
            }
        });
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
}

struct Startup {
    /// The StartupMessage as the client sent it.
    bytes: Bytes,
    connection: String,
    token: String,
}

async fn next_message(
    stream: &mut TcpStream,
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

async fn read_startup(
    stream: &mut TcpStream,
    buffer: &mut BytesMut,
) -> Result<Option<Startup>, StartupError> {
    let mut decoder = FrontendDecoder::new(Limits::default());
    let (connection, bytes) = loop {
        match next_message(stream, &mut decoder, buffer).await? {
            // No certificate on this listener: the client continues in
            // plain text or gives up, as its sslmode says.
            (FrontendMessage::SslRequest | FrontendMessage::GssEncRequest, _) => {
                stream.write_all(b"N").await?;
            }
            // Cancel keys belong to the agent's driver; a cancel through the
            // gateway is not routed.
            (FrontendMessage::CancelRequest(_), _) => return Ok(None),
            (FrontendMessage::Startup(startup), bytes) => {
                let user = startup
                    .param(b"user")
                    .map(|u| String::from_utf8_lossy(u).into_owned())
                    .unwrap_or_default();
                break (user, bytes);
            }
            _ => return Err(StartupError::Unexpected),
        }
    };
    let mut out = BytesMut::new();
    BackendMessage::Authentication(Authentication::CleartextPassword).encode(&mut out);
    stream.write_all(&out).await?;
    let token = match next_message(stream, &mut decoder, buffer).await? {
        (FrontendMessage::PasswordMessage(response), _) => {
            String::from_utf8_lossy(&response.read_password()?).into_owned()
        }
        _ => return Err(StartupError::Unexpected),
    };
    Ok(Some(Startup {
        bytes,
        connection,
        token,
    }))
}

/// Sends a FATAL ErrorResponse; the client shows `message`.
async fn send_fatal(stream: &mut TcpStream, code: &str, message: &str) {
    let mut out = BytesMut::new();
    BackendMessage::ErrorResponse(Notice::error("FATAL", code, message)).encode(&mut out);
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

fn sqlstate(reason: RefusalReason) -> &'static str {
    match reason {
        RefusalReason::Token => "28P01",
        RefusalReason::NotFound | RefusalReason::Protocol => "28000",
        RefusalReason::ModeDisabled => "42501",
        RefusalReason::Offline => "08001",
        RefusalReason::Internal => "XX000",
    }
}

async fn postgres_client(mut stream: TcpStream, state: &AppState) -> Result<(), StartupError> {
    let mut buffer = BytesMut::with_capacity(1024);
    let startup = tokio::time::timeout(STARTUP_TIMEOUT, read_startup(&mut stream, &mut buffer))
        .await
        .map_err(|_| StartupError::Timeout)??;
    let Some(startup) = startup else {
        return Ok(());
    };
    let request = Request {
        token: &startup.token,
        connection: &startup.connection,
        kind: AccessKind::Connect,
        protocol: Some("postgres"),
        script: None,
        output: None,
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
    let (sender, receiver) = match opened.route {
        Route::Link { sender, receiver } => (sender, receiver),
        Route::InPlace(open) => {
            let session = match in_place::prepare(state, &open) {
                Ok(session) => session,
                Err(message) => {
                    send_fatal(&mut stream, "08001", &message).await;
                    sessions::finish(state, &opened.id, "failed", Some(message), 0, 0).await;
                    return Ok(());
                }
            };
            let client = in_place::Replay::new(first.freeze(), stream);
            let (bytes_in, bytes_out) = in_place::serve(session, client).await;
            sessions::finish(state, &opened.id, "done", None, bytes_in, bytes_out).await;
            return Ok(());
        }
    };
    let first_len = first.len() as u64;
    let report = if sender.send(first.freeze()).await.is_err() {
        hoop_agent::mux::PumpReport {
            sent: 0,
            received: 0,
            end: PumpEnd::LinkLost,
        }
    } else {
        pump(&mut stream, sender, receiver, Some(sessions::LINGER)).await
    };
    let (status, error) = sessions::outcome(&report);
    if report.end == PumpEnd::LinkLost {
        send_fatal(
            &mut stream,
            "08006",
            "the agent serving this connection went away",
        )
        .await;
    }
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
