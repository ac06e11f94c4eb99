//! What every protocol's session errors share: who caused a failure, and how
//! a session's end is logged. Each protocol's `SessionError` records its
//! culprit and renders itself in its client's protocol (an ErrorResponse
//! with a SQLSTATE, an ERR packet).

use std::fmt::Display;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Culprit {
    /// The client (or its network path).
    Client,
    /// The database server.
    Server,
    /// hoop's configuration or policy.
    Hoop,
}

/// Logs how a session ended: quietly when it simply ended, at `info` when
/// the client broke it off, at `warn` when the server or hoop failed it.
pub(crate) fn log_session_end<E: Display>(
    result: Result<(), E>,
    culprit: impl FnOnce(&E) -> Culprit,
) {
    match result {
        Ok(()) => tracing::debug!("session ended"),
        Err(error) => match culprit(&error) {
            Culprit::Client => tracing::info!(%error, "session ended by the client"),
            _ => tracing::warn!(%error, "session failed"),
        },
    }
}
