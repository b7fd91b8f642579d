//! Ingestion routes: events (single, batch, webhook) and metrics. Each answers 202 only
//! after the accepted items are durable in the event log.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use std::collections::HashMap;

use sightline_ingest::{BatchReport, BodyShape, IngestError, ItemOutcome, Kind};
use sightline_model::ValidationError;

use super::params::bad;
use crate::body::LimitedBody;
use crate::request_id::CorrelationId;
use crate::{ApiError, AppState};

/// The ingestion routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", post(single_event))
        .route("/api/v1/events/batch", post(batch))
        .route("/api/v1/events/webhook", post(webhook))
        .route("/api/v1/metrics", post(metrics))
        .route("/api/metrics", post(metrics))
}

/// `?atomic=true|false`: refuse the whole batch when any item is invalid.
fn atomic(params: &HashMap<String, String>) -> Result<bool, ApiError> {
    if let Some(unknown) = params.keys().find(|k| k.as_str() != "atomic") {
        return Err(bad(unknown, "unknown parameter; expected 'atomic'"));
    }
    match params.get("atomic").map(String::as_str) {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(bad("atomic", format!("'{other}' is not true or false"))),
    }
}

async fn single_event(
    State(state): State<AppState>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    if body.trim_ascii_start().first() == Some(&b'[') {
        return Err(ApiError::Malformed(ValidationError::new(
            "$",
            "expected one event object; send arrays or NDJSON to /api/v1/events/batch",
        )));
    }
    let report = match state
        .ingestor
        .ingest_shaped(Kind::SystemEvent, body, BodyShape::Single, &cid, true)
        .await
    {
        Ok(report) => report,
        // A document that is not JSON at all is a malformed body (400), not an invalid event.
        Err(IngestError::Rejected(report)) => return Err(document_error(report)),
        Err(e) => return Err(e.into()),
    };
    let event_id = report.results.into_iter().find_map(|r| match r {
        ItemOutcome::Accepted { event_id, .. } => event_id,
        ItemOutcome::Rejected { .. } => None,
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "status": "accepted", "event_id": event_id, "correlation_id": cid })),
    )
        .into_response())
}

async fn batch(
    State(state): State<AppState>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    Query(params): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let atomic = atomic(&params)?;
    let ndjson = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("ndjson") || ct.contains("jsonlines"));
    let shape = match sightline_model::decode::shape_of(&body) {
        BodyShape::Single if ndjson => BodyShape::Ndjson,
        other => other,
    };
    accepted(
        state
            .ingestor
            .ingest_shaped(Kind::SystemEvent, body, shape, &cid, atomic)
            .await?,
    )
}

async fn webhook(
    State(state): State<AppState>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    Query(params): Query<HashMap<String, String>>,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let atomic = atomic(&params)?;
    accepted(
        state
            .ingestor
            .ingest(Kind::Webhook, body, &cid, atomic)
            .await?,
    )
}

async fn metrics(
    State(state): State<AppState>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    Query(params): Query<HashMap<String, String>>,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let atomic = atomic(&params)?;
    accepted(
        state
            .ingestor
            .ingest(Kind::Metric, body, &cid, atomic)
            .await?,
    )
}

fn document_error(report: BatchReport) -> ApiError {
    match report.results.as_slice() {
        [ItemOutcome::Rejected { error, .. }] if error.field == "$" => {
            ApiError::Malformed(error.clone())
        }
        _ => ApiError::Rejected(report),
    }
}

fn accepted(report: BatchReport) -> Result<Response, ApiError> {
    Ok((StatusCode::ACCEPTED, Json(report)).into_response())
}
