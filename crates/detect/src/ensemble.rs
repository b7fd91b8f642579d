//! The default metric detector — what a user gets without configuring anything, and what
//! the NAB harness scores.
//!
//! It combines three cheap views of each point, each a robust z-score (median/MAD over a
//! bounded window, so outliers do not inflate the spread they are measured against):
//!
//! * **level** — the value against the recent values;
//! * **change** — the step from the previous point against recent steps (spikes, jumps);
//! * **season** — the value against the median of the same time of day on previous days
//!   (looked up by timestamp, so gaps do not shift the phase): catches a daily pattern
//!   that breaks while staying inside the usual range.
//!
//! The strongest view (in σ) is the raw surprise. Raw surprises are turned into a
//! probability the way HTM's "anomaly likelihood" does: the recent average surprise is
//! compared with the distribution of surprises over a long window, so a series that is
//! always noisy does not alarm all the time and a quiet one alarms on a smaller
//! deviation. That probability is mapped to a 0..1 log scale (0.5 ≈ 1 − 10⁻⁵).
//!
//! Finally, an alert suppresses itself: after a point scores at or above `alert_level`,
//! the following `suppress_ms` of points score 0 unless they beat the alert's score.
//! One problem raises one alert, early, instead of a burst.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::stats::log_normal_sf;
use crate::window::{RollingStats, SortedWindow};
use crate::{Detector, Verdict};

const MAD_TO_SIGMA: f64 = 1.4826;

/// Configuration of the default [`Ensemble`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnsembleConfig {
    /// Points in the level and change windows.
    pub window: usize,
    /// Whether the change view (the step from the previous point against recent steps)
    /// is scored. Off by default: on NAB it added false alarms that the level view
    /// already covers.
    pub change_view: bool,
    /// Points averaged by the smoothed-level view (0 disables it).
    pub smooth: usize,
    /// Whether the smoothed view also runs on the daily-season residual.
    pub smooth_season: bool,
    /// Lag (points) of the drift view: the value against the value `lag` points ago
    /// (0 disables it).
    pub lag: usize,
    /// Season length (ms); 0 disables the season view. Default one day.
    pub season_ms: i64,
    /// Previous seasons compared against (bounded by `max_history`).
    pub seasons: usize,
    /// Week length (ms) for the weekly season view; 0 disables it.
    pub week_ms: i64,
    /// Previous weeks compared against.
    pub weeks: usize,
    /// Cap on points of history kept for the season view (memory bound).
    pub max_history: usize,
    /// Points before any judgement.
    pub min_points: usize,
    /// Surprises kept for the likelihood's long-run distribution.
    pub likelihood_window: usize,
    /// Surprises averaged for the likelihood's short-run value.
    pub likelihood_short: usize,
    /// How surprises become scores: `likelihood` (HTM-style tail probability of the
    /// strongest view) or `quantile` (each view's |z| against its own recent high
    /// quantile).
    pub calibration: Calibration,
    /// Past |z| values per view kept for the `quantile` calibration.
    pub calibration_window: usize,
    /// Past |z| values a view needs before it can score at all (its calibration
    /// warm-up).
    pub calibration_min: usize,
    /// The quantile of past |z| a point must beat to score 0.5.
    pub calibration_quantile: f64,
    /// The smallest |z| that can score 0.5, whatever the history.
    pub min_sigmas: f64,
    /// With `tail` calibration, −log₁₀ p that scores 1.
    pub tail_scale: f64,
    /// Views computed but left out of the score, as a bit set (level 1, change 2,
    /// daily season 4, smoothed 8, drift 16, weekly 32, smoothed season 64): for
    /// experiments.
    pub muted: u32,
    /// Weight of the second-strongest view added to the strongest.
    pub agreement: f64,
    /// Score at or above which a point is an alert (and suppresses what follows).
    pub alert_level: f64,
    /// How long (ms) an alert suppresses further alerts.
    pub suppress_ms: i64,
    /// A suppressed point still alerts when it beats the alert's score by this much.
    pub suppress_margin: f64,
    /// Floor on every view's spread, relative to the median absolute value.
    pub min_relative_spread: f64,
}

