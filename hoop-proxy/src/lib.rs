//! Tokio session drivers: accept a client, open the real server connection with
//! the connection's credentials, and relay every message through hoop's policy.

pub mod connection;

pub use connection::{
    AccessMode, AccessModes, ConfigError, Connection, ConnectionType, Credentials,
    DatabaseTarget, Secret, SslMode, Subtype,
};
