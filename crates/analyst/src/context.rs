//! Context: everything an analyst may look at to explain one incident, gathered once and
//! handed to the built-in analyst or to the LLM prompt.
//!
//! An analysis is only as good as what it sees, and only as trustworthy as the ids it can
//! cite. [`AnalysisContext`] holds the incident, its anomalies and events, anomalies of
//! its topology neighbours, recent `DEPLOYMENT` events, metric shifts computed from the
//! stored 1-minute rollups of the affected services and their neighbours, similar past
//! incidents with the root causes operators confirmed or refuted, and the topology.
//! [`AnalysisContext::known_ids`] is the set the evidence check accepts: an id not in it
//! was invented.
//!
//! [`ContextSource`] is the seam: [`StoreContext`] reads it all from a
//! [`Store`], which is what the runner, the API and the
//! evaluation use.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Serialize;
use sightline_model::{Anomaly, Event, EvidenceKind, FeedbackVerdict, Incident, Topology};
use sightline_store::{
    AnomalyQuery, EventQuery, MAX_PAGE, RollupQuery, RollupRow, RootCauseVerdict, SimilarIncidents,
    Store,
};

use crate::AnalystError;

/// The event type of deployments and config changes.
pub const DEPLOYMENT: &str = "DEPLOYMENT";

/// How far around an incident the context reaches.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContextLimits {
    /// How long before the incident's first signal metrics count as its baseline and
    /// neighbours' anomalies are looked at, milliseconds. Default 1 h (a fault's first
    /// anomalies may precede a late incident of one of its symptoms by its duration).
    pub lookback_ms: i64,
    /// How long before the first signal a deployment counts as "preceding" it,
    /// milliseconds. Default 1 h.
    pub deployment_lookback_ms: i64,
    /// Most incident events loaded (by id). Default 50.
    pub max_events: usize,
    /// Most similar past incidents. Default 20.
    pub max_similar: u32,
}

impl Default for ContextLimits {
    fn default() -> Self {
        Self {
            lookback_ms: 60 * 60_000,
            deployment_lookback_ms: 60 * 60_000,
            max_events: 50,
            max_similar: 20,
        }
    }
}

/// How one metric of one service moved around the incident, from stored rollups.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricShift {
    /// The service.
    pub service: String,
    /// The metric type.
    pub metric_type: String,
    /// Mean of the 1-minute averages in the baseline (before the first signal).
    pub baseline: f64,
    /// Spread (standard deviation) of those averages.
    pub baseline_spread: f64,
    /// The most extreme 1-minute average since shortly before the first signal.
    pub peak: f64,
    /// When the peak window started, epoch milliseconds.
    pub peak_at: i64,
    /// `(peak - baseline) / max(spread, 1 % of |baseline|)`: how unusual the peak is.
    pub deviation: f64,
    /// The rollup row id of the peak window (citable evidence).
    pub rollup_id: String,
}

/// A similar past incident and what operators said about its analysis.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PastCase {
    /// The past incident's id.
    pub incident_id: String,
    /// The service the correlator attributed it to.
    pub service_name: String,
    /// Every service it touched.
    pub affected_services: Vec<String>,
    /// When it was detected.
    pub detected_at: i64,
    /// Verdicts on its analyses, with the root cause each named.
    pub verdicts: Vec<RootCauseVerdict>,
}

/// Everything known about an incident when it is analysed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AnalysisContext {
    /// The incident (the version being analysed).
    pub incident: Incident,
    /// The service graph.
    pub topology: Topology,
    /// The incident's anomalies, oldest first.
    pub anomalies: Vec<Anomaly>,
    /// Anomalies of the affected services' neighbours (and of affected services) in the
    /// look-back window that are not the incident's, oldest first.
    pub nearby_anomalies: Vec<Anomaly>,
    /// The incident's events, oldest first.
    pub events: Vec<Event>,
    /// `DEPLOYMENT` events of the affected services and their neighbours shortly before
    /// and during the incident, oldest first.
    pub deployments: Vec<Event>,
    /// Metric shifts of the affected services and their neighbours, most unusual first.
    pub metric_shifts: Vec<MetricShift>,
    /// Similar past incidents, newest first.
    pub similar: Vec<PastCase>,
    /// Verdicts on past analyses that named one of the candidate services as root cause.
    pub root_verdicts: Vec<RootCauseVerdict>,
}

