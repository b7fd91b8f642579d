//! Root-cause analyses (the LiveOps paths, under `/api/v1` and the `/api` aliases): the
//! analysis of an incident, on-demand (re-)analysis, and operators' feedback.
//!
//! Reads try the cache (`analysis:{incidentId}`) first and fall back to the store. A
//! forced generation runs the same analyst code the analyst runner runs
//! ([`sightline_analyst::Analyst`]), in this process, then stores, publishes
//! (`analysis.completed`) and caches the result like the runner does. Feedback is stored
//! and audited; the analyst uses it to prefer confirmed root causes later.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, Principal};
use sightline_log::Record;
use sightline_model::clock::now_ms;
use sightline_model::{Analysis, Feedback, FeedbackVerdict, ValidationError, topics};

use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};

/// Longest feedback note, in characters.
const MAX_NOTES: usize = 4_000;
/// Longest incident id accepted, in characters.
const MAX_ID: usize = 256;

/// The analysis routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/analysis/{incident_id}", get_one)
        .get("/api/analysis/{incident_id}", get_one)
        .post("/api/v1/analysis/generate", generate)
        .post("/api/analysis/generate", generate)
        .post("/api/v1/analysis/{analysis_id}/feedback", feedback)
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Invalid(ValidationError::new(field, reason))
}

/// The cached analysis of an incident, if the cache has a readable one.
async fn cached(state: &AppState, incident_id: &str) -> Option<Analysis> {
    let key = sightline_cache::keys::analysis(incident_id);
    match state.cache.get(&key).await {
        Ok(Some(text)) => serde_json::from_str(&text).ok(),
        Ok(None) => None,
        Err(error) => {
            tracing::debug!(%error, key, "analysis cache unavailable; reading the store");
            None
        }
    }
}

/// The latest analysis of an incident: cache, then store.
async fn latest(state: &AppState, incident_id: &str) -> Result<Option<Analysis>, ApiError> {
    if let Some(a) = cached(state, incident_id).await {
        return Ok(Some(a));
    }
    let stored = state.store.latest_analysis(incident_id).await?;
    if let Some(a) = &stored {
        sightline_analyst::runner::cache(
            Some(state.cache.as_ref()),
            a,
            sightline_cache::keys::ANALYSIS_TTL,
        )
        .await;
    }
    Ok(stored)
}

/// An incident's latest root-cause analysis.
///
/// `GET /api/v1/analysis/{incidentId}`: the incident's latest analysis (404 when it has
/// none yet).
#[utoipa::path(
    get,
    path = "/api/v1/analysis/{incident_id}",
    tag = "analysis",
    params(
        ("incident_id" = String, Path, description = "The incident id."),
    ),
    responses(
        (status = 200, description = "The analysis.", body = sightline_model::Analysis),
        (status = 404, description = "The incident has no analysis yet."),
    ),
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(incident_id): Path<String>,
) -> Result<Response, ApiError> {
    match latest(&state, &incident_id).await? {
        Some(a) => Ok(Json(a).into_response()),
        None => Err(ApiError::NotFound(format!(
            "no analysis for incident '{incident_id}' yet"
        ))),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = GenerateAnalysis)]
struct Generate {
    incident_id: String,
    #[serde(default)]
    force: bool,
}

