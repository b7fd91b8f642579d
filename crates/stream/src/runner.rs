//! The rollup runner: what drives [`RollupJob`] from the event log in `sightline run`, so
//! that every metric and event turns into stored, published rollups that survive `kill -9`.
//!
//! [`run_rollups`] joins consumer group [`GROUP`] on `metrics.raw` + `system-events` and
//! loops:
//!
//! 1. **restore** — loads the `rollups` checkpoint from the [`CheckpointStore`] and
//!    restores the job from it (or starts empty), then seeks the subscription to the
//!    checkpoint's positions. Records the log still delivers below those positions (a
//!    crash between saving a checkpoint and committing its offsets redelivers them) are
//!    **skipped**: their effect is already in the restored state.
//! 2. **per batch** — decodes each record (JSON, or Avro in the Confluent wire format
//!    with a codec; undecodable records are counted and skipped), feeds the job, and
//!    writes what it returns: rollups to `metrics.aggregated` (JSON, key [`Rollup::id`])
//!    and to the store's `aggregations`, event counters to `event_counts` (both upserts by
//!    deterministic id), late records, unchanged, to `metrics.raw.late` /
//!    `system-events.late`. Outputs are written before the runner moves on.
//! 3. **every second** — `tick(now)`, so idle partitions release the watermark.
//! 4. **every `checkpoint_interval`** — saves the checkpoint (atomically, see
//!    [`crate::FileCheckpointStore`]) and **then** commits the offsets it covers.
//!
//! Why this is effectively once: a checkpoint is saved only after every output of the
//! state it holds was written, and offsets are committed only after the checkpoint that
//! covers them. A crash anywhere restores the last checkpoint and replays from its
//! positions; the engine is deterministic, so the replay produces the same rows with the
//! same ids, which upsert — nothing acknowledged is lost and nothing is duplicated.
//! A graceful shutdown saves a final checkpoint.
//!
//! Failures: a store write is retried with the same rows after a pause until it succeeds
//! or shutdown (then the runner stops without a checkpoint: the rows are replayed next
//! time). A log failure (read, append, commit) or a checkpoint failure is returned; the
//! node's supervisor restarts the runner, which resumes from the last checkpoint.
//!
//! **Rebalances (Kafka, several processing nodes).** The job's state is per node and its
//! checkpoint lives in the node's data directory. When a rebalance revokes partitions
//! ([`sightline_log::Subscription::take_revoked`]), the runner logs it, counts it
//! (`sightline_rollups_revoked_partitions_total`) and keeps its state: the new owner
//! starts those partitions at the committed offsets, i.e. at this node's last checkpoint,
//! without the window state built before it. Because rows are upserts by id, no row is
//! ever duplicated, but a window that straddles the move may be emitted by both nodes and
//! the store keeps whichever came last, which can be partial. This is the conservative
//! choice: exact rollups need the rollup partitions to stay on one node, so run rollups
//! on one processing node (`[stream] rollups = false` on the others) when windows must be
//! exact across rebalances. With the embedded log there is one member per group and
//! nothing is ever revoked.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_codec::{Codec, prefetch_writers, read_event, read_metric};
use sightline_log::{Delivered, EventLog, Position, Record, Subscription, TopicConfig};
use sightline_model::topics;
use sightline_store::{EventCountRow, RollupRow, Store};

use crate::checkpoint::{CheckpointStore, SourcePositions};
use crate::error::StreamError;
use crate::rollup::{EventCount, JOB_NAME, Rollup, RollupConfig, RollupJob, RollupOutput};
use crate::telemetry;
use sightline_model::clock::now_ms;

/// The consumer group the runner commits its positions under.
pub const GROUP: &str = "stream-rollups";

/// The topics the runner consumes.
pub const TOPICS: [&str; 2] = [topics::METRICS_RAW, topics::SYSTEM_EVENTS];

/// Settings of the runner.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Watermarks and grace of the job.
    pub rollup: RollupConfig,
    /// How often state is checkpointed and offsets committed.
    pub checkpoint_interval: Duration,
    /// How often the job is told the processing time.
    pub tick_interval: Duration,
    /// Most records read at a time.
    pub batch_size: usize,
    /// Pause before retrying a failed store write.
    pub retry_backoff: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            rollup: RollupConfig::default(),
            checkpoint_interval: Duration::from_secs(5),
            tick_interval: Duration::from_secs(1),
            batch_size: 5000,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// The store row of a rollup.
