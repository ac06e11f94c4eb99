//! The relay loop every session driver shares: both directions of a session
//! pumped by one future, so a protocol's per-direction processing can share
//! state (pending refusals, the hook) without locks.
//!
//! Per direction: read what the socket has (up to [`READ_CHUNK`] at a time),
//! let the protocol decode every complete message into an output buffer
//! (original bytes for untouched messages), write that buffer in one go, and
//! only then read again. So:
//!
//! - writes are batched: one write per read, whatever the number of messages;
//! - memory is bounded: the input holds at most one chunk plus one partial
//!   message (capped by the codec's message limit), the output about one
//!   chunk;
//! - backpressure is natural: a slow reader on one side stops reads from the
//!   other side of *its* session only;
//! - writing to one peer never stalls reading from the other (the two
//!   directions are polled independently).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Bytes requested from the socket per read.
pub const READ_CHUNK: usize = 64 * 1024;

/// A buffer that grew past this (to hold one large message) is released once
/// drained, so one big message does not pin memory for the rest of the
/// session.
const SHRINK_ABOVE: usize = 4 * READ_CHUNK;

/// One side of a relayed session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// The client.
    Client,
    /// The server.
    Server,
}

/// A socket of the relay failed.
#[derive(Debug, thiserror::Error)]
#[error("{peer:?} socket failed: {source}")]
pub struct PeerIoError {
    /// Whose socket.
    pub peer: Peer,
    /// The I/O error.
    pub source: io::Error,
}

/// A protocol's message processing for both directions of a relayed session.
pub trait RelayCodec {
    /// The protocol's error type.
    type Error: From<PeerIoError>;

    /// Consumes every complete message at the front of `input` (bytes from
    /// the client) and appends what the server must receive to `output`.
    /// Leaves a trailing partial message in `input`.
    ///
    /// # Errors
    ///
    /// A protocol violation or a policy decision that ends the session.
    fn client_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), Self::Error>;

    /// The same for bytes from the server; `output` goes to the client.
    ///
    /// # Errors
    ///
    /// As [`client_bytes`](Self::client_bytes).
    fn server_bytes(
        &mut self,
        input: &mut BytesMut,
        output: &mut Vec<u8>,
    ) -> Result<(), Self::Error>;

    /// Appends to `output` what the protocol must send the client on its
    /// own, such as the answer to a command it refused in place. Called after
    /// client bytes were processed; `output` goes to the client after any
    /// server bytes already processed. The default sends nothing.
    fn client_replies(&mut self, output: &mut Vec<u8>) {
        let _ = output;
    }

    /// The peer closed its side (`from_client` tells which) with `pending`
    /// bytes of an incomplete message left over.
    ///
    /// # Errors
    ///
    /// The protocol's view of a truncated stream; the default accepts it.
    fn closed(&mut self, from_client: bool, pending: usize) -> Result<(), Self::Error> {
        let _ = (from_client, pending);
        Ok(())
    }
}

/// What both drivers' [`RelayCodec::closed`] decide: a server that closes
/// partway through a message failed (its client would wait for the rest
/// forever); a client that does so simply left.
pub(crate) fn server_closed_mid_message<E: From<PeerIoError>>(
    from_client: bool,
    pending: usize,
) -> Result<(), E> {
    if pending > 0 && !from_client {
        return Err(PeerIoError {
            peer: Peer::Server,
            source: io::ErrorKind::UnexpectedEof.into(),
        }
        .into());
    }
    Ok(())
}

/// Which peer closed first, ending the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayEnd {
    /// The client closed its connection (everything it sent was forwarded).
    ClientClosed,
    /// The server closed its connection (everything it sent was forwarded).
    ServerClosed,
}

/// One direction's buffers.
#[derive(Debug)]
pub struct Pump {
    input: BytesMut,
    output: Vec<u8>,
    written: usize,
    needs_flush: bool,
    eof: bool,
}

impl Default for Pump {
    fn default() -> Self {
        Self::new(BytesMut::new())
    }
}

