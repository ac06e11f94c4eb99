//! Sessions multiplexed over the link, shared by the gateway and the agent.
//!
//! ```text
//!  socket --read--> StreamSender --DATA (<= CHUNK)--> link --> Mux::dispatch --> StreamReceiver --write--> socket
//!                        ^                                                            |
//!                        +------------------ WINDOW (bytes consumed) <----------------+
//! ```
//!
//! Flow control is per stream and credit based: a sender may have at most
//! [`WINDOW`] bytes that its peer has not yet written out to its socket. The
//! receiver returns credit once it has written data on, so a slow client
//! holds at most one window per direction in the gateway and in the agent,
//! and the link reader never waits on a single session. A peer that sends
//! beyond its credit breaks the protocol and its stream is closed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{Semaphore, mpsc};

use crate::link::frame::{Frame, FrameKind};

/// Bytes a sender may have in flight on one stream: enough to keep a
/// result stream moving across one round trip of the link, small enough
/// that a stalled client costs the gateway and the agent 256 KiB each.
pub const WINDOW: u32 = 256 * 1024;

/// The largest data frame payload; big enough to amortise the 9-byte
/// header, small enough that streams interleave fairly on the link.
pub const CHUNK: usize = 32 * 1024;

/// Credit is returned once this much was consumed: a quarter of the
/// window, so a sender never waits while its peer keeps reading, and small
/// request-response traffic sends no WINDOW frames at all.
const ACK_THRESHOLD: u32 = WINDOW / 4;

/// Frames waiting for the link's writer, across all streams.
pub const OUTBOUND_QUEUE: usize = 256;

/// Most bytes gathered into one write to the link socket.
const WRITE_BATCH: usize = 256 * 1024;

/// A link write that cannot complete in this time means the link is stuck.
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What arrives on a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Session bytes.
    Data(Bytes),
    /// The peer closed the stream; the payload explains why (may be empty).
    Close(Bytes),
}

struct Entry {
    /// The session the stream carries, when the side that opened it said.
    session: Option<Arc<str>>,
    inbound: mpsc::UnboundedSender<Inbound>,
    /// Bytes delivered to the receiver and not yet credited back.
    unacked: Arc<AtomicU32>,
    /// Credit for sending on this stream.
    credit: Arc<Semaphore>,
}

struct Inner {
    outbound: mpsc::Sender<Frame>,
    streams: Mutex<HashMap<u32, Entry>>,
}

/// One link's streams. Cloning shares it.
#[derive(Clone)]
pub struct Mux {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Mux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mux")
            .field("streams", &self.lock().len())
            .finish()
    }
}

/// The sending half of a stream. Cloning shares its credit.
#[derive(Clone, Debug)]
pub struct StreamSender {
    id: u32,
    credit: Arc<Semaphore>,
    outbound: mpsc::Sender<Frame>,
}

/// The receiving half of a stream; dropping it forgets the stream.
#[derive(Debug)]
pub struct StreamReceiver {
    id: u32,
    inbound: mpsc::UnboundedReceiver<Inbound>,
    unacked: Arc<AtomicU32>,
    consumed: u32,
    outbound: mpsc::Sender<Frame>,
    mux: Mux,
}

/// The link is gone; the stream cannot continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the link closed")]
pub struct LinkGone;

