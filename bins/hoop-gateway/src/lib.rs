//! The hoop control plane: the store, the REST API, and the agent link
//! server, as a library that `hoop-gateway` and `hoop up` run.
//!
//! ```text
//!  clients (curl, hoop CLI) --HTTP/JSON--> api ----> store (SQLite | PostgreSQL)
//!                                           |  ^
//!                                           v  |  live status
//!  agents --link (TCP/TLS, framed)--> link_server --> links (in memory)
//! ```
//!
//! Sessions: native clients reach the gateway's listeners (`native`);
//! [`sessions`] checks the person and the connection, records the session
//! and opens a stream to the agent, which runs the protocol driver; for
//! the agent embedded by `hoop up`, [`in_place`] runs that driver here.
//! `hoop connect` on the gateway's own host hands its clients' sockets
//! over ([`same_host`]) instead of tunnelling them. [`live`] keeps the
//! running sessions, to end those whose access is withdrawn; each
//! client's stream is watched ([`session_stream`]) so that an ending
//! session's client still reads why in its protocol. On a connection with
//! reviewers, [`reviews`] holds every session until a review approves it;
//! [`webhooks`] and [`slack`] tell the people who must act.

pub mod api;
pub mod cli;
pub mod client;
mod client_tls;
pub mod config;
pub mod crypto;
mod gateway;
mod handoff;
pub mod in_place;
pub mod link_server;
pub mod links;
mod listeners;
pub mod live;
mod native;
mod native_mysql;
pub mod reviews;
pub mod same_host;
pub mod session_stream;
pub mod sessions;
pub mod slack;
pub mod store;
pub mod webhooks;

pub use gateway::{
    ADMIN_EMAIL, DEFAULT_CLIENT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Gateway, GatewayConfig,
    GatewayError,
};

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod link_tests;
