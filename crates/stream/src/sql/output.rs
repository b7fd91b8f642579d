//! The output side of a continuous query, pipelined behind its processing.
//!
//! ```text
//! processing ──Output──► appender ──rows──► storer ──► `query_rows`
//!            ─Checkpoint─►         ─Checkpoint─►       then the checkpoint, then `saved`
//! ```
//!
//! The processing loop hands each batch's output over and reads on; two tasks write it:
//!
//! - the **appender** appends rows to the output topic (and records to `.late` / `.dlq`),
//!   several queued batches in one append, so rows reach the topic (and so push clients,
//!   which tail it) without waiting for the store;
//! - the **storer** upserts a table's rows into the store, only the newest version of each
//!   row among everything queued while it was busy. Under a high rate of `EMIT CHANGES`
//!   rows this coalescing is most of the store's work saved.
//!
//! A checkpoint travels down the same queues, behind the output of the records it covers:
//! the storer saves it only once everything before it is appended and stored, then
//! publishes its positions on [`OutputPipeline::saved`] for the processing loop to commit.
//! So the guarantee is unchanged: a checkpoint never covers output that is not written.
//! Both queues are bounded; a slow store slows the query down instead of growing memory.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sightline_log::{EventLog, Record};
use sightline_store::{QueryRow, Store};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::query::OutputRow;
use crate::checkpoint::{Checkpoint, CheckpointStore, SourcePositions};
use crate::error::StreamError;
use crate::runner::retry_store_write;
use crate::telemetry;

/// Steps queued between processing and the appender.
const APPEND_QUEUE: usize = 4;
/// Steps queued between the appender and the storer.
const STORE_QUEUE: usize = 16;
/// Most queued steps the appender merges into one round of appends.
const MAX_MERGED_STEPS: usize = 64;

/// What one batch of input produced.
#[derive(Debug, Default)]
pub(super) struct Output {
    /// Rows for the output topic (and, for a table, the store).
    pub rows: Vec<OutputRow>,
    /// Source records too late for their window, for `.late`.
    pub late: Vec<Record>,
    /// Source records that could not be decoded, for `.dlq`.
    pub dead: Vec<Record>,
}

impl Output {
    pub(super) fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.late.is_empty() && self.dead.is_empty()
    }

    fn append(&mut self, mut other: Output) {
        self.rows.append(&mut other.rows);
        self.late.append(&mut other.late);
        self.dead.append(&mut other.dead);
    }
}

/// What the appender is handed.
#[derive(Debug)]
enum Step {
    Output(Output),
    Checkpoint(Box<Checkpoint>),
}

/// What the storer is handed.
#[derive(Debug)]
enum Stored {
    Rows(Vec<OutputRow>),
    Checkpoint(Box<Checkpoint>),
}

/// Where a query's output goes.
#[derive(Debug)]
pub(super) struct Sinks {
    pub log: Arc<dyn EventLog>,
    pub store: Arc<dyn Store>,
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// The query's name (metric label).
    pub query: String,
    /// The statement id the store keys rows by.
    pub statement_id: String,
    /// The checkpoint's name.
    pub job: String,
    /// A table's rows are stored; a stream's only appended.
    pub is_table: bool,
    pub output_topic: String,
    pub late_topic: String,
    pub dead_letter_topic: String,
    /// Pause before retrying a failed store write.
    pub retry_backoff: Duration,
}

/// The two output tasks of a running query and the queues that feed them.
#[derive(Debug)]
pub(super) struct OutputPipeline {
    steps: mpsc::Sender<Step>,
    saved: watch::Receiver<Option<SourcePositions>>,
    stop: watch::Sender<bool>,
    appender: JoinHandle<Result<(), StreamError>>,
    storer: JoinHandle<Result<(), StreamError>>,
}

