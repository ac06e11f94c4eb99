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
//!   directions are polled independently);
//! - a long step does not stall other sessions: a step over
//!   [`BLOCKING_STEP`] bytes of input (a large message, such as a 50 MB cell
//!   to mask) runs in [`tokio::task::block_in_place`] on a multi-thread
//!   runtime, which hands this worker's other tasks to another thread
//!   first. On a current-thread runtime, where that is not possible (it
//!   panics there), the step runs inline and the runtime's other tasks wait
//!   for it: serve sessions from a multi-thread runtime, as `hoop up`, the
//!   gateway and the agent do (the `hoop` CLI's current-thread runtime runs
//!   no session driver).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

/// Bytes requested from the socket per read.
pub const READ_CHUNK: usize = 64 * 1024;

/// Input from which a codec step may be long enough to stall a runtime
/// worker: masking is linear in the bytes processed, about 7 ms per MiB of a
/// cell dense with values in a release build (`masking_scaling` in
/// `benches/README.md`), and a step over less than this is one read's worth
/// of messages. Only a large message makes the input grow past it; the
/// steps while it arrives find it incomplete and return at once, so handing
/// them to [`tokio::task::block_in_place`] (a thread handoff, some
/// microseconds) costs little next to reading the megabytes.
pub const BLOCKING_STEP: usize = 1 << 20;

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

    /// Takes the output processed but not yet written, for the caller to
    /// write itself while the relay is stopped (a MySQL COM_CHANGE_USER the
    /// driver answers between two runs).
    pub fn take_unwritten(&mut self) -> Vec<u8> {
        let unwritten = self.output.split_off(self.written);
        self.output.clear();
        self.written = 0;
        unwritten
    }

    /// Input read but not yet processed.
    pub fn unprocessed(&self) -> usize {
        self.input.len()
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
            step(&mut self.input, &mut self.output, &mut process)?;
        }
    }
}

/// One codec step; see [`BLOCKING_STEP`].
fn step<E>(
    input: &mut BytesMut,
    output: &mut Vec<u8>,
    process: &mut impl FnMut(&mut BytesMut, &mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    if input.len() < BLOCKING_STEP {
        return process(input, output);
    }
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
            tokio::task::block_in_place(|| process(input, output))
        }
        _ => process(input, output),
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::time::{Duration, Instant};

    use tokio::io::AsyncWriteExt;

    use super::*;

    /// Holds its input until [`BLOCKING_STEP`] bytes arrived (as a codec
    /// does with an incomplete message), then, in that one step, waits for
    /// another task of the runtime to make progress.
    struct Waiting {
        ticks: Arc<AtomicU64>,
        others_ran: Arc<AtomicBool>,
    }

    impl RelayCodec for Waiting {
        type Error = PeerIoError;

        fn client_bytes(
            &mut self,
            input: &mut BytesMut,
            output: &mut Vec<u8>,
        ) -> Result<(), PeerIoError> {
            if input.len() < BLOCKING_STEP {
                return Ok(());
            }
            let start = self.ticks.load(Ordering::SeqCst);
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if self.ticks.load(Ordering::SeqCst) > start + 10 {
                    self.others_ran.store(true, Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            output.extend_from_slice(input);
            input.clear();
            Ok(())
        }

        fn server_bytes(
            &mut self,
            input: &mut BytesMut,
            output: &mut Vec<u8>,
        ) -> Result<(), PeerIoError> {
            output.extend_from_slice(input);
            input.clear();
            Ok(())
        }
    }

    /// Issue 13, item 1: masking a 50 MB cell on a runtime worker stopped
    /// the API and every other session of the process. With one worker, a
    /// step over a large input must still let another task run.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_long_step_over_a_large_message_lets_other_tasks_run() {
        let ticks = Arc::new(AtomicU64::new(0));
        let ticker = {
            let ticks = Arc::clone(&ticks);
            tokio::spawn(async move {
                loop {
                    ticks.fetch_add(1, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            })
        };
        let (mut client, mut client_end) = tokio::io::duplex(READ_CHUNK);
        let (server, mut server_end) = tokio::io::duplex(READ_CHUNK);
        let writer = tokio::spawn(async move {
            client_end
                .write_all(&vec![7u8; BLOCKING_STEP])
                .await
                .unwrap();
            client_end.shutdown().await.unwrap();
            client_end
        });
        let reader = tokio::spawn(async move {
            let mut received = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server_end, &mut received)
                .await
                .unwrap();
            received.len()
        });
        let others_ran = Arc::new(AtomicBool::new(false));
        let mut codec = Waiting {
            ticks,
            others_ran: Arc::clone(&others_ran),
        };
        // On the runtime's one worker, beside the ticker (the test's own
        // body runs on another thread).
        let session = tokio::spawn(async move {
            let mut server = server;
            let end = relay(
                &mut codec,
                &mut client,
                &mut server,
                &mut Pump::default(),
                &mut Pump::default(),
            )
            .await
            .unwrap();
            (end, server)
        });
        let (end, server) = session.await.unwrap();
        assert_eq!(end, RelayEnd::ClientClosed);
        assert!(
            others_ran.load(Ordering::SeqCst),
            "no other task ran during the long step"
        );
        drop(server);
        assert_eq!(reader.await.unwrap(), BLOCKING_STEP);
        drop(writer.await.unwrap());
        ticker.abort();
    }
}
