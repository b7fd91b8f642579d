//! Evaluating compiled conditions allocates nothing per event: measured with a counting
//! global allocator in this dedicated test binary. It runs without the libtest harness
//! (`harness = false`): the harness's own threads allocate now and then, and the counter is
//! process-wide, so only a single-threaded binary measures exactly the code under test.

#![allow(clippy::unwrap_used)]

use serde_json::json;
use sightline_model::{AppliesTo, Event, TriggerRule, TriggerRuleSpec};
use sightline_respond::{CompiledRule, Condition, RuleSet, Subject};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<std::alloc::System> = &INSTRUMENTED_SYSTEM;

fn event(i: u64) -> Subject {
    let e: Event = serde_json::from_value(json!({
        "event_id": format!("ev-{i}"), "service_name": format!("svc{}", i % 7),
        "event_type": if i.is_multiple_of(2) { "THRESHOLD_BREACH" } else { "ERROR" },
        "timestamp": 1_700_000_000_000i64, "environment": "PRODUCTION",
        "details": "CPU above limit on web-1", "severity": if i.is_multiple_of(3) { "critical" } else { "low" },
        "metadata": {"cpu_usage": 80 + (i % 20), "region": "eu-west-1", "list": ["a", "b"],
                     "nested": {"x": {"y": i}}, "seen": "2023-11-14T22:13:20Z"},
        "source": "prometheus", "source_type": "webhook", "host": "web-1",
        "tags": {"team": "payments"}, "fingerprint": "fp", "correlation_id": "c",
        "received_at": 1_700_000_000_000i64
    }))
    .unwrap();
    Subject::Event(Box::new(e))
}

fn main() {
    evaluation_allocates_nothing_per_event();
    eprintln!("no_alloc: evaluation allocates nothing per event: ok");
}

fn evaluation_allocates_nothing_per_event() {
    let docs = [
        json!({"event_type": "threshold_breach", "severity": ["critical","high"], "metadata.cpu_usage": {"$gt": 90}}),
        json!({"$or": [{"details": {"$regex": "(?i)cpu\\s+above"}}, {"host": {"$startswith": "db"}}]}),
        json!({"$not": {"metadata.nested.x.y": {"$in": [1, 2, 3]}}, "tags.team": {"$endswith": "ments"}}),
        json!({"metadata.list": {"$contains": "b"}, "tags": {"$contains": "team"}, "metadata.gone": {"$exists": false}}),
        json!({"timestamp": {"$timediff_lt": 3600}, "metadata.seen": {"$timediff_gt": 1}, "severity": {"$gte": "medium"}}),
        json!({"metadata.region": {"$nin": ["us-east-1"], "$ne": "x", "$contains": "west"}, "environment": "production"}),
    ];
    let conditions: Vec<Condition> = docs
        .iter()
        .map(|d| Condition::compile(AppliesTo::Events, d).unwrap())
        .collect();
    let events: Vec<Subject> = (0..64).map(event).collect();
    let now = 1_700_000_600_000;
    // Warm-up: the regex engine fills its per-thread scratch cache on first use.
    let mut hits = 0u64;
    for c in &conditions {
        for e in &events {
            hits += u64::from(c.matches(e, now));
        }
    }
    let region = Region::new(GLOBAL);
    let mut measured = 0u64;
    for _ in 0..100 {
        for c in &conditions {
            for e in &events {
                measured += u64::from(c.matches(e, now));
            }
        }
    }
    let stats = region.change();
    assert_eq!(measured, hits * 100);
    assert!(hits > 0, "the workload must match something");
    assert_eq!(stats.allocations, 0, "{stats:?}");
    assert_eq!(stats.reallocations, 0, "{stats:?}");

    // The rule set's index walk and non-matching evaluations allocate nothing either
    // (a match allocates its group key; a firing its Firing).
    let spec: TriggerRuleSpec = serde_json::from_value(json!({
        "name": "n", "applies_to": "events",
        "conditions": {"event_type": "threshold_breach", "metadata.cpu_usage": {"$gt": 1000}}
    }))
    .unwrap();
    let rule = TriggerRule::from_spec(spec.validate().unwrap(), "r".into(), "t".into(), 0, 0);
    let mut set = RuleSet::new(vec![CompiledRule::compile(rule).unwrap()]);
    let mut out = Vec::new();
    for e in &events {
        set.observe(e, now, &mut out);
    }
    let region = Region::new(GLOBAL);
    for e in &events {
        set.observe(e, now, &mut out);
    }
    let stats = region.change();
    assert!(out.is_empty());
    assert_eq!(stats.allocations, 0, "{stats:?}");
}