impl OutputPipeline {
    /// Starts the appender and the storer.
    pub(super) fn start(sinks: Sinks) -> Self {
        let sinks = Arc::new(sinks);
        let (steps, step_rx) = mpsc::channel(APPEND_QUEUE);
        let (stored_tx, stored_rx) = mpsc::channel(STORE_QUEUE);
        let (saved_tx, saved) = watch::channel(None);
        let (stop, stop_rx) = watch::channel(false);
        let appender = tokio::spawn(run_appender(sinks.clone(), step_rx, stored_tx));
        let storer = tokio::spawn(run_storer(sinks, stored_rx, saved_tx, stop_rx));
        Self {
            steps,
            saved,
            stop,
            appender,
            storer,
        }
    }

    /// Hands a batch's output over; waits while the queue is full. `false` when the
    /// pipeline has stopped (a stage failed: [`finish`](Self::finish) says why).
    pub(super) async fn output(&self, output: Output) -> bool {
        self.steps.send(Step::Output(output)).await.is_ok()
    }

    /// Hands a checkpoint over, to be saved once the output before it is written.
    pub(super) async fn checkpoint(&self, checkpoint: Checkpoint) -> bool {
        self.steps
            .send(Step::Checkpoint(Box::new(checkpoint)))
            .await
            .is_ok()
    }

    /// The positions of the next checkpoint saved; `None` once the pipeline has stopped.
    /// Cancel-safe.
    pub(super) async fn saved(&mut self) -> Option<SourcePositions> {
        self.saved.changed().await.ok()?;
        self.saved.borrow_and_update().clone()
    }

    /// Writes what is queued, then `last` (a final checkpoint), and stops. A store write
    /// failing from now on is not retried. Returns the positions of the newest checkpoint
    /// saved (committing them again is harmless), or the error that stopped a stage.
    pub(super) async fn finish(
        mut self,
        last: Option<Checkpoint>,
    ) -> Result<Option<SourcePositions>, StreamError> {
        self.stop.send_replace(true);
        if let Some(checkpoint) = last {
            // Refused only when a stage has already stopped; its result says why.
            let _ = self.checkpoint(checkpoint).await;
        }
        drop(self.steps);
        let appended = join(self.appender).await;
        let stored = join(self.storer).await;
        appended.and(stored)?;
        Ok(self.saved.borrow_and_update().clone())
    }
}

async fn join(task: JoinHandle<Result<(), StreamError>>) -> Result<(), StreamError> {
    task.await
        .map_err(|e| StreamError::TaskFailed(e.to_string()))?
}

