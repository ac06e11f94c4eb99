//! The `dlp` plugin: what its configuration masks in a connection's
//! sessions.
//!
//! ```text
//!  PUT /api/plugins/dlp                       POST/PUT/PATCH /api/connections
//!  {"config": {..},                           redact_enabled + redact_types
//!   "connections": [{"id", "config": [..]}]}  write the connection's entry
//!        | checked here: 422, nothing written        | (types checked here)
//!        v                                           v
//!  plugins.config ("dlp")  +  plugin_connections ("dlp", connection) = [types]
//!        | one query at each session open (Store::plugin_entry)
//!        v
//!  DlpPolicy::masking --> the policy's "masking" section --> the agent
//! ```
//!
//! Decisions, each the least surprising reading of hoop's API we found:
//!
//! - **The plugin decides, and the connection's fields follow it.** A
//!   session is masked exactly when the `dlp` plugin lists its connection.
//!   `redact_enabled` and `redact_types` are two views of that entry:
//!   creating a connection with `redact_enabled` lists it with
//!   `redact_types`, changing either field re-derives the entry
//!   (`plugins::plugin_changes`), and `PUT /api/plugins/dlp` rewrites both
//!   fields of every connection whose entry it changes, in the same
//!   transaction (listed: on, with the list; left out: off, the types
//!   kept). So a connection the plugin leaves out is not masked and reads
//!   `redact_enabled: false`; masking from either source alone would make
//!   one of the two APIs do nothing.
//! - **The per-connection list is the whole list.** Its entries name
//!   hoop-masking's built-in entity types (`EMAIL_ADDRESS`, ...) or custom
//!   entities of the plugin's configuration, and exactly those are masked
//!   (it is the connection's `redact_types`: the two are kept equal, never
//!   merged). An empty list masks the
//!   default set: hoop-masking's default built-in types and every custom
//!   entity.
//! - **The plugin's configuration** (`config`, an object) is hoop-masking's
//!   `masking` section without `entities` ([`CONFIG_FIELDS`]): `transform`
//!   (`redact`, `mask` with `keep_last` and `char`, `null`, `fixed` with
//!   `value`), `transforms` per entity name, `custom_entities` (a `name`
//!   and a `regex` or `words`), `columns` (column rules, `mask` or
//!   `exempt`), `date_of_birth_columns` and `max_cell_bytes`. It applies
//!   to every connection the plugin lists; a custom entity only where the
//!   list names it (or the list is empty). `hmac_sha256` is refused: `GET /api/plugins` shows the
//!   configuration to every user, key included.
//! - **Checked when written.** `PUT /api/plugins/dlp` compiles the
//!   configuration with hoop-masking and checks every list against it; a
//!   connection write with `redact_enabled` checks its `redact_types`
//!   against the stored configuration (with masking off they are no entry;
//!   turning it on checks them). A refusal is a 422 naming the field
//!   (`config.custom_entities[0].regex`, `connections[1].config[0]`,
//!   `redact_types[2]`) and writes nothing, so an unknown entity type never
//!   reaches a session.
//! - **Read per session.** The entry and the configuration are read in one
//!   query when a session opens, so a change applies to the next session
//!   without a restart.

use std::collections::HashSet;

use hoop_masking::{EntityType, Policy, PolicyError, PolicyErrorKind};
use serde_json::{Map, Value, json};

use super::{ApiError, AppState};
use crate::store::{ConnectionRecord, PluginEntryRecord, StoreError};

/// The plugin's name.
pub const PLUGIN: &str = "dlp";

/// The fields the plugin-level configuration accepts: hoop-masking's
/// `masking` section without `entities`, which the per-connection lists
/// give.
pub const CONFIG_FIELDS: [&str; 6] = [
    "transform",
    "transforms",
    "custom_entities",
    "columns",
    "date_of_birth_columns",
    "max_cell_bytes",
];

/// The `dlp` plugin as it applies to one connection's sessions: the
/// connection's entity types under the plugin's configuration.
///
/// # Examples
///
/// ```
/// use hoop_gateway::api::dlp::DlpPolicy;
/// use serde_json::json;
///
/// let config = json!({"transform": {"type": "mask", "keep_last": 4}});
/// let policy = DlpPolicy::new(
///     vec!["EMAIL_ADDRESS".into()],
///     config.as_object().unwrap().clone(),
/// );
/// assert_eq!(
///     policy.masking(),
///     json!({"entities": ["EMAIL_ADDRESS"], "transform": {"type": "mask", "keep_last": 4}}),
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DlpPolicy {
    types: Vec<String>,
    config: Map<String, Value>,
}

