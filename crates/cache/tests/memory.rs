//! Behaviour of `MemoryCache`: the shared conformance suite (on a manual clock, so TTLs are
//! tested without sleeping), plus what only the in-process cache has: exact TTL
//! boundaries, lazy removal of expired keys and the `max_keys` bound with its eviction
//! order.

#![allow(clippy::unwrap_used)]

#[macro_use]
mod conformance;

use std::sync::Arc;
use std::time::Duration;

use conformance::Backend;
use sightline_cache::{Cache, MemoryCache, MemoryConfig, keys};
use sightline_model::Clock;

const START_MS: i64 = 1_700_000_000_000;

async fn memory_backend() -> Backend {
    let clock = Clock::manual(START_MS);
    let cache = MemoryCache::new(MemoryConfig::default(), clock.clone());
    Backend::manual(Arc::new(cache), clock)
}

conformance_tests!(memory, memory_backend);

fn cache_with(max_keys: usize) -> (MemoryCache, Clock) {
    let clock = Clock::manual(START_MS);
    (
        MemoryCache::new(MemoryConfig { max_keys }, clock.clone()),
        clock,
    )
}

#[tokio::test]
async fn ttl_boundary_is_exact_and_expired_keys_are_removed_on_read() {
    let (cache, clock) = cache_with(100);
    let key = keys::analysis("inc-1");
    cache
        .set(&key, "a", Some(Duration::from_millis(1000)))
        .await
        .unwrap();
    clock.advance(999);
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some("a"));
    assert_eq!(cache.len(), 1);
    clock.advance(1);
    assert_eq!(cache.get(&key).await.unwrap(), None);
    assert_eq!(
        cache.len(),
        0,
        "an expired key read as absent is also removed"
    );
}

#[tokio::test]
async fn sub_millisecond_ttl_still_expires() {
    let (cache, clock) = cache_with(100);
    cache
        .set("k", "v", Some(Duration::from_micros(10)))
        .await
        .unwrap();
    clock.advance(1);
    assert_eq!(cache.get("k").await.unwrap(), None);
}

#[tokio::test]
async fn sweep_removes_expired_keys_nobody_reads() {
    let (cache, clock) = cache_with(100);
    for i in 0..10 {
        cache
            .set(
                &keys::analysis(&i.to_string()),
                "a",
                Some(keys::ANALYSIS_TTL),
            )
            .await
            .unwrap();
    }
    cache.set("stays", "s", None).await.unwrap();
    clock.advance(i64::try_from(keys::ANALYSIS_TTL.as_millis()).unwrap());
    assert_eq!(cache.sweep_expired(), 10);
    assert_eq!(cache.len(), 1);
}

#[tokio::test]
async fn max_keys_bounds_the_cache_and_evicts_the_least_recently_written() {
    let (cache, _clock) = cache_with(10);
    for i in 0..100 {
        let key = format!("k{i:03}");
        match i % 3 {
            0 => cache.set(&key, "v", None).await.unwrap(),
            1 => cache
                .push_recent(&key, "v", keys::LIVE_POINTS)
                .await
                .unwrap(),
            _ => cache.set_add(&key, "v").await.unwrap(),
        }
        assert!(cache.len() <= 10, "{} keys after {i} inserts", cache.len());
    }
    assert_eq!(cache.len(), 10);
    // The newest ten survive; everything older was evicted.
    for i in 90..100 {
        let key = format!("k{i:03}");
        let present = match i % 3 {
            0 => cache.get(&key).await.unwrap().is_some(),
            1 => !cache.recent(&key).await.unwrap().is_empty(),
            _ => !cache.set_members(&key).await.unwrap().is_empty(),
        };
        assert!(present, "{key} was evicted");
    }
    assert_eq!(cache.get("k000").await.unwrap(), None);
    assert_eq!(cache.get("k087").await.unwrap(), None);
}

#[tokio::test]
async fn a_rewrite_makes_a_key_recent_again() {
    let (cache, _clock) = cache_with(2);
    cache.set("a", "1", None).await.unwrap();
    cache.set("b", "1", None).await.unwrap();
    cache.set("a", "2", None).await.unwrap();
    cache.set("c", "1", None).await.unwrap();
    assert_eq!(cache.get("a").await.unwrap().as_deref(), Some("2"));
    assert_eq!(cache.get("b").await.unwrap(), None);
    assert_eq!(cache.get("c").await.unwrap().as_deref(), Some("1"));
}

#[tokio::test]
async fn expired_keys_are_evicted_before_live_ones() {
    let (cache, clock) = cache_with(3);
    cache.set("old-live", "v", None).await.unwrap();
    cache
        .set("expiring", "v", Some(Duration::from_millis(10)))
        .await
        .unwrap();
    cache.set("newer-live", "v", None).await.unwrap();
    clock.advance(20);
    cache.set("new", "v", None).await.unwrap();
    assert_eq!(cache.len(), 3);
    assert!(cache.get("old-live").await.unwrap().is_some());
    assert!(cache.get("newer-live").await.unwrap().is_some());
    assert!(cache.get("new").await.unwrap().is_some());
}

#[tokio::test]
async fn updating_existing_keys_never_evicts() {
    let (cache, _clock) = cache_with(3);
    for k in ["a", "b", "c"] {
        cache.push_recent(k, "0", 5).await.unwrap();
    }
    for i in 1..50 {
        for k in ["a", "b", "c"] {
            cache.push_recent(k, &i.to_string(), 5).await.unwrap();
        }
    }
    for k in ["a", "b", "c"] {
        assert_eq!(
            cache.recent(k).await.unwrap(),
            vec!["45", "46", "47", "48", "49"]
        );
    }
}

#[tokio::test]
async fn a_failed_operation_keeps_the_key_counted() {
    let (cache, _clock) = cache_with(10);
    cache.set("s", "v", None).await.unwrap();
    assert!(cache.push_recent("s", "x", 5).await.is_err());
    assert_eq!(cache.len(), 1);
    cache.delete("s").await.unwrap();
    assert!(cache.is_empty());
}

#[tokio::test]
async fn many_tasks_stay_within_the_bound() {
    let (cache, _clock) = cache_with(50);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let cache = cache.clone();
            tokio::spawn(async move {
                for i in 0..500 {
                    cache.set(&format!("t{t}-{i}"), "v", None).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    assert!(cache.len() <= 50, "{} keys", cache.len());
}
