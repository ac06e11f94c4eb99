//! The `webhooks` plugin: session and review events, signed as Svix signs
//! them, delivered at least once through an outbox in the store.
//!
//! ```text
//!  sessions::open / finish, reviews --emit--> webhook_deliveries (pending)
//!                                                  |  every POLL_INTERVAL, due ones
//!                                                  v
//!                              POST endpoint  webhook-id, webhook-timestamp,
//!                                             webhook-signature: v1,<base64 HMAC-SHA256(id.ts.body)>
//!                              2xx: delivered; else retried with backoff for a day, then failed
//! ```
//!
//! The plugin's configuration holds the endpoints: `{"endpoints": [{"url":
//! "https://...", "secret": "whsec_<base64>", "event_types": [..]}]}`
//! (no `event_types`: every type); its connection entries say whose
//! sessions and reviews are sent. Emitting is a write to the store, never
//! a call to an endpoint, so a slow or failing endpoint slows no session;
//! pending deliveries survive a restart.

use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::api::{ApiError, AppState};
use crate::store::{AttemptRecord, DeliveryRecord, now_ms};

/// The plugin's name.
pub const PLUGIN: &str = "webhooks";

/// The events sent.
pub const EVENT_TYPES: &[&str] = &[
    "session.open",
    "session.close",
    "review.create",
    "review.update",
];

/// How often the outbox is read for due deliveries.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// Deliveries attempted per reading of the outbox.
const BATCH: i64 = 32;

/// How long one attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a delivery is retried before it is marked failed: a day.
const RETRY_FOR_MS: i64 = 24 * 3600 * 1000;

/// The longest wait between two attempts.
const MAX_BACKOFF_MS: i64 = 3600 * 1000;

/// The prefix of a Svix signing secret.
const SECRET_PREFIX: &str = "whsec_";

/// The context the endpoints' secrets are sealed under in the outbox.
const SEAL_CONTEXT: &str = "webhook-secret";

/// One endpoint of the plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// Where events are POSTed.
    pub url: String,
    /// `whsec_` and the base64 key.
    pub secret: String,
    /// The events it receives; empty means all.
    pub event_types: Vec<String>,
}

/// Checks the plugin's configuration as `PUT /api/plugins/webhooks` takes
/// it.
///
/// # Errors
///
/// 422 naming the field at fault.
pub fn check_config(config: &Map<String, Value>) -> Result<Vec<WebhookEndpoint>, ApiError> {
    if let Some(unknown) = config.keys().find(|k| *k != "endpoints") {
        return Err(ApiError::invalid(
            format!("config.{unknown}"),
            "unknown field",
        ));
    }
    let Some(list) = config.get("endpoints") else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| ApiError::invalid("config.endpoints", "must be a list"))?;
    list.iter()
        .enumerate()
        .map(|(index, entry)| endpoint(entry, &format!("config.endpoints[{index}]")))
        .collect()
}

fn endpoint(entry: &Value, field: &str) -> Result<WebhookEndpoint, ApiError> {
    let object = entry
        .as_object()
        .ok_or_else(|| ApiError::invalid(field, "must be an object"))?;
    if let Some(unknown) = object
        .keys()
        .find(|k| !["url", "secret", "event_types"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            format!("{field}.{unknown}"),
            "unknown field",
        ));
    }
    let url = object
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| {
            (u.starts_with("http://") || u.starts_with("https://"))
                && !u.chars().any(char::is_control)
        })
        .ok_or_else(|| ApiError::invalid(format!("{field}.url"), "must be an http(s) URL"))?;
    let secret = object
        .get("secret")
        .and_then(Value::as_str)
        .filter(|s| key(s).is_some())
        .ok_or_else(|| {
            ApiError::invalid(
                format!("{field}.secret"),
                "must be whsec_ followed by a base64 key, as Svix makes them",
            )
        })?;
    let mut event_types = Vec::new();
    if let Some(types) = object.get("event_types") {
        for (index, kind) in types
            .as_array()
            .ok_or_else(|| ApiError::invalid(format!("{field}.event_types"), "must be a list"))?
            .iter()
            .enumerate()
        {
            let kind = kind
                .as_str()
                .filter(|k| EVENT_TYPES.contains(k))
                .ok_or_else(|| {
                    ApiError::invalid(
                        format!("{field}.event_types[{index}]"),
                        format!("must be one of {}", EVENT_TYPES.join(", ")),
                    )
                })?;
            event_types.push(kind.to_owned());
        }
    }
    Ok(WebhookEndpoint {
        url: url.to_owned(),
        secret: secret.to_owned(),
        event_types,
    })
}

/// The configuration as the API shows it: the secrets left out.
pub fn redacted(config: &Value) -> Value {
    let mut config = config.clone();
    if let Some(endpoints) = config.get_mut("endpoints").and_then(Value::as_array_mut) {
        for endpoint in endpoints {
            if let Some(secret) = endpoint.get_mut("secret") {
                *secret = json!("");
            }
        }
    }
    config
}

/// The HMAC key of a `whsec_` secret.
fn key(secret: &str) -> Option<Vec<u8>> {
    let encoded = secret.strip_prefix(SECRET_PREFIX)?;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()
        .filter(|k| !k.is_empty())
}

/// The `webhook-signature` header of a message, as Svix computes it:
/// `v1,` and the base64 HMAC-SHA256, keyed by the secret's key, of
/// `{id}.{timestamp}.{body}`. `None` for a secret that is not `whsec_`
/// base64.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key(secret)?);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let tag = ring::hmac::sign(&key, &signed);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
    ))
}

