//! [`CorrelateError`]: every way a correlator call can be refused.

use sightline_model::IncidentStatus;

/// Why the correlator refused a call. Signals (`on_anomaly`, `on_event`) and timers never
/// fail; operator actions, silences, config and state restores can.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum CorrelateError {
    /// No incident with this id is known (never existed, created on another node, or
    /// evicted after its retention). Incidents still in their group wait are not yet
    /// published and also count as unknown.
    #[error("unknown incident '{id}'")]
    UnknownIncident {
        /// The id asked for.
        id: String,
    },
    /// The action does not apply to the incident's current status.
    #[error("cannot {action} incident '{id}': it is {from}")]
    InvalidTransition {
        /// The incident.
        id: String,
        /// Its current status.
        from: IncidentStatus,
        /// What was asked: `acknowledge`, `resolve` or `reopen`.
        action: &'static str,
    },
    /// A manual incident with an id already in use.
    #[error("incident '{id}' already exists")]
    DuplicateIncident {
        /// The id.
        id: String,
    },
    /// A manual incident that cannot be created (empty id, title or service).
    #[error("invalid manual incident: {field}: {reason}")]
    InvalidIncident {
        /// The offending field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// A silence matcher that cannot be used: unknown regular expression syntax, or an
    /// empty label name.
    #[error("silence '{silence_id}': matcher {index} ({name} {op} \"{value}\"): {reason}")]
    InvalidMatcher {
        /// The silence.
        silence_id: String,
        /// Position of the matcher in the silence, from 0.
        index: usize,
        /// The label name.
        name: String,
        /// The operator, as written (`=`, `!=`, `=~`, `!~`).
        op: &'static str,
        /// The value or expression.
        value: String,
        /// Why it is refused.
        reason: String,
    },
    /// A silence that cannot be used as a whole (no matchers, empty window, no id).
    #[error("silence '{silence_id}': {reason}")]
    InvalidSilence {
        /// The silence.
        silence_id: String,
        /// Why.
        reason: String,
    },
    /// A configuration value out of range.
    #[error("invalid correlator configuration: {field}: {reason}")]
    InvalidConfig {
        /// The field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A state snapshot written by an incompatible version.
    #[error("correlator state version {found} is not supported (this build reads {supported})")]
    UnsupportedState {
        /// Version in the snapshot.
        found: u32,
        /// Version this build writes and reads.
        supported: u32,
    },
}
