//! `/api/agents`: register agents and hand out their keys.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{delete, get, post};
use hoop_proxy::link::AgentKey;
use serde_json::{Value, json};

use super::input::Fields;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::crypto;
use crate::store::AgentRecord;

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/agents",
            "Register an agent; the response carries its key, shown once",
            Access::Admin,
            Some("AgentRequest"),
            Some("Agent"),
            201,
            post(create),
        ),
        route(
            Method::GET,
            "/api/agents",
            "List agents with their link status and reported metadata",
            Access::User,
            None,
            Some("Agent"),
            200,
            get(list),
        ),
        route(
            Method::GET,
            "/api/agents/{name_or_id}",
            "One agent",
            Access::User,
            None,
            Some("Agent"),
            200,
            get(show),
        ),
        route(
            Method::DELETE,
            "/api/agents/{name_or_id}",
            "Remove an agent no connection uses; its link is closed",
            Access::Admin,
            None,
            None,
            204,
            delete(remove),
        ),
    ]
}

/// The agent as the API shows it (never its key).
pub(crate) fn agent_json(state: &AppState, agent: &AgentRecord) -> Value {
    let metadata: Value = serde_json::from_str(&agent.metadata).unwrap_or_else(|_| json!({}));
    let field = |name: &str| metadata.get(name).cloned().unwrap_or(Value::Null);
    json!({
        "id": agent.id,
        "name": agent.name,
        "mode": agent.mode,
        "status": if state.links.is_linked(&agent.id) { "CONNECTED" } else { "DISCONNECTED" },
        "hostname": field("hostname"),
        "version": field("version"),
        "platform": field("platform"),
    })
}

/// Registers an agent and returns its key (the secret is not stored).
pub(crate) async fn register(
    state: &AppState,
    name: &str,
    mode: &str,
) -> Result<(AgentRecord, AgentKey), ApiError> {
    super::names::identifier("name", name)?;
    let secret = crypto::new_token()?;
    let record = AgentRecord {
        id: crypto::new_id()?,
        name: name.to_owned(),
        mode: mode.to_owned(),
        key_hash: crypto::hash_token(&secret),
        metadata: "{}".into(),
        created_at: crate::store::now(),
    };
    state
        .store
        .insert_agent(&record)
        .await
        .map_err(|e| match e {
            crate::store::StoreError::Conflict => {
                ApiError::conflict("an agent with this name exists")
            }
            other => other.into(),
        })?;
    let key = AgentKey {
        name: record.name.clone(),
        secret,
        address: state.agent_address.to_string(),
        tls: state.agent_tls,
        mode: record.mode.clone(),
    };
    Ok((record, key))
}

async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    let mut fields = Fields::parse(&body)?;
    let name = fields.required_string("name")?;
    let mode = fields.string("mode")?.unwrap_or_else(|| "standard".into());
    fields.finish()?;
    if mode != "standard" && mode != "embedded" {
        return Err(ApiError::invalid("mode", "must be standard or embedded"));
    }
    let (record, key) = register(&state, &name, &mode).await?;
    let mut body = agent_json(&state, &record);
    body["token"] = Value::String(key.to_string());
    super::created(&body)
}

async fn list(State(state): State<AppState>, _caller: Caller) -> ApiResult {
    let agents = state.store.list_agents().await?;
    let body: Vec<Value> = agents.iter().map(|a| agent_json(&state, a)).collect();
    super::ok(&Value::Array(body))
}

async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    let agent = state
        .store
        .find_agent(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    super::ok(&agent_json(&state, &agent))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let agent = state
        .store
        .find_agent(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("agent"))?;
    if state.store.agent_references(&agent.id).await? > 0 {
        return Err(ApiError::conflict(
            "connections or resources still use this agent",
        ));
    }
    state.store.delete_agent(&agent.id).await?;
    state.links.kick(&agent.id);
    super::no_content()
}
