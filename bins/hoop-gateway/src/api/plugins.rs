//! `/api/plugins`: features attached per connection.
//!
//! The set of plugins is fixed by this build. Creating a connection enables
//! `audit` (always, and it cannot be turned off), `dlp` when
//! `redact_enabled` (configured with `redact_types`), `review` when it has
//! `reviewers` (configured with them) and `runbooks` when
//! `access_mode_runbooks` is enabled. `access_control`, `webhooks` and
//! `slack` start off: enabling `access_control` by default would hide every
//! new connection from everyone but administrators. Updating a connection
//! re-derives `dlp`, `review` and `runbooks` when the fields behind them
//! change.
//!
//! `dlp` is what masks a session: its per-connection lists and its own
//! configuration are checked when written and read when a session opens,
//! and replacing its list rewrites the `redact_enabled` and `redact_types`
//! of the connections it changes (see [`super::dlp`]).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::connections::ConnectionInput;
use super::dlp;
use super::input::Fields;
use super::names;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::store::{PluginChange, PluginConfigRecord};

/// Every plugin this gateway knows.
pub const PLUGINS: [&str; 7] = [
    "audit",
    "dlp",
    "review",
    "access_control",
    "runbooks",
    "webhooks",
    "slack",
];

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/plugins",
            "List plugins with their connections",
            Access::User,
            None,
            Some("Plugin"),
            200,
            get(list),
        ),
        route(
            Method::GET,
            "/api/plugins/{name}",
            "One plugin",
            Access::User,
            None,
            Some("Plugin"),
            200,
            get(show),
        ),
        route(
            Method::GET,
            "/api/plugins/webhooks/deliveries",
            "The webhooks outbox, newest first: each event, its endpoint, status and every attempt's outcome",
            Access::Admin,
            None,
            None,
            200,
            get(deliveries),
        ),
        route(
            Method::POST,
            "/api/plugins/slack/interactions",
            "Slack's interactions (Approve and Reject buttons): verified by Slack's v0 signature within 5 minutes, else 401",
            Access::Public,
            None,
            None,
            200,
            post(slack_interaction),
        ),
        route(
            Method::PUT,
            "/api/plugins/{name}",
            "Replace a plugin's configuration and its set of connections",
            Access::Admin,
            Some("PluginRequest"),
            Some("Plugin"),
            200,
            put(replace),
        ),
    ]
}

/// The plugins a new connection starts with.
pub(crate) fn default_plugins(
    input: &ConnectionInput,
    connection_id: &str,
) -> Vec<PluginConfigRecord> {
    let entry = |plugin: &str, config: Value| PluginConfigRecord {
        plugin: plugin.to_owned(),
        connection_id: connection_id.to_owned(),
        config: config.to_string(),
    };
    let mut plugins = vec![entry("audit", json!([]))];
    if input.redact_enabled {
        plugins.push(entry("dlp", json!(input.redact_types)));
    }
    if !input.reviewers.is_empty() {
        plugins.push(entry("review", json!(input.reviewers)));
    }
    if input.access.runbooks.is_enabled() {
        plugins.push(entry("runbooks", json!([])));
    }
    plugins
}

/// The plugin changes an update implies: `dlp`, `review` and `runbooks`
/// follow the fields that enable them on create, when those fields change
/// (a plugin configured through `/api/plugins` stays as set otherwise).
pub(crate) fn plugin_changes(
    before: &ConnectionInput,
    after: &ConnectionInput,
) -> Vec<PluginChange> {
    let mut changes = Vec::new();
    let change = |plugin: &str, config: Option<Value>| PluginChange {
        plugin: plugin.to_owned(),
        config: config.map(|c| c.to_string()),
    };
    if before.redact_enabled != after.redact_enabled || before.redact_types != after.redact_types {
        changes.push(change(
            "dlp",
            after.redact_enabled.then(|| json!(after.redact_types)),
        ));
    }
    if before.reviewers != after.reviewers {
        changes.push(change(
            "review",
            (!after.reviewers.is_empty()).then(|| json!(after.reviewers)),
        ));
    }
    if before.access.runbooks != after.access.runbooks {
        changes.push(change(
            "runbooks",
            after.access.runbooks.is_enabled().then(|| json!([])),
        ));
    }
    changes
}

/// The plugin as `caller` may see it: its entries for the connections
/// they may see, as `/api/connections` lists them. An entry names its
/// connection and, for `access_control` and `review`, groups: a hidden
/// connection's entries would reveal both.
async fn plugin_json(state: &AppState, caller: &Caller, name: &str) -> Result<Value, ApiError> {
    let rules = super::access_rules(state, caller).await?;
    let names: HashMap<String, String> = state
        .store
        .list_connections()
        .await?
        .into_iter()
        .map(|c| (c.id, c.name))
        .collect();
    let connections: Vec<Value> = state
        .store
        .list_plugin_connections()
        .await?
        .into_iter()
        .filter(|p| p.plugin == name && super::visible(&rules, caller, &p.connection_id))
        .map(|p| {
            json!({
                "id": p.connection_id,
                "name": names.get(&p.connection_id),
                "config": serde_json::from_str::<Value>(&p.config).unwrap_or(Value::Null),
            })
        })
        .collect();
    let config = match state.store.plugin_config(name).await? {
        Some(config) => serde_json::from_str(&config).unwrap_or(Value::Null),
        None => Value::Null,
    };
    // Every user may read a plugin: its secrets stay in the store.
    let config = match name {
        crate::webhooks::PLUGIN => crate::webhooks::redacted(&config),
        crate::slack::PLUGIN => crate::slack::redacted(&config),
        _ => config,
    };
    Ok(json!({
        "id": name,
        "name": name,
        "config": config,
        "connections": connections,
    }))
}

