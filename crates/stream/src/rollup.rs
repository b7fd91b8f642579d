//! The built-in job: metric rollups and event counters, the aggregates every dashboard
//! and detector reads.
//!
//! Every [`Metric`] of `metrics.raw` is aggregated per `(service_name, metric_type)` into
//! 1-minute, 5-minute and 15-minute tumbling windows with count, sum, min, max, avg, p95
//! and p99 ([`Rollup`], the LiveOps specification's shape), and every [`Event`] of
//! `system-events` is counted per `(service_name, severity)` in 5-minute windows
//! ([`EventCount`], the analytics-platform specification's). Both emit once per window,
//! when the watermark closes it (`EMIT FINAL`).
//!
//! [`RollupJob`] is a pure state machine over [`WindowAggregate`] operators: the caller
//! feeds it decoded records with their partition and offset, ticks it with processing
//! time, publishes what it returns, and periodically saves [`RollupJob::checkpoint`]
//! before committing the source offsets. Intended wiring (`sightline run`):
//!
//! 1. load the `rollups` checkpoint from a [`crate::CheckpointStore`] and
//!    [`RollupJob::restore`] it (or [`RollupJob::new`]); seek the subscription on
//!    `metrics.raw` + `system-events` to [`crate::Checkpoint::positions`];
//! 2. per batch: decode, `process_metric` / `process_event`, then publish the returned
//!    rollups to `metrics.aggregated` (key: [`Rollup::id`]) and the store, and late
//!    records to `metrics.raw.late` / `system-events.late`;
//! 3. every second: `tick(now)`; every few seconds: save the checkpoint, then commit the
//!    positions it holds.

use serde::{Deserialize, Serialize};
use sightline_model::{Event, Metric, Severity, topics};

use crate::aggregate::{AggregateKind, AggregateSpec};
use crate::checkpoint::{Checkpoint, SourcePositions};
use crate::error::StreamError;
use crate::operator::{
    EmitMode, InputRecord, Output, WindowAggregate, WindowAggregateConfig, WindowRow,
};
use crate::watermark::WatermarkConfig;
use crate::window::WindowSpec;
use crate::{Key, Value};

/// The rollup windows: label and size.
pub const ROLLUP_WINDOWS: [(&str, i64); 3] = [("1m", 60_000), ("5m", 300_000), ("15m", 900_000)];
/// Window of the event counters.
pub const EVENT_COUNT_WINDOW_MS: i64 = 300_000;
/// Checkpoint job name of the rollup job.
pub const JOB_NAME: &str = "rollups";
const EVENT_COUNTS_OPERATOR: &str = "event-counts-5m";

/// One metric rollup row, as published on `metrics.aggregated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Service measured.
    pub service_name: String,
    /// Metric name.
    pub metric_type: String,
    /// `"1m"`, `"5m"` or `"15m"`.
    pub window: String,
    /// Window start, epoch ms (inclusive).
    pub window_start: i64,
    /// Window end, epoch ms (exclusive).
    pub window_end: i64,
    /// Number of points.
    pub count: u64,
    /// Sum of values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub avg: f64,
    /// 95th percentile (DDSketch, 1 % relative error).
    pub p95: f64,
    /// 99th percentile (DDSketch, 1 % relative error).
    pub p99: f64,
}

impl Rollup {
    /// Deterministic id, so a replayed rollup upserts instead of duplicating.
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.service_name, self.metric_type, self.window, self.window_start
        )
    }
}

/// Events of one service and severity in one 5-minute window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventCount {
    /// Service the events are about.
    pub service_name: String,
    /// Their severity.
    pub severity: Severity,
    /// Window start, epoch ms (inclusive).
    pub window_start: i64,
    /// Window end, epoch ms (exclusive).
    pub window_end: i64,
    /// Number of events.
    pub count: u64,
}

impl EventCount {
    /// Deterministic id, so a replayed counter upserts instead of duplicating.
    pub fn id(&self) -> String {
        format!(
            "{}|{}|{}",
            self.service_name, self.severity, self.window_start
        )
    }
}

/// A record that missed at least one window because it closed before it arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateInput {
    /// Source partition.
    pub partition: u32,
    /// Source offset.
    pub offset: u64,
    /// The record's event time.
    pub event_time: i64,
    /// The windows (`"1m"`, `"5m"`, `"15m"`) it missed.
    pub windows: Vec<&'static str>,
}

/// What the job produced since the caller last drained it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RollupOutput {
    /// Closed metric windows.
    pub rollups: Vec<Rollup>,
    /// Closed event-count windows.
    pub event_counts: Vec<EventCount>,
    /// Late `metrics.raw` records (for `metrics.raw.late`).
    pub late_metrics: Vec<LateInput>,
    /// Late `system-events` records (for `system-events.late`).
    pub late_events: Vec<LateInput>,
}

/// Settings of the rollup job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollupConfig {
    /// Watermarks of both inputs.
    pub watermark: WatermarkConfig,
    /// How long after its end a window still accepts points, ms.
    pub grace_ms: i64,
}

