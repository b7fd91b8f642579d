//! The built-in analyst: deterministic root-cause ranking from the topology and the
//! evidence, with templated summaries. No network, no key; the embedded default and the
//! fallback whenever the LLM path fails or is over budget.
//!
//! Every service in the incident's neighbourhood is a candidate. Each gets a score from
//! what operators reason with:
//!
//! - **causal reach** — how much of the incident the candidate explains through the
//!   dependency graph. Faults (latency, errors, CPU, memory, new error patterns) travel
//!   *up* the call graph: a slow database makes its callers slow, so a candidate explains
//!   every anomalous service that depends on it. Load travels *down*: a traffic surge at
//!   the edge raises the request rate of everything it calls, so a candidate whose own
//!   request rate jumped explains the request-rate anomalies of the services it depends
//!   on. This is "the upstream-most anomalous service", made direction-aware. A surge the
//!   detectors saw only as saturation (CPU, memory) of two or more services, before any
//!   request-rate anomaly, is credited more weakly to the call graph's entry points that
//!   reach them: that is where traffic comes in.
//! - **onset** — whose anomaly started first (cascades take a step per hop).
//! - **deployment** — a `DEPLOYMENT` of the candidate shortly before its onset.
//! - **own symptoms** — the candidate's own anomalies (count and strength), its error
//!   events, and how far its metrics moved in the stored rollups.
//! - **memory** — verdicts on past analyses: `helpful` ones naming the candidate (and
//!   similar past incidents confirmed to be caused by it) raise its score, `incorrect`
//!   ones lower it.
//!
//! Confidence is calibrated from the margin between the best two candidates and how much
//! evidence the winner has, so a close call or a thin incident says so.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use sightline_model::{
    ActionRisk, Analysis, AnalysisStatus, AnalystKind, Anomaly, EvidenceKind, EvidenceRef,
    Severity, Signal, SuggestedAction,
};

use crate::context::{AnalysisContext, DEPLOYMENT, verdict_counts};

/// The model name the built-in analyst writes into its analyses.
pub const BUILTIN_MODEL: &str = "builtin-v1";

/// Most evidence ids one analysis cites.
const MAX_EVIDENCE: usize = 25;
/// Nearby anomalies from this long before the incident's first signal on count fully.
const NEARBY_GRACE_MS: i64 = 60_000;
/// Older nearby anomalies lose half their weight per this many milliseconds.
const NEARBY_HALF_LIFE_MS: f64 = 600_000.0;
/// Weighted anomaly scores below this are ignored.
const MIN_STRENGTH: f64 = 0.05;
/// A rollup shift counts from this many baseline deviations on…
const SHIFT_MIN: f64 = 6.0;
/// …and fully (as [`SHIFT_WEIGHT`]) from this many.
const SHIFT_FULL: f64 = 30.0;
/// The strongest a rollup shift counts, against 0..1 for anomaly scores.
const SHIFT_WEIGHT: f64 = 0.4;
/// Rollup peaks count within this distance of the incident's first signal.
const SHIFT_WINDOW_MS: i64 = 15 * 60_000;

/// How a signal travels through the dependency graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// From a dependency to its callers: latency and errors (a slow or failing
    /// dependency makes its callers slow or failing).
    Fault,
    /// Stays where it is: saturation (CPU, memory) of one service does not show up as
    /// its callers' saturation.
    Local,
    /// From a caller to its dependencies: request rate.
    Load,
}

fn metric_direction(metric_type: &str) -> Direction {
    let m = metric_type.to_ascii_lowercase();
    if ["request_rate", "requests", "rps", "throughput", "traffic"]
        .iter()
        .any(|k| m == *k)
    {
        Direction::Load
    } else if ["cpu", "memory", "mem_", "disk", "gc_", "heap"]
        .iter()
        .any(|k| m.contains(k))
    {
        Direction::Local
    } else {
        Direction::Fault
    }
}

fn direction(signal: &Signal) -> Direction {
    match signal {
        Signal::Metric { metric_type } => metric_direction(metric_type),
        Signal::ErrorRate | Signal::Pattern { .. } => Direction::Fault,
    }
}

