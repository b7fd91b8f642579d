//! The analyst runner: every incident the correlator publishes gets an analysis, stored,
//! published and cached, exactly once per incident version.
//!
//! [`run_analyst`] joins consumer group [`GROUP`] on `incidents.detected` +
//! `incidents.updated` and loops:
//!
//! 1. **per batch** — decodes each incident (JSON; undecodable records are counted, logged
//!    and skipped) and keeps the newest version of each incident in the batch. A detected
//!    incident is always analysed; an updated one only when the update is **significant**
//!    ([`significant`]): a service joined, the severity went up, or its anomalies at least
//!    doubled since the version last analysed. Resolved incidents and operator changes
//!    (acknowledge, assign, note) are not re-analysed.
//! 2. **per incident to analyse** — the analysis id is deterministic
//!    ([`Analysis::id_for`]: incident id + `updated_at`). When the store already holds
//!    it (a redelivery after a crash), the stored analysis is re-published without being
//!    recomputed; otherwise [`Analyst::analyze`] runs, the result is upserted into
//!    `ai_analyses` (retried until it succeeds or shutdown), then published on
//!    `analysis.completed` (key = incident id), having been cached as
//!    `analysis:{incidentId}` for an hour just before (a cache failure is logged and
//!    counted, never fatal).
//! 3. **after the batch** — commits the offsets of the batch.
//!
//! Why a restart neither loses nor duplicates: offsets are committed only after every
//! analysis of the batch is stored and published; a crash before the commit redelivers
//! the batch, whose analyses have the same ids, so the store upserts (and the topic may
//! carry a re-publication of the same analysis: at least once there, keyed by incident).
//!
//! What was last analysed per incident is remembered in memory (bounded, oldest evicted);
//! after a restart the latest stored analysis stands in for it (its impacted services).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_cache::Cache;
use sightline_log::{Delivered, EventLog, Record};
use sightline_model::clock::now_ms;
use sightline_model::{Analysis, Incident, IncidentStatus, Severity, topics};
use sightline_store::Store;
use sightline_stream::SourcePositions;

use crate::{Analyst, AnalystError};

/// The consumer group the runner commits its positions under.
pub const GROUP: &str = "analyst";

/// The topics the runner consumes.
pub const TOPICS: [&str; 2] = [topics::INCIDENTS_DETECTED, topics::INCIDENTS_UPDATED];

/// Metric names of the analyst runner.
pub mod telemetry {
    /// Incidents read, by `topic`.
    pub const INCIDENTS_IN: &str = "sightline_analyst_incidents_in_total";
    /// Updates not analysed because nothing significant changed.
    pub const SKIPPED: &str = "sightline_analyst_skipped_total";
    /// Records that could not be decoded.
    pub const REJECTED: &str = "sightline_analyst_rejected_total";
    /// Analyses stored and published, by `analyst` (`builtin`, `llm`).
    pub const ANALYSES_OUT: &str = "sightline_analyst_analyses_total";
    /// Analyses re-published from the store after a redelivery.
    pub const REPUBLISHED: &str = "sightline_analyst_republished_total";
    /// Failed attempts (store unavailable while gathering context or writing); retried.
    pub const FAILED: &str = "sightline_analyst_failures_total";
    /// Failed cache writes (the analysis is stored and published anyway).
    pub const CACHE_ERRORS: &str = "sightline_analyst_cache_errors_total";
    /// Time to gather context and analyse, seconds.
    pub const LATENCY_SECONDS: &str = "sightline_analyst_latency_seconds";
    /// From the incident version's `updated_at` to its analysis being published, seconds.
    pub const END_TO_END_SECONDS: &str = "sightline_analyst_end_to_end_seconds";
}

/// Settings of the analyst runner.
#[derive(Clone, Debug)]
pub struct AnalystRunnerConfig {
    /// Most records read at a time. Default 500.
    pub batch_size: usize,
    /// Pause before retrying a failed store operation. Default 500 ms.
    pub retry_backoff: Duration,
    /// How long `analysis:{incidentId}` stays in the cache. Default 1 h.
    pub cache_ttl: Duration,
    /// How many incidents' last analysed versions are remembered. Default 10,000.
    pub max_remembered: usize,
}

