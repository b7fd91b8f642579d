//! The normalized system event: what every source produces and every consumer reads.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// How bad an event is, from `critical` down to `info`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Service down or data at risk: wake someone up.
    Critical,
    /// Errors users notice.
    High,
    /// Degradation or warnings.
    Medium,
    /// Worth a look.
    Low,
    /// Informational.
    Info,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// Parses a severity case-insensitively, accepting the synonyms common in alerting
    /// tools (`fatal`, `error`, `warning`, `notice`, `debug`, …).
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "critical" | "crit" | "fatal" | "emergency" | "emerg" | "alert" | "p1" => {
                Severity::Critical
            }
            "high" | "error" | "err" | "major" | "p2" => Severity::High,
            "medium" | "warning" | "warn" | "minor" | "p3" => Severity::Medium,
            "low" | "notice" | "p4" => Severity::Low,
            "info" | "informational" | "debug" | "ok" | "p5" => Severity::Info,
            other => {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "unknown severity '{other}': expected one of critical, high, medium, low, info"
                    ),
                ));
            }
        })
    }

    /// The given severity, or the one implied by `event_type` when none was given.
    pub fn parse_or_implied(
        field: &str,
        given: Option<&str>,
        event_type: &str,
    ) -> Result<Self, ValidationError> {
        given.map_or(Ok(Self::for_event_type(event_type)), |s| {
            Self::parse(field, s)
        })
    }

    /// The severity implied by an event type when a producer sends none.
    pub fn for_event_type(event_type: &str) -> Self {
        match event_type {
            "CRITICAL" | "FATAL" => Severity::Critical,
            "ERROR" => Severity::High,
            "WARNING" | "WARN" => Severity::Medium,
            _ => Severity::Info,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which kind of source an event came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceType {
    /// The JSON ingestion API.
    Http,
    /// A webhook endpoint.
    Webhook,
    /// Syslog.
    Syslog,
    /// SNMP traps.
    Snmp,
    /// Email.
    Email,
    /// Metric ingestion.
    Metrics,
    /// An external Kafka topic.
    Kafka,
}

impl SourceType {
    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Http => "http",
            SourceType::Webhook => "webhook",
            SourceType::Syslog => "syslog",
            SourceType::Snmp => "snmp",
            SourceType::Email => "email",
            SourceType::Metrics => "metrics",
            SourceType::Kafka => "kafka",
        }
    }
}

/// A normalized system event, as it travels on the `system-events` topic and is stored.
///
/// The field names are those of the Kafka monitoring specification, plus the enrichment
/// sightline adds at the edge (`source_type`, `fingerprint`, `correlation_id`,
/// `received_at`). `schemas/system_event.avsc` describes the same record in Avro.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Event {
    /// Unique id: the producer's, or a UUIDv7 assigned at ingestion.
    pub event_id: String,
    /// The service the event is about.
    pub service_name: String,
    /// Upper-case type: `ERROR`, `WARNING`, `INFO`, `DEPLOYMENT`, …
    pub event_type: String,
    /// When it happened, epoch milliseconds.
    pub timestamp: i64,
    /// Upper-case environment: `PRODUCTION`, `STAGING`, `DEVELOPMENT`, …
    pub environment: String,
    /// Free text.
    pub details: String,
    /// How bad it is.
    pub severity: Severity,
    /// Structured context, always a JSON object.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Who sent it (producer name, monitoring tool, …).
    pub source: String,
    /// Which ingestion path it came through.
    pub source_type: SourceType,
    /// The host it is about, when known.
    pub host: Option<String>,
    /// Free-form string labels.
    pub tags: BTreeMap<String, String>,
    /// Stable hash of service, type and normalized text: equal for repeats of one problem.
    pub fingerprint: String,
    /// The request id it arrived with, for tracing it through the pipeline.
    pub correlation_id: String,
    /// When sightline received it, epoch milliseconds.
    pub received_at: i64,
}
