//! Window semantics against a brute-force reference: random multi-partition streams with
//! out-of-order and late records go through the engine and through a deliberately naive
//! model (every record kept in a list, every window enumerated, aggregates recomputed from
//! the raw values); the final rows and the late records must be identical.

// Test helpers unwrap: a panic there is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use sightline_stream::{
    AggregateKind, AggregateSpec, EmitMode, InputRecord, Key, Output, Value, WatermarkConfig,
    Window, WindowAggregate, WindowAggregateConfig, WindowSpec,
};

#[derive(Clone, Debug)]
struct Rec {
    partition: u32,
    offset: u64,
    t: i64,
    key: i64,
    value: Option<i64>,
}

fn aggregates() -> Vec<AggregateSpec> {
    vec![
        AggregateSpec::count_star("n"),
        AggregateSpec::new(AggregateKind::Count, 0, "n_values"),
        AggregateSpec::new(AggregateKind::Sum, 0, "sum"),
        AggregateSpec::new(AggregateKind::Min, 0, "min"),
        AggregateSpec::new(AggregateKind::Max, 0, "max"),
        AggregateSpec::new(AggregateKind::LatestByOffset, 0, "latest"),
        AggregateSpec::new(AggregateKind::EarliestByOffset, 0, "earliest"),
        AggregateSpec::new(AggregateKind::CountDistinct, 0, "distinct"),
    ]
}

/// The aggregates above, recomputed from `(seq, value)` pairs.
fn reference_values(values: &[(u64, Option<i64>)]) -> Vec<Value> {
    let present: Vec<(u64, i64)> = values
        .iter()
        .filter_map(|(s, v)| v.map(|v| (*s, v)))
        .collect();
    let opt = |v: Option<i64>| v.map_or(Value::Null, Value::Int);
    let distinct: BTreeSet<i64> = present.iter().map(|(_, v)| *v).collect();
    vec![
        Value::Int(values.len() as i64),
        Value::Int(present.len() as i64),
        if present.is_empty() {
            Value::Null
        } else {
            Value::Int(present.iter().map(|(_, v)| v).sum())
        },
        opt(present.iter().map(|(_, v)| *v).min()),
        opt(present.iter().map(|(_, v)| *v).max()),
        opt(present.iter().max_by_key(|(s, _)| *s).map(|(_, v)| *v)),
        opt(present.iter().min_by_key(|(s, _)| *s).map(|(_, v)| *v)),
        Value::Int(distinct.len() as i64),
    ]
}

/// Per-partition max minus lag, minimum over partitions seen, never decreasing.
#[derive(Default)]
struct RefWatermark {
    max: BTreeMap<u32, i64>,
    current: Option<i64>,
}

impl RefWatermark {
    fn observe(&mut self, partition: u32, t: i64, lag: i64) {
        let m = self.max.entry(partition).or_insert(t);
        *m = (*m).max(t);
        let candidate = self.max.values().min().copied().unwrap_or(t) - lag;
        self.current = Some(self.current.map_or(candidate, |c| c.max(candidate)));
    }
}

type Groups = BTreeMap<(i64, Window), Vec<(u64, Option<i64>)>>;

struct RefResult {
    finals: BTreeMap<(i64, Window), Vec<Value>>,
    late: Vec<u64>,
}

fn closed(w: &Window, grace: i64, wm: Option<i64>) -> bool {
    wm.is_some_and(|wm| w.end + grace <= wm)
}

fn reference_fixed(records: &[Rec], size: i64, advance: i64, lag: i64, grace: i64) -> RefResult {
    let mut wm = RefWatermark::default();
    let mut groups: Groups = BTreeMap::new();
    let mut late = Vec::new();
    for (seq, r) in records.iter().enumerate() {
        // Every multiple of `advance` in (t - size, t].
        let mut accepted = false;
        let mut start = (r.t - size).div_euclid(advance) * advance;
        while start <= r.t {
            let w = Window::new(start, start + size);
            if start > r.t - size && !closed(&w, grace, wm.current) {
                accepted = true;
                groups
                    .entry((r.key, w))
                    .or_default()
                    .push((seq as u64, r.value));
            }
            start += advance;
        }
        if !accepted {
            late.push(seq as u64);
        }
        wm.observe(r.partition, r.t, lag);
    }
    RefResult {
        finals: groups
            .into_iter()
            .map(|(k, v)| (k, reference_values(&v)))
            .collect(),
        late,
    }
}

fn reference_sessions(records: &[Rec], gap: i64, lag: i64, grace: i64) -> RefResult {
    let mut wm = RefWatermark::default();
    let mut open: Groups = BTreeMap::new();
    let mut finals = BTreeMap::new();
    let mut late = Vec::new();
    for (seq, r) in records.iter().enumerate() {
        let own = Window::new(r.t, r.t + gap);
        let overlapping: Vec<(i64, Window)> = open
            .keys()
            .filter(|(k, w)| *k == r.key && w.start < own.end && own.start < w.end)
            .copied()
            .collect();
        let merged = overlapping.iter().fold(own, |m, (_, w)| {
            Window::new(m.start.min(w.start), m.end.max(w.end))
        });
        if closed(&merged, grace, wm.current) {
            late.push(seq as u64);
        } else {
            let mut values = vec![(seq as u64, r.value)];
            for k in overlapping {
                values.extend(open.remove(&k).unwrap_or_default());
            }
            open.insert((r.key, merged), values);
        }
        wm.observe(r.partition, r.t, lag);
        let closing: Vec<(i64, Window)> = open
            .keys()
            .filter(|(_, w)| closed(w, grace, wm.current))
            .copied()
            .collect();
        for k in closing {
            let values = open.remove(&k).unwrap_or_default();
            finals.insert(k, reference_values(&values));
        }
    }
    for (k, values) in open {
        finals.insert(k, reference_values(&values));
    }
    RefResult { finals, late }
}

