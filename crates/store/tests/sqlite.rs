//! Behaviour of `SqliteStore` on real database files: the shared conformance suite
//! (`conformance/mod.rs`, run here against a fresh file per test), plus what only SQLite
//! has: reopening a file, damaged rows written behind the store's back, and a write
//! throughput benchmark.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod conformance;

use std::path::Path;

use conformance::{
    BASE_MS, Backend, all_events_query, event, logged, logged_all, metric, metric_batch,
    newest_first,
};
use sightline_model::Event;
use sightline_store::{
    Cursor, LoggedEvent, LoggedMetric, MetricQuery, SqliteStore, Store, StoreError,
};

async fn open_store(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("store.db"))
        .await
        .expect("open the store")
}

/// A second, independent connection to the file, to inspect or damage tables directly.
async fn raw_connection(dir: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("store.db"));
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open a raw connection")
}

/// A fresh store in a temporary directory, for the conformance suite.
async fn sqlite_backend() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
    let raw = raw_connection(dir.path()).await;
    Backend::sqlite(store, raw, dir)
}

conformance_tests!(sqlite, sqlite_backend);

#[tokio::test]
async fn data_survives_reopening_and_parent_dirs_are_created() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a").join("b").join("store.db");
    let events: Vec<Event> = (0..10).map(|i| event(i, BASE_MS + i as i64)).collect();
    {
        let store = SqliteStore::open(&path)
            .await
            .expect("create in missing dirs");
        store
            .write_events(&logged_all(&events))
            .await
            .expect("write");
        store.close().await;
    }
    let store = SqliteStore::open(&path).await.expect("reopen");
    store.ping().await.expect("ping");
    let page = store
        .query_events(&all_events_query())
        .await
        .expect("query");
    assert_eq!(page.items, newest_first(events));
}

