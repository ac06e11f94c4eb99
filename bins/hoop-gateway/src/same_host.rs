//! `hoop connect` to a gateway on the same host: the accepted client
//! socket itself is handed to the gateway, so the session's bytes take one
//! hop instead of two.
//!
//! ```text
//!  tunnel:    client --> hoop connect --(HTTP upgrade)--> gateway: driver --> database
//!  handoff:   client ----------------------------------> gateway: driver --> database
//!             (hoop connect passed the socket over DATA_DIR/connect.sock)
//! ```
//!
//! Over the gateway's Unix socket, one connection per client, JSON lines:
//! the gateway says who it is, `{"instance_id": ID}` (the id
//! `GET /api/serverinfo` gave with the socket's path, so a client that
//! reached the API through a port forward never hands its token to another
//! gateway that happens to use the same path here); `hoop connect` sends
//! `{"connection": NAME, "token": TOKEN}` with the client's socket attached
//! (`SCM_RIGHTS`); the gateway runs the same checks as for the tunnel and
//! answers `{"accepted": true}` or `{"accepted": false, "message": WHY}`.
//! Once accepted, the gateway serves the client's socket as it would the
//! tunnel's stream (the same records, the same driver); `hoop connect`
//! closes its copy.
//!
//! The token still decides everything: the socket file only proves that
//! both ends are on one host. It is made with the gateway's umask, so by
//! default only the gateway's user can connect; others tunnel.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketType,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UnixListener, UnixStream};

use crate::api::AppState;
use crate::sessions;

/// The socket's file name in the gateway's data directory.
pub const SOCKET_FILE: &str = "connect.sock";

/// The longest request or answer line: a token and a connection name fit
/// many times over; more is not a request.
const MAX_LINE: usize = 16 * 1024;

/// How long either side waits for the other's line. The gateway's answer
/// comes after the session's checks (store reads), well under this.
const LINE_DEADLINE: Duration = Duration::from_secs(10);

/// Where a gateway takes handed-over clients, and which gateway it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectSocket {
    /// The socket's absolute path.
    pub path: PathBuf,
    /// The gateway's id for this run, said first on every connection.
    pub instance_id: String,
}

#[derive(Serialize, Deserialize)]
struct Greeting<'a> {
    instance_id: &'a str,
}

#[derive(Serialize, Deserialize)]
struct HandoffRequest<'a> {
    connection: &'a str,
    token: &'a str,
}

