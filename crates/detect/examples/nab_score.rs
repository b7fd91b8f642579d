//! Scores the ensemble on a NAB corpus with configuration overrides — the loop used to
//! tune the defaults (the user-facing command is `sightline bench nab`).
//!
//! `cargo run --release -p sightline-detect --example nab_score -- NAB_DIR ['{"smooth": 6}']`
//! (`QUIET=1` prints only the totals; `RESULTS=DIR` writes NAB results files).

#![allow(clippy::print_stdout)]

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .ok_or("usage: nab_score NAB_DIR [ENSEMBLE_CONFIG_JSON]")?;
    let started = std::time::Instant::now();
    // Optional second argument: an ensemble configuration as JSON (fields override defaults).
    // A JSON object with a "kind" is a whole detector spec (`{"kind": "robust_zscore"}`).
    let spec = match std::env::args().nth(2) {
        Some(json) if json.contains("\"kind\"") => serde_json::from_str(&json)?,
        Some(json) => sightline_detect::DetectorSpec::Ensemble(serde_json::from_str(&json)?),
        None => sightline_detect::DetectorSpec::Ensemble(Default::default()),
    };
    let results = std::env::var_os("RESULTS").map(PathBuf::from);
    let report = sightline_detect::nab::run_spec(&dir, &spec, None, results.as_deref())?;
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
