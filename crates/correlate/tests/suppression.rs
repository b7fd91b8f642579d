//! Inhibition and silences: what is suppressed, why, and what is not.

mod common;

use common::*;
use sightline_correlate::{CorrelateError, SuppressionReason};
use sightline_model::{MatchOp, Matcher, Severity, Silence};

fn silence(id: &str, matchers: &[(&str, MatchOp, &str)], starts_at: i64, ends_at: i64) -> Silence {
    Silence {
        id: id.into(),
        matchers: matchers
            .iter()
            .map(|(n, op, v)| Matcher {
                name: (*n).into(),
                op: *op,
                value: (*v).into(),
            })
            .collect(),
        starts_at,
        ends_at,
        created_by: "ops".into(),
        comment: "database maintenance, CHG-1234".into(),
        created_at: 0,
    }
}

#[test]
fn an_open_critical_incident_inhibits_warnings_downstream() {
    // Warnings (medium anomalies) open incidents here, unless inhibited.
    let mut c = correlator_with(sightline_correlate::CorrelatorConfig {
        min_opening_anomaly_severity: Severity::Low,
        ..Default::default()
    });
    // db (criticality 2) × 0.9 = 1.8 → critical.
    c.on_anomaly(&anomaly("db", "latency_ms", 0), 0);
    let inc = opened(&c.tick(10_000))[0].clone();
    assert_eq!(inc.severity, Severity::Critical);

    let out = c.on_anomaly(
        &anomaly_with("catalog", "latency_ms", 11_000, 0.5, Severity::Medium),
        11_000,
    );
    let s = suppressions(&out);
    assert_eq!(s.len(), 1, "{out:?}");
    assert_eq!(
        s[0].reason,
        SuppressionReason::Inhibited {
            by_incident: inc.id.clone()
        }
    );
    assert_eq!(s[0].incident_id.as_deref(), Some(inc.id.as_str()));
    assert_eq!(s[0].service_name, "catalog");
    assert_eq!(c.stats().inhibited, 1);
    // Transitively downstream, low severity: inhibited too.
    let out = c.on_anomaly(
        &anomaly_with("frontend", "latency_ms", 12_000, 0.3, Severity::Low),
        12_000,
    );
    assert_eq!(suppressions(&out).len(), 1);
    // A high signal downstream is not a warning: it folds in.
    let out = c.on_anomaly(&anomaly("checkout", "latency_ms", 13_000), 13_000);
    assert!(suppressions(&out).is_empty());
    assert_eq!(correlations(&out).len(), 1);
    // A warning on an unrelated service is not inhibited.
    let out = c.on_anomaly(
        &anomaly_with("search", "latency_ms", 14_000, 0.5, Severity::Medium),
        14_000,
    );
    assert!(suppressions(&out).is_empty());
    // Once the critical incident is resolved, warnings downstream open incidents again.
    c.resolve(&inc.id, "alice", 15_000).expect("resolve");
    let out = c.on_anomaly(
        &anomaly_with("catalog", "latency_ms", 16_000, 0.5, Severity::Medium),
        16_000,
    );
    assert!(suppressions(&out).is_empty());
    assert_eq!(c.waiting().count(), 2, "search and catalog wait");
}

#[test]
fn inhibition_can_be_turned_off() {
    let cfg = sightline_correlate::CorrelatorConfig {
        inhibit: false,
        ..Default::default()
    };
    let mut c = correlator_with(cfg);
    c.on_anomaly(&anomaly("db", "latency_ms", 0), 0);
    c.tick(10_000);
    let out = c.on_anomaly(
        &anomaly_with("catalog", "latency_ms", 11_000, 0.5, Severity::Medium),
        11_000,
    );
    assert!(suppressions(&out).is_empty());
    assert_eq!(correlations(&out).len(), 1, "folded instead");
}

