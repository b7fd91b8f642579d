//! The store's behavioural suite, written once and run against every backend (the
//! metastore-test pattern of Quickwit): exact round trips, idempotent writes, every filter,
//! keyset pagination, analytics and metrics, checked against brute force.
//!
//! Each test is an `async fn(&Backend)`. A test binary instantiates the whole suite for one
//! backend with [`conformance_tests!`], giving it a factory that makes a fresh, empty store
//! (`tests/sqlite.rs`: a file in a temporary directory; `tests/postgres.rs`: a fresh
//! schema). Backend-specific tests live in those binaries, not here.

#![allow(clippy::unwrap_used, dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt as _;
use serde_json::json;
use sightline_model::{Event, Metric, Severity, SourceType};
use sightline_store::{
    AnalyticsQuery, Cursor, EventQuery, GroupBy, LoggedEvent, LoggedMetric, MAX_PAGE, MetricPoint,
    MetricQuery, Store, StoreError, WriteSummary,
};
use sqlx::Row as _;

mod analyses;
mod incidents;
mod queries;
mod responses;
mod rollups;
mod rules;
mod security;
pub use analyses::*;
pub use incidents::*;
pub use queries::*;
pub use responses::*;
pub use rollups::*;
pub use rules::*;
pub use security::*;

/// A fresh store under test, with a side door to its tables for checks the trait cannot
/// make (what `raw_events` holds, how many rows a table has).
pub struct Backend {
    /// The store under test.
    pub store: Arc<dyn Store>,
    inspect: Inspect,
    teardown: Option<Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>>,
}

enum Inspect {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

/// One `raw_events` row: event id, log partition, log offset, received at, payload.
pub type RawRow = (String, i64, i64, i64, String);

const RAW_ROWS: &str = "SELECT event_id, partition, log_offset, received_at, payload FROM raw_events ORDER BY event_id";

impl Backend {
    /// A SQLite backend; `raw` is a separate connection to the same file, which lives in
    /// `dir` (removed after the test).
    pub fn sqlite(
        store: sightline_store::SqliteStore,
        raw: sqlx::SqlitePool,
        dir: tempfile::TempDir,
    ) -> Self {
        Backend {
            store: Arc::new(store),
            inspect: Inspect::Sqlite(raw),
            teardown: Some(Box::new(move || Box::pin(async move { drop(dir) }))),
        }
    }

    /// A PostgreSQL backend; `teardown` runs after the test, even a failed one.
    pub fn postgres(
        store: sightline_store::PgStore,
        teardown: impl FnOnce() -> futures::future::BoxFuture<'static, ()> + Send + 'static,
    ) -> Self {
        Backend {
            inspect: Inspect::Postgres(store.pool().clone()),
            store: Arc::new(store),
            teardown: Some(Box::new(teardown)),
        }
    }

