//! Grouping: dedup by fingerprint, group wait, group interval, repeat interval,
//! redelivery, the 10 000-anomaly storm, and the overflow cap.

mod common;

use common::*;
use sightline_correlate::{CorrelatorConfig, Output, SuppressionReason};
use sightline_model::IncidentStatus;

#[test]
fn repeats_of_one_fingerprint_dedup_into_one_incident() {
    let mut c = correlator();
    let mut out = Vec::new();
    for i in 0..5 {
        out.extend(c.on_anomaly(&anomaly("search", "latency_ms", i * 1000), i * 1000));
    }
    // Nothing is published during the group wait.
    assert!(out.is_empty(), "{out:?}");
    let out = c.tick(10_000);
    let inc = opened(&out);
    assert_eq!(inc.len(), 1);
    assert_eq!(inc[0].occurrences, 5);
    assert_eq!(inc[0].anomaly_ids.len(), 5);
    assert_eq!(inc[0].service_name, "search");
    assert_eq!(inc[0].status, IncidentStatus::Open);
    assert!(inc[0].id.starts_with("inc-"));
    assert_eq!(
        inc[0].labels.get("service").map(String::as_str),
        Some("search")
    );
    // The repeats inside the 60 s timeline interval added no entries of their own.
    assert_eq!(inc[0].timeline.len(), 1, "{:?}", inc[0].timeline);
    assert_eq!(inc[0].title, "search: latency_ms anomaly");
    assert!(
        inc[0].description.contains("5 times"),
        "{}",
        inc[0].description
    );
    assert!(
        inc[0].description.contains("expected 80–120"),
        "{}",
        inc[0].description
    );
}

#[test]
fn group_wait_collects_then_opens_once() {
    let mut c = correlator();
    assert!(
        c.on_anomaly(&anomaly("search", "latency_ms", 0), 0)
            .is_empty()
    );
    assert!(c.tick(9_999).is_empty(), "still waiting");
    assert_eq!(c.waiting().count(), 1);
    assert!(
        c.incident(&c.waiting().next().expect("waiting").id.clone())
            .is_none()
    );
    let out = c.tick(10_000);
    assert_eq!(opened(&out).len(), 1);
    assert!(c.tick(10_001).is_empty(), "opened exactly once");
}

#[test]
fn group_interval_coalesces_updates() {
    let mut c = correlator();
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let open = c.tick(10_000);
    assert_eq!(opened(&open).len(), 1);
    // New evidence within the group interval: no update yet.
    let mut out = Vec::new();
    for t in [11_000, 15_000, 20_000, 39_000] {
        out.extend(c.on_anomaly(&anomaly("search", "error_rate", t), t));
    }
    assert!(updated(&out).is_empty(), "{out:?}");
    // The first signal of a new fingerprint on the same service is a time-based link.
    let links = correlations(&out);
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].kind.as_str(), "time_based");
    // At the interval, one update carrying all of it.
    let out = c.tick(40_000);
    let u = updated(&out);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].occurrences, 5);
    assert!(c.tick(40_500).is_empty());
    // A signal after the interval is published at once.
    let out = c.on_anomaly(&anomaly("search", "error_rate", 71_000), 71_000);
    assert_eq!(updated(&out).len(), 1);
}

#[test]
fn repeat_interval_republishes_an_unchanged_open_incident_but_not_an_acknowledged_one() {
    let cfg = CorrelatorConfig {
        repeat_interval_ms: 120_000,
        resolve_after_ms: 600_000,
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let id = opened(&c.tick(10_000))[0].id.clone();
    assert!(c.tick(129_999).is_empty());
    let out = c.tick(130_000);
    let u = updated(&out);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].id, id);
    assert_eq!(u[0].occurrences, 1, "unchanged");
    c.acknowledge(&id, "alice", 131_000).expect("ack");
    assert!(
        updated(&c.tick(300_000)).is_empty(),
        "acknowledged: no repeats"
    );
}

#[test]
fn redelivery_is_a_no_op() {
    let mut c = correlator();
    let a = anomaly("search", "latency_ms", 0);
    c.on_anomaly(&a, 0);
    assert!(c.on_anomaly(&a, 1_000).is_empty());
    let inc = opened(&c.tick(10_000))[0].clone();
    assert_eq!(inc.occurrences, 1);
    // After publication, too: no output, no counter.
    assert!(c.on_anomaly(&a, 50_000).is_empty());
    assert_eq!(c.incident(&inc.id).expect("known").occurrences, 1);
    assert_eq!(
        c.incident(&inc.id).expect("known").updated_at,
        inc.updated_at
    );
    assert_eq!(c.stats().duplicates, 2);
    // A redelivered event, too.
    let e = event(
        "e-1",
        "search",
        "ERROR",
        sightline_model::Severity::High,
        51_000,
    );
    let first = c.on_event(&e, 51_000);
    assert!(!first.is_empty());
    assert!(c.on_event(&e, 52_000).is_empty());
    assert_eq!(c.incident(&inc.id).expect("known").occurrences, 2);
}

