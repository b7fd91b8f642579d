//! Topology and time correlation: a cascade becomes one incident attributed to the
//! upstream-most service, whatever order its signals arrive in; deployments are cited;
//! severity follows score × criticality × breadth.

mod common;

use common::*;
use sightline_correlate::{Correlator, CorrelatorConfig, Output};
use sightline_model::{Incident, IncidentStatus, Severity};

fn affected(i: &Incident) -> Vec<&str> {
    let mut v: Vec<&str> = i.affected_services.iter().map(String::as_str).collect();
    v.sort();
    v
}

fn cascade(order: &[&str]) -> (Vec<Output>, Incident) {
    let mut c = correlator();
    let mut out = Vec::new();
    for (i, service) in order.iter().enumerate() {
        let t = i as i64 * 2_000;
        out.extend(c.on_anomaly(&anomaly(service, "latency_ms", t), t));
    }
    out.extend(c.tick(10_000));
    let inc = opened(&out);
    assert_eq!(inc.len(), 1, "exactly one incident for {order:?}: {out:?}");
    let inc = inc[0].clone();
    (out, inc)
}

#[test]
fn cascade_db_first_is_one_incident_rooted_at_db() {
    let (out, inc) = cascade(&["db", "checkout", "frontend"]);
    assert_eq!(inc.service_name, "db");
    assert_eq!(affected(&inc), ["checkout", "db", "frontend"]);
    assert_eq!(inc.occurrences, 3);
    let links = correlations(&out);
    assert_eq!(links.len(), 2);
    assert!(
        links.iter().all(|l| l.kind.as_str() == "causal"),
        "{links:?}"
    );
    assert!(links.iter().all(|l| l.incident_id == inc.id));
    assert!(
        links[0].reason.contains("checkout depends directly on db"),
        "{}",
        links[0].reason
    );
    assert_eq!(inc.title, "db: latency_ms anomaly (+2 downstream services)");
    assert!(
        inc.description
            .contains("Affected services: db, checkout, frontend."),
        "{}",
        inc.description
    );
}

#[test]
fn cascade_downstream_first_moves_the_root_upstream() {
    let (_, inc) = cascade(&["frontend", "checkout", "db"]);
    assert_eq!(inc.service_name, "db");
    assert_eq!(affected(&inc), ["checkout", "db", "frontend"]);
    let roots: Vec<&str> = inc
        .timeline
        .iter()
        .filter(|e| e.kind == "root")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(roots.len(), 2, "frontend → checkout → db: {roots:?}");
    assert!(roots[1].starts_with("attributed to db"), "{roots:?}");
    assert_eq!(inc.title, "db: latency_ms anomaly (+2 downstream services)");
}

#[test]
fn cascade_ids_do_not_depend_on_anything_but_the_inputs() {
    let (_, a) = cascade(&["frontend", "checkout", "db"]);
    let (_, b) = cascade(&["frontend", "checkout", "db"]);
    assert_eq!(a.id, b.id);
    let (_, c) = cascade(&["db", "checkout", "frontend"]);
    assert_ne!(
        a.id, c.id,
        "a different first signal is a different incident"
    );
}

#[test]
fn a_downstream_signal_after_opening_folds_in_and_is_published_after_the_interval() {
    let mut c = correlator();
    c.on_anomaly(&anomaly("db", "latency_ms", 0), 0);
    let inc = opened(&c.tick(10_000))[0].clone();
    let out = c.on_anomaly(&anomaly("catalog", "error_rate", 20_000), 20_000);
    assert!(updated(&out).is_empty(), "within the group interval");
    let links = correlations(&out);
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].kind.as_str(), "causal");
    assert_eq!(links[0].target_id, inc.anomaly_ids[0]);
    let out = c.tick(40_000);
    let u = updated(&out);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].id, inc.id);
    assert_eq!(affected(u[0]), ["catalog", "db"]);
    // Outside the correlation window a related signal opens its own incident.
    c.on_anomaly(&anomaly("db", "latency_ms", 200_000), 200_000);
    let out = c.on_anomaly(&anomaly("search", "latency_ms", 200_000), 200_000);
    assert!(correlations(&out).is_empty(), "search is unrelated");
}

