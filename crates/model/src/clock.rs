//! Wall-clock time behind a seam, so tests can hold time still or move it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// The operating system's real-time clock in milliseconds since the Unix epoch (what
/// [`Clock::system`] reads), for code that has no seam to hold still.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A source of "now" in epoch milliseconds.
///
/// Production code uses [`Clock::system`]; tests use [`Clock::manual`] and move time with
/// [`Clock::advance`], which makes windows, retention and timeouts testable without sleeping.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The operating system's real-time clock.
    pub fn system() -> Self {
        Self { manual: None }
    }

    /// A clock that only moves when told to.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Current time in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.manual {
            Some(t) => t.load(Ordering::SeqCst),
            None => now_ms(),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, ms: i64) {
        if let Some(t) = &self.manual {
            t.fetch_add(ms, Ordering::SeqCst);
        }
    }
}
