//! Errors of rules and playbooks.

/// What went wrong compiling a rule or running a playbook.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// A rule or playbook definition is invalid; `path` points at the fault
    /// (`conditions.$and[1].metadata.cpu`).
    #[error("{path}: {reason}")]
    Invalid {
        /// Where in the submitted document the fault is.
        path: String,
        /// Why it is refused.
        reason: String,
    },
}
