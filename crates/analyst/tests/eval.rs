//! Root-cause accuracy of the built-in analyst on the simulator's incident scenario, over
//! several seeds, through the real detectors, correlator, rollups and SQLite store (see
//! `sightline_analyst::eval`). The floors are what the analyst achieves across these
//! seeds, not a number fitted to one run.

#![allow(clippy::unwrap_used)]

use sightline_analyst::eval::{EvalConfig, run};

#[tokio::test]
async fn builtin_analyst_names_the_injected_root_cause() {
    let dir = tempfile::tempdir().unwrap();
    let config = EvalConfig::default();
    let report = run(&config, dir.path()).await.unwrap();
    for seed in &report.seeds {
        for c in &seed.cases {
            eprintln!(
                "seed {} {:<18} truth={:<12} predicted={:<12} top3={:?}",
                c.seed,
                c.fault_kind.as_str(),
                c.truth,
                c.predicted.as_deref().unwrap_or("-"),
                c.top3
            );
        }
        assert!(
            seed.faults_detected * 2 >= seed.faults,
            "seed {}: only {} of {} faults became incidents",
            seed.seed,
            seed.faults_detected,
            seed.faults
        );
    }
    eprintln!(
        "top1 {:.3} top3 {:.3} over {} cases",
        report.top1, report.top3, report.cases
    );
    assert!(report.cases >= 15, "{} cases", report.cases);
    assert!(report.top1 >= TOP1_FLOOR, "top-1 {:.3}", report.top1);
    assert!(report.top3 >= TOP3_FLOOR, "top-3 {:.3}", report.top3);
}

/// Measured 0.89 on these seeds (0.87 over seeds 1 to 6).
const TOP1_FLOOR: f64 = 0.85;
/// Measured 0.93 on these seeds (0.93 over seeds 1 to 6).
const TOP3_FLOOR: f64 = 0.9;
