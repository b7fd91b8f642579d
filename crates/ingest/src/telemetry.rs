//! Metric names of the ingestion edge, defined once, and the per-severity event count.

use sightline_model::Severity;

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
/// Events accepted and durably appended, by `severity`. Severity is the only label: it
/// has five values, while a service name or an event type is free text from producers and
/// would let any client create series without bound.
pub(crate) const EVENTS_INGESTED: &str = "sightline_events_ingested_total";

/// Accepted events of one batch by severity, counted once the batch is appended.
#[derive(Debug, Default)]
pub(crate) struct SeverityCounts([u64; Severity::ALL.len()]);

impl SeverityCounts {
    /// One more event of `severity`.
    pub(crate) fn add(&mut self, severity: Severity) {
        if let Some(i) = Severity::ALL.iter().position(|s| *s == severity) {
            self.0[i] += 1;
        }
    }

    /// Adds the counts to [`EVENTS_INGESTED`].
    pub(crate) fn record(&self) {
        for (severity, n) in Severity::ALL.iter().zip(self.0) {
            if n > 0 {
                metrics::counter!(EVENTS_INGESTED, "severity" => severity.as_str()).increment(n);
            }
        }
    }
}
