//! An anomaly: one detector's judgement that one point of one signal is abnormal.
//!
//! Detectors emit anomalies; the correlator turns them into incidents. An anomaly's id is
//! derived from what it is about (detector, signal, timestamp), so a detector replaying
//! the same input after a restart produces the same id and the store upserts instead of
//! duplicating.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::Severity;

/// What an anomaly was measured on.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// A metric series of a service (`latency_ms`, `cpu_usage`, …).
    Metric {
        /// The `metric_type` of the series.
        metric_type: String,
    },
    /// The rate of error events of a service.
    ErrorRate,
    /// A kind of event identified by its fingerprint.
    Pattern {
        /// The events' fingerprint.
        fingerprint: String,
    },
}

impl Signal {
    /// A short name for messages and labels: the metric type, `error_events`, or the
    /// fingerprint.
    pub fn name(&self) -> &str {
        match self {
            Signal::Metric { metric_type } => metric_type,
            Signal::ErrorRate => "error_events",
            Signal::Pattern { fingerprint } => fingerprint,
        }
    }
}

/// One abnormal point, as stored in `anomalies` and handed to the correlator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Anomaly {
    /// Deterministic id: see [`Anomaly::id_for`].
    pub id: String,
    /// Which detector flagged it: `threshold`, `zscore`, `robust_zscore`, `ewma`,
    /// `seasonal`, `changepoint`, `event_rate`, `new_pattern`.
    pub detector: String,
    /// The service the signal belongs to.
    pub service_name: String,
    /// The signal that was abnormal.
    pub signal: Signal,
    /// Event time of the abnormal point, epoch milliseconds.
    pub timestamp: i64,
    /// The observed value.
    pub value: f64,
    /// The lower edge of the range the detector expected.
    pub expected_low: f64,
    /// The upper edge of the range the detector expected.
    pub expected_high: f64,
    /// How abnormal, from 0 (normal) to 1 (certainly abnormal).
    pub score: f64,
    /// How bad, as the detector judges it.
    pub severity: Severity,
    /// One line a human can read: what was seen against what was expected.
    pub explanation: String,
    /// The event that triggered it, for event-based detectors.
    pub event_id: Option<String>,
    /// When the detector flagged it, epoch milliseconds (processing time).
    pub detected_at: i64,
}

impl Anomaly {
    /// The deterministic id of the anomaly a detector raises for a signal at a timestamp.
    pub fn id_for(detector: &str, service_name: &str, signal: &Signal, timestamp: i64) -> String {
        let mut h = Xxh3::new();
        for part in [detector, service_name, signal.name()] {
            h.update(part.as_bytes());
            h.update(&[0x1f]);
        }
        h.update(&timestamp.to_le_bytes());
        format!("an-{:016x}", h.digest())
    }

    /// The key anomalies of one problem share: the detector, the service and the signal.
    /// Repeats of one key dedup into one incident.
    pub fn fingerprint(&self) -> String {
        let mut h = Xxh3::new();
        for part in [
            self.detector.as_str(),
            &self.service_name,
            self.signal.name(),
        ] {
            h.update(part.as_bytes());
            h.update(&[0x1f]);
        }
        format!("af-{:016x}", h.digest())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_distinct() {
        let s = Signal::Metric {
            metric_type: "latency_ms".into(),
        };
        assert_eq!(
            Anomaly::id_for("zscore", "api", &s, 1),
            Anomaly::id_for("zscore", "api", &s, 1)
        );
        assert_ne!(
            Anomaly::id_for("zscore", "api", &s, 1),
            Anomaly::id_for("zscore", "api", &s, 2)
        );
        assert_ne!(
            Anomaly::id_for("zscore", "api", &s, 1),
            Anomaly::id_for("ewma", "api", &s, 1)
        );
    }

    #[test]
    fn signal_serializes_tagged() {
        let json = serde_json::to_value(Signal::ErrorRate).unwrap();
        assert_eq!(json, serde_json::json!({"kind": "error_rate"}));
    }
}
