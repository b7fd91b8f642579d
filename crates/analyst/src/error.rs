//! The analyst's one error type: what a caller (the runner, the API) can act on.

use sightline_store::StoreError;

/// What can go wrong while analysing an incident.
#[derive(Debug, thiserror::Error)]
pub enum AnalystError {
    /// The store failed while gathering context or saving the analysis (retry later).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The incident to analyse does not exist.
    #[error("incident '{0}' not found")]
    IncidentNotFound(String),
    /// The configuration is unusable; the message names the field.
    #[error("invalid analyst configuration: {0}")]
    Config(String),
    /// The event log failed (reading, appending or committing).
    #[error("event log: {0}")]
    Log(#[from] sightline_log::LogError),
    /// Encoding a record failed.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The evaluation could not be run (detector or correlator refused its config).
    #[error("evaluation: {0}")]
    Eval(String),
}
