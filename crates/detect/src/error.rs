//! The crate's one error type: detector configuration that cannot run, and NAB corpus
//! input that cannot be read.

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
