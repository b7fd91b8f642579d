//! The workload of `sightline bench rules`: a realistic mix of trigger rules over a
//! generated event stream, evaluated on one thread.
//!
//! Rules (of `rules` in all): 80% event rules filed under an `event_type` (with severity
//! lists, metadata comparisons, tag and text tests, some regular expressions, some
//! `$or`/`$not`, a third with count windows and throttles), 12% event rules filed under a
//! `service_name` only, 3% unindexed event rules (evaluated for every event), and 5%
//! rules over anomalies and incidents (never considered for events).
//!
//! Counting: a **rule-evaluation** is one active event rule considered for one event —
//! `events × event rules`, what a rule set without an index would evaluate; the index
//! settles most of them by a hash lookup. **Conditions evaluated** counts the index's
//! candidates, whose conditions actually ran. Both are reported.

use std::fmt;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};
use sightline_model::{AppliesTo, Event, Severity, SourceType, TriggerRule};

use super::{CompiledRule, RuleSet};
use crate::Subject;

/// Parameters of the benchmark.
#[derive(Debug, Clone, Copy)]
pub struct RulesBenchParams {
    /// Active rules.
    pub rules: usize,
    /// Events in the stream.
    pub events: usize,
    /// Seed of the generator (same seed, same workload).
    pub seed: u64,
}

/// What the benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct RulesBenchReport {
    /// Active rules.
    pub rules: usize,
    /// Of which over events.
    pub event_rules: u64,
    /// Events evaluated.
    pub events: u64,
    /// Wall-clock seconds of the evaluation loop (generation excluded).
    pub seconds: f64,
    /// Events per second.
    pub events_per_s: f64,
    /// Rule-evaluations (event rules × events, see the module docs) per second.
    pub rule_evaluations_per_s: f64,
    /// Conditions actually evaluated (index candidates) per second.
    pub conditions_evaluated_per_s: f64,
    /// Index candidates per event, on average.
    pub candidates_per_event: f64,
    /// Matches.
    pub matches: u64,
    /// Firings.
    pub firings: u64,
    /// Firings per second.
    pub firings_per_s: f64,
    /// Firings held back by throttles.
    pub throttled: u64,
}

impl fmt::Display for RulesBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "rules: {} active ({} over events), {} events in {:.3} s on one thread",
            self.rules, self.event_rules, self.events, self.seconds
        )?;
        writeln!(f, "  events/s:                 {:>14.0}", self.events_per_s)?;
        writeln!(
            f,
            "  rule-evaluations/s:       {:>14.0}  (event rules × events)",
            self.rule_evaluations_per_s
        )?;
        writeln!(
            f,
            "  conditions evaluated/s:   {:>14.0}  ({:.1} index candidates per event)",
            self.conditions_evaluated_per_s, self.candidates_per_event
        )?;
        write!(
            f,
            "  firings/s:                {:>14.0}  ({} firings, {} throttled, {} matches)",
            self.firings_per_s, self.firings, self.throttled, self.matches
        )
    }
}

/// SplitMix64: a small deterministic generator, enough for a workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// Skewed towards small values (a few hot types and services, a long tail).
    fn skewed(&mut self, n: usize) -> usize {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }
}

const TYPES: usize = 60;
const SERVICES: usize = 200;
const HOSTS: usize = 500;
const REGIONS: [&str; 4] = ["eu-west-1", "us-east-1", "ap-south-1", "eu-central-1"];
const WORDS: [&str; 6] = ["timeout", "refused", "disk", "latency", "oom", "deadlock"];

fn event_type(i: usize) -> String {
    match i {
        0 => "ERROR".into(),
        1 => "WARNING".into(),
        2 => "THRESHOLD_BREACH".into(),
        3 => "DEPLOYMENT".into(),
        _ => format!("TYPE_{i}"),
    }
}

fn rule_doc(rng: &mut Rng, i: usize, rules: usize) -> (AppliesTo, Value, Value) {
    let share = i * 100 / rules.max(1);
    let sev = ["critical", "high", "medium"][rng.below(3)];
    let extra = match rng.below(6) {
        0 => json!({"metadata.cpu_usage": {"$gt": 80 + rng.below(20)}}),
        1 => json!({"metadata.region": {"$in": [REGIONS[rng.below(4)], REGIONS[rng.below(4)]]}}),
        2 => json!({"details": {"$contains": WORDS[rng.below(WORDS.len())]}}),
        3 => {
            json!({"details": {"$regex": format!("(?i){}\\s+\\d+", WORDS[rng.below(WORDS.len())])}})
        }
        4 => json!({"tags.team": {"$ne": "platform"}, "metadata.latency_ms": {"$gte": 500}}),
        _ => {
            json!({"$or": [{"host": {"$startswith": "web-1"}}, {"$not": {"environment": "staging"}}]})
        }
    };
    let mut window = json!({});
    if rng.below(3) == 0 {
        window = json!({"time_window_minutes": 5, "threshold_count": 3,
                        "group_by": ["service_name", "host"],
                        "throttle": {"mode": "once_within", "minutes": 10}});
    }
    let (kind, mut cond) = if share < 80 {
        let mut c =
            json!({"event_type": event_type(rng.skewed(TYPES)), "severity": [sev, "critical"]});
        if rng.below(4) == 0 {
            c["event_type"] = json!([event_type(rng.skewed(TYPES)), event_type(rng.skewed(TYPES))]);
        }
        (AppliesTo::Events, c)
    } else if share < 92 {
        (
            AppliesTo::Events,
            json!({"service_name": format!("svc-{}", rng.skewed(SERVICES)), "environment": "production"}),
        )
    } else if share < 95 {
        (
            AppliesTo::Events,
            json!({"$or": [{"metadata.cpu_usage": {"$gt": 99}}, {"details": {"$contains": "panic"}}]}),
        )
    } else if share < 98 {
        return (
            AppliesTo::Anomalies,
            json!({"detector": "zscore", "score": {"$gt": 0.9}}),
            json!({}),
        );
    } else {
        return (
            AppliesTo::Incidents,
            json!({"severity": {"$gte": "high"}, "status": "open"}),
            json!({}),
        );
    };
    for (k, v) in extra.as_object().into_iter().flatten() {
        cond[k] = v.clone();
    }
    (kind, cond, window)
}

