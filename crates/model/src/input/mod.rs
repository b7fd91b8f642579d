//! The shapes producers send, before normalization.
//!
//! Each input type mirrors one JSON Schema in `schemas/` (a test keeps them in step) and
//! refuses unknown fields, so a misspelt `sevrity` is an error rather than silently lost.
//! Fields are optional at the serde level so that a missing field is reported by name by
//! the normalizer, never as a generic parse failure.

mod metric;
mod system_event;
mod webhook;

pub use metric::MetricInput;
pub use system_event::SystemEventInput;
pub use webhook::WebhookInput;

use crate::{SourceType, ValidationError, validation};

/// What the edge knows about a request when it normalizes the items in it.
#[derive(Clone, Debug)]
pub struct IngestContext {
    /// Which ingestion path the items came through.
    pub source_type: SourceType,
    /// Arrival time, epoch milliseconds.
    pub received_at: i64,
    /// The request's correlation id (from `X-Request-Id`, or generated).
    pub correlation_id: String,
}

impl IngestContext {
    /// A context for items arriving now through `source_type`.
    pub fn new(
        source_type: SourceType,
        received_at: i64,
        correlation_id: impl Into<String>,
    ) -> Self {
        Self {
            source_type,
            received_at,
            correlation_id: correlation_id.into(),
        }
    }
}

/// The event id given by the producer, or a fresh UUIDv7 (time-ordered, so ids sort by arrival).
fn event_id(given: Option<String>) -> Result<String, ValidationError> {
    match given {
        None => Ok(uuid::Uuid::now_v7().to_string()),
        Some(id) => {
            let id = id.trim();
            if id.is_empty() {
                return Err(ValidationError::new(
                    "event_id",
                    "must not be empty when present",
                ));
            }
            if id.len() > validation::limits::EVENT_ID {
                return Err(ValidationError::new(
                    "event_id",
                    format!("must be at most {} bytes", validation::limits::EVENT_ID),
                ));
            }
            if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(ValidationError::new(
                    "event_id",
                    "must not contain whitespace or control characters",
                ));
            }
            Ok(id.to_owned())
        }
    }
}

/// `metadata` as a JSON object: given as an object, as a string holding a JSON object (the
/// Kafka spec allows both), or absent.
fn metadata(
    value: Option<serde_json::Value>,
) -> Result<serde_json::Map<String, serde_json::Value>, ValidationError> {
    use serde_json::Value;
    let map = match value {
        None | Some(Value::Null) => return Ok(serde_json::Map::new()),
        Some(Value::Object(map)) => map,
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(serde_json::Map::new()),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(ValidationError::new(
                    "metadata",
                    format!(
                        "a string must hold a JSON object, this one holds {}",
                        validation::json_kind(&other)
                    ),
                ));
            }
            Err(e) => {
                return Err(ValidationError::new(
                    "metadata",
                    format!("string is not valid JSON: {e}"),
                ));
            }
        },
        Some(other) => {
            return Err(ValidationError::new(
                "metadata",
                format!(
                    "must be an object or a JSON string, got {}",
                    validation::json_kind(&other)
                ),
            ));
        }
    };
    // Serializing to measure is only needed when a cheap upper bound says it could be over.
    if serialized_len_bound(&map) > validation::limits::METADATA {
        let size = serde_json::to_vec(&map).map_or(usize::MAX, |v| v.len());
        if size > validation::limits::METADATA {
            return Err(ValidationError::new(
                "metadata",
                format!(
                    "must be at most {} bytes serialized",
                    validation::limits::METADATA
                ),
            ));
        }
    }
    Ok(map)
}

/// An upper bound of the serialized size of a JSON object, computed without allocating
/// (strings count as if every character needed a six-byte escape).
fn serialized_len_bound(map: &serde_json::Map<String, serde_json::Value>) -> usize {
    fn value(v: &serde_json::Value) -> usize {
        use serde_json::Value;
        match v {
            Value::Null | Value::Bool(_) => 5,
            Value::Number(_) => 32,
            Value::String(s) => 2 + 6 * s.len(),
            Value::Array(a) => 2 + a.iter().map(|x| value(x) + 1).sum::<usize>(),
            Value::Object(m) => object(m),
        }
    }
    fn object(m: &serde_json::Map<String, serde_json::Value>) -> usize {
        2 + m
            .iter()
            .map(|(k, v)| 4 + 6 * k.len() + value(v))
            .sum::<usize>()
    }
    object(map)
}
