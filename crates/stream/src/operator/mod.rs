//! The windowed aggregation operator: keyed window state driven by event time.
//!
//! A [`WindowAggregate`] is configured by a plain [`WindowAggregateConfig`] (what the SQL
//! compiler or the built-in rollups build), takes [`InputRecord`]s one at a time, and
//! appends to an [`Output`]: result rows ([`WindowRow`]), late records and — for session
//! merges under `EMIT CHANGES` — retractions of rows that no longer exist.
//!
//! For each record, in this order:
//! 1. its windows are found (fixed grid, session merge, or the one unwindowed row);
//! 2. windows already closed under the current watermark (`end + grace <= watermark`) do
//!    not take it; if none of its windows takes it, it is a [`LateRecord`];
//! 3. the accumulators of each accepting (key, window) are updated; under
//!    [`EmitMode::Changes`] the updated row is emitted;
//! 4. the watermark learns the record's event time; windows it closes are evicted, and
//!    under [`EmitMode::Final`] emitted once, sorted by window then key.
//!
//! Everything is a deterministic function of the calls made (`process`, `tick`, `flush`),
//! so [`WindowAggregate::snapshot`] / [`WindowAggregate::restore`] resume exactly.

mod aligned;
mod sessions;
mod unwindowed;

use serde::{Deserialize, Serialize};

use crate::aggregate::{Accumulators, AggregateSpec};
use crate::error::StreamError;
use crate::telemetry;
use crate::watermark::{WatermarkConfig, Watermarks};
use crate::window::{Window, WindowSpec};
use crate::{Key, Value};

/// When result rows are emitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmitMode {
    /// `EMIT CHANGES`: every update emits the (key, window)'s current row.
    Changes,
    /// `EMIT FINAL`: one row per (key, window), when the watermark closes it.
    Final,
}

/// Everything that defines an operator: a plain data structure the SQL compiler builds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WindowAggregateConfig {
    /// Unique name: metric label and checkpoint entry (e.g. the query id).
    pub name: String,
    /// Windowing.
    pub window: WindowSpec,
    /// Names of the key parts (the `GROUP BY` columns), for output rows.
    pub key_columns: Vec<String>,
    /// Aggregate columns, in output order.
    pub aggregates: Vec<AggregateSpec>,
    /// When rows are emitted.
    pub emit: EmitMode,
    /// Watermark settings.
    pub watermark: WatermarkConfig,
    /// How long after its end a window still accepts records, ms.
    pub grace_ms: i64,
    /// Unwindowed tables only: forget a key once the watermark is this far past its newest
    /// record, ms (`None` keeps every key). Windowed state is always evicted when the
    /// window closes, so it needs no retention.
    pub retention_ms: Option<i64>,
}

impl WindowAggregateConfig {
    /// A config with 5 s out-of-orderness, no grace and no retention.
    pub fn new(
        name: impl Into<String>,
        window: WindowSpec,
        aggregates: Vec<AggregateSpec>,
        emit: EmitMode,
    ) -> Self {
        Self {
            name: name.into(),
            window,
            key_columns: Vec::new(),
            aggregates,
            emit,
            watermark: WatermarkConfig::default(),
            grace_ms: 0,
            retention_ms: None,
        }
    }

    /// Checks the whole configuration; the error says what is wrong.
    pub fn validate(&self) -> Result<(), StreamError> {
        let invalid =
            |reason: String| StreamError::InvalidConfig(format!("{}: {reason}", self.name));
        self.window.validate().map_err(invalid)?;
        self.watermark.validate().map_err(invalid)?;
        if self.aggregates.is_empty() {
            return Err(invalid("at least one aggregate is needed".into()));
        }
        for spec in &self.aggregates {
            spec.validate()?;
        }
        if self.grace_ms < 0 {
            return Err(invalid(format!(
                "grace must not be negative, got {} ms",
                self.grace_ms
            )));
        }
        if let Some(r) = self.retention_ms
            && r <= 0
        {
            return Err(invalid(format!("retention must be positive, got {r} ms")));
        }
        if self.window == WindowSpec::Unwindowed && self.emit == EmitMode::Final {
            return Err(invalid(
                "EMIT FINAL needs a WINDOW: an unwindowed table never closes".into(),
            ));
        }
        Ok(())
    }
}

