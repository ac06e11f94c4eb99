//! Reviews (hoop's access requests): while a connection lists reviewer
//! groups, no session on it reaches the database without an approved
//! review covering it.
//!
//! ```text
//!  exec  (onetime): POST /api/sessions --> PENDING --approve--> APPROVED --> PROCESSING --> EXECUTED
//!  connect (jit):   POST /api/sessions {access_duration_sec} --> PENDING --approve--> APPROVED
//!                      until revoke_at (and inside time_window): connect sessions open
//!  PENDING --reject--> REJECTED    PENDING --review timeout--> EXPIRED
//!  APPROVED --revoke--> REVOKED    (open sessions of it are ended: crate::live)
//! ```
//!
//! [`crate::sessions::open`] refuses every session on such a connection
//! unless it runs an approved one-time review or the person holds approved
//! `jit` access; the listeners, the tunnel, the same-host hand-off and exec
//! all open sessions through it, so there is no path around the check.
//! Every transition is recorded with who made it and when
//! (`review_events`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::api::{ApiError, AppState, Caller, ConnectionInput};
use crate::store::{ConnectionRecord, ReviewGroup, ReviewRecord, StoreError, UserRecord, now_ms};

/// How long a review waits for its reviewers, by default, before it
/// expires (`--review-timeout`).
pub const DEFAULT_REVIEW_TIMEOUT: Duration = Duration::from_secs(3600);

/// The longest access a `jit` review may ask for: 30 days.
pub const MAX_ACCESS_DURATION_SEC: i64 = 30 * 24 * 3600;

/// How often the gateway expires pending reviews and runs approved
/// one-time reviews that were not started (after a restart).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Statuses in which a review is settled and changes no more.
pub const FINAL_STATUSES: &[&str] = &["EXECUTED", "REJECTED", "EXPIRED", "REVOKED"];

/// The kind of a review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewKind {
    /// One exec, run once when approved.
    OneTime,
    /// Connect access for a time.
    Jit,
}

impl ReviewKind {
    /// hoop's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneTime => "onetime",
            Self::Jit => "jit",
        }
    }
}

/// The hours of the day (UTC) approved access is limited to: hoop's
/// `{"type":"time_range","start_time":"09:00","end_time":"18:00"}`. A
/// range whose end is before its start spans midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindow {
    start_minute: u32,
    end_minute: u32,
}

impl TimeWindow {
    /// Reads a time window as the API takes it.
    ///
    /// # Errors
    ///
    /// 422 naming `field` when it is not a `time_range` with `HH:MM` times.
    pub fn parse(value: &Value, field: &str) -> Result<Self, ApiError> {
        let object = value
            .as_object()
            .ok_or_else(|| ApiError::invalid(field, "must be an object"))?;
        if let Some(unknown) = object
            .keys()
            .find(|k| !["type", "start_time", "end_time"].contains(&k.as_str()))
        {
            return Err(ApiError::invalid(
                format!("{field}.{unknown}"),
                "unknown field",
            ));
        }
        if object.get("type").and_then(Value::as_str) != Some("time_range") {
            return Err(ApiError::invalid(
                format!("{field}.type"),
                "must be time_range",
            ));
        }
        let minute = |name: &str| {
            let inner = format!("{field}.{name}");
            let text = object
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::invalid(&inner, "is required (HH:MM)"))?;
            let (hours, minutes) = text
                .split_once(':')
                .filter(|(h, m)| h.len() == 2 && m.len() == 2)
                .ok_or_else(|| ApiError::invalid(&inner, "must be HH:MM"))?;
            match (hours.parse::<u32>(), minutes.parse::<u32>()) {
                (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
                _ => Err(ApiError::invalid(&inner, "must be HH:MM")),
            }
        };
        Ok(Self {
            start_minute: minute("start_time")?,
            end_minute: minute("end_time")?,
        })
    }

    /// The window as the API shows it.
    pub fn to_json(self) -> Value {
        let text = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        json!({
            "type": "time_range",
            "start_time": text(self.start_minute),
            "end_time": text(self.end_minute),
        })
    }

    /// Whether `at` (ms since the epoch) falls inside the window.
    pub fn contains(self, at: i64) -> bool {
        let minute = u32::try_from(at.rem_euclid(86_400_000) / 60_000).unwrap_or(0);
        if self.start_minute <= self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute)
        } else {
            minute >= self.start_minute || minute < self.end_minute
        }
    }
}

