//! Throughput of the window engine on pre-decoded records (no log, no decoding):
//! a tumbling `COUNT(*)`, `AVG`, `P99` by key over 10,000 keys, and the built-in rollup job
//! (three window sizes, seven aggregates each) over 1,000 (service, metric) series.
//!
//! `cargo bench -p sightline-stream -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sightline_model::Metric;
use sightline_stream::rollup::{RollupConfig, RollupJob, RollupOutput};
use sightline_stream::{
    AggregateKind, AggregateSpec, EmitMode, InputRecord, Key, Output, Value, WindowAggregate,
    WindowAggregateConfig, WindowSpec,
};

const RECORDS: usize = 500_000;
const KEYS: usize = 10_000;

/// Deterministic pseudo-random numbers (xorshift), so every run sees the same input.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn records() -> Vec<InputRecord> {
    let keys: Vec<Key> = (0..KEYS)
        .map(|k| Key::from([Value::string(format!("key-{k}"))]))
        .collect();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    (0..RECORDS)
        .map(|i| {
            let r = xorshift(&mut rng);
            InputRecord {
                partition: (i % 4) as u32,
                offset: (i / 4) as u64,
                // Four records per millisecond, up to 2 s out of order.
                event_time: (i / 4) as i64 - (r % 2_000) as i64,
                key: keys[(r >> 20) as usize % KEYS].clone(),
                fields: vec![Value::Float(((r >> 40) % 5_000) as f64 / 10.0)],
            }
        })
        .collect()
}

fn tumbling_count_avg_p99(c: &mut Criterion) {
    let input = records();
    let config = WindowAggregateConfig::new(
        "bench",
        WindowSpec::Tumbling { size_ms: 60_000 },
        vec![
            AggregateSpec::count_star("n"),
            AggregateSpec::new(AggregateKind::Avg, 0, "avg"),
            AggregateSpec::new(AggregateKind::P99, 0, "p99"),
        ],
        EmitMode::Final,
    );
    let mut group = c.benchmark_group("window");
    group.throughput(Throughput::Elements(RECORDS as u64));
    group.sample_size(10);
    group.bench_function("tumbling_count_avg_p99_10k_keys", |b| {
        b.iter_batched(
            || input.clone(),
            |records| {
                let mut op = WindowAggregate::new(config.clone()).expect("valid config");
                let mut out = Output::default();
                for r in records {
                    op.process(r, &mut out);
                    if out.rows.len() > 4_096 {
                        out.rows.clear();
                    }
                }
                black_box(out.rows.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn rollup_job(c: &mut Criterion) {
    const METRICS: usize = 200_000;
    let mut rng = 0x2545_F491_4F6C_DD1Du64;
    let metrics: Vec<Metric> = (0..METRICS)
        .map(|i| {
            let r = xorshift(&mut rng);
            Metric {
                service_name: format!("service-{}", r % 100),
                metric_type: format!("metric-{}", (r >> 8) % 10),
                value: ((r >> 32) % 10_000) as f64 / 100.0,
                tags: BTreeMap::new(),
                timestamp: 1_700_000_000_000 + (i / 2) as i64 - ((r >> 16) % 1_000) as i64,
                received_at: 0,
                correlation_id: String::new(),
            }
        })
        .collect();
    let mut group = c.benchmark_group("rollup");
    group.throughput(Throughput::Elements(METRICS as u64));
    group.sample_size(10);
    group.bench_function("metric_rollups_1m_5m_15m_1k_series", |b| {
        b.iter(|| {
            let mut job = RollupJob::new(RollupConfig::default()).expect("valid config");
            let mut out = RollupOutput::default();
            for (i, m) in metrics.iter().enumerate() {
                job.process_metric((i % 4) as u32, (i / 4) as u64, m, &mut out);
            }
            black_box(out.rollups.len())
        })
    });
    group.finish();
}

criterion_group!(benches, tumbling_count_avg_p99, rollup_job);
criterion_main!(benches);