impl Default for RollupConfig {
    /// 5 s out-of-orderness, 30 s idle timeout, 5 s grace: a 1-minute rollup is published
    /// about 10 s after its minute ends.
    fn default() -> Self {
        Self {
            watermark: WatermarkConfig::default(),
            grace_ms: 5_000,
        }
    }
}

const ROLLUP_COLUMNS: [(&str, AggregateKind); 7] = [
    ("count", AggregateKind::Count),
    ("sum", AggregateKind::Sum),
    ("min", AggregateKind::Min),
    ("max", AggregateKind::Max),
    ("avg", AggregateKind::Avg),
    ("p95", AggregateKind::P95),
    ("p99", AggregateKind::P99),
];

fn rollup_config(config: &RollupConfig, label: &str, size_ms: i64) -> WindowAggregateConfig {
    let aggregates = ROLLUP_COLUMNS
        .iter()
        .map(|(name, kind)| AggregateSpec::new(*kind, 0, *name))
        .collect();
    let mut c = WindowAggregateConfig::new(
        format!("metric-rollup-{label}"),
        WindowSpec::Tumbling { size_ms },
        aggregates,
        EmitMode::Final,
    );
    c.key_columns = vec!["service_name".into(), "metric_type".into()];
    c.watermark = config.watermark;
    c.grace_ms = config.grace_ms;
    c
}

fn event_count_config(config: &RollupConfig) -> WindowAggregateConfig {
    let mut c = WindowAggregateConfig::new(
        EVENT_COUNTS_OPERATOR,
        WindowSpec::Tumbling {
            size_ms: EVENT_COUNT_WINDOW_MS,
        },
        vec![AggregateSpec::count_star("count")],
        EmitMode::Final,
    );
    c.key_columns = vec!["service_name".into(), "severity".into()];
    c.watermark = config.watermark;
    c.grace_ms = config.grace_ms;
    c
}

/// Metric rollups and event counters over the two input topics. See the module docs.
#[derive(Debug)]
pub struct RollupJob {
    rollups: Vec<(&'static str, WindowAggregate)>,
    events: WindowAggregate,
    positions: SourcePositions,
    scratch: Output,
}

impl RollupJob {
    /// A job with empty state.
    pub fn new(config: RollupConfig) -> Result<Self, StreamError> {
        let rollups = ROLLUP_WINDOWS
            .iter()
            .map(|(label, size)| {
                Ok((
                    *label,
                    WindowAggregate::new(rollup_config(&config, label, *size))?,
                ))
            })
            .collect::<Result<_, StreamError>>()?;
        Ok(Self {
            rollups,
            events: WindowAggregate::new(event_count_config(&config))?,
            positions: SourcePositions::default(),
            scratch: Output::default(),
        })
    }

    /// Resumes from a checkpoint taken with the same configuration.
    pub fn restore(config: RollupConfig, mut checkpoint: Checkpoint) -> Result<Self, StreamError> {
        let mut restore = |c: WindowAggregateConfig| {
            let snapshot =
                checkpoint
                    .take(&c.name)
                    .ok_or_else(|| StreamError::CheckpointMismatch {
                        operator: c.name.clone(),
                        reason: "the checkpoint has no state for it".into(),
                    })?;
            WindowAggregate::restore(c, snapshot)
        };
        let rollups = ROLLUP_WINDOWS
            .iter()
            .map(|(label, size)| Ok((*label, restore(rollup_config(&config, label, *size))?)))
            .collect::<Result<_, StreamError>>()?;
        let events = restore(event_count_config(&config))?;
        Ok(Self {
            rollups,
            events,
            positions: checkpoint.positions,
            scratch: Output::default(),
        })
    }

    /// The job's complete state and the source positions it reflects.
    pub fn checkpoint(&self) -> Checkpoint {
        let mut c = Checkpoint {
            positions: self.positions.clone(),
            ..Checkpoint::default()
        };
        for (_, op) in &self.rollups {
            c.insert(op.snapshot());
        }
        c.insert(self.events.snapshot());
        c
    }

    /// Declares how many partitions `metrics.raw` and `system-events` have: each holds the
    /// watermark back until it delivers or goes idle, so a backlog read partition by
    /// partition closes no window early.
    pub fn expect_partitions(&mut self, metric_partitions: u32, event_partitions: u32) {
        for (_, op) in &mut self.rollups {
            op.expect_partitions(0..metric_partitions);
        }
        self.events.expect_partitions(0..event_partitions);
    }

    /// Next offsets to read per source partition.
    pub fn positions(&self) -> &SourcePositions {
        &self.positions
    }

    /// Feeds one `metrics.raw` record.
    pub fn process_metric(
        &mut self,
        partition: u32,
        offset: u64,
        metric: &Metric,
        out: &mut RollupOutput,
    ) {
        self.positions
            .advance(topics::METRICS_RAW, partition, offset);
        let record = InputRecord {
            partition,
            offset,
            event_time: metric.timestamp,
            key: Key::new([
                Value::string(&metric.service_name),
                Value::string(&metric.metric_type),
            ]),
            fields: vec![Value::Float(metric.value)],
        };
        let mut missed = Vec::new();
        for (label, op) in &mut self.rollups {
            op.process(record.clone(), &mut self.scratch);
            if !self.scratch.late.is_empty() {
                missed.push(*label);
            }
            drain_rollups(label, &mut self.scratch, &mut out.rollups);
        }
        if !missed.is_empty() {
            out.late_metrics.push(LateInput {
                partition,
                offset,
                event_time: metric.timestamp,
                windows: missed,
            });
        }
    }

