//! What this gateway knows live about its agents: which are linked, what
//! they report, and which of their targets answer.
//!
//! This state is in memory on purpose: a gateway that restarts knows of no
//! link, so every connection reads `offline` until its agent dials again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hoop_agent::mux::{Mux, StreamReceiver, StreamSender};
use hoop_agent::{Frame, FrameKind};
use tokio::sync::watch;

/// One agent's live link.
#[derive(Debug)]
struct LiveAgent {
    generation: u64,
    reachable: BTreeMap<String, bool>,
    /// Closed (sender dropped or set) when this link must end: the agent
    /// linked again elsewhere, or it was deleted.
    kick: watch::Sender<bool>,
    /// The link's session streams.
    mux: Mux,
}

#[derive(Debug, Default)]
struct Inner {
    agents: HashMap<String, LiveAgent>,
    /// Agents running in this process, whose connect sessions are served
    /// here without a trip over their link.
    in_place: HashSet<String>,
    next_generation: u64,
    next_stream: u32,
}

/// A session stream could not be opened: the agent has no live link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the agent serving this connection is offline")]
pub struct AgentOffline;

/// The registry of live links, shared by the link server and the API.
#[derive(Debug, Clone, Default)]
pub struct LinkRegistry {
    inner: Arc<Mutex<Inner>>,
    /// Bumped whenever connections change, so links resend their targets.
    targets_version: Arc<watch::Sender<u64>>,
}

/// A registered link; hand it back to [`LinkRegistry::unregister`].
#[derive(Debug)]
pub struct LinkTicket {
    /// The agent's id.
    pub agent_id: String,
    generation: u64,
    /// Becomes true when the link must close.
    pub kicked: watch::Receiver<bool>,
}

