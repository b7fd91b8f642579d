//! The detection runner end to end on a real embedded log, SQLite store and checkpoint
//! files: a latency spike and a new error pattern become stored and published anomalies;
//! a runner killed before its checkpoint replays to the same anomaly ids (no duplicate in
//! the store), and a restart after a graceful stop produces nothing new.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_detect::DetectConfig;
use sightline_detect::new_pattern::NewPatternConfig;
use sightline_detect::runner::{DetectionRunnerConfig, GROUP, run_detection};
use sightline_log::{EmbeddedLog, EventLog, LogConfig, Record, TopicConfig};
use sightline_model::{Anomaly, Event, Metric, Signal, topics};
use sightline_store::{AnomalyQuery, SqliteStore, Store};
use sightline_stream::FileCheckpointStore;

const BASE_MS: i64 = 1_700_000_000_000;
const POINTS: usize = 201;

struct Parts {
    log: Arc<EmbeddedLog>,
    store: Arc<SqliteStore>,
    checkpoints: Arc<FileCheckpointStore>,
}

async fn open(dir: &Path) -> Parts {
    let log = Arc::new(EmbeddedLog::open(dir.join("log"), LogConfig::default()).expect("log"));
    for topic in [
        topics::METRICS_RAW,
        topics::SYSTEM_EVENTS,
        topics::ANOMALIES,
    ] {
        log.create_topic(topic, TopicConfig::with_partitions(1))
            .await
            .expect("topic");
    }
    let store = Arc::new(
        SqliteStore::open(&dir.join("store.db"))
            .await
            .expect("store"),
    );
    let checkpoints =
        Arc::new(FileCheckpointStore::open(dir.join("checkpoints")).expect("checkpoints"));
    Parts {
        log,
        store,
        checkpoints,
    }
}

fn config(checkpoint_interval: Duration) -> DetectionRunnerConfig {
    let detect: DetectConfig = serde_json::from_value(serde_json::json!({
        "default": [{"kind": "robust_zscore", "window": 120}]
    }))
    .expect("config");
    DetectionRunnerConfig {
        detect,
        // The service's first error ever is the new pattern under test.
        new_pattern: NewPatternConfig {
            learning_period_ms: 0,
            ..NewPatternConfig::default()
        },
        checkpoint_interval,
        tick_interval: Duration::from_millis(50),
        batch_size: 64,
        retry_backoff: Duration::from_millis(20),
        ..DetectionRunnerConfig::default()
    }
}

fn metric(i: usize, value: f64) -> Record {
    let t = BASE_MS + i as i64 * 60_000;
    let m = Metric {
        service_name: "checkout".into(),
        metric_type: "latency_ms".into(),
        value,
        tags: BTreeMap::new(),
        timestamp: t,
        received_at: t,
        correlation_id: String::new(),
    };
    Record::new(Some("checkout"), serde_json::to_vec(&m).unwrap(), t)
}

fn error_event() -> (Event, Record) {
    let t = BASE_MS + 200 * 60_000;
    let e: Event = serde_json::from_value(serde_json::json!({
        "event_id": "evt-new-1",
        "service_name": "checkout",
        "event_type": "ERROR",
        "timestamp": t,
        "environment": "PRODUCTION",
        "details": "connection pool exhausted",
        "severity": "high",
        "metadata": {},
        "source": "test",
        "source_type": "http",
        "host": null,
        "tags": {},
        "fingerprint": "fp-pool-exhausted",
        "correlation_id": "",
        "received_at": t,
    }))
    .expect("event");
    let record = Record::new(Some("checkout"), serde_json::to_vec(&e).unwrap(), t);
    (e, record)
}

async fn append_input(log: &EmbeddedLog) {
    let mut records: Vec<Record> = (0..POINTS - 1)
        .map(|i| metric(i, 120.0 + [-9.0, -3.0, 0.0, 4.0, 8.0][i % 5]))
        .collect();
    records.push(metric(POINTS - 1, 812.0));
    log.append(topics::METRICS_RAW, records)
        .await
        .expect("append");
    log.append(topics::SYSTEM_EVENTS, vec![error_event().1])
        .await
        .expect("append");
}

type Handle = tokio::task::JoinHandle<Result<(), sightline_detect::DetectError>>;

fn spawn(
    parts: &Parts,
    config: DetectionRunnerConfig,
) -> (Handle, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_detection(
        parts.log.clone(),
        parts.store.clone(),
        parts.checkpoints.clone(),
        config,
        async move {
            let _ = rx.await;
        },
    ));
    (task, tx)
}

async fn stored(store: &dyn Store) -> Vec<Anomaly> {
    let mut v: Vec<Anomaly> = store
        .query_anomalies(&AnomalyQuery {
            limit: 1000,
            ..AnomalyQuery::default()
        })
        .await
        .expect("query")
        .items
        .into_iter()
        .map(|s| s.anomaly)
        .collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    v
}

