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

use super::items::Items;
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

/// Metric rollups.
///
/// `GET /api/v1/metrics/aggregated?service=&metric=&window=1m|5m|15m&from=&to=&limit=`:
/// the 1-, 5- and 15-minute rollups (count/sum/min/max/avg/p95/p99) whose window starts in
/// `[from, to)`, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/aggregated",
    tag = "metrics",
    params(
        ("service" = Option<String>, Query, description = "Exact service name."),
        ("metric" = Option<String>, Query, description = "Exact metric type."),
        ("window" = Option<String>, Query, description = "`1m`, `5m` or `15m`."),
        ("from" = Option<String>, Query, description = "Windows starting at or after (epoch ms or RFC 3339)."),
        ("to" = Option<String>, Query, description = "Windows starting before (epoch ms or RFC 3339)."),
        ("limit" = Option<u32>, Query, description = "Rows, 1–10000 (default 1000)."),
    ),
    responses(
        (status = 200, description = "Rollup rows, newest first.", body = Items<sightline_store::RollupRow>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn aggregated(
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

/// Event counts per service, severity and 5-minute window.
///
/// `GET /api/v1/events/counts?service=&severity=&from=&to=&limit=`: events per service,
/// severity and 5-minute window whose start is in `[from, to)`, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/events/counts",
    tag = "metrics",
    params(
        ("service" = Option<String>, Query, description = "Exact service name."),
        ("severity" = Option<String>, Query, description = "One severity."),
        ("from" = Option<String>, Query, description = "Windows starting at or after (epoch ms or RFC 3339)."),
        ("to" = Option<String>, Query, description = "Windows starting before (epoch ms or RFC 3339)."),
        ("limit" = Option<u32>, Query, description = "Rows, 1–10000 (default 1000)."),
    ),
    responses(
        (status = 200, description = "Counter rows, newest first.", body = Items<sightline_store::EventCountRow>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn event_counts(
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
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct LivePoints {
    service: String,
    /// `cache`, or `store` when the cache could not answer.
    source: &'static str,
    points: Vec<Metric>,
}

/// A service's newest metric points.
///
/// `GET /api/v1/metrics/live?service=`: the newest 100 points of a service from
/// `metrics:live:{service}`; when the cache is unavailable, the same from the store.
#[utoipa::path(
    get,
    path = "/api/v1/metrics/live",
    tag = "metrics",
    params(
        ("service" = Option<String>, Query, description = "The service (required)."),
    ),
    responses(
        (status = 200, description = "The newest 100 points, oldest first, and whether they came from the cache or the store.", body = LivePoints),
        (status = 400, description = "`service` is missing."),
    ),
)]
pub(crate) async fn live(
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

/// Search metric points.
///
/// `GET /api/v1/metrics?service=&metric=&hours=&from=&to=&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/v1/metrics",
    tag = "metrics",
    params(
        ("service" = Option<String>, Query, description = "Exact service name (alias `service_name`)."),
        ("service_name" = Option<String>, Query, description = "Alias of `service`."),
        ("metric" = Option<String>, Query, description = "Exact metric type (alias `metric_type`)."),
        ("metric_type" = Option<String>, Query, description = "Alias of `metric`."),
        ("from" = Option<String>, Query, description = "Start of the time range (inclusive): epoch ms or RFC 3339."),
        ("to" = Option<String>, Query, description = "End of the time range (exclusive): epoch ms or RFC 3339."),
        ("hours" = Option<f64>, Query, description = "The last N hours (`from` = now − N h)."),
        ("limit" = Option<u32>, Query, description = "Page size, at least 1 (default 50; above 1000 capped to 1000)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "Points, newest first, keyset-paginated.", body = sightline_store::Page<sightline_store::MetricPoint>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn list(
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