impl LinkRegistry {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The map stays consistent under every panic point (single inserts
        // and removes), so a poisoned lock is safe to keep using.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new link for `agent_id`, ending the previous one; its
    /// sessions are multiplexed through `mux`.
    pub fn register(&self, agent_id: &str, mux: Mux) -> LinkTicket {
        let (kick, kicked) = watch::channel(false);
        let mut inner = self.lock();
        inner.next_generation += 1;
        let generation = inner.next_generation;
        let previous = inner.agents.insert(
            agent_id.to_owned(),
            LiveAgent {
                generation,
                reachable: BTreeMap::new(),
                kick,
                mux,
            },
        );
        if let Some(previous) = previous {
            let _ = previous.kick.send(true);
        }
        LinkTicket {
            agent_id: agent_id.to_owned(),
            generation,
            kicked,
        }
    }

    /// Forgets a link, unless a newer one replaced it.
    pub fn unregister(&self, ticket: &LinkTicket) {
        let mut inner = self.lock();
        if inner
            .agents
            .get(&ticket.agent_id)
            .is_some_and(|live| live.generation == ticket.generation)
        {
            inner.agents.remove(&ticket.agent_id);
        }
    }

    /// Ends an agent's link (it was deleted).
    pub fn kick(&self, agent_id: &str) {
        if let Some(live) = self.lock().agents.remove(agent_id) {
            let _ = live.kick.send(true);
        }
    }

    /// Sends `frame` to every linked agent, without waiting: a link whose
    /// queue is full misses it (for a cancel request, as PostgreSQL's own
    /// cancel is best effort).
    pub fn broadcast(&self, frame: &Frame) {
        for live in self.lock().agents.values() {
            let _ = live.mux.outbound().try_send(frame.clone());
        }
    }

    /// Records the agent's latest reachability report.
    pub fn set_reachable(&self, ticket: &LinkTicket, reachable: BTreeMap<String, bool>) {
        let mut inner = self.lock();
        if let Some(live) = inner.agents.get_mut(&ticket.agent_id)
            && live.generation == ticket.generation
        {
            live.reachable = reachable;
        }
    }

    /// Opens a stream to `agent_id` for the session `session_id`, sending
    /// `open` (JSON) as its `OPEN` frame. The stream is bound to the
    /// session: the audit events the agent sends on it must be that
    /// session's.
    ///
    /// # Errors
    ///
    /// [`AgentOffline`] when the agent has no live link.
    pub async fn open_stream(
        &self,
        agent_id: &str,
        session_id: &str,
        open: Vec<u8>,
    ) -> Result<(StreamSender, StreamReceiver), AgentOffline> {
        let (mux, ends) = {
            let mut inner = self.lock();
            let Some(mux) = inner.agents.get(agent_id).map(|live| live.mux.clone()) else {
                return Err(AgentOffline);
            };
            // Stream ids wrap after four billion sessions; an id still in
            // use is skipped.
            let mut ends = None;
            for _ in 0..16 {
                inner.next_stream = inner.next_stream.wrapping_add(1).max(1);
                if let Some(pair) = mux.register_session(inner.next_stream, session_id) {
                    ends = Some(pair);
                    break;
                }
            }
            (mux, ends.ok_or(AgentOffline)?)
        };
        mux.outbound()
            .send(Frame {
                kind: FrameKind::Open,
                stream: ends.0.id(),
                payload: open.into(),
            })
            .await
            .map_err(|_| AgentOffline)?;
        Ok(ends)
    }

    /// Ends every session stream of every link (a gateway that stops):
    /// agents are told to close them, and the gateway's ends see the
    /// stream closed with `reason` (a `SessionEnd`, so records say why).
    pub fn end_streams(&self, reason: &bytes::Bytes) {
        for live in self.lock().agents.values() {
            live.mux.close_all(reason);
        }
    }

    /// Marks `agent_id` as running in this process (`hoop up`'s embedded
    /// agent): its connect sessions run their driver here, on the client's
    /// own stream. Its link still reports its status, so an agent that
    /// stopped is offline for these sessions too.
    pub fn serve_in_place(&self, agent_id: &str) {
        self.lock().in_place.insert(agent_id.to_owned());
    }

    /// Whether `agent_id` runs in this process.
    pub fn is_in_place(&self, agent_id: &str) -> bool {
        self.lock().in_place.contains(agent_id)
    }

    /// Session streams open on the agent's link (0 when it has none).
    pub fn open_streams(&self, agent_id: &str) -> usize {
        self.lock()
            .agents
            .get(agent_id)
            .map_or(0, |live| live.mux.open_streams())
    }

    /// Whether the agent has a live link.
    pub fn is_linked(&self, agent_id: &str) -> bool {
        self.lock().agents.contains_key(agent_id)
    }

    /// `online` when the agent is linked and reported the connection's
    /// target reachable, `offline` otherwise.
    pub fn connection_status(&self, agent_id: Option<&str>, connection_id: &str) -> &'static str {
        let inner = self.lock();
        let online = agent_id
            .and_then(|agent| inner.agents.get(agent))
            .and_then(|live| live.reachable.get(connection_id))
            .copied()
            .unwrap_or(false);
        if online { "online" } else { "offline" }
    }

    /// Tells every link that connections changed.
    pub fn targets_changed(&self) {
        self.targets_version.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that changes whenever connections change.
    pub fn watch_targets(&self) -> watch::Receiver<u64> {
        self.targets_version.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mux() -> Mux {
        Mux::new(tokio::sync::mpsc::channel(1).0)
    }

    #[test]
    fn status_follows_link_and_reachability() {
        let registry = LinkRegistry::default();
        assert_eq!(registry.connection_status(Some("a"), "c"), "offline");
        let ticket = registry.register("a", mux());
        assert_eq!(registry.connection_status(Some("a"), "c"), "offline");
        registry.set_reachable(&ticket, BTreeMap::from([("c".to_owned(), true)]));
        assert_eq!(registry.connection_status(Some("a"), "c"), "online");
        assert_eq!(registry.connection_status(None, "c"), "offline");
        registry.unregister(&ticket);
        assert_eq!(registry.connection_status(Some("a"), "c"), "offline");
    }

    #[test]
    fn a_newer_link_replaces_and_kicks_the_older() {
        let registry = LinkRegistry::default();
        let old = registry.register("a", mux());
        let new = registry.register("a", mux());
        assert!(*old.kicked.borrow());
        registry.set_reachable(&old, BTreeMap::from([("c".to_owned(), true)]));
        assert_eq!(registry.connection_status(Some("a"), "c"), "offline");
        registry.unregister(&old);
        assert!(registry.is_linked("a"));
        registry.unregister(&new);
        assert!(!registry.is_linked("a"));
    }
}
