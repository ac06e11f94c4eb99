//! The JSON payloads of the link's control frames.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The agent's first frame: who it is and what it runs on.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The agent's name, from its key.
    pub name: String,
    /// The secret from its key; the gateway compares its hash.
    pub secret: String,
    /// The agent's version.
    pub version: String,
    /// The machine's host name.
    pub hostname: String,
    /// Operating system and architecture, e.g. `linux/x86_64`.
    pub platform: String,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hello")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("hostname", &self.hostname)
            .field("platform", &self.platform)
            .finish_non_exhaustive()
    }
}

/// The gateway's answer to an accepted hello.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The agent's id in the gateway.
    pub agent_id: String,
    /// How often the agent should send a ping, in milliseconds.
    pub heartbeat_ms: u64,
}

/// One connection's target, for the agent's reachability check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// The connection's id.
    pub connection_id: String,
    /// Host to dial; `None` when the connection has no network target (a
    /// custom command), which is reachable whenever the agent is linked.
    pub host: Option<String>,
    /// TCP port to dial.
    pub port: u16,
}

/// The gateway's full list of targets for this agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Targets {
    /// Every target; replaces the previous list.
    pub targets: Vec<Target>,
}

/// The agent's report: which targets answered its last check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Connection id to reachable.
    pub reachable: BTreeMap<String, bool>,
}

/// Gateway to agent, on a new stream: run a session on one connection.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSession {
    /// The session's id in the gateway's records.
    pub session_id: String,
    /// The connection's name.
    pub connection: String,
    /// `postgres` or `mysql`.
    pub protocol: String,
    /// `connect` (a native client follows on the stream) or `exec`.
    pub mode: String,
    /// Who opened it (e-mail), for the agent's logs.
    pub user: String,
    /// The connection's credentials by name (`HOST`, `PORT`, `USER`, `PASS`,
    /// `DB`, `SSLMODE`). Never logged.
    pub credentials: BTreeMap<String, String>,
    /// For exec: the input to run.
    #[serde(default)]
    pub script: Option<String>,
    /// For exec: `text` (tab-separated rows) or `json` (an array of row
    /// objects).
    #[serde(default)]
    pub output: Option<String>,
    /// The connection's policy (`hoop-masking`'s JSON schema); none for no
    /// masking and no guardrails.
    #[serde(default)]
    pub policy: Option<String>,
    /// MySQL: the connection id the gateway's greeting told the client
    /// (the gateway greets before it knows the server); the driver
    /// registers it for its server thread, so the client's `KILL QUERY`
    /// from another session reaches that thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_thread_id: Option<u32>,
    /// For exec: the most output bytes the gateway keeps (it answers with
    /// the whole output at once); the agent sends only the whole rows that
    /// fit and reports `truncated`. `None`: all of it, streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_limit: Option<u64>,
}

impl std::fmt::Debug for OpenSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenSession")
            .field("session_id", &self.session_id)
            .field("connection", &self.connection)
            .field("protocol", &self.protocol)
            .field("mode", &self.mode)
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Agent to gateway, in the `CLOSE` frame that ends a session: why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionEnd {
    /// `done`, or `failed` with `error`.
    pub status: String,
    /// What went wrong, when it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// For exec: 0 on success, 1 on a database error or refusal.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// For exec: rows were left out to keep within `output_limit`.
    #[serde(default)]
    pub truncated: bool,
}

/// Agent to gateway: a batch of one session's audit events.
///
/// A batch is identified by its session and the sequence number of its
/// first event: the agent sends it again, the same, until the gateway
/// acknowledges it ([`EventsAck`]), and the gateway stores it once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionEvents {
    /// The session.
    pub session_id: String,
    /// The sequence number of the first event; the batch's identity within
    /// its session.
    pub first_seq: i64,
    /// Events (JSON objects with `type`, `time`, `seq`, ...); never result
    /// values. Raw, so the gateway stores them as they came without
    /// parsing each into a tree and writing it out again.
    pub events: Vec<Box<serde_json::value::RawValue>>,
    /// Events this session lost so far because the link was congested.
    #[serde(default)]
    pub dropped: u64,
}

/// One event batch, by its identity ([`SessionEvents`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BatchId {
    /// The session.
    pub session_id: String,
    /// The sequence number of the batch's first event.
    pub first_seq: i64,
}

/// Gateway to agent: batches committed to the store, which the agent no
/// longer needs to keep for sending again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsAck {
    /// The batches, in the order they were stored.
    pub batches: Vec<BatchId>,
}