impl Mux {
    /// A multiplexer whose frames go to `outbound` (the link's writer).
    pub fn new(outbound: mpsc::Sender<Frame>) -> Self {
        Self {
            inner: Arc::new(Inner {
                outbound,
                streams: Mutex::new(HashMap::new()),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u32, Entry>> {
        // Single inserts and removes: consistent at every panic point.
        self.inner
            .streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The link writer's queue, for control frames.
    pub fn outbound(&self) -> &mpsc::Sender<Frame> {
        &self.inner.outbound
    }

    /// Opens stream `id` locally; `None` when it is already in use.
    pub fn register(&self, id: u32) -> Option<(StreamSender, StreamReceiver)> {
        self.register_entry(id, None)
    }

    /// Opens stream `id` for the session `session_id`, which
    /// [`Mux::session`] then names for it: the gateway binds what arrives
    /// on a stream (audit events) to the session it opened the stream for.
    pub fn register_session(
        &self,
        id: u32,
        session_id: &str,
    ) -> Option<(StreamSender, StreamReceiver)> {
        self.register_entry(id, Some(session_id.into()))
    }

    fn register_entry(
        &self,
        id: u32,
        session: Option<Arc<str>>,
    ) -> Option<(StreamSender, StreamReceiver)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let credit = Arc::new(Semaphore::new(WINDOW as usize));
        let unacked = Arc::new(AtomicU32::new(0));
        let mut streams = self.lock();
        if id == 0 || streams.contains_key(&id) {
            return None;
        }
        streams.insert(
            id,
            Entry {
                session,
                inbound: tx,
                unacked: Arc::clone(&unacked),
                credit: Arc::clone(&credit),
            },
        );
        drop(streams);
        Some((
            StreamSender {
                id,
                credit,
                outbound: self.inner.outbound.clone(),
            },
            StreamReceiver {
                id,
                inbound: rx,
                unacked,
                consumed: 0,
                outbound: self.inner.outbound.clone(),
                mux: self.clone(),
            },
        ))
    }

    /// How many streams are open.
    pub fn open_streams(&self) -> usize {
        self.lock().len()
    }

    /// Whether stream `id` is open.
    pub fn contains(&self, id: u32) -> bool {
        self.lock().contains_key(&id)
    }

    /// The session stream `id` was opened for; `None` when the stream is
    /// not open (or named no session).
    pub fn session(&self, id: u32) -> Option<Arc<str>> {
        self.lock().get(&id).and_then(|entry| entry.session.clone())
    }

    /// Ends every stream as if the peer had closed it with `reason` (each
    /// receiver here gets `Close(reason)`), and tells the peer (a `CLOSE`
    /// frame each): a gateway that stops ends its sessions this way.
    pub fn close_all(&self, reason: &Bytes) {
        let streams = std::mem::take(&mut *self.lock());
        for (id, entry) in streams {
            let _ = entry.inbound.send(Inbound::Close(reason.clone()));
            let close = Frame {
                kind: FrameKind::Close,
                stream: id,
                payload: Bytes::new(),
            };
            if let Err(mpsc::error::TrySendError::Full(close)) = self.inner.outbound.try_send(close)
            {
                let outbound = self.inner.outbound.clone();
                tokio::spawn(async move { outbound.send(close).await });
            }
        }
    }

    /// Routes a `DATA`, `CLOSE` or `WINDOW` frame to its stream. Frames for
    /// unknown streams are dropped (the stream ended on this side first).
    /// Never waits.
    pub fn dispatch(&self, frame: Frame) {
        let mut streams = self.lock();
        let Some(entry) = streams.get(&frame.stream) else {
            return;
        };
        match frame.kind {
            FrameKind::Data => {
                let len = frame.payload.len() as u32;
                let total = entry.unacked.fetch_add(len, Ordering::AcqRel) + len;
                if total > WINDOW {
                    // Beyond its credit: the peer is broken or hostile.
                    let _ = entry.inbound.send(Inbound::Close(Bytes::from_static(
                        b"the peer exceeded its flow-control window",
                    )));
                    streams.remove(&frame.stream);
                    return;
                }
                let _ = entry.inbound.send(Inbound::Data(frame.payload));
            }
            FrameKind::Close => {
                if let Some(entry) = streams.remove(&frame.stream) {
                    let _ = entry.inbound.send(Inbound::Close(frame.payload));
                }
            }
            FrameKind::Window => {
                if let Ok(bytes) = <[u8; 4]>::try_from(frame.payload.as_ref()) {
                    let credit = u32::from_be_bytes(bytes).min(WINDOW) as usize;
                    let room = (WINDOW as usize).saturating_sub(entry.credit.available_permits());
                    entry.credit.add_permits(credit.min(room));
                }
            }
            _ => {}
        }
    }

    /// Ends every stream: their receivers see the link as lost.
    pub fn shutdown(&self) {
        let streams = std::mem::take(&mut *self.lock());
        for (_, entry) in streams {
            entry.credit.close();
        }
    }

    fn forget(&self, id: u32) {
        self.lock().remove(&id);
    }
}

impl StreamSender {
    /// The stream's id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The link writer's queue.
    pub fn outbound(&self) -> &mpsc::Sender<Frame> {
        &self.outbound
    }

    /// Sends `data`, in chunks, each once the peer has credit for it.
    ///
    /// # Errors
    ///
    /// [`LinkGone`] when the link closed.
    pub async fn send(&self, mut data: Bytes) -> Result<(), LinkGone> {
        while !data.is_empty() {
            let chunk = data.split_to(data.len().min(CHUNK));
            let permits = self
                .credit
                .acquire_many(chunk.len() as u32)
                .await
                .map_err(|_| LinkGone)?;
            permits.forget();
            self.outbound
                .send(Frame {
                    kind: FrameKind::Data,
                    stream: self.id,
                    payload: chunk,
                })
                .await
                .map_err(|_| LinkGone)?;
        }
        Ok(())
    }

    /// Tells the peer the stream is over, with an explanation (may be empty).
    pub async fn close(&self, reason: impl Into<Bytes>) {
        let _ = self
            .outbound
            .send(Frame {
                kind: FrameKind::Close,
                stream: self.id,
                payload: reason.into(),
            })
            .await;
    }
}

impl StreamReceiver {
    /// The next thing the peer sent, or `None` when the link was lost.
    /// Credit for earlier data is returned first, since the caller has
    /// written it on by the time it asks for more.
    pub async fn recv(&mut self) -> Option<Inbound> {
        if self.consumed >= ACK_THRESHOLD {
            self.ack().await;
        }
        let item = self.inbound.recv().await?;
        if let Inbound::Data(data) = &item {
            self.consumed += data.len() as u32;
        }
        Some(item)
    }

    async fn ack(&mut self) {
        let consumed = std::mem::take(&mut self.consumed);
        self.unacked.fetch_sub(consumed, Ordering::AcqRel);
        let _ = self
            .outbound
            .send(Frame {
                kind: FrameKind::Window,
                stream: self.id,
                payload: Bytes::copy_from_slice(&consumed.to_be_bytes()),
            })
            .await;
    }
}

impl Drop for StreamReceiver {
    fn drop(&mut self) {
        self.mux.forget(self.id);
    }
}

/// How a pump ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PumpEnd {
    /// The local socket closed or failed; the peer has been told.
    Local,
    /// The peer closed the stream, with its explanation.
    Remote(Bytes),
    /// The link was lost.
    LinkLost,
}

/// What a pump moved and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PumpReport {
    /// Bytes read from the socket and sent on the stream.
    pub sent: u64,
    /// Bytes received on the stream and written to the socket.
    pub received: u64,
    /// How it ended.
    pub end: PumpEnd,
}

/// Relays between a socket and a stream until either ends. Memory is
/// bounded by one read buffer plus the stream's window. When the peer
/// closes, the socket's write side is shut down; when the link is lost it
/// is left open, so the caller can still send its client an error. With
/// `linger`, a pump whose socket closed first waits (that long at most) for
/// the peer's close before forgetting the stream.
pub async fn pump<S>(
    socket: S,
    sender: StreamSender,
    receiver: StreamReceiver,
    linger: Option<Duration>,
) -> PumpReport
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    pump_closing(
        socket,
        sender,
        receiver,
        linger,
        std::future::ready(Bytes::new()),
    )
    .await
}

/// [`pump`], whose close when the socket ends first carries what `farewell`
/// resolves to: an agent waits for its driver's verdict on the session so
/// the gateway can record a session that failed as failed. A lingering
/// pump keeps the peer's own explanation, when it sends one, as
/// [`PumpEnd::Remote`].
pub async fn pump_closing<S, F>(
    socket: S,
    sender: StreamSender,
    mut receiver: StreamReceiver,
    linger: Option<Duration>,
    farewell: F,
) -> PumpReport
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: std::future::Future<Output = Bytes>,
{
    let (mut read, mut write) = tokio::io::split(socket);
    let mut sent = 0u64;
    let mut received = 0u64;
    let up = async {
        let mut buffer = BytesMut::with_capacity(CHUNK);
        loop {
            buffer.reserve(CHUNK);
            match read.read_buf(&mut buffer).await {
                Ok(0) | Err(_) => return PumpEnd::Local,
                Ok(n) => {
                    sent += n as u64;
                    if sender.send(buffer.split().freeze()).await.is_err() {
                        return PumpEnd::LinkLost;
                    }
                }
            }
        }
    };
    let down = async {
        loop {
            match receiver.recv().await {
                None => return PumpEnd::LinkLost,
                Some(Inbound::Close(reason)) => return PumpEnd::Remote(reason),
                Some(Inbound::Data(data)) => {
                    received += data.len() as u64;
                    // Flush: a TLS socket may keep the last record buffered
                    // when the kernel's buffer fills, and nothing else would
                    // send it before the next frame (no-op on plain TCP).
                    if write.write_all(&data).await.is_err() || write.flush().await.is_err() {
                        return PumpEnd::Local;
                    }
                }
            }
        }
    };
    let mut end = tokio::select! {
        end = up => end,
        end = down => end,
    };
    match end {
        PumpEnd::Local => {
            sender.close(farewell.await).await;
            // Keep the stream known until the peer closes too, so what it
            // sends while finishing (its audit events, why it failed) is
            // still accepted.
            if let Some(linger) = linger {
                let closed = tokio::time::timeout(linger, async {
                    loop {
                        match receiver.recv().await {
                            Some(Inbound::Data(_)) => {}
                            Some(Inbound::Close(reason)) => return Some(reason),
                            None => return None,
                        }
                    }
                })
                .await;
                if let Ok(Some(reason)) = closed
                    && !reason.is_empty()
                {
                    end = PumpEnd::Remote(reason);
                }
            }
        }
        PumpEnd::Remote(_) => {
            let _ = write.shutdown().await;
        }
        // The caller may still tell its client why, in its protocol.
        PumpEnd::LinkLost => {}
    }
    PumpReport {
        sent,
        received,
        end,
    }
}

/// Writes queued frames to the link, gathering what is waiting into one
/// write. Returns when the queue closes or a write fails.
///
/// # Errors
///
/// The socket's error, or `TimedOut` when a write stalls.
pub async fn write_frames<W>(mut io: W, mut queue: mpsc::Receiver<Frame>) -> std::io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::with_capacity(64 * 1024);
    while let Some(frame) = queue.recv().await {
        out.clear();
        encode(&frame, &mut out)?;
        while out.len() < WRITE_BATCH {
            match queue.try_recv() {
                Ok(frame) => encode(&frame, &mut out)?,
                Err(_) => break,
            }
        }
        tokio::time::timeout(WRITE_TIMEOUT, io.write_all(&out))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    }
    Ok(())
}

