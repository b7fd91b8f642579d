//! The Redis live cache, for scale-out: every node reads and writes the same live state
//! under the LiveOps key names, with the semantics of the in-process cache.
//!
//! Redis is an accelerator here, so its failure must cost little: every operation is
//! bounded by [`RedisConfig::op_timeout_ms`] and answers [`CacheError::Unavailable`] when
//! Redis is down, slow or unreachable, and the caller falls back to the store.
//!
//! **Connecting is lazy.** [`RedisCache::connect`] only validates the URL and makes one
//! bounded attempt to warm the connection; if Redis is down it logs a warning and returns
//! the cache anyway, so a node starts without Redis. Later operations connect on demand
//! (at most one attempt per [`RedisConfig::reconnect_delay_ms`]; in between they fail fast).
//! Once connected, redis-rs's `ConnectionManager` reconnects by itself after a dropped
//! connection.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, RedisError};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::{Cache, CacheError, Result, ttl_millis};

/// Settings of the Redis cache.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`.
    pub url: String,
    /// Bound on every operation, connecting included (default 250 ms).
    pub op_timeout_ms: u64,
    /// Namespace: when set, every key is stored as `{prefix}:{key}` (tests use a unique
    /// prefix each; deployments sharing one Redis can use one per cluster).
    pub key_prefix: Option<String>,
    /// After a failed connection attempt, operations fail fast for this long before the
    /// next attempt (default 1000 ms).
    pub reconnect_delay_ms: u64,
}

impl RedisConfig {
    /// Defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RedisConfig {
            url: url.into(),
            ..RedisConfig::default()
        }
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".to_string(),
            op_timeout_ms: 250,
            key_prefix: None,
            reconnect_delay_ms: 1000,
        }
    }
}

/// The URL with any password hidden, for logs and `Debug`.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://***{}", &url[..scheme_end], &url[at..])
        }
        _ => url.to_string(),
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("op_timeout_ms", &self.op_timeout_ms)
            .field("key_prefix", &self.key_prefix)
            .field("reconnect_delay_ms", &self.reconnect_delay_ms)
            .finish()
    }
}

/// The Redis [`Cache`]. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisCache {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    config: RedisConfig,
    op_timeout: Duration,
    /// `"{prefix}:"` or empty.
    prefix: String,
    conn: Mutex<ConnState>,
}

#[derive(Default)]
struct ConnState {
    manager: Option<ConnectionManager>,
    /// No new connection attempt before this instant (after a failed one).
    retry_at: Option<Instant>,
}

impl fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCache")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// What an operation expects at its key, for [`CacheError::WrongType`].
type Kind = &'static str;

impl RedisCache {
    /// A cache for `config`, trying once (within the operation timeout) to connect. Fails
    /// only on an invalid configuration, never because Redis is down: then it logs a
    /// warning and connects on demand later.
    pub async fn connect(config: RedisConfig) -> Result<Self> {
        let cache = Self::lazy(config)?;
        if let Err(e) = cache.ping().await {
            tracing::warn!(
                url = %redacted(&cache.inner.config.url),
                error = %e,
                "redis cache not reachable at start; will connect on demand"
            );
        }
        Ok(cache)
    }

    /// A cache for `config` that does not touch the network until the first operation.
    pub fn lazy(config: RedisConfig) -> Result<Self> {
        let client = redis::Client::open(config.url.as_str()).map_err(|e| {
            CacheError::Config(format!("redis url '{}': {e}", redacted(&config.url)))
        })?;
        let prefix = match &config.key_prefix {
            Some(p) => format!("{p}:"),
            None => String::new(),
        };
        Ok(RedisCache {
            inner: Arc::new(Inner {
                client,
                op_timeout: Duration::from_millis(config.op_timeout_ms.max(1)),
                prefix,
                config,
                conn: Mutex::new(ConnState::default()),
            }),
        })
    }

