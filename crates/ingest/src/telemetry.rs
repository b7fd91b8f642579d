//! Metric names of the ingestion edge, defined once.

/// Items received, by source (`http`, `webhook`, `metrics`).
pub(crate) const RECEIVED: &str = "sightline_ingest_received_total";
/// Items accepted and durably appended, by source.
pub(crate) const ACCEPTED: &str = "sightline_ingest_accepted_total";
/// Items refused by validation, by source.
pub(crate) const REJECTED: &str = "sightline_ingest_rejected_total";
/// Requests refused because too many appends were in flight, by source.
pub(crate) const OVERLOADED: &str = "sightline_ingest_overloaded_total";
/// Time from a decoded batch to its durable append.
pub(crate) const APPEND_SECONDS: &str = "sightline_ingest_append_seconds";
