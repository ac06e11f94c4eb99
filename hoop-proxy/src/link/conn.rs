//! Whole frames over a byte stream, for both ends of the link: the
//! handshake's request and answer on the bare socket ([`FramedLink`]), then,
//! once the socket is split, frames read from its read half
//! ([`recv_frame`]) and queued for its writer task ([`send`],
//! [`send_json`], drained by [`write_frames`](super::mux::write_frames)).

use std::path::PathBuf;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{Frame, FrameError, FrameKind};
use super::mux::WRITE_TIMEOUT;

/// Time either end allows for TLS and the hello and its answer: a peer
/// that connects and says nothing must not hold a task for ever.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a link ended, at either end.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The socket failed.
    #[error("link i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The gateway refused the agent's key.
    #[error("the gateway refused the agent key")]
    Refused,
    /// The peer sent something unexpected.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A frame was oversized.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// Nothing arrived for three heartbeats, or a write stalled.
    #[error("the link went silent")]
    Timeout,
    /// TLS could not be set up.
    #[error("tls: {0}")]
    Tls(#[from] LinkTlsError),
}

/// Why the agent cannot set up TLS for a `hoops://` link.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkTlsError {
    /// The CA file cannot be read.
    #[error("reading {}: {source}", path.display())]
    ReadCa {
        /// The file named by `HOOP_TLS_CA`.
        path: PathBuf,
        /// Why.
        source: rustls::pki_types::pem::Error,
    },
    /// A certificate in the CA file does not parse.
    #[error("{0}")]
    Certificate(rustls::pki_types::pem::Error),
    /// rustls refused a certificate or the configuration.
    #[error("{0}")]
    Rustls(rustls::Error),
    /// The CA file holds no certificate.
    #[error("the CA file holds no certificate")]
    NoCertificate,
    /// The key is `hoops://` and no CA file was given.
    #[error("a hoops:// key needs a CA file (HOOP_TLS_CA)")]
    NoCa,
    /// The gateway's host in the key is not a valid TLS name.
    #[error("{0}")]
    ServerName(rustls::pki_types::InvalidDnsNameError),
}

/// A byte stream a link can run on: TCP, or TLS over it, behind one type.
pub trait LinkIo: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> LinkIo for T {}

/// A link's socket before it is split between the reader and the writer
/// task: the handshake is one request and one answer on it.
pub struct FramedLink {
    io: Box<dyn LinkIo>,
    buffer: BytesMut,
    out: BytesMut,
}

impl std::fmt::Debug for FramedLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedLink")
            .field("buffered", &self.buffer.len())
            .finish_non_exhaustive()
    }
}

impl FramedLink {
    /// Frames over `io`.
    pub fn new(io: Box<dyn LinkIo>) -> Self {
        Self {
            io,
            buffer: BytesMut::with_capacity(8 * 1024),
            out: BytesMut::with_capacity(8 * 1024),
        }
    }

    /// Writes one frame.
    ///
    /// # Errors
    ///
    /// The socket's error, an oversized frame, or [`LinkError::Timeout`]
    /// when the write stalls.
    pub async fn send(&mut self, frame: &Frame) -> Result<(), LinkError> {
        self.out.clear();
        frame.encode(&mut self.out)?;
        tokio::time::timeout(WRITE_TIMEOUT, self.io.write_all(&self.out))
            .await
            .map_err(|_| LinkError::Timeout)??;
        Ok(())
    }

    /// Writes one control frame carrying `value` as JSON.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub async fn send_json(
        &mut self,
        kind: FrameKind,
        value: &impl serde::Serialize,
    ) -> Result<(), LinkError> {
        self.send(&control_json(kind, value)?).await
    }

    /// The next frame; `None` when the peer closed between frames.
    /// Cancel-safe: bytes read so far stay in the buffer.
    ///
    /// # Errors
    ///
    /// The socket's error, or an oversized frame.
    pub async fn recv(&mut self) -> Result<Option<Frame>, LinkError> {
        recv_frame(&mut self.io, &mut self.buffer).await
    }

    /// Closes the write side, after a refusal.
    pub async fn shutdown(&mut self) {
        let _ = self.io.shutdown().await;
    }

    /// The socket and the bytes read past the last frame, for the reader
    /// and writer that take over after the handshake.
    pub fn into_parts(self) -> (Box<dyn LinkIo>, BytesMut) {
        (self.io, self.buffer)
    }
}

/// The next frame from `reader`, `buffer` holding what was read past the
/// last one; `None` when the peer closed between frames. Cancel-safe: bytes
/// read so far stay in the buffer.
///
/// # Errors
///
/// The socket's error, or an oversized frame.
pub async fn recv_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buffer: &mut BytesMut,
) -> Result<Option<Frame>, LinkError> {
    loop {
        if let Some(frame) = Frame::decode(buffer)? {
            return Ok(Some(frame));
        }
        if reader.read_buf(buffer).await? == 0 {
            return Ok(None);
        }
    }
}

/// Queues `frame` for the link's writer task.
///
/// # Errors
///
/// [`LinkError::Protocol`] when the writer has stopped (the link is gone).
pub async fn send(outbound: &mpsc::Sender<Frame>, frame: Frame) -> Result<(), LinkError> {
    outbound
        .send(frame)
        .await
        .map_err(|_| LinkError::Protocol("link writer stopped"))
}

/// Queues a control frame carrying `value` as JSON.
///
/// # Errors
///
/// As [`send`].
pub async fn send_json(
    outbound: &mpsc::Sender<Frame>,
    kind: FrameKind,
    value: &impl serde::Serialize,
) -> Result<(), LinkError> {
    send(outbound, control_json(kind, value)?).await
}

fn control_json(kind: FrameKind, value: &impl serde::Serialize) -> Result<Frame, LinkError> {
    let payload = serde_json::to_vec(value).map_err(|_| LinkError::Protocol("encode"))?;
    Ok(Frame::control(kind, payload))
}
