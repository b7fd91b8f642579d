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
        let source = validation::name(
            "source",
            self.source
                .as_deref()
                .ok_or_else(|| ValidationError::missing("source"))?,
            limits::NAME,
        )?;
        let service_name = validation::name(
            "service",
            self.service
                .as_deref()
                .ok_or_else(|| ValidationError::missing("service"))?,
            limits::NAME,
        )?;
        let event_type = validation::label(
            "event_type",
            self.event_type
                .as_deref()
                .ok_or_else(|| ValidationError::missing("event_type"))?,
        )?;
        let details = validation::text(
            "message",
            self.message
                .ok_or_else(|| ValidationError::missing("message"))?,
            limits::DETAILS,
        )?;
        let severity = match self.severity.as_deref() {
            None => Severity::for_event_type(&event_type),
            Some(s) => Severity::parse("severity", s)?,
        };
        let timestamp = match &self.timestamp {
            None | Some(serde_json::Value::Null) => ctx.received_at,
            Some(v) => validation::timestamp("timestamp", v, ctx.received_at)?,
        };
        let host = self
            .host
            .as_deref()
            .map(|h| validation::name("host", h, limits::NAME))
            .transpose()?;
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
