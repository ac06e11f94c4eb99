//! Connections declared in a TOML file (`hoop up --config FILE`), applied on
//! every start so a quick start needs no API call.
//!
//! ```toml
//! [[connections]]
//! name = "local-postgres"
//! type = "database"
//! subtype = "postgres"
//! # agent_id defaults to the embedded agent, "default"
//!
//! [connections.secret]
//! "envvar:HOST" = "127.0.0.1"
//! "envvar:PORT" = "5432"
//! "envvar:USER" = "postgres"
//! "envvar:PASS" = ""
//! ```
//!
//! Fields and their checks are the API's (`POST /api/connections`), with one
//! difference: secret values are written plainly, not base64, since the
//! file is not JSON. Keep such a file private.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::api::{ApiError, ConnectionInput};

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigFileError {
    /// Not TOML, or not the expected shape.
    #[error("{0}")]
    Syntax(String),
    /// A connection is invalid; the message names it and the field.
    #[error("connections[{index}] ({name}): {message}")]
    Invalid {
        /// Position in the file.
        index: usize,
        /// The connection's name, if it has one.
        name: String,
        /// What is wrong, naming the field.
        message: String,
    },
}

/// Parses the connections of a configuration file; those without an agent
/// or resource get `default_agent`.
///
/// # Errors
///
/// The first problem, naming the connection and field.
pub fn parse_connections(
    text: &str,
    default_agent: &str,
) -> Result<Vec<ConnectionInput>, ConfigFileError> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| ConfigFileError::Syntax(e.to_string()))?;
    let mut root =
        serde_json::to_value(table).map_err(|e| ConfigFileError::Syntax(e.to_string()))?;
    let Some(root) = root.as_object_mut() else {
        return Err(ConfigFileError::Syntax("expected a table".into()));
    };
    if let Some(unknown) = root.keys().find(|k| *k != "connections") {
        return Err(ConfigFileError::Syntax(format!("unknown key {unknown}")));
    }
    let entries = match root.remove("connections") {
        None => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => {
            return Err(ConfigFileError::Syntax(
                "connections must be an array of tables ([[connections]])".into(),
            ));
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for (index, mut entry) in entries.into_iter().enumerate() {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let invalid = |message: String| ConfigFileError::Invalid {
            index,
            name: name.clone(),
            message,
        };
        let Some(object) = entry.as_object_mut() else {
            return Err(invalid("must be a table".into()));
        };
        if !object.contains_key("agent_id") && !object.contains_key("resource_name") {
            object.insert("agent_id".into(), Value::String(default_agent.to_owned()));
        }
        if let Some(Value::Object(secret)) = object.get_mut("secret") {
            for (key, value) in secret.iter_mut() {
                let plain = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(invalid(format!("secret.{key}: must be a string"))),
                };
                *value = Value::String(STANDARD.encode(plain));
            }
        }
        let body = serde_json::to_vec(&entry).map_err(|e| invalid(e.to_string()))?;
        let input = crate::api::parse_new_connection(&body)
            .map_err(|e: ApiError| invalid(e.message().to_owned()))?;
        out.push(input);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_example_file() {
        let text = include_str!("../../../examples/hoop.toml");
        let connections = parse_connections(text, "default").unwrap();
        assert!(!connections.is_empty());
        let first = &connections[0];
        assert_eq!(first.agent.as_deref(), Some("default"));
        assert_eq!(first.secret["envvar:HOST"], "127.0.0.1");
        assert_eq!(first.secret["envvar:PORT"], "5432");
    }

    #[test]
    fn names_the_connection_and_field_of_an_error() {
        let text = "[[connections]]\nname = \"x\"\ntype = \"database\"\nsubtype = \"nosql\"\n";
        let error = parse_connections(text, "default").unwrap_err().to_string();
        assert!(error.contains("connections[0] (x)"), "{error}");
        assert!(error.contains("subtype"), "{error}");
        assert!(parse_connections("connections = 1", "d").is_err());
        assert!(parse_connections("other = 1", "d").is_err());
    }
}
