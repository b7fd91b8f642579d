//! Aggregate functions: what the SQL layer asks for ([`AggregateSpec`]) and the mergeable,
//! serializable state that computes it ([`Accumulator`]).
//!
//! Every accumulator supports three operations: `update` with one input value, `merge`
//! with another accumulator of the same kind (session windows merge when a record bridges
//! them), and `result` as a [`Value`]. All state is `serde`-serializable so a checkpoint can
//! hold it. Like SQL, every aggregate except `COUNT(*)` ignores `NULL` inputs; numeric
//! aggregates also ignore non-numeric inputs (the SQL layer casts before aggregating).
//!
//! The functions with sketches live in their own modules: [`hyperloglog`]
//! (`COUNT_DISTINCT`), [`ddsketch`] (`P50/P95/P99`), [`welford`] (`STDDEV`) and [`topk`]
//! (`TOPK`, `TOPK_FREQUENT`).

pub mod ddsketch;
pub mod hyperloglog;
pub mod topk;
pub mod welford;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::Value;
use crate::error::StreamError;
use ddsketch::DdSketch;
use hyperloglog::HyperLogLog;
use topk::{SpaceSaving, TopK};
use welford::Welford;

/// The largest `k` accepted by `TOPK` and `TOPK_FREQUENT` (state stays bounded).
pub const MAX_TOPK: usize = 1_000;

/// Which aggregate function.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
// Externally tagged: the checkpoint encoding (postcard) cannot read internally tagged enums.
#[serde(rename_all = "snake_case")]
pub enum AggregateKind {
    /// `COUNT(*)` (no input) or `COUNT(col)` (non-null values).
    Count,
    /// `COUNT_DISTINCT(col)`, estimated with HyperLogLog (exact up to 256 values).
    CountDistinct,
    /// `SUM(col)`: an integer while every input is an integer and it fits, else a float.
    Sum,
    /// `MIN(col)` in SQL order.
    Min,
    /// `MAX(col)` in SQL order.
    Max,
    /// `AVG(col)`.
    Avg,
    /// `STDDEV(col)`: sample standard deviation.
    Stddev,
    /// A percentile estimated with DDSketch (1 % relative error); `P50` is `{ q: 0.5 }`.
    Percentile {
        /// Quantile in `[0, 1]`.
        q: f64,
    },
    /// `LATEST_BY_OFFSET(col)`: the non-null value of the record processed last.
    LatestByOffset,
    /// `EARLIEST_BY_OFFSET(col)`: the non-null value of the record processed first.
    EarliestByOffset,
    /// `TOPK(col, k)`: the `k` largest values, largest first.
    TopK {
        /// How many.
        k: usize,
    },
    /// `TOPK_FREQUENT(col, k)`: the `k` most frequent values (Space-Saving estimate).
    TopKFrequent {
        /// How many.
        k: usize,
    },
}

impl AggregateKind {
    /// `P50`.
    pub const P50: AggregateKind = AggregateKind::Percentile { q: 0.5 };
    /// `P95`.
    pub const P95: AggregateKind = AggregateKind::Percentile { q: 0.95 };
    /// `P99`.
    pub const P99: AggregateKind = AggregateKind::Percentile { q: 0.99 };

    fn validate(&self) -> Result<(), String> {
        match *self {
            AggregateKind::Percentile { q } if !(0.0..=1.0).contains(&q) => {
                Err(format!("percentile must be between 0 and 1, got {q}"))
            }
            AggregateKind::TopK { k } | AggregateKind::TopKFrequent { k }
                if k == 0 || k > MAX_TOPK =>
            {
                Err(format!("TOPK needs 1 <= k <= {MAX_TOPK}, got {k}"))
            }
            _ => Ok(()),
        }
    }
}

/// One aggregate column of an operator: `kind(input) AS name`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AggregateSpec {
    /// The function.
    pub kind: AggregateKind,
    /// Index of the input field in each record's `fields`; `None` only for `COUNT(*)`.
    /// The SQL compiler projects any expression (`CASE WHEN …`) into a field first.
    pub input: Option<usize>,
    /// Output column name.
    pub name: String,
}

impl AggregateSpec {
    /// `kind(fields[input]) AS name`.
    pub fn new(kind: AggregateKind, input: usize, name: impl Into<String>) -> Self {
        Self {
            kind,
            input: Some(input),
            name: name.into(),
        }
    }

