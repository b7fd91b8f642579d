//! `TOPK`: the `k` largest values of a window (ksqlDB's `TOPK(col, k)`), and
//! `TOPK_FREQUENT`: the `k` most frequent values, estimated with the Space-Saving algorithm
//! (Metwally et al.) in bounded memory — "top error fingerprints in the last 5 minutes".
//!
//! Both keep a bounded amount of state however many records a window sees, and both
//! merge: the largest-`k` merge is exact; the Space-Saving merge (Agarwal et al.,
//! "Mergeable summaries") keeps its error bound.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Value;

/// The `k` largest values, kept sorted in descending order (duplicates count).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopK {
    k: usize,
    values: Vec<Value>,
}

impl TopK {
    /// Keeps the `k` largest values.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            values: Vec::with_capacity(k.min(64)),
        }
    }

    /// Adds a value (callers skip `NULL`).
    pub fn add(&mut self, v: &Value) {
        if self.values.len() == self.k {
            match self.values.last() {
                Some(smallest) if v.sql_cmp(smallest).is_gt() => {
                    self.values.pop();
                }
                _ => return,
            }
        }
        // Insert after equal values: stable, and so deterministic.
        let at = self.values.partition_point(|x| x.sql_cmp(v).is_ge());
        self.values.insert(at, v.clone());
    }

    /// Adds every value `other` kept.
    pub fn merge(&mut self, other: &TopK) {
        for v in &other.values {
            self.add(v);
        }
    }

    /// The values, largest first.
    pub fn values(&self) -> &[Value] {
        &self.values
    }
}

/// Space-Saving heavy hitters: at most `capacity` monitored values with their estimated
/// counts (each overestimates by at most its recorded error).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceSaving {
    k: usize,
    capacity: usize,
    /// value → (count, maximum overestimation)
    counters: BTreeMap<Value, (u64, u64)>,
}

impl SpaceSaving {
    /// Reports the `k` most frequent values, monitoring `4·k` (at least 16) candidates.
    pub fn new(k: usize) -> Self {
        Self {
            k,
            capacity: (k * 4).max(16),
            counters: BTreeMap::new(),
        }
    }

    /// Counts one occurrence (callers skip `NULL`).
    pub fn add(&mut self, v: &Value) {
        self.add_n(v, 1, 0);
    }

    fn add_n(&mut self, v: &Value, n: u64, error: u64) {
        if let Some((count, err)) = self.counters.get_mut(v) {
            *count += n;
            *err += error;
            return;
        }
        if self.counters.len() < self.capacity {
            self.counters.insert(v.clone(), (n, error));
            return;
        }
        // Replace the least counted value; the newcomer inherits its count as error.
        if let Some((victim, (min, _))) = self.min_entry() {
            self.counters.remove(&victim);
            self.counters.insert(v.clone(), (min + n, min + error));
        }
    }

    fn min_entry(&self) -> Option<(Value, (u64, u64))> {
        // Ties go to the smallest value: deterministic.
        self.counters
            .iter()
            .min_by(|a, b| a.1.0.cmp(&b.1.0).then_with(|| a.0.cmp(b.0)))
            .map(|(v, c)| (v.clone(), *c))
    }

    /// The smallest monitored count when full (what an unmonitored value may have had).
    fn floor(&self) -> u64 {
        if self.counters.len() < self.capacity {
            0
        } else {
            self.min_entry().map_or(0, |(_, (c, _))| c)
        }
    }

    /// Combines with another summary.
    pub fn merge(&mut self, other: &SpaceSaving) {
        let (ours, theirs) = (self.floor(), other.floor());
        let mut combined: BTreeMap<Value, (u64, u64)> = BTreeMap::new();
        for (v, &(c, e)) in &self.counters {
            let (oc, oe) = other.counters.get(v).copied().unwrap_or((theirs, theirs));
            combined.insert(v.clone(), (c + oc, e + oe));
        }
        for (v, &(c, e)) in &other.counters {
            combined.entry(v.clone()).or_insert((c + ours, e + ours));
        }
        let mut entries: Vec<(Value, (u64, u64))> = combined.into_iter().collect();
        entries.sort_by(|a, b| b.1.0.cmp(&a.1.0).then_with(|| a.0.cmp(&b.0)));
        entries.truncate(self.capacity);
        self.counters = entries.into_iter().collect();
    }

    /// The `k` most frequent values, most frequent first (ties: smaller value first).
    pub fn top(&self) -> Vec<(Value, u64)> {
        let mut entries: Vec<(Value, u64)> = self
            .counters
            .iter()
            .map(|(v, &(c, _))| (v.clone(), c))
            .collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        entries.truncate(self.k);
        entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_k_largest_with_duplicates() {
        let mut t = TopK::new(3);
        for v in [5, 1, 9, 9, 3, 7] {
            t.add(&Value::Int(v));
        }
        assert_eq!(t.values(), &[Value::Int(9), Value::Int(9), Value::Int(7)]);
        let mut other = TopK::new(3);
        other.add(&Value::Float(8.5));
        t.merge(&other);
        assert_eq!(
            t.values(),
            &[Value::Int(9), Value::Int(9), Value::Float(8.5)]
        );
    }

    #[test]
    fn finds_heavy_hitters_among_many_rare_values() {
        let mut s = SpaceSaving::new(2);
        for i in 0..10_000i64 {
            s.add(&Value::Int(i));
            if i % 3 == 0 {
                s.add(&Value::string("timeout"));
            }
            if i % 5 == 0 {
                s.add(&Value::string("refused"));
            }
        }
        let top: Vec<Value> = s.top().into_iter().map(|(v, _)| v).collect();
        assert_eq!(
            top,
            vec![Value::string("timeout"), Value::string("refused")]
        );
        assert!(s.counters.len() <= s.capacity);
    }

    #[test]
    fn merged_summaries_keep_the_heavy_hitters() {
        let mut a = SpaceSaving::new(1);
        let mut b = SpaceSaving::new(1);
        for i in 0..1_000i64 {
            a.add(&Value::Int(i));
            b.add(&Value::Int(i + 5_000));
            a.add(&Value::string("x"));
            if i % 2 == 0 {
                b.add(&Value::string("x"));
            }
        }
        a.merge(&b);
        let top = a.top();
        assert_eq!(top[0].0, Value::string("x"));
        assert!(top[0].1 >= 1_500);
    }
}
