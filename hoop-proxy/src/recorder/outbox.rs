//! The agent's audit outbox: every event batch its sessions record waits
//! here until the gateway acknowledges that it is stored, across links, so
//! a gateway that restarts or crashes (its link drops, with whatever it had
//! not stored) gets the batch again when the agent links anew.
//!
//! ```text
//!  session's recorder --batch--> outbox --EVENTS (session's stream, or 0)--> gateway
//!                                  ^                                            | stores
//!                                  +------------- EVENTS_ACK (stream 0) <-------+
//! ```
//!
//! A batch goes out on its session's stream while that stream is open on
//! the current link (the gateway binds it to the stream's session), and on
//! stream 0 otherwise: after a relink, or after the stream ended (the
//! gateway then accepts it only for a session its records say this agent
//! served). The gateway stores a batch once, by session and first sequence
//! number, however often it arrives. A batch not acknowledged within
//! [`RESEND_AFTER`] (its ack, or the batch itself, was lost: the
//! gateway's queue was full, its store failed) is sent again.
//!
//! Memory is bounded: past [`MAX_UNACKED_BYTES`] of batches waiting (a
//! gateway that takes batches but cannot store them, or no gateway for a
//! long time while sessions end), new batches are dropped and counted in
//! their session's `dropped`, which the gateway logs when a later batch of
//! that session arrives.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::link::frame::{Frame, FrameKind};
use crate::link::messages::{BatchId, EventsAck};
use crate::link::mux::Mux;
use crate::recorder::journal::JournalHolds;

/// The most bytes of unacknowledged batches kept: at the recorder's 64
/// events a batch, tens of thousands of statements, minutes of a busy
/// agent's sessions.
pub const MAX_UNACKED_BYTES: usize = 16 * 1024 * 1024;

/// A batch sent this long ago without an ack is sent again.
pub const RESEND_AFTER: Duration = Duration::from_secs(10);

/// One batch waiting for its ack.
#[derive(Debug)]
struct Pending {
    id: BatchId,
    /// The session's stream, on the link of `generation`.
    stream: u32,
    generation: u64,
    /// The `EVENTS` frame's payload.
    payload: Bytes,
    /// When it last went to a link's writer; `None`: not yet.
    sent: Option<Instant>,
    /// Journal segments kept until the batch is stored.
    journaled: JournalHolds,
}

#[derive(Debug)]
struct Link {
    generation: u64,
    outbound: mpsc::Sender<Frame>,
    mux: Mux,
}

#[derive(Debug, Default)]
struct Inner {
    pending: VecDeque<Pending>,
    bytes: usize,
    link: Option<Link>,
    next_generation: u64,
}

/// The agent's batches awaiting the gateway's ack. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct AuditOutbox {
    inner: Arc<Mutex<Inner>>,
}

impl Inner {
    /// Hands `pending` to the link's writer if there is room; marks it sent.
    fn send(link: Option<&Link>, pending: &mut Pending) {
        let Some(link) = link else { return };
        let stream = if pending.generation == link.generation && link.mux.contains(pending.stream) {
            pending.stream
        } else {
            0
        };
        let frame = Frame {
            kind: FrameKind::Events,
            stream,
            payload: pending.payload.clone(),
        };
        if link.outbound.try_send(frame).is_ok() {
            pending.sent = Some(Instant::now());
        }
    }
}

