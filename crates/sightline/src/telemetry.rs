//! Process-wide logging and the Prometheus recorder, installed once by commands that run a node.

use metrics_exporter_prometheus::PrometheusHandle;
use sightline_api::TelemetryConfig;
use tracing_subscriber::EnvFilter;

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
    let handle = sightline_api::prometheus_builder()?.install_recorder()?;
    Ok(handle)
}
