//! The log → store sink against a real `EmbeddedLog` and a real SQLite file: everything
//! appended is stored exactly once, offsets are committed only after the store has the data,
//! restarts and redeliveries duplicate nothing, bad records are skipped and counted, and
//! failed writes are retried without committing. The redelivery test also runs against
//! PostgreSQL.

#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use sightline_log::{EmbeddedLog, EventLog, LogConfig, Offset, Record, TopicConfig};
use sightline_model::{Event, Metric, Severity, SourceType, topics};
use sightline_store::sink::{self, SinkConfig};
use sightline_store::{
    Analytics, AnalyticsQuery, EventCountQuery, EventCountRow, EventQuery, LoggedEvent,
    LoggedMetric, MAX_PAGE, MetricPoint, MetricQuery, Page, QueryRow, QueryRowsRequest,
    RollupQuery, RollupRow, SqliteStore, Store, StreamStatement, WriteSummary,
};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const BASE_MS: i64 = 1_700_000_000_000;
const WAIT: Duration = Duration::from_secs(60);

// ---- a metrics recorder that keeps counters, to check what the sink counts --------------

#[derive(Debug, Default)]
struct CountingRecorder {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
}

fn key_text(key: &metrics::Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    format!("{}{{{}}}", key.name(), labels.join(","))
}

impl metrics::Recorder for CountingRecorder {
    fn describe_counter(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_gauge(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }
    fn describe_histogram(
        &self,
        _: metrics::KeyName,
        _: Option<metrics::Unit>,
        _: metrics::SharedString,
    ) {
    }

    fn register_counter(&self, key: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Counter {
        let cell = self
            .counters
            .lock()
            .unwrap()
            .entry(key_text(key))
            .or_default()
            .clone();
        metrics::Counter::from_arc(cell)
    }

    fn register_gauge(&self, _: &metrics::Key, _: &metrics::Metadata<'_>) -> metrics::Gauge {
        metrics::Gauge::noop()
    }

    fn register_histogram(
        &self,
        _: &metrics::Key,
        _: &metrics::Metadata<'_>,
    ) -> metrics::Histogram {
        metrics::Histogram::noop()
    }
}

/// The process-wide recorder (installed once; tests in this file share it).
fn recorder() -> &'static CountingRecorder {
    static RECORDER: OnceLock<&'static CountingRecorder> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let recorder: &'static CountingRecorder = Box::leak(Box::default());
        metrics::set_global_recorder(recorder).expect("no other recorder in this test binary");
        recorder
    })
}

fn counter(name: &str) -> u64 {
    recorder()
        .counters
        .lock()
        .unwrap()
        .get(name)
        .map_or(0, |c| c.load(Ordering::Relaxed))
}

// ---- fixtures ----------------------------------------------------------------------------

fn event(i: usize) -> Event {
    let mut metadata = serde_json::Map::new();
    metadata.insert("attempt".into(), serde_json::json!(i));
    metadata.insert("ratio".into(), serde_json::json!(i as f64 / 3.0));
    Event {
        event_id: format!("evt-{i:06}"),
        service_name: ["payment-service", "auth-service", "search"][i % 3].into(),
        event_type: ["ERROR", "INFO"][i % 2].into(),
        timestamp: BASE_MS + (i as i64 / 4) * 100,
        environment: "PRODUCTION".into(),
        details: format!("something happened #{i}"),
        severity: Severity::ALL[i % 5],
        metadata,
        source: "test".into(),
        source_type: SourceType::Http,
        host: (!i.is_multiple_of(4)).then(|| format!("web-{}", i % 4)),
        tags: BTreeMap::from([("k".to_owned(), format!("v{i}"))]),
        fingerprint: format!("fp-{}", i % 9),
        correlation_id: format!("req-{i}"),
        received_at: BASE_MS + i as i64,
    }
}

fn metric(i: usize) -> Metric {
    Metric {
        service_name: ["payment-service", "auth-service"][i % 2].into(),
        metric_type: ["cpu_usage", "latency_ms"][i % 2].into(),
        value: i as f64 * 1.5,
        tags: BTreeMap::from([("host".to_owned(), format!("web-{}", i % 3))]),
        timestamp: BASE_MS + i as i64 * 10,
        received_at: BASE_MS + i as i64 * 10 + 1,
        correlation_id: format!("req-m{i}"),
    }
}

