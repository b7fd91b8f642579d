//! The live cache's behavioural suite, written once and run against every backend, so the
//! in-process cache and Redis cannot drift apart: bounded recent lists, strings with TTLs,
//! sets, kind mismatches, exact round trips and key independence.
//!
//! Most tests are `async fn(&dyn Cache)`; the TTL test also needs to move time, so it takes
//! the whole [`Backend`] (a manual clock for memory, real sleeping for Redis). A test binary
//! instantiates the suite for one backend with [`conformance_tests!`], giving it a factory
//! that makes a fresh, empty, isolated cache.

#![allow(clippy::unwrap_used, dead_code)]

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::BoxFuture;
use sightline_cache::{Cache, CacheError, keys};
use sightline_model::Clock;

/// How long a backend may take to make an expired key disappear (Redis expires lazily on
/// access, so this is generous; the memory backend needs no waiting at all).
const EXPIRY_DEADLINE: Duration = Duration::from_secs(3);

/// A fresh cache under test, with the means to let time pass and to clean up after.
pub struct Backend {
    /// The cache under test.
    pub cache: Arc<dyn Cache>,
    time: Time,
    teardown: Option<Box<dyn FnOnce() -> BoxFuture<'static, ()> + Send>>,
}

enum Time {
    /// Time moves only when the test says so.
    Manual(Clock),
    /// Real time: letting it pass means sleeping.
    Real,
}

impl Backend {
    /// A backend whose time is the manual `clock`.
    pub fn manual(cache: Arc<dyn Cache>, clock: Clock) -> Self {
        Backend {
            cache,
            time: Time::Manual(clock),
            teardown: None,
        }
    }

    /// A backend on real time; `teardown` runs after the test, even a failed one.
    pub fn real(
        cache: Arc<dyn Cache>,
        teardown: impl FnOnce() -> BoxFuture<'static, ()> + Send + 'static,
    ) -> Self {
        Backend {
            cache,
            time: Time::Real,
            teardown: Some(Box::new(teardown)),
        }
    }

    /// Lets `d` pass.
    pub async fn pass(&self, d: Duration) {
        match &self.time {
            Time::Manual(clock) => clock.advance(i64::try_from(d.as_millis()).unwrap()),
            Time::Real => tokio::time::sleep(d).await,
        }
    }

