//! Administration: users, API keys and the audit trail (admin only, per the policy table).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, KeyRequest, Principal};
use sightline_model::{Role, Scope, Secret};
use sightline_store::AuditQuery;

use super::items::Items;
use super::params::{self, reject_unknown};
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};

/// The administration routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/users", list_users)
        .post("/api/v1/users", create_user)
        .patch("/api/v1/users/{username}", update_user)
        .get("/api/v1/keys", list_keys)
        .post("/api/v1/keys", create_key)
        .delete("/api/v1/keys/{id}", revoke_key)
        .get("/api/v1/audit", audit)
}

fn actor(principal: &Principal, ClientIp(ip): ClientIp) -> Actor {
    Actor::principal(principal, ip)
}

/// List users.
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "admin",
    responses(
        (status = 200, description = "Every user (without password hashes).", body = Items<sightline_model::User>),
    ),
)]
pub(crate) async fn list_users(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(Items {
        items: state.auth.list_users().await?,
    })
    .into_response())
}

/// `POST /api/v1/users`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    #[schema(value_type = String, format = Password)]
    password: Secret,
    role: Role,
}

/// Create a user.
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "admin",
    request_body = NewUser,
    responses(
        (status = 201, description = "The user.", body = sightline_model::User),
        (status = 400, description = "Invalid username or password."),
        (status = 409, description = "The username is taken."),
    ),
)]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ip): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let NewUser {
        username,
        password,
        role,
    } = parse_json(&body)?;
    let user = state
        .auth
        .create_user(&username, password.expose(), role, &actor(&principal, ip))
        .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

/// `PATCH /api/v1/users/{username}`: the fields to change.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    role: Option<Role>,
    disabled: Option<bool>,
    #[schema(value_type = Option<String>, format = Password)]
    password: Option<Secret>,
}

/// Change a user's role, password or disabled flag.
#[utoipa::path(
    patch,
    path = "/api/v1/users/{username}",
    tag = "admin",
    params(
        ("username" = String, Path, description = "The login name."),
    ),
    request_body = UserPatch,
    responses(
        (status = 200, description = "The user as stored.", body = sightline_model::User),
        (status = 404, description = "No such user."),
    ),
)]
pub(crate) async fn update_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ip): Extension<ClientIp>,
    Path(username): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let patch: UserPatch = parse_json(&body)?;
    let user = state
        .auth
        .update_user(
            &username,
            patch.role,
            patch.disabled,
            patch.password.as_ref().map(Secret::expose),
            &actor(&principal, ip),
        )
        .await?;
    Ok(Json(user).into_response())
}

/// List API keys.
#[utoipa::path(
    get,
    path = "/api/v1/keys",
    tag = "admin",
    responses(
        (status = 200, description = "Every API key (public descriptions; never the secret).", body = Items<sightline_model::ApiKey>),
    ),
)]
pub(crate) async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(Items {
        items: state.auth.list_keys().await?,
    })
    .into_response())
}

/// `POST /api/v1/keys`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<Scope>,
    #[serde(default)]
    allowed_ips: Vec<String>,
    rate_per_minute: Option<u32>,
}

/// Create an API key.
#[utoipa::path(
    post,
    path = "/api/v1/keys",
    tag = "admin",
    request_body = NewKey,
    responses(
        (status = 201, description = "The key with its secret `token`, shown this once.", body = Object),
    ),
)]
pub(crate) async fn create_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ip): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let NewKey {
        name,
        scopes,
        allowed_ips,
        rate_per_minute,
    } = parse_json(&body)?;
    let request = KeyRequest {
        name,
        scopes,
        allowed_ips,
        rate_per_minute,
    };
    let created = state
        .auth
        .create_key(request, &actor(&principal, ip))
        .await?;
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(created),
    )
        .into_response())
}

/// Revoke an API key.
#[utoipa::path(
    delete,
    path = "/api/v1/keys/{id}",
    tag = "admin",
    params(
        ("id" = String, Path, description = "The key id."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 404, description = "No such key."),
    ),
)]
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ip): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.revoke_key(&id, &actor(&principal, ip)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Read the audit trail.
///
/// `GET /api/v1/audit?actor=&action=&from=&to=&hours=&limit=&cursor=`, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "admin",
    params(
        ("actor" = Option<String>, Query, description = "Only entries of this actor (username or key id)."),
        ("action" = Option<String>, Query, description = "Only actions starting with this prefix, e.g. `user.`."),
        ("from" = Option<String>, Query, description = "Start of the time range (inclusive): epoch ms or RFC 3339."),
        ("to" = Option<String>, Query, description = "End of the time range (exclusive): epoch ms or RFC 3339."),
        ("hours" = Option<f64>, Query, description = "The last N hours (`from` = now − N h)."),
        ("limit" = Option<u32>, Query, description = "Page size, at least 1 (default 50; above 1000 capped to 1000)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "Entries, newest first, keyset-paginated.", body = sightline_store::Page<sightline_model::AuditEntry>),
    ),
)]
pub(crate) async fn audit(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(
        &q,
        &["actor", "action", "from", "to", "hours", "limit", "cursor"],
    )?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let (since, until) = params::requested_range(&q)?;
    let query = AuditQuery {
        actor: get("actor").map(str::to_owned),
        action_prefix: get("action").map(str::to_owned),
        since,
        until,
        limit: params::limit(get("limit"))?,
        cursor: params::cursor(get("cursor"))?,
    };
    Ok(Json(state.store.query_audit(&query).await?).into_response())
}
