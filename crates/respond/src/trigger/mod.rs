//! The trigger-rule engine: which rules fire for a subject, honouring count windows and
//! throttles per group.
//!
//! A [`RuleSet`] holds the active rules compiled once ([`CompiledRule`]) and indexes them so
//! a subject is only evaluated against rules that can match it:
//!
//! - by subject kind (event, anomaly, incident);
//! - events by `event_type`, then by `service_name`; anomalies and incidents by
//!   `service_name` — a rule is filed under the values its condition *requires* at the
//!   top level (`{"event_type": ["ERROR","FATAL"], …}`); rules requiring neither are
//!   evaluated for every subject of their kind.
//!
//! A match then passes, per rule and group (`group_by` values joined with `|`):
//! 1. the **count window**: with `time_window_minutes` and `threshold_count` = N, the
//!    rule fires when the group's N-th match falls within the window; the window then
//!    starts afresh;
//! 2. the **throttles**: `once_within` (no second firing within the period after a
//!    firing), `once_after` (fire again only after the group was quiet — no match — for
//!    the period), and `max_triggers_per_hour` (a rolling hour).
//!
//! Time is passed in by the caller (`now_ms`, from a [`sightline_model::Clock`] in the
//! runner, the record's own time in a backtest), so tests and replays control it. The
//! per-group state is a plain serializable value ([`RuleSetState`]) the runner
//! checkpoints with its log offsets.
//!
//! ```
//! use serde_json::json;
//! use sightline_model::{Event, TriggerRule, TriggerRuleSpec};
//! use sightline_respond::{CompiledRule, RuleSet, Subject};
//!
//! let spec: TriggerRuleSpec = serde_json::from_value(json!({
//!     "name": "errors", "applies_to": "events", "conditions": {"event_type": "error"},
//!     "time_window_minutes": 10, "threshold_count": 2, "group_by": ["service_name"]
//! })).unwrap();
//! let rule = TriggerRule::from_spec(spec.validate().unwrap(), "r1".into(), "me".into(), 0, 0);
//! let mut rules = RuleSet::new(vec![CompiledRule::compile(rule).unwrap()]);
//!
//! let event: Event = serde_json::from_value(json!({
//!     "event_id": "e1", "service_name": "api", "event_type": "ERROR", "timestamp": 0,
//!     "environment": "PRODUCTION", "details": "", "severity": "high", "metadata": {},
//!     "source": "t", "source_type": "http", "host": null, "tags": {}, "fingerprint": "f",
//!     "correlation_id": "c", "received_at": 0
//! })).unwrap();
//! let subject = Subject::Event(Box::new(event));
//! let mut out = Vec::new();
//! rules.observe(&subject, 1_000, &mut out);
//! assert!(out.is_empty()); // one match of two
//! rules.observe(&subject, 2_000, &mut out);
//! assert_eq!(out[0].group_key, "api");
//! assert_eq!(out[0].match_count, 2);
//! ```

mod backtest;
pub mod bench;
mod state;

use std::collections::BTreeMap;

use foldhash::HashMap;
use sightline_model::{AppliesTo, Severity, TriggerRule};
use xxhash_rust::xxh3::Xxh3;

use crate::condition::{Accessor, Condition, render_field};
use crate::{Firing, RespondError, Subject};
pub use backtest::{BacktestFiring, BacktestReport, MAX_LISTED_FIRINGS, backtest, subject_time};
use state::Decision;
pub use state::{GroupState, RuleSetState, RuleState};

/// How long firing history is kept for `max_triggers_per_hour`.
const HOUR_MS: i64 = 3_600_000;
/// Observations between two sweeps of expired group state.
const PRUNE_EVERY: u64 = 4096;

/// A trigger rule with its condition and `group_by` paths compiled.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    rule: TriggerRule,
    condition: Condition,
    group_by: Box<[Accessor]>,
}

impl CompiledRule {
    /// Compiles a rule; errors name the faulty path (`conditions.…`, `group_by[i]`).
    pub fn compile(rule: TriggerRule) -> Result<Self, RespondError> {
        let condition = Condition::compile(rule.applies_to, &rule.conditions)?;
        let group_by = rule
            .group_by
            .iter()
            .enumerate()
            .map(|(i, p)| Accessor::resolve(rule.applies_to, p, &format!("group_by[{i}]")))
            .collect::<Result<Box<[_]>, _>>()?;
        Ok(Self {
            rule,
            condition,
            group_by,
        })
    }

    /// The rule as stored.
    pub fn rule(&self) -> &TriggerRule {
        &self.rule
    }

    /// The compiled condition.
    pub fn condition(&self) -> &Condition {
        &self.condition
    }

    /// Whether `subject` is of the rule's kind and passes its severity threshold and
    /// condition at `now_ms` (windows and throttles aside: they decide whether a match
    /// fires).
    pub fn matches(&self, subject: &Subject, now_ms: i64) -> bool {
        kind_slot(self.rule.applies_to) == subject_keys(subject).0 && self.passes(subject, now_ms)
    }

