//! `/api/connections`: the connections (resource roles) people use.
//!
//! Credentials arrive as `{"secret": {"envvar:HOST": "<base64>", ...}}`, are
//! validated through `hoop_proxy::Connection`, sealed with the connection's
//! id as context, and never returned: a response lists the secret's keys,
//! each with an empty value. On `PUT` and `PATCH` an absent `secret` keeps
//! the stored one, and a key sent with an empty value keeps its stored
//! value, so a client can send back what it read.
//!
//! A connection created or given a new target is checked by its agent at
//! once, and the response waits (briefly) for that check: the status it
//! shows is the one the next list shows.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::routing::{delete, get, patch, post, put};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hoop_proxy::{
    AccessMode, AccessModes, ConfigError, Connection, ConnectionType, Credentials, Subtype,
};
use serde_json::{Map, Value, json};

use super::input::Fields;
use super::names;
use super::{Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::store::{ConnectionRecord, ResourceRecord, StoreError};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::POST,
            "/api/connections",
            "Create a connection; enables the default plugins",
            Access::Admin,
            Some("ConnectionRequest"),
            Some("Connection"),
            201,
            post(create),
        ),
        route(
            Method::GET,
            "/api/connections",
            "List connections; filter with ?type=&subtype=&agent_id=&status=&resource_name=",
            Access::User,
            None,
            Some("Connection"),
            200,
            get(list),
        ),
        route(
            Method::GET,
            "/api/connections/{name_or_id}",
            "One connection",
            Access::User,
            None,
            Some("Connection"),
            200,
            get(show),
        ),
        route(
            Method::PUT,
            "/api/connections/{name_or_id}",
            "Replace a connection",
            Access::Admin,
            Some("ConnectionRequest"),
            Some("Connection"),
            200,
            put(replace),
        ),
        route(
            Method::PATCH,
            "/api/connections/{name_or_id}",
            "Change some fields of a connection",
            Access::Admin,
            Some("ConnectionRequest"),
            Some("Connection"),
            200,
            patch(update),
        ),
        route(
            Method::DELETE,
            "/api/connections/{name_or_id}",
            "Remove a connection and its plugin configuration",
            Access::Admin,
            None,
            None,
            204,
            delete(remove),
        ),
    ]
}

/// A connection as submitted, after parsing and base64 decoding.
#[derive(Clone, PartialEq)]
pub struct ConnectionInput {
    /// Unique name.
    pub name: String,
    /// `database`, `application` or `custom`.
    pub kind: ConnectionType,
    /// The protocol, none for `custom`.
    pub subtype: Option<Subtype>,
    /// The agent, by id or name; none inherits the resource's.
    pub agent: Option<String>,
    /// The resource it belongs to.
    pub resource_name: Option<String>,
    /// The command for `custom` connections and exec.
    pub command: Vec<String>,
    /// Decoded credential values keyed as in the API (`envvar:HOST`).
    pub secret: BTreeMap<String, String>,
    /// Access modes.
    pub access: AccessModes,
    /// Whether output masking is on.
    pub redact_enabled: bool,
    /// The entity types masked.
    pub redact_types: Vec<String>,
    /// Guardrail rules, in hoop's rule format.
    pub guardrail_rules: Vec<Value>,
    /// Groups whose approval a review needs.
    pub reviewers: Vec<String>,
    /// How many reviewer groups must approve, when fewer than all
    /// (hoop's `min_review_approvals`).
    pub min_review_approvals: Option<i64>,
    /// Free-form tags.
    pub tags: Vec<String>,
}