    /// The configuration this cache was made with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// The key as stored in Redis (with the namespace prefix).
    fn full_key(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// The shared connection, connecting first if there is none yet.
    async fn manager(&self) -> Result<ConnectionManager> {
        let mut state = self.inner.conn.lock().await;
        if let Some(manager) = &state.manager {
            return Ok(manager.clone());
        }
        if let Some(at) = state.retry_at
            && Instant::now() < at
        {
            return Err(CacheError::Unavailable(
                "redis not connected (last attempt failed; waiting before retrying)".into(),
            ));
        }
        let timeout = self.inner.op_timeout;
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(timeout)
            .set_response_timeout(timeout);
        match ConnectionManager::new_with_config(self.inner.client.clone(), config).await {
            Ok(manager) => {
                state.manager = Some(manager.clone());
                state.retry_at = None;
                Ok(manager)
            }
            Err(e) => {
                let delay = Duration::from_millis(self.inner.config.reconnect_delay_ms);
                state.retry_at = Some(Instant::now() + delay);
                Err(CacheError::Unavailable(format!("redis connect: {e}")))
            }
        }
    }

    /// Runs `op` within the operation timeout.
    async fn bounded<T>(&self, what: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        match tokio::time::timeout(self.inner.op_timeout, op).await {
            Ok(result) => result,
            Err(_) => Err(CacheError::Unavailable(format!(
                "redis {what} timed out after {} ms",
                self.inner.op_timeout.as_millis()
            ))),
        }
    }

    /// Sends one command and converts its reply, within the operation timeout.
    async fn query<T: redis::FromRedisValue>(
        &self,
        key: &str,
        expected: Kind,
        cmd: Cmd,
    ) -> Result<T> {
        let what = command_name(&cmd);
        self.bounded(&what, async {
            let mut conn = self.manager().await?;
            cmd.query_async(&mut conn)
                .await
                .map_err(|e| classify(key, expected, e))
        })
        .await
    }
}

/// The command's name, for error messages.
fn command_name(cmd: &Cmd) -> String {
    cmd.args_iter()
        .next()
        .and_then(|arg| match arg {
            redis::Arg::Simple(bytes) => std::str::from_utf8(bytes).ok().map(str::to_string),
            redis::Arg::Cursor => None,
        })
        .unwrap_or_else(|| "command".to_string())
}

/// Sorts a Redis error by what the caller can do about it.
fn classify(key: &str, expected: Kind, e: RedisError) -> CacheError {
    if e.code() == Some("WRONGTYPE") {
        CacheError::WrongType {
            key: key.to_string(),
            expected,
            found: "other",
        }
    } else if matches!(e.kind(), redis::ErrorKind::TypeError) {
        CacheError::Corrupt {
            key: key.to_string(),
            reason: e.to_string(),
        }
    } else {
        CacheError::Unavailable(format!("redis: {e}"))
    }
}

fn utf8(key: &str, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| CacheError::Corrupt {
        key: key.to_string(),
        reason: format!("not UTF-8: {e}"),
    })
}

#[async_trait::async_trait]
impl Cache for RedisCache {
    async fn push_recent(&self, key: &str, value: &str, keep: usize) -> Result<()> {
        let full = self.full_key(key);
        if keep == 0 {
            return self.delete(key).await;
        }
        // LTRIM with a negative start keeps the newest `keep`; clamp so it stays an i64.
        let start = -i64::try_from(keep).unwrap_or(i64::MAX);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("RPUSH")
            .arg(&full)
            .arg(value)
            .ignore()
            .cmd("LTRIM")
            .arg(&full)
            .arg(start)
            .arg(-1)
            .ignore();
        self.bounded("RPUSH+LTRIM", async {
            let mut conn = self.manager().await?;
            pipe.query_async::<()>(&mut conn)
                .await
                .map_err(|e| classify(key, "list", e))
        })
        .await
    }

    async fn recent(&self, key: &str) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("LRANGE");
        cmd.arg(self.full_key(key)).arg(0).arg(-1);
        let items: Vec<Vec<u8>> = self.query(key, "list", cmd).await?;
        items.into_iter().map(|b| utf8(key, b)).collect()
    }

    async fn set(&self, key: &str, value: &str, ttl: Option<Duration>) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.full_key(key)).arg(value);
        if let Some(ttl) = ttl {
            match ttl_millis(ttl) {
                Some(ms) => {
                    cmd.arg("PX").arg(ms);
                }
                None => return self.delete(key).await,
            }
        }
        self.query(key, "string", cmd).await
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.full_key(key));
        let value: Option<Vec<u8>> = self.query(key, "string", cmd).await?;
        value.map(|b| utf8(key, b)).transpose()
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.full_key(key));
        self.query(key, "any", cmd).await
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<()> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(self.full_key(key)).arg(member);
        self.query(key, "set", cmd).await
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<()> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(self.full_key(key)).arg(member);
        self.query(key, "set", cmd).await
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.full_key(key));
        let members: Vec<Vec<u8>> = self.query(key, "set", cmd).await?;
        let mut members = members
            .into_iter()
            .map(|b| utf8(key, b))
            .collect::<Result<Vec<_>>>()?;
        members.sort_unstable();
        Ok(members)
    }

    async fn ping(&self) -> Result<()> {
        self.query("", "any", redis::cmd("PING")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_stay_out_of_debug_output() {
        let config = RedisConfig::new("redis://user:secret@cache.internal:6379/2");
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("cache.internal:6379/2"), "{shown}");
    }

    #[test]
    fn an_invalid_url_is_a_config_error() {
        let err = RedisCache::lazy(RedisConfig::new("not a url")).unwrap_err();
        assert!(matches!(err, CacheError::Config(_)), "{err}");
    }
}