impl Default for AnalystRunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            retry_backoff: Duration::from_millis(500),
            cache_ttl: sightline_cache::keys::ANALYSIS_TTL,
            max_remembered: 10_000,
        }
    }
}

/// What an analysis of an incident version was based on, to judge later updates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Analysed {
    /// `service_name` and the affected services.
    pub services: BTreeSet<String>,
    /// How many anomalies the incident held.
    pub anomalies: usize,
    /// Its severity, if known.
    pub severity: Option<Severity>,
}

impl Analysed {
    /// What `incident` holds now.
    pub fn of(incident: &Incident) -> Self {
        Self {
            services: services(incident),
            anomalies: incident.anomaly_ids.len(),
            severity: Some(incident.severity),
        }
    }
}

fn services(incident: &Incident) -> BTreeSet<String> {
    std::iter::once(&incident.service_name)
        .chain(&incident.affected_services)
        .cloned()
        .collect()
}

fn rank(s: Severity) -> usize {
    Severity::ALL
        .iter()
        .position(|x| *x == s)
        .unwrap_or(Severity::ALL.len())
}

/// Whether an update of an incident deserves a new analysis, given what the last one was
/// based on: a service joined, the severity rose, or the anomalies at least doubled.
/// Resolved incidents are never re-analysed.
pub fn significant(previous: &Analysed, incident: &Incident) -> bool {
    if incident.status == IncidentStatus::Resolved {
        return false;
    }
    let now = Analysed::of(incident);
    let joined = !now.services.is_subset(&previous.services);
    let worse = previous
        .severity
        .is_some_and(|p| rank(incident.severity) < rank(p));
    let grew = now.anomalies >= previous.anomalies.max(1) * 2;
    joined || worse || grew
}

/// A bounded memory of the last analysed version per incident (oldest evicted first).
#[derive(Debug, Default)]
struct Memory {
    map: HashMap<String, Analysed>,
    order: VecDeque<String>,
    cap: usize,
}

