//! Conformance cases for metric rollups and event counters: upserts by id (a replayed
//! window replaces, never duplicates), exact round trips, and every filter against brute
//! force.

use sightline_store::{EventCountQuery, EventCountRow, RollupQuery, RollupRow, StoreError};

use super::{BASE_MS, Backend};

const WINDOWS: [(&str, i64); 3] = [("1m", 60_000), ("5m", 300_000), ("15m", 900_000)];

fn rollup(service: &str, metric: &str, window: (&str, i64), start: i64, seed: u64) -> RollupRow {
    let v = seed as f64;
    RollupRow {
        id: format!("{service}|{metric}|{}|{start}", window.0),
        service_name: service.into(),
        metric_type: metric.into(),
        window: window.0.into(),
        window_start: start,
        window_end: start + window.1,
        count: seed + 1,
        sum: v * 10.5,
        min: -v / 3.0,
        max: v * 1.1,
        avg: v / 7.0,
        p95: v * 0.95,
        p99: 0.1 + v * 0.99,
    }
}

fn all_rollups() -> Vec<RollupRow> {
    let mut rows = Vec::new();
    let mut seed = 0;
    for service in ["api", "db", "ünï"] {
        for metric in ["latency_ms", "cpu"] {
            for window in WINDOWS {
                for i in 0..4 {
                    seed += 1;
                    rows.push(rollup(
                        service,
                        metric,
                        window,
                        BASE_MS + i * window.1,
                        seed,
                    ));
                }
            }
        }
    }
    rows
}

fn query(limit: u32) -> RollupQuery {
    RollupQuery {
        limit,
        ..RollupQuery::default()
    }
}

fn newest_first(mut rows: Vec<RollupRow>) -> Vec<RollupRow> {
    rows.sort_by(|a, b| {
        b.window_start
            .cmp(&a.window_start)
            .then_with(|| a.id.as_bytes().cmp(b.id.as_bytes()))
    });
    rows
}

pub async fn rollups_upsert_by_id_and_round_trip_exactly(backend: &Backend) {
    let store = &backend.store;
    let rows = all_rollups();
    assert_eq!(store.write_rollups(&rows).await.unwrap(), rows.len() as u64);
    // A replay of the same windows, and a corrected value for one of them.
    store.write_rollups(&rows).await.unwrap();
    let mut changed = rows[5].clone();
    changed.count += 100;
    changed.p99 = 12345.678;
    store.write_rollups(&[changed.clone()]).await.unwrap();
    assert_eq!(backend.count("aggregations").await, rows.len() as i64);

    let mut expected = rows.clone();
    expected[5] = changed;
    let got = store.query_rollups(&query(10_000)).await.unwrap();
    assert_eq!(got, newest_first(expected));
    assert!(store.write_rollups(&[]).await.unwrap() == 0);
}

pub async fn rollup_filters_match_brute_force(backend: &Backend) {
    let store = &backend.store;
    let rows = all_rollups();
    store.write_rollups(&rows).await.unwrap();
    let services = [None, Some("api"), Some("ünï"), Some("nope")];
    let metrics = [None, Some("cpu")];
    let windows = [None, Some("1m"), Some("15m")];
    let ranges = [
        (None, None),
        (Some(BASE_MS + 60_000), None),
        (None, Some(BASE_MS + 300_000)),
        (Some(BASE_MS), Some(BASE_MS + 900_001)),
    ];
    for service in services {
        for metric in metrics {
            for window in windows {
                for (since, until) in ranges {
                    for limit in [1, 3, 10_000] {
                        let q = RollupQuery {
                            service: service.map(Into::into),
                            metric: metric.map(Into::into),
                            window: window.map(Into::into),
                            since,
                            until,
                            limit,
                        };
                        let mut expected = newest_first(
                            rows.iter()
                                .filter(|r| service.is_none_or(|s| r.service_name == s))
                                .filter(|r| metric.is_none_or(|m| r.metric_type == m))
                                .filter(|r| window.is_none_or(|w| r.window == w))
                                .filter(|r| since.is_none_or(|s| r.window_start >= s))
                                .filter(|r| until.is_none_or(|u| r.window_start < u))
                                .cloned()
                                .collect(),
                        );
                        expected.truncate(limit as usize);
                        assert_eq!(store.query_rollups(&q).await.unwrap(), expected, "{q:?}");
                    }
                }
            }
        }
    }
}

pub async fn rollup_queries_reject_bad_limits_and_windows(backend: &Backend) {
    let store = &backend.store;
    for q in [
        query(0),
        query(10_001),
        RollupQuery {
            window: Some("2m".into()),
            ..query(10)
        },
    ] {
        assert!(
            matches!(
                store.query_rollups(&q).await,
                Err(StoreError::InvalidQuery(_))
            ),
            "{q:?}"
        );
    }
    let mut bad = rollup("api", "cpu", ("1m", 60_000), BASE_MS, 1);
    bad.window = "2m".into();
    assert!(store.write_rollups(&[bad]).await.is_err());
    assert_eq!(backend.count("aggregations").await, 0);
}

pub async fn event_counts_upsert_and_filter(backend: &Backend) {
    let store = &backend.store;
    let mut rows = Vec::new();
    for (i, service) in ["api", "db"].into_iter().enumerate() {
        for (j, severity) in ["critical", "info"].into_iter().enumerate() {
            for w in 0..3_i64 {
                let start = BASE_MS + w * 300_000;
                rows.push(EventCountRow {
                    id: format!("{service}|{severity}|{start}"),
                    service_name: service.into(),
                    severity: severity.into(),
                    window_start: start,
                    window_end: start + 300_000,
                    count: (i * 100 + j * 10) as u64 + w as u64,
                });
            }
        }
    }
    store.write_event_counts(&rows).await.unwrap();
    store.write_event_counts(&rows).await.unwrap();
    assert_eq!(backend.count("event_counts").await, rows.len() as i64);

    let q = EventCountQuery {
        service: Some("db".into()),
        severity: Some("info".into()),
        since: Some(BASE_MS + 300_000),
        until: None,
        limit: 100,
    };
    let mut expected: Vec<_> = rows
        .iter()
        .filter(|r| r.service_name == "db" && r.severity == "info")
        .filter(|r| r.window_start >= BASE_MS + 300_000)
        .cloned()
        .collect();
    expected.sort_by_key(|r| (std::cmp::Reverse(r.window_start), r.id.clone()));
    assert_eq!(store.query_event_counts(&q).await.unwrap(), expected);
    let all = EventCountQuery {
        limit: 1000,
        ..EventCountQuery::default()
    };
    assert_eq!(
        store.query_event_counts(&all).await.unwrap().len(),
        rows.len()
    );
}