fn custom_name(entity: &Value) -> Option<&str> {
    entity.get("name").and_then(Value::as_str)
}

fn custom_entities(config: &Map<String, Value>) -> &[Value] {
    config
        .get("custom_entities")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

impl DlpPolicy {
    /// The connection's entity types (empty: the default set) under the
    /// plugin's configuration, an object of [`CONFIG_FIELDS`] (checked by
    /// the API before it is stored).
    pub fn new(types: Vec<String>, config: Map<String, Value>) -> Self {
        Self { types, config }
    }

    /// From the stored entry: the per-connection list and the plugin's
    /// configuration (absent or `null`: none).
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when either is not the shape the API writes.
    pub fn from_stored(entry: &PluginEntryRecord) -> Result<Self, StoreError> {
        let types = serde_json::from_str(&entry.config)
            .map_err(|_| StoreError::Corrupt("dlp entry is not a list of entity types"))?;
        let config = match entry.plugin_config.as_deref().map(serde_json::from_str) {
            None | Some(Ok(Value::Null)) => Map::new(),
            Some(Ok(Value::Object(config))) => config,
            Some(_) => return Err(StoreError::Corrupt("dlp configuration is not an object")),
        };
        Ok(Self::new(types, config))
    }

    /// The `masking` section of hoop-masking's policy for the connection.
    pub fn masking(&self) -> Value {
        let mut masking = self.config.clone();
        if self.types.is_empty() {
            return Value::Object(masking);
        }
        let defined: HashSet<&str> = custom_entities(&self.config)
            .iter()
            .filter_map(custom_name)
            .collect();
        let entities: Vec<&String> = self
            .types
            .iter()
            .filter(|name| !defined.contains(name.as_str()))
            .collect();
        let wanted: HashSet<&str> = self.types.iter().map(String::as_str).collect();
        let (kept, left_out): (Vec<&Value>, Vec<&Value>) = custom_entities(&self.config)
            .iter()
            .partition(|entity| custom_name(entity).is_some_and(|name| wanted.contains(name)));
        // A transform keyed by a custom entity left out would name no entity
        // of the policy, which hoop-masking refuses, unless a column rule
        // labels its columns with that name.
        let labels: HashSet<&str> = self
            .config
            .get("columns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|rule| rule.get("entity").and_then(Value::as_str))
            .collect();
        let unused: Vec<String> = left_out
            .into_iter()
            .filter_map(custom_name)
            .filter(|name| !labels.contains(name))
            .map(str::to_owned)
            .collect();
        if let Some(Value::Object(transforms)) = masking.get_mut("transforms") {
            for name in &unused {
                transforms.remove(name);
            }
        }
        if masking.contains_key("custom_entities") {
            masking.insert("custom_entities".into(), json!(kept));
        }
        masking.insert("entities".into(), json!(entities));
        Value::Object(masking)
    }
}

/// The connections whose `redact_enabled` and `redact_types` no longer
/// match the new list `entries`, with their attributes rewritten to match:
/// listed, masking on with the entry's types; left out, masking off (the
/// types stay, for turning it back on). Written with the list, so a
/// connection's fields show what its sessions mask.
///
/// # Errors
///
/// 500 for stored attributes that are not a JSON object.
pub(crate) fn synced_attributes(
    connections: &[ConnectionRecord],
    entries: &[(String, Vec<String>)],
) -> Result<Vec<(String, String)>, ApiError> {
    let mut rewritten = Vec::new();
    for connection in connections {
        let Ok(Value::Object(mut attributes)) = serde_json::from_str(&connection.attributes) else {
            return Err(ApiError::internal(
                "stored connection attributes are not a JSON object",
            ));
        };
        let enabled = attributes.get("redact_enabled").and_then(Value::as_bool) == Some(true);
        let types = attributes.get("redact_types").cloned().unwrap_or(json!([]));
        let (want_enabled, want_types) = match entries.iter().find(|(id, _)| *id == connection.id) {
            Some((_, listed)) => (true, json!(listed)),
            None => (false, types.clone()),
        };
        if (enabled, &types) != (want_enabled, &want_types) {
            attributes.insert("redact_enabled".into(), want_enabled.into());
            attributes.insert("redact_types".into(), want_types);
            rewritten.push((connection.id.clone(), Value::Object(attributes).to_string()));
        }
    }
    Ok(rewritten)
}

/// Reads the connection's `dlp` entry and the plugin's configuration (one
/// query); `None` when the plugin does not list the connection.
///
/// # Errors
///
/// Any store error, or [`StoreError::Corrupt`] for stored data the API
/// would not have written.
pub async fn for_connection(
    state: &AppState,
    connection_id: &str,
) -> Result<Option<DlpPolicy>, StoreError> {
    state
        .store
        .plugin_entry(PLUGIN, connection_id)
        .await?
        .as_ref()
        .map(DlpPolicy::from_stored)
        .transpose()
}

/// hoop-masking's message without serde's position in the JSON this
/// module built, which means nothing to the caller.
fn reason(kind: &PolicyErrorKind) -> String {
    let text = kind.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn compile(policy: &Value) -> Result<(), PolicyError> {
    Policy::from_json(&policy.to_string())?.compile().map(drop)
}

/// The first `hmac_sha256` transform in the configuration, by field.
fn hmac_transform(config: &Map<String, Value>) -> Option<String> {
    let is_hmac = |t: &Value| t.get("type").and_then(Value::as_str) == Some("hmac_sha256");
    if config.get("transform").is_some_and(is_hmac) {
        return Some("config.transform.type".into());
    }
    if let Some(Value::Object(transforms)) = config.get("transforms")
        && let Some(name) = transforms
            .iter()
            .find_map(|(name, t)| is_hmac(t).then_some(name))
    {
        return Some(format!("config.transforms.{name}.type"));
    }
    for list in ["custom_entities", "columns"] {
        let items = config.get(list).and_then(Value::as_array);
        if let Some(index) = items
            .into_iter()
            .flatten()
            .position(|item| item.get("transform").is_some_and(is_hmac))
        {
            return Some(format!("config.{list}[{index}].transform.type"));
        }
    }
    None
}

/// Checks the plugin-level configuration of `PUT /api/plugins/dlp`:
/// only [`CONFIG_FIELDS`], no `hmac_sha256`, and it compiles.
///
/// # Errors
///
/// 422 naming the field, e.g. `config.custom_entities[0].regex`.
pub(crate) fn check_config(config: &Map<String, Value>) -> Result<(), ApiError> {
    for field in config.keys() {
        if field == "entities" {
            return Err(ApiError::invalid(
                "config.entities",
                "entity types are listed per connection, in connections[].config",
            ));
        }
        if !CONFIG_FIELDS.contains(&field.as_str()) {
            return Err(ApiError::invalid(
                format!("config.{field}"),
                format!("unknown field; use one of {}", CONFIG_FIELDS.join(", ")),
            ));
        }
    }
    if let Some(field) = hmac_transform(config) {
        return Err(ApiError::invalid(
            field,
            "hmac_sha256 is not accepted here: every user can read the plugin's configuration, key included",
        ));
    }
    let policy = json!({"masking": DlpPolicy::new(Vec::new(), config.clone()).masking()});
    compile(&policy).map_err(|error| {
        let field = match error.path().strip_prefix("masking") {
            Some(rest) if !rest.is_empty() => format!("config{rest}"),
            _ => "config".into(),
        };
        ApiError::invalid(field, reason(error.kind()))
    })
}

/// Checks a connection's entity types against the plugin's configuration:
/// each a built-in type or one of its custom entities, none twice.
///
/// # Errors
///
/// 422 naming `field[N]`, the first bad entry.
pub(crate) fn check_types(
    types: &[String],
    config: &Map<String, Value>,
    field: &str,
) -> Result<(), ApiError> {
    let defined: HashSet<&str> = custom_entities(config)
        .iter()
        .filter_map(custom_name)
        .collect();
    let mut seen = HashSet::new();
    for (index, name) in types.iter().enumerate() {
        if EntityType::from_name(name).is_none() && !defined.contains(name.as_str()) {
            return Err(ApiError::invalid(
                format!("{field}[{index}]"),
                format!(
                    "unknown entity type {name:?}: neither built in nor a custom entity of the dlp plugin's configuration"
                ),
            ));
        }
        if !seen.insert(name.as_str()) {
            return Err(ApiError::invalid(
                format!("{field}[{index}]"),
                format!("{name:?} is listed twice"),
            ));
        }
    }
    Ok(())
}

/// The stored plugin-level configuration (none: an empty object).
///
/// # Errors
///
/// Any store error; 500 for a stored configuration that is not an object.
pub(crate) async fn stored_config(state: &AppState) -> Result<Map<String, Value>, ApiError> {
    match state.store.plugin_config(PLUGIN).await?.as_deref() {
        None => Ok(Map::new()),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Null) => Ok(Map::new()),
            Ok(Value::Object(config)) => Ok(config),
            _ => Err(ApiError::internal(
                "stored dlp configuration is not an object",
            )),
        },
    }
}

/// Checks the `redact_types` a connection write would put in its `dlp`
/// entry, against the stored configuration (read only when a name is not
/// built in).
///
/// # Errors
///
/// 422 naming `redact_types[N]`.
pub(crate) async fn check_redact_types(state: &AppState, types: &[String]) -> Result<(), ApiError> {
    let config = if types
        .iter()
        .all(|name| EntityType::from_name(name).is_some())
    {
        Map::new()
    } else {
        stored_config(state).await?
    };
    check_types(types, &config, "redact_types")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn an_empty_list_keeps_the_default_set_and_every_custom_entity() {
        let custom = json!({"custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"}]});
        let policy = DlpPolicy::new(Vec::new(), config(custom.clone()));
        assert_eq!(policy.masking(), custom);
    }

    #[test]
    fn a_list_selects_built_in_and_custom_entities() {
        let stored = config(json!({
            "custom_entities": [
                {"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"},
                {"name": "CODENAME", "words": ["bluebird"]},
            ],
            "transforms": {"CODENAME": {"type": "null"}, "EMAIL_ADDRESS": {"type": "null"}},
        }));
        let policy = DlpPolicy::new(vec!["EMAIL_ADDRESS".into(), "EMPLOYEE_ID".into()], stored);
        assert_eq!(
            policy.masking(),
            json!({
                "entities": ["EMAIL_ADDRESS"],
                "custom_entities": [{"name": "EMPLOYEE_ID", "regex": "EMP-[0-9]{6}"}],
                "transforms": {"EMAIL_ADDRESS": {"type": "null"}},
            })
        );
        compile(&json!({"masking": policy.masking()})).unwrap();
    }

    #[test]
    fn rejects_what_would_fail_at_session_time_naming_the_field() {
        let cases = [
            (json!({"entities": ["EMAIL_ADDRESS"]}), "config.entities"),
            (json!({"colour": 1}), "config.colour"),
            (
                json!({"transform": {"type": "partial"}}),
                "config.transform.type",
            ),
            (
                json!({"transforms": {"EMAIL_ADDRESS": {"type": "hmac_sha256", "key": "k"}}}),
                "config.transforms.EMAIL_ADDRESS.type",
            ),
            (
                json!({"custom_entities": [{"name": "X", "regex": "("}]}),
                "config.custom_entities[0].regex",
            ),
            (
                json!({"transforms": {"NOT_AN_ENTITY": {"type": "null"}}}),
                "config.transforms.NOT_AN_ENTITY",
            ),
            (
                json!({"columns": [{"columns": []}]}),
                "config.columns[0].columns",
            ),
        ];
        for (value, field) in cases {
            let error = check_config(&config(value.clone())).unwrap_err();
            assert_eq!(error.field(), Some(field), "{value}: {error:?}");
        }
        check_config(&config(json!({
            "transform": {"type": "mask", "keep_last": 4},
            "columns": [{"columns": ["*.ssn"], "transform": {"type": "fixed", "value": "xxx"}}],
        })))
        .unwrap();
    }

    #[test]
    fn entity_types_are_built_in_or_custom_and_listed_once() {
        let stored = config(json!({"custom_entities": [{"name": "EMPLOYEE_ID", "words": ["x"]}]}));
        check_types(&["EMPLOYEE_ID".into(), "IBAN_CODE".into()], &stored, "t").unwrap();
        let error = check_types(&["IBAN_CODE".into(), "SSN".into()], &stored, "t").unwrap_err();
        assert_eq!(error.field(), Some("t[1]"));
        let error = check_types(&["URL".into(), "URL".into()], &stored, "t").unwrap_err();
        assert_eq!(error.field(), Some("t[1]"));
    }
}
