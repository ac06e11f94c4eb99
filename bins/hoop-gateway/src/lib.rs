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
//! What it does not do yet: relay sessions over the link (the framing
//! reserves stream ids and open/data/close frames for them).

pub mod api;
pub mod cli;
pub mod client;
pub mod config;
pub mod crypto;
mod gateway;
pub mod link_server;
pub mod links;
pub mod store;

pub use gateway::{ADMIN_EMAIL, Gateway, GatewayConfig, GatewayError};

#[cfg(test)]
pub(crate) mod testing;

#[cfg(test)]
mod link_tests;
