//! The values the engine computes with: one small [`Value`] type for record fields, group
//! keys and aggregate results, shared with the continuous-SQL layer so nothing is converted
//! between "SQL values" and "engine values".
//!
//! Equality, hashing and ordering are *structural and total* (floats by
//! [`f64::total_cmp`], `Int(1) != Float(1.0)`), because values are used as hash-map keys and
//! sort keys; [`Value::sql_cmp`] and `Ord` agree on the order of numbers across `Int` and
//! `Float`, so `MIN`/`MAX` over mixed numbers do what a user expects.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One field value, group-key part or aggregate result.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub enum Value {
    /// SQL `NULL`: absent or unknown.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A string.
    String(Arc<str>),
    /// A list (the result of `TOPK`).
    List(Arc<[Value]>),
    /// A JSON object or array kept as its compact text (e.g. a `metadata` sub-document).
    Json(Arc<str>),
}

impl Value {
    /// A string value.
    pub fn string(s: impl AsRef<str>) -> Self {
        Value::String(Arc::from(s.as_ref()))
    }

    /// Whether this is `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as a float when it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as a string slice when it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The SQL type name, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "NULL",
            Value::Bool(_) => "BOOLEAN",
            Value::Int(_) => "BIGINT",
            Value::Float(_) => "DOUBLE",
            Value::String(_) => "STRING",
            Value::List(_) => "ARRAY",
            Value::Json(_) => "JSON",
        }
    }

    /// Converts a decoded JSON value: numbers become `Int` when they are integers that fit,
    /// objects and arrays become [`Value::Json`] text.
    pub fn from_json(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => n.as_f64().map_or(Value::Null, Value::Float),
            },
            serde_json::Value::String(s) => Value::string(s),
            other => Value::Json(Arc::from(other.to_string())),
        }
    }

    /// Plain JSON for output rows (non-finite floats, which JSON cannot hold, become `null`).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::String(s) => serde_json::Value::String(s.to_string()),
            Value::List(items) => items.iter().map(Value::to_json).collect(),
            Value::Json(text) => serde_json::from_str(text)
                .unwrap_or_else(|_| serde_json::Value::String(text.to_string())),
        }
    }

    /// SQL ordering: `NULL` < booleans < numbers (`Int` and `Float` compared by value) <
    /// strings < lists < JSON. Equal numbers of different types compare `Equal` here; `Ord`
    /// breaks that tie (`Int` first) to stay consistent with structural equality.
    pub fn sql_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Int(a), Value::Float(b)) => cmp_int_float(*a, *b),
            (Value::Float(a), Value::Int(b)) => cmp_int_float(*b, *a).reverse(),
            (Value::Bool(a), Value::Bool(b)) => a.cmp(b),
            (Value::String(a), Value::String(b)) => a.cmp(b),
            (Value::List(a), Value::List(b)) => a.iter().cmp(b.iter()),
            (Value::Json(a), Value::Json(b)) => a.cmp(b),
            (a, b) => a.rank().cmp(&b.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::String(_) => 3,
            Value::List(_) => 4,
            Value::Json(_) => 5,
        }
    }

    /// Feeds a canonical, platform-independent byte encoding of the value to `out`; used
    /// by sketches that must hash identically in every process (HyperLogLog).
    pub(crate) fn canonical_bytes(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => out.push(0),
            Value::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
            Value::Int(i) => {
                out.push(2);
                out.extend_from_slice(&i.to_le_bytes());
            }
            Value::Float(f) => {
                out.push(3);
                out.extend_from_slice(&f.to_bits().to_le_bytes());
            }
            Value::String(s) => {
                out.push(4);
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Value::List(items) => {
                out.push(5);
                out.extend_from_slice(&(items.len() as u64).to_le_bytes());
                for item in items.iter() {
                    item.canonical_bytes(out);
                }
            }
            Value::Json(s) => {
                out.push(6);
                out.extend_from_slice(&(s.len() as u64).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
}

/// Compares an integer with a float exactly (no rounding of large integers).
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        // total_cmp puts positive NaN above everything and negative NaN below.
        return if f.is_sign_negative() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    // 2^63: the first float above every i64.
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_POW_63 {
        return Ordering::Less;
    }
    if f < -TWO_POW_63 {
        return Ordering::Greater;
    }
    let truncated = f.trunc() as i64;
    match i.cmp(&truncated) {
        Ordering::Equal => {
            let frac = f - f.trunc();
            if frac > 0.0 {
                Ordering::Less
            } else if frac < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            }
        }
        other => other,
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Value {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sql_cmp(other).then_with(|| match (self, other) {
            (Value::Int(_), Value::Float(_)) => Ordering::Less,
            (Value::Float(_), Value::Int(_)) => Ordering::Greater,
            _ => Ordering::Equal,
        })
    }
}

impl Hash for Value {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match self {
            Value::Null => state.write_u8(0),
            Value::Bool(b) => {
                state.write_u8(1);
                b.hash(state);
            }
            Value::Int(i) => {
                state.write_u8(2);
                i.hash(state);
            }
            Value::Float(f) => {
                state.write_u8(3);
                f.to_bits().hash(state);
            }
            Value::String(s) => {
                state.write_u8(4);
                s.hash(state);
            }
            Value::List(items) => {
                state.write_u8(5);
                items.hash(state);
            }
            Value::Json(s) => {
                state.write_u8(6);
                s.hash(state);
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) | Value::Json(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::string(v)
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::String(Arc::from(v))
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// A group key: the values of the `GROUP BY` expressions, in order. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Key(Arc<[Value]>);

impl Key {
    /// A key from its parts.
    pub fn new(parts: impl Into<Vec<Value>>) -> Self {
        Key(Arc::from(parts.into()))
    }

    /// The empty key: a global aggregate without `GROUP BY`.
    pub fn empty() -> Self {
        Key(Arc::from(Vec::new()))
    }

    /// The key's parts.
    pub fn parts(&self) -> &[Value] {
        &self.0
    }
}

impl<const N: usize> From<[Value; N]> for Key {
    fn from(parts: [Value; N]) -> Self {
        Key(Arc::from(parts.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_order_by_value_across_int_and_float() {
        assert_eq!(Value::Int(2).sql_cmp(&Value::Float(1.5)), Ordering::Greater);
        assert_eq!(Value::Int(1).sql_cmp(&Value::Float(1.0)), Ordering::Equal);
        assert_eq!(Value::Int(-3).sql_cmp(&Value::Float(-2.5)), Ordering::Less);
        assert_eq!(
            Value::Int(i64::MAX).sql_cmp(&Value::Float(1e300)),
            Ordering::Less
        );
        assert_eq!(Value::Int(1).cmp(&Value::Float(1.0)), Ordering::Less);
        assert_ne!(Value::Int(1), Value::Float(1.0));
    }

    #[test]
    fn types_order_null_first_then_bool_number_string() {
        let mut v = vec![
            Value::string("a"),
            Value::Int(0),
            Value::Bool(true),
            Value::Null,
        ];
        v.sort();
        assert_eq!(
            v,
            vec![
                Value::Null,
                Value::Bool(true),
                Value::Int(0),
                Value::string("a")
            ]
        );
    }

    #[test]
    fn json_roundtrip_keeps_integers_and_nests_objects() {
        let j: serde_json::Value = serde_json::json!({"a": 1, "b": [1, 2]});
        assert_eq!(Value::from_json(&j["a"]), Value::Int(1));
        assert_eq!(Value::from_json(&j["b"]), Value::Json(Arc::from("[1,2]")));
        assert_eq!(Value::from_json(&j["b"]).to_json(), j["b"]);
        assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::Value::Null);
    }

    #[test]
    fn nan_is_equal_to_itself_so_it_can_be_a_key() {
        let nan = Value::Float(f64::NAN);
        assert_eq!(nan, nan.clone());
        let mut set = std::collections::HashSet::new();
        set.insert(Key::from([nan.clone()]));
        assert!(set.contains(&Key::from([nan])));
    }
}