#[derive(Serialize, Deserialize)]
struct HandoffAnswer {
    accepted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Binds the gateway's handoff socket in `data_dir`, replacing a file
/// left by a gateway that stopped, under a fresh instance id.
///
/// # Errors
///
/// When the socket cannot be bound (a path too long for a Unix socket,
/// a read-only directory) or no id can be drawn.
pub(crate) fn bind(data_dir: &Path) -> io::Result<(UnixListener, ConnectSocket)> {
    // Absolute: `hoop connect` runs in a directory of its own.
    let path = std::path::absolute(data_dir.join(SOCKET_FILE))?;
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    let instance_id = crate::crypto::new_id().map_err(io::Error::other)?;
    Ok((listener, ConnectSocket { path, instance_id }))
}

/// Accepts handed-over clients until the listener fails for good. Each
/// runs on its own task: a stalled or hostile peer holds only its own.
pub(crate) async fn serve(listener: UnixListener, instance_id: String, state: AppState) {
    let mut greeting = serde_json::to_vec(&Greeting {
        instance_id: &instance_id,
    })
    .unwrap_or_default();
    greeting.push(b'\n');
    let greeting: Arc<[u8]> = greeting.into();
    loop {
        match listener.accept().await {
            Ok((peer, _)) => {
                let (state, greeting) = (state.clone(), Arc::clone(&greeting));
                tokio::spawn(async move {
                    if let Err(error) = take(&state, peer, &greeting).await {
                        tracing::debug!(%error, "a handed-over client was not served");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "accepting on the handoff socket failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One handoff: read the request and the client's socket, check, answer,
/// then serve the client to the session's end.
async fn take(state: &AppState, mut peer: UnixStream, greeting: &[u8]) -> io::Result<()> {
    peer.write_all(greeting).await?;
    let (line, client) = tokio::time::timeout(LINE_DEADLINE, receive(&peer))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request"))??;
    let request: HandoffRequest<'_> = match serde_json::from_slice(&line) {
        Ok(request) => request,
        Err(_) => return answer(&mut peer, Some("malformed handoff request".into())).await,
    };
    let Some(client) = client else {
        return answer(&mut peer, Some("no client socket attached".into())).await;
    };
    if rustix::net::sockopt::socket_type(&client).ok() != Some(SocketType::STREAM) {
        return answer(
            &mut peer,
            Some("the attached file is not a stream socket".into()),
        )
        .await;
    }
    let request = sessions::Request::connect(request.token, request.connection);
    let opened = match sessions::open(state, request).await {
        Ok(opened) => opened,
        Err(refused) => return answer(&mut peer, Some(refused.message)).await,
    };
    let id = opened.id.clone();
    let ready = match opened.ready(state).await {
        Ok(ready) => ready,
        Err(error) => return answer(&mut peer, Some(error.to_string())).await,
    };
    let client = std::net::TcpStream::from(client);
    let client = match client
        .set_nonblocking(true)
        .and_then(|()| TcpStream::from_std(client))
    {
        Ok(client) => client,
        Err(error) => {
            ready.abandon(state, &id, error.to_string()).await;
            return answer(&mut peer, Some(format!("the client socket: {error}"))).await;
        }
    };
    // A Unix stream socket handed over is served too; only TCP has Nagle.
    let _ = client.set_nodelay(true);
    if let Err(error) = answer(&mut peer, None).await {
        ready.abandon(state, &id, error.to_string()).await;
        return Err(error);
    }
    drop(peer);
    ready.serve(state, &id, client).await;
    Ok(())
}

/// Reads one line (without its newline) and the descriptor attached to
/// its bytes, if any.
async fn receive(peer: &UnixStream) -> io::Result<(Vec<u8>, Option<OwnedFd>)> {
    let mut line = Vec::new();
    let mut attached = None;
    loop {
        let mut chunk = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let received = peer
            .async_io(Interest::READABLE, || {
                rustix::net::recvmsg(
                    peer,
                    &mut [IoSliceMut::new(&mut chunk)],
                    &mut control,
                    RecvFlags::CMSG_CLOEXEC,
                )
                .map_err(io::Error::from)
            })
            .await?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                // The first descriptor is the client; any other is closed
                // as it drops here.
                for fd in fds {
                    attached.get_or_insert(fd);
                }
            }
        }
        let chunk = &chunk[..received.bytes];
        if chunk.is_empty() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(&chunk[..end]);
            return Ok((line, attached));
        }
        line.extend_from_slice(chunk);
        if line.len() > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "handoff line too long",
            ));
        }
    }
}

/// Writes the answer line: accepted when `refusal` is `None`.
async fn answer(peer: &mut UnixStream, refusal: Option<String>) -> io::Result<()> {
    let answer = HandoffAnswer {
        accepted: refusal.is_none(),
        message: refusal,
    };
    let mut line = serde_json::to_vec(&answer).map_err(io::Error::other)?;
    line.push(b'\n');
    peer.write_all(&line).await
}

/// Why a client was not handed over.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The socket cannot be reached (no gateway there, or not this user's
    /// to use): the client is given back, to be tunnelled instead.
    #[error("the gateway's socket cannot be reached: {error}")]
    Unreachable {
        /// The client, untouched.
        client: TcpStream,
        /// Why.
        error: io::Error,
    },
    /// The gateway refused the session; its message says why.
    #[error("{0}")]
    Refused(String),
    /// The exchange with the gateway failed midway.
    #[error("handing the client to the gateway: {0}")]
    Io(#[from] io::Error),
}

/// Hands `client` to the gateway of `socket` for a session on
/// `connection` as the person of `token`. On success the gateway serves
/// the client; the caller has nothing left to do.
///
/// # Errors
///
/// [`HandoffError::Unreachable`] with the client back when the socket
/// cannot be connected to or another gateway answers there,
/// [`HandoffError::Refused`] with the gateway's reason,
/// [`HandoffError::Io`] when the exchange broke off.
pub async fn hand_over(
    socket: &ConnectSocket,
    client: TcpStream,
    connection: &str,
    token: &str,
) -> Result<(), HandoffError> {
    let mut gateway = match UnixStream::connect(&socket.path).await {
        Ok(gateway) => gateway,
        Err(error) => return Err(HandoffError::Unreachable { client, error }),
    };
    let greeting = read_line(&mut gateway).await?;
    if serde_json::from_slice::<Greeting<'_>>(&greeting)
        .ok()
        .is_none_or(|greeting| greeting.instance_id != socket.instance_id)
    {
        let error = io::Error::other("another gateway answers on this socket");
        return Err(HandoffError::Unreachable { client, error });
    }
    let mut line =
        serde_json::to_vec(&HandoffRequest { connection, token }).map_err(io::Error::other)?;
    line.push(b'\n');
    let sent = gateway
        .async_io(Interest::WRITABLE, || {
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut control = SendAncillaryBuffer::new(&mut space);
            let fds = [client.as_fd()];
            control.push(SendAncillaryMessage::ScmRights(&fds));
            rustix::net::sendmsg(
                &gateway,
                &[IoSlice::new(&line)],
                &mut control,
                SendFlags::empty(),
            )
            .map_err(io::Error::from)
        })
        .await?;
    // The descriptor went with the first byte; the rest is plain.
    gateway.write_all(&line[sent..]).await?;
    let answer = read_line(&mut gateway).await?;
    let answer: HandoffAnswer = serde_json::from_slice(&answer)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
    if answer.accepted {
        Ok(())
    } else {
        Err(HandoffError::Refused(answer.message.unwrap_or_else(|| {
            "the gateway refused the session".into()
        })))
    }
}

/// Reads the gateway's next line (without its newline). The gateway says
/// nothing past a line until it hears back, so reading ahead loses
/// nothing.
async fn read_line(gateway: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let read = async {
        while !line.contains(&b'\n') {
            if line.len() > MAX_LINE || gateway.read_buf(&mut line).await? == 0 {
                return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
            }
        }
        Ok(())
    };
    tokio::time::timeout(LINE_DEADLINE, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no answer from the gateway"))??;
    let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
    line.truncate(end);
    Ok(line)
}
