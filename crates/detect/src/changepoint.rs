//! Bayesian online change-point detection (Adams & MacKay, 2007) with a Normal model of
//! unknown mean and variance (Normal-Gamma prior, Student-t predictive) and a constant
//! hazard. The run-length distribution is truncated to `max_run_length` entries (the
//! longest runs are dropped and the rest renormalised), so state and cost per point are
//! bounded: O(`max_run_length`).
//!
//! The score of a point is the posterior probability that the current run started within
//! the last `recent` points — high right after the series changed regime.

use serde::{Deserialize, Serialize};

use crate::{Detector, Verdict};

/// Configuration of a [`ChangePointDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChangePointConfig {
    /// Expected run length between changes (hazard = 1/this).
    pub expected_run_length: f64,
    /// Longest run length tracked (memory bound).
    pub max_run_length: usize,
    /// A change is "recent" when the run started within this many points.
    pub recent: usize,
    /// Posterior probability of a recent change at or above which the point is anomalous.
    pub threshold: f64,
    /// Points used to set the prior's mean and scale before judging.
    pub warmup: usize,
}

impl Default for ChangePointConfig {
    fn default() -> Self {
        ChangePointConfig {
            expected_run_length: 250.0,
            max_run_length: 300,
            recent: 5,
            threshold: 0.6,
            warmup: 30,
        }
    }
}

/// Sufficient statistics of one run-length hypothesis (Normal-Gamma posterior).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Hypothesis {
    prob: f64,
    mu: f64,
    kappa: f64,
    alpha: f64,
    beta: f64,
}

impl Hypothesis {
    fn log_predictive(&self, x: f64) -> f64 {
        // Student-t with 2α degrees of freedom, location μ, scale² β(κ+1)/(ακ)
        let nu = 2.0 * self.alpha;
        let scale2 = self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa);
        let d = x - self.mu;
        ln_gamma((nu + 1.0) / 2.0)
            - ln_gamma(nu / 2.0)
            - 0.5 * (nu * std::f64::consts::PI * scale2).ln()
            - (nu + 1.0) / 2.0 * (1.0 + d * d / (nu * scale2)).ln()
    }

    fn updated(&self, x: f64) -> Hypothesis {
        let kappa = self.kappa + 1.0;
        Hypothesis {
            prob: self.prob,
            mu: (self.kappa * self.mu + x) / kappa,
            kappa,
            alpha: self.alpha + 0.5,
            beta: self.beta + self.kappa * (x - self.mu).powi(2) / (2.0 * kappa),
        }
    }

    fn predictive_sd(&self) -> f64 {
        (self.beta * (self.kappa + 1.0) / (self.alpha * self.kappa)).sqrt()
    }
}

/// Lanczos approximation of ln Γ(x) for x > 0.
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Bayesian online change-point detector with a truncated run-length distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangePointDetector {
    config: ChangePointConfig,
    warm: Vec<f64>,
    prior: Option<Hypothesis>,
    /// Index i holds the hypothesis "the current run is i points long".
    runs: Vec<Hypothesis>,
    /// Points judged since the prior was set (no verdict until the run-length
    /// distribution can extend past `recent`).
    judged: u64,
}

impl ChangePointDetector {
    /// A detector that has seen nothing.
    pub fn new(config: ChangePointConfig) -> Self {
        ChangePointDetector {
            config,
            warm: Vec::new(),
            prior: None,
            runs: Vec::new(),
            judged: 0,
        }
    }

    /// Run-length hypotheses currently held (≤ `max_run_length`).
    pub fn held(&self) -> usize {
        self.runs.len()
    }

    /// The most probable current run length.
    pub fn map_run_length(&self) -> usize {
        self.runs
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.prob.total_cmp(&b.1.prob))
            .map(|(i, _)| i)
            .unwrap_or(0)
    }
}

impl Detector for ChangePointDetector {
    fn name(&self) -> &'static str {
        "changepoint"
    }

    fn observe(&mut self, _timestamp_ms: i64, value: f64) -> Verdict {
        if !value.is_finite() {
            return Verdict::warming_up(value);
        }
        let Some(prior) = self.prior else {
            self.warm.push(value);
            if self.warm.len() >= self.config.warmup.max(2) {
                let n = self.warm.len() as f64;
                let mean = self.warm.iter().sum::<f64>() / n;
                let var = self.warm.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
                let var = var.max(1e-6 * mean.abs().max(1.0)).max(1e-12);
                let p = Hypothesis {
                    prob: 1.0,
                    mu: mean,
                    kappa: 1.0,
                    alpha: 1.0,
                    beta: var,
                };
                self.prior = Some(p);
                self.runs = vec![p];
                self.warm = Vec::new();
            }
            return Verdict::warming_up(value);
        };
        // Expected range from the most probable run before seeing the point.
        let map = self.map_run_length();
        let (center, sd) = self
            .runs
            .get(map)
            .map(|h| (h.mu, h.predictive_sd()))
            .unwrap_or((prior.mu, prior.predictive_sd()));

        let hazard = 1.0 / self.config.expected_run_length.max(1.0);
        let log_preds: Vec<f64> = self.runs.iter().map(|h| h.log_predictive(value)).collect();
        let max_lp = log_preds.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let mut grown = Vec::with_capacity(self.runs.len() + 1);
        let mut cp_mass = 0.0;
        for (h, lp) in self.runs.iter().zip(&log_preds) {
            let joint = h.prob * (lp - max_lp).exp();
            cp_mass += joint * hazard;
            let mut next = h.updated(value);
            next.prob = joint * (1.0 - hazard);
            grown.push(next);
        }
        let mut fresh = prior;
        fresh.prob = cp_mass;
        let mut runs = Vec::with_capacity(grown.len() + 1);
        runs.push(fresh);
        runs.extend(grown);
        runs.truncate(self.config.max_run_length.max(2));
        let total: f64 = runs.iter().map(|h| h.prob).sum();
        if total > 0.0 && total.is_finite() {
            for h in &mut runs {
                h.prob /= total;
            }
        } else {
            // Numerically impossible point under every hypothesis: restart from the prior.
            runs = vec![prior];
        }
        self.runs = runs;
        let recent: f64 = self
            .runs
            .iter()
            .take(self.config.recent.max(1) + 1)
            .skip(1)
            .map(|h| h.prob)
            .sum();
        self.judged += 1;
        let score = if self.judged > self.config.recent as u64 + 1 {
            recent.clamp(0.0, 1.0)
        } else {
            0.0
        };
        Verdict {
            score,
            expected: center,
            expected_low: center - 3.0 * sd,
            expected_high: center + 3.0 * sd,
            anomalous: score >= self.config.threshold,
            sigmas: Some((value - center) / sd.max(1e-12)),
        }
    }
}