/// Queues `event_type` with `data` for every endpoint that takes it, when
/// the plugin lists `connection_id`. A store failure is logged: the event
/// is lost, the session or review goes on.
pub async fn emit(state: &AppState, connection_id: &str, event_type: &str, data: Value) {
    if let Err(error) = try_emit(state, connection_id, event_type, data).await {
        tracing::error!(
            error = error.message(),
            event_type,
            "could not queue a webhook event"
        );
    }
}

async fn try_emit(
    state: &AppState,
    connection_id: &str,
    event_type: &str,
    data: Value,
) -> Result<(), ApiError> {
    let Some(entry) = state.store.plugin_entry(PLUGIN, connection_id).await? else {
        return Ok(());
    };
    let config: Map<String, Value> = entry
        .plugin_config
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let endpoints = check_config(&config)?;
    let now = now_ms();
    let payload = json!({"type": event_type, "timestamp": now, "data": data}).to_string();
    let mut deliveries = Vec::new();
    for endpoint in endpoints
        .iter()
        .filter(|e| e.event_types.is_empty() || e.event_types.iter().any(|t| t == event_type))
    {
        deliveries.push(DeliveryRecord {
            id: format!("msg_{}", crate::crypto::new_id()?),
            endpoint_url: endpoint.url.clone(),
            secret: state
                .secrets
                .seal(SEAL_CONTEXT, endpoint.secret.as_bytes())?,
            event_type: event_type.to_owned(),
            payload: payload.clone(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: now,
            created_at: now,
            updated_at: now,
        });
    }
    if !deliveries.is_empty() {
        state.store.queue_deliveries(&deliveries).await?;
    }
    Ok(())
}

/// Delivers due events every [`POLL_INTERVAL`] until the task is dropped.
pub(crate) async fn deliver(state: AppState) {
    let mut interval = tokio::time::interval(POLL_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let due = match state.store.due_deliveries(now_ms(), BATCH).await {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "could not read the webhooks outbox; trying again later");
                continue;
            }
        };
        let mut attempts = tokio::task::JoinSet::new();
        for delivery in due {
            let state = state.clone();
            attempts.spawn(async move { attempt(&state, delivery).await });
        }
        while attempts.join_next().await.is_some() {}
    }
}

/// The wait before attempt `attempts + 1`: 1 s, doubling, at most an hour.
fn backoff(attempts: i64) -> i64 {
    let doublings = u32::try_from(attempts.clamp(0, 30)).unwrap_or(30);
    1000_i64
        .saturating_mul(1_i64 << doublings.min(22))
        .min(MAX_BACKOFF_MS)
}

async fn attempt(state: &AppState, mut delivery: DeliveryRecord) {
    let now = now_ms();
    let outcome = match state.secrets.open(SEAL_CONTEXT, &delivery.secret) {
        Ok(secret) => {
            let secret = String::from_utf8_lossy(&secret).into_owned();
            let timestamp = now / 1000;
            match sign(
                &secret,
                &delivery.id,
                timestamp,
                delivery.payload.as_bytes(),
            ) {
                Some(signature) => {
                    let headers = [
                        ("webhook-id", delivery.id.clone()),
                        ("webhook-timestamp", timestamp.to_string()),
                        ("webhook-signature", signature),
                    ];
                    let body = Bytes::from(delivery.payload.clone());
                    match tokio::time::timeout(
                        ATTEMPT_TIMEOUT,
                        crate::client::post(
                            &delivery.endpoint_url,
                            "application/json",
                            &headers,
                            body,
                        ),
                    )
                    .await
                    {
                        Ok(Ok(response)) if response.status.is_success() => {
                            (Some(response.status.as_u16()), None)
                        }
                        Ok(Ok(response)) => (
                            Some(response.status.as_u16()),
                            Some(format!("the endpoint answered {}", response.status)),
                        ),
                        Ok(Err(crate::client::ClientError::Io(error))) => {
                            (None, Some(format!("cannot reach the endpoint: {error}")))
                        }
                        Ok(Err(error)) => (None, Some(error.to_string())),
                        Err(_) => (None, Some("no answer within 10 s".to_owned())),
                    }
                }
                None => (None, Some("the endpoint's secret is unusable".to_owned())),
            }
        }
        Err(error) => (None, Some(format!("the sealed secret: {error}"))),
    };
    let (status_code, error) = outcome;
    delivery.attempts += 1;
    delivery.updated_at = now_ms();
    delivery.status = if error.is_none() {
        "delivered".into()
    } else if delivery.updated_at - delivery.created_at >= RETRY_FOR_MS {
        "failed".into()
    } else {
        delivery.next_attempt_at = delivery.updated_at + backoff(delivery.attempts - 1);
        "pending".into()
    };
    let record = AttemptRecord {
        delivery_id: delivery.id.clone(),
        attempt: delivery.attempts,
        at: now,
        status_code: status_code.map(i64::from),
        error,
    };
    if let Err(error) = state.store.record_attempt(&delivery, &record).await {
        tracing::warn!(%error, delivery = %delivery.id, "could not record a webhook attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Svix's documentation and of its libraries' tests
    /// (svix-webhooks, `webhook_test`): this message, secret and
    /// timestamp sign as this.
    #[test]
    fn signs_as_svix_documents() {
        assert_eq!(
            sign(
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#,
            )
            .as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
        assert_eq!(
            sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "m", 1, b"{}"),
            None
        );
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert_eq!(backoff(0), 1000);
        assert_eq!(backoff(3), 8000);
        assert_eq!(backoff(40), MAX_BACKOFF_MS);
    }
}
