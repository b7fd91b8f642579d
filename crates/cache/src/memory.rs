//! The in-process live cache, the embedded default: what Redis would hold, kept in this
//! process's memory with the same semantics, so a single node needs no Redis.
//!
//! Keys are spread over [`SHARDS`] mutex-guarded maps so concurrent writers of different
//! services rarely contend. Expiry is checked on every read (an expired key is absent and
//! removed on sight) and swept lazily: a few writes trigger a sweep of one shard, and a full
//! cache sweeps everything before it evicts anything live. The number of keys is bounded by
//! [`MemoryConfig::max_keys`]; past it, expired keys go first, then the least recently
//! written key. Time comes from a [`Clock`], so tests move it instead of sleeping.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use sightline_model::Clock;

use crate::{Cache, CacheError, Result, ttl_millis};

/// Number of independently locked maps.
const SHARDS: usize = 16;

/// Every this many writes, one shard is swept of expired keys.
const SWEEP_EVERY: u64 = 256;

/// How often an insert retries after evicting before it evicts within its own shard.
const EVICT_RETRIES: usize = 4;

/// Settings of the in-process cache.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Most keys held at once (at least 1). Each live-metrics list holds up to
    /// [`crate::keys::LIVE_POINTS`] values, so memory is bounded by roughly
    /// `max_keys × LIVE_POINTS × point size`.
    pub max_keys: usize,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig { max_keys: 100_000 }
    }
}

/// The in-process [`Cache`]. Cloning is cheap and shares the contents.
#[derive(Clone, Debug)]
pub struct MemoryCache {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    shards: Vec<Mutex<HashMap<String, Entry>>>,
    hasher: RandomState,
    /// Number of entries in all shards (changed only under the shard's lock).
    len: AtomicUsize,
    /// Write sequence: orders entries by last write, for eviction and sweep pacing.
    seq: AtomicU64,
    max_keys: usize,
    clock: Clock,
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at_ms: Option<i64>,
    written: u64,
}

#[derive(Debug)]
enum Value {
    Str(String),
    List(VecDeque<String>),
    Set(BTreeSet<String>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
        }
    }
}