impl std::fmt::Debug for ConnectionInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionInput")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("subtype", &self.subtype)
            .field("secret_keys", &self.secret.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ConnectionInput {
    /// A connection with the product's defaults: every access mode enabled,
    /// no masking, no credentials.
    pub fn new(name: impl Into<String>, kind: ConnectionType, subtype: Option<Subtype>) -> Self {
        Self {
            name: name.into(),
            kind,
            subtype,
            agent: None,
            resource_name: None,
            command: Vec::new(),
            secret: BTreeMap::new(),
            access: AccessModes::default(),
            redact_enabled: false,
            redact_types: Vec::new(),
            guardrail_rules: Vec::new(),
            reviewers: Vec::new(),
            min_review_approvals: None,
            tags: Vec::new(),
        }
    }

    fn attributes(&self) -> Value {
        json!({
            "command": self.command,
            "access_mode_exec": self.access.exec.as_str(),
            "access_mode_connect": self.access.connect.as_str(),
            "access_mode_runbooks": self.access.runbooks.as_str(),
            "redact_enabled": self.redact_enabled,
            "redact_types": self.redact_types,
            "guardrail_rules": self.guardrail_rules,
            "reviewers": self.reviewers,
            "min_review_approvals": self.min_review_approvals,
            "tags": self.tags,
        })
    }

    fn credentials(&self) -> Credentials {
        let mut credentials = Credentials::new();
        for (key, value) in &self.secret {
            if let Some(name) = key.strip_prefix("envvar:") {
                credentials.set(name, value.clone());
            }
        }
        credentials
    }
}

/// How a body relates to what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Replace,
    Patch,
}

fn strings_attr(attributes: &Value, name: &str) -> Vec<String> {
    attributes
        .get(name)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn mode_attr(attributes: &Value, name: &str) -> AccessMode {
    attributes
        .get(name)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or_default()
}

/// Rebuilds the input form of a stored connection (secret opened).
pub(crate) fn stored_input(
    state: &AppState,
    record: &ConnectionRecord,
) -> Result<ConnectionInput, ApiError> {
    let attributes: Value = serde_json::from_str(&record.attributes)
        .map_err(|_| ApiError::internal("stored connection attributes are not JSON"))?;
    let kind = record
        .kind
        .parse()
        .map_err(|_| ApiError::internal("stored connection type is unknown"))?;
    let subtype = match &record.subtype {
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::internal("stored subtype is unknown"))?,
        ),
        None => None,
    };
    Ok(ConnectionInput {
        name: record.name.clone(),
        kind,
        subtype,
        agent: record.agent_id.clone(),
        resource_name: record.resource_name.clone(),
        command: strings_attr(&attributes, "command"),
        secret: open_secret(state, record)?,
        access: AccessModes {
            exec: mode_attr(&attributes, "access_mode_exec"),
            connect: mode_attr(&attributes, "access_mode_connect"),
            runbooks: mode_attr(&attributes, "access_mode_runbooks"),
        },
        redact_enabled: attributes
            .get("redact_enabled")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        redact_types: strings_attr(&attributes, "redact_types"),
        guardrail_rules: attributes
            .get("guardrail_rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        reviewers: strings_attr(&attributes, "reviewers"),
        min_review_approvals: attributes
            .get("min_review_approvals")
            .and_then(Value::as_i64),
        tags: strings_attr(&attributes, "tags"),
    })
}

fn open_secret(
    state: &AppState,
    record: &ConnectionRecord,
) -> Result<BTreeMap<String, String>, ApiError> {
    let plain = state.secrets.open(&record.id, &record.secret)?;
    serde_json::from_slice(&plain).map_err(|_| ApiError::internal("stored secret is not a map"))
}

fn valid_secret_key(key: &str) -> bool {
    let Some((kind, name)) = key.split_once(':') else {
        return false;
    };
    (kind == "envvar" || kind == "filesystem")
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name.len() <= 128
}

