//! Root-cause analyses of incidents, and the feedback operators give on them.
//!
//! The analyst (built-in or LLM-backed) writes one [`Analysis`] per incident version:
//! what probably caused it, how sure it is, what to do, and the ids of the evidence its
//! claims rest on. Suggested actions are *text*: nothing in an analysis runs anything;
//! only the rules/approval path can act. [`Feedback`] records whether an analysis was
//! right, so later analyses of similar incidents can prefer confirmed root causes.

use std::fmt;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::ValidationError;

/// Who wrote an analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnalystKind {
    /// The deterministic, built-in analyst (no network, no key).
    Builtin,
    /// An OpenAI-compatible language model.
    Llm,
}

impl AnalystKind {
    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalystKind::Builtin => "builtin",
            AnalystKind::Llm => "llm",
        }
    }

    /// Parses a name; `field` names the input field in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "builtin" => Ok(AnalystKind::Builtin),
            "llm" => Ok(AnalystKind::Llm),
            other => Err(ValidationError::new(
                field,
                format!("unknown analyst '{other}': expected builtin or llm"),
            )),
        }
    }
}

/// Whether an analysis was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisStatus {
    /// The analysis holds a root cause.
    Completed,
    /// The analyst could not produce one; `error` says why.
    Failed,
}

impl AnalysisStatus {
    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisStatus::Completed => "completed",
            AnalysisStatus::Failed => "failed",
        }
    }

    /// Parses a name; `field` names the input field in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "completed" => Ok(AnalysisStatus::Completed),
            "failed" => Ok(AnalysisStatus::Failed),
            other => Err(ValidationError::new(
                field,
                format!("unknown analysis status '{other}': expected completed or failed"),
            )),
        }
    }
}

/// What an evidence id refers to.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    /// A system event (`event_id`).
    Event,
    /// An anomaly (`an-…`).
    Anomaly,
    /// A metric rollup (`aggregations.id`).
    Metric,
    /// A `DEPLOYMENT` event.
    Deployment,
    /// Another incident (a similar past one).
    Incident,
}

impl EvidenceKind {
    /// Every kind.
    pub const ALL: [EvidenceKind; 5] = [
        EvidenceKind::Event,
        EvidenceKind::Anomaly,
        EvidenceKind::Metric,
        EvidenceKind::Deployment,
        EvidenceKind::Incident,
    ];

    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Event => "event",
            EvidenceKind::Anomaly => "anomaly",
            EvidenceKind::Metric => "metric",
            EvidenceKind::Deployment => "deployment",
            EvidenceKind::Incident => "incident",
        }
    }
}

/// One piece of evidence an analysis cites.
#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct EvidenceRef {
    /// What the id refers to.
    pub kind: EvidenceKind,
    /// The id, as stored.
    pub id: String,
}

/// How risky a suggested action is to carry out.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ActionRisk {
    /// Read-only or trivially reversible (look at a dashboard, raise a log level).
    Low,
    /// Reversible but visible (restart, scale out, roll back).
    Medium,
    /// Hard to reverse or customer-visible (fail over, drop traffic).
    High,
}

impl ActionRisk {
    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionRisk::Low => "low",
            ActionRisk::Medium => "medium",
            ActionRisk::High => "high",
        }
    }
}

/// An action the analyst proposes. It is only text: sightline never runs it from here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SuggestedAction {
    /// A short imperative title ("Roll back checkout to 2.3.1").
    pub title: String,
    /// Why and how.
    pub description: String,
    /// How risky it is.
    pub risk: ActionRisk,
    /// A command an operator might run themselves; shown, never executed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_hint: Option<String>,
}