    /// Every `raw_events` row, by event id.
    pub async fn raw_events(&self) -> Vec<RawRow> {
        let decode = |r: (String, i64, i64, i64, String)| r;
        match &self.inspect {
            Inspect::Sqlite(pool) => sqlx::query(RAW_ROWS)
                .fetch_all(pool)
                .await
                .expect("read raw_events")
                .iter()
                .map(|r| decode((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
                .collect(),
            Inspect::Postgres(pool) => sqlx::query(RAW_ROWS)
                .fetch_all(pool)
                .await
                .expect("read raw_events")
                .iter()
                .map(|r| decode((r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))))
                .collect(),
        }
    }

    /// Rows in `table`.
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT COUNT(*) FROM {table}");
        match &self.inspect {
            Inspect::Sqlite(pool) => sqlx::query(&sql).fetch_one(pool).await.map(|r| r.get(0)),
            Inspect::Postgres(pool) => sqlx::query(&sql).fetch_one(pool).await.map(|r| r.get(0)),
        }
        .expect("count rows")
    }
}

/// Runs one test against `backend`, then tears the backend down (also when the test
/// panicked, whose panic is then resumed).
pub async fn run(backend: Backend, test: impl AsyncFnOnce(&Backend)) {
    let outcome = AssertUnwindSafe(test(&backend)).catch_unwind().await;
    let Backend {
        store, teardown, ..
    } = backend;
    drop(store);
    if let Some(teardown) = teardown {
        teardown().await;
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Instantiates every conformance test in a module `$backend`, each on a fresh store made
/// by `$factory` (an `async` closure returning a [`Backend`]).
macro_rules! conformance_tests {
    ($backend:ident, $factory:expr) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            conformance_tests!(@each $factory;
                events_round_trip_exactly,
                redelivery_changes_nothing,
                duplicates_within_one_batch_are_stored_once,
                large_batches_are_chunked_into_one_transaction,
                every_filter_matches_brute_force,
                text_filter_folds_ascii_letters_only,
                ids_order_bytewise,
                extreme_timestamps_are_stored_ordered_and_bucketed,
                pagination_has_no_gaps_and_no_overlaps,
                analytics_match_brute_force,
                metrics_query_and_paginate,
                resent_metric_position_keeps_the_first_version,
                users_are_unique_and_updatable,
                api_keys_round_trip_and_revoke_once,
                refresh_tokens_rotate_once_and_revoke_by_family_and_user,
                audit_entries_filter_and_paginate_newest_first,
                rollups_upsert_by_id_and_round_trip_exactly,
                rollup_filters_match_brute_force,
                rollup_queries_reject_bad_limits_and_windows,
                event_counts_upsert_and_filter,
                statements_keep_order_and_unique_names,
                query_rows_upsert_delete_and_look_up,
                anomaly_writes_are_idempotent_and_filter_and_paginate,
                incident_upserts_never_let_an_older_version_win,
                incident_filters_and_pagination_match_brute_force,
                incident_updates_follow_the_lifecycle,
                concurrent_incident_updates_all_land,
                correlations_are_idempotent_and_found_by_incident_and_signal,
                silences_are_created_listed_and_expired,
                topology_is_versioned,
                response_templates_round_trip_and_updates_return_the_replaced_version,
                executions_run_once_per_firing_and_filter_newest_first,
                approvals_are_single_use_even_under_concurrency,
                decisions_filter_by_subject_and_time_and_keep_feedback,
                analyses_upsert_by_id_and_round_trip_exactly,
                feedback_needs_an_analysis_and_is_found_by_incident_and_root_cause,
                similar_incidents_share_a_service_or_fingerprint_and_came_before,
                event_insights_upsert_by_event_and_filter_newest_first,
                trigger_rules_round_trip_list_update_and_delete,
            );
        }
    };
    (@each $factory:expr; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                let backend = ($factory)().await;
                $crate::conformance::run(backend, $crate::conformance::$test).await;
            }
        )*
    };
}

pub const BASE_MS: i64 = 1_700_000_000_000;
/// More rows than any test stores: paging past it means pages repeat.
const PAGINATION_BOUND: usize = 20_000;

const SERVICES: [&str; 4] = ["payment-service", "auth-service", "search", "checkout"];
const TYPES: [&str; 4] = ["ERROR", "WARNING", "INFO", "DEPLOYMENT"];
const ENVIRONMENTS: [&str; 3] = ["PRODUCTION", "STAGING", "DEVELOPMENT"];
const HOSTS: [Option<&str>; 3] = [Some("web-1"), Some("web-2"), None];
const DETAILS: [&str; 8] = [
    "Disk FULL on /var",
    "disk latency high",
    "cpu at 100% for 5m",
    "cpu at 1000 for 5m",
    "user_id missing",
    "userXid missing",
    r"path C:\temp not found",
    "Ünïcödé détails ✓",
];

/// A deterministic event whose every field varies with `i`.
pub fn event(i: usize, timestamp: i64) -> Event {
    let mut metadata = serde_json::Map::new();
    metadata.insert("attempt".into(), json!(i));
    metadata.insert("ratio".into(), json!(i as f64 / 7.0));
    metadata.insert(
        "nested".into(),
        json!({"list": [1, "two", null, true, 0.1], "empty": {}, "quote": "\"'\\"}),
    );
    let mut tags = BTreeMap::new();
    tags.insert("region".into(), format!("eu-{}", i % 3));
    if i.is_multiple_of(2) {
        tags.insert("team".into(), "payments".into());
    }
    Event {
        event_id: format!("evt-{i:06}"),
        service_name: SERVICES[i % SERVICES.len()].into(),
        event_type: TYPES[(i / 3) % TYPES.len()].into(),
        timestamp,
        environment: ENVIRONMENTS[(i / 2) % ENVIRONMENTS.len()].into(),
        details: DETAILS[i % DETAILS.len()].into(),
        severity: Severity::ALL[(i / 5) % Severity::ALL.len()],
        metadata,
        source: format!("producer-{}", i % 2),
        source_type: [SourceType::Http, SourceType::Webhook, SourceType::Syslog][i % 3],
        host: HOSTS[(i / 7) % HOSTS.len()].map(str::to_owned),
        tags,
        fingerprint: format!("fp-{:x}", i % 11),
        correlation_id: format!("req-{i}"),
        received_at: timestamp + 5,
    }
}

