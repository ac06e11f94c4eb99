//! What a PostgreSQL client is told when its session fails: the SQLSTATE
//! and message of an ErrorResponse for each [`SessionError`].

use crate::error::{Culprit, SessionError, side};

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

/// The SQLSTATE and message of the ErrorResponse a PostgreSQL client
/// receives for `error`, or `None` when the client is gone and nothing can
/// be sent.
pub fn client_error(error: &SessionError) -> Option<(&str, String)> {
    Some(match error {
        SessionError::Io {
            culprit: Culprit::Client,
            ..
        } => return None,
        SessionError::Io { .. } => (
            UNABLE_TO_CONNECT,
            "hoop lost the connection to the database server".to_owned(),
        ),
        SessionError::Protocol { culprit, source } => (
            PROTOCOL_VIOLATION,
            format!("hoop: invalid message from {}: {source}", side(*culprit)),
        ),
        SessionError::Unexpected { culprit, message } => (
            PROTOCOL_VIOLATION,
            format!("hoop: unexpected {message} from {}", side(*culprit)),
        ),
        SessionError::Unreachable(error) => (
            UNABLE_TO_CONNECT,
            format!("hoop cannot reach the database server: {error}"),
        ),
        SessionError::UpstreamTls(reason) => (
            UNABLE_TO_CONNECT,
            format!("hoop: TLS with the database server failed: {reason}"),
        ),
        SessionError::ClientAuth => (INVALID_PASSWORD, "hoop: access token refused".to_owned()),
        SessionError::CredentialsRefused => (
            INVALID_PASSWORD,
            "hoop: the database server refused the connection's credentials; check the connection's USER and PASS".to_owned(),
        ),
        SessionError::UnsupportedAuth(method) => (
            INVALID_AUTHORIZATION,
            format!("hoop: the database server asked for {method} authentication, which hoop does not support"),
        ),
        SessionError::Server(server) => (server.sql_state.as_str(), server.message.clone()),
        SessionError::Unsupported(what) => (FEATURE_NOT_SUPPORTED, format!("hoop: {what}")),
        SessionError::Policy(message) => (ADMIN_SHUTDOWN, format!("hoop: {message}")),
        SessionError::Ended(message) => (ADMIN_SHUTDOWN, format!("hoop: {message}")),
        // MySQL's COM_CHANGE_USER pause: never a PostgreSQL session's end.
        SessionError::ChangeUser => (
            FEATURE_NOT_SUPPORTED,
            "hoop: the client asked to change user".to_owned(),
        ),
        SessionError::Timeout(Culprit::Server) => (
            UNABLE_TO_CONNECT,
            "hoop: the database server did not complete the connection in time".to_owned(),
        ),
        SessionError::Timeout(_) => (
            PROTOCOL_VIOLATION,
            "hoop: the client did not complete the startup in time".to_owned(),
        ),
    })
}
