//! The built-in rollup job end to end at the operator level: metric rollups per service
//! and metric type in three window sizes, event counters per service and severity, late
//! inputs reported, and idle inputs still closing their last windows.

// Test helpers unwrap: a panic there is a failed assertion.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use sightline_model::{Event, Metric, Severity, SourceType};
use sightline_stream::WatermarkConfig;
use sightline_stream::rollup::{RollupConfig, RollupJob, RollupOutput};

/// A timestamp aligned to 15 minutes, so all three window sizes start together.
const T0: i64 = 1_700_000_100_000 / 900_000 * 900_000;

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

fn event(service: &str, severity: Severity, timestamp: i64) -> Event {
    Event {
        event_id: format!("{service}-{timestamp}"),
        service_name: service.into(),
        event_type: "ERROR".into(),
        timestamp,
        environment: "PRODUCTION".into(),
        details: String::new(),
        severity,
        metadata: serde_json::Map::new(),
        source: "test".into(),
        source_type: SourceType::Http,
        host: None,
        tags: BTreeMap::new(),
        fingerprint: String::new(),
        correlation_id: String::new(),
        received_at: timestamp,
    }
}

fn config() -> RollupConfig {
    RollupConfig {
        watermark: WatermarkConfig {
            max_out_of_orderness_ms: 1_000,
            idle_timeout_ms: Some(10_000),
        },
        grace_ms: 1_000,
    }
}

#[test]
fn rollups_are_per_service_and_metric_type_and_close_by_watermark() {
    let mut job = RollupJob::new(config()).unwrap();
    let mut out = RollupOutput::default();
    let mut offset = 0;
    for second in 0..120 {
        for (service, kind, value) in [
            ("api", "cpu_usage", 50.0),
            ("api", "latency_ms", 200.0),
            ("db", "cpu_usage", 10.0),
        ] {
            job.process_metric(
                0,
                offset,
                &metric(
                    service,
                    kind,
                    value + f64::from(second % 10),
                    T0 + i64::from(second) * 1_000,
                ),
                &mut out,
            );
            offset += 1;
        }
    }
    // Watermark 119 s − 1 s: the first minute closed (60 s + 1 s grace), the second not yet.
    let one_minute: Vec<_> = out.rollups.iter().filter(|r| r.window == "1m").collect();
    assert_eq!(one_minute.len(), 3);
    assert!(
        one_minute
            .iter()
            .all(|r| r.window_start == T0 && r.count == 60)
    );
    let api_cpu = one_minute
        .iter()
        .find(|r| r.service_name == "api" && r.metric_type == "cpu_usage")
        .unwrap();
    assert_eq!((api_cpu.min, api_cpu.max, api_cpu.avg), (50.0, 59.0, 54.5));
    assert!(
        out.rollups.iter().all(|r| r.window == "1m"),
        "5m and 15m still open"
    );

    job.flush(&mut out);
    let windows: Vec<&str> = out.rollups.iter().map(|r| r.window.as_str()).collect();
    assert_eq!(windows.iter().filter(|w| **w == "1m").count(), 6);
    assert_eq!(windows.iter().filter(|w| **w == "5m").count(), 3);
    assert_eq!(windows.iter().filter(|w| **w == "15m").count(), 3);
    let ids: std::collections::BTreeSet<String> = out.rollups.iter().map(|r| r.id()).collect();
    assert_eq!(ids.len(), out.rollups.len(), "ids are unique");
}

#[test]
fn events_are_counted_per_service_severity_and_five_minutes() {
    let mut job = RollupJob::new(config()).unwrap();
    let mut out = RollupOutput::default();
    for i in 0..600 {
        let severity = if i % 3 == 0 {
            Severity::Critical
        } else {
            Severity::Info
        };
        job.process_event(
            0,
            i as u64,
            &event("payments", severity, T0 + i * 1_000),
            &mut out,
        );
    }
    job.flush(&mut out);
    let mut counts: Vec<(i64, Severity, u64)> = out
        .event_counts
        .iter()
        .map(|c| (c.window_start - T0, c.severity, c.count))
        .collect();
    counts.sort_by_key(|c| (c.0, c.1));
    assert_eq!(
        counts,
        vec![
            (0, Severity::Critical, 100),
            (0, Severity::Info, 200),
            (300_000, Severity::Critical, 100),
            (300_000, Severity::Info, 200),
        ]
    );
    assert_eq!(
        out.event_counts[0].window_end - out.event_counts[0].window_start,
        300_000
    );
}

#[test]
fn late_inputs_are_reported_never_dropped_silently() {
    let mut job = RollupJob::new(config()).unwrap();
    let mut out = RollupOutput::default();
    job.process_metric(0, 0, &metric("api", "cpu", 1.0, T0 + 600_000), &mut out);
    // 10 minutes behind: its 1m and 5m windows are closed, its 15m window is not.
    job.process_metric(0, 1, &metric("api", "cpu", 1.0, T0), &mut out);
    job.process_event(0, 0, &event("api", Severity::High, T0 + 600_000), &mut out);
    job.process_event(0, 1, &event("api", Severity::High, T0), &mut out);
    assert_eq!(out.late_metrics.len(), 1);
    assert_eq!(out.late_metrics[0].offset, 1);
    assert_eq!(out.late_metrics[0].windows, vec!["1m", "5m"]);
    assert_eq!(out.late_events.len(), 1);
    job.flush(&mut out);
    let fifteen = out.rollups.iter().find(|r| r.window == "15m").unwrap();
    assert_eq!(fifteen.count, 2);
}

#[test]
fn an_idle_partition_does_not_hold_rollups_back() {
    let mut job = RollupJob::new(config()).unwrap();
    let mut out = RollupOutput::default();
    job.process_metric(1, 0, &metric("api", "cpu", 1.0, T0), &mut out);
    job.tick(0, &mut out);
    for i in 0..90 {
        job.process_metric(
            0,
            i,
            &metric("api", "cpu", 2.0, T0 + i as i64 * 1_000),
            &mut out,
        );
    }
    assert!(
        out.rollups.is_empty(),
        "partition 1 holds the watermark at T0"
    );
    job.tick(5_000, &mut out);
    job.tick(15_000, &mut out);
    let first = out
        .rollups
        .iter()
        .find(|r| r.window == "1m")
        .expect("1m closed once partition 1 went idle");
    assert_eq!(first.count, 61);
}