pub fn logged(event: Event, offset: u64) -> LoggedEvent {
    LoggedEvent {
        payload: serde_json::to_string(&event).expect("encode event"),
        partition: (offset % 4) as u32,
        offset,
        event,
    }
}

pub fn logged_all(events: &[Event]) -> Vec<LoggedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| logged(e.clone(), i as u64))
        .collect()
}

/// The order every event query returns: newest first, ties by id descending.
pub fn newest_first(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by(|a, b| (b.timestamp, &b.event_id).cmp(&(a.timestamp, &a.event_id)));
    events
}

/// Every page of `query`, concatenated, checking each page's size and cursor on the way.
pub async fn all_pages(store: &dyn Store, mut query: EventQuery) -> Vec<Event> {
    let mut out = Vec::new();
    query.cursor = None;
    loop {
        let page = store.query_events(&query).await.expect("query events");
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(
                    page.items.len(),
                    query.limit as usize,
                    "a non-last page is full"
                );
                out.extend(page.items);
                assert!(
                    out.len() <= PAGINATION_BOUND,
                    "pagination of {query:?} never ends"
                );
                query.cursor = Some(Cursor::decode(&cursor).expect("our own cursor decodes"));
            }
            None => {
                assert!(page.items.len() <= query.limit as usize);
                out.extend(page.items);
                return out;
            }
        }
    }
}

pub async fn all_metric_pages(store: &dyn Store, mut query: MetricQuery) -> Vec<MetricPoint> {
    let mut out = Vec::new();
    loop {
        let page = store.query_metrics(&query).await.expect("query metrics");
        match page.next_cursor {
            Some(cursor) => {
                assert_eq!(page.items.len(), query.limit as usize);
                out.extend(page.items);
                assert!(
                    out.len() <= PAGINATION_BOUND,
                    "pagination of {query:?} never ends"
                );
                query.cursor = Some(Cursor::decode(&cursor).expect("our own cursor decodes"));
            }
            None => {
                out.extend(page.items);
                return out;
            }
        }
    }
}

pub fn all_events_query() -> EventQuery {
    EventQuery {
        limit: MAX_PAGE,
        ..EventQuery::default()
    }
}

pub async fn events_round_trip_exactly(backend: &Backend) {
    let store = backend.store.as_ref();
    let events: Vec<Event> = (0..40)
        .map(|i| event(i, BASE_MS + i as i64 * 1000))
        .collect();
    let batch = logged_all(&events);

    let summary = store.write_events(&batch).await.expect("write");
    assert_eq!(
        summary,
        WriteSummary {
            inserted: 40,
            duplicates: 0
        }
    );

    for e in &events {
        let got = store.get_event(&e.event_id).await.expect("get event");
        assert_eq!(got.as_ref(), Some(e));
    }
    assert_eq!(store.get_event("no-such-event").await.expect("get"), None);

    let page = store
        .query_events(&all_events_query())
        .await
        .expect("query");
    assert_eq!(page.items, newest_first(events.clone()));
    assert_eq!(page.next_cursor, None);

    // raw_events keeps the exact log payload and position of each event.
    let rows = backend.raw_events().await;
    assert_eq!(rows.len(), 40);
    for (row, logged) in rows.iter().zip(&batch) {
        let (event_id, partition, offset, received_at, payload) = row;
        assert_eq!(event_id, &logged.event.event_id);
        assert_eq!(*partition, i64::from(logged.partition));
        assert_eq!(*offset, logged.offset as i64);
        assert_eq!(*received_at, logged.event.received_at);
        assert_eq!(payload, &logged.payload);
    }
}