fn parse_secret(
    map: Map<String, Value>,
    base: Option<&BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let mut secret = BTreeMap::new();
    for (key, value) in map {
        let field = format!("secret.{key}");
        if !valid_secret_key(&key) {
            return Err(ApiError::invalid(
                field,
                "keys are envvar:NAME or filesystem:NAME",
            ));
        }
        let Value::String(encoded) = value else {
            return Err(ApiError::invalid(field, "must be a base64 string"));
        };
        let decoded = if encoded.is_empty() {
            base.and_then(|b| b.get(&key)).cloned().unwrap_or_default()
        } else {
            let bytes = STANDARD
                .decode(encoded.as_bytes())
                .map_err(|_| ApiError::invalid(&field, "is not valid base64"))?;
            String::from_utf8(bytes).map_err(|_| ApiError::invalid(&field, "is not UTF-8"))?
        };
        secret.insert(key, decoded);
    }
    Ok(secret)
}

fn parse_access(fields: &mut Fields, name: &str, base: AccessMode) -> Result<AccessMode, ApiError> {
    match fields.string(name)? {
        None => Ok(base),
        Some(value) => value
            .parse()
            .map_err(|_| ApiError::invalid(name, "must be enabled or disabled")),
    }
}

/// Parses a connection body. `base` is the stored connection for PUT and
/// PATCH; PATCH keeps every field the body does not name.
fn parse_body(
    body: &[u8],
    base: Option<&ConnectionInput>,
    mode: Mode,
) -> Result<ConnectionInput, ApiError> {
    let mut fields = Fields::parse(body)?;
    // Read-only fields a client may send back from a GET.
    for read_only in ["id", "status", "managed_by"] {
        fields.take(read_only);
    }
    let defaults = ConnectionInput::new("", ConnectionType::Custom, None);
    let keep = match (mode, base) {
        (Mode::Patch, Some(base)) => base,
        _ => &defaults,
    };
    let name = match fields.string("name")? {
        Some(name) => name,
        None if mode == Mode::Patch => keep.name.clone(),
        None => return Err(ApiError::invalid("name", "is required")),
    };
    let kind = match fields.string("type")? {
        Some(kind) => kind
            .parse()
            .map_err(|_| ApiError::invalid("type", "must be database, application or custom"))?,
        None if mode == Mode::Patch => keep.kind,
        None => return Err(ApiError::invalid("type", "is required")),
    };
    let subtype_given = fields.has("subtype");
    let subtype = match fields.string("subtype")? {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::invalid("subtype", "unknown subtype"))?,
        ),
        None if mode == Mode::Patch && !subtype_given => keep.subtype,
        None => None,
    };
    let agent_given = fields.has("agent_id");
    let agent = match fields.string("agent_id")? {
        Some(a) if a.is_empty() => None,
        Some(a) => Some(a),
        None if mode == Mode::Patch && !agent_given => keep.agent.clone(),
        None => None,
    };
    let resource_given = fields.has("resource_name");
    let resource_name = match fields.string("resource_name")? {
        Some(r) if r.is_empty() => None,
        Some(r) => Some(r),
        None if mode == Mode::Patch && !resource_given => keep.resource_name.clone(),
        None => None,
    };
    let secret = match fields.object("secret")? {
        Some(map) => parse_secret(map, base.map(|b| &b.secret))?,
        None => match (mode, base) {
            (Mode::Create, _) | (_, None) => BTreeMap::new(),
            (_, Some(base)) => base.secret.clone(),
        },
    };
    let access = AccessModes {
        exec: parse_access(&mut fields, "access_mode_exec", keep.access.exec)?,
        connect: parse_access(&mut fields, "access_mode_connect", keep.access.connect)?,
        runbooks: parse_access(&mut fields, "access_mode_runbooks", keep.access.runbooks)?,
    };
    let input = ConnectionInput {
        name,
        kind,
        subtype,
        agent,
        resource_name,
        command: fields
            .strings("command")?
            .unwrap_or_else(|| keep.command.clone()),
        secret,
        access,
        redact_enabled: fields
            .bool("redact_enabled")?
            .unwrap_or(keep.redact_enabled),
        redact_types: fields
            .strings("redact_types")?
            .unwrap_or_else(|| keep.redact_types.clone()),
        guardrail_rules: fields
            .array("guardrail_rules")?
            .unwrap_or_else(|| keep.guardrail_rules.clone()),
        reviewers: fields
            .strings("reviewers")?
            .unwrap_or_else(|| keep.reviewers.clone()),
        min_review_approvals: match fields.take("min_review_approvals") {
            None if mode == Mode::Patch => keep.min_review_approvals,
            None => None,
            Some(value) => Some(value.as_i64().filter(|n| *n >= 1).ok_or_else(|| {
                ApiError::invalid("min_review_approvals", "must be a whole number, 1 or more")
            })?),
        },
        tags: fields.strings("tags")?.unwrap_or_else(|| keep.tags.clone()),
    };
    fields.finish()?;
    Ok(input)
}

