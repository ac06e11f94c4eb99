//! How hoop authenticates the person at the client leg.
//!
//! The person's native client (psql, an ORM, ...) sends the person's hoop
//! access token where it would send a database password. The session driver
//! asks for it, and a [`ClientAuthenticator`] (the gateway's, later) decides.
//! The real database credentials are a different thing entirely: the driver
//! uses them on the server leg and never shows them to the client.
//!
//! PostgreSQL's driver asks for a *cleartext* password rather than running
//! SCRAM with the client: SCRAM needs the verifier (salt and stored key) of
//! the secret in advance, and an access token is checked by the gateway
//! (against its store or an identity provider) only when presented. Use TLS on
//! the client leg (or a loopback listener) so the token is not sent in clear
//! over a network.

use std::future::Future;
use std::pin::Pin;

use crate::connection::Secret;

/// What the client presented.
#[derive(Debug, Clone, Copy)]
pub struct ClientCredentials<'a> {
    /// The user name the client sent (the person's, not the database's).
    pub user: &'a str,
    /// The database the client asked for, if any.
    pub database: Option<&'a str>,
    /// The secret sent as the password: the person's access token.
    pub token: &'a [u8],
}

/// Who the authenticator found the client to be, for recording and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The person's name or id.
    pub user: String,
}

/// The client was refused. Carries no detail on purpose: the client learns only
/// that its token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("access token refused")]
pub struct AuthDenied;

/// The future an authenticator returns.
pub type AuthFuture<'a> =
    Pin<Box<dyn Future<Output = Result<ClientIdentity, AuthDenied>> + Send + 'a>>;

/// Decides whether a client may open a session.
pub trait ClientAuthenticator: Send + Sync {
    /// Whether the driver must ask the client for a token. When false, the
    /// driver calls [`authenticate`](Self::authenticate) with an empty token.
    fn requires_token(&self) -> bool {
        true
    }

    /// Checks the client's credentials.
    fn authenticate<'a>(&'a self, credentials: ClientCredentials<'a>) -> AuthFuture<'a>;
}

/// Lets every client in without asking for a token: for a listener that only
/// the person's own machine can reach (`hoop connect` on loopback).
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl ClientAuthenticator for AllowAll {
    fn requires_token(&self) -> bool {
        false
    }

    fn authenticate<'a>(&'a self, credentials: ClientCredentials<'a>) -> AuthFuture<'a> {
        let identity = ClientIdentity {
            user: credentials.user.to_owned(),
        };
        Box::pin(async move { Ok(identity) })
    }
}

/// Accepts one shared secret (the standalone example's `--client-password`).
#[derive(Debug, Clone)]
pub struct SharedSecret(Secret);

impl SharedSecret {
    /// Accepts clients that present `secret`.
    pub fn new(secret: Secret) -> Self {
        Self(secret)
    }
}

impl ClientAuthenticator for SharedSecret {
    fn authenticate<'a>(&'a self, credentials: ClientCredentials<'a>) -> AuthFuture<'a> {
        let expected = self.0.expose().as_bytes();
        let given = credentials.token;
        // Compare without an early exit so timing does not reveal a prefix.
        let same = expected.len() == given.len()
            && expected
                .iter()
                .zip(given)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        let result = if same {
            Ok(ClientIdentity {
                user: credentials.user.to_owned(),
            })
        } else {
            Err(AuthDenied)
        };
        Box::pin(async move { result })
    }
}
