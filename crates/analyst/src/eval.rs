//! Root-cause accuracy of the built-in analyst on the simulator's incident scenario, with
//! ground truth (for tests and `sightline bench rca`).
//!
//! For each seed, [`run_seed`] replays the incidents scenario
//! ([`sightline_sim::scenario::incidents::Scenario`]) in simulated time through the real
//! pipeline pieces, in-process and deterministically:
//!
//! - every metric point through the stream crate's [`RollupJob`] (1-minute rollups into
//!   `aggregations`) and the detectors' [`SeriesDetectors`] (default ensemble);
//! - every event into `raw_events`/`processed_events` and through the
//!   [`NewPatternDetector`];
//! - every anomaly through the [`Correlator`] (default config, the scenario's topology),
//!   whose outputs are written like the correlation runner writes them (incidents
//!   upserted, anomalies linked). Raw events are *not* fed to the correlator here: the
//!   scenario emits a steady trickle of sampled `ERROR` events on every service (its
//!   baseline error rate), and at the correlator's default `min_event_severity = high`
//!   each of them counts as a signal, so one incident would stay open for the whole run
//!   and swallow every fault. Error events still reach incidents through the detectors
//!   (`new_pattern` anomalies carry their event id) and the analyst still sees every
//!   stored event (deployments, errors) through its context;
//! - each incident, **when it is opened**, through [`Analyst::analyze`] with a
//!   [`StoreContext`] over the same real SQLite store: the code path the runner uses, with
//!   the data the runner would have at that moment — with an LLM provider first when
//!   [`EvalConfig::llm`] is set (`sightline bench rca --llm`), the built-in analyst as its
//!   fallback, and the provider's waiting time measured apart from sightline's own.
//!
//! An incident is a *case* when it started during a fault (from 1 minute before its start
//! to 2 minutes after its end) and touches one of the fault's affected services; it is
//! scored against that fault's `root_cause_service`: top-1 when the analysis names it,
//! top-3 when it is among the built-in ranking's first three. Incidents outside every
//! fault are counted as `unmatched` (false alarms are the detector's and correlator's
//! business, not the analyst's). The per-seed error-rate detector of the detection runner
//! (error bursts per service) is not replayed here: its windowing lives in the runner.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use sightline_correlate::{Correlator, CorrelatorConfig, Output};
use sightline_detect::SeriesDetectors;
use sightline_detect::new_pattern::{NewPatternConfig, NewPatternDetector};
use sightline_model::{AnalystKind, Anomaly, Incident, IngestContext, SourceType, decode};
use sightline_sim::scenario::incidents::{
    Fault, FaultKind, GroundTruth, IncidentsConfig, Item, Scenario,
};
use sightline_store::{LoggedEvent, RollupRow, SqliteStore, Store};
use sightline_stream::rollup::{RollupConfig, RollupJob, RollupOutput};
use sightline_stream::runner::rollup_row;

use crate::context::{ContextLimits, StoreContext};
use crate::llm::{LlmAnalyst, LlmConfig};
use crate::{Analyst, AnalystError};

/// 2023-11-14T22:13:20Z: the scenario's default start.
pub const DEFAULT_START_MS: i64 = 1_700_000_000_000;

/// What to evaluate.
#[derive(Clone, Debug, PartialEq)]
pub struct EvalConfig {
    /// One scenario run per seed.
    pub seeds: Vec<u64>,
    /// Simulated time per run.
    pub duration: Duration,
    /// Metric interval.
    pub step: Duration,
    /// Faults per run (`None`: the scenario's default, one of each kind per day).
    pub faults: Option<usize>,
    /// Scenario start, epoch milliseconds.
    pub start_ms: i64,
    /// Analyse through this provider (the built-in analyst as its fallback) instead of
    /// the built-in analyst alone.
    pub llm: Option<LlmConfig>,
}

impl Default for EvalConfig {
    /// Three seeds of 12 simulated hours with 10 faults each (two of each kind), 10 s steps.
    fn default() -> Self {
        Self {
            seeds: vec![1, 2, 3],
            duration: Duration::from_secs(12 * 3600),
            step: Duration::from_secs(10),
            faults: Some(10),
            start_ms: DEFAULT_START_MS,
            llm: None,
        }
    }
}

