//! Backtesting one rule: replay stored history through a fresh engine and report what it
//! would have fired, executing nothing.

use serde::Serialize;

use super::{CompiledRule, RuleSet, Stats};
use crate::{Firing, Subject};

/// Most firings a report lists (the count is always exact).
pub const MAX_LISTED_FIRINGS: usize = 1000;

/// When a subject happened, as the replay orders and clocks it: an event's or anomaly's
/// `timestamp`, an incident's `detected_at` (the store keeps only an incident's latest
/// version, so it is replayed once, at detection).
pub fn subject_time(subject: &Subject) -> i64 {
    match subject {
        Subject::Event(e) => e.timestamp,
        Subject::Anomaly(a) => a.timestamp,
        Subject::Incident(i) => i.detected_at,
    }
}

/// One firing a backtest found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestFiring {
    /// The firing's deterministic id.
    pub id: String,
    /// `event`, `anomaly` or `incident`.
    pub subject_kind: &'static str,
    /// The id of the subject whose match fired.
    pub subject_id: String,
    /// When it would have fired (the subject's time), epoch ms.
    pub at: i64,
    /// The group key.
    pub group_key: String,
    /// Matches in the window when it fired.
    pub match_count: u32,
    /// The response template it would have started.
    pub response_template_id: Option<String>,
}

impl From<&Firing> for BacktestFiring {
    fn from(f: &Firing) -> Self {
        let (subject_kind, subject_id) = match &f.subject {
            Subject::Event(e) => ("event", e.event_id.clone()),
            Subject::Anomaly(a) => ("anomaly", a.id.clone()),
            Subject::Incident(i) => ("incident", i.id.clone()),
        };
        Self {
            id: f.id.clone(),
            subject_kind,
            subject_id,
            at: f.fired_at,
            group_key: f.group_key.clone(),
            match_count: f.match_count,
            response_template_id: f.response_template_id.clone(),
        }
    }
}

/// What a backtest found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestReport {
    /// Subjects replayed.
    pub scanned: u64,
    /// Subjects whose condition (and severity floor) held.
    pub matches: u64,
    /// How often the rule would have fired.
    pub firings: u64,
    /// Firings its throttles would have held back.
    pub throttled: u64,
    /// Firings per group key.
    pub by_group: std::collections::BTreeMap<String, u64>,
    /// The firings, oldest first (at most [`MAX_LISTED_FIRINGS`]).
    pub listed: Vec<BacktestFiring>,
}

/// Replays `history` (any order; it is sorted by [`subject_time`], ties by arrival) through
/// a fresh engine holding only `rule`, each subject at its own time.
pub fn backtest(rule: CompiledRule, mut history: Vec<Subject>) -> BacktestReport {
    history.sort_by_key(subject_time);
    let mut rule = rule;
    // A backtest replays an inactive rule too: that is how one tries it before enabling.
    rule.rule.active = true;
    let mut set = RuleSet::new(vec![rule]);
    let mut out = Vec::new();
    let mut by_group = std::collections::BTreeMap::new();
    let mut listed = Vec::new();
    for s in &history {
        out.clear();
        set.observe(s, subject_time(s), &mut out);
        for f in &out {
            *by_group.entry(f.group_key.clone()).or_insert(0) += 1;
            if listed.len() < MAX_LISTED_FIRINGS {
                listed.push(BacktestFiring::from(f));
            }
        }
    }
    let Stats {
        subjects,
        matches,
        firings,
        throttled,
        ..
    } = set.stats();
    BacktestReport {
        scanned: subjects,
        matches,
        firings,
        throttled,
        by_group,
        listed,
    }
}
