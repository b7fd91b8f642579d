//! `STDDEV`: Welford's online mean and variance, merged with Chan et al.'s parallel
//! formula, so a window's standard deviation is numerically stable (no catastrophic
//! cancellation of `Σx² − (Σx)²/n`) and can still be combined across windows.

use serde::{Deserialize, Serialize};

/// Count, mean and sum of squared deviations of the values seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Welford {
    count: u64,
    mean: f64,
    m2: f64,
}

impl Welford {
    /// Adds a value.
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Combines with another accumulator.
    pub fn merge(&mut self, other: &Welford) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let count = self.count + other.count;
        let delta = other.mean - self.mean;
        let n_a = self.count as f64;
        let n_b = other.count as f64;
        self.mean += delta * n_b / count as f64;
        self.m2 += other.m2 + delta * delta * n_a * n_b / count as f64;
        self.count = count;
    }

    /// Number of values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sample standard deviation (`n − 1` in the denominator, like PostgreSQL's
    /// `stddev`); `None` with fewer than two values.
    pub fn sample_stddev(&self) -> Option<f64> {
        (self.count >= 2).then(|| (self.m2.max(0.0) / (self.count - 1) as f64).sqrt())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(values: &[f64]) -> Welford {
        let mut w = Welford::default();
        values.iter().for_each(|&v| w.add(v));
        w
    }

    #[test]
    fn sample_stddev_of_a_known_series() {
        let w = of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        let expected = (32.0f64 / 7.0).sqrt();
        assert!((w.sample_stddev().unwrap() - expected).abs() < 1e-12);
        assert_eq!(of(&[1.0]).sample_stddev(), None);
    }

    #[test]
    fn stable_for_large_offsets() {
        let w = of(&[1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0]);
        assert!((w.sample_stddev().unwrap() - 30f64.sqrt()).abs() < 1e-6);
    }

    #[test]
    fn merge_matches_one_pass() {
        let all = [1.0, 2.5, 3.0, 10.0, -4.0, 8.0, 0.5];
        let mut left = of(&all[..3]);
        left.merge(&of(&all[3..]));
        let one = of(&all);
        assert_eq!(left.count(), one.count());
        assert!((left.sample_stddev().unwrap() - one.sample_stddev().unwrap()).abs() < 1e-12);
        let mut empty = Welford::default();
        empty.merge(&one);
        assert_eq!(empty, one);
    }
}