#[tokio::test]
async fn corrupt_cursors_are_refused() {
    for garbage in ["%%%", "not base64!", "bm9jb2xvbg", ""] {
        match Cursor::decode(garbage) {
            Err(StoreError::InvalidCursor(text)) => assert_eq!(text, garbage),
            other => panic!("{garbage:?} gave {other:?}"),
        }
    }
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
    let events: Vec<Event> = (0..4).map(|i| event(i, BASE_MS + i as i64)).collect();
    store
        .write_events(&logged_all(&events))
        .await
        .expect("write");
    store
        .write_metrics(&metric_batch(2))
        .await
        .expect("write metrics");

    let raw = raw_connection(dir.path()).await;
    let damage = [
        (
            "UPDATE processed_events SET metadata = '{not json' WHERE event_id = 'evt-000000'",
            "evt-000000",
            "metadata",
        ),
        (
            "UPDATE processed_events SET severity = 'apocalyptic' WHERE event_id = 'evt-000001'",
            "evt-000001",
            "severity",
        ),
        (
            "UPDATE processed_events SET source_type = 'pigeon' WHERE event_id = 'evt-000002'",
            "evt-000002",
            "source_type",
        ),
        (
            "UPDATE processed_events SET tags = '[1,2]' WHERE event_id = 'evt-000003'",
            "evt-000003",
            "tags",
        ),
    ];
    for (sql, id, column) in damage {
        sqlx::query(sql).execute(&raw).await.expect("damage a row");
        match store.get_event(id).await {
            Err(StoreError::Corrupt { what, .. }) => {
                assert!(what.contains(column) && what.contains(id), "{what}");
            }
            other => panic!("{id}: {other:?}"),
        }
    }
    assert!(matches!(
        store.query_events(&all_events_query()).await,
        Err(StoreError::Corrupt { .. })
    ));

    sqlx::query("UPDATE system_metrics SET tags = 'nope'")
        .execute(&raw)
        .await
        .expect("damage metrics");
    assert!(matches!(
        store
            .query_metrics(&MetricQuery {
                limit: 10,
                ..MetricQuery::default()
            })
            .await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn corrupt_incident_rows_are_errors_not_panics() {
    use sightline_model::{Incident, IncidentStatus, Severity, Silence, Topology};
    use sightline_store::{IncidentQuery, IncidentStore as _};

    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
    let incident = Incident {
        id: "inc-1".into(),
        title: "t".into(),
        description: "d".into(),
        severity: Severity::High,
        score: 0.5,
        status: IncidentStatus::Open,
        service_name: "api".into(),
        affected_services: vec!["api".into()],
        detected_at: BASE_MS,
        updated_at: BASE_MS,
        acknowledged_at: None,
        resolved_at: None,
        correlation_id: "req-1".into(),
        fingerprint: "af-1".into(),
        labels: Default::default(),
        event_ids: vec![],
        anomaly_ids: vec![],
        occurrences: 1,
        assignee: None,
        flapping: false,
        timeline: vec![],
    };
    store.upsert_incidents(&[incident]).await.expect("upsert");
    let silence = Silence {
        id: "sil-1".into(),
        matchers: vec![],
        starts_at: BASE_MS,
        ends_at: BASE_MS + 1,
        created_by: "alice".into(),
        comment: String::new(),
        created_at: BASE_MS,
    };
    store.create_silence(&silence).await.expect("silence");
    store
        .put_topology(&Topology::default(), "alice", BASE_MS)
        .await
        .expect("topology");

    let raw = raw_connection(dir.path()).await;
    for (sql, column) in [
        ("UPDATE incidents SET timeline = '{not json'", "timeline"),
        (
            "UPDATE incidents SET timeline = '[]', severity = 'apocalyptic'",
            "severity",
        ),
    ] {
        sqlx::query(sql).execute(&raw).await.expect("damage a row");
        match store.get_incident("inc-1").await {
            Err(StoreError::Corrupt { what, .. }) => {
                assert!(what.contains(column) && what.contains("inc-1"), "{what}");
            }
            other => panic!("{column}: {other:?}"),
        }
    }
    assert!(matches!(
        store
            .query_incidents(&IncidentQuery {
                limit: 10,
                ..IncidentQuery::default()
            })
            .await,
        Err(StoreError::Corrupt { .. })
    ));
    sqlx::query("UPDATE silences SET matchers = 'nope'")
        .execute(&raw)
        .await
        .expect("damage silences");
    assert!(matches!(
        store.list_silences(true, BASE_MS).await,
        Err(StoreError::Corrupt { what, .. }) if what.contains("matchers")
    ));
    sqlx::query("UPDATE topology SET document = '[1]'")
        .execute(&raw)
        .await
        .expect("damage topology");
    assert!(matches!(
        store.get_topology().await,
        Err(StoreError::Corrupt { what, .. }) if what.contains("topology")
    ));
}

/// Write throughput: 20 batches of 5,000 events (3 metadata keys, 2 tags, ~60-byte details)
/// into a fresh file. Run with
/// `cargo test -p sightline-store --release --test sqlite -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "benchmark"]
async fn write_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
    let batches: Vec<Vec<LoggedEvent>> = (0..20)
        .map(|b| {
            (0..5_000)
                .map(|i| {
                    let n = b * 5_000 + i;
                    let mut e = event(n, BASE_MS + n as i64);
                    e.event_id = format!("0190a1b2-c3d4-7e5f-8a9b-{n:012x}");
                    logged(e, n as u64)
                })
                .collect()
        })
        .collect();
    let started = std::time::Instant::now();
    for batch in &batches {
        let summary = store.write_events(batch).await.expect("write");
        assert_eq!(summary.inserted, 5_000);
    }
    let elapsed = started.elapsed();
    let per_sec = 100_000.0 / elapsed.as_secs_f64();
    eprintln!("events: 100000 in {elapsed:?} = {per_sec:.0} events/s");

    let metric_batches: Vec<Vec<LoggedMetric>> = (0..20)
        .map(|b| {
            (0..5_000)
                .map(|i| LoggedMetric {
                    metric: metric(i),
                    partition: 0,
                    offset: (b * 5_000 + i) as u64,
                })
                .collect()
        })
        .collect();
    let started = std::time::Instant::now();
    for batch in &metric_batches {
        store.write_metrics(batch).await.expect("write metrics");
    }
    let elapsed = started.elapsed();
    eprintln!(
        "metrics: 100000 in {elapsed:?} = {:.0} points/s",
        100_000.0 / elapsed.as_secs_f64()
    );
}
