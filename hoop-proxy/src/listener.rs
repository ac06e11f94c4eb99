//! The accept loop every protocol's listener shares.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::Instrument as _;

/// How long to pause when `accept` fails (typically out of file descriptors),
/// so the loop does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

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
    let mut sessions = tokio::task::JoinSet::new();
    loop {
        while sessions.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, peer)) => {
                // Small protocol messages must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let span = tracing::info_span!("session", protocol, %peer);
                sessions.spawn(session(stream, peer).instrument(span));
            }
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
