//! Stream schemas and the record decoder: what a `CREATE STREAM` declares, and how one
//! JSON record value becomes a row of typed [`Value`]s in one pass over its bytes.
//!
//! Decoding is the hot path of every continuous query, so it streams through the JSON
//! object with `serde` (no intermediate `serde_json::Value` for scalar fields), matches
//! field names to columns without allocating (exact name first, then ASCII
//! case-insensitively, as ksqlDB does), skips fields no column wants, and checks each
//! value against its column type. A record that is not a JSON object, or has a field of the
//! wrong type, is an error for the caller to dead-letter — never a panic.

use std::fmt;
use std::sync::Arc;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::Value;

/// A column type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SqlType {
    /// `BOOLEAN`.
    Boolean,
    /// `INT`, `INTEGER`, `BIGINT`: 64-bit integers.
    BigInt,
    /// `DOUBLE`, `DECIMAL`: 64-bit floats.
    Double,
    /// `VARCHAR`, `STRING`.
    String,
    /// `MAP<…>`, `STRUCT<…>`, `ARRAY<…>`, `JSON`: a JSON document kept as text.
    Json,
    /// A list (the result of `TOPK`).
    Array,
    /// Not known until run time (a `NULL` literal, a JSON path result).
    Unknown,
}

impl SqlType {
    /// Whether the type is numeric (or may be).
    pub fn is_numeric(self) -> bool {
        matches!(self, SqlType::BigInt | SqlType::Double | SqlType::Unknown)
    }

    /// The SQL name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            SqlType::Boolean => "BOOLEAN",
            SqlType::BigInt => "BIGINT",
            SqlType::Double => "DOUBLE",
            SqlType::String => "VARCHAR",
            SqlType::Json => "JSON",
            SqlType::Array => "ARRAY",
            SqlType::Unknown => "UNKNOWN",
        }
    }

    /// The type a type name denotes (`MAP` and the like are recognised by the caller).
    pub fn from_name(name: &str) -> Option<SqlType> {
        Some(match name.to_ascii_uppercase().as_str() {
            "VARCHAR" | "STRING" | "TEXT" => SqlType::String,
            "INT" | "INTEGER" | "BIGINT" | "SMALLINT" | "TINYINT" | "TIMESTAMP" => SqlType::BigInt,
            "DOUBLE" | "DECIMAL" | "FLOAT" | "REAL" | "NUMERIC" => SqlType::Double,
            "BOOLEAN" | "BOOL" => SqlType::Boolean,
            "MAP" | "STRUCT" | "ARRAY" | "JSON" => SqlType::Json,
            _ => return None,
        })
    }

    /// The type of a value (for literals).
    pub fn of(value: &Value) -> SqlType {
        match value {
            Value::Null => SqlType::Unknown,
            Value::Bool(_) => SqlType::Boolean,
            Value::Int(_) => SqlType::BigInt,
            Value::Float(_) => SqlType::Double,
            Value::String(_) => SqlType::String,
            Value::List(_) => SqlType::Array,
            Value::Json(_) => SqlType::Json,
        }
    }

    /// Whether values of the two types can be compared.
    pub fn comparable(self, other: SqlType) -> bool {
        self == SqlType::Unknown
            || other == SqlType::Unknown
            || self == other
            || (self.is_numeric() && other.is_numeric())
    }
}

impl fmt::Display for SqlType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One declared column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnDef {
    /// Name as declared (resolved case-insensitively).
    pub name: String,
    /// Type.
    pub ty: SqlType,
}

/// A stream: a topic of JSON records with a declared schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamDef {
    /// Name as declared.
    pub name: String,
    /// Columns, in declaration order (the decoded row's layout).
    pub columns: Vec<ColumnDef>,
    /// The topic its records are read from.
    pub topic: String,
    /// The column holding the event time (epoch ms); `None` uses the record timestamp.
    pub timestamp_column: Option<usize>,
}

impl StreamDef {
    /// The index of a column, matched case-insensitively.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .or_else(|| {
                self.columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
            })
    }

    /// Decodes one JSON record value into `row` (one value per column, `NULL` when
    /// absent). Errors name the problem; the record should be dead-lettered.
    pub fn decode_into(&self, bytes: &[u8], row: &mut Vec<Value>) -> Result<(), String> {
        row.clear();
        row.resize(self.columns.len(), Value::Null);
        let mut de = serde_json::Deserializer::from_slice(bytes);
        RowSeed { def: self, row }
            .deserialize(&mut de)
            .map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())
    }

    /// The event time of a decoded row: the timestamp column, or `record_timestamp_ms`.
    pub fn event_time(&self, row: &[Value], record_timestamp_ms: i64) -> Result<i64, String> {
        let Some(i) = self.timestamp_column else {
            return Ok(record_timestamp_ms);
        };
        match row.get(i) {
            Some(Value::Int(t)) => Ok(*t),
            Some(Value::Float(t)) if t.is_finite() => Ok(*t as i64),
            _ => Err(format!(
                "timestamp column '{}' is missing or null",
                self.columns.get(i).map_or("?", |c| c.name.as_str())
            )),
        }
    }
}

