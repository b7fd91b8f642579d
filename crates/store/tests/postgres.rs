//! Behaviour of `PgStore` on a real PostgreSQL server: the shared conformance suite
//! (`conformance/mod.rs`, run here in a fresh schema per test), plus what only the
//! PostgreSQL store has: daily partitions created on demand, retention by dropping them,
//! migrations from an empty database, NUL characters, concurrent writers, and a write
//! throughput benchmark.
//!
//! These tests need a server (`SIGHTLINE_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`); without one they fail, saying so.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod conformance;
mod support;

use std::collections::BTreeSet;
use std::sync::Arc;

use conformance::{
    BASE_MS, Backend, all_events_query, all_pages, event, logged, logged_all, metric, newest_first,
};
use sightline_model::Event;
use sightline_store::{
    EventQuery, LoggedEvent, LoggedMetric, MetricQuery, PgConfig, PgStore, Store, StoreError,
    WriteSummary,
};
use sqlx::{Connection as _, Row as _};
use support::{drop_schema, fresh_pg_store, pg_config, pg_url, require_pg, unique_name};

const DAY_MS: i64 = 86_400_000;

/// A fresh store in its own schema, for the conformance suite; the schema is dropped
/// after the test.
async fn pg_backend() -> Backend {
    let (store, schema) = fresh_pg_store().await;
    let closing = store.clone();
    Backend::postgres(store, move || {
        Box::pin(async move {
            closing.close().await;
            drop_schema(schema).await;
        })
    })
}

conformance_tests!(postgres, pg_backend);

/// Runs `test` on a fresh store, then drops its schema (also when the test failed).
async fn with_store(test: impl AsyncFnOnce(&PgStore, &str)) {
    use futures::FutureExt as _;
    let (store, schema) = fresh_pg_store().await;
    let outcome = std::panic::AssertUnwindSafe(test(&store, &schema))
        .catch_unwind()
        .await;
    store.close().await;
    drop_schema(schema).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The daily partitions of `table` in the store's schema, by name.
async fn partitions(store: &PgStore, table: &str) -> BTreeSet<String> {
    sqlx::query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = $1::regclass",
    )
    .bind(table)
    .fetch_all(store.pool())
    .await
    .expect("list partitions")
    .iter()
    .map(|row| row.get::<String, _>(0))
    .filter(|name| !name.ends_with("_default"))
    .collect()
}

async fn count(store: &PgStore, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(store.pool())
        .await
        .expect("count")
        .get(0)
}

fn metric_at(i: usize, timestamp: i64) -> LoggedMetric {
    let mut m = metric(i);
    m.timestamp = timestamp;
    LoggedMetric {
        metric: m,
        partition: 0,
        offset: i as u64,
    }
}

#[tokio::test]
async fn writes_spanning_three_days_create_three_daily_partitions() {
    with_store(async |store, _| {
        // 2023-11-14 22:13:20 UTC, then the next two days.
        let events: Vec<Event> = (0..300)
            .map(|i| event(i, BASE_MS + (i as i64 % 3) * DAY_MS))
            .collect();
        store
            .write_events(&logged_all(&events))
            .await
            .expect("write");
        store
            .write_metrics(&[metric_at(0, BASE_MS), metric_at(1, BASE_MS + 2 * DAY_MS)])
            .await
            .expect("write metrics");
        for table in ["raw_events", "processed_events", "system_metrics"] {
            let expected: BTreeSet<String> = ["p20231114", "p20231115", "p20231116"]
                .iter()
                .map(|day| format!("{table}_{day}"))
                .collect();
            assert_eq!(partitions(store, table).await, expected, "{table}");
        }
        // Nothing landed in the safety net.
        for table in [
            "raw_events_default",
            "processed_events_default",
            "system_metrics_default",
            "anomalies",
            "incidents",
            "incident_services",
            "event_correlations",
            "silences",
            "topology",
        ] {
            assert_eq!(count(store, table).await, 0, "{table}");
        }
        assert_eq!(count(store, "processed_events_p20231115").await, 100);
        assert_eq!(
            all_pages(store, all_events_query()).await,
            newest_first(events)
        );

        // A second store on the same schema knows the partitions from the catalog; a
        // fourth day is added on demand.
        let other = PgStore::connect(&pg_config(&current_schema(store).await))
            .await
            .expect("second store");
        other
            .write_events(&[logged(event(1_000, BASE_MS + 3 * DAY_MS), 1_000)])
            .await
            .expect("write");
        assert_eq!(partitions(store, "processed_events").await.len(), 4);
        other.close().await;

        // Explicit pre-creation, e.g. for tomorrow.
        store
            .ensure_partitions(BASE_MS + 10 * DAY_MS, BASE_MS + 12 * DAY_MS)
            .await
            .expect("ensure");
        assert!(
            partitions(store, "raw_events")
                .await
                .contains("raw_events_p20231125")
        );
        assert!(matches!(
            store.ensure_partitions(0, 5_000 * DAY_MS).await,
            Err(StoreError::InvalidQuery(_))
        ));
    })
    .await;
}