fn stored_window(review: &ReviewRecord) -> Option<TimeWindow> {
    let value: Value = serde_json::from_str(review.time_window.as_deref()?).ok()?;
    TimeWindow::parse(&value, "time_window").ok()
}

/// The reviewer groups of a connection: its `reviewers` and the groups the
/// `review` plugin lists for it, both (an entry in either holds sessions:
/// whichever way an administrator set review up, it is enforced).
///
/// # Errors
///
/// When the store fails.
pub async fn reviewer_groups(
    state: &AppState,
    connection_id: &str,
    input: &ConnectionInput,
) -> Result<Vec<String>, StoreError> {
    let mut groups = input.reviewers.clone();
    if let Some(entry) = state.store.plugin_entry("review", connection_id).await? {
        // A stored entry is a list of group names; anything else holds
        // sessions rather than let them through.
        match serde_json::from_str::<Vec<String>>(&entry.config) {
            Ok(listed) => groups.extend(listed),
            Err(_) => groups.push(crate::api::ADMIN_GROUP.to_owned()),
        }
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// What a person asks for.
#[derive(Debug, Clone)]
pub struct NewReview {
    /// onetime or jit.
    pub kind: ReviewKind,
    /// The exec's script.
    pub script: Option<String>,
    /// The exec's output format.
    pub output: Option<String>,
    /// The connect access asked for, in seconds.
    pub access_duration_sec: Option<i64>,
    /// The hours of the day access is limited to.
    pub time_window: Option<TimeWindow>,
}

/// Records a new pending review by `user` (with the token whose hash is
/// `token_hash`) on `connection`, whose reviewer groups are `groups`.
///
/// # Errors
///
/// When the store fails.
pub async fn create(
    state: &AppState,
    user: &UserRecord,
    token_hash: &str,
    connection: &ConnectionRecord,
    groups: &[String],
    min_approvals: Option<i64>,
    new: NewReview,
) -> Result<ReviewRecord, ApiError> {
    let now = now_ms();
    let timeout = i64::try_from(state.review_timeout.as_millis()).unwrap_or(i64::MAX);
    let review = ReviewRecord {
        id: crate::crypto::new_id()?,
        kind: new.kind.as_str().into(),
        status: "PENDING".into(),
        connection_id: connection.id.clone(),
        connection_name: connection.name.clone(),
        user_id: user.id.clone(),
        user_email: user.email.clone(),
        token_hash: token_hash.to_owned(),
        input: new.script,
        output_format: new.output,
        access_duration_sec: new.access_duration_sec,
        time_window: new.time_window.map(|w| w.to_json().to_string()),
        review_groups: groups
            .iter()
            .map(|group| ReviewGroup {
                group: group.clone(),
                status: "PENDING".into(),
                reviewed_by: None,
                review_date: None,
                forced_review: false,
            })
            .collect(),
        min_approvals,
        session_id: None,
        output: None,
        exit_code: None,
        error: None,
        created_at: now,
        updated_at: now,
        expires_at: now.saturating_add(timeout),
        revoke_at: None,
        revision: 1,
    };
    state.store.insert_review(&review).await?;
    crate::webhooks::emit(
        state,
        &review.connection_id,
        "review.create",
        review_json(&review),
    )
    .await;
    crate::slack::review_created(state, &review);
    tracing::info!(review = %review.id, kind = %review.kind, connection = %review.connection_name, user = %review.user_email, "review requested");
    Ok(review)
}

/// Whether `caller` may see `review`: administrators, the requester, and
/// members of its reviewer groups.
pub fn may_see(caller: &Caller, review: &ReviewRecord) -> bool {
    caller.is_admin()
        || caller.user.id == review.user_id
        || review
            .review_groups
            .iter()
            .any(|g| caller.user.groups.contains(&g.group))
}

/// What a reviewer decides (`PUT /api/reviews/{id}`).
#[derive(Debug, Clone)]
pub enum Decision {
    /// Approve for the caller's groups; `force` lets an administrator
    /// approve for every group.
    Approve {
        /// An administrator approving in every group's place.
        force: bool,
        /// Limits approved access to hours of the day.
        time_window: Option<TimeWindow>,
    },
    /// Reject.
    Reject {
        /// Why, for the requester.
        reason: Option<String>,
    },
    /// Withdraw an approval.
    Revoke,
}

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::forbidden_because(message)
}

/// Applies `decision` by `caller` to review `id` and returns it changed.
///
/// # Errors
///
/// 404 when the caller may not see it, 403 when they may not decide it
/// (the requester, or not a reviewer), 409 when its status does not allow
/// the decision or it changed meanwhile.
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    id: &str,
    decision: Decision,
) -> Result<ReviewRecord, ApiError> {
    let mut review = state
        .store
        .find_review(id)
        .await?
        .filter(|r| may_see(caller, r))
        .ok_or_else(|| ApiError::not_found("review"))?;
    let mine: Vec<usize> = review
        .review_groups
        .iter()
        .enumerate()
        .filter(|(_, g)| caller.user.groups.contains(&g.group))
        .map(|(i, _)| i)
        .collect();
    let is_reviewer = !mine.is_empty() || caller.is_admin();
    if caller.user.id == review.user_id {
        return Err(forbidden(
            "the requester cannot approve, reject or revoke their own request",
        ));
    }
    if !is_reviewer {
        return Err(forbidden("only a member of a reviewer group may decide"));
    }
    let now = now_ms();
    let actor = caller.user.email.clone();
    let (forced, note) = match decision {
        Decision::Approve { force, time_window } => {
            expect_status(&review, "PENDING")?;
            if force && !caller.is_admin() {
                return Err(forbidden("only an administrator may force an approval"));
            }
            let groups: Vec<usize> = if force {
                (0..review.review_groups.len()).collect()
            } else if mine.is_empty() {
                return Err(forbidden(
                    "you are in none of this review's groups; an administrator may force the approval (force_review)",
                ));
            } else {
                mine
            };
            for index in &groups {
                if let Some(group) = review.review_groups.get_mut(*index) {
                    group.status = "APPROVED".into();
                    group.reviewed_by = Some(actor.clone());
                    group.review_date = Some(now);
                    group.forced_review = force && !caller.user.groups.contains(&group.group);
                }
            }
            if let Some(window) = time_window {
                review.time_window = Some(window.to_json().to_string());
            }
            let approved = review
                .review_groups
                .iter()
                .filter(|g| g.status == "APPROVED")
                .count();
            let needed = review
                .min_approvals
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(review.review_groups.len())
                .min(review.review_groups.len());
            if approved >= needed {
                review.status = "APPROVED".into();
                if review.kind == ReviewKind::Jit.as_str() {
                    let duration = review.access_duration_sec.unwrap_or(0);
                    review.revoke_at = Some(now.saturating_add(duration.saturating_mul(1000)));
                }
            }
            let names: Vec<&str> = groups
                .iter()
                .filter_map(|i| review.review_groups.get(*i))
                .map(|g| g.group.as_str())
                .collect();
            let note = if force {
                format!(
                    "approval forced by an administrator for {}",
                    names.join(", ")
                )
            } else {
                format!("approved for {}", names.join(", "))
            };
            (force, note)
        }
        Decision::Reject { reason } => {
            expect_status(&review, "PENDING")?;
            for index in &mine {
                if let Some(group) = review.review_groups.get_mut(*index) {
                    group.status = "REJECTED".into();
                    group.reviewed_by = Some(actor.clone());
                    group.review_date = Some(now);
                }
            }
            review.status = "REJECTED".into();
            review.error = reason.clone();
            (
                false,
                reason.map_or_else(|| "rejected".to_owned(), |r| format!("rejected: {r}")),
            )
        }
        Decision::Revoke => {
            expect_status(&review, "APPROVED")?;
            review.status = "REVOKED".into();
            review.revoke_at = Some(now);
            (false, "approval revoked".to_owned())
        }
    };
    review.updated_at = now;
    review.revision += 1;
    if !state
        .store
        .update_review(&review, &actor, forced, Some(note))
        .await?
    {
        return Err(ApiError::conflict(
            "the review changed meanwhile; read it again",
        ));
    }
    tracing::info!(review = %review.id, status = %review.status, by = %actor, forced, "review decided");
    updated(state, &review).await;
    if review.status == "REVOKED" {
        state.live.nudge();
    }
    if review.status == "APPROVED" && review.kind == ReviewKind::OneTime.as_str() {
        let state = state.clone();
        let id = review.id.clone();
        tokio::spawn(async move { execute(&state, &id).await });
    }
    Ok(review)
}

