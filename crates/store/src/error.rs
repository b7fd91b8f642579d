//! What can go wrong in the store, sorted by what a caller can do about it.
//!
//! The API maps [`StoreError::InvalidCursor`] and [`StoreError::InvalidQuery`] to a 400
//! problem, treats [`StoreError::Database`] and [`StoreError::Io`] as "not ready / retry",
//! and reports [`StoreError::Corrupt`] loudly: it means a stored row no longer decodes, which
//! no retry will fix. The incident routes are meant to map [`StoreError::NotFound`] to 404,
//! [`StoreError::InvalidTransition`] (and [`StoreError::Conflict`]) to 409 and
//! [`StoreError::InvalidData`] to 422.

use std::path::PathBuf;

/// Every error the store returns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed a statement (locked, full disk, connection lost, …).
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying the schema migrations failed (e.g. the file holds a newer or foreign schema).
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),

    /// A pagination cursor that was not produced by this store (the text is truncated).
    #[error("invalid cursor '{0}'")]
    InvalidCursor(String),

    /// Query parameters that cannot be answered (e.g. a non-positive bucket width).
    #[error("invalid query: {0}")]
    InvalidQuery(String),

    /// A row with this key already exists (e.g. a username that is taken).
    #[error("conflict: {0}")]
    Conflict(String),

    /// No row with this key (e.g. an incident or silence id that does not exist); the text
    /// names what was looked for, e.g. `incident 'abc'`.
    #[error("{0} not found")]
    NotFound(String),

    /// An incident status change its lifecycle does not allow (e.g. acknowledging a resolved
    /// incident): see [`transition_allowed`](crate::transition_allowed).
    #[error("incident '{id}' cannot go from {from} to {to}")]
    InvalidTransition {
        /// The incident.
        id: String,
        /// Its current status.
        from: sightline_model::IncidentStatus,
        /// The status asked for.
        to: sightline_model::IncidentStatus,
    },

    /// A value offered for writing that the store cannot keep as given (NaN in a number
    /// column, an update that changes nothing).
    #[error("invalid data: {0}")]
    InvalidData(String),

    /// A stored value that no longer decodes into its type.
    #[error("corrupt {what} in the store: {reason}")]
    Corrupt {
        /// Which row and column, e.g. `processed_events.metadata of event 'abc'`.
        what: String,
        /// Why it does not decode.
        reason: String,
    },

    /// Log values could not be decoded as a batch (e.g. the schema registry holding their
    /// writer schemas is unreachable); the batch is retried.
    #[error("decoding log values: {0}")]
    Decode(String),

    /// The event log failed (the sink reads from it and commits to it).
    #[error("event log error: {0}")]
    Log(#[from] sightline_log::LogError),

    /// File-system failure, e.g. creating the database directory.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether trying the same operation again later may succeed: the database, the log or
    /// the file system failed, rather than the request or the data being wrong.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Database(_)
                | StoreError::Log(_)
                | StoreError::Io { .. }
                | StoreError::Decode(_)
        )
    }

    /// A [`StoreError::Corrupt`] for `what`, with the decoding error as the reason.
    pub(crate) fn corrupt(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        StoreError::Corrupt {
            what: what.into(),
            reason: reason.to_string(),
        }
    }
}