pub(super) fn parse_new(body: &[u8]) -> Result<ConnectionInput, ApiError> {
    parse_body(body, None, Mode::Create)
}

fn config_error(error: ConfigError) -> ApiError {
    match error {
        ConfigError::Missing { name: "subtype" } => {
            ApiError::invalid("subtype", "is required for this type")
        }
        ConfigError::Missing { name } => ApiError::invalid(
            format!("secret.envvar:{name}"),
            "is required for this subtype",
        ),
        ConfigError::Invalid { name, reason } => ApiError::invalid(name, reason),
        other => ApiError::invalid("body", other),
    }
}

/// Checks a connection and resolves its agent: the agent it names, or its
/// resource's. Returns the agent id to store on the connection itself.
async fn validate(state: &AppState, input: &ConnectionInput) -> Result<Option<String>, ApiError> {
    names::identifier("name", &input.name)?;
    names::identifiers("reviewers", &input.reviewers)?;
    names::labels("tags", &input.tags)?;
    names::labels("redact_types", &input.redact_types)?;
    // Arguments become C strings when the command runs.
    if let Some(index) = input.command.iter().position(|arg| arg.contains('\0')) {
        return Err(ApiError::invalid(
            format!("command[{index}]"),
            "must not contain NUL",
        ));
    }
    let connection = Connection {
        name: input.name.clone(),
        kind: input.kind,
        subtype: input.subtype,
        agent_id: input.agent.clone(),
        access: input.access,
        credentials: input.credentials(),
        command: input.command.clone(),
    };
    connection.validate().map_err(config_error)?;
    if let Some(port) = input.secret.get("envvar:PORT")
        && port.parse::<u16>().is_err()
    {
        return Err(ApiError::invalid(
            "secret.envvar:PORT",
            "not a TCP port number",
        ));
    }
    if input.kind == ConnectionType::Custom && input.command.is_empty() {
        return Err(ApiError::invalid(
            "command",
            "is required for custom connections",
        ));
    }
    if input.redact_enabled {
        // The types become the connection's dlp entry: refuse now what the
        // session's policy could not compile.
        super::dlp::check_redact_types(state, &input.redact_types).await?;
    }
    for (index, rule) in input.guardrail_rules.iter().enumerate() {
        let field = format!("guardrail_rules[{index}]");
        match rule {
            Value::Object(object) => {
                // `direction` is the connection's own key (see
                // `sessions::policy_json`); the rest is hoop-masking's.
                let mut rule = object.clone();
                let direction = match rule.remove("direction").as_ref().map(Value::as_str) {
                    None | Some(Some("input")) => "input",
                    Some(Some("output")) => "output",
                    Some(_) => {
                        return Err(ApiError::invalid(
                            format!("{field}.direction"),
                            "must be input or output",
                        ));
                    }
                };
                super::guardrails::check_rule(&Value::Object(rule), direction, &field)?;
            }
            Value::String(id) => {
                state
                    .store
                    .find_guardrail(id)
                    .await?
                    .filter(|g| &g.id == id)
                    .ok_or_else(|| ApiError::invalid(&field, "no such guardrail rule set"))?;
            }
            _ => {
                return Err(ApiError::invalid(
                    field,
                    "must be a rule object or a guardrail rule set's id",
                ));
            }
        }
    }
    let resource = match &input.resource_name {
        Some(name) => Some(
            state
                .store
                .find_resource(name)
                .await?
                .filter(|r| &r.name == name)
                .ok_or_else(|| ApiError::invalid("resource_name", "no such resource"))?,
        ),
        None => None,
    };
    match &input.agent {
        Some(agent) => Ok(Some(
            state
                .store
                .find_agent(agent)
                .await?
                .ok_or_else(|| ApiError::invalid("agent_id", "no such agent"))?
                .id,
        )),
        None => match resource.and_then(|r| r.agent_id) {
            Some(_) => Ok(None),
            None => Err(ApiError::invalid(
                "agent_id",
                "is required unless the connection's resource names an agent",
            )),
        },
    }
}