impl Default for EnsembleConfig {
    fn default() -> Self {
        EnsembleConfig {
            window: 500,
            change_view: false,
            smooth: 12,
            smooth_season: false,
            lag: 0,
            season_ms: 86_400_000,
            seasons: 4,
            week_ms: 604_800_000,
            weeks: 3,
            max_history: 12_000,
            min_points: 60,
            likelihood_window: 1_000,
            likelihood_short: 1,
            calibration: Calibration::Quantile,
            calibration_window: 1_000,
            calibration_min: 60,
            calibration_quantile: 0.999,
            min_sigmas: 4.0,
            tail_scale: 20.0,
            muted: 0,
            agreement: 0.0,
            alert_level: 0.5,
            suppress_ms: 43_200_000,
            suppress_margin: 0.05,
            min_relative_spread: 1e-3,
        }
    }
}

/// How the ensemble turns surprises into scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// HTM-style anomaly likelihood of the strongest view.
    Likelihood,
    /// Each view against its own recent high quantile of |z|.
    #[default]
    Quantile,
    /// Each view's tail probability from an exponential fit to its own recent top |z|
    /// values (peaks over threshold).
    Tail,
}

/// One robust view: values (or steps, or residuals) and their order statistics, plus the
/// view's own recent |z| values for calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RobustView {
    window: SortedWindow,
    past_z: SortedWindow,
}

impl RobustView {
    fn new(capacity: usize, calibration: usize) -> Self {
        RobustView {
            window: SortedWindow::new(capacity),
            past_z: SortedWindow::new(calibration),
        }
    }

    /// |z| relative to this view's recent high quantile (1 = as surprising as the
    /// quantile), then learns |z|.
    fn relative(&mut self, z: f64, cfg: &EnsembleConfig) -> f64 {
        let z = z.abs();
        if cfg.calibration == Calibration::Tail {
            let ready = self.past_z.len() >= cfg.calibration_min.max(3);
            let fraction = 1.0 - cfg.calibration_quantile;
            let p = match self.past_z.upper_tail(fraction) {
                Some((q, excess)) if ready => {
                    if z > q {
                        fraction * (-(z - q) / excess.max(1e-6)).exp()
                    } else {
                        self.past_z.fraction_above(z).max(fraction)
                    }
                }
                _ => 1.0,
            };
            self.past_z.push(z);
            let p = if z >= cfg.min_sigmas { p } else { p.max(fraction) };
            return -p.max(1e-300).log10();
        }
        let bar = if self.past_z.len() >= cfg.calibration_min.max(3) {
            self.past_z
                .quantile(cfg.calibration_quantile)
                .unwrap_or(0.0)
        } else {
            f64::INFINITY
        };
        self.past_z.push(z);
        z / bar.max(cfg.min_sigmas)
    }

    /// (z, median, σ) of `x`, before learning it.
    fn judge(&self, x: f64, min_points: usize, floor: f64) -> Option<(f64, f64, f64)> {
        if self.window.len() < min_points.max(3) {
            return None;
        }
        let median = self.window.median()?;
        let mad = self.window.mad(median)?;
        let sigma = (mad * MAD_TO_SIGMA).max(floor).max(1e-12);
        Some(((x - median) / sigma, median, sigma))
    }
}

/// The default metric detector (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    config: EnsembleConfig,
    seen: u64,
    last_value: Option<f64>,
    level: RobustView,
    change: RobustView,
    smoothed: RobustView,
    recent_values: VecDeque<f64>,
    smoothed_season: RobustView,
    drift: RobustView,
    lagged: VecDeque<f64>,
    recent_residuals: VecDeque<f64>,
    season: RobustView,
    weekly: RobustView,
    history: VecDeque<(i64, f64)>,
    gaps: SortedWindow,
    surprises: RollingStats,
    recent: VecDeque<f64>,
    last_alert: Option<(i64, f64)>,
}

impl Ensemble {
    /// A detector that has seen nothing.
    pub fn new(config: EnsembleConfig) -> Self {
        Ensemble {
            level: RobustView::new(config.window, config.calibration_window),
            change: RobustView::new(config.window, config.calibration_window),
            smoothed: RobustView::new(config.window, config.calibration_window),
            recent_values: VecDeque::with_capacity(config.smooth + 1),
            smoothed_season: RobustView::new(config.window, config.calibration_window),
            drift: RobustView::new(config.window, config.calibration_window),
            lagged: VecDeque::with_capacity(config.lag + 1),
            recent_residuals: VecDeque::with_capacity(config.smooth + 1),
            season: RobustView::new(config.window, config.calibration_window),
            weekly: RobustView::new(config.window, config.calibration_window),
            history: VecDeque::new(),
            gaps: SortedWindow::new(64),
            surprises: RollingStats::new(config.likelihood_window),
            recent: VecDeque::with_capacity(config.likelihood_short + 1),
            seen: 0,
            last_value: None,
            last_alert: None,
            config,
        }
    }

