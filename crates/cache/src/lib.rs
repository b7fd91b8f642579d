//! The live cache: the small, hot, short-lived state that dashboards and the analysis
//! pipeline read many times a second and that the store would answer too slowly — the
//! newest metric points per service, the latest rollups, the set of active incidents and
//! recent analyses.
//!
//! [`Cache`] is the only way the rest of sightline touches it. Two backends implement it
//! with the same semantics (one conformance suite, `tests/conformance`, runs against both):
//!
//! * [`MemoryCache`] — in process, the embedded default (`sightline run`): sharded maps,
//!   TTLs on a [`sightline_model::Clock`], a hard bound on the number of keys.
//! * [`RedisCache`] — Redis, for scale-out, so every node sees the same live state (see
//!   [`RedisConfig`]). Every operation is bounded by a timeout; a Redis that is down makes
//!   operations fail fast with [`CacheError::Unavailable`], never hang and never stop the
//!   node from starting.
//!
//! The cache is never the source of truth: on [`CacheError::Unavailable`] callers answer
//! from the store.
//!
//! Values are strings (callers serialize, normally to JSON). The key names come from the
//! LiveOps specification and are built only by [`keys`]:
//!
//! | key | kind | written with |
//! |---|---|---|
//! | `metrics:live:{serviceName}` | newest [`keys::LIVE_POINTS`] points, oldest first | [`Cache::push_recent`] |
//! | `metrics:agg:{serviceName}:{window}` | latest rollup | [`Cache::set`] |
//! | `incidents:active` | set of incident ids | [`Cache::set_add`] / [`Cache::set_remove`] |
//! | `analysis:{incidentId}` | analysis, TTL [`keys::ANALYSIS_TTL`] | [`Cache::set`] |
//!
//! ```
//! use sightline_cache::{Cache, MemoryCache, keys};
//!
//! # async fn demo() -> Result<(), sightline_cache::CacheError> {
//! let cache = MemoryCache::new(Default::default(), sightline_model::Clock::system());
//! let live = keys::metrics_live("checkout");
//! cache.push_recent(&live, r#"{"cpu":0.42}"#, keys::LIVE_POINTS).await?;
//! cache.set(&keys::analysis("inc-1"), r#"{"rootCause":"db"}"#, Some(keys::ANALYSIS_TTL)).await?;
//! cache.set_add(keys::INCIDENTS_ACTIVE, "inc-1").await?;
//!
//! assert_eq!(cache.recent(&live).await?, vec![r#"{"cpu":0.42}"#.to_string()]);
//! assert_eq!(cache.set_members(keys::INCIDENTS_ACTIVE).await?, vec!["inc-1".to_string()]);
//! # Ok(())
//! # }
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(demo()).unwrap();
//! ```

mod error;
pub mod keys;
pub mod live;
mod memory;
mod redis;

use std::time::Duration;

pub use error::CacheError;
pub use memory::{MemoryCache, MemoryConfig};
pub use redis::{RedisCache, RedisConfig};

/// Result type of the cache.
pub type Result<T, E = CacheError> = std::result::Result<T, E>;

/// The live cache, as the rest of sightline sees it.
///
/// Keys hold one kind of value each: a string ([`set`](Cache::set)), a bounded list
/// ([`push_recent`](Cache::push_recent)) or a set ([`set_add`](Cache::set_add)). Using a
/// key as another kind answers [`CacheError::WrongType`], except [`set`](Cache::set) and
/// [`delete`](Cache::delete), which replace or remove whatever is there (as in Redis).
/// An empty list or set does not exist: removing its last member removes the key.
#[async_trait::async_trait]
pub trait Cache: Send + Sync + std::fmt::Debug {
    /// Appends `value` to the list at `key` and keeps only the newest `keep` entries, in
    /// one atomic step. `keep == 0` leaves nothing, i.e. removes the key.
    async fn push_recent(&self, key: &str, value: &str, keep: usize) -> Result<()>;

    /// The list at `key`, oldest first; empty if the key does not exist.
    async fn recent(&self, key: &str) -> Result<Vec<String>>;

    /// Stores `value` at `key`, replacing whatever was there. With a `ttl` the key
    /// disappears after it (millisecond resolution; a zero TTL removes the key at once);
    /// without one it stays until deleted or evicted, dropping any earlier TTL.
    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()>;

    /// The string at `key`; `None` if absent or expired.
    async fn get(&self, key: &str) -> Result<Option<String>>;

    /// Removes `key`, whatever it holds; absent keys are fine.
    async fn delete(&self, key: &str) -> Result<()>;

    /// Adds `member` to the set at `key` (a no-op if already there).
    async fn set_add(&self, key: &str, member: &str) -> Result<()>;

    /// Removes `member` from the set at `key` (a no-op if not there).
    async fn set_remove(&self, key: &str, member: &str) -> Result<()>;

    /// The members of the set at `key`, sorted bytewise (so both backends agree); empty if
    /// the key does not exist.
    async fn set_members(&self, key: &str) -> Result<Vec<String>>;

    /// Checks that the backend answers (readiness probes).
    async fn ping(&self) -> Result<()>;
}

/// The longest TTL the backends store (100 years); longer ones are clamped to it, because
/// Redis rejects expiry times that overflow its clock.
const MAX_TTL_MS: u64 = 100 * 365 * 86_400_000;

/// A TTL as whole milliseconds for the backends: `None` for zero (remove at once), else
/// at least 1 ms so a sub-millisecond TTL does not turn into "never expires".
pub(crate) fn ttl_millis(ttl: Duration) -> Option<u64> {
    if ttl.is_zero() {
        None
    } else {
        let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
        Some(ms.clamp(1, MAX_TTL_MS))
    }
}
