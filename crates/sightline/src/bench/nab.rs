//! `sightline bench nab`: the default metric detector on the Numenta Anomaly Benchmark,
//! scored with NAB's rules (see `sightline_detect::nab`). Wiring only.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use super::emit;

/// Options of `sightline bench nab`.
#[derive(Debug, clap::Args)]
pub struct NabArgs {
    /// NAB corpus directory (with `data/`, `labels/combined_windows.json`, `profiles.json`).
    #[arg(long)]
    data: PathBuf,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    json: bool,
    /// Write one NAB results CSV per data file here (`<folder>/sightline_<file>.csv`).
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// Use this anomaly-score threshold for every profile instead of optimising it.
    #[arg(long)]
    threshold: Option<f64>,
}

pub async fn run(args: NabArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let report = tokio::task::spawn_blocking(move || {
        sightline_detect::nab::run(&args.data, args.threshold, args.results_dir.as_deref())
            .with_context(|| format!("NAB benchmark on {}", args.data.display()))
    })
    .await??;
    tracing::info!(
        elapsed_s = started.elapsed().as_secs_f64(),
        "NAB benchmark done"
    );
    emit(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}
