//! Request bodies, read field by field so every refusal names its field.
//!
//! serde's derive reports a wrong type by line and column, not by field; the
//! API promises the field. So a body is parsed as JSON (400 when it is not),
//! then each field is taken by name with its expected type (422 naming it
//! otherwise), and whatever is left is an unknown field (422 naming it).

use serde_json::{Map, Value};

use super::ApiError;

/// The fields of one JSON object body.
#[derive(Debug)]
pub(crate) struct Fields {
    map: Map<String, Value>,
    prefix: String,
}

impl Fields {
    /// Parses a request body that must be a JSON object.
    pub(crate) fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))?;
        match value {
            Value::Object(map) => Ok(Self {
                map,
                prefix: String::new(),
            }),
            _ => Err(ApiError::invalid("body", "must be a JSON object")),
        }
    }

    /// Fields of a nested object, whose errors name `prefix.field`.
    pub(crate) fn nested(value: Value, prefix: &str) -> Result<Self, ApiError> {
        match value {
            Value::Object(map) => Ok(Self {
                map,
                prefix: format!("{prefix}."),
            }),
            _ => Err(ApiError::invalid(prefix, "must be an object")),
        }
    }

    /// The full name of a field, for error messages.
    pub(crate) fn name(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    /// Whether the body has the field (even as null).
    pub(crate) fn has(&self, field: &str) -> bool {
        self.map.contains_key(field)
    }

    /// Takes a field; null counts as absent.
    pub(crate) fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    /// A string field.
    pub(crate) fn string(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(ApiError::invalid(self.name(field), "must be a string")),
        }
    }

    /// A required, non-empty string field.
    pub(crate) fn required_string(&mut self, field: &str) -> Result<String, ApiError> {
        match self.string(field)? {
            Some(s) if !s.trim().is_empty() => Ok(s),
            _ => Err(ApiError::invalid(self.name(field), "is required")),
        }
    }

    /// A boolean field.
    pub(crate) fn bool(&mut self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(_) => Err(ApiError::invalid(self.name(field), "must be true or false")),
        }
    }

    /// A list of strings.
    pub(crate) fn strings(&mut self, field: &str) -> Result<Option<Vec<String>>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(ApiError::invalid(
                        self.name(field),
                        "must be a list of strings",
                    )),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(ApiError::invalid(
                self.name(field),
                "must be a list of strings",
            )),
        }
    }

    /// A list of any JSON values.
    pub(crate) fn array(&mut self, field: &str) -> Result<Option<Vec<Value>>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(_) => Err(ApiError::invalid(self.name(field), "must be a list")),
        }
    }

    /// An object field.
    pub(crate) fn object(&mut self, field: &str) -> Result<Option<Map<String, Value>>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ApiError::invalid(self.name(field), "must be an object")),
        }
    }

    /// Ends parsing: any field not taken is unknown.
    pub(crate) fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(field) => Err(ApiError::invalid(self.name(field), "unknown field")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field_of_each_refusal() {
        let mut fields = Fields::parse(br#"{"a": 1, "b": "x", "c": [1], "d": null}"#).unwrap();
        assert_eq!(fields.string("a").unwrap_err().field(), Some("a"));
        assert_eq!(fields.string("b").unwrap().as_deref(), Some("x"));
        assert_eq!(fields.strings("c").unwrap_err().field(), Some("c"));
        assert_eq!(fields.string("d").unwrap(), None);
        let mut fields = Fields::parse(br#"{"known": true, "extra": 1}"#).unwrap();
        fields.bool("known").unwrap();
        assert_eq!(fields.finish().unwrap_err().field(), Some("extra"));
    }

    #[test]
    fn malformed_json_and_non_objects_are_distinguished() {
        assert_eq!(Fields::parse(b"{").unwrap_err().status().as_u16(), 400);
        assert_eq!(Fields::parse(b"[1]").unwrap_err().status().as_u16(), 422);
    }
}