#[test]
fn a_storm_of_ten_thousand_anomalies_is_one_incident_with_bounded_state() {
    let mut c = correlator();
    let mut out = Vec::new();
    for i in 0..10_000_i64 {
        let t = i * 10;
        out.extend(c.on_anomaly(&anomaly("search", "latency_ms", t), t));
    }
    out.extend(c.tick(100_000));
    assert_eq!(opened(&out).len(), 1);
    let ids: std::collections::BTreeSet<_> = out
        .iter()
        .filter_map(|o| o.incident().map(|i| i.id.clone()))
        .collect();
    assert_eq!(ids.len(), 1, "one incident");
    // Coalesced: one update per group interval at most (100 s / 30 s), plus the open.
    assert!(updated(&out).len() <= 4, "{}", updated(&out).len());
    let id = ids.into_iter().next().expect("one");
    let inc = c.incident(&id).expect("known");
    assert_eq!(inc.occurrences, 10_000);
    let cfg = CorrelatorConfig::default();
    assert_eq!(inc.anomaly_ids.len(), cfg.max_evidence_ids);
    assert!(inc.timeline.len() <= 5, "{:?}", inc.timeline);
    // State bounded by the caps, not by the number of signals.
    let size = c.state().size_hint();
    assert!(
        size <= cfg.max_seen_ids + cfg.max_evidence_ids + cfg.max_timeline_entries + 10,
        "{size}"
    );
    // The most recent ids are still recognised as redeliveries.
    assert!(
        c.on_anomaly(&anomaly("search", "latency_ms", 99_990), 100_001)
            .is_empty()
    );
}

#[test]
fn the_cap_on_active_incidents_suppresses_with_a_count() {
    let cfg = CorrelatorConfig {
        max_active_incidents: 2,
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    c.on_anomaly(&anomaly("payments", "latency_ms", 0), 0);
    let out = c.on_anomaly(&anomaly("catalog", "latency_ms", 0), 0);
    let s = suppressions(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].reason, SuppressionReason::Overflow { limit: 2 });
    assert_eq!(c.stats().overflow, 1);
    assert_eq!(opened(&c.tick(10_000)).len(), 2);
    assert!(matches!(out[0], Output::Suppressed(_)));
}

#[test]
fn repeats_after_the_timeline_interval_add_one_entry_and_a_pattern_link() {
    let mut c = correlator();
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    c.tick(10_000);
    let mut out = Vec::new();
    for t in (1..=30).map(|i| i * 5_000) {
        out.extend(c.on_anomaly(&anomaly("search", "latency_ms", t), t));
    }
    // 150 s of repeats with a 60 s interval: two pattern links, two timeline entries.
    let links = correlations(&out);
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links.iter().all(|l| l.kind.as_str() == "pattern_based"));
    assert_eq!(
        links[0].target_id,
        c.incidents().next().expect("one").anomaly_ids[0]
    );
    let inc = c.incidents().next().expect("one");
    let repeats: Vec<_> = inc
        .timeline
        .iter()
        .filter(|e| e.kind == "anomaly")
        .collect();
    assert_eq!(repeats.len(), 2);
    assert!(
        repeats[0]
            .message
            .contains("repeated 12 time(s) in the last 1 min"),
        "{}",
        repeats[0].message
    );
    assert_eq!(inc.occurrences, 31);
}

#[test]
fn an_old_redelivery_of_the_first_signal_never_overwrites_its_incident() {
    let cfg = CorrelatorConfig {
        max_seen_ids: 2,
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    let first = anomaly("search", "latency_ms", 0);
    c.on_anomaly(&first, 0);
    for t in 1..5 {
        c.on_anomaly(&anomaly("search", "latency_ms", t * 1000), t * 1000);
    }
    let id = opened(&c.tick(10_000))[0].id.clone();
    c.resolve(&id, "alice", 11_000).expect("resolve");
    // The first anomaly is no longer among the remembered ids; redelivered, it would
    // derive the same incident id: it is recognised and ignored.
    assert!(c.on_anomaly(&first, 12_000).is_empty());
    assert!(c.tick(30_000).is_empty());
    assert_eq!(
        c.incident(&id).expect("kept").status,
        IncidentStatus::Resolved
    );
}

#[test]
fn an_empty_group_by_puts_every_signal_in_one_group() {
    let cfg = CorrelatorConfig {
        group_by: vec![],
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let out = c.on_anomaly(&anomaly("payments", "latency_ms", 1_000), 1_000);
    assert!(out.is_empty());
    let out = c.tick(10_000);
    let o = opened(&out);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].affected_services, ["search", "payments"]);
    // Unrelated services in one group: linked by the shared (empty) group labels.
    assert_eq!(correlations(&out)[0].kind.as_str(), "pattern_based");
    assert_eq!(
        o[0].title,
        "search: latency_ms anomaly (+1 related service)"
    );
}