/// Every anomaly on the `anomalies` topic (read by a group of the test's own).
async fn published(log: &EmbeddedLog, group: &str) -> Vec<Anomaly> {
    let mut sub = log
        .subscribe(group, &[topics::ANOMALIES])
        .await
        .expect("sub");
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(Duration::from_millis(300), sub.next_batch(100)).await {
            Ok(batch) => {
                for d in batch.expect("batch") {
                    assert_eq!(d.record.key.as_deref(), Some(&b"checkout"[..]));
                    let a: Anomaly = serde_json::from_slice(&d.record.value).expect("anomaly");
                    assert_eq!(d.record.timestamp, a.timestamp);
                    out.push(a);
                }
            }
            Err(_) => return out,
        }
    }
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spike_and_new_pattern_are_stored_published_and_never_duplicated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = open(dir.path()).await;
    append_input(&parts.log).await;

    // Run 1: no checkpoint for an hour, killed once both anomalies are stored.
    let (handle, _stop) = spawn(&parts, config(Duration::from_secs(3600)));
    let store = parts.store.clone();
    wait_for("two anomalies in the store", || {
        let store = store.clone();
        async move { stored(store.as_ref()).await.len() >= 2 }
    })
    .await;
    // The topic is written right after the store: wait for it too, then kill.
    let log = parts.log.clone();
    wait_for("two anomalies on the topic", || {
        let log = log.clone();
        async move {
            log.stats()
                .await
                .expect("stats")
                .iter()
                .find(|t| t.name == topics::ANOMALIES)
                .map(|t| t.partitions.iter().map(|p| p.end_offset).sum::<u64>())
                .unwrap_or(0)
                >= 2
        }
    })
    .await;
    handle.abort();
    let _ = handle.await;
    assert_eq!(
        parts
            .log
            .committed(GROUP, topics::METRICS_RAW)
            .await
            .expect("committed"),
        vec![None],
        "killed before any checkpoint: nothing committed"
    );

    let first = stored(parts.store.as_ref()).await;
    assert_eq!(first.len(), 2, "{first:#?}");
    let spike = first
        .iter()
        .find(
            |a| matches!(&a.signal, Signal::Metric { metric_type } if metric_type == "latency_ms"),
        )
        .expect("spike anomaly");
    assert_eq!(spike.detector, "robust_zscore");
    assert_eq!(spike.service_name, "checkout");
    assert_eq!(spike.timestamp, BASE_MS + 200 * 60_000);
    assert_eq!(spike.value, 812.0);
    let pattern = first
        .iter()
        .find(|a| a.detector == "new_pattern")
        .expect("new-pattern anomaly");
    assert_eq!(pattern.event_id.as_deref(), Some("evt-new-1"));
    assert_eq!(
        pattern.signal,
        Signal::Pattern {
            fingerprint: "fp-pool-exhausted".into()
        }
    );
    let on_topic = published(&parts.log, "test-1").await;
    let mut ids: Vec<&str> = on_topic.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, first.iter().map(|a| a.id.as_str()).collect::<Vec<_>>());

    // Run 2: replays everything from scratch (nothing was checkpointed) and stops
    // gracefully: the same ids, so the store still holds exactly the same two anomalies.
    let (handle, stop) = spawn(&parts, config(Duration::from_millis(50)));
    let log = parts.log.clone();
    wait_for("everything committed", || {
        let log = log.clone();
        async move {
            log.committed(GROUP, topics::METRICS_RAW).await.expect("c") == vec![Some(POINTS as u64)]
                && log
                    .committed(GROUP, topics::SYSTEM_EVENTS)
                    .await
                    .expect("c")
                    == vec![Some(1)]
        }
    })
    .await;
    stop.send(()).expect("stop");
    handle.await.expect("join").expect("runner");
    let second = stored(parts.store.as_ref()).await;
    let ids_of = |v: &[Anomaly]| v.iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids_of(&second),
        ids_of(&first),
        "replay reproduces the same ids"
    );
    // The topic is at least once across a kill: the replay re-published the same ids.
    let on_topic = published(&parts.log, "test-2").await;
    assert_eq!(on_topic.len(), 4);
    let mut distinct = ids_of(&on_topic);
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct, ids_of(&first));

    // Run 3: after a graceful stop, a restart over the same data produces nothing new.
    let (handle, stop) = spawn(&parts, config(Duration::from_millis(50)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send(()).expect("stop");
    handle.await.expect("join").expect("runner");
    assert_eq!(ids_of(&stored(parts.store.as_ref()).await), ids_of(&first));
    assert_eq!(published(&parts.log, "test-3").await.len(), 4);
}
