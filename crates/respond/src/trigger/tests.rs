//! Windows, throttles, indexing and state with a controllable clock.

use serde_json::{Value, json};
use sightline_model::{Clock, Event, TriggerRule, TriggerRuleSpec};

use super::*;

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn rule(id: &str, v: Value) -> CompiledRule {
    let mut doc = json!({"name": id, "applies_to": "events", "conditions": {}});
    for (k, x) in v.as_object().unwrap() {
        doc[k] = x.clone();
    }
    let spec: TriggerRuleSpec = serde_json::from_value(doc).unwrap();
    let r = TriggerRule::from_spec(spec.validate().unwrap(), id.into(), "test".into(), T0, T0);
    CompiledRule::compile(r).unwrap()
}

fn ev(id: &str, service: &str, ty: &str, host: &str) -> Subject {
    let e: Event = serde_json::from_value(json!({
        "event_id": id, "service_name": service, "event_type": ty, "timestamp": T0,
        "environment": "PRODUCTION", "details": "", "severity": "high", "metadata": {"n": 1},
        "source": "t", "source_type": "http", "host": host, "tags": {}, "fingerprint": "f",
        "correlation_id": "c", "received_at": T0
    }))
    .unwrap();
    Subject::Event(Box::new(e))
}

fn fire(set: &mut RuleSet, s: &Subject, clock: &Clock) -> Vec<Firing> {
    let mut out = Vec::new();
    set.observe(s, clock.now_ms(), &mut out);
    out
}

#[test]
fn every_match_fires_without_window_or_throttle() {
    let clock = Clock::manual(T0);
    let mut set = RuleSet::new(vec![rule(
        "r",
        json!({"conditions": {"event_type": "error"}, "response_template_id": "restart"}),
    )]);
    let f = fire(&mut set, &ev("e1", "api", "ERROR", "h"), &clock);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule_id, "r");
    assert_eq!(f[0].response_template_id.as_deref(), Some("restart"));
    assert_eq!(f[0].group_key, "");
    assert_eq!(f[0].match_count, 1);
    assert_eq!(f[0].fired_at, T0);
    assert!(fire(&mut set, &ev("e2", "api", "INFO", "h"), &clock).is_empty());
    assert_eq!(
        fire(&mut set, &ev("e3", "api", "ERROR", "h"), &clock).len(),
        1
    );
}

#[test]
fn count_window_fires_on_the_nth_match_per_group_within_the_window() {
    let clock = Clock::manual(T0);
    let mut set = RuleSet::new(vec![rule(
        "r",
        json!({"conditions": {"event_type": "error"}, "time_window_minutes": 10,
               "threshold_count": 3, "group_by": ["service_name", "host"]}),
    )]);
    // Two matches for api|a, then one spaced out beyond the window: no firing.
    assert!(fire(&mut set, &ev("1", "api", "ERROR", "a"), &clock).is_empty());
    clock.advance(5 * MIN);
    assert!(fire(&mut set, &ev("2", "api", "ERROR", "a"), &clock).is_empty());
    // Another group does not count towards api|a.
    assert!(fire(&mut set, &ev("x", "db", "ERROR", "a"), &clock).is_empty());
    clock.advance(5 * MIN); // the first match is now exactly 10 minutes old: out
    assert!(fire(&mut set, &ev("3", "api", "ERROR", "a"), &clock).is_empty());
    clock.advance(MIN);
    let f = fire(&mut set, &ev("4", "api", "ERROR", "a"), &clock);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].group_key, "api|a");
    assert_eq!(f[0].match_count, 3);
    // The window starts afresh after firing.
    assert!(fire(&mut set, &ev("5", "api", "ERROR", "a"), &clock).is_empty());
}

#[test]
fn once_within_suppresses_for_a_fixed_period_after_a_firing() {
    let clock = Clock::manual(T0);
    let mut set = RuleSet::new(vec![rule(
        "r",
        json!({"group_by": ["service_name"], "throttle": {"mode": "once_within", "minutes": 30}}),
    )]);
    assert_eq!(fire(&mut set, &ev("1", "api", "E", "h"), &clock).len(), 1);
    // Another group is not throttled by api's firing.
    assert_eq!(fire(&mut set, &ev("2", "db", "E", "h"), &clock).len(), 1);
    for _ in 0..29 {
        clock.advance(MIN);
        assert!(fire(&mut set, &ev("3", "api", "E", "h"), &clock).is_empty());
    }
    clock.advance(MIN); // 30 minutes after the firing, however many matches in between
    assert_eq!(fire(&mut set, &ev("4", "api", "E", "h"), &clock).len(), 1);
    assert_eq!(set.stats().throttled, 29);
}

