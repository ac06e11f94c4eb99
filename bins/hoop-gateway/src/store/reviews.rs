//! Review records: access requests that hold a session until reviewers
//! approve it, and the audit of each of their transitions.
//!
//! A review changes only from the revision it was read at
//! ([`Store::update_review`]): two reviewers acting at once cannot both
//! move it, and each change is one row of `review_events`.

use serde::{Deserialize, Serialize};

use super::{Row, Statement, Store, StoreError, Value};

/// One reviewer group's part in a review (hoop's `review_groups_data`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewGroup {
    /// The group whose member may approve.
    pub group: String,
    /// `PENDING`, `APPROVED` or `REJECTED`.
    pub status: String,
    /// The e-mail of the member who acted.
    pub reviewed_by: Option<String>,
    /// When they acted (ms).
    pub review_date: Option<i64>,
    /// Whether an administrator approved in the group's place.
    pub forced_review: bool,
}

/// One review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRecord {
    /// Its id.
    pub id: String,
    /// `onetime` (an exec) or `jit` (connect access for a time).
    pub kind: String,
    /// `PENDING`, `APPROVED`, `REJECTED`, `EXPIRED`, `REVOKED`,
    /// `PROCESSING` or `EXECUTED`.
    pub status: String,
    /// The connection's id.
    pub connection_id: String,
    /// The connection's name.
    pub connection_name: String,
    /// The requester's user id.
    pub user_id: String,
    /// The requester's e-mail.
    pub user_email: String,
    /// The hash of the token the request was made with: the approved
    /// exec runs with it, so revoking the token stops it.
    pub token_hash: String,
    /// The script of a one-time review, exactly as submitted.
    pub input: Option<String>,
    /// `text` or `json`, for a one-time review's output.
    pub output_format: Option<String>,
    /// The access asked for by a `jit` review, in seconds.
    pub access_duration_sec: Option<i64>,
    /// The hours of the day approved access is limited to (JSON).
    pub time_window: Option<String>,
    /// Each reviewer group's part.
    pub review_groups: Vec<ReviewGroup>,
    /// Approving groups needed, when fewer than all.
    pub min_approvals: Option<i64>,
    /// The session that ran a one-time review.
    pub session_id: Option<String>,
    /// A one-time review's output.
    pub output: Option<String>,
    /// A one-time review's exit code.
    pub exit_code: Option<i64>,
    /// Why the execution failed.
    pub error: Option<String>,
    /// Creation (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
    /// A pending review expires then (ms).
    pub expires_at: i64,
    /// When approved `jit` access ends (ms).
    pub revoke_at: Option<i64>,
    /// Changes made so far.
    pub revision: i64,
}

/// One transition of a review, for its audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewEvent {
    /// The revision it made.
    pub revision: i64,
    /// The status it left the review in.
    pub status: String,
    /// Who: an e-mail, or `gateway` for its own timers and executions.
    pub actor: String,
    /// Whether an administrator forced it.
    pub forced: bool,
    /// What happened, in words.
    pub note: Option<String>,
    /// When (ms).
    pub at: i64,
}

/// Filters for [`Store::list_reviews`]; `None` matches all.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    /// Status.
    pub status: Option<String>,
    /// Connection name.
    pub connection: Option<String>,
    /// Requester e-mail.
    pub requester: Option<String>,
}

/// `SELECT` of every column of `reviews`, in [`ReviewRecord::from_row`]'s
/// order, followed by `$rest`.
macro_rules! select_reviews {
    ($rest:literal) => {
        concat!(
            "SELECT id, type, status, connection_id, connection_name, user_id, user_email, \
             token_hash, input, output_format, access_duration_sec, time_window, review_groups, \
             min_approvals, session_id, output, exit_code, error, created_at, updated_at, \
             expires_at, revoke_at, revision FROM reviews ",
            $rest
        )
    };
}

fn opt_int(row: &Row, index: usize) -> Result<Option<i64>, StoreError> {
    match row.get(index)? {
        Value::Null => Ok(None),
        _ => row.int(index).map(Some),
    }
}

