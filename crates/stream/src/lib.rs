//! The stream engine: event-time windows, mergeable aggregates, watermarks and crash-safe
//! checkpoints — what turns the event log into live aggregates.
//!
//! The principal type is [`WindowAggregate`], a keyed, windowed aggregation operator
//! configured by a plain [`WindowAggregateConfig`]: a [`WindowSpec`] (tumbling, hopping,
//! session or unwindowed), a list of [`AggregateSpec`]s (`COUNT`, `COUNT_DISTINCT`, `SUM`,
//! `MIN`, `MAX`, `AVG`, `STDDEV`, `P50/P95/P99`, `LATEST/EARLIEST_BY_OFFSET`, `TOPK`), an
//! [`EmitMode`] and [`WatermarkConfig`]. Decoded [`InputRecord`]s (partition, offset, event
//! time, group [`Key`], fields as [`Value`]s) go in; [`WindowRow`]s and [`LateRecord`]s come
//! out in an [`Output`]. Nothing is dropped silently: a record whose windows have all
//! closed comes back as late, for the caller to write to `<topic>.late`.
//!
//! Continuous SQL ([`sql`]) compiles ksqlDB-style statements onto these operators: a
//! [`sql::Catalog`] holds streams and running [`sql::ContinuousQuery`]s, answers pull
//! queries from their state, and stores its definitions as SQL text.
//!
//! The engine does no I/O. A job (the built-in [`rollup::RollupJob`], or a continuous SQL
//! query compiled onto [`WindowAggregateConfig`]) reads a log subscription, feeds its
//! operators, publishes their rows, and periodically saves a [`Checkpoint`] — every
//! operator's [`OperatorSnapshot`] plus the [`SourcePositions`] it reflects — to a
//! [`CheckpointStore`] before committing those positions. After a crash it restores the
//! checkpoint and replays from the positions; operators are deterministic, so the results
//! equal those of an uninterrupted run.
//!
//! ```
//! use sightline_stream::{
//!     AggregateKind, AggregateSpec, EmitMode, InputRecord, Key, Output, Value,
//!     WindowAggregate, WindowAggregateConfig, WindowSpec,
//! };
//!
//! // SELECT service, COUNT(*) AS n, AVG(latency) AS avg_latency
//! // FROM requests WINDOW TUMBLING (SIZE 1 MINUTE) GROUP BY service EMIT FINAL
//! let config = WindowAggregateConfig::new(
//!     "per-service-latency",
//!     WindowSpec::Tumbling { size_ms: 60_000 },
//!     vec![
//!         AggregateSpec::count_star("n"),
//!         AggregateSpec::new(AggregateKind::Avg, 0, "avg_latency"),
//!     ],
//!     EmitMode::Final,
//! );
//! let mut op = WindowAggregate::new(config)?;
//! let mut out = Output::default();
//! for (offset, (t, ms)) in [(1_000, 120), (30_000, 80), (70_000, 95)].into_iter().enumerate() {
//!     op.process(InputRecord {
//!         partition: 0,
//!         offset: offset as u64,
//!         event_time: t,
//!         key: Key::from([Value::string("checkout")]),
//!         fields: vec![Value::Int(ms)],
//!     }, &mut out);
//! }
//! // The watermark (70 s − 5 s of allowed out-of-orderness) closed the first minute.
//! assert_eq!(out.rows.len(), 1);
//! assert_eq!(out.rows[0].values, vec![Value::Int(2), Value::Float(100.0)]);
//! # Ok::<(), sightline_stream::StreamError>(())
//! ```

pub mod aggregate;
pub mod checkpoint;
mod error;
pub mod operator;
pub mod rollup;
pub mod runner;
pub mod sql;
mod telemetry;
mod value;
pub mod watermark;
pub mod window;

pub use aggregate::{Accumulator, Accumulators, AggregateKind, AggregateSpec};
pub use checkpoint::{Checkpoint, CheckpointStore, FileCheckpointStore, SourcePositions};
pub use error::StreamError;
pub use operator::{
    EmitMode, InputRecord, LateRecord, OperatorSnapshot, Output, Retraction, WindowAggregate,
    WindowAggregateConfig, WindowRow,
};
pub use value::{Key, Value};
pub use watermark::{WatermarkConfig, Watermarks};
pub use window::{Window, WindowSpec};
