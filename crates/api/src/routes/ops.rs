//! Operations endpoints: liveness, readiness and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use sightline_store::sink;

use crate::{AppState, telemetry};

/// The consumer groups whose lag `/metrics` reports, with the topics each consumes.
const GROUPS: &[(&str, &[&str])] = &[(sink::GROUP, &sink::TOPICS)];

/// The operations routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/health", health)
        .get("/ready", ready)
        .get("/metrics", prometheus)
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "ops",
    responses((status = 200, description = "`{\"status\": \"ok\"}`.", body = Object)),
)]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the store answers and the log accepts appends.
///
/// `{status: ready|not_ready, checks: {store, log}}`.
#[utoipa::path(
    get,
    path = "/ready",
    tag = "ops",
    responses(
        (status = 200, description = "Ready: `{status, checks: {store, log}}`.", body = Object),
        (status = 503, description = "Not ready; `checks` says which part failed.", content_type = "application/json", body = Object),
    ),
)]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let store = state.store.ping().await;
    let log = state.log.is_healthy();
    let body = json!({
        "status": if store.is_ok() && log { "ready" } else { "not_ready" },
        "checks": {
            "store": store.as_ref().map_or_else(|e| format!("error: {e}"), |()| "ok".to_owned()),
            "log": if log { "ok" } else { "failed: restart to recover" },
        }
    });
    let status = if store.is_ok() && log {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics.
///
/// Prometheus text exposition, with log sizes and consumer lag refreshed on each scrape.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses((status = 200, description = "Prometheus text format 0.0.4.", content_type = "text/plain; version=0.0.4", body = String)),
)]
pub(crate) async fn prometheus(State(state): State<AppState>) -> Response {
    if let Ok(stats) = state.log.stats().await {
        for topic in &stats {
            let size: u64 = topic.partitions.iter().map(|p| p.size_bytes).sum();
            let end: u64 = topic.partitions.iter().map(|p| p.end_offset).sum();
            metrics::gauge!(telemetry::LOG_SIZE, "topic" => topic.name.clone()).set(size as f64);
            metrics::gauge!(telemetry::LOG_END_OFFSET, "topic" => topic.name.clone())
                .set(end as f64);
        }
        for (group, topics) in GROUPS {
            for topic in stats.iter().filter(|t| topics.contains(&t.name.as_str())) {
                let Ok(committed) = state.log.committed(group, &topic.name).await else {
                    continue;
                };
                let lag: u64 = topic
                    .partitions
                    .iter()
                    .zip(committed)
                    .map(|(p, c)| p.end_offset.saturating_sub(c.unwrap_or(p.start_offset)))
                    .sum();
                metrics::gauge!(telemetry::CONSUMER_LAG, "group" => *group, "topic" => topic.name.clone())
                    .set(lag as f64);
            }
        }
    }
    let text = state
        .prometheus
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