pub fn rollup_row(r: &Rollup) -> RollupRow {
    RollupRow {
        id: r.id(),
        service_name: r.service_name.clone(),
        metric_type: r.metric_type.clone(),
        window: r.window.clone(),
        window_start: r.window_start,
        window_end: r.window_end,
        count: r.count,
        sum: r.sum,
        min: r.min,
        max: r.max,
        avg: r.avg,
        p95: r.p95,
        p99: r.p99,
    }
}

/// The store row of an event counter.
pub fn event_count_row(c: &EventCount) -> EventCountRow {
    EventCountRow {
        id: c.id(),
        service_name: c.service_name.clone(),
        severity: c.severity.as_str().to_owned(),
        window_start: c.window_start,
        window_end: c.window_end,
        count: c.count,
    }
}

/// Runs the rollup job until `shutdown` completes (then saves a final checkpoint and
/// returns `Ok`), or until the log or the checkpoint store fails. See the module docs.
pub async fn run_rollups(
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    codec: Option<Codec>,
    checkpoints: Arc<dyn CheckpointStore>,
    config: RunnerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StreamError> {
    let mut shutdown = std::pin::pin!(shutdown);
    ensure_builtin_topics(
        log.as_ref(),
        &[topics::METRICS_RAW_LATE, topics::SYSTEM_EVENTS_LATE],
    )
    .await?;
    let mut job = restore_job(checkpoints.as_ref(), config.rollup).await?;
    let stats = log.stats().await?;
    let partitions = |topic: &str| {
        stats
            .iter()
            .find(|t| t.name == topic)
            .map_or(0, |t| t.config.partitions)
    };
    job.expect_partitions(
        partitions(topics::METRICS_RAW),
        partitions(topics::SYSTEM_EVENTS),
    );
    // What the restored state covers: records below these positions are not fed again.
    let restored = job.positions().clone();
    let mut sub = log.subscribe(GROUP, &TOPICS).await?;
    seek_to(sub.as_mut(), &restored, GROUP);
    tracing::info!(group = GROUP, "rollup runner started");

    let mut runner = Runner {
        log,
        store,
        codec,
        config,
        restored,
        out: RollupOutput::default(),
        late: Vec::new(),
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
                job.tick(now_ms(), &mut runner.out);
                if !runner.flush(&mut shutdown).await? {
                    return Ok(());
                }
            }
            batch = sub.next_batch(batch_size) => {
                let batch = batch?;
                for (topic, partition) in sub.take_revoked() {
                    metrics::counter!(telemetry::RUNNER_REVOKED).increment(1);
                    tracing::warn!(
                        %topic, partition,
                        "rollups: partition revoked by a rebalance; windows straddling the \
                         move may be partial (see the runner docs)"
                    );
                }
                runner.process(&mut job, &batch).await;
                if !runner.flush(&mut shutdown).await? {
                    return Ok(());
                }
            }
        }
        if runner.dirty && last_checkpoint.elapsed() >= runner.config.checkpoint_interval {
            checkpoint(&job, checkpoints.as_ref(), sub.as_mut()).await?;
            runner.dirty = false;
            last_checkpoint = Instant::now();
        }
    }
    if runner.dirty {
        checkpoint(&job, checkpoints.as_ref(), sub.as_mut()).await?;
    }
    tracing::info!("rollup runner stopped");
    Ok(())
}

/// Creates the built-in topics among `names` that are missing, with their default
/// partitions and retention (runners call it for the topics they read and write).
pub async fn ensure_builtin_topics(
    log: &dyn EventLog,
    names: &[&str],
) -> Result<(), sightline_log::LogError> {
    let existing: Vec<String> = log.stats().await?.into_iter().map(|t| t.name).collect();
    for name in names {
        if existing.iter().any(|n| n == name) {
            continue;
        }
        let builtin = topics::BUILTIN.iter().find(|t| t.name == *name);
        let config = TopicConfig {
            partitions: builtin.map_or(1, |t| t.partitions),
            retention_ms: builtin.map(|t| t.retention_ms),
            retention_bytes: None,
        };
        log.create_topic(name, config).await?;
    }
    Ok(())
}