    /// [`matches`](Self::matches) for a subject already known to be of the rule's kind
    /// (the rule set's index is per kind, so its hot loop skips the kind check).
    fn passes(&self, subject: &Subject, now_ms: i64) -> bool {
        at_least(subject.severity(), self.rule.severity_threshold)
            && self.condition.matches(subject, now_ms)
    }
}

/// What a rule set has done since it was built: the runner's and the bench's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Subjects observed.
    pub subjects: u64,
    /// Rules of the subject's kind, summed over subjects: what a rule set without an index
    /// would have evaluated ("rule-evaluations" in `sightline bench rules`).
    pub considered: u64,
    /// Rules actually evaluated (the index's candidates).
    pub evaluations: u64,
    /// Evaluations whose severity floor and condition held.
    pub matches: u64,
    /// Firings produced.
    pub firings: u64,
    /// Firings suppressed by `once_within`, `once_after` or `max_triggers_per_hour`.
    pub throttled: u64,
}

/// The rules of one subject kind, filed by the values their conditions require.
#[derive(Debug, Default)]
struct KindIndex {
    /// Rules filed under a required primary value (`event_type` for events, else
    /// `service_name`).
    primary: HashMap<Box<str>, Vec<u32>>,
    /// Rules without a primary key, filed under a required `service_name` (events only).
    secondary: HashMap<Box<str>, Vec<u32>>,
    /// Rules with no required key: evaluated for every subject of the kind.
    always: Vec<u32>,
    /// How many rules of this kind there are.
    total: u64,
}

fn kind_slot(kind: AppliesTo) -> usize {
    match kind {
        AppliesTo::Events => 0,
        AppliesTo::Anomalies => 1,
        AppliesTo::Incidents => 2,
    }
}

/// The kind slot and the index keys of a subject.
fn subject_keys(subject: &Subject) -> (usize, &str, Option<&str>) {
    match subject {
        Subject::Event(e) => (0, e.event_type.as_str(), Some(e.service_name.as_str())),
        Subject::Anomaly(a) => (1, a.service_name.as_str(), None),
        Subject::Incident(i) => (2, i.service_name.as_str(), None),
    }
}

/// What identifies one version of a subject: its id, plus `updated_at` for incidents
/// (which are republished as they change).
fn subject_identity(subject: &Subject) -> (&str, i64) {
    match subject {
        Subject::Event(e) => (e.event_id.as_str(), 0),
        Subject::Anomaly(a) => (a.id.as_str(), 0),
        Subject::Incident(i) => (i.id.as_str(), i.updated_at),
    }
}

/// Less is more severe in [`Severity`]'s order (`Critical` first).
fn at_least(s: Severity, floor: Option<Severity>) -> bool {
    floor.is_none_or(|f| s <= f)
}

/// The deterministic id of a firing: the rule (and its version), the group and the
/// subject version whose match made it fire. A replay of the same input after a restart
/// yields the same id, so the playbook side can refuse to run it twice.
pub fn firing_id(rule: &TriggerRule, group_key: &str, subject: &Subject) -> String {
    let (id, version) = subject_identity(subject);
    let mut h = Xxh3::new();
    for part in [rule.id.as_str(), group_key, id] {
        h.update(part.as_bytes());
        h.update(&[0x1f]);
    }
    h.update(&rule.updated_at.to_le_bytes());
    h.update(&version.to_le_bytes());
    format!("fr-{:016x}", h.digest())
}

/// Active trigger rules, indexed, with their window and throttle state.
#[derive(Debug)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
    states: Vec<RuleState>,
    index: [KindIndex; 3],
    candidates: Vec<u32>,
    key: String,
    stats: Stats,
}

impl RuleSet {
    /// A rule set of the active rules among `rules`, with empty state.
    pub fn new(rules: Vec<CompiledRule>) -> Self {
        let mut set = Self {
            rules: Vec::new(),
            states: Vec::new(),
            index: Default::default(),
            candidates: Vec::new(),
            key: String::new(),
            stats: Stats::default(),
        };
        set.replace_rules(rules);
        set
    }

