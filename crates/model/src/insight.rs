//! Per-event insights: what a language model makes of one high-severity event.
//!
//! Incidents get a root-cause [`Analysis`](crate::Analysis); a single event that matters
//! (a `critical` payment error, say) can get an [`EventInsight`] as soon as it arrives,
//! without waiting for an incident to form. One event has at most one insight (the
//! event id is its key), so a redelivered event never doubles it. Like an analysis, an
//! insight is only text: its recommended actions are never executed by sightline.

use serde::{Deserialize, Serialize};

use crate::Severity;

/// A language model's reading of one event, as stored in `event_insights` and published
/// on `insights.generated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventInsight {
    /// The event explained (its `event_id`; also the insight's key).
    pub event_id: String,
    /// The event's service.
    pub service_name: String,
    /// The event's severity.
    pub severity: Severity,
    /// The event's fingerprint (events with the same one are the same kind of trouble).
    pub fingerprint: String,
    /// Possible root causes, most likely first.
    pub root_causes: Vec<String>,
    /// What an operator may do; text only, never executed by sightline.
    pub recommended_actions: Vec<String>,
    /// Other things worth checking (risks, side effects, related systems).
    pub related_concerns: Vec<String>,
    /// How sure the model is, 0 to 1.
    pub confidence: f64,
    /// The event in a sentence or two.
    pub summary: String,
    /// The model that answered.
    pub model: String,
    /// Tokens of the prompt(s) sent.
    pub prompt_tokens: u64,
    /// Tokens of the answer(s) received.
    pub completion_tokens: u64,
    /// How long the insight took, milliseconds.
    pub latency_ms: u64,
    /// When it was produced, epoch milliseconds.
    pub created_at: i64,
}
