//! [`CorrelatorConfig`]: every knob of the correlator, with its default and why.
//!
//! Durations are milliseconds (`*_ms`), like every timestamp in the model. The config is
//! part of the `[correlate]` section of the node's TOML file; unknown keys are refused so a
//! typo never silently falls back to a default.

use serde::{Deserialize, Serialize};
use sightline_model::Severity;

use crate::CorrelateError;

/// How the correlator groups, times, bounds and scores. `CorrelatorConfig::default()` is a
/// sensible production setting; see each field for its default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelatorConfig {
    /// Labels whose values form a signal's group key (Alertmanager's `group_by`). Known
    /// labels: `service`, `signal` (metric type, `error_events` or fingerprint), `detector`,
    /// `severity`, `environment`, `host`, and any event tag. Empty puts every signal in
    /// one group. Default `["service"]`: one incident per service, which topology
    /// correlation then folds into the upstream-most service's incident.
    pub group_by: Vec<String>,
    /// How long a new group collects signals before its incident is published
    /// (`Opened`). Default 10 s: long enough for a cascade's first downstream symptoms to
    /// land in the same first notification with the right root, short enough that a
    /// page is not delayed noticeably. Later signals still fold into the open incident.
    pub group_wait_ms: u64,
    /// Least time between two `Updated` outputs of one incident caused by new signals
    /// (changes in between are coalesced into one). Status changes and operator actions
    /// are published at once. Default 30 s.
    pub group_interval_ms: u64,
    /// An open (not acknowledged) incident that has not been published for this long is
    /// published again unchanged, so a lost notification is repaired. Default 1 h.
    pub repeat_interval_ms: u64,
    /// A signal folds into an existing incident on a related service (topology) or the
    /// same service (other signal) only when that incident had a signal within this
    /// window. Default 5 min.
    pub correlation_window_ms: u64,
    /// An incident with no new signal for this long resolves itself (signals are "still
    /// abnormal" evidence). Default 5 min.
    pub resolve_after_ms: u64,
    /// A group whose incidents opened and resolved this many times (each open and each
    /// resolve counts one) within `flap_window_ms` is flapping: the next signal reopens
    /// the last incident with `flapping = true` instead of opening a new one. Default 4
    /// (the third opening within the window is held as flapping).
    pub flap_threshold: u32,
    /// The window over which transitions are counted. Default 1 h.
    pub flap_window_ms: u64,
    /// A flapping incident resolves itself only after this long without signals (it is
    /// "held open"). Default 30 min.
    pub flap_resolve_after_ms: u64,
    /// Least severe event that counts as evidence: it joins the active incident of its
    /// group, or of a related service within the correlation window (its id and a
    /// timeline entry), but neither opens an incident nor keeps one open. Less severe
    /// events (and every `info` one) are ignored. Default `high` (`ERROR`-type events and
    /// worse).
    pub min_event_severity: Severity,
    /// Least severe event that opens (and keeps open) an incident by itself, like an
    /// anomaly. Default none: incidents open on anomalies, because every service has a
    /// baseline of routine errors, even `critical` ones, and paging on each would bury
    /// the real problems; the detectors (error-event rate against its baseline, new error
    /// patterns, metrics) decide what is abnormal. `critical` makes every critical event
    /// an incident (for sources that only send what must page).
    pub min_opening_event_severity: Option<Severity>,
    /// Least severe anomaly that opens (and keeps open) an incident. Less severe anomalies
    /// are evidence, like events below `min_opening_event_severity`: they join an active
    /// incident of their group or a related service, and show in its timeline, but a
    /// lone marginal deviation (a detector just past its threshold) pages no one.
    /// Default `high`; `low` opens on every anomaly.
    pub min_opening_anomaly_severity: Severity,
    /// A deployment of an affected service this long (or less) before an incident's
    /// first signal is cited as a likely cause. Default 30 min.
    pub deployment_lookback_ms: u64,
    /// Deployments remembered per service (most recent kept). Default 5.
    pub max_deployments_per_service: usize,
    /// Whether an open critical incident inhibits `medium`/`low` signals on services
    /// downstream of its root. Default true.
    pub inhibit: bool,
    /// How long a resolved incident stays in the correlator's state (for flapping,
    /// reopen and redelivery checks) before it is evicted. Default 2 h.
    pub retention_ms: u64,
    /// Most active (waiting, open or acknowledged) incidents. A signal that would open
    /// one more is suppressed with reason `overflow` and counted. Default 10 000.
    pub max_active_incidents: usize,
    /// Most resolved incidents kept; the oldest are evicted first. Default 10 000.
    pub max_resolved_incidents: usize,
    /// Signal ids remembered per incident for redelivery detection (most recent kept).
    /// Default 4096.
    pub max_seen_ids: usize,
    /// Most ids kept in an incident's `anomaly_ids` / `event_ids` (the first ones:
    /// later repeats only count in `occurrences`). Default 500.
    pub max_evidence_ids: usize,
    /// Most distinct signals (fingerprints) tracked per incident; further fingerprints
    /// count in `occurrences` only. Default 100.
    pub max_signals_per_incident: usize,
    /// Most timeline entries per incident; the oldest signal entries make room first.
    /// Default 200.
    pub max_timeline_entries: usize,
    /// Repeats of one fingerprint add a timeline entry (and a pattern correlation) at
    /// most once per this interval, so a storm does not grow the timeline. Default 60 s.
    pub timeline_repeat_interval_ms: u64,
    /// Ids of suppressed signals remembered for redelivery detection. Default 10 000.
    pub max_suppressed_ids: usize,
}