struct RowSeed<'a> {
    def: &'a StreamDef,
    row: &'a mut Vec<Value>,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(slot) = map.next_key_seed(KeySeed(self.def))? {
            match slot {
                Some(i) => {
                    let col = &self.def.columns[i];
                    self.row[i] = map.next_value_seed(ValueSeed {
                        ty: col.ty,
                        column: &col.name,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads a field name and returns the column it fills, without allocating.
struct KeySeed<'a>(&'a StreamDef);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.column_index(v))
    }
}

/// Reads one field value as its column's type.
struct ValueSeed<'a> {
    ty: SqlType,
    column: &'a str,
}

impl ValueSeed<'_> {
    fn mismatch<E: serde::de::Error>(&self, got: &str) -> E {
        E::custom(format_args!(
            "column '{}' is {}, the record has {got}",
            self.column, self.ty
        ))
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.ty == SqlType::Json || self.ty == SqlType::Unknown {
            let v = serde_json::Value::deserialize(d)?;
            return Ok(match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Object(_) | serde_json::Value::Array(_) => {
                    Value::Json(Arc::from(v.to_string()))
                }
                other => Value::from_json(&other),
            });
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} value", self.ty)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        match self.ty {
            SqlType::Boolean => Ok(Value::Bool(v)),
            SqlType::String => Ok(Value::string(if v { "true" } else { "false" })),
            _ => Err(self.mismatch("a boolean")),
        }
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        match self.ty {
            SqlType::BigInt => Ok(Value::Int(v)),
            SqlType::Double => Ok(Value::Float(v as f64)),
            SqlType::String => Ok(Value::string(v.to_string())),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        match (self.ty, i64::try_from(v)) {
            (SqlType::BigInt, Ok(i)) => Ok(Value::Int(i)),
            (SqlType::BigInt, Err(_)) => Err(self.mismatch("a number beyond BIGINT")),
            (SqlType::Double, _) => Ok(Value::Float(v as f64)),
            (SqlType::String, _) => Ok(Value::string(v.to_string())),
            _ => Err(self.mismatch("a number")),
        }
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        match self.ty {
            SqlType::Double => Ok(Value::Float(v)),
            // 12.0 is an integer; 12.5 is not.
            SqlType::BigInt if v.fract() == 0.0 && v.abs() < 9.0e18 => Ok(Value::Int(v as i64)),
            SqlType::String => Ok(Value::string(v.to_string())),
            _ => Err(self.mismatch("a fractional number")),
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        match self.ty {
            SqlType::String => Ok(Value::string(v)),
            _ => Err(self.mismatch("a string")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<Value, A::Error> {
        Err(self.mismatch("an object"))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _seq: A) -> Result<Value, A::Error> {
        Err(self.mismatch("an array"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> StreamDef {
        StreamDef {
            name: "s".into(),
            columns: vec![
                ColumnDef {
                    name: "id".into(),
                    ty: SqlType::String,
                },
                ColumnDef {
                    name: "n".into(),
                    ty: SqlType::BigInt,
                },
                ColumnDef {
                    name: "x".into(),
                    ty: SqlType::Double,
                },
                ColumnDef {
                    name: "metadata".into(),
                    ty: SqlType::Json,
                },
                ColumnDef {
                    name: "ts".into(),
                    ty: SqlType::BigInt,
                },
            ],
            topic: "t".into(),
            timestamp_column: Some(4),
        }
    }

    #[test]
    fn decodes_typed_fields_and_skips_the_rest() {
        let mut row = Vec::new();
        def()
            .decode_into(
                br#"{"ID":"a","n":3,"x":2,"other":{"deep":[1,2]},"metadata":{"k":{"v":1}},"ts":17}"#,
                &mut row,
            )
            .unwrap();
        assert_eq!(
            row,
            vec![
                Value::string("a"),
                Value::Int(3),
                Value::Float(2.0),
                Value::Json(Arc::from(r#"{"k":{"v":1}}"#)),
                Value::Int(17)
            ]
        );
        assert_eq!(def().event_time(&row, 0), Ok(17));
    }

    #[test]
    fn bad_records_are_errors_not_panics() {
        let mut row = Vec::new();
        let d = def();
        for bad in [
            &b"not json"[..],
            b"[1,2]",
            br#"{"n":"three"}"#,
            br#"{"n":1.5}"#,
            br#"{"id":"a"} trailing"#,
            b"",
            br#"{"x": {"a":1}}"#,
        ] {
            assert!(d.decode_into(bad, &mut row).is_err(), "{bad:?}");
        }
        d.decode_into(br#"{"id":null}"#, &mut row).unwrap();
        assert!(d.event_time(&row, 5).is_err());
        let err = d.decode_into(br#"{"n":"three"}"#, &mut row).unwrap_err();
        assert!(err.contains("column 'n' is BIGINT"), "{err}");
    }
}