    /// Points of history held for the season view (≤ `max_history`).
    pub fn held(&self) -> usize {
        self.history.len()
    }

    /// The value at about `t` (within half a step), from history.
    fn value_near(&self, t: i64, tolerance: i64) -> Option<f64> {
        let i = self.history.partition_point(|(ts, _)| *ts < t);
        let mut best: Option<(i64, f64)> = None;
        for j in [i.checked_sub(1), Some(i)].into_iter().flatten() {
            if let Some(&(ts, v)) = self.history.get(j) {
                let d = (ts - t).abs();
                if d <= tolerance && best.is_none_or(|(bd, _)| d < bd) {
                    best = Some((d, v));
                }
            }
        }
        best.map(|(_, v)| v)
    }

    /// The seasonal expectation at `t`: median of the same phase over previous seasons.
    fn seasonal_expectation(&self, t: i64, season: i64, seasons: usize) -> Option<f64> {
        if season <= 0 || seasons == 0 {
            return None;
        }
        let step = self.gaps.median()? as i64;
        if step <= 0 || season / step < 4 {
            return None;
        }
        let tolerance = (step / 2).max(1);
        let mut same_phase: Vec<f64> = (1..=seasons as i64)
            .filter_map(|k| self.value_near(t - k * season, tolerance))
            .collect();
        if same_phase.len() < seasons.min(2) {
            return None;
        }
        same_phase.sort_by(f64::total_cmp);
        let n = same_phase.len();
        Some(if n % 2 == 1 {
            same_phase[n / 2]
        } else {
            0.5 * (same_phase[n / 2 - 1] + same_phase[n / 2])
        })
    }
}

