//! Session records: who reached which connection, how, when, and how it
//! ended. Results and secrets are never stored here.

use super::{Row, Store, StoreError};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One session, open or ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its id.
    pub id: String,
    /// The person's user id; none when the token was not recognised.
    pub user_id: Option<String>,
    /// The person's e-mail, or `unknown`.
    pub user_email: String,
    /// The connection's id, when it exists.
    pub connection_id: Option<String>,
    /// The connection name the client asked for.
    pub connection_name: String,
    /// `connect` or `exec`.
    pub access_mode: String,
    /// `postgres`, `mysql`, ...
    pub protocol: String,
    /// `open`, `done`, `failed` or `refused`.
    pub status: String,
    /// Why it failed or was refused.
    pub error: Option<String>,
    /// Start, in milliseconds since the epoch.
    pub started_at: i64,
    /// End, in milliseconds since the epoch; none while open.
    pub ended_at: Option<i64>,
    /// Bytes from the client towards the database.
    pub bytes_in: i64,
    /// Bytes from the database towards the client.
    pub bytes_out: i64,
}

impl SessionRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.text(0)?,
            user_id: row.opt_text(1)?,
            user_email: row.text(2)?,
            connection_id: row.opt_text(3)?,
            connection_name: row.text(4)?,
            access_mode: row.text(5)?,
            protocol: row.text(6)?,
            status: row.text(7)?,
            error: row.opt_text(8)?,
            started_at: row.int(9)?,
            ended_at: match row.get(10)? {
                super::Value::Null => None,
                _ => Some(row.int(10)?),
            },
            bytes_in: row.int(11)?,
            bytes_out: row.int(12)?,
        })
    }
}

/// Filters for [`Store::list_sessions`]; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Connection name.
    pub connection: Option<String>,
    /// User e-mail.
    pub user: Option<String>,
    /// Status.
    pub status: Option<String>,
    /// Started at or after (ms).
    pub since: Option<i64>,
    /// Started before (ms).
    pub until: Option<i64>,
}

impl Store {
    /// Records a session (open, or already ended when refused).
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn insert_session(&self, session: &SessionRecord) -> Result<(), StoreError> {
        self.insert_served_session(session, None).await
    }

