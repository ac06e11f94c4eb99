//! `KILL QUERY <id>` for clients greeted on the driver's behalf.
//!
//! A MySQL client cancels a statement by connecting again and sending
//! `KILL QUERY <id>`, with the connection id its first greeting carried
//! (the mariadb CLI's Ctrl-C, PyMySQL's `thread_id()`, JDBC's `cancel`).
//! The driver greets with the server's own id, so that works through it
//! as it is. A gateway that greets the client itself, before it knows
//! which server the client will reach, has to tell another id; the
//! session's driver then registers which server thread that id stands for
//! ([`ThreadRegistry`]), and a driver sharing the registry rewrites a
//! `KILL` naming it to the server's id. Ids not registered pass unchanged,
//! and so do ids registered by a session of another server or account: a
//! rewritten `KILL` names only a thread its own login could see, as
//! MySQL's own rule for an unprivileged user has it.
//!
//! ```text
//!  session 1: client told 2147483911 -- driver: server thread 42 (registered)
//!  session 2: KILL QUERY 2147483911  -- driver: KILL QUERY 42 --> server
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Which server thread each told connection id stands for, shared by the
/// drivers of a process. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct ThreadRegistry {
    threads: Arc<Mutex<HashMap<u32, (Account, u32)>>>,
}

/// Whose thread: the server (host and port) and the account logged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Account {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) user: String,
}

impl ThreadRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers that `told` stands for the thread `server` of `account`
    /// until the returned guard drops (the session ends).
    pub(crate) fn register(&self, told: u32, account: Account, server: u32) -> Registration {
        self.lock().insert(told, (account, server));
        Registration {
            registry: self.clone(),
            told,
        }
    }

    /// The thread of `account` that `told` stands for, if a live session
    /// of that account registered it.
    fn server_thread(&self, told: u32, account: &Account) -> Option<u32> {
        match self.lock().get(&told) {
            Some((owner, thread)) if owner == account => Some(*thread),
            _ => None,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (Account, u32)>> {
        // Single inserts and removes: a poisoned map is still consistent.
        self.threads.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `query`, sent as `account`, with an id after `KILL [QUERY |
    /// CONNECTION]` that a session of the same account registered replaced
    /// by its thread's id; `None` when it is no such `KILL` (nearly every
    /// query: one look at the first bytes).
    pub(crate) fn translate_kill(&self, query: &[u8], account: &Account) -> Option<Vec<u8>> {
        let (digits, told) = kill_target(query)?;
        let server = self.server_thread(told, account)?;
        let mut rewritten = Vec::with_capacity(query.len() + 10);
        rewritten.extend_from_slice(query.get(..digits.start)?);
        rewritten.extend_from_slice(server.to_string().as_bytes());
        rewritten.extend_from_slice(query.get(digits.end..)?);
        Some(rewritten)
    }
}

/// Removes its id from the registry when dropped.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: ThreadRegistry,
    told: u32,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.told);
    }
}

/// The id of `KILL [QUERY | CONNECTION] <id>` (any case, spaces around,
/// an optional `;` after) and where its digits are. Only that exact form:
/// anything else is left to the server.
fn kill_target(query: &[u8]) -> Option<(std::ops::Range<usize>, u32)> {
    let mut at = skip_spaces(query, 0);
    at = keyword(query, at, b"kill")?;
    let after_kill = skip_spaces(query, at);
    if after_kill == at {
        return None;
    }
    at = after_kill;
    for word in [&b"query"[..], b"connection"] {
        if let Some(end) = keyword(query, at, word) {
            let spaced = skip_spaces(query, end);
            if spaced > end {
                at = spaced;
                break;
            }
        }
    }
    let digits_end = query
        .get(at..)?
        .iter()
        .position(|b| !b.is_ascii_digit())
        .map_or(query.len(), |n| at + n);
    // At most ten digits: u32 parsing below rejects larger values.
    if digits_end == at || digits_end - at > 10 {
        return None;
    }
    let id = std::str::from_utf8(query.get(at..digits_end)?)
        .ok()?
        .parse()
        .ok()?;
    let mut rest = skip_spaces(query, digits_end);
    if query.get(rest) == Some(&b';') {
        rest = skip_spaces(query, rest + 1);
    }
    (rest == query.len()).then_some((at..digits_end, id))
}

fn skip_spaces(query: &[u8], mut at: usize) -> usize {
    while query.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The end of `word` at `at` (any case) when a non-word byte or the end
/// follows it.
fn keyword(query: &[u8], at: usize, word: &[u8]) -> Option<usize> {
    let end = at + word.len();
    let found = query.get(at..end)?.eq_ignore_ascii_case(word);
    let bounded = query
        .get(end)
        .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_');
    (found && bounded).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(user: &str) -> Account {
        Account {
            host: "127.0.0.1".into(),
            port: 3306,
            user: user.into(),
        }
    }

    #[test]
    fn rewrites_only_a_kill_of_an_id_its_own_account_registered() {
        let registry = ThreadRegistry::new();
        let registration = registry.register(2_147_483_911, account("app"), 42);
        assert_eq!(
            registry.translate_kill(b"KILL QUERY 2147483911", &account("other")),
            None
        );
        for (query, rewritten) in [
            ("KILL QUERY 2147483911", Some("KILL QUERY 42")),
            ("kill 2147483911;", Some("kill 42;")),
            (
                "  Kill  Connection\t2147483911 ; ",
                Some("  Kill  Connection\t42 ; "),
            ),
            ("KILL QUERY 7", None),
            ("KILL QUERY 2147483911 OR 1", None),
            ("KILL QUERY ID 2147483911", None),
            ("KILLQUERY 2147483911", None),
            ("KILL QUERY 99999999999999999999", None),
            ("SELECT 'KILL QUERY 2147483911'", None),
            ("KILL", None),
            ("", None),
        ] {
            assert_eq!(
                registry
                    .translate_kill(query.as_bytes(), &account("app"))
                    .map(|q| String::from_utf8(q).unwrap()),
                rewritten.map(str::to_owned),
                "{query}"
            );
        }
        drop(registration);
        assert_eq!(
            registry.translate_kill(b"KILL QUERY 2147483911", &account("app")),
            None
        );
    }
}