#[test]
fn an_active_silence_suppresses_and_opens_nothing_an_expired_one_does_not() {
    let mut c = correlator();
    c.set_silences(vec![silence(
        "sil-1",
        &[("service", MatchOp::Equal, "db")],
        1_000,
        60_000,
    )])
    .expect("valid");
    // Before the window.
    let out = c.on_anomaly(&anomaly("db", "latency_ms", 0), 0);
    assert!(suppressions(&out).is_empty());
    let mut c = correlator();
    c.set_silences(vec![silence(
        "sil-1",
        &[("service", MatchOp::Equal, "db")],
        1_000,
        60_000,
    )])
    .expect("valid");
    // Inside the window.
    let out = c.on_anomaly(&anomaly("db", "latency_ms", 1_000), 1_000);
    let s = suppressions(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].reason,
        SuppressionReason::Silenced {
            silence_id: "sil-1".into()
        }
    );
    assert_eq!(s[0].incident_id, None);
    assert!(c.tick(30_000).is_empty(), "opened nothing");
    assert_eq!(c.stats().silenced, 1);
    // Redelivering the silenced anomaly: no second suppression.
    assert!(
        c.on_anomaly(&anomaly("db", "latency_ms", 1_000), 2_000)
            .is_empty()
    );
    // At ends_at (exclusive) the silence is over.
    let out = c.on_anomaly(&anomaly("db", "latency_ms", 60_000), 60_000);
    assert!(suppressions(&out).is_empty());
    assert_eq!(opened(&c.tick(70_000)).len(), 1);
}

#[test]
fn each_matcher_operator() {
    /// Operator, value, and (service, silenced?) expectations.
    type Case<'a> = (MatchOp, &'a str, &'a [(&'a str, bool)]);
    let cases: [Case<'_>; 4] = [
        (MatchOp::Equal, "db", &[("db", true), ("catalog", false)]),
        (MatchOp::NotEqual, "db", &[("db", false), ("catalog", true)]),
        (
            MatchOp::Regex,
            "cat.*|search",
            &[
                ("catalog", true),
                ("search", true),
                ("db", false),
                ("xcatalog", false),
            ],
        ),
        (
            MatchOp::NotRegex,
            "cat.*",
            &[("catalog", false), ("db", true), ("xcatalog", true)],
        ),
    ];
    for (op, value, expect) in cases {
        for (service, silenced) in expect {
            let mut c = correlator();
            c.set_silences(vec![silence(
                "s",
                &[
                    ("service", op, value),
                    ("detector", MatchOp::Equal, "zscore"),
                ],
                0,
                100_000,
            )])
            .expect("valid");
            let out = c.on_anomaly(&anomaly(service, "latency_ms", 5), 5);
            assert_eq!(
                suppressions(&out).len() == 1,
                *silenced,
                "{service} {op:?} {value}"
            );
        }
    }
}

#[test]
fn matchers_see_event_labels_environment_host_and_tags() {
    let mut c = correlator();
    c.set_silences(vec![silence(
        "s",
        &[
            ("environment", MatchOp::Equal, "PRODUCTION"),
            ("host", MatchOp::Regex, "host-\\d+"),
            ("team", MatchOp::Equal, "payments"),
        ],
        0,
        100_000,
    )])
    .expect("valid");
    let mut e = event("e-1", "payments", "ERROR", Severity::High, 5);
    let out = c.on_event(&e, 5);
    assert!(suppressions(&out).is_empty(), "no team tag");
    e.event_id = "e-2".into();
    e.tags.insert("team".into(), "payments".into());
    let out = c.on_event(&e, 6);
    assert_eq!(suppressions(&out).len(), 1);
}

#[test]
fn a_bad_regex_is_refused_naming_the_matcher_and_nothing_changes() {
    let mut c = correlator();
    c.set_silences(vec![silence(
        "good",
        &[("service", MatchOp::Equal, "db")],
        0,
        10,
    )])
    .expect("valid");
    let err = c
        .set_silences(vec![
            silence("good", &[("service", MatchOp::Equal, "db")], 0, 10),
            silence(
                "bad",
                &[
                    ("service", MatchOp::Equal, "db"),
                    ("host", MatchOp::NotRegex, "db-(primary"),
                ],
                0,
                10,
            ),
        ])
        .expect_err("bad regex");
    match &err {
        CorrelateError::InvalidMatcher {
            silence_id,
            index,
            name,
            op,
            ..
        } => {
            assert_eq!(silence_id, "bad");
            assert_eq!(*index, 1);
            assert_eq!(name, "host");
            assert_eq!(*op, "!~");
        }
        other => panic!("unexpected {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("matcher 1 (host !~ \"db-(primary\")"), "{msg}");
    assert_eq!(c.silences().len(), 1, "the old silences stay");
    // Other refusals: no matchers, empty window.
    assert!(matches!(
        c.set_silences(vec![silence("x", &[], 0, 10)]),
        Err(CorrelateError::InvalidSilence { .. })
    ));
    assert!(matches!(
        c.set_silences(vec![silence(
            "x",
            &[("service", MatchOp::Equal, "db")],
            10,
            10
        )]),
        Err(CorrelateError::InvalidSilence { .. })
    ));
}
