//! Conformance cases for [`IncidentStore`]: idempotent anomaly and correlation writes,
//! incident upserts where an older version never overwrites a newer one, incident filters
//! and keyset pagination against brute force, the status lifecycle of `update_incident`
//! (also under concurrency), silences and the versioned topology.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use sightline_model::{
    Anomaly, Correlation, CorrelationKind, Incident, IncidentStatus, MatchOp, Matcher, ServiceNode,
    Severity, Signal, Silence, TimelineEntry, Topology,
};
use sightline_store::{
    AnomalyQuery, Cursor, IncidentCounts, IncidentPatch, IncidentQuery, Store, StoreError,
    StoredAnomaly, WriteSummary,
};

use super::{BASE_MS, Backend};

const SERVICES: [&str; 4] = ["api", "db", "cache", "ünï-svc"];
const DETECTORS: [&str; 3] = ["zscore", "ewma", "new_pattern"];

fn anomaly(i: usize) -> Anomaly {
    let signal = match i % 3 {
        0 => Signal::Metric {
            metric_type: "latency_ms".into(),
        },
        1 => Signal::ErrorRate,
        _ => Signal::Pattern {
            fingerprint: format!("fp-{i}"),
        },
    };
    let service = SERVICES[i % SERVICES.len()];
    let detector = DETECTORS[(i / 2) % DETECTORS.len()];
    // Every fifth anomaly shares its timestamp with the previous one: ties order by id.
    let timestamp = BASE_MS + (i as i64 - (i as i64 % 5 == 4) as i64) * 1000;
    Anomaly {
        id: Anomaly::id_for(detector, service, &signal, timestamp + i as i64 * 7),
        detector: detector.into(),
        service_name: service.into(),
        signal,
        timestamp,
        value: i as f64 * 1.5 + 0.1,
        expected_low: -(i as f64) / 3.0,
        expected_high: i as f64 * 0.7,
        score: (i % 10) as f64 / 10.0,
        severity: Severity::ALL[i % Severity::ALL.len()],
        explanation: format!("value {i} outside the expected band \"quoted\" ✓"),
        event_id: i.is_multiple_of(2).then(|| format!("evt-{i}")),
        detected_at: timestamp + 250,
    }
}

fn entry(at: i64, kind: &str, message: &str, actor: &str) -> TimelineEntry {
    TimelineEntry {
        at,
        kind: kind.into(),
        message: message.into(),
        actor: actor.into(),
    }
}

fn incident(i: usize) -> Incident {
    let service = SERVICES[i % SERVICES.len()];
    let mut affected = vec![service.to_owned()];
    if i.is_multiple_of(3) {
        affected.push(SERVICES[(i + 1) % SERVICES.len()].to_owned());
    }
    // Several incidents share a detection time: ties order by id.
    let detected_at = BASE_MS + (i as i64 / 3) * 60_000;
    Incident {
        id: format!("inc-{i:04}"),
        title: format!("{service} latency high #{i}"),
        description: "p99 latency 3x the baseline; started after deploy".into(),
        severity: Severity::ALL[(i / 2) % Severity::ALL.len()],
        score: i as f64 / 9.0,
        status: [
            IncidentStatus::Open,
            IncidentStatus::Acknowledged,
            IncidentStatus::Resolved,
        ][i % 3],
        service_name: service.into(),
        affected_services: affected,
        detected_at,
        updated_at: detected_at + 10,
        acknowledged_at: (i % 3 == 1).then_some(detected_at + 5),
        resolved_at: (i % 3 == 2).then_some(detected_at + 9),
        correlation_id: format!("req-{i}"),
        fingerprint: format!("af-{:016x}", i % 7),
        labels: BTreeMap::from([
            ("service".to_owned(), service.to_owned()),
            ("env".to_owned(), "prod".to_owned()),
        ]),
        event_ids: (0..i % 4).map(|n| format!("evt-{i}-{n}")).collect(),
        anomaly_ids: vec![format!("an-{i:016x}")],
        occurrences: i as u64 + 1,
        assignee: i.is_multiple_of(4).then(|| "alice".to_owned()),
        flapping: i.is_multiple_of(5),
        timeline: vec![entry(
            detected_at,
            "detected",
            "opened by the correlator",
            "sightline",
        )],
    }
}