async fn restore_job(
    checkpoints: &dyn CheckpointStore,
    config: RollupConfig,
) -> Result<RollupJob, StreamError> {
    let loaded = match checkpoints.load_checkpoint(JOB_NAME).await {
        Ok(loaded) => loaded,
        Err(error @ StreamError::Io { .. }) => return Err(error),
        Err(error) => {
            // Corrupt or from an incompatible build: starting empty from the committed
            // offsets can only make windows open at that moment partial, never duplicate.
            tracing::error!(%error, "rollups: unusable checkpoint; starting with empty state");
            None
        }
    };
    match loaded {
        Some(checkpoint) => match RollupJob::restore(config, checkpoint) {
            Ok(job) => {
                tracing::info!(positions = ?job.positions(), "rollups: restored checkpoint");
                Ok(job)
            }
            Err(error) => {
                tracing::error!(%error, "rollups: checkpoint does not match; starting empty");
                RollupJob::new(config)
            }
        },
        None => RollupJob::new(config),
    }
}

/// Saves the job's checkpoint, then commits the positions it covers.
async fn checkpoint(
    job: &RollupJob,
    checkpoints: &dyn CheckpointStore,
    sub: &mut dyn Subscription,
) -> Result<(), StreamError> {
    let started = Instant::now();
    let checkpoint = job.checkpoint();
    checkpoints.save_checkpoint(JOB_NAME, &checkpoint).await?;
    commit_positions(sub, &checkpoint.positions).await?;
    metrics::histogram!(telemetry::RUNNER_CHECKPOINT_SECONDS)
        .record(started.elapsed().as_secs_f64());
    Ok(())
}

/// Moves a fresh subscription to the positions a restored checkpoint covers. Best effort:
/// skipping redelivered records below those positions is what guarantees nothing is fed
/// twice, so a failed seek is only logged (with `group`).
pub fn seek_to(sub: &mut dyn Subscription, positions: &SourcePositions, group: &str) {
    for (topic, partition, offset) in positions.iter() {
        let position = Position {
            topic: Arc::from(topic),
            partition,
            offset,
        };
        if let Err(error) = sub.seek(&position) {
            tracing::debug!(%error, group, topic, partition, offset, "seek to a restored position failed");
        }
    }
}

/// Commits the positions a just-saved checkpoint covers (nothing when it covers none).
pub async fn commit_positions(
    sub: &mut dyn Subscription,
    positions: &SourcePositions,
) -> Result<(), sightline_log::LogError> {
    let positions = to_positions(positions);
    if positions.is_empty() {
        return Ok(());
    }
    sub.commit(&positions).await
}

fn to_positions(positions: &SourcePositions) -> Vec<Position> {
    positions
        .iter()
        .map(|(topic, partition, offset)| Position {
            topic: Arc::from(topic),
            partition,
            offset,
        })
        .collect()
}

/// The runner's I/O side: decoding input and writing the job's output.
struct Runner {
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    codec: Option<Codec>,
    config: RunnerConfig,
    restored: SourcePositions,
    out: RollupOutput,
    /// Late records to forward, by `.late` topic.
    late: Vec<(&'static str, Record)>,
    /// State changed since the last checkpoint.
    dirty: bool,
}

impl Runner {
    async fn process(&mut self, job: &mut RollupJob, batch: &[Delivered]) {
        // Records it still cannot read are rejected below, counted and logged.
        prefetch_writers(
            self.codec.as_ref(),
            batch.iter().map(|d| d.record.value.as_slice()),
            "rollups",
        )
        .await;
        for d in batch {
            if self
                .restored
                .get(&d.topic, d.partition)
                .is_some_and(|next| d.offset < next)
            {
                metrics::counter!(telemetry::RUNNER_REPLAY_SKIPPED, "topic" => d.topic.to_string())
                    .increment(1);
                continue;
            }
            metrics::counter!(telemetry::RUNNER_IN, "topic" => d.topic.to_string()).increment(1);
            let late_before = self.out.late_metrics.len() + self.out.late_events.len();
            let late_topic = match &*d.topic {
                topics::METRICS_RAW => match read_metric(&d.record.value, self.codec.as_ref()) {
                    Ok(m) => {
                        job.process_metric(d.partition, d.offset, &m, &mut self.out);
                        topics::METRICS_RAW_LATE
                    }
                    Err(reason) => {
                        self.reject(d, &reason);
                        continue;
                    }
                },
                topics::SYSTEM_EVENTS => match read_event(&d.record.value, self.codec.as_ref()) {
                    Ok(e) => {
                        job.process_event(d.partition, d.offset, &e, &mut self.out);
                        topics::SYSTEM_EVENTS_LATE
                    }
                    Err(reason) => {
                        self.reject(d, &reason);
                        continue;
                    }
                },
                other => {
                    self.reject(
                        d,
                        &format!("the rollup runner does not read topic '{other}'"),
                    );
                    continue;
                }
            };
            self.dirty = true;
            if self.out.late_metrics.len() + self.out.late_events.len() > late_before {
                self.late.push((late_topic, d.record.clone()));
            }
        }
    }