fn opt(value: Option<i64>) -> Value {
    value.map_or(Value::Null, Value::Int)
}

impl ReviewRecord {
    fn from_row(row: &Row) -> Result<Self, StoreError> {
        let groups = row.text(12)?;
        Ok(Self {
            id: row.text(0)?,
            kind: row.text(1)?,
            status: row.text(2)?,
            connection_id: row.text(3)?,
            connection_name: row.text(4)?,
            user_id: row.text(5)?,
            user_email: row.text(6)?,
            token_hash: row.text(7)?,
            input: row.opt_text(8)?,
            output_format: row.opt_text(9)?,
            access_duration_sec: opt_int(row, 10)?,
            time_window: row.opt_text(11)?,
            review_groups: serde_json::from_str(&groups)
                .map_err(|_| StoreError::Corrupt("review groups"))?,
            min_approvals: opt_int(row, 13)?,
            session_id: row.opt_text(14)?,
            output: row.opt_text(15)?,
            exit_code: opt_int(row, 16)?,
            error: row.opt_text(17)?,
            created_at: row.int(18)?,
            updated_at: row.int(19)?,
            expires_at: row.int(20)?,
            revoke_at: opt_int(row, 21)?,
            revision: row.int(22)?,
        })
    }

    fn groups_json(&self) -> Result<String, StoreError> {
        serde_json::to_string(&self.review_groups).map_err(|_| StoreError::Corrupt("review groups"))
    }

    fn event_statement(&self, actor: &str, forced: bool, note: Option<String>) -> Statement {
        // Written only when the review is at the revision it records: a
        // change that lost a race writes no event (and the primary key
        // refuses a second event for one revision).
        Statement::new(
            "INSERT INTO review_events (review_id, revision, status, actor, forced, note, at) \
             SELECT CAST($1 AS TEXT), CAST($2 AS BIGINT), CAST($3 AS TEXT), CAST($4 AS TEXT), \
             CAST($5 AS BIGINT), CAST($6 AS TEXT), CAST($7 AS BIGINT) \
             WHERE EXISTS (SELECT 1 FROM reviews WHERE id = $1 AND revision = $2)",
            vec![
                self.id.as_str().into(),
                self.revision.into(),
                self.status.as_str().into(),
                actor.into(),
                i64::from(forced).into(),
                note.into(),
                self.updated_at.into(),
            ],
        )
    }
}