impl Pump {
    /// A pump whose input starts with bytes already read during the handshake.
    pub fn new(input: BytesMut) -> Self {
        Self {
            input,
            output: Vec::new(),
            written: 0,
            needs_flush: false,
            eof: false,
        }
    }

    /// Output processed but not yet written (to send before a final error).
    pub fn unwritten(&self) -> &[u8] {
        &self.output[self.written..]
    }

    /// Bytes currently held, for memory accounting.
    pub fn buffered(&self) -> usize {
        self.input.capacity() + self.output.capacity()
    }

    fn poll_pump<S, D, E>(
        &mut self,
        cx: &mut Context<'_>,
        (src, src_peer): (&mut S, Peer),
        (dst, dst_peer): (&mut D, Peer),
        mut process: impl FnMut(&mut BytesMut, &mut Vec<u8>) -> Result<(), E>,
    ) -> Poll<Result<(), E>>
    where
        S: AsyncRead + Unpin,
        D: AsyncWrite + Unpin,
        E: From<PeerIoError>,
    {
        let dst_error = |source| PeerIoError {
            peer: dst_peer,
            source,
        };
        loop {
            while self.written < self.output.len() {
                let n = ready!(Pin::new(&mut *dst).poll_write(cx, &self.output[self.written..]))
                    .map_err(dst_error)?;
                if n == 0 {
                    return Poll::Ready(Err(dst_error(io::ErrorKind::WriteZero.into()).into()));
                }
                self.written += n;
                self.needs_flush = true;
            }
            if self.needs_flush {
                ready!(Pin::new(&mut *dst).poll_flush(cx)).map_err(dst_error)?;
                self.needs_flush = false;
            }
            self.output.clear();
            self.written = 0;
            if self.output.capacity() > SHRINK_ABOVE {
                self.output = Vec::new();
            }
            if self.eof {
                return Poll::Ready(Ok(()));
            }
            if self.input.is_empty() && self.input.capacity() > SHRINK_ABOVE {
                self.input = BytesMut::new();
            }
            if self.input.capacity() - self.input.len() < READ_CHUNK / 4 {
                self.input.reserve(READ_CHUNK);
            }
            let n = ready!(std::pin::pin!(src.read_buf(&mut self.input)).poll(cx)).map_err(
                |source| PeerIoError {
                    peer: src_peer,
                    source,
                },
            )?;
            if n == 0 {
                self.eof = true;
                continue;
            }
            process(&mut self.input, &mut self.output)?;
        }
    }
}

/// Relays between `client` and `server` until one of them closes or `codec`
/// fails. `to_server` and `to_client` may hold bytes read during the
/// handshake.
///
/// # Errors
///
/// I/O errors from either socket, and whatever `codec` returns.
pub async fn relay<C, A, B>(
    codec: &mut C,
    client: &mut A,
    server: &mut B,
    to_server: &mut Pump,
    to_client: &mut Pump,
) -> Result<RelayEnd, C::Error>
where
    C: RelayCodec,
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    // Bytes left over from the handshake are processed before the first read.
    if !to_server.input.is_empty() {
        codec.client_bytes(&mut to_server.input, &mut to_server.output)?;
        codec.client_replies(&mut to_client.output);
    }
    if !to_client.input.is_empty() {
        codec.server_bytes(&mut to_client.input, &mut to_client.output)?;
    }
    std::future::poll_fn(|cx| {
        if let Poll::Ready(done) = to_server.poll_pump(
            cx,
            (client, Peer::Client),
            (server, Peer::Server),
            |i, o| codec.client_bytes(i, o),
        ) {
            done?;
            codec.closed(true, to_server.input.len())?;
            return Poll::Ready(Ok(RelayEnd::ClientClosed));
        }
        codec.client_replies(&mut to_client.output);
        if let Poll::Ready(done) = to_client.poll_pump(
            cx,
            (server, Peer::Server),
            (client, Peer::Client),
            |i, o| codec.server_bytes(i, o),
        ) {
            done?;
            codec.closed(false, to_client.input.len())?;
            return Poll::Ready(Ok(RelayEnd::ServerClosed));
        }
        Poll::Pending
    })
    .await
}