/// Validates `input` and builds the record to store (secret sealed).
async fn create_connection_record(
    state: &AppState,
    input: &ConnectionInput,
    id: String,
    created_at: i64,
) -> Result<ConnectionRecord, ApiError> {
    let agent_id = validate(state, input).await?;
    let plain = serde_json::to_vec(&input.secret).map_err(ApiError::internal)?;
    let sealed = state.secrets.seal(&id, &plain)?;
    Ok(ConnectionRecord {
        id,
        name: input.name.clone(),
        kind: input.kind.as_str().to_owned(),
        subtype: input.subtype.map(|s| s.as_str().to_owned()),
        agent_id,
        resource_name: input.resource_name.clone(),
        attributes: input.attributes().to_string(),
        secret: sealed,
        created_at,
        updated_at: crate::store::now(),
    })
}

/// The default port of a subtype's service.
fn default_port(subtype: Option<Subtype>) -> u16 {
    match subtype {
        Some(Subtype::Postgres) => 5432,
        Some(Subtype::Mysql) => 3306,
        Some(Subtype::Mongodb) => 27017,
        Some(Subtype::Mssql) => 1433,
        Some(Subtype::Oracledb) => 1521,
        Some(Subtype::Ssh) => 22,
        Some(Subtype::Httpproxy) => 80,
        Some(Subtype::Tcp) | None => 0,
    }
}

/// Where the agent checks that a connection's service answers: `HOST`
/// (a name, an address, or a URL such as `mongodb://h:27017/db` or
/// `https://h`) and `PORT` or the subtype's default. `None` for a
/// connection without a network target (custom commands).
pub fn connection_target(
    subtype: Option<Subtype>,
    secret: &BTreeMap<String, String>,
) -> Option<(String, u16)> {
    let host = secret.get("envvar:HOST")?.trim();
    let (scheme, rest) = match host.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, host),
    };
    let authority = rest.split(['/', '?', ',']).next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let (name, port_in_host) = match authority.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') && port.parse::<u16>().is_ok() => {
            (name, port.parse::<u16>().ok())
        }
        _ => (authority, None),
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() {
        return None;
    }
    let scheme_port = match scheme {
        Some("https") => Some(443),
        Some("http") => Some(80),
        _ => None,
    };
    let port = secret
        .get("envvar:PORT")
        .and_then(|p| p.trim().parse().ok())
        .or(port_in_host)
        .or(scheme_port)
        .unwrap_or_else(|| default_port(subtype));
    Some((name.to_owned(), port))
}

