//! What can go wrong when authenticating or authorizing, sorted by the answer the API gives.
//!
//! The API maps every variant to one status: [`AuthError::Unauthenticated`] → 401,
//! [`AuthError::Forbidden`] → 403, [`AuthError::Throttled`] → 429 with `Retry-After`,
//! [`AuthError::Invalid`] → 400, [`AuthError::Conflict`] → 409, [`AuthError::NotFound`] →
//! 404, and [`AuthError::Store`] / [`AuthError::Config`] → 5xx. The reason texts are for
//! logs and the audit trail; 401 answers deliberately say little.

use std::time::Duration;

use sightline_model::ValidationError;
use sightline_store::StoreError;

/// Every error of the auth crate.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials that do not prove who the caller is (bad password,
    /// bad or expired token, unknown or revoked key, bad webhook signature).
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),

    /// The caller is known but may not do this (role too low, key lacks the scope or is
    /// used from an address outside its allow-list).
    #[error("forbidden: {0}")]
    Forbidden(String),

    /// Too many attempts or requests; retry after the given time.
    #[error("too many requests: {reason}; retry after {retry_after:?}")]
    Throttled {
        /// Why (login failures, key rate limit).
        reason: String,
        /// How long to wait.
        retry_after: Duration,
    },

    /// A request to change users or keys that is not valid (weak password, bad CIDR, …).
    #[error("invalid: {0}")]
    Invalid(#[from] ValidationError),

    /// The user or key already exists.
    #[error("conflict: {0}")]
    Conflict(String),

    /// No such user or key.
    #[error("not found: {0}")]
    NotFound(String),

    /// The configuration cannot work (unreadable key file, unsupported algorithm, …).
    #[error("auth configuration: {0}")]
    Config(String),

    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => AuthError::Conflict(what),
            other => AuthError::Store(other),
        }
    }
}

impl AuthError {
    pub(crate) fn unauthenticated(reason: impl Into<String>) -> Self {
        AuthError::Unauthenticated(reason.into())
    }

    pub(crate) fn forbidden(reason: impl Into<String>) -> Self {
        AuthError::Forbidden(reason.into())
    }
}
