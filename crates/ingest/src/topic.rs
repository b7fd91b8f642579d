//! Generic topic ingestion, a small Kafka REST proxy: any JSON records appended to any user
//! topic with the same durable-ack contract as events, so users can feed their own streams
//! (`ecommerce.events`, …) to continuous SQL without writing a producer.
//!
//! A body is a JSON array or NDJSON of records. A record is either an **envelope** — an
//! object with a `value` and nothing but `key`, `value`, `timestamp` (epoch ms) and
//! `headers` (strings) — or a **bare value**: any other JSON object, appended as is. A bare
//! value can take its key from one of its fields (`key_field`). The key picks the partition
//! (the same murmur2 partitioner as everywhere), so one key's records stay in order.
//!
//! Built-in topics are refused (their records must pass their own validation: use the
//! event and metric endpoints). A topic that does not exist yet is created with
//! [`TopicIngestConfig`]'s defaults.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sightline_log::{Offset, Record, TopicConfig};
use sightline_model::decode::BodyShape;
use sightline_model::{ValidationError, topics};

use crate::batch::{BatchReport, IngestError, Ingestor, ItemOutcome, split};

/// The `source` label of topic records in the ingestion metrics.
const SOURCE: &str = "topic";

/// How topics written through the topic endpoint are created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicIngestConfig {
    /// Create a missing topic on first write (otherwise: 404).
    pub auto_create: bool,
    /// Partitions of an auto-created topic.
    pub partitions: u32,
    /// Retention of an auto-created topic, milliseconds.
    pub retention_ms: i64,
}

impl Default for TopicIngestConfig {
    fn default() -> Self {
        Self {
            auto_create: true,
            partitions: 4,
            retention_ms: 7 * 24 * 60 * 60 * 1000,
        }
    }
}

/// What a topic write did: the per-record report and where each accepted record landed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopicReport {
    /// Per-record outcomes.
    #[serde(flatten)]
    pub report: BatchReport,
    /// Topic written.
    pub topic: String,
    /// Partition and offset of each accepted record, in request order.
    pub offsets: Vec<Offset>,
}

