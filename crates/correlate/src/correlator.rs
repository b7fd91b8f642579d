//! [`Correlator`]: signals in, incidents out — grouping, topology folding, inhibition,
//! silences, flapping and the incident lifecycle, driven only by the `now_ms` it is given.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use sightline_model::{
    Anomaly, Correlation, CorrelationKind, Event, Incident, IncidentStatus, Severity, Silence,
    TimelineEntry, Topology,
};

use crate::config::ms;
use crate::describe::{self, clamp_score, human_duration};
use crate::silence::{CompiledSilences, Labels, label};
use crate::state::{
    CorrelatorState, CorrelatorStats, Deployment, Detail, STATE_VERSION, SeenSet, SignalSummary,
    Tracked,
};
use crate::{CorrelateError, CorrelatorConfig, Output, Suppression, SuppressionReason};

/// The actor named in entries the engine writes itself.
pub const ENGINE_ACTOR: &str = "sightline";

/// Labels that never scope a topology fold: they differ between the services and signals
/// of one cascade by nature.
const UNSCOPED_LABELS: [&str; 6] = [
    "service",
    "signal",
    "detector",
    "severity",
    "host",
    "event_type",
];

/// An incident an operator opens by hand ([`Correlator::create_manual`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ManualIncident {
    /// Its id, chosen by the caller (the API assigns a UUIDv7): the correlator reads no
    /// clock and draws no randomness.
    pub id: String,
    /// One line.
    pub title: String,
    /// Longer text.
    pub description: String,
    /// How bad.
    pub severity: Severity,
    /// The service it is about.
    pub service_name: String,
    /// Other services touched.
    pub affected_services: Vec<String>,
    /// The request id it was created with.
    pub correlation_id: String,
}

/// One signal, anomaly or event, in the shape the correlator works on.
struct Sig {
    id: String,
    service: String,
    fingerprint: String,
    name: String,
    detector: String,
    labels: Labels,
    score: f64,
    severity: Severity,
    event_severity: Option<Severity>,
    timestamp: i64,
    correlation_id: String,
    detail: Detail,
    /// Joins an active incident as evidence, never opens one nor keeps one open (an
    /// event below `min_opening_event_severity`).
    evidence_only: bool,
}

impl Sig {
    fn from_anomaly(a: &Anomaly) -> Self {
        let name = a.signal.name().to_owned();
        let labels = Labels::from([
            ("service".to_owned(), a.service_name.clone()),
            ("signal".to_owned(), name.clone()),
            ("detector".to_owned(), a.detector.clone()),
            ("severity".to_owned(), a.severity.as_str().to_owned()),
        ]);
        Sig {
            id: a.id.clone(),
            service: a.service_name.clone(),
            fingerprint: a.fingerprint(),
            name,
            detector: a.detector.clone(),
            labels,
            score: clamp_score(a.score),
            severity: a.severity,
            event_severity: None,
            timestamp: a.timestamp,
            correlation_id: a.event_id.clone().unwrap_or_else(|| a.id.clone()),
            detail: Detail::Anomaly {
                value: a.value,
                expected_low: a.expected_low,
                expected_high: a.expected_high,
                explanation: a.explanation.clone(),
            },
            evidence_only: false,
        }
    }

    fn from_event(e: &Event) -> Self {
        let fingerprint = if e.fingerprint.is_empty() {
            describe::correlation_id(&e.service_name, &e.event_type)
        } else {
            e.fingerprint.clone()
        };
        let mut labels: Labels = e.tags.clone();
        for (k, v) in [
            ("service", e.service_name.as_str()),
            ("signal", fingerprint.as_str()),
            ("detector", "event"),
            ("severity", e.severity.as_str()),
            ("environment", e.environment.as_str()),
            ("host", e.host.as_deref().unwrap_or("")),
            ("event_type", e.event_type.as_str()),
        ] {
            labels.insert(k.to_owned(), v.to_owned());
        }
        Sig {
            id: e.event_id.clone(),
            service: e.service_name.clone(),
            fingerprint,
            name: "error_events".to_owned(),
            detector: "event".to_owned(),
            labels,
            score: describe::event_score(e.severity),
            severity: e.severity,
            event_severity: Some(e.severity),
            timestamp: e.timestamp,
            correlation_id: e.correlation_id.clone(),
            detail: Detail::Event {
                event_type: e.event_type.clone(),
                details: e.details.clone(),
            },
            evidence_only: false,
        }
    }

    fn explanation(&self) -> String {
        match &self.detail {
            Detail::Anomaly {
                explanation,
                value,
                expected_low,
                expected_high,
            } => {
                if explanation.trim().is_empty() {
                    format!(
                        "{} {} = {} (expected {}–{})",
                        self.service,
                        self.name,
                        describe::num(*value),
                        describe::num(*expected_low),
                        describe::num(*expected_high)
                    )
                } else {
                    format!("{} {}: {}", self.service, self.name, explanation.trim())
                }
            }
            Detail::Event {
                event_type,
                details,
            } => format!("{} {event_type}: {}", self.service, details.trim()),
        }
    }

    fn entry_kind(&self) -> &'static str {
        match self.detail {
            Detail::Anomaly { .. } => "anomaly",
            Detail::Event { .. } => "event",
        }
    }
}

/// The correlator: feed it signals and operator actions with the current time, publish
/// what it returns. See the crate documentation for the rules.
#[derive(Debug)]
pub struct Correlator {
    config: CorrelatorConfig,
    topology: Topology,
    silences: CompiledSilences,
    state: CorrelatorState,
    /// Signal id → how many incidents remember it (derived from the state, rebuilt on
    /// restore).
    seen_index: HashMap<String, u32>,
}

/// How often, at least, `tick` prunes old transitions and deployments.
const PRUNE_INTERVAL_MS: i64 = 60_000;

fn entry(at: i64, kind: &str, message: impl Into<String>, actor: &str) -> TimelineEntry {
    TimelineEntry {
        at,
        kind: kind.to_owned(),
        message: message.into(),
        actor: actor.to_owned(),
    }
}

fn is_signal_entry(kind: &str) -> bool {
    matches!(kind, "anomaly" | "event")
}

impl Correlator {
    /// A correlator with empty state. Fails when the config does not validate.
    pub fn new(config: CorrelatorConfig, topology: Topology) -> Result<Self, CorrelateError> {
        config.validate()?;
        Ok(Self {
            config,
            topology,
            silences: CompiledSilences::default(),
            state: CorrelatorState::default(),
            seen_index: HashMap::new(),
        })
    }

