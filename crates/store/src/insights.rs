//! The rows of `event_insights` (per-event insights, see
//! [`EventInsight`](sightline_model::EventInsight)): the SQL both backends share and the
//! encoding of a row. The trait methods sit with the analyses ones in
//! [`AnalysisStore`](crate::AnalysisStore); schema:
//! `migrations/{sqlite,postgres}/0009_event_insights.sql`.

use sightline_model::{EventInsight, Severity};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::Result;
use crate::StoreError;
use crate::common::column;

/// Which insights to list: filters, newest first (by `created_at`, then event id), at
/// most `limit` (clamped to 1..=[`MAX_ANALYSIS_ROWS`](crate::MAX_ANALYSIS_ROWS)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InsightQuery {
    /// Only insights of this service.
    pub service: Option<String>,
    /// Only insights of events with this fingerprint.
    pub fingerprint: Option<String>,
    /// Only insights created at or after this time, epoch milliseconds.
    pub since: Option<i64>,
    /// Only insights created before this time, epoch milliseconds.
    pub until: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

pub(crate) const INSIGHT_COLUMNS: &str = "event_id, service_name, severity, fingerprint, \
     root_causes, recommended_actions, related_concerns, confidence, summary, model, \
     prompt_tokens, completion_tokens, latency_ms, created_at";

/// The upsert of one insight, by event id.
pub(crate) const UPSERT_INSIGHT: &str = "INSERT INTO event_insights (event_id, service_name, \
     severity, fingerprint, root_causes, recommended_actions, related_concerns, confidence, \
     summary, model, prompt_tokens, completion_tokens, latency_ms, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT (event_id) DO UPDATE SET service_name = excluded.service_name, \
     severity = excluded.severity, fingerprint = excluded.fingerprint, \
     root_causes = excluded.root_causes, recommended_actions = excluded.recommended_actions, \
     related_concerns = excluded.related_concerns, confidence = excluded.confidence, \
     summary = excluded.summary, model = excluded.model, \
     prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, \
     latency_ms = excluded.latency_ms, created_at = excluded.created_at";

/// An insight's columns that need encoding before they can be bound.
#[derive(Debug)]
pub(crate) struct EncodedInsight {
    pub(crate) root_causes: String,
    pub(crate) recommended_actions: String,
    pub(crate) related_concerns: String,
    pub(crate) prompt_tokens: i64,
    pub(crate) completion_tokens: i64,
    pub(crate) latency_ms: i64,
}

/// Encodes an insight's JSON columns (and checks its numbers).
pub(crate) fn encode_insight(i: &EventInsight) -> Result<EncodedInsight> {
    use crate::incidents::{check_number, json};
    let id = i.event_id.as_str();
    check_number(i.confidence, "insight confidence", id)?;
    let int = |v: u64, what: &str| crate::rollups::count_to_i64(v, what, id);
    Ok(EncodedInsight {
        root_causes: json(&i.root_causes, "root_causes", id)?,
        recommended_actions: json(&i.recommended_actions, "recommended_actions", id)?,
        related_concerns: json(&i.related_concerns, "related_concerns", id)?,
        prompt_tokens: int(i.prompt_tokens, "prompt_tokens")?,
        completion_tokens: int(i.completion_tokens, "completion_tokens")?,
        latency_ms: int(i.latency_ms, "latency_ms")?,
    })
}

/// Decodes an `event_insights` row.
pub(crate) fn insight_from_row<'r, R>(row: &'r R) -> Result<EventInsight>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "event_insights";
    let event_id: String = column(row, "event_id", T)?;
    let corrupt = |name: &str, reason: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("{T}.{name} of '{event_id}'"), reason)
    };
    let text = |name: &str| -> Result<String> { column(row, name, T) };
    let list = |name: &str| -> Result<Vec<String>> {
        serde_json::from_str(&text(name)?).map_err(|e| corrupt(name, &e))
    };
    let severity = Severity::parse("severity", &text("severity")?)
        .map_err(|e| corrupt("severity", &e.to_string()))?;
    let count = |name: &str| -> Result<u64> {
        let v: i64 = column(row, name, T)?;
        crate::rollups::count_to_u64(v, &format!("{T}.{name}"), &event_id)
    };
    Ok(EventInsight {
        service_name: text("service_name")?,
        severity,
        fingerprint: text("fingerprint")?,
        root_causes: list("root_causes")?,
        recommended_actions: list("recommended_actions")?,
        related_concerns: list("related_concerns")?,
        confidence: column(row, "confidence", T)?,
        summary: text("summary")?,
        model: text("model")?,
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        latency_ms: count("latency_ms")?,
        created_at: column(row, "created_at", T)?,
        event_id,
    })
}
