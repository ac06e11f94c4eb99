//! The `slack` plugin: a new review is posted to the connection's Slack
//! channels with Approve and Reject buttons; a click comes back to
//! `POST /api/plugins/slack/interactions`, signed by Slack, and acts as
//! the hoop user with the clicker's e-mail; the message then shows the
//! outcome.
//!
//! ```text
//!  review.create --> chat.postMessage (bot token)   --> slack_messages (channel, ts)
//!  click --> interactions: X-Slack-Signature v0 (signing secret, timestamp within 5 min)
//!        --> users.info (e-mail) --> hoop user --> reviews::decide
//!  review.update --> chat.update of each message posted for it
//! ```
//!
//! Configuration: `{"slack_bot_token": "xoxb-...", "slack_signing_secret":
//! "..."}`, each connection's entry the channel ids. The API's base URL
//! is `SLACK_API_URL` (`https://slack.com/api` by default).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use crate::api::{ApiError, AppState, Caller};
use crate::reviews::{Decision, review_json};
use crate::store::{ReviewRecord, Statement, now_ms};

/// The plugin's name.
pub const PLUGIN: &str = "slack";

/// Slack's Web API, unless `SLACK_API_URL` names another.
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// How far a request's timestamp may be from now, as Slack advises.
const MAX_SKEW_SECS: i64 = 5 * 60;

/// How long one call to Slack's API may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The plugin's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlackConfig {
    /// The bot's token, for `chat.postMessage`, `chat.update`, `users.info`.
    pub bot_token: String,
    /// The app's signing secret, to verify interactions.
    pub signing_secret: String,
}

/// Checks the plugin's configuration as `PUT /api/plugins/slack` takes it.
///
/// # Errors
///
/// 422 naming the field at fault.
pub fn check_config(config: &Map<String, Value>) -> Result<Option<SlackConfig>, ApiError> {
    if config.is_empty() {
        return Ok(None);
    }
    if let Some(unknown) = config
        .keys()
        .find(|k| !["slack_bot_token", "slack_signing_secret"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(
            format!("config.{unknown}"),
            "unknown field",
        ));
    }
    let text = |name: &str| {
        config
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_owned)
            .ok_or_else(|| ApiError::invalid(format!("config.{name}"), "is required"))
    };
    Ok(Some(SlackConfig {
        bot_token: text("slack_bot_token")?,
        signing_secret: text("slack_signing_secret")?,
    }))
}

/// The configuration as the API shows it: the secrets left out.
pub fn redacted(config: &Value) -> Value {
    let mut config = config.clone();
    for name in ["slack_bot_token", "slack_signing_secret"] {
        if let Some(value) = config.get_mut(name) {
            *value = json!("");
        }
    }
    config
}

async fn config(state: &AppState) -> Result<Option<SlackConfig>, ApiError> {
    let Some(stored) = state.store.plugin_config(PLUGIN).await? else {
        return Ok(None);
    };
    let map: Map<String, Value> = serde_json::from_str(&stored).unwrap_or_default();
    check_config(&map)
}

/// Calls Slack's API method `method` with `body` (`content_type`).
async fn call(
    state: &AppState,
    token: &str,
    method: &str,
    content_type: &str,
    body: Bytes,
) -> Result<Value, String> {
    let url = format!("{}/{method}", state.slack_api_url.trim_end_matches('/'));
    let headers = [("authorization", format!("Bearer {token}"))];
    let answer = tokio::time::timeout(
        CALL_TIMEOUT,
        crate::client::post(&url, content_type, &headers, body),
    )
    .await
    .map_err(|_| format!("{method}: no answer within 10 s"))?
    .map_err(|error| format!("{method}: {error}"))?;
    if answer.body["ok"] != true {
        return Err(format!(
            "{method}: {}",
            answer.body["error"].as_str().unwrap_or("not ok")
        ));
    }
    Ok(answer.body)
}

fn summary(review: &ReviewRecord) -> String {
    let what = match &review.input {
        Some(script) => format!("```{}```", script.chars().take(2000).collect::<String>()),
        None => format!(
            "connect access for {} s",
            review.access_duration_sec.unwrap_or_default()
        ),
    };
    format!(
        "*{}* asks for a review on *{}* (review `{}`)\n{what}",
        review.user_email, review.connection_name, review.id
    )
}