impl Default for CorrelatorConfig {
    fn default() -> Self {
        Self {
            group_by: vec!["service".to_owned()],
            group_wait_ms: 10_000,
            group_interval_ms: 30_000,
            repeat_interval_ms: 3_600_000,
            correlation_window_ms: 300_000,
            resolve_after_ms: 300_000,
            flap_threshold: 4,
            flap_window_ms: 3_600_000,
            flap_resolve_after_ms: 1_800_000,
            min_event_severity: Severity::High,
            min_opening_event_severity: None,
            min_opening_anomaly_severity: Severity::High,
            deployment_lookback_ms: 1_800_000,
            max_deployments_per_service: 5,
            inhibit: true,
            retention_ms: 7_200_000,
            max_active_incidents: 10_000,
            max_resolved_incidents: 10_000,
            max_seen_ids: 4096,
            max_evidence_ids: 500,
            max_signals_per_incident: 100,
            max_timeline_entries: 200,
            timeline_repeat_interval_ms: 60_000,
            max_suppressed_ids: 10_000,
        }
    }
}

impl CorrelatorConfig {
    /// Checks the settings that would make the correlator misbehave: a group wait not
    /// shorter than the resolve delay, zero caps, an empty label name, a zero flap
    /// threshold.
    pub fn validate(&self) -> Result<(), CorrelateError> {
        let bad = |field: &str, reason: String| {
            Err(CorrelateError::InvalidConfig {
                field: field.to_owned(),
                reason,
            })
        };
        if let Some(i) = self.group_by.iter().position(|l| l.trim().is_empty()) {
            return bad(&format!("group_by[{i}]"), "empty label name".into());
        }
        if self.group_wait_ms >= self.resolve_after_ms {
            return bad(
                "group_wait_ms",
                format!(
                    "{} ms must be shorter than resolve_after_ms ({} ms)",
                    self.group_wait_ms, self.resolve_after_ms
                ),
            );
        }
        if self.resolve_after_ms == 0 {
            return bad("resolve_after_ms", "must be positive".into());
        }
        if self.flap_resolve_after_ms < self.resolve_after_ms {
            return bad(
                "flap_resolve_after_ms",
                format!(
                    "{} ms must be at least resolve_after_ms ({} ms)",
                    self.flap_resolve_after_ms, self.resolve_after_ms
                ),
            );
        }
        if self.flap_threshold == 0 {
            return bad("flap_threshold", "must be at least 1".into());
        }
        for (field, v) in [
            ("max_active_incidents", self.max_active_incidents),
            ("max_resolved_incidents", self.max_resolved_incidents),
            ("max_seen_ids", self.max_seen_ids),
            ("max_evidence_ids", self.max_evidence_ids),
            ("max_signals_per_incident", self.max_signals_per_incident),
            ("max_suppressed_ids", self.max_suppressed_ids),
        ] {
            if v == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if self.max_timeline_entries < 2 {
            return bad("max_timeline_entries", "must be at least 2".into());
        }
        Ok(())
    }
}

/// A config duration as a signed offset for arithmetic on epoch milliseconds.
pub(crate) fn ms(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_unknown_keys_are_refused() {
        CorrelatorConfig::default()
            .validate()
            .expect("defaults are valid");
        let c: CorrelatorConfig =
            serde_json::from_str(r#"{"group_wait_ms": 5000}"#).expect("partial config");
        assert_eq!(c.group_wait_ms, 5000);
        assert_eq!(c.group_by, ["service"]);
        let err = serde_json::from_str::<CorrelatorConfig>(r#"{"group_wiat_ms": 1}"#)
            .expect_err("typo refused");
        assert!(err.to_string().contains("group_wiat_ms"), "{err}");
    }

    #[test]
    fn group_wait_must_be_shorter_than_resolve_after() {
        let c = CorrelatorConfig {
            group_wait_ms: 400_000,
            ..CorrelatorConfig::default()
        };
        match c.validate() {
            Err(CorrelateError::InvalidConfig { field, .. }) => assert_eq!(field, "group_wait_ms"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
