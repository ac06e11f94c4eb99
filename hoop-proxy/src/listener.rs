//! The accept loop every protocol's listener shares.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument as _;

/// How long to pause when `accept` fails (typically out of file descriptors),
/// so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The most refusals a listener at its cap runs at once, and how long
/// each may take. A refusal is polite (the client's own protocol says
/// why), which costs a task and perhaps a TLS handshake; a flood past
/// its cap must not buy what the cap denies, so beyond these the socket
/// is closed without a word.
const MAX_REFUSALS: usize = 64;
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts connections until dropped, running `session` for each on its own
/// task with a tracing span naming the protocol and peer. A failing or
/// panicking session never stops the loop or other sessions; dropping the
/// loop ends its sessions too, so a listener that stops leaves nothing
/// running behind it.
pub async fn serve<F, Fut>(listener: TcpListener, protocol: &'static str, session: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    serve_limited(listener, protocol, usize::MAX, session, |_, _| async {}).await;
}

/// [`serve`] with at most `limit` sessions at once: a connection accepted
/// while `limit` run is handed to `refuse` instead, which tells the client
/// in its protocol (its own task, at most 5 s, at most 64 at once; past
/// those the socket is simply closed). Sessions already running are not
/// disturbed, and the next connection after one ends is served again.
pub async fn serve_limited<F, Fut, R, RFut>(
    listener: TcpListener,
    protocol: &'static str,
    limit: usize,
    session: F,
    refuse: R,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
    R: Fn(TcpStream, SocketAddr) -> RFut,
    RFut: Future<Output = ()> + Send + 'static,
{
    let mut sessions = tokio::task::JoinSet::new();
    let mut refusals = tokio::task::JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        while sessions.try_join_next().is_some() {}
        while refusals.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                // Small protocol messages must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let span = tracing::info_span!("session", protocol, %peer);
                if sessions.len() < limit {
                    sessions.spawn(session(stream, peer).instrument(span));
                } else if refusals.len() < MAX_REFUSALS {
                    span.in_scope(|| tracing::warn!(limit, "listener at its cap; refused"));
                    let refusal = tokio::time::timeout(REFUSAL_TIMEOUT, refuse(stream, peer));
                    refusals.spawn(
                        async move {
                            let _ = refusal.await;
                        }
                        .instrument(span),
                    );
                } else {
                    span.in_scope(|| tracing::warn!(limit, "listener at its cap; closed"));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn past_its_limit_a_listener_refuses_and_serves_again_once_a_session_ends() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve_limited(
            listener,
            "test",
            2,
            |mut stream, _| async move {
                // Echo one byte at a time until the client closes.
                let mut byte = [0u8; 1];
                while let Ok(1) = stream.read(&mut byte).await {
                    if stream.write_all(&byte).await.is_err() {
                        return;
                    }
                }
            },
            |mut stream, _| async move {
                let _ = stream.write_all(b"busy").await;
            },
        ));
        async fn echo(stream: &mut TcpStream, byte: u8) -> u8 {
            let mut got = [0u8; 1];
            stream.write_all(&[byte]).await.unwrap();
            stream.read_exact(&mut got).await.unwrap();
            got[0]
        }
        let mut first = TcpStream::connect(addr).await.unwrap();
        let mut second = TcpStream::connect(addr).await.unwrap();
        assert_eq!(echo(&mut first, 1).await, 1);
        assert_eq!(echo(&mut second, 2).await, 2);
        let mut third = TcpStream::connect(addr).await.unwrap();
        let mut refused = Vec::new();
        third.read_to_end(&mut refused).await.unwrap();
        assert_eq!(refused, b"busy");
        // The sessions already served go on.
        assert_eq!(echo(&mut first, 3).await, 3);
        drop(first);
        // Once one ends (the loop notices at its next accept), a new
        // connection is served again.
        let mut fourth = loop {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.write_all(&[4]).await.unwrap();
            let mut got = [0u8; 4];
            match stream.read(&mut got).await.unwrap() {
                1 if got[0] == 4 => break stream,
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert_eq!(echo(&mut fourth, 5).await, 5);
        assert_eq!(echo(&mut second, 6).await, 6);
        server.abort();
    }
}
