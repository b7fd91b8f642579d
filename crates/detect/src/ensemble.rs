//! The default metric detector — what a user gets without configuring anything, and what
//! the NAB harness scores.
//!
//! It looks at each point through several cheap *views*, each a robust z-score (median/MAD
//! over a bounded window, so the outliers it looks for do not inflate the spread they are
//! measured against):
//!
//! * **level** — the value against the recent values (spikes, shifts);
//! * **smoothed level** — the mean of the last `smooth` points against recent such means
//!   (a sustained deviation too small to stand out point by point);
//! * **daily season** — the value minus the median of the same time of day on the
//!   previous `seasons` days (looked up by timestamp, so gaps do not shift the phase),
//!   against recent such residuals: a daily pattern that breaks while staying inside the
//!   usual range;
//! * **weekly season** — the same against the previous `weeks` weeks (holidays, a
//!   weekday behaving like a Sunday);
//! * **change** (off by default) — the step from the previous point against recent steps.
//!
//! Each view calibrates itself: its |z| is divided by the `calibration_quantile` of its
//! own recent |z| values (at least `min_sigmas`), so a view that is always jumpy on this
//! series needs a bigger jump to count, and a quiet one alarms on less. The strongest view
//! `r` gives the score `r / (1 + r)`: 0.5 means "as surprising as the most surprising
//! 0.1 % of the recent past, and at least 4σ".
//!
//! Finally, an alert suppresses itself: after a point scores at or above `alert_level`,
//! points in the following `suppress_ms` score 0 unless they beat the alert's score by
//! `suppress_margin`. One problem raises one alert, early, instead of a burst.
//!
//! State per series: the views' windows (`window` and `calibration_window` values each)
//! and at most `max_history` timestamped points for the season lookups — bounded.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::window::SortedWindow;
use crate::{Detector, Verdict};

const MAD_TO_SIGMA: f64 = 1.4826;

/// Configuration of the default [`Ensemble`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnsembleConfig {
    /// Values in each view's robust window.
    pub window: usize,
    /// Points averaged by the smoothed-level view (0 or 1 disables it).
    pub smooth: usize,
    /// Season length (ms) of the daily view; 0 disables it. Default one day.
    pub season_ms: i64,
    /// Previous seasons compared against.
    pub seasons: usize,
    /// Week length (ms) of the weekly view; 0 disables it. Default seven days.
    pub week_ms: i64,
    /// Previous weeks compared against.
    pub weeks: usize,
    /// Whether the change view (step from the previous point) is scored. Off by default:
    /// on NAB it added false alarms that the level view already covers.
    pub change_view: bool,
    /// Cap on timestamped points kept for the season lookups (memory bound; a season
    /// longer than the history it needs simply stays silent).
    pub max_history: usize,
    /// Values a view's window needs before it judges.
    pub min_points: usize,
    /// Past |z| values per view kept for calibration.
    pub calibration_window: usize,
    /// Past |z| values a view needs before it can score at all.
    pub calibration_min: usize,
    /// The quantile of a view's past |z| a point must reach to score 0.5.
    pub calibration_quantile: f64,
    /// The smallest |z| that can score 0.5, whatever the history.
    pub min_sigmas: f64,
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
            smooth: 12,
            season_ms: 86_400_000,
            seasons: 4,
            week_ms: 604_800_000,
            weeks: 3,
            change_view: false,
            max_history: 12_000,
            min_points: 60,
            calibration_window: 1_000,
            calibration_min: 60,
            calibration_quantile: 0.999,
            min_sigmas: 4.0,
            alert_level: 0.5,
            suppress_ms: 43_200_000,
            suppress_margin: 0.05,
            min_relative_spread: 1e-3,
        }
    }
}

/// One robust view: its values (levels, means or residuals) and their order statistics,
/// plus the view's own recent |z| values for calibration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RobustView {
    window: SortedWindow,
    past_z: SortedWindow,
}

/// A view's judgement of a point: z, the view's centre and σ.
type Judged = Option<(f64, f64, f64)>;

impl RobustView {
    fn new(capacity: usize, calibration: usize) -> Self {
        RobustView {
            window: SortedWindow::new(capacity),
            past_z: SortedWindow::new(calibration),
        }
    }

    /// (z, median, σ) of `x`, before learning it.
    fn judge(&self, x: f64, min_points: usize, floor: f64) -> Judged {
        if self.window.len() < min_points.max(3) {
            return None;
        }
        let median = self.window.median()?;
        let mad = self.window.mad(median)?;
        let sigma = (mad * MAD_TO_SIGMA).max(floor).max(1e-12);
        Some(((x - median) / sigma, median, sigma))
    }