    /// Records a session served by the agent `agent_id`, the only agent
    /// whose event batches for it are accepted when they do not come on
    /// the session's own stream ([`Store::session_agent`]).
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn insert_served_session(
        &self,
        session: &SessionRecord,
        agent_id: Option<&str>,
    ) -> Result<(), StoreError> {
        self.execute(
            "INSERT INTO sessions (id, user_id, user_email, connection_id, connection_name, \
             access_mode, protocol, status, error, started_at, ended_at, bytes_in, bytes_out, \
             agent_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            vec![
                session.id.as_str().into(),
                session.user_id.clone().into(),
                session.user_email.as_str().into(),
                session.connection_id.clone().into(),
                session.connection_name.as_str().into(),
                session.access_mode.as_str().into(),
                session.protocol.as_str().into(),
                session.status.as_str().into(),
                session.error.clone().into(),
                session.started_at.into(),
                session
                    .ended_at
                    .map_or(super::Value::Null, super::Value::Int),
                session.bytes_in.into(),
                session.bytes_out.into(),
                agent_id.map(str::to_owned).into(),
            ],
        )
        .await
        .map(drop)
    }

    /// The agent that served a session: `None` when there is no such
    /// session, `Some(None)` when no agent is recorded (refused sessions,
    /// and those from before agents were recorded).
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn session_agent(&self, id: &str) -> Result<Option<Option<String>>, StoreError> {
        let rows = self
            .query(
                "SELECT agent_id FROM sessions WHERE id = $1",
                vec![id.into()],
            )
            .await?;
        rows.first().map(|row| row.opt_text(0)).transpose()
    }

    /// Closes the sessions `ids` that are still open, as failed with
    /// `reason`: a gateway stopping ends those it served.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn fail_sessions(&self, ids: &[String], reason: &str) -> Result<(), StoreError> {
        let statements = ids
            .iter()
            .map(|id| {
                super::Statement::new(
                    "UPDATE sessions SET status = 'failed', error = $2, ended_at = $3 \
                     WHERE id = $1 AND status = 'open'",
                    vec![id.as_str().into(), reason.into(), now_ms().into()],
                )
            })
            .collect();
        self.transaction(statements).await.map(drop)
    }

    /// Closes an open session with its outcome and byte counts.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn finish_session(
        &self,
        id: &str,
        status: &str,
        error: Option<String>,
        bytes_in: i64,
        bytes_out: i64,
    ) -> Result<(), StoreError> {
        self.execute(
            "UPDATE sessions SET status = $2, error = $3, ended_at = $4, bytes_in = $5, \
             bytes_out = $6 WHERE id = $1",
            vec![
                id.into(),
                status.into(),
                error.into(),
                now_ms().into(),
                bytes_in.into(),
                bytes_out.into(),
            ],
        )
        .await
        .map(drop)
    }

    /// Marks every session still open as failed: run at start, since a
    /// gateway that stopped cannot have kept them.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn fail_open_sessions(&self, reason: &str) -> Result<(), StoreError> {
        self.execute(
            "UPDATE sessions SET status = 'failed', error = $1, ended_at = $2 \
             WHERE status = 'open'",
            vec![reason.into(), now_ms().into()],
        )
        .await
        .map(drop)
    }

    /// One session by id.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn find_session(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let rows = self.query(SELECT_ONE, vec![id.into()]).await?;
        rows.first().map(SessionRecord::from_row).transpose()
    }

    /// Sessions matching `filter`, newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_sessions(
        &self,
        filter: &SessionFilter,
        limit: i64,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = self
            .query(
                SELECT_MANY,
                vec![
                    filter.connection.clone().into(),
                    filter.user.clone().into(),
                    filter.status.clone().into(),
                    filter.since.unwrap_or(0).into(),
                    filter.until.unwrap_or(i64::MAX).into(),
                    limit.into(),
                ],
            )
            .await?;
        rows.iter().map(SessionRecord::from_row).collect()
    }

    /// Appends batches of events to sessions' streams, in one transaction.
    /// A batch is one row: a busy session records thousands of statements
    /// a second, and one insert per statement would cost the store more
    /// than the statements cost the proxy. A batch already stored (same
    /// session and first sequence number: an agent sent it again, not
    /// having heard it was stored) is left as it is.
    ///
    /// # Errors
    ///
    /// Any backend error; then none of the batches is stored.
    pub async fn append_session_events(&self, batches: &[EventBatch]) -> Result<(), StoreError> {
        let statements = batches
            .iter()
            .filter(|batch| !batch.events.is_empty())
            .map(|batch| {
                super::Statement::new(
                    "INSERT INTO session_event_batches (session_id, first_seq, events) \
                     VALUES ($1, $2, $3) ON CONFLICT (session_id, first_seq) DO NOTHING",
                    vec![
                        batch.session_id.as_str().into(),
                        batch.first_seq.into(),
                        batch.events.join("\n").into(),
                    ],
                )
            })
            .collect();
        self.transaction(statements).await.map(drop)
    }

    /// Up to `limit` of a session's event batches after the one starting
    /// at `after` (`-1` for the first), in order: `(first_seq, events as
    /// JSON lines)`. Read page by page, so a long session's events stream
    /// out in bounded memory.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn session_event_page(
        &self,
        session_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = self
            .query(
                "SELECT first_seq, events FROM session_event_batches \
                 WHERE session_id = $1 AND first_seq > $2 ORDER BY first_seq LIMIT $3",
                vec![session_id.into(), after.into(), limit.into()],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.int(0)?, row.text(1)?)))
            .collect()
    }
}