/// What the ranking saw for one candidate.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Features {
    /// Anomalies of the candidate in the incident and nearby.
    pub anomalies: usize,
    /// Strongest anomaly score of the candidate, weighted by how close to the incident
    /// it happened.
    pub max_score: f64,
    /// Milliseconds between the incident's first signal and the candidate's first.
    pub onset_offset_ms: Option<i64>,
    /// Other anomalous services whose fault signals it explains (they depend on it).
    pub fault_reach: usize,
    /// Other services whose request-rate anomalies it explains (it depends on them, and
    /// its own request rate jumped).
    pub load_reach: usize,
    /// Saturated services (CPU, memory) it reaches through its dependencies, when it is
    /// an entry point of the call graph and reaches two or more: the shape of a load
    /// surge the detectors caught as saturation before any request-rate anomaly.
    pub saturation_reach: usize,
    /// Whether no anomalous service that depends on it had a request-rate anomaly (it is
    /// where the load entered).
    pub load_entry: bool,
    /// A deployment of the candidate shortly before its onset (event id).
    pub deployment: Option<String>,
    /// Error-level events of the candidate in the incident.
    pub error_events: usize,
    /// The strongest metric deviation of the candidate in the rollups.
    pub shift: f64,
    /// Helpful verdicts on analyses that named it (directly or via similar incidents).
    pub confirmed: u32,
    /// Incorrect verdicts on analyses that named it.
    pub refuted: u32,
}

/// One ranked root-cause candidate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Candidate {
    /// The service.
    pub service: String,
    /// Its score (higher is more likely); only the order and the margins mean anything.
    pub score: f64,
    /// Why.
    pub features: Features,
}

/// The built-in analyst (stateless).
#[derive(Clone, Copy, Debug, Default)]
pub struct BuiltinAnalyst;

