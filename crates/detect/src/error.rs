//! The crate's one error type: detector configuration that cannot run, NAB corpus
//! input that cannot be read, and the I/O failures of the detection runner (event log,
//! store, checkpoints).

use std::path::PathBuf;

/// What can go wrong in anomaly detection.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    /// A detector or registry configuration that cannot run; the message says why.
    #[error("invalid detector configuration: {0}")]
    InvalidConfig(String),
    /// A NAB corpus file that is not what the benchmark expects (bad CSV row, bad label).
    #[error("bad NAB input in {path}: {reason}")]
    BadInput {
        /// File involved.
        path: PathBuf,
        /// What is wrong, with the line where it applies.
        reason: String,
    },
    /// The event log failed (reading, appending or committing) in the detection runner.
    #[error("event log: {0}")]
    Log(#[from] sightline_log::LogError),
    /// The store failed in the detection runner.
    #[error("store: {0}")]
    Store(#[from] sightline_store::StoreError),
    /// Saving or loading the detection runner's checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] sightline_stream::StreamError),
    /// Encoding the runner's checkpoint or an output record failed.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// File-system failure.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
}

impl DetectError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> DetectError {
        let path = path.into();
        move |source| DetectError::Io { path, source }
    }

    pub(crate) fn bad_input(path: impl Into<PathBuf>, reason: impl Into<String>) -> DetectError {
        DetectError::BadInput {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