#[test]
fn once_after_fires_again_only_after_a_quiet_period() {
    let clock = Clock::manual(T0);
    let mut set = RuleSet::new(vec![rule(
        "r",
        json!({"throttle": {"mode": "once_after", "minutes": 10}}),
    )]);
    assert_eq!(fire(&mut set, &ev("1", "api", "E", "h"), &clock).len(), 1);
    // A match every 5 minutes for an hour keeps it quiet (each restarts the period).
    for _ in 0..12 {
        clock.advance(5 * MIN);
        assert!(fire(&mut set, &ev("2", "api", "E", "h"), &clock).is_empty());
    }
    clock.advance(10 * MIN);
    assert_eq!(fire(&mut set, &ev("3", "api", "E", "h"), &clock).len(), 1);
}

#[test]
fn max_triggers_per_hour_is_a_rolling_cap_per_group() {
    let clock = Clock::manual(T0);
    let mut set = RuleSet::new(vec![rule(
        "r",
        json!({"group_by": ["host"], "max_triggers_per_hour": 3}),
    )]);
    let mut fired = 0;
    for _ in 0..10 {
        fired += fire(&mut set, &ev("1", "api", "E", "a"), &clock).len();
        clock.advance(MIN);
    }
    assert_eq!(fired, 3);
    assert_eq!(fire(&mut set, &ev("1", "api", "E", "b"), &clock).len(), 1);
    clock.advance(T0 + 60 * MIN - clock.now_ms()); // the first firing leaves the rolling hour
    assert_eq!(fire(&mut set, &ev("1", "api", "E", "a"), &clock).len(), 1);
    assert!(fire(&mut set, &ev("1", "api", "E", "a"), &clock).is_empty());
}

#[test]
fn severity_threshold_filters_before_the_condition() {
    let clock = Clock::manual(T0);
    let mut set = RuleSet::new(vec![rule("r", json!({"severity_threshold": "critical"}))]);
    assert!(fire(&mut set, &ev("1", "api", "E", "a"), &clock).is_empty());
    let mut set = RuleSet::new(vec![rule("r", json!({"severity_threshold": "medium"}))]);
    assert_eq!(fire(&mut set, &ev("1", "api", "E", "a"), &clock).len(), 1);
}

#[test]
fn firing_ids_are_deterministic_per_rule_group_and_subject() {
    let clock = Clock::manual(T0);
    let r = || rule("r", json!({"group_by": ["service_name"]}));
    let mut a = RuleSet::new(vec![r()]);
    let mut b = RuleSet::new(vec![r()]);
    let e1 = ev("1", "api", "E", "a");
    let fa = fire(&mut a, &e1, &clock);
    clock.advance(MIN); // another processing time, same input
    let fb = fire(&mut b, &e1, &clock);
    assert_eq!(fa[0].id, fb[0].id);
    assert!(fa[0].id.starts_with("fr-"));
    let f2 = fire(&mut a, &ev("2", "api", "E", "a"), &clock);
    assert_ne!(fa[0].id, f2[0].id);
}

#[test]
fn the_index_evaluates_only_rules_that_can_match() {
    let clock = Clock::manual(T0);
    let mut rules = Vec::new();
    for i in 0..100 {
        rules.push(rule(
            &format!("t{i:03}"),
            json!({"conditions": {"event_type": format!("T{i}")}}),
        ));
    }
    for i in 0..50 {
        rules.push(rule(
            &format!("s{i:03}"),
            json!({"conditions": {"service_name": format!("svc{i}"), "host": "a"}}),
        ));
    }
    rules.push(rule(
        "any",
        json!({"conditions": {"$or": [{"host": "a"}, {"host": "b"}]}}),
    ));
    rules.push(rule("inactive", json!({"active": false})));
    let mut set = RuleSet::new(rules);
    assert_eq!(set.rules().len(), 151);
    let f = fire(&mut set, &ev("1", "svc7", "T42", "a"), &clock);
    let ids: Vec<&str> = f.iter().map(|f| f.rule_id.as_str()).collect();
    assert_eq!(ids, ["t042", "s007", "any"]);
    let st = set.stats();
    assert_eq!(
        (st.considered, st.evaluations, st.matches, st.firings),
        (151, 3, 3, 3)
    );
    // An unindexed type still reaches the catch-all rule.
    assert_eq!(
        fire(&mut set, &ev("2", "nobody", "OTHER", "b"), &clock).len(),
        1
    );
    assert_eq!(set.stats().evaluations, 4);
}