impl BuiltinAnalyst {
    /// Root-cause candidates, most likely first (ties broken by name, so the order is
    /// deterministic).
    pub fn rank(&self, ctx: &AnalysisContext) -> Vec<Candidate> {
        let onset = ctx.onset();
        // Every anomaly with its weight: the incident's count fully; nearby ones (other
        // incidents, neighbours) fully from a minute before the onset on, and fading with
        // a 10-minute half-life before that, so old noise cannot claim the incident.
        let mut strength: BTreeMap<&str, f64> = BTreeMap::new();
        let mut first: BTreeMap<&str, i64> = BTreeMap::new();
        let mut dirs: BTreeMap<&str, [bool; 3]> = BTreeMap::new();
        // The strongest local (saturation) signal per service: evidence of its own fault.
        let mut local: BTreeMap<&str, f64> = BTreeMap::new();
        let weighted =
            ctx.anomalies
                .iter()
                .map(|a| (a, 1.0))
                .chain(ctx.nearby_anomalies.iter().map(|a| {
                    let before = (onset - NEARBY_GRACE_MS - a.timestamp).max(0) as f64;
                    (a, 0.5f64.powf(before / NEARBY_HALF_LIFE_MS))
                }));
        for (a, w) in weighted {
            let s = a.service_name.as_str();
            let v = w * a.score;
            if v < MIN_STRENGTH {
                continue;
            }
            let e = strength.entry(s).or_insert(0.0);
            *e = e.max(v);
            if v >= 0.3 {
                let f = first.entry(s).or_insert(a.timestamp);
                *f = (*f).min(a.timestamp);
            }
            dirs.entry(s).or_insert([false; 3])[direction(&a.signal) as usize] = true;
            if direction(&a.signal) == Direction::Local {
                let l = local.entry(s).or_insert(0.0);
                *l = l.max(v);
            }
        }
        // Metric shifts in the rollups count as weak signals too: a dependency whose
        // latency is far off its baseline matters even when no detector fired on it.
        for m in &ctx.metric_shifts {
            let v = SHIFT_WEIGHT * (m.deviation.abs() / SHIFT_FULL).min(1.0);
            if m.deviation.abs() < SHIFT_MIN || (m.peak_at - onset).abs() > SHIFT_WINDOW_MS {
                continue;
            }
            let s = m.service.as_str();
            let e = strength.entry(s).or_insert(0.0);
            *e = e.max(v);
            dirs.entry(s).or_insert([false; 3])[metric_direction(&m.metric_type) as usize] = true;
        }
        let has = |s: &str, d: Direction| dirs.get(s).is_some_and(|v| v[d as usize]);
        let total: f64 = strength.values().sum();
        let mut candidates: BTreeSet<String> = ctx.candidate_services();
        for s in strength.keys() {
            candidates.insert((*s).to_owned());
        }
        let earliest = first.values().copied().min().unwrap_or(onset);
        let topo = &ctx.topology;
        // Several services saturated at once may share no fault but a caller: traffic
        // enters the call graph at its entry points, so those that reach two or more of
        // them are candidates even without a signal of their own.
        if local.len() >= 2 {
            for entry in topo
                .services
                .keys()
                .filter(|s| topo.dependents(s).is_empty())
            {
                let upstream = topo.upstream_of(entry);
                if local.keys().filter(|s| upstream.contains(**s)).count() >= 2 {
                    candidates.insert(entry.to_owned());
                }
            }
        }
        let mut out = Vec::new();
        for service in &candidates {
            let mut f = Features::default();
            let own = strength.get(service.as_str()).copied().unwrap_or(0.0);
            f.anomalies = ctx
                .anomalies
                .iter()
                .chain(&ctx.nearby_anomalies)
                .filter(|a| a.service_name == *service)
                .count();
            f.max_score = own;
            f.onset_offset_ms = first.get(service.as_str()).map(|t| t - earliest);
            let downstream = topo.downstream_of(service);
            let upstream = topo.upstream_of(service);
            let others = (total - own).max(1e-9);
            let fault_reach: f64 = strength
                .iter()
                .filter(|(s, _)| downstream.contains(**s) && has(s, Direction::Fault))
                .map(|(_, v)| v)
                .sum();
            f.fault_reach = strength
                .keys()
                .filter(|s| downstream.contains(**s) && has(s, Direction::Fault))
                .count();
            let mut load_reach = 0.0;
            if has(service, Direction::Load) {
                f.load_entry = !strength
                    .keys()
                    .any(|s| downstream.contains(*s) && has(s, Direction::Load));
                f.load_reach = strength
                    .keys()
                    .filter(|s| upstream.contains(**s) && has(s, Direction::Load))
                    .count();
                // A surge that really spread (two or more dependencies saw it) explains
                // everything it reached: more traffic means more latency, CPU and errors.
                if f.load_reach >= 2 {
                    load_reach = strength
                        .iter()
                        .filter(|(s, _)| upstream.contains(**s))
                        .map(|(_, v)| v)
                        .sum();
                }
            }
            let mut saturation_reach = 0.0;
            if topo.dependents(service).is_empty() {
                let reached = local.iter().filter(|(s, _)| upstream.contains(**s));
                f.saturation_reach = reached.clone().count();
                if f.saturation_reach >= 2 {
                    saturation_reach = reached.map(|(_, v)| v).sum();
                }
            }
            let start = first.get(service.as_str()).copied().unwrap_or(onset);
            f.deployment = ctx
                .deployments
                .iter()
                .filter(|d| {
                    d.service_name == *service
                        && d.event_type.eq_ignore_ascii_case(DEPLOYMENT)
                        && d.timestamp <= start.max(onset) + 60_000
                })
                .max_by_key(|d| d.timestamp)
                .map(|d| d.event_id.clone());
            f.error_events = ctx
                .events
                .iter()
                .filter(|e| {
                    e.service_name == *service
                        && matches!(e.severity, Severity::Critical | Severity::High)
                })
                .count();
            f.shift = ctx
                .metric_shifts
                .iter()
                .filter(|m| m.service == *service)
                .map(|m| m.deviation.abs())
                .fold(0.0, f64::max);
            let (helpful, incorrect) = verdict_counts(&ctx.root_verdicts, service);
            f.confirmed = helpful;
            f.refuted = incorrect;
            let reach = Reach {
                own,
                local: local.get(service.as_str()).copied().unwrap_or(0.0),
                fault: fault_reach / others,
                load: if f.load_entry {
                    load_reach / others
                } else {
                    0.0
                },
                saturation: saturation_reach / others,
            };
            out.push(Candidate {
                service: service.clone(),
                score: score(&f, &reach),
                features: f,
            });
        }
        out.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.service.cmp(&b.service))
        });
        out
    }

    /// Analyses the incident in `ctx`: the full schema, citing only ids from `ctx`.
    pub fn analyze(&self, ctx: &AnalysisContext, now_ms: i64) -> Analysis {
        self.analyze_ranked(ctx, &self.rank(ctx), now_ms)
    }

    /// Like [`analyze`](Self::analyze), with the ranking already computed.
    pub fn analyze_ranked(
        &self,
        ctx: &AnalysisContext,
        ranked: &[Candidate],
        now_ms: i64,
    ) -> Analysis {
        let incident = &ctx.incident;
        let id = Analysis::id_for(&incident.id, incident.updated_at);
        let Some(top) = ranked.first() else {
            return Analysis {
                id,
                incident_id: incident.id.clone(),
                root_cause: "No evidence to attribute the incident to a service.".into(),
                root_cause_service: None,
                confidence: 0.0,
                impacted_services: incident.affected_services.clone(),
                suggested_actions: Vec::new(),
                technical_summary: String::new(),
                executive_summary: String::new(),
                evidence: Vec::new(),
                flags: Vec::new(),
                analyst: AnalystKind::Builtin,
                model: BUILTIN_MODEL.into(),
                prompt_tokens: 0,
                completion_tokens: 0,
                latency_ms: 0,
                status: AnalysisStatus::Completed,
                error: None,
                created_at: now_ms,
            };
        };
        let evidence = evidence_for(ctx, top);
        let confidence = confidence(ranked, evidence.len());
        let mut impacted = vec![top.service.clone()];
        for s in std::iter::once(&incident.service_name).chain(&incident.affected_services) {
            if !impacted.contains(s) {
                impacted.push(s.clone());
            }
        }
        Analysis {
            id,
            incident_id: incident.id.clone(),
            root_cause: root_cause_text(ctx, top),
            root_cause_service: Some(top.service.clone()),
            confidence,
            impacted_services: impacted.clone(),
            suggested_actions: actions(ctx, top),
            technical_summary: technical_summary(ctx, ranked),
            executive_summary: executive_summary(ctx, top, &impacted, confidence),
            evidence,
            flags: Vec::new(),
            analyst: AnalystKind::Builtin,
            model: BUILTIN_MODEL.into(),
            prompt_tokens: 0,
            completion_tokens: 0,
            latency_ms: 0,
            status: AnalysisStatus::Completed,
            error: None,
            created_at: now_ms,
        }
    }
}