    /// |z| relative to this view's recent high quantile of |z| (1 = as surprising as
    /// that quantile, and at least `min_sigmas`), then learns |z|.
    fn relative(&mut self, z: f64, cfg: &EnsembleConfig) -> f64 {
        let z = z.abs();
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
}

/// The default metric detector (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    config: EnsembleConfig,
    last_value: Option<f64>,
    level: RobustView,
    change: RobustView,
    smoothed: RobustView,
    recent_values: VecDeque<f64>,
    season: RobustView,
    weekly: RobustView,
    history: VecDeque<(i64, f64)>,
    gaps: SortedWindow,
    last_alert: Option<(i64, f64)>,
}

impl Ensemble {
    /// A detector that has seen nothing.
    pub fn new(config: EnsembleConfig) -> Self {
        let view = || RobustView::new(config.window, config.calibration_window);
        Ensemble {
            level: view(),
            change: view(),
            smoothed: view(),
            recent_values: VecDeque::with_capacity(config.smooth + 1),
            season: view(),
            weekly: view(),
            history: VecDeque::new(),
            gaps: SortedWindow::new(64),
            last_value: None,
            last_alert: None,
            config,
        }
    }

    /// Points of history held for the season lookups (≤ `max_history`).
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

    /// The seasonal expectation at `t`: median of the same phase over previous seasons
    /// (at least two of them found in history).
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
        let cfg = &self.config;
        if let Some(&(last_ts, _)) = self.history.back()
            && timestamp_ms > last_ts
        {
            self.gaps.push((timestamp_ms - last_ts) as f64);
        }
        let floor = cfg.min_relative_spread * self.level.window.median().map_or(0.0, f64::abs);
        let smooth_floor = floor / (cfg.smooth.max(1) as f64).sqrt();

        // Every view judges the point before anything learns it.
        let level = self.level.judge(value, cfg.min_points, floor);
        let step = self
            .last_value
            .map(|p| value - p)
            .filter(|_| cfg.change_view);
        let change = step.and_then(|d| self.change.judge(d, cfg.min_points, floor));
        let daily_expected = self.seasonal_expectation(timestamp_ms, cfg.season_ms, cfg.seasons);
        let residual = daily_expected.map(|e| value - e);
        let season = residual.and_then(|r| self.season.judge(r, cfg.min_points, floor));
        let weekly_expected = self.seasonal_expectation(timestamp_ms, cfg.week_ms, cfg.weeks);
        let weekly_residual = weekly_expected.map(|e| value - e);
        let weekly = weekly_residual.and_then(|r| self.weekly.judge(r, cfg.min_points, floor));
        self.recent_values.push_back(value);
        while self.recent_values.len() > cfg.smooth {
            self.recent_values.pop_front();
        }
        let mean_recent = (cfg.smooth > 1 && self.recent_values.len() == cfg.smooth)
            .then(|| self.recent_values.iter().sum::<f64>() / cfg.smooth as f64);
        let smoothed =
            mean_recent.and_then(|m| self.smoothed.judge(m, cfg.min_points, smooth_floor));

        // Learn.
        self.level.window.push(value);
        for (view, x) in [
            (&mut self.change, step),
            (&mut self.season, residual),
            (&mut self.weekly, weekly_residual),
            (&mut self.smoothed, mean_recent),
        ] {
            if let Some(x) = x {
                view.window.push(x);
            }
        }
        self.history.push_back((timestamp_ms, value));
        while self.history.len() > cfg.max_history.max(1) {
            self.history.pop_front();
        }
        self.last_value = Some(value);

        let Some((_, median, sigma)) = level else {
            return Verdict::warming_up(value);
        };
        // The strongest calibrated view, and what it expected.
        let cfg = self.config.clone();
        let mut best = (0.0, median, sigma);
        for (view, judged, offset) in [
            (&mut self.level, level, Some(0.0)),
            (&mut self.change, change, None),
            (&mut self.season, season, daily_expected),
            (&mut self.smoothed, smoothed, None),
            (&mut self.weekly, weekly, weekly_expected),
        ] {
            if let Some((z, center, spread)) = judged {
                let r = view.relative(z, &cfg);
                if r > best.0 {
                    best = match offset {
                        Some(base) => (r, base + center, spread),
                        None => (r, median, sigma),
                    };
                }
            }
        }
        let (relative, expected, spread) = best;
        let mut score = relative / (1.0 + relative);

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

        Verdict {
            score,
            expected,
            expected_low: expected - cfg.min_sigmas * spread,
            expected_high: expected + cfg.min_sigmas * spread,
            anomalous: score >= cfg.alert_level,
            sigmas: Some((value - expected) / spread),
        }
    }
}
