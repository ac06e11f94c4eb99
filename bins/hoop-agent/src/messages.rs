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
