//! Playbook executions: `GET /api/v1/executions?rule_id=&template_id=&status=&limit=`,
//! `GET /api/v1/executions/{id}` (progress, step by step, as it happens), and the
//! approver's `POST /api/v1/executions/{id}/approve|reject`: with the single-use token the
//! approval request carried (`{"token": …}`; a wrong token is 403, an expired one 410, a
//! used one or a run not waiting 409), or with an empty body by a user signed in with the
//! approver role (the dashboard's buttons) — the route policy has checked the role, and
//! the token is spent either way.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, Principal};
use sightline_model::{ExecutionStatus, ValidationError};
use sightline_store::ExecutionQuery;

use super::items::Items;
use super::params::{self, reject_unknown};
use super::responses::{Responses, respond_error, run_actor};
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};

/// The execution routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/executions", list)
        .get("/api/v1/executions/{id}", get_one)
        .post("/api/v1/executions/{id}/approve", approve)
        .post("/api/v1/executions/{id}/reject", reject)
}

/// List playbook runs.
#[utoipa::path(
    get,
    path = "/api/v1/executions",
    tag = "executions",
    params(
        ("rule_id" = Option<String>, Query, description = "Only runs fired by this trigger rule."),
        ("template_id" = Option<String>, Query, description = "Only runs of this playbook."),
        ("status" = Option<String>, Query, description = "Comma list of statuses."),
        ("limit" = Option<u32>, Query, description = "At most this many (default 50, at most 1000)."),
    ),
    responses(
        (status = 200, description = "Runs, newest first.", body = Items<sightline_model::Execution>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &["rule_id", "template_id", "status", "limit"])?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let statuses = match get("status") {
        None => Vec::new(),
        Some(raw) => raw
            .split(',')
            .map(|s| ExecutionStatus::parse("status", s.trim()).map_err(ApiError::BadParameter))
            .collect::<Result<_, _>>()?,
    };
    let items = state
        .store
        .query_executions(&ExecutionQuery {
            rule_id: get("rule_id").map(str::to_owned),
            template_id: get("template_id").map(str::to_owned),
            statuses,
            limit: params::limit(get("limit"))?,
        })
        .await?;
    Ok(Json(Items { items }).into_response())
}

/// Get one playbook run.
#[utoipa::path(
    get,
    path = "/api/v1/executions/{id}",
    tag = "executions",
    params(
        ("id" = String, Path, description = "The execution id."),
    ),
    responses(
        (status = 200, description = "The run with its steps.", body = sightline_model::Execution),
        (status = 404, description = "No such run."),
    ),
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.get_execution(&id).await? {
        Some(e) => Ok(Json(e).into_response()),
        None => Err(ApiError::NotFound(format!("execution '{id}' not found"))),
    }
}

/// The approver's answer: the token from the approval request, or nothing when signed in
/// with the approver role.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ApprovalToken)]
struct Decision {
    /// The single-use token the approval request carried.
    #[serde(default)]
    token: Option<String>,
}

async fn decide(
    responses: &Responses,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    id: &str,
    body: &[u8],
    approve: bool,
) -> Result<Response, ApiError> {
    let decision: Decision = if body.iter().all(u8::is_ascii_whitespace) {
        Decision::default()
    } else {
        parse_json(body)?
    };
    let actor = run_actor(&Actor::principal(principal, ip));
    let engine = responses.0.engine();
    let decided = match decision.token.as_deref() {
        Some("") => {
            return Err(ApiError::Invalid(ValidationError::new(
                "token",
                "must not be empty",
            )));
        }
        Some(token) => engine.decide(id, token, approve, &actor).await,
        // Only a signed-in user decides by role: a key's scopes never include approving.
        None if matches!(principal, Principal::User { .. }) => {
            engine.decide_as_approver(id, approve, &actor).await
        }
        None => {
            return Err(ApiError::Invalid(ValidationError::new(
                "token",
                "required unless signed in as an approver",
            )));
        }
    };
    let execution = decided.map_err(respond_error)?;
    Ok(Json(execution).into_response())
}

/// Approve a paused run.
///
/// `POST /api/v1/executions/{id}/approve {token}`: resumes the paused run.
#[utoipa::path(
    post,
    path = "/api/v1/executions/{id}/approve",
    tag = "executions",
    params(
        ("id" = String, Path, description = "The execution id."),
    ),
    request_body = Decision,
    responses(
        (status = 200, description = "The run, resumed.", body = sightline_model::Execution),
        (status = 404, description = "No such run."),
        (status = 409, description = "The run is not waiting for approval."),
        (status = 410, description = "The approval token expired."),
    ),
)]
pub(crate) async fn approve(
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    decide(&responses, &principal, ip, &id, &body, true).await
}

/// Reject a paused run.
///
/// `POST /api/v1/executions/{id}/reject {token}`: ends the paused run as `rejected`.
#[utoipa::path(
    post,
    path = "/api/v1/executions/{id}/reject",
    tag = "executions",
    params(
        ("id" = String, Path, description = "The execution id."),
    ),
    request_body = Decision,
    responses(
        (status = 200, description = "The run, ended as `rejected`.", body = sightline_model::Execution),
        (status = 404, description = "No such run."),
        (status = 409, description = "The run is not waiting for approval."),
        (status = 410, description = "The approval token expired."),
    ),
)]
pub(crate) async fn reject(
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    decide(&responses, &principal, ip, &id, &body, false).await
}