/// One input record, decoded: where it came from, its event time, its group key and the
/// fields the aggregates read (by index).
#[derive(Clone, Debug, PartialEq)]
pub struct InputRecord {
    /// Source partition (watermarks are tracked per partition).
    pub partition: u32,
    /// Offset in the partition.
    pub offset: u64,
    /// Event time, epoch milliseconds.
    pub event_time: i64,
    /// Group key.
    pub key: Key,
    /// Input fields, indexed by [`AggregateSpec::input`].
    pub fields: Vec<Value>,
}

/// A result row.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowRow {
    /// Group key.
    pub key: Key,
    /// The window (`None` for an unwindowed table).
    pub window: Option<Window>,
    /// One value per aggregate, in configuration order.
    pub values: Vec<Value>,
    /// Whether this is the window's final value (emitted at close).
    pub is_final: bool,
}

/// A record that arrived after every window it belongs to had closed.
#[derive(Clone, Debug, PartialEq)]
pub struct LateRecord {
    /// The record, untouched (the caller writes its source record to `<topic>.late`).
    pub record: InputRecord,
    /// The watermark it was judged against.
    pub watermark: i64,
}

/// A previously emitted row that no longer exists (its session merged into another).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retraction {
    /// Group key.
    pub key: Key,
    /// The window that disappeared.
    pub window: Window,
}

/// What processing produced; the caller drains it after each call or batch.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Output {
    /// Result rows, in emission order.
    pub rows: Vec<WindowRow>,
    /// Late records, in arrival order.
    pub late: Vec<LateRecord>,
    /// Session rows superseded by a merge (`EMIT CHANGES` only).
    pub retractions: Vec<Retraction>,
}

impl Output {
    /// Whether nothing was produced.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.late.is_empty() && self.retractions.is_empty()
    }

    /// Empties every list, keeping the allocations.
    pub fn clear(&mut self) {
        self.rows.clear();
        self.late.clear();
        self.retractions.clear();
    }
}

/// Shared parameters the state structures need on every call.
struct Ctx<'a> {
    specs: &'a [AggregateSpec],
    emit: EmitMode,
    grace_ms: i64,
}

impl Ctx<'_> {
    fn emits_changes(&self) -> bool {
        self.emit == EmitMode::Changes
    }
}

/// One (key, window) in a snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct StateEntry {
    key: Key,
    window: Option<Window>,
    last_event_time: i64,
    accumulators: Accumulators,
}

enum State {
    Aligned(aligned::AlignedState),
    Sessions(sessions::SessionState),
    Unwindowed(unwindowed::UnwindowedState),
}

impl State {
    fn new(window: &WindowSpec) -> Self {
        match window {
            WindowSpec::Tumbling { .. } | WindowSpec::Hopping { .. } => {
                State::Aligned(aligned::AlignedState::default())
            }
            WindowSpec::Session { .. } => State::Sessions(sessions::SessionState::default()),
            WindowSpec::Unwindowed => State::Unwindowed(unwindowed::UnwindowedState::default()),
        }
    }

    fn len(&self) -> usize {
        match self {
            State::Aligned(s) => s.len(),
            State::Sessions(s) => s.len(),
            State::Unwindowed(s) => s.len(),
        }
    }
}

struct Telemetry {
    late: metrics::Counter,
    processed: metrics::Counter,
    emitted: metrics::Counter,
    closed: metrics::Counter,
    open: metrics::Gauge,
    watermark: metrics::Gauge,
}