    /// Replaces the rules (a reload from the store). State is kept for rules whose id
    /// and version (`updated_at`) are unchanged, and dropped for the others.
    pub fn replace_rules(&mut self, rules: Vec<CompiledRule>) {
        let mut old: BTreeMap<String, RuleState> = self
            .rules
            .iter()
            .zip(std::mem::take(&mut self.states))
            .map(|(r, s)| (r.rule.id.clone(), s))
            .collect();
        self.rules = rules.into_iter().filter(|r| r.rule.active).collect();
        self.states = self
            .rules
            .iter()
            .map(|r| {
                old.remove(&r.rule.id)
                    .filter(|s| s.version == r.rule.updated_at)
                    .unwrap_or_else(|| RuleState::new(r.rule.updated_at))
            })
            .collect();
        self.index = Default::default();
        for (i, r) in self.rules.iter().enumerate() {
            let i = i as u32;
            let ix = &mut self.index[kind_slot(r.rule.applies_to)];
            ix.total += 1;
            let primary = if r.rule.applies_to == AppliesTo::Events {
                r.condition.required_values(Accessor::is_event_type)
            } else {
                r.condition.required_values(Accessor::is_service_name)
            };
            if let Some(keys) = primary {
                for k in keys {
                    ix.primary.entry(k.into()).or_default().push(i);
                }
            } else if let Some(keys) = (r.rule.applies_to == AppliesTo::Events)
                .then(|| r.condition.required_values(Accessor::is_service_name))
                .flatten()
            {
                for k in keys {
                    ix.secondary.entry(k.into()).or_default().push(i);
                }
            } else {
                ix.always.push(i);
            }
        }
    }

    /// The active rules.
    pub fn rules(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Counters since the rule set was built.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Evaluates `subject` at `now_ms` and appends the firings to `out`; returns how many.
    pub fn observe(&mut self, subject: &Subject, now_ms: i64, out: &mut Vec<Firing>) -> usize {
        let (slot, primary, secondary) = subject_keys(subject);
        let ix = &self.index[slot];
        self.stats.subjects += 1;
        self.stats.considered += ix.total;
        self.candidates.clear();
        if let Some(v) = ix.primary.get(primary) {
            self.candidates.extend_from_slice(v);
        }
        if let Some(v) = secondary.and_then(|s| ix.secondary.get(s)) {
            self.candidates.extend_from_slice(v);
        }
        self.candidates.extend_from_slice(&ix.always);
        // Rule order, so firings come out in the same order however they were filed.
        self.candidates.sort_unstable();
        let before = out.len();
        // Taken out for the loop (a move, no allocation) so `on_match` may borrow `self`.
        let candidates = std::mem::take(&mut self.candidates);
        for &i in &candidates {
            let i = i as usize;
            self.stats.evaluations += 1;
            let r = &self.rules[i];
            if !r.passes(subject, now_ms) {
                continue;
            }
            self.stats.matches += 1;
            self.on_match(i, subject, now_ms, out);
        }
        self.candidates = candidates;
        if self.stats.subjects.is_multiple_of(PRUNE_EVERY) {
            self.prune(now_ms);
        }
        out.len() - before
    }

    fn on_match(&mut self, i: usize, subject: &Subject, now: i64, out: &mut Vec<Firing>) {
        let r = &self.rules[i];
        self.key.clear();
        for (n, acc) in r.group_by.iter().enumerate() {
            if n > 0 {
                self.key.push('|');
            }
            render_field(acc, subject, &mut self.key);
        }
        let groups = &mut self.states[i].groups;
        // The key is copied only for a group seen for the first time.
        if !groups.contains_key(self.key.as_str()) {
            groups.insert(self.key.clone(), GroupState::default());
        }
        let Some(g) = groups.get_mut(self.key.as_str()) else {
            return;
        };
        let count = match g.decide(&r.rule, now) {
            Decision::Wait => return,
            Decision::Throttled => {
                self.stats.throttled += 1;
                return;
            }
            Decision::Fire(count) => count,
        };
        self.stats.firings += 1;
        out.push(Firing {
            id: firing_id(&r.rule, &self.key, subject),
            rule_id: r.rule.id.clone(),
            rule_name: r.rule.name.clone(),
            response_template_id: r.rule.response_template_id.clone(),
            subject: subject.clone(),
            group_key: self.key.clone(),
            match_count: count,
            fired_at: now,
        });
    }

    /// Drops group state that can no longer influence a decision at `now_ms`.
    pub fn prune(&mut self, now_ms: i64) {
        for (r, s) in self.rules.iter().zip(&mut self.states) {
            s.groups.retain(|_, g| g.is_live(&r.rule, now_ms));
        }
    }

    /// The window and throttle state, for a checkpoint (expired groups are left out).
    pub fn state(&mut self, now_ms: i64) -> RuleSetState {
        self.prune(now_ms);
        RuleSetState {
            rules: self
                .rules
                .iter()
                .zip(&self.states)
                .filter(|(_, s)| !s.groups.is_empty())
                .map(|(r, s)| (r.rule.id.clone(), s.clone()))
                .collect(),
        }
    }

    /// Restores checkpointed state; entries of rules that are gone or changed since are
    /// ignored.
    pub fn restore(&mut self, mut state: RuleSetState) {
        for (r, s) in self.rules.iter().zip(&mut self.states) {
            if let Some(saved) = state.rules.remove(&r.rule.id)
                && saved.version == r.rule.updated_at
            {
                *s = saved;
            }
        }
    }
}

#[cfg(test)]
mod tests;
