//! What the gateway's client listeners (the API, PostgreSQL, MySQL) share:
//! their limits, and the way they refuse a client past their cap.
//!
//! A client that connects and says nothing, or half a request, must not
//! hold a task and a socket for ever, and a flood of clients must not take
//! every file descriptor from the sessions already running. So each
//! listener gives a client a bounded time to log in or send its request,
//! and serves at most [`Limits::max_connections`] at once; past that, a
//! new client is told why in its own protocol (PostgreSQL's `53300`,
//! MySQL's `1040`, HTTP 503) and let go, and the sessions already served
//! go on (`hoop_proxy::listener::serve_limited`).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One gateway's limits on its client listeners.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Time a PostgreSQL or MySQL client has to log in.
    pub(crate) login_timeout: Duration,
    /// Time an API client has to send a request, and an idle API
    /// connection to send its next one.
    pub(crate) api_idle_timeout: Duration,
    /// Connections each listener serves at once.
    pub(crate) max_connections: usize,
}

/// How long a refused client's remaining input is read and dropped after
/// the refusal, and how much of it at most.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 64 * 1024;

/// The message each listener's refusal carries.
pub(crate) fn at_capacity(limit: usize) -> String {
    format!("too many connections to this gateway listener (at most {limit}); try again later")
}

/// Sends `bytes` (a refusal), closes the sending side, then reads and
/// drops what the client still sends until it closes, for a short while:
/// closing a socket with unread input makes the kernel send a reset,
/// which can discard the refusal from the client's receive buffer before
/// the client reads it.
pub(crate) async fn say_and_close(
    stream: &mut (impl AsyncRead + AsyncWrite + Unpin),
    bytes: &[u8],
) {
    if stream.write_all(bytes).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let _ = tokio::time::timeout(LINGER, async {
        let mut sink = [0u8; 4096];
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => drained += n,
            }
        }
    })
    .await;
}