/// A task aborted when this handle is dropped, so a link's writer never
/// outlives the link (it holds the socket's write half).
#[derive(Debug)]
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn encode(frame: &Frame, out: &mut BytesMut) -> std::io::Result<()> {
    frame
        .encode(out)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two muxes joined back to back in memory, frames flowing both ways.
    fn pair() -> (Mux, Mux) {
        let (a_tx, mut a_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let (b_tx, mut b_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let a = Mux::new(a_tx);
        let b = Mux::new(b_tx);
        let (a2, b2) = (a.clone(), b.clone());
        tokio::spawn(async move {
            while let Some(frame) = a_rx.recv().await {
                b2.dispatch(frame);
            }
        });
        tokio::spawn(async move {
            while let Some(frame) = b_rx.recv().await {
                a2.dispatch(frame);
            }
        });
        (a, b)
    }

    #[tokio::test]
    async fn a_slow_reader_holds_the_sender_to_one_window() {
        let (a, b) = pair();
        let (sender, _a_rx) = a.register(1).unwrap();
        let (_b_tx, mut receiver) = b.register(1).unwrap();
        let big = Bytes::from(vec![7u8; WINDOW as usize * 3]);
        let sending = tokio::spawn(async move { sender.send(big).await });
        // Without reading, the sender stops after one window.
        tokio::task::yield_now().await;
        let mut got = 0usize;
        while got < WINDOW as usize {
            match receiver.inbound.recv().await.unwrap() {
                Inbound::Data(d) => got += d.len(),
                Inbound::Close(_) => panic!("closed"),
            }
        }
        assert!(!sending.is_finished());
        assert!(receiver.inbound.is_empty());
        // Reading through `recv` returns credit and the rest arrives.
        receiver.consumed = got as u32;
        assert!(receiver.consumed >= ACK_THRESHOLD);
        while got < WINDOW as usize * 3 {
            if let Some(Inbound::Data(d)) = receiver.recv().await {
                got += d.len();
            }
        }
        sending.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn close_and_shutdown_reach_the_receiver() {
        let (a, b) = pair();
        let (sender, _a_rx) = a.register(3).unwrap();
        let (_b_tx, mut receiver) = b.register(3).unwrap();
        sender.send(Bytes::from_static(b"hi")).await.unwrap();
        sender.close(&b"bye"[..]).await;
        assert_eq!(
            receiver.recv().await,
            Some(Inbound::Data(Bytes::from_static(b"hi")))
        );
        assert_eq!(
            receiver.recv().await,
            Some(Inbound::Close(Bytes::from_static(b"bye")))
        );
        let (_tx, mut lost) = b.register(4).unwrap();
        b.shutdown();
        assert_eq!(lost.recv().await, None);
        assert!(b.register(0).is_none());
    }

    #[tokio::test]
    async fn data_beyond_the_window_closes_the_stream() {
        let (tx, _rx) = mpsc::channel(OUTBOUND_QUEUE);
        let mux = Mux::new(tx);
        let (_s, mut receiver) = mux.register(9).unwrap();
        mux.dispatch(Frame {
            kind: FrameKind::Data,
            stream: 9,
            payload: Bytes::from(vec![0u8; WINDOW as usize + 1]),
        });
        assert!(matches!(receiver.recv().await, Some(Inbound::Close(_))));
        assert!(!mux.contains(9));
    }
}
