//! The continuous-query runner: what drives one [`ContinuousQuery`] from the event log in
//! `sightline run`, so that a `CREATE TABLE … AS SELECT` keeps its output topic and its
//! materialized rows current and survives `kill -9`.
//!
//! Each query runs on its own: its own consumer group and checkpoint (both named
//! [`job_name`], from the definition's UUIDv7, so a table dropped and created again under
//! the same name starts afresh), reading its source topic **from the beginning** of what
//! the log retains, like ksqlDB with `auto.offset.reset = earliest`. The loop is the rollup
//! runner's ([`crate::runner`]): restore the checkpoint and skip what it covers; per batch,
//! feed the query and write what it returns before moving on; tick every second so idle
//! partitions release the watermark; save the checkpoint, **then** commit its offsets.
//!
//! What a query writes:
//! - every output row to its output topic (JSON; key = the row's deterministic
//!   [`output_key`](super::output_key); a deleted row is a record with an empty value);
//! - for tables, the current rows to the store's `query_rows` (upserts by row key, only the
//!   last version of a row within a batch), which pull queries read;
//! - late source records, unchanged, to `<source>.late`;
//! - source records it cannot decode, unchanged with an `error` header, to `<output>.dlq`.
//!
//! A replay after a crash produces the same rows with the same keys, so the store upserts
//! them and a consumer of the output topic that keeps the latest value per key sees the
//! same table as after an uninterrupted run.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_log::{Delivered, EventLog, Record, Subscription, TopicConfig};
use sightline_store::{QueryRow, Store, StreamStatement};

