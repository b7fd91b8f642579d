//! `sightline simulate`: realistic traffic against a running node.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use sightline_sim::{GroundTruth, ScenarioKind, SimulateOptions};

/// Options of `sightline simulate`.
///
/// Scenarios: `normal` (system events with periodic error bursts, optionally metrics);
/// `ecommerce` (shopping sessions as keyed records into a user topic, default
/// `ecommerce.events`, at --rate records/s); `incidents` (13 services with dependencies,
/// their metrics every --step and their events, with labelled faults; --duration is
/// simulated time, played at --speed; --rate does not apply).
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// What to send: normal, ecommerce or incidents.
    #[arg(long, default_value = "normal", value_parser = parse_scenario)]
    scenario: ScenarioKind,
    /// Base URL of the node.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    target: String,
    /// Events per second (0: as fast as the node acknowledges).
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Stop after this long (e.g. 30s, 5m). incidents: the simulated length (default 1d).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Stop after this many events (ecommerce: records; incidents: metric points and events).
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
    /// ecommerce: the topic to write.
    #[arg(long, default_value = sightline_sim::scenario::ecommerce::TOPIC)]
    topic: String,
    /// ecommerce: shopping sessions open at once.
    #[arg(long, default_value_t = 200)]
    sessions: usize,
    /// incidents: simulated seconds per wall second (0: as fast as the node acknowledges).
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// incidents: metric interval, simulated time.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    step: Duration,
    /// incidents: number of faults (default: one of each kind per simulated day).
    #[arg(long)]
    faults: Option<usize>,
    /// incidents: simulated start, epoch milliseconds (default: in the past, so the
    /// simulated clock reaches now as the run ends).
    #[arg(long)]
    start_ms: Option<i64>,
    /// ecommerce, incidents: write the ground truth (JSON) to this file.
    #[arg(long)]
    ground_truth: Option<PathBuf>,
    /// incidents: write the service topology to this file, as JSON
    /// `{"services": {name: {"depends_on": [...], "criticality": n}}}` (a model `Topology`).
    #[arg(long)]
    topology_out: Option<PathBuf>,
}

fn parse_scenario(s: &str) -> Result<ScenarioKind, String> {
    s.parse()
}

fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

pub async fn run(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.error_rate),
        "--error-rate must be between 0 and 1"
    );
    anyhow::ensure!(args.batch_size >= 1, "--batch-size must be at least 1");
    anyhow::ensure!(
        args.speed.is_finite() && args.speed >= 0.0,
        "--speed must be 0 or more"
    );
    anyhow::ensure!(
        args.topology_out.is_none() || args.scenario == ScenarioKind::Incidents,
        "--topology-out needs --scenario incidents"
    );
    anyhow::ensure!(
        args.ground_truth.is_none() || args.scenario != ScenarioKind::Normal,
        "--ground-truth needs --scenario ecommerce or incidents (normal reports its bursts)"
    );
    if let Some(path) = &args.topology_out {
        // Written first: the node can be given the graph before the traffic arrives.
        write_json(path, &sightline_sim::scenario::incidents::topology())?;
    }
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
        scenario: args.scenario,
        topic: args.topic,
        sessions: args.sessions.max(1),
        speed: args.speed,
        step: args.step,
        faults: args.faults,
        start_ms: args.start_ms,
    })
    .await?;
    if let (Some(path), Some(truth)) = (&args.ground_truth, &report.ground_truth) {
        match truth {
            GroundTruth::Ecommerce(t) => write_json(path, t)?,
            GroundTruth::Incidents(t) => write_json(path, t)?,
        }
    }
    crate::bench::emit(&report, args.json)?;
    Ok(if report.failed_requests == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