#[test]
fn a_signal_linking_two_waiting_groups_merges_them() {
    let mut c = correlator();
    // catalog and payments are not related to each other…
    c.on_anomaly(&anomaly("catalog", "latency_ms", 0), 0);
    c.on_anomaly(&anomaly("payments", "latency_ms", 1_000), 1_000);
    assert_eq!(c.waiting().count(), 2);
    // …checkout calls payments, so it joins the payments group (catalog and checkout
    // are siblings under frontend, not related to each other)…
    c.on_anomaly(&anomaly("checkout", "latency_ms", 2_000), 2_000);
    // …so there are still two groups.
    assert_eq!(c.waiting().count(), 2);
    // frontend calls both checkout and catalog: it links the two groups into one.
    c.on_anomaly(&anomaly("frontend", "latency_ms", 3_000), 3_000);
    assert_eq!(c.waiting().count(), 1);
    let out = c.tick(10_000);
    let inc = opened(&out);
    assert_eq!(inc.len(), 1);
    assert_eq!(
        affected(inc[0]),
        ["catalog", "checkout", "frontend", "payments"]
    );
    assert_eq!(inc[0].occurrences, 4);
    assert!(inc[0].timeline.iter().any(|e| e.kind == "merged"));
    assert_eq!(c.stats().merged, 1);
}

#[test]
fn a_published_incident_absorbed_by_a_merge_is_resolved_and_points_at_the_other() {
    let mut c = correlator();
    c.on_anomaly(&anomaly("catalog", "latency_ms", 0), 0);
    let a = opened(&c.tick(10_000))[0].clone();
    c.on_anomaly(&anomaly("payments", "latency_ms", 11_000), 11_000);
    let b = opened(&c.tick(21_000))[0].clone();
    let out = c.on_anomaly(&anomaly("frontend", "latency_ms", 22_000), 22_000);
    let u = updated(&out);
    let absorbed = u
        .iter()
        .find(|i| i.id == b.id)
        .expect("b published as merged");
    assert_eq!(absorbed.status, IncidentStatus::Resolved);
    assert!(
        absorbed
            .timeline
            .last()
            .expect("entry")
            .message
            .contains(&a.id)
    );
    let survivor = c.incident(&a.id).expect("a");
    assert_eq!(survivor.status, IncidentStatus::Open);
    assert!(survivor.affected_services.contains(&"payments".to_owned()));
}

#[test]
fn severity_is_score_times_criticality_times_breadth() {
    // Medium anomalies open incidents here, to watch severity grow from medium.
    let every_anomaly = || {
        correlator_with(CorrelatorConfig {
            min_opening_anomaly_severity: Severity::Low,
            ..CorrelatorConfig::default()
        })
    };
    let mut c = every_anomaly();
    // search: criticality 1, score 0.6 → medium.
    c.on_anomaly(
        &anomaly_with("search", "latency_ms", 0, 0.6, Severity::Medium),
        0,
    );
    // db: criticality 2, score 0.7 → 1.4 → critical.
    c.on_anomaly(
        &anomaly_with("db", "latency_ms", 0, 0.7, Severity::Medium),
        0,
    );
    let out = c.tick(10_000);
    let by = |s: &str| {
        opened(&out)
            .into_iter()
            .find(|i| i.service_name == s)
            .expect("incident")
            .clone()
    };
    assert_eq!(by("search").severity, Severity::Medium);
    assert!((by("search").score - 0.6).abs() < 1e-9);
    assert_eq!(by("db").severity, Severity::Critical);
    // Breadth: payments alone 0.7 → medium; with checkout, 0.7 × 1.25 = 0.875 → high.
    let mut c = every_anomaly();
    c.on_anomaly(
        &anomaly_with("payments", "latency_ms", 0, 0.7, Severity::Medium),
        0,
    );
    let one = c.tick(10_000);
    assert_eq!(opened(&one)[0].severity, Severity::Medium);
    c.on_anomaly(
        &anomaly_with("checkout", "latency_ms", 11_000, 0.7, Severity::High),
        11_000,
    );
    let out = c.tick(60_000);
    let u = updated(&out);
    assert_eq!(u[0].severity, Severity::High);
    assert!((u[0].score - 0.875).abs() < 1e-9);
    assert!(u[0].timeline.iter().any(|e| e.kind == "severity"));
}

