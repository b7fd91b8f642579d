//! Exponentially weighted mean and variance: a detector with O(1) state (three numbers)
//! that forgets old behaviour at a chosen rate, for series whose normal level wanders.

use serde::{Deserialize, Serialize};

use crate::stats::sigma_score;
use crate::{Detector, Verdict};

/// Configuration of an [`EwmaDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EwmaConfig {
    /// Smoothing factor in (0, 1]: weight of the newest point (≈ 2/(N+1) for an N-point
    /// memory).
    pub alpha: f64,
    /// |z| at or above which a point is anomalous.
    pub threshold: f64,
    /// Points needed before judging.
    pub min_points: u64,
    /// Floor on σ relative to |mean|.
    pub min_relative_spread: f64,
}

impl Default for EwmaConfig {
    fn default() -> Self {
        EwmaConfig {
            alpha: 0.02,
            threshold: 4.0,
            min_points: 30,
            min_relative_spread: 1e-3,
        }
    }
}

/// EWMA mean/variance z-score detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EwmaDetector {
    config: EwmaConfig,
    mean: f64,
    var: f64,
    seen: u64,
}

impl EwmaDetector {
    /// A detector that has seen nothing.
    pub fn new(config: EwmaConfig) -> Self {
        EwmaDetector {
            config,
            mean: 0.0,
            var: 0.0,
            seen: 0,
        }
    }
}

impl Detector for EwmaDetector {
    fn name(&self) -> &'static str {
        "ewma"
    }

    fn observe(&mut self, _timestamp_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming_up(value);
        }
        let cfg = &self.config;
        let v = if self.seen < cfg.min_points.max(2) {
            Verdict::warming_up(value)
        } else {
            let sigma = self
                .var
                .sqrt()
                .max(cfg.min_relative_spread * self.mean.abs())
                .max(1e-9);
            let z = (value - self.mean) / sigma;
            Verdict {
                score: sigma_score(z),
                expected: self.mean,
                expected_low: self.mean - cfg.threshold * sigma,
                expected_high: self.mean + cfg.threshold * sigma,
                anomalous: z.abs() >= cfg.threshold,
                sigmas: Some(z),
            }
        };
        // Warm-up uses a cumulative average so early points are not over-weighted.
        self.seen += 1;
        let alpha = cfg.alpha.clamp(1e-6, 1.0).max(1.0 / self.seen as f64);
        let diff = value - self.mean;
        let incr = alpha * diff;
        self.mean += incr;
        self.var = (1.0 - alpha) * (self.var + diff * incr);
        v
    }
}
