//! Sessions of an agent embedded in this process (`hoop up`): the driver
//! runs here, on the client's own stream, instead of behind the link.
//!
//! ```text
//!  over the link:  client --> gateway --DATA--> link (TLS, TCP) --> agent: pump --> duplex --> driver --> database
//!  in place:       client --> gateway: driver -------------------------------------------------------> database
//! ```
//!
//! The checks, the policy, the recorder and the records are the same; only
//! the hops are gone. The embedded agent's link still carries its status,
//! so its connections go offline (and these sessions are refused) when it
//! stops.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use hoop_proxy::agent::{InPlaceSession, StartError};
use hoop_proxy::link::messages::OpenSession;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::api::AppState;
use crate::sessions::EventWriter;

/// An in-place session ready for its client's stream.
#[derive(Debug)]
pub struct Prepared {
    session: InPlaceSession,
    id: String,
    events: EventWriter,
}

/// Builds the session's driver with the gateway's event writer as its
/// recorder's destination, journaling each event.
///
/// # Errors
///
/// Why the session cannot start, for the client and the record.
pub fn prepare(state: &AppState, open: &OpenSession) -> Result<Prepared, StartError> {
    let session = InPlaceSession::prepare(open, state.events.queue(), state.events.journal())
        .inspect_err(|error| {
            tracing::warn!(session = %open.session_id, %error, "session could not start");
        })?;
    Ok(Prepared {
        session,
        id: open.session_id.clone(),
        events: state.events.clone(),
    })
}

/// What an in-place session did, for its record.
#[derive(Debug, Default)]
pub struct Served {
    /// Bytes read from the client.
    pub bytes_in: u64,
    /// Bytes written to the client.
    pub bytes_out: u64,
    /// Why the driver failed the session, if it did.
    pub failure: Option<String>,
}

impl Served {
    /// The session's status as the driver ended it: `done`, or `failed`
    /// with why.
    pub fn outcome(&self) -> (&'static str, Option<String>) {
        match &self.failure {
            Some(failure) => ("failed", Some(failure.clone())),
            None => ("done", None),
        }
    }
}

/// Runs `session` on `client` to its end, or until the gateway stops (the
/// session is then cut: its recorder still records its end, and its record
/// says the gateway shut down).
pub async fn serve<S>(prepared: Prepared, client: S) -> Served
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Prepared {
        session,
        id,
        events,
    } = prepared;
    let counts = Arc::new(ByteCounts::default());
    let mut stopping = events.stopping();
    let served = session.serve(Counted {
        inner: client,
        counts: Arc::clone(&counts),
    });
    let failure = tokio::select! {
        failure = served => failure,
        Ok(_) = stopping.wait_for(|stopping| *stopping) => {
            events.cut(&id);
            None
        }
    };
    Served {
        bytes_in: counts.read.load(Ordering::Relaxed),
        bytes_out: counts.written.load(Ordering::Relaxed),
        failure,
    }
}

#[derive(Debug, Default)]
struct ByteCounts {
    read: AtomicU64,
    written: AtomicU64,
}

/// A stream that counts what passes, for the session record.
struct Counted<S> {
    inner: S,
    counts: Arc<ByteCounts>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.counts.read.fetch_add(read, Ordering::Relaxed);
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = polled {
            self.counts.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled {
            self.counts.written.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A stream whose first reads return bytes the gateway already read (the
/// client's startup), then the stream's own.
#[derive(Debug)]
pub struct Replay<S> {
    prefix: Bytes,
    inner: S,
}

impl<S> Replay<S> {
    /// `prefix` is read before anything from `inner`.
    pub fn new(prefix: Bytes, inner: S) -> Self {
        Self { prefix, inner }
    }

    /// The stream itself, dropping what was not yet read of the prefix.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Replay<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.prefix.is_empty() {
            return Pin::new(&mut self.inner).poll_read(cx, buf);
        }
        let n = self.prefix.len().min(buf.remaining());
        buf.put_slice(&self.prefix[..n]);
        self.prefix.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Replay<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn replay_reads_the_prefix_first_and_counts_see_every_byte() {
        let (near, mut far) = tokio::io::duplex(64);
        let counts = Arc::new(ByteCounts::default());
        let mut stream = Counted {
            inner: Replay::new(Bytes::from_static(b"startup"), near),
            counts: Arc::clone(&counts),
        };
        far.write_all(b"-then").await.unwrap();
        let mut got = [0u8; 12];
        stream.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"startup-then");
        stream.write_all(b"reply").await.unwrap();
        let mut reply = [0u8; 5];
        far.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"reply");
        assert_eq!(counts.read.load(Ordering::Relaxed), 12);
        assert_eq!(counts.written.load(Ordering::Relaxed), 5);
    }
}
