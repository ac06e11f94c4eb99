//! The pipeline hook: where masking, guardrails and the recorder act on a
//! session's traffic.
//!
//! A session driver decodes every message. For the kinds of message a hook
//! declares interest in ([`Interest`]), it builds a protocol-neutral
//! [`Event`] and hands it over; every other message, and every event the hook
//! lets pass, is forwarded from its original bytes. The default hook
//! ([`NoopPipeline`]) wants nothing, so the relay builds no events at all.
//!
//! ```text
//! client --bytes--> decode --Event--> SessionHook::client_event --> Forward | Refuse
//! server --bytes--> decode --Event--> SessionHook::server_event --> Forward | Rewritten
//! ```

use hoop_wire::event::Event;

/// Which events a hook wants to see. Events nobody wants are never built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Interest {
    /// Statements: `Query`, `Prepare`, `Execute`.
    pub statements: bool,
    /// Result column descriptions: `Columns`.
    pub columns: bool,
    /// Result rows: `Row`.
    pub rows: bool,
    /// Completions: `Done`.
    pub completions: bool,
    /// Server errors: `Error`.
    pub errors: bool,
}

impl Interest {
    /// No events at all.
    pub const NONE: Self = Self {
        statements: false,
        columns: false,
        rows: false,
        completions: false,
        errors: false,
    };

    /// Every event.
    pub const ALL: Self = Self {
        statements: true,
        columns: true,
        rows: true,
        completions: true,
        errors: true,
    };
}

/// A statement refused before it reaches the server. The client receives it as
/// an error in its own protocol and the session stays usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code the client sees (a SQLSTATE for PostgreSQL, e.g.
    /// `42501`).
    pub code: String,
    /// The message the client sees.
    pub message: String,
}

/// What happens to a client event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientAction {
    /// Send the message on, unchanged.
    Forward,
    /// Do not send it; answer the client with this error instead.
    Refuse(Refusal),
}

/// What happens to a server event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerAction {
    /// Send the original message on, unchanged.
    Forward,
    /// The hook changed the event in place; the driver re-encodes it (every
    /// length recomputed). Drivers re-encode `Row` events; rewriting another
    /// kind ends the session rather than forwarding something unexamined.
    Rewritten,
}

/// Facts about a session, given to [`Pipeline::open`].
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// The protocol (`postgres`, `mysql`, ...).
    pub protocol: &'static str,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// Who the client authenticated as.
    pub user: String,
    /// The database the session uses, if named.
    pub database: Option<String>,
}

/// One session's view of the pipeline. Called from the session's own task,
/// in wire order per direction.
pub trait SessionHook: Send {
    /// Which events to build. Read once when the relay starts.
    fn interest(&self) -> Interest {
        Interest::NONE
    }

    /// A client event (a statement). Return [`ClientAction::Refuse`] to block it.
    fn client_event(&mut self, event: &Event) -> ClientAction {
        let _ = event;
        ClientAction::Forward
    }

    /// A server event. Change it in place and return
    /// [`ServerAction::Rewritten`] to send the changed version.
    fn server_event(&mut self, event: &mut Event) -> ServerAction {
        let _ = event;
        ServerAction::Forward
    }

    /// The session ended (either peer closed, or an error).
    fn closed(&mut self) {}
}

/// Shows the hook the error that ended its session (hoop's own: a protocol
/// violation, a lost server), as an [`Event::Error`] before
/// [`SessionHook::closed`], so a recorder keeps why the session failed
/// and not only that it ended. Sent only to hooks interested in errors;
/// what the hook returns is moot, the client has been told already.
pub(crate) fn record_failure(hook: &mut dyn SessionHook, code: String, message: String) {
    if hook.interest().errors {
        let _ = hook.server_event(&mut Event::Error { code, message });
    }
}

/// Opens a hook per session.
pub trait Pipeline: Send + Sync {
    /// The hook for a new session.
    fn open(&self, session: &SessionInfo) -> Box<dyn SessionHook>;
}

/// Does nothing: every message passes untouched and no event is built.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopPipeline;

impl SessionHook for NoopPipeline {}

impl Pipeline for NoopPipeline {
    fn open(&self, _session: &SessionInfo) -> Box<dyn SessionHook> {
        Box::new(Self)
    }
}
