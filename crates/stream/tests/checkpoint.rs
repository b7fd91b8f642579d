//! Crash safety: "run N records, checkpoint, drop, restore, continue" gives exactly the
//! output of an uninterrupted run — for every window kind, both emit modes, every
//! aggregate, with out-of-order input, idle-partition ticks and several restarts — and the
//! file checkpoint store keeps the last complete checkpoint.

// Test helpers unwrap: a panic there is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;
use sightline_model::{Event, Metric, Severity, SourceType};
use sightline_stream::rollup::{RollupConfig, RollupJob, RollupOutput};
use sightline_stream::{
    AggregateKind, AggregateSpec, Checkpoint, CheckpointStore, EmitMode, FileCheckpointStore,
    InputRecord, Key, Output, StreamError, Value, WatermarkConfig, WindowAggregate,
    WindowAggregateConfig, WindowSpec,
};

#[derive(Clone, Debug)]
enum Step {
    Record(InputRecord),
    Tick(i64),
}

fn every_aggregate() -> Vec<AggregateSpec> {
    vec![
        AggregateSpec::count_star("n"),
        AggregateSpec::new(AggregateKind::CountDistinct, 1, "users"),
        AggregateSpec::new(AggregateKind::Sum, 0, "sum"),
        AggregateSpec::new(AggregateKind::Min, 0, "min"),
        AggregateSpec::new(AggregateKind::Max, 0, "max"),
        AggregateSpec::new(AggregateKind::Avg, 0, "avg"),
        AggregateSpec::new(AggregateKind::Stddev, 0, "stddev"),
        AggregateSpec::new(AggregateKind::P50, 0, "p50"),
        AggregateSpec::new(AggregateKind::P99, 0, "p99"),
        AggregateSpec::new(AggregateKind::LatestByOffset, 1, "latest_user"),
        AggregateSpec::new(AggregateKind::EarliestByOffset, 1, "first_user"),
        AggregateSpec::new(AggregateKind::TopK { k: 3 }, 0, "top"),
        AggregateSpec::new(AggregateKind::TopKFrequent { k: 2 }, 1, "frequent_users"),
    ]
}

fn config(window: WindowSpec, emit: EmitMode, lag: i64, grace: i64) -> WindowAggregateConfig {
    let mut c = WindowAggregateConfig::new("q1", window, every_aggregate(), emit);
    c.key_columns = vec!["session_id".into()];
    c.watermark = WatermarkConfig {
        max_out_of_orderness_ms: lag,
        idle_timeout_ms: Some(50),
    };
    c.grace_ms = grace;
    if window == WindowSpec::Unwindowed {
        c.retention_ms = Some(500);
    }
    c
}

fn run(config: &WindowAggregateConfig, steps: &[Step], restarts: &[usize]) -> Output {
    let mut op = WindowAggregate::new(config.clone()).unwrap();
    let mut out = Output::default();
    for (i, step) in steps.iter().enumerate() {
        if restarts.contains(&i) {
            let bytes = {
                let mut c = Checkpoint::default();
                c.insert(op.snapshot());
                c.encode().unwrap()
            };
            drop(op);
            let mut restored = Checkpoint::decode(&bytes).unwrap();
            let snapshot = restored.take(&config.name).unwrap();
            op = WindowAggregate::restore(config.clone(), snapshot).unwrap();
        }
        match step {
            Step::Record(r) => op.process(r.clone(), &mut out),
            Step::Tick(now) => op.tick(*now, &mut out),
        }
    }
    op.flush(&mut out);
    out
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (
            0u32..3,
            0i64..2_000,
            0i64..5,
            -50.0f64..500.0,
            0i64..30,
            0u8..10,
        ),
        1..300,
    )
    .prop_map(|raw| {
        let mut next = [0u64; 3];
        let mut now = 0;
        raw.into_iter()
            .map(|(partition, t, key, value, user, dice)| {
                if dice == 0 {
                    now += 40;
                    return Step::Tick(now);
                }
                let offset = next[partition as usize];
                next[partition as usize] += 1;
                Step::Record(InputRecord {
                    partition,
                    offset,
                    event_time: t,
                    key: Key::from([Value::Int(key)]),
                    fields: vec![
                        if dice == 1 {
                            Value::Null
                        } else {
                            Value::Float(value)
                        },
                        Value::string(format!("user-{user}")),
                    ],
                })
            })
            .collect()
    })
}