#[test]
fn state_survives_a_checkpoint_and_is_dropped_when_the_rule_changes() {
    let clock = Clock::manual(T0);
    let spec = json!({"time_window_minutes": 10, "threshold_count": 2, "group_by": ["host"]});
    let mut a = RuleSet::new(vec![rule("r", spec.clone())]);
    assert!(fire(&mut a, &ev("1", "api", "E", "h"), &clock).is_empty());
    let saved = serde_json::to_string(&a.state(clock.now_ms())).unwrap();

    // A restarted engine with the checkpoint fires on the second match.
    let mut b = RuleSet::new(vec![rule("r", spec.clone())]);
    b.restore(serde_json::from_str(&saved).unwrap());
    clock.advance(MIN);
    assert_eq!(fire(&mut b, &ev("2", "api", "E", "h"), &clock).len(), 1);

    // A changed rule (new updated_at) starts afresh.
    let mut changed = rule("r", spec.clone());
    changed.rule.updated_at += 1;
    let mut c = RuleSet::new(vec![changed]);
    c.restore(serde_json::from_str(&saved).unwrap());
    assert!(fire(&mut c, &ev("2", "api", "E", "h"), &clock).is_empty());

    // Reloading unchanged rules keeps the state; expired groups are pruned.
    let mut d = RuleSet::new(vec![rule("r", spec.clone())]);
    assert!(fire(&mut d, &ev("1", "api", "E", "h"), &clock).is_empty());
    d.replace_rules(vec![rule("r", spec)]);
    assert_eq!(fire(&mut d, &ev("2", "api", "E", "h"), &clock).len(), 1);
    assert!(fire(&mut d, &ev("3", "api", "E", "h"), &clock).is_empty());
    assert_eq!(d.state(clock.now_ms()).rules.len(), 1);
    assert!(d.state(clock.now_ms() + 10 * MIN).rules.is_empty());
}

#[test]
fn group_by_paths_are_checked_at_compile_time() {
    let spec: TriggerRuleSpec = serde_json::from_value(json!({
        "name": "x", "applies_to": "anomalies", "conditions": {}, "group_by": ["service_name", "host"]
    }))
    .unwrap();
    let r = TriggerRule::from_spec(spec.validate().unwrap(), "r".into(), "t".into(), 0, 0);
    match CompiledRule::compile(r) {
        Err(RespondError::Invalid { path, .. }) => assert_eq!(path, "group_by[1]"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn backtest_replays_history_in_time_order_without_side_effects() {
    let spec = json!({"conditions": {"event_type": "error"}, "time_window_minutes": 10,
                      "threshold_count": 2, "group_by": ["service_name"],
                      "response_template_id": "restart", "active": false});
    let at = |id: &str, svc: &str, ty: &str, t: i64| {
        let mut s = ev(id, svc, ty, "h");
        if let Subject::Event(e) = &mut s {
            e.timestamp = t;
        }
        s
    };
    // Given newest first, as the store pages them.
    let history = vec![
        at("5", "api", "ERROR", T0 + 30 * MIN),
        at("4", "api", "ERROR", T0 + 21 * MIN),
        at("3", "db", "ERROR", T0 + 2 * MIN),
        at("2", "api", "INFO", T0 + MIN),
        at("1", "api", "ERROR", T0),
        at("0", "api", "ERROR", T0 + 90_000),
    ];
    let report = backtest(rule("r", spec), history);
    assert_eq!(report.scanned, 6);
    assert_eq!(report.matches, 5);
    assert_eq!(report.firings, 2);
    assert_eq!(report.by_group.get("api"), Some(&2));
    let ids: Vec<(&str, i64)> = report
        .listed
        .iter()
        .map(|f| (f.subject_id.as_str(), f.at))
        .collect();
    assert_eq!(ids, [("0", T0 + 90_000), ("5", T0 + 30 * MIN)]);
    assert_eq!(
        report.listed[0].response_template_id.as_deref(),
        Some("restart")
    );
    assert_eq!(report.listed[0].subject_kind, "event");
}