fn known(name: &str) -> Result<(), ApiError> {
    if PLUGINS.contains(&name) {
        Ok(())
    } else {
        Err(ApiError::not_found("plugin"))
    }
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult {
    let mut all = Vec::new();
    for name in PLUGINS {
        all.push(plugin_json(&state, &caller, name).await?);
    }
    super::ok(&Value::Array(all))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    known(&name)?;
    super::ok(&plugin_json(&state, &caller, &name).await?)
}

async fn slack_interaction(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> ApiResult {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    match crate::slack::interaction(
        &state,
        &header("x-slack-request-timestamp"),
        &header("x-slack-signature"),
        &body,
    )
    .await
    {
        Ok(text) => super::ok(&json!({"text": text})),
        Err(crate::slack::InteractionError::Unauthorized) => Err(ApiError::unauthorized()),
        // Slack shows the answer to the clicker; 200 so it does.
        Err(crate::slack::InteractionError::Refused(text)) => super::ok(&json!({"text": text})),
    }
}

/// The most deliveries one list returns.
const DELIVERIES_LIMIT: i64 = 1000;

async fn deliveries(State(state): State<AppState>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let listed = state.store.list_deliveries(DELIVERIES_LIMIT).await?;
    super::ok(&Value::Array(
        listed
            .iter()
            .map(|(delivery, attempts)| {
                json!({
                    "id": delivery.id,
                    "endpoint_url": delivery.endpoint_url,
                    "event_type": delivery.event_type,
                    "payload": serde_json::from_str::<Value>(&delivery.payload).unwrap_or(Value::Null),
                    "status": delivery.status,
                    "attempts": attempts.iter().map(|a| json!({
                        "attempt": a.attempt,
                        "at": a.at,
                        "status_code": a.status_code,
                        "error": a.error,
                    })).collect::<Vec<_>>(),
                    "next_attempt_at": delivery.next_attempt_at,
                    "created_at": delivery.created_at,
                    "updated_at": delivery.updated_at,
                })
            })
            .collect(),
    ))
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    known(&name)?;
    let mut fields = Fields::parse(&body)?;
    if let Some(body_name) = fields.string("name")?
        && body_name != name
    {
        return Err(ApiError::invalid("name", "does not match the path"));
    }
    fields.take("id");
    let config = fields.object("config")?;
    let entries = fields.array("connections")?.unwrap_or_default();
    fields.finish()?;
    let dlp_config = (name == dlp::PLUGIN).then(|| config.clone().unwrap_or_default());
    if let Some(dlp_config) = &dlp_config {
        dlp::check_config(dlp_config)?;
    }
    if name == crate::webhooks::PLUGIN {
        crate::webhooks::check_config(&config.clone().unwrap_or_default())?;
    }
    if name == crate::slack::PLUGIN {
        crate::slack::check_config(&config.clone().unwrap_or_default())?;
    }
    let config = config.map_or(Value::Null, Value::Object);
    let all = state.store.list_connections().await?;
    let mut records: Vec<PluginConfigRecord> = Vec::with_capacity(entries.len());
    let mut dlp_entries = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        let prefix = format!("connections[{index}]");
        let mut entry = Fields::nested(entry, &prefix)?;
        entry.take("name");
        let id = entry.required_string("id")?;
        let config = entry.strings("config")?.unwrap_or_default();
        entry.finish()?;
        let field = format!("{prefix}.config");
        match (&dlp_config, name.as_str()) {
            (Some(dlp_config), _) => dlp::check_types(&config, dlp_config, &field)?,
            // Group names, as the users' and the connections' reviewers.
            (None, "access_control" | "review") => names::identifiers(&field, &config)?,
            (None, _) => names::labels(&field, &config)?,
        }
        let connection = all
            .iter()
            .find(|c| c.id == id || c.name == id)
            .ok_or_else(|| ApiError::invalid(format!("{prefix}.id"), "no such connection"))?;
        if records.iter().any(|r| r.connection_id == connection.id) {
            return Err(ApiError::invalid(format!("{prefix}.id"), "listed twice"));
        }
        records.push(PluginConfigRecord {
            plugin: name.clone(),
            connection_id: connection.id.clone(),
            config: json!(config).to_string(),
        });
        if dlp_config.is_some() {
            dlp_entries.push((connection.id.clone(), config));
        }
    }
    if name == "audit" && records.len() != all.len() {
        return Err(ApiError::invalid(
            "connections",
            "audit cannot be disabled: list every connection",
        ));
    }
    let attributes = if dlp_config.is_some() {
        dlp::synced_attributes(&all, &dlp_entries)?
    } else {
        Vec::new()
    };
    state
        .store
        .replace_plugin_and_attributes(&name, &config.to_string(), &records, &attributes)
        .await?;
    super::ok(&plugin_json(&state, &caller, &name).await?)
}
