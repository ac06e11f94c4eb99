//! The OpenAPI 3.1 document, built from the route list and the schemas
//! below.

use axum::http::Method;
use axum::routing::get;
use serde_json::{Map, Value, json};

use axum::extract::State;

use super::{Access, AppState, Caller, Route, RouteDoc, route};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/openapi.json",
            "This document",
            Access::Public,
            None,
            None,
            200,
            get(|| async { super::ok(&super::openapi_document()) }),
        ),
        route(
            Method::GET,
            "/api/healthz",
            "Liveness: the gateway answers",
            Access::Public,
            None,
            None,
            200,
            get(|| async { super::ok(&json!({"status": "ok"})) }),
        ),
        route(
            Method::GET,
            "/api/serverinfo",
            "This gateway: its version and, for hoop connect on the same host, its handoff socket",
            Access::User,
            None,
            Some("ServerInfo"),
            200,
            get(serverinfo),
        ),
    ]
}

async fn serverinfo(State(state): State<AppState>, _caller: Caller) -> super::ApiResult {
    let socket = state.connect_socket.as_deref();
    super::ok(&json!({
        "version": env!("CARGO_PKG_VERSION"),
        // A path that is not UTF-8 cannot be told in JSON; hoop connect
        // then tunnels.
        "connect_socket": socket.and_then(|s| s.path.to_str()),
        "instance_id": socket.map(|s| &s.instance_id),
    }))
}

/// Every schema: one `json!` holding them all passes the macro's
/// recursion limit.
fn all_schemas() -> Value {
    let mut all = schemas();
    if let (Value::Object(all), Value::Object(reviews)) = (&mut all, review_schemas()) {
        all.extend(reviews);
    }
    all
}

fn review_schemas() -> Value {
    let string = json!({"type": "string"});
    json!({
        "TimeWindow": {
            "type": "object",
            "description": "hours of the day (UTC) approved access is limited to",
            "properties": {"type": {"type": "string", "enum": ["time_range"]}, "start_time": string, "end_time": string},
            "required": ["type", "start_time", "end_time"], "additionalProperties": false
        },
        "Review": {
            "type": "object",
            "properties": {
                "id": string, "session": string,
                "type": {"type": "string", "enum": ["onetime", "jit"]},
                "status": {"type": "string", "enum": ["PENDING", "APPROVED", "REJECTED", "EXPIRED", "REVOKED", "PROCESSING", "EXECUTED"]},
                "connection": string, "connection_id": string, "requester": string, "requester_id": string,
                "input": string, "output": string, "exit_code": {"type": "integer"}, "error": string,
                "access_duration_sec": {"type": "integer"},
                "time_window": {"$ref": "#/components/schemas/TimeWindow"},
                "min_approvals": {"type": "integer"},
                "review_groups_data": {"type": "array", "items": {"type": "object", "properties": {
                    "group": string, "status": string, "reviewed_by": string,
                    "review_date": {"type": "integer"}, "forced_review": {"type": "boolean"}
                }}},
                "created_at": {"type": "integer"}, "updated_at": {"type": "integer"},
                "expires_at": {"type": "integer"}, "revoke_at": {"type": "integer"},
                "events": {"type": "array", "items": {"type": "object", "properties": {
                    "status": string, "actor": string, "forced": {"type": "boolean"}, "note": string, "at": {"type": "integer"}
                }}}
            }
        },
        "ReviewDecision": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["APPROVED", "REJECTED", "REVOKED"]},
                "force_review": {"type": "boolean"},
                "time_window": {"$ref": "#/components/schemas/TimeWindow"},
                "rejection_reason": string
            },
            "required": ["status"], "additionalProperties": false
        }
    })
}