impl AnalysisContext {
    /// When the incident's first signal happened (its earliest anomaly or event), or its
    /// detection time when it has none.
    pub fn onset(&self) -> i64 {
        onset(&self.incident, &self.anomalies, &self.events)
    }

    /// Every id this context holds, with its kind: the only ids an analysis may cite.
    pub fn known_ids(&self) -> BTreeMap<String, EvidenceKind> {
        let mut ids = BTreeMap::new();
        for a in self.anomalies.iter().chain(&self.nearby_anomalies) {
            ids.insert(a.id.clone(), EvidenceKind::Anomaly);
        }
        for e in &self.events {
            ids.insert(e.event_id.clone(), EvidenceKind::Event);
        }
        for d in &self.deployments {
            ids.insert(d.event_id.clone(), EvidenceKind::Deployment);
        }
        for m in &self.metric_shifts {
            ids.insert(m.rollup_id.clone(), EvidenceKind::Metric);
        }
        for p in &self.similar {
            ids.insert(p.incident_id.clone(), EvidenceKind::Incident);
        }
        ids.insert(self.incident.id.clone(), EvidenceKind::Incident);
        ids
    }

    /// The services worth considering as the root cause: the affected ones, those with
    /// an anomaly or event in the context, and their direct dependencies.
    pub fn candidate_services(&self) -> BTreeSet<String> {
        let mut out: BTreeSet<String> = std::iter::once(&self.incident.service_name)
            .chain(&self.incident.affected_services)
            .cloned()
            .collect();
        out.extend(self.anomalies.iter().map(|a| a.service_name.clone()));
        out.extend(self.events.iter().map(|e| e.service_name.clone()));
        out
    }
}

fn onset(incident: &Incident, anomalies: &[Anomaly], events: &[Event]) -> i64 {
    anomalies
        .iter()
        .map(|a| a.timestamp)
        .chain(events.iter().map(|e| e.timestamp))
        .min()
        .unwrap_or(incident.detected_at)
        .min(incident.detected_at)
}

/// Where the analyst gets its context from.
#[async_trait::async_trait]
pub trait ContextSource: Send + Sync + std::fmt::Debug {
    /// Gathers the context of `incident`.
    async fn gather(&self, incident: &Incident) -> Result<AnalysisContext, AnalystError>;
}

/// Gathers context from the store (what the runner, the API and the evaluation use).
#[derive(Debug, Clone)]
pub struct StoreContext {
    store: Arc<dyn Store>,
    limits: ContextLimits,
}

impl StoreContext {
    /// Reads from `store` within `limits`.
    pub fn new(store: Arc<dyn Store>, limits: ContextLimits) -> Self {
        Self { store, limits }
    }