pub async fn redelivery_changes_nothing(backend: &Backend) {
    let store = backend.store.as_ref();
    let events: Vec<Event> = (0..300)
        .map(|i| event(i, BASE_MS + (i as i64 % 50)))
        .collect();
    let batch = logged_all(&events);
    let metrics = metric_batch(250);

    assert_eq!(
        store.write_events(&batch).await.expect("write events"),
        WriteSummary {
            inserted: 300,
            duplicates: 0
        }
    );
    assert_eq!(
        store.write_metrics(&metrics).await.expect("write metrics"),
        WriteSummary {
            inserted: 250,
            duplicates: 0
        }
    );

    let snapshot = || async {
        let events = all_pages(
            store,
            EventQuery {
                limit: 77,
                ..EventQuery::default()
            },
        )
        .await;
        let metrics = all_metric_pages(
            store,
            MetricQuery {
                limit: 1000,
                ..MetricQuery::default()
            },
        )
        .await;
        let raw_rows = backend.raw_events().await;
        let counts = (
            backend.count("raw_events").await,
            backend.count("processed_events").await,
            backend.count("system_metrics").await,
        );
        (events, metrics, raw_rows, counts)
    };
    let before = snapshot().await;
    assert_eq!(before.3, (300, 300, 250));

    // The same batches again, as after a crash before the log commit.
    assert_eq!(
        store.write_events(&batch).await.expect("rewrite events"),
        WriteSummary {
            inserted: 0,
            duplicates: 300
        }
    );
    assert_eq!(
        store
            .write_metrics(&metrics)
            .await
            .expect("rewrite metrics"),
        WriteSummary {
            inserted: 0,
            duplicates: 250
        }
    );
    // A re-sent id with different content at a different position: the first version wins.
    let mut changed = events[0].clone();
    changed.details = "a different text".into();
    assert_eq!(
        store
            .write_events(&[logged(changed, 9_999)])
            .await
            .expect("re-sent id"),
        WriteSummary {
            inserted: 0,
            duplicates: 1
        }
    );

    let after = snapshot().await;
    assert_eq!(before, after);
    assert_eq!(after.0, newest_first(events));
}

pub async fn duplicates_within_one_batch_are_stored_once(backend: &Backend) {
    let store = backend.store.as_ref();
    let first = event(1, BASE_MS);
    let mut second = event(2, BASE_MS + 1);
    second.event_id = first.event_id.clone();
    let batch = vec![
        logged(first.clone(), 0),
        logged(second, 1),
        logged(event(3, BASE_MS), 2),
    ];
    assert_eq!(
        store.write_events(&batch).await.expect("write"),
        WriteSummary {
            inserted: 2,
            duplicates: 1
        }
    );
    assert_eq!(
        store.get_event(&first.event_id).await.expect("get"),
        Some(first)
    );
    assert_eq!(backend.count("raw_events").await, 2);
}

pub async fn large_batches_are_chunked_into_one_transaction(backend: &Backend) {
    let store = backend.store.as_ref();
    // Several times the rows of one statement.
    let events: Vec<Event> = (0..7_001).map(|i| event(i, BASE_MS + i as i64)).collect();
    assert_eq!(
        store
            .write_events(&logged_all(&events))
            .await
            .expect("write"),
        WriteSummary {
            inserted: 7_001,
            duplicates: 0
        }
    );
    let all = all_pages(store, all_events_query()).await;
    assert_eq!(all, newest_first(events));
}

/// Events for the filter and analytics tests: every field combination, ties in time,
/// a few negative and far-apart timestamps.
pub fn varied_events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let timestamp = match i % 50 {
                0 => -1_500 - i as i64,              // before the epoch
                1 => BASE_MS + 86_400_000 * 3,       // far later, all equal
                _ => BASE_MS + (i as i64 / 3) * 250, // ties in threes
            };
            event(i, timestamp)
        })
        .collect()
}