/// One scored incident.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    /// The scenario seed.
    pub seed: u64,
    /// The fault it was matched to.
    pub fault_id: String,
    /// The fault's kind.
    pub fault_kind: FaultKind,
    /// The true root-cause service.
    pub truth: String,
    /// The incident.
    pub incident_id: String,
    /// The correlator's attribution.
    pub attributed_to: String,
    /// The analysis's root-cause service.
    pub predicted: Option<String>,
    /// The built-in ranking's first three services.
    pub top3: Vec<String>,
    /// The analysis's confidence.
    pub confidence: f64,
    /// Time to gather context and analyse, milliseconds.
    pub latency_ms: u64,
    /// Who answered: the LLM, or the built-in analyst (alone or as the fallback).
    pub answered_by: AnalystKind,
    /// Of `latency_ms`, the time spent waiting for the LLM provider, milliseconds.
    pub provider_ms: u64,
}

impl CaseResult {
    /// The analysis named the true root cause.
    pub fn top1(&self) -> bool {
        self.predicted.as_deref() == Some(self.truth.as_str())
    }

    /// The true root cause is among the first three candidates.
    pub fn top3_hit(&self) -> bool {
        self.top3.contains(&self.truth)
    }
}

/// The outcome of one seed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeedResult {
    /// The seed.
    pub seed: u64,
    /// Faults injected.
    pub faults: usize,
    /// Faults with at least one case.
    pub faults_detected: usize,
    /// Incidents opened outside every fault.
    pub unmatched_incidents: usize,
    /// Anomalies the detectors raised.
    pub anomalies: usize,
    /// Incidents the correlator opened.
    pub incidents: usize,
    /// The scored incidents.
    pub cases: Vec<CaseResult>,
}

/// The whole evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvalReport {
    /// Share of cases whose analysis named the true root cause.
    pub top1: f64,
    /// Share of cases whose true root cause was among the first three candidates.
    pub top3: f64,
    /// Number of cases.
    pub cases: usize,
    /// 99th percentile of analysis latency (context + analysis), milliseconds.
    pub latency_p99_ms: u64,
    /// 99th percentile of sightline's own share of that latency (without the time spent
    /// waiting for an LLM provider), milliseconds.
    pub own_latency_p99_ms: u64,
    /// Cases the LLM answered (the rest: the built-in analyst).
    pub llm_answered: usize,
    /// Per seed.
    pub seeds: Vec<SeedResult>,
}

impl EvalReport {
    /// Summarises per-seed results.
    pub fn from_seeds(seeds: Vec<SeedResult>) -> Self {
        let cases: Vec<&CaseResult> = seeds.iter().flat_map(|s| &s.cases).collect();
        let n = cases.len();
        let share = |hits: usize| if n == 0 { 0.0 } else { hits as f64 / n as f64 };
        let p99 = |latency: fn(&CaseResult) -> u64| {
            let mut all: Vec<u64> = cases.iter().map(|c| latency(c)).collect();
            all.sort_unstable();
            all.get((all.len() * 99).div_ceil(100).saturating_sub(1))
                .copied()
                .unwrap_or(0)
        };
        Self {
            top1: share(cases.iter().filter(|c| c.top1()).count()),
            top3: share(cases.iter().filter(|c| c.top3_hit()).count()),
            cases: n,
            latency_p99_ms: p99(|c| c.latency_ms),
            own_latency_p99_ms: p99(|c| c.latency_ms.saturating_sub(c.provider_ms)),
            llm_answered: cases
                .iter()
                .filter(|c| c.answered_by == AnalystKind::Llm)
                .count(),
            seeds,
        }
    }
}

/// Runs every seed of `config`, each in its own SQLite file under `dir`.
pub async fn run(config: &EvalConfig, dir: &Path) -> Result<EvalReport, AnalystError> {
    let mut seeds = Vec::new();
    for &seed in &config.seeds {
        seeds.push(run_seed(config, seed, dir).await?);
    }
    Ok(EvalReport::from_seeds(seeds))
}

/// What the replay has produced but not yet written to the store.
#[derive(Default)]
struct Pending {
    events: Vec<LoggedEvent>,
    anomalies: Vec<Anomaly>,
    rollups: Vec<RollupRow>,
    incidents: BTreeMap<String, Incident>,
    links: Vec<(String, Vec<String>)>,
}