/// Checks a user topic name: 1–249 of `[A-Za-z0-9._-]`, not starting with `.` or `_`, not
/// a built-in topic.
pub fn check_topic_name(topic: &str) -> Result<(), ValidationError> {
    let valid = !topic.is_empty()
        && topic.len() <= 249
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !topic.starts_with(['.', '_']);
    if !valid {
        return Err(ValidationError::new(
            "topic",
            format!(
                "'{topic}' is not a valid topic name: 1 to 249 letters, digits, '.', '_' or '-', \
                 not starting with '.' or '_'"
            ),
        ));
    }
    if topics::BUILTIN.iter().any(|t| t.name == topic) {
        return Err(ValidationError::new(
            "topic",
            format!(
                "'{topic}' is a built-in topic: send events and metrics to their own endpoints"
            ),
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Envelope {
    #[serde(default)]
    key: Option<serde_json::Value>,
    value: Box<serde_json::value::RawValue>,
    #[serde(default)]
    timestamp: Option<i64>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

const ENVELOPE_FIELDS: [&str; 4] = ["key", "value", "timestamp", "headers"];

impl Ingestor {
    /// How user topics are created.
    pub fn topic_config(&self) -> &TopicIngestConfig {
        &self.config.topics
    }

    /// Appends the records of `body` to the user topic `topic`. Valid records are appended
    /// even when others are refused, unless `atomic`. See the module docs.
    pub async fn ingest_topic(
        &self,
        topic: &str,
        body: Bytes,
        shape: BodyShape,
        key_field: Option<&str>,
        correlation_id: &str,
        atomic: bool,
    ) -> Result<TopicReport, IngestError> {
        check_topic_name(topic).map_err(IngestError::Malformed)?;
        let _permit = self.admit(SOURCE, body.len())?;
        let now = self.clock.now_ms();
        let parts = split(&body, shape, self.config.max_batch_items)?;
        let mut results = Vec::with_capacity(parts.len());
        let mut records = Vec::with_capacity(parts.len());
        for (index, bytes) in parts.into_iter().enumerate() {
            match topic_record(bytes, key_field, now) {
                Ok(record) => {
                    records.push(record);
                    results.push(ItemOutcome::Accepted {
                        index,
                        event_id: None,
                    });
                }
                Err(error) => results.push(ItemOutcome::Rejected { index, error }),
            }
        }
        if !records.is_empty() {
            self.ensure_topic(topic).await?;
        }
        let (report, offsets) = self
            .append_to(
                topic,
                SOURCE,
                correlation_id.to_owned(),
                results,
                records,
                atomic,
            )
            .await?;
        Ok(TopicReport {
            report,
            topic: topic.to_owned(),
            offsets,
        })
    }

    async fn ensure_topic(&self, topic: &str) -> Result<(), IngestError> {
        let config = &self.config.topics;
        let exists = self.log.stats().await?.iter().any(|t| t.name == topic);
        if exists {
            return Ok(());
        }
        if !config.auto_create {
            return Err(IngestError::UnknownTopic(topic.to_owned()));
        }
        let topic_config = TopicConfig {
            partitions: config.partitions.max(1),
            retention_ms: Some(config.retention_ms),
            retention_bytes: None,
        };
        self.log.create_topic(topic, topic_config).await?;
        Ok(())
    }
}

/// One record of a topic body: an envelope or a bare value (see the module docs).
fn topic_record(
    bytes: &[u8],
    key_field: Option<&str>,
    now: i64,
) -> Result<Record, ValidationError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ValidationError::new("$", format!("malformed JSON: {e}")))?;
    let serde_json::Value::Object(obj) = &value else {
        return Err(ValidationError::new("$", "a record must be a JSON object"));
    };
    let is_envelope =
        obj.contains_key("value") && obj.keys().all(|k| ENVELOPE_FIELDS.contains(&k.as_str()));
    if is_envelope {
        let envelope: Envelope = sightline_model::decode::parse(bytes)?;
        let key = envelope
            .key
            .as_ref()
            .map(|k| key_text("key", k))
            .transpose()?;
        let timestamp = envelope.timestamp.unwrap_or(now);
        let mut record = Record::new(
            key.as_deref(),
            envelope.value.get().as_bytes().to_vec(),
            timestamp,
        );
        for (name, value) in envelope.headers {
            record = record.with_header(&name, value.into_bytes());
        }
        return Ok(record);
    }
    let key = match key_field {
        Some(field) => match obj.get(field) {
            Some(k) => Some(key_text(field, k)?),
            None => {
                return Err(ValidationError::new(
                    field,
                    "missing: the request keys records by this field",
                ));
            }
        },
        None => None,
    };
    Ok(Record::new(key.as_deref(), bytes.to_vec(), now))
}

/// A key as text: strings as they are, numbers and booleans in JSON form.
fn key_text(field: &str, key: &serde_json::Value) -> Result<String, ValidationError> {
    match key {
        serde_json::Value::String(s) => Ok(s.clone()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        serde_json::Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ValidationError::new(
            field,
            "a key must be a string, a number or a boolean",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_and_bare_values() {
        let r = topic_record(br#"{"key":"s1","value":{"a":1},"timestamp":5}"#, None, 9).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"s1"[..]));
        assert_eq!(r.value, br#"{"a":1}"#);
        assert_eq!(r.timestamp, 5);

        // A field besides the envelope's makes it a bare value.
        let r = topic_record(br#"{"key":"s1","value":2,"other":3}"#, None, 9).unwrap();
        assert_eq!(r.key, None);
        assert_eq!(r.timestamp, 9);

        let r = topic_record(br#"{"session_id":42,"x":1}"#, Some("session_id"), 9).unwrap();
        assert_eq!(r.key.as_deref(), Some(&b"42"[..]));
    }

    #[test]
    fn refusals_name_the_field() {
        assert_eq!(topic_record(b"[1]", None, 0).unwrap_err().field, "$");
        assert_eq!(
            topic_record(br#"{"a":1}"#, Some("id"), 0)
                .unwrap_err()
                .field,
            "id"
        );
        let err = topic_record(br#"{"key":{"x":1},"value":1}"#, None, 0).unwrap_err();
        assert_eq!(err.field, "key");
        let err = topic_record(br#"{"value":1,"timestamp":"soon"}"#, None, 0).unwrap_err();
        assert_eq!(err.field, "timestamp");
        assert!(check_topic_name("metrics.raw").is_err());
        assert!(check_topic_name("../x").is_err());
        assert!(check_topic_name("ecommerce.events").is_ok());
    }
}
