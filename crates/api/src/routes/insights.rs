//! Per-event insights (what the insight runner's language model made of single
//! high-severity events, see `sightline_analyst::insights`): one event's insight, and a
//! filtered list, newest first. Read-only: insights are only written by the runner.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use sightline_model::EventInsight;
use sightline_store::InsightQuery;

use super::items::Items;
use super::params::{self, reject_unknown};
use crate::{ApiError, AppState};

/// The insight routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/events/{id}/insight", by_event)
        .get("/api/v1/insights", list)
}

/// Get an event's insight.
///
/// `GET /api/v1/events/{id}/insight`: the insight of one event (404 when it has none:
/// below `min_severity`, skipped, or insights are off).
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}/insight",
    tag = "insights",
    params(
        ("id" = String, Path, description = "The event id."),
    ),
    responses(
        (status = 200, description = "The insight.", body = sightline_model::EventInsight),
        (status = 404, description = "The event has no insight."),
    ),
)]
pub(crate) async fn by_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<EventInsight>, ApiError> {
    state
        .store
        .get_event_insight(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no insight for event '{id}'")))
}

/// List event insights.
///
/// `GET /api/v1/insights?service=&from=&to=&hours=&limit=`: insights created in the
/// range, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/insights",
    tag = "insights",
    params(
        ("service" = Option<String>, Query, description = "Only insights of this service."),
        ("from" = Option<String>, Query, description = "Created at or after (epoch ms or RFC 3339)."),
        ("to" = Option<String>, Query, description = "Created before (epoch ms or RFC 3339)."),
        ("hours" = Option<f64>, Query, description = "Only the last N hours (before `to`)."),
        ("limit" = Option<u32>, Query, description = "At most this many (default 50, at most 1000)."),
    ),
    responses(
        (status = 200, description = "Insights, newest first.", body = Items<sightline_model::EventInsight>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Items<EventInsight>>, ApiError> {
    reject_unknown(&q, &["service", "from", "to", "hours", "limit"])?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let (since, until) = params::requested_range(&q)?;
    let items = state
        .store
        .list_event_insights(&InsightQuery {
            service: get("service").map(str::to_owned),
            fingerprint: None,
            since,
            until,
            limit: params::limit(get("limit"))?,
        })
        .await?;
    Ok(Json(Items { items }))
}