    /// The services whose metrics and anomalies are looked at: the affected ones, every
    /// service they depend on (faults travel up the call graph from any depth) and every
    /// service depending on them (load travels down from the edge).
    fn neighbourhood(topology: &Topology, incident: &Incident) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for s in std::iter::once(&incident.service_name).chain(&incident.affected_services) {
            out.insert(s.clone());
            out.extend(topology.upstream_of(s));
            out.extend(topology.downstream_of(s));
        }
        out
    }

    async fn incident_anomalies(&self, incident: &Incident) -> Result<Vec<Anomaly>, AnalystError> {
        let page = self
            .store
            .query_anomalies(&AnomalyQuery {
                incident_id: Some(incident.id.clone()),
                limit: MAX_PAGE,
                ..AnomalyQuery::default()
            })
            .await?;
        Ok(page.items.into_iter().map(|s| s.anomaly).collect())
    }

    async fn nearby_anomalies(
        &self,
        services: &BTreeSet<String>,
        incident: &Incident,
        (from, to): (i64, i64),
    ) -> Result<Vec<Anomaly>, AnalystError> {
        let mut out = Vec::new();
        for service in services {
            let page = self
                .store
                .query_anomalies(&AnomalyQuery {
                    service: Some(service.clone()),
                    from: Some(from),
                    to: Some(to),
                    limit: MAX_PAGE,
                    ..AnomalyQuery::default()
                })
                .await?;
            out.extend(
                page.items
                    .into_iter()
                    .filter(|s| s.incident_id.as_deref() != Some(incident.id.as_str()))
                    .map(|s| s.anomaly),
            );
        }
        Ok(out)
    }

    async fn events(&self, incident: &Incident) -> Result<Vec<Event>, AnalystError> {
        let mut out = Vec::new();
        for id in incident.event_ids.iter().take(self.limits.max_events) {
            if let Some(e) = self.store.get_event(id).await? {
                out.push(e);
            }
        }
        Ok(out)
    }

    async fn deployments(
        &self,
        services: &BTreeSet<String>,
        (from, to): (i64, i64),
    ) -> Result<Vec<Event>, AnalystError> {
        let page = self
            .store
            .query_events(&EventQuery {
                event_type: Some(DEPLOYMENT.to_owned()),
                since_ms: Some(from),
                until_ms: Some(to),
                limit: MAX_PAGE,
                ..EventQuery::default()
            })
            .await?;
        Ok(page
            .items
            .into_iter()
            .filter(|e| services.contains(&e.service_name))
            .collect())
    }

    async fn metric_shifts(
        &self,
        services: &BTreeSet<String>,
        onset: i64,
        to: i64,
    ) -> Result<Vec<MetricShift>, AnalystError> {
        let since = onset - self.limits.lookback_ms;
        let mut out = Vec::new();
        for service in services {
            let rows = self
                .store
                .query_rollups(&RollupQuery {
                    service: Some(service.clone()),
                    window: Some("1m".to_owned()),
                    since: Some(since),
                    until: Some(to),
                    limit: sightline_store::MAX_ROLLUP_ROWS,
                    ..RollupQuery::default()
                })
                .await?;
            out.extend(shifts(&rows, onset));
        }
        out.sort_by(|a, b| {
            b.deviation
                .abs()
                .total_cmp(&a.deviation.abs())
                .then_with(|| a.rollup_id.cmp(&b.rollup_id))
        });
        Ok(out)
    }

    async fn similar(&self, incident: &Incident) -> Result<Vec<PastCase>, AnalystError> {
        let past = self
            .store
            .similar_incidents(&SimilarIncidents {
                services: std::iter::once(&incident.service_name)
                    .chain(&incident.affected_services)
                    .cloned()
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                fingerprint: Some(incident.fingerprint.clone()),
                exclude_id: incident.id.clone(),
                before: incident.detected_at,
                limit: self.limits.max_similar,
            })
            .await?;
        let ids: Vec<String> = past.iter().map(|i| i.id.clone()).collect();
        let verdicts = self.store.verdicts_for_incidents(&ids).await?;
        Ok(past
            .into_iter()
            .map(|i| PastCase {
                verdicts: verdicts
                    .iter()
                    .filter(|v| v.incident_id == i.id)
                    .cloned()
                    .collect(),
                incident_id: i.id,
                service_name: i.service_name,
                affected_services: i.affected_services,
                detected_at: i.detected_at,
            })
            .collect())
    }
}

