//! Crash equivalence of the rollup runner: a deterministic stream of metrics and events
//! goes through `run_rollups` on a real embedded log, SQLite store and checkpoint files,
//! and the runner is killed (its task aborted: no final checkpoint, no commit) several
//! times at random points while data keeps arriving. The rollups and event counters in
//! the store must equal those of an uninterrupted run, row for row.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_log::{EmbeddedLog, EventLog, LogConfig, Position, Record, TopicConfig};
use sightline_model::{Event, Metric, topics};
use sightline_store::{EventCountQuery, RollupQuery, SqliteStore, Store};
use sightline_stream::FileCheckpointStore;
use sightline_stream::rollup::RollupConfig;
use sightline_stream::runner::{GROUP, RunnerConfig, TOPICS, run_rollups};
use sightline_stream::watermark::WatermarkConfig;

const BASE_MS: i64 = 1_700_000_000_000;
const METRICS: usize = 30_000;
const EVENTS: usize = 3_000;
const CHUNKS: usize = 8;
const CRASHES: usize = 6;

/// xorshift64*: deterministic, dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn metric_records() -> Vec<Record> {
    let mut rng = Rng(42);
    (0..METRICS)
        .map(|i| {
            // 50 ms apart with up to 3 s of jitter: out of order, never beyond the 5 s bound.
            let t = BASE_MS + i as i64 * 50 + rng.below(3_000) as i64;
            let m = Metric {
                service_name: format!("svc-{}", rng.below(7)),
                metric_type: ["latency_ms", "cpu", "errors"][rng.below(3) as usize].into(),
                value: (rng.below(100_000) as f64) / 100.0,
                tags: BTreeMap::new(),
                timestamp: t,
                received_at: t,
                correlation_id: String::new(),
            };
            Record::new(Some(&m.service_name), serde_json::to_vec(&m).unwrap(), t)
        })
        .collect()
}

fn event_records() -> Vec<Record> {
    let mut rng = Rng(7);
    let severities = ["critical", "high", "medium", "low", "info"];
    (0..EVENTS)
        .map(|i| {
            let t = BASE_MS + i as i64 * 500 + rng.below(2_000) as i64;
            let e: Event = serde_json::from_value(serde_json::json!({
                "event_id": format!("evt-{i}"),
                "service_name": format!("svc-{}", rng.below(4)),
                "event_type": "ERROR",
                "timestamp": t,
                "environment": "PRODUCTION",
                "details": "boom",
                "severity": severities[rng.below(5) as usize],
                "metadata": {},
                "source": "test",
                "source_type": "http",
                "host": null,
                "tags": {},
                "fingerprint": format!("fp-{i}"),
                "correlation_id": "",
                "received_at": t,
            }))
            .expect("event");
            Record::new(Some(&e.service_name), serde_json::to_vec(&e).unwrap(), t)
        })
        .collect()
}

fn config() -> RunnerConfig {
    RunnerConfig {
        rollup: RollupConfig {
            // No idle timeout: processing time must not influence the results.
            watermark: WatermarkConfig {
                max_out_of_orderness_ms: 5_000,
                idle_timeout_ms: None,
            },
            grace_ms: 1_000,
        },
        checkpoint_interval: Duration::from_millis(40),
        tick_interval: Duration::from_millis(100),
        batch_size: 700,
        retry_backoff: Duration::from_millis(20),
    }
}

struct Parts {
    log: Arc<EmbeddedLog>,
    store: Arc<SqliteStore>,
    checkpoints: Arc<FileCheckpointStore>,
}

