//! Per-group window and throttle state: plain data, serializable for checkpoints.

use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};
use sightline_model::{Throttle, TriggerRule};

use super::HOUR_MS;

/// The state of every rule with live groups, keyed by rule id: what a runner checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleSetState {
    /// Rule id → its groups.
    pub rules: BTreeMap<String, RuleState>,
}

/// The groups of one rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    /// The rule's `updated_at` the state belongs to: a changed rule starts afresh.
    pub version: i64,
    /// Group key → state.
    pub groups: foldhash::HashMap<String, GroupState>,
}

impl RuleState {
    pub(crate) fn new(version: i64) -> Self {
        Self {
            version,
            groups: foldhash::HashMap::default(),
        }
    }
}

/// One group of one rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupState {
    /// Times of the matches in the current count window (at most `threshold_count`).
    pub window: VecDeque<i64>,
    /// Firing times within the last hour (only with `max_triggers_per_hour`).
    pub fired: VecDeque<i64>,
    /// The last firing.
    pub last_fired: Option<i64>,
    /// The last match.
    pub last_match: Option<i64>,
}

/// What a match leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The count window is not full yet.
    Wait,
    /// It would fire, but a throttle holds it back.
    Throttled,
    /// Fire, with this many matches in the window.
    Fire(u32),
}

impl GroupState {
    /// Records a match at `now` and decides whether the rule fires for this group.
    pub(crate) fn decide(&mut self, rule: &TriggerRule, now: i64) -> Decision {
        let prev_match = self.last_match.replace(now);
        let count = match rule.window_ms() {
            Some(w) => {
                self.window.push_back(now);
                while self.window.front().is_some_and(|&t| t <= now - w) {
                    self.window.pop_front();
                }
                let n = self.window.len();
                if n < rule.threshold_count as usize {
                    return Decision::Wait;
                }
                // The window starts afresh after reaching its count, fired or throttled.
                self.window.clear();
                n as u32
            }
            None => 1,
        };
        match rule.throttle {
            Some(t @ Throttle::OnceWithin { .. })
                if self.last_fired.is_some_and(|f| now - f < t.period_ms()) =>
            {
                return Decision::Throttled;
            }
            Some(t @ Throttle::OnceAfter { .. })
                if self.last_fired.is_some()
                    && prev_match.is_some_and(|p| now - p < t.period_ms()) =>
            {
                return Decision::Throttled;
            }
            _ => {}
        }
        if let Some(max) = rule.max_triggers_per_hour {
            while self.fired.front().is_some_and(|&t| t <= now - HOUR_MS) {
                self.fired.pop_front();
            }
            if self.fired.len() >= max as usize {
                return Decision::Throttled;
            }
            self.fired.push_back(now);
        }
        self.last_fired = Some(now);
        Decision::Fire(count)
    }

    /// Whether this state can still change a decision at `now`: its last match lies
    /// within the longest of the rule's window, throttle period and (with a per-hour
    /// cap) one hour.
    pub(crate) fn is_live(&self, rule: &TriggerRule, now: i64) -> bool {
        let horizon = [
            rule.window_ms().unwrap_or(0),
            rule.throttle.map_or(0, Throttle::period_ms),
            if rule.max_triggers_per_hour.is_some() {
                HOUR_MS
            } else {
                0
            },
        ]
        .into_iter()
        .max()
        .unwrap_or(0);
        self.last_match.is_some_and(|t| now - t < horizon)
    }
}
