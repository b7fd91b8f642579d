//! Behaviour of `RedisCache` on a real Redis server: the shared conformance suite (each
//! test in its own key namespace, deleted afterwards), plus what only the Redis cache has:
//! namespacing as stored in Redis, real TTLs, undecodable values, and outages — a Redis
//! that refuses connections or never answers makes every operation fail fast with
//! `Unavailable` instead of hanging, and never stops the cache from being created.
//!
//! These tests need a server (`SIGHTLINE_TEST_REDIS_URL`, default
//! `redis://127.0.0.1:6379`); without one they fail, saying so.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::time::{Duration, Instant};

use conformance::Backend;
use redis::AsyncCommands as _;
use sightline_cache::{Cache, CacheError, RedisCache, RedisConfig, keys};

/// Bound on how long any operation may take against a dead or silent Redis.
const OUTAGE_BOUND: Duration = Duration::from_secs(1);

fn redis_url() -> String {
    std::env::var("SIGHTLINE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A raw connection for checks and clean-up, or a failed test naming the missing server.
async fn raw() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let attempt = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(e)) => panic!(
            "Redis is not reachable at {url} ({e}); start one (e.g. `redis-server`) or set \
             SIGHTLINE_TEST_REDIS_URL"
        ),
        Err(_) => panic!(
            "Redis at {url} did not answer within 3 s; start one or set SIGHTLINE_TEST_REDIS_URL"
        ),
    }
}

/// A namespace no other test (or earlier run) uses.
fn unique_prefix() -> String {
    format!("sightline-test-{}", uuid::Uuid::new_v4().simple())
}

/// Deletes every key in `prefix`'s namespace.
async fn purge(prefix: &str) {
    let mut conn = raw().await;
    let mut keys: Vec<String> = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}:*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    if !keys.is_empty() {
        let _: () = conn.del(keys).await.unwrap();
    }
}

/// A cache on the test server in a fresh namespace (checking first that the server is up).
async fn namespaced(prefix: &str) -> RedisCache {
    raw().await;
    let config = RedisConfig {
        key_prefix: Some(prefix.to_string()),
        // Generous: a loaded two-core test machine must not turn slowness into failures.
        op_timeout_ms: 2000,
        ..RedisConfig::new(redis_url())
    };
    RedisCache::connect(config).await.unwrap()
}

async fn redis_backend() -> Backend {
    let prefix = unique_prefix();
    let cache = namespaced(&prefix).await;
    Backend::real(Arc::new(cache), move || {
        Box::pin(async move { purge(&prefix).await })
    })
}

conformance_tests!(redis_conformance, redis_backend);

/// Runs `test` on a namespaced cache, then purges the namespace (also after a failure).
async fn with_cache(test: impl AsyncFnOnce(&RedisCache, &str)) {
    let prefix = unique_prefix();
    let cache = namespaced(&prefix).await;
    let closing = prefix.clone();
    Backend::real(Arc::new(cache.clone()), move || {
        Box::pin(async move { purge(&closing).await })
    })
    .run(async |_| test(&cache, &prefix).await)
    .await;
}

#[tokio::test]
async fn keys_are_stored_under_the_spec_names_inside_the_namespace() {
    with_cache(async |cache, prefix| {
        cache
            .push_recent(&keys::metrics_live("checkout"), "p", keys::LIVE_POINTS)
            .await
            .unwrap();
        cache
            .set(&keys::analysis("inc-1"), "a", Some(keys::ANALYSIS_TTL))
            .await
            .unwrap();
        cache
            .set_add(keys::INCIDENTS_ACTIVE, "inc-1")
            .await
            .unwrap();

        let mut conn = raw().await;
        let live: Vec<String> = conn
            .lrange(format!("{prefix}:metrics:live:checkout"), 0, -1)
            .await
            .unwrap();
        assert_eq!(live, vec!["p"]);
        let active: Vec<String> = conn
            .smembers(format!("{prefix}:incidents:active"))
            .await
            .unwrap();
        assert_eq!(active, vec!["inc-1"]);
        let pttl: i64 = conn.pttl(format!("{prefix}:analysis:inc-1")).await.unwrap();
        assert!(
            (3_590_000..=3_600_000).contains(&pttl),
            "analysis TTL is {pttl} ms, expected about an hour"
        );
        let unprefixed: bool = conn.exists("analysis:inc-1").await.unwrap();
        assert!(!unprefixed || prefix.is_empty());
    })
    .await;
}

