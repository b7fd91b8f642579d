//! Bounded sliding windows: a running mean/variance over the last `n` values (O(1) per
//! point) and a sorted window giving the median and the MAD in O(log n) per query.
//!
//! Both keep at most `capacity` values, so a detector built on them has bounded memory
//! whatever the length of its series; both serialize, so detector state checkpoints.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Mean and variance of the last `capacity` values.
///
/// Sums are updated incrementally and recomputed from the buffer every `capacity` pushes,
/// so floating-point drift stays bounded while the amortised cost stays O(1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RollingStats {
    capacity: usize,
    values: VecDeque<f64>,
    sum: f64,
    sum_sq: f64,
    since_recompute: usize,
}

impl RollingStats {
    /// An empty window of at most `capacity` (≥ 1) values.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        RollingStats {
            capacity,
            values: VecDeque::with_capacity(capacity.min(4096)),
            sum: 0.0,
            sum_sq: 0.0,
            since_recompute: 0,
        }
    }

    /// Adds a value, evicting the oldest when full.
    pub fn push(&mut self, x: f64) {
        if self.values.len() == self.capacity
            && let Some(old) = self.values.pop_front()
        {
            self.sum -= old;
            self.sum_sq -= old * old;
        }
        self.values.push_back(x);
        self.sum += x;
        self.sum_sq += x * x;
        self.since_recompute += 1;
        if self.since_recompute >= self.capacity {
            self.sum = self.values.iter().sum();
            self.sum_sq = self.values.iter().map(|v| v * v).sum();
            self.since_recompute = 0;
        }
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The window's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Mean of the held values (0 when empty).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            0.0
        } else {
            self.sum / self.values.len() as f64
        }
    }

    /// Sample standard deviation of the held values (0 with fewer than two).
    pub fn std_dev(&self) -> f64 {
        let n = self.values.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mean = self.sum / n;
        ((self.sum_sq - n * mean * mean) / (n - 1.0))
            .max(0.0)
            .sqrt()
    }
}

/// The last `capacity` values, also kept sorted for order statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SortedWindow {
    capacity: usize,
    arrival: VecDeque<f64>,
    sorted: Vec<f64>,
}

impl SortedWindow {
    /// An empty window of at most `capacity` (≥ 1) values.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        SortedWindow {
            capacity,
            arrival: VecDeque::with_capacity(capacity.min(4096)),
            sorted: Vec::with_capacity(capacity.min(4096)),
        }
    }

    /// Adds a finite value, evicting the oldest when full. Non-finite values are ignored
    /// (they have no place in an order).
    pub fn push(&mut self, x: f64) {
        if !x.is_finite() {
            return;
        }
        if self.arrival.len() == self.capacity
            && let Some(old) = self.arrival.pop_front()
        {
            let i = self.sorted.partition_point(|v| *v < old);
            if i < self.sorted.len() {
                self.sorted.remove(i);
            }
        }
        self.arrival.push_back(x);
        let i = self.sorted.partition_point(|v| *v < x);
        self.sorted.insert(i, x);
    }

    /// Number of values held.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }

    /// The window's capacity.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The `q`-quantile (0..=1, nearest rank), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.sorted.is_empty() {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * (self.sorted.len() - 1) as f64).round() as usize;
        self.sorted.get(rank).copied()
    }

    /// The median (mean of the two middle values for an even count), `None` when empty.
    pub fn median(&self) -> Option<f64> {
        let n = self.sorted.len();
        if n == 0 {
            return None;
        }
        if n % 2 == 1 {
            Some(self.sorted[n / 2])
        } else {
            Some(0.5 * (self.sorted[n / 2 - 1] + self.sorted[n / 2]))
        }
    }

    /// The median absolute deviation from `center`, in O(log n): the absolute deviations
    /// form two sorted runs (left of the center, reversed, and right of it), and the
    /// median of their union is a k-th-smallest-of-two-sorted-arrays search.
    pub fn mad(&self, center: f64) -> Option<f64> {
        let n = self.sorted.len();
        if n == 0 {
            return None;
        }
        let split = self.sorted.partition_point(|v| *v < center);
        let left = |i: usize| center - self.sorted[split - 1 - i]; // ascending in i
        let right = |j: usize| self.sorted[split + j] - center; // ascending in j
        let (la, lb) = (split, n - split);
        let kth = |k: usize| -> f64 {
            // k-th smallest (0-based) of the merged runs
            let (mut lo, mut hi) = (k.saturating_sub(lb), k.min(la));
            // find i elements from left, k - i from right, with the partition valid
            while lo < hi {
                let i = (lo + hi) / 2;
                let j = k - i;
                // if left[i] < right[j-1], take more from left
                if j > 0 && i < la && left(i) < right(j - 1) {
                    lo = i + 1;
                } else {
                    hi = i;
                }
            }
            let i = lo;
            let j = k - i;
            let a = if i < la { left(i) } else { f64::INFINITY };
            let b = if j < lb { right(j) } else { f64::INFINITY };
            a.min(b)
        };
        if n % 2 == 1 {
            Some(kth(n / 2))
        } else {
            Some(0.5 * (kth(n / 2 - 1) + kth(n / 2)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_mad(values: &[f64], center: f64) -> f64 {
        let mut d: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
        d.sort_by(f64::total_cmp);
        let n = d.len();
        if n % 2 == 1 {
            d[n / 2]
        } else {
            0.5 * (d[n / 2 - 1] + d[n / 2])
        }
    }

    #[test]
    fn rolling_stats_match_direct_computation_and_stay_bounded() {
        let mut w = RollingStats::new(10);
        for i in 0..1000 {
            w.push((i % 7) as f64 * 1.5);
        }
        assert_eq!(w.len(), 10);
        let last: Vec<f64> = (990..1000).map(|i| (i % 7) as f64 * 1.5).collect();
        let mean = last.iter().sum::<f64>() / 10.0;
        let var = last.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 9.0;
        assert!((w.mean() - mean).abs() < 1e-9);
        assert!((w.std_dev() - var.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn sorted_window_median_and_mad_match_naive() {
        let mut w = SortedWindow::new(25);
        let mut all = Vec::new();
        let mut x = 17u64;
        for _ in 0..400 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let v = ((x >> 33) % 1000) as f64 / 10.0;
            w.push(v);
            all.push(v);
            let tail = &all[all.len().saturating_sub(25)..];
            let mut s = tail.to_vec();
            s.sort_by(f64::total_cmp);
            let n = s.len();
            let med = if n % 2 == 1 {
                s[n / 2]
            } else {
                0.5 * (s[n / 2 - 1] + s[n / 2])
            };
            assert_eq!(w.median(), Some(med));
            let mad = w.mad(med).unwrap_or(f64::NAN);
            assert!(
                (mad - naive_mad(tail, med)).abs() < 1e-9,
                "{mad} vs {}",
                naive_mad(tail, med)
            );
            // an off-centre MAD too
            let mad2 = w.mad(med + 7.3).unwrap_or(f64::NAN);
            assert!((mad2 - naive_mad(tail, med + 7.3)).abs() < 1e-9);
        }
        assert_eq!(w.len(), 25);
    }
}
