//! The continuous-query runner: what drives one [`ContinuousQuery`] from the event log in
//! `sightline run`, so that a `CREATE TABLE … AS SELECT` keeps its output topic and its
//! materialized rows current and survives `kill -9`.
//!
//! Each query runs on its own: its own consumer group and checkpoint (both named
//! [`job_name`], from the definition's UUIDv7, so a table dropped and created again under
//! the same name starts afresh), reading its source topic **from the beginning** of what
//! the log retains, like ksqlDB with `auto.offset.reset = earliest`. The loop is the rollup
//! runner's ([`crate::runner`]): restore the checkpoint and skip what it covers; per batch,
//! feed the query and hand what it returns to the query's output pipeline
//! (the `output` module: appended and stored by two tasks while the next batch is
//! processed); tick every second so idle partitions release the watermark; save the
//! checkpoint behind the output it covers, **then** commit its offsets.
//!
//! What a query writes:
//! - every output row to its output topic (JSON; key = the row's deterministic
//!   [`output_key`](super::output_key); a deleted row is a record with an empty value);
//! - for tables, the current rows to the store's `query_rows` (upserts by row key, only the
//!   last version of a row among the batches waiting to be stored), which pull queries read;
//! - late source records, unchanged, to `<source>.late`;
//! - source records it cannot decode, unchanged with an `error` header, to `<output>.dlq`.
//!
//! A replay after a crash produces the same rows with the same keys, so the store upserts
//! them and a consumer of the output topic that keeps the latest value per key sees the
//! same table as after an uninterrupted run.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_log::{Delivered, EventLog, TopicConfig};
use sightline_store::{Store, StreamStatement};

use super::catalog::{Catalog, CatalogDefinitions, StoredStatement};
use super::output::{Output, OutputPipeline, Sinks};
use super::query::{ContinuousQuery, Processed};
use crate::checkpoint::{Checkpoint, CheckpointStore, SourcePositions};
use crate::error::StreamError;
use crate::runner::{commit_positions, seek_to};
use crate::telemetry;
use sightline_model::clock::now_ms;

/// Retention of the topics a query creates (output, `.late`, `.dlq`): 7 days.
const TOPIC_RETENTION_MS: i64 = 7 * 24 * 60 * 60 * 1000;

/// Settings of a query runner.
#[derive(Clone, Debug)]
pub struct QueryRunnerConfig {
    /// How often state is checkpointed and offsets committed.
    pub checkpoint_interval: Duration,
    /// How often the query is told the processing time.
    pub tick_interval: Duration,
    /// Most records read at a time.
    pub batch_size: usize,
    /// Pause before retrying a failed store write.
    pub retry_backoff: Duration,
    /// Partitions of a source topic that does not exist yet when the query starts.
    pub source_partitions: u32,
}

impl Default for QueryRunnerConfig {
    fn default() -> Self {
        Self {
            checkpoint_interval: Duration::from_secs(5),
            tick_interval: Duration::from_secs(1),
            batch_size: 5000,
            retry_backoff: Duration::from_millis(500),
            source_partitions: 4,
        }
    }
}

/// The consumer group and checkpoint name of the query defined by `statement_id`.
pub fn job_name(statement_id: &str) -> String {
    format!("sql-{statement_id}")
}

/// The statements a query needs to compile: every stored statement up to and including
/// its own (later ones cannot be referenced by it).
fn definitions_for(statements: &[StreamStatement], query_id: &str) -> Option<CatalogDefinitions> {
    let end = statements.iter().position(|s| s.id == query_id)?;
    Some(CatalogDefinitions {
        statements: statements[..=end]
            .iter()
            .map(|s| StoredStatement {
                name: s.name.clone(),
                sql: s.sql.clone(),
            })
            .collect(),
    })
}

/// Compiles the query defined by `query_id` from the stored statements; `None` when the
/// statement creates a plain source stream (nothing to run).
pub fn compile(
    statements: &[StreamStatement],
    query_id: &str,
) -> Result<Option<ContinuousQuery>, StreamError> {
    let Some(defs) = definitions_for(statements, query_id) else {
        return Err(StreamError::InvalidConfig(format!(
            "no statement with id '{query_id}'"
        )));
    };
    let name = defs
        .statements
        .last()
        .map(|s| s.name.clone())
        .unwrap_or_default();
    let mut catalog = Catalog::from_definitions(&defs)?;
    Ok(catalog.take_query(&name))
}

