//! Ingestion routes: events (single, batch, webhook) and metrics. Each answers 202 only
//! after the accepted items are durable in the event log.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use std::collections::HashMap;

use sightline_auth::WebhookHeaders;
use sightline_ingest::{BatchReport, BodyShape, IngestError, ItemOutcome, Kind};
use sightline_model::ValidationError;

use super::params::reject_unknown;
use crate::body::LimitedBody;
use crate::request_id::CorrelationId;
use crate::{ApiError, AppState};

/// The ingestion routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .post("/api/v1/events", single_event)
        .post("/api/v1/events/batch", many::<SYSTEM_EVENT>)
        .post("/api/v1/events/webhook", many::<WEBHOOK>)
        .post("/api/v1/metrics", many::<METRIC>)
        .post("/api/metrics", many::<METRIC>)
}

// Route kinds as const parameters, so one handler serves every multi-item route.
const SYSTEM_EVENT: u8 = 0;
const WEBHOOK: u8 = 1;
const METRIC: u8 = 2;

fn kind_of(k: u8) -> Kind {
    match k {
        WEBHOOK => Kind::Webhook,
        METRIC => Kind::Metric,
        _ => Kind::SystemEvent,
    }
}

/// `?atomic=true|false`: refuse the whole batch when any item is invalid.
fn atomic(params: &HashMap<String, String>) -> Result<bool, ApiError> {
    reject_unknown(params, &["atomic"])?;
    match params.get("atomic").map(String::as_str) {
        None | Some("false" | "0" | "") => Ok(false),
        Some("true" | "1") => Ok(true),
        Some(other) => Err(super::params::bad(
            "atomic",
            format!("'{other}' is not true or false"),
        )),
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

/// One document, a JSON array or NDJSON (detected, or declared by an `ndjson` content type).
async fn many<const KIND: u8>(
    State(state): State<AppState>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    Query(params): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    if KIND == WEBHOOK {
        // Before anything reads the body: an unsigned or tampered delivery is a 401, even
        // when it is not valid JSON.
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signed = WebhookHeaders {
            id: text("webhook-id"),
            timestamp: text("webhook-timestamp"),
            signature: text("webhook-signature"),
            hub_signature: text("x-hub-signature-256"),
            delivery: text("x-github-delivery"),
        };
        state.auth.verify_webhook(&signed, &body)?;
    }
    let atomic = atomic(&params)?;
    let ndjson = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("ndjson") || ct.contains("jsonlines"));
    let shape = match sightline_model::decode::shape_of(&body) {
        BodyShape::Single if ndjson => BodyShape::Ndjson,
        other => other,
    };
    let report = state
        .ingestor
        .ingest_shaped(kind_of(KIND), body, shape, &cid, atomic)
        .await?;
    Ok((StatusCode::ACCEPTED, Json(report)).into_response())
}

fn document_error(report: BatchReport) -> ApiError {
    match report.results.as_slice() {
        [ItemOutcome::Rejected { error, .. }] if error.field == "$" => {
            ApiError::Malformed(error.clone())
        }
        _ => ApiError::Rejected(report),
    }
}
