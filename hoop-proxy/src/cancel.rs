//! The cancel-key registry: hoop hands each client a secret of its own, beside
//! the server's real process id, and maps a cancel request carrying both to
//! the real server's key.
//!
//! The client never learns the server's secret (which would let it cancel
//! other people's queries on a shared upstream), and a cancel request that
//! arrives on a new connection, as the protocols require, finds its session
//! here. The process id is the server's own: applications compare it with
//! `pg_backend_pid()` and with the pid in `NotificationResponse` to skip
//! their own notifications. Sessions on different servers may share a
//! process id; the random secret tells them apart, as it does for
//! PostgreSQL itself.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;

/// The key a client holds: the server's process id and a random secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CancelKey {
    /// The process id the client was given: the server's.
    pub process_id: u32,
    /// The secret the client was given.
    pub secret: Bytes,
}

/// Where and how to cancel the real query.
#[derive(Clone, PartialEq, Eq)]
pub struct CancelTarget {
    /// The server's address, as the session connected to it.
    pub server: SocketAddr,
    /// The server's process id for the session.
    pub process_id: u32,
    /// The server's secret for the session.
    pub secret: Bytes,
}

impl std::fmt::Debug for CancelTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelTarget")
            .field("server", &self.server)
            .field("process_id", &self.process_id)
            .finish_non_exhaustive()
    }
}

/// Shared by every session of a listener. Cloning shares the registry.
#[derive(Debug, Clone, Default)]
pub struct CancelRegistry {
    sessions: Arc<Mutex<HashMap<CancelKey, CancelTarget>>>,
}

impl CancelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a session under the server's process id and a fresh random
    /// secret of `secret_len` bytes; the entry lives as long as the returned
    /// guard.
    pub fn register(&self, target: CancelTarget, secret_len: usize) -> CancelGuard {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let key = loop {
            let secret: Vec<u8> = (0..secret_len).map(|_| rand::random::<u8>()).collect();
            let key = CancelKey {
                process_id: target.process_id,
                secret: Bytes::from(secret),
            };
            if !sessions.contains_key(&key) {
                break key;
            }
        };
        sessions.insert(key.clone(), target);
        CancelGuard {
            registry: self.clone(),
            key,
        }
    }

    /// The target registered under `key`, if its session is still open.
    pub fn lookup(&self, key: &CancelKey) -> Option<CancelTarget> {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// How many sessions are registered.
    pub fn len(&self) -> usize {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// True when no session is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a session's cancel key registered; removes it when dropped.
#[derive(Debug)]
pub struct CancelGuard {
    registry: CancelRegistry,
    key: CancelKey,
}

impl CancelGuard {
    /// The key handed to the client.
    pub fn key(&self) -> &CancelKey {
        &self.key
    }
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.registry
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_client_key_to_server_key_until_session_ends() {
        let registry = CancelRegistry::new();
        let target = CancelTarget {
            server: "127.0.0.1:5432".parse().unwrap(),
            process_id: 42,
            secret: Bytes::from_static(b"abcd"),
        };
        let guard = registry.register(target.clone(), 4);
        assert_eq!(guard.key().secret.len(), 4);
        assert_eq!(guard.key().process_id, 42);
        assert_ne!(guard.key().secret, target.secret);
        assert_eq!(registry.lookup(guard.key()), Some(target));
        // The server's pid with the server's own secret is not a key hoop
        // handed out.
        assert_eq!(
            registry.lookup(&CancelKey {
                process_id: 42,
                secret: Bytes::from_static(b"abcd"),
            }),
            None
        );
        let key = guard.key().clone();
        drop(guard);
        assert_eq!(registry.lookup(&key), None);
        assert!(registry.is_empty());
    }
}
