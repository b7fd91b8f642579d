//! [`CorrelatorState`]: everything the correlator knows, as one serde value the wiring
//! layer checkpoints together with the log positions it reflects.
//!
//! Every map is ordered (`BTreeMap`) so a snapshot serializes the same way twice and a
//! restored correlator iterates in the same order as the original: replaying the same
//! inputs after a restore yields identical outputs.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use serde::{Deserialize, Serialize};
use sightline_model::{Correlation, Incident, Severity};

/// The snapshot format this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// A bounded set of ids that remembers the most recent `cap` insertions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(from = "VecDeque<String>", into = "VecDeque<String>")]
pub(crate) struct SeenSet {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl From<VecDeque<String>> for SeenSet {
    fn from(order: VecDeque<String>) -> Self {
        let set = order.iter().cloned().collect();
        Self { order, set }
    }
}

impl From<SeenSet> for VecDeque<String> {
    fn from(s: SeenSet) -> Self {
        s.order
    }
}

impl SeenSet {
    pub(crate) fn contains(&self, id: &str) -> bool {
        self.set.contains(id)
    }

    /// Inserts `id`; returns the id evicted to stay within `cap`, if any. Inserting a
    /// present id does nothing.
    pub(crate) fn insert(&mut self, id: &str, cap: usize) -> Vec<String> {
        if self.set.contains(id) {
            return Vec::new();
        }
        self.set.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        let mut evicted = Vec::new();
        while self.order.len() > cap.max(1) {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
                evicted.push(old);
            }
        }
        evicted
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &String> {
        self.order.iter()
    }

    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }
}

/// What a signal summary describes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Detail {
    Anomaly {
        value: f64,
        expected_low: f64,
        expected_high: f64,
        explanation: String,
    },
    Event {
        event_type: String,
        details: String,
    },
}

/// One distinct signal (fingerprint) folded into an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct SignalSummary {
    /// Order of first arrival within the incident.
    pub(crate) seq: u32,
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) detector: String,
    pub(crate) detail: Detail,
    /// The first signal id with this fingerprint (target of pattern correlations).
    pub(crate) first_id: String,
    /// Event time of the first signal.
    pub(crate) first_ts: i64,
    pub(crate) count: u64,
    /// Highest detector score × service criticality seen.
    pub(crate) weighted_score: f64,
    /// When this fingerprint last added a timeline entry.
    pub(crate) last_entry_at: i64,
    /// Repeats since that entry.
    pub(crate) repeats_since_entry: u64,
}

/// A deployment remembered as a possible cause.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Deployment {
    pub(crate) event_id: String,
    pub(crate) service: String,
    /// Event time.
    pub(crate) at: i64,
    pub(crate) version: Option<String>,
}

/// One incident and the bookkeeping behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tracked {
    pub(crate) incident: Incident,
    /// False while the group waits (`group_wait_ms`): not yet published.
    pub(crate) published: bool,
    /// Created by an operator: no signals, no auto-resolve.
    pub(crate) manual: bool,
    pub(crate) group_keys: BTreeSet<String>,
    pub(crate) signals: BTreeMap<String, SignalSummary>,
    pub(crate) next_seq: u32,
    pub(crate) seen: SeenSet,
    pub(crate) first_source_id: String,
    /// Event time of the earliest signal.
    pub(crate) first_signal_ts: i64,
    /// Processing time (`now_ms`) of the last signal.
    pub(crate) last_signal_at: i64,
    /// Processing time of the last `Opened`/`Updated` output.
    pub(crate) last_emit_at: i64,
    /// Changed since the last output (waiting for `group_interval_ms`).
    pub(crate) dirty: bool,
    pub(crate) has_events: bool,
    /// Most severe event severity folded in.
    pub(crate) event_severity: Option<Severity>,
    /// Correlations made while the group waited, published right after `Opened`.
    pub(crate) pending_correlations: Vec<Correlation>,
    pub(crate) cited_deployment: Option<Deployment>,
}