#[tokio::test]
async fn different_namespaces_do_not_collide() {
    let (a, b) = (unique_prefix(), unique_prefix());
    let cache_a = namespaced(&a).await;
    let cache_b = namespaced(&b).await;
    let key = keys::metrics_agg("checkout", "1m");
    let outcome = async {
        cache_a.set(&key, "from a", None).await.unwrap();
        cache_b.set(&key, "from b", None).await.unwrap();
        cache_a
            .set_add(keys::INCIDENTS_ACTIVE, "inc-a")
            .await
            .unwrap();
        assert_eq!(cache_a.get(&key).await.unwrap().as_deref(), Some("from a"));
        assert_eq!(cache_b.get(&key).await.unwrap().as_deref(), Some("from b"));
        assert!(
            cache_b
                .set_members(keys::INCIDENTS_ACTIVE)
                .await
                .unwrap()
                .is_empty()
        );
        cache_b.delete(&key).await.unwrap();
        assert_eq!(cache_a.get(&key).await.unwrap().as_deref(), Some("from a"));
    };
    use futures::FutureExt as _;
    let outcome = std::panic::AssertUnwindSafe(outcome).catch_unwind().await;
    purge(&a).await;
    purge(&b).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test]
async fn non_utf8_values_are_corrupt_not_a_panic() {
    with_cache(async |cache, prefix| {
        let mut conn = raw().await;
        let bad: &[u8] = &[0xff, 0xfe, b'x'];
        let _: () = conn.set(format!("{prefix}:bad"), bad).await.unwrap();
        let _: () = conn.rpush(format!("{prefix}:badlist"), bad).await.unwrap();
        let _: () = conn.sadd(format!("{prefix}:badset"), bad).await.unwrap();
        for result in [
            cache.get("bad").await.map(|_| ()),
            cache.recent("badlist").await.map(|_| ()),
            cache.set_members("badset").await.map(|_| ()),
        ] {
            assert!(
                matches!(result, Err(CacheError::Corrupt { .. })),
                "{result:?}"
            );
        }
    })
    .await;
}

/// A loopback port nobody listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Runs every operation once and checks each answers `Unavailable` within the bound.
async fn every_operation_is_unavailable(cache: &RedisCache) {
    let key = keys::metrics_live("svc");
    let ops: Vec<(&str, futures::future::BoxFuture<'_, Result<(), CacheError>>)> = vec![
        ("ping", Box::pin(cache.ping())),
        ("push_recent", Box::pin(cache.push_recent(&key, "p", 100))),
        (
            "recent",
            Box::pin(async { cache.recent(&key).await.map(|_| ()) }),
        ),
        ("set", Box::pin(cache.set("k", "v", None))),
        (
            "set with ttl",
            Box::pin(cache.set("k", "v", Some(Duration::from_secs(1)))),
        ),
        ("get", Box::pin(async { cache.get("k").await.map(|_| ()) })),
        ("delete", Box::pin(cache.delete("k"))),
        (
            "set_add",
            Box::pin(cache.set_add(keys::INCIDENTS_ACTIVE, "i")),
        ),
        (
            "set_remove",
            Box::pin(cache.set_remove(keys::INCIDENTS_ACTIVE, "i")),
        ),
        (
            "set_members",
            Box::pin(async { cache.set_members(keys::INCIDENTS_ACTIVE).await.map(|_| ()) }),
        ),
    ];
    for (name, op) in ops {
        let started = Instant::now();
        let result = tokio::time::timeout(Duration::from_secs(5), op)
            .await
            .unwrap_or_else(|_| panic!("{name} hung for 5 s"));
        let took = started.elapsed();
        match result {
            Err(CacheError::Unavailable(reason)) => {
                assert!(took <= OUTAGE_BOUND, "{name} took {took:?} ({reason})")
            }
            other => panic!("{name}: expected Unavailable, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_closed_port_answers_unavailable_fast() {
    let config = RedisConfig::new(format!("redis://127.0.0.1:{}", closed_port()));
    let started = Instant::now();
    // Creating the cache succeeds although nothing listens: the node must start anyway.
    let cache = RedisCache::connect(config).await.unwrap();
    assert!(
        started.elapsed() <= OUTAGE_BOUND,
        "connect took {:?}",
        started.elapsed()
    );
    // Twice: first attempts connect, later ones fail fast until the retry delay is over.
    every_operation_is_unavailable(&cache).await;
    every_operation_is_unavailable(&cache).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    every_operation_is_unavailable(&cache).await;
}

#[tokio::test]
async fn a_silent_server_times_out_as_unavailable() {
    // Accepts connections and never answers (a hung Redis, or a black-holing network).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let config = RedisConfig {
        op_timeout_ms: 200,
        reconnect_delay_ms: 0,
        ..RedisConfig::new(format!("redis://127.0.0.1:{port}"))
    };
    let cache = RedisCache::connect(config).await.unwrap();
    every_operation_is_unavailable(&cache).await;
    holder.abort();
}

#[tokio::test]
async fn connecting_lazily_works_once_redis_is_there() {
    raw().await;
    let prefix = unique_prefix();
    let config = RedisConfig {
        key_prefix: Some(prefix.clone()),
        op_timeout_ms: 2000,
        ..RedisConfig::new(redis_url())
    };
    // `lazy` never touches the network; the first operation connects.
    let cache = RedisCache::lazy(config).unwrap();
    cache.set("k", "v", None).await.unwrap();
    assert_eq!(cache.get("k").await.unwrap().as_deref(), Some("v"));
    purge(&prefix).await;
}
