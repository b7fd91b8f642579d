//! Scores the default detector on a NAB corpus (a quick loop for tuning; the CLI is
//! `sightline bench nab`).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/work/shared/data/nab"));
    let started = std::time::Instant::now();
    // Optional second argument: an ensemble configuration as JSON (fields override defaults).
    let config: sightline_detect::ensemble::EnsembleConfig = match std::env::args().nth(2) {
        Some(json) => serde_json::from_str(&json)?,
        None => Default::default(),
    };
    let results = std::env::var_os("RESULTS").map(PathBuf::from);
    let report = sightline_detect::nab::run_with(&dir, &config, None, results.as_deref())?;
    let quiet = std::env::var_os("QUIET").is_some();
    for f in report.files.iter().filter(|_| !quiet) {
        println!(
            "{:60} win {}/{} fp {:3} raw {:+.3}",
            f.file, f.detected_windows, f.windows, f.false_positive_rows, f.raw_standard
        );
    }
    for (name, p) in [
        ("standard", &report.standard),
        ("low_fp", &report.reward_low_fp),
        ("low_fn", &report.reward_low_fn),
    ] {
        println!(
            "{name:9} {:6.2}  thr {:.4}  windows {}  fp rows {}",
            p.score, p.threshold, p.detected_windows, p.false_positive_rows
        );
    }
    println!("elapsed {:.2}s", started.elapsed().as_secs_f64());
    Ok(())
}