    /// A correlator resuming from a snapshot taken with [`Correlator::snapshot`]. Feeding
    /// it the inputs that followed the snapshot produces exactly the outputs the original
    /// produced.
    pub fn restore(
        config: CorrelatorConfig,
        topology: Topology,
        state: CorrelatorState,
    ) -> Result<Self, CorrelateError> {
        config.validate()?;
        if state.version != STATE_VERSION {
            return Err(CorrelateError::UnsupportedState {
                found: state.version,
                supported: STATE_VERSION,
            });
        }
        let silences = CompiledSilences::compile(&state.silences)?;
        let mut seen_index = HashMap::new();
        for t in state.incidents.values() {
            for id in t.seen.iter() {
                *seen_index.entry(id.clone()).or_insert(0) += 1;
            }
        }
        Ok(Self {
            config,
            topology,
            silences,
            state,
            seen_index,
        })
    }

    /// A copy of the whole state, for checkpoints.
    pub fn snapshot(&self) -> CorrelatorState {
        self.state.clone()
    }

    /// The state, read-only.
    pub fn state(&self) -> &CorrelatorState {
        &self.state
    }

    /// Counters.
    pub fn stats(&self) -> &CorrelatorStats {
        &self.state.stats
    }

    /// The config in force.
    pub fn config(&self) -> &CorrelatorConfig {
        &self.config
    }

    /// The topology in force.
    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// A published incident (open, acknowledged, or resolved and still retained).
    pub fn incident(&self, id: &str) -> Option<&Incident> {
        self.state
            .incidents
            .get(id)
            .filter(|t| t.published)
            .map(|t| &t.incident)
    }

    /// Every published incident still in the state, by id.
    pub fn incidents(&self) -> impl Iterator<Item = &Incident> {
        self.state
            .incidents
            .values()
            .filter(|t| t.published)
            .map(|t| &t.incident)
    }

    /// Incidents not yet published (still in their group wait), by id.
    pub fn waiting(&self) -> impl Iterator<Item = &Incident> {
        self.state
            .incidents
            .values()
            .filter(|t| !t.published)
            .map(|t| &t.incident)
    }

    /// Replaces the dependency graph. Existing incidents keep their roots until their next
    /// signal.
    pub fn set_topology(&mut self, topology: Topology) {
        self.topology = topology;
    }

    /// Replaces the silences. Every matcher is checked first (regular expressions compiled,
    /// anchored); on error nothing changes and the error names the silence and matcher.
    pub fn set_silences(&mut self, silences: Vec<Silence>) -> Result<(), CorrelateError> {
        self.silences = CompiledSilences::compile(&silences)?;
        self.state.silences = silences;
        Ok(())
    }

    /// The silences in force.
    pub fn silences(&self) -> &[Silence] {
        &self.state.silences
    }

    // ---------------------------------------------------------------- signals

    /// Takes in a detector's anomaly: at least as severe as `min_opening_anomaly_severity`
    /// it joins or opens an incident, below it is evidence only. Timers due at `now_ms`
    /// run first.
    pub fn on_anomaly(&mut self, anomaly: &Anomaly, now_ms: i64) -> Vec<Output> {
        let mut out = self.tick(now_ms);
        let mut sig = Sig::from_anomaly(anomaly);
        sig.evidence_only = anomaly.severity > self.config.min_opening_anomaly_severity;
        self.on_signal(sig, now_ms, &mut out);
        out
    }

    /// Takes in a system event: `DEPLOYMENT` events are remembered as possible causes;
    /// events at least as severe as `min_opening_event_severity` join or open incidents
    /// like anomalies; events at least as severe as `min_event_severity` join active
    /// incidents as evidence only; others are ignored. Timers due at `now_ms` run first.
    pub fn on_event(&mut self, event: &Event, now_ms: i64) -> Vec<Output> {
        let mut out = self.tick(now_ms);
        if event.event_type.eq_ignore_ascii_case("DEPLOYMENT") {
            self.on_deployment(event, now_ms, &mut out);
        } else if event.severity == Severity::Info
            || event.severity > self.config.min_event_severity
        {
            self.state.stats.ignored_events += 1;
        } else {
            let mut sig = Sig::from_event(event);
            sig.evidence_only = self
                .config
                .min_opening_event_severity
                .is_none_or(|opening| event.severity > opening);
            self.on_signal(sig, now_ms, &mut out);
        }
        out
    }

    fn is_seen(&self, id: &str) -> bool {
        self.seen_index.contains_key(id) || self.state.suppressed_ids.contains(id)
    }

    fn group_key(&self, labels: &Labels) -> String {
        let parts: Vec<String> = self
            .config
            .group_by
            .iter()
            .map(|l| format!("{l}={:?}", label(labels, l)))
            .collect();
        format!("{{{}}}", parts.join(","))
    }

    fn group_labels(&self, labels: &Labels) -> BTreeMap<String, String> {
        self.config
            .group_by
            .iter()
            .map(|l| (l.clone(), label(labels, l).to_owned()))
            .collect()
    }

    fn suppress(
        &mut self,
        sig: &Sig,
        incident_id: Option<String>,
        reason: SuppressionReason,
        now: i64,
        out: &mut Vec<Output>,
    ) {
        let cap = self.config.max_suppressed_ids;
        self.state.suppressed_ids.insert(&sig.id, cap);
        out.push(Output::Suppressed(Suppression {
            signal_id: sig.id.clone(),
            service_name: sig.service.clone(),
            incident_id,
            reason,
            at: now,
        }));
    }

    fn on_signal(&mut self, sig: Sig, now: i64, out: &mut Vec<Output>) {
        if self.is_seen(&sig.id) {
            self.state.stats.duplicates += 1;
            return;
        }
        if let Some(s) = self.silences.matching(&sig.labels, now) {
            let silence_id = s.id.clone();
            self.state.stats.silenced += 1;
            self.suppress(
                &sig,
                None,
                SuppressionReason::Silenced { silence_id },
                now,
                out,
            );
            return;
        }
        let gk = self.group_key(&sig.labels);
        self.state.stats.signals += 1;
        if let Some(id) = self.state.groups.get(&gk).cloned() {
            self.join(&id, &sig, &gk, now, out);
            return;
        }
        if self.config.inhibit
            && matches!(sig.severity, Severity::Medium | Severity::Low)
            && let Some(by) = self.inhibitor(&sig.service)
        {
            self.state.stats.inhibited += 1;
            self.state.stats.signals -= 1;
            self.suppress(
                &sig,
                Some(by.clone()),
                SuppressionReason::Inhibited { by_incident: by },
                now,
                out,
            );
            return;
        }
        let candidates = self.fold_candidates(&sig, now);
        if let Some(target) = candidates.first().cloned() {
            // Evidence joins; only an abnormal signal links (merges) incidents.
            if !sig.evidence_only {
                for other in &candidates[1..] {
                    self.merge(other, &target, now, out);
                }
            }
            self.join(&target, &sig, &gk, now, out);
            return;
        }
        if sig.evidence_only {
            self.state.stats.signals -= 1;
            self.state.stats.ignored_events += 1;
            return;
        }
        match self.flapping_check(&gk, now) {
            Flap::Reopen(id) => {
                self.reopen_flapping(&id, now, out);
                self.join(&id, &sig, &gk, now, out);
                return;
            }
            Flap::New => {
                if self.open_new(&sig, &gk, now, out)
                    && let Some(id) = self.state.groups.get(&gk).cloned()
                    && let Some(t) = self.state.incidents.get_mut(&id)
                {
                    t.incident.flapping = true;
                    t.incident.timeline.push(entry(
                        now,
                        "flapping",
                        "flapping: this group opened and resolved repeatedly; held open until quiet",
                        ENGINE_ACTOR,
                    ));
                    self.state.stats.flapping += 1;
                }
                return;
            }
            Flap::No => {}
        }
        self.open_new(&sig, &gk, now, out);
    }

