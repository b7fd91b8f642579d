//! `sightline bench …`: whole-system measurements. Every command prints a human summary,
//! or with `--json` one JSON object with the figures.

mod backends;
mod crash;
mod http;
mod incidents;
mod ingest;
mod nab;
mod node;
mod rca;
mod rules;
mod sql;
mod sql_crash;

use std::process::ExitCode;

use clap::Subcommand;

/// The benchmarks.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// HTTP batch ingestion with durable acknowledgement: events/s and ack latency.
    Ingest(ingest::IngestArgs),
    /// Crash safety: kill -9 a node repeatedly while clients ingest, then prove every
    /// acknowledged event is stored exactly once.
    Crash(crash::CrashArgs),
    /// Continuous SQL end to end: throughput with the rollups and three queries running,
    /// and the latency from posting a record to its `EMIT CHANGES` row on a WebSocket.
    Sql(sql::SqlArgs),
    /// Crash equivalence of continuous SQL: kill -9 the node while it runs several
    /// windowed queries, then prove the tables equal an uninterrupted run's, no row twice.
    SqlCrash(sql_crash::SqlCrashArgs),
    /// Anomaly-detection quality: the default detector on the NAB corpus, NAB-scored.
    Nab(nab::NabArgs),
    /// Incident quality end to end: the simulator's fault scenario through a node, scored
    /// against its ground truth (incidents per fault, faults detected, false incidents,
    /// detection delay, ingest-to-incident latency).
    Incidents(incidents::IncidentsArgs),
    /// Root-cause accuracy of the built-in analyst on the fault scenario: top-1, top-3
    /// and analysis latency.
    Rca(rca::RcaArgs),
    /// Trigger-rule evaluation throughput: 1,000 active rules over a generated event
    /// stream on one thread (rule-evaluations/s, conditions evaluated/s, firings/s).
    Rules(rules::RulesArgs),
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        BenchCommand::Ingest(args) => ingest::run(args).await,
        BenchCommand::Crash(args) => crash::run(args).await,
        BenchCommand::Sql(args) => sql::run(args).await,
        BenchCommand::SqlCrash(args) => sql_crash::run(args).await,
        BenchCommand::Nab(args) => nab::run(args).await,
        BenchCommand::Incidents(args) => incidents::run(args).await,
        BenchCommand::Rca(args) => rca::run(args).await,
        BenchCommand::Rules(args) => rules::run(args).await,
    }
}

/// Prints a report as JSON or as its human summary.
pub(crate) fn emit<T: serde::Serialize + std::fmt::Display>(
    report: &T,
    json: bool,
) -> anyhow::Result<()> {
    let text = if json {
        serde_json::to_string(report)?
    } else {
        report.to_string()
    };
    #[allow(clippy::print_stdout)] // the command's output
    {
        println!("{text}");
    }
    Ok(())
}

/// The p-th percentile (0..=100) of sorted samples.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