/// A correlator where error events open incidents by themselves, like anomalies.
fn events_open_incidents() -> Correlator {
    correlator_with(CorrelatorConfig {
        min_opening_event_severity: Some(Severity::High),
        ..CorrelatorConfig::default()
    })
}

#[test]
fn by_default_error_events_are_evidence_they_join_but_neither_open_nor_hold_incidents() {
    let mut c = correlator();
    assert!(
        c.on_event(&event("e-1", "search", "ERROR", Severity::Critical, 0), 0)
            .is_empty()
    );
    assert_eq!(c.waiting().count(), 0, "a routine error opens nothing");
    assert_eq!(c.stats().ignored_events, 1);
    c.on_anomaly(
        &anomaly_with("search", "error_rate", 1_000, 0.9, Severity::High),
        1_000,
    );
    c.on_event(
        &event("e-2", "search", "ERROR", Severity::High, 2_000),
        2_000,
    );
    let inc = opened(&c.tick(12_000))[0].clone();
    assert_eq!(inc.event_ids, ["e-2"], "the error joined as evidence");
    // Errors keep arriving, but the anomaly stopped: the incident resolves on time.
    let mut resolved = false;
    for minute in 1..=8 {
        let t = 2_000 + minute * 60_000;
        let mut out = c.on_event(
            &event(
                &format!("e-r{minute}"),
                "search",
                "ERROR",
                Severity::High,
                t,
            ),
            t,
        );
        out.extend(c.tick(t));
        resolved |= out
            .iter()
            .any(|o| matches!(o, Output::Updated(i) if i.status == IncidentStatus::Resolved));
    }
    assert!(resolved, "evidence must not hold an incident open");
}

#[test]
fn a_marginal_anomaly_alone_opens_nothing_but_joins_a_strong_one_as_evidence() {
    let mut c = correlator();
    c.on_anomaly(
        &anomaly_with("search", "cpu_usage", 0, 0.52, Severity::Medium),
        0,
    );
    assert_eq!(c.waiting().count(), 0, "a marginal deviation pages no one");
    c.on_anomaly(
        &anomaly_with("search", "latency_ms", 1_000, 0.9, Severity::High),
        1_000,
    );
    c.on_anomaly(
        &anomaly_with("search", "cpu_usage", 2_000, 0.55, Severity::Medium),
        2_000,
    );
    let inc = opened(&c.tick(12_000))[0].clone();
    assert_eq!(inc.anomaly_ids.len(), 2, "{:?}", inc.anomaly_ids);
}

#[test]
fn events_count_with_their_severity_and_info_is_ignored() {
    let mut c = events_open_incidents();
    assert!(
        c.on_event(&event("e-0", "search", "INFO", Severity::Info, 0), 0)
            .is_empty()
    );
    assert!(
        c.on_event(&event("e-w", "search", "WARNING", Severity::Medium, 0), 0)
            .is_empty(),
        "below min_event_severity (high)"
    );
    assert_eq!(c.waiting().count(), 0);
    c.on_event(
        &event("e-1", "search", "CRITICAL", Severity::Critical, 0),
        0,
    );
    let inc = opened(&c.tick(10_000))[0].clone();
    // Score 1.0 alone is high; the critical event makes it critical.
    assert_eq!(inc.severity, Severity::Critical);
    assert_eq!(inc.event_ids, ["e-1"]);
    assert_eq!(inc.correlation_id, "req-e-1");
    assert_eq!(
        inc.title,
        "search: CRITICAL \"CRITICAL in search: card declined\""
    );
    assert_eq!(c.stats().ignored_events, 2);
}

