//! The hand-off between the two halves of the crate: a trigger rule fired on a subject,
//! and a playbook may now run for it.

use serde::{Deserialize, Serialize};
use sightline_model::{Anomaly, Event, Incident, Severity};

/// What a rule is evaluated against, and what a playbook's templates read from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Subject {
    /// A system event from `system-events`.
    Event(Box<Event>),
    /// An anomaly from `anomalies`.
    Anomaly(Box<Anomaly>),
    /// An incident from `incidents.detected` / `incidents.updated`.
    Incident(Box<Incident>),
}

impl Subject {
    /// The subject's severity.
    pub fn severity(&self) -> Severity {
        match self {
            Subject::Event(e) => e.severity,
            Subject::Anomaly(a) => a.severity,
            Subject::Incident(i) => i.severity,
        }
    }
}

/// A trigger rule fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Firing {
    /// Deterministic id (rule, group key, window): a replayed firing has the same id, so
    /// the playbook side can refuse to run it twice.
    pub id: String,
    /// The rule that fired.
    pub rule_id: String,
    /// Its name, for notifications and the audit trail.
    pub rule_name: String,
    /// The playbook (response template) the rule names, if any.
    pub response_template_id: Option<String>,
    /// The subject whose match made the rule fire (the last one, for count-in-window rules).
    pub subject: Subject,
    /// The rule's `group_by` values joined (`"checkout|prod"`); empty when it has none.
    pub group_key: String,
    /// How many matches the window held when it fired (1 without a window).
    pub match_count: u32,
    /// When it fired, Unix milliseconds.
    pub fired_at: i64,
}