/// Metric shifts of one service's 1-minute rollups around `onset`: the baseline is every
/// window ending at least 2 minutes before it, the peak the most extreme window after.
pub fn shifts(rows: &[RollupRow], onset: i64) -> Vec<MetricShift> {
    const GUARD_MS: i64 = 2 * 60_000;
    let mut by_metric: BTreeMap<(&str, &str), Vec<&RollupRow>> = BTreeMap::new();
    for r in rows {
        by_metric
            .entry((r.service_name.as_str(), r.metric_type.as_str()))
            .or_default()
            .push(r);
    }
    let mut out = Vec::new();
    for ((service, metric), rows) in by_metric {
        let base: Vec<f64> = rows
            .iter()
            .filter(|r| r.window_end <= onset - GUARD_MS)
            .map(|r| r.avg)
            .collect();
        if base.len() < 3 {
            continue;
        }
        let n = base.len() as f64;
        let mean = base.iter().sum::<f64>() / n;
        let spread = (base.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let scale = spread.max(mean.abs() * 0.01).max(1e-9);
        let Some(peak) = rows
            .iter()
            .filter(|r| r.window_end > onset - GUARD_MS)
            .max_by(|a, b| {
                ((a.avg - mean).abs())
                    .total_cmp(&(b.avg - mean).abs())
                    .then_with(|| b.window_start.cmp(&a.window_start))
            })
        else {
            continue;
        };
        out.push(MetricShift {
            service: service.to_owned(),
            metric_type: metric.to_owned(),
            baseline: mean,
            baseline_spread: spread,
            peak: peak.avg,
            peak_at: peak.window_start,
            deviation: (peak.avg - mean) / scale,
            rollup_id: peak.id.clone(),
        });
    }
    out
}

#[async_trait::async_trait]
impl ContextSource for StoreContext {
    async fn gather(&self, incident: &Incident) -> Result<AnalysisContext, AnalystError> {
        let topology = self
            .store
            .get_topology()
            .await?
            .map(|t| t.topology)
            .unwrap_or_default();
        let mut anomalies = self.incident_anomalies(incident).await?;
        anomalies.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        let mut events = self.events(incident).await?;
        events.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
        let onset = onset(incident, &anomalies, &events);
        let end = incident.updated_at.max(incident.detected_at) + 1;
        let services = Self::neighbourhood(&topology, incident);
        let mut nearby = self
            .nearby_anomalies(&services, incident, (onset - self.limits.lookback_ms, end))
            .await?;
        let own: BTreeSet<&str> = anomalies.iter().map(|a| a.id.as_str()).collect();
        nearby.retain(|a| !own.contains(a.id.as_str()));
        nearby.sort_by(|a, b| (a.timestamp, &a.id).cmp(&(b.timestamp, &b.id)));
        let mut deployments = self
            .deployments(&services, (onset - self.limits.deployment_lookback_ms, end))
            .await?;
        deployments.sort_by(|a, b| (a.timestamp, &a.event_id).cmp(&(b.timestamp, &b.event_id)));
        let metric_shifts = self.metric_shifts(&services, onset, end).await?;
        let similar = self.similar(incident).await?;
        let root_verdicts = self
            .store
            .verdicts_for_services(&services.iter().cloned().collect::<Vec<_>>(), 200)
            .await?;
        Ok(AnalysisContext {
            incident: incident.clone(),
            topology,
            anomalies,
            nearby_anomalies: nearby,
            events,
            deployments,
            metric_shifts,
            similar,
            root_verdicts,
        })
    }
}

/// How many verdicts of each kind name `service` as the root cause.
pub fn verdict_counts(verdicts: &[RootCauseVerdict], service: &str) -> (u32, u32) {
    let mut helpful = 0;
    let mut incorrect = 0;
    for v in verdicts {
        if v.root_cause_service.as_deref() == Some(service) {
            match v.verdict {
                FeedbackVerdict::Helpful => helpful += 1,
                FeedbackVerdict::Incorrect => incorrect += 1,
                FeedbackVerdict::NotHelpful => {}
            }
        }
    }
    (helpful, incorrect)
}