async fn current_schema(store: &PgStore) -> String {
    sqlx::query("SELECT current_schema()")
        .fetch_one(store.pool())
        .await
        .expect("schema")
        .get(0)
}

#[tokio::test]
async fn retention_drops_old_days_and_keeps_newer_ones() {
    with_store(async |store, _| {
        let day0 = BASE_MS.div_euclid(DAY_MS) * DAY_MS; // 2023-11-14 00:00 UTC
        let events: Vec<Event> = (0..40)
            .map(|i| event(i, day0 + (i as i64 % 4) * DAY_MS + 1_000))
            .collect();
        let batch = logged_all(&events);
        store.write_events(&batch).await.expect("write");
        store
            .write_metrics(&[metric_at(0, day0), metric_at(1, day0 + 3 * DAY_MS)])
            .await
            .expect("write metrics");
        assert_eq!(partitions(store, "processed_events").await.len(), 4);

        // A cutoff inside day 2 drops days 0 and 1 only (day 2 is not wholly older).
        let dropped = store
            .drop_partitions_before(day0 + 2 * DAY_MS + 5)
            .await
            .expect("retention");
        assert_eq!(dropped, 2);
        for table in ["raw_events", "processed_events", "system_metrics"] {
            assert_eq!(
                partitions(store, table).await,
                [format!("{table}_p20231116"), format!("{table}_p20231117")]
                    .into_iter()
                    .collect(),
                "{table}"
            );
        }
        let kept: Vec<Event> = events
            .iter()
            .filter(|e| e.timestamp >= day0 + 2 * DAY_MS)
            .cloned()
            .collect();
        assert_eq!(kept.len(), 20);
        assert_eq!(
            all_pages(store, all_events_query()).await,
            newest_first(kept.clone())
        );
        for e in &events {
            let got = store.get_event(&e.event_id).await.expect("get");
            assert_eq!(
                got.is_some(),
                e.timestamp >= day0 + 2 * DAY_MS,
                "{}",
                e.event_id
            );
        }
        assert_eq!(count(store, "event_ids").await, 20);
        assert_eq!(count(store, "raw_events").await, 20);
        assert_eq!(count(store, "metric_ids").await, 1);
        let metrics = store
            .query_metrics(&MetricQuery {
                limit: 10,
                ..MetricQuery::default()
            })
            .await
            .expect("metrics");
        assert_eq!(metrics.items.len(), 1);

        // Nothing more to drop at the same cutoff; the dropped days' ids are free again.
        assert_eq!(
            store
                .drop_partitions_before(day0 + 2 * DAY_MS + 5)
                .await
                .expect("retention"),
            0
        );
        assert_eq!(
            store.write_events(&batch).await.expect("rewrite"),
            WriteSummary {
                inserted: 20,
                duplicates: 20
            }
        );
        assert_eq!(partitions(store, "processed_events").await.len(), 4);

        // Configured retention: keep 1 day as of the end of day 3 → days 0..=1 go again.
        let config = PgConfig {
            retention_days: Some(1),
            ..pg_config(&current_schema(store).await)
        };
        let with_retention = PgStore::connect(&config).await.expect("connect");
        assert_eq!(
            with_retention
                .apply_retention(day0 + 4 * DAY_MS)
                .await
                .expect("apply"),
            3
        );
        with_retention.close().await;
        assert_eq!(partitions(store, "processed_events").await.len(), 1);
        assert_eq!(
            PgStore::connect(&pg_config(&current_schema(store).await))
                .await
                .expect("connect")
                .apply_retention(day0 + 100 * DAY_MS)
                .await
                .expect("no retention configured"),
            0
        );
    })
    .await;
}

