//! What every detector answers for one point: the [`Verdict`], and the [`Detector`] trait
//! that produces it. Shared so the registry, the ensemble and the NAB harness can drive
//! any detector the same way.

use serde::{Deserialize, Serialize};

/// A detector's judgement of one point.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// How abnormal, 0 (normal) to 1 (certainly abnormal). Comparable across points of one
    /// detector; the NAB harness thresholds it.
    pub score: f64,
    /// The value the detector expected (its centre: mean, median, forecast, baseline).
    pub expected: f64,
    /// Lower edge of the expected range.
    pub expected_low: f64,
    /// Upper edge of the expected range.
    pub expected_high: f64,
    /// Whether the detector flags this point (its own threshold crossed).
    pub anomalous: bool,
    /// The deviation in standard deviations (signed: positive above), when the detector
    /// measures one.
    pub sigmas: Option<f64>,
}

impl Verdict {
    /// The verdict while a detector has too little history to judge: normal, with an
    /// expected range that is just the point itself.
    pub fn warming_up(value: f64) -> Self {
        Verdict {
            score: 0.0,
            expected: value,
            expected_low: value,
            expected_high: value,
            anomalous: false,
            sigmas: None,
        }
    }

    /// Whether the observed value was above the expected centre.
    pub fn is_above(&self, value: f64) -> bool {
        value > self.expected
    }
}

/// An online anomaly detector over one series of `(timestamp, value)` points.
///
/// Implementations are deterministic (time comes only from the points), cost O(1)
/// amortised (at most O(log n) for order statistics) per point, and keep bounded state.
/// Points are judged *before* they update the model, so an anomaly cannot mask itself.
pub trait Detector {
    /// The detector's name as it appears in anomalies (`zscore`, `seasonal`, …).
    fn name(&self) -> &'static str;

    /// Judges one point and learns from it. Timestamps are epoch milliseconds and should
    /// be non-decreasing; a non-finite value is judged normal and not learned.
    fn observe(&mut self, timestamp_ms: i64, value: f64) -> Verdict;
}