impl Telemetry {
    fn new(operator: &str) -> Self {
        let op = operator.to_owned();
        Self {
            late: metrics::counter!(telemetry::LATE_RECORDS, "operator" => op.clone()),
            processed: metrics::counter!(telemetry::PROCESSED_RECORDS, "operator" => op.clone()),
            emitted: metrics::counter!(telemetry::EMITTED_ROWS, "operator" => op.clone()),
            closed: metrics::counter!(telemetry::CLOSED_WINDOWS, "operator" => op.clone()),
            open: metrics::gauge!(telemetry::OPEN_WINDOWS, "operator" => op.clone()),
            watermark: metrics::gauge!(telemetry::WATERMARK_MS, "operator" => op),
        }
    }
}

/// The operator's complete state: configuration, watermarks and every open (key, window)
/// with its accumulators. Serializable; see [`crate::checkpoint`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorSnapshot {
    config: WindowAggregateConfig,
    watermarks: Watermarks,
    seq: u64,
    entries: Vec<StateEntry>,
}

impl OperatorSnapshot {
    /// The operator's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The configuration it was taken with.
    pub fn config(&self) -> &WindowAggregateConfig {
        &self.config
    }

    /// The watermark at the time of the snapshot.
    pub fn watermark(&self) -> Option<i64> {
        self.watermarks.current()
    }
}

/// A keyed, windowed aggregation over event time. See the [module docs](self).
pub struct WindowAggregate {
    config: WindowAggregateConfig,
    watermarks: Watermarks,
    /// Arrival sequence of the next record (orders `LATEST`/`EARLIEST_BY_OFFSET`).
    seq: u64,
    state: State,
    scratch: Vec<Window>,
    telemetry: Telemetry,
}

impl std::fmt::Debug for WindowAggregate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WindowAggregate")
            .field("name", &self.config.name)
            .field("window", &self.config.window)
            .field("watermark", &self.watermarks.current())
            .field("open_windows", &self.state.len())
            .finish_non_exhaustive()
    }
}

