//! A running continuous query: a compiled plan plus (for tables) its window operator,
//! turning source record values into output rows.
//!
//! Per record, [`ContinuousQuery::process`] decodes the JSON value once, finds the event
//! time, evaluates `WHERE`, and then either projects the row (a stream query) or builds
//! the group [`Key`] and aggregate input fields and feeds the [`WindowAggregate`] (a table
//! query), whose emitted rows pass `HAVING` and the `SELECT` projection. Every output row
//! carries a deterministic key — the group key (and window start) for tables, the source
//! partition and offset for streams — so a replay after a crash upserts rather than
//! duplicates. Retracted session windows and rows that stop satisfying `HAVING` become
//! tombstones (`value: None`) under `EMIT CHANGES`.

use std::sync::Arc;

use super::planner::{StreamPlan, TablePlan};
use super::schema::{ColumnDef, StreamDef};
use crate::error::StreamError;
use crate::operator::{InputRecord, OperatorSnapshot, Output, WindowAggregate, WindowRow};
use crate::window::Window;
use crate::{Key, Value, WindowAggregateConfig};

/// A record value the query cannot read: write it to the dead-letter topic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Not a JSON object, or a field of the wrong type.
    #[error("cannot decode record: {0}")]
    Decode(String),
    /// The declared timestamp column is missing or null.
    #[error("no event time: {0}")]
    Timestamp(String),
}

/// What happened to one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Processed {
    /// It passed `WHERE` and was aggregated or projected.
    Accepted,
    /// `WHERE` did not hold.
    Filtered,
    /// Every window it belongs to had closed (the engine's late record): write the
    /// source record to [`ContinuousQuery::late_topic`].
    Late {
        /// The watermark it was judged against.
        watermark: i64,
    },
}

/// One output row for the query's output topic and materialized view.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputRow {
    /// Deterministic key: upsert by it. See [`output_key`].
    pub key: String,
    /// The row as a JSON object (column name → value); `None` is a tombstone: delete the
    /// row with this key.
    pub value: Option<serde_json::Value>,
    /// The window, for windowed tables.
    pub window: Option<Window>,
    /// Event time of the row (the record's, or the window's last millisecond for a final
    /// row): the output record's timestamp.
    pub event_time: i64,
}

/// The deterministic key of a table row: the group key parts as a JSON array, followed by
/// `@<window start>` for windowed tables — e.g. `["s1"]` or `["api",500]@1700000040000`.
pub fn output_key(key: &Key, window: Option<Window>) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(32);
    out.push('[');
    for (i, part) in key.parts().iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match part {
            // The common case, without building a JSON value first.
            Value::String(s) => match serde_json::to_string(s.as_ref()) {
                Ok(quoted) => out.push_str(&quoted),
                Err(_) => out.push_str("null"),
            },
            Value::Int(i) => {
                let _ = write!(out, "{i}");
            }
            other => {
                let _ = write!(out, "{}", other.to_json());
            }
        }
    }
    out.push(']');
    if let Some(w) = window {
        let _ = write!(out, "@{}", w.start);
    }
    out
}

#[derive(Debug)]
pub(crate) enum Kind {
    Table {
        plan: Box<TablePlan>,
        op: Box<WindowAggregate>,
    },
    Stream {
        plan: StreamPlan,
    },
}

/// A compiled, running continuous query. See the `sql` module docs.
#[derive(Debug)]
pub struct ContinuousQuery {
    name: String,
    sql: String,
    output_topic: String,
    pub(crate) kind: Kind,
    row: Vec<Value>,
    scratch: Output,
    agg_row: Vec<Value>,
}

impl ContinuousQuery {
    pub(crate) fn table(
        name: String,
        sql: String,
        output_topic: String,
        plan: Box<TablePlan>,
    ) -> Result<Self, StreamError> {
        let op = WindowAggregate::new(plan.config.clone())?;
        Ok(Self::with_kind(
            name,
            sql,
            output_topic,
            Kind::Table {
                plan,
                op: Box::new(op),
            },
        ))
    }

    pub(crate) fn stream(
        name: String,
        sql: String,
        output_topic: String,
        plan: StreamPlan,
    ) -> Self {
        Self::with_kind(name, sql, output_topic, Kind::Stream { plan })
    }

    fn with_kind(name: String, sql: String, output_topic: String, kind: Kind) -> Self {
        Self {
            name,
            sql,
            output_topic,
            kind,
            row: Vec::new(),
            scratch: Output::default(),
            agg_row: Vec::new(),
        }
    }

