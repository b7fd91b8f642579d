//! Rolling z-score (mean/standard deviation over the last `window` points) and robust
//! z-score (median/MAD over the last `window` points): the simplest detectors that adapt
//! to a series' level and spread. The robust one is not dragged by the outliers it is
//! looking for.

use serde::{Deserialize, Serialize};

use crate::stats::sigma_score;
use crate::window::{RollingStats, SortedWindow};
use crate::{Detector, Verdict};

/// Consistency constant: MAD × 1.4826 estimates σ for normal data.
const MAD_TO_SIGMA: f64 = 1.4826;

/// Configuration shared by [`ZScoreDetector`] and [`RobustZScoreDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ZScoreConfig {
    /// Points in the rolling window (memory bound).
    pub window: usize,
    /// |z| at or above which a point is anomalous.
    pub threshold: f64,
    /// Points needed before judging.
    pub min_points: usize,
    /// Floor on the spread, relative to |centre| (a flat series otherwise makes every
    /// change infinitely surprising).
    pub min_relative_spread: f64,
}

impl Default for ZScoreConfig {
    fn default() -> Self {
        ZScoreConfig {
            window: 360,
            threshold: 4.0,
            min_points: 30,
            min_relative_spread: 1e-3,
        }
    }
}

fn verdict(value: f64, center: f64, sigma: f64, cfg: &ZScoreConfig) -> Verdict {
    let sigma = sigma.max(cfg.min_relative_spread * center.abs()).max(1e-9);
    let z = (value - center) / sigma;
    Verdict {
        score: sigma_score(z),
        expected: center,
        expected_low: center - cfg.threshold * sigma,
        expected_high: center + cfg.threshold * sigma,
        anomalous: z.abs() >= cfg.threshold,
        sigmas: Some(z),
    }
}

/// Rolling mean/σ z-score detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZScoreDetector {
    config: ZScoreConfig,
    window: RollingStats,
}

impl ZScoreDetector {
    /// A detector with an empty window.
    pub fn new(config: ZScoreConfig) -> Self {
        let window = RollingStats::new(config.window);
        ZScoreDetector { config, window }
    }

    /// Points currently held (≤ `window`).
    pub fn held(&self) -> usize {
        self.window.len()
    }
}

impl Detector for ZScoreDetector {
    fn name(&self) -> &'static str {
        "zscore"
    }

    fn observe(&mut self, _timestamp_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming_up(value);
        }
        let v = if self.window.len() < self.config.min_points.max(2) {
            Verdict::warming_up(value)
        } else {
            verdict(
                value,
                self.window.mean(),
                self.window.std_dev(),
                &self.config,
            )
        };
        self.window.push(value);
        v
    }
}

/// Rolling median/MAD (robust) z-score detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RobustZScoreDetector {
    config: ZScoreConfig,
    window: SortedWindow,
}

impl RobustZScoreDetector {
    /// A detector with an empty window.
    pub fn new(config: ZScoreConfig) -> Self {
        let window = SortedWindow::new(config.window);
        RobustZScoreDetector { config, window }
    }

    /// Points currently held (≤ `window`).
    pub fn held(&self) -> usize {
        self.window.len()
    }
}

impl Detector for RobustZScoreDetector {
    fn name(&self) -> &'static str {
        "robust_zscore"
    }

    fn observe(&mut self, _timestamp_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming_up(value);
        }
        let v = match self.window.median() {
            Some(median) if self.window.len() >= self.config.min_points.max(2) => {
                let mad = self.window.mad(median).unwrap_or(0.0);
                verdict(value, median, mad * MAD_TO_SIGMA, &self.config)
            }
            _ => Verdict::warming_up(value),
        };
        self.window.push(value);
        v
    }
}
