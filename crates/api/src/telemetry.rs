//! Metric names of the HTTP layer, defined once, and the middleware that records them.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Requests served, by route and status.
pub(crate) const REQUESTS: &str = "sightline_http_requests_total";
/// Request latency, by route (for ingestion routes: time to durable acknowledgement).
pub(crate) const LATENCY: &str = "sightline_http_request_seconds";
/// Bytes in the log, by topic.
pub(crate) const LOG_SIZE: &str = "sightline_log_size_bytes";
/// Records in the log not yet processed by a consumer group, by group and topic.
pub(crate) const CONSUMER_LAG: &str = "sightline_consumer_lag_records";
/// End offset summed over a topic's partitions.
pub(crate) const LOG_END_OFFSET: &str = "sightline_log_end_offset";

pub(crate) async fn record(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(REQUESTS, "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
    metrics::histogram!(LATENCY, "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}