    /// Runs `test`, then the teardown (also when the test panicked), then re-raises.
    pub async fn run(mut self, test: impl AsyncFnOnce(&Backend)) {
        let outcome = AssertUnwindSafe(test(&self)).catch_unwind().await;
        if let Some(teardown) = self.teardown.take() {
            teardown().await;
        }
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

/// Instantiates every conformance test for one backend: `conformance_tests!(name, factory)`
/// where `factory()` is an async fn returning a fresh [`Backend`].
#[macro_export]
macro_rules! conformance_tests {
    ($backend:ident, $factory:ident) => {
        mod $backend {
            $crate::conformance_tests!(@cache super::$factory;
                push_recent_keeps_exactly_the_newest_in_order,
                push_recent_with_zero_keep_removes_the_list,
                recent_of_a_missing_key_is_empty,
                get_set_delete,
                values_round_trip_exactly,
                sets_are_sorted_and_deduplicated,
                removing_the_last_member_removes_the_set,
                wrong_kind_is_an_error_and_changes_nothing,
                set_replaces_any_kind,
                keys_of_different_prefixes_do_not_collide,
                concurrent_pushes_keep_a_consistent_window,
                ping_answers,
            );
            $crate::conformance_tests!(@backend super::$factory;
                ttl_expiry,
                set_without_ttl_drops_an_earlier_ttl,
            );
        }
    };
    (@cache $factory:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                $factory().await.run(async |b| $crate::conformance::$test(&*b.cache).await).await;
            }
        )*
    };
    (@backend $factory:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                $factory().await.run(async |b| $crate::conformance::$test(b).await).await;
            }
        )*
    };
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Waits (bounded) until `key` reads as absent; panics if it never does.
async fn until_absent(cache: &dyn Cache, key: &str) {
    let deadline = tokio::time::Instant::now() + EXPIRY_DEADLINE;
    loop {
        if cache.get(key).await.unwrap().is_none() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "'{key}' still present {EXPIRY_DEADLINE:?} after its TTL"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn push_recent_keeps_exactly_the_newest_in_order(cache: &dyn Cache) {
    let key = keys::metrics_live("checkout");
    // Fewer than `keep`: everything, oldest first.
    for i in 0..3 {
        cache
            .push_recent(&key, &format!("p{i}"), keys::LIVE_POINTS)
            .await
            .unwrap();
    }
    assert_eq!(
        cache.recent(&key).await.unwrap(),
        strings(&["p0", "p1", "p2"])
    );

    for i in 3..250 {
        cache
            .push_recent(&key, &format!("p{i}"), keys::LIVE_POINTS)
            .await
            .unwrap();
    }
    let expected: Vec<String> = (150..250).map(|i| format!("p{i}")).collect();
    let got = cache.recent(&key).await.unwrap();
    assert_eq!(got.len(), keys::LIVE_POINTS);
    assert_eq!(got, expected);

    // A smaller `keep` trims the existing list down to it.
    cache.push_recent(&key, "last", 2).await.unwrap();
    assert_eq!(
        cache.recent(&key).await.unwrap(),
        strings(&["p249", "last"])
    );
}

pub async fn push_recent_with_zero_keep_removes_the_list(cache: &dyn Cache) {
    let key = keys::metrics_live("zero");
    cache.push_recent(&key, "a", 10).await.unwrap();
    cache.push_recent(&key, "b", 0).await.unwrap();
    assert!(cache.recent(&key).await.unwrap().is_empty());
    // The key is gone, so it can be reused as a string.
    cache.set(&key, "s", None).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some("s"));
}

pub async fn recent_of_a_missing_key_is_empty(cache: &dyn Cache) {
    assert!(
        cache
            .recent(&keys::metrics_live("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn get_set_delete(cache: &dyn Cache) {
    let key = keys::metrics_agg("checkout", "1m");
    assert_eq!(cache.get(&key).await.unwrap(), None);
    cache.set(&key, r#"{"p99":12.5}"#, None).await.unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap().as_deref(),
        Some(r#"{"p99":12.5}"#)
    );
    cache.set(&key, r#"{"p99":13}"#, None).await.unwrap();
    assert_eq!(
        cache.get(&key).await.unwrap().as_deref(),
        Some(r#"{"p99":13}"#)
    );
    cache.delete(&key).await.unwrap();
    assert_eq!(cache.get(&key).await.unwrap(), None);
    // Deleting what is not there is fine.
    cache.delete(&key).await.unwrap();
    cache.delete(keys::INCIDENTS_ACTIVE).await.unwrap();
}

pub async fn values_round_trip_exactly(cache: &dyn Cache) {
    let values = [
        String::new(),
        "line one\nline two\r\n\ttabbed \"quoted\" \\ back".to_string(),
        "ünïcødé ✓ 日本語 🚀".to_string(),
        "\u{0}nul inside".to_string(),
        "x".repeat(200_000),
    ];
    for (i, v) in values.iter().enumerate() {
        let key = keys::analysis(&format!("inc-{i}"));
        cache.set(&key, v, Some(keys::ANALYSIS_TTL)).await.unwrap();
        assert_eq!(
            cache.get(&key).await.unwrap().as_ref(),
            Some(v),
            "value {i}"
        );
    }
    let live = keys::metrics_live("roundtrip");
    for v in &values {
        cache
            .push_recent(&live, v, keys::LIVE_POINTS)
            .await
            .unwrap();
    }
    assert_eq!(cache.recent(&live).await.unwrap(), values.to_vec());
    for v in &values {
        cache.set_add(keys::INCIDENTS_ACTIVE, v).await.unwrap();
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    assert_eq!(
        cache.set_members(keys::INCIDENTS_ACTIVE).await.unwrap(),
        sorted
    );
}

pub async fn sets_are_sorted_and_deduplicated(cache: &dyn Cache) {
    let key = keys::INCIDENTS_ACTIVE;
    assert!(cache.set_members(key).await.unwrap().is_empty());
    for id in ["inc-c", "inc-a", "inc-b", "inc-a", "Z-upper", "é-accent"] {
        cache.set_add(key, id).await.unwrap();
    }
    // Bytewise order: uppercase before lowercase, multi-byte UTF-8 last.
    assert_eq!(
        cache.set_members(key).await.unwrap(),
        strings(&["Z-upper", "inc-a", "inc-b", "inc-c", "é-accent"])
    );
    cache.set_remove(key, "inc-b").await.unwrap();
    cache.set_remove(key, "not-a-member").await.unwrap();
    assert_eq!(
        cache.set_members(key).await.unwrap(),
        strings(&["Z-upper", "inc-a", "inc-c", "é-accent"])
    );
    // Removing from a missing set is fine and creates nothing.
    cache.set_remove("incidents:none", "x").await.unwrap();
    assert!(
        cache
            .set_members("incidents:none")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn removing_the_last_member_removes_the_set(cache: &dyn Cache) {
    let key = keys::INCIDENTS_ACTIVE;
    cache.set_add(key, "inc-1").await.unwrap();
    cache.set_remove(key, "inc-1").await.unwrap();
    assert!(cache.set_members(key).await.unwrap().is_empty());
    // The key no longer exists: it can hold a string now.
    cache.set(key, "s", None).await.unwrap();
    assert_eq!(cache.get(key).await.unwrap().as_deref(), Some("s"));
}

fn assert_wrong_type<T: std::fmt::Debug>(result: Result<T, CacheError>, what: &str) {
    match result {
        Err(CacheError::WrongType { .. }) => {}
        other => panic!("{what}: expected WrongType, got {other:?}"),
    }
}

pub async fn wrong_kind_is_an_error_and_changes_nothing(cache: &dyn Cache) {
    let string = keys::metrics_agg("svc", "5m");
    let list = keys::metrics_live("svc");
    let set = keys::INCIDENTS_ACTIVE;
    cache.set(&string, "rollup", None).await.unwrap();
    cache.push_recent(&list, "point", 10).await.unwrap();
    cache.set_add(set, "inc-1").await.unwrap();

    assert_wrong_type(
        cache.push_recent(&string, "x", 10).await,
        "push onto a string",
    );
    assert_wrong_type(cache.recent(&string).await, "recent of a string");
    assert_wrong_type(cache.set_add(&string, "x").await, "set_add to a string");
    assert_wrong_type(cache.set_members(&string).await, "members of a string");
    assert_wrong_type(cache.get(&list).await, "get of a list");
    assert_wrong_type(cache.set_add(&list, "x").await, "set_add to a list");
    assert_wrong_type(cache.set_remove(&list, "x").await, "set_remove from a list");
    assert_wrong_type(cache.get(set).await, "get of a set");
    assert_wrong_type(cache.push_recent(set, "x", 10).await, "push onto a set");

    assert_eq!(cache.get(&string).await.unwrap().as_deref(), Some("rollup"));
    assert_eq!(cache.recent(&list).await.unwrap(), strings(&["point"]));
    assert_eq!(cache.set_members(set).await.unwrap(), strings(&["inc-1"]));
}

pub async fn set_replaces_any_kind(cache: &dyn Cache) {
    let list = keys::metrics_live("replaced");
    let set = "incidents:replaced";
    cache.push_recent(&list, "p", 10).await.unwrap();
    cache.set_add(set, "m").await.unwrap();
    cache.set(&list, "now a string", None).await.unwrap();
    cache.set(set, "also a string", None).await.unwrap();
    assert_eq!(
        cache.get(&list).await.unwrap().as_deref(),
        Some("now a string")
    );
    assert_eq!(
        cache.get(set).await.unwrap().as_deref(),
        Some("also a string")
    );
    // And delete removes any kind.
    cache.push_recent("list:other", "p", 10).await.unwrap();
    cache.delete("list:other").await.unwrap();
    assert!(cache.recent("list:other").await.unwrap().is_empty());
}

pub async fn keys_of_different_prefixes_do_not_collide(cache: &dyn Cache) {
    // The same name under each key family, and near-miss names within one family.
    let id = "checkout";
    let agg_1m = keys::metrics_agg(id, "1m");
    let agg_5m = keys::metrics_agg(id, "5m");
    let agg_other = keys::metrics_agg("checkout2", "1m");
    let analysis = keys::analysis(id);
    let live = keys::metrics_live(id);
    let live_other = keys::metrics_live("checkout2");
    let all = [&agg_1m, &agg_5m, &agg_other, &analysis, &live, &live_other];
    let distinct: std::collections::BTreeSet<_> = all.iter().collect();
    assert_eq!(distinct.len(), all.len(), "key builders collide: {all:?}");

    cache.set(&agg_1m, "a1", None).await.unwrap();
    cache.set(&agg_5m, "a5", None).await.unwrap();
    cache.set(&agg_other, "a-other", None).await.unwrap();
    cache
        .set(&analysis, "an", Some(keys::ANALYSIS_TTL))
        .await
        .unwrap();
    cache
        .push_recent(&live, "l", keys::LIVE_POINTS)
        .await
        .unwrap();
    cache
        .push_recent(&live_other, "l-other", keys::LIVE_POINTS)
        .await
        .unwrap();
    cache.set_add(keys::INCIDENTS_ACTIVE, id).await.unwrap();

    assert_eq!(cache.get(&agg_1m).await.unwrap().as_deref(), Some("a1"));
    assert_eq!(cache.get(&agg_5m).await.unwrap().as_deref(), Some("a5"));
    assert_eq!(
        cache.get(&agg_other).await.unwrap().as_deref(),
        Some("a-other")
    );
    assert_eq!(cache.get(&analysis).await.unwrap().as_deref(), Some("an"));
    assert_eq!(cache.recent(&live).await.unwrap(), strings(&["l"]));
    assert_eq!(
        cache.recent(&live_other).await.unwrap(),
        strings(&["l-other"])
    );
    assert_eq!(
        cache.set_members(keys::INCIDENTS_ACTIVE).await.unwrap(),
        strings(&[id])
    );

    cache.delete(&agg_1m).await.unwrap();
    assert_eq!(cache.get(&agg_5m).await.unwrap().as_deref(), Some("a5"));
    assert_eq!(cache.get(&analysis).await.unwrap().as_deref(), Some("an"));
}

pub async fn concurrent_pushes_keep_a_consistent_window(cache: &dyn Cache) {
    let key = keys::metrics_live("busy");
    let writers = 8;
    let per_writer = 40;
    futures::future::join_all((0..writers).map(|w| {
        let key = &key;
        async move {
            for i in 0..per_writer {
                cache
                    .push_recent(key, &format!("{w}:{i}"), keys::LIVE_POINTS)
                    .await
                    .unwrap();
            }
        }
    }))
    .await;
    let got = cache.recent(&key).await.unwrap();
    assert_eq!(got.len(), keys::LIVE_POINTS);
    // The window is the newest 100 of one global order: a writer's points in it are the
    // tail of what it wrote, in order (if anything of it survived at all).
    for w in 0..writers {
        let mine: Vec<u32> = got
            .iter()
            .filter_map(|p| p.strip_prefix(&format!("{w}:")))
            .map(|i| i.parse().unwrap())
            .collect();
        if let Some(&first) = mine.first() {
            let tail: Vec<u32> = (first..per_writer).collect();
            assert_eq!(mine, tail, "writer {w}");
        }
    }
}

pub async fn ping_answers(cache: &dyn Cache) {
    cache.ping().await.unwrap();
}

pub async fn ttl_expiry(b: &Backend) {
    let cache = &*b.cache;
    let ttl = Duration::from_millis(200);
    let short = keys::analysis("short-lived");
    let long = keys::analysis("long-lived");
    let forever = keys::metrics_agg("svc", "1m");
    cache.set(&short, "s", Some(ttl)).await.unwrap();
    cache
        .set(&long, "l", Some(keys::ANALYSIS_TTL))
        .await
        .unwrap();
    cache.set(&forever, "f", None).await.unwrap();
    assert_eq!(cache.get(&short).await.unwrap().as_deref(), Some("s"));

    b.pass(ttl).await;
    until_absent(cache, &short).await;
    assert_eq!(cache.get(&long).await.unwrap().as_deref(), Some("l"));
    assert_eq!(cache.get(&forever).await.unwrap().as_deref(), Some("f"));

    // An expired key is gone for every purpose: it can be re-created as another kind.
    cache.push_recent(&short, "p", 10).await.unwrap();
    assert_eq!(cache.recent(&short).await.unwrap(), strings(&["p"]));

    // A zero TTL removes the key at once.
    cache
        .set(&forever, "gone", Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(cache.get(&forever).await.unwrap(), None);
}

pub async fn set_without_ttl_drops_an_earlier_ttl(b: &Backend) {
    let cache = &*b.cache;
    let key = keys::analysis("kept");
    cache
        .set(&key, "v1", Some(Duration::from_millis(200)))
        .await
        .unwrap();
    cache.set(&key, "v2", None).await.unwrap();
    b.pass(Duration::from_millis(400)).await;
    assert_eq!(cache.get(&key).await.unwrap().as_deref(), Some("v2"));
}
