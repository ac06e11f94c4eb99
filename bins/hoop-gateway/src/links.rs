//! What this gateway knows live about its agents: which are linked, what
//! they report, and which of their targets answer.
//!
//! This state is in memory on purpose: a gateway that restarts knows of no
//! link, so every connection reads `offline` until its agent dials again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hoop_proxy::link::mux::{Mux, StreamReceiver, StreamSender};
use hoop_proxy::link::{Frame, FrameKind};
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
    /// Bumped on every reachability report, for [`LinkRegistry::await_report`].
    reports: Arc<watch::Sender<u64>>,
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
        drop(inner);
        self.reports.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Forgets what agents last reported about `connection_id`, whose
    /// target changed: its status reads `offline` until the next report,
    /// which checks the new target.
    pub fn forget_reachability(&self, connection_id: &str) {
        for live in self.lock().agents.values_mut() {
            live.reachable.remove(connection_id);
        }
    }

    /// Waits, at most `limit`, until `agent_id` has reported on
    /// `connection_id`. An agent checks a target as soon as it hears of it
    /// ([`LinkRegistry::targets_changed`]), so a connection just created
    /// or re-targeted gets its real status within one probe, and the API
    /// can answer with it rather than with `offline` followed by
    /// `online` a moment later. Returns at once when the agent has no
    /// link (nothing will report).
    pub async fn await_report(&self, agent_id: &str, connection_id: &str, limit: Duration) {
        let mut reports = self.reports.subscribe();
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.lock().agents.get(agent_id) {
                None => return,
                Some(live) if live.reachable.contains_key(connection_id) => return,
                Some(_) => {}
            }
            // The registry holds the sender, so `changed` fails only with
            // the registry gone.
            if !matches!(
                tokio::time::timeout_at(deadline, reports.changed()).await,
                Ok(Ok(()))
            ) {
                return;
            }
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

    #[tokio::test]
    async fn a_report_on_the_connection_ends_the_wait_and_no_link_skips_it() {
        let registry = LinkRegistry::default();
        let limit = Duration::from_secs(30);
        // No link: nothing to wait for.
        tokio::time::timeout(
            Duration::from_secs(1),
            registry.await_report("a", "c", limit),
        )
        .await
        .expect("waited for an agent with no link");
        let ticket = registry.register("a", mux());
        let waiting = {
            let registry = registry.clone();
            tokio::spawn(async move { registry.await_report("a", "c", limit).await })
        };
        // A report that does not name the connection leaves it waiting.
        registry.set_reachable(&ticket, BTreeMap::from([("other".to_owned(), true)]));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        registry.set_reachable(&ticket, BTreeMap::from([("c".to_owned(), true)]));
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the report did not end the wait")
            .unwrap();
        assert_eq!(registry.connection_status(Some("a"), "c"), "online");
        registry.forget_reachability("c");
        assert_eq!(registry.connection_status(Some("a"), "c"), "offline");
        // Bounded: an agent that never reports does not hold the caller.
        tokio::time::timeout(
            Duration::from_secs(5),
            registry.await_report("a", "c", Duration::from_millis(100)),
        )
        .await
        .expect("the wait outlived its limit");
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