/// The order incident queries return: newest detected first, ties by id descending.
fn incidents_newest_first(mut incidents: Vec<Incident>) -> Vec<Incident> {
    incidents.sort_by(|a, b| (b.detected_at, &b.id).cmp(&(a.detected_at, &a.id)));
    incidents
}

fn anomalies_newest_first(mut anomalies: Vec<StoredAnomaly>) -> Vec<StoredAnomaly> {
    anomalies.sort_by(|a, b| {
        (b.anomaly.timestamp, &b.anomaly.id).cmp(&(a.anomaly.timestamp, &a.anomaly.id))
    });
    anomalies
}

/// Every page of an incident query, checking page sizes and that pages never overlap.
async fn all_incident_pages(store: &dyn Store, mut query: IncidentQuery) -> Vec<Incident> {
    let mut out: Vec<Incident> = Vec::new();
    query.cursor = None;
    loop {
        let page = store
            .query_incidents(&query)
            .await
            .expect("query incidents");
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(
                    page.items.len(),
                    query.limit as usize,
                    "a non-last page is full"
                );
                out.extend(page.items);
                assert!(out.len() <= 10_000, "pagination of {query:?} never ends");
                query.cursor = Some(Cursor::decode(&cursor).expect("our own cursor decodes"));
            }
            None => {
                assert!(page.items.len() <= query.limit as usize);
                out.extend(page.items);
                let ids: BTreeSet<&str> = out.iter().map(|i| i.id.as_str()).collect();
                assert_eq!(ids.len(), out.len(), "no incident is on two pages");
                return out;
            }
        }
    }
}

async fn all_anomaly_pages(store: &dyn Store, mut query: AnomalyQuery) -> Vec<StoredAnomaly> {
    let mut out = Vec::new();
    loop {
        let page = store
            .query_anomalies(&query)
            .await
            .expect("query anomalies");
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(page.items.len(), query.limit as usize);
                out.extend(page.items);
                assert!(out.len() <= 10_000, "pagination of {query:?} never ends");
                query.cursor = Some(Cursor::decode(&cursor).expect("our own cursor decodes"));
            }
            None => {
                out.extend(page.items);
                return out;
            }
        }
    }
}