impl Entry {
    fn is_expired(&self, now_ms: i64) -> bool {
        self.expires_at_ms.is_some_and(|at| now_ms >= at)
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> CacheError {
    CacheError::WrongType {
        key: key.to_string(),
        expected,
        found: found.kind(),
    }
}

impl MemoryCache {
    /// An empty cache reading time from `clock` (use [`Clock::system`] in production).
    pub fn new(config: MemoryConfig, clock: Clock) -> Self {
        MemoryCache {
            inner: Arc::new(Inner {
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                hasher: RandomState::new(),
                len: AtomicUsize::new(0),
                seq: AtomicU64::new(0),
                max_keys: config.max_keys.max(1),
                clock,
            }),
        }
    }

    /// Number of keys held, including expired ones not yet swept.
    pub fn len(&self) -> usize {
        self.inner.len.load(Ordering::SeqCst)
    }

    /// `true` when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every expired key now (normally this happens lazily).
    pub fn sweep_expired(&self) -> usize {
        let now = self.inner.clock.now_ms();
        (0..SHARDS).map(|i| self.inner.sweep_shard(i, now)).sum()
    }
}

impl Inner {
    fn shard_of(&self, key: &str) -> usize {
        // The modulo keeps the value below SHARDS, so the narrowing cannot lose anything.
        (self.hasher.hash_one(key) % SHARDS as u64) as usize
    }

    fn lock(&self, shard: usize) -> MutexGuard<'_, HashMap<String, Entry>> {
        // No code panics while holding a shard lock, and a map is valid after any partial
        // operation here, so a poisoned lock is still usable.
        self.shards[shard]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Removes the expired entries of one shard; returns how many.
    fn sweep_shard(&self, shard: usize, now_ms: i64) -> usize {
        let mut map = self.lock(shard);
        let before = map.len();
        map.retain(|_, e| !e.is_expired(now_ms));
        let removed = before - map.len();
        self.len.fetch_sub(removed, Ordering::SeqCst);
        removed
    }

    /// Runs `read` on the live entry at `key` (expired entries are removed first).
    fn read<R>(&self, key: &str, read: impl FnOnce(Option<&Entry>) -> R) -> R {
        let now = self.clock.now_ms();
        let mut map = self.lock(self.shard_of(key));
        if map.get(key).is_some_and(|e| e.is_expired(now)) {
            map.remove(key);
            self.len.fetch_sub(1, Ordering::SeqCst);
        }
        read(map.get(key))
    }

    /// Removes `key`; returns whether it was there.
    fn remove(&self, key: &str) -> bool {
        let mut map = self.lock(self.shard_of(key));
        let removed = map.remove(key).is_some();
        if removed {
            self.len.fetch_sub(1, Ordering::SeqCst);
        }
        removed
    }

    /// Changes the entry at `key` atomically: `op` gets the live value (or `None`) and may
    /// change it, create it (`Some`) or remove it (`None`). Creating a key when the cache is
    /// full first makes room. `op` may run more than once (when the insert has to wait for
    /// room), always on the current state.
    fn upsert<R>(
        &self,
        key: &str,
        ttl_ms: Option<u64>,
        op: impl Fn(&mut Option<Value>) -> Result<R>,
    ) -> Result<R> {
        self.maybe_sweep();
        let shard = self.shard_of(key);
        let mut attempt = 0;
        loop {
            let now = self.clock.now_ms();
            let mut map = self.lock(shard);
            // `existed`: the key is counted in `len` (even if expired, it is replaced).
            let existing = map.remove(key);
            let existed = existing.is_some();
            let (mut slot, kept) = match existing {
                Some(e) if !e.is_expired(now) => {
                    (Some(e.value), Some((e.expires_at_ms, e.written)))
                }
                _ => (None, None),
            };
            let out = match op(&mut slot) {
                Ok(out) => out,
                Err(e) => {
                    // Operations fail before changing anything: put the entry back as it was.
                    match (slot, kept) {
                        (Some(value), Some((expires_at_ms, written))) => {
                            let entry = Entry {
                                value,
                                expires_at_ms,
                                written,
                            };
                            map.insert(key.to_string(), entry);
                        }
                        _ if existed => {
                            self.len.fetch_sub(1, Ordering::SeqCst);
                        }
                        _ => {}
                    }
                    return Err(e);
                }
            };
            let expires_at_ms =
                ttl_ms.map(|ms| now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)));
            let Some(value) = slot else {
                if existed {
                    self.len.fetch_sub(1, Ordering::SeqCst);
                }
                return Ok(out);
            };
            if !existed {
                // A new key: it needs room.
                let reserved = self
                    .len
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                        (n < self.max_keys).then_some(n + 1)
                    })
                    .is_ok();
                if !reserved {
                    if attempt < EVICT_RETRIES {
                        attempt += 1;
                        drop(map);
                        self.make_room();
                        continue;
                    }
                    // Others keep taking the room we free: evict within this shard, under
                    // the lock we hold, or as a last resort go over the bound by one.
                    let oldest = map
                        .iter()
                        .min_by_key(|(_, e)| e.written)
                        .map(|(k, _)| k.clone());
                    match oldest {
                        Some(victim) => {
                            map.remove(&victim);
                        }
                        None => {
                            self.len.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            }
            let entry = Entry {
                value,
                expires_at_ms,
                written: self.next_seq(),
            };
            map.insert(key.to_string(), entry);
            return Ok(out);
        }
    }

    /// Sweeps one shard every [`SWEEP_EVERY`] writes, round robin.
    fn maybe_sweep(&self) {
        let n = self.next_seq();
        if n.is_multiple_of(SWEEP_EVERY) {
            let shard = (n / SWEEP_EVERY % SHARDS as u64) as usize;
            self.sweep_shard(shard, self.clock.now_ms());
        }
    }

    /// Frees at least one key if it can: expired keys first, else the least recently
    /// written key. Takes one shard lock at a time.
    fn make_room(&self) {
        let now = self.clock.now_ms();
        let swept: usize = (0..SHARDS).map(|i| self.sweep_shard(i, now)).sum();
        if swept > 0 {
            return;
        }
        let oldest = (0..SHARDS)
            .filter_map(|i| {
                let map = self.lock(i);
                map.iter()
                    .min_by_key(|(_, e)| e.written)
                    .map(|(k, e)| (e.written, i, k.clone()))
            })
            .min();
        if let Some((written, shard, key)) = oldest {
            let mut map = self.lock(shard);
            if map.get(&key).is_some_and(|e| e.written == written) {
                map.remove(&key);
                self.len.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

#[async_trait::async_trait]
impl Cache for MemoryCache {
    async fn push_recent(&self, key: &str, value: &str, keep: usize) -> Result<()> {
        if keep == 0 {
            self.inner.remove(key);
            return Ok(());
        }
        self.inner.upsert(key, None, |slot| match slot {
            None => {
                *slot = Some(Value::List(VecDeque::from([value.to_string()])));
                Ok(())
            }
            Some(Value::List(list)) => {
                list.push_back(value.to_string());
                let excess = list.len().saturating_sub(keep);
                list.drain(..excess);
                Ok(())
            }
            Some(other) => Err(wrong_type(key, "list", other)),
        })
    }

    async fn recent(&self, key: &str) -> Result<Vec<String>> {
        self.inner.read(key, |entry| match entry.map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::List(list)) => Ok(list.iter().cloned().collect()),
            Some(other) => Err(wrong_type(key, "list", other)),
        })
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        let ttl_ms = match ttl {
            None => None,
            Some(ttl) => match ttl_millis(ttl) {
                None => {
                    self.inner.remove(key);
                    return Ok(());
                }
                some => some,
            },
        };
        self.inner.upsert(key, ttl_ms, |slot| {
            *slot = Some(Value::Str(value.to_string()));
            Ok(())
        })
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.inner.read(key, |entry| match entry.map(|e| &e.value) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(other) => Err(wrong_type(key, "string", other)),
        })
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.remove(key);
        Ok(())
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<()> {
        self.inner.upsert(key, None, |slot| match slot {
            None => {
                *slot = Some(Value::Set(BTreeSet::from([member.to_string()])));
                Ok(())
            }
            Some(Value::Set(set)) => {
                set.insert(member.to_string());
                Ok(())
            }
            Some(other) => Err(wrong_type(key, "set", other)),
        })
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        self.inner.upsert(key, None, |slot| match slot {
            None => Ok(()),
            Some(Value::Set(set)) => {
                set.remove(member);
                if set.is_empty() {
                    *slot = None;
                }
                Ok(())
            }
            Some(other) => Err(wrong_type(key, "set", other)),
        })
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        self.inner.read(key, |entry| match entry.map(|e| &e.value) {
            None => Ok(Vec::new()),
            Some(Value::Set(set)) => Ok(set.iter().cloned().collect()),
            Some(other) => Err(wrong_type(key, "set", other)),
        })
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}