/// Counters of what the correlator did; part of the state, so they survive restores.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorrelatorStats {
    /// Signals (anomalies and qualifying events) taken in, duplicates excluded.
    pub signals: u64,
    /// Redelivered signal ids ignored.
    pub duplicates: u64,
    /// Signals ignored: events below `min_event_severity`, and evidence (events or
    /// anomalies below their opening severity) with no active incident to join.
    pub ignored_events: u64,
    /// Deployments remembered.
    pub deployments: u64,
    /// Signals suppressed by a silence.
    pub silenced: u64,
    /// Signals suppressed by inhibition.
    pub inhibited: u64,
    /// Signals suppressed because `max_active_incidents` was reached.
    pub overflow: u64,
    /// Incidents published as `Opened` (manual ones included).
    pub opened: u64,
    /// Incidents merged into another.
    pub merged: u64,
    /// Times a resolved incident was held open as flapping.
    pub flapping: u64,
    /// Incidents resolved automatically.
    pub auto_resolved: u64,
    /// Resolved incidents evicted from the state.
    pub evicted: u64,
}

/// The correlator's whole state: take it with [`crate::Correlator::snapshot`], give it back
/// to [`crate::Correlator::restore`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrelatorState {
    /// Snapshot format version ([`STATE_VERSION`]).
    pub version: u32,
    pub(crate) incidents: BTreeMap<String, Tracked>,
    /// Group key → the active incident holding it.
    pub(crate) groups: BTreeMap<String, String>,
    /// Group key → the last incident that held it (for flapping).
    pub(crate) last_incident: BTreeMap<String, String>,
    /// Group key → times its incidents opened or resolved.
    pub(crate) transitions: BTreeMap<String, VecDeque<i64>>,
    /// Service → recent deployments, oldest first.
    pub(crate) deployments: BTreeMap<String, VecDeque<Deployment>>,
    pub(crate) suppressed_ids: SeenSet,
    pub(crate) silences: Vec<sightline_model::Silence>,
    pub(crate) stats: CorrelatorStats,
    /// Earliest time a timer may be due: `tick` scans nothing before it. Part of the state
    /// so that a restored correlator scans (and prunes) exactly when the original did.
    pub(crate) wake_at: i64,
}

impl Default for CorrelatorState {
    fn default() -> Self {
        Self {
            version: STATE_VERSION,
            incidents: BTreeMap::new(),
            groups: BTreeMap::new(),
            last_incident: BTreeMap::new(),
            transitions: BTreeMap::new(),
            deployments: BTreeMap::new(),
            suppressed_ids: SeenSet::default(),
            silences: Vec::new(),
            stats: CorrelatorStats::default(),
            wake_at: i64::MIN,
        }
    }
}

impl CorrelatorState {
    /// Counters.
    pub fn stats(&self) -> &CorrelatorStats {
        &self.stats
    }

    /// Incidents held (waiting, active and retained resolved ones).
    pub fn incident_count(&self) -> usize {
        self.incidents.len()
    }

    /// A rough measure of the state's size, for boundedness checks: incidents, their
    /// remembered ids, signals and timeline entries, plus the global maps.
    pub fn size_hint(&self) -> usize {
        let per_incident: usize = self
            .incidents
            .values()
            .map(|t| {
                1 + t.seen.len()
                    + t.signals.len()
                    + t.incident.timeline.len()
                    + t.incident.anomaly_ids.len()
                    + t.incident.event_ids.len()
                    + t.pending_correlations.len()
            })
            .sum();
        per_incident
            + self.groups.len()
            + self.last_incident.len()
            + self.transitions.values().map(VecDeque::len).sum::<usize>()
            + self.deployments.values().map(VecDeque::len).sum::<usize>()
            + self.suppressed_ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_set_keeps_the_most_recent_and_round_trips() {
        let mut s = SeenSet::default();
        for i in 0..5 {
            s.insert(&format!("id-{i}"), 3);
        }
        assert_eq!(s.len(), 3);
        assert!(!s.contains("id-1"));
        assert!(s.contains("id-4"));
        assert!(s.insert("id-4", 3).is_empty(), "present: no eviction");
        let json = serde_json::to_string(&s).expect("json");
        assert_eq!(json, r#"["id-2","id-3","id-4"]"#);
        let back: SeenSet = serde_json::from_str(&json).expect("back");
        assert!(back.contains("id-3"));
        assert_eq!(back, s);
    }
}
