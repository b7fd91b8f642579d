//! Seasonal forecasting with prediction intervals, on augurs: MSTL splits a bounded
//! history into seasonal components plus a deseasonalised series, AutoETS models the
//! latter, and the forecast (seasonality added back) gives a point prediction and an
//! interval for each of the next `refit_every` points. A point outside its interval is
//! anomalous.
//!
//! Fitting costs O(history), so the model is refitted only every `refit_every` points
//! (amortised O(history / refit_every) per point); between refits the detector just
//! consumes the stored forecast. The fitted augurs model itself is not kept: the state is
//! the history buffer and the pending forecast, plain numbers that serialize, so a restored
//! detector continues exactly as the original.
//!
//! Points are assumed regularly spaced; the step is the median of observed gaps and the
//! season length in points is `season_ms / step`. With less than two seasons of history
//! (or no season at all) the deseasonalised model is AutoETS alone.

use std::collections::VecDeque;

use augurs_core::{Fit, Predict};
use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;
use serde::{Deserialize, Serialize};

use crate::stats::sigma_score;
use crate::window::SortedWindow;
use crate::{Detector, Verdict};

/// Configuration of a [`SeasonalDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SeasonalConfig {
    /// Length of the season (ms); 0 disables seasonality. Default one day.
    pub season_ms: i64,
    /// Points of history kept and fitted on (memory bound).
    pub history: usize,
    /// Refit after this many points; also the forecast horizon.
    pub refit_every: usize,
    /// Points needed before the first fit.
    pub min_history: usize,
    /// Prediction-interval level, in (0, 1).
    pub level: f64,
}

impl Default for SeasonalConfig {
    fn default() -> Self {
        SeasonalConfig {
            season_ms: 86_400_000,
            history: 2_016,
            refit_every: 96,
            min_history: 96,
            level: 0.99,
        }
    }
}

/// One forecast step: point prediction and interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Step {
    point: f64,
    low: f64,
    high: f64,
}

/// Seasonal (MSTL + AutoETS) forecasting detector with periodic refits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeasonalDetector {
    config: SeasonalConfig,
    history: VecDeque<f64>,
    forecast: VecDeque<Step>,
    since_refit: usize,
    last_ts: Option<i64>,
    gaps: SortedWindow,
    /// Refits attempted, and those that failed (the detector then judges nothing until
    /// the next refit).
    fits: u64,
    failed_fits: u64,
}

impl SeasonalDetector {
    /// A detector that has seen nothing.
    pub fn new(config: SeasonalConfig) -> Self {
        SeasonalDetector {
            history: VecDeque::with_capacity(config.history.min(8192)),
            config,
            forecast: VecDeque::new(),
            since_refit: 0,
            last_ts: None,
            gaps: SortedWindow::new(64),
            fits: 0,
            failed_fits: 0,
        }
    }

    /// Points of history held (≤ `history`).
    pub fn held(&self) -> usize {
        self.history.len()
    }

    /// The season length in points, from the median gap between points.
    pub fn season_points(&self) -> Option<usize> {
        let step = self.gaps.median()?;
        if self.config.season_ms <= 0 || step <= 0.0 {
            return None;
        }
        let p = (self.config.season_ms as f64 / step).round() as usize;
        (p >= 2).then_some(p)
    }

    fn refit(&mut self) {
        self.since_refit = 0;
        self.fits += 1;
        let y: Vec<f64> = self.history.iter().copied().collect();
        let horizon = self.config.refit_every.max(1);
        let level = self.config.level.clamp(0.5, 0.9999);
        let periods: Vec<usize> = self
            .season_points()
            .filter(|p| y.len() >= 2 * p)
            .into_iter()
            .collect();
        let forecast = if periods.is_empty() {
            AutoETS::non_seasonal()
                .fit(&y)
                .ok()
                .and_then(|m| m.predict(horizon, level).ok())
        } else {
            MSTLModel::new(periods, AutoETS::non_seasonal().into_trend_model())
                .fit(&y)
                .ok()
                .and_then(|m| m.predict(horizon, level).ok())
        };
        self.forecast.clear();
        match forecast {
            Some(f) => {
                if let Some(iv) = f.intervals {
                    for ((p, l), h) in f.point.iter().zip(&iv.lower).zip(&iv.upper) {
                        if p.is_finite() && l.is_finite() && h.is_finite() {
                            self.forecast.push_back(Step {
                                point: *p,
                                low: *l,
                                high: *h,
                            });
                        } else {
                            break;
                        }
                    }
                }
            }
            None => self.failed_fits += 1,
        }
    }
}

/// The standard-normal quantile of a two-sided interval level (table + interpolation is
/// plenty for turning an interval back into a σ).
fn two_sided_z(level: f64) -> f64 {
    const TABLE: [(f64, f64); 7] = [
        (0.5, 0.674),
        (0.8, 1.282),
        (0.9, 1.645),
        (0.95, 1.960),
        (0.99, 2.576),
        (0.999, 3.291),
        (0.9999, 3.891),
    ];
    let mut prev = TABLE[0];
    for &(l, z) in &TABLE {
        if level <= l {
            let t = if l > prev.0 {
                (level - prev.0) / (l - prev.0)
            } else {
                0.0
            };
            return prev.1 + t * (z - prev.1);
        }
        prev = (l, z);
    }
    prev.1
}

impl Detector for SeasonalDetector {
    fn name(&self) -> &'static str {
        "seasonal"
    }

    fn observe(&mut self, timestamp_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming_up(value);
        }
        if let Some(last) = self.last_ts
            && timestamp_ms > last
        {
            self.gaps.push((timestamp_ms - last) as f64);
        }
        self.last_ts = Some(timestamp_ms);

        let verdict = match self.forecast.pop_front() {
            Some(step) => {
                let z_level = two_sided_z(self.config.level);
                let half = ((step.high - step.low) / 2.0).max(1e-9);
                let sigma = half / z_level;
                let z = (value - step.point) / sigma;
                Verdict {
                    score: sigma_score(z),
                    expected: step.point,
                    expected_low: step.low,
                    expected_high: step.high,
                    anomalous: value < step.low || value > step.high,
                    sigmas: Some(z),
                }
            }
            None => Verdict::warming_up(value),
        };

        if self.history.len() == self.config.history.max(8) {
            self.history.pop_front();
        }
        self.history.push_back(value);
        self.since_refit += 1;
        let due = self.since_refit >= self.config.refit_every.max(1) || self.fits == 0;
        if due && self.history.len() >= self.config.min_history.max(8) {
            self.refit();
        }
        verdict
    }
}