/// The connection as the API shows it: secret keys only, effective agent,
/// live status.
pub(crate) fn connection_json(
    state: &AppState,
    record: &ConnectionRecord,
    resources: &HashMap<String, ResourceRecord>,
) -> Result<Value, ApiError> {
    let mut body: Value = serde_json::from_str(&record.attributes)
        .map_err(|_| ApiError::internal("stored connection attributes are not JSON"))?;
    let agent_id = effective_agent(record, resources);
    let secret: Map<String, Value> = open_secret(state, record)?
        .into_keys()
        .map(|key| (key, Value::String(String::new())))
        .collect();
    body["id"] = json!(record.id);
    body["name"] = json!(record.name);
    body["type"] = json!(record.kind);
    body["subtype"] = json!(record.subtype);
    body["agent_id"] = json!(agent_id);
    body["resource_name"] = json!(record.resource_name);
    body["secret"] = Value::Object(secret);
    body["status"] = json!(
        state
            .links
            .connection_status(agent_id.as_deref(), &record.id)
    );
    Ok(body)
}

/// The agent serving a connection: its own, else its resource's.
pub(crate) fn effective_agent(
    record: &ConnectionRecord,
    resources: &HashMap<String, ResourceRecord>,
) -> Option<String> {
    record.agent_id.clone().or_else(|| {
        record
            .resource_name
            .as_ref()
            .and_then(|name| resources.get(name))
            .and_then(|r| r.agent_id.clone())
    })
}

pub(crate) async fn resources_by_name(
    state: &AppState,
) -> Result<HashMap<String, ResourceRecord>, ApiError> {
    resources_for(state, &[]).await
}

/// The resources `records` may inherit an agent from: none to load when
/// every record names its agent itself (the common case, one query saved
/// per read). An empty `records` means all of them.
async fn resources_for(
    state: &AppState,
    records: &[&ConnectionRecord],
) -> Result<HashMap<String, ResourceRecord>, ApiError> {
    if !records.is_empty() && records.iter().all(|r| r.agent_id.is_some()) {
        return Ok(HashMap::new());
    }
    Ok(state
        .store
        .list_resources()
        .await?
        .into_iter()
        .map(|r| (r.name.clone(), r))
        .collect())
}

/// How long a create or update waits for the agent's check of a new
/// target: one probe's limit, and a second for the round trip.
const STATUS_WAIT: Duration =
    hoop_proxy::agent::CHECK_TIMEOUT.saturating_add(Duration::from_secs(1));

/// Whether an update points the connection somewhere else: another host or
/// port, or another agent. Its last reported status then says nothing.
fn retargeted(
    before: &ConnectionInput,
    existing: &ConnectionRecord,
    after: &ConnectionInput,
    record: &ConnectionRecord,
) -> bool {
    connection_target(before.subtype, &before.secret)
        != connection_target(after.subtype, &after.secret)
        || existing.agent_id != record.agent_id
        || existing.resource_name != record.resource_name
}

/// Tells the agents that targets changed and, when `record`'s is new,
/// waits for its agent's check, so the response shows the status the next
/// list will (an agent with no link has none to give: `offline` at once).
async fn announce(
    state: &AppState,
    record: &ConnectionRecord,
    resources: &HashMap<String, ResourceRecord>,
    new_target: bool,
) {
    if new_target {
        state.links.forget_reachability(&record.id);
    }
    state.links.targets_changed();
    if let Some(agent) = effective_agent(record, resources).filter(|_| new_target) {
        state
            .links
            .await_report(&agent, &record.id, STATUS_WAIT)
            .await;
    }
}

fn name_conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict => ApiError::conflict("a connection with this name exists"),
        other => other.into(),
    }
}

/// Creates a connection with its default plugins; returns its API form.
///
/// # Errors
///
/// 422 for invalid input, 409 when the name exists; nothing is written then.
pub(crate) async fn insert(state: &AppState, input: &ConnectionInput) -> Result<Value, ApiError> {
    let id = crate::crypto::new_id()?;
    let record = create_connection_record(state, input, id, crate::store::now()).await?;
    let plugins = super::plugins::default_plugins(input, &record.id);
    state
        .store
        .insert_connection(&record, &plugins)
        .await
        .map_err(name_conflict)?;
    let resources = resources_for(state, &[&record]).await?;
    announce(state, &record, &resources, true).await;
    connection_json(state, &record, &resources)
}