impl Pending {
    async fn flush(&mut self, store: &dyn Store) -> Result<(), AnalystError> {
        store.write_events(&self.events).await?;
        store.write_anomalies(&self.anomalies).await?;
        store.write_rollups(&self.rollups).await?;
        let incidents: Vec<Incident> = std::mem::take(&mut self.incidents).into_values().collect();
        store.upsert_incidents(&incidents).await?;
        for (incident, ids) in self.links.drain(..) {
            store.link_anomalies(&incident, &ids).await?;
        }
        self.events.clear();
        self.anomalies.clear();
        self.rollups.clear();
        Ok(())
    }

    fn rollups(&mut self, out: &mut RollupOutput) {
        self.rollups
            .extend(out.rollups.drain(..).map(|r| rollup_row(&r)));
        out.event_counts.clear();
        out.late_metrics.clear();
        out.late_events.clear();
    }
}

/// Runs one seed; the store file is `dir/eval-{seed}.db`.
pub async fn run_seed(
    config: &EvalConfig,
    seed: u64,
    dir: &Path,
) -> Result<SeedResult, AnalystError> {
    let scenario = Scenario::with_config(
        seed,
        config.start_ms,
        config.duration,
        config.step,
        IncidentsConfig {
            run_id: format!("eval{seed}"),
            faults: config.faults,
            ..IncidentsConfig::default()
        },
    );
    let truth = scenario.ground_truth().clone();
    let path = dir.join(format!("eval-{seed}.db"));
    let _ = std::fs::remove_file(&path);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path).await?);
    store
        .put_topology(&truth.topology, "eval", config.start_ms)
        .await?;
    let mut analyst = Analyst::new(Arc::new(StoreContext::new(
        store.clone(),
        ContextLimits::default(),
    )));
    if let Some(llm) = &config.llm {
        analyst = analyst.with_llm(Arc::new(LlmAnalyst::new(llm.clone())?));
    }
    let eval_err = |e: &dyn std::fmt::Display| AnalystError::Eval(e.to_string());
    let mut series = SeriesDetectors::new(sightline_detect::DetectConfig::default())
        .map_err(|e| eval_err(&e))?;
    let mut patterns = NewPatternDetector::new(NewPatternConfig::default());
    let mut correlator = Correlator::new(CorrelatorConfig::default(), truth.topology.clone())
        .map_err(|e| eval_err(&e))?;
    let mut rollups = RollupJob::new(RollupConfig::default()).map_err(|e| eval_err(&e))?;
    let mut rollup_out = RollupOutput::default();
    let mut pending = Pending::default();
    let mut cases = Vec::new();
    let mut unmatched = 0;
    let mut anomaly_count = 0;
    let mut incident_count = 0;
    let mut offset: u64 = 0;
    let mut last_tick = i64::MIN;
    let mut buf = Vec::new();

    for item in scenario {
        let t = item.timestamp_ms();
        let ctx = IngestContext::new(SourceType::Http, t, format!("eval-{offset}"));
        buf.clear();
        if item.write_json(&mut buf).is_err() {
            continue;
        }
        let mut outputs = Vec::new();
        match &item {
            Item::Metric(_) => {
                let Ok(metric) = decode::metric(&buf, &ctx) else {
                    continue;
                };
                rollups.process_metric(0, offset, &metric, &mut rollup_out);
                for a in series.observe(&metric, t) {
                    anomaly_count += 1;
                    outputs.extend(correlator.on_anomaly(&a, t));
                    pending.anomalies.push(a);
                }
            }
            Item::Event(_) => {
                let Ok(event) = decode::system_event(&buf, &ctx) else {
                    continue;
                };
                if let Some(a) = patterns.observe(&event, t) {
                    anomaly_count += 1;
                    outputs.extend(correlator.on_anomaly(&a, t));
                    pending.anomalies.push(a);
                }
                pending.events.push(LoggedEvent {
                    payload: String::from_utf8_lossy(&buf).into_owned(),
                    event,
                    partition: 0,
                    offset,
                });
            }
        }
        offset += 1;
        if t >= last_tick.saturating_add(1_000) {
            last_tick = t;
            outputs.extend(correlator.tick(t));
            rollups.tick(t, &mut rollup_out);
        }
        pending.rollups(&mut rollup_out);
        let opened = absorb(&mut pending, outputs);
        incident_count += opened.len();
        for incident in opened {
            pending.flush(store.as_ref()).await?;
            match match_fault(&truth, &incident) {
                Some(fault) => {
                    cases.push(score_case(&analyst, seed, fault, &incident, t).await?);
                }
                None => unmatched += 1,
            }
        }
    }
    let end = truth.end_ms + 3_600_000;
    let outputs = correlator.tick(end);
    rollups.flush(&mut rollup_out);
    pending.rollups(&mut rollup_out);
    let opened = absorb(&mut pending, outputs);
    incident_count += opened.len();
    for incident in opened {
        pending.flush(store.as_ref()).await?;
        match match_fault(&truth, &incident) {
            Some(fault) => cases.push(score_case(&analyst, seed, fault, &incident, end).await?),
            None => unmatched += 1,
        }
    }
    pending.flush(store.as_ref()).await?;
    let detected: std::collections::BTreeSet<&str> =
        cases.iter().map(|c| c.fault_id.as_str()).collect();
    Ok(SeedResult {
        seed,
        faults: truth.faults.len(),
        faults_detected: detected.len(),
        unmatched_incidents: unmatched,
        anomalies: anomaly_count,
        incidents: incident_count,
        cases,
    })
}

