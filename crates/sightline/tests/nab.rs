//! The anomaly-detection quality bar: the default detector, NAB-scored over the corpus in
//! `../shared/data/nab`, stays at or above 70 on the standard profile.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

#[test]
fn default_detector_scores_at_least_70_on_nab_standard() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/nab");
    assert!(
        data.join("labels/combined_windows.json").exists(),
        "the NAB corpus is expected at {} (the shared data beside the project)",
        data.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["bench", "nab", "--json", "--data"])
        .arg(&data)
        .env_remove("SIGHTLINE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let standard = report["standard"]["score"].as_f64().unwrap();
    assert!(standard >= 70.0, "NAB standard score {standard}: {report}");
    for profile in ["reward_low_fp", "reward_low_fn"] {
        let score = report[profile]["score"].as_f64().unwrap();
        assert!((0.0..=100.0).contains(&score), "{profile}: {score}");
    }
}
