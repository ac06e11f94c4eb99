//! `/api/reviews`: access requests ([`crate::reviews`]) in hoop's shapes.
//! A person sees their own requests and those their groups review;
//! administrators see all.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::{get, put};
use serde_json::json;

use super::input::Fields;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::reviews::{Decision, NewReview, ReviewKind, TimeWindow, may_see, review_json};
use crate::store::ReviewFilter;

/// The most reviews one list returns.
const LIST_LIMIT: i64 = 1000;

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/reviews",
            "List reviews (access requests), newest first; filter with ?status=&connection=&requester=",
            Access::User,
            None,
            Some("Review"),
            200,
            get(list),
        ),
        route(
            Method::GET,
            "/api/reviews/{id}",
            "One review, with its transitions (events: who, when)",
            Access::User,
            None,
            Some("Review"),
            200,
            get(show),
        ),
        route(
            Method::PUT,
            "/api/reviews/{id}",
            "Approve, reject or revoke a review: {\"status\": \"APPROVED\"|\"REJECTED\"|\"REVOKED\"}; an administrator may force an approval with force_review",
            Access::User,
            Some("ReviewDecision"),
            Some("Review"),
            200,
            put(update),
        ),
    ]
}

/// On a connection with reviewers, records what `token`'s person asks
/// for as a pending review and returns the 202 answer; `None` when the
/// connection has no reviewers (an exec then opens as usual) or a check
/// fails for an exec (opening it records and answers the refusal).
///
/// # Errors
///
/// For connect access (`jit`): 401, 404 or 403 as opening a session would
/// refuse it, and 422 when the connection has no reviewers.
pub(super) async fn request(
    state: &AppState,
    token: &str,
    connection: &str,
    new: NewReview,
) -> Result<Option<Response>, ApiError> {
    let jit = new.kind == ReviewKind::Jit;
    let refused = |error: ApiError| if jit { Err(error) } else { Ok(None) };
    let token_hash = crate::crypto::hash_token(token);
    let Some(user) = state
        .store
        .user_for_token(&token_hash)
        .await?
        .filter(|user| user.status == "active" && !token.is_empty())
    else {
        return refused(ApiError::unauthorized());
    };
    let caller = Caller { user };
    let not_found = || ApiError::not_found(&format!("connection {connection}"));
    let Some(record) = state
        .store
        .find_connection(connection)
        .await?
        .filter(|c| c.name == connection)
    else {
        return refused(not_found());
    };
    let rules = super::access_rules(state, &caller).await?;
    if !super::visible(&rules, &caller, &record.id) {
        return refused(not_found());
    }
    let input = super::stored_input(state, &record)?;
    let mode = if jit {
        input.access.connect
    } else {
        input.access.exec
    };
    if !mode.is_enabled() {
        return refused(ApiError::forbidden_because(format!(
            "{} access is disabled on connection {connection}",
            if jit { "connect" } else { "exec" }
        )));
    }
    let groups = crate::reviews::reviewer_groups(state, &record.id, &input).await?;
    if groups.is_empty() {
        return if jit {
            Err(ApiError::invalid(
                "access_duration_sec",
                format!("connection {connection} has no reviewers: connect without asking"),
            ))
        } else {
            Ok(None)
        };
    }
    let review = crate::reviews::create(
        state,
        &caller.user,
        &token_hash,
        &record,
        &groups,
        input.min_review_approvals,
        new,
    )
    .await?;
    let mut body = review_json(&review);
    body["has_review"] = json!(true);
    body["review"] = review_json(&review);
    body["review_id"] = json!(review.id);
    body["message"] = json!(format!(
        "waiting for approval from {} (review {}): a reviewer runs hoop reviews approve {}",
        groups.join(", "),
        review.id,
        review.id
    ));
    Ok(Some(super::json_response(StatusCode::ACCEPTED, &body)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    super::check_query(&query, &["status", "connection", "requester"])?;
    let filter = ReviewFilter {
        status: query.get("status").map(|s| s.to_ascii_uppercase()),
        connection: query.get("connection").cloned(),
        requester: query.get("requester").cloned(),
    };
    let reviews = state.store.list_reviews(&filter, LIST_LIMIT).await?;
    super::ok(&serde_json::Value::Array(
        reviews
            .iter()
            .filter(|r| may_see(&caller, r))
            .map(review_json)
            .collect(),
    ))
}

async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    let review = state
        .store
        .find_review(&id)
        .await?
        .filter(|r| may_see(&caller, r))
        .ok_or_else(|| ApiError::not_found("review"))?;
    let events = state.store.review_events(&review.id).await?;
    let mut body = review_json(&review);
    body["events"] = events
        .iter()
        .map(|e| {
            json!({
                "status": e.status,
                "actor": e.actor,
                "forced": e.forced,
                "note": e.note,
                "at": e.at,
            })
        })
        .collect();
    super::ok(&body)
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    let mut fields = Fields::parse(&body)?;
    let status = fields.required_string("status")?;
    let force = fields.bool("force_review")?.unwrap_or(false);
    let time_window = fields
        .take("time_window")
        .map(|value| TimeWindow::parse(&value, "time_window"))
        .transpose()?;
    let reason = fields.string("rejection_reason")?;
    fields.finish()?;
    let decision = match status.as_str() {
        "APPROVED" => Decision::Approve { force, time_window },
        "REJECTED" => Decision::Reject { reason },
        "REVOKED" => Decision::Revoke,
        _ => {
            return Err(ApiError::invalid(
                "status",
                "must be APPROVED, REJECTED or REVOKED",
            ));
        }
    };
    let review = crate::reviews::decide(&state, &caller, &id, decision).await?;
    super::ok(&review_json(&review))
}
