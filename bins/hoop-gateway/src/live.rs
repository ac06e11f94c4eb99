//! The sessions running through this gateway, with what let them open, so
//! that taking access away ends them within seconds: a revoked token, a
//! deleted or deactivated user, a group or `access_control` change that
//! hides the connection, a connection removed or its access mode disabled,
//! and on a connection with reviewers, the approved review a session runs
//! under revoked or its access window over ([`crate::reviews`]).
//!
//! ```text
//!  sessions::open ---- register(token hash, user, connection, mode) ---> LiveSessions
//!  API PUT/PATCH/DELETE --> nudge --+
//!  every REVALIDATE_INTERVAL -------+--> revalidate: the checks of `open`, again
//!                                          | one refused
//!                                          v
//!                     end signal --> SessionStream: the client's protocol's error at the
//!                                    next message boundary, then the session ends;
//!                                    exec: the agent's stream is closed
//! ```
//!
//! A write through this gateway's API is acted on at once; the interval
//! catches writes made through another gateway on the same store. A store
//! that fails during a revalidation ends nothing (it is tried again at the
//! next one): refusing every session whenever the store blinks would be
//! worse than a few seconds' delay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::api::{ApiError, AppState, Caller};
use crate::session_stream::EndSignal;
use crate::sessions::AccessKind;

/// How often every live session's access is checked again, for changes
/// this gateway's API did not see (another gateway on the same store).
pub const REVALIDATE_INTERVAL: Duration = Duration::from_secs(5);

/// The live sessions of one gateway. Cheap to clone; clones share them.
#[derive(Debug, Clone, Default)]
pub struct LiveSessions {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: Mutex<HashMap<String, Entry>>,
    nudge: Notify,
}

#[derive(Debug)]
struct Entry {
    token_hash: String,
    connection_id: String,
    kind: AccessKind,
    review: Option<String>,
    end: watch::Sender<Option<Arc<str>>>,
}

/// One registered session; dropping it forgets the session.
#[derive(Debug)]
pub struct LiveSession {
    id: String,
    registry: LiveSessions,
    end: EndSignal,
}

impl LiveSession {
    /// Fires when the session must end, with the reason.
    pub(crate) fn end_signal(&self) -> EndSignal {
        self.end.clone()
    }

    /// Why the session was ended, if it was.
    pub fn ended(&self) -> Option<Arc<str>> {
        self.end.borrow().clone()
    }

    /// The outcome to record: `failed` with the reason when the gateway
    /// ended the session, else what its serving reported.
    pub fn outcome(
        &self,
        status: &'static str,
        error: Option<String>,
    ) -> (&'static str, Option<String>) {
        match self.ended() {
            Some(reason) => ("failed", Some(reason.to_string())),
            None => (status, error),
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.registry.lock().remove(&self.id);
    }
}

/// A live session, as revalidation sees it.
struct Snapshot {
    id: String,
    token_hash: String,
    connection_id: String,
    kind: AccessKind,
    review: Option<String>,
}

impl LiveSessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        // An entry is inserted or removed whole: a panic elsewhere leaves
        // nothing half done.
        self.inner
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers session `id`, opened with the token whose hash is
    /// `token_hash` on `connection_id`, under the approved `review` when
    /// the connection has reviewers.
    pub(crate) fn register(
        &self,
        id: &str,
        token_hash: &str,
        connection_id: &str,
        kind: AccessKind,
        review: Option<String>,
    ) -> LiveSession {
        let (end, signal) = watch::channel(None);
        self.lock().insert(
            id.to_owned(),
            Entry {
                token_hash: token_hash.to_owned(),
                connection_id: connection_id.to_owned(),
                kind,
                review,
                end,
            },
        );
        LiveSession {
            id: id.to_owned(),
            registry: self.clone(),
            end: signal,
        }
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Asks for a revalidation now: something that decides access changed.
    pub(crate) fn nudge(&self) {
        self.inner.nudge.notify_one();
    }

    fn end(&self, id: &str, reason: &str) {
        if let Some(entry) = self.lock().get(id) {
            tracing::info!(session = %id, reason, "ending a session whose access was withdrawn");
            entry.end.send_replace(Some(Arc::from(reason)));
        }
    }

    /// Revalidates every live session after each nudge and every
    /// [`REVALIDATE_INTERVAL`], until the task is dropped.
    pub(crate) async fn watch(self, state: AppState) {
        let mut interval = tokio::time::interval(REVALIDATE_INTERVAL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = self.inner.nudge.notified() => {}
            }
            if self.is_empty() {
                continue;
            }
            if let Err(error) = self.revalidate(&state).await {
                tracing::warn!(
                    error = error.message(),
                    "could not revalidate live sessions; trying again later"
                );
            }
        }
    }