fn schemas() -> Value {
    let string = json!({"type": "string"});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    let millis =
        json!({"type": "integer", "description": "milliseconds since the Unix epoch (UTC)"});
    let mode = json!({"type": "string", "enum": ["enabled", "disabled"]});
    // `api::names`: one rule per kind of name.
    let identifier = json!({"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", "description": "unique regardless of case"});
    let identifiers = json!({"type": "array", "items": identifier});
    let label = json!({"type": "string", "minLength": 1, "maxLength": 128, "description": "no control or invisible characters, no space at either end"});
    json!({
        "ServerInfo": {
            "type": "object",
            "properties": {
                "version": string,
                "connect_socket": {"type": ["string", "null"]},
                "instance_id": {"type": ["string", "null"]}
            },
            "required": ["version", "connect_socket", "instance_id"]
        },
        "Error": {
            "type": "object",
            "properties": {"message": string, "field": string},
            "required": ["message"]
        },
        "AgentRequest": {
            "type": "object",
            "properties": {"name": identifier, "mode": {"type": "string", "enum": ["standard", "embedded"]}},
            "required": ["name"],
            "additionalProperties": false
        },
        "Agent": {
            "type": "object",
            "properties": {
                "id": string, "name": string, "mode": string, "token": string,
                "status": {"type": "string", "enum": ["CONNECTED", "DISCONNECTED"]},
                "hostname": string, "version": string, "platform": string
            }
        },
        "GuardrailRequest": {
            "type": "object",
            "description": "rules in hoop's format (deny_words_list, pattern_match, each with an optional message) or hoop-masking's statement-aware rules",
            "properties": {
                "name": label, "description": {"type": "string", "maxLength": 4096},
                "input": {"type": "object", "properties": {"rules": {"type": "array", "items": {"type": "object"}}}},
                "output": {"type": "object", "properties": {"rules": {"type": "array", "items": {"type": "object"}}}}
            },
            "required": ["name"],
            "additionalProperties": false
        },
        "Guardrail": {
            "type": "object",
            "properties": {
                "id": string, "name": string, "description": string,
                "input": {"type": "object"}, "output": {"type": "object"},
                "created_at": millis, "updated_at": millis
            }
        },
        "ResourceRequest": {
            "type": "object",
            "properties": {"name": identifier, "type": string, "subtype": string, "agent_id": string},
            "required": ["name", "type"],
            "additionalProperties": false
        },
        "Resource": {
            "type": "object",
            "properties": {"id": string, "name": string, "type": string, "subtype": string, "agent_id": string}
        },
        "ConnectionRequest": {
            "type": "object",
            "properties": {
                "name": identifier,
                "type": {"type": "string", "enum": ["database", "application", "custom"]},
                "subtype": {"type": "string", "enum": ["postgres", "mysql", "mongodb", "mssql", "oracledb", "httpproxy", "tcp", "ssh"]},
                "agent_id": string,
                "resource_name": string,
                "command": strings,
                "secret": {"type": "object", "additionalProperties": {"type": "string", "contentEncoding": "base64"}},
                "access_mode_exec": mode,
                "access_mode_connect": mode,
                "access_mode_runbooks": mode,
                "redact_enabled": {"type": "boolean"},
                "redact_types": strings,
                "guardrail_rules": {"type": "array", "description": "rule objects, or ids of guardrail rule sets"},
                "reviewers": identifiers,
                "min_review_approvals": {"type": "integer", "minimum": 1},
                "tags": {"type": "array", "items": label}
            },
            "required": ["name", "type"],
            "additionalProperties": false
        },
        "Connection": {
            "type": "object",
            "description": "secret values are never returned: each key maps to an empty string",
            "properties": {
                "id": string, "name": string, "type": string, "subtype": string,
                "agent_id": string, "resource_name": string,
                "status": {"type": "string", "enum": ["online", "offline"]},
                "command": strings,
                "secret": {"type": "object", "additionalProperties": {"type": "string", "maxLength": 0}},
                "access_mode_exec": mode, "access_mode_connect": mode, "access_mode_runbooks": mode,
                "redact_enabled": {"type": "boolean"}, "redact_types": strings,
                "guardrail_rules": {"type": "array"}, "reviewers": strings,
                "min_review_approvals": {"type": "integer"}, "tags": strings
            }
        },
        "Plugin": {
            "type": "object",
            "properties": {
                "id": string, "name": string, "config": {"type": "object"},
                "connections": {"type": "array", "items": {"type": "object", "properties": {"id": string, "name": string, "config": strings}}}
            }
        },
        "PluginRequest": {
            "type": "object",
            "properties": {
                "name": string,
                "config": {
                    "type": "object",
                    "description": "dlp: hoop-masking's masking section without entities (transform, transforms, custom_entities, columns, date_of_birth_columns), compiled when written; other plugins: any object",
                },
                "connections": {"type": "array", "items": {"type": "object", "properties": {
                    "id": string,
                    "config": {"type": "array", "items": string, "description": "dlp: the entity types masked on the connection (built in or custom; empty: the default set)"},
                }}}
            },
            "additionalProperties": false
        },
        "User": {
            "type": "object",
            "properties": {"id": string, "email": string, "name": string, "status": string, "groups": strings}
        },
        "UserRequest": {
            "type": "object",
            "properties": {"email": {"type": "string", "format": "email", "maxLength": 254, "description": "ASCII; unique regardless of case"}, "name": label, "status": {"type": "string", "enum": ["active", "inactive"]}, "groups": identifiers},
            "required": ["email"],
            "additionalProperties": false
        },
        "GroupRequest": {
            "type": "object", "properties": {"name": identifier}, "required": ["name"], "additionalProperties": false
        },
        "Token": {
            "type": "object",
            "properties": {"id": string, "name": string, "user_id": string, "token": string}
        },
        "ExecRequest": {
            "type": "object",
            "properties": {
                "connection": string, "script": string, "output": {"type": "string", "enum": ["text", "json"]},
                "access_duration_sec": {"type": "integer", "minimum": 1, "description": "asks for connect access (a jit review) instead of running a script"},
                "time_window": {"$ref": "#/components/schemas/TimeWindow"}
            },
            "required": ["connection"], "additionalProperties": false
        },
        "ExecResult": {
            "type": "object",
            "properties": {
                "session_id": string, "output": string, "truncated": {"type": "boolean"},
                "status": {"type": "string", "enum": ["done", "failed", "refused"]},
                "error": string, "exit_code": {"type": "integer"}
            }
        },
        "Session": {
            "type": "object",
            "description": "who, which connection, how, when, and bytes each way; never results or secrets",
            "properties": {
                "id": string, "user": string, "user_id": string, "connection": string, "connection_id": string,
                "access_mode": {"type": "string", "enum": ["connect", "exec"]}, "protocol": string,
                "status": {"type": "string", "enum": ["open", "done", "failed", "refused"]},
                "error": string, "started_at": millis, "ended_at": millis,
                "bytes_in": {"type": "integer"}, "bytes_out": {"type": "integer"}
            }
        },
        "TokenRequest": {
            "type": "object", "properties": {"name": label, "user_id": string},
            "required": ["name", "user_id"], "additionalProperties": false
        }
    })
}