async fn run_appender(
    sinks: Arc<Sinks>,
    mut steps: mpsc::Receiver<Step>,
    stored: mpsc::Sender<Stored>,
) -> Result<(), StreamError> {
    let mut merged = Vec::new();
    while let Some(first) = steps.recv().await {
        merged.push(first);
        while merged.len() < MAX_MERGED_STEPS {
            match steps.try_recv() {
                Ok(step) => merged.push(step),
                Err(_) => break,
            }
        }
        let mut pending = Output::default();
        for step in merged.drain(..) {
            match step {
                Step::Output(output) => pending.append(output),
                Step::Checkpoint(checkpoint) => {
                    if !append(&sinks, std::mem::take(&mut pending), &stored).await?
                        || stored.send(Stored::Checkpoint(checkpoint)).await.is_err()
                    {
                        return Ok(());
                    }
                }
            }
        }
        if !append(&sinks, pending, &stored).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Appends one round of output and hands a table's rows to the storer; `false` when the
/// storer has stopped.
async fn append(
    sinks: &Sinks,
    output: Output,
    stored: &mpsc::Sender<Stored>,
) -> Result<bool, StreamError> {
    let Output { rows, late, dead } = output;
    if !late.is_empty() {
        metrics::counter!(telemetry::SQL_LATE, "query" => sinks.query.clone())
            .increment(late.len() as u64);
        sinks.log.append(&sinks.late_topic, late).await?;
    }
    if !dead.is_empty() {
        sinks.log.append(&sinks.dead_letter_topic, dead).await?;
    }
    if rows.is_empty() {
        return Ok(true);
    }
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let value = match &row.value {
            Some(v) => serde_json::to_vec(v).map_err(|e| StreamError::Encode(e.to_string()))?,
            None => Vec::new(),
        };
        records.push(Record::new(Some(&row.key), value, row.event_time));
    }
    sinks.log.append(&sinks.output_topic, records).await?;
    metrics::counter!(telemetry::SQL_OUT, "query" => sinks.query.clone())
        .increment(rows.len() as u64);
    Ok(!sinks.is_table || stored.send(Stored::Rows(rows)).await.is_ok())
}

async fn run_storer(
    sinks: Arc<Sinks>,
    mut queue: mpsc::Receiver<Stored>,
    saved: watch::Sender<Option<SourcePositions>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), StreamError> {
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    let mut stopping = std::pin::pin!(stopping);
    let mut upserts = RowUpserts::default();
    while let Some(first) = queue.recv().await {
        let mut next = Some(first);
        while let Some(step) = next.take() {
            match step {
                Stored::Rows(rows) => upserts.add(&rows),
                Stored::Checkpoint(checkpoint) => {
                    if !store(&sinks, &mut upserts, &mut stopping).await {
                        return Ok(());
                    }
                    sinks
                        .checkpoints
                        .save_checkpoint(&sinks.job, &checkpoint)
                        .await?;
                    saved.send_replace(Some(checkpoint.positions));
                }
            }
            next = queue.try_recv().ok();
        }
        if !store(&sinks, &mut upserts, &mut stopping).await {
            return Ok(());
        }
    }
    Ok(())
}

/// Writes the pending rows, retrying until it succeeds (`true`) or the pipeline is told to
/// stop (`false`).
async fn store(
    sinks: &Sinks,
    upserts: &mut RowUpserts,
    stopping: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    let rows = upserts.take();
    if rows.is_empty() {
        return true;
    }
    retry_store_write(
        sinks.retry_backoff,
        stopping,
        || sinks.store.write_query_rows(&sinks.statement_id, &rows),
        |error| {
            metrics::counter!(telemetry::SQL_WRITE_ERRORS, "query" => sinks.query.clone())
                .increment(1);
            tracing::warn!(%error, query = %sinks.query, "continuous query: writing rows failed; retrying");
        },
    )
    .await
}

/// The store rows pending for a table: the last version of each row key, in the order
/// the keys first appeared.
#[derive(Debug, Default)]
struct RowUpserts {
    index: HashMap<String, usize>,
    rows: Vec<QueryRow>,
}

impl RowUpserts {
    fn add(&mut self, rows: &[OutputRow]) {
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
            match self.index.get(row.key.as_str()) {
                Some(&i) => self.rows[i] = stored,
                None => {
                    self.index.insert(row.key.clone(), self.rows.len());
                    self.rows.push(stored);
                }
            }
        }
    }

    fn take(&mut self) -> Vec<QueryRow> {
        self.index.clear();
        std::mem::take(&mut self.rows)
    }
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
    fn keeps_the_last_version_of_each_row_and_its_group_key_across_batches() {
        let w = Window {
            start: 60,
            end: 120,
        };
        let mut upserts = RowUpserts::default();
        upserts.add(&[row("[\"a\"]", None, 1), row("[\"b\"]@60", Some(w), 2)]);
        upserts.add(&[row("[\"a\"]", None, 3)]);
        let stored = upserts.take();
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].value, Some(serde_json::json!({ "n": 3 })));
        assert_eq!(stored[1].group_key, "[\"b\"]");
        assert_eq!(stored[1].window_end, Some(120));
        assert!(upserts.take().is_empty(), "taken rows are gone");
        upserts.add(&[row("[\"a\"]", None, 4)]);
        assert_eq!(upserts.take().len(), 1, "the index was reset with the rows");
    }
}