pub async fn anomaly_writes_are_idempotent_and_filter_and_paginate(b: &Backend) {
    let store = b.store.as_ref();
    let first: Vec<Anomaly> = (0..30).map(anomaly).collect();
    assert_eq!(
        store.write_anomalies(&first).await.unwrap(),
        WriteSummary {
            inserted: 30,
            duplicates: 0
        }
    );

    // A replay (with a changed value: the first version must win), five new ones, and a
    // duplicate inside the batch itself.
    let mut replay: Vec<Anomaly> = first.clone();
    for a in &mut replay {
        a.value += 1000.0;
    }
    replay.extend((30..35).map(anomaly));
    replay.push(anomaly(31));
    assert_eq!(
        store.write_anomalies(&replay).await.unwrap(),
        WriteSummary {
            inserted: 5,
            duplicates: 31
        }
    );
    assert_eq!(b.count("anomalies").await, 35);
    assert_eq!(
        store.write_anomalies(&[]).await.unwrap(),
        WriteSummary::default()
    );

    let stored: Vec<StoredAnomaly> = (0..35)
        .map(|i| StoredAnomaly {
            anomaly: anomaly(i),
            incident_id: None,
        })
        .collect();
    let everything = AnomalyQuery {
        limit: 1000,
        ..AnomalyQuery::default()
    };
    let page = store.query_anomalies(&everything).await.unwrap();
    assert_eq!(page.items, anomalies_newest_first(stored.clone()));
    assert_eq!(page.next_cursor, None);

    // NaN cannot be stored the same way on both backends: refused, nothing written.
    let mut nan = anomaly(99);
    nan.score = f64::NAN;
    assert!(matches!(
        store.write_anomalies(&[anomaly(98), nan]).await,
        Err(StoreError::InvalidData(_))
    ));
    assert_eq!(b.count("anomalies").await, 35);

    // Linking: unknown ids are skipped; the link is visible and filterable.
    let linked: Vec<String> = [0, 4, 9].iter().map(|&i| anomaly(i).id).collect();
    let mut ids = linked.clone();
    ids.push("an-unknown".into());
    assert_eq!(store.link_anomalies("inc-1", &ids).await.unwrap(), 3);
    let expected: Vec<StoredAnomaly> = stored
        .iter()
        .cloned()
        .map(|mut a| {
            if linked.contains(&a.anomaly.id) {
                a.incident_id = Some("inc-1".into());
            }
            a
        })
        .collect();
    let by_incident = store
        .query_anomalies(&AnomalyQuery {
            incident_id: Some("inc-1".into()),
            ..everything.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        by_incident.items,
        anomalies_newest_first(
            expected
                .iter()
                .filter(|a| a.incident_id.is_some())
                .cloned()
                .collect()
        )
    );

    // Filters and pagination, against brute force.
    let (from, to) = (BASE_MS + 5_000, BASE_MS + 25_000);
    for service in [None, Some("db"), Some("ünï-svc"), Some("nope")] {
        for detector in [None, Some("ewma")] {
            for range in [(None, None), (Some(from), Some(to))] {
                let query = AnomalyQuery {
                    service: service.map(str::to_owned),
                    detector: detector.map(str::to_owned),
                    from: range.0,
                    to: range.1,
                    limit: 4,
                    ..AnomalyQuery::default()
                };
                let want: Vec<StoredAnomaly> = expected
                    .iter()
                    .filter(|a| service.is_none_or(|s| a.anomaly.service_name == s))
                    .filter(|a| detector.is_none_or(|d| a.anomaly.detector == d))
                    .filter(|a| range.0.is_none_or(|f| a.anomaly.timestamp >= f))
                    .filter(|a| range.1.is_none_or(|t| a.anomaly.timestamp < t))
                    .cloned()
                    .collect();
                assert_eq!(
                    all_anomaly_pages(store, query.clone()).await,
                    anomalies_newest_first(want),
                    "{query:?}"
                );
            }
        }
    }
}

pub async fn incident_upserts_never_let_an_older_version_win(b: &Backend) {
    let store = b.store.as_ref();
    let mut v1 = incident(3);
    v1.updated_at = BASE_MS + 100;
    let mut v2 = v1.clone();
    v2.updated_at = BASE_MS + 200;
    v2.occurrences = 7;
    v2.severity = Severity::Critical;
    v2.affected_services = vec!["api".into(), "payments".into()];
    v2.timeline.push(entry(
        BASE_MS + 200,
        "anomaly",
        "another anomaly",
        "sightline",
    ));

    assert_eq!(store.upsert_incidents(&[v2.clone()]).await.unwrap(), 1);
    // The older version, replayed: skipped.
    assert_eq!(store.upsert_incidents(&[v1.clone()]).await.unwrap(), 0);
    assert_eq!(store.get_incident(&v1.id).await.unwrap(), Some(v2.clone()));
    // Older and newer in one batch, in either order: the newer stays.
    let mut v3 = v2.clone();
    v3.updated_at = BASE_MS + 300;
    v3.affected_services = vec!["db".into()];
    v3.service_name = "db".into();
    assert_eq!(
        store
            .upsert_incidents(&[v3.clone(), v1.clone(), v2.clone()])
            .await
            .unwrap(),
        1
    );
    assert_eq!(store.get_incident(&v1.id).await.unwrap(), Some(v3.clone()));
    // The same version again (a plain redelivery) is written, changing nothing.
    assert_eq!(store.upsert_incidents(&[v3.clone()]).await.unwrap(), 1);
    assert_eq!(b.count("incidents").await, 1);
    assert_eq!(store.get_incident("inc-none").await.unwrap(), None);

    // The service filter follows the stored version: v2's services are gone.
    let by_service = |service: &str| IncidentQuery {
        service: Some(service.into()),
        limit: 10,
        ..IncidentQuery::default()
    };
    for (service, found) in [("db", true), ("api", false), ("payments", false)] {
        let page = store.query_incidents(&by_service(service)).await.unwrap();
        assert_eq!(page.items.len(), usize::from(found), "{service}");
    }
}

pub async fn incident_filters_and_pagination_match_brute_force(b: &Backend) {
    let store = b.store.as_ref();
    let all: Vec<Incident> = (0..47).map(incident).collect();
    // Written in two batches, out of order.
    let (odd, even): (Vec<Incident>, Vec<Incident>) =
        all.iter().cloned().partition(|i| i.occurrences % 2 == 0);
    assert_eq!(
        store.upsert_incidents(&odd).await.unwrap(),
        odd.len() as u64
    );
    assert_eq!(
        store.upsert_incidents(&even).await.unwrap(),
        even.len() as u64
    );

    use IncidentStatus::{Acknowledged, Open, Resolved};
    let statuses = [
        None,
        Some(vec![Open]),
        Some(vec![Open, Acknowledged]),
        Some(vec![Resolved]),
    ];
    let severities: [(Vec<Severity>, Option<Severity>); 4] = [
        (vec![], None),
        (vec![], Some(Severity::High)),
        (vec![Severity::Medium, Severity::Info], None),
        (
            vec![Severity::Critical, Severity::Low],
            Some(Severity::Medium),
        ),
    ];
    let services = [
        None,
        Some("db"),
        Some("cache"),
        Some("ünï-svc"),
        Some("zzz"),
    ];
    let ranges = [
        (None, None),
        (Some(BASE_MS + 120_000), None),
        (Some(BASE_MS + 60_000), Some(BASE_MS + 600_000)),
    ];
    let mut checked = 0;
    for status in &statuses {
        for (set, min) in &severities {
            for service in services {
                for range in ranges {
                    let query = IncidentQuery {
                        status: status.clone(),
                        severities: set.clone(),
                        min_severity: *min,
                        service: service.map(str::to_owned),
                        from: range.0,
                        to: range.1,
                        limit: 4,
                        cursor: None,
                    };
                    let want: Vec<Incident> = all
                        .iter()
                        .filter(|i| status.as_ref().is_none_or(|s| s.contains(&i.status)))
                        .filter(|i| set.is_empty() || set.contains(&i.severity))
                        .filter(|i| min.is_none_or(|m| i.severity <= m))
                        .filter(|i| {
                            service.is_none_or(|s| {
                                i.service_name == s || i.affected_services.iter().any(|a| a == s)
                            })
                        })
                        .filter(|i| range.0.is_none_or(|f| i.detected_at >= f))
                        .filter(|i| range.1.is_none_or(|t| i.detected_at < t))
                        .cloned()
                        .collect();
                    let got = all_incident_pages(store, query.clone()).await;
                    assert_eq!(got, incidents_newest_first(want), "{query:?}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 4 * 5 * 3);

    // The whole table over many pages of 5: no gaps, no repeats.
    let everything = all_incident_pages(
        store,
        IncidentQuery {
            limit: 5,
            ..IncidentQuery::default()
        },
    )
    .await;
    assert_eq!(everything, incidents_newest_first(all.clone()));

    // An empty status set matches nothing.
    let none = store
        .query_incidents(&IncidentQuery {
            status: Some(vec![]),
            limit: 10,
            ..IncidentQuery::default()
        })
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());

    let count = |s: IncidentStatus| all.iter().filter(|i| i.status == s).count() as u64;
    assert_eq!(
        store.count_incidents_by_status().await.unwrap(),
        IncidentCounts {
            open: count(Open),
            acknowledged: count(Acknowledged),
            resolved: count(Resolved),
        }
    );
}

fn patch(status: Option<IncidentStatus>, actor: &str, now: i64) -> IncidentPatch {
    IncidentPatch {
        status,
        assignee: None,
        note: None,
        actor: actor.into(),
        now,
    }
}

pub async fn incident_updates_follow_the_lifecycle(b: &Backend) {
    use IncidentStatus::{Acknowledged, Open, Resolved};
    let store = b.store.as_ref();
    let mut original = incident(0);
    original.status = Open;
    original.acknowledged_at = None;
    original.resolved_at = None;
    original.assignee = None;
    let id = original.id.clone();
    store.upsert_incidents(&[original.clone()]).await.unwrap();
    let t0 = original.updated_at;

    // open -> acknowledged
    let acked = store
        .update_incident(&id, &patch(Some(Acknowledged), "alice", t0 + 1_000))
        .await
        .unwrap();
    let mut want = original.clone();
    want.status = Acknowledged;
    want.acknowledged_at = Some(t0 + 1_000);
    want.updated_at = t0 + 1_000;
    want.timeline.push(entry(
        t0 + 1_000,
        "status",
        "status changed from open to acknowledged",
        "alice",
    ));
    assert_eq!(acked, want);
    assert_eq!(store.get_incident(&id).await.unwrap(), Some(want.clone()));

    // acknowledged -> open and acknowledged -> acknowledged are refused; nothing changes.
    for to in [Open, Acknowledged] {
        match store
            .update_incident(&id, &patch(Some(to), "bob", t0 + 1_500))
            .await
        {
            Err(StoreError::InvalidTransition {
                id: got,
                from,
                to: refused,
            }) => assert_eq!(
                (got.as_str(), from, refused),
                (id.as_str(), Acknowledged, to)
            ),
            other => panic!("acknowledged -> {to}: {other:?}"),
        }
    }
    assert_eq!(store.get_incident(&id).await.unwrap(), Some(want.clone()));

    // Assign and note in one patch: two entries, in that order.
    let assigned = store
        .update_incident(
            &id,
            &IncidentPatch {
                status: None,
                assignee: Some(Some("bob".into())),
                note: Some("looking at the db pool".into()),
                actor: "alice".into(),
                now: t0 + 2_000,
            },
        )
        .await
        .unwrap();
    want.assignee = Some("bob".into());
    want.updated_at = t0 + 2_000;
    want.timeline
        .push(entry(t0 + 2_000, "assigned", "assigned to bob", "alice"));
    want.timeline
        .push(entry(t0 + 2_000, "note", "looking at the db pool", "alice"));
    assert_eq!(assigned, want);

    // Re-assigning the current assignee changes nothing and adds no entry.
    let same = store
        .update_incident(
            &id,
            &IncidentPatch {
                assignee: Some(Some("bob".into())),
                ..patch(None, "carol", t0 + 2_500)
            },
        )
        .await
        .unwrap();
    assert_eq!(same, want);

    // acknowledged -> resolved; a clock behind updated_at does not move it backwards.
    let resolved = store
        .update_incident(&id, &patch(Some(Resolved), "bob", t0 + 1_900))
        .await
        .unwrap();
    want.status = Resolved;
    want.resolved_at = Some(t0 + 1_900);
    want.timeline.push(entry(
        t0 + 1_900,
        "status",
        "status changed from acknowledged to resolved",
        "bob",
    ));
    assert_eq!(resolved, want);
    assert_eq!(resolved.updated_at, t0 + 2_000);

    // resolved -> acknowledged is refused; resolved -> open reopens and clears the times.
    assert!(matches!(
        store
            .update_incident(&id, &patch(Some(Acknowledged), "bob", t0 + 3_000))
            .await,
        Err(StoreError::InvalidTransition {
            from: Resolved,
            to: Acknowledged,
            ..
        })
    ));
    let reopened = store
        .update_incident(
            &id,
            &IncidentPatch {
                assignee: Some(None),
                ..patch(Some(Open), "carol", t0 + 4_000)
            },
        )
        .await
        .unwrap();
    want.status = Open;
    want.acknowledged_at = None;
    want.resolved_at = None;
    want.assignee = None;
    want.updated_at = t0 + 4_000;
    want.timeline.push(entry(
        t0 + 4_000,
        "status",
        "reopened (was resolved)",
        "carol",
    ));
    want.timeline.push(entry(
        t0 + 4_000,
        "assigned",
        "unassigned (was bob)",
        "carol",
    ));
    assert_eq!(reopened, want);

    // open -> resolved directly (an operator closing it).
    let closed = store
        .update_incident(&id, &patch(Some(Resolved), "dave", t0 + 5_000))
        .await
        .unwrap();
    assert_eq!(
        (closed.status, closed.resolved_at, closed.acknowledged_at),
        (Resolved, Some(t0 + 5_000), None)
    );

    // Unknown ids, empty patches and empty notes.
    assert!(matches!(
        store
            .update_incident("inc-nope", &patch(Some(Acknowledged), "x", t0))
            .await,
        Err(StoreError::NotFound(what)) if what.contains("inc-nope")
    ));
    assert!(matches!(
        store.update_incident(&id, &patch(None, "x", t0)).await,
        Err(StoreError::InvalidData(_))
    ));
    assert!(matches!(
        store
            .update_incident(
                &id,
                &IncidentPatch {
                    note: Some("  ".into()),
                    ..patch(None, "x", t0)
                }
            )
            .await,
        Err(StoreError::InvalidData(_))
    ));

    // An operator's update outranks a replay of the correlator's older version.
    assert_eq!(
        store.upsert_incidents(&[original.clone()]).await.unwrap(),
        0
    );
    assert_eq!(
        store.get_incident(&id).await.unwrap().map(|i| i.status),
        Some(Resolved)
    );
}

pub async fn concurrent_incident_updates_all_land(b: &Backend) {
    let store: Arc<dyn Store> = b.store.clone();
    let mut original = incident(0);
    original.status = IncidentStatus::Open;
    original.acknowledged_at = None;
    original.resolved_at = None;
    let id = original.id.clone();
    store.upsert_incidents(&[original.clone()]).await.unwrap();

    const NOTES: usize = 12;
    let mut tasks = Vec::new();
    for actor in ["alice", "bob"] {
        let store = store.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..NOTES {
                let note = IncidentPatch {
                    status: (actor == "alice" && n == NOTES / 2)
                        .then_some(IncidentStatus::Acknowledged),
                    assignee: None,
                    note: Some(format!("{actor} note {n}")),
                    actor: actor.into(),
                    now: BASE_MS + 10_000 + n as i64,
                };
                store.update_incident(&id, &note).await.expect("update");
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let stored = store.get_incident(&id).await.unwrap().unwrap();
    assert_eq!(stored.status, IncidentStatus::Acknowledged);
    let notes: BTreeSet<&str> = stored
        .timeline
        .iter()
        .filter(|e| e.kind == "note")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(notes.len(), 2 * NOTES, "every note landed: {notes:?}");
    assert_eq!(
        stored.timeline.len(),
        original.timeline.len() + 2 * NOTES + 1
    );
    // Each actor's notes are in its own order.
    for actor in ["alice", "bob"] {
        let own: Vec<&str> = stored
            .timeline
            .iter()
            .filter(|e| e.actor == actor && e.kind == "note")
            .map(|e| e.message.as_str())
            .collect();
        let want: Vec<String> = (0..NOTES).map(|n| format!("{actor} note {n}")).collect();
        assert_eq!(own, want);
    }
}

fn correlation(i: usize, incident: &str, source: &str, target: &str) -> Correlation {
    Correlation {
        id: format!("cor-{i:03}"),
        incident_id: incident.into(),
        source_id: source.into(),
        target_id: target.into(),
        kind: [
            CorrelationKind::TimeBased,
            CorrelationKind::PatternBased,
            CorrelationKind::Causal,
        ][i % 3],
        score: i as f64 / 10.0,
        reason: format!("within 30 s on related services ({i})"),
        created_at: BASE_MS + (i as i64 / 2) * 100,
    }
}

pub async fn correlations_are_idempotent_and_found_by_incident_and_signal(b: &Backend) {
    let store = b.store.as_ref();
    let all = vec![
        correlation(0, "inc-a", "evt-2", "evt-1"),
        correlation(1, "inc-a", "evt-3", "evt-1"),
        correlation(2, "inc-a", "an-1", "evt-1"),
        correlation(3, "inc-b", "evt-9", "evt-2"),
        correlation(4, "inc-b", "evt-8", "evt-9"),
    ];
    assert_eq!(
        store.write_correlations(&all).await.unwrap(),
        WriteSummary {
            inserted: 5,
            duplicates: 0
        }
    );
    let mut replay = all.clone();
    replay[0].reason = "changed".into();
    replay.push(correlation(5, "inc-b", "evt-7", "evt-9"));
    assert_eq!(
        store.write_correlations(&replay).await.unwrap(),
        WriteSummary {
            inserted: 1,
            duplicates: 5
        }
    );
    let mut all = all;
    all.push(correlation(5, "inc-b", "evt-7", "evt-9"));
    assert_eq!(b.count("event_correlations").await, 6);

    assert_eq!(
        store.correlations_for_incident("inc-a").await.unwrap(),
        all[0..3].to_vec()
    );
    assert_eq!(
        store.correlations_for_incident("inc-b").await.unwrap(),
        all[3..6].to_vec()
    );
    assert!(
        store
            .correlations_for_incident("inc-c")
            .await
            .unwrap()
            .is_empty()
    );

    // As source or as target, newest first.
    let newest_first = |idx: &[usize]| -> Vec<Correlation> {
        let mut v: Vec<Correlation> = idx.iter().map(|&i| all[i].clone()).collect();
        v.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        v
    };
    assert_eq!(
        store.correlations_for_signal("evt-2", 100).await.unwrap(),
        newest_first(&[0, 3])
    );
    assert_eq!(
        store.correlations_for_signal("evt-1", 100).await.unwrap(),
        newest_first(&[0, 1, 2])
    );
    assert_eq!(
        store.correlations_for_signal("evt-9", 100).await.unwrap(),
        newest_first(&[3, 4, 5])
    );
    assert_eq!(
        store.correlations_for_signal("evt-9", 2).await.unwrap(),
        newest_first(&[3, 4, 5])[..2].to_vec()
    );
    assert!(
        store
            .correlations_for_signal("evt-404", 100)
            .await
            .unwrap()
            .is_empty()
    );
}

fn silence(id: &str, starts_at: i64, ends_at: i64, created_at: i64) -> Silence {
    Silence {
        id: id.into(),
        matchers: vec![
            Matcher {
                name: "service".into(),
                op: MatchOp::Equal,
                value: "db".into(),
            },
            Matcher {
                name: "detector".into(),
                op: MatchOp::Regex,
                value: "z.*|ewma".into(),
            },
        ],
        starts_at,
        ends_at,
        created_by: "alice".into(),
        comment: "database maintenance, CHG-1234".into(),
        created_at,
    }
}

pub async fn silences_are_created_listed_and_expired(b: &Backend) {
    let store = b.store.as_ref();
    let now = BASE_MS + 10_000;
    let active = silence("sil-active", now - 1_000, now + 3_600_000, BASE_MS + 1);
    let pending = silence("sil-pending", now + 60_000, now + 120_000, BASE_MS + 2);
    let past = silence("sil-past", now - 9_000, now - 5_000, BASE_MS + 3);
    for s in [&active, &pending, &past] {
        store.create_silence(s).await.unwrap();
    }
    assert!(matches!(
        store.create_silence(&active).await,
        Err(StoreError::Conflict(_))
    ));

    // Newest created first; without expired ones, only what is not over yet.
    assert_eq!(
        store.list_silences(true, now).await.unwrap(),
        [past.clone(), pending.clone(), active.clone()]
    );
    assert_eq!(
        store.list_silences(false, now).await.unwrap(),
        [pending.clone(), active.clone()]
    );

    // Expiring ends it now; expiring it again later keeps the earlier end.
    let expired = store.expire_silence(&active.id, now).await.unwrap();
    assert_eq!(
        expired,
        Silence {
            ends_at: now,
            ..active.clone()
        }
    );
    assert!(!expired.active_at(now));
    let again = store.expire_silence(&active.id, now + 50).await.unwrap();
    assert_eq!(again.ends_at, now);
    // An already ended silence keeps its end.
    assert_eq!(
        store.expire_silence(&past.id, now).await.unwrap(),
        past.clone()
    );
    assert_eq!(
        store.list_silences(false, now).await.unwrap(),
        std::slice::from_ref(&pending)
    );
    assert_eq!(store.list_silences(true, now).await.unwrap().len(), 3);
    assert!(matches!(
        store.expire_silence("sil-nope", now).await,
        Err(StoreError::NotFound(what)) if what.contains("sil-nope")
    ));
}

fn topology(criticality: f64) -> Topology {
    let mut t = Topology::default();
    t.services.insert(
        "api".into(),
        ServiceNode {
            depends_on: vec!["db".into()],
            criticality,
        },
    );
    t.services.insert("db".into(), ServiceNode::default());
    t
}

pub async fn topology_is_versioned(b: &Backend) {
    let store = b.store.as_ref();
    assert_eq!(store.get_topology().await.unwrap(), None);
    let first = topology(2.5);
    assert_eq!(
        store.put_topology(&first, "alice", BASE_MS).await.unwrap(),
        1
    );
    let got = store.get_topology().await.unwrap().unwrap();
    assert_eq!(
        (
            got.topology,
            got.version,
            got.updated_at,
            got.updated_by.as_str()
        ),
        (first.clone(), 1, BASE_MS, "alice")
    );

    let second = topology(0.1);
    assert_eq!(
        store
            .put_topology(&second, "bob", BASE_MS + 5)
            .await
            .unwrap(),
        2
    );
    // A topology that cannot round-trip is refused and changes nothing.
    assert!(matches!(
        store
            .put_topology(&topology(f64::NAN), "eve", BASE_MS + 9)
            .await,
        Err(StoreError::InvalidData(_))
    ));
    let got = store.get_topology().await.unwrap().unwrap();
    assert_eq!(
        (
            got.topology,
            got.version,
            got.updated_at,
            got.updated_by.as_str()
        ),
        (second, 2, BASE_MS + 5, "bob")
    );
    assert_eq!(b.count("topology").await, 1);
}