impl Memory {
    fn insert(&mut self, id: &str, analysed: Analysed) {
        if self.map.insert(id.to_owned(), analysed).is_none() {
            self.order.push_back(id.to_owned());
            while self.order.len() > self.cap.max(1) {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// The runner's collaborators.
#[derive(Debug, Clone)]
pub struct AnalystRunner {
    /// The event log (input and `analysis.completed`).
    pub log: Arc<dyn EventLog>,
    /// Where analyses are stored.
    pub store: Arc<dyn Store>,
    /// Where analyses are cached (`analysis:{incidentId}`), if anywhere.
    pub cache: Option<Arc<dyn Cache>>,
    /// The analyst.
    pub analyst: Analyst,
    /// Settings.
    pub config: AnalystRunnerConfig,
}

/// Runs the analyst until `shutdown` completes (then returns `Ok`), or until the log
/// fails. See the module docs.
pub async fn run_analyst(
    runner: AnalystRunner,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AnalystError> {
    let mut shutdown = std::pin::pin!(shutdown);
    sightline_stream::runner::ensure_builtin_topics(
        runner.log.as_ref(),
        &[
            topics::INCIDENTS_DETECTED,
            topics::INCIDENTS_UPDATED,
            topics::ANALYSIS_COMPLETED,
        ],
    )
    .await?;
    let mut sub = runner.log.subscribe(GROUP, &TOPICS).await?;
    let mut memory = Memory {
        cap: runner.config.max_remembered,
        ..Memory::default()
    };
    tracing::info!(group = GROUP, "analyst runner started");
    loop {
        let batch = tokio::select! {
            biased;
            () = &mut shutdown => break,
            batch = sub.next_batch(runner.config.batch_size.max(1)) => batch?,
        };
        if batch.is_empty() {
            continue;
        }
        let mut positions = SourcePositions::default();
        let todo = select(&batch, &mut positions);
        for (incident, detected) in todo {
            match handle(&runner, &mut memory, &incident, detected, &mut shutdown).await? {
                Some(()) => {}
                None => {
                    tracing::info!("analyst runner stopped during a retry");
                    return Ok(());
                }
            }
        }
        sightline_stream::runner::commit_positions(sub.as_mut(), &positions).await?;
    }
    tracing::info!("analyst runner stopped");
    Ok(())
}

/// Decodes a batch: the newest version of each incident, with whether any of its records
/// came from `incidents.detected`, in first-seen order.
fn select(batch: &[Delivered], positions: &mut SourcePositions) -> Vec<(Incident, bool)> {
    let mut out: Vec<(Incident, bool)> = Vec::new();
    for d in batch {
        positions.advance(&d.topic, d.partition, d.offset);
        metrics::counter!(telemetry::INCIDENTS_IN, "topic" => d.topic.to_string()).increment(1);
        let incident = match serde_json::from_slice::<Incident>(&d.record.value) {
            Ok(i) => i,
            Err(error) => {
                metrics::counter!(telemetry::REJECTED).increment(1);
                tracing::warn!(
                    topic = %d.topic, partition = d.partition, offset = d.offset, %error,
                    "analyst: skipping a record that is not an incident"
                );
                continue;
            }
        };
        let detected = &*d.topic == topics::INCIDENTS_DETECTED;
        match out.iter_mut().find(|(i, _)| i.id == incident.id) {
            Some(slot) => {
                if incident.updated_at >= slot.0.updated_at {
                    slot.0 = incident;
                }
                slot.1 |= detected;
            }
            None => out.push((incident, detected)),
        }
    }
    out
}

/// Analyses one incident if needed; `None` when shutdown arrived during a retry.
async fn handle(
    runner: &AnalystRunner,
    memory: &mut Memory,
    incident: &Incident,
    detected: bool,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Result<Option<()>, AnalystError> {
    let backoff = runner.config.retry_backoff;
    if !detected {
        let previous = match memory.map.get(&incident.id) {
            Some(p) => Some(p.clone()),
            None => {
                let Some(latest) = retry(telemetry::FAILED, backoff, shutdown, || {
                    runner.store.latest_analysis(&incident.id)
                })
                .await
                else {
                    return Ok(None);
                };
                latest.map(|a| Analysed {
                    services: a.impacted_services.into_iter().collect(),
                    anomalies: 0,
                    severity: None,
                })
            }
        };
        if let Some(previous) = previous
            && !significant(&previous, incident)
        {
            metrics::counter!(telemetry::SKIPPED).increment(1);
            return Ok(Some(()));
        }
        if incident.status == IncidentStatus::Resolved {
            metrics::counter!(telemetry::SKIPPED).increment(1);
            return Ok(Some(()));
        }
    }
    let id = Analysis::id_for(&incident.id, incident.updated_at);
    let Some(stored) = retry(telemetry::FAILED, backoff, shutdown, || {
        runner.store.get_analysis(&id)
    })
    .await
    else {
        return Ok(None);
    };
    let analysis = match stored {
        Some(a) => {
            metrics::counter!(telemetry::REPUBLISHED).increment(1);
            a
        }
        None => {
            let started = Instant::now();
            let Some(a) = retry_analysis(runner, incident, shutdown).await else {
                return Ok(None);
            };
            metrics::histogram!(telemetry::LATENCY_SECONDS).record(started.elapsed().as_secs_f64());
            if retry(telemetry::FAILED, backoff, shutdown, || {
                runner.store.upsert_analysis(&a)
            })
            .await
            .is_none()
            {
                return Ok(None);
            }
            metrics::counter!(telemetry::ANALYSES_OUT, "analyst" => a.analyst.as_str())
                .increment(1);
            a
        }
    };
    publish(runner, &analysis).await?;
    let delay_ms = now_ms().saturating_sub(incident.updated_at).max(0);
    metrics::histogram!(telemetry::END_TO_END_SECONDS).record(delay_ms as f64 / 1000.0);
    tracing::info!(
        incident = %incident.id,
        analysis = %analysis.id,
        root_cause = analysis.root_cause_service.as_deref().unwrap_or("-"),
        confidence = analysis.confidence,
        "analysis completed"
    );
    memory.insert(&incident.id, Analysed::of(incident));
    Ok(Some(()))
}

async fn retry_analysis(
    runner: &AnalystRunner,
    incident: &Incident,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> Option<Analysis> {
    loop {
        match runner.analyst.analyze(incident, now_ms()).await {
            Ok(a) => return Some(a),
            Err(error) => {
                metrics::counter!(telemetry::FAILED).increment(1);
                tracing::warn!(%error, incident = %incident.id, "analyst: analysis failed; retrying");
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => return None,
                    () = tokio::time::sleep(runner.config.retry_backoff) => {}
                }
            }
        }
    }
}

/// Retries a store operation every `backoff` until it succeeds (`Some`) or shutdown
/// arrives (`None`); each failure is logged and counted in the counter `failed`.
pub(crate) async fn retry<T, F, Fut>(
    failed: &'static str,
    backoff: Duration,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sightline_store::StoreError>>,
{
    loop {
        match op().await {
            Ok(v) => return Some(v),
            Err(error) => {
                metrics::counter!(failed).increment(1);
                tracing::warn!(%error, "store operation failed; retrying");
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => return None,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
}

/// Caches an analysis, then publishes it on `analysis.completed` (cache first, so a
/// consumer of the topic finds it warm).
pub async fn publish(runner: &AnalystRunner, analysis: &Analysis) -> Result<(), AnalystError> {
    let value = serde_json::to_vec(analysis).map_err(|e| AnalystError::Encode(e.to_string()))?;
    cache(runner.cache.as_deref(), analysis, runner.config.cache_ttl).await;
    runner
        .log
        .append(
            topics::ANALYSIS_COMPLETED,
            vec![Record::new(
                Some(&analysis.incident_id),
                value.clone(),
                analysis.created_at,
            )],
        )
        .await?;
    Ok(())
}

/// Caches an analysis as `analysis:{incidentId}`; failures are logged and counted.
pub async fn cache(cache: Option<&dyn Cache>, analysis: &Analysis, ttl: Duration) {
    let Some(cache) = cache else { return };
    let Ok(text) = serde_json::to_string(analysis) else {
        return;
    };
    let key = sightline_cache::keys::analysis(&analysis.incident_id);
    if let Err(error) = cache.set(&key, &text, Some(ttl)).await {
        metrics::counter!(telemetry::CACHE_ERRORS).increment(1);
        tracing::warn!(%error, key, "analyst: caching the analysis failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(services: &[&str], anomalies: usize, severity: Severity) -> Incident {
        Incident {
            id: "inc-1".into(),
            title: String::new(),
            description: String::new(),
            severity,
            score: 1.0,
            status: IncidentStatus::Open,
            service_name: services[0].into(),
            affected_services: services.iter().map(|s| s.to_string()).collect(),
            detected_at: 0,
            updated_at: 0,
            acknowledged_at: None,
            resolved_at: None,
            correlation_id: String::new(),
            fingerprint: String::new(),
            labels: Default::default(),
            event_ids: vec![],
            anomaly_ids: (0..anomalies).map(|i| format!("an-{i}")).collect(),
            occurrences: 1,
            assignee: None,
            flapping: false,
            timeline: vec![],
        }
    }

    #[test]
    fn only_significant_updates_are_reanalysed() {
        let first = incident(&["db", "api"], 3, Severity::Medium);
        let seen = Analysed::of(&first);
        assert!(!significant(&seen, &first), "the same version");
        assert!(!significant(
            &seen,
            &incident(&["db", "api"], 5, Severity::Medium)
        ));
        assert!(significant(
            &seen,
            &incident(&["db", "api"], 6, Severity::Medium)
        ));
        assert!(significant(
            &seen,
            &incident(&["db", "api", "web"], 3, Severity::Medium)
        ));
        assert!(significant(
            &seen,
            &incident(&["db", "api"], 3, Severity::High)
        ));
        assert!(!significant(
            &seen,
            &incident(&["db", "api"], 3, Severity::Low)
        ));
        let mut resolved = incident(&["db", "api", "web"], 9, Severity::Critical);
        resolved.status = IncidentStatus::Resolved;
        assert!(!significant(&seen, &resolved));
    }

    #[test]
    fn memory_is_bounded_and_evicts_the_oldest() {
        let mut m = Memory {
            cap: 2,
            ..Memory::default()
        };
        let a = Analysed::of(&incident(&["db"], 1, Severity::Low));
        m.insert("a", a.clone());
        m.insert("b", a.clone());
        m.insert("a", a.clone());
        m.insert("c", a);
        assert_eq!(m.map.len(), 2);
        assert!(!m.map.contains_key("a"));
    }
}