    /// `COUNT(*) AS name`.
    pub fn count_star(name: impl Into<String>) -> Self {
        Self {
            kind: AggregateKind::Count,
            input: None,
            name: name.into(),
        }
    }

    /// Checks the function's parameters and that it has the input it needs.
    pub fn validate(&self) -> Result<(), StreamError> {
        let invalid =
            |reason: String| StreamError::InvalidConfig(format!("{}: {reason}", self.name));
        self.kind.validate().map_err(invalid)?;
        if self.input.is_none() && self.kind != AggregateKind::Count {
            return Err(invalid(format!("{:?} needs an input column", self.kind)));
        }
        Ok(())
    }
}

/// Running `SUM`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum SumState {
    /// No non-null input yet.
    #[default]
    Empty,
    /// Exact integer sum.
    Int(i64),
    /// Float sum (some input was a float, or the integer sum overflowed).
    Float(f64),
}

impl SumState {
    fn add(&mut self, v: &Value) {
        *self = match (*self, v) {
            (SumState::Empty, Value::Int(i)) => SumState::Int(*i),
            (SumState::Int(a), Value::Int(b)) => match a.checked_add(*b) {
                Some(s) => SumState::Int(s),
                None => SumState::Float(a as f64 + *b as f64),
            },
            (state, v) => match v.as_f64() {
                Some(x) => SumState::Float(state.as_f64() + x),
                None => state,
            },
        };
    }

    fn merge(&mut self, other: &SumState) {
        match *other {
            SumState::Empty => {}
            SumState::Int(i) => self.add(&Value::Int(i)),
            SumState::Float(f) => self.add(&Value::Float(f)),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            SumState::Empty => 0.0,
            SumState::Int(i) => i as f64,
            SumState::Float(f) => f,
        }
    }

    fn result(self) -> Value {
        match self {
            SumState::Empty => Value::Null,
            SumState::Int(i) => Value::Int(i),
            SumState::Float(f) => Value::Float(f),
        }
    }
}

/// The running state of one aggregate for one (key, window).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Accumulator {
    /// Values counted.
    Count(u64),
    /// Distinct-value sketch.
    CountDistinct(HyperLogLog),
    /// Running sum.
    Sum(SumState),
    /// Smallest value so far.
    Min(Option<Value>),
    /// Largest value so far.
    Max(Option<Value>),
    /// Sum and count of numeric values.
    Avg {
        /// Sum of values.
        sum: f64,
        /// Number of values.
        count: u64,
    },
    /// Mean and variance.
    Stddev(Welford),
    /// Quantile sketch and the quantile to report.
    Percentile {
        /// Quantile in `[0, 1]`.
        q: f64,
        /// The sketch.
        sketch: Box<DdSketch>,
    },
    /// `(arrival sequence, value)` of the latest non-null value.
    Latest(Option<(u64, Value)>),
    /// `(arrival sequence, value)` of the earliest non-null value.
    Earliest(Option<(u64, Value)>),
    /// Largest values.
    TopK(TopK),
    /// Most frequent values.
    TopKFrequent(SpaceSaving),
}

impl Accumulator {
    /// An empty accumulator for `kind`.
    pub fn new(kind: &AggregateKind) -> Self {
        match *kind {
            AggregateKind::Count => Accumulator::Count(0),
            AggregateKind::CountDistinct => Accumulator::CountDistinct(HyperLogLog::new()),
            AggregateKind::Sum => Accumulator::Sum(SumState::Empty),
            AggregateKind::Min => Accumulator::Min(None),
            AggregateKind::Max => Accumulator::Max(None),
            AggregateKind::Avg => Accumulator::Avg { sum: 0.0, count: 0 },
            AggregateKind::Stddev => Accumulator::Stddev(Welford::default()),
            AggregateKind::Percentile { q } => Accumulator::Percentile {
                q,
                sketch: Box::default(),
            },
            AggregateKind::LatestByOffset => Accumulator::Latest(None),
            AggregateKind::EarliestByOffset => Accumulator::Earliest(None),
            AggregateKind::TopK { k } => Accumulator::TopK(TopK::new(k)),
            AggregateKind::TopKFrequent { k } => Accumulator::TopKFrequent(SpaceSaving::new(k)),
        }
    }