pub async fn every_filter_matches_brute_force(backend: &Backend) {
    let store = backend.store.as_ref();
    let events = varied_events(900);
    store
        .write_events(&logged_all(&events))
        .await
        .expect("write");

    let check = |query: EventQuery, keep: Box<dyn Fn(&Event) -> bool>| {
        let expected = newest_first(events.iter().filter(|e| keep(e)).cloned().collect());
        async move {
            let got = all_pages(store, query.clone()).await;
            assert!(
                !expected.is_empty(),
                "filter {query:?} should match something"
            );
            assert_eq!(got.len(), expected.len(), "count for {query:?}");
            assert_eq!(got, expected, "rows for {query:?}");
        }
    };
    let q = |f: &dyn Fn(&mut EventQuery)| {
        let mut query = EventQuery {
            limit: 97,
            ..EventQuery::default()
        };
        f(&mut query);
        query
    };

    check(q(&|_| {}), Box::new(|_| true)).await;
    check(
        q(&|q| q.severities = vec![Severity::Critical, Severity::Low]),
        Box::new(|e| matches!(e.severity, Severity::Critical | Severity::Low)),
    )
    .await;
    check(
        q(&|q| q.severities = vec![Severity::Info]),
        Box::new(|e| e.severity == Severity::Info),
    )
    .await;
    check(
        q(&|q| q.service = Some("auth-service".into())),
        Box::new(|e| e.service_name == "auth-service"),
    )
    .await;
    check(
        q(&|q| q.host = Some("web-2".into())),
        Box::new(|e| e.host.as_deref() == Some("web-2")),
    )
    .await;
    check(
        q(&|q| q.event_type = Some("DEPLOYMENT".into())),
        Box::new(|e| e.event_type == "DEPLOYMENT"),
    )
    .await;
    check(
        q(&|q| q.environment = Some("STAGING".into())),
        Box::new(|e| e.environment == "STAGING"),
    )
    .await;
    // Case-insensitive substring.
    check(
        q(&|q| q.text = Some("DISK".into())),
        Box::new(|e| e.details.to_lowercase().contains("disk")),
    )
    .await;
    // `%` and `_` and `\` are literal characters, not wildcards.
    check(
        q(&|q| q.text = Some("100%".into())),
        Box::new(|e| e.details.contains("100%")),
    )
    .await;
    check(
        q(&|q| q.text = Some("user_id".into())),
        Box::new(|e| e.details.contains("user_id")),
    )
    .await;
    check(
        q(&|q| q.text = Some(r"C:\temp".into())),
        Box::new(|e| e.details.contains(r"C:\temp")),
    )
    .await;
    check(
        q(&|q| q.text = Some("détails ✓".into())),
        Box::new(|e| e.details.contains("détails ✓")),
    )
    .await;
    let (since, until) = (BASE_MS + 10_000, BASE_MS + 50_000);
    check(
        q(&|q| q.since_ms = Some(since)),
        Box::new(move |e| e.timestamp >= since),
    )
    .await;
    check(
        q(&|q| q.until_ms = Some(until)),
        Box::new(move |e| e.timestamp < until),
    )
    .await;
    check(
        q(&|q| {
            q.since_ms = Some(since);
            q.until_ms = Some(until);
        }),
        Box::new(move |e| e.timestamp >= since && e.timestamp < until),
    )
    .await;
    check(
        q(&|q| {
            q.severities = vec![Severity::High, Severity::Medium, Severity::Info];
            q.service = Some("payment-service".into());
            q.environment = Some("PRODUCTION".into());
            q.text = Some("disk".into());
            q.since_ms = Some(BASE_MS);
        }),
        Box::new(|e| {
            matches!(
                e.severity,
                Severity::High | Severity::Medium | Severity::Info
            ) && e.service_name == "payment-service"
                && e.environment == "PRODUCTION"
                && e.details.to_lowercase().contains("disk")
                && e.timestamp >= BASE_MS
        }),
    )
    .await;

    // Filters that match nothing give an empty last page.
    for query in [
        // As wildcards these would match "100%", "1000" and "userXid".
        q(&|q| q.text = Some("1%0".into())),
        q(&|q| q.text = Some("_x_".into())),
        q(&|q| q.service = Some("unknown".into())),
    ] {
        let page = store.query_events(&query).await.expect("query");
        assert!(
            page.items.is_empty(),
            "{query:?} matched {:?}",
            page.items.first()
        );
        assert_eq!(page.next_cursor, None);
    }
}

pub async fn pagination_has_no_gaps_and_no_overlaps(backend: &Backend) {
    let store = backend.store.as_ref();
    // 2,537 events; runs of equal timestamps cross page boundaries.
    let events: Vec<Event> = (0..2_537)
        .map(|i| event(i, BASE_MS + (i as i64 / 13) * 10))
        .collect();
    store
        .write_events(&logged_all(&events))
        .await
        .expect("write");
    let expected = newest_first(events.clone());

    for limit in [1, 7, 100, 999, MAX_PAGE] {
        let got = all_pages(
            store,
            EventQuery {
                limit,
                ..EventQuery::default()
            },
        )
        .await;
        assert_eq!(got.len(), 2_537, "limit {limit}");
        assert_eq!(got, expected, "limit {limit}");
    }

    // With a filter, too.
    let filtered = all_pages(
        store,
        EventQuery {
            service: Some("search".into()),
            limit: 50,
            ..EventQuery::default()
        },
    )
    .await;
    let expected_filtered: Vec<Event> = expected
        .iter()
        .filter(|e| e.service_name == "search")
        .cloned()
        .collect();
    assert_eq!(filtered, expected_filtered);

    // Limits are clamped to 1..=MAX_PAGE.
    let zero = store
        .query_events(&EventQuery {
            limit: 0,
            ..EventQuery::default()
        })
        .await
        .expect("limit 0");
    assert_eq!(zero.items, expected[..1]);
    assert!(zero.next_cursor.is_some());
    let huge = store
        .query_events(&EventQuery {
            limit: 50_000,
            ..EventQuery::default()
        })
        .await
        .expect("huge limit");
    assert_eq!(huge.items, expected[..MAX_PAGE as usize]);

    // Exactly one full page: no cursor.
    let exact = store
        .query_events(&EventQuery {
            service: Some("search".into()),
            limit: expected_filtered.len().min(MAX_PAGE as usize) as u32,
            ..EventQuery::default()
        })
        .await
        .expect("exact page");
    assert_eq!(exact.items, expected_filtered);
    assert_eq!(exact.next_cursor, None);

    // A cursor continues strictly after its row, even when later rows share its timestamp.
    let mid = &expected[1_000];
    let after_mid = store
        .query_events(&EventQuery {
            limit: 20,
            cursor: Some(Cursor {
                timestamp: mid.timestamp,
                id: mid.event_id.clone(),
            }),
            ..EventQuery::default()
        })
        .await
        .expect("after cursor");
    assert_eq!(after_mid.items, expected[1_001..1_021]);
}