/// Posts a new review to the channels the plugin lists for its
/// connection, on a task of its own: the requester does not wait for
/// Slack.
pub fn review_created(state: &AppState, review: &ReviewRecord) {
    let (state, review) = (state.clone(), review.clone());
    tokio::spawn(async move {
        if let Err(error) = post_review(&state, &review).await {
            tracing::warn!(review = %review.id, %error, "could not post the review to Slack");
        }
    });
}

async fn post_review(state: &AppState, review: &ReviewRecord) -> Result<(), String> {
    let entry = state
        .store
        .plugin_entry(PLUGIN, &review.connection_id)
        .await
        .map_err(|e| e.to_string())?;
    let (Some(entry), Some(config)) = (
        entry,
        config(state).await.map_err(|e| e.message().to_owned())?,
    ) else {
        return Ok(());
    };
    let channels: Vec<String> = serde_json::from_str(&entry.config).unwrap_or_default();
    for channel in channels {
        let text = summary(review);
        let body = json!({
            "channel": channel,
            "text": text,
            "blocks": [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                {"type": "actions", "block_id": "review", "elements": [
                    {"type": "button", "action_id": "approve", "style": "primary",
                     "text": {"type": "plain_text", "text": "Approve"}, "value": review.id},
                    {"type": "button", "action_id": "reject", "style": "danger",
                     "text": {"type": "plain_text", "text": "Reject"}, "value": review.id},
                ]},
            ],
        });
        let answer = call(
            state,
            &config.bot_token,
            "chat.postMessage",
            "application/json; charset=utf-8",
            Bytes::from(body.to_string()),
        )
        .await?;
        let (Some(channel), Some(ts)) = (answer["channel"].as_str(), answer["ts"].as_str()) else {
            return Err("chat.postMessage: no channel or ts in the answer".into());
        };
        state
            .store
            .transaction(vec![Statement::new(
                "INSERT INTO slack_messages (review_id, channel, ts) VALUES ($1, $2, $3)",
                vec![review.id.as_str().into(), channel.into(), ts.into()],
            )])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Shows a review's new status in the messages posted for it, on a task
/// of its own.
pub fn review_updated(state: &AppState, review: &ReviewRecord) {
    let (state, review) = (state.clone(), review.clone());
    tokio::spawn(async move {
        if let Err(error) = update_messages(&state, &review).await {
            tracing::warn!(review = %review.id, %error, "could not update the review's Slack messages");
        }
    });
}

async fn update_messages(state: &AppState, review: &ReviewRecord) -> Result<(), String> {
    let messages = state
        .store
        .query(
            "SELECT channel, ts FROM slack_messages WHERE review_id = $1",
            vec![review.id.as_str().into()],
        )
        .await
        .map_err(|e| e.to_string())?;
    if messages.is_empty() {
        return Ok(());
    }
    let Some(config) = config(state).await.map_err(|e| e.message().to_owned())? else {
        return Ok(());
    };
    let by: Vec<String> = review
        .review_groups
        .iter()
        .filter_map(|g| g.reviewed_by.clone())
        .collect();
    let outcome = format!(
        "{}\n*{}*{}",
        summary(review),
        review.status,
        if by.is_empty() {
            String::new()
        } else {
            format!(" by {}", by.join(", "))
        }
    );
    for row in messages {
        let (channel, ts) = (
            row.text(0).map_err(|e| e.to_string())?,
            row.text(1).map_err(|e| e.to_string())?,
        );
        let body = json!({
            "channel": channel,
            "ts": ts,
            "text": outcome,
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": outcome}}],
        });
        call(
            state,
            &config.bot_token,
            "chat.update",
            "application/json; charset=utf-8",
            Bytes::from(body.to_string()),
        )
        .await?;
    }
    Ok(())
}

/// Whether `signature` (`X-Slack-Signature`) signs `body` sent at
/// `timestamp` (`X-Slack-Request-Timestamp`) with `secret`, and the
/// timestamp is within five minutes of `now` (seconds): Slack's `v0`
/// scheme, HMAC-SHA256 of `v0:{timestamp}:{body}`, hex.
pub fn verify(secret: &str, timestamp: &str, signature: &str, body: &[u8], now: i64) -> bool {
    let Ok(sent) = timestamp.parse::<i64>() else {
        return false;
    };
    if (now - sent).abs() > MAX_SKEW_SECS {
        return false;
    }
    let Some(hex) = signature.strip_prefix("v0=") else {
        return false;
    };
    let Some(tag) = decode_hex(hex) else {
        return false;
    };
    let mut signed = format!("v0:{timestamp}:").into_bytes();
    signed.extend_from_slice(body);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, &signed, &tag).is_ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `value` percent-encoded for a form body.
fn form_encoded(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The value of `name` in a form body (`a=1&b=2`), percent-decoded.
fn form_value(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let raw = text
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(byte) = bytes.next() {
        match byte {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next()?, bytes.next()?];
                out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            }
            other => out.push(other),
        }
    }
    String::from_utf8(out).ok()
}

/// Why an interaction was refused, for its answer.
#[derive(Debug)]
pub enum InteractionError {
    /// The signature or timestamp does not verify (401).
    Unauthorized,
    /// Anything else: what the clicker is told.
    Refused(String),
}

/// Acts on an interaction Slack sent: verifies it, maps the clicker to a
/// hoop user by e-mail, and approves or rejects the review. Returns what
/// the clicker is told.
///
/// # Errors
///
/// [`InteractionError::Unauthorized`] for a request Slack did not sign
/// now; [`InteractionError::Refused`] with the reason otherwise.
pub async fn interaction(
    state: &AppState,
    timestamp: &str,
    signature: &str,
    body: &[u8],
) -> Result<String, InteractionError> {
    let refused = |m: String| InteractionError::Refused(m);
    let config = config(state)
        .await
        .map_err(|e| refused(e.message().to_owned()))?
        .ok_or(InteractionError::Unauthorized)?;
    if !verify(
        &config.signing_secret,
        timestamp,
        signature,
        body,
        now_ms() / 1000,
    ) {
        return Err(InteractionError::Unauthorized);
    }
    let payload: Value = form_value(body, "payload")
        .and_then(|p| serde_json::from_str(&p).ok())
        .ok_or_else(|| refused("no payload".into()))?;
    let action = &payload["actions"][0];
    let (Some(action_id), Some(review_id), Some(slack_user)) = (
        action["action_id"].as_str(),
        action["value"].as_str(),
        payload["user"]["id"].as_str(),
    ) else {
        return Err(refused("not a review button".into()));
    };
    let decision = match action_id {
        "approve" => Decision::Approve {
            force: false,
            time_window: None,
        },
        "reject" => Decision::Reject { reason: None },
        _ => return Err(refused("not a review button".into())),
    };
    let info = call(
        state,
        &config.bot_token,
        "users.info",
        "application/x-www-form-urlencoded",
        Bytes::from(format!("user={}", form_encoded(slack_user))),
    )
    .await
    .map_err(refused)?;
    let email = info["user"]["profile"]["email"]
        .as_str()
        .ok_or_else(|| refused("your Slack profile shows no e-mail".into()))?;
    let user = state
        .store
        .find_user(email)
        .await
        .map_err(|e| refused(e.to_string()))?
        .filter(|u| u.email == email && u.status == "active")
        .ok_or_else(|| refused(format!("no active hoop user has the e-mail {email}")))?;
    let review = crate::reviews::decide(state, &Caller { user }, review_id, decision)
        .await
        .map_err(|e| refused(e.message().to_owned()))?;
    Ok(format!(
        "review {} is {}",
        review_json(&review)["id"].as_str().unwrap_or_default(),
        review.status
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of Slack's "Verifying requests from Slack" page.
    #[test]
    fn verifies_slacks_documented_example() {
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert!(verify(secret, "1531420618", signature, body, 1_531_420_618));
        assert!(!verify(
            secret,
            "1531420618",
            signature,
            body,
            1_531_420_618 + 301
        ));
        assert!(!verify(
            "other",
            "1531420618",
            signature,
            body,
            1_531_420_618
        ));
        assert!(!verify(secret, "1531420618", "v0=00", body, 1_531_420_618));
    }

    #[test]
    fn form_values_are_percent_decoded() {
        assert_eq!(
            form_value(b"a=1&payload=%7B%22x%22%3A+1%7D", "payload").as_deref(),
            Some("{\"x\": 1}")
        );
        assert_eq!(form_value(b"payload=%7", "payload"), None);
    }
}