/// A root-cause analysis of one incident, as stored in `ai_analyses` and published on
/// `analysis.completed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Analysis {
    /// Deterministic per incident version: see [`Analysis::id_for`].
    pub id: String,
    /// The incident analysed.
    pub incident_id: String,
    /// The probable root cause, in a sentence or two.
    pub root_cause: String,
    /// The service the root cause is attributed to, when the analyst names one.
    pub root_cause_service: Option<String>,
    /// How sure, 0 to 1.
    pub confidence: f64,
    /// Services affected by the incident, root cause first.
    pub impacted_services: Vec<String>,
    /// What an operator may do; never executed by sightline itself.
    pub suggested_actions: Vec<SuggestedAction>,
    /// For engineers: the signals, the order they appeared in, the topology.
    pub technical_summary: String,
    /// For managers: impact and status in plain words.
    pub executive_summary: String,
    /// The ids the claims rest on (each one existed in the analyst's context).
    pub evidence: Vec<EvidenceRef>,
    /// Problems found by the evidence check (unsupported claims, invented ids).
    pub flags: Vec<String>,
    /// Who wrote it.
    pub analyst: AnalystKind,
    /// The model name (`builtin-v1` for the built-in analyst).
    pub model: String,
    /// Tokens of the prompt(s) sent, 0 for the built-in analyst.
    pub prompt_tokens: u64,
    /// Tokens of the answer(s) received, 0 for the built-in analyst.
    pub completion_tokens: u64,
    /// How long the analysis took, milliseconds.
    pub latency_ms: u64,
    /// Whether it completed.
    pub status: AnalysisStatus,
    /// Why it failed (or why a fallback was used), if it did.
    pub error: Option<String>,
    /// When it was produced, epoch milliseconds.
    pub created_at: i64,
}

impl Analysis {
    /// The deterministic id of the analysis of one version of an incident (its
    /// `updated_at`): a redelivered incident gets the same id, so the store upserts.
    pub fn id_for(incident_id: &str, incident_updated_at: i64) -> String {
        let mut h = Xxh3::new();
        h.update(incident_id.as_bytes());
        h.update(&[0x1f]);
        h.update(&incident_updated_at.to_le_bytes());
        format!("ana-{:016x}", h.digest())
    }
}

/// What an operator thought of an analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeedbackVerdict {
    /// Right and useful: its root cause is confirmed.
    Helpful,
    /// Not wrong, not useful.
    NotHelpful,
    /// Wrong root cause.
    Incorrect,
}

impl FeedbackVerdict {
    /// The canonical snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackVerdict::Helpful => "helpful",
            FeedbackVerdict::NotHelpful => "not_helpful",
            FeedbackVerdict::Incorrect => "incorrect",
        }
    }

    /// Parses a verdict; `field` names the input field in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "helpful" => Ok(FeedbackVerdict::Helpful),
            "not_helpful" => Ok(FeedbackVerdict::NotHelpful),
            "incorrect" => Ok(FeedbackVerdict::Incorrect),
            other => Err(ValidationError::new(
                field,
                format!("unknown verdict '{other}': expected helpful, not_helpful or incorrect"),
            )),
        }
    }
}

impl fmt::Display for FeedbackVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator's verdict on an analysis, as stored in `analysis_feedback`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Feedback {
    /// The analysis judged.
    pub analysis_id: String,
    /// Its incident.
    pub incident_id: String,
    /// The verdict.
    pub verdict: FeedbackVerdict,
    /// Free text ("the real cause was the cache").
    pub notes: String,
    /// Who gave it.
    pub author: String,
    /// When, epoch milliseconds.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_depend_on_incident_and_version_only() {
        assert_eq!(Analysis::id_for("inc-1", 5), Analysis::id_for("inc-1", 5));
        assert_ne!(Analysis::id_for("inc-1", 5), Analysis::id_for("inc-1", 6));
        assert_ne!(Analysis::id_for("inc-1", 5), Analysis::id_for("inc-2", 5));
    }

    #[test]
    fn names_round_trip_and_bad_ones_name_the_field() {
        for v in [
            FeedbackVerdict::Helpful,
            FeedbackVerdict::NotHelpful,
            FeedbackVerdict::Incorrect,
        ] {
            assert_eq!(FeedbackVerdict::parse("verdict", v.as_str()).unwrap(), v);
            let json = serde_json::to_value(v).unwrap();
            assert_eq!(json, serde_json::json!(v.as_str()));
        }
        let err = FeedbackVerdict::parse("verdict", "meh").unwrap_err();
        assert_eq!(err.field, "verdict");
        for k in EvidenceKind::ALL {
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
    }
}
