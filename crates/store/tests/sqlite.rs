//! Behaviour of `SqliteStore` on real database files: exact round trips, idempotent writes,
//! every filter, keyset pagination, analytics and metrics, checked against brute force.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::json;
use sightline_model::{Event, Metric, Severity, SourceType};
use sightline_store::{
    AnalyticsQuery, Cursor, EventQuery, GroupBy, LoggedEvent, LoggedMetric, MAX_PAGE, MetricPoint,
    MetricQuery, SqliteStore, Store, StoreError, WriteSummary,
};
use sqlx::Row as _;

const BASE_MS: i64 = 1_700_000_000_000;
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

async fn open_store(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("store.db"))
        .await
        .expect("open the store")
}

/// A deterministic event whose every field varies with `i`.
fn event(i: usize, timestamp: i64) -> Event {
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

fn logged(event: Event, offset: u64) -> LoggedEvent {
    LoggedEvent {
        payload: serde_json::to_string(&event).expect("encode event"),
        partition: (offset % 4) as u32,
        offset,
        event,
    }
}

fn logged_all(events: &[Event]) -> Vec<LoggedEvent> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| logged(e.clone(), i as u64))
        .collect()
}

/// The order every event query returns: newest first, ties by id descending.
fn newest_first(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by(|a, b| (b.timestamp, &b.event_id).cmp(&(a.timestamp, &a.event_id)));
    events
}

/// Every page of `query`, concatenated, checking each page's size and cursor on the way.
async fn all_pages(store: &SqliteStore, mut query: EventQuery) -> Vec<Event> {
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

async fn all_metric_pages(store: &SqliteStore, mut query: MetricQuery) -> Vec<MetricPoint> {
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

/// A second, independent connection to the file, to inspect or damage tables directly.
async fn raw_connection(dir: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(dir.join("store.db"));
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open a raw connection")
}

async fn count(pool: &sqlx::SqlitePool, table: &str) -> i64 {
    sqlx::query(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .expect("count rows")
        .get(0)
}

fn all_events_query() -> EventQuery {
    EventQuery {
        limit: MAX_PAGE,
        ..EventQuery::default()
    }
}

#[tokio::test]
async fn events_round_trip_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
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
    let raw = raw_connection(dir.path()).await;
    let rows = sqlx::query("SELECT event_id, partition, log_offset, received_at, payload FROM raw_events ORDER BY event_id")
        .fetch_all(&raw)
        .await
        .expect("read raw_events");
    assert_eq!(rows.len(), 40);
    for (row, logged) in rows.iter().zip(&batch) {
        assert_eq!(row.get::<String, _>(0), logged.event.event_id);
        assert_eq!(row.get::<i64, _>(1), i64::from(logged.partition));
        assert_eq!(row.get::<i64, _>(2), logged.offset as i64);
        assert_eq!(row.get::<i64, _>(3), logged.event.received_at);
        assert_eq!(row.get::<String, _>(4), logged.payload);
    }
}

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
async fn redelivery_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
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

    let raw = raw_connection(dir.path()).await;
    let snapshot = |store: SqliteStore, raw: sqlx::SqlitePool| async move {
        let events = all_pages(
            &store,
            EventQuery {
                limit: 77,
                ..EventQuery::default()
            },
        )
        .await;
        let metrics = all_metric_pages(
            &store,
            MetricQuery {
                limit: 1000,
                ..MetricQuery::default()
            },
        )
        .await;
        let raw_rows: Vec<(String, i64, i64, String)> = sqlx::query(
            "SELECT event_id, partition, log_offset, payload FROM raw_events ORDER BY event_id",
        )
        .fetch_all(&raw)
        .await
        .expect("raw rows")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
        let counts = (
            count(&raw, "raw_events").await,
            count(&raw, "processed_events").await,
            count(&raw, "system_metrics").await,
        );
        (events, metrics, raw_rows, counts)
    };
    let before = snapshot(store.clone(), raw.clone()).await;
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

    let after = snapshot(store.clone(), raw.clone()).await;
    assert_eq!(before, after);
    assert_eq!(after.0, newest_first(events));
}

#[tokio::test]
async fn duplicates_within_one_batch_are_stored_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
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
    let raw = raw_connection(dir.path()).await;
    assert_eq!(count(&raw, "raw_events").await, 2);
}

#[tokio::test]
async fn large_batches_are_chunked_into_one_transaction() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
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
    let all = all_pages(&store, all_events_query()).await;
    assert_eq!(all, newest_first(events));
}

/// Events for the filter and analytics tests: every field combination, ties in time,
/// a few negative and far-apart timestamps.
fn varied_events(n: usize) -> Vec<Event> {
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

#[tokio::test]
async fn every_filter_matches_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
    let events = varied_events(900);
    store
        .write_events(&logged_all(&events))
        .await
        .expect("write");

    let check = |query: EventQuery, keep: Box<dyn Fn(&Event) -> bool>| {
        let expected = newest_first(events.iter().filter(|e| keep(e)).cloned().collect());
        let store = store.clone();
        async move {
            let got = all_pages(&store, query.clone()).await;
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

#[tokio::test]
async fn pagination_has_no_gaps_and_no_overlaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
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
            &store,
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
        &store,
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
async fn analytics_match_brute_force() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
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

fn metric(i: usize) -> Metric {
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

fn metric_batch(n: usize) -> Vec<LoggedMetric> {
    (0..n)
        .map(|i| LoggedMetric {
            metric: metric(i),
            partition: (i % 3) as u32,
            offset: (i / 3) as u64,
        })
        .collect()
}

#[tokio::test]
async fn metrics_query_and_paginate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_store(dir.path()).await;
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
        let store = store.clone();
        async move {
            assert!(!expected.is_empty());
            let got = all_metric_pages(&store, query.clone()).await;
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