fn window_spec() -> impl Strategy<Value = WindowSpec> {
    prop_oneof![
        (1i64..300).prop_map(|size_ms| WindowSpec::Tumbling { size_ms }),
        (1i64..100, 1i64..4).prop_map(|(advance_ms, f)| WindowSpec::Hopping {
            size_ms: advance_ms * f,
            advance_ms
        }),
        (1i64..100).prop_map(|gap_ms| WindowSpec::Session { gap_ms }),
        Just(WindowSpec::Unwindowed),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    #[test]
    fn restore_and_continue_equals_an_uninterrupted_run(
        steps in steps(),
        window in window_spec(),
        final_mode in any::<bool>(),
        lag in 0i64..200,
        grace in 0i64..50,
        restarts in proptest::collection::vec(0usize..300, 1..6),
    ) {
        let emit = if final_mode && window != WindowSpec::Unwindowed {
            EmitMode::Final
        } else {
            EmitMode::Changes
        };
        let config = config(window, emit, lag, grace);
        let uninterrupted = run(&config, &steps, &[]);
        let resumed = run(&config, &steps, &restarts);
        prop_assert_eq!(uninterrupted, resumed);
    }
}

#[test]
fn big_sketches_survive_a_checkpoint() {
    // Enough distinct users and value range for HyperLogLog registers and a wide DDSketch.
    let steps: Vec<Step> = (0..30_000u64)
        .map(|i| {
            Step::Record(InputRecord {
                partition: (i % 4) as u32,
                offset: i / 4,
                event_time: (i as i64) * 3 - (i as i64 % 7) * 11,
                key: Key::from([Value::Int((i % 3) as i64)]),
                fields: vec![
                    Value::Float(((i * 2_654_435_761) % 1_000_000) as f64 / 7.0),
                    Value::string(format!("user-{}", i % 5_000)),
                ],
            })
        })
        .collect();
    let config = config(
        WindowSpec::Hopping {
            size_ms: 20_000,
            advance_ms: 5_000,
        },
        EmitMode::Final,
        100,
        10,
    );
    let uninterrupted = run(&config, &steps, &[]);
    let resumed = run(&config, &steps, &[7_000, 15_000, 15_001, 29_999]);
    assert!(uninterrupted.rows.len() > 10);
    let Value::Int(users) = uninterrupted.rows[5].values[1] else {
        panic!("count distinct is an integer")
    };
    assert!(users > 256, "HyperLogLog went dense: {users}");
    assert_eq!(uninterrupted, resumed);
}

fn metric(i: u64) -> Metric {
    Metric {
        service_name: format!("svc-{}", i % 4),
        metric_type: if i.is_multiple_of(2) {
            "cpu_usage"
        } else {
            "latency_ms"
        }
        .into(),
        value: ((i * 37) % 1_000) as f64 / 10.0,
        tags: BTreeMap::new(),
        // Mostly a little out of order; every 50th point 90 s late (misses its 1m window).
        timestamp: 1_700_000_000_000 + (i as i64) * 900
            - if i.is_multiple_of(50) {
                90_000
            } else {
                (i as i64 % 5) * 2_000
            },
        received_at: 0,
        correlation_id: String::new(),
    }
}

fn event(i: u64) -> Event {
    Event {
        event_id: format!("e{i}"),
        service_name: format!("svc-{}", i % 3),
        event_type: "ERROR".into(),
        timestamp: 1_700_000_000_000 + (i as i64) * 1_500,
        environment: "PRODUCTION".into(),
        details: String::new(),
        severity: Severity::ALL[(i % 5) as usize],
        metadata: serde_json::Map::new(),
        source: "test".into(),
        source_type: SourceType::Http,
        host: None,
        tags: BTreeMap::new(),
        fingerprint: String::new(),
        correlation_id: String::new(),
        received_at: 0,
    }
}

fn feed(job: &mut RollupJob, range: std::ops::Range<u64>, out: &mut RollupOutput) {
    for i in range {
        job.process_metric((i % 4) as u32, i / 4, &metric(i), out);
        if i.is_multiple_of(2) {
            job.process_event((i % 2) as u32, i / 2, &event(i / 2), out);
        }
    }
}

#[tokio::test]
async fn rollup_job_resumes_from_a_file_checkpoint_with_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointStore::open(dir.path().join("checkpoints")).unwrap();
    let config = RollupConfig::default();

    let mut whole = RollupJob::new(config).unwrap();
    let mut expected = RollupOutput::default();
    feed(&mut whole, 0..5_000, &mut expected);
    whole.flush(&mut expected);

    let mut first = RollupJob::new(config).unwrap();
    let mut got = RollupOutput::default();
    feed(&mut first, 0..2_345, &mut got);
    store
        .save_checkpoint("rollups", &first.checkpoint())
        .await
        .unwrap();
    drop(first);
    let checkpoint = store.load_checkpoint("rollups").await.unwrap().unwrap();
    assert_eq!(
        checkpoint.positions.get("metrics.raw", 0),
        Some(2_344 / 4 + 1)
    );
    let mut second = RollupJob::restore(config, checkpoint).unwrap();
    feed(&mut second, 2_345..5_000, &mut got);
    second.flush(&mut got);

    assert!(expected.rollups.len() > 100);
    assert!(!expected.event_counts.is_empty());
    assert!(
        !expected.late_metrics.is_empty(),
        "the generator produces late points"
    );
    assert!(
        expected.late_metrics.iter().any(|l| l.windows == ["1m"]),
        "a point late for 1m still counts in 5m and 15m"
    );
    assert_eq!(expected, got);
}

#[tokio::test]
async fn file_store_replaces_atomically_and_refuses_damaged_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCheckpointStore::open(dir.path()).unwrap();
    assert_eq!(store.load("job").await.unwrap(), None);
    let mut a = Checkpoint::default();
    a.positions.advance("t", 0, 1);
    store.save_checkpoint("job", &a).await.unwrap();
    let mut b = a.clone();
    b.positions.advance("t", 0, 41);
    store.save_checkpoint("job", &b).await.unwrap();
    assert_eq!(store.load_checkpoint("job").await.unwrap(), Some(b));

    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["job.ckpt".to_string()],
        "no temp file left behind"
    );

    let path = dir.path().join("job.ckpt");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&path, bytes).unwrap();
    assert!(matches!(
        store.load_checkpoint("job").await,
        Err(StreamError::CorruptCheckpoint(_))
    ));
}

#[test]
fn restoring_into_a_changed_query_is_refused() {
    let c = config(WindowSpec::Tumbling { size_ms: 10 }, EmitMode::Final, 0, 0);
    let snapshot = WindowAggregate::new(c.clone()).unwrap().snapshot();
    let mut changed = c;
    changed.aggregates.pop();
    assert!(matches!(
        WindowAggregate::restore(changed, snapshot),
        Err(StreamError::CheckpointMismatch { .. })
    ));
}
