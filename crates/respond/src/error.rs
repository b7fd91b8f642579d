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

    // --- playbooks, approvals, decisions ---
    /// The store failed (retry later).
    #[error(transparent)]
    Store(#[from] sightline_store::StoreError),
    /// The named execution, template or decision does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request does not fit the current state (not awaiting approval, token already
    /// used).
    #[error("{0}")]
    Conflict(String),
    /// The approval token is not the one issued for this execution.
    #[error("the approval token does not match")]
    BadToken,
    /// The approval token expired (epoch ms).
    #[error("the approval token expired at {0} (epoch ms)")]
    Expired(i64),
}