    /// The open critical incident whose root is upstream of `service`, if any.
    fn inhibitor(&self, service: &str) -> Option<String> {
        self.state
            .incidents
            .values()
            .filter(|t| {
                t.published
                    && t.incident.status != IncidentStatus::Resolved
                    && t.incident.severity == Severity::Critical
                    && t.incident.service_name != service
                    && self
                        .topology
                        .downstream_of(&t.incident.service_name)
                        .contains(service)
            })
            .min_by(|a, b| {
                (a.incident.detected_at, &a.incident.id)
                    .cmp(&(b.incident.detected_at, &b.incident.id))
            })
            .map(|t| t.incident.id.clone())
    }

    /// Active incidents the signal folds into (same or related service, recent, same
    /// scope labels), best target first: published before waiting, then oldest, then id.
    fn fold_candidates(&self, sig: &Sig, now: i64) -> Vec<String> {
        let window = ms(self.config.correlation_window_ms);
        let mut c: Vec<&Tracked> = self
            .state
            .incidents
            .values()
            .filter(|t| {
                !t.manual
                    && t.incident.status != IncidentStatus::Resolved
                    && now.saturating_sub(t.last_signal_at) <= window
                    && self.scope_matches(t, &sig.labels)
                    && t.incident
                        .affected_services
                        .iter()
                        .any(|a| self.topology.related(a, &sig.service))
            })
            .collect();
        c.sort_by(|a, b| {
            (!a.published, a.incident.detected_at, &a.incident.id).cmp(&(
                !b.published,
                b.incident.detected_at,
                &b.incident.id,
            ))
        });
        c.into_iter().map(|t| t.incident.id.clone()).collect()
    }

    fn scope_matches(&self, t: &Tracked, labels: &Labels) -> bool {
        self.config
            .group_by
            .iter()
            .filter(|l| !UNSCOPED_LABELS.contains(&l.as_str()))
            .all(|l| t.incident.labels.get(l).map_or("", String::as_str) == label(labels, l))
    }

    fn flapping_check(&self, gk: &str, now: i64) -> Flap {
        let window = ms(self.config.flap_window_ms);
        let n = self.state.transitions.get(gk).map_or(0, |q| {
            q.iter()
                .filter(|&&t| now.saturating_sub(t) <= window)
                .count()
        });
        if n < self.config.flap_threshold as usize {
            return Flap::No;
        }
        match self.state.last_incident.get(gk) {
            Some(id)
                if self
                    .state
                    .incidents
                    .get(id)
                    .is_some_and(|t| t.incident.status == IncidentStatus::Resolved) =>
            {
                Flap::Reopen(id.clone())
            }
            _ => Flap::New,
        }
    }

    fn active_count(&self) -> usize {
        self.state
            .incidents
            .values()
            .filter(|t| t.incident.status != IncidentStatus::Resolved)
            .count()
    }

    /// Opens a new waiting incident for the signal's group; false on overflow.
    fn open_new(&mut self, sig: &Sig, gk: &str, now: i64, out: &mut Vec<Output>) -> bool {
        let limit = self.config.max_active_incidents;
        if self.active_count() >= limit {
            self.state.stats.overflow += 1;
            self.state.stats.signals -= 1;
            self.suppress(sig, None, SuppressionReason::Overflow { limit }, now, out);
            return false;
        }
        let id = describe::incident_id(gk, &sig.id);
        if self.state.incidents.contains_key(&id) {
            // This signal opened that very incident: a redelivery older than the incident's
            // remembered ids. Never overwrite it.
            self.state.stats.signals -= 1;
            self.state.stats.duplicates += 1;
            return false;
        }
        let incident = Incident {
            id: id.clone(),
            title: String::new(),
            description: String::new(),
            severity: Severity::Low,
            score: 0.0,
            status: IncidentStatus::Open,
            service_name: sig.service.clone(),
            affected_services: Vec::new(),
            detected_at: now,
            updated_at: now,
            acknowledged_at: None,
            resolved_at: None,
            correlation_id: sig.correlation_id.clone(),
            fingerprint: describe::group_fingerprint(gk),
            labels: self.group_labels(&sig.labels),
            event_ids: Vec::new(),
            anomaly_ids: Vec::new(),
            occurrences: 0,
            assignee: None,
            flapping: false,
            timeline: vec![entry(
                now,
                "detected",
                format!("detected: {}", sig.explanation()),
                ENGINE_ACTOR,
            )],
        };
        let tracked = Tracked {
            incident,
            published: false,
            manual: false,
            group_keys: BTreeSet::new(),
            signals: BTreeMap::new(),
            next_seq: 0,
            seen: SeenSet::default(),
            first_source_id: sig.id.clone(),
            first_signal_ts: sig.timestamp,
            last_signal_at: now,
            last_emit_at: now,
            dirty: false,
            has_events: false,
            event_severity: None,
            pending_correlations: Vec::new(),
            cited_deployment: None,
        };
        self.state.incidents.insert(id.clone(), tracked);
        self.join(&id, sig, gk, now, out);
        true
    }

    fn remember(&mut self, id: &str, signal_id: &str) {
        let cap = self.config.max_seen_ids;
        let Some(t) = self.state.incidents.get_mut(id) else {
            return;
        };
        if t.seen.contains(signal_id) {
            return;
        }
        let evicted = t.seen.insert(signal_id, cap);
        *self.seen_index.entry(signal_id.to_owned()).or_insert(0) += 1;
        for old in evicted {
            self.forget(&old);
        }
    }

    fn forget(&mut self, signal_id: &str) {
        if let Some(n) = self.seen_index.get_mut(signal_id) {
            *n -= 1;
            if *n == 0 {
                self.seen_index.remove(signal_id);
            }
        }
    }

    fn push_timeline(&mut self, id: &str, e: TimelineEntry) {
        let cap = self.config.max_timeline_entries;
        if let Some(t) = self.state.incidents.get_mut(id) {
            push_bounded(&mut t.incident.timeline, e, cap);
        }
    }