/// Consecutive events of one session, as the agent sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    /// The session.
    pub session_id: String,
    /// The sequence number of the first event.
    pub first_seq: i64,
    /// The events, JSON objects as serde_json writes them (one line each).
    pub events: Vec<String>,
}

const SELECT_ONE: &str = concat!(
    "SELECT id, user_id, user_email, connection_id, connection_name, access_mode, \
     protocol, status, error, started_at, ended_at, bytes_in, bytes_out ",
    "FROM sessions WHERE id = $1"
);

const SELECT_MANY: &str = concat!(
    "SELECT id, user_id, user_email, connection_id, connection_name, access_mode, \
     protocol, status, error, started_at, ended_at, bytes_in, bytes_out ",
    "FROM sessions WHERE (CAST($1 AS TEXT) IS NULL OR connection_name = $1) \
     AND (CAST($2 AS TEXT) IS NULL OR user_email = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR status = $3) AND started_at >= $4 AND started_at < $5 \
     ORDER BY started_at DESC, id LIMIT $6"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Backend, TestStore, on_both_backends};

    fn session(id: &str) -> SessionRecord {
        SessionRecord {
            id: id.into(),
            user_id: None,
            user_email: "a@example.com".into(),
            connection_id: None,
            connection_name: "pg".into(),
            access_mode: "connect".into(),
            protocol: "postgres".into(),
            status: "open".into(),
            error: None,
            started_at: 1,
            ended_at: None,
            bytes_in: 0,
            bytes_out: 0,
        }
    }

    fn batch(session_id: &str, first_seq: i64, text: &str) -> EventBatch {
        EventBatch {
            session_id: session_id.into(),
            first_seq,
            events: vec![format!(r#"{{"seq":{first_seq},"statement":"{text}"}}"#)],
        }
    }

    /// An agent that did not hear its batch was stored sends it again,
    /// alone or among others: it is stored once, and the others with it.
    async fn a_batch_sent_again_is_stored_once(backend: Backend) {
        let test = TestStore::new(backend).await;
        let store = test.open().await;
        store
            .insert_served_session(&session("s"), Some("agent-1"))
            .await
            .unwrap();
        store.insert_session(&session("t")).await.unwrap();
        assert_eq!(
            store.session_agent("s").await.unwrap(),
            Some(Some("agent-1".into()))
        );
        assert_eq!(store.session_agent("t").await.unwrap(), Some(None));
        assert_eq!(store.session_agent("u").await.unwrap(), None);
        store
            .append_session_events(&[batch("s", 0, "first")])
            .await
            .unwrap();
        store
            .append_session_events(&[batch("s", 0, "first"), batch("s", 1, "second")])
            .await
            .unwrap();
        let page = store.session_event_page("s", -1, 10).await.unwrap();
        assert_eq!(page.len(), 2, "{page:?}");
        assert!(page[0].1.contains("first") && page[1].1.contains("second"));
    }

    /// A gateway that stops closes the records it holds open, and no
    /// other.
    async fn a_stopping_gateway_fails_only_its_open_records(backend: Backend) {
        let test = TestStore::new(backend).await;
        let store = test.open().await;
        for id in ["mine", "other"] {
            store.insert_session(&session(id)).await.unwrap();
        }
        store
            .fail_sessions(&["mine".to_owned()], "the gateway shut down")
            .await
            .unwrap();
        let mine = store.find_session("mine").await.unwrap().unwrap();
        assert_eq!(mine.status, "failed");
        assert_eq!(mine.error.as_deref(), Some("the gateway shut down"));
        assert!(mine.ended_at.is_some());
        let other = store.find_session("other").await.unwrap().unwrap();
        assert_eq!(other.status, "open");
    }

    on_both_backends!(
        a_batch_sent_again_is_stored_once,
        a_stopping_gateway_fails_only_its_open_records,
    );
}