    /// Adds one input. `value` is `None` for `COUNT(*)` (count the record); `seq` is the
    /// record's arrival sequence in the operator (orders `LATEST`/`EARLIEST_BY_OFFSET`).
    pub fn update(&mut self, value: Option<&Value>, seq: u64) {
        let v = match value {
            None => {
                if let Accumulator::Count(n) = self {
                    *n += 1;
                }
                return;
            }
            Some(Value::Null) => return,
            Some(v) => v,
        };
        match self {
            Accumulator::Count(n) => *n += 1,
            Accumulator::CountDistinct(h) => h.insert(v),
            Accumulator::Sum(s) => s.add(v),
            Accumulator::Min(m) => {
                if m.as_ref().is_none_or(|cur| v.sql_cmp(cur).is_lt()) {
                    *m = Some(v.clone());
                }
            }
            Accumulator::Max(m) => {
                if m.as_ref().is_none_or(|cur| v.sql_cmp(cur).is_gt()) {
                    *m = Some(v.clone());
                }
            }
            Accumulator::Avg { sum, count } => {
                if let Some(x) = v.as_f64() {
                    *sum += x;
                    *count += 1;
                }
            }
            Accumulator::Stddev(w) => {
                if let Some(x) = v.as_f64() {
                    w.add(x);
                }
            }
            Accumulator::Percentile { sketch, .. } => {
                if let Some(x) = v.as_f64() {
                    sketch.add(x);
                }
            }
            Accumulator::Latest(cur) => {
                if cur.as_ref().is_none_or(|(s, _)| seq >= *s) {
                    *cur = Some((seq, v.clone()));
                }
            }
            Accumulator::Earliest(cur) => {
                if cur.as_ref().is_none_or(|(s, _)| seq < *s) {
                    *cur = Some((seq, v.clone()));
                }
            }
            Accumulator::TopK(t) => t.add(v),
            Accumulator::TopKFrequent(s) => s.add(v),
        }
    }

    /// Folds `other` (the same kind) into `self`.
    pub fn merge(&mut self, other: &Accumulator) -> Result<(), StreamError> {
        match (self, other) {
            (Accumulator::Count(a), Accumulator::Count(b)) => *a += b,
            (Accumulator::CountDistinct(a), Accumulator::CountDistinct(b)) => a.merge(b),
            (Accumulator::Sum(a), Accumulator::Sum(b)) => a.merge(b),
            (Accumulator::Min(a), Accumulator::Min(Some(b))) => {
                if a.as_ref().is_none_or(|cur| b.sql_cmp(cur).is_lt()) {
                    *a = Some(b.clone());
                }
            }
            (Accumulator::Max(a), Accumulator::Max(Some(b))) => {
                if a.as_ref().is_none_or(|cur| b.sql_cmp(cur).is_gt()) {
                    *a = Some(b.clone());
                }
            }
            (Accumulator::Min(_), Accumulator::Min(None))
            | (Accumulator::Max(_), Accumulator::Max(None)) => {}
            (Accumulator::Avg { sum, count }, Accumulator::Avg { sum: s, count: c }) => {
                *sum += s;
                *count += c;
            }
            (Accumulator::Stddev(a), Accumulator::Stddev(b)) => a.merge(b),
            (
                Accumulator::Percentile { sketch: a, .. },
                Accumulator::Percentile { sketch: b, .. },
            ) => a.merge(b),
            (Accumulator::Latest(a), Accumulator::Latest(Some((seq, v)))) => {
                if a.as_ref().is_none_or(|(s, _)| seq >= s) {
                    *a = Some((*seq, v.clone()));
                }
            }
            (Accumulator::Earliest(a), Accumulator::Earliest(Some((seq, v)))) => {
                if a.as_ref().is_none_or(|(s, _)| seq < s) {
                    *a = Some((*seq, v.clone()));
                }
            }
            (Accumulator::Latest(_), Accumulator::Latest(None))
            | (Accumulator::Earliest(_), Accumulator::Earliest(None)) => {}
            (Accumulator::TopK(a), Accumulator::TopK(b)) => a.merge(b),
            (Accumulator::TopKFrequent(a), Accumulator::TopKFrequent(b)) => a.merge(b),
            (a, b) => {
                return Err(StreamError::IncompatibleMerge(format!(
                    "cannot merge {} into {}",
                    b.name(),
                    a.name()
                )));
            }
        }
        Ok(())
    }

