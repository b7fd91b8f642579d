//! Error-event rate: counts of error events per service per closed window (the stream
//! engine's tumbling windows produce them) against a learned baseline rate.
//!
//! Input is one `(window_start_ms, count)` per *closed* window — via [`Detector::observe`]
//! with the count as the value. The baseline is an EWMA of past counts; a window is
//! anomalous when observing at least `count` events under a Poisson law with the baseline
//! rate is less likely than `p_value` and the count is at least `min_count` (so 0 → 3
//! errors on a quiet service does not page). Anomalous windows update the baseline only up
//! to the edge of the expected range, so an incident does not quickly become the norm.

use serde::{Deserialize, Serialize};

use crate::{Detector, Verdict};

/// Configuration of an [`EventRateDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventRateConfig {
    /// EWMA weight of the newest window in the baseline.
    pub alpha: f64,
    /// Tail probability at or below which a window is anomalous.
    pub p_value: f64,
    /// Counts below this are never anomalous.
    pub min_count: f64,
    /// Windows needed before judging.
    pub min_windows: u64,
    /// Floor on the baseline rate (events per window), so a silent service has a
    /// finite tail.
    pub min_rate: f64,
}

impl Default for EventRateConfig {
    fn default() -> Self {
        EventRateConfig {
            alpha: 0.05,
            p_value: 1e-4,
            min_count: 5.0,
            min_windows: 10,
            min_rate: 0.5,
        }
    }
}

/// Poisson upper tail P(X ≥ k) for rate λ, summed in log space from k upward (terms
/// shrink geometrically once k > λ); for k ≤ λ it is ≥ ~0.5 and computed as 1 − CDF.
pub fn poisson_sf(k: f64, lambda: f64) -> f64 {
    let k = k.max(0.0).floor();
    if k <= 0.0 {
        return 1.0;
    }
    let lambda = lambda.max(1e-12);
    let ln_pmf = |i: f64| i * lambda.ln() - lambda - ln_factorial(i);
    if k <= lambda {
        // 1 − P(X ≤ k − 1)
        let mut cdf = 0.0;
        let mut i = 0.0;
        while i < k {
            cdf += ln_pmf(i).exp();
            i += 1.0;
        }
        return (1.0 - cdf).clamp(0.0, 1.0);
    }
    let mut sum = 0.0;
    let mut i = k;
    for _ in 0..100_000 {
        let term = ln_pmf(i).exp();
        sum += term;
        if term < sum * 1e-12 {
            break;
        }
        i += 1.0;
    }
    sum.clamp(0.0, 1.0)
}

/// ln(n!) via Stirling's series beyond 20, exact below.
fn ln_factorial(n: f64) -> f64 {
    if n < 20.0 {
        let mut acc = 0.0;
        let mut i = 2.0;
        while i <= n {
            acc += f64::ln(i);
            i += 1.0;
        }
        acc
    } else {
        n * n.ln() - n + 0.5 * (2.0 * std::f64::consts::PI * n).ln() + 1.0 / (12.0 * n)
            - 1.0 / (360.0 * n * n * n)
    }
}

/// Error-event count per window vs an EWMA Poisson baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EventRateDetector {
    config: EventRateConfig,
    baseline: f64,
    windows: u64,
}

impl EventRateDetector {
    /// A detector that has seen no window.
    pub fn new(config: EventRateConfig) -> Self {
        EventRateDetector {
            config,
            baseline: 0.0,
            windows: 0,
        }
    }

    /// The current baseline (expected events per window).
    pub fn baseline(&self) -> f64 {
        self.baseline
    }
}

impl Detector for EventRateDetector {
    fn name(&self) -> &'static str {
        "event_rate"
    }

    fn observe(&mut self, _timestamp_ms: i64, count: f64) -> Verdict {
        if !count.is_finite() || count < 0.0 {
            return Verdict::warming_up(count);
        }
        let cfg = &self.config;
        let rate = self.baseline.max(cfg.min_rate);
        let judged = self.windows >= cfg.min_windows;
        // The expected range: the counts whose upper tail is above the p-value.
        let mut high = rate.ceil();
        while poisson_sf(high + 1.0, rate) > cfg.p_value && high < rate * 100.0 + 100.0 {
            high += 1.0;
        }
        let verdict = if judged {
            let p = poisson_sf(count, rate);
            Verdict {
                score: (1.0 - p).clamp(0.0, 1.0),
                expected: rate,
                expected_low: 0.0,
                expected_high: high,
                anomalous: p <= cfg.p_value && count >= cfg.min_count,
                sigmas: Some((count - rate) / rate.sqrt()),
            }
        } else {
            Verdict::warming_up(count)
        };
        let learned = if verdict.anomalous {
            count.min(high)
        } else {
            count
        };
        self.windows += 1;
        let alpha = cfg.alpha.clamp(1e-6, 1.0).max(1.0 / self.windows as f64);
        self.baseline += alpha * (learned - self.baseline);
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_tail_matches_known_values() {
        // P(X ≥ 5 | λ = 1) = 0.003659847
        assert!((poisson_sf(5.0, 1.0) - 0.003_659_847).abs() < 1e-8);
        // P(X ≥ 1 | λ = 2) = 1 − e^{-2}
        assert!((poisson_sf(1.0, 2.0) - (1.0 - (-2.0f64).exp())).abs() < 1e-12);
        assert_eq!(poisson_sf(0.0, 3.0), 1.0);
        assert!(poisson_sf(200.0, 50.0) < 1e-40);
    }
}