/// Weighted causal reach of a candidate, each part 0..1 of the other services' strength.
struct Reach {
    /// The candidate's own strongest weighted anomaly score.
    own: f64,
    /// Its strongest saturation (CPU, memory) score: a fault of its own.
    local: f64,
    /// Share of the others' strength its faults explain.
    fault: f64,
    /// Share of the others' strength its load explains (load entry points only).
    load: f64,
    /// Share of the others' strength in saturation it could have caused by load (entry
    /// points of the call graph only); weaker than `load`, which saw the traffic itself.
    saturation: f64,
}

/// The candidate's score: causal reach dominates (it is the topology argument), onset,
/// deployment and own symptoms break ties and rescue incidents the graph cannot explain,
/// operator verdicts nudge.
fn score(f: &Features, reach: &Reach) -> f64 {
    let mut s =
        1.5 * reach.own + reach.local + 3.0 * reach.fault + 3.5 * reach.load + reach.saturation;
    if let Some(offset) = f.onset_offset_ms {
        // Earliest gets the full point, a minute or more later nothing.
        s += (1.0 - offset as f64 / 60_000.0).clamp(0.0, 1.0);
    }
    if f.deployment.is_some() {
        s += if reach.own > 0.0 || f.error_events > 0 {
            1.5
        } else {
            0.3
        };
    }
    s += (f.error_events as f64).min(10.0) * 0.05;
    s += (f.shift / 10.0).min(0.5);
    s += 0.5 * f64::from(f.confirmed.min(4)) - 0.75 * f64::from(f.refuted.min(4));
    s
}