fn event_record(event: &Event) -> Record {
    Record::new(
        Some(&event.service_name),
        serde_json::to_vec(event).unwrap(),
        event.timestamp,
    )
}

fn metric_record(metric: &Metric) -> Record {
    Record::new(
        Some(&metric.service_name),
        serde_json::to_vec(metric).unwrap(),
        metric.timestamp,
    )
}

async fn open_log(dir: &Path, event_partitions: u32, metric_partitions: u32) -> Arc<EmbeddedLog> {
    let log = EmbeddedLog::open(dir.join("log"), LogConfig::default()).expect("open log");
    log.create_topic(
        topics::SYSTEM_EVENTS,
        TopicConfig::with_partitions(event_partitions),
    )
    .await
    .expect("create system-events");
    log.create_topic(
        topics::METRICS_RAW,
        TopicConfig::with_partitions(metric_partitions),
    )
    .await
    .expect("create metrics.raw");
    Arc::new(log)
}

/// Appends in chunks; returns where each record landed.
async fn append(log: &EmbeddedLog, topic: &str, records: Vec<Record>) -> Vec<Offset> {
    let mut offsets = Vec::new();
    for chunk in records.chunks(300) {
        offsets.extend(log.append(topic, chunk.to_vec()).await.expect("append"));
    }
    offsets
}

/// Next offset per partition implied by `offsets`, for a topic with `partitions` partitions.
fn ends(offsets: &[Offset], partitions: u32) -> Vec<Option<u64>> {
    let mut ends = vec![None; partitions as usize];
    for o in offsets {
        let end = &mut ends[o.partition as usize];
        *end = Some(end.map_or(o.offset + 1, |e: u64| e.max(o.offset + 1)));
    }
    ends
}

struct RunningSink {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), sightline_store::StoreError>>,
}

fn start_sink(log: Arc<EmbeddedLog>, store: Arc<dyn Store>, batch_size: usize) -> RunningSink {
    let (stop, stopped) = oneshot::channel::<()>();
    let config = SinkConfig {
        batch_size,
        retry_backoff: Duration::from_millis(20),
        codec: None,
    };
    let task = tokio::spawn(sink::run(log, store, config, async move {
        let _ = stopped.await;
    }));
    RunningSink { stop, task }
}

impl RunningSink {
    async fn stop(self) {
        self.stop.send(()).expect("sink still running");
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("sink stops promptly")
            .expect("sink task did not panic")
            .expect("sink stops cleanly");
    }
}

