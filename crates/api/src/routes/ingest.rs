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
        .post("/api/v1/events/batch", batch)
        .post("/api/v1/events/webhook", webhook)
        .post("/api/v1/metrics", metric_points)
        .post("/api/metrics", metric_points)
}

/// The `?atomic=` parameter of the multi-item routes.
const ATOMIC: &str = "Refuse the whole batch (422, nothing stored) when any item is invalid.";

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

/// Ingest one event.
///
/// One system event (JSON object); 202 once it is durable in the event log. Arrays and
/// NDJSON go to `/api/v1/events/batch`.
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "ingest",
    request_body(content = Object, description = "One system event: `service_name`, `event_type`, `severity`, `details`, `timestamp`, `metadata`, …"),
    responses(
        (status = 202, description = "`{status: accepted, event_id, correlation_id}`.", body = Object),
        (status = 400, description = "Not one JSON object."),
        (status = 413, description = "The body exceeds `api.max_body_bytes`."),
        (status = 422, description = "The event is invalid; `errors` names the field."),
        (status = 503, description = "Backpressure or the event log is down; retry after `Retry-After`."),
    ),
)]
pub(crate) async fn single_event(
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

/// Ingest a batch of events.
///
/// A JSON array or NDJSON of system events (one object is a batch of one); 202 with the
/// outcome of every item (`accepted` with its `event_id`, or `rejected` with the field and
/// reason). Accepted items are durable in the event log.
#[utoipa::path(
    post,
    path = "/api/v1/events/batch",
    tag = "ingest",
    params(("atomic" = Option<bool>, Query, description = ATOMIC)),
    request_body(description = "JSON (one object or an array) or NDJSON (one object per line).", content(
        (Object = "application/json"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 202, description = "Per-item outcomes: `{correlation_id, accepted, rejected, results: [...]}`.", body = Object),
        (status = 413, description = "The body exceeds `api.max_body_bytes`."),
        (status = 422, description = "Atomic batch with invalid items; nothing was stored."),
        (status = 503, description = "Backpressure or the event log is down; retry after `Retry-After`."),
    ),
)]
pub(crate) async fn batch(
    state: State<AppState>,
    cid: Extension<CorrelationId>,
    params: Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: LimitedBody,
) -> Result<Response, ApiError> {
    many(Kind::SystemEvent, state, cid, params, headers, body).await
}

/// Ingest webhook deliveries.
///
/// The generic webhook shape (one object or an array). When webhook signing is configured,
/// an anonymous delivery must be signed (Standard Webhooks `webhook-id`,
/// `webhook-timestamp`, `webhook-signature`, or GitHub's `X-Hub-Signature-256`).
#[utoipa::path(
    post,
    path = "/api/v1/events/webhook",
    tag = "ingest",
    params(("atomic" = Option<bool>, Query, description = ATOMIC)),
    request_body(description = "JSON (one object or an array) or NDJSON (one object per line).", content(
        (Object = "application/json"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 202, description = "Per-item outcomes, as for `/api/v1/events/batch`.", body = Object),
        (status = 401, description = "Unsigned or wrongly signed delivery."),
        (status = 422, description = "Atomic batch with invalid items; nothing was stored."),
        (status = 503, description = "Backpressure or the event log is down; retry after `Retry-After`."),
    ),
)]
pub(crate) async fn webhook(
    state: State<AppState>,
    cid: Extension<CorrelationId>,
    params: Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: LimitedBody,
) -> Result<Response, ApiError> {
    many(Kind::Webhook, state, cid, params, headers, body).await
}

/// Ingest metric points.
///
/// One point, a JSON array or NDJSON of points (`service_name`, `metric_type`, `value`,
/// `timestamp`, …).
#[utoipa::path(
    post,
    path = "/api/v1/metrics",
    tag = "ingest",
    params(("atomic" = Option<bool>, Query, description = ATOMIC)),
    request_body(description = "JSON (one object or an array) or NDJSON (one object per line).", content(
        (Object = "application/json"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 202, description = "Per-item outcomes, as for `/api/v1/events/batch`.", body = Object),
        (status = 422, description = "Atomic batch with invalid items; nothing was stored."),
        (status = 503, description = "Backpressure or the event log is down; retry after `Retry-After`."),
    ),
)]
pub(crate) async fn metric_points(
    state: State<AppState>,
    cid: Extension<CorrelationId>,
    params: Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: LimitedBody,
) -> Result<Response, ApiError> {
    many(Kind::Metric, state, cid, params, headers, body).await
}

/// One document, a JSON array or NDJSON (detected, or declared by an `ndjson` content type).
async fn many(
    kind: Kind,
    State(state): State<AppState>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    Query(params): Query<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    if kind == Kind::Webhook {
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
        .ingest_shaped(kind, body, shape, &cid, atomic)
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
