//! Playbook executions: `GET /api/v1/executions?rule_id=&template_id=&status=&limit=`,
//! `GET /api/v1/executions/{id}` (progress, step by step, as it happens), and the
//! approver's `POST /api/v1/executions/{id}/approve|reject {token}` with the single-use
//! token the approval request carried (a wrong token is 403, an expired one 410, a used
//! one or a run not waiting 409).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, Principal};
use sightline_model::{ExecutionStatus, ValidationError};
use sightline_store::ExecutionQuery;

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

async fn list(
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
    Ok(Json(serde_json::json!({ "items": items })).into_response())
}

async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.get_execution(&id).await? {
        Some(e) => Ok(Json(e).into_response()),
        None => Err(ApiError::NotFound(format!("execution '{id}' not found"))),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    token: String,
}

async fn decide(
    responses: &Responses,
    principal: &Principal,
    ip: Option<std::net::IpAddr>,
    id: &str,
    body: &[u8],
    approve: bool,
) -> Result<Response, ApiError> {
    let decision: Decision = parse_json(body)?;
    if decision.token.is_empty() {
        return Err(ApiError::Invalid(ValidationError::new(
            "token",
            "must not be empty",
        )));
    }
    let actor = Actor::principal(principal, ip);
    let execution = responses
        .0
        .engine()
        .decide(id, &decision.token, approve, &run_actor(&actor))
        .await
        .map_err(respond_error)?;
    Ok(Json(execution).into_response())
}

/// `POST /api/v1/executions/{id}/approve {token}`: resumes the paused run.
async fn approve(
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    decide(&responses, &principal, ip, &id, &body, true).await
}

/// `POST /api/v1/executions/{id}/reject {token}`: ends the paused run as `rejected`.
async fn reject(
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    decide(&responses, &principal, ip, &id, &body, false).await
}
