//! `sightline simulate --scenario …` writes its topology and ground truth files even when
//! the node is unreachable (the exit code says the requests failed), and refuses options
//! that do not fit the scenario.

use std::process::Command;

use sightline_model::Topology;

fn simulate(args: &[&str]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sightline"));
    for (key, _) in std::env::vars() {
        if key.starts_with("SIGHTLINE_") {
            command.env_remove(key);
        }
    }
    command.arg("simulate").args(args).output().expect("runs")
}

#[test]
fn incidents_writes_topology_and_ground_truth() {
    let dir = tempfile::tempdir().expect("temp dir");
    let topology = dir.path().join("topology.json");
    let truth = dir.path().join("truth.json");
    let out = simulate(&[
        "--scenario",
        "incidents",
        "--duration",
        "2h",
        "--speed",
        "0",
        "--faults",
        "2",
        "--seed",
        "5",
        "--json",
        // Nothing listens on port 1 of loopback: every request fails at once.
        "--target",
        "http://127.0.0.1:1",
        "--topology-out",
        topology.to_str().expect("utf-8 path"),
        "--ground-truth",
        truth.to_str().expect("utf-8 path"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["scenario"], "incidents");
    assert_eq!(report["metrics_sent"], 720 * 65);

    let graph: Topology =
        serde_json::from_str(&std::fs::read_to_string(&topology).expect("topology written"))
            .expect("a Topology");
    graph.validate().expect("valid");
    assert!(graph.services.len() >= 10);
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth).expect("truth written"))
            .expect("JSON");
    assert_eq!(truth["faults"].as_array().expect("faults").len(), 2);
    assert_eq!(
        truth["end_ms"].as_i64().expect("end") - truth["start_ms"].as_i64().expect("start"),
        7_200_000
    );
    let embedded: Topology = serde_json::from_value(truth["topology"].clone()).expect("Topology");
    assert_eq!(embedded, graph);
}

#[test]
fn scenario_options_are_checked() {
    let out = simulate(&["--scenario", "bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scenario"));
    let out = simulate(&["--scenario", "ecommerce", "--topology-out", "x.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--topology-out"));
}