impl Detector for Ensemble {
    fn name(&self) -> &'static str {
        "ensemble"
    }

    fn observe(&mut self, timestamp_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming_up(value);
        }
        let cfg = self.config.clone();
        if let Some(&(last_ts, _)) = self.history.back()
            && timestamp_ms > last_ts
        {
            self.gaps.push((timestamp_ms - last_ts) as f64);
        }
        let scale = self.level.window.median().map(f64::abs).unwrap_or(0.0);
        let floor = cfg.min_relative_spread * scale;

        // The three views, judged before learning the point.
        let level = self.level.judge(value, cfg.min_points, floor);
        let step = self.last_value.map(|p| value - p);
        let step = step.filter(|_| cfg.change_view);
        let change = step.and_then(|d| self.change.judge(d, cfg.min_points, floor));
        let expected_season = self.seasonal_expectation(timestamp_ms, cfg.season_ms, cfg.seasons);
        let weekly_residual = self
            .seasonal_expectation(timestamp_ms, cfg.week_ms, cfg.weeks)
            .map(|e| value - e);
        let weekly = weekly_residual.and_then(|r| self.weekly.judge(r, cfg.min_points, floor));
        let residual = expected_season.map(|e| value - e);
        let season = residual.and_then(|r| self.season.judge(r, cfg.min_points, floor));
        self.recent_values.push_back(value);
        while self.recent_values.len() > cfg.smooth {
            self.recent_values.pop_front();
        }
        let mean_recent = (cfg.smooth > 1 && self.recent_values.len() == cfg.smooth)
            .then(|| self.recent_values.iter().sum::<f64>() / cfg.smooth as f64);
        if let Some(r) = residual {
            self.recent_residuals.push_back(r);
        } else {
            self.recent_residuals.clear();
        }
        while self.recent_residuals.len() > cfg.smooth {
            self.recent_residuals.pop_front();
        }
        let mean_residual = (cfg.smooth > 1 && self.recent_residuals.len() == cfg.smooth)
            .then(|| self.recent_residuals.iter().sum::<f64>() / cfg.smooth as f64);
        let drift_step = (cfg.lag > 0 && self.lagged.len() == cfg.lag)
            .then(|| self.lagged.front().map(|old| value - old))
            .flatten();
        let drift = drift_step.and_then(|d| self.drift.judge(d, cfg.min_points, floor));
        self.lagged.push_back(value);
        while self.lagged.len() > cfg.lag {
            self.lagged.pop_front();
        }
        let smoothed_season = mean_residual.filter(|_| cfg.smooth_season).and_then(|m| {
            self.smoothed_season
                .judge(m, cfg.min_points, floor / (cfg.smooth as f64).sqrt())
        });
        let smoothed = mean_recent.and_then(|m| {
            self.smoothed
                .judge(m, cfg.min_points, floor / (cfg.smooth as f64).sqrt())
        });

        // Learn.
        self.level.window.push(value);
        if let Some(d) = step {
            self.change.window.push(d);
        }
        if let Some(r) = residual {
            self.season.window.push(r);
        }
        if let Some(r) = weekly_residual {
            self.weekly.window.push(r);
        }
        if let Some(m) = mean_recent {
            self.smoothed.window.push(m);
        }
        if let Some(m) = mean_residual {
            self.smoothed_season.window.push(m);
        }
        if let Some(d) = drift_step {
            self.drift.window.push(d);
        }
        self.history.push_back((timestamp_ms, value));
        while self.history.len() > cfg.max_history.max(1) {
            self.history.pop_front();
        }
        self.last_value = Some(value);
        self.seen += 1;

        let Some((z_level, median, sigma)) = level else {
            return Verdict::warming_up(value);
        };
        let surprise = [Some(z_level), change.map(|c| c.0), season.map(|s| s.0)]
            .into_iter()
            .flatten()
            .map(f64::abs)
            .fold(0.0, f64::max);
        let mut views = vec![0.0];
        for (i, (view, judged)) in [
            (&mut self.level, level),
            (&mut self.change, change),
            (&mut self.season, season),
            (&mut self.smoothed, smoothed),
            (&mut self.drift, drift),
            (&mut self.weekly, weekly),
            (&mut self.smoothed_season, smoothed_season),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some((z, _, _)) = judged {
                let r = view.relative(z, &cfg);
                if cfg.muted & (1 << i) == 0 {
                    views.push(r);
                }
            }
        }
        views.sort_by(|a, b| b.total_cmp(a));
        // The strongest view, reinforced when a second one agrees.
        let relative = views[0] + cfg.agreement * views.get(1).copied().unwrap_or(0.0);

        // Anomaly likelihood: the short-run mean surprise against the long-run distribution.
        self.recent.push_back(surprise);
        while self.recent.len() > cfg.likelihood_short.max(1) {
            self.recent.pop_front();
        }
        let short = self.recent.iter().sum::<f64>() / self.recent.len() as f64;
        let judged = self.surprises.len() >= cfg.min_points.max(3);
        let z = if judged {
            let sd = self.surprises.std_dev().max(1e-3);
            (short - self.surprises.mean()) / sd
        } else {
            0.0
        };
        self.surprises.push(surprise);
        // log scale: 1 − p = 10⁻¹⁰ → 1; p = 0.5 → ~0.03
        let log_p = log_normal_sf(z); // ln P(tail)
        let mut score = if cfg.calibration == Calibration::Quantile {
            relative / (1.0 + relative)
        } else if cfg.calibration == Calibration::Tail {
            (relative / cfg.tail_scale).clamp(0.0, 1.0)
        } else if judged {
            (-log_p / (10.0 * std::f64::consts::LN_10)).clamp(0.0, 1.0)
        } else {
            0.0
        };

        // One problem, one alert.
        if let Some((t, s)) = self.last_alert
            && timestamp_ms - t < cfg.suppress_ms
            && score <= s + cfg.suppress_margin
        {
            score = 0.0;
        }
        if score >= cfg.alert_level {
            self.last_alert = Some((timestamp_ms, score));
        }

        let (expected, spread) = match (expected_season, season) {
            (Some(e), Some((_, m, s))) if season.is_some_and(|v| v.0.abs() > z_level.abs()) => {
                (e + m, s)
            }
            _ => (median, sigma),
        };
        Verdict {
            score,
            expected,
            expected_low: expected - 4.0 * spread,
            expected_high: expected + 4.0 * spread,
            anomalous: score >= cfg.alert_level,
            sigmas: Some((value - expected) / spread),
        }
    }
}
