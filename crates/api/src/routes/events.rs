//! Event queries: filtered search with keyset pagination, lookup by id, analytics.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use sightline_model::{Event, Severity};
use sightline_store::{Analytics, AnalyticsQuery, EventQuery, GroupBy, Page};

use super::params::{self, bad};
use crate::{ApiError, AppState};
use sightline_model::clock::now_ms;

/// The event query routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/events", list)
        .get("/api/v1/events/analytics", analytics)
        .get("/api/v1/events/{id}", by_id)
}

/// Search events.
///
/// `GET /api/v1/events?severity=&hours=&from=&to=&host=&service=&event_type=&environment=&q=&limit=&cursor=`
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "events",
    params(
        ("severity" = Option<String>, Query, description = "Comma list of severities (`critical,high,…`)."),
        ("host" = Option<String>, Query, description = "Exact host."),
        ("service" = Option<String>, Query, description = "Exact service name (alias `service_name`)."),
        ("service_name" = Option<String>, Query, description = "Alias of `service`."),
        ("event_type" = Option<String>, Query, description = "Event type, case-insensitive."),
        ("environment" = Option<String>, Query, description = "Environment, case-insensitive."),
        ("q" = Option<String>, Query, description = "Full-text search in `details`."),
        ("from" = Option<String>, Query, description = "Start of the time range (inclusive): epoch ms or RFC 3339."),
        ("to" = Option<String>, Query, description = "End of the time range (exclusive): epoch ms or RFC 3339."),
        ("hours" = Option<f64>, Query, description = "The last N hours (`from` = now − N h)."),
        ("limit" = Option<u32>, Query, description = "Page size, at least 1 (default 50; above 1000 capped to 1000)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "Matching events, newest first, keyset-paginated.", body = sightline_store::Page<sightline_model::Event>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<Event>>, ApiError> {
    const KNOWN: &[&str] = &[
        "severity",
        "hours",
        "from",
        "to",
        "host",
        "service",
        "service_name",
        "event_type",
        "environment",
        "q",
        "limit",
        "cursor",
    ];
    params::reject_unknown(&q, KNOWN)?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let severities = get("severity")
        .map(|s| {
            s.split(',')
                .map(|v| Severity::parse("severity", v).map_err(ApiError::BadParameter))
                .collect()
        })
        .transpose()?
        .unwrap_or_default();
    let (since_ms, until_ms) = params::requested_range(&q)?;
    let query = EventQuery {
        severities,
        since_ms,
        until_ms,
        service: get("service").or(get("service_name")).map(str::to_owned),
        host: get("host").map(str::to_owned),
        event_type: get("event_type").map(str::to_ascii_uppercase),
        environment: get("environment").map(str::to_ascii_uppercase),
        text: get("q").map(str::to_owned),
        limit: params::limit(get("limit"))?,
        cursor: params::cursor(get("cursor"))?,
    };
    Ok(Json(state.store.query_events(&query).await?))
}

/// Get one event.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}",
    tag = "events",
    params(
        ("id" = String, Path, description = "The event id."),
    ),
    responses(
        (status = 200, description = "The event.", body = sightline_model::Event),
        (status = 404, description = "No event with this id."),
    ),
)]
pub(crate) async fn by_id(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Event>, ApiError> {
    state
        .store
        .get_event(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no event with id '{id}'")))
}

/// Bucket widths offered, smallest first; the first giving at most 60 buckets is used.
const BUCKETS_MS: &[i64] = &[
    60_000,
    300_000,
    900_000,
    3_600_000,
    6 * 3_600_000,
    86_400_000,
    7 * 86_400_000,
];

/// Count events per group and time bucket.
///
/// `GET /api/v1/events/analytics?timerange=24h&groupby=severity|service|event_type|host`
#[utoipa::path(
    get,
    path = "/api/v1/events/analytics",
    tag = "events",
    params(
        ("timerange" = Option<String>, Query, description = "How far back, e.g. `24h` (default), `7d`."),
        ("groupby" = Option<String>, Query, description = "`severity` (default), `service`, `event_type` or `host`."),
        ("bucket" = Option<String>, Query, description = "Bucket width, e.g. `5m` (default: the smallest giving at most 60 buckets)."),
    ),
    responses(
        (status = 200, description = "Counts per group and per bucket.", body = sightline_store::Analytics),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn analytics(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Analytics>, ApiError> {
    let range_ms = params::duration_ms(
        "timerange",
        q.get("timerange").map_or("24h", String::as_str),
    )?;
    let group = q.get("groupby").map_or("severity", String::as_str);
    let group_by = GroupBy::parse(group).ok_or_else(|| {
        bad(
            "groupby",
            format!("'{group}' is not one of severity, service, event_type, host"),
        )
    })?;
    let bucket_ms = q
        .get("bucket")
        .map(|b| params::duration_ms("bucket", b))
        .transpose()?
        .unwrap_or_else(|| {
            BUCKETS_MS
                .iter()
                .copied()
                .find(|b| range_ms / b <= 60)
                .unwrap_or(7 * 86_400_000)
        });
    if range_ms / bucket_ms > 10_000 {
        return Err(bad(
            "bucket",
            "too small for the time range (more than 10000 buckets)",
        ));
    }
    let until_ms = now_ms();
    let query = AnalyticsQuery {
        since_ms: until_ms - range_ms,
        until_ms,
        group_by,
        bucket_ms,
    };
    Ok(Json(state.store.event_analytics(&query).await?))
}
