//! A client stream that changes hands: the MySQL listener logs in to an
//! in-place driver over an in-memory duplex (the greeting comes before the
//! client names its connection, so the gateway must answer it itself),
//! then gives the driver the client's own stream, so the session's bytes
//! no longer cross the duplex.
//!
//! ```text
//!  login:      client <--> gateway <--duplex--> driver
//!  handed off: client <-------------------------> driver
//! ```
//!
//! The driver reads and writes the duplex until [`Handover::give`] arrives,
//! then the client's stream, starting with whatever the gateway had read
//! from it past the login. The gateway hands over only once it has read
//! the driver's answer to the login and sends nothing more on the duplex.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::oneshot;

use crate::in_place::Replay;

/// The gateway's half: gives the driver the client's stream.
#[derive(Debug)]
pub(crate) struct Handover<S> {
    sender: oneshot::Sender<Replay<S>>,
}

impl<S> Handover<S> {
    /// Hands `client` to the driver; `read` is what the gateway already
    /// read from it, which the driver reads first. `Err` gives the stream
    /// back when the driver has ended.
    ///
    /// # Errors
    ///
    /// The stream, when the driver is gone.
    pub(crate) fn give(self, read: Bytes, client: S) -> Result<(), S> {
        self.sender
            .send(Replay::new(read, client))
            .map_err(Replay::into_inner)
    }
}

/// The driver's half: the duplex, then the client's own stream.
#[derive(Debug)]
pub(crate) struct Handoff<S> {
    state: State<S>,
}

#[derive(Debug)]
enum State<S> {
    Login {
        duplex: DuplexStream,
        client: oneshot::Receiver<Replay<S>>,
    },
    Client(Replay<S>),
}

/// A stream for the driver that starts on `duplex`, and the handle that
/// moves it to the client's stream.
pub(crate) fn handoff<S>(duplex: DuplexStream) -> (Handoff<S>, Handover<S>) {
    let (sender, client) = oneshot::channel();
    (
        Handoff {
            state: State::Login { duplex, client },
        },
        Handover { sender },
    )
}

impl<S: Unpin> Handoff<S> {
    /// Moves to the client's stream once it was handed over. A dropped
    /// handover (the login failed) leaves the duplex, which then ends.
    fn poll_switch(&mut self, cx: &mut Context<'_>) {
        if let State::Login { client, .. } = &mut self.state
            && let Poll::Ready(Ok(stream)) = Pin::new(client).poll(cx)
        {
            self.state = State::Client(stream);
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Handoff<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.poll_switch(cx);
        match &mut self.state {
            State::Login { duplex, .. } => Pin::new(duplex).poll_read(cx, buf),
            State::Client(client) => Pin::new(client).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Handoff<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.poll_switch(cx);
        match &mut self.state {
            State::Login { duplex, .. } => Pin::new(duplex).poll_write(cx, data),
            State::Client(client) => Pin::new(client).poll_write(cx, data),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.state {
            State::Login { duplex, .. } => Pin::new(duplex).poll_flush(cx),
            State::Client(client) => Pin::new(client).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_switch(cx);
        match &mut self.state {
            State::Login { duplex, .. } => Pin::new(duplex).poll_shutdown(cx),
            State::Client(client) => Pin::new(client).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_driver_moves_from_the_duplex_to_the_client_with_what_was_read() {
        let (mut gateway, driver_end) = tokio::io::duplex(64);
        let (mut driver, handover) = handoff(driver_end);
        let (mut client, client_end) = tokio::io::duplex(64);

        // The login, over the duplex.
        gateway.write_all(b"login").await.unwrap();
        let mut login = [0u8; 5];
        driver.read_exact(&mut login).await.unwrap();
        assert_eq!(&login, b"login");
        driver.write_all(b"ok").await.unwrap();
        let mut ok = [0u8; 2];
        gateway.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"ok");

        // Handed over: the bytes the gateway read past the login first.
        handover
            .give(Bytes::from_static(b"early-"), client_end)
            .unwrap();
        drop(gateway);
        client.write_all(b"late").await.unwrap();
        let mut got = [0u8; 10];
        driver.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"early-late");
        driver.write_all(b"rows").await.unwrap();
        let mut rows = [0u8; 4];
        client.read_exact(&mut rows).await.unwrap();
        assert_eq!(&rows, b"rows");
    }

    #[tokio::test]
    async fn a_pending_read_on_the_duplex_wakes_for_the_handover() {
        let (_gateway, driver_end) = tokio::io::duplex(64);
        let (mut driver, handover) = handoff(driver_end);
        let (mut client, client_end) = tokio::io::duplex(64);
        let reading = tokio::spawn(async move {
            let mut got = [0u8; 2];
            driver.read_exact(&mut got).await.map(|_| got)
        });
        tokio::task::yield_now().await;
        handover.give(Bytes::new(), client_end).unwrap();
        client.write_all(b"hi").await.unwrap();
        assert_eq!(&reading.await.unwrap().unwrap(), b"hi");
    }

    #[tokio::test]
    async fn without_a_handover_the_duplex_simply_ends() {
        let (gateway, driver_end) = tokio::io::duplex(64);
        let (mut driver, handover) = handoff::<DuplexStream>(driver_end);
        drop(handover);
        drop(gateway);
        let mut rest = Vec::new();
        assert_eq!(driver.read_to_end(&mut rest).await.unwrap(), 0);
    }
}
