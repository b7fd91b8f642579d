//! Raw metric point queries (ingestion of metrics is in [`super::ingest`]).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use sightline_cache::keys;
use sightline_model::Metric;
use sightline_store::{MetricPoint, MetricQuery, Page};

use super::params;
use crate::{ApiError, AppState};

/// The metric query routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/metrics", list)
        .get("/api/v1/metrics/live", live)
        .get("/api/metrics/live", live)
}

/// A service's newest points, oldest first, and where they came from.
#[derive(Debug, serde::Serialize)]
struct LivePoints {
    service: String,
    /// `cache`, or `store` when the cache could not answer.
    source: &'static str,
    points: Vec<Metric>,
}

/// `GET /api/v1/metrics/live?service=`: the newest 100 points of a service from
/// `metrics:live:{service}`; when the cache is unavailable, the same from the store.
async fn live(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<LivePoints>, ApiError> {
    params::reject_unknown(&q, &["service"])?;
    let service = q
        .get("service")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| params::bad("service", "is required"))?
        .clone();
    match state.cache.recent(&keys::metrics_live(&service)).await {
        Ok(values) => Ok(Json(LivePoints {
            points: values
                .iter()
                .filter_map(|v| serde_json::from_str(v).ok())
                .collect(),
            service,
            source: "cache",
        })),
        Err(e) => {
            tracing::warn!(error = %e, "live cache unavailable; answering from the store");
            let query = MetricQuery {
                service: Some(service.clone()),
                limit: keys::LIVE_POINTS as u32,
                ..MetricQuery::default()
            };
            let mut points: Vec<Metric> = state
                .store
                .query_metrics(&query)
                .await?
                .items
                .into_iter()
                .map(|p| p.metric)
                .collect();
            points.reverse();
            Ok(Json(LivePoints {
                service,
                source: "store",
                points,
            }))
        }
    }
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
