//! What can go wrong in the live cache, sorted by what a caller can do about it.
//!
//! The cache is an accelerator, never the source of truth: on [`CacheError::Unavailable`]
//! callers answer from the store instead (and may retry the cache later). The other
//! variants are bugs or damaged data, which no retry fixes.

/// Every error the cache returns.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend cannot answer now: down, unreachable, timed out, loading, read-only, out
    /// of memory. Fall back to the store.
    #[error("cache unavailable: {0}")]
    Unavailable(String),

    /// A stored value that does not decode (e.g. a string that is not UTF-8).
    #[error("corrupt value at cache key '{key}': {reason}")]
    Corrupt {
        /// The key (without any namespace prefix).
        key: String,
        /// Why it does not decode.
        reason: String,
    },

    /// The key holds another kind of value than the operation needs (a list read as a
    /// string, a string used as a set, …). Redis calls this `WRONGTYPE`; the in-process
    /// backend reports the same.
    #[error("cache key '{key}' holds a {found}, not a {expected}")]
    WrongType {
        /// The key (without any namespace prefix).
        key: String,
        /// What the operation needs: `string`, `list` or `set`.
        expected: &'static str,
        /// What the key holds (`other` when the backend does not say).
        found: &'static str,
    },

    /// The cache was configured wrongly (e.g. an unparsable Redis URL).
    #[error("invalid cache configuration: {0}")]
    Config(String),
}

impl CacheError {
    /// `true` for [`CacheError::Unavailable`]: the caller should fall back to the store.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, CacheError::Unavailable(_))
    }
}
