//! Which detectors run on which series: a serde configuration with per-series rules
//! (glob or exact match on service and metric type; first match wins) and a default set,
//! plus [`AnyDetector`], the serializable sum of all metric detectors that the registry
//! keeps per series.
//!
//! ```toml
//! max_series = 10000
//! default = [{ kind = "ensemble" }]
//!
//! [[rules]]
//! service = "checkout*"
//! metric_type = "latency_ms"
//! detectors = [
//!   { kind = "threshold", limit = 2000.0, for_ms = 300000 },
//!   { kind = "ensemble" },
//! ]
//! ```

use serde::{Deserialize, Serialize};

use crate::changepoint::{ChangePointConfig, ChangePointDetector};
use crate::ensemble::{Ensemble, EnsembleConfig};
use crate::ewma::{EwmaConfig, EwmaDetector};
use crate::seasonal::{SeasonalConfig, SeasonalDetector};
use crate::threshold::{ThresholdConfig, ThresholdDetector};
use crate::trend::{TrendConfig, TrendDetector};
use crate::zscore::{RobustZScoreDetector, ZScoreConfig, ZScoreDetector};
use crate::{DetectError, Detector, Verdict};

/// One detector to run, with its parameters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DetectorSpec {
    /// Static threshold with a `for` duration.
    Threshold(ThresholdConfig),
    /// Rolling mean/σ z-score.
    Zscore(ZScoreConfig),
    /// Rolling median/MAD z-score.
    RobustZscore(ZScoreConfig),
    /// EWMA mean/variance.
    Ewma(EwmaConfig),
    /// Seasonal forecast with prediction intervals (augurs MSTL + ETS).
    Seasonal(SeasonalConfig),
    /// Bayesian online change point.
    Changepoint(ChangePointConfig),
    /// The default ensemble.
    Ensemble(EnsembleConfig),
    /// Least-squares climb toward capacity (leaks, filling disks): see [`crate::trend`].
    Trend(TrendConfig),
}

impl DetectorSpec {
    /// A fresh detector for this spec.
    pub fn build(&self) -> AnyDetector {
        match self {
            DetectorSpec::Threshold(c) => AnyDetector::Threshold(ThresholdDetector::new(c.clone())),
            DetectorSpec::Zscore(c) => AnyDetector::Zscore(ZScoreDetector::new(c.clone())),
            DetectorSpec::RobustZscore(c) => {
                AnyDetector::RobustZscore(RobustZScoreDetector::new(c.clone()))
            }
            DetectorSpec::Ewma(c) => AnyDetector::Ewma(EwmaDetector::new(c.clone())),
            DetectorSpec::Seasonal(c) => {
                AnyDetector::Seasonal(Box::new(SeasonalDetector::new(c.clone())))
            }
            DetectorSpec::Changepoint(c) => {
                AnyDetector::Changepoint(ChangePointDetector::new(c.clone()))
            }
            DetectorSpec::Ensemble(c) => AnyDetector::Ensemble(Box::new(Ensemble::new(c.clone()))),
            DetectorSpec::Trend(c) => AnyDetector::Trend(TrendDetector::new(c.clone())),
        }
    }

    fn validate(&self) -> Result<(), DetectError> {
        let bad = |m: &str| Err(DetectError::InvalidConfig(m.to_string()));
        match self {
            DetectorSpec::Threshold(c) if !c.limit.is_finite() => {
                bad("threshold limit must be finite")
            }
            DetectorSpec::Threshold(c) if c.for_ms < 0 => bad("threshold for_ms must be ≥ 0"),
            DetectorSpec::Zscore(c) | DetectorSpec::RobustZscore(c)
                if c.window < 2 || c.window > 1_000_000 =>
            {
                bad("z-score window must be in 2..=1000000")
            }
            DetectorSpec::Ewma(c) if !(c.alpha > 0.0 && c.alpha <= 1.0) => {
                bad("ewma alpha must be in (0, 1]")
            }
            DetectorSpec::Seasonal(c) if c.history > 100_000 || c.refit_every == 0 => {
                bad("seasonal history must be ≤ 100000 and refit_every ≥ 1")
            }
            DetectorSpec::Seasonal(c) if !(c.level > 0.0 && c.level < 1.0) => {
                bad("seasonal level must be in (0, 1)")
            }
            DetectorSpec::Changepoint(c) if c.max_run_length < 2 || c.max_run_length > 100_000 => {
                bad("changepoint max_run_length must be in 2..=100000")
            }
            DetectorSpec::Ensemble(c) if c.window < 3 || c.max_history > 1_000_000 => {
                bad("ensemble window must be ≥ 3 and max_history ≤ 1000000")
            }
            DetectorSpec::Trend(c)
                if c.window_ms <= 0
                    || c.horizon_ms <= 0
                    || !c.capacity.is_finite()
                    || !(0.0..=1.0).contains(&c.min_r2) =>
            {
                bad("trend window_ms and horizon_ms must be > 0, capacity finite, min_r2 in 0..=1")
            }
            _ => Ok(()),
        }
    }
}

/// Any metric detector, as one serializable type (the registry's per-series state).
/// Externally tagged, so compact non-self-describing formats (postcard, as checkpoints
/// use) can encode it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnyDetector {
    /// See [`ThresholdDetector`].
    Threshold(ThresholdDetector),
    /// See [`ZScoreDetector`].
    Zscore(ZScoreDetector),
    /// See [`RobustZScoreDetector`].
    RobustZscore(RobustZScoreDetector),
    /// See [`EwmaDetector`].
    Ewma(EwmaDetector),
    /// See [`SeasonalDetector`].
    Seasonal(Box<SeasonalDetector>),
    /// See [`ChangePointDetector`].
    Changepoint(ChangePointDetector),
    /// See [`Ensemble`].
    Ensemble(Box<Ensemble>),
    /// See [`TrendDetector`].
    Trend(TrendDetector),
}

