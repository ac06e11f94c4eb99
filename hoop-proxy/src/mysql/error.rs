//! What a MySQL client is told when its session fails: the ERR packet for
//! each [`SessionError`].

use crate::error::{Culprit, SessionError, side};

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

/// ER_UNKNOWN_ERROR: the number of an ERR packet for a server error that
/// carried none.
const UNKNOWN_ERROR: u16 = 1105;

/// The error number, SQLSTATE and message of the ERR packet a MySQL client
/// receives for `error`, or `None` when the client is gone.
pub fn client_error(error: &SessionError) -> Option<(u16, [u8; 5], String)> {
    let ((code, state), message) = match error {
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
            format!("hoop: invalid packet from {}: {source}", side(*culprit)),
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
        SessionError::ClientAuth => (ACCESS_DENIED, "hoop: access token refused".to_owned()),
        SessionError::CredentialsRefused => (
            ACCESS_DENIED,
            "hoop: the database server refused the connection's credentials; check the connection's USER and PASS".to_owned(),
        ),
        SessionError::UnsupportedAuth(_) => (
            UNSUPPORTED_AUTH,
            "hoop: the database server asked for an authentication plugin hoop does not support".to_owned(),
        ),
        SessionError::Server(server) => {
            let state = <[u8; 5]>::try_from(server.sql_state.as_bytes()).unwrap_or(*b"HY000");
            return Some((
                server.number.unwrap_or(UNKNOWN_ERROR),
                state,
                server.message.clone(),
            ));
        }
        SessionError::Unsupported(what) => (NOT_SUPPORTED, format!("hoop: {what}")),
        SessionError::Policy(message) => (SESSION_ENDED, format!("hoop: {message}")),
        SessionError::Ended(message) => (SESSION_ENDED, format!("hoop: {message}")),
        SessionError::ChangeUser => (
            NOT_SUPPORTED,
            "hoop: COM_CHANGE_USER could not be answered".to_owned(),
        ),
        SessionError::Timeout(Culprit::Server) => (
            UNABLE_TO_CONNECT,
            "hoop: the database server did not complete the connection in time".to_owned(),
        ),
        SessionError::Timeout(_) => (
            PROTOCOL_VIOLATION,
            "hoop: the client did not complete the login in time".to_owned(),
        ),
    };
    Some((code, *state, message))
}