fn reference(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn operation(doc: &RouteDoc) -> Value {
    let error = json!({"content": {"application/json": {"schema": reference("Error")}}});
    let mut responses = Map::new();
    let success = match doc.response {
        Some(schema) => {
            json!({"description": "success", "content": {"application/json": {"schema": reference(schema)}}})
        }
        None => json!({"description": "success"}),
    };
    responses.insert(doc.success.to_string(), success);
    let mut describe = |code: &str, text: &str| {
        let mut entry = error.clone();
        entry["description"] = Value::String(text.to_owned());
        responses.insert(code.to_owned(), entry);
    };
    if doc.access != Access::Public {
        describe("401", "missing or invalid token");
    }
    if doc.access == Access::Admin {
        describe("403", "administrators only");
    }
    if doc.path.contains('{') {
        describe("404", "not found");
    }
    if doc.request.is_some() {
        describe("400", "malformed JSON");
        describe("413", "body too large");
        describe("422", "invalid field, named in `field`");
    }
    if doc.method == Method::POST || doc.method == Method::PUT || doc.method == Method::PATCH {
        describe("409", "the name exists");
    }
    let mut op = json!({
        "summary": doc.summary,
        "operationId": format!("{} {}", doc.method, doc.path),
        "responses": responses,
    });
    if doc.access != Access::Public {
        op["security"] = json!([{"bearer": []}]);
    }
    let parameters: Vec<Value> = doc
        .path
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
        .collect();
    if !parameters.is_empty() {
        op["parameters"] = Value::Array(parameters);
    }
    if let Some(schema) = doc.request {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": reference(schema)}}
        });
    }
    op
}

pub(super) fn document(docs: &[RouteDoc]) -> Value {
    let mut paths = Map::new();
    for doc in docs {
        let entry = paths
            .entry(doc.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        entry[doc.method.as_str().to_ascii_lowercase()] = operation(doc);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "hoop gateway API",
            "version": env!("CARGO_PKG_VERSION"),
        },
        "paths": paths,
        "components": {
            "schemas": all_schemas(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}
