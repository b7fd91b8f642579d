//! Lifecycle: auto-resolve, reopen-as-new, operator transitions and their errors,
//! flapping, manual incidents, changes made on another node.

mod common;

use common::*;
use sightline_correlate::{CorrelateError, CorrelatorConfig, ManualIncident, Output};
use sightline_model::{IncidentStatus, Severity};

#[test]
fn quiet_incidents_resolve_and_the_next_signal_opens_a_new_one() {
    let mut c = correlator();
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let first = opened(&c.tick(10_000))[0].clone();
    // Signals keep it open.
    c.on_anomaly(&anomaly("search", "latency_ms", 200_000), 200_000);
    assert!(
        updated(&c.tick(499_999))
            .iter()
            .all(|i| i.status == IncidentStatus::Open)
    );
    let out = c.tick(500_000);
    let u = updated(&out);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].status, IncidentStatus::Resolved);
    assert_eq!(u[0].resolved_at, Some(500_000));
    assert_eq!(u[0].timeline.last().expect("entry").kind, "resolved");
    assert_eq!(c.stats().auto_resolved, 1);
    // A new signal on the resolved group: a new incident.
    c.on_anomaly(&anomaly("search", "latency_ms", 600_000), 600_000);
    let second = opened(&c.tick(610_000))[0].clone();
    assert_ne!(second.id, first.id);
    assert!(!second.flapping);
    assert_eq!(
        c.incident(&first.id).expect("retained").status,
        IncidentStatus::Resolved
    );
}

#[test]
fn timers_run_before_a_late_signal() {
    // No tick between: the signal call itself first resolves the quiet incident.
    let mut c = correlator();
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let first = opened(&c.tick(10_000))[0].clone();
    let out = c.on_anomaly(&anomaly("search", "latency_ms", 400_000), 400_000);
    let u = updated(&out);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].id, first.id);
    assert_eq!(u[0].status, IncidentStatus::Resolved);
    assert_eq!(
        c.waiting().count(),
        1,
        "the late signal waits as a new group"
    );
}

#[test]
fn operator_transitions_and_their_errors() {
    let mut c = correlator();
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let waiting_id = c.waiting().next().expect("waiting").id.clone();
    assert_eq!(
        c.acknowledge(&waiting_id, "alice", 1_000),
        Err(CorrelateError::UnknownIncident {
            id: waiting_id.clone()
        }),
        "not yet published"
    );
    let id = opened(&c.tick(10_000))[0].id.clone();

    let out = c.acknowledge(&id, "alice", 11_000).expect("ack");
    let i = updated(&out)[0];
    assert_eq!(i.status, IncidentStatus::Acknowledged);
    assert_eq!(i.acknowledged_at, Some(11_000));
    assert_eq!(i.timeline.last().expect("entry").actor, "alice");
    let err = c.acknowledge(&id, "bob", 12_000).expect_err("twice");
    assert_eq!(
        err,
        CorrelateError::InvalidTransition {
            id: id.clone(),
            from: IncidentStatus::Acknowledged,
            action: "acknowledge"
        }
    );
    assert_eq!(
        err.to_string(),
        format!("cannot acknowledge incident '{id}': it is acknowledged")
    );
    assert!(matches!(
        c.reopen(&id, "bob", 12_000),
        Err(CorrelateError::InvalidTransition {
            action: "reopen",
            ..
        })
    ));

    let out = c.assign(&id, Some("bob"), "alice", 13_000).expect("assign");
    assert_eq!(updated(&out)[0].assignee.as_deref(), Some("bob"));
    let out = c
        .add_note(&id, "restarting the pool", "bob", 14_000)
        .expect("note");
    let last = updated(&out)[0].timeline.last().expect("entry").clone();
    assert_eq!((last.kind.as_str(), last.actor.as_str()), ("note", "bob"));

    let out = c.resolve(&id, "bob", 15_000).expect("resolve");
    assert_eq!(updated(&out)[0].status, IncidentStatus::Resolved);
    assert!(matches!(
        c.resolve(&id, "bob", 16_000),
        Err(CorrelateError::InvalidTransition {
            from: IncidentStatus::Resolved,
            ..
        })
    ));
    assert!(matches!(
        c.acknowledge(&id, "bob", 16_000),
        Err(CorrelateError::InvalidTransition { .. })
    ));
    let out = c.reopen(&id, "carol", 17_000).expect("reopen");
    let i = updated(&out)[0];
    assert_eq!(i.status, IncidentStatus::Open);
    assert_eq!(i.resolved_at, None);
    // Reopened: the group's signals join it again.
    let out = c.on_anomaly(&anomaly("search", "latency_ms", 18_000), 18_000);
    assert!(opened(&out).is_empty());
    assert_eq!(c.incident(&id).expect("known").occurrences, 2);
    assert_eq!(
        c.assign("inc-nope", None, "x", 1),
        Err(CorrelateError::UnknownIncident {
            id: "inc-nope".into()
        })
    );
}