fn run_engine(records: &[Rec], window: WindowSpec, lag: i64, grace: i64) -> RefResult {
    let mut config = WindowAggregateConfig::new("ref", window, aggregates(), EmitMode::Final);
    config.watermark = WatermarkConfig {
        max_out_of_orderness_ms: lag,
        idle_timeout_ms: None,
    };
    config.grace_ms = grace;
    let mut op = WindowAggregate::new(config).unwrap();
    let mut out = Output::default();
    let mut seq_of_offset = BTreeMap::new();
    for (seq, r) in records.iter().enumerate() {
        seq_of_offset.insert((r.partition, r.offset), seq as u64);
        op.process(
            InputRecord {
                partition: r.partition,
                offset: r.offset,
                event_time: r.t,
                key: Key::from([Value::Int(r.key)]),
                fields: vec![r.value.map_or(Value::Null, Value::Int)],
            },
            &mut out,
        );
    }
    op.flush(&mut out);
    assert_eq!(op.open_windows(), 0, "flush evicts everything");
    let mut finals = BTreeMap::new();
    for row in out.rows {
        assert!(row.is_final);
        let Value::Int(key) = row.key.parts()[0] else {
            panic!("integer key")
        };
        let window = row.window.expect("windowed");
        let previous = finals.insert((key, window), row.values);
        assert!(previous.is_none(), "row for {key} {window:?} emitted twice");
    }
    let late = out
        .late
        .iter()
        .map(|l| seq_of_offset[&(l.record.partition, l.record.offset)])
        .collect();
    RefResult { finals, late }
}

fn records() -> impl Strategy<Value = Vec<Rec>> {
    proptest::collection::vec(
        (
            0u32..3,
            0i64..3_000,
            0i64..4,
            proptest::option::weighted(0.9, 0i64..40),
        ),
        0..250,
    )
    .prop_map(|raw| {
        let mut next = [0u64; 3];
        raw.into_iter()
            .map(|(partition, t, key, value)| {
                let offset = next[partition as usize];
                next[partition as usize] += 1;
                Rec {
                    partition,
                    offset,
                    t,
                    key,
                    value,
                }
            })
            .collect()
    })
}

fn assert_same(engine: RefResult, reference: RefResult) -> Result<(), TestCaseError> {
    prop_assert_eq!(engine.late, reference.late);
    prop_assert_eq!(engine.finals, reference.finals);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn tumbling_matches_brute_force(
        recs in records(), size in 1i64..400, lag in 0i64..300, grace in 0i64..100,
    ) {
        let engine = run_engine(&recs, WindowSpec::Tumbling { size_ms: size }, lag, grace);
        assert_same(engine, reference_fixed(&recs, size, size, lag, grace))?;
    }

    #[test]
    fn hopping_matches_brute_force(
        recs in records(), advance in 1i64..200, factor in 1i64..5, lag in 0i64..300, grace in 0i64..100,
    ) {
        let size = advance * factor + advance / 2;
        let window = WindowSpec::Hopping { size_ms: size, advance_ms: advance };
        let engine = run_engine(&recs, window, lag, grace);
        assert_same(engine, reference_fixed(&recs, size, advance, lag, grace))?;
    }

    #[test]
    fn session_matches_brute_force(
        recs in records(), gap in 1i64..200, lag in 0i64..300, grace in 0i64..100,
    ) {
        let engine = run_engine(&recs, WindowSpec::Session { gap_ms: gap }, lag, grace);
        assert_same(engine, reference_sessions(&recs, gap, lag, grace))?;
    }
}

#[test]
fn in_order_stream_has_no_late_records_and_every_window_emits_once() {
    let recs: Vec<Rec> = (0..1_000)
        .map(|i| Rec {
            partition: 0,
            offset: i,
            t: i as i64 * 7,
            key: (i % 5) as i64,
            value: Some(i as i64 % 13),
        })
        .collect();
    let engine = run_engine(&recs, WindowSpec::Tumbling { size_ms: 100 }, 0, 0);
    assert!(engine.late.is_empty());
    let reference = reference_fixed(&recs, 100, 100, 0, 0);
    assert_eq!(engine.finals, reference.finals);
}

#[test]
fn shuffled_stream_has_late_records_in_both_models() {
    // A fixed pseudo-random permutation: plenty of records behind the watermark.
    let recs: Vec<Rec> = (0..2_000u64)
        .map(|i| Rec {
            partition: (i % 2) as u32,
            offset: i / 2,
            t: ((i * 7_919) % 2_000) as i64,
            key: (i % 3) as i64,
            value: Some((i % 17) as i64),
        })
        .collect();
    for window in [
        WindowSpec::Tumbling { size_ms: 50 },
        WindowSpec::Session { gap_ms: 5 },
    ] {
        let engine = run_engine(&recs, window, 100, 10);
        assert!(engine.late.len() > 100, "{window:?}: {}", engine.late.len());
        let reference = match window {
            WindowSpec::Tumbling { size_ms } => reference_fixed(&recs, size_ms, size_ms, 100, 10),
            WindowSpec::Session { gap_ms } => reference_sessions(&recs, gap_ms, 100, 10),
            _ => unreachable!(),
        };
        assert_eq!(engine.late, reference.late);
        assert_eq!(engine.finals, reference.finals);
    }
}
