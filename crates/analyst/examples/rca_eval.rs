//! Prints the built-in analyst's root-cause accuracy on the simulator's incident scenario
//! (every case, then the summary as JSON).
//!
//! `cargo run -p sightline-analyst --example rca_eval -- [seeds, comma-separated] [hours] [faults]`

#![allow(clippy::print_stdout)]

use std::time::Duration;

use sightline_analyst::eval::{EvalConfig, run};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = EvalConfig::default();
    if let Some(seeds) = args.first() {
        config.seeds = seeds.split(',').map(str::parse).collect::<Result<_, _>>()?;
    }
    if let Some(hours) = args.get(1) {
        config.duration = Duration::from_secs(hours.parse::<u64>()? * 3600);
    }
    if let Some(faults) = args.get(2) {
        config.faults = Some(faults.parse()?);
    }
    let dir = tempfile::tempdir()?;
    let report = run(&config, dir.path()).await?;
    for seed in &report.seeds {
        println!(
            "seed {}: {} anomalies, {} incidents, {} faults, {} detected, {} unmatched incidents, {} cases",
            seed.seed,
            seed.anomalies,
            seed.incidents,
            seed.faults,
            seed.faults_detected,
            seed.unmatched_incidents,
            seed.cases.len()
        );
        for c in &seed.cases {
            println!(
                "  {} {:<18} truth={:<12} corr={:<12} pred={:<12} top3={:?} conf={:.2} {}ms {}",
                if c.top1() {
                    "OK "
                } else if c.top3_hit() {
                    "T3 "
                } else {
                    "MISS"
                },
                c.fault_kind.as_str(),
                c.truth,
                c.attributed_to,
                c.predicted.as_deref().unwrap_or("-"),
                c.top3,
                c.confidence,
                c.latency_ms,
                c.incident_id,
            );
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "top1": report.top1,
            "top3": report.top3,
            "cases": report.cases,
            "latency_p99_ms": report.latency_p99_ms,
        })
    );
    Ok(())
}