#[test]
fn a_flapping_group_is_held_open_not_reopened_as_new_incidents() {
    let cfg = CorrelatorConfig {
        group_wait_ms: 1_000,
        resolve_after_ms: 60_000,
        flap_threshold: 4,
        flap_window_ms: 3_600_000,
        flap_resolve_after_ms: 600_000,
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    let mut ids = Vec::new();
    let mut t = 0;
    // Two full cycles: open, resolve, open, resolve (4 transitions).
    for _ in 0..2 {
        c.on_anomaly(&anomaly("search", "latency_ms", t), t);
        let out = c.tick(t + 1_000);
        ids.push(opened(&out)[0].id.clone());
        let out = c.tick(t + 61_000);
        assert_eq!(updated(&out)[0].status, IncidentStatus::Resolved);
        t += 120_000;
    }
    assert_ne!(ids[0], ids[1]);
    // Third opening: held as flapping, the last incident reopens.
    let out = c.on_anomaly(&anomaly("search", "latency_ms", t), t);
    assert!(opened(&out).is_empty());
    let u = updated(&out);
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].id, ids[1]);
    assert!(u[0].flapping);
    assert_eq!(u[0].status, IncidentStatus::Open);
    assert!(u[0].timeline.iter().any(|e| e.kind == "flapping"));
    assert_eq!(c.stats().flapping, 1);
    // Held open: one minute of quiet does not resolve it, ten do.
    assert!(
        updated(&c.tick(t + 120_000))
            .iter()
            .all(|i| i.status != IncidentStatus::Resolved)
    );
    assert_eq!(
        c.incident(&ids[1]).expect("known").status,
        IncidentStatus::Open
    );
    let out = c.tick(t + 600_000);
    assert_eq!(updated(&out)[0].status, IncidentStatus::Resolved);
    // Still flapping within the window: the next signal reopens the same incident again.
    let t2 = t + 700_000;
    let out = c.on_anomaly(&anomaly("search", "latency_ms", t2), t2);
    assert_eq!(updated(&out)[0].id, ids[1]);
    // Long after the window, a signal opens a fresh incident.
    let t3 = t2 + 600_000 + 3_700_000;
    c.tick(t3 - 1);
    c.on_anomaly(&anomaly("search", "latency_ms", t3), t3);
    let out = c.tick(t3 + 1_000);
    let o = opened(&out);
    assert_eq!(o.len(), 1);
    assert!(!ids.contains(&o[0].id));
    assert!(!o[0].flapping);
}

#[test]
fn manual_incidents_take_operator_actions_and_never_resolve_themselves() {
    let mut c = correlator();
    let m = ManualIncident {
        id: "0190a1b2-0000-7000-8000-000000000001".into(),
        title: "Checkout slow for EU customers".into(),
        description: "reported by support".into(),
        severity: Severity::High,
        service_name: "checkout".into(),
        affected_services: vec!["frontend".into()],
        correlation_id: "req-9".into(),
    };
    let out = c.create_manual(m.clone(), "alice", 0).expect("created");
    let i = opened(&out)[0];
    assert_eq!(i.affected_services, ["checkout", "frontend"]);
    assert_eq!(i.timeline[0].actor, "alice");
    assert!(matches!(
        c.create_manual(m.clone(), "alice", 0),
        Err(CorrelateError::DuplicateIncident { .. })
    ));
    assert!(matches!(
        c.create_manual(
            ManualIncident {
                title: " ".into(),
                id: "x".into(),
                ..m.clone()
            },
            "alice",
            0
        ),
        Err(CorrelateError::InvalidIncident { field: "title", .. })
    ));
    // A day of quiet: still open (it is re-published every repeat interval).
    let out = c.tick(86_400_000);
    assert!(
        out.iter()
            .all(|o| matches!(o, Output::Updated(i) if i.status == IncidentStatus::Open))
    );
    // Signals do not fold into a manual incident.
    c.on_anomaly(&anomaly("checkout", "latency_ms", 86_400_000), 86_400_000);
    assert_eq!(c.waiting().count(), 1);
    c.resolve(&m.id, "alice", 86_500_000).expect("resolve");
}