#[test]
fn a_recent_deployment_is_cited_as_the_likely_cause() {
    let mut c = events_open_incidents();
    let mut deploy = event("d-1", "payments", "DEPLOYMENT", Severity::Info, 0);
    deploy
        .metadata
        .insert("version".into(), serde_json::json!("2.4.1"));
    assert!(c.on_event(&deploy, 0).is_empty());
    c.on_event(
        &event("e-1", "payments", "ERROR", Severity::High, 180_000),
        180_000,
    );
    let out = c.tick(190_000);
    let inc = opened(&out)[0].clone();
    assert!(
        inc.description
            .contains("payments was deployed 3 min before the first error (version 2.4.1)"),
        "{}",
        inc.description
    );
    assert!(
        inc.timeline
            .iter()
            .any(|e| e.message.contains("likely cause"))
    );
    let links = correlations(&out);
    assert!(
        links
            .iter()
            .any(|l| l.source_id == "d-1" && l.kind.as_str() == "causal")
    );
    // A deployment older than the lookback (30 min) is not cited.
    let mut c = events_open_incidents();
    c.on_event(&deploy, 0);
    c.on_event(
        &event("e-2", "payments", "ERROR", Severity::High, 2_000_000),
        2_000_000,
    );
    let inc = opened(&c.tick(2_010_000))[0].clone();
    assert!(!inc.description.contains("deployed"), "{}", inc.description);
}

#[test]
fn a_deployment_arriving_after_its_symptoms_is_still_cited() {
    let mut c = events_open_incidents();
    c.on_event(
        &event("e-1", "payments", "ERROR", Severity::High, 60_000),
        60_000,
    );
    let mut deploy = event("d-1", "payments", "DEPLOYMENT", Severity::Info, 0);
    deploy.tags.insert("version".into(), "7".into());
    c.on_event(&deploy, 61_000);
    let inc = opened(&c.tick(70_000))[0].clone();
    assert!(
        inc.description
            .contains("payments was deployed 1 min before the first error (version 7)"),
        "{}",
        inc.description
    );
}

#[test]
fn group_by_more_labels_keeps_signals_apart_but_topology_and_time_still_fold() {
    let cfg = CorrelatorConfig {
        group_by: vec!["service".into(), "signal".into()],
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let out = c.on_anomaly(&anomaly("search", "cpu_usage", 1_000), 1_000);
    assert!(out.is_empty());
    let out = c.tick(10_000);
    let inc = opened(&out);
    assert_eq!(
        inc.len(),
        1,
        "same service, other signal: folded (time based)"
    );
    assert_eq!(correlations(&out)[0].kind.as_str(), "time_based");
    assert!(
        inc[0]
            .title
            .starts_with("search: latency_ms anomaly and 1 more signals"),
        "{}",
        inc[0].title
    );
}

#[test]
fn the_generated_description_reads_well() {
    let mut c = correlator();
    let mut deploy = event("d-1", "db", "DEPLOYMENT", Severity::Info, 0);
    deploy
        .metadata
        .insert("version".into(), serde_json::json!("14.2"));
    c.on_event(&deploy, 0);
    c.on_anomaly(&anomaly("checkout", "latency_ms", 100_000), 100_000);
    c.on_anomaly(&anomaly("db", "latency_ms", 102_000), 102_000);
    c.on_anomaly(&anomaly("db", "latency_ms", 103_000), 103_000);
    c.on_event(
        &event("e-1", "checkout", "ERROR", Severity::High, 104_000),
        104_000,
    );
    let inc = opened(&c.tick(110_000))[0].clone();
    let expected = "\
Critical incident on db (criticality 2), score 2.25.
Affected services: checkout, db.
4 signal(s) in total; evidence:
- checkout latency_ms = 950 (expected 80–120), zscore detector, once, first at +0 ms
- db latency_ms = 950 (expected 80–120), zscore detector, 2 times, first at +2 s
- checkout ERROR \"ERROR in checkout: card declined\", once, first at +4 s
Likely cause: db was deployed 1 min 40 s before the first error (version 14.2).";
    assert_eq!(inc.description, expected);
    assert_eq!(inc.title, "db: latency_ms anomaly (+1 downstream service)");
    assert_eq!(inc.severity, Severity::Critical);
}