/// Creates the connection, or rewrites the existing one of the same name
/// (how `hoop up --config` applies its file on every start).
///
/// # Errors
///
/// 422 for invalid input.
pub(crate) async fn upsert(state: &AppState, input: &ConnectionInput) -> Result<Value, ApiError> {
    match state.store.find_connection(&input.name).await? {
        None => insert(state, input).await,
        Some(existing) => {
            let before = stored_input(state, &existing)?;
            let record =
                create_connection_record(state, input, existing.id.clone(), existing.created_at)
                    .await?;
            let plugins = super::plugins::plugin_changes(&before, input);
            state
                .store
                .update_connection(&record, &plugins)
                .await
                .map_err(name_conflict)?;
            let resources = resources_for(state, &[&record]).await?;
            let new_target = retargeted(&before, &existing, input, &record);
            announce(state, &record, &resources, new_target).await;
            connection_json(state, &record, &resources)
        }
    }
}

async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    let input = parse_body(&body, None, Mode::Create)?;
    super::created(&insert(&state, &input).await?)
}

/// The groups allowed on each connection that has `access_control` on.
/// Administrators see everything, so this is only loaded for others.
pub(crate) async fn access_rules(
    state: &AppState,
    caller: &Caller,
) -> Result<HashMap<String, Vec<String>>, ApiError> {
    if caller.is_admin() {
        return Ok(HashMap::new());
    }
    Ok(state
        .store
        .list_plugin_connections()
        .await?
        .into_iter()
        .filter(|p| p.plugin == "access_control")
        .map(|p| {
            let groups = serde_json::from_str(&p.config).unwrap_or_default();
            (p.connection_id, groups)
        })
        .collect())
}

/// Whether the caller may see a connection: always, unless its
/// `access_control` lists groups the caller is in none of.
pub(crate) fn visible(
    rules: &HashMap<String, Vec<String>>,
    caller: &Caller,
    connection_id: &str,
) -> bool {
    rules
        .get(connection_id)
        .is_none_or(|groups| caller.user.groups.iter().any(|g| groups.contains(g)))
}

async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> ApiResult {
    super::check_query(
        &query,
        &["type", "subtype", "agent_id", "status", "resource_name"],
    )?;
    let resources = resources_by_name(&state).await?;
    let agent_filter = match query.get("agent_id") {
        Some(agent) => Some(
            state
                .store
                .find_agent(agent)
                .await?
                .map_or_else(|| agent.clone(), |a| a.id),
        ),
        None => None,
    };
    let rules = access_rules(&state, &caller).await?;
    let mut out = Vec::new();
    for record in state.store.list_connections().await? {
        if !visible(&rules, &caller, &record.id) {
            continue;
        }
        let body = connection_json(&state, &record, &resources)?;
        let matches = |key: &str, wanted: Option<&String>| {
            wanted.is_none_or(|w| body.get(key).and_then(Value::as_str) == Some(w.as_str()))
        };
        if matches("type", query.get("type"))
            && matches("subtype", query.get("subtype"))
            && matches("agent_id", agent_filter.as_ref())
            && matches("status", query.get("status"))
            && matches("resource_name", query.get("resource_name"))
        {
            out.push(body);
        }
    }
    super::ok(&Value::Array(out))
}

async fn find(state: &AppState, name: &str) -> Result<ConnectionRecord, ApiError> {
    state
        .store
        .find_connection(name)
        .await?
        .ok_or_else(|| ApiError::not_found("connection"))
}

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    let record = find(&state, &name).await?;
    if !visible(&access_rules(&state, &caller).await?, &caller, &record.id) {
        return Err(ApiError::not_found("connection"));
    }
    super::ok(&connection_json(
        &state,
        &record,
        &resources_for(&state, &[&record]).await?,
    )?)
}