impl WindowAggregate {
    /// An operator with empty state.
    pub fn new(config: WindowAggregateConfig) -> Result<Self, StreamError> {
        config.validate()?;
        Ok(Self {
            watermarks: Watermarks::new(config.watermark),
            seq: 0,
            state: State::new(&config.window),
            scratch: Vec::new(),
            telemetry: Telemetry::new(&config.name),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &WindowAggregateConfig {
        &self.config
    }

    /// The current overall watermark.
    pub fn watermark(&self) -> Option<i64> {
        self.watermarks.current()
    }

    /// Number of open (key, window) states held.
    pub fn open_windows(&self) -> usize {
        self.state.len()
    }

    /// The current (not yet final) rows of `key` in every open window, oldest window
    /// first: what a pull query on the in-memory table answers.
    pub fn current_rows(&self, key: &Key) -> Vec<WindowRow> {
        match &self.state {
            State::Aligned(s) => s.rows_for(key),
            State::Sessions(s) => s.rows_for(key),
            State::Unwindowed(s) => s.rows_for(key),
        }
    }

    /// Up to `limit` current rows over every key and open window, ordered by window then
    /// key: what a pull query without a key lookup scans.
    pub fn scan_rows(&self, limit: usize) -> Vec<WindowRow> {
        match &self.state {
            State::Aligned(s) => s.scan(limit),
            State::Sessions(s) => s.scan(limit),
            State::Unwindowed(s) => s.scan(limit),
        }
    }

    /// Output column names: key columns, `window_start`, `window_end`, aggregates.
    pub fn column_names(&self) -> Vec<String> {
        let mut names = self.config.key_columns.clone();
        names.push("window_start".into());
        names.push("window_end".into());
        names.extend(self.config.aggregates.iter().map(|a| a.name.clone()));
        names
    }

    /// A row as a JSON object: key columns (named `key_N` when unnamed), `window_start`,
    /// `window_end` (omitted when unwindowed) and the aggregates by name.
    pub fn row_to_json(&self, row: &WindowRow) -> serde_json::Value {
        let mut obj = serde_json::Map::new();
        for (i, part) in row.key.parts().iter().enumerate() {
            let name = self
                .config
                .key_columns
                .get(i)
                .cloned()
                .unwrap_or_else(|| format!("key_{i}"));
            obj.insert(name, part.to_json());
        }
        if let Some(w) = row.window {
            obj.insert("window_start".into(), w.start.into());
            obj.insert("window_end".into(), w.end.into());
        }
        for (spec, v) in self.config.aggregates.iter().zip(&row.values) {
            obj.insert(spec.name.clone(), v.to_json());
        }
        serde_json::Value::Object(obj)
    }

    /// Processes one record, appending what it produced to `out`.
    pub fn process(&mut self, record: InputRecord, out: &mut Output) {
        self.telemetry.processed.increment(1);
        let watermark = self.watermarks.current();
        let seq = self.seq;
        self.seq += 1;
        let (partition, event_time) = (record.partition, record.event_time);
        let ctx = Ctx {
            specs: &self.config.aggregates,
            emit: self.config.emit,
            grace_ms: self.config.grace_ms,
        };
        let rows_before = out.rows.len();
        let accepted = match &mut self.state {
            State::Aligned(s) => {
                self.scratch.clear();
                self.config
                    .window
                    .assign_aligned(event_time, &mut self.scratch);
                s.update(&ctx, &self.scratch, watermark, &record, seq, out)
            }
            State::Sessions(s) => {
                let gap = match self.config.window {
                    WindowSpec::Session { gap_ms } => gap_ms,
                    _ => 1,
                };
                s.update(&ctx, gap, watermark, &record, seq, out)
            }
            State::Unwindowed(s) => {
                s.update(&ctx, self.config.retention_ms, &record, seq, out);
                true
            }
        };
        if !accepted {
            self.telemetry.late.increment(1);
            out.late.push(LateRecord {
                record,
                // Only a known watermark can make a record late.
                watermark: watermark.unwrap_or(i64::MIN),
            });
        }
        if let Some(wm) = self.watermarks.observe(partition, event_time) {
            self.close_until(wm, out);
        }
        self.telemetry
            .emitted
            .increment((out.rows.len() - rows_before) as u64);
    }

    /// Processes records in order.
    pub fn process_all(
        &mut self,
        records: impl IntoIterator<Item = InputRecord>,
        out: &mut Output,
    ) {
        for r in records {
            self.process(r, out);
        }
    }

    /// Declares the source's partitions, so that each holds the watermark back until it
    /// delivers (see [`Watermarks::expect_partitions`]).
    pub fn expect_partitions(&mut self, partitions: impl IntoIterator<Item = u32>) {
        self.watermarks.expect_partitions(partitions);
    }

    /// Tells the operator the processing time (ms), so idle partitions stop holding the
    /// watermark back; closes what that releases. Call it periodically, e.g. every second.
    pub fn tick(&mut self, now_ms: i64, out: &mut Output) {
        if let Some(wm) = self.watermarks.tick(now_ms) {
            let before = out.rows.len();
            self.close_until(wm, out);
            self.telemetry
                .emitted
                .increment((out.rows.len() - before) as u64);
        }
        self.telemetry.open.set(self.state.len() as f64);
    }

    /// End of a bounded input: closes every open window as if the watermark had reached
    /// the end of time (unwindowed rows are kept).
    pub fn flush(&mut self, out: &mut Output) {
        let before = out.rows.len();
        self.close_until(i64::MAX, out);
        self.telemetry
            .emitted
            .increment((out.rows.len() - before) as u64);
    }

    fn close_until(&mut self, watermark: i64, out: &mut Output) {
        let ctx = Ctx {
            specs: &self.config.aggregates,
            emit: self.config.emit,
            grace_ms: self.config.grace_ms,
        };
        let closed = match &mut self.state {
            State::Aligned(s) => s.close_until(&ctx, watermark, out),
            State::Sessions(s) => s.close_until(&ctx, watermark, out),
            State::Unwindowed(s) => s.expire_until(self.config.retention_ms, watermark),
        };
        if closed > 0 {
            self.telemetry.closed.increment(closed as u64);
            self.telemetry.open.set(self.state.len() as f64);
        }
        if watermark != i64::MAX {
            self.telemetry.watermark.set(watermark as f64);
        }
    }

    /// The complete state, for a checkpoint.
    pub fn snapshot(&self) -> OperatorSnapshot {
        let mut entries = match &self.state {
            State::Aligned(s) => s.entries(),
            State::Sessions(s) => s.entries(),
            State::Unwindowed(s) => s.entries(),
        };
        entries.sort_by(|a, b| (a.window, &a.key).cmp(&(b.window, &b.key)));
        OperatorSnapshot {
            config: self.config.clone(),
            watermarks: self.watermarks.clone(),
            seq: self.seq,
            entries,
        }
    }

    /// Rebuilds an operator from a snapshot taken with the same `config`.
    pub fn restore(
        config: WindowAggregateConfig,
        snapshot: OperatorSnapshot,
    ) -> Result<Self, StreamError> {
        if snapshot.config != config {
            return Err(StreamError::CheckpointMismatch {
                operator: config.name,
                reason: "the operator's configuration changed since the checkpoint".into(),
            });
        }
        let mut op = Self::new(config)?;
        for entry in snapshot.entries {
            if entry.accumulators.accumulators().len() != op.config.aggregates.len() {
                return Err(StreamError::CheckpointMismatch {
                    operator: op.config.name,
                    reason: "state has a different number of aggregates".into(),
                });
            }
            let ok = match &mut op.state {
                State::Aligned(s) => s.restore(entry),
                State::Sessions(s) => s.restore(entry),
                State::Unwindowed(s) => s.restore(entry, op.config.retention_ms),
            };
            if !ok {
                return Err(StreamError::CheckpointMismatch {
                    operator: op.config.name,
                    reason: "state entry does not fit the window kind".into(),
                });
            }
        }
        op.watermarks = snapshot.watermarks;
        op.seq = snapshot.seq;
        op.telemetry.open.set(op.state.len() as f64);
        Ok(op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggregateKind;

    fn rec(partition: u32, offset: u64, t: i64, key: &str, v: i64) -> InputRecord {
        InputRecord {
            partition,
            offset,
            event_time: t,
            key: Key::from([Value::string(key)]),
            fields: vec![Value::Int(v)],
        }
    }

    fn config(window: WindowSpec, emit: EmitMode) -> WindowAggregateConfig {
        let mut c = WindowAggregateConfig::new(
            "test",
            window,
            vec![
                AggregateSpec::count_star("n"),
                AggregateSpec::new(AggregateKind::Sum, 0, "total"),
            ],
            emit,
        );
        c.watermark = WatermarkConfig {
            max_out_of_orderness_ms: 0,
            idle_timeout_ms: None,
        };
        c
    }

    fn values(row: &WindowRow) -> (i64, Vec<Value>) {
        (row.window.map_or(0, |w| w.start), row.values.clone())
    }

    #[test]
    fn tumbling_emit_final_emits_once_when_the_window_closes() {
        let mut op = WindowAggregate::new(config(
            WindowSpec::Tumbling { size_ms: 10 },
            EmitMode::Final,
        ))
        .unwrap();
        let mut out = Output::default();
        op.process_all(
            [
                rec(0, 0, 1, "a", 1),
                rec(0, 1, 5, "a", 2),
                rec(0, 2, 3, "b", 7),
            ],
            &mut out,
        );
        assert!(out.is_empty());
        op.process(rec(0, 3, 10, "a", 100), &mut out);
        let got: Vec<_> = out.rows.iter().map(values).collect();
        assert_eq!(
            got,
            vec![
                (0, vec![Value::Int(2), Value::Int(3)]),
                (0, vec![Value::Int(1), Value::Int(7)]),
            ]
        );
        assert!(out.rows.iter().all(|r| r.is_final));
        assert_eq!(op.open_windows(), 1);
    }

    #[test]
    fn emit_changes_emits_every_update() {
        let mut op = WindowAggregate::new(config(
            WindowSpec::Tumbling { size_ms: 10 },
            EmitMode::Changes,
        ))
        .unwrap();
        let mut out = Output::default();
        op.process_all([rec(0, 0, 1, "a", 1), rec(0, 1, 2, "a", 2)], &mut out);
        let got: Vec<_> = out.rows.iter().map(values).collect();
        assert_eq!(
            got,
            vec![
                (0, vec![Value::Int(1), Value::Int(1)]),
                (0, vec![Value::Int(2), Value::Int(3)]),
            ]
        );
        assert!(out.rows.iter().all(|r| !r.is_final));
    }

    #[test]
    fn record_for_a_closed_window_is_returned_as_late() {
        let mut c = config(WindowSpec::Tumbling { size_ms: 10 }, EmitMode::Final);
        c.grace_ms = 5;
        let mut op = WindowAggregate::new(c).unwrap();
        let mut out = Output::default();
        op.process(rec(0, 0, 14, "a", 1), &mut out);
        // Window [0,10) closes at watermark 15; 14 < 15 so this one is on time.
        op.process(rec(0, 1, 9, "a", 1), &mut out);
        assert!(out.late.is_empty());
        op.process(rec(0, 2, 15, "a", 1), &mut out);
        assert_eq!(out.rows.len(), 1);
        op.process(rec(0, 3, 2, "a", 1), &mut out);
        assert_eq!(out.late.len(), 1);
        assert_eq!(out.late[0].record.offset, 3);
        assert_eq!(out.late[0].watermark, 15);
    }

    #[test]
    fn hopping_record_lands_in_every_open_window() {
        let mut op = WindowAggregate::new(config(
            WindowSpec::Hopping {
                size_ms: 20,
                advance_ms: 10,
            },
            EmitMode::Changes,
        ))
        .unwrap();
        let mut out = Output::default();
        op.process(rec(0, 0, 15, "a", 1), &mut out);
        let windows: Vec<_> = out.rows.iter().map(|r| r.window.unwrap()).collect();
        assert_eq!(windows, vec![Window::new(0, 20), Window::new(10, 30)]);
        // Watermark 25 closes [0,20); a record at 12 still counts in [10,30).
        op.process(rec(0, 1, 25, "a", 1), &mut out);
        out.clear();
        op.process(rec(0, 2, 12, "a", 1), &mut out);
        assert!(out.late.is_empty());
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].window, Some(Window::new(10, 30)));
    }

    #[test]
    fn session_merge_retracts_the_merged_rows() {
        let mut c = config(WindowSpec::Session { gap_ms: 10 }, EmitMode::Changes);
        c.watermark.max_out_of_orderness_ms = 100;
        let mut op = WindowAggregate::new(c).unwrap();
        let mut out = Output::default();
        op.process_all([rec(0, 0, 0, "a", 1), rec(0, 1, 15, "a", 2)], &mut out);
        assert!(out.retractions.is_empty());
        assert_eq!(op.open_windows(), 2);
        out.clear();
        op.process(rec(0, 2, 8, "a", 4), &mut out);
        assert_eq!(out.rows.len(), 1);
        assert_eq!(out.rows[0].window, Some(Window::new(0, 25)));
        assert_eq!(out.rows[0].values, vec![Value::Int(3), Value::Int(7)]);
        assert_eq!(out.retractions.len(), 2);
        assert_eq!(op.open_windows(), 1);
    }

    #[test]
    fn unwindowed_table_keeps_updating_and_respects_retention() {
        let mut c = config(WindowSpec::Unwindowed, EmitMode::Changes);
        c.retention_ms = Some(100);
        let mut op = WindowAggregate::new(c).unwrap();
        let mut out = Output::default();
        op.process_all([rec(0, 0, 0, "a", 1), rec(0, 1, 50, "b", 1)], &mut out);
        op.process(rec(0, 2, 60, "a", 1), &mut out);
        assert_eq!(out.rows.last().unwrap().values[0], Value::Int(2));
        assert_eq!(out.rows.last().unwrap().window, None);
        // Watermark 170: "a" (newest 60) expires, "b" (newest 50) expires, new "c" stays.
        op.process(rec(0, 3, 170, "c", 1), &mut out);
        assert_eq!(op.open_windows(), 1);
        op.process(rec(0, 4, 171, "a", 1), &mut out);
        assert_eq!(out.rows.last().unwrap().values[0], Value::Int(1));
    }

    #[test]
    fn current_rows_answer_a_pull_query_for_one_key() {
        for window in [
            WindowSpec::Tumbling { size_ms: 10 },
            WindowSpec::Session { gap_ms: 5 },
            WindowSpec::Unwindowed,
        ] {
            let mut c = config(window, EmitMode::Changes);
            c.watermark.max_out_of_orderness_ms = 1_000;
            let mut op = WindowAggregate::new(c).unwrap();
            let mut out = Output::default();
            op.process_all(
                [
                    rec(0, 0, 1, "a", 2),
                    rec(0, 1, 2, "b", 5),
                    rec(0, 2, 3, "a", 4),
                ],
                &mut out,
            );
            let rows = op.current_rows(&Key::from([Value::string("a")]));
            assert_eq!(rows.len(), 1, "{window:?}");
            assert_eq!(rows[0].values, vec![Value::Int(2), Value::Int(6)]);
            assert!(
                op.current_rows(&Key::from([Value::string("zz")]))
                    .is_empty()
            );
        }
    }

    #[test]
    fn invalid_configs_are_rejected_with_a_reason() {
        let err =
            WindowAggregate::new(config(WindowSpec::Unwindowed, EmitMode::Final)).unwrap_err();
        assert!(err.to_string().contains("EMIT FINAL"), "{err}");
        let mut c = config(WindowSpec::Tumbling { size_ms: 10 }, EmitMode::Final);
        c.aggregates.clear();
        assert!(WindowAggregate::new(c).is_err());
    }

    #[test]
    fn row_to_json_names_every_column() {
        let mut c = config(WindowSpec::Tumbling { size_ms: 10 }, EmitMode::Changes);
        c.key_columns = vec!["service".into()];
        let mut op = WindowAggregate::new(c).unwrap();
        let mut out = Output::default();
        op.process(rec(0, 0, 3, "api", 5), &mut out);
        assert_eq!(
            op.row_to_json(&out.rows[0]),
            serde_json::json!({"service": "api", "window_start": 0, "window_end": 10, "n": 1, "total": 5})
        );
        assert_eq!(
            op.column_names(),
            vec!["service", "window_start", "window_end", "n", "total"]
        );
    }

    #[test]
    fn restore_refuses_a_snapshot_of_another_query() {
        let op = WindowAggregate::new(config(
            WindowSpec::Tumbling { size_ms: 10 },
            EmitMode::Final,
        ))
        .unwrap();
        let snap = op.snapshot();
        let other = config(WindowSpec::Tumbling { size_ms: 20 }, EmitMode::Final);
        assert!(matches!(
            WindowAggregate::restore(other, snap),
            Err(StreamError::CheckpointMismatch { .. })
        ));
    }
}