pub async fn analytics_match_brute_force(backend: &Backend) {
    let store = backend.store.as_ref();
    let events = varied_events(1_500);
    store
        .write_events(&logged_all(&events))
        .await
        .expect("write");

    let ranges = [
        (BASE_MS, BASE_MS + 60_000, 10_000),
        (BASE_MS + 1_234, BASE_MS + 98_765, 7_000),
        (-100_000, BASE_MS * 2, BASE_MS / 1_000),
        (-10_000, 0, 1_000),
        (BASE_MS, BASE_MS, 1_000),
    ];
    for (since_ms, until_ms, bucket_ms) in ranges {
        for group_by in [
            GroupBy::Severity,
            GroupBy::Service,
            GroupBy::EventType,
            GroupBy::Host,
        ] {
            let query = AnalyticsQuery {
                since_ms,
                until_ms,
                group_by,
                bucket_ms,
            };
            let got = store.event_analytics(&query).await.expect("analytics");

            let in_range: Vec<&Event> = events
                .iter()
                .filter(|e| e.timestamp >= since_ms && e.timestamp < until_ms)
                .collect();
            let key = |e: &Event| match group_by {
                GroupBy::Severity => e.severity.as_str().to_owned(),
                GroupBy::Service => e.service_name.clone(),
                GroupBy::EventType => e.event_type.clone(),
                GroupBy::Host => e.host.clone().unwrap_or_default(),
            };
            let mut groups: HashMap<String, u64> = HashMap::new();
            let mut buckets: BTreeMap<i64, BTreeMap<String, u64>> = BTreeMap::new();
            for e in &in_range {
                *groups.entry(key(e)).or_default() += 1;
                let start = e.timestamp.div_euclid(bucket_ms) * bucket_ms;
                *buckets.entry(start).or_default().entry(key(e)).or_default() += 1;
            }
            let mut groups: Vec<(String, u64)> = groups.into_iter().collect();
            groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

            assert_eq!(got.total, in_range.len() as u64, "{query:?}");
            assert_eq!(
                got.groups
                    .iter()
                    .map(|g| (g.key.clone(), g.count))
                    .collect::<Vec<_>>(),
                groups,
                "{query:?}"
            );
            assert_eq!(
                got.buckets
                    .iter()
                    .map(|b| (b.start_ms, b.counts.clone()))
                    .collect::<Vec<_>>(),
                buckets.into_iter().collect::<Vec<_>>(),
                "{query:?}"
            );
            assert_eq!(
                (got.since_ms, got.until_ms, got.bucket_ms, got.group_by),
                (since_ms, until_ms, bucket_ms, group_by)
            );
        }
    }
    // The brute force is not vacuous: the first range has several buckets and groups.
    let first = store
        .event_analytics(&AnalyticsQuery {
            since_ms: BASE_MS,
            until_ms: BASE_MS + 60_000,
            group_by: GroupBy::Host,
            bucket_ms: 10_000,
        })
        .await
        .expect("analytics");
    assert_eq!(first.buckets.len(), 6);
    assert_eq!(first.groups.len(), 3);
    assert!(
        first.groups.iter().any(|g| g.key.is_empty()),
        "missing hosts count under \"\""
    );

    for bucket_ms in [0, -5] {
        let bad = store
            .event_analytics(&AnalyticsQuery {
                since_ms: 0,
                until_ms: 1,
                group_by: GroupBy::Severity,
                bucket_ms,
            })
            .await;
        assert!(matches!(bad, Err(StoreError::InvalidQuery(_))), "{bad:?}");
    }
    let too_many = store
        .event_analytics(&AnalyticsQuery {
            since_ms: 0,
            until_ms: BASE_MS,
            group_by: GroupBy::Severity,
            bucket_ms: 1,
        })
        .await;
    assert!(
        matches!(too_many, Err(StoreError::InvalidQuery(_))),
        "{too_many:?}"
    );
}

