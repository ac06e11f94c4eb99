//! `/api/resources`: a resource names a service and the agent that reaches
//! it; its connections (roles) without an `agent_id` inherit that agent.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{delete, get, post};
use hoop_proxy::{ConnectionType, Subtype};
use serde_json::{Value, json};

use super::input::Fields;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::store::{ResourceRecord, StoreError};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/resources",
            "Create a resource served by an agent",
            Access::Admin,
            Some("ResourceRequest"),
            Some("Resource"),
            201,
            post(create),
        ),
        route(
            Method::GET,
            "/api/resources",
            "List resources",
            Access::User,
            None,
            Some("Resource"),
            200,
            get(list),
        ),
        route(
            Method::GET,
            "/api/resources/{name_or_id}",
            "One resource",
            Access::User,
            None,
            Some("Resource"),
            200,
            get(show),
        ),
        route(
            Method::DELETE,
            "/api/resources/{name_or_id}",
            "Remove a resource no connection belongs to",
            Access::Admin,
            None,
            None,
            204,
            delete(remove),
        ),
    ]
}

fn resource_json(resource: &ResourceRecord) -> Value {
    json!({
        "id": resource.id,
        "name": resource.name,
        "type": resource.kind,
        "subtype": resource.subtype,
        "agent_id": resource.agent_id,
    })
}

async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    let mut fields = Fields::parse(&body)?;
    let name = fields.required_string("name")?;
    let kind = fields.required_string("type")?;
    let subtype = fields.string("subtype")?;
    let agent = fields.string("agent_id")?;
    fields.finish()?;
    super::names::identifier("name", &name)?;
    let parsed_kind: ConnectionType = kind
        .parse()
        .map_err(|_| ApiError::invalid("type", "must be database, application or custom"))?;
    if let Some(subtype) = &subtype {
        let parsed: Subtype = subtype
            .parse()
            .map_err(|_| ApiError::invalid("subtype", "unknown subtype"))?;
        if parsed.connection_type() != parsed_kind {
            return Err(ApiError::invalid("subtype", "does not fit the type"));
        }
    }
    let agent_id = match agent {
        Some(agent) => Some(
            state
                .store
                .find_agent(&agent)
                .await?
                .ok_or_else(|| ApiError::invalid("agent_id", "no such agent"))?
                .id,
        ),
        None => None,
    };
    let record = ResourceRecord {
        id: crate::crypto::new_id()?,
        name,
        kind,
        subtype,
        agent_id,
        created_at: crate::store::now(),
    };
    state
        .store
        .insert_resource(&record)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::conflict("a resource with this name exists"),
            other => other.into(),
        })?;
    state.links.targets_changed();
    super::created(&resource_json(&record))
}

async fn list(State(state): State<AppState>, _caller: Caller) -> ApiResult {
    let resources = state.store.list_resources().await?;
    super::ok(&Value::Array(resources.iter().map(resource_json).collect()))
}

async fn show(
    State(state): State<AppState>,
    _caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    let resource = state
        .store
        .find_resource(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("resource"))?;
    super::ok(&resource_json(&resource))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let resource = state
        .store
        .find_resource(&name)
        .await?
        .ok_or_else(|| ApiError::not_found("resource"))?;
    state
        .store
        .delete_resource(&resource.id)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => ApiError::conflict("connections still belong to this resource"),
            other => other.into(),
        })?;
    super::no_content()
}