fn expect_status(review: &ReviewRecord, wanted: &str) -> Result<(), ApiError> {
    if review.status == wanted {
        Ok(())
    } else {
        Err(ApiError::conflict(format!(
            "review {} is {}; this needs it {wanted}",
            review.id, review.status
        )))
    }
}

/// Runs an approved one-time review, once: it moves to `PROCESSING` first
/// (only one gateway, one task, wins that change), then to `EXECUTED` with
/// the output.
pub async fn execute(state: &AppState, id: &str) {
    if let Err(error) = try_execute(state, id).await {
        tracing::error!(review = %id, %error, "could not run an approved review");
    }
}

async fn try_execute(state: &AppState, id: &str) -> Result<(), StoreError> {
    let Some(mut review) = state.store.find_review(id).await? else {
        return Ok(());
    };
    if review.status != "APPROVED" || review.kind != ReviewKind::OneTime.as_str() {
        return Ok(());
    }
    review.status = "PROCESSING".into();
    review.updated_at = now_ms();
    review.revision += 1;
    if !state
        .store
        .update_review(&review, "gateway", false, Some("execution started".into()))
        .await?
    {
        return Ok(());
    }
    updated(state, &review).await;
    let answer = crate::api::run_approved_exec(state, &review).await;
    review.status = "EXECUTED".into();
    review.session_id = answer["session_id"].as_str().map(str::to_owned);
    review.output = answer["output"].as_str().map(str::to_owned);
    review.exit_code = answer["exit_code"].as_i64().or(Some(1));
    review.error = answer["error"]
        .as_str()
        .or_else(|| answer["message"].as_str())
        .map(str::to_owned);
    review.updated_at = now_ms();
    review.revision += 1;
    let note = format!(
        "executed: exit code {}",
        review.exit_code.unwrap_or_default()
    );
    if state
        .store
        .update_review(&review, "gateway", false, Some(note))
        .await?
    {
        updated(state, &review).await;
    }
    Ok(())
}

