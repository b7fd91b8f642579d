//! State for tumbling and hopping windows: every key shares the same grid of windows, so
//! state is a map from window to the keys in it, ordered by window. The first entry is
//! always the next to close, which makes closing a window O(keys in it) with no timers.

use std::collections::{BTreeMap, HashMap};

use foldhash::fast::RandomState;

use super::{Ctx, Output, StateEntry, WindowRow};
use crate::Key;
use crate::aggregate::Accumulators;
use crate::operator::InputRecord;
use crate::window::Window;

/// All windows of a fixed grid have the same size, so ordering by start is ordering by end.
#[derive(Default)]
pub(super) struct AlignedState {
    windows: BTreeMap<Window, HashMap<Key, Accumulators, RandomState>>,
    len: usize,
}

impl AlignedState {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Adds the record to each of `windows` still open; false when none was.
    pub(super) fn update(
        &mut self,
        ctx: &Ctx<'_>,
        windows: &[Window],
        watermark: Option<i64>,
        record: &InputRecord,
        seq: u64,
        out: &mut Output,
    ) -> bool {
        let mut accepted = false;
        for w in windows {
            if w.is_closed(ctx.grace_ms, watermark) {
                continue;
            }
            accepted = true;
            let keys = self.windows.entry(*w).or_default();
            let accs = match keys.get_mut(&record.key) {
                Some(accs) => accs,
                None => {
                    self.len += 1;
                    keys.entry(record.key.clone())
                        .or_insert_with(|| Accumulators::new(ctx.specs))
                }
            };
            accs.update(ctx.specs, &record.fields, seq);
            if ctx.emits_changes() {
                out.rows.push(WindowRow {
                    key: record.key.clone(),
                    window: Some(*w),
                    values: accs.results(),
                    is_final: false,
                });
            }
        }
        accepted
    }

    /// Evicts every window closed at `watermark`; returns how many (key, window) states.
    pub(super) fn close_until(&mut self, ctx: &Ctx<'_>, watermark: i64, out: &mut Output) -> usize {
        let mut closed = 0;
        while let Some(entry) = self.windows.first_entry() {
            if !entry.key().is_closed(ctx.grace_ms, Some(watermark)) {
                break;
            }
            let (window, keys) = entry.remove_entry();
            closed += keys.len();
            if !ctx.emits_changes() {
                let mut rows: Vec<(Key, Accumulators)> = keys.into_iter().collect();
                rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                out.rows
                    .extend(rows.into_iter().map(|(key, accs)| WindowRow {
                        key,
                        window: Some(window),
                        values: accs.results(),
                        is_final: true,
                    }));
            }
        }
        self.len -= closed;
        closed
    }

    pub(super) fn rows_for(&self, key: &Key) -> Vec<WindowRow> {
        self.windows
            .iter()
            .filter_map(|(w, keys)| {
                keys.get(key).map(|accs| WindowRow {
                    key: key.clone(),
                    window: Some(*w),
                    values: accs.results(),
                    is_final: false,
                })
            })
            .collect()
    }

    pub(super) fn scan(&self, limit: usize) -> Vec<WindowRow> {
        let mut rows = Vec::new();
        for (w, keys) in &self.windows {
            if rows.len() >= limit {
                break;
            }
            let mut sorted: Vec<(&Key, &Accumulators)> = keys.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            rows.extend(
                sorted
                    .into_iter()
                    .take(limit - rows.len())
                    .map(|(key, accs)| WindowRow {
                        key: key.clone(),
                        window: Some(*w),
                        values: accs.results(),
                        is_final: false,
                    }),
            );
        }
        rows
    }

    pub(super) fn entries(&self) -> Vec<StateEntry> {
        self.windows
            .iter()
            .flat_map(|(w, keys)| {
                keys.iter().map(|(key, accs)| StateEntry {
                    key: key.clone(),
                    window: Some(*w),
                    last_event_time: w.start,
                    accumulators: accs.clone(),
                })
            })
            .collect()
    }

    pub(super) fn restore(&mut self, entry: StateEntry) -> bool {
        let Some(window) = entry.window else {
            return false;
        };
        if self
            .windows
            .entry(window)
            .or_default()
            .insert(entry.key, entry.accumulators)
            .is_none()
        {
            self.len += 1;
        }
        true
    }
}
