//! The schema files shipped in `schemas/`, embedded so the binary can serve and print them.

/// Avro schema of the normalized system event on the `system-events` topic.
pub const SYSTEM_EVENT_AVRO: &str = include_str!("../../../schemas/system_event.avsc");
/// JSON Schema of the system event input.
pub const SYSTEM_EVENT_JSON: &str = include_str!("../../../schemas/system_event.schema.json");
/// JSON Schema of the generic webhook input.
pub const WEBHOOK_EVENT_JSON: &str = include_str!("../../../schemas/webhook_event.schema.json");
/// JSON Schema of the metric input.
pub const METRIC_JSON: &str = include_str!("../../../schemas/metric.schema.json");
