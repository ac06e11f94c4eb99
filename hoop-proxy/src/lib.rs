//! Tokio session drivers: accept a client, open the real server connection with
//! the connection's credentials, and relay every message through hoop's policy.
//!
//! ```text
//!  client ──TLS?──▶ listener ──▶ session driver (per protocol)
//!                                  │ client leg: TLS, hoop's own auth (ClientAuthenticator)
//!                                  │ server leg: TLS per SSLMODE, the real auth (SCRAM, md5, ...)
//!                                  ▼
//!                    relay: decode (hoop-wire) ─▶ events ─▶ SessionHook ─▶ encode
//! ```
//!
//! Shared parts, reused by every protocol: [`listener`] (accept loop),
//! [`driver`] (the builder every protocol's proxy shares), [`error`] (the
//! one session error, and which side caused it: client, server, policy or
//! hoop),
//! [`tls`] (both legs), [`auth`] (the client-leg authenticator trait),
//! [`pipeline`] (the hook masking, guardrails and recording plug into),
//! [`relay`] (the bounded, batched two-way pump), [`cancel`] (cancel-key
//! mapping), [`policy`] (masking and guardrails as a pipeline), [`scram`]
//! (SCRAM-SHA-256 client). Protocol specifics live in [`postgres`] and
//! [`mysql`].
//!
//! Between the gateway and the agent: [`link`] (frames, the session
//! multiplexer, control messages, the agent's key: what both ends speak),
//! [`agent`] (the agent's run loop and session assembly: a driver, its
//! policy and its recorder for one opened session), [`recorder`] (audit
//! events, their outbox and journal). They live here, not in a binary,
//! because the gateway, the agent and `hoop up` all use them.
//!
//! This crate does not decode anything itself (that is `hoop-wire`) and holds
//! no policy of its own (rules come from `hoop-masking`).

pub mod agent;
pub mod auth;
pub mod cancel;
pub mod connection;
pub mod driver;
pub mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod link;
pub mod listener;
pub mod mysql;
pub mod pipeline;
pub mod policy;
pub mod postgres;
pub mod recorder;
pub mod relay;
pub mod scram;
pub mod stream;
pub mod tls;

pub use connection::{
    AccessMode, AccessModes, ConfigError, Connection, ConnectionType, Credentials, DatabaseTarget,
    Secret, SslMode, Subtype,
};
pub use error::{Culprit, ServerError, SessionError, UpstreamTlsError};
