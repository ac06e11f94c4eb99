//! Request bodies, read field by field so every refusal names its field.
//!
//! serde's derive reports a wrong type by line and column, not by field; the
//! API promises the field. So a body is parsed as JSON (400 when it is not),
//! then each field is taken by name with its expected type (422 naming it
//! otherwise), and whatever is left is an unknown field (422 naming it).
//!
//! An object that names a key twice is refused (422 naming it, e.g.
//! `secret.envvar:HOST`), at any depth: parsers disagree on which value
//! wins (serde_json keeps the last, others the first), so a body checked
//! by one reader could mean something else to the next.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

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
        match parse_unique_keys(body)? {
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

/// Parses a JSON document whose objects name each key once.
///
/// # Errors
///
/// 400 for malformed JSON; 422 naming the first key given twice.
pub(crate) fn parse_unique_keys(body: &[u8]) -> Result<Value, ApiError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = UniqueKeys {
        path: String::new(),
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (_, Some(path)) => Err(ApiError::invalid(path, "is given twice")),
        (Ok(value), None) => Ok(value),
        (Err(error), None) => Err(ApiError::bad_request(format!("malformed JSON: {error}"))),
    }
}

/// A JSON value whose objects may not repeat a key; `path` names where it
/// sits (`secret`, `connections[0]`), and the first key seen twice is
/// left in `duplicate` (serde's error type carries no such detail).
struct UniqueKeys<'a> {
    path: String,
    duplicate: &'a RefCell<Option<String>>,
}

impl UniqueKeys<'_> {
    fn child(&self, path: String) -> Self {
        UniqueKeys {
            path,
            duplicate: self.duplicate,
        }
    }
}

impl<'de> DeserializeSeed<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueKeys<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::from(value))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) =
            seq.next_element_seed(self.child(format!("{}[{}]", self.path, items.len())))?
        {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(path);
                return Err(de::Error::custom("a key is given twice"));
            }
            let value = map.next_value_seed(self.child(path))?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
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
    fn a_key_given_twice_is_refused_at_any_depth() {
        for (body, field) in [
            (&br#"{"name": "a", "name": "b"}"#[..], "name"),
            (
                br#"{"secret": {"envvar:HOST": "a", "envvar:HOST": "b"}}"#,
                "secret.envvar:HOST",
            ),
            (
                br#"{"connections": [{"id": "a"}, {"id": "b", "id": "c"}]}"#,
                "connections[1].id",
            ),
            (br#"{"a": [[{"k": 1, "k": 1}]]}"#, "a[0][0].k"),
        ] {
            let error = Fields::parse(body).unwrap_err();
            assert_eq!(error.status().as_u16(), 422);
            assert_eq!(error.field(), Some(field));
        }
        let value = parse_unique_keys(br#"{"a": [1, -2, 3.5, true, null, "x"], "b": {}}"#).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"a": [1, -2, 3.5, true, null, "x"], "b": {}})
        );
        assert_eq!(
            parse_unique_keys(b"{} x").unwrap_err().status().as_u16(),
            400
        );
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            parse_unique_keys(deep.as_bytes())
                .unwrap_err()
                .status()
                .as_u16(),
            400
        );
    }

    #[test]
    fn malformed_json_and_non_objects_are_distinguished() {
        assert_eq!(Fields::parse(b"{").unwrap_err().status().as_u16(), 400);
        assert_eq!(Fields::parse(b"[1]").unwrap_err().status().as_u16(), 422);
    }
}