async fn open(dir: &Path) -> Parts {
    let log = Arc::new(EmbeddedLog::open(dir.join("log"), LogConfig::default()).expect("log"));
    // One partition per input: the watermark is then independent of how reads interleave.
    for topic in [
        topics::METRICS_RAW,
        topics::SYSTEM_EVENTS,
        topics::METRICS_AGGREGATED,
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

type Runner = tokio::task::JoinHandle<Result<(), sightline_stream::StreamError>>;

fn spawn(parts: &Parts) -> (Runner, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_rollups(
        parts.log.clone(),
        parts.store.clone(),
        None,
        parts.checkpoints.clone(),
        config(),
        async move {
            let _ = rx.await;
        },
    ));
    (task, tx)
}

async fn append_chunk(log: &EmbeddedLog, topic: &str, records: &[Record]) {
    for part in records.chunks(2_000) {
        log.append(topic, part.to_vec()).await.expect("append");
    }
}

/// Runs until the group has committed everything, then stops gracefully.
async fn run_to_end(parts: &Parts) {
    let (handle, stop) = spawn(parts);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let m = parts
            .log
            .committed(GROUP, topics::METRICS_RAW)
            .await
            .unwrap();
        let e = parts
            .log
            .committed(GROUP, topics::SYSTEM_EVENTS)
            .await
            .unwrap();
        if m == vec![Some(METRICS as u64)] && e == vec![Some(EVENTS as u64)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runner did not finish: {m:?} {e:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(()).expect("stop");
    handle.await.expect("join").expect("runner");
}

async fn results(
    store: &dyn Store,
) -> (
    Vec<sightline_store::RollupRow>,
    Vec<sightline_store::EventCountRow>,
) {
    let rollups = store
        .query_rollups(&RollupQuery {
            limit: 10_000,
            ..RollupQuery::default()
        })
        .await
        .expect("rollups");
    let counts = store
        .query_event_counts(&EventCountQuery {
            limit: 10_000,
            ..EventCountQuery::default()
        })
        .await
        .expect("counts");
    (rollups, counts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runner_produces_exactly_the_uninterrupted_results() {
    let metrics = metric_records();
    let events = event_records();

    // Reference: everything appended, one uninterrupted run.
    let reference_dir = tempfile::tempdir().expect("tempdir");
    let reference = open(reference_dir.path()).await;
    append_chunk(&reference.log, topics::METRICS_RAW, &metrics).await;
    append_chunk(&reference.log, topics::SYSTEM_EVENTS, &events).await;
    run_to_end(&reference).await;
    let expected = results(reference.store.as_ref()).await;
    assert!(expected.0.len() > 100, "{} rollups", expected.0.len());
    assert!(!expected.1.is_empty());
    // Every point is in exactly one closed or still-open 1m window: closed ones sum up.
    let one_minute: u64 = expected
        .0
        .iter()
        .filter(|r| r.window == "1m")
        .map(|r| r.count)
        .sum();
    assert!(one_minute > (METRICS as u64) * 9 / 10 && one_minute <= METRICS as u64);

    // Crashed: data arrives in chunks; the runner is killed at random points.
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = open(dir.path()).await;
    let mut rng = Rng(2026);
    let (m_chunk, e_chunk) = (METRICS.div_ceil(CHUNKS), EVENTS.div_ceil(CHUNKS));
    let mut kills = 0;
    let mut mid_stream = 0;
    for c in 0..CHUNKS {
        append_chunk(
            &parts.log,
            topics::METRICS_RAW,
            &metrics[(c * m_chunk).min(METRICS)..((c + 1) * m_chunk).min(METRICS)],
        )
        .await;
        append_chunk(
            &parts.log,
            topics::SYSTEM_EVENTS,
            &events[(c * e_chunk).min(EVENTS)..((c + 1) * e_chunk).min(EVENTS)],
        )
        .await;
        if kills < CRASHES {
            let (handle, _stop) = spawn(&parts);
            tokio::time::sleep(Duration::from_millis(1 + rng.below(60))).await;
            handle.abort();
            assert!(
                handle.await.is_err_and(|e| e.is_cancelled()),
                "killed mid-run"
            );
            let committed = parts
                .log
                .committed(GROUP, topics::METRICS_RAW)
                .await
                .unwrap();
            let appended = ((c + 1) * m_chunk).min(METRICS) as u64;
            if committed[0].is_none_or(|o| o < appended) {
                mid_stream += 1;
            }
            kills += 1;
        }
    }
    assert_eq!(kills, CRASHES);
    // Most kills must land before the runner caught up, or the test proves little.
    assert!(
        mid_stream >= CRASHES / 2,
        "only {mid_stream} kills landed mid-stream"
    );
    // The worst crash point: the checkpoint was saved but no offset was ever committed.
    // The log redelivers everything; the runner must skip what its state already holds.
    {
        let mut sub = parts
            .log
            .subscribe(GROUP, &TOPICS)
            .await
            .expect("subscribe");
        let rewind: Vec<Position> = TOPICS
            .iter()
            .map(|t| Position {
                topic: Arc::from(*t),
                partition: 0,
                offset: 0,
            })
            .collect();
        sub.commit(&rewind).await.expect("rewind");
    }
    assert_eq!(
        parts
            .log
            .committed(GROUP, topics::METRICS_RAW)
            .await
            .unwrap(),
        vec![Some(0)]
    );
    run_to_end(&parts).await;
    let got = results(parts.store.as_ref()).await;

    assert_eq!(got.0.len(), expected.0.len(), "rollup rows");
    assert_eq!(got.0, expected.0);
    assert_eq!(got.1, expected.1);
    // Ids are unique (no duplicated output row).
    let mut ids: Vec<&str> = got.0.iter().map(|r| r.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), got.0.len());
}
