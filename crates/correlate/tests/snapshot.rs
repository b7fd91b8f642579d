//! Snapshot and restore: a correlator restored from a snapshot (through JSON, as a
//! checkpoint would store it) produces, for the same following inputs, exactly the outputs
//! and ids of one that never stopped.

mod common;

use common::*;
use sightline_correlate::{Correlator, CorrelatorConfig, CorrelatorState, Output};
use sightline_model::{MatchOp, Matcher, Severity, Silence};

enum Step {
    Anomaly(&'static str, &'static str, i64),
    Warn(&'static str, i64),
    Event(&'static str, &'static str, &'static str, i64),
    Tick(i64),
    Ack(usize, i64),
    Resolve(usize, i64),
}

/// A morning of trouble: a cascade, a deployment and errors, a warning under a silence,
/// a repeat storm, an acknowledgement, auto-resolve, a second round.
fn script() -> Vec<Step> {
    use Step::*;
    let mut s = vec![
        Event("d-1", "payments", "DEPLOYMENT", 0),
        Anomaly("frontend", "latency_ms", 60_000),
        Anomaly("checkout", "latency_ms", 62_000),
        Anomaly("db", "latency_ms", 63_000),
        Event("e-1", "payments", "ERROR", 64_000),
        Warn("search", 65_000),
        Tick(75_000),
        Anomaly("catalog", "error_rate", 80_000),
    ];
    for i in 0..200 {
        s.push(Anomaly("db", "latency_ms", 81_000 + i * 500));
    }
    s.extend([
        Tick(200_000),
        Ack(0, 201_000),
        Anomaly("search", "cpu_usage", 202_000),
        Tick(215_000),
        Resolve(1, 220_000),
        Tick(600_000),
        Anomaly("search", "cpu_usage", 610_000),
        Anomaly("db", "latency_ms", 611_000),
        Tick(700_000),
        Tick(1_100_000),
    ]);
    s
}

fn run(c: &mut Correlator, steps: &[Step], published: &mut Vec<String>) -> Vec<Output> {
    let mut out = Vec::new();
    for step in steps {
        let o = match step {
            Step::Anomaly(svc, metric, t) => c.on_anomaly(&anomaly(svc, metric, *t), *t),
            Step::Warn(svc, t) => c.on_anomaly(
                &anomaly_with(svc, "latency_ms", *t, 0.5, Severity::Medium),
                *t,
            ),
            Step::Event(id, svc, ty, t) => {
                let sev = if *ty == "DEPLOYMENT" {
                    Severity::Info
                } else {
                    Severity::High
                };
                c.on_event(&event(id, svc, ty, sev, *t), *t)
            }
            Step::Tick(t) => c.tick(*t),
            Step::Ack(n, t) => published
                .get(*n)
                .map(|id| c.acknowledge(id, "alice", *t).unwrap_or_default())
                .unwrap_or_default(),
            Step::Resolve(n, t) => published
                .get(*n)
                .map(|id| c.resolve(id, "bob", *t).unwrap_or_default())
                .unwrap_or_default(),
        };
        for x in &o {
            if let Output::Opened(i) = x {
                published.push(i.id.clone());
            }
        }
        out.extend(o);
    }
    out
}

fn fresh() -> Correlator {
    let mut c = Correlator::new(CorrelatorConfig::default(), topology()).expect("config");
    c.set_silences(vec![Silence {
        id: "sil-1".into(),
        matchers: vec![Matcher {
            name: "severity".into(),
            op: MatchOp::Regex,
            value: "medium|low".into(),
        }],
        starts_at: 0,
        ends_at: 100_000,
        created_by: "ops".into(),
        comment: "noisy warnings".into(),
        created_at: 0,
    }])
    .expect("valid");
    c
}

#[test]
fn the_script_exercises_what_it_should() {
    let mut c = fresh();
    let mut published = Vec::new();
    let out = run(&mut c, &script(), &mut published);
    assert!(opened(&out).len() >= 3, "{}", opened(&out).len());
    assert!(!suppressions(&out).is_empty());
    assert!(!correlations(&out).is_empty());
    let first = opened(&out)[0];
    assert_eq!(first.service_name, "db");
    assert!(
        first.description.contains("payments was deployed"),
        "{}",
        first.description
    );
}

#[test]
fn replay_after_restore_produces_identical_outputs_and_ids() {
    let steps = script();
    for cut in [1, 5, 7, 50, 209, 212, 215, steps.len() - 1] {
        let mut whole = fresh();
        let mut p1 = Vec::new();
        let before = run(&mut whole, &steps[..cut], &mut p1);
        let snapshot = whole.snapshot();
        let after = run(&mut whole, &steps[cut..], &mut p1);

        // Restore from a JSON round trip of the snapshot, in a "new process".
        let json = serde_json::to_string(&snapshot).expect("serialize");
        let state: CorrelatorState = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(state, snapshot);
        let mut restored =
            Correlator::restore(CorrelatorConfig::default(), topology(), state).expect("restore");
        let mut p2 = Vec::new();
        // The ids published before the cut, as the wiring layer would know them.
        for o in &before {
            if let Output::Opened(i) = o {
                p2.push(i.id.clone());
            }
        }
        let replayed = run(&mut restored, &steps[cut..], &mut p2);
        assert_eq!(after, replayed, "cut at {cut}");
        assert_eq!(
            serde_json::to_string(&whole.snapshot()).expect("json"),
            serde_json::to_string(&restored.snapshot()).expect("json"),
            "final states equal (cut at {cut})"
        );
    }
}

#[test]
fn replaying_inputs_already_applied_changes_nothing() {
    // At-least-once delivery: after a restore the log may redeliver inputs the snapshot
    // already reflects. Signals are recognised by id and ignored.
    let steps = script();
    let cut = 150;
    let mut c = fresh();
    let mut p = Vec::new();
    run(&mut c, &steps[..cut], &mut p);
    let snapshot = serde_json::to_string(&c.snapshot()).expect("json");
    let signals_only: Vec<Step> = steps[..cut]
        .iter()
        .filter_map(|s| match s {
            Step::Anomaly(a, b, t) => Some(Step::Anomaly(a, b, *t)),
            _ => None,
        })
        .filter(|s| matches!(s, Step::Anomaly(_, _, t) if *t >= 80_000))
        .collect();
    // Redeliver at the same processing times (no timer is due in between).
    let out = run(&mut c, &signals_only, &mut p);
    assert!(out.is_empty(), "{out:?}");
    let mut after: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&c.snapshot()).expect("json")).expect("v");
    let mut before: serde_json::Value = serde_json::from_str(&snapshot).expect("v");
    // Only the duplicate counter moved.
    after["stats"]["duplicates"] = serde_json::Value::Null;
    before["stats"]["duplicates"] = serde_json::Value::Null;
    assert_eq!(before, after);
}

#[test]
fn a_snapshot_of_another_version_is_refused() {
    let mut state = fresh().snapshot();
    state.version = 99;
    let err =
        Correlator::restore(CorrelatorConfig::default(), topology(), state).expect_err("version");
    assert!(err.to_string().contains("99"), "{err}");
}

#[test]
fn a_restored_correlator_still_recognises_redeliveries() {
    let mut c = fresh();
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    c.tick(10_000);
    let json = serde_json::to_string(&c.snapshot()).expect("json");
    let state: CorrelatorState = serde_json::from_str(&json).expect("state");
    let mut r = Correlator::restore(CorrelatorConfig::default(), topology(), state).expect("ok");
    assert!(
        r.on_anomaly(&anomaly("search", "latency_ms", 0), 11_000)
            .is_empty()
    );
    let inc = r.incidents().next().expect("one");
    assert_eq!(inc.occurrences, 1);
    assert_eq!(r.stats().duplicates, 1);
}
