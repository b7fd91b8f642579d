//! The rules runner end to end on a real embedded log, SQLite store and checkpoint files:
//! events and incidents become firings in order through a channel of capacity one
//! (backpressure, nothing dropped); a rule created while it runs is picked up on a
//! reload notification; a restart re-fires nothing and keeps the window counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sightline_log::{EmbeddedLog, EventLog, LogConfig, Record, TopicConfig};
use sightline_model::{Clock, Event, Incident, TriggerRule, TriggerRuleSpec, topics};
use sightline_respond::Firing;
use sightline_respond::runner::{GROUP, RulesRunner, RulesRunnerConfig, RunnerError, run_rules};
use sightline_store::{RuleStore, SqliteStore};
use sightline_stream::FileCheckpointStore;
use tokio::sync::{Notify, mpsc};

const T0: i64 = 1_700_000_000_000;

struct Parts {
    log: Arc<EmbeddedLog>,
    store: Arc<SqliteStore>,
    checkpoints: Arc<FileCheckpointStore>,
    clock: Clock,
    reload: Arc<Notify>,
}

async fn open(dir: &Path, clock: Clock) -> Parts {
    let log = Arc::new(EmbeddedLog::open(dir.join("log"), LogConfig::default()).expect("log"));
    for topic in sightline_respond::runner::TOPICS {
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
        clock,
        reload: Arc::new(Notify::new()),
    }
}

fn rule(id: &str, spec: serde_json::Value) -> TriggerRule {
    let spec: TriggerRuleSpec = serde_json::from_value(spec).unwrap();
    TriggerRule::from_spec(spec.validate().unwrap(), id.into(), "test".into(), T0, T0)
}

fn event(id: &str, service: &str, ty: &str) -> Record {
    let e: Event = serde_json::from_value(json!({
        "event_id": id, "service_name": service, "event_type": ty, "timestamp": T0,
        "environment": "PRODUCTION", "details": "boom", "severity": "high", "metadata": {},
        "source": "t", "source_type": "http", "host": null, "tags": {}, "fingerprint": "f",
        "correlation_id": "c", "received_at": T0
    }))
    .unwrap();
    Record::new(Some(service), serde_json::to_vec(&e).unwrap(), T0)
}

fn incident(id: &str, severity: &str) -> Record {
    let i: Incident = serde_json::from_value(json!({
        "id": id, "title": "db down", "description": "", "severity": severity, "score": 1.0,
        "status": "open", "service_name": "db", "affected_services": ["db"],
        "detected_at": T0, "updated_at": T0, "acknowledged_at": null, "resolved_at": null,
        "correlation_id": "c", "fingerprint": "f", "labels": {}, "event_ids": [],
        "anomaly_ids": [], "occurrences": 1, "assignee": null, "flapping": false,
        "timeline": []
    }))
    .unwrap();
    Record::new(Some(id), serde_json::to_vec(&i).unwrap(), T0)
}

type Handle = tokio::task::JoinHandle<Result<(), RunnerError>>;

fn spawn(
    parts: &Parts,
    capacity: usize,
) -> (
    Handle,
    tokio::sync::oneshot::Sender<()>,
    mpsc::Receiver<Firing>,
) {
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let (tx, firings) = mpsc::channel(capacity);
    let runner = RulesRunner {
        log: parts.log.clone(),
        store: parts.store.clone(),
        checkpoints: parts.checkpoints.clone(),
        clock: parts.clock.clone(),
        reload: Some(parts.reload.clone()),
        config: RulesRunnerConfig {
            reload_interval: Duration::from_secs(3600),
            checkpoint_interval: Duration::from_millis(50),
            batch_size: 64,
            retry_backoff: Duration::from_millis(20),
            ..RulesRunnerConfig::default()
        },
    };
    let task = tokio::spawn(run_rules(runner, tx, async move {
        let _ = rx.await;
    }));
    (task, stop, firings)
}

async fn next(firings: &mut mpsc::Receiver<Firing>) -> Firing {
    tokio::time::timeout(Duration::from_secs(30), firings.recv())
        .await
        .expect("a firing within 30 s")
        .expect("the runner is running")
}

