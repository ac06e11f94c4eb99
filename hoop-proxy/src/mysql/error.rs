//! How a MySQL session fails, and the ERR packet the client is told.

use std::io;

use hoop_wire::DecodeError;

/// ER_CONNECT_TO_FOREIGN_DATA_SOURCE, for "cannot reach the database
/// server". Not CR_CONN_HOST_ERROR (2003): codes of 2000 and up are the
/// client library's own, and libmariadb reports an ERR packet carrying one
/// as a malformed packet.
pub const UNABLE_TO_CONNECT: (u16, &[u8; 5]) = (1429, b"HY000");
/// ER_ACCESS_DENIED_ERROR.
pub const ACCESS_DENIED: (u16, &[u8; 5]) = (1045, b"28000");
/// ER_NET_READ_ERROR / packets out of order: a protocol violation.
pub const PROTOCOL_VIOLATION: (u16, &[u8; 5]) = (1158, b"08S01");
/// ER_NOT_SUPPORTED_AUTH_MODE.
pub const UNSUPPORTED_AUTH: (u16, &[u8; 5]) = (1251, b"08004");
/// ER_NOT_SUPPORTED_YET.
pub const NOT_SUPPORTED: (u16, &[u8; 5]) = (1235, b"42000");
/// ER_SPECIFIC_ACCESS_DENIED_ERROR: a statement refused by policy.
pub const REFUSED_BY_POLICY: (u16, &[u8; 5]) = (1227, b"42000");
/// ER_CONNECTION_KILLED: a session ended by hoop itself.
pub const SESSION_ENDED: (u16, &[u8; 5]) = (1927, b"70100");

pub use crate::error::Culprit;

/// A session that could not start or had to end.
///
/// Messages never contain the connection's user or password: a server
/// error during authentication (which names the account) is replaced by
/// hoop's own wording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A socket failed or closed mid-packet.
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
    /// A peer sent a valid packet at the wrong time.
    #[error("protocol violation by {culprit:?}: unexpected {message}")]
    Unexpected {
        /// Which side.
        culprit: Culprit,
        /// What arrived.
        message: &'static str,
    },
    /// The database server could not be reached.
    #[error("cannot reach the database server: {0}")]
    Unreachable(io::Error),
    /// TLS to the server failed, or the server lacks it and `SSLMODE`
    /// requires it.
    #[error("TLS with the database server failed: {0}")]
    UpstreamTls(String),
    /// The client's access token was refused.
    #[error("client authentication failed")]
    ClientAuth,
    /// The server refused the connection's credentials.
    #[error("the database server refused the connection's credentials")]
    CredentialsRefused,
    /// The server asked for an authentication plugin hoop does not speak.
    #[error("the database server asked for an unsupported authentication plugin")]
    UnsupportedAuth,
    /// The server ended the login with an error that is safe to pass on.
    #[error("database server error {code}")]
    Server {
        /// MySQL error number.
        code: u16,
        /// SQLSTATE.
        sql_state: [u8; 5],
        /// The server's message, the real user blotted out.
        message: String,
    },
    /// The client asked for something hoop refuses.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The pipeline or the connection's settings ended the session.
    #[error("session ended by policy: {0}")]
    Policy(String),
    /// A handshake phase took too long.
    #[error("{0:?} took too long to authenticate")]
    Timeout(Culprit),
    /// Not a failure: the client sent COM_CHANGE_USER, and the relay stops
    /// for the driver to log in again on the server leg. Never the outcome
    /// of a session.
    #[error("the client asked to change user")]
    ChangeUser,
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

    pub(crate) fn client_protocol(source: DecodeError) -> Self {
        Self::Protocol {
            culprit: Culprit::Client,
            source,
        }
    }

    pub(crate) fn server_protocol(source: DecodeError) -> Self {
        Self::Protocol {
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
            | Self::UnsupportedAuth
            | Self::Server { .. } => Culprit::Server,
            Self::ClientAuth | Self::Unsupported(_) | Self::ChangeUser => Culprit::Client,
            Self::Policy(_) => Culprit::Hoop,
        }
    }

    /// True when the database server's connection broke or closed partway
    /// through a packet (killed, timed out, restarted): once commands flow,
    /// the client is told by its connection closing, as it would be without
    /// hoop.
    pub fn lost_server(&self) -> bool {
        matches!(
            self,
            Self::Io {
                culprit: Culprit::Server,
                ..
            }
        )
    }

    /// The error number, SQLSTATE and message of the ERR packet the client
    /// receives, or `None` when the client is gone.
    pub fn client_error(&self) -> Option<(u16, [u8; 5], String)> {
        let ((code, state), message) = match self {
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
                    Culprit::Server => {
                        format!("hoop: invalid packet from the database server: {source}")
                    }
                    _ => format!("hoop: invalid packet from the client: {source}"),
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
            Self::ClientAuth => (ACCESS_DENIED, "hoop: access token refused".to_owned()),
            Self::CredentialsRefused => (
                ACCESS_DENIED,
                "hoop: the database server refused the connection's credentials; check the connection's USER and PASS".to_owned(),
            ),
            Self::UnsupportedAuth => (
                UNSUPPORTED_AUTH,
                "hoop: the database server asked for an authentication plugin hoop does not support".to_owned(),
            ),
            Self::Server {
                code,
                sql_state,
                message,
            } => return Some((*code, *sql_state, message.clone())),
            Self::Unsupported(what) => (NOT_SUPPORTED, format!("hoop: {what}")),
            Self::ChangeUser => (
                NOT_SUPPORTED,
                "hoop: COM_CHANGE_USER could not be answered".to_owned(),
            ),
            Self::Policy(message) => (SESSION_ENDED, format!("hoop: {message}")),
            Self::Timeout(Culprit::Server) => (
                UNABLE_TO_CONNECT,
                "hoop: the database server did not complete the connection in time".to_owned(),
            ),
            Self::Timeout(_) => (
                PROTOCOL_VIOLATION,
                "hoop: the client did not complete the login in time".to_owned(),
            ),
        };
        Some((code, *state, message))
    }
}