#[tokio::test]
async fn migrations_run_on_an_empty_database_and_only_once() {
    let name = unique_name("test_db");
    let mut admin = require_pg(sqlx::PgConnection::connect(&pg_url()).await);
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut admin)
        .await
        .expect("create database");

    let outcome = async {
        let url = url_of_database(&name);
        let config = PgConfig {
            url,
            schema: None,
            ..PgConfig::default()
        };
        let store = PgStore::connect(&config).await.expect("migrate");
        let tables: BTreeSet<String> = sqlx::query(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')",
        )
        .fetch_all(store.pool())
        .await
        .expect("tables")
        .iter()
        .map(|row| row.get(0))
        .collect();
        for table in [
            "_sqlx_migrations",
            "event_ids",
            "metric_ids",
            "raw_events",
            "raw_events_default",
            "processed_events",
            "processed_events_default",
            "system_metrics",
            "system_metrics_default",
            "anomalies",
            "incidents",
            "incident_services",
            "event_correlations",
            "silences",
            "topology",
        ] {
            assert!(tables.contains(table), "{table} missing from {tables:?}");
        }
        let partitioned: i64 = sqlx::query(
            "SELECT COUNT(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid \
             WHERE c.relname IN ('raw_events', 'processed_events', 'system_metrics') \
             AND p.partstrat = 'r'",
        )
        .fetch_one(store.pool())
        .await
        .expect("partitioned")
        .get(0);
        assert_eq!(partitioned, 3);
        store
            .write_events(&[logged(event(1, BASE_MS), 0)])
            .await
            .expect("write");
        store.close().await;

        // Connecting again applies nothing and keeps the data.
        let again = PgStore::connect(&config).await.expect("reconnect");
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(again.pool())
                .await
                .expect("migrations");
        assert_eq!(
            applied,
            migration_versions("postgres"),
            "every migration in migrations/postgres, once each"
        );
        assert_eq!(
            again.get_event("evt-000001").await.expect("get"),
            Some(event(1, BASE_MS))
        );
        again.close().await;
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    let dropped = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut admin)
        .await;
    if let Err(error) = dropped {
        eprintln!("could not drop test database {name}: {error}");
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// The versions of the migration files of `dialect`, ascending (they need not be
/// contiguous: 0004 is taken by a change on another branch).
fn migration_versions(dialect: &str) -> Vec<i64> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(dialect);
    let mut versions: Vec<i64> = std::fs::read_dir(&dir)
        .expect("migrations dir")
        .map(|entry| entry.expect("dir entry").file_name())
        .filter_map(|name| {
            let name = name.to_string_lossy().into_owned();
            name.ends_with(".sql")
                .then(|| name.split('_').next().and_then(|v| v.parse().ok()))
                .flatten()
        })
        .collect();
    versions.sort_unstable();
    versions
}

/// sqlx applies migrations by version and does not need them contiguous: a database
/// migrated with a gap (0001..0003 and 0005, as this branch has) takes a later-arriving
/// 0004 on the next start, and the gap itself is no error. Checked with a copy of the real
/// migrations plus a fixture 0004 in a temporary directory.
#[tokio::test]
async fn migrations_tolerate_a_gap_and_a_late_lower_version() {
    use sqlx::migrate::Migrator;
    with_store(async |store, _| {
        // The store itself was migrated from migrations/postgres, which has a gap at 0004.
        let versions = migration_versions("postgres");
        assert!(versions.contains(&5), "{versions:?}");
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(store.pool())
                .await
                .expect("applied");
        assert_eq!(applied, versions);
        if versions.contains(&4) {
            return; // 0004 has landed: the gap this test is about is gone.
        }

        // A later binary that also has 0004: it is applied after 0005, once.
        let dir = tempfile::tempdir().expect("tempdir");
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        for entry in std::fs::read_dir(&source).expect("read migrations") {
            let entry = entry.expect("entry");
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).expect("copy");
        }
        std::fs::write(
            dir.path().join("0004_late.sql"),
            "CREATE TABLE late_arrival (id BIGINT PRIMARY KEY);",
        )
        .expect("write fixture");
        let migrator = Migrator::new(dir.path()).await.expect("migrator");
        migrator
            .run(store.pool())
            .await
            .expect("apply the late 0004");
        migrator.run(store.pool()).await.expect("and nothing more");
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(store.pool())
                .await
                .expect("applied");
        let mut want = versions.clone();
        want.push(4);
        want.sort_unstable();
        assert_eq!(applied, want);
        let late: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM late_arrival")
            .fetch_one(store.pool())
            .await
            .expect("the late table exists");
        assert_eq!(late, 0);
    })
    .await;
}