pub fn metric(i: usize) -> Metric {
    let mut tags = BTreeMap::new();
    tags.insert("host".into(), format!("web-{}", i % 3));
    Metric {
        service_name: SERVICES[i % 2].into(),
        metric_type: ["cpu_usage", "latency_ms", "error_rate"][i % 3].into(),
        value: i as f64 * 0.1 + 1e-9,
        tags,
        timestamp: BASE_MS + (i as i64 / 4) * 1_000,
        received_at: BASE_MS + i as i64,
        correlation_id: format!("req-m{i}"),
    }
}

pub fn metric_batch(n: usize) -> Vec<LoggedMetric> {
    (0..n)
        .map(|i| LoggedMetric {
            metric: metric(i),
            partition: (i % 3) as u32,
            offset: (i / 3) as u64,
        })
        .collect()
}

pub async fn metrics_query_and_paginate(backend: &Backend) {
    let store = backend.store.as_ref();
    let batch = metric_batch(1_203);
    assert_eq!(
        store.write_metrics(&batch).await.expect("write"),
        WriteSummary {
            inserted: 1_203,
            duplicates: 0
        }
    );

    let mut expected: Vec<MetricPoint> = batch
        .iter()
        .map(|m| MetricPoint {
            id: format!("{:05}-{:020}", m.partition, m.offset),
            metric: m.metric.clone(),
        })
        .collect();
    expected.sort_by(|a, b| (b.metric.timestamp, &b.id).cmp(&(a.metric.timestamp, &a.id)));

    let check = |query: MetricQuery, keep: &dyn Fn(&MetricPoint) -> bool| {
        let expected: Vec<MetricPoint> = expected.iter().filter(|p| keep(p)).cloned().collect();
        async move {
            assert!(!expected.is_empty());
            let got = all_metric_pages(store, query.clone()).await;
            assert_eq!(got, expected, "{query:?}");
        }
    };
    check(
        MetricQuery {
            limit: 100,
            ..MetricQuery::default()
        },
        &|_| true,
    )
    .await;
    check(
        MetricQuery {
            limit: 1,
            ..MetricQuery::default()
        },
        &|_| true,
    )
    .await;
    check(
        MetricQuery {
            service: Some("auth-service".into()),
            metric_type: Some("latency_ms".into()),
            limit: 13,
            ..MetricQuery::default()
        },
        &|p| p.metric.service_name == "auth-service" && p.metric.metric_type == "latency_ms",
    )
    .await;
    check(
        MetricQuery {
            metric_type: Some("cpu_usage".into()),
            since_ms: Some(BASE_MS + 20_000),
            until_ms: Some(BASE_MS + 90_000),
            limit: 9,
            ..MetricQuery::default()
        },
        &|p| {
            p.metric.metric_type == "cpu_usage"
                && p.metric.timestamp >= BASE_MS + 20_000
                && p.metric.timestamp < BASE_MS + 90_000
        },
    )
    .await;

    let none = store
        .query_metrics(&MetricQuery {
            service: Some("nobody".into()),
            limit: 10,
            ..MetricQuery::default()
        })
        .await
        .expect("query");
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

/// The text filter ignores the case of ASCII letters only (SQLite's `LIKE` without ICU);
/// other letters must match exactly.
pub async fn text_filter_folds_ascii_letters_only(backend: &Backend) {
    let store = backend.store.as_ref();
    let events = varied_events(40);
    store
        .write_events(&logged_all(&events))
        .await
        .expect("write");
    let matching = |text: &str| {
        let query = EventQuery {
            text: Some(text.to_owned()),
            limit: MAX_PAGE,
            ..EventQuery::default()
        };
        async move { store.query_events(&query).await.expect("query").items }
    };
    let unicode: Vec<Event> = newest_first(
        events
            .iter()
            .filter(|e| e.details.starts_with('Ü'))
            .cloned()
            .collect(),
    );
    assert!(!unicode.is_empty());
    assert_eq!(matching("ÜNï").await, unicode, "ASCII letters fold");
    assert_eq!(
        matching("üni").await,
        Vec::<Event>::new(),
        "Ü/ü and ï/i differ"
    );
    assert_eq!(matching("ÜNÏ").await, Vec::<Event>::new(), "ï/Ï differ");
    assert_eq!(matching("DÉTAILS").await, Vec::<Event>::new(), "é/É differ");
}

/// Ids compare byte-wise (upper case before lower case, ASCII before other letters), in
/// the order and in cursors.
pub async fn ids_order_bytewise(backend: &Backend) {
    let store = backend.store.as_ref();
    let ids = ["a", "B", "é", "_x", "Z", "aa", "a-b", "ÿ", "e", "0"];
    let events: Vec<Event> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut e = event(i, BASE_MS);
            e.event_id = (*id).to_owned();
            e
        })
        .collect();
    store
        .write_events(&logged_all(&events))
        .await
        .expect("write");
    let expected = newest_first(events);
    assert_eq!(
        expected
            .iter()
            .map(|e| e.event_id.as_str())
            .collect::<Vec<_>>(),
        ["ÿ", "é", "e", "aa", "a-b", "a", "_x", "Z", "B", "0"]
    );
    for limit in [1, 3] {
        let got = all_pages(
            store,
            EventQuery {
                limit,
                ..EventQuery::default()
            },
        )
        .await;
        assert_eq!(got, expected, "limit {limit}");
    }
}