/// The benchmark's rules.
pub fn rules(params: RulesBenchParams) -> Vec<CompiledRule> {
    let mut rng = Rng(params.seed);
    (0..params.rules)
        .filter_map(|i| {
            let (applies_to, conditions, window) = rule_doc(&mut rng, i, params.rules);
            let w = window.as_object();
            let rule = TriggerRule {
                id: format!("rule-{i:05}"),
                name: format!("bench rule {i}"),
                description: String::new(),
                applies_to,
                conditions,
                severity_threshold: None,
                time_window_minutes: w.and_then(|w| w.get("time_window_minutes")).map(|_| 5),
                threshold_count: if w.is_some_and(|w| w.contains_key("threshold_count")) {
                    3
                } else {
                    1
                },
                group_by: if w.is_some_and(|w| w.contains_key("group_by")) {
                    vec!["service_name".into(), "host".into()]
                } else {
                    Vec::new()
                },
                max_triggers_per_hour: Some(60),
                throttle: w
                    .and_then(|w| w.get("throttle"))
                    .and_then(|t| serde_json::from_value(t.clone()).ok()),
                response_template_id: Some(format!("tpl-{}", i % 20)),
                active: true,
                created_by: "bench".into(),
                created_at: 0,
                updated_at: 0,
            };
            CompiledRule::compile(rule).ok()
        })
        .collect()
}

/// The benchmark's event stream: `events` events 10 ms apart.
pub fn events(params: RulesBenchParams) -> Vec<Subject> {
    let mut rng = Rng(params.seed ^ 0x5EED);
    let t0 = 1_700_000_000_000;
    (0..params.events)
        .map(|i| {
            let mut metadata = serde_json::Map::new();
            metadata.insert("cpu_usage".into(), json!(rng.below(100)));
            metadata.insert("latency_ms".into(), json!(rng.below(1000)));
            metadata.insert("region".into(), json!(REGIONS[rng.below(4)]));
            let mut tags = std::collections::BTreeMap::new();
            tags.insert(
                "team".into(),
                ["platform", "payments", "search"][rng.below(3)].into(),
            );
            let word = WORDS[rng.below(WORDS.len())];
            Subject::Event(Box::new(Event {
                event_id: format!("ev-{i}"),
                service_name: format!("svc-{}", rng.skewed(SERVICES)),
                event_type: event_type(rng.skewed(TYPES)),
                timestamp: t0 + i as i64 * 10,
                environment: if rng.below(4) == 0 {
                    "STAGING"
                } else {
                    "PRODUCTION"
                }
                .into(),
                details: format!("{word} {} on request {i}", rng.below(1000)),
                severity: Severity::ALL[rng.below(5)],
                metadata,
                source: "bench".into(),
                source_type: SourceType::Http,
                host: Some(format!("web-{}", rng.below(HOSTS))),
                tags,
                fingerprint: format!("fp-{}", rng.below(1000)),
                correlation_id: format!("req-{i}"),
                received_at: t0 + i as i64 * 10,
            }))
        })
        .collect()
}

/// Generates the workload, then evaluates every event against the rule set on the
/// calling thread and reports the rates.
pub fn run(params: RulesBenchParams) -> RulesBenchReport {
    let rules = rules(params);
    let n_rules = rules.len();
    let events = events(params);
    let mut set = RuleSet::new(rules);
    let mut out = Vec::new();
    let started = Instant::now();
    for e in &events {
        out.clear();
        set.observe(e, super::backtest::subject_time(e), &mut out);
    }
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let s = set.stats();
    let event_rules = s.considered.checked_div(s.subjects).unwrap_or(0);
    RulesBenchReport {
        rules: n_rules,
        event_rules,
        events: s.subjects,
        seconds,
        events_per_s: s.subjects as f64 / seconds,
        rule_evaluations_per_s: s.considered as f64 / seconds,
        conditions_evaluated_per_s: s.evaluations as f64 / seconds,
        candidates_per_event: s.evaluations as f64 / s.subjects.max(1) as f64,
        matches: s.matches,
        firings: s.firings,
        firings_per_s: s.firings as f64 / seconds,
        throttled: s.throttled,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_compiles_every_rule_and_fires() {
        let params = RulesBenchParams {
            rules: 1000,
            events: 2000,
            seed: 7,
        };
        assert_eq!(rules(params).len(), 1000);
        let report = run(params);
        assert_eq!(report.rules, 1000);
        assert_eq!(report.events, 2000);
        assert!(report.event_rules >= 900, "{report:?}");
        assert!(report.matches > 0 && report.firings > 0, "{report:?}");
        // The index must spare most evaluations.
        assert!(
            report.candidates_per_event < report.event_rules as f64 / 4.0,
            "{report:?}"
        );
    }
}
