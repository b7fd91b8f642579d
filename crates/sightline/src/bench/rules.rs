//! `sightline bench rules`: trigger-rule evaluation throughput on one thread (see
//! `sightline_respond::trigger::bench` for the workload and how evaluations are counted).
//! Wiring only.

use std::process::ExitCode;

use sightline_respond::trigger::bench::{self, RulesBenchParams};

use super::emit;

/// Options of `sightline bench rules`.
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    /// Active rules.
    #[arg(long, default_value_t = 1000)]
    rules: usize,
    /// Events in the generated stream.
    #[arg(long, default_value_t = 500_000)]
    events: usize,
    /// Seed of the workload generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: RulesArgs) -> anyhow::Result<ExitCode> {
    let params = RulesBenchParams {
        rules: args.rules,
        events: args.events,
        seed: args.seed,
    };
    // One dedicated thread: the figure is per core.
    let report = tokio::task::spawn_blocking(move || bench::run(params)).await?;
    emit(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}
