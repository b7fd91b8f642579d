//! Metric names of the HTTP layer, defined once, the middleware that records them, and
//! the Prometheus exporter's histogram buckets (one builder for the binary and for tests,
//! so a test scrapes the same series operators do).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder};
use sightline_correlate::incident_metrics;

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

/// Latency buckets (seconds) for every other `*_seconds` histogram: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Buckets for record counts per group commit.
const COUNT_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0];

/// A Prometheus exporter whose histograms have buckets (so dashboards can take quantiles
/// across nodes): minutes to days for the incident durations (MTTA, MTTR), 100 µs to 10 s
/// for the other `*_seconds`, and powers of ten for `*_records`. The exporter prefers a
/// full-name match over a suffix match, so the incident durations keep their own buckets.
pub fn prometheus_builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new();
    for name in [
        incident_metrics::TIME_TO_ACKNOWLEDGE,
        incident_metrics::TIME_TO_RESOLVE,
    ] {
        builder = builder.set_buckets_for_metric(
            Matcher::Full(name.into()),
            incident_metrics::DURATION_BUCKETS,
        )?;
    }
    builder
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_records".into()), COUNT_BUCKETS)
}

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
