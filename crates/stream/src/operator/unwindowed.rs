//! State for unwindowed tables (`GROUP BY` without `WINDOW`): one row per key, updated
//! forever, optionally forgotten once the watermark passes the key's newest record by
//! the retention. Expiry timers are lazy: a timer fires at the deadline it was set with,
//! and is re-armed if the key saw newer records since, so updates never touch the timers.

use std::collections::{BTreeSet, HashMap};

use foldhash::fast::RandomState;

use super::{Ctx, Output, StateEntry, WindowRow};
use crate::Key;
use crate::aggregate::Accumulators;
use crate::operator::InputRecord;

#[derive(Default)]
pub(super) struct UnwindowedState {
    rows: HashMap<Key, (Accumulators, i64), RandomState>,
    /// (deadline, key): when to check the key for expiry.
    timers: BTreeSet<(i64, Key)>,
}

impl UnwindowedState {
    pub(super) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(super) fn update(
        &mut self,
        ctx: &Ctx<'_>,
        retention_ms: Option<i64>,
        record: &InputRecord,
        seq: u64,
        out: &mut Output,
    ) {
        let (accs, newest) = match self.rows.get_mut(&record.key) {
            Some(row) => row,
            None => {
                if let Some(r) = retention_ms {
                    self.timers
                        .insert((record.event_time.saturating_add(r), record.key.clone()));
                }
                self.rows
                    .entry(record.key.clone())
                    .or_insert_with(|| (Accumulators::new(ctx.specs), record.event_time))
            }
        };
        *newest = (*newest).max(record.event_time);
        accs.update(ctx.specs, &record.fields, seq);
        if ctx.emits_changes() {
            out.rows.push(WindowRow {
                key: record.key.clone(),
                window: None,
                values: accs.results(),
                is_final: false,
            });
        }
    }

    /// Forgets keys whose newest record is `retention` behind `watermark`.
    pub(super) fn expire_until(&mut self, retention_ms: Option<i64>, watermark: i64) -> usize {
        let Some(retention) = retention_ms else {
            return 0;
        };
        let mut expired = 0;
        while let Some((deadline, _)) = self.timers.first() {
            if *deadline > watermark {
                break;
            }
            let Some((_, key)) = self.timers.pop_first() else {
                break;
            };
            let Some((_, newest)) = self.rows.get(&key) else {
                continue;
            };
            let actual = newest.saturating_add(retention);
            if actual <= watermark {
                self.rows.remove(&key);
                expired += 1;
            } else {
                self.timers.insert((actual, key));
            }
        }
        expired
    }

    pub(super) fn rows_for(&self, key: &Key) -> Vec<WindowRow> {
        self.rows
            .get(key)
            .map(|(accs, _)| WindowRow {
                key: key.clone(),
                window: None,
                values: accs.results(),
                is_final: false,
            })
            .into_iter()
            .collect()
    }

    pub(super) fn scan(&self, limit: usize) -> Vec<WindowRow> {
        let mut keys: Vec<(&Key, &Accumulators)> =
            self.rows.iter().map(|(k, (accs, _))| (k, accs)).collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        keys.into_iter()
            .take(limit)
            .map(|(key, accs)| WindowRow {
                key: key.clone(),
                window: None,
                values: accs.results(),
                is_final: false,
            })
            .collect()
    }

    pub(super) fn entries(&self) -> Vec<StateEntry> {
        self.rows
            .iter()
            .map(|(key, (accs, newest))| StateEntry {
                key: key.clone(),
                window: None,
                last_event_time: *newest,
                accumulators: accs.clone(),
            })
            .collect()
    }

    pub(super) fn restore(&mut self, entry: StateEntry, retention_ms: Option<i64>) -> bool {
        if entry.window.is_some() {
            return false;
        }
        if let Some(r) = retention_ms {
            self.timers
                .insert((entry.last_event_time.saturating_add(r), entry.key.clone()));
        }
        self.rows
            .insert(entry.key, (entry.accumulators, entry.last_event_time));
        true
    }
}
