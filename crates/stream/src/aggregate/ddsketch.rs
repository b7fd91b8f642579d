//! `P50`/`P95`/`P99`: a DDSketch (Masson, Rim & Lee, VLDB 2019) with 1 % relative
//! accuracy.
//!
//! Percentiles of a window must be mergeable (hopping windows and session merges) and
//! checkpointable, with a guaranteed error. DDSketch buckets each value by
//! `ceil(log_γ |x|)`, so any quantile it returns is within 1 % of the true value (of the
//! rank `q·(n-1)`, rounded down), whatever the distribution; merging adds bucket counts, so
//! it is exact and order-independent. Written here (about a hundred lines) to control the
//! serialized form and memory: buckets are a dense run of counters per sign that collapses
//! its lowest buckets past [`MAX_BINS`] (only the lowest quantiles lose accuracy then).

use serde::{Deserialize, Serialize};

/// Relative accuracy of every quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Most buckets per sign; 2,048 buckets at 1 % span a ratio of about 10^17 between the
/// smallest and largest value before any collapsing.
pub const MAX_BINS: usize = 2_048;
/// Magnitudes below this count as zero.
const MIN_INDEXABLE: f64 = 1e-9;

const GAMMA: f64 = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);

fn ln_gamma() -> f64 {
    GAMMA.ln()
}

/// A dense run of bucket counters starting at bucket index `offset`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Bins {
    offset: i32,
    counts: Vec<u64>,
}

impl Bins {
    fn add(&mut self, index: i32, n: u64) {
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        let mut index = index;
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            if self.counts.len() + grow > MAX_BINS {
                // Collapse: the lowest bucket absorbs values below it.
                index = self.offset;
            } else {
                let mut counts = vec![0; grow];
                counts.extend_from_slice(&self.counts);
                self.counts = counts;
                self.offset = index;
            }
        }
        let slot = (index - self.offset) as usize;
        if slot >= self.counts.len() {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] += n;
        if self.counts.len() > MAX_BINS {
            let excess = self.counts.len() - MAX_BINS;
            let folded: u64 = self.counts.drain(..excess).sum();
            self.counts[0] += folded;
            self.offset += excess as i32;
        }
    }

    fn merge(&mut self, other: &Bins) {
        for (i, &n) in other.counts.iter().enumerate() {
            if n > 0 {
                self.add(other.offset + i as i32, n);
            }
        }
    }
}

/// A mergeable quantile sketch with relative-error guarantees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DdSketch {
    positive: Bins,
    negative: Bins,
    zeros: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for DdSketch {
    fn default() -> Self {
        Self {
            positive: Bins::default(),
            negative: Bins::default(),
            zeros: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl DdSketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of values added.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Adds a value; NaN and infinities are ignored (they have no place on the scale).
    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        let magnitude = x.abs();
        if magnitude < MIN_INDEXABLE {
            self.zeros += 1;
        } else if x > 0.0 {
            self.positive.add(index_of(magnitude), 1);
        } else {
            self.negative.add(index_of(magnitude), 1);
        }
        self.count += 1;
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Adds everything `other` holds.
    pub fn merge(&mut self, other: &DdSketch) {
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zeros += other.zeros;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (0..=1), or `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = (q * (self.count - 1) as f64).floor() as u64;
        let mut seen = 0u64;
        // Negative values, most negative (largest magnitude) first.
        for (i, &n) in self.negative.counts.iter().enumerate().rev() {
            seen += n;
            if seen > rank {
                return Some(self.clamp(-value_of(self.negative.offset + i as i32)));
            }
        }
        seen += self.zeros;
        if seen > rank {
            return Some(self.clamp(0.0));
        }
        for (i, &n) in self.positive.counts.iter().enumerate() {
            seen += n;
            if seen > rank {
                return Some(self.clamp(value_of(self.positive.offset + i as i32)));
            }
        }
        Some(self.max)
    }

    fn clamp(&self, v: f64) -> f64 {
        v.clamp(self.min, self.max)
    }
}

fn index_of(magnitude: f64) -> i32 {
    (magnitude.ln() / ln_gamma()).ceil() as i32
}

/// The bucket's representative value: within the relative accuracy of everything in it.
fn value_of(index: i32) -> f64 {
    2.0 * (f64::from(index) * ln_gamma()).exp() / (1.0 + GAMMA)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn exact_quantile(sorted: &[f64], q: f64) -> f64 {
        sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
    }

    fn assert_close(estimate: f64, exact: f64) {
        let tolerance = RELATIVE_ACCURACY * exact.abs() + 1e-9;
        assert!(
            (estimate - exact).abs() <= tolerance,
            "estimate {estimate} vs exact {exact}"
        );
    }

    #[test]
    fn empty_sketch_has_no_quantiles() {
        assert_eq!(DdSketch::new().quantile(0.5), None);
    }

    #[test]
    fn percentiles_of_one_to_ten_thousand() {
        let mut s = DdSketch::new();
        for i in 1..=10_000 {
            s.add(f64::from(i));
        }
        let sorted: Vec<f64> = (1..=10_000).map(f64::from).collect();
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            assert_close(s.quantile(q).unwrap(), exact_quantile(&sorted, q));
        }
    }

    #[test]
    fn handles_zero_and_negative_values() {
        let mut s = DdSketch::new();
        for x in [-100.0, -1.0, 0.0, 0.0, 1.0, 100.0] {
            s.add(x);
        }
        assert_close(s.quantile(0.0).unwrap(), -100.0);
        assert_eq!(s.quantile(0.4).unwrap(), 0.0);
        assert_close(s.quantile(1.0).unwrap(), 100.0);
        s.add(f64::NAN);
        assert_eq!(s.count(), 6);
    }

    #[test]
    fn huge_ranges_collapse_the_lowest_buckets_only() {
        let mut s = DdSketch::new();
        for e in -300..300 {
            s.add(10f64.powi(e));
        }
        assert!(s.positive.counts.len() <= MAX_BINS);
        assert_close(s.quantile(1.0).unwrap(), 1e299);
        assert_close(
            s.quantile(0.99).unwrap(),
            exact_quantile(
                &(-300..300).map(|e| 10f64.powi(e)).collect::<Vec<_>>(),
                0.99,
            ),
        );
    }

    proptest! {
        #[test]
        fn every_quantile_is_within_one_percent(
            values in proptest::collection::vec(-1e6f64..1e6, 1..400),
            q in 0.0f64..=1.0,
        ) {
            let mut s = DdSketch::new();
            for &v in &values { s.add(v); }
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let exact = exact_quantile(&sorted, q);
            let est = s.quantile(q).unwrap();
            prop_assert!((est - exact).abs() <= RELATIVE_ACCURACY * exact.abs() + 1e-6, "q={} est={} exact={}", q, est, exact);
        }

        #[test]
        fn merge_equals_adding_everything_to_one_sketch(
            a in proptest::collection::vec(-1e6f64..1e6, 0..200),
            b in proptest::collection::vec(-1e6f64..1e6, 0..200),
        ) {
            let mut left = DdSketch::new();
            a.iter().for_each(|&v| left.add(v));
            let mut right = DdSketch::new();
            b.iter().for_each(|&v| right.add(v));
            left.merge(&right);
            let mut all = DdSketch::new();
            a.iter().chain(&b).for_each(|&v| all.add(v));
            for q in [0.0, 0.25, 0.5, 0.95, 0.99, 1.0] {
                prop_assert_eq!(left.quantile(q), all.quantile(q));
            }
            prop_assert_eq!(left.count(), all.count());
        }
    }
}