    /// How a signal on `service` relates to the incident: kind, score, reason.
    fn classify(
        &self,
        t: &Tracked,
        service: &str,
        name: &str,
        dt: i64,
        gk: &str,
    ) -> (CorrelationKind, f64, String) {
        let window = ms(self.config.correlation_window_ms).max(1) as f64;
        let closeness = 1.0 - (dt.max(0) as f64 / window).min(1.0);
        let after = human_duration(dt);
        if t.incident.affected_services.iter().any(|s| s == service) {
            return (
                CorrelationKind::TimeBased,
                0.5 + 0.4 * closeness,
                format!(
                    "{service} {name} became abnormal {after} after the incident's first signal on the same service"
                ),
            );
        }
        // Topology: the closest related affected service.
        let mut best: Option<(f64, String)> = None;
        for a in &t.incident.affected_services {
            let (score, reason) = if self.topology.dependencies(a).iter().any(|d| d == service) {
                (0.9, format!("{a} depends directly on {service}"))
            } else if self.topology.dependencies(service).iter().any(|d| d == a) {
                (0.9, format!("{service} depends directly on {a}"))
            } else if self.topology.upstream_of(a).contains(service) {
                (0.75, format!("{a} depends on {service} (indirectly)"))
            } else if self.topology.upstream_of(service).contains(a.as_str()) {
                (0.75, format!("{service} depends on {a} (indirectly)"))
            } else {
                continue;
            };
            if best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((score, reason));
            }
        }
        if let Some((score, reason)) = best {
            return (
                CorrelationKind::Causal,
                score,
                format!(
                    "{reason}; {service} {name} became abnormal {after} after the incident's first signal"
                ),
            );
        }
        (
            CorrelationKind::PatternBased,
            0.6,
            format!("{service} {name} shares the group labels {gk}"),
        )
    }

    fn correlation(
        incident_id: &str,
        source_id: &str,
        target_id: &str,
        (kind, score, reason): (CorrelationKind, f64, String),
        now: i64,
    ) -> Correlation {
        Correlation {
            id: describe::correlation_id(incident_id, source_id),
            incident_id: incident_id.to_owned(),
            source_id: source_id.to_owned(),
            target_id: target_id.to_owned(),
            kind,
            score,
            reason,
            created_at: now,
        }
    }

    fn emit_correlation(&mut self, id: &str, c: Correlation, out: &mut Vec<Output>) {
        if let Some(t) = self.state.incidents.get_mut(id) {
            if t.published {
                out.push(Output::Correlated(c));
            } else {
                t.pending_correlations.push(c);
            }
        }
    }

    /// Folds a signal into incident `id`.
    fn join(&mut self, id: &str, sig: &Sig, gk: &str, now: i64, out: &mut Vec<Output>) {
        self.remember(id, &sig.id);
        let crit = self.topology.criticality(&sig.service);
        let weighted = sig.score * crit;
        let interval = ms(self.config.timeline_repeat_interval_ms);
        let max_signals = self.config.max_signals_per_incident;
        let max_ids = self.config.max_evidence_ids;
        let Some(t) = self.state.incidents.get(id) else {
            return;
        };
        let is_first = t.incident.occurrences == 0;
        let dt = sig.timestamp - t.first_signal_ts;
        let known = t.signals.contains_key(&sig.fingerprint);
        let full = t.signals.len() >= max_signals;
        let classified = (!is_first && !known && !full)
            .then(|| self.classify(t, &sig.service, &sig.name, dt, gk));
        let first_source = t.first_source_id.clone();

        let mut entries = Vec::new();
        let mut corr = None;
        {
            let Some(t) = self.state.incidents.get_mut(id) else {
                return;
            };
            self.state.groups.insert(gk.to_owned(), id.to_owned());
            t.group_keys.insert(gk.to_owned());
            let inc = &mut t.incident;
            inc.occurrences += 1;
            inc.updated_at = now;
            // Evidence does not keep an incident open: only abnormal signals do.
            if !sig.evidence_only {
                t.last_signal_at = now;
            }
            t.first_signal_ts = t.first_signal_ts.min(sig.timestamp);
            if let Some(ev) = sig.event_severity {
                t.has_events = true;
                t.event_severity = Some(
                    t.event_severity
                        .map_or(ev, |e| describe::most_severe(e, ev)),
                );
            }
            let ids = if sig.event_severity.is_some() {
                &mut inc.event_ids
            } else {
                &mut inc.anomaly_ids
            };
            if ids.len() < max_ids {
                ids.push(sig.id.clone());
            }
            if let Some(s) = t.signals.get_mut(&sig.fingerprint) {
                s.count += 1;
                s.weighted_score = s.weighted_score.max(weighted);
                s.repeats_since_entry += 1;
                if now - s.last_entry_at >= interval {
                    entries.push(entry(
                        now,
                        sig.entry_kind(),
                        format!(
                            "{} {} repeated {} time(s) in the last {} ({} in total)",
                            s.service,
                            s.name,
                            s.repeats_since_entry,
                            human_duration(now - s.last_entry_at),
                            s.count
                        ),
                        ENGINE_ACTOR,
                    ));
                    corr = Some((
                        CorrelationKind::PatternBased,
                        0.95,
                        format!(
                            "same fingerprint as {} ({} {})",
                            s.first_id, s.service, s.name
                        ),
                        s.first_id.clone(),
                    ));
                    s.last_entry_at = now;
                    s.repeats_since_entry = 0;
                }
            } else if !full {
                let seq = t.next_seq;
                t.next_seq += 1;
                t.signals.insert(
                    sig.fingerprint.clone(),
                    SignalSummary {
                        seq,
                        service: sig.service.clone(),
                        name: sig.name.clone(),
                        detector: sig.detector.clone(),
                        detail: sig.detail.clone(),
                        first_id: sig.id.clone(),
                        first_ts: sig.timestamp,
                        count: 1,
                        weighted_score: weighted,
                        last_entry_at: now,
                        repeats_since_entry: 0,
                    },
                );
                if !is_first {
                    entries.push(entry(
                        now,
                        sig.entry_kind(),
                        sig.explanation(),
                        ENGINE_ACTOR,
                    ));
                }
                if let Some((kind, score, reason)) = classified {
                    corr = Some((kind, score, reason, first_source.clone()));
                }
            }
            if !inc.affected_services.iter().any(|s| s == &sig.service) {
                inc.affected_services.push(sig.service.clone());
            }
        }
        for e in entries {
            self.push_timeline(id, e);
        }
        if let Some((kind, score, reason, target)) = corr {
            let c = Self::correlation(id, &sig.id, &target, (kind, score, reason), now);
            self.emit_correlation(id, c, out);
        }
        self.after_change(id, now, out);
    }

    /// Re-roots, re-scores and re-describes an incident after new evidence, cites a
    /// deployment, and publishes it if its group interval allows.
    fn after_change(&mut self, id: &str, now: i64, out: &mut Vec<Output>) {
        let Some(t) = self.state.incidents.get(id) else {
            return;
        };
        let current = t.incident.service_name.clone();
        let root = describe::root_service(&self.topology, &t.incident.affected_services, &current);
        let deployment = self.deployment_for(t);
        let cite = deployment.filter(|d| t.cited_deployment.as_ref() != Some(d));
        let mut entries = Vec::new();
        let mut corr = None;
        let topology = &self.topology;
        let Some(t) = self.state.incidents.get_mut(id) else {
            return;
        };
        if root != current {
            t.incident.service_name = root.clone();
            entries.push(entry(
                now,
                "root",
                format!("attributed to {root}: {current} depends on it, so {root} is the upstream-most affected service"),
                ENGINE_ACTOR,
            ));
        }
        if let Some(dep) = cite {
            t.cited_deployment = Some(dep.clone());
            let sentence = describe::deployment_sentence(t, &dep);
            entries.push(entry(
                now,
                "event",
                format!("likely cause: {sentence} (event {})", dep.event_id),
                ENGINE_ACTOR,
            ));
            corr = Some((dep.event_id.clone(), sentence, t.first_source_id.clone()));
        }
        let initial = t.incident.occurrences <= 1 && !t.published;
        if let Some(prev) = describe::refresh(t, topology)
            && !initial
        {
            entries.push(entry(
                now,
                "severity",
                format!(
                    "severity {prev} → {} (score {:.2})",
                    t.incident.severity, t.incident.score
                ),
                ENGINE_ACTOR,
            ));
        }
        for e in entries {
            self.push_timeline(id, e);
        }
        if let Some((source, sentence, target)) = corr {
            let c = Self::correlation(
                id,
                &source,
                &target,
                (
                    CorrelationKind::Causal,
                    0.6,
                    format!("deployment before the first signal: {sentence}"),
                ),
                now,
            );
            self.emit_correlation(id, c, out);
        }
        let gi = ms(self.config.group_interval_ms);
        if let Some(t) = self.state.incidents.get_mut(id)
            && t.published
        {
            t.dirty = true;
            if now.saturating_sub(t.last_emit_at) >= gi {
                t.dirty = false;
                t.last_emit_at = now;
                out.push(Output::Updated(t.incident.clone()));
            }
        }
        self.schedule(id);
    }

    /// The most recent deployment of an affected service within the lookback before the
    /// incident's first signal.
    fn deployment_for(&self, t: &Tracked) -> Option<Deployment> {
        let lookback = ms(self.config.deployment_lookback_ms);
        t.incident
            .affected_services
            .iter()
            .filter_map(|s| self.state.deployments.get(s))
            .flatten()
            .filter(|d| d.at <= t.first_signal_ts && t.first_signal_ts - d.at <= lookback)
            .max_by(|a, b| (a.at, &a.event_id).cmp(&(b.at, &b.event_id)))
            .cloned()
    }

    fn on_deployment(&mut self, e: &Event, now: i64, out: &mut Vec<Output>) {
        let list = self
            .state
            .deployments
            .entry(e.service_name.clone())
            .or_default();
        if list.iter().any(|d| d.event_id == e.event_id) {
            self.state.stats.duplicates += 1;
            return;
        }
        let version = e
            .metadata
            .get("version")
            .and_then(|v| match v {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .or_else(|| e.tags.get("version").cloned());
        list.push_back(Deployment {
            event_id: e.event_id.clone(),
            service: e.service_name.clone(),
            at: e.timestamp,
            version,
        });
        while list.len() > self.config.max_deployments_per_service.max(1) {
            list.pop_front();
        }
        self.state.stats.deployments += 1;
        // A deployment that arrives after the symptoms it explains (out of order).
        let affected: Vec<String> = self
            .state
            .incidents
            .values()
            .filter(|t| {
                !t.manual
                    && t.incident.status != IncidentStatus::Resolved
                    && t.incident.affected_services.contains(&e.service_name)
            })
            .map(|t| t.incident.id.clone())
            .collect();
        for id in affected {
            let cites = self
                .state
                .incidents
                .get(&id)
                .and_then(|t| self.deployment_for(t))
                .is_some_and(|d| d.event_id == e.event_id);
            if cites {
                self.after_change(&id, now, out);
            }
        }
    }

    /// Moves everything of incident `other` into `target`.
    fn merge(&mut self, other: &str, target: &str, now: i64, out: &mut Vec<Output>) {
        let Some(o) = self.state.incidents.get(other).cloned() else {
            return;
        };
        self.state.stats.merged += 1;
        // Link the other incident's signals to the target.
        let mut links = Vec::new();
        if let Some(t) = self.state.incidents.get(target) {
            let mut sigs: Vec<&SignalSummary> = o.signals.values().collect();
            sigs.sort_by_key(|s| s.seq);
            for s in sigs {
                let (kind, score, reason) = self.classify(
                    t,
                    &s.service,
                    &s.name,
                    s.first_ts - t.first_signal_ts,
                    o.group_keys.iter().next().map_or("", String::as_str),
                );
                links.push(Self::correlation(
                    target,
                    &s.first_id,
                    &t.first_source_id,
                    (
                        kind,
                        score,
                        format!("merged from {}: {reason}", o.incident.id),
                    ),
                    now,
                ));
            }
        }
        let seen: Vec<String> = o.seen.iter().cloned().collect();
        for id in &seen {
            self.remember(target, id);
        }
        let max_signals = self.config.max_signals_per_incident;
        let max_ids = self.config.max_evidence_ids;
        if let Some(t) = self.state.incidents.get_mut(target) {
            for gk in &o.group_keys {
                t.group_keys.insert(gk.clone());
                self.state.groups.insert(gk.clone(), target.to_owned());
            }
            t.incident.occurrences += o.incident.occurrences;
            t.incident.updated_at = now;
            t.last_signal_at = t.last_signal_at.max(o.last_signal_at);
            t.first_signal_ts = t.first_signal_ts.min(o.first_signal_ts);
            t.has_events |= o.has_events;
            if let Some(ev) = o.event_severity {
                t.event_severity = Some(
                    t.event_severity
                        .map_or(ev, |e| describe::most_severe(e, ev)),
                );
            }
            for a in &o.incident.anomaly_ids {
                if t.incident.anomaly_ids.len() < max_ids && !t.incident.anomaly_ids.contains(a) {
                    t.incident.anomaly_ids.push(a.clone());
                }
            }
            for a in &o.incident.event_ids {
                if t.incident.event_ids.len() < max_ids && !t.incident.event_ids.contains(a) {
                    t.incident.event_ids.push(a.clone());
                }
            }
            let mut sigs: Vec<(&String, &SignalSummary)> = o.signals.iter().collect();
            sigs.sort_by_key(|(_, s)| s.seq);
            for (fp, s) in sigs {
                if let Some(mine) = t.signals.get_mut(fp) {
                    mine.count += s.count;
                    mine.weighted_score = mine.weighted_score.max(s.weighted_score);
                } else if t.signals.len() < max_signals {
                    let mut s = s.clone();
                    s.seq = t.next_seq;
                    t.next_seq += 1;
                    t.signals.insert(fp.clone(), s);
                }
            }
            for a in &o.incident.affected_services {
                if !t.incident.affected_services.contains(a) {
                    t.incident.affected_services.push(a.clone());
                }
            }
        }
        self.push_timeline(
            target,
            entry(
                now,
                "merged",
                format!(
                    "merged {} ({}, {} signal(s)): a new signal relates to both (same or dependent services within the correlation window)",
                    o.incident.id, o.incident.service_name, o.incident.occurrences
                ),
                ENGINE_ACTOR,
            ),
        );
        for c in links {
            self.emit_correlation(target, c, out);
        }
        if o.published {
            let cap = self.config.max_timeline_entries;
            if let Some(t) = self.state.incidents.get_mut(other) {
                t.incident.status = IncidentStatus::Resolved;
                t.incident.resolved_at = Some(now);
                t.incident.updated_at = now;
                t.group_keys.clear();
                push_bounded(
                    &mut t.incident.timeline,
                    entry(now, "merged", format!("merged into {target}"), ENGINE_ACTOR),
                    cap,
                );
                t.dirty = false;
                t.last_emit_at = now;
                out.push(Output::Updated(t.incident.clone()));
            }
            self.schedule(other);
        } else {
            self.evict(other);
        }
    }

    fn reopen_flapping(&mut self, id: &str, now: i64, out: &mut Vec<Output>) {
        self.state.stats.flapping += 1;
        let window = human_duration(ms(self.config.flap_window_ms));
        let hold = human_duration(ms(self.config.flap_resolve_after_ms));
        self.reopen_inner(
            id,
            now,
            entry(
                now,
                "flapping",
                format!("flapping: opened and resolved {} times within {window}; reopened and held open until quiet for {hold}", self.config.flap_threshold),
                ENGINE_ACTOR,
            ),
        );
        if let Some(t) = self.state.incidents.get_mut(id) {
            t.incident.flapping = true;
            t.dirty = false;
            t.last_emit_at = now;
            out.push(Output::Updated(t.incident.clone()));
        }
        self.schedule(id);
    }

    /// Resolved → open: reclaims its group keys (those no other active incident holds).
    fn reopen_inner(&mut self, id: &str, now: i64, e: TimelineEntry) {
        let cap = self.config.max_timeline_entries;
        let Some(t) = self.state.incidents.get_mut(id) else {
            return;
        };
        t.incident.status = IncidentStatus::Open;
        t.incident.resolved_at = None;
        t.incident.acknowledged_at = None;
        t.incident.updated_at = now;
        t.last_signal_at = now;
        push_bounded(&mut t.incident.timeline, e, cap);
        let keys: Vec<String> = t.group_keys.iter().cloned().collect();
        let mut kept = BTreeSet::new();
        for gk in keys {
            if !self.state.groups.contains_key(&gk) {
                self.state.groups.insert(gk.clone(), id.to_owned());
                kept.insert(gk.clone());
            }
            self.state.transitions.entry(gk).or_default().push_back(now);
        }
        if let Some(t) = self.state.incidents.get_mut(id) {
            t.group_keys = kept;
        }
    }

    fn resolve_inner(&mut self, id: &str, now: i64, e: TimelineEntry) {
        let cap = self.config.max_timeline_entries;
        let Some(t) = self.state.incidents.get_mut(id) else {
            return;
        };
        t.incident.status = IncidentStatus::Resolved;
        t.incident.resolved_at = Some(now);
        t.incident.updated_at = now;
        push_bounded(&mut t.incident.timeline, e, cap);
        let keys: Vec<String> = t.group_keys.iter().cloned().collect();
        for gk in keys {
            if self.state.groups.get(&gk).is_some_and(|g| g == id) {
                self.state.groups.remove(&gk);
            }
            self.state.last_incident.insert(gk.clone(), id.to_owned());
            self.state.transitions.entry(gk).or_default().push_back(now);
        }
        self.enforce_resolved_cap();
        self.schedule(id);
    }

    fn enforce_resolved_cap(&mut self) {
        let mut resolved: Vec<(i64, String)> = self
            .state
            .incidents
            .values()
            .filter(|t| t.incident.status == IncidentStatus::Resolved)
            .map(|t| (t.incident.resolved_at.unwrap_or(0), t.incident.id.clone()))
            .collect();
        let cap = self.config.max_resolved_incidents;
        if resolved.len() <= cap {
            return;
        }
        resolved.sort();
        let excess = resolved.len() - cap;
        for (_, id) in resolved.into_iter().take(excess) {
            self.evict(&id);
            self.state.stats.evicted += 1;
        }
    }

    fn evict(&mut self, id: &str) {
        let Some(t) = self.state.incidents.remove(id) else {
            return;
        };
        for s in t.seen.iter() {
            self.forget(s);
        }
        for gk in &t.group_keys {
            if self.state.groups.get(gk).is_some_and(|g| g == id) {
                self.state.groups.remove(gk);
            }
        }
        self.state.last_incident.retain(|_, v| v != id);
    }

    // ----------------------------------------------------------------- timers

    /// The earliest time a timer of incident `id` is due; lowers `wake_at` to it.
    fn schedule(&mut self, id: &str) {
        if let Some(t) = self.state.incidents.get(id) {
            let d = self.deadline(t);
            self.state.wake_at = self.state.wake_at.min(d);
        }
    }

    fn deadline(&self, t: &Tracked) -> i64 {
        let c = &self.config;
        let inc = &t.incident;
        if !t.published {
            return inc.detected_at.saturating_add(ms(c.group_wait_ms));
        }
        if inc.status == IncidentStatus::Resolved {
            return inc
                .resolved_at
                .unwrap_or(inc.updated_at)
                .saturating_add(ms(c.retention_ms));
        }
        let mut d = i64::MAX;
        if !t.manual {
            let quiet = if inc.flapping {
                c.flap_resolve_after_ms
            } else {
                c.resolve_after_ms
            };
            d = d.min(t.last_signal_at.saturating_add(ms(quiet)));
        }
        if t.dirty {
            d = d.min(t.last_emit_at.saturating_add(ms(c.group_interval_ms)));
        }
        if inc.status == IncidentStatus::Open {
            d = d.min(t.last_emit_at.saturating_add(ms(c.repeat_interval_ms)));
        }
        d
    }

    /// Runs the timers due at `now_ms`: publishes groups whose wait is over, resolves
    /// quiet incidents, publishes coalesced changes after `group_interval_ms`, re-publishes
    /// open incidents after `repeat_interval_ms`, and evicts resolved incidents after their
    /// retention. Signal calls run it first, so calling it is only needed when no signals
    /// arrive (e.g. once a second).
    pub fn tick(&mut self, now_ms: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if now_ms < self.state.wake_at {
            return out;
        }
        let now = now_ms;
        let c = self.config.clone();
        let ids: Vec<String> = self.state.incidents.keys().cloned().collect();
        for id in &ids {
            let Some(t) = self.state.incidents.get_mut(id) else {
                continue;
            };
            // Group wait over: publish.
            if !t.published {
                if now >= t.incident.detected_at.saturating_add(ms(c.group_wait_ms)) {
                    t.published = true;
                    t.dirty = false;
                    t.last_emit_at = now;
                    t.incident.updated_at = t.incident.updated_at.max(t.incident.detected_at);
                    out.push(Output::Opened(t.incident.clone()));
                    out.extend(t.pending_correlations.drain(..).map(Output::Correlated));
                    self.state.stats.opened += 1;
                    let keys: Vec<String> = t.group_keys.iter().cloned().collect();
                    for gk in keys {
                        self.state.transitions.entry(gk).or_default().push_back(now);
                    }
                }
                continue;
            }
            let status = t.incident.status;
            if status == IncidentStatus::Resolved {
                let at = t.incident.resolved_at.unwrap_or(t.incident.updated_at);
                if now >= at.saturating_add(ms(c.retention_ms)) {
                    self.evict(id);
                    self.state.stats.evicted += 1;
                }
                continue;
            }
            // Auto-resolve.
            let quiet = if t.incident.flapping {
                c.flap_resolve_after_ms
            } else {
                c.resolve_after_ms
            };
            if !t.manual && now >= t.last_signal_at.saturating_add(ms(quiet)) {
                let msg = format!(
                    "resolved automatically: no new signal for {}",
                    human_duration(now - t.last_signal_at)
                );
                self.resolve_inner(id, now, entry(now, "resolved", msg, ENGINE_ACTOR));
                self.state.stats.auto_resolved += 1;
                if let Some(t) = self.state.incidents.get_mut(id) {
                    t.dirty = false;
                    t.last_emit_at = now;
                    out.push(Output::Updated(t.incident.clone()));
                }
                continue;
            }
            // Coalesced changes.
            if t.dirty && now >= t.last_emit_at.saturating_add(ms(c.group_interval_ms)) {
                t.dirty = false;
                t.last_emit_at = now;
                out.push(Output::Updated(t.incident.clone()));
                continue;
            }
            // Repeat an unchanged open incident.
            if status == IncidentStatus::Open
                && now >= t.last_emit_at.saturating_add(ms(c.repeat_interval_ms))
            {
                t.last_emit_at = now;
                out.push(Output::Updated(t.incident.clone()));
            }
        }
        self.prune(now);
        // The next scan: the earliest timer, and at least once a minute for pruning.
        self.state.wake_at = self
            .state
            .incidents
            .values()
            .map(|t| self.deadline(t))
            .min()
            .unwrap_or(i64::MAX)
            .min(now.saturating_add(PRUNE_INTERVAL_MS));
        out
    }

    fn prune(&mut self, now: i64) {
        let window = ms(self.config.flap_window_ms);
        self.state.transitions.retain(|_, q| {
            while q.front().is_some_and(|&t| now.saturating_sub(t) > window) {
                q.pop_front();
            }
            !q.is_empty()
        });
        // Deployments older than the lookback plus the correlation window cannot be cited
        // by a new incident any more.
        let keep = ms(self.config.deployment_lookback_ms)
            .saturating_add(ms(self.config.correlation_window_ms))
            .saturating_add(ms(self.config.resolve_after_ms));
        self.state.deployments.retain(|_, q| {
            q.retain(|d| now.saturating_sub(d.at) <= keep);
            !q.is_empty()
        });
    }

    // -------------------------------------------------------- operator actions

    fn visible_mut(&mut self, id: &str) -> Result<&mut Tracked, CorrelateError> {
        self.state
            .incidents
            .get_mut(id)
            .filter(|t| t.published)
            .ok_or_else(|| CorrelateError::UnknownIncident { id: id.to_owned() })
    }

    fn publish_now(&mut self, id: &str, now: i64) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(t) = self.state.incidents.get_mut(id) {
            t.dirty = false;
            t.last_emit_at = now;
            out.push(Output::Updated(t.incident.clone()));
        }
        self.schedule(id);
        out
    }

    /// Open → acknowledged.
    pub fn acknowledge(
        &mut self,
        incident_id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Output>, CorrelateError> {
        let cap = self.config.max_timeline_entries;
        let t = self.visible_mut(incident_id)?;
        if t.incident.status != IncidentStatus::Open {
            return Err(invalid(incident_id, t.incident.status, "acknowledge"));
        }
        t.incident.status = IncidentStatus::Acknowledged;
        t.incident.acknowledged_at = Some(now_ms);
        t.incident.updated_at = now_ms;
        push_bounded(
            &mut t.incident.timeline,
            entry(now_ms, "status", format!("acknowledged by {actor}"), actor),
            cap,
        );
        Ok(self.publish_now(incident_id, now_ms))
    }

    /// Open or acknowledged → resolved. The group's next signal opens a new incident
    /// (unless the group is flapping).
    pub fn resolve(
        &mut self,
        incident_id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Output>, CorrelateError> {
        let t = self.visible_mut(incident_id)?;
        if t.incident.status == IncidentStatus::Resolved {
            return Err(invalid(incident_id, t.incident.status, "resolve"));
        }
        self.resolve_inner(
            incident_id,
            now_ms,
            entry(now_ms, "resolved", format!("resolved by {actor}"), actor),
        );
        Ok(self.publish_now(incident_id, now_ms))
    }

    /// Resolved → open (it must still be retained).
    pub fn reopen(
        &mut self,
        incident_id: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Output>, CorrelateError> {
        let t = self.visible_mut(incident_id)?;
        if t.incident.status != IncidentStatus::Resolved {
            return Err(invalid(incident_id, t.incident.status, "reopen"));
        }
        self.reopen_inner(
            incident_id,
            now_ms,
            entry(now_ms, "status", format!("reopened by {actor}"), actor),
        );
        Ok(self.publish_now(incident_id, now_ms))
    }

    /// Sets (or, with `None`, clears) who works on the incident.
    pub fn assign(
        &mut self,
        incident_id: &str,
        assignee: Option<&str>,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Output>, CorrelateError> {
        let cap = self.config.max_timeline_entries;
        let t = self.visible_mut(incident_id)?;
        t.incident.assignee = assignee.map(str::to_owned);
        t.incident.updated_at = now_ms;
        let msg = match assignee {
            Some(a) => format!("assigned to {a} by {actor}"),
            None => format!("unassigned by {actor}"),
        };
        push_bounded(
            &mut t.incident.timeline,
            entry(now_ms, "assigned", msg, actor),
            cap,
        );
        Ok(self.publish_now(incident_id, now_ms))
    }

    /// Adds an operator's note to the timeline.
    pub fn add_note(
        &mut self,
        incident_id: &str,
        note: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Output>, CorrelateError> {
        let cap = self.config.max_timeline_entries;
        let t = self.visible_mut(incident_id)?;
        t.incident.updated_at = now_ms;
        push_bounded(
            &mut t.incident.timeline,
            entry(now_ms, "note", note, actor),
            cap,
        );
        Ok(self.publish_now(incident_id, now_ms))
    }

    /// Opens an incident by hand. It takes no signals and never resolves by itself.
    pub fn create_manual(
        &mut self,
        m: ManualIncident,
        actor: &str,
        now_ms: i64,
    ) -> Result<Vec<Output>, CorrelateError> {
        for (field, v) in [
            ("id", &m.id),
            ("title", &m.title),
            ("service_name", &m.service_name),
        ] {
            if v.trim().is_empty() {
                return Err(CorrelateError::InvalidIncident {
                    field,
                    reason: "must not be empty".into(),
                });
            }
        }
        if self.state.incidents.contains_key(&m.id) {
            return Err(CorrelateError::DuplicateIncident { id: m.id });
        }
        if self.active_count() >= self.config.max_active_incidents {
            return Err(CorrelateError::InvalidIncident {
                field: "id",
                reason: format!(
                    "the correlator holds its maximum of {} active incidents",
                    self.config.max_active_incidents
                ),
            });
        }
        let mut affected = vec![m.service_name.clone()];
        for s in m.affected_services {
            if !affected.contains(&s) {
                affected.push(s);
            }
        }
        let incident = Incident {
            id: m.id.clone(),
            title: m.title,
            description: m.description,
            severity: m.severity,
            score: 0.0,
            status: IncidentStatus::Open,
            service_name: m.service_name,
            affected_services: affected,
            detected_at: now_ms,
            updated_at: now_ms,
            acknowledged_at: None,
            resolved_at: None,
            correlation_id: m.correlation_id,
            fingerprint: describe::group_fingerprint(&format!("manual:{}", m.id)),
            labels: BTreeMap::new(),
            event_ids: Vec::new(),
            anomaly_ids: Vec::new(),
            occurrences: 0,
            assignee: None,
            flapping: false,
            timeline: vec![entry(
                now_ms,
                "detected",
                format!("created by {actor}"),
                actor,
            )],
        };
        let out = vec![Output::Opened(incident.clone())];
        self.state.incidents.insert(
            m.id.clone(),
            Tracked {
                incident,
                published: true,
                manual: true,
                group_keys: BTreeSet::new(),
                signals: BTreeMap::new(),
                next_seq: 0,
                seen: SeenSet::default(),
                first_source_id: m.id.clone(),
                first_signal_ts: now_ms,
                last_signal_at: now_ms,
                last_emit_at: now_ms,
                dirty: false,
                has_events: false,
                event_severity: None,
                pending_correlations: Vec::new(),
                cited_deployment: None,
            },
        );
        self.state.stats.opened += 1;
        self.schedule(&m.id);
        Ok(out)
    }

    /// Adopts an operator change made through the API on another node (seen on
    /// `incidents.updated`): status (with its timestamps) and assignee, when the other
    /// copy's last status / assignment entry is newer than this one's, plus the operator
    /// entries (`status`, `resolved`, `assigned`, `note`) this copy lacks. The other node
    /// already published the change, so this returns no outputs; unknown incidents and
    /// this node's own echoes are no-ops.
    pub fn apply_external_update(&mut self, external: &Incident, now_ms: i64) -> Vec<Output> {
        let cap = self.config.max_timeline_entries;
        let Some(t) = self
            .state
            .incidents
            .get(&external.id)
            .filter(|t| t.published)
        else {
            return Vec::new();
        };
        let last = |i: &Incident, kinds: &[&str]| {
            i.timeline
                .iter()
                .filter(|e| kinds.contains(&e.kind.as_str()))
                .map(|e| e.at)
                .max()
                .unwrap_or(i64::MIN)
        };
        const STATUS: [&str; 5] = ["detected", "status", "resolved", "flapping", "merged"];
        let take_status = external.status != t.incident.status
            && last(external, &STATUS) > last(&t.incident, &STATUS);
        let take_assignee = external.assignee != t.incident.assignee
            && last(external, &["assigned"]) > last(&t.incident, &["assigned"]);
        let new_entries: Vec<TimelineEntry> = external
            .timeline
            .iter()
            .filter(|e| {
                matches!(e.kind.as_str(), "status" | "resolved" | "assigned" | "note")
                    && e.actor != ENGINE_ACTOR
                    && e.at > last(&t.incident, &[e.kind.as_str()])
                    && !t.incident.timeline.contains(e)
            })
            .cloned()
            .collect();
        let was = t.incident.status;
        let id = external.id.clone();
        if take_status {
            match external.status {
                IncidentStatus::Resolved => {
                    let at = external.resolved_at.unwrap_or(now_ms);
                    self.resolve_inner(
                        &id,
                        at,
                        entry(at, "resolved", "resolved on another node", ENGINE_ACTOR),
                    );
                    // The entry above stands in for the other node's; drop it, its own follows.
                    if let Some(t) = self.state.incidents.get_mut(&id) {
                        t.incident.timeline.pop();
                    }
                }
                IncidentStatus::Open | IncidentStatus::Acknowledged => {
                    if was == IncidentStatus::Resolved {
                        self.reopen_inner(&id, now_ms, entry(now_ms, "status", "", ENGINE_ACTOR));
                        if let Some(t) = self.state.incidents.get_mut(&id) {
                            t.incident.timeline.pop();
                        }
                    }
                    if let Some(t) = self.state.incidents.get_mut(&id) {
                        t.incident.status = external.status;
                        t.incident.acknowledged_at = external.acknowledged_at;
                    }
                }
            }
        }
        if let Some(t) = self.state.incidents.get_mut(&id) {
            if take_assignee {
                t.incident.assignee = external.assignee.clone();
            }
            for e in new_entries {
                push_bounded(&mut t.incident.timeline, e, cap);
            }
            if take_status || take_assignee {
                t.incident.updated_at = t.incident.updated_at.max(external.updated_at);
            }
        }
        self.schedule(&id);
        Vec::new()
    }
}

enum Flap {
    No,
    Reopen(String),
    New,
}

fn invalid(id: &str, from: IncidentStatus, action: &'static str) -> CorrelateError {
    CorrelateError::InvalidTransition {
        id: id.to_owned(),
        from,
        action,
    }
}

/// Appends `e`, keeping at most `cap` entries: the oldest signal entry (after the first
/// entry) makes room first, then the oldest entry after the first.
fn push_bounded(timeline: &mut Vec<TimelineEntry>, e: TimelineEntry, cap: usize) {
    timeline.push(e);
    while timeline.len() > cap.max(2) {
        let idx = timeline
            .iter()
            .skip(1)
            .position(|x| is_signal_entry(&x.kind))
            .map_or(1, |p| p + 1);
        timeline.remove(idx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeline_stays_bounded_and_keeps_the_first_entry() {
        let mut tl = vec![entry(0, "detected", "d", ENGINE_ACTOR)];
        for i in 1..50 {
            push_bounded(&mut tl, entry(i, "anomaly", "a", ENGINE_ACTOR), 10);
        }
        push_bounded(&mut tl, entry(99, "note", "n", "ops"), 10);
        assert_eq!(tl.len(), 10);
        assert_eq!(tl[0].kind, "detected");
        assert_eq!(tl.last().map(|e| e.kind.as_str()), Some("note"));
    }
}