/// Records the correlator's outputs like the correlation runner writes them; returns the
/// incidents opened.
fn absorb(pending: &mut Pending, outputs: Vec<Output>) -> Vec<Incident> {
    let mut opened = Vec::new();
    for o in outputs {
        let (incident, is_open) = match o {
            Output::Opened(i) => (i, true),
            Output::Updated(i) => (i, false),
            Output::Correlated(c) => {
                if c.source_id.starts_with("an-") {
                    pending
                        .links
                        .push((c.incident_id.clone(), vec![c.source_id.clone()]));
                }
                continue;
            }
            Output::Suppressed(_) => continue,
        };
        if !incident.anomaly_ids.is_empty() {
            pending
                .links
                .push((incident.id.clone(), incident.anomaly_ids.clone()));
        }
        if is_open {
            opened.push(incident.clone());
        }
        pending.incidents.insert(incident.id.clone(), incident);
    }
    opened
}

/// The fault an incident belongs to: it started during the fault (1 minute before its
/// start to 2 minutes after its end) and touches one of its affected services; the one
/// sharing the most services wins.
pub fn match_fault<'a>(truth: &'a GroundTruth, incident: &Incident) -> Option<&'a Fault> {
    let started = incident.detected_at;
    truth
        .faults
        .iter()
        .filter(|f| f.start_ms - 60_000 <= started && started <= f.end_ms + 120_000)
        .map(|f| {
            let shared = incident
                .affected_services
                .iter()
                .chain(std::iter::once(&incident.service_name))
                .filter(|s| f.affected_services.contains(s))
                .count();
            (shared, f)
        })
        .filter(|(shared, _)| *shared > 0)
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.start_ms.cmp(&a.1.start_ms)))
        .map(|(_, f)| f)
}

async fn score_case(
    analyst: &Analyst,
    seed: u64,
    fault: &Fault,
    incident: &Incident,
    now: i64,
) -> Result<CaseResult, AnalystError> {
    let waited = || {
        analyst
            .llm()
            .map_or(Duration::ZERO, LlmAnalyst::provider_time)
    };
    let before = waited();
    let analysis = analyst.analyze(incident, now).await?;
    let provider = waited().saturating_sub(before);
    let ranked = analyst.rank(incident).await?;
    Ok(CaseResult {
        seed,
        fault_id: fault.id.clone(),
        fault_kind: fault.kind,
        truth: fault.root_cause_service.clone(),
        incident_id: incident.id.clone(),
        attributed_to: incident.service_name.clone(),
        predicted: analysis.root_cause_service,
        top3: ranked.into_iter().take(3).map(|c| c.service).collect(),
        confidence: analysis.confidence,
        latency_ms: analysis.latency_ms,
        answered_by: analysis.analyst,
        provider_ms: u64::try_from(provider.as_millis()).unwrap_or(u64::MAX),
    })
}
