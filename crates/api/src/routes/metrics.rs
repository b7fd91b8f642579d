//! Metric queries: raw points, and the stream engine's rollups and event counters
//! (ingestion of metrics is in [`super::ingest`]).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use sightline_cache::keys;
use sightline_model::Metric;
use sightline_store::{
    EventCountQuery, EventCountRow, MAX_ROLLUP_ROWS, MetricPoint, MetricQuery, Page, RollupQuery,
    RollupRow,
};

use super::params;
use crate::{ApiError, AppState};

/// The metric query routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/metrics", list)
        .get("/api/v1/metrics/live", live)
        .get("/api/metrics/live", live)
        .get("/api/v1/metrics/aggregated", aggregated)
        .get("/api/metrics/aggregated", aggregated)
        .get("/api/v1/events/counts", event_counts)
}

/// Rows returned by the rollup queries when no `limit` is given.
const DEFAULT_ROLLUP_LIMIT: u32 = 1000;

/// `limit` of the rollup queries: 1..=[`MAX_ROLLUP_ROWS`], refused outside.
fn rollup_limit(raw: Option<&str>) -> Result<u32, ApiError> {
    match raw {
        None => Ok(DEFAULT_ROLLUP_LIMIT),
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=MAX_ROLLUP_ROWS).contains(&n) => Ok(n),
            _ => Err(params::bad(
                "limit",
                format!("'{s}' is not an integer between 1 and {MAX_ROLLUP_ROWS}"),
            )),
        },
    }
}

/// The rows of a windowed read (rollups or event counters), newest first.
#[derive(Debug, serde::Serialize)]
struct Items<T> {
    items: Vec<T>,
}

/// `GET /api/v1/metrics/aggregated?service=&metric=&window=1m|5m|15m&from=&to=&limit=`:
/// the 1-, 5- and 15-minute rollups (count/sum/min/max/avg/p95/p99) whose window starts in
/// `[from, to)`, newest first.
async fn aggregated(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Items<RollupRow>>, ApiError> {
    const KNOWN: &[&str] = &[
        "service",
        "service_name",
        "metric",
        "metric_type",
        "window",
        "hours",
        "from",
        "to",
        "limit",
    ];
    params::reject_unknown(&q, KNOWN)?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let window = match get("window") {
        None => None,
        Some(w @ ("1m" | "5m" | "15m")) => Some(w.to_owned()),
        Some(other) => {
            return Err(params::bad(
                "window",
                format!("'{other}' is not one of 1m, 5m, 15m"),
            ));
        }
    };
    let (since, until) = params::requested_range(&q)?;
    let query = RollupQuery {
        service: get("service").or(get("service_name")).map(str::to_owned),
        metric: get("metric").or(get("metric_type")).map(str::to_owned),
        window,
        since,
        until,
        limit: rollup_limit(get("limit"))?,
    };
    Ok(Json(Items {
        items: state.store.query_rollups(&query).await?,
    }))
}

/// `GET /api/v1/events/counts?service=&severity=&from=&to=&limit=`: events per service,
/// severity and 5-minute window whose start is in `[from, to)`, newest first.
async fn event_counts(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Items<EventCountRow>>, ApiError> {
    const KNOWN: &[&str] = &[
        "service",
        "service_name",
        "severity",
        "hours",
        "from",
        "to",
        "limit",
    ];
    params::reject_unknown(&q, KNOWN)?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let severity = get("severity")
        .map(|s| {
            sightline_model::Severity::parse("severity", s)
                .map(|sev| sev.as_str().to_owned())
                .map_err(|e| params::bad("severity", e.to_string()))
        })
        .transpose()?;
    let (since, until) = params::requested_range(&q)?;
    let query = EventCountQuery {
        service: get("service").or(get("service_name")).map(str::to_owned),
        severity,
        since,
        until,
        limit: rollup_limit(get("limit"))?,
    };
    Ok(Json(Items {
        items: state.store.query_event_counts(&query).await?,
    }))
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
    let (since_ms, until_ms) = params::requested_range(&q)?;
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