/// Waits until the `store` group's committed positions equal `expected` on `topic`.
async fn wait_committed(log: &EmbeddedLog, topic: &str, expected: &[Option<u64>]) {
    tokio::time::timeout(WAIT, async {
        loop {
            let committed = log.committed(sink::GROUP, topic).await.expect("committed");
            if committed == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{topic} never reached committed positions {expected:?}"));
}

async fn all_events(store: &dyn Store) -> Vec<Event> {
    let mut query = EventQuery {
        limit: MAX_PAGE,
        ..EventQuery::default()
    };
    let mut out = Vec::new();
    loop {
        let Page { items, next_cursor } = store.query_events(&query).await.expect("query");
        out.extend(items);
        assert!(out.len() <= 20_000, "pagination never ends");
        match next_cursor {
            Some(c) => query.cursor = Some(sightline_store::Cursor::decode(&c).expect("cursor")),
            None => return out,
        }
    }
}

async fn all_metrics(store: &dyn Store) -> Vec<MetricPoint> {
    let mut query = MetricQuery {
        limit: MAX_PAGE,
        ..MetricQuery::default()
    };
    let mut out = Vec::new();
    loop {
        let Page { items, next_cursor } = store.query_metrics(&query).await.expect("query");
        out.extend(items);
        assert!(out.len() <= 20_000, "pagination never ends");
        match next_cursor {
            Some(c) => query.cursor = Some(sightline_store::Cursor::decode(&c).expect("cursor")),
            None => return out,
        }
    }
}

fn newest_first(mut events: Vec<Event>) -> Vec<Event> {
    events.sort_by(|a, b| (b.timestamp, &b.event_id).cmp(&(a.timestamp, &a.event_id)));
    events
}

fn expected_points(metrics: &[Metric], offsets: &[Offset]) -> Vec<MetricPoint> {
    let mut points: Vec<MetricPoint> = metrics
        .iter()
        .zip(offsets)
        .map(|(m, o)| MetricPoint {
            id: format!("{:05}-{:020}", o.partition, o.offset),
            metric: m.clone(),
        })
        .collect();
    points.sort_by(|a, b| (b.metric.timestamp, &b.id).cmp(&(a.metric.timestamp, &a.id)));
    points
}

// ---- tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn sink_stores_everything_once_and_resumes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("open store"),
    );
    stores_everything_once_and_resumes_after_restart(dir.path(), store).await;
}

/// The same against PostgreSQL (in a fresh schema, dropped afterwards).
#[tokio::test]
async fn sink_stores_everything_once_and_resumes_after_restart_postgres() {
    use futures::FutureExt as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, schema) = support::fresh_pg_store().await;
    let outcome = std::panic::AssertUnwindSafe(stores_everything_once_and_resumes_after_restart(
        dir.path(),
        Arc::new(store.clone()),
    ))
    .catch_unwind()
    .await;
    store.close().await;
    support::drop_schema(schema).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn stores_everything_once_and_resumes_after_restart(dir: &Path, store: Arc<dyn Store>) {
    let log = open_log(dir, 3, 2).await;

    let events: Vec<Event> = (0..1_500).map(event).collect();
    let metrics: Vec<Metric> = (0..700).map(metric).collect();
    let event_offsets = append(
        &log,
        topics::SYSTEM_EVENTS,
        events.iter().map(event_record).collect(),
    )
    .await;
    let metric_offsets = append(
        &log,
        topics::METRICS_RAW,
        metrics.iter().map(metric_record).collect(),
    )
    .await;

    let running = start_sink(log.clone(), store.clone(), 256);
    wait_committed(&log, topics::SYSTEM_EVENTS, &ends(&event_offsets, 3)).await;
    wait_committed(&log, topics::METRICS_RAW, &ends(&metric_offsets, 2)).await;
    running.stop().await;

    // Committed means stored: everything is there, exactly.
    assert_eq!(
        all_events(store.as_ref()).await,
        newest_first(events.clone())
    );
    assert_eq!(
        all_metrics(store.as_ref()).await,
        expected_points(&metrics, &metric_offsets)
    );

    // A restarted sink resumes after its commits: only the new records are processed.
    let more_events: Vec<Event> = (1_500..1_620).map(event).collect();
    // Re-sent ids (a producer retry) are new log records but not new events.
    let resent: Vec<Event> = events[..30].to_vec();
    let more_metrics: Vec<Metric> = (700..750).map(metric).collect();
    let mut all_event_offsets = event_offsets.clone();
    all_event_offsets.extend(
        append(
            &log,
            topics::SYSTEM_EVENTS,
            more_events.iter().map(event_record).collect(),
        )
        .await,
    );
    all_event_offsets.extend(
        append(
            &log,
            topics::SYSTEM_EVENTS,
            resent.iter().map(event_record).collect(),
        )
        .await,
    );
    let mut all_metric_offsets = metric_offsets.clone();
    all_metric_offsets.extend(
        append(
            &log,
            topics::METRICS_RAW,
            more_metrics.iter().map(metric_record).collect(),
        )
        .await,
    );

    let written_before = counter("sightline_store_written_total{table=processed_events}");
    let running = start_sink(log.clone(), store.clone(), 5_000);
    wait_committed(&log, topics::SYSTEM_EVENTS, &ends(&all_event_offsets, 3)).await;
    wait_committed(&log, topics::METRICS_RAW, &ends(&all_metric_offsets, 2)).await;
    running.stop().await;

    let mut expected_events = events.clone();
    expected_events.extend(more_events);
    let mut expected_metrics = metrics.clone();
    expected_metrics.extend(more_metrics);
    assert_eq!(
        all_events(store.as_ref()).await,
        newest_first(expected_events.clone())
    );
    assert_eq!(
        all_metrics(store.as_ref()).await,
        expected_points(&expected_metrics, &all_metric_offsets)
    );
    // Other tests in this binary write too, so the counter grew by at least the new rows.
    assert!(
        counter("sightline_store_written_total{table=processed_events}") >= written_before + 120
    );

    // Redelivery of everything (as after a crash before any commit) changes nothing.
    let analytics_query = AnalyticsQuery {
        since_ms: BASE_MS - 60_000,
        until_ms: BASE_MS + 3_600_000,
        group_by: sightline_store::GroupBy::Service,
        bucket_ms: 60_000,
    };
    let analytics_before: Analytics = store
        .event_analytics(&analytics_query)
        .await
        .expect("analytics");
    let mut replay = log
        .subscribe("replay-test", &[topics::SYSTEM_EVENTS, topics::METRICS_RAW])
        .await
        .expect("subscribe");
    let total = all_event_offsets.len() + all_metric_offsets.len();
    let mut delivered = Vec::new();
    while delivered.len() < total {
        delivered.extend(replay.next_batch(10_000).await.expect("read"));
    }
    for attempt in 0..2 {
        let outcome = sink::process_batch_outcome(store.as_ref(), None, &delivered)
            .await
            .expect("process");
        assert_eq!(outcome.rejected, 0);
        assert_eq!(
            outcome.events,
            WriteSummary {
                inserted: 0,
                duplicates: all_event_offsets.len() as u64
            },
            "attempt {attempt}"
        );
        assert_eq!(
            outcome.metrics,
            WriteSummary {
                inserted: 0,
                duplicates: all_metric_offsets.len() as u64
            }
        );
        let positions = sink::process_batch(store.as_ref(), None, &delivered)
            .await
            .expect("process");
        let mut got: Vec<(String, u32, u64)> = positions
            .iter()
            .map(|p| (p.topic.to_string(), p.partition, p.offset))
            .collect();
        got.sort();
        let mut want: Vec<(String, u32, u64)> = Vec::new();
        for (topic, offsets, partitions) in [
            (topics::METRICS_RAW, &all_metric_offsets, 2),
            (topics::SYSTEM_EVENTS, &all_event_offsets, 3),
        ] {
            for (p, end) in ends(offsets, partitions).into_iter().enumerate() {
                if let Some(end) = end {
                    want.push((topic.to_owned(), p as u32, end));
                }
            }
        }
        want.sort();
        assert_eq!(got, want);
    }
    assert_eq!(
        all_events(store.as_ref()).await,
        newest_first(expected_events)
    );
    assert_eq!(
        store
            .event_analytics(&analytics_query)
            .await
            .expect("analytics"),
        analytics_before
    );
    assert_eq!(analytics_before.total, 1_620);
}

#[tokio::test]
async fn undecodable_records_are_skipped_counted_and_committed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(dir.path(), 1, 1).await;
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("open store"),
    );
    let rejected_events_before = counter("sightline_store_rejected_total{topic=system-events}");
    let rejected_metrics_before = counter("sightline_store_rejected_total{topic=metrics.raw}");

    let good: Vec<Event> = (0..3).map(event).collect();
    let mut missing_fields = serde_json::to_value(event(99)).unwrap();
    missing_fields.as_object_mut().unwrap().remove("severity");
    let mut bad_severity = serde_json::to_value(event(98)).unwrap();
    bad_severity["severity"] = "apocalyptic".into();
    let event_records = vec![
        event_record(&good[0]),
        Record::new(Some("x"), b"not json at all".to_vec(), 0),
        event_record(&good[1]),
        Record::new(Some("x"), serde_json::to_vec(&missing_fields).unwrap(), 0),
        Record::new(Some("x"), vec![0xff, 0xfe, b'{', b'}'], 0),
        Record::new(Some("x"), serde_json::to_vec(&bad_severity).unwrap(), 0),
        event_record(&good[2]),
    ];
    let good_metric = metric(1);
    let metric_records = vec![
        Record::new(None, b"{\"value\": 1}".to_vec(), 0),
        metric_record(&good_metric),
        Record::new(None, Vec::new(), 0),
    ];
    let event_offsets = append(&log, topics::SYSTEM_EVENTS, event_records).await;
    let metric_offsets = append(&log, topics::METRICS_RAW, metric_records).await;

    let running = start_sink(log.clone(), store.clone(), 2);
    // Bad records are committed too: they can never succeed, so they must not block.
    wait_committed(&log, topics::SYSTEM_EVENTS, &ends(&event_offsets, 1)).await;
    wait_committed(&log, topics::METRICS_RAW, &ends(&metric_offsets, 1)).await;
    assert_eq!(ends(&event_offsets, 1), vec![Some(7)]);
    running.stop().await;

    assert_eq!(all_events(store.as_ref()).await, newest_first(good));
    assert_eq!(
        all_metrics(store.as_ref()).await,
        expected_points(&[good_metric], &metric_offsets[1..2])
    );
    assert_eq!(
        counter("sightline_store_rejected_total{topic=system-events}") - rejected_events_before,
        4
    );
    assert_eq!(
        counter("sightline_store_rejected_total{topic=metrics.raw}") - rejected_metrics_before,
        2
    );
}