/// Tells the review's webhooks (and Slack) that it changed.
async fn updated(state: &AppState, review: &ReviewRecord) {
    crate::webhooks::emit(
        state,
        &review.connection_id,
        "review.update",
        review_json(review),
    )
    .await;
    crate::slack::review_updated(state, review);
}

/// The approved `jit` review that lets `user_id` open connect sessions on
/// `connection_id` now, if any.
///
/// # Errors
///
/// When the store fails.
pub async fn active_access(
    state: &AppState,
    user_id: &str,
    connection_id: &str,
) -> Result<Option<ReviewRecord>, StoreError> {
    let now = now_ms();
    Ok(state
        .store
        .approved_access(user_id, connection_id, now)
        .await?
        .into_iter()
        .find(|review| access_ended(review, now).is_none()))
}

/// Why the access `review` granted no longer holds at `now`, if it does
/// not: what the session's client is told when it is ended.
pub fn access_ended(review: &ReviewRecord, now: i64) -> Option<String> {
    if review.status == "REVOKED" {
        return Some(format!(
            "review {} of connection {} was revoked",
            review.id, review.connection_name
        ));
    }
    if review.status != "APPROVED" {
        return Some(format!(
            "review {} of connection {} is {}",
            review.id, review.connection_name, review.status
        ));
    }
    if review.revoke_at.is_none_or(|end| end <= now) {
        return Some(format!(
            "the access window of review {} on connection {} ended",
            review.id, review.connection_name
        ));
    }
    if review.time_window.is_some() && !stored_window(review).is_some_and(|w| w.contains(now)) {
        return Some(format!(
            "review {} allows connection {} only within its time window",
            review.id, review.connection_name
        ));
    }
    None
}

/// Expires pending reviews past their timeout and runs approved one-time
/// reviews not started (a gateway that restarted), every
/// [`SWEEP_INTERVAL`], until the task is dropped.
pub(crate) async fn sweep(state: AppState) {
    let mut interval = tokio::time::interval(SWEEP_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        if let Err(error) = sweep_once(&state).await {
            tracing::warn!(%error, "could not sweep reviews; trying again later");
        }
    }
}

async fn sweep_once(state: &AppState) -> Result<(), StoreError> {
    let now = now_ms();
    for mut review in state.store.reviews_in("PENDING").await? {
        if review.expires_at > now {
            continue;
        }
        review.status = "EXPIRED".into();
        review.updated_at = now;
        review.revision += 1;
        if state
            .store
            .update_review(
                &review,
                "gateway",
                false,
                Some("no decision before the review timeout".into()),
            )
            .await?
        {
            tracing::info!(review = %review.id, "review expired");
            updated(state, &review).await;
        }
    }
    for review in state.store.reviews_in("APPROVED").await? {
        if review.kind == ReviewKind::OneTime.as_str() {
            execute(state, &review.id).await;
        }
    }
    Ok(())
}

