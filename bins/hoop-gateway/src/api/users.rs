//! Users, groups and API tokens. Members of the `admin` group administer;
//! everyone else reads.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::Method;
use axum::routing::{delete, get, post};
use serde_json::{Value, json};

use super::input::Fields;
use super::names;
use super::{ADMIN_GROUP, Access, ApiError, ApiResult, AppState, Caller, Route, route};
use crate::crypto;
use crate::store::{StoreError, TokenRecord, UserRecord};

pub(super) fn routes() -> Vec<Route> {
    vec![
        route(
            Method::GET,
            "/api/userinfo",
            "The caller",
            Access::User,
            None,
            Some("User"),
            200,
            get(userinfo),
        ),
        route(
            Method::GET,
            "/api/users",
            "List users",
            Access::Admin,
            None,
            Some("User"),
            200,
            get(list),
        ),
        route(
            Method::POST,
            "/api/users",
            "Create a user",
            Access::Admin,
            Some("UserRequest"),
            Some("User"),
            201,
            post(create),
        ),
        route(
            Method::GET,
            "/api/users/{id_or_email}",
            "One user",
            Access::Admin,
            None,
            Some("User"),
            200,
            get(show),
        ),
        route(
            Method::PUT,
            "/api/users/{id_or_email}",
            "Replace a user's name, status and groups",
            Access::Admin,
            Some("UserRequest"),
            Some("User"),
            200,
            axum::routing::put(replace),
        ),
        route(
            Method::DELETE,
            "/api/users/{id_or_email}",
            "Remove a user and their tokens",
            Access::Admin,
            None,
            None,
            204,
            delete(remove),
        ),
        route(
            Method::GET,
            "/api/users/groups",
            "List groups",
            Access::User,
            None,
            None,
            200,
            get(list_groups),
        ),
        route(
            Method::POST,
            "/api/users/groups",
            "Create a group",
            Access::Admin,
            Some("GroupRequest"),
            None,
            201,
            post(create_group),
        ),
        route(
            Method::DELETE,
            "/api/users/groups/{name}",
            "Remove a group",
            Access::Admin,
            None,
            None,
            204,
            delete(remove_group),
        ),
        route(
            Method::GET,
            "/api/tokens",
            "List API tokens (never their values)",
            Access::Admin,
            None,
            Some("Token"),
            200,
            get(list_tokens),
        ),
        route(
            Method::POST,
            "/api/tokens",
            "Issue an API token for a user; the value is shown once",
            Access::Admin,
            Some("TokenRequest"),
            Some("Token"),
            201,
            post(create_token),
        ),
        route(
            Method::DELETE,
            "/api/tokens/{id}",
            "Revoke an API token",
            Access::Admin,
            None,
            None,
            204,
            delete(remove_token),
        ),
    ]
}

fn user_json(user: &UserRecord) -> Value {
    json!({
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "status": user.status,
        "groups": user.groups,
        "role": if user.groups.iter().any(|g| g == ADMIN_GROUP) { "admin" } else { "standard" },
    })
}

fn token_json(token: &TokenRecord) -> Value {
    json!({"id": token.id, "name": token.name, "user_id": token.user_id})
}

async fn userinfo(caller: Caller) -> ApiResult {
    super::ok(&user_json(&caller.user))
}

async fn list(State(state): State<AppState>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let users = state.store.list_users().await?;
    super::ok(&Value::Array(users.iter().map(user_json).collect()))
}

async fn find(state: &AppState, id: &str) -> Result<UserRecord, ApiError> {
    state
        .store
        .find_user(id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))
}

/// Reads the fields of a user body onto `user`.
async fn apply_body(state: &AppState, user: &mut UserRecord, body: &[u8]) -> Result<(), ApiError> {
    let mut fields = Fields::parse(body)?;
    fields.take("id");
    fields.take("role");
    let email = fields.required_string("email")?;
    names::email("email", &email)?;
    let name = fields.string("name")?.unwrap_or_default();
    if !name.is_empty() {
        names::label("name", &name)?;
    }
    let status = fields.string("status")?.unwrap_or_else(|| "active".into());
    if status != "active" && status != "inactive" {
        return Err(ApiError::invalid("status", "must be active or inactive"));
    }
    let groups = fields.strings("groups")?.unwrap_or_default();
    fields.finish()?;
    let known = state.store.list_groups().await?;
    if let Some(unknown) = groups.iter().find(|g| !known.contains(g)) {
        return Err(ApiError::invalid(
            "groups",
            format!("no such group {unknown}"),
        ));
    }
    user.email = email;
    user.name = name;
    user.status = status;
    user.groups = groups;
    Ok(())
}

