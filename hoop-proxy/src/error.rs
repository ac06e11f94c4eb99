//! One error for every protocol's sessions: what went wrong ([`SessionError`])
//! and which side caused it ([`Culprit`]). The protocols share the cases (a
//! socket failed, a peer broke the protocol, the server refused the
//! credentials, the policy ended the session); each renders them in its own
//! client's terms: `postgres::client_error` as an ErrorResponse's SQLSTATE
//! and message, `mysql::client_error` as an ERR packet.

use std::borrow::Cow;
use std::io;

use hoop_wire::DecodeError;

/// Who caused a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Culprit {
    /// The client (or its network path).
    Client,
    /// The database server.
    Server,
    /// The connection's policy or settings: a rule ended the session, or
    /// the connection forbids what a peer asked for.
    Policy,
    /// hoop itself: something it cannot do safely, so it fails closed.
    Hoop,
}

/// Why TLS with the database server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamTlsError {
    /// The connection's `HOST` cannot be checked against a certificate.
    #[error("HOST is not a valid TLS name")]
    InvalidName,
    /// `SSLMODE` requires TLS and the server does not offer it.
    #[error("the database server does not support TLS, and SSLMODE requires it")]
    ServerWithoutTls,
    /// The handshake failed (a certificate that does not verify, say).
    #[error("{0}")]
    Handshake(io::Error),
}