    /// The query's name: the created table or stream, lower-cased (also the operator and
    /// checkpoint name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `CREATE … AS SELECT` text it was compiled from.
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The stream it reads.
    pub fn source(&self) -> &Arc<StreamDef> {
        match &self.kind {
            Kind::Table { plan, .. } => &plan.source,
            Kind::Stream { plan } => &plan.source,
        }
    }

    /// The topic it reads.
    pub fn source_topic(&self) -> &str {
        &self.source().topic
    }

    /// The topic its rows are published to (the name, lower-cased, unless `WITH
    /// (KAFKA_TOPIC=…)` said otherwise).
    pub fn output_topic(&self) -> &str {
        &self.output_topic
    }

    /// Where late source records go: `<source topic>.late`.
    pub fn late_topic(&self) -> String {
        format!("{}.late", self.source_topic())
    }

    /// Whether it is a table (an aggregation) rather than a stream.
    pub fn is_table(&self) -> bool {
        matches!(self.kind, Kind::Table { .. })
    }

    /// The output columns.
    pub fn columns(&self) -> &[ColumnDef] {
        match &self.kind {
            Kind::Table { plan, .. } => &plan.columns,
            Kind::Stream { plan } => &plan.columns,
        }
    }

    /// The window operator's configuration (tables only).
    pub fn operator_config(&self) -> Option<&WindowAggregateConfig> {
        match &self.kind {
            Kind::Table { plan, .. } => Some(&plan.config),
            Kind::Stream { .. } => None,
        }
    }

    /// The window operator holding the materialized table (tables only).
    pub fn operator(&self) -> Option<&WindowAggregate> {
        match &self.kind {
            Kind::Table { op, .. } => Some(op),
            Kind::Stream { .. } => None,
        }
    }

    /// The compiled table plan (tables only).
    pub fn table_plan(&self) -> Option<&TablePlan> {
        match &self.kind {
            Kind::Table { plan, .. } => Some(plan),
            Kind::Stream { .. } => None,
        }
    }

    /// Processes one source record value (`partition`/`offset` where it was read,
    /// `record_timestamp_ms` its log timestamp, used when the stream declares no
    /// `TIMESTAMP` column), appending output rows to `out`.
    pub fn process(
        &mut self,
        value: &[u8],
        partition: u32,
        offset: u64,
        record_timestamp_ms: i64,
        out: &mut Vec<OutputRow>,
    ) -> Result<Processed, RecordError> {
        let Self {
            kind,
            row,
            scratch,
            agg_row,
            ..
        } = self;
        let source = match kind {
            Kind::Table { plan, .. } => &plan.source,
            Kind::Stream { plan } => &plan.source,
        };
        source
            .decode_into(value, row)
            .map_err(RecordError::Decode)?;
        let event_time = source
            .event_time(row, record_timestamp_ms)
            .map_err(RecordError::Timestamp)?;
        match kind {
            Kind::Stream { plan } => {
                if let Some(f) = &plan.filter
                    && f.eval(row) != Value::Bool(true)
                {
                    return Ok(Processed::Filtered);
                }
                let mut obj = serde_json::Map::with_capacity(plan.columns.len());
                for (col, e) in plan.columns.iter().zip(&plan.projection) {
                    obj.insert(col.name.clone(), e.eval(row).to_json());
                }
                out.push(OutputRow {
                    key: format!("{partition}:{offset}"),
                    value: Some(serde_json::Value::Object(obj)),
                    window: None,
                    event_time,
                });
                Ok(Processed::Accepted)
            }
            Kind::Table { plan, op } => {
                if let Some(f) = &plan.filter
                    && f.eval(row) != Value::Bool(true)
                {
                    return Ok(Processed::Filtered);
                }
                let key = Key::new(
                    plan.group_by
                        .iter()
                        .map(|e| e.eval(row))
                        .collect::<Vec<_>>(),
                );
                let fields = plan.fields.iter().map(|e| e.eval(row)).collect();
                scratch.clear();
                op.process(
                    InputRecord {
                        partition,
                        offset,
                        event_time,
                        key,
                        fields,
                    },
                    scratch,
                );
                let late = scratch.late.first().map(|l| l.watermark);
                drain(plan, scratch, agg_row, Some(event_time), out);
                Ok(match late {
                    Some(watermark) => Processed::Late { watermark },
                    None => Processed::Accepted,
                })
            }
        }
    }

    /// Declares the source topic's partitions (tables only): each holds the watermark
    /// back until it delivers or goes idle, so results do not depend on read order.
    pub fn expect_partitions(&mut self, partitions: impl IntoIterator<Item = u32>) {
        if let Kind::Table { op, .. } = &mut self.kind {
            op.expect_partitions(partitions);
        }
    }