/// A store whose first `fail_first` writes fail, as if the disk were full.
#[derive(Debug)]
struct FlakyStore {
    inner: SqliteStore,
    fail_first: usize,
    writes: AtomicUsize,
}

impl FlakyStore {
    fn fail(&self) -> sightline_store::Result<()> {
        if self.writes.fetch_add(1, Ordering::SeqCst) < self.fail_first {
            return Err(sightline_store::StoreError::Io {
                path: "store.db".into(),
                source: std::io::Error::other("disk full (simulated)"),
            });
        }
        Ok(())
    }
}

impl sightline_store::DelegateSecurity for FlakyStore {
    fn security(&self) -> &dyn sightline_store::SecurityStore {
        &self.inner
    }
}

impl sightline_store::DelegateIncidents for FlakyStore {
    fn incidents(&self) -> &dyn sightline_store::IncidentStore {
        &self.inner
    }
}

impl sightline_store::DelegateResponses for FlakyStore {
    fn responses(&self) -> &dyn sightline_store::ResponseStore {
        &self.inner
    }
}

impl sightline_store::DelegateAnalyses for FlakyStore {
    fn analyses(&self) -> &dyn sightline_store::AnalysisStore {
        &self.inner
    }
}

impl sightline_store::DelegateRules for FlakyStore {
    fn rules(&self) -> &dyn sightline_store::RuleStore {
        &self.inner
    }
}

