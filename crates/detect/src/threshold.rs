//! A static threshold with a `for` duration, as Prometheus alerting rules have: the
//! condition must hold continuously for `for_ms` before the point is anomalous (pending →
//! firing), so a single noisy sample does not page anyone.

use serde::{Deserialize, Serialize};

use crate::{Detector, Verdict};

/// Which side of the limit is abnormal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Values strictly above the limit.
    #[default]
    Above,
    /// Values strictly below the limit.
    Below,
}

/// Configuration of a [`ThresholdDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// The limit.
    pub limit: f64,
    /// Which side of it is abnormal.
    #[serde(default)]
    pub direction: Direction,
    /// How long (ms) the condition must hold before firing; 0 fires at once.
    #[serde(default)]
    pub for_ms: i64,
}

/// Alert state of a threshold rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Condition false.
    Inactive,
    /// Condition true since `since`, not yet for long enough.
    Pending {
        /// When the condition became true.
        since: i64,
    },
    /// Condition true for at least the `for` duration.
    Firing {
        /// When the condition became true.
        since: i64,
    },
}

/// Static threshold detector (Prometheus-style pending → firing).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThresholdDetector {
    config: ThresholdConfig,
    state: AlertState,
}

impl ThresholdDetector {
    /// A detector in the inactive state.
    pub fn new(config: ThresholdConfig) -> Self {
        ThresholdDetector {
            config,
            state: AlertState::Inactive,
        }
    }

    /// The current alert state.
    pub fn state(&self) -> AlertState {
        self.state
    }
}

impl Detector for ThresholdDetector {
    fn name(&self) -> &'static str {
        "threshold"
    }

    fn observe(&mut self, timestamp_ms: i64, value: f64) -> Verdict {
        let limit = self.config.limit;
        let breached = match self.config.direction {
            Direction::Above => value > limit,
            Direction::Below => value < limit,
        };
        self.state = if !value.is_finite() || !breached {
            AlertState::Inactive
        } else {
            let since = match self.state {
                AlertState::Pending { since } | AlertState::Firing { since } => since,
                AlertState::Inactive => timestamp_ms,
            };
            if timestamp_ms.saturating_sub(since) >= self.config.for_ms {
                AlertState::Firing { since }
            } else {
                AlertState::Pending { since }
            }
        };
        let (low, high) = match self.config.direction {
            Direction::Above => (f64::NEG_INFINITY, limit),
            Direction::Below => (limit, f64::INFINITY),
        };
        let score = match self.state {
            AlertState::Inactive => 0.0,
            AlertState::Pending { .. } => 0.5,
            AlertState::Firing { .. } => 1.0,
        };
        Verdict {
            score,
            expected: limit,
            expected_low: low,
            expected_high: high,
            anomalous: matches!(self.state, AlertState::Firing { .. }),
            sigmas: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_then_firing_then_resolved() {
        let mut d = ThresholdDetector::new(ThresholdConfig {
            limit: 100.0,
            direction: Direction::Above,
            for_ms: 60_000,
        });
        assert!(!d.observe(0, 50.0).anomalous);
        let v = d.observe(10_000, 150.0);
        assert!(!v.anomalous);
        assert_eq!(d.state(), AlertState::Pending { since: 10_000 });
        assert!(!d.observe(40_000, 150.0).anomalous);
        assert!(d.observe(70_000, 150.0).anomalous);
        assert_eq!(d.state(), AlertState::Firing { since: 10_000 });
        assert!(!d.observe(80_000, 90.0).anomalous);
        // a blip shorter than `for` never fires
        assert!(!d.observe(90_000, 200.0).anomalous);
        assert!(!d.observe(100_000, 10.0).anomalous);
        assert_eq!(d.state(), AlertState::Inactive);
    }

    #[test]
    fn below_fires_immediately_without_for() {
        let mut d = ThresholdDetector::new(ThresholdConfig {
            limit: 1.0,
            direction: Direction::Below,
            for_ms: 0,
        });
        assert!(d.observe(0, 0.5).anomalous);
        assert!(!d.observe(1, 1.5).anomalous);
    }
}