impl Store {
    /// Records a new review and its creation event.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn insert_review(&self, review: &ReviewRecord) -> Result<(), StoreError> {
        let insert = Statement::new(
            "INSERT INTO reviews (id, type, status, connection_id, connection_name, user_id, \
             user_email, token_hash, input, output_format, access_duration_sec, time_window, \
             review_groups, min_approvals, session_id, output, exit_code, error, created_at, \
             updated_at, expires_at, revoke_at, revision) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22, $23)",
            vec![
                review.id.as_str().into(),
                review.kind.as_str().into(),
                review.status.as_str().into(),
                review.connection_id.as_str().into(),
                review.connection_name.as_str().into(),
                review.user_id.as_str().into(),
                review.user_email.as_str().into(),
                review.token_hash.as_str().into(),
                review.input.clone().into(),
                review.output_format.clone().into(),
                opt(review.access_duration_sec),
                review.time_window.clone().into(),
                review.groups_json()?.into(),
                opt(review.min_approvals),
                review.session_id.clone().into(),
                review.output.clone().into(),
                opt(review.exit_code),
                review.error.clone().into(),
                review.created_at.into(),
                review.updated_at.into(),
                review.expires_at.into(),
                opt(review.revoke_at),
                review.revision.into(),
            ],
        );
        let event = review.event_statement(&review.user_email, false, Some("requested".into()));
        self.transaction(vec![insert, event]).await.map(drop)
    }

    /// Writes `review`, which was read at revision `review.revision - 1`,
    /// with its event. Returns false, writing nothing, when the review
    /// changed since it was read.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn update_review(
        &self,
        review: &ReviewRecord,
        actor: &str,
        forced: bool,
        note: Option<String>,
    ) -> Result<bool, StoreError> {
        let update = Statement::new(
            "UPDATE reviews SET status = $2, review_groups = $3, session_id = $4, output = $5, \
             exit_code = $6, error = $7, updated_at = $8, revoke_at = $9, time_window = $10, \
             revision = $11 WHERE id = $1 AND revision = $12",
            vec![
                review.id.as_str().into(),
                review.status.as_str().into(),
                review.groups_json()?.into(),
                review.session_id.clone().into(),
                review.output.clone().into(),
                opt(review.exit_code),
                review.error.clone().into(),
                review.updated_at.into(),
                opt(review.revoke_at),
                review.time_window.clone().into(),
                review.revision.into(),
                (review.revision - 1).into(),
            ],
        );
        let event = review.event_statement(actor, forced, note);
        match self.transaction(vec![update, event]).await {
            Ok(changed) => Ok(changed.first().copied() == Some(1)),
            Err(StoreError::Conflict) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// One review by id.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn find_review(&self, id: &str) -> Result<Option<ReviewRecord>, StoreError> {
        let rows = self
            .query(select_reviews!("WHERE id = $1"), vec![id.into()])
            .await?;
        rows.first().map(ReviewRecord::from_row).transpose()
    }

    /// The one-time review that session `session_id` ran, if one did.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn review_of_session(
        &self,
        session_id: &str,
    ) -> Result<Option<ReviewRecord>, StoreError> {
        let rows = self
            .query(
                select_reviews!("WHERE session_id = $1"),
                vec![session_id.into()],
            )
            .await?;
        rows.first().map(ReviewRecord::from_row).transpose()
    }

    /// Reviews matching `filter`, newest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_reviews(
        &self,
        filter: &ReviewFilter,
        limit: i64,
    ) -> Result<Vec<ReviewRecord>, StoreError> {
        let rows = self
            .query(
                select_reviews!(
                    "WHERE (CAST($1 AS TEXT) IS NULL OR status = $1) \
                     AND (CAST($2 AS TEXT) IS NULL OR connection_name = $2) \
                     AND (CAST($3 AS TEXT) IS NULL OR user_email = $3) \
                     ORDER BY created_at DESC, id LIMIT $4"
                ),
                vec![
                    filter.status.clone().into(),
                    filter.connection.clone().into(),
                    filter.requester.clone().into(),
                    limit.into(),
                ],
            )
            .await?;
        rows.iter().map(ReviewRecord::from_row).collect()
    }

    /// Reviews in `status`, oldest first: the gateway's timers and
    /// executions work through them.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn reviews_in(&self, status: &str) -> Result<Vec<ReviewRecord>, StoreError> {
        let rows = self
            .query(
                select_reviews!("WHERE status = $1 ORDER BY created_at, id"),
                vec![status.into()],
            )
            .await?;
        rows.iter().map(ReviewRecord::from_row).collect()
    }

    /// The approved `jit` reviews of a person on a connection whose
    /// access has not ended at `now`.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn approved_access(
        &self,
        user_id: &str,
        connection_id: &str,
        now: i64,
    ) -> Result<Vec<ReviewRecord>, StoreError> {
        let rows = self
            .query(
                select_reviews!(
                    "WHERE user_id = $1 AND connection_id = $2 AND type = 'jit' \
                     AND status = 'APPROVED' AND revoke_at > $3 ORDER BY revoke_at DESC"
                ),
                vec![user_id.into(), connection_id.into(), now.into()],
            )
            .await?;
        rows.iter().map(ReviewRecord::from_row).collect()
    }

    /// A review's transitions, oldest first.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn review_events(&self, id: &str) -> Result<Vec<ReviewEvent>, StoreError> {
        let rows = self
            .query(
                "SELECT revision, status, actor, forced, note, at FROM review_events \
                 WHERE review_id = $1 ORDER BY revision",
                vec![id.into()],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReviewEvent {
                    revision: row.int(0)?,
                    status: row.text(1)?,
                    actor: row.text(2)?,
                    forced: row.int(3)? != 0,
                    note: row.opt_text(4)?,
                    at: row.int(5)?,
                })
            })
            .collect()
    }
}