/// Timestamps far outside any plausible range (before 1900, after 2200, near the ends of
/// `i64`) are stored, ordered and bucketed like any other.
pub async fn extreme_timestamps_are_stored_ordered_and_bucketed(backend: &Backend) {
    let store = backend.store.as_ref();
    let timestamps = [
        i64::MIN + 1,
        -5_000_000_000_000, // 1811
        -1,
        0,
        BASE_MS,
        9_000_000_000_000, // 2255
        i64::MAX - 10,     // (received_at is timestamp + 5)
    ];
    let events: Vec<Event> = timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| event(i, *ts))
        .collect();
    assert_eq!(
        store
            .write_events(&logged_all(&events))
            .await
            .expect("write"),
        WriteSummary {
            inserted: timestamps.len() as u64,
            duplicates: 0
        }
    );
    for e in &events {
        assert_eq!(
            store.get_event(&e.event_id).await.expect("get").as_ref(),
            Some(e)
        );
    }
    let expected = newest_first(events.clone());
    assert_eq!(
        all_pages(
            store,
            EventQuery {
                limit: 2,
                ..EventQuery::default()
            }
        )
        .await,
        expected
    );
    let before_epoch = all_pages(
        store,
        EventQuery {
            until_ms: Some(0),
            limit: 10,
            ..EventQuery::default()
        },
    )
    .await;
    assert_eq!(before_epoch, expected[4..]);

    let bucket_ms = i64::MAX / 1_000;
    let analytics = store
        .event_analytics(&AnalyticsQuery {
            since_ms: i64::MIN,
            until_ms: i64::MAX,
            group_by: GroupBy::Service,
            bucket_ms,
        })
        .await
        .expect("analytics");
    assert_eq!(analytics.total, timestamps.len() as u64);
    let mut buckets: BTreeMap<i64, u64> = BTreeMap::new();
    for ts in timestamps {
        *buckets
            .entry(ts.div_euclid(bucket_ms).saturating_mul(bucket_ms))
            .or_default() += 1;
    }
    assert_eq!(
        analytics
            .buckets
            .iter()
            .map(|b| (b.start_ms, b.counts.values().sum::<u64>()))
            .collect::<Vec<_>>(),
        buckets.into_iter().collect::<Vec<_>>()
    );
}

/// A log position written again with other content (a recreated topic) keeps the first
/// version, like a re-sent event id.
pub async fn resent_metric_position_keeps_the_first_version(backend: &Backend) {
    let store = backend.store.as_ref();
    let first = metric_batch(3);
    store.write_metrics(&first).await.expect("write");
    let mut again = first[1].clone();
    again.metric.timestamp += 86_400_000 * 2;
    again.metric.value = 42.0;
    let mut twice_in_one_batch = first[2].clone();
    twice_in_one_batch.offset = 1_000;
    let mut second_copy = twice_in_one_batch.clone();
    second_copy.metric.value = -1.0;
    assert_eq!(
        store
            .write_metrics(&[again, twice_in_one_batch.clone(), second_copy])
            .await
            .expect("rewrite"),
        WriteSummary {
            inserted: 1,
            duplicates: 2
        }
    );
    let got = all_metric_pages(
        store,
        MetricQuery {
            limit: 10,
            ..MetricQuery::default()
        },
    )
    .await;
    let mut expected: Vec<MetricPoint> = first
        .iter()
        .chain([&twice_in_one_batch])
        .map(|m| MetricPoint {
            id: format!("{:05}-{:020}", m.partition, m.offset),
            metric: m.metric.clone(),
        })
        .collect();
    expected.sort_by(|a, b| (b.metric.timestamp, &b.id).cmp(&(a.metric.timestamp, &a.id)));
    assert_eq!(got, expected);
    assert_eq!(backend.count("system_metrics").await, 4);
}