/// Honest confidence: how far ahead the winner is, and how much evidence it rests on.
fn confidence(ranked: &[Candidate], evidence: usize) -> f64 {
    let top = ranked[0].score;
    let second = ranked.get(1).map_or(0.0, |c| c.score);
    let margin = if top <= 0.0 {
        0.0
    } else {
        ((top - second) / top).clamp(0.0, 1.0)
    };
    let support = (evidence as f64 / 6.0).min(1.0);
    let c = 0.15 + 0.55 * margin + 0.25 * support;
    (c.clamp(0.05, 0.95) * 100.0).round() / 100.0
}

fn evidence_for(ctx: &AnalysisContext, top: &Candidate) -> Vec<EvidenceRef> {
    let mut out = Vec::new();
    let mut push = |kind, id: &str| {
        let r = EvidenceRef {
            kind,
            id: id.to_owned(),
        };
        if out.len() < MAX_EVIDENCE && !out.contains(&r) {
            out.push(r);
        }
    };
    if let Some(d) = &top.features.deployment {
        push(EvidenceKind::Deployment, d);
    }
    // The root's own anomalies first, then the first anomaly of each other service.
    let onset = ctx.onset();
    let mut nearby: Vec<&Anomaly> = ctx
        .nearby_anomalies
        .iter()
        .filter(|a| a.service_name == top.service)
        .collect();
    nearby.sort_by_key(|a| ((a.timestamp - onset).abs(), a.id.clone()));
    for a in ctx
        .anomalies
        .iter()
        .filter(|a| a.service_name == top.service)
        .chain(nearby)
        .take(5)
    {
        push(EvidenceKind::Anomaly, &a.id);
    }
    let mut seen = BTreeSet::new();
    for a in &ctx.anomalies {
        if a.service_name != top.service && seen.insert(a.service_name.as_str()) {
            push(EvidenceKind::Anomaly, &a.id);
        }
    }
    for e in ctx
        .events
        .iter()
        .filter(|e| e.service_name == top.service)
        .take(3)
    {
        push(EvidenceKind::Event, &e.event_id);
    }
    for m in ctx
        .metric_shifts
        .iter()
        .filter(|m| m.service == top.service)
        .take(2)
    {
        push(EvidenceKind::Metric, &m.rollup_id);
    }
    for p in &ctx.similar {
        if p.verdicts.iter().any(|v| {
            v.root_cause_service.as_deref() == Some(top.service.as_str())
                && v.verdict == sightline_model::FeedbackVerdict::Helpful
        }) {
            push(EvidenceKind::Incident, &p.incident_id);
        }
    }
    out
}

fn signal_list(ctx: &AnalysisContext, service: &str) -> String {
    let mut names: Vec<&str> = ctx
        .anomalies
        .iter()
        .filter(|a| a.service_name == service)
        .map(|a| a.signal.name())
        .collect();
    names.sort_unstable();
    names.dedup();
    names.join(", ")
}

fn root_cause_text(ctx: &AnalysisContext, top: &Candidate) -> String {
    let f = &top.features;
    let s = &top.service;
    let mut why = Vec::new();
    if f.load_entry && f.load_reach > 0 {
        why.push(format!(
            "a surge of traffic entering at {s} raised the request rate of {} service(s) it calls",
            f.load_reach
        ));
    }
    if f.fault_reach > 0 {
        why.push(format!(
            "{} anomalous service(s) depend on {s}",
            f.fault_reach
        ));
    }
    if f.deployment.is_some() {
        why.push(format!("{s} was deployed shortly before the first anomaly"));
    }
    if f.onset_offset_ms == Some(0) {
        why.push(format!("{s} showed the first anomaly"));
    }
    if f.confirmed > 0 {
        why.push(format!(
            "operators confirmed {s} as the root cause of {} similar past incident(s)",
            f.confirmed
        ));
    }
    let signals = signal_list(ctx, s);
    let what = if signals.is_empty() {
        format!("{s} is the most likely root cause")
    } else {
        format!("{s} is the most likely root cause ({signals} abnormal)")
    };
    if why.is_empty() {
        format!("{what}.")
    } else {
        format!("{what}: {}.", why.join("; "))
    }
}

