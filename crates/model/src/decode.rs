//! Bytes → validated values, for single documents and for batches.
//!
//! A batch body is either a JSON array or NDJSON (one document a line). The body is split
//! into items first, so one malformed item is reported by index without losing the others;
//! only a body whose array syntax is itself broken is refused whole.

use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use crate::{
    Event, IngestContext, Metric, MetricInput, SystemEventInput, ValidationError, WebhookInput,
};

/// Decodes and normalizes one system event.
pub fn system_event(bytes: &[u8], ctx: &IngestContext) -> Result<Event, ValidationError> {
    parse::<SystemEventInput>(bytes)?.normalize(ctx)
}

/// Decodes and normalizes one webhook event.
pub fn webhook(bytes: &[u8], ctx: &IngestContext) -> Result<Event, ValidationError> {
    parse::<WebhookInput>(bytes)?.normalize(ctx)
}

/// Decodes and normalizes one metric point.
pub fn metric(bytes: &[u8], ctx: &IngestContext) -> Result<Metric, ValidationError> {
    parse::<MetricInput>(bytes)?.normalize(ctx)
}

/// How a body holds its items.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyShape {
    /// One JSON document.
    Single,
    /// A JSON array of documents.
    Array,
    /// Newline-delimited JSON.
    Ndjson,
}

/// Guesses the shape of a body from its first significant byte and line structure: `[` is an
/// array; `{` followed by more non-blank lines is NDJSON; a lone `{…}` is a single document.
pub fn shape_of(body: &[u8]) -> BodyShape {
    let trimmed = body.trim_ascii();
    if trimmed.first() == Some(&b'[') {
        return BodyShape::Array;
    }
    let lines = trimmed
        .split(|&b| b == b'\n')
        .filter(|l| !l.trim_ascii().is_empty())
        .take(2)
        .count();
    if lines > 1 {
        BodyShape::Ndjson
    } else {
        BodyShape::Single
    }
}

/// Splits a batch body into its items' bytes.
///
/// Arrays are split by a borrowed parse (no copies); NDJSON by lines, skipping blank ones.
/// Fails only when the array itself is malformed (field `$`).
pub fn split_batch(body: &[u8], shape: BodyShape) -> Result<Vec<&[u8]>, ValidationError> {
    match shape {
        BodyShape::Single => Ok(vec![body]),
        BodyShape::Ndjson => Ok(body
            .split(|&b| b == b'\n')
            .map(<[u8]>::trim_ascii)
            .filter(|l| !l.is_empty())
            .collect()),
        BodyShape::Array => {
            let items: Vec<&RawValue> = serde_json::from_slice(body).map_err(|e| {
                ValidationError::new("$", format!("body is not a JSON array of objects: {e}"))
            })?;
            Ok(items.into_iter().map(|r| r.get().as_bytes()).collect())
        }
    }
}

/// Parses one JSON document into `T`, turning serde's errors into a [`ValidationError`] that
/// names the field.
///
/// Valid documents take the plain (fast) path; only a failing one is parsed again with path
/// tracking to name the offending field.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValidationError> {
    match serde_json::from_slice(bytes) {
        Ok(value) => Ok(value),
        Err(_) => Err(explain::<T>(bytes)),
    }
}

