//! The system event of the Kafka monitoring specification.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{IngestContext, event_id, metadata};
use crate::validation::{self, limits};
use crate::{Event, Severity, ValidationError, fingerprint};

/// A system event as a producer sends it (`schemas/system_event.schema.json`).
///
/// Required: `service_name`, `event_type`. Everything else has a default: a UUIDv7 id, the
/// arrival time, environment `UNSPECIFIED`, severity implied by the event type.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SystemEventInput {
    /// Producer-assigned id; idempotency key.
    pub event_id: Option<String>,
    /// The service the event is about.
    pub service_name: Option<String>,
    /// `ERROR`, `WARNING`, `INFO`, `DEPLOYMENT`, … (case-insensitive).
    pub event_type: Option<String>,
    /// Epoch milliseconds or RFC 3339.
    pub timestamp: Option<serde_json::Value>,
    /// `PRODUCTION`, `STAGING`, `DEVELOPMENT`, … (case-insensitive).
    pub environment: Option<String>,
    /// Free text.
    pub details: Option<String>,
    /// `critical|high|medium|low|info` or a common synonym.
    pub severity: Option<String>,
    /// A JSON object, or a string holding one.
    pub metadata: Option<serde_json::Value>,
    /// Producer name.
    pub source: Option<String>,
    /// Host the event is about.
    pub host: Option<String>,
    /// String labels.
    pub tags: Option<BTreeMap<String, String>>,
}

impl SystemEventInput {
    /// Validates every field and builds the normalized event.
    pub fn normalize(self, ctx: &IngestContext) -> Result<Event, ValidationError> {
        let service_name =
            validation::required_name("service_name", self.service_name.as_deref(), limits::NAME)?;
        let event_type = validation::required_label("event_type", self.event_type.as_deref())?;
        let timestamp = validation::timestamp_or_arrival(
            "timestamp",
            self.timestamp.as_ref(),
            ctx.received_at,
        )?;
        let environment = match self.environment.as_deref() {
            None => "UNSPECIFIED".to_owned(),
            Some(e) => validation::label("environment", e)?,
        };
        let details =
            validation::text("details", self.details.unwrap_or_default(), limits::DETAILS)?;
        let severity =
            Severity::parse_or_implied("severity", self.severity.as_deref(), &event_type)?;
        let source = validation::optional_name("source", self.source.as_deref(), limits::NAME)?
            .unwrap_or_else(|| ctx.source_type.as_str().to_owned());
        let host = validation::optional_name("host", self.host.as_deref(), limits::NAME)?;
        let fingerprint = fingerprint::of(&service_name, &event_type, &details);
        Ok(Event {
            event_id: event_id(self.event_id)?,
            metadata: metadata(self.metadata)?,
            tags: validation::tags("tags", self.tags.unwrap_or_default())?,
            service_name,
            event_type,
            timestamp,
            environment,
            details,
            severity,
            source,
            source_type: ctx.source_type,
            host,
            fingerprint,
            correlation_id: ctx.correlation_id.clone(),
            received_at: ctx.received_at,
        })
    }
}