fn actions(ctx: &AnalysisContext, top: &Candidate) -> Vec<SuggestedAction> {
    let s = &top.service;
    let mut out = Vec::new();
    if let Some(id) = &top.features.deployment {
        let version = ctx
            .deployments
            .iter()
            .find(|d| &d.event_id == id)
            .map(|d| d.details.clone())
            .unwrap_or_default();
        out.push(SuggestedAction {
            title: format!("Roll back the latest deployment of {s}"),
            description: format!(
                "The deployment ({}) preceded the first anomaly; roll back and watch whether \
                 the error rate returns to its baseline.",
                version.chars().take(120).collect::<String>()
            ),
            risk: ActionRisk::Medium,
            command_hint: Some(format!("kubectl rollout undo deployment/{s}")),
        });
    }
    if top.features.load_entry && top.features.load_reach > 0 {
        out.push(SuggestedAction {
            title: format!("Scale out behind {s} or rate-limit at the edge"),
            description: "Traffic rose above the usual range; add capacity to the saturated \
                          services or shed load at the entry point."
                .into(),
            risk: ActionRisk::Medium,
            command_hint: None,
        });
    }
    let signals = signal_list(ctx, s);
    if signals.contains("cpu") || signals.contains("memory") {
        out.push(SuggestedAction {
            title: format!("Inspect and restart the saturated instances of {s}"),
            description: format!(
                "{s} shows {signals}; capture a profile or heap dump, then restart the \
                 affected instances."
            ),
            risk: ActionRisk::Medium,
            command_hint: Some(format!("kubectl rollout restart deployment/{s}")),
        });
    }
    out.push(SuggestedAction {
        title: format!("Check {s}'s dashboards and logs"),
        description: format!(
            "Confirm the root cause on {s} before acting: compare its latency, error rate and \
             saturation with the baseline and read its recent error logs."
        ),
        risk: ActionRisk::Low,
        command_hint: None,
    });
    out
}