    fn reject(&self, d: &Delivered, reason: &str) {
        metrics::counter!(telemetry::RUNNER_REJECTED, "topic" => d.topic.to_string()).increment(1);
        tracing::warn!(
            topic = %d.topic,
            partition = d.partition,
            offset = d.offset,
            %reason,
            "rollups: skipping a record it cannot decode"
        );
    }

    /// Writes everything the job produced. Returns `false` when shutdown arrived while a
    /// store write was being retried (nothing is checkpointed then).
    async fn flush(
        &mut self,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Result<bool, StreamError> {
        let out = std::mem::take(&mut self.out);
        let late = std::mem::take(&mut self.late);
        if out.rollups.is_empty() && out.event_counts.is_empty() && late.is_empty() {
            return Ok(true);
        }
        self.dirty = true;
        if !out.rollups.is_empty() {
            let rows: Vec<RollupRow> = out.rollups.iter().map(rollup_row).collect();
            let mut records = Vec::with_capacity(out.rollups.len());
            for (rollup, row) in out.rollups.iter().zip(&rows) {
                let value =
                    serde_json::to_vec(rollup).map_err(|e| StreamError::Encode(e.to_string()))?;
                records.push(Record::new(Some(&row.id), value, rollup.window_end));
            }
            self.log.append(topics::METRICS_AGGREGATED, records).await?;
            let store = self.store.clone();
            if !self
                .retry("rollups", shutdown, || {
                    let store = store.clone();
                    let rows = &rows;
                    async move { store.write_rollups(rows).await }
                })
                .await
            {
                return Ok(false);
            }
            metrics::counter!(telemetry::RUNNER_OUT, "output" => "rollups")
                .increment(rows.len() as u64);
        }
        if !out.event_counts.is_empty() {
            let rows: Vec<EventCountRow> = out.event_counts.iter().map(event_count_row).collect();
            let store = self.store.clone();
            if !self
                .retry("event_counts", shutdown, || {
                    let store = store.clone();
                    let rows = &rows;
                    async move { store.write_event_counts(rows).await }
                })
                .await
            {
                return Ok(false);
            }
            metrics::counter!(telemetry::RUNNER_OUT, "output" => "event_counts")
                .increment(rows.len() as u64);
        }
        for topic in [topics::METRICS_RAW_LATE, topics::SYSTEM_EVENTS_LATE] {
            let records: Vec<Record> = late
                .iter()
                .filter(|(t, _)| *t == topic)
                .map(|(_, r)| r.clone())
                .collect();
            if !records.is_empty() {
                let n = records.len() as u64;
                self.log.append(topic, records).await?;
                metrics::counter!(telemetry::RUNNER_LATE, "topic" => topic).increment(n);
            }
        }
        Ok(true)
    }

    /// Retries a store write until it succeeds (`true`) or shutdown arrives (`false`).
    async fn retry<F, Fut>(
        &self,
        output: &'static str,
        shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
        write: F,
    ) -> bool
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<u64, sightline_store::StoreError>>,
    {
        retry_store_write(self.config.retry_backoff, shutdown, write, |error| {
            metrics::counter!(telemetry::RUNNER_WRITE_ERRORS, "output" => output).increment(1);
            tracing::warn!(%error, output, "rollups: writing to the store failed; retrying");
        })
        .await
    }
}

/// Retries a store write every `backoff` until it succeeds (`true`) or shutdown arrives
/// (`false`), reporting each failure to `on_error`.
pub(crate) async fn retry_store_write<F, Fut>(
    backoff: Duration,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    mut write: F,
    mut on_error: impl FnMut(&sightline_store::StoreError),
) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, sightline_store::StoreError>>,
{
    loop {
        match write().await {
            Ok(_) => return true,
            Err(error) => {
                on_error(&error);
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => return false,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_convert_one_to_one() {
        let mut p = SourcePositions::default();
        p.advance(topics::METRICS_RAW, 2, 9);
        p.advance(topics::SYSTEM_EVENTS, 0, 0);
        let got: Vec<(String, u32, u64)> = to_positions(&p)
            .into_iter()
            .map(|p| (p.topic.to_string(), p.partition, p.offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (topics::METRICS_RAW.to_owned(), 2, 10),
                (topics::SYSTEM_EVENTS.to_owned(), 0, 1)
            ]
        );
    }
}