/// A review as the API shows it, in hoop's field names (times in ms).
pub fn review_json(review: &ReviewRecord) -> Value {
    json!({
        "id": review.id,
        "session": review.session_id,
        "type": review.kind,
        "status": review.status,
        "connection": review.connection_name,
        "connection_id": review.connection_id,
        "requester": review.user_email,
        "requester_id": review.user_id,
        "input": review.input,
        "output": review.output,
        "exit_code": review.exit_code,
        "error": review.error,
        "access_duration_sec": review.access_duration_sec,
        "time_window": review.time_window.as_deref().and_then(|w| serde_json::from_str::<Value>(w).ok()),
        "min_approvals": review.min_approvals,
        "review_groups_data": review.review_groups.iter().map(|g| json!({
            "group": g.group,
            "status": g.status,
            "reviewed_by": g.reviewed_by,
            "review_date": g.review_date,
            "forced_review": g.forced_review,
        })).collect::<Vec<_>>(),
        "created_at": review.created_at,
        "updated_at": review.updated_at,
        "expires_at": review.expires_at,
        "revoke_at": review.revoke_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: &str, end: &str) -> TimeWindow {
        TimeWindow::parse(
            &json!({"type": "time_range", "start_time": start, "end_time": end}),
            "time_window",
        )
        .unwrap()
    }

    /// Milliseconds since the epoch at `hh:mm` UTC on 1 January 2026.
    fn at(hours: i64, minutes: i64) -> i64 {
        1_767_225_600_000 + (hours * 60 + minutes) * 60_000
    }

    #[test]
    fn a_time_window_holds_between_its_hours_utc() {
        let office = window("09:00", "18:00");
        assert!(!office.contains(at(8, 59)));
        assert!(office.contains(at(9, 0)));
        assert!(office.contains(at(17, 59)));
        assert!(!office.contains(at(18, 0)));
        // Across midnight.
        let night = window("22:00", "06:00");
        assert!(night.contains(at(23, 0)) && night.contains(at(5, 59)));
        assert!(!night.contains(at(12, 0)));
        assert_eq!(
            office.to_json(),
            json!({"type": "time_range", "start_time": "09:00", "end_time": "18:00"})
        );
    }

    #[test]
    fn a_malformed_time_window_is_refused_naming_its_field() {
        for (value, field) in [
            (
                json!({"type": "days", "start_time": "09:00", "end_time": "18:00"}),
                "time_window.type",
            ),
            (
                json!({"type": "time_range", "start_time": "9:00", "end_time": "18:00"}),
                "time_window.start_time",
            ),
            (
                json!({"type": "time_range", "start_time": "09:00", "end_time": "24:00"}),
                "time_window.end_time",
            ),
            (
                json!({"type": "time_range", "start_time": "09:00"}),
                "time_window.end_time",
            ),
            (
                json!({"type": "time_range", "start_time": "09:00", "end_time": "18:00", "tz": "x"}),
                "time_window.tz",
            ),
            (json!("09:00-18:00"), "time_window"),
        ] {
            let error = TimeWindow::parse(&value, "time_window").unwrap_err();
            assert_eq!(error.field(), Some(field), "{value}");
        }
    }

    #[test]
    fn access_outside_its_window_or_hours_has_ended() {
        let review = ReviewRecord {
            id: "r".into(),
            kind: "jit".into(),
            status: "APPROVED".into(),
            connection_id: "c".into(),
            connection_name: "pg".into(),
            user_id: "u".into(),
            user_email: "ana@example.com".into(),
            token_hash: "h".into(),
            input: None,
            output_format: None,
            access_duration_sec: Some(3600),
            time_window: Some(window("09:00", "18:00").to_json().to_string()),
            review_groups: Vec::new(),
            min_approvals: None,
            session_id: None,
            output: None,
            exit_code: None,
            error: None,
            created_at: 0,
            updated_at: 0,
            expires_at: 0,
            revoke_at: Some(at(12, 0)),
            revision: 1,
        };
        assert_eq!(access_ended(&review, at(10, 0)), None);
        assert!(
            access_ended(&review, at(8, 0))
                .unwrap()
                .contains("time window")
        );
        assert!(access_ended(&review, at(12, 0)).unwrap().contains("ended"));
        let revoked = ReviewRecord {
            status: "REVOKED".into(),
            ..review
        };
        assert!(
            access_ended(&revoked, at(10, 0))
                .unwrap()
                .contains("revoked")
        );
    }
}
