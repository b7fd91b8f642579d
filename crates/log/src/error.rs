use std::path::PathBuf;

/// What can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The topic was never created.
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    /// A partition number outside the topic.
    #[error("topic '{topic}' has no partition {partition}")]
    UnknownPartition {
        /// Topic name.
        topic: String,
        /// Requested partition.
        partition: u32,
    },
    /// A topic or group name that cannot be used as a file name.
    #[error("invalid name '{0}': use letters, digits, '.', '_' and '-' (1-200 characters)")]
    InvalidName(String),
    /// A record too large to append.
    #[error("record of {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// Encoded size.
        size: usize,
        /// Configured limit.
        limit: usize,
    },
    /// The log is shutting down or its writer stopped.
    #[error("the log is closed")]
    Closed,
    /// The append queue is full: retry later.
    #[error("the log's append queue is full")]
    Busy,
    /// File-system failure.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// File or directory involved.
        path: PathBuf,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A broker-backed log failed.
    #[error("broker error: {0}")]
    Broker(String),
    /// The settings of a broker-backed log are unusable (e.g. an unreadable CA file).
    #[error("invalid Kafka settings: {0}")]
    Config(String),
}

impl LogError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> LogError {
        let path = path.into();
        move |source| LogError::Io { path, source }
    }
}