#[test]
fn changes_made_on_another_node_are_adopted_and_echoes_are_no_ops() {
    let mut a = correlator();
    let mut b = correlator();
    for c in [&mut a, &mut b] {
        c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
        c.tick(10_000);
    }
    let id = a.incidents().next().expect("one").id.clone();
    // An operator acknowledges and assigns on node A.
    a.acknowledge(&id, "alice", 20_000).expect("ack");
    let out = a
        .assign(&id, Some("alice"), "alice", 21_000)
        .expect("assign");
    let published = updated(&out)[0].clone();
    // Node B adopts it.
    assert!(b.apply_external_update(&published, 22_000).is_empty());
    let got = b.incident(&id).expect("known").clone();
    assert_eq!(got.status, IncidentStatus::Acknowledged);
    assert_eq!(got.acknowledged_at, Some(20_000));
    assert_eq!(got.assignee.as_deref(), Some("alice"));
    assert!(
        got.timeline
            .iter()
            .any(|e| e.actor == "alice" && e.kind == "status")
    );
    // Applying it again (an echo) changes nothing.
    b.apply_external_update(&published, 23_000);
    assert_eq!(b.incident(&id).expect("known"), &got);
    // A stale copy (older status) does not roll B back.
    let mut stale = published.clone();
    stale.status = IncidentStatus::Open;
    stale.timeline.retain(|e| e.kind != "status");
    b.apply_external_update(&stale, 24_000);
    assert_eq!(
        b.incident(&id).expect("known").status,
        IncidentStatus::Acknowledged
    );
    // A resolve on A: B releases the group, so B's next signal opens a new incident.
    let out = a.resolve(&id, "alice", 30_000).expect("resolve");
    b.apply_external_update(updated(&out)[0], 31_000);
    assert_eq!(
        b.incident(&id).expect("known").status,
        IncidentStatus::Resolved
    );
    b.on_anomaly(&anomaly("search", "latency_ms", 32_000), 32_000);
    assert_eq!(b.waiting().count(), 1);
    // Unknown incidents are ignored.
    let mut other = published.clone();
    other.id = "inc-elsewhere".into();
    assert!(b.apply_external_update(&other, 33_000).is_empty());
}

#[test]
fn resolved_incidents_are_evicted_after_their_retention() {
    let cfg = CorrelatorConfig {
        retention_ms: 600_000,
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let id = opened(&c.tick(10_000))[0].id.clone();
    c.resolve(&id, "alice", 20_000).expect("resolve");
    c.tick(619_999);
    assert!(c.incident(&id).is_some());
    c.tick(620_000);
    assert!(c.incident(&id).is_none());
    assert_eq!(c.stats().evicted, 1);
    assert_eq!(c.state().incident_count(), 0);
    assert_eq!(
        c.reopen(&id, "alice", 620_001),
        Err(CorrelateError::UnknownIncident { id })
    );
}

#[test]
fn a_flapping_group_whose_last_incident_was_evicted_opens_one_marked_flapping() {
    let cfg = CorrelatorConfig {
        group_wait_ms: 1_000,
        resolve_after_ms: 60_000,
        flap_threshold: 2,
        retention_ms: 1_000,
        ..CorrelatorConfig::default()
    };
    let mut c = correlator_with(cfg);
    c.on_anomaly(&anomaly("search", "latency_ms", 0), 0);
    let first = opened(&c.tick(1_000))[0].id.clone();
    c.tick(61_000); // resolved: open + resolve = 2 transitions
    c.tick(62_000); // evicted after 1 s of retention
    assert!(c.incident(&first).is_none());
    c.on_anomaly(&anomaly("search", "latency_ms", 70_000), 70_000);
    let out = c.tick(71_000);
    let o = opened(&out);
    assert_eq!(o.len(), 1);
    assert_ne!(o[0].id, first);
    assert!(o[0].flapping);
    assert!(o[0].timeline.iter().any(|e| e.kind == "flapping"));
}