#[async_trait::async_trait]
impl Store for FlakyStore {
    async fn write_events(&self, batch: &[LoggedEvent]) -> sightline_store::Result<WriteSummary> {
        self.fail()?;
        self.inner.write_events(batch).await
    }
    async fn write_metrics(&self, batch: &[LoggedMetric]) -> sightline_store::Result<WriteSummary> {
        self.fail()?;
        self.inner.write_metrics(batch).await
    }
    async fn query_events(&self, query: &EventQuery) -> sightline_store::Result<Page<Event>> {
        self.inner.query_events(query).await
    }
    async fn get_event(&self, event_id: &str) -> sightline_store::Result<Option<Event>> {
        self.inner.get_event(event_id).await
    }
    async fn event_analytics(&self, query: &AnalyticsQuery) -> sightline_store::Result<Analytics> {
        self.inner.event_analytics(query).await
    }
    async fn query_metrics(
        &self,
        query: &MetricQuery,
    ) -> sightline_store::Result<Page<MetricPoint>> {
        self.inner.query_metrics(query).await
    }
    async fn write_rollups(&self, rows: &[RollupRow]) -> sightline_store::Result<u64> {
        self.fail()?;
        self.inner.write_rollups(rows).await
    }
    async fn write_event_counts(&self, rows: &[EventCountRow]) -> sightline_store::Result<u64> {
        self.fail()?;
        self.inner.write_event_counts(rows).await
    }
    async fn query_rollups(&self, query: &RollupQuery) -> sightline_store::Result<Vec<RollupRow>> {
        self.inner.query_rollups(query).await
    }
    async fn query_event_counts(
        &self,
        query: &EventCountQuery,
    ) -> sightline_store::Result<Vec<EventCountRow>> {
        self.inner.query_event_counts(query).await
    }
    async fn insert_statements(&self, s: &[StreamStatement]) -> sightline_store::Result<()> {
        self.inner.insert_statements(s).await
    }
    async fn delete_statement(
        &self,
        name: &str,
    ) -> sightline_store::Result<Option<StreamStatement>> {
        self.inner.delete_statement(name).await
    }
    async fn list_statements(&self) -> sightline_store::Result<Vec<StreamStatement>> {
        self.inner.list_statements().await
    }
    async fn write_query_rows(&self, id: &str, rows: &[QueryRow]) -> sightline_store::Result<u64> {
        self.fail()?;
        self.inner.write_query_rows(id, rows).await
    }
    async fn read_query_rows(
        &self,
        request: &QueryRowsRequest,
    ) -> sightline_store::Result<Vec<QueryRow>> {
        self.inner.read_query_rows(request).await
    }
    async fn ping(&self) -> sightline_store::Result<()> {
        self.inner.ping().await
    }
}