/// Why `bytes` do not parse as a `T`, with the path of the offending field.
fn explain<T: DeserializeOwned>(bytes: &[u8]) -> ValidationError {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return ValidationError::new("$", format!("malformed JSON: {inner}"));
            }
            let field = if path == "." { "$".to_owned() } else { path };
            ValidationError::new(field, inner.to_string())
        }
        Ok(_) => match de.end() {
            Err(e) => {
                ValidationError::new("$", format!("trailing characters after the document: {e}"))
            }
            Ok(()) => ValidationError::new("$", "the document could not be parsed"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SourceType;

    fn ctx() -> IngestContext {
        IngestContext::new(SourceType::Http, 1_700_000_000_000, "c1")
    }

    #[test]
    fn names_the_field_of_a_type_error() {
        let e = system_event(br#"{"service_name":5,"event_type":"ERROR"}"#, &ctx()).unwrap_err();
        assert_eq!(e.field, "service_name");
        assert!(e.reason.contains("expected a string"), "{}", e.reason);
    }

    #[test]
    fn names_a_misspelt_field() {
        let e = system_event(
            br#"{"service_name":"a","event_type":"ERROR","sevrity":"high"}"#,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.field, "sevrity");
        assert!(e.reason.contains("unknown field"));
    }

    #[test]
    fn names_a_nested_tag_type_error() {
        let e = system_event(
            br#"{"service_name":"a","event_type":"ERROR","tags":{"region":1}}"#,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.field, "tags.region");
    }

    #[test]
    fn malformed_json_is_reported_on_the_document() {
        let e = system_event(br#"{"service_name": "a""#, &ctx()).unwrap_err();
        assert_eq!(e.field, "$");
        assert!(e.reason.starts_with("malformed JSON"));
    }

    #[test]
    fn refuses_seconds_where_milliseconds_are_expected() {
        let e = system_event(
            br#"{"service_name":"a","event_type":"ERROR","timestamp":1700000000}"#,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.field, "timestamp");
        assert!(e.reason.contains("seconds"));
    }

    #[test]
    fn metadata_may_be_a_json_string() {
        let ev = system_event(
            br#"{"service_name":"a","event_type":"info","metadata":"{\"k\":1}"}"#,
            &ctx(),
        )
        .unwrap();
        assert_eq!(ev.metadata["k"], 1);
        assert_eq!(ev.event_type, "INFO");
        let e = system_event(
            br#"{"service_name":"a","event_type":"INFO","metadata":"[1]"}"#,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.field, "metadata");
    }

    #[test]
    fn webhook_maps_onto_the_event() {
        let ev = webhook(
            br#"{"source":"grafana","event_type":"alert","severity":"warning","host":"web-1",
                "service":"checkout","message":"p99 high","timestamp":"2023-11-14T22:13:20Z",
                "metadata":{"environment":"production"}}"#,
            &ctx(),
        )
        .unwrap();
        assert_eq!(ev.service_name, "checkout");
        assert_eq!(ev.details, "p99 high");
        assert_eq!(ev.severity, crate::Severity::Medium);
        assert_eq!(ev.environment, "PRODUCTION");
        assert_eq!(ev.timestamp, 1_700_000_000_000);
        assert_eq!(ev.source_type, SourceType::Webhook);
    }

    #[test]
    fn refuses_nul_in_text_and_tags() {
        let e = system_event(
            br#"{"service_name":"a","event_type":"INFO","details":"x\u0000y"}"#,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.field, "details");
        let e = system_event(
            br#"{"service_name":"a","event_type":"INFO","tags":{"k":"\u0000"}}"#,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.field, "tags.k");
    }

    #[test]
    fn metric_value_must_be_finite_number() {
        let e = metric(
            br#"{"service_name":"a","metric_type":"cpu","value":"high"}"#,
            &ctx(),
        )
        .unwrap_err();
        assert_eq!(e.field, "value");
        let m = metric(
            br#"{"service_name":"a","metric_type":"cpu","value":93.5}"#,
            &ctx(),
        )
        .unwrap();
        assert_eq!(m.value, 93.5);
    }

    #[test]
    fn splits_arrays_and_ndjson() {
        let a = br#"[{"a":1}, {"b":[1,2]} ]"#;
        assert_eq!(shape_of(a), BodyShape::Array);
        assert_eq!(
            split_batch(a, BodyShape::Array).unwrap(),
            vec![&br#"{"a":1}"#[..], br#"{"b":[1,2]}"#]
        );
        let n = b"{\"a\":1}\n\n{broken\n{\"c\":3}\n";
        assert_eq!(shape_of(n), BodyShape::Ndjson);
        assert_eq!(split_batch(n, BodyShape::Ndjson).unwrap().len(), 3);
        assert_eq!(shape_of(b" {\"a\":1}\n"), BodyShape::Single);
        assert_eq!(
            split_batch(b"[{\"a\":1},", BodyShape::Array)
                .unwrap_err()
                .field,
            "$"
        );
    }
}
