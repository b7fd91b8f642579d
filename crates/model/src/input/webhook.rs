//! The generic webhook shape.

use serde::Deserialize;

use super::{IngestContext, metadata};
use crate::validation::{self, limits};
use crate::{Event, Severity, SourceType, ValidationError, fingerprint};

/// A generic webhook event (`schemas/webhook_event.schema.json`):
/// `{source, event_type, severity, host, service, message, timestamp, metadata{}}`.
///
/// Required: `source`, `event_type`, `service`, `message`. The environment, when the sender
/// knows it, travels in `metadata.environment`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// The sending system.
    pub source: Option<String>,
    /// Event type (case-insensitive).
    pub event_type: Option<String>,
    /// Severity or a common synonym; implied by the event type when absent.
    pub severity: Option<String>,
    /// Host the event is about.
    pub host: Option<String>,
    /// Service the event is about.
    pub service: Option<String>,
    /// Free text.
    pub message: Option<String>,
    /// RFC 3339 (epoch milliseconds also accepted); arrival time when absent.
    pub timestamp: Option<serde_json::Value>,
    /// Structured context.
    pub metadata: Option<serde_json::Value>,
}

impl WebhookInput {
    /// Validates every field and maps the webhook onto the normalized event.
    pub fn normalize(self, ctx: &IngestContext) -> Result<Event, ValidationError> {
        let source = validation::required_name("source", self.source.as_deref(), limits::NAME)?;
        let service_name =
            validation::required_name("service", self.service.as_deref(), limits::NAME)?;
        let event_type = validation::required_label("event_type", self.event_type.as_deref())?;
        let details = validation::text(
            "message",
            self.message
                .ok_or_else(|| ValidationError::missing("message"))?,
            limits::DETAILS,
        )?;
        let severity =
            Severity::parse_or_implied("severity", self.severity.as_deref(), &event_type)?;
        let timestamp = validation::timestamp_or_arrival(
            "timestamp",
            self.timestamp.as_ref(),
            ctx.received_at,
        )?;
        let host = validation::optional_name("host", self.host.as_deref(), limits::NAME)?;
        let metadata = metadata(self.metadata)?;
        let environment = match metadata.get("environment") {
            Some(serde_json::Value::String(e)) => validation::label("metadata.environment", e)?,
            _ => "UNSPECIFIED".to_owned(),
        };
        let fingerprint = fingerprint::of(&service_name, &event_type, &details);
        Ok(Event {
            event_id: uuid::Uuid::now_v7().to_string(),
            service_name,
            event_type,
            timestamp,
            environment,
            details,
            severity,
            metadata,
            source,
            source_type: SourceType::Webhook,
            host,
            tags: Default::default(),
            fingerprint,
            correlation_id: ctx.correlation_id.clone(),
            received_at: ctx.received_at,
        })
    }
}
