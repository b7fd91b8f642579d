//! Nothing acknowledged is ever lost: the node is killed with SIGKILL at random points at
//! least ten times while concurrent clients ingest at least 50,000 events with unique ids;
//! afterwards every acknowledged event is in the store exactly once.
#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn acknowledged_events_survive_repeated_kill_9() {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args([
            "bench",
            "crash",
            "--events",
            "50000",
            "--kills",
            "10",
            "--clients",
            "4",
            "--json",
        ])
        .env_remove("SIGHTLINE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("no JSON report ({e}); stdout: {stdout}\nstderr: {stderr}"));
    assert_eq!(report["kills"], 10, "{report}");
    assert!(
        report["acknowledged"].as_u64().unwrap() >= 50_000,
        "{report}"
    );
    assert_eq!(report["missing"], 0, "acknowledged events lost: {report}");
    assert_eq!(report["duplicates"], 0, "{report}");
    assert_eq!(report["unexpected"], 0, "{report}");
    assert_eq!(report["passed"], true, "{report}");
    assert!(out.status.success(), "{stderr}");
}

#[test]
fn config_show_prints_every_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["config", "show"])
        .env_remove("SIGHTLINE_CONFIG")
        .env("SIGHTLINE_LOG__SEGMENT_BYTES", "8388608")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(parsed["http_addr"].as_str(), Some("127.0.0.1:8080"));
    assert_eq!(
        parsed["log"]["segment_bytes"].as_integer(),
        Some(8_388_608),
        "env override applies"
    );
    assert_eq!(parsed["store"]["batch_size"].as_integer(), Some(5000));
}
