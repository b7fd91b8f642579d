//! Incidents: the unit an operator works on, built by the correlator from anomalies and
//! events, and the correlations that explain why they were put together.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Severity, ValidationError};

/// Where an incident is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    /// Detected and not yet looked at.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Over: the signal is back to normal or an operator closed it.
    Resolved,
}

impl IncidentStatus {
    /// The canonical lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }

    /// Parses a status name; `field` names the input field in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(IncidentStatus::Open),
            "acknowledged" | "ack" => Ok(IncidentStatus::Acknowledged),
            "resolved" => Ok(IncidentStatus::Resolved),
            other => Err(ValidationError::new(
                field,
                format!("unknown status '{other}': expected open, acknowledged or resolved"),
            )),
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an incident's timeline: what happened to it, when, and who did it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// When, epoch milliseconds.
    pub at: i64,
    /// What kind of change: `detected`, `anomaly`, `event`, `status`, `assigned`, `note`,
    /// `severity`, `flapping`, `merged`, `suppressed`, `resolved`.
    pub kind: String,
    /// A sentence describing it.
    pub message: String,
    /// Who did it: a user name, an API key id, or `sightline` for the engine itself.
    pub actor: String,
}

/// An incident, as stored in `incidents` and published on `incidents.detected` /
/// `incidents.updated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    /// Deterministic for detected incidents (derived from the correlation group and its
    /// first evidence), so redelivery and restarts never duplicate one; a UUIDv7 for
    /// incidents created by hand.
    pub id: String,
    /// A one-line summary generated from the evidence (or given by the operator).
    pub title: String,
    /// A longer description generated from the evidence.
    pub description: String,
    /// How bad.
    pub severity: Severity,
    /// Severity score behind `severity`: detector score × service criticality × breadth.
    pub score: f64,
    /// Where it is in its life.
    pub status: IncidentStatus,
    /// The service the incident is attributed to (the upstream-most one of a cascade).
    pub service_name: String,
    /// Every service touched, including `service_name`.
    pub affected_services: Vec<String>,
    /// When it was detected, epoch milliseconds.
    pub detected_at: i64,
    /// When it last changed, epoch milliseconds.
    pub updated_at: i64,
    /// When it was acknowledged.
    pub acknowledged_at: Option<i64>,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// The correlation id of the request or event that opened it.
    pub correlation_id: String,
    /// The dedup key of the group it was built from.
    pub fingerprint: String,
    /// The labels of its correlation group (`group_by` values).
    pub labels: BTreeMap<String, String>,
    /// Ids of the events it rests on.
    pub event_ids: Vec<String>,
    /// Ids of the anomalies it rests on.
    pub anomaly_ids: Vec<String>,
    /// How many signals were folded into it (repeats increment, never duplicate).
    pub occurrences: u64,
    /// Who is working on it.
    pub assignee: Option<String>,
    /// Held open because it opened and closed repeatedly.
    pub flapping: bool,
    /// What happened to it, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

impl Incident {
    /// The set of affected services, for membership tests.
    pub fn affected(&self) -> BTreeSet<&str> {
        self.affected_services.iter().map(String::as_str).collect()
    }
}

/// Why two things were linked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationKind {
    /// Close in time on the same or related services.
    TimeBased,
    /// Same fingerprint or same group labels.
    PatternBased,
    /// Linked through the service dependency graph (upstream cause, downstream effect).
    Causal,
}

impl CorrelationKind {
    /// The canonical snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CorrelationKind::TimeBased => "time_based",
            CorrelationKind::PatternBased => "pattern_based",
            CorrelationKind::Causal => "causal",
        }
    }
}

/// One link between a signal (an event or an anomaly) and an incident, as stored in
/// `event_correlations`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Correlation {
    /// Deterministic: derived from the incident and the linked id.
    pub id: String,
    /// The incident the signal was folded into.
    pub incident_id: String,
    /// The event id or anomaly id that was linked.
    pub source_id: String,
    /// The event or anomaly it was linked to (the group's first signal).
    pub target_id: String,
    /// Why.
    pub kind: CorrelationKind,
    /// How confident, from 0 to 1.
    pub score: f64,
    /// A sentence saying why.
    pub reason: String,
    /// When the link was made, epoch milliseconds.
    pub created_at: i64,
}

/// How a [`Matcher`] compares a label with its value (Alertmanager's four operators).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum MatchOp {
    /// `=`: equal.
    #[serde(rename = "=")]
    Equal,
    /// `!=`: not equal (a missing label counts as the empty string).
    #[serde(rename = "!=")]
    NotEqual,
    /// `=~`: the whole value matches the regular expression.
    #[serde(rename = "=~")]
    Regex,
    /// `!~`: the whole value does not match the regular expression.
    #[serde(rename = "!~")]
    NotRegex,
}

/// One condition on one label of a signal (`service`, `signal`, `detector`, `severity`,
/// `environment`, `host`, and any tag).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or regular expression.
    pub value: String,
}

/// A silence or maintenance window: signals whose labels match every matcher between
/// `starts_at` and `ends_at` open no incident; each suppression is recorded with the
/// silence's id as the reason.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Silence {
    /// A UUIDv7.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// Start of the window, epoch milliseconds.
    pub starts_at: i64,
    /// End of the window, epoch milliseconds (exclusive).
    pub ends_at: i64,
    /// Who created it.
    pub created_by: String,
    /// Why (e.g. "database maintenance, CHG-1234").
    pub comment: String,
    /// When it was created, epoch milliseconds.
    pub created_at: i64,
}

impl Silence {
    /// Whether the silence is in force at `now`.
    pub fn active_at(&self, now: i64) -> bool {
        self.starts_at <= now && now < self.ends_at
    }
}