    /// Tells a table query the processing time (so idle partitions stop holding the
    /// watermark back) and appends the rows that closes.
    pub fn tick(&mut self, now_ms: i64, out: &mut Vec<OutputRow>) {
        if let Kind::Table { plan, op } = &mut self.kind {
            self.scratch.clear();
            op.tick(now_ms, &mut self.scratch);
            drain(plan, &mut self.scratch, &mut self.agg_row, None, out);
        }
    }

    /// End of a bounded input: closes every open window and appends the final rows.
    pub fn flush(&mut self, out: &mut Vec<OutputRow>) {
        if let Kind::Table { plan, op } = &mut self.kind {
            self.scratch.clear();
            op.flush(&mut self.scratch);
            drain(plan, &mut self.scratch, &mut self.agg_row, None, out);
        }
    }

    /// The operator's state for a checkpoint (tables only; streams are stateless).
    pub fn snapshot(&self) -> Option<OperatorSnapshot> {
        self.operator().map(WindowAggregate::snapshot)
    }

    /// Replaces the operator's state with a snapshot taken by [`Self::snapshot`] of the
    /// same query.
    pub fn restore(&mut self, snapshot: OperatorSnapshot) -> Result<(), StreamError> {
        match &mut self.kind {
            Kind::Table { plan, op } => {
                **op = WindowAggregate::restore(plan.config.clone(), snapshot)?;
                Ok(())
            }
            Kind::Stream { .. } => Err(StreamError::CheckpointMismatch {
                operator: self.name.clone(),
                reason: "a stream query has no state to restore".into(),
            }),
        }
    }
}

/// The aggregated row `[key…, WINDOWSTART, WINDOWEND, aggregates…]` of an operator row,
/// filtered by `HAVING` and projected: the output values, or `None` when `HAVING` fails.
pub(crate) fn table_row(
    plan: &TablePlan,
    row: &WindowRow,
    agg_row: &mut Vec<Value>,
) -> Option<Vec<Value>> {
    aggregated_row(plan, row, agg_row)
        .then(|| plan.projection.iter().map(|e| e.eval(agg_row)).collect())
}

/// Fills `agg_row` for `row`; false when `HAVING` rejects it.
fn aggregated_row(plan: &TablePlan, row: &WindowRow, agg_row: &mut Vec<Value>) -> bool {
    agg_row.clear();
    agg_row.extend(row.key.parts().iter().cloned());
    match row.window {
        Some(w) => {
            agg_row.push(Value::Int(w.start));
            agg_row.push(Value::Int(w.end));
        }
        None => {
            agg_row.push(Value::Null);
            agg_row.push(Value::Null);
        }
    }
    agg_row.extend(row.values.iter().cloned());
    plan.having
        .as_ref()
        .is_none_or(|h| h.eval(agg_row) == Value::Bool(true))
}

fn drain(
    plan: &TablePlan,
    scratch: &mut Output,
    agg_row: &mut Vec<Value>,
    event_time: Option<i64>,
    out: &mut Vec<OutputRow>,
) {
    for r in &scratch.retractions {
        // A session that grew at its end keeps its start, and so its output key: the new
        // row below replaces it; a tombstone would only flicker.
        let replaced = scratch
            .rows
            .iter()
            .any(|row| row.key == r.key && row.window.map(|w| w.start) == Some(r.window.start));
        if !replaced {
            out.push(OutputRow {
                key: output_key(&r.key, Some(r.window)),
                value: None,
                window: Some(r.window),
                event_time: event_time.unwrap_or(r.window.end.saturating_sub(1)),
            });
        }
    }
    for row in &scratch.rows {
        let time = match (event_time, row.window) {
            (Some(t), _) if !row.is_final => t,
            (_, Some(w)) => w.end.saturating_sub(1),
            (t, None) => t.unwrap_or(0),
        };
        let value = aggregated_row(plan, row, agg_row).then(|| {
            let mut obj = serde_json::Map::with_capacity(plan.columns.len());
            for (col, e) in plan.columns.iter().zip(&plan.projection) {
                obj.insert(col.name.clone(), e.eval(agg_row).to_json());
            }
            serde_json::Value::Object(obj)
        });
        // A final row that fails HAVING never existed downstream: no tombstone needed.
        if value.is_none() && row.is_final {
            continue;
        }
        out.push(OutputRow {
            key: output_key(&row.key, row.window),
            value,
            window: row.window,
            event_time: time,
        });
    }
    scratch.clear();
}