impl AnyDetector {
    fn inner(&mut self) -> &mut dyn Detector {
        match self {
            AnyDetector::Threshold(d) => d,
            AnyDetector::Zscore(d) => d,
            AnyDetector::RobustZscore(d) => d,
            AnyDetector::Ewma(d) => d,
            AnyDetector::Seasonal(d) => d.as_mut(),
            AnyDetector::Changepoint(d) => d,
            AnyDetector::Ensemble(d) => d.as_mut(),
            AnyDetector::Trend(d) => d,
        }
    }

    /// What the detector compares with, for explanations ("its rolling mean", …).
    pub fn baseline(&self) -> &'static str {
        match self {
            AnyDetector::Threshold(_) => "its limit",
            AnyDetector::Zscore(_) => "its rolling mean",
            AnyDetector::RobustZscore(_) => "its rolling median",
            AnyDetector::Ewma(_) => "its moving average",
            AnyDetector::Seasonal(_) => "its seasonal forecast",
            AnyDetector::Changepoint(_) => "its current regime's mean",
            AnyDetector::Ensemble(_) => "its expected value",
            AnyDetector::Trend(_) => "the level its steady climb toward capacity began at,",
        }
    }
}

impl Detector for AnyDetector {
    fn name(&self) -> &'static str {
        match self {
            AnyDetector::Threshold(_) => "threshold",
            AnyDetector::Zscore(_) => "zscore",
            AnyDetector::RobustZscore(_) => "robust_zscore",
            AnyDetector::Ewma(_) => "ewma",
            AnyDetector::Seasonal(_) => "seasonal",
            AnyDetector::Changepoint(_) => "changepoint",
            AnyDetector::Ensemble(_) => "ensemble",
            AnyDetector::Trend(_) => "trend",
        }
    }

    fn observe(&mut self, timestamp_ms: i64, value: f64) -> Verdict {
        self.inner().observe(timestamp_ms, value)
    }
}

/// A rule: the detectors for the series whose service and metric type match.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesRule {
    /// Service name, exact or glob (`*` any run, `?` one character). Default `*`.
    #[serde(default = "any")]
    pub service: String,
    /// Metric type, exact or glob. Default `*`.
    #[serde(default = "any")]
    pub metric_type: String,
    /// Detectors to run (empty: none — a way to exclude series).
    pub detectors: Vec<DetectorSpec>,
}

fn any() -> String {
    "*".into()
}

/// The detection configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Most series tracked at once; beyond, the least recently updated is dropped.
    pub max_series: usize,
    /// Per-series rules, first match wins.
    pub rules: Vec<SeriesRule>,
    /// Detectors for series no rule matches. Default: the ensemble.
    pub default: Vec<DetectorSpec>,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            max_series: 10_000,
            // Saturating resources also get a forecast toward capacity: a leak is a climb
            // the deviation detectors learn as normal.
            rules: ["memory*", "disk*"]
                .into_iter()
                .map(|metric_type| SeriesRule {
                    service: "*".into(),
                    metric_type: metric_type.into(),
                    detectors: vec![
                        DetectorSpec::Ensemble(EnsembleConfig::default()),
                        DetectorSpec::Trend(TrendConfig::default()),
                    ],
                })
                .collect(),
            default: vec![DetectorSpec::Ensemble(EnsembleConfig::default())],
        }
    }
}

impl DetectConfig {
    /// Checks every parameter; call once after loading.
    pub fn validate(&self) -> Result<(), DetectError> {
        if self.max_series == 0 {
            return Err(DetectError::InvalidConfig("max_series must be ≥ 1".into()));
        }
        for spec in self
            .rules
            .iter()
            .flat_map(|r| &r.detectors)
            .chain(&self.default)
        {
            spec.validate()?;
        }
        Ok(())
    }

    /// The detectors for a series.
    pub fn detectors_for(&self, service: &str, metric_type: &str) -> &[DetectorSpec] {
        self.rules
            .iter()
            .find(|r| glob_match(&r.service, service) && glob_match(&r.metric_type, metric_type))
            .map_or(self.default.as_slice(), |r| r.detectors.as_slice())
    }
}

/// Glob match with `*` (any run, possibly empty) and `?` (one character); anything else
/// matches itself. Linear time (greedy with backtracking to the last `*`).
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match() {
        assert!(glob_match("*", "anything"));
        assert!(glob_match("checkout*", "checkout-api"));
        assert!(!glob_match("checkout*", "cart"));
        assert!(glob_match("*_ms", "latency_ms"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "abbc"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn config_parses_rules_and_rejects_unknown_fields() {
        let json = r#"{
            "max_series": 5,
            "rules": [{"service": "checkout*", "metric_type": "latency_ms",
                       "detectors": [{"kind": "threshold", "limit": 2000.0, "for_ms": 300000},
                                     {"kind": "robust_zscore", "window": 100}]}]
        }"#;
        let c: DetectConfig = serde_json::from_str(json).expect("valid config");
        c.validate().expect("valid");
        assert_eq!(c.detectors_for("checkout-eu", "latency_ms").len(), 2);
        assert_eq!(
            c.detectors_for("cart", "latency_ms"),
            &[DetectorSpec::Ensemble(EnsembleConfig::default())]
        );
        let bad = r#"{"max_series": 5, "colour": 1}"#;
        assert!(serde_json::from_str::<DetectConfig>(bad).is_err());
        let bad_inner = r#"{"default": [{"kind": "zscore", "windw": 10}]}"#;
        assert!(serde_json::from_str::<DetectConfig>(bad_inner).is_err());
    }
}