/// Runs the continuous query `query` (compiled from the statement `statement_id`) until
/// `shutdown` completes (then saves a final checkpoint and returns `Ok`), or until the log
/// or the checkpoint store fails. See the module docs.
pub async fn run_query(
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    statement_id: String,
    mut query: ContinuousQuery,
    checkpoints: Arc<dyn CheckpointStore>,
    config: QueryRunnerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StreamError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let job = job_name(&statement_id);
    let source = query.source_topic().to_owned();
    let topics = QueryTopics::of(&query);
    let partitions = ensure_topics(log.as_ref(), &query, config.source_partitions).await?;
    let restored = restore(&mut query, checkpoints.as_ref(), &job).await?;
    query.expect_partitions(0..partitions);
    let mut sub = log.subscribe(&job, &[source.as_str()]).await?;
    seek_to(sub.as_mut(), &restored, &job);
    tracing::info!(query = query.name(), group = %job, "continuous query started");

    let mut outputs = OutputPipeline::start(Sinks {
        log,
        store,
        checkpoints,
        query: query.name().to_owned(),
        statement_id,
        job,
        is_table: query.is_table(),
        output_topic: topics.output,
        late_topic: topics.late,
        dead_letter_topic: topics.dead_letters,
        retry_backoff: config.retry_backoff,
    });
    let mut runner = QueryRunner {
        restored: restored.clone(),
        positions: restored,
        output: Output::default(),
        dirty: false,
    };
    let mut tick = tokio::time::interval(config.tick_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint = Instant::now();
    let batch_size = config.batch_size.max(1);
    // `false` once shutdown arrived while output was being handed over: what is not
    // handed over is not checkpointed either, and is replayed after the restart.
    let mut clean = true;
    // A log failure ends the loop too, but only after the output tasks have stopped, so
    // none of them still writes while the supervisor restarts the query.
    let mut failed: Option<StreamError> = None;
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            saved = outputs.saved() => match saved {
                Some(positions) => {
                    if let Err(error) = commit_positions(sub.as_mut(), &positions).await {
                        failed = Some(error.into());
                        break;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                query.tick(now_ms(), &mut runner.output.rows);
            }
            batch = sub.next_batch(batch_size) => match batch {
                Ok(batch) => runner.process(&mut query, &batch),
                Err(error) => {
                    failed = Some(error.into());
                    break;
                }
            },
        }
        if !runner.output.is_empty() {
            // Rows from a tick closed windows: state the next checkpoint must cover.
            runner.dirty = true;
            let output = std::mem::take(&mut runner.output);
            tokio::select! {
                biased;
                () = &mut shutdown => { clean = false; break }
                handed = outputs.output(output) => if !handed { break },
            }
        }
        if runner.dirty && last_checkpoint.elapsed() >= config.checkpoint_interval {
            let checkpoint = runner.checkpoint(&query);
            tokio::select! {
                biased;
                () = &mut shutdown => { clean = false; break }
                handed = outputs.checkpoint(checkpoint) => if !handed { break },
            }
            last_checkpoint = Instant::now();
        }
    }
    let last = (clean && failed.is_none() && runner.dirty).then(|| runner.checkpoint(&query));
    let finished = outputs.finish(last).await;
    if let Some(error) = failed {
        return Err(error);
    }
    if let Some(positions) = finished? {
        commit_positions(sub.as_mut(), &positions).await?;
    }
    tracing::info!(query = query.name(), "continuous query stopped");
    Ok(())
}

/// Forgets a dropped query's checkpoint.
pub async fn forget(
    checkpoints: &dyn CheckpointStore,
    statement_id: &str,
) -> Result<(), StreamError> {
    checkpoints.delete(&job_name(statement_id)).await
}

struct QueryTopics {
    output: String,
    late: String,
    dead_letters: String,
}

impl QueryTopics {
    fn of(query: &ContinuousQuery) -> Self {
        Self {
            output: query.output_topic().to_owned(),
            late: query.late_topic(),
            dead_letters: format!("{}.dlq", query.output_topic()),
        }
    }
}

/// Creates the topics a query uses when they are missing: its source (with
/// `source_partitions`, as a user topic written before any record arrives), its output
/// (as many partitions as the source, so keys spread alike), `.late` and `.dlq`. Returns
/// the source's partition count.
pub async fn ensure_topics(
    log: &dyn EventLog,
    query: &ContinuousQuery,
    source_partitions: u32,
) -> Result<u32, StreamError> {
    let stats = log.stats().await?;
    let source = query.source_topic();
    let partitions = match stats.iter().find(|t| t.name == source) {
        Some(t) => t.config.partitions.max(1),
        None => {
            create(log, source, source_partitions.max(1)).await?;
            source_partitions.max(1)
        }
    };
    let topics = QueryTopics::of(query);
    for (name, partitions) in [
        (&topics.output, partitions),
        (&topics.late, 1),
        (&topics.dead_letters, 1),
    ] {
        if !stats.iter().any(|t| &t.name == name) {
            create(log, name, partitions).await?;
        }
    }
    Ok(partitions)
}

async fn create(log: &dyn EventLog, name: &str, partitions: u32) -> Result<(), StreamError> {
    let config = TopicConfig {
        partitions,
        retention_ms: Some(TOPIC_RETENTION_MS),
        retention_bytes: None,
    };
    Ok(log.create_topic(name, config).await?)
}

/// Restores the query from its checkpoint; the positions it covers (empty without one).
async fn restore(
    query: &mut ContinuousQuery,
    checkpoints: &dyn CheckpointStore,
    job: &str,
) -> Result<SourcePositions, StreamError> {
    let loaded = match checkpoints.load_checkpoint(job).await {
        Ok(loaded) => loaded,
        Err(error @ StreamError::Io { .. }) => return Err(error),
        Err(error) => {
            tracing::error!(%error, query = query.name(), "unusable checkpoint; replaying from the start");
            None
        }
    };
    let Some(mut checkpoint) = loaded else {
        return Ok(SourcePositions::default());
    };
    if query.is_table() {
        match checkpoint.take(query.name()) {
            Some(snapshot) => {
                if let Err(error) = query.restore(snapshot) {
                    tracing::error!(%error, query = query.name(), "checkpoint does not match; replaying from the start");
                    return Ok(SourcePositions::default());
                }
            }
            None => return Ok(SourcePositions::default()),
        }
    }
    tracing::info!(query = query.name(), positions = ?checkpoint.positions, "restored checkpoint");
    Ok(checkpoint.positions)
}

/// The processing side of a running query: what it has read and produced since the last
/// hand-over.
struct QueryRunner {
    /// Positions the restored checkpoint covers: records before them are skipped.
    restored: SourcePositions,
    /// Next position to read, per source partition.
    positions: SourcePositions,
    /// Produced and not yet handed to the output pipeline.
    output: Output,
    /// State changed since the last checkpoint.
    dirty: bool,
}

impl QueryRunner {
    fn process(&mut self, query: &mut ContinuousQuery, batch: &[Delivered]) {
        let name = query.name().to_owned();
        for d in batch {
            if self
                .restored
                .get(&d.topic, d.partition)
                .is_some_and(|next| d.offset < next)
            {
                metrics::counter!(telemetry::SQL_REPLAY_SKIPPED, "query" => name.clone())
                    .increment(1);
                continue;
            }
            metrics::counter!(telemetry::SQL_IN, "query" => name.clone()).increment(1);
            self.dirty = true;
            self.positions.advance(&d.topic, d.partition, d.offset);
            match query.process(
                &d.record.value,
                d.partition,
                d.offset,
                d.record.timestamp,
                &mut self.output.rows,
            ) {
                Ok(Processed::Accepted | Processed::Filtered) => {}
                Ok(Processed::Late { .. }) => self.output.late.push(d.record.clone()),
                Err(error) => {
                    metrics::counter!(telemetry::SQL_REJECTED, "query" => name.clone())
                        .increment(1);
                    tracing::debug!(query = %name, topic = %d.topic, partition = d.partition,
                        offset = d.offset, %error, "continuous query: dead-lettering a record");
                    self.output
                        .dead
                        .push(d.record.clone().with_header("error", error.to_string()));
                }
            }
        }
    }

    /// The query's state and the positions it covers; the state is clean from here on.
    fn checkpoint(&mut self, query: &ContinuousQuery) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            positions: self.positions.clone(),
            ..Checkpoint::default()
        };
        if let Some(snapshot) = query.snapshot() {
            checkpoint.insert(snapshot);
        }
        self.dirty = false;
        checkpoint
    }
}
