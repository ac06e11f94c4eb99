//! One stream type for both legs: plain, or TLS in either role, over TCP
//! or any other byte stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Any byte stream a client can arrive on: a TCP socket, an in-memory
/// duplex, a stream multiplexed over another connection.
pub trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + ?Sized> ByteStream for T {}

/// A client's transport, boxed so each driver is compiled once for every
/// kind of stream; one indirect call per read or write, next to a system
/// call or a TLS record.
pub type ClientIo = Box<dyn ByteStream>;

/// A connection to a client or a server, plain or encrypted, over `S`.
pub enum Stream<S = TcpStream> {
    /// Unencrypted.
    Plain(S),
    /// TLS we terminate (client leg).
    TlsServer(Box<tokio_rustls::server::TlsStream<S>>),
    /// TLS we originate (server leg).
    TlsClient(Box<tokio_rustls::client::TlsStream<S>>),
}

impl<S> Stream<S> {
    /// True when the stream is encrypted.
    pub fn is_tls(&self) -> bool {
        !matches!(self, Self::Plain(_))
    }
}

impl<S> std::fmt::Debug for Stream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Stream::Plain",
            Self::TlsServer(_) => "Stream::TlsServer",
            Self::TlsClient(_) => "Stream::TlsClient",
        })
    }
}

impl Stream {
    /// The underlying TCP socket.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::TlsServer(s) => s.get_ref().0,
            Self::TlsClient(s) => s.get_ref().0,
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Stream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::TlsServer(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::TlsClient(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Stream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::TlsServer(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::TlsClient(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::TlsServer(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::TlsClient(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::TlsServer(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Self::TlsClient(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