#[tokio::test]
async fn failed_writes_are_retried_and_not_committed_until_they_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(dir.path(), 2, 1).await;
    let store = Arc::new(FlakyStore {
        inner: SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("open store"),
        fail_first: 5,
        writes: AtomicUsize::new(0),
    });
    let events: Vec<Event> = (0..40).map(event).collect();
    let metrics: Vec<Metric> = (0..10).map(metric).collect();
    let event_offsets = append(
        &log,
        topics::SYSTEM_EVENTS,
        events.iter().map(event_record).collect(),
    )
    .await;
    let metric_offsets = append(
        &log,
        topics::METRICS_RAW,
        metrics.iter().map(metric_record).collect(),
    )
    .await;

    let running = start_sink(log.clone(), store.clone(), 10_000);
    tokio::time::timeout(WAIT, async {
        while store.writes.load(Ordering::SeqCst) < 3 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the sink keeps retrying");
    // While nothing can be written, nothing is committed.
    assert_eq!(
        log.committed(sink::GROUP, topics::SYSTEM_EVENTS)
            .await
            .expect("committed"),
        vec![None, None]
    );
    assert_eq!(
        log.committed(sink::GROUP, topics::METRICS_RAW)
            .await
            .expect("committed"),
        vec![None]
    );

    wait_committed(&log, topics::SYSTEM_EVENTS, &ends(&event_offsets, 2)).await;
    wait_committed(&log, topics::METRICS_RAW, &ends(&metric_offsets, 1)).await;
    running.stop().await;

    // 5 failures, then at least one successful write per table.
    assert!(store.writes.load(Ordering::SeqCst) >= 7);
    assert_eq!(all_events(store.as_ref()).await, newest_first(events));
    assert_eq!(
        all_metrics(store.as_ref()).await,
        expected_points(&metrics, &metric_offsets)
    );
}

#[tokio::test]
async fn an_idle_sink_stops_on_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(dir.path(), 1, 1).await;
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("open store"),
    );
    let running = start_sink(log.clone(), store, 100);
    tokio::time::sleep(Duration::from_millis(50)).await;
    running.stop().await;
    assert_eq!(
        log.committed(sink::GROUP, topics::SYSTEM_EVENTS)
            .await
            .expect("committed"),
        vec![None]
    );
}

/// End-to-end sink throughput: 100,000 events already in a 4-partition log, drained by a
/// sink with the default config into a fresh store. Run with
/// `cargo test -p sightline-store --release --test sink -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark"]
async fn sink_throughput() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open_log(dir.path(), 4, 1).await;
    let store = Arc::new(
        SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("open store"),
    );
    let mut offsets = Vec::new();
    for chunk in 0..20 {
        let records: Vec<Record> = (chunk * 5_000..(chunk + 1) * 5_000)
            .map(|i| {
                let mut e = event(i);
                e.event_id = format!("0190a1b2-c3d4-7e5f-8a9b-{i:012x}");
                event_record(&e)
            })
            .collect();
        offsets.extend(
            log.append(topics::SYSTEM_EVENTS, records)
                .await
                .expect("append"),
        );
    }
    let started = std::time::Instant::now();
    let running = start_sink(log.clone(), store.clone(), SinkConfig::default().batch_size);
    wait_committed(&log, topics::SYSTEM_EVENTS, &ends(&offsets, 4)).await;
    let elapsed = started.elapsed();
    running.stop().await;
    eprintln!(
        "sink: 100000 events log -> store in {elapsed:?} = {:.0} events/s",
        100_000.0 / elapsed.as_secs_f64()
    );
}