    /// Runs the checks that opened each live session again, and ends
    /// those that would now be refused.
    ///
    /// # Errors
    ///
    /// When the store fails; nothing was ended then.
    pub async fn revalidate(&self, state: &AppState) -> Result<(), ApiError> {
        let snapshot: Vec<Snapshot> = self
            .lock()
            .iter()
            .filter(|(_, entry)| entry.end.borrow().is_none())
            .map(|(id, entry)| Snapshot {
                id: id.clone(),
                token_hash: entry.token_hash.clone(),
                connection_id: entry.connection_id.clone(),
                kind: entry.kind,
                review: entry.review.clone(),
            })
            .collect();
        let mut callers = HashMap::new();
        for session in &snapshot {
            if !callers.contains_key(&session.token_hash) {
                let user = state
                    .store
                    .user_for_token(&session.token_hash)
                    .await?
                    .filter(|user| user.status == "active");
                callers.insert(session.token_hash.clone(), user.map(|user| Caller { user }));
            }
        }
        let mut connections = HashMap::new();
        for session in &snapshot {
            if !connections.contains_key(&session.connection_id) {
                let record = state.store.find_connection(&session.connection_id).await?;
                connections.insert(session.connection_id.clone(), record);
            }
        }
        // Administrators see every connection; the others' rules are one
        // read, shared.
        let mut rules = None;
        // Whether each connection has reviewers: one read per connection.
        let mut reviewed = HashMap::new();
        let mut ends = Vec::new();
        for session in &snapshot {
            let Some(caller) = callers.get(&session.token_hash).and_then(Option::as_ref) else {
                ends.push((
                    &session.id,
                    "the access token of this session was revoked, or its user removed or deactivated".to_owned(),
                ));
                continue;
            };
            let Some(connection) = connections
                .get(&session.connection_id)
                .and_then(Option::as_ref)
                .filter(|c| c.id == session.connection_id)
            else {
                ends.push((
                    &session.id,
                    "the connection of this session was removed".to_owned(),
                ));
                continue;
            };
            if !caller.is_admin() && rules.is_none() {
                rules = Some(crate::api::access_rules(state, caller).await?);
            }
            let visible = caller.is_admin()
                || rules
                    .as_ref()
                    .is_some_and(|rules| crate::api::visible(rules, caller, &connection.id));
            if !visible {
                ends.push((
                    &session.id,
                    format!(
                        "connection {} is no longer available to you",
                        connection.name
                    ),
                ));
                continue;
            }
            let input = crate::api::stored_input(state, connection)?;
            let mode = match session.kind {
                AccessKind::Connect => input.access.connect,
                AccessKind::Exec => input.access.exec,
            };
            if !mode.is_enabled() {
                ends.push((
                    &session.id,
                    format!(
                        "{} access was disabled on connection {}",
                        session.kind.as_str(),
                        connection.name
                    ),
                ));
                continue;
            }
            if !reviewed.contains_key(&connection.id) {
                let groups = crate::reviews::reviewer_groups(state, &connection.id, &input).await?;
                reviewed.insert(connection.id.clone(), !groups.is_empty());
            }
            if reviewed.get(&connection.id) == Some(&false) {
                continue;
            }
            if let Some(reason) = review_withdrawn(state, session, connection).await? {
                ends.push((&session.id, reason));
            }
        }
        for (id, reason) in ends {
            self.end(id, &reason);
        }
        Ok(())
    }
}

/// Why a live session on a connection with reviewers may no longer run,
/// if it may not: a connect session's `jit` review revoked, or its window
/// over; any session opened without a review (before reviewers were
/// added). An exec under its one-time review runs to its end.
async fn review_withdrawn(
    state: &AppState,
    session: &Snapshot,
    connection: &crate::store::ConnectionRecord,
) -> Result<Option<String>, ApiError> {
    let Some(id) = &session.review else {
        return Ok(Some(format!(
            "connection {} now requires an approved review",
            connection.name
        )));
    };
    if session.kind == AccessKind::Exec {
        return Ok(None);
    }
    Ok(match state.store.find_review(id).await? {
        Some(review) => crate::reviews::access_ended(&review, crate::store::now_ms()),
        None => Some(format!("review {id} no longer exists")),
    })
}
