//! The analyst runner end to end on a real embedded log, SQLite store and in-process
//! cache: a detected incident is analysed once (stored, published on `analysis.completed`,
//! cached as `analysis:{id}`); insignificant updates are skipped, significant ones
//! re-analysed; a redelivered version and a restart add no analysis.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_analyst::context::{ContextLimits, StoreContext};
use sightline_analyst::runner::{AnalystRunner, AnalystRunnerConfig, run_analyst};
use sightline_analyst::{Analyst, AnalystError};
use sightline_cache::{Cache, MemoryCache, MemoryConfig};
use sightline_log::{EmbeddedLog, EventLog, LogConfig, Record, TopicConfig};
use sightline_model::{
    Analysis, Anomaly, Clock, Incident, IncidentStatus, ServiceNode, Severity, Signal, Topology,
    topics,
};
use sightline_store::{AnalysisStore, IncidentStore, SqliteStore, Store};

const BASE_MS: i64 = 1_700_000_000_000;

struct Parts {
    log: Arc<EmbeddedLog>,
    store: Arc<SqliteStore>,
    cache: Arc<MemoryCache>,
}

async fn open(dir: &Path) -> Parts {
    let log = Arc::new(EmbeddedLog::open(dir.join("log"), LogConfig::default()).expect("log"));
    for topic in [
        topics::INCIDENTS_DETECTED,
        topics::INCIDENTS_UPDATED,
        topics::ANALYSIS_COMPLETED,
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
    let cache = Arc::new(MemoryCache::new(MemoryConfig::default(), Clock::system()));
    Parts { log, store, cache }
}

fn anomaly(service: &str, t: i64) -> Anomaly {
    let signal = Signal::Metric {
        metric_type: "latency_ms".into(),
    };
    Anomaly {
        id: Anomaly::id_for("robust_zscore", service, &signal, t),
        detector: "robust_zscore".into(),
        service_name: service.into(),
        signal,
        timestamp: t,
        value: 900.0,
        expected_low: 80.0,
        expected_high: 120.0,
        score: 0.9,
        severity: Severity::High,
        explanation: "latency far above its usual range".into(),
        event_id: None,
        detected_at: t,
    }
}

fn incident(services: &[&str], anomalies: &[&Anomaly], updated_at: i64) -> Incident {
    Incident {
        id: "inc-0000000000000001".into(),
        title: "db: latency_ms anomaly".into(),
        description: String::new(),
        severity: Severity::High,
        score: 1.0,
        status: IncidentStatus::Open,
        service_name: services[0].into(),
        affected_services: services.iter().map(|s| s.to_string()).collect(),
        detected_at: BASE_MS + 10_000,
        updated_at,
        acknowledged_at: None,
        resolved_at: None,
        correlation_id: String::new(),
        fingerprint: "af-1".into(),
        labels: Default::default(),
        event_ids: vec![],
        anomaly_ids: anomalies.iter().map(|a| a.id.clone()).collect(),
        occurrences: anomalies.len() as u64,
        assignee: None,
        flapping: false,
        timeline: vec![],
    }
}

async fn publish(parts: &Parts, topic: &str, incident: &Incident) {
    // Store first, as the correlation runner does.
    parts
        .store
        .upsert_incidents(std::slice::from_ref(incident))
        .await
        .unwrap();
    parts
        .store
        .link_anomalies(&incident.id, &incident.anomaly_ids)
        .await
        .unwrap();
    parts
        .log
        .append(
            topic,
            vec![Record::new(
                Some(&incident.id),
                serde_json::to_vec(incident).unwrap(),
                incident.updated_at,
            )],
        )
        .await
        .unwrap();
}

type Handle = tokio::task::JoinHandle<Result<(), AnalystError>>;

fn spawn(parts: &Parts) -> (Handle, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let store: Arc<dyn Store> = parts.store.clone();
    let runner = AnalystRunner {
        log: parts.log.clone(),
        store: store.clone(),
        cache: Some(parts.cache.clone()),
        analyst: Analyst::new(Arc::new(StoreContext::new(store, ContextLimits::default()))),
        config: AnalystRunnerConfig {
            batch_size: 16,
            retry_backoff: Duration::from_millis(20),
            ..AnalystRunnerConfig::default()
        },
    };
    let task = tokio::spawn(run_analyst(runner, async move {
        let _ = rx.await;
    }));
    (task, tx)
}

async fn completed(log: &EmbeddedLog) -> u64 {
    log.stats()
        .await
        .expect("stats")
        .iter()
        .find(|t| t.name == topics::ANALYSIS_COMPLETED)
        .map_or(0, |t| t.partitions.iter().map(|p| p.end_offset).sum())
}

async fn wait_completed(log: &EmbeddedLog, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while completed(log).await < n {
        assert!(
            Instant::now() < deadline,
            "analysis.completed stayed below {n}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Lets the runner drain what it was given (a skipped update publishes nothing).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test]
async fn incidents_are_analysed_once_per_significant_version_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let parts = open(dir.path()).await;
    let mut topology = Topology::default();
    topology
        .services
        .insert("db".into(), ServiceNode::default());
    topology.services.insert(
        "api".into(),
        ServiceNode {
            depends_on: vec!["db".into()],
            criticality: 1.0,
        },
    );
    topology.services.insert(
        "web".into(),
        ServiceNode {
            depends_on: vec!["api".into()],
            criticality: 1.0,
        },
    );
    parts
        .store
        .put_topology(&topology, "test", BASE_MS)
        .await
        .unwrap();
    let (db, api, web) = (
        anomaly("db", BASE_MS),
        anomaly("api", BASE_MS + 10_000),
        anomaly("web", BASE_MS + 20_000),
    );
    parts
        .store
        .write_anomalies(&[db.clone(), api.clone(), web.clone()])
        .await
        .unwrap();

    let (task, stop) = spawn(&parts);
    let v1 = incident(&["db", "api"], &[&db, &api], BASE_MS + 10_000);
    publish(&parts, topics::INCIDENTS_DETECTED, &v1).await;
    wait_completed(&parts.log, 1).await;
    let stored = parts.store.list_analyses(&v1.id, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    let first = &stored[0];
    assert_eq!(first.id, Analysis::id_for(&v1.id, v1.updated_at));
    assert_eq!(first.root_cause_service.as_deref(), Some("db"));
    assert!(
        first.evidence.iter().any(|e| e.id == db.id),
        "{:?}",
        first.evidence
    );
    let cached = parts
        .cache
        .get(&sightline_cache::keys::analysis(&v1.id))
        .await
        .unwrap()
        .expect("cached");
    let cached: Analysis = serde_json::from_str(&cached).unwrap();
    assert_eq!(&cached, first);

    // An operator's acknowledgement: nothing significant, no new analysis.
    let mut acked = v1.clone();
    acked.status = IncidentStatus::Acknowledged;
    acked.updated_at += 1_000;
    publish(&parts, topics::INCIDENTS_UPDATED, &acked).await;
    settle().await;
    assert_eq!(completed(&parts.log).await, 1);

    // web joined: significant, analysed again (a second analysis, the first kept).
    let v2 = incident(&["db", "api", "web"], &[&db, &api, &web], BASE_MS + 30_000);
    publish(&parts, topics::INCIDENTS_UPDATED, &v2).await;
    wait_completed(&parts.log, 2).await;
    let stored = parts.store.list_analyses(&v1.id, 10).await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored[0].impacted_services.len(), 3, "{:?}", stored[0]);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();

    // A restart reads nothing new: no analysis, no publication.
    let (task, stop) = spawn(&parts);
    settle().await;
    assert_eq!(completed(&parts.log).await, 2);
    // A redelivered version (same updated_at) keeps its one stored analysis.
    publish(&parts, topics::INCIDENTS_DETECTED, &v1).await;
    wait_completed(&parts.log, 3).await;
    assert_eq!(
        parts.store.list_analyses(&v1.id, 10).await.unwrap().len(),
        2
    );
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[tokio::test]
async fn records_that_are_not_incidents_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let parts = open(dir.path()).await;
    let (task, stop) = spawn(&parts);
    parts
        .log
        .append(
            topics::INCIDENTS_DETECTED,
            vec![Record::new(None, b"{not json".to_vec(), BASE_MS)],
        )
        .await
        .unwrap();
    let v1 = incident(&["db"], &[], BASE_MS);
    publish(&parts, topics::INCIDENTS_DETECTED, &v1).await;
    wait_completed(&parts.log, 1).await;
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
