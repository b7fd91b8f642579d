//! Raw metric point queries (ingestion of metrics is in [`super::ingest`]).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use sightline_store::{MetricPoint, MetricQuery, Page};

use super::params;
use crate::{ApiError, AppState};

/// The metric query routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/metrics", get(list))
}

/// `GET /api/v1/metrics?service=&metric=&hours=&from=&to=&limit=&cursor=`
async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<MetricPoint>>, ApiError> {
    const KNOWN: &[&str] = &[
        "service",
        "service_name",
        "metric",
        "metric_type",
        "hours",
        "from",
        "to",
        "limit",
        "cursor",
    ];
    params::reject_unknown(&q, KNOWN)?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let (since_ms, until_ms) = params::time_range(
        chrono::Utc::now().timestamp_millis(),
        get("hours"),
        get("from"),
        get("to"),
    )?;
    let query = MetricQuery {
        service: get("service").or(get("service_name")).map(str::to_owned),
        metric_type: get("metric").or(get("metric_type")).map(str::to_owned),
        since_ms,
        until_ms,
        limit: params::limit(get("limit"))?,
        cursor: params::cursor(get("cursor"))?,
    };
    Ok(Json(state.store.query_metrics(&query).await?))
}
