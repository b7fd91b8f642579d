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

async fn list_users(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "items": state.auth.list_users().await? })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: Secret,
    role: Role,
}

async fn create_user(
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    role: Option<Role>,
    disabled: Option<bool>,
    password: Option<Secret>,
}

async fn update_user(
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

async fn list_keys(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(serde_json::json!({ "items": state.auth.list_keys().await? })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    scopes: Vec<Scope>,
    #[serde(default)]
    allowed_ips: Vec<String>,
    rate_per_minute: Option<u32>,
}

async fn create_key(
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

async fn revoke_key(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ip): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.auth.revoke_key(&id, &actor(&principal, ip)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/v1/audit?actor=&action=&from=&to=&hours=&limit=&cursor=`, newest first.
async fn audit(
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