async fn change(state: &AppState, name: &str, body: &[u8], mode: Mode) -> ApiResult {
    let existing = find(state, name).await?;
    let base = stored_input(state, &existing)?;
    let input = parse_body(body, Some(&base), mode)?;
    let record =
        create_connection_record(state, &input, existing.id.clone(), existing.created_at).await?;
    let plugins = super::plugins::plugin_changes(&base, &input);
    if !state
        .store
        .update_connection(&record, &plugins)
        .await
        .map_err(name_conflict)?
    {
        return Err(ApiError::not_found("connection"));
    }
    let resources = resources_for(state, &[&record]).await?;
    announce(
        state,
        &record,
        &resources,
        retargeted(&base, &existing, &input, &record),
    )
    .await;
    super::ok(&connection_json(state, &record, &resources)?)
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    change(&state, &name, &body, Mode::Replace).await
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    change(&state, &name, &body, Mode::Patch).await
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let record = find(&state, &name).await?;
    state.store.delete_connection(&record.id).await?;
    state.links.targets_changed();
    super::no_content()
}

/// The targets of every connection `agent_id` serves, for its link.
pub(crate) async fn targets_for_agent(
    state: &AppState,
    agent_id: &str,
) -> Result<Vec<hoop_proxy::link::messages::Target>, ApiError> {
    let resources = resources_by_name(state).await?;
    let mut targets = Vec::new();
    for record in state.store.list_connections().await? {
        if effective_agent(&record, &resources).as_deref() != Some(agent_id) {
            continue;
        }
        let subtype = record.subtype.as_deref().and_then(|s| s.parse().ok());
        let secret = open_secret(state, &record)?;
        let (host, port) = match connection_target(subtype, &secret) {
            Some((host, port)) => (Some(host), port),
            None => (None, 0),
        };
        targets.push(hoop_proxy::link::messages::Target {
            connection_id: record.id,
            host,
            port,
        });
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn targets_come_from_host_port_urls_and_defaults() {
        let pg = Some(Subtype::Postgres);
        assert_eq!(
            connection_target(
                pg,
                &secret(&[("envvar:HOST", "db"), ("envvar:PORT", "6432")])
            ),
            Some(("db".into(), 6432))
        );
        assert_eq!(
            connection_target(pg, &secret(&[("envvar:HOST", "db")])),
            Some(("db".into(), 5432))
        );
        assert_eq!(
            connection_target(
                Some(Subtype::Mongodb),
                &secret(&[("envvar:HOST", "mongodb://u:p@m1:27018/db?x=1")])
            ),
            Some(("m1".into(), 27018))
        );
        assert_eq!(
            connection_target(
                Some(Subtype::Httpproxy),
                &secret(&[("envvar:HOST", "https://api.internal/v1")])
            ),
            Some(("api.internal".into(), 443))
        );
        assert_eq!(
            connection_target(pg, &secret(&[("envvar:HOST", "[::1]:5433")])),
            Some(("::1".into(), 5433))
        );
        assert_eq!(connection_target(None, &secret(&[])), None);
    }

    #[test]
    fn secret_keys_and_values_are_checked() {
        let map = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            parse_secret(map(json!({"envvar:HOST": "bXlkYg=="})), None).unwrap()["envvar:HOST"],
            "mydb"
        );
        for (body, field) in [
            (json!({"envvar:HOST": "%%%"}), "secret.envvar:HOST"),
            (json!({"envvar:HOST": 5}), "secret.envvar:HOST"),
            (json!({"HOST": "bXlkYg=="}), "secret.HOST"),
            (json!({"envvar:A-B": "bXlkYg=="}), "secret.envvar:A-B"),
        ] {
            assert_eq!(
                parse_secret(map(body), None).unwrap_err().field(),
                Some(field)
            );
        }
        let base = secret(&[("envvar:PASS", "kept")]);
        assert_eq!(
            parse_secret(map(json!({"envvar:PASS": ""})), Some(&base)).unwrap()["envvar:PASS"],
            "kept"
        );
    }
}
