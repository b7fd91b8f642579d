//! The correlation runner end to end on a real embedded log, SQLite store and checkpoint
//! files: a db → checkout cascade of anomalies becomes exactly one incident rooted at db,
//! stored and published once on `incidents.detected`, with its anomalies linked; the
//! runner's own `incidents.updated` publications are no-ops; a restart opens nothing new.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_correlate::CorrelatorConfig;
use sightline_correlate::runner::{CorrelationRunnerConfig, GROUP, RunnerError, run_correlation};
use sightline_log::{EmbeddedLog, EventLog, LogConfig, Record, TopicConfig};
use sightline_model::{Anomaly, Incident, ServiceNode, Severity, Signal, Topology, topics};
use sightline_store::{AnomalyQuery, IncidentQuery, IncidentStore, SqliteStore, Store};
use sightline_stream::FileCheckpointStore;

const BASE_MS: i64 = 1_700_000_000_000;

struct Parts {
    log: Arc<EmbeddedLog>,
    store: Arc<SqliteStore>,
    checkpoints: Arc<FileCheckpointStore>,
}

async fn open(dir: &Path) -> Parts {
    let log = Arc::new(EmbeddedLog::open(dir.join("log"), LogConfig::default()).expect("log"));
    for topic in [
        topics::ANOMALIES,
        topics::SYSTEM_EVENTS,
        topics::INCIDENTS_DETECTED,
        topics::INCIDENTS_UPDATED,
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

fn config() -> CorrelationRunnerConfig {
    CorrelationRunnerConfig {
        correlator: CorrelatorConfig {
            group_wait_ms: 100,
            group_interval_ms: 100,
            ..CorrelatorConfig::default()
        },
        refresh_interval: Duration::from_millis(200),
        checkpoint_interval: Duration::from_millis(50),
        tick_interval: Duration::from_millis(50),
        batch_size: 64,
        retry_backoff: Duration::from_millis(20),
        ..CorrelationRunnerConfig::default()
    }
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
        score: 0.95,
        severity: Severity::High,
        explanation: "latency far above its usual range".into(),
        event_id: None,
        detected_at: t,
    }
}

fn record(a: &Anomaly) -> Record {
    Record::new(
        Some(&a.service_name),
        serde_json::to_vec(a).expect("json"),
        a.timestamp,
    )
}

type Handle = tokio::task::JoinHandle<Result<(), RunnerError>>;

fn spawn(parts: &Parts) -> (Handle, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_correlation(
        parts.log.clone(),
        parts.store.clone(),
        parts.checkpoints.clone(),
        config(),
        async move {
            let _ = rx.await;
        },
    ));
    (task, tx)
}

async fn end_offset(log: &EmbeddedLog, topic: &str) -> u64 {
    log.stats()
        .await
        .expect("stats")
        .iter()
        .find(|t| t.name == topic)
        .map(|t| t.partitions.iter().map(|p| p.end_offset).sum::<u64>())
        .unwrap_or(0)
}

async fn incidents(store: &dyn Store) -> Vec<Incident> {
    store
        .query_incidents(&IncidentQuery {
            limit: 100,
            ..IncidentQuery::default()
        })
        .await
        .expect("incidents")
        .items
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
async fn cascade_becomes_one_incident_rooted_at_db_and_restarts_open_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let parts = open(dir.path()).await;
    // checkout calls db.
    let mut topology = Topology::default();
    topology.services.insert(
        "db".into(),
        ServiceNode {
            depends_on: vec![],
            criticality: 2.0,
        },
    );
    topology.services.insert(
        "checkout".into(),
        ServiceNode {
            depends_on: vec!["db".into()],
            criticality: 1.0,
        },
    );
    parts
        .store
        .put_topology(&topology, "test", BASE_MS)
        .await
        .expect("topology");
    // The correlator times signals by their own clock: these arrive within the 100 ms
    // group wait of the first, so the incident opens with both.
    let cascade = [anomaly("db", BASE_MS), anomaly("checkout", BASE_MS + 20)];
    // The detection runner stores anomalies before publishing them.
    parts
        .store
        .write_anomalies(&cascade)
        .await
        .expect("anomalies");
    parts
        .log
        .append(topics::ANOMALIES, cascade.iter().map(record).collect())
        .await
        .expect("append");

    let (handle, stop) = spawn(&parts);
    let log = parts.log.clone();
    wait_for("an incident on incidents.detected", || {
        let log = log.clone();
        async move { end_offset(&log, topics::INCIDENTS_DETECTED).await >= 1 }
    })
    .await;
    let log = parts.log.clone();
    wait_for("the anomalies committed", || {
        let log = log.clone();
        async move { log.committed(GROUP, topics::ANOMALIES).await.expect("c") == vec![Some(2)] }
    })
    .await;
    // A further signal on checkout folds into the incident: an `Updated` goes out on
    // `incidents.updated`, which the runner reads back (its own echo: a no-op).
    let later = anomaly("checkout", BASE_MS + 40);
    parts
        .store
        .write_anomalies(std::slice::from_ref(&later))
        .await
        .expect("anomaly");
    parts
        .log
        .append(topics::ANOMALIES, vec![record(&later)])
        .await
        .expect("append");
    let log = parts.log.clone();
    wait_for("an update on incidents.updated, read back", || {
        let log = log.clone();
        async move {
            let updated = end_offset(&log, topics::INCIDENTS_UPDATED).await;
            updated >= 1
                && log
                    .committed(GROUP, topics::INCIDENTS_UPDATED)
                    .await
                    .expect("c")
                    == vec![Some(updated)]
        }
    })
    .await;
    // No feedback loop: reading its own updates back publishes nothing further.
    let updated = end_offset(&parts.log, topics::INCIDENTS_UPDATED).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        end_offset(&parts.log, topics::INCIDENTS_UPDATED).await,
        updated
    );
    stop.send(()).expect("stop");
    handle.await.expect("join").expect("runner");

    let stored = incidents(parts.store.as_ref()).await;
    assert_eq!(stored.len(), 1, "{stored:#?}");
    let incident = &stored[0];
    assert_eq!(incident.service_name, "db");
    let mut affected = incident.affected_services.clone();
    affected.sort();
    assert_eq!(affected, ["checkout", "db"]);
    assert_eq!(end_offset(&parts.log, topics::INCIDENTS_DETECTED).await, 1);
    // The published incident is keyed by its id.
    let mut sub = parts
        .log
        .subscribe("test", &[topics::INCIDENTS_DETECTED])
        .await
        .expect("sub");
    let batch = sub.next_batch(10).await.expect("batch");
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].record.key.as_deref(), Some(incident.id.as_bytes()));
    let published: Incident = serde_json::from_slice(&batch[0].record.value).expect("incident");
    assert_eq!(published.id, incident.id);
    // Correlations and anomaly links are in the store.
    let links = parts
        .store
        .correlations_for_incident(&incident.id)
        .await
        .expect("correlations");
    assert!(!links.is_empty());
    let linked = parts
        .store
        .query_anomalies(&AnomalyQuery {
            incident_id: Some(incident.id.clone()),
            limit: 100,
            ..AnomalyQuery::default()
        })
        .await
        .expect("anomalies")
        .items;
    assert_eq!(linked.len(), 3, "{linked:#?}");

    // Restart over the same data: the checkpoint restores the incident, nothing reopens.
    let (handle, stop) = spawn(&parts);
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.send(()).expect("stop");
    handle.await.expect("join").expect("runner");
    assert_eq!(incidents(parts.store.as_ref()).await.len(), 1);
    assert_eq!(end_offset(&parts.log, topics::INCIDENTS_DETECTED).await, 1);
}
