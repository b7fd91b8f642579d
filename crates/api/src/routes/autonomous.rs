//! The autonomous response service (the AI event-driven spec's routes):
//! `POST /api/v1/autonomous/analyze` decides what to do about an event or incident and logs
//! the decision; `POST /api/v1/autonomous/execute` runs one of its recommended playbooks
//! through the engine and the safety controller (a run too risky to start alone waits for
//! approval; calling again with the `approval_token` the request carried approves it);
//! `GET /api/v1/autonomous/decisions?event_id=&incident_id=&timerange=7d&limit=` lists the
//! decision log; `POST /api/v1/autonomous/feedback` records how a decision turned out.
//! Decisions, executions and feedback are appended to the audit trail.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, Principal};
use sightline_model::ValidationError;
use sightline_respond::decision::{AnalysisContext, ExecutionOptions, SubjectRef};
use sightline_store::DecisionQuery;

use super::items::Items;
use super::params::{self, reject_unknown};
use super::responses::{Responses, respond_error, run_actor};
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};
use sightline_model::clock::now_ms;

/// The autonomous routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .post("/api/v1/autonomous/analyze", analyze)
        .post("/api/v1/autonomous/execute", execute)
        .get("/api/v1/autonomous/decisions", decisions)
        .post("/api/v1/autonomous/feedback", feedback)
}

fn invalid(field: &str, reason: &str) -> ApiError {
    ApiError::Invalid(ValidationError::new(field, reason))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AnalyzeBody {
    event_id: Option<String>,
    incident_id: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    context: AnalysisContext,
}

/// Decide how to respond to an event or incident.
#[utoipa::path(
    post,
    path = "/api/v1/autonomous/analyze",
    tag = "autonomous",
    request_body = AnalyzeBody,
    responses(
        (status = 201, description = "The decision with its recommended actions.", body = sightline_model::Decision),
        (status = 404, description = "No such event or incident."),
        (status = 422, description = "Give exactly one of `event_id` or `incident_id`."),
    ),
)]
pub(crate) async fn analyze(
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let request: AnalyzeBody = parse_json(&body)?;
    let subject = match (request.event_id, request.incident_id) {
        (Some(id), None) if !id.is_empty() => SubjectRef::Event(id),
        (None, Some(id)) if !id.is_empty() => SubjectRef::Incident(id),
        _ => return Err(invalid("$", "give exactly one of event_id or incident_id")),
    };
    let actor = Actor::principal(&principal, ip);
    let decision = responses
        .0
        .analyze(&subject, &request.context, &run_actor(&actor))
        .await
        .map_err(respond_error)?;
    Ok((StatusCode::CREATED, Json(decision)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    decision_id: String,
    action_id: String,
    #[serde(default)]
    approval_token: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    execution_options: ExecutionOptions,
}

/// Run a decision's recommended action.
#[utoipa::path(
    post,
    path = "/api/v1/autonomous/execute",
    tag = "autonomous",
    request_body = ExecuteBody,
    responses(
        (status = 202, description = "The execution, started (or paused for approval).", body = sightline_model::Execution),
        (status = 404, description = "No such decision or action."),
        (status = 409, description = "Refused by the safety controller."),
    ),
)]
pub(crate) async fn execute(
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let request: ExecuteBody = parse_json(&body)?;
    if request.decision_id.is_empty() {
        return Err(invalid("decision_id", "must not be empty"));
    }
    if request.action_id.is_empty() {
        return Err(invalid("action_id", "must not be empty"));
    }
    let actor = Actor::principal(&principal, ip);
    let execution = responses
        .0
        .execute(
            &request.decision_id,
            &request.action_id,
            request.approval_token.as_deref().filter(|t| !t.is_empty()),
            request.execution_options,
            &run_actor(&actor),
        )
        .await
        .map_err(respond_error)?;
    Ok((StatusCode::ACCEPTED, Json(execution)).into_response())
}

/// List decisions.
#[utoipa::path(
    get,
    path = "/api/v1/autonomous/decisions",
    tag = "autonomous",
    params(
        ("event_id" = Option<String>, Query, description = "Only decisions about this event."),
        ("incident_id" = Option<String>, Query, description = "Only decisions about this incident."),
        ("timerange" = Option<String>, Query, description = "How far back, e.g. `24h`."),
        ("limit" = Option<u32>, Query, description = "At most this many (default 50, at most 1000)."),
    ),
    responses(
        (status = 200, description = "Decisions, newest first.", body = Items<sightline_model::Decision>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn decisions(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &["event_id", "incident_id", "timerange", "limit"])?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let since = get("timerange")
        .map(|raw| params::duration_ms("timerange", raw))
        .transpose()?
        .map(|ms| now_ms() - ms);
    let items = state
        .store
        .query_decisions(&DecisionQuery {
            event_id: get("event_id").map(str::to_owned),
            incident_id: get("incident_id").map(str::to_owned),
            since,
            limit: params::limit(get("limit"))?,
        })
        .await?;
    Ok(Json(Items { items }).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = DecisionFeedback)]
struct FeedbackBody {
    decision_id: String,
    /// How it turned out (`resolved`, `false_positive`, `made_worse`, …).
    outcome: String,
    #[serde(default)]
    helpful: Option<bool>,
    #[serde(default)]
    comment: Option<String>,
}

/// Record how a decision turned out.
#[utoipa::path(
    post,
    path = "/api/v1/autonomous/feedback",
    tag = "autonomous",
    request_body = FeedbackBody,
    responses(
        (status = 200, description = "The decision with its feedback.", body = sightline_model::Decision),
        (status = 404, description = "No such decision."),
        (status = 422, description = "An invalid outcome or comment."),
    ),
)]
pub(crate) async fn feedback(
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let request: FeedbackBody = parse_json(&body)?;
    if request.outcome.trim().is_empty() || request.outcome.len() > 64 {
        return Err(invalid("outcome", "must be 1-64 characters"));
    }
    if request.comment.as_ref().is_some_and(|c| c.len() > 4000) {
        return Err(invalid("comment", "longer than 4000 bytes"));
    }
    let actor = Actor::principal(&principal, ip);
    let feedback = serde_json::json!({
        "outcome": request.outcome.trim(), "helpful": request.helpful,
        "comment": request.comment, "by": actor.name, "at": now_ms(),
    });
    let decision = responses
        .0
        .feedback(&request.decision_id, &feedback, &run_actor(&actor))
        .await
        .map_err(respond_error)?;
    Ok(Json(decision).into_response())
}
