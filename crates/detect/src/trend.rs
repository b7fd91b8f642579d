//! Saturation forecast: a series climbing steadily toward its capacity (a memory leak, a
//! filling disk) is a problem hours before any single point looks abnormal.
//!
//! Deviation detectors compare a point with the series' recent behaviour, so a slow,
//! steady climb becomes the new normal as it goes: a leak that takes three hours to
//! exhaust memory is only noticed when the process dies. This detector fits a least-
//! squares line to the last `window_ms` of points (running sums over a sliding window:
//! O(1) amortised per point, memory bounded by the points in one window) and, like
//! Prometheus' `predict_linear`, projects when the line reaches `capacity`. A fit that is
//! clearly a climb (slope > 0, coefficient of determination ≥ `min_r2`) and reaches
//! capacity within `horizon_ms` is anomalous, with score 1 (severity high: there is time
//! to act, but not to wait).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::{Detector, Verdict};

/// Configuration of a [`TrendDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrendConfig {
    /// The fitting window. Default 30 min.
    pub window_ms: i64,
    /// Fewest points in the window for a fit. Default 30.
    pub min_points: usize,
    /// The level the series cannot pass (100 for a percentage). Default 100.
    pub capacity: f64,
    /// How soon reaching capacity is worth flagging. Default 4 h.
    pub horizon_ms: i64,
    /// Least coefficient of determination of the fit: how much of the window's variation
    /// the climb explains (noise around a flat line scores near 0). Default 0.8.
    pub min_r2: f64,
}

impl Default for TrendConfig {
    fn default() -> Self {
        TrendConfig {
            window_ms: 30 * 60_000,
            min_points: 30,
            capacity: 100.0,
            horizon_ms: 4 * 3_600_000,
            min_r2: 0.8,
        }
    }
}

/// Least-squares trend toward capacity over a sliding window (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrendDetector {
    config: TrendConfig,
    /// Points in the window: (seconds since `origin`, value).
    points: VecDeque<(f64, f64)>,
    /// Timestamp the point times are measured from (keeps the sums well conditioned).
    origin: Option<i64>,
    sum_t: f64,
    sum_v: f64,
    sum_tt: f64,
    sum_tv: f64,
    sum_vv: f64,
}

impl TrendDetector {
    /// A detector that has seen nothing.
    pub fn new(config: TrendConfig) -> Self {
        TrendDetector {
            config,
            points: VecDeque::new(),
            origin: None,
            sum_t: 0.0,
            sum_v: 0.0,
            sum_tt: 0.0,
            sum_tv: 0.0,
            sum_vv: 0.0,
        }
    }

    fn add(&mut self, t: f64, v: f64, sign: f64) {
        self.sum_t += sign * t;
        self.sum_v += sign * v;
        self.sum_tt += sign * t * t;
        self.sum_tv += sign * t * v;
        self.sum_vv += sign * v * v;
    }

    /// Slope (per second), intercept and r² of the window's fit; `None` when degenerate.
    fn fit(&self) -> Option<(f64, f64, f64)> {
        let n = self.points.len() as f64;
        let var_t = self.sum_tt / n - (self.sum_t / n).powi(2);
        let var_v = self.sum_vv / n - (self.sum_v / n).powi(2);
        let cov = self.sum_tv / n - (self.sum_t / n) * (self.sum_v / n);
        if var_t <= f64::EPSILON || var_v <= f64::EPSILON {
            return None;
        }
        let slope = cov / var_t;
        let intercept = self.sum_v / n - slope * self.sum_t / n;
        Some((
            slope,
            intercept,
            (cov * cov / (var_t * var_v)).clamp(0.0, 1.0),
        ))
    }
}

impl Detector for TrendDetector {
    fn name(&self) -> &'static str {
        "trend"
    }

    fn observe(&mut self, timestamp_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming_up(value);
        }
        let origin = *self.origin.get_or_insert(timestamp_ms);
        let t = (timestamp_ms - origin) as f64 / 1000.0;
        self.points.push_back((t, value));
        self.add(t, value, 1.0);
        let oldest = t - self.config.window_ms as f64 / 1000.0;
        while let Some(&(pt, pv)) = self.points.front() {
            if pt > oldest {
                break;
            }
            self.points.pop_front();
            self.add(pt, pv, -1.0);
        }
        if self.points.is_empty() {
            // Re-base the origin so the sums stay small on long-lived series.
            self.origin = None;
            self.sum_t = 0.0;
            self.sum_v = 0.0;
            self.sum_tt = 0.0;
            self.sum_tv = 0.0;
            self.sum_vv = 0.0;
        }
        if self.points.len() < self.config.min_points.max(3) {
            return Verdict::warming_up(value);
        }
        let Some((slope, intercept, r2)) = self.fit() else {
            return Verdict::warming_up(value);
        };
        let start = self.points.front().map_or(t, |p| p.0);
        let level_then = intercept + slope * start;
        let level_now = intercept + slope * t;
        let normal = Verdict {
            score: 0.0,
            expected: level_then,
            expected_low: level_then.min(level_now),
            expected_high: self.config.capacity,
            anomalous: false,
            sigmas: None,
        };
        if slope <= 0.0 || r2 < self.config.min_r2 {
            return normal;
        }
        let to_capacity_ms = (self.config.capacity - level_now).max(0.0) / slope * 1000.0;
        let horizon = self.config.horizon_ms.max(1) as f64;
        if to_capacity_ms > horizon {
            return normal;
        }
        Verdict {
            score: 1.0,
            anomalous: true,
            ..normal
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn noise(i: i64) -> f64 {
        // Deterministic ±1 jitter.
        ((i * 7919) % 200) as f64 / 100.0 - 1.0
    }

    #[test]
    fn a_flat_noisy_series_never_trends() {
        let mut d = TrendDetector::new(TrendConfig::default());
        for i in 0..2_000 {
            assert!(
                !d.observe(i * 10_000, 60.0 + noise(i)).anomalous,
                "point {i}"
            );
        }
    }

    #[test]
    fn a_leak_is_flagged_as_soon_as_capacity_is_within_the_horizon() {
        let mut d = TrendDetector::new(TrendConfig::default());
        // 40% climbing 10% an hour: 100% in 6 h. Flagged once 4 h remain (at 60%).
        let mut first = None;
        for i in 0..(8 * 360) {
            let t = i * 10_000;
            let v = (40.0 + 10.0 * t as f64 / 3_600_000.0).min(100.0) + noise(i) * 0.5;
            let verdict = d.observe(t, v);
            if verdict.anomalous && first.is_none() {
                first = Some(t);
                assert_eq!(verdict.score, 1.0);
            }
        }
        let first = first.expect("flagged");
        assert!(
            (110 * MIN..=130 * MIN).contains(&first),
            "first at {} min",
            first / MIN
        );
    }

    #[test]
    fn a_daily_rise_far_from_capacity_is_not_a_leak() {
        let mut d = TrendDetector::new(TrendConfig::default());
        // CPU 20% → 35% over a morning: 100% would take a day.
        for i in 0..(6 * 360) {
            let t = i * 10_000;
            let v = 20.0 + 2.5 * t as f64 / 3_600_000.0 + noise(i);
            assert!(!d.observe(t, v).anomalous);
        }
    }
}