    /// The aggregate's current value (`NULL` when it saw no input, except `COUNT`: 0).
    pub fn result(&self) -> Value {
        match self {
            Accumulator::Count(n) => Value::Int(i64::try_from(*n).unwrap_or(i64::MAX)),
            Accumulator::CountDistinct(h) => {
                Value::Int(i64::try_from(h.estimate()).unwrap_or(i64::MAX))
            }
            Accumulator::Sum(s) => s.result(),
            Accumulator::Min(m) | Accumulator::Max(m) => m.clone().unwrap_or(Value::Null),
            Accumulator::Avg { sum, count } => {
                if *count == 0 {
                    Value::Null
                } else {
                    Value::Float(sum / *count as f64)
                }
            }
            Accumulator::Stddev(w) => w.sample_stddev().map_or(Value::Null, Value::Float),
            Accumulator::Percentile { q, sketch } => {
                sketch.quantile(*q).map_or(Value::Null, Value::Float)
            }
            Accumulator::Latest(v) | Accumulator::Earliest(v) => {
                v.as_ref().map_or(Value::Null, |(_, v)| v.clone())
            }
            Accumulator::TopK(t) => Value::List(Arc::from(t.values())),
            Accumulator::TopKFrequent(s) => {
                let top: Vec<Value> = s.top().into_iter().map(|(v, _)| v).collect();
                Value::List(Arc::from(top))
            }
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Accumulator::Count(_) => "COUNT",
            Accumulator::CountDistinct(_) => "COUNT_DISTINCT",
            Accumulator::Sum(_) => "SUM",
            Accumulator::Min(_) => "MIN",
            Accumulator::Max(_) => "MAX",
            Accumulator::Avg { .. } => "AVG",
            Accumulator::Stddev(_) => "STDDEV",
            Accumulator::Percentile { .. } => "PERCENTILE",
            Accumulator::Latest(_) => "LATEST_BY_OFFSET",
            Accumulator::Earliest(_) => "EARLIEST_BY_OFFSET",
            Accumulator::TopK(_) => "TOPK",
            Accumulator::TopKFrequent(_) => "TOPK_FREQUENT",
        }
    }
}

/// All aggregates of one (key, window): one accumulator per [`AggregateSpec`], in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Accumulators(Vec<Accumulator>);

impl Accumulators {
    /// Empty accumulators for `specs`.
    pub fn new(specs: &[AggregateSpec]) -> Self {
        Accumulators(specs.iter().map(|s| Accumulator::new(&s.kind)).collect())
    }

    /// Feeds one record's fields; a missing field reads as `NULL`.
    pub fn update(&mut self, specs: &[AggregateSpec], fields: &[Value], seq: u64) {
        for (acc, spec) in self.0.iter_mut().zip(specs) {
            match spec.input {
                None => acc.update(None, seq),
                Some(i) => acc.update(Some(fields.get(i).unwrap_or(&Value::Null)), seq),
            }
        }
    }

    /// Folds `other` in, column by column.
    pub fn merge(&mut self, other: &Accumulators) -> Result<(), StreamError> {
        if self.0.len() != other.0.len() {
            return Err(StreamError::IncompatibleMerge(format!(
                "{} aggregates vs {}",
                self.0.len(),
                other.0.len()
            )));
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            a.merge(b)?;
        }
        Ok(())
    }

    /// Current results, one per aggregate.
    pub fn results(&self) -> Vec<Value> {
        self.0.iter().map(Accumulator::result).collect()
    }

    /// The accumulators.
    pub fn accumulators(&self) -> &[Accumulator] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(kind: AggregateKind, values: &[Value]) -> Value {
        let mut acc = Accumulator::new(&kind);
        for (seq, v) in values.iter().enumerate() {
            acc.update(Some(v), seq as u64);
        }
        acc.result()
    }

    fn ints(v: &[i64]) -> Vec<Value> {
        v.iter().map(|&i| Value::Int(i)).collect()
    }

    #[test]
    fn count_star_counts_nulls_count_col_does_not() {
        let mut star = Accumulator::new(&AggregateKind::Count);
        star.update(None, 0);
        star.update(None, 1);
        assert_eq!(star.result(), Value::Int(2));
        assert_eq!(
            run(AggregateKind::Count, &[Value::Null, Value::Int(1)]),
            Value::Int(1)
        );
    }

    #[test]
    fn sum_stays_integer_until_a_float_or_overflow() {
        assert_eq!(run(AggregateKind::Sum, &ints(&[1, 2, 3])), Value::Int(6));
        assert_eq!(
            run(AggregateKind::Sum, &[Value::Int(1), Value::Float(0.5)]),
            Value::Float(1.5)
        );
        assert_eq!(
            run(AggregateKind::Sum, &ints(&[i64::MAX, 1])),
            Value::Float(i64::MAX as f64 + 1.0)
        );
        assert_eq!(run(AggregateKind::Sum, &[Value::Null]), Value::Null);
        assert_eq!(
            run(AggregateKind::Sum, &[Value::string("x"), Value::Int(2)]),
            Value::Int(2)
        );
    }