async fn nothing_more(firings: &mut mpsc::Receiver<Firing>) {
    let more = tokio::time::timeout(Duration::from_millis(300), firings.recv()).await;
    assert!(more.is_err(), "unexpected firing {more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_incidents_fire_through_a_bounded_channel_and_restarts_neither_refire_nor_miss()
{
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Clock::manual(T0);
    let parts = open(dir.path(), clock.clone()).await;
    parts
        .store
        .create_rule(&rule(
            "errors",
            json!({"name": "error burst", "applies_to": "events",
                   "conditions": {"event_type": "error"}, "time_window_minutes": 10,
                   "threshold_count": 2, "group_by": ["service_name"],
                   "response_template_id": "restart"}),
        ))
        .await
        .unwrap();
    parts
        .store
        .create_rule(&rule(
            "critical-incidents",
            json!({"name": "critical incident", "applies_to": "incidents",
                   "conditions": {}, "severity_threshold": "critical"}),
        ))
        .await
        .unwrap();
    // Ten error pairs (ten firings) before anyone reads: with capacity 1 the runner must
    // wait for the receiver, and nothing may be lost.
    let mut records = Vec::new();
    for i in 0..20 {
        records.push(event(&format!("e{i}"), "api", "ERROR"));
    }
    records.push(event("info", "api", "INFO"));
    records.push(event("e-last", "api", "ERROR")); // one match left in the window
    parts
        .log
        .append(topics::SYSTEM_EVENTS, records)
        .await
        .unwrap();
    parts
        .log
        .append(
            topics::INCIDENTS_DETECTED,
            vec![incident("inc-1", "critical"), incident("inc-2", "low")],
        )
        .await
        .unwrap();

    let (task, stop, mut firings) = spawn(&parts, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut got = Vec::new();
    for _ in 0..11 {
        got.push(next(&mut firings).await);
    }
    nothing_more(&mut firings).await;
    let events: Vec<&Firing> = got.iter().filter(|f| f.rule_id == "errors").collect();
    assert_eq!(events.len(), 10);
    for (n, f) in events.iter().enumerate() {
        match &f.subject {
            sightline_respond::Subject::Event(e) => {
                assert_eq!(e.event_id, format!("e{}", 2 * n + 1))
            }
            other => panic!("unexpected subject {other:?}"),
        }
        assert_eq!(f.group_key, "api");
        assert_eq!(f.match_count, 2);
        assert_eq!(f.response_template_id.as_deref(), Some("restart"));
        assert_eq!(f.fired_at, T0);
    }
    let incidents: Vec<&Firing> = got
        .iter()
        .filter(|f| f.rule_id == "critical-incidents")
        .collect();
    assert_eq!(incidents.len(), 1);
    assert_eq!(incidents[0].rule_name, "critical incident");

    // A rule created while running is picked up on the reload notification.
    parts
        .store
        .create_rule(&rule(
            "infos",
            json!({"name": "info", "applies_to": "events", "conditions": {"event_type": "info"}}),
        ))
        .await
        .unwrap();
    parts.reload.notify_one();
    tokio::time::sleep(Duration::from_millis(200)).await;
    parts
        .log
        .append(topics::SYSTEM_EVENTS, vec![event("info-2", "api", "INFO")])
        .await
        .unwrap();
    let f = next(&mut firings).await;
    assert_eq!(f.rule_id, "infos");

    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
    let committed = parts
        .log
        .committed(GROUP, topics::SYSTEM_EVENTS)
        .await
        .unwrap();
    assert_eq!(committed, vec![Some(23)]);

    // Restart: nothing already handled fires again, and the window still holds e-last,
    // so one more error completes the pair.
    clock.advance(60_000);
    let (task, stop, mut firings) = spawn(&parts, 1);
    nothing_more(&mut firings).await;
    parts
        .log
        .append(topics::SYSTEM_EVENTS, vec![event("after", "api", "ERROR")])
        .await
        .unwrap();
    let f = next(&mut firings).await;
    assert_eq!(f.rule_id, "errors");
    assert_eq!(f.match_count, 2);
    nothing_more(&mut firings).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