/// An error the database server ended a login with, safe to pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// MySQL's error number; PostgreSQL has none.
    pub number: Option<u16>,
    /// The SQLSTATE, as the server sent it.
    pub sql_state: String,
    /// The server's message, the connection's user blotted out.
    pub message: String,
}

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
    /// TLS to the server failed, or the server lacks it and `SSLMODE`
    /// requires it.
    #[error("TLS with the database server failed: {0}")]
    UpstreamTls(#[from] UpstreamTlsError),
    /// The client's access token was refused.
    #[error("client authentication failed")]
    ClientAuth,
    /// The server refused the connection's credentials.
    #[error("the database server refused the connection's credentials")]
    CredentialsRefused,
    /// The server asked for an authentication method (or plugin) hoop does
    /// not speak.
    #[error("the database server asked for unsupported authentication {0}")]
    UnsupportedAuth(&'static str),
    /// The server ended the login with an error that is safe to pass on.
    #[error("database server error {}", .0.sql_state)]
    Server(ServerError),
    /// The client asked for something hoop refuses.
    #[error("{0}")]
    Unsupported(&'static str),
    /// The connection's policy or settings ended the session.
    #[error("session ended by policy: {0}")]
    Policy(Cow<'static, str>),
    /// hoop ended the session rather than pass what it cannot handle safely
    /// (a row whose columns it does not know, a rewrite it cannot encode).
    #[error("session ended by hoop: {0}")]
    Ended(&'static str),
    /// A handshake phase took too long.
    #[error("{0:?} took too long to authenticate")]
    Timeout(Culprit),
    /// Not a failure: a MySQL client sent COM_CHANGE_USER, and the relay
    /// stops for the driver to log in again on the server leg. Never the
    /// outcome of a session.
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

    /// True when the database server's connection broke or closed partway
    /// through a message (killed, timed out, restarted): once commands
    /// flow, the client is told by its connection closing, as it would be
    /// without hoop.
    pub fn lost_server(&self) -> bool {
        matches!(
            self,
            Self::Io {
                culprit: Culprit::Server,
                ..
            }
        )
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
            | Self::Server(_) => Culprit::Server,
            Self::ClientAuth | Self::Unsupported(_) | Self::ChangeUser => Culprit::Client,
            Self::Policy(_) => Culprit::Policy,
            Self::Ended(_) => Culprit::Hoop,
        }
    }
}

/// Logs how a session ended: quietly when it simply ended, at `info` when
/// the client went away, at `warn` when the server, the policy or hoop
/// failed it. Returns why it failed, for its record: every error but the
/// client's socket closing or failing (a client that leaves ends its
/// session, it does not fail it).
pub(crate) fn log_session_end(result: Result<(), SessionError>) -> Option<String> {
    match result {
        Ok(()) => {
            tracing::debug!("session ended");
            None
        }
        Err(
            error @ SessionError::Io {
                culprit: Culprit::Client,
                ..
            },
        ) => {
            tracing::info!(%error, "session ended by the client");
            None
        }
        Err(error) => {
            tracing::warn!(%error, "session failed");
            Some(error.to_string())
        }
    }
}

/// The side a failure names in a client's message.
pub(crate) fn side(culprit: Culprit) -> &'static str {
    match culprit {
        Culprit::Server => "the database server",
        _ => "the client",
    }
}

impl From<crate::relay::PeerIoError> for SessionError {
    fn from(error: crate::relay::PeerIoError) -> Self {
        match error.peer {
            crate::relay::Peer::Client => Self::client_io(error.source),
            crate::relay::Peer::Server => Self::server_io(error.source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error, two renderings: each case's culprit, the PostgreSQL
    /// SQLSTATE and the MySQL error number its client gets.
    #[test]
    fn each_protocol_renders_the_one_error_in_its_own_terms() {
        struct Case {
            error: SessionError,
            culprit: Culprit,
            postgres: Option<&'static str>,
            mysql: Option<u16>,
        }
        let cases = [
            Case {
                error: SessionError::client_io(io::ErrorKind::BrokenPipe.into()),
                culprit: Culprit::Client,
                postgres: None,
                mysql: None,
            },
            Case {
                error: SessionError::server_io(io::ErrorKind::ConnectionReset.into()),
                culprit: Culprit::Server,
                postgres: Some("08001"),
                mysql: Some(1429),
            },
            Case {
                error: SessionError::UpstreamTls(UpstreamTlsError::ServerWithoutTls),
                culprit: Culprit::Server,
                postgres: Some("08001"),
                mysql: Some(1429),
            },
            Case {
                error: SessionError::ClientAuth,
                culprit: Culprit::Client,
                postgres: Some("28P01"),
                mysql: Some(1045),
            },
            Case {
                error: SessionError::Policy("rule no-drops ended the session".into()),
                culprit: Culprit::Policy,
                postgres: Some("57P01"),
                mysql: Some(1927),
            },
            Case {
                error: SessionError::Ended("a result row arrived whose columns hoop does not know"),
                culprit: Culprit::Hoop,
                postgres: Some("57P01"),
                mysql: Some(1927),
            },
            Case {
                error: SessionError::Timeout(Culprit::Client),
                culprit: Culprit::Client,
                postgres: Some("08P01"),
                mysql: Some(1158),
            },
        ];
        for case in cases {
            let name = case.error.to_string();
            assert_eq!(case.error.culprit(), case.culprit, "{name}");
            let postgres = crate::postgres::client_error(&case.error);
            assert_eq!(
                postgres.as_ref().map(|(code, _)| *code),
                case.postgres,
                "{name}"
            );
            let mysql = crate::mysql::client_error(&case.error);
            assert_eq!(mysql.as_ref().map(|(code, ..)| *code), case.mysql, "{name}");
            for message in postgres
                .map(|(_, m)| m)
                .into_iter()
                .chain(mysql.map(|(.., m)| m))
            {
                assert!(message.starts_with("hoop"), "{message}");
            }
        }
    }

    #[test]
    fn a_server_error_reaches_each_client_as_the_server_sent_it() {
        let mysql = SessionError::Server(ServerError {
            number: Some(1049),
            sql_state: "42000".to_owned(),
            message: "Unknown database 'nope'".to_owned(),
        });
        assert_eq!(
            crate::mysql::client_error(&mysql),
            Some((1049, *b"42000", "Unknown database 'nope'".to_owned()))
        );
        let postgres = SessionError::Server(ServerError {
            number: None,
            sql_state: "3D000".to_owned(),
            message: "database \"nope\" does not exist".to_owned(),
        });
        assert_eq!(
            crate::postgres::client_error(&postgres),
            Some(("3D000", "database \"nope\" does not exist".to_owned()))
        );
        // A server error without a usable SQLSTATE still makes a valid ERR.
        let odd = SessionError::Server(ServerError {
            number: None,
            sql_state: "\u{fffd}".to_owned(),
            message: String::new(),
        });
        assert_eq!(
            crate::mysql::client_error(&odd),
            Some((1105, *b"HY000", String::new()))
        );
        assert_eq!(mysql.culprit(), Culprit::Server);
    }
}
