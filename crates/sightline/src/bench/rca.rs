//! `sightline bench rca`: how often the built-in analyst names the injected root cause.
//!
//! Plays the simulator's fault scenario through the real detectors, correlator and rollups
//! in-process into a SQLite store (`sightline_analyst::eval`), analyses each incident when
//! it opens with the same code the node's analyst runs, and scores the analysis against
//! the ground truth: top-1 (the named root-cause service is the injected one), top-3 (it
//! is among the analyst's first three candidates), and the analysis latency (context
//! gathering + analysis). `sightline bench incidents` measures the same through a running
//! node, wall clock from `incidents.detected` to `analysis.completed`.

use std::fmt;
use std::process::ExitCode;
use std::time::Duration;

use serde::Serialize;
use sightline_analyst::eval::{self, EvalConfig, EvalReport};

/// Arguments of `sightline bench rca`.
#[derive(Debug, clap::Args)]
pub struct RcaArgs {
    /// Scenario seeds, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,2,3")]
    seeds: Vec<u64>,
    /// Simulated length of each run.
    #[arg(long, default_value = "12h", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Faults per run (two of each kind by default).
    #[arg(long, default_value_t = 10)]
    faults: usize,
    /// Print one JSON object (`top1`, `top3`, `cases`, `latency_p99_ms`, per seed).
    #[arg(long)]
    json: bool,
    /// Analyse through the LLM provider of the configuration's `[analyst.llm]` (the
    /// built-in analyst as its fallback), and report the provider's and sightline's own
    /// latency apart.
    #[arg(long)]
    llm: bool,
    /// TOML configuration file holding `[analyst.llm]` (with `--llm`).
    #[arg(long, short = 'c', env = "SIGHTLINE_CONFIG")]
    config: Option<std::path::PathBuf>,
}

#[derive(Serialize)]
struct RcaReport(EvalReport);

impl fmt::Display for RcaReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = &self.0;
        for seed in &r.seeds {
            writeln!(
                f,
                "seed {}: {} faults ({} with an incident), {} incidents ({} outside faults), {} anomalies",
                seed.seed,
                seed.faults,
                seed.faults_detected,
                seed.incidents,
                seed.unmatched_incidents,
                seed.anomalies
            )?;
            for c in &seed.cases {
                let verdict = if c.top1() {
                    "ok  "
                } else if c.top3_hit() {
                    "top3"
                } else {
                    "miss"
                };
                writeln!(
                    f,
                    "  {verdict} {:<18} truth {:<12} named {:<12} top3 {:?}",
                    c.fault_kind.as_str(),
                    c.truth,
                    c.predicted.as_deref().unwrap_or("-"),
                    c.top3
                )?;
            }
        }
        writeln!(
            f,
            "root cause: top-1 {:.3} (target >= 0.8), top-3 {:.3} (target >= 0.95), {} cases; analysis p99 {} ms",
            r.top1, r.top3, r.cases, r.latency_p99_ms
        )?;
        if r.llm_answered > 0
            || r.seeds
                .iter()
                .flat_map(|s| &s.cases)
                .any(|c| c.provider_ms > 0)
        {
            writeln!(
                f,
                "LLM answered {} of {} cases; sightline's own share p99 {} ms (target < 50 ms besides the model)",
                r.llm_answered, r.cases, r.own_latency_p99_ms
            )?;
        }
        Ok(())
    }
}

pub async fn run(args: RcaArgs) -> anyhow::Result<ExitCode> {
    let llm = if args.llm {
        let node =
            crate::config::load(args.config.as_deref(), crate::config::Overrides::default())?;
        let llm = node.analyst.llm.ok_or_else(|| {
            anyhow::anyhow!("--llm needs an [analyst.llm] section in the configuration")
        })?;
        Some(llm)
    } else {
        None
    };
    let config = EvalConfig {
        seeds: args.seeds,
        duration: args.duration,
        faults: Some(args.faults),
        llm,
        ..EvalConfig::default()
    };
    let dir = tempfile::tempdir()?;
    let report = eval::run(&config, dir.path()).await?;
    super::emit(&RcaReport(report), args.json)?;
    Ok(ExitCode::SUCCESS)
}