use super::catalog::{Catalog, CatalogDefinitions, StoredStatement};
use super::query::{ContinuousQuery, OutputRow, Processed};
use crate::checkpoint::{Checkpoint, CheckpointStore, SourcePositions};
use crate::error::StreamError;
use crate::runner::{commit_positions, retry_store_write, seek_to};
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

    let mut runner = QueryRunner {
        log,
        store,
        statement_id,
        config,
        topics,
        restored: restored.clone(),
        positions: restored,
        rows: Vec::new(),
        late: Vec::new(),
        dead: Vec::new(),
        dirty: false,
    };
    let mut tick = tokio::time::interval(runner.config.tick_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint = Instant::now();
    let batch_size = runner.config.batch_size.max(1);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = tick.tick() => {
                query.tick(now_ms(), &mut runner.rows);
            }
            batch = sub.next_batch(batch_size) => {
                runner.process(&mut query, &batch?);
            }
        }
        if !runner
            .flush(query.name(), query.is_table(), &mut shutdown)
            .await?
        {
            return Ok(());
        }
        if runner.dirty && last_checkpoint.elapsed() >= runner.config.checkpoint_interval {
            runner
                .checkpoint(&query, checkpoints.as_ref(), &job, sub.as_mut())
                .await?;
            last_checkpoint = Instant::now();
        }
    }
    if runner.dirty {
        runner
            .checkpoint(&query, checkpoints.as_ref(), &job, sub.as_mut())
            .await?;
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

/// The runner's I/O side: decoding input and writing the query's output.
struct QueryRunner {
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    statement_id: String,
    config: QueryRunnerConfig,
    topics: QueryTopics,
    restored: SourcePositions,
    positions: SourcePositions,
    rows: Vec<OutputRow>,
    late: Vec<Record>,
    dead: Vec<Record>,
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
                &mut self.rows,
            ) {
                Ok(Processed::Accepted | Processed::Filtered) => {}
                Ok(Processed::Late { .. }) => self.late.push(d.record.clone()),
                Err(error) => {
                    metrics::counter!(telemetry::SQL_REJECTED, "query" => name.clone())
                        .increment(1);
                    tracing::debug!(query = %name, topic = %d.topic, partition = d.partition,
                        offset = d.offset, %error, "continuous query: dead-lettering a record");
                    self.dead
                        .push(d.record.clone().with_header("error", error.to_string()));
                }
            }
        }
    }

    /// Writes everything the query produced. Returns `false` when shutdown arrived while a
    /// store write was being retried (nothing is checkpointed then).
    async fn flush(
        &mut self,
        query: &str,
        is_table: bool,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<bool, StreamError> {
        let rows = std::mem::take(&mut self.rows);
        let late = std::mem::take(&mut self.late);
        let dead = std::mem::take(&mut self.dead);
        if !late.is_empty() {
            metrics::counter!(telemetry::SQL_LATE, "query" => query.to_owned())
                .increment(late.len() as u64);
            self.log.append(&self.topics.late, late).await?;
        }
        if !dead.is_empty() {
            self.log.append(&self.topics.dead_letters, dead).await?;
        }
        if rows.is_empty() {
            return Ok(true);
        }
        self.dirty = true;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            let value = match &row.value {
                Some(v) => serde_json::to_vec(v).map_err(|e| StreamError::Encode(e.to_string()))?,
                None => Vec::new(),
            };
            records.push(Record::new(Some(&row.key), value, row.event_time));
        }
        self.log.append(&self.topics.output, records).await?;
        metrics::counter!(telemetry::SQL_OUT, "query" => query.to_owned())
            .increment(rows.len() as u64);

        let stored = if is_table {
            latest_per_key(&rows)
        } else {
            Vec::new()
        };
        if !stored.is_empty() {
            let (store, id) = (self.store.clone(), self.statement_id.clone());
            let written = retry_store_write(
                self.config.retry_backoff,
                shutdown,
                || {
                    let (store, id, stored) = (store.clone(), id.clone(), &stored);
                    async move { store.write_query_rows(&id, stored).await }
                },
                |error| {
                    metrics::counter!(telemetry::SQL_WRITE_ERRORS, "query" => query.to_owned())
                        .increment(1);
                    tracing::warn!(%error, query, "continuous query: writing rows failed; retrying");
                },
            )
            .await;
            if !written {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Saves the query's checkpoint, then commits the positions it covers.
    async fn checkpoint(
        &mut self,
        query: &ContinuousQuery,
        checkpoints: &dyn CheckpointStore,
        job: &str,
        sub: &mut dyn Subscription,
    ) -> Result<(), StreamError> {
        let mut checkpoint = Checkpoint {
            positions: self.positions.clone(),
            ..Checkpoint::default()
        };
        if let Some(snapshot) = query.snapshot() {
            checkpoint.insert(snapshot);
        }
        checkpoints.save_checkpoint(job, &checkpoint).await?;
        commit_positions(sub, &checkpoint.positions).await?;
        self.dirty = false;
        Ok(())
    }
}

/// The store rows for a batch of table output: the last version of each row key.
fn latest_per_key(rows: &[OutputRow]) -> Vec<QueryRow> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<QueryRow> = Vec::new();
    for row in rows {
        let stored = QueryRow {
            key: row.key.clone(),
            // A windowed row's key ends in `@<window start>`; the group key is before it.
            group_key: match row.window {
                Some(_) => row.key.rsplit_once('@').map_or(&*row.key, |(k, _)| k),
                None => &row.key,
            }
            .to_owned(),
            window_start: row.window.map(|w| w.start),
            window_end: row.window.map(|w| w.end),
            value: row.value.clone(),
            event_time: row.event_time,
        };
        match index.get(row.key.as_str()) {
            Some(&i) => out[i] = stored,
            None => {
                index.insert(&row.key, out.len());
                out.push(stored);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Window;

    fn row(key: &str, window: Option<Window>, n: i64) -> OutputRow {
        OutputRow {
            key: key.into(),
            value: Some(serde_json::json!({ "n": n })),
            window,
            event_time: n,
        }
    }

    #[test]
    fn keeps_the_last_version_of_each_row_and_its_group_key() {
        let w = Window {
            start: 60,
            end: 120,
        };
        let rows = [
            row("[\"a\"]", None, 1),
            row("[\"b\"]@60", Some(w), 2),
            row("[\"a\"]", None, 3),
        ];
        let stored = latest_per_key(&rows);
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].value, Some(serde_json::json!({ "n": 3 })));
        assert_eq!(stored[1].group_key, "[\"b\"]");
        assert_eq!(stored[1].window_end, Some(120));
    }
}