    #[test]
    fn min_max_avg_stddev() {
        let v = ints(&[4, -2, 9, 1]);
        assert_eq!(run(AggregateKind::Min, &v), Value::Int(-2));
        assert_eq!(run(AggregateKind::Max, &v), Value::Int(9));
        assert_eq!(run(AggregateKind::Avg, &v), Value::Float(3.0));
        assert_eq!(run(AggregateKind::Avg, &[]), Value::Null);
        let Value::Float(sd) = run(AggregateKind::Stddev, &v) else {
            panic!("stddev is a float")
        };
        assert!((sd - 4.690_415_759_823_43).abs() < 1e-9);
        assert_eq!(
            run(
                AggregateKind::Max,
                &[Value::string("b"), Value::string("a")]
            ),
            Value::string("b")
        );
    }

    #[test]
    fn latest_and_earliest_by_offset_skip_nulls() {
        let v = vec![Value::string("a"), Value::string("b"), Value::Null];
        assert_eq!(run(AggregateKind::LatestByOffset, &v), Value::string("b"));
        assert_eq!(run(AggregateKind::EarliestByOffset, &v), Value::string("a"));
    }

    #[test]
    fn percentiles_count_distinct_and_topk() {
        let v: Vec<Value> = (1..=100).map(Value::Int).collect();
        let Value::Float(p50) = run(AggregateKind::P50, &v) else {
            panic!()
        };
        assert!((p50 - 50.0).abs() <= 0.5, "{p50}");
        assert_eq!(
            run(AggregateKind::CountDistinct, &ints(&[1, 1, 2])),
            Value::Int(2)
        );
        assert_eq!(
            run(AggregateKind::TopK { k: 2 }, &ints(&[3, 1, 4, 1, 5])),
            Value::List(Arc::from(ints(&[5, 4])))
        );
        assert_eq!(
            run(
                AggregateKind::TopKFrequent { k: 1 },
                &ints(&[3, 1, 4, 1, 5])
            ),
            Value::List(Arc::from(ints(&[1])))
        );
    }

    #[test]
    fn merge_of_two_halves_equals_one_pass_for_every_kind() {
        let kinds = [
            AggregateKind::Count,
            AggregateKind::CountDistinct,
            AggregateKind::Sum,
            AggregateKind::Min,
            AggregateKind::Max,
            AggregateKind::Avg,
            AggregateKind::Stddev,
            AggregateKind::P99,
            AggregateKind::LatestByOffset,
            AggregateKind::EarliestByOffset,
            AggregateKind::TopK { k: 3 },
            AggregateKind::TopKFrequent { k: 2 },
        ];
        let values = ints(&[5, 3, 8, 3, 1, 9, 3, 2, 7, 5]);
        for kind in kinds {
            let mut left = Accumulator::new(&kind);
            let mut right = Accumulator::new(&kind);
            let mut one = Accumulator::new(&kind);
            for (seq, v) in values.iter().enumerate() {
                let target = if seq % 3 == 0 { &mut left } else { &mut right };
                target.update(Some(v), seq as u64);
                one.update(Some(v), seq as u64);
            }
            left.merge(&right).unwrap();
            assert_eq!(left.result(), one.result(), "{kind:?}");
        }
    }

    #[test]
    fn merging_different_kinds_is_an_error() {
        let mut a = Accumulator::new(&AggregateKind::Count);
        let err = a.merge(&Accumulator::new(&AggregateKind::Sum)).unwrap_err();
        assert!(err.to_string().contains("SUM"), "{err}");
    }

    #[test]
    fn specs_validate_their_parameters() {
        assert!(
            AggregateSpec::new(AggregateKind::Percentile { q: 1.5 }, 0, "p")
                .validate()
                .is_err()
        );
        assert!(
            AggregateSpec::new(AggregateKind::TopK { k: 0 }, 0, "t")
                .validate()
                .is_err()
        );
        assert!(
            AggregateSpec {
                kind: AggregateKind::Sum,
                input: None,
                name: "s".into()
            }
            .validate()
            .is_err()
        );
        assert!(AggregateSpec::count_star("n").validate().is_ok());
    }
}