fn email_conflict(error: StoreError) -> ApiError {
    match error {
        StoreError::Conflict => ApiError::conflict("a user with this e-mail exists"),
        other => other.into(),
    }
}

async fn create(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    let mut user = UserRecord {
        id: crypto::new_id()?,
        email: String::new(),
        name: String::new(),
        status: String::new(),
        groups: Vec::new(),
        created_at: crate::store::now(),
    };
    apply_body(&state, &mut user, &body).await?;
    state
        .store
        .insert_user(&user)
        .await
        .map_err(email_conflict)?;
    super::created(&user_json(&user))
}

async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_admin()?;
    super::ok(&user_json(&find(&state, &id).await?))
}

async fn replace(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require_admin()?;
    let mut user = find(&state, &id).await?;
    apply_body(&state, &mut user, &body).await?;
    if user.id == caller.user.id && !user.groups.iter().any(|g| g == ADMIN_GROUP) {
        return Err(ApiError::invalid(
            "groups",
            "an administrator cannot remove themselves from admin",
        ));
    }
    state
        .store
        .update_user(&user)
        .await
        .map_err(email_conflict)?;
    super::ok(&user_json(&user))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    let user = find(&state, &id).await?;
    if user.id == caller.user.id {
        return Err(ApiError::conflict(
            "an administrator cannot delete themselves",
        ));
    }
    state.store.delete_user(&user.id).await?;
    super::no_content()
}

async fn list_groups(State(state): State<AppState>, _caller: Caller) -> ApiResult {
    super::ok(&json!(state.store.list_groups().await?))
}

async fn create_group(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    let mut fields = Fields::parse(&body)?;
    let name = fields.required_string("name")?;
    fields.finish()?;
    names::identifier("name", &name)?;
    state.store.insert_group(&name).await.map_err(|e| match e {
        StoreError::Conflict => ApiError::conflict("the group exists"),
        other => other.into(),
    })?;
    super::created(&json!({"name": name}))
}

async fn remove_group(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    if name == ADMIN_GROUP {
        return Err(ApiError::conflict("the admin group cannot be removed"));
    }
    if !state.store.delete_group(&name).await? {
        return Err(ApiError::not_found("group"));
    }
    super::no_content()
}

async fn list_tokens(State(state): State<AppState>, caller: Caller) -> ApiResult {
    caller.require_admin()?;
    let tokens = state.store.list_tokens().await?;
    super::ok(&Value::Array(tokens.iter().map(token_json).collect()))
}

/// Issues a token for `user_id`; returns the record and the token's value.
pub(crate) async fn issue_token(
    state: &AppState,
    user_id: &str,
    name: &str,
    value: Option<String>,
) -> Result<(TokenRecord, String), ApiError> {
    let value = match value {
        Some(value) => value,
        None => crypto::new_token()?,
    };
    let record = TokenRecord {
        id: crypto::new_id()?,
        name: name.to_owned(),
        user_id: user_id.to_owned(),
        token_hash: crypto::hash_token(&value),
        created_at: crate::store::now(),
    };
    state.store.insert_token(&record).await?;
    Ok((record, value))
}

async fn create_token(State(state): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require_admin()?;
    let mut fields = Fields::parse(&body)?;
    let name = fields.required_string("name")?;
    let user = fields.required_string("user_id")?;
    fields.finish()?;
    names::label("name", &name)?;
    let user = state
        .store
        .find_user(&user)
        .await?
        .ok_or_else(|| ApiError::invalid("user_id", "no such user"))?;
    let (record, value) = issue_token(&state, &user.id, &name, None).await?;
    let mut body = token_json(&record);
    body["token"] = Value::String(value);
    super::created(&body)
}

async fn remove_token(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult {
    caller.require_admin()?;
    if !state.store.delete_token(&id).await? {
        return Err(ApiError::not_found("token"));
    }
    super::no_content()
}
