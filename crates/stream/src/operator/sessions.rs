//! State for session windows: each key has its own sorted, disjoint list of sessions, and
//! a timer set ordered by session end tells which close next under the watermark.

use std::collections::{BTreeSet, HashMap};

use foldhash::fast::RandomState;

use super::{Ctx, Output, Retraction, StateEntry, WindowRow};
use crate::Key;
use crate::aggregate::Accumulators;
use crate::operator::InputRecord;
use crate::window::{Window, session};

#[derive(Default)]
pub(super) struct SessionState {
    by_key: HashMap<Key, Vec<(Window, Accumulators)>, RandomState>,
    /// (end, start, key) of every open session.
    timers: BTreeSet<(i64, i64, Key)>,
}

impl SessionState {
    pub(super) fn len(&self) -> usize {
        self.timers.len()
    }

    /// Adds the record to its (possibly merged) session; false when that session would
    /// already be closed under `watermark` (the record is late).
    pub(super) fn update(
        &mut self,
        ctx: &Ctx<'_>,
        gap_ms: i64,
        watermark: Option<i64>,
        record: &InputRecord,
        seq: u64,
        out: &mut Output,
    ) -> bool {
        let empty = Vec::new();
        let sessions = self.by_key.get(&record.key).unwrap_or(&empty);
        let (merged, range) = session::merge_target(sessions, |s| s.0, record.event_time, gap_ms);
        // Merge first, then judge: a record may extend a session that is still open.
        if merged.is_closed(ctx.grace_ms, watermark) {
            return false;
        }
        let sessions = self.by_key.entry(record.key.clone()).or_default();
        let at = range.start;
        let mut drained = sessions.drain(range);
        let mut accs = match drained.next() {
            Some((w, accs)) => {
                self.timers.remove(&(w.end, w.start, record.key.clone()));
                if ctx.emits_changes() && w != merged {
                    out.retractions.push(Retraction {
                        key: record.key.clone(),
                        window: w,
                    });
                }
                accs
            }
            None => Accumulators::new(ctx.specs),
        };
        for (w, other) in drained {
            self.timers.remove(&(w.end, w.start, record.key.clone()));
            if ctx.emits_changes() {
                out.retractions.push(Retraction {
                    key: record.key.clone(),
                    window: w,
                });
            }
            // Same specs on both sides: merging cannot fail.
            let _ = accs.merge(&other);
        }
        accs.update(ctx.specs, &record.fields, seq);
        if ctx.emits_changes() {
            out.rows.push(WindowRow {
                key: record.key.clone(),
                window: Some(merged),
                values: accs.results(),
                is_final: false,
            });
        }
        sessions.insert(at, (merged, accs));
        self.timers
            .insert((merged.end, merged.start, record.key.clone()));
        true
    }

    pub(super) fn close_until(&mut self, ctx: &Ctx<'_>, watermark: i64, out: &mut Output) -> usize {
        let mut closed = 0;
        while let Some((end, start, _)) = self.timers.first() {
            if !Window::new(*start, *end).is_closed(ctx.grace_ms, Some(watermark)) {
                break;
            }
            let Some((end, start, key)) = self.timers.pop_first() else {
                break;
            };
            closed += 1;
            let Some(sessions) = self.by_key.get_mut(&key) else {
                continue;
            };
            let Some(i) = sessions
                .iter()
                .position(|(w, _)| w.start == start && w.end == end)
            else {
                continue;
            };
            let (window, accs) = sessions.remove(i);
            if sessions.is_empty() {
                self.by_key.remove(&key);
            }
            if !ctx.emits_changes() {
                out.rows.push(WindowRow {
                    key,
                    window: Some(window),
                    values: accs.results(),
                    is_final: true,
                });
            }
        }
        closed
    }

    pub(super) fn rows_for(&self, key: &Key) -> Vec<WindowRow> {
        self.by_key.get(key).map_or_else(Vec::new, |sessions| {
            sessions
                .iter()
                .map(|(w, accs)| WindowRow {
                    key: key.clone(),
                    window: Some(*w),
                    values: accs.results(),
                    is_final: false,
                })
                .collect()
        })
    }

    pub(super) fn scan(&self, limit: usize) -> Vec<WindowRow> {
        let mut all: Vec<(&Window, &Key, &Accumulators)> = self
            .by_key
            .iter()
            .flat_map(|(key, sessions)| sessions.iter().map(move |(w, accs)| (w, key, accs)))
            .collect();
        all.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        all.into_iter()
            .take(limit)
            .map(|(w, key, accs)| WindowRow {
                key: key.clone(),
                window: Some(*w),
                values: accs.results(),
                is_final: false,
            })
            .collect()
    }

    pub(super) fn entries(&self) -> Vec<StateEntry> {
        self.by_key
            .iter()
            .flat_map(|(key, sessions)| {
                sessions.iter().map(|(w, accs)| StateEntry {
                    key: key.clone(),
                    window: Some(*w),
                    last_event_time: w.start,
                    accumulators: accs.clone(),
                })
            })
            .collect()
    }

    pub(super) fn restore(&mut self, entry: StateEntry) -> bool {
        let Some(w) = entry.window else {
            return false;
        };
        let sessions = self.by_key.entry(entry.key.clone()).or_default();
        let at = sessions.partition_point(|(s, _)| s.start < w.start);
        sessions.insert(at, (w, entry.accumulators));
        self.timers.insert((w.end, w.start, entry.key));
        true
    }
}