/// The test server's URL with its database replaced by `database`.
fn url_of_database(database: &str) -> String {
    let url = pg_url();
    let (base, query) = url.split_once('?').unwrap_or((url.as_str(), ""));
    let authority = base.find("://").map_or(0, |i| i + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |i| authority + i);
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("{}/{database}{query}", &base[..path])
}

#[tokio::test]
async fn an_unreachable_server_is_an_error() {
    let config = PgConfig {
        url: "postgres://postgres@127.0.0.1:1/test".into(),
        ..PgConfig::default()
    };
    assert!(matches!(
        PgStore::connect(&config).await,
        Err(StoreError::Database(_))
    ));
}

#[tokio::test]
async fn nul_characters_do_not_block_the_sink() {
    with_store(async |store, _| {
        let mut e = event(7, BASE_MS);
        e.details = "before\0after".into();
        e.metadata.insert("nul".into(), "a\0b".into());
        let summary = store
            .write_events(&[logged(e.clone(), 0)])
            .await
            .expect("a NUL is not a poison pill");
        assert_eq!(summary.inserted, 1);
        let got = store
            .get_event(&e.event_id)
            .await
            .expect("get")
            .expect("stored");
        assert_eq!(got.details, "before\u{FFFD}after");
        assert_eq!(got.metadata, e.metadata, "JSON columns keep NULs exactly");
        let found = store
            .query_events(&EventQuery {
                text: Some("e\0a".into()),
                limit: 10,
                ..EventQuery::default()
            })
            .await
            .expect("query");
        assert_eq!(found.items.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    with_store(async |store, _| {
        let events: Vec<Event> = (0..3).map(|i| event(i, BASE_MS + i as i64)).collect();
        store
            .write_events(&logged_all(&events))
            .await
            .expect("write");
        let damage = [
            ("metadata = '{not json'", "evt-000000", "metadata"),
            ("severity = 'apocalyptic'", "evt-000001", "severity"),
            ("source_type = 'pigeon'", "evt-000002", "source_type"),
        ];
        for (set, id, column) in damage {
            sqlx::query(&format!(
                "UPDATE processed_events SET {set} WHERE event_id = $1"
            ))
            .bind(id)
            .execute(store.pool())
            .await
            .expect("damage a row");
            match store.get_event(id).await {
                Err(StoreError::Corrupt { what, .. }) => {
                    assert!(what.contains(column) && what.contains(id), "{what}");
                }
                other => panic!("{id}: {other:?}"),
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_of_the_same_ids_store_each_once() {
    with_store(async |store, _| {
        let events: Vec<Event> = (0..2_000)
            .map(|i| event(i, BASE_MS + (i as i64 % 5) * DAY_MS))
            .collect();
        let store = Arc::new(store.clone());
        let mut tasks = Vec::new();
        for writer in 0..4usize {
            // Overlapping batches in different orders.
            let mut batch = logged_all(&events[writer * 300..writer * 300 + 1_100]);
            if writer % 2 == 1 {
                batch.reverse();
            }
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut inserted = 0;
                for chunk in batch.chunks(250) {
                    inserted += store.write_events(chunk).await.expect("write").inserted;
                }
                inserted
            }));
        }
        let mut inserted = 0;
        for task in tasks {
            inserted += task.await.expect("writer");
        }
        // Writers cover events 0..2000 (the last one 900..2000).
        assert_eq!(inserted, 2_000);
        assert_eq!(count(&store, "processed_events").await, 2_000);
        assert_eq!(
            all_pages(store.as_ref(), all_events_query()).await,
            newest_first(events)
        );
    })
    .await;
}

/// Write throughput: 20 batches of 5,000 events (3 metadata keys, 2 tags, ~60-byte details)
/// into a fresh schema, then 20 batches of 5,000 metric points. Run with
/// `cargo test -p sightline-store --release --test postgres -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "benchmark"]
async fn write_throughput() {
    with_store(async |store, _| {
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
    })
    .await;
}
