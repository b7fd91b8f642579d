//! `sightline simulate`: realistic traffic against a running node.

use std::process::ExitCode;
use std::time::Duration;

use sightline_sim::SimulateOptions;

/// Options of `sightline simulate`.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Base URL of the node.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// Events per second (0: as fast as the node acknowledges).
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Stop after this long (e.g. 30s, 5m).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many events.
    #[arg(long)]
    count: Option<u64>,
    /// Events per request, at most (at a set rate batches shrink so at least 20 requests
    /// go out each second).
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Fraction of events that are errors outside bursts.
    #[arg(long, default_value_t = 0.05)]
    error_rate: f64,
    /// Disable periodic error bursts in a random service.
    #[arg(long)]
    no_bursts: bool,
    /// Also send metric points (about a tenth of the event rate).
    #[arg(long)]
    metrics: bool,
    /// Random seed (same seed, same traffic).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// API key sent as a bearer token.
    #[arg(long, env = "SIGHTLINE_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Print the final report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.error_rate),
        "--error-rate must be between 0 and 1"
    );
    anyhow::ensure!(args.batch_size >= 1, "--batch-size must be at least 1");
    let report = sightline_sim::run(SimulateOptions {
        target: args.target.trim_end_matches('/').to_owned(),
        rate: args.rate,
        duration: args.duration,
        count: args.count,
        batch_size: args.batch_size,
        concurrency: args.concurrency.max(1),
        error_rate: args.error_rate,
        bursts: !args.no_bursts,
        metrics: args.metrics,
        seed: args.seed,
        api_key: args.api_key,
        progress: !args.json,
    })
    .await?;
    crate::bench::emit(&report, args.json)?;
    Ok(if report.failed_requests == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
