//! The `emit` executor: publishes an event into `system-events` through the event log, as
//! if a producer had sent it (validated by the same decoder), so rules and the dashboard
//! see what a playbook did.

use std::sync::Arc;

use sightline_log::{EventLog, Record};
use sightline_model::{IngestContext, SourceType, decode, topics};

use super::StepFailure;

/// Decodes the rendered event document and appends it; returns the new event's id.
pub async fn publish(
    log: Option<&Arc<dyn EventLog>>,
    event: &serde_json::Value,
    now_ms: i64,
    correlation_id: &str,
) -> Result<String, StepFailure> {
    let Some(log) = log else {
        return Err(StepFailure::refused("no event log to emit into"));
    };
    let bytes = serde_json::to_vec(event).unwrap_or_default();
    let ctx = IngestContext::new(SourceType::Http, now_ms, correlation_id);
    let event = decode::system_event(&bytes, &ctx)
        .map_err(|e| StepFailure::refused(format!("emitted event: {e}")))?;
    let value = serde_json::to_vec(&event).unwrap_or_default();
    log.append(
        topics::SYSTEM_EVENTS,
        vec![Record::new(
            Some(&event.service_name),
            value,
            event.timestamp,
        )],
    )
    .await
    .map_err(|e| StepFailure::failed(format!("appending to the log: {e}"), String::new()))?;
    Ok(format!("emitted event {}", event.event_id))
}