/// Generate a root-cause analysis.
///
/// `POST /api/v1/analysis/generate {incident_id, force?}`: without `force`, the existing
/// analysis (200) or, when there is none, a new one (201); with `force`, a new analysis
/// now (201). New analyses are stored, published on `analysis.completed` and cached.
#[utoipa::path(
    post,
    path = "/api/v1/analysis/generate",
    tag = "analysis",
    request_body = Generate,
    responses(
        (status = 200, description = "The existing analysis (without `force`).", body = sightline_model::Analysis),
        (status = 201, description = "A new analysis.", body = sightline_model::Analysis),
        (status = 404, description = "No such incident."),
        (status = 422, description = "An invalid field."),
    ),
)]
pub(crate) async fn generate(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let request: Generate = parse_json(&body)?;
    let incident_id = request.incident_id.trim();
    if incident_id.is_empty() {
        return Err(invalid("incident_id", "must not be empty"));
    }
    if incident_id.chars().count() > MAX_ID {
        return Err(invalid(
            "incident_id",
            format!("longer than {MAX_ID} characters"),
        ));
    }
    if !request.force
        && let Some(a) = latest(&state, incident_id).await?
    {
        return Ok(Json(a).into_response());
    }
    let incident = state
        .store
        .get_incident(incident_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident with id '{incident_id}'")))?;
    let now = now_ms();
    let mut analysis = state
        .analyst
        .analyze(&incident, now)
        .await
        .map_err(|e| ApiError::Internal(format!("analysing incident '{incident_id}': {e}")))?;
    if request.force {
        // A forced analysis is a new one even for an unchanged incident version.
        analysis.id = Analysis::id_for(&incident.id, now.max(incident.updated_at + 1));
    }
    state.store.upsert_analysis(&analysis).await?;
    let actor = Actor::principal(&principal, ip);
    state
        .auth
        .record(
            &actor,
            "analysis.generate",
            Some(&analysis.id),
            serde_json::json!({"incident_id": incident.id, "force": request.force}),
        )
        .await;
    let value = serde_json::to_vec(&analysis)
        .map_err(|e| ApiError::Internal(format!("encoding analysis: {e}")))?;
    let record = Record::new(Some(&analysis.incident_id), value, analysis.created_at);
    if let Err(error) = state
        .log
        .append(topics::ANALYSIS_COMPLETED, vec![record])
        .await
    {
        tracing::error!(%error, id = %analysis.id, "publishing analysis failed");
        return Err(ApiError::Unavailable {
            reason: format!(
                "analysis '{}' was stored but could not be published on {}: the event log \
                 is unavailable",
                analysis.id,
                topics::ANALYSIS_COMPLETED
            ),
            retry_after: 5,
        });
    }
    sightline_analyst::runner::cache(
        Some(state.cache.as_ref()),
        &analysis,
        sightline_cache::keys::ANALYSIS_TTL,
    )
    .await;
    Ok((StatusCode::CREATED, Json(analysis)).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AnalysisFeedback)]
struct FeedbackBody {
    verdict: String,
    #[serde(default)]
    notes: Option<String>,
}

/// Give feedback on an analysis.
///
/// `POST /api/v1/analysis/{analysisId}/feedback {verdict: helpful|not_helpful|incorrect,
/// notes?}`: 201 with the stored feedback; audited.
#[utoipa::path(
    post,
    path = "/api/v1/analysis/{analysis_id}/feedback",
    tag = "analysis",
    params(
        ("analysis_id" = String, Path, description = "The analysis id."),
    ),
    request_body = FeedbackBody,
    responses(
        (status = 201, description = "The stored feedback.", body = sightline_model::Feedback),
        (status = 404, description = "No such analysis."),
        (status = 422, description = "An invalid verdict or notes."),
    ),
)]
pub(crate) async fn feedback(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(analysis_id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let request: FeedbackBody = parse_json(&body)?;
    let verdict = FeedbackVerdict::parse("verdict", &request.verdict).map_err(ApiError::Invalid)?;
    let notes = request.notes.unwrap_or_default().trim().to_owned();
    if notes.chars().count() > MAX_NOTES {
        return Err(invalid(
            "notes",
            format!("longer than {MAX_NOTES} characters"),
        ));
    }
    let analysis = state
        .store
        .get_analysis(&analysis_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no analysis with id '{analysis_id}'")))?;
    let actor = Actor::principal(&principal, ip);
    let feedback = Feedback {
        analysis_id: analysis.id.clone(),
        incident_id: analysis.incident_id.clone(),
        verdict,
        notes,
        author: actor.name.clone(),
        created_at: now_ms(),
    };
    state.store.add_feedback(&feedback).await?;
    state
        .auth
        .record(
            &actor,
            "analysis.feedback",
            Some(&analysis.id),
            serde_json::json!({
                "incident_id": analysis.incident_id,
                "verdict": verdict.as_str(),
                "root_cause_service": analysis.root_cause_service,
            }),
        )
        .await;
    Ok((StatusCode::CREATED, Json(feedback)).into_response())
}
