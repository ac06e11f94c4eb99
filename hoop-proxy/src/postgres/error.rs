//! How a PostgreSQL session fails, and what the client is told.

use std::io;

use hoop_wire::DecodeError;

/// SQLSTATE `08001`: sqlclient_unable_to_establish_sqlconnection.
pub const UNABLE_TO_CONNECT: &str = "08001";
/// SQLSTATE `08P01`: protocol_violation.
pub const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE `28P01`: invalid_password.
pub const INVALID_PASSWORD: &str = "28P01";
/// SQLSTATE `28000`: invalid_authorization_specification.
pub const INVALID_AUTHORIZATION: &str = "28000";
/// SQLSTATE `0A000`: feature_not_supported.
pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
/// SQLSTATE `57P01`: admin_shutdown (a session ended by hoop itself).
pub const ADMIN_SHUTDOWN: &str = "57P01";

pub use crate::error::Culprit;

/// A session that could not start or had to end.
///
/// Messages never contain the connection's user, password or any credential;
/// a server error that might (authentication failures name the role) is
/// replaced by hoop's own wording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A socket failed or closed mid-message.
    #[error("{culprit:?} connection failed: {source}")]
    Io {
        /// Which side's socket.
        culprit: Culprit,
        /// The I/O error.
        source: io::Error,
    },
    /// A peer sent bytes that do not follow the protocol.
    #[error("protocol violation by {culprit:?}: {source}")]
    Protocol {
        /// Which side.
        culprit: Culprit,
        /// What the decoder found.
        source: DecodeError,
    },
    /// A peer sent a valid message at the wrong time.
    #[error("protocol violation by {culprit:?}: unexpected {message}")]
    Unexpected {
        /// Which side.
        culprit: Culprit,
        /// The message's name.
        message: &'static str,
    },
    /// The database server could not be reached.
    #[error("cannot reach the database server: {0}")]
    Unreachable(io::Error),
    /// TLS to the server failed or was refused when required.
    #[error("TLS with the database server failed: {0}")]
    UpstreamTls(String),
    /// The client's access token was refused.
    #[error("client authentication failed")]
    ClientAuth,
    /// The server refused the connection's credentials.
    #[error("the database server refused the connection's credentials")]
    CredentialsRefused,
    /// The server asked for an authentication method hoop does not speak.
    #[error("the database server asked for unsupported authentication {0}")]
    UnsupportedAuth(&'static str),
    /// The server ended the startup with an error that is safe to pass on.
    #[error("database server error {code}")]
    Server {
        /// SQLSTATE.
        code: String,
        /// The server's message.
        message: String,
    },
    /// The client asked for something hoop refuses.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The pipeline hook refused something the driver cannot refuse in place.
    #[error("session ended by policy: {0}")]
    Policy(String),
    /// A handshake phase took too long.
    #[error("{0:?} took too long to authenticate")]
    Timeout(Culprit),
}

impl SessionError {
    pub(crate) fn client_io(source: io::Error) -> Self {
        Self::Io {
            culprit: Culprit::Client,
            source,
        }
    }

    pub(crate) fn server_io(source: io::Error) -> Self {
        Self::Io {
            culprit: Culprit::Server,
            source,
        }
    }

    /// Who caused it.
    pub fn culprit(&self) -> Culprit {
        match self {
            Self::Io { culprit, .. }
            | Self::Protocol { culprit, .. }
            | Self::Unexpected { culprit, .. }
            | Self::Timeout(culprit) => *culprit,
            Self::Unreachable(_)
            | Self::UpstreamTls(_)
            | Self::CredentialsRefused
            | Self::UnsupportedAuth(_)
            | Self::Server { .. } => Culprit::Server,
            Self::ClientAuth | Self::Unsupported(_) => Culprit::Client,
            Self::Policy(_) => Culprit::Hoop,
        }
    }

    /// The SQLSTATE and message the client receives, or `None` when the
    /// client is gone and nothing can be sent.
    pub fn client_error(&self) -> Option<(&str, String)> {
        Some(match self {
            Self::Io {
                culprit: Culprit::Client,
                ..
            } => return None,
            Self::Io { .. } => (
                UNABLE_TO_CONNECT,
                "hoop lost the connection to the database server".to_owned(),
            ),
            Self::Protocol { culprit, source } => (
                PROTOCOL_VIOLATION,
                match culprit {
                    Culprit::Server => format!("hoop: invalid message from the database server: {source}"),
                    _ => format!("hoop: invalid message from the client: {source}"),
                },
            ),
            Self::Unexpected { culprit, message } => (
                PROTOCOL_VIOLATION,
                match culprit {
                    Culprit::Server => format!("hoop: unexpected {message} from the database server"),
                    _ => format!("hoop: unexpected {message} from the client"),
                },
            ),
            Self::Unreachable(error) => (
                UNABLE_TO_CONNECT,
                format!("hoop cannot reach the database server: {error}"),
            ),
            Self::UpstreamTls(reason) => (
                UNABLE_TO_CONNECT,
                format!("hoop: TLS with the database server failed: {reason}"),
            ),
            Self::ClientAuth => (
                INVALID_PASSWORD,
                "hoop: access token refused".to_owned(),
            ),
            Self::CredentialsRefused => (
                INVALID_PASSWORD,
                "hoop: the database server refused the connection's credentials; check the connection's USER and PASS".to_owned(),
            ),
            Self::UnsupportedAuth(method) => (
                INVALID_AUTHORIZATION,
                format!("hoop: the database server asked for {method} authentication, which hoop does not support"),
            ),
            Self::Server { code, message } => (code.as_str(), message.clone()),
            Self::Unsupported(what) => (FEATURE_NOT_SUPPORTED, format!("hoop: {what}")),
            Self::Policy(message) => (ADMIN_SHUTDOWN, format!("hoop: {message}")),
            Self::Timeout(Culprit::Server) => (
                UNABLE_TO_CONNECT,
                "hoop: the database server did not complete the connection in time".to_owned(),
            ),
            Self::Timeout(_) => (
                PROTOCOL_VIOLATION,
                "hoop: the client did not complete the startup in time".to_owned(),
            ),
        })
    }
}
