//! The webhooks outbox: events waiting for (or done with) delivery to an
//! endpoint, and every attempt's outcome.

use super::{Statement, Store, StoreError, Value};

/// One event for one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The message id (`webhook-id`), the same on every attempt so the
    /// receiver can drop a duplicate.
    pub id: String,
    /// Where it goes.
    pub endpoint_url: String,
    /// The endpoint's signing secret, sealed with the gateway's key.
    pub secret: Vec<u8>,
    /// `session.open`, `session.close`, `review.create`, `review.update`.
    pub event_type: String,
    /// The JSON body sent.
    pub payload: String,
    /// `pending`, `delivered` or `failed` (given up after a day).
    pub status: String,
    /// Attempts made.
    pub attempts: i64,
    /// When the next attempt is due (ms).
    pub next_attempt_at: i64,
    /// When the event happened (ms).
    pub created_at: i64,
    /// Last change (ms).
    pub updated_at: i64,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Its delivery.
    pub delivery_id: String,
    /// 1 for the first.
    pub attempt: i64,
    /// When (ms).
    pub at: i64,
    /// The HTTP status the endpoint answered, if it answered.
    pub status_code: Option<i64>,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

macro_rules! select_deliveries {
    ($rest:literal) => {
        concat!(
            "SELECT id, endpoint_url, secret, event_type, payload, status, attempts, \
             next_attempt_at, created_at, updated_at FROM webhook_deliveries ",
            $rest
        )
    };
}

fn delivery(row: &super::Row) -> Result<DeliveryRecord, StoreError> {
    Ok(DeliveryRecord {
        id: row.text(0)?,
        endpoint_url: row.text(1)?,
        secret: row.blob(2)?,
        event_type: row.text(3)?,
        payload: row.text(4)?,
        status: row.text(5)?,
        attempts: row.int(6)?,
        next_attempt_at: row.int(7)?,
        created_at: row.int(8)?,
        updated_at: row.int(9)?,
    })
}

impl Store {
    /// Queues deliveries, all or none.
    ///
    /// # Errors
    ///
    /// Any backend error; nothing is queued.
    pub async fn queue_deliveries(&self, deliveries: &[DeliveryRecord]) -> Result<(), StoreError> {
        let statements = deliveries
            .iter()
            .map(|d| {
                Statement::new(
                    "INSERT INTO webhook_deliveries (id, endpoint_url, secret, event_type, payload, \
                     status, attempts, next_attempt_at, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    vec![
                        d.id.as_str().into(),
                        d.endpoint_url.as_str().into(),
                        d.secret.clone().into(),
                        d.event_type.as_str().into(),
                        d.payload.as_str().into(),
                        d.status.as_str().into(),
                        d.attempts.into(),
                        d.next_attempt_at.into(),
                        d.created_at.into(),
                        d.updated_at.into(),
                    ],
                )
            })
            .collect();
        self.transaction(statements).await.map(drop)
    }

    /// Pending deliveries due at `now`, oldest first, at most `limit`.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn due_deliveries(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = self
            .query(
                select_deliveries!(
                    "WHERE status = 'pending' AND next_attempt_at <= $1 \
                     ORDER BY created_at, id LIMIT $2"
                ),
                vec![now.into(), limit.into()],
            )
            .await?;
        rows.iter().map(delivery).collect()
    }

    /// Records an attempt and the delivery's new state, together.
    ///
    /// # Errors
    ///
    /// Any backend error; nothing is written.
    pub async fn record_attempt(
        &self,
        delivery: &DeliveryRecord,
        attempt: &AttemptRecord,
    ) -> Result<(), StoreError> {
        self.transaction(vec![
            Statement::new(
                "UPDATE webhook_deliveries SET status = $2, attempts = $3, next_attempt_at = $4, \
                 updated_at = $5 WHERE id = $1",
                vec![
                    delivery.id.as_str().into(),
                    delivery.status.as_str().into(),
                    delivery.attempts.into(),
                    delivery.next_attempt_at.into(),
                    delivery.updated_at.into(),
                ],
            ),
            Statement::new(
                "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error) \
                 VALUES ($1, $2, $3, $4, $5)",
                vec![
                    attempt.delivery_id.as_str().into(),
                    attempt.attempt.into(),
                    attempt.at.into(),
                    attempt.status_code.map_or(Value::Null, Value::Int),
                    attempt.error.clone().into(),
                ],
            ),
        ])
        .await
        .map(drop)
    }

    /// The newest deliveries, at most `limit`, each with its attempts.
    ///
    /// # Errors
    ///
    /// Any backend error.
    pub async fn list_deliveries(
        &self,
        limit: i64,
    ) -> Result<Vec<(DeliveryRecord, Vec<AttemptRecord>)>, StoreError> {
        let rows = self
            .query(
                select_deliveries!("ORDER BY created_at DESC, id LIMIT $1"),
                vec![limit.into()],
            )
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let delivery = delivery(row)?;
            let attempts = self
                .query(
                    "SELECT delivery_id, attempt, at, status_code, error FROM webhook_attempts \
                     WHERE delivery_id = $1 ORDER BY attempt",
                    vec![delivery.id.as_str().into()],
                )
                .await?
                .iter()
                .map(|row| {
                    Ok(AttemptRecord {
                        delivery_id: row.text(0)?,
                        attempt: row.int(1)?,
                        at: row.int(2)?,
                        status_code: match row.get(3)? {
                            Value::Null => None,
                            _ => Some(row.int(3)?),
                        },
                        error: row.opt_text(4)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.push((delivery, attempts));
        }
        Ok(out)
    }
}
