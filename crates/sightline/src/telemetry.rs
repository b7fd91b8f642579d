//! Process-wide logging and the Prometheus recorder, installed once by commands that run a node.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sightline_api::TelemetryConfig;
use tracing_subscriber::EnvFilter;

/// Latency buckets (seconds) for every `*_seconds` histogram: 100 µs to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// Buckets for record counts per group commit.
const COUNT_BUCKETS: &[f64] = &[1.0, 10.0, 100.0, 1_000.0, 10_000.0, 100_000.0];

/// Installs the tracing subscriber and the metrics recorder; returns the `/metrics` handle.
pub fn init(config: &TelemetryConfig) -> anyhow::Result<PrometheusHandle> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = if config.json_logs {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Suffix("_records".into()), COUNT_BUCKETS)?
        .install_recorder()?;
    Ok(handle)
}
