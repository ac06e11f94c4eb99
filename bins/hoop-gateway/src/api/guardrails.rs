//! `/api/guardrails`: named rule sets a connection references by id in its
//! `guardrail_rules`, in hoop's shape (`{"name", "description", "input":
//! {"rules": [..]}, "output": {"rules": [..]}}`). Each rule is compiled
//! with `hoop-masking` before it is stored, so a rule set that is stored
//! is one the agent can apply; sessions read it when they open, so a
//! change applies to new sessions at once.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{delete, get, post, put};
use hoop_proxy::policy::PolicyPipeline;
use serde_json::{Value, json};

use super::input::Fields;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::store::{GuardrailRecord, StoreError};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/guardrails",
            "Create a guardrail rule set",
            Access::Admin,
            Some("GuardrailRequest"),
            Some("Guardrail"),
            201,
            post(create),
        ),
        route(
            Method::GET,
            "/api/guardrails",
            "List guardrail rule sets",
            Access::User,
            None,
            Some("Guardrail"),
            200,
            get(list),
        ),
        route(
            Method::GET,
            "/api/guardrails/{id}",
            "One guardrail rule set",
            Access::User,
            None,
            Some("Guardrail"),
            200,
            get(show),
        ),
        route(
            Method::PUT,
            "/api/guardrails/{id}",
            "Replace a guardrail rule set; new sessions follow it",
            Access::Admin,
            Some("GuardrailRequest"),
            Some("Guardrail"),
            200,
            put(replace),
        ),
        route(
            Method::DELETE,
            "/api/guardrails/{id}",
            "Remove a guardrail rule set no connection references",
            Access::Admin,
            None,
            None,
            204,
            delete(remove),
        ),
    ]
}

fn rules_json(stored: &str) -> Value {
    serde_json::from_str(stored).unwrap_or_else(|_| json!([]))
}

fn guardrail_json(guardrail: &GuardrailRecord) -> Value {
    json!({
        "id": guardrail.id,
        "name": guardrail.name,
        "description": guardrail.description,
        "input": {"rules": rules_json(&guardrail.input)},
        "output": {"rules": rules_json(&guardrail.output)},
        // The store keeps seconds; the API's times are all milliseconds
        // since the Unix epoch (see `super`).
        "created_at": guardrail.created_at.saturating_mul(1000),
        "updated_at": guardrail.updated_at.saturating_mul(1000),
    })
}

/// Reads `{"rules": [..]}` under `field`, compiling each rule alone so an
/// error names it.
fn rules(fields: &mut Fields, field: &str) -> Result<String, ApiError> {
    let Some(value) = fields.take(field) else {
        return Ok("[]".into());
    };
    let mut nested = Fields::nested(value, field)?;
    let rules = nested.array("rules")?.unwrap_or_default();
    nested.finish()?;
    for (index, rule) in rules.iter().enumerate() {
        check_rule(rule, field, &format!("{field}.rules[{index}]"))?;
    }
    Ok(Value::Array(rules).to_string())
}

/// Compiles one rule with `hoop-masking`, as a session's policy would, so
/// that what is stored is what sessions can apply. `direction` is `input`
/// or `output`; `field` is how the request names the rule
/// (`input.rules[0]`, `guardrail_rules[2]`), and an error names the
/// rule's own field under it when `hoop-masking` says which
/// (`guardrail_rules[2].pattern_regex`).
pub(super) fn check_rule(rule: &Value, direction: &str, field: &str) -> Result<(), ApiError> {
    if !rule.is_object() {
        return Err(ApiError::invalid(field, "must be an object"));
    }
    let policy = json!({
        "masking": {"entities": []},
        "guardrails": {direction: [rule]},
    });
    let Err(error) = PolicyPipeline::from_json(&policy.to_string()) else {
        return Ok(());
    };
    let inner = error
        .path()
        .strip_prefix(&format!("guardrails.{direction}[0]"))
        .unwrap_or("");
    // The position is in the document built here, not in the request.
    let reason = error.kind().to_string();
    let reason = match reason.rsplit_once(" at line ") {
        Some((reason, _)) => reason.to_owned(),
        None => reason,
    };
    Err(ApiError::invalid(format!("{field}{inner}"), reason))
}

/// A request body as a record (with `id` and times to be filled in).
fn parse(body: &[u8]) -> Result<GuardrailRecord, ApiError> {
    let mut fields = Fields::parse(body)?;
    let name = fields.required_string("name")?;
    super::names::label("name", &name)?;
    let description = fields.string("description")?.unwrap_or_default();
    super::names::text("description", &description)?;
    let input = rules(&mut fields, "input")?;
    let output = rules(&mut fields, "output")?;
    fields.finish()?;
    Ok(GuardrailRecord {
        id: String::new(),
        name,
        description,
        input,
        output,
        created_at: 0,
        updated_at: 0,
    })
}

fn conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict => ApiError::conflict("a guardrail rule set with this name exists"),
        other => other.into(),
    }
}

async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    let mut record = parse(&body)?;
    record.id = crate::crypto::new_id()?;
    record.created_at = crate::store::now();
    record.updated_at = record.created_at;
    state
        .store
        .insert_guardrail(&record)
        .await
        .map_err(conflict)?;
    super::created(&guardrail_json(&record))
}

async fn list(State(state): State<AppState>, _caller: Caller) -> ApiResult {
    let guardrails = state.store.list_guardrails().await?;
    super::ok(&Value::Array(
        guardrails.iter().map(guardrail_json).collect(),
    ))
}

async fn find(state: &AppState, id: &str) -> Result<GuardrailRecord, ApiError> {
    state
        .store
        .find_guardrail(id)
        .await?
        .ok_or_else(|| ApiError::not_found("guardrail rule set"))
}

async fn show(State(state): State<AppState>, _caller: Caller, Path(id): Path<String>) -> ApiResult {
    super::ok(&guardrail_json(&find(&state, &id).await?))
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let mut record = parse(&body)?;
    let existing = find(&state, &id).await?;
    record.id = existing.id;
    record.created_at = existing.created_at;
    record.updated_at = crate::store::now();
    if !state
        .store
        .update_guardrail(&record)
        .await
        .map_err(conflict)?
    {
        return Err(ApiError::not_found("guardrail rule set"));
    }
    super::ok(&guardrail_json(&record))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let existing = find(&state, &id).await?;
    for connection in state.store.list_connections().await? {
        let input = super::stored_input(&state, &connection)?;
        if input
            .guardrail_rules
            .iter()
            .any(|rule| rule.as_str() == Some(existing.id.as_str()))
        {
            return Err(ApiError::conflict(format!(
                "connection {} references this guardrail rule set",
                connection.name
            )));
        }
    }
    state.store.delete_guardrail(&existing.id).await?;
    super::no_content()
}