fn technical_summary(ctx: &AnalysisContext, ranked: &[Candidate]) -> String {
    let incident = &ctx.incident;
    let onset = ctx.onset();
    let mut lines = vec![format!(
        "Incident {} ({}, {}): {} anomal{} on {} service(s), {} event(s), {} deployment(s) in \
         the window.",
        incident.id,
        incident.severity,
        incident.status,
        ctx.anomalies.len(),
        if ctx.anomalies.len() == 1 { "y" } else { "ies" },
        incident.affected_services.len(),
        ctx.events.len(),
        ctx.deployments.len(),
    )];
    let mut order: Vec<(i64, &str)> = Vec::new();
    for a in &ctx.anomalies {
        if !order.iter().any(|(_, s)| *s == a.service_name) {
            order.push((a.timestamp - onset, a.service_name.as_str()));
        }
    }
    if !order.is_empty() {
        lines.push(format!(
            "Order of onset: {}.",
            order
                .iter()
                .map(|(dt, s)| format!("{s} (+{} s)", dt / 1000))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let ranking: Vec<String> = ranked
        .iter()
        .take(3)
        .map(|c| format!("{} ({:.2})", c.service, c.score))
        .collect();
    lines.push(format!("Candidates by score: {}.", ranking.join(", ")));
    if let Some(m) = ctx.metric_shifts.first() {
        lines.push(format!(
            "Largest metric shift: {} {} from {:.1} to {:.1}.",
            m.service, m.metric_type, m.baseline, m.peak
        ));
    }
    lines.join(" ")
}

fn executive_summary(
    ctx: &AnalysisContext,
    top: &Candidate,
    impacted: &[String],
    confidence: f64,
) -> String {
    let certainty = if confidence >= 0.7 {
        "likely"
    } else if confidence >= 0.4 {
        "possibly"
    } else {
        "tentatively"
    };
    format!(
        "A {} incident affects {} service(s) ({}). It is {} caused by a problem in {}. \
         Status: {}.",
        ctx.incident.severity,
        impacted.len(),
        impacted.join(", "),
        certainty,
        top.service,
        ctx.incident.status,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{Anomaly, Incident, IncidentStatus, ServiceNode, Signal, Topology};

    const T: i64 = 1_700_000_000_000;

    fn saturation(service: &str, metric: &str) -> Anomaly {
        let signal = Signal::Metric {
            metric_type: metric.into(),
        };
        Anomaly {
            id: Anomaly::id_for("robust_zscore", service, &signal, T),
            detector: "robust_zscore".into(),
            service_name: service.into(),
            signal,
            timestamp: T,
            value: 95.0,
            expected_low: 10.0,
            expected_high: 40.0,
            score: 0.7,
            severity: Severity::High,
            explanation: "far above its usual range".into(),
            event_id: None,
            detected_at: T,
        }
    }

    /// `edge → gateway → {payments → db, search}`, and `batch → search` (a second entry).
    fn context(anomalies: Vec<Anomaly>) -> AnalysisContext {
        let mut topology = Topology::default();
        for (name, deps) in [
            ("edge", &["gateway"][..]),
            ("batch", &["search"][..]),
            ("gateway", &["payments", "search"][..]),
            ("payments", &["db"][..]),
            ("search", &[][..]),
            ("db", &[][..]),
        ] {
            topology.services.insert(
                name.into(),
                ServiceNode {
                    depends_on: deps.iter().map(|d| (*d).to_owned()).collect(),
                    criticality: 1.0,
                },
            );
        }
        let services: Vec<String> = anomalies.iter().map(|a| a.service_name.clone()).collect();
        AnalysisContext {
            incident: Incident {
                id: "inc-1".into(),
                title: "saturation".into(),
                description: String::new(),
                severity: Severity::High,
                score: 1.0,
                status: IncidentStatus::Open,
                service_name: services[0].clone(),
                affected_services: services,
                detected_at: T,
                updated_at: T,
                acknowledged_at: None,
                resolved_at: None,
                correlation_id: String::new(),
                fingerprint: String::new(),
                labels: Default::default(),
                event_ids: vec![],
                anomaly_ids: anomalies.iter().map(|a| a.id.clone()).collect(),
                occurrences: 1,
                assignee: None,
                flapping: false,
                timeline: vec![],
            },
            topology,
            anomalies,
            nearby_anomalies: vec![],
            events: vec![],
            deployments: vec![],
            metric_shifts: vec![],
            similar: vec![],
            root_verdicts: vec![],
        }
    }

    #[test]
    fn simultaneous_saturation_points_at_the_entry_that_reaches_it_all() {
        let ctx = context(vec![
            saturation("payments", "cpu_usage"),
            saturation("db", "cpu_usage"),
        ]);
        let ranked = BuiltinAnalyst.rank(&ctx);
        let names: Vec<&str> = ranked.iter().map(|c| c.service.as_str()).collect();
        assert_eq!(names[2], "edge", "{ranked:#?}");
        assert_eq!(ranked[2].features.saturation_reach, 2);
        assert!(
            ranked[2].score < ranked[1].score,
            "weaker than the saturated services' own evidence: {ranked:#?}"
        );
        // `batch` is an entry too, but reaches neither; `gateway` is no entry.
        assert!(!names.contains(&"batch"), "{names:?}");
        assert!(!names.contains(&"gateway"), "{names:?}");
    }

    #[test]
    fn one_saturated_service_is_its_own_fault() {
        let ranked = BuiltinAnalyst.rank(&context(vec![saturation("payments", "cpu_usage")]));
        let names: Vec<&str> = ranked.iter().map(|c| c.service.as_str()).collect();
        assert_eq!(names, ["payments"], "{ranked:#?}");
    }
}
