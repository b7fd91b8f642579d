//! The one error every decoder returns, and the field checks they share.

use std::fmt;

/// Why an input was refused: the offending field (a JSON path such as `metadata` or
/// `tags.region`; `$` for the document itself) and a human reason.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, thiserror::Error)]
pub struct ValidationError {
    /// Path of the offending field.
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ValidationError {
    /// A refusal of `field` for `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn missing(field: &str) -> Self {
        Self::new(field, "is required")
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// Length and character limits, defined once so schemas, docs and code agree.
pub mod limits {
    /// Longest `event_id`.
    pub const EVENT_ID: usize = 128;
    /// Longest service name, host, source and metric type.
    pub const NAME: usize = 128;
    /// Longest event type or environment.
    pub const LABEL: usize = 64;
    /// Longest `details` / `message` text, in bytes.
    pub const DETAILS: usize = 64 * 1024;
    /// Largest `metadata`, serialized, in bytes.
    pub const METADATA: usize = 64 * 1024;
    /// Most tags on one event or metric.
    pub const TAGS: usize = 64;
    /// Longest tag value.
    pub const TAG_VALUE: usize = 1024;
    /// Earliest accepted timestamp (2000-01-01T00:00:00Z): anything earlier is almost
    /// certainly seconds sent where milliseconds were expected.
    pub const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;
    /// How far in the future a timestamp may lie, relative to its arrival.
    pub const MAX_FUTURE_MS: i64 = 24 * 60 * 60 * 1000;
}

/// A non-empty name without control characters, at most `max` characters, trimmed.
pub(crate) fn name(field: &str, value: &str, max: usize) -> Result<String, ValidationError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if v.chars().count() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

/// A required name: present, and valid per [`name`].
pub(crate) fn required_name(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<String, ValidationError> {
    name(
        field,
        value.ok_or_else(|| ValidationError::missing(field))?,
        max,
    )
}

/// An optional name, valid per [`name`] when present.
pub(crate) fn optional_name(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ValidationError> {
    value.map(|v| name(field, v, max)).transpose()
}

/// A required label: present, and valid per [`label`].
pub(crate) fn required_label(field: &str, value: Option<&str>) -> Result<String, ValidationError> {
    label(field, value.ok_or_else(|| ValidationError::missing(field))?)
}

/// An upper-case label such as an event type or environment: letters, digits, `_`, `-`, `.`.
pub(crate) fn label(field: &str, value: &str) -> Result<String, ValidationError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if v.len() > limits::LABEL {
        return Err(ValidationError::new(
            field,
            format!("must be at most {} characters", limits::LABEL),
        ));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(ValidationError::new(
            field,
            "may contain only letters, digits, '_', '-' and '.'",
        ));
    }
    Ok(v.to_ascii_uppercase())
}

/// Text bounded in bytes. NUL is refused: no store can keep it in a text column
/// (PostgreSQL cannot), and it is never meaningful in event text.
pub(crate) fn text(field: &str, value: String, max: usize) -> Result<String, ValidationError> {
    if value.contains('\0') {
        return Err(ValidationError::new(
            field,
            "must not contain NUL characters",
        ));
    }
    if value.len() > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} bytes, got {}", value.len()),
        ));
    }
    Ok(value)
}

/// A timestamp given as epoch milliseconds or an RFC 3339 string, checked for plausibility
/// against the arrival time.
pub(crate) fn timestamp(
    field: &str,
    value: &serde_json::Value,
    received_at: i64,
) -> Result<i64, ValidationError> {
    use serde_json::Value;
    let ms = match value {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i,
            (None, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
            _ => {
                return Err(ValidationError::new(
                    field,
                    "must be an integer number of epoch milliseconds",
                ));
            }
        },
        Value::String(s) => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map_err(|e| ValidationError::new(field, format!("is not an RFC 3339 timestamp: {e}")))?
            .timestamp_millis(),
        other => {
            return Err(ValidationError::new(
                field,
                format!(
                    "must be epoch milliseconds or an RFC 3339 string, got {}",
                    json_kind(other)
                ),
            ));
        }
    };
    if ms < limits::MIN_TIMESTAMP_MS {
        return Err(ValidationError::new(
            field,
            format!("{ms} is before 2000-01-01; epoch milliseconds are expected, not seconds"),
        ));
    }
    if ms > received_at + limits::MAX_FUTURE_MS {
        return Err(ValidationError::new(
            field,
            "is more than 24 hours in the future",
        ));
    }
    Ok(ms)
}

/// An optional timestamp, defaulting to the arrival time when absent or null.
pub(crate) fn timestamp_or_arrival(
    field: &str,
    value: Option<&serde_json::Value>,
    received_at: i64,
) -> Result<i64, ValidationError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(received_at),
        Some(v) => timestamp(field, v, received_at),
    }
}

/// Tags: at most [`limits::TAGS`] string pairs.
pub(crate) fn tags(
    field: &str,
    tags: std::collections::BTreeMap<String, String>,
) -> Result<std::collections::BTreeMap<String, String>, ValidationError> {
    if tags.len() > limits::TAGS {
        return Err(ValidationError::new(
            field,
            format!(
                "at most {} tags are allowed, got {}",
                limits::TAGS,
                tags.len()
            ),
        ));
    }
    for (k, v) in &tags {
        name(&format!("{field}.{k}"), k, limits::NAME)
            .map_err(|e| ValidationError::new(e.field, format!("tag key {}", e.reason)))?;
        if v.contains('\0') {
            return Err(ValidationError::new(
                format!("{field}.{k}"),
                "must not contain NUL characters",
            ));
        }
        if v.len() > limits::TAG_VALUE {
            return Err(ValidationError::new(
                format!("{field}.{k}"),
                format!("must be at most {} bytes", limits::TAG_VALUE),
            ));
        }
    }
    Ok(tags)
}

/// The JSON type of a value, as a word for error messages.
pub(crate) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