    /// Feeds one `system-events` record.
    pub fn process_event(
        &mut self,
        partition: u32,
        offset: u64,
        event: &Event,
        out: &mut RollupOutput,
    ) {
        self.positions
            .advance(topics::SYSTEM_EVENTS, partition, offset);
        let record = InputRecord {
            partition,
            offset,
            event_time: event.timestamp,
            key: Key::new([
                Value::string(&event.service_name),
                Value::string(event.severity.as_str()),
            ]),
            fields: Vec::new(),
        };
        self.events.process(record, &mut self.scratch);
        if !self.scratch.late.is_empty() {
            out.late_events.push(LateInput {
                partition,
                offset,
                event_time: event.timestamp,
                windows: vec!["5m"],
            });
        }
        drain_event_counts(&mut self.scratch, &mut out.event_counts);
    }

    /// Tells the job the processing time, so idle partitions release the watermark.
    pub fn tick(&mut self, now_ms: i64, out: &mut RollupOutput) {
        for (label, op) in &mut self.rollups {
            op.tick(now_ms, &mut self.scratch);
            drain_rollups(label, &mut self.scratch, &mut out.rollups);
        }
        self.events.tick(now_ms, &mut self.scratch);
        drain_event_counts(&mut self.scratch, &mut out.event_counts);
    }

    /// End of a bounded input (tests, replays): closes every window.
    pub fn flush(&mut self, out: &mut RollupOutput) {
        for (label, op) in &mut self.rollups {
            op.flush(&mut self.scratch);
            drain_rollups(label, &mut self.scratch, &mut out.rollups);
        }
        self.events.flush(&mut self.scratch);
        drain_event_counts(&mut self.scratch, &mut out.event_counts);
    }
}

fn key_str(key: &Key, i: usize) -> String {
    key.parts()
        .get(i)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn f64_at(row: &WindowRow, i: usize) -> f64 {
    row.values.get(i).and_then(Value::as_f64).unwrap_or(0.0)
}

fn drain_rollups(label: &str, scratch: &mut Output, into: &mut Vec<Rollup>) {
    scratch.late.clear();
    scratch.retractions.clear();
    into.extend(scratch.rows.drain(..).filter_map(|row| {
        let window = row.window?;
        Some(Rollup {
            service_name: key_str(&row.key, 0),
            metric_type: key_str(&row.key, 1),
            window: label.to_owned(),
            window_start: window.start,
            window_end: window.end,
            count: f64_at(&row, 0) as u64,
            sum: f64_at(&row, 1),
            min: f64_at(&row, 2),
            max: f64_at(&row, 3),
            avg: f64_at(&row, 4),
            p95: f64_at(&row, 5),
            p99: f64_at(&row, 6),
        })
    }));
}

fn drain_event_counts(scratch: &mut Output, into: &mut Vec<EventCount>) {
    scratch.late.clear();
    scratch.retractions.clear();
    into.extend(scratch.rows.drain(..).filter_map(|row| {
        let window = row.window?;
        let severity = Severity::parse("severity", &key_str(&row.key, 1)).ok()?;
        Some(EventCount {
            service_name: key_str(&row.key, 0),
            severity,
            window_start: window.start,
            window_end: window.end,
            count: f64_at(&row, 0) as u64,
        })
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn metric(service: &str, kind: &str, value: f64, timestamp: i64) -> Metric {
        Metric {
            service_name: service.into(),
            metric_type: kind.into(),
            value,
            tags: BTreeMap::new(),
            timestamp,
            received_at: timestamp,
            correlation_id: String::new(),
        }
    }

    #[test]
    fn rolls_up_one_minute_of_points_into_every_window_size() {
        let mut job = RollupJob::new(RollupConfig::default()).unwrap();
        let mut out = RollupOutput::default();
        for i in 0..60 {
            job.process_metric(
                0,
                i as u64,
                &metric("api", "latency_ms", f64::from(i + 1), i64::from(i) * 1_000),
                &mut out,
            );
        }
        assert!(out.rollups.is_empty());
        job.flush(&mut out);
        assert_eq!(out.rollups.len(), 3);
        let one = out.rollups.iter().find(|r| r.window == "1m").unwrap();
        assert_eq!((one.window_start, one.window_end), (0, 60_000));
        assert_eq!(one.count, 60);
        assert_eq!(one.sum, 1830.0);
        assert_eq!((one.min, one.max, one.avg), (1.0, 60.0, 30.5));
        assert!((one.p95 - 57.0).abs() <= 0.6, "{}", one.p95);
        assert!((one.p99 - 59.0).abs() <= 0.6, "{}", one.p99);
        assert_eq!(one.id(), "api|latency_ms|1m|0");
        assert_eq!(job.positions().get(topics::METRICS_RAW, 0), Some(60));
    }
}
