use std::path::PathBuf;

/// What can go wrong in the stream engine.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// An operator or window specification that cannot run; the message says why.
    #[error("invalid stream configuration: {0}")]
    InvalidConfig(String),
    /// Two accumulators of different kinds were asked to merge (a bug or a checkpoint
    /// from a different query).
    #[error("incompatible aggregate state: {0}")]
    IncompatibleMerge(String),
    /// A checkpoint that is not one, or is damaged (bad magic, checksum or encoding).
    #[error("corrupt checkpoint: {0}")]
    CorruptCheckpoint(String),
    /// A checkpoint written by a newer, incompatible format version.
    #[error("checkpoint format version {found} is not supported (this build reads {supported})")]
    UnsupportedCheckpointVersion {
        /// Version in the file.
        found: u16,
        /// Version this build writes and reads.
        supported: u16,
    },
    /// A checkpoint taken for a different query: it cannot be resumed, only replayed from
    /// the start of the input.
    #[error("checkpoint does not match operator '{operator}': {reason}")]
    CheckpointMismatch {
        /// Operator name.
        operator: String,
        /// What differs.
        reason: String,
    },
    /// Serializing state failed.
    #[error("cannot encode checkpoint: {0}")]
    Encode(String),
    /// A stored continuous-query definition no longer compiles (e.g. written by a newer
    /// build).
    #[error("continuous query: {0}")]
    Sql(#[from] crate::sql::SqlError),
    /// The event log failed (reading, appending or committing).
    #[error("event log: {0}")]
    Log(#[from] sightline_log::LogError),
    /// The store failed and the runner was told to stop before a retry succeeded.
    #[error("store: {0}")]
    Store(#[from] sightline_store::StoreError),
    /// A task of the engine panicked or was cancelled.
    #[error("stream task failed: {0}")]
    TaskFailed(String),
    /// File-system failure.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl StreamError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StreamError {
        let path = path.into();
        move |source| StreamError::Io { path, source }
    }
}