impl AuditOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every change is a single push, removal or field write.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new link is up: batches go to `outbound` from now on, and every
    /// batch not yet acknowledged is sent to it now (as room allows; the
    /// rest at the next [`AuditOutbox::resend_stale`]). Returns the link's
    /// generation, which sessions opened on it name.
    pub fn linked(&self, outbound: mpsc::Sender<Frame>, mux: Mux) -> u64 {
        let mut inner = self.lock();
        inner.next_generation += 1;
        let generation = inner.next_generation;
        let inner = &mut *inner;
        inner.link = Some(Link {
            generation,
            outbound,
            mux,
        });
        for pending in &mut inner.pending {
            pending.sent = None;
            Inner::send(inner.link.as_ref(), pending);
        }
        generation
    }

    /// The link of `generation` is gone.
    pub fn unlinked(&self, generation: u64) {
        let mut inner = self.lock();
        if inner
            .link
            .as_ref()
            .is_some_and(|link| link.generation == generation)
        {
            inner.link = None;
        }
    }

    /// Keeps a batch until it is acknowledged and sends it if a link is
    /// up. False when the outbox is full: the batch is dropped.
    pub(crate) fn submit(
        &self,
        id: BatchId,
        stream: u32,
        generation: u64,
        payload: Bytes,
        journaled: JournalHolds,
    ) -> bool {
        let mut inner = self.lock();
        if inner.bytes + payload.len() > MAX_UNACKED_BYTES {
            return false;
        }
        inner.bytes += payload.len();
        let mut pending = Pending {
            id,
            stream,
            generation,
            payload,
            sent: None,
            journaled,
        };
        Inner::send(inner.link.as_ref(), &mut pending);
        inner.pending.push_back(pending);
        true
    }

    /// Forgets the batches the gateway stored.
    pub fn acked(&self, ack: &EventsAck) {
        let mut inner = self.lock();
        for id in &ack.batches {
            // Acks come in the order batches were sent, mostly.
            let Some(index) = inner.pending.iter().position(|p| &p.id == id) else {
                continue;
            };
            if let Some(done) = inner.pending.remove(index) {
                inner.bytes -= done.payload.len();
                done.journaled.release();
            }
        }
    }

    /// Sends again the batches sent more than [`RESEND_AFTER`] ago, or
    /// never, that await their ack.
    pub fn resend_stale(&self) {
        let mut inner = self.lock();
        let inner = &mut *inner;
        for pending in &mut inner.pending {
            if pending
                .sent
                .is_none_or(|sent| sent.elapsed() >= RESEND_AFTER)
            {
                Inner::send(inner.link.as_ref(), pending);
            }
        }
    }

    /// Batches awaiting their ack.
    pub fn unacked(&self) -> usize {
        self.lock().pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(first_seq: i64) -> BatchId {
        BatchId {
            session_id: "s".into(),
            first_seq,
        }
    }

    #[tokio::test]
    async fn batches_stay_until_acked_and_go_again_to_the_next_link() {
        let outbox = AuditOutbox::new();
        // No link yet: kept.
        assert!(outbox.submit(
            id(0),
            5,
            1,
            Bytes::from_static(b"a"),
            JournalHolds::default()
        ));
        let (tx, mut rx) = mpsc::channel(8);
        let mux = Mux::new(tx.clone());
        let generation = outbox.linked(tx, mux.clone());
        let first = rx.try_recv().unwrap();
        // Not a stream of this link: stream 0.
        assert_eq!((first.kind, first.stream), (FrameKind::Events, 0));
        let _stream = mux.register(7).unwrap();
        assert!(outbox.submit(
            id(1),
            7,
            generation,
            Bytes::from_static(b"b"),
            JournalHolds::default()
        ));
        assert_eq!(rx.try_recv().unwrap().stream, 7);
        outbox.acked(&EventsAck {
            batches: vec![id(0)],
        });
        assert_eq!(outbox.unacked(), 1);
        // The link drops; the next one gets what was not acked, on stream 0.
        outbox.unlinked(generation);
        let (tx, mut rx) = mpsc::channel(8);
        outbox.linked(tx.clone(), Mux::new(tx));
        let again = rx.try_recv().unwrap();
        assert_eq!((again.stream, &again.payload[..]), (0, &b"b"[..]));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn a_full_outbox_refuses_new_batches() {
        let outbox = AuditOutbox::new();
        let big = Bytes::from(vec![0u8; MAX_UNACKED_BYTES - 1]);
        assert!(outbox.submit(id(0), 1, 1, big, JournalHolds::default()));
        assert!(!outbox.submit(
            id(1),
            1,
            1,
            Bytes::from_static(b"xy"),
            JournalHolds::default()
        ));
        outbox.acked(&EventsAck {
            batches: vec![id(0)],
        });
        assert!(outbox.submit(
            id(1),
            1,
            1,
            Bytes::from_static(b"xy"),
            JournalHolds::default()
        ));
    }
}
