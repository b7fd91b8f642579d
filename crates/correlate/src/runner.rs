//! The correlation runner: what drives the [`Correlator`] from the event log, so that
//! anomalies and events become stored, published incidents that survive `kill -9`.
//!
//! [`run_correlation`] joins consumer group [`GROUP`] on `anomalies` + `system-events` +
//! `incidents.updated` and loops (the same shape as the stream crate's rollup runner):
//!
//! 1. **restore** — reads the topology and the active silences from the store, loads the
//!    [`CHECKPOINT_JOB`] checkpoint (the [`CorrelatorState`] + the source positions it
//!    reflects) and restores the correlator from it (or starts empty), then seeks the
//!    subscription to those positions. Records the log still delivers below them (a crash
//!    between saving a checkpoint and committing its offsets redelivers them) are
//!    **skipped**: their effect is already in the restored state.
//! 2. **per batch** — decodes each record and feeds it with `now` read from a
//!    [`SignalClock`] (the newest anomaly/event time, advanced by wall time; so a replay
//!    or a catch-up keeps the timers in the signals' time): an anomaly (JSON) →
//!    [`Correlator::on_anomaly`]; a system event (JSON, or Avro with
//!    [`CorrelationRunnerConfig::codec`]) → [`Correlator::on_event`]; an incident on
//!    `incidents.updated` → [`Correlator::apply_external_update`] (operator changes made
//!    on another node). That topic also carries this runner's own publications: the
//!    correlator recognises them (nothing newer than its own copy) and they are no-ops —
//!    `apply_external_update` never returns outputs, so there is no feedback loop.
//!    Undecodable records are counted, logged and skipped.
//! 3. **every `tick_interval`** — [`Correlator::tick`]: group waits end, incidents
//!    auto-resolve, coalesced updates go out.
//! 4. **every `refresh_interval`** — the topology ([`Correlator::set_topology`]) and the
//!    active silences ([`Correlator::set_silences`]) are re-read from the store. A silence
//!    that does not compile is logged and skipped; a failed read keeps the previous ones.
//! 5. **outputs**, written before the runner moves on: `Opened` → store
//!    (`upsert_incidents`) and topic `incidents.detected`; `Updated` → store and topic
//!    `incidents.updated` (published records are JSON [`sightline_model::Incident`]s with
//!    key = incident id); the anomaly ids of both are linked to the incident
//!    (`link_anomalies`); `Correlated` → `write_correlations`, and, when the linked source
//!    is an anomaly, `link_anomalies`; `Suppressed` → a counter by reason and a debug
//!    log. Store first, then the log.
//! 6. **every `checkpoint_interval`** — saves the checkpoint (atomically) and **then**
//!    commits the offsets it covers. A graceful shutdown saves a final checkpoint.
//!
//! Why this is effectively once: a checkpoint is saved only after every output of the
//! state it holds was written, and offsets are committed only after the checkpoint that
//! covers them. A crash restores the last checkpoint and replays from its positions.
//! Incident and correlation ids are deterministic (group key + first signal id), so the
//! replay upserts the same incidents instead of opening new ones, and signals the
//! restored state already holds are ignored as redeliveries. Because the timers run on
//! wall time between signals, a replay may publish an incident version a second time on the topics
//! (at least once there, keyed by incident id); the store never holds a duplicate.
//!
//! Failures: a store write is retried every `retry_backoff` until it succeeds or shutdown
//! (then the runner stops without a checkpoint: the outputs are replayed next time). A log
//! failure (read, append, commit) or a checkpoint failure is returned; the node's
//! supervisor restarts the runner, which resumes from the last checkpoint. A checkpoint
//! that cannot be decoded or restored is logged and ignored (the runner starts empty
//! from the committed offsets).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sightline_codec::{Codec, prefetch_writers, read_event};
use sightline_log::{Delivered, EventLog, Record, Subscription};
use sightline_model::{Anomaly, Correlation, Incident, Silence, Topology, topics};
use sightline_store::Store;
use sightline_stream::{CheckpointStore, SourcePositions};

use crate::{
    CompiledSilences, CorrelateError, Correlator, CorrelatorConfig, CorrelatorState, Output,
    SignalClock, SuppressionReason, incident_metrics,
};
use sightline_model::clock::now_ms;

/// The consumer group the runner commits its positions under.
pub const GROUP: &str = "correlate";

/// The topics the runner consumes.
pub const TOPICS: [&str; 3] = [
    topics::ANOMALIES,
    topics::SYSTEM_EVENTS,
    topics::INCIDENTS_UPDATED,
];

/// The name the runner's checkpoint is saved under in the [`CheckpointStore`].
pub const CHECKPOINT_JOB: &str = "correlate";

/// The checkpoint format version this build writes and reads.
const CHECKPOINT_VERSION: u32 = 1;

/// Metric names of the correlation runner.
pub mod telemetry {
    /// Records read from the input topics, by `topic`.
    pub const RECORDS_IN: &str = "sightline_correlate_records_in_total";
    /// Records skipped because the restored checkpoint already covers them, by `topic`.
    pub const REPLAY_SKIPPED: &str = "sightline_correlate_replay_skipped_total";
    /// Records that could not be decoded, by `topic`.
    pub const REJECTED: &str = "sightline_correlate_rejected_total";
    /// Outputs written, by `output` (`opened`, `updated`, `correlated`).
    pub const OUTPUTS: &str = "sightline_correlate_outputs_total";
    /// Suppressed signals, by `reason` (`silenced`, `inhibited`, `overflow`).
    pub const SUPPRESSED: &str = "sightline_correlate_suppressed_total";
    /// Silences from the store that do not compile (skipped).
    pub const BAD_SILENCES: &str = "sightline_correlate_bad_silences_total";
    /// Failed store reads of topology or silences (the previous ones stay in force).
    pub const REFRESH_ERRORS: &str = "sightline_correlate_refresh_errors_total";
    /// Failed store writes (each is retried), by `output`.
    pub const WRITE_ERRORS: &str = "sightline_correlate_write_errors_total";
    /// Time to save a checkpoint and commit the offsets it covers.
    pub const CHECKPOINT_SECONDS: &str = "sightline_correlate_checkpoint_seconds";
    /// Partitions revoked from this node by a consumer-group rebalance.
    pub const REVOKED: &str = "sightline_correlate_revoked_partitions_total";
}

/// What stops the correlation runner.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The event log failed (reading, appending or committing).
    #[error("event log: {0}")]
    Log(#[from] sightline_log::LogError),
    /// The store failed where no retry applies.
    #[error("store: {0}")]
    Store(#[from] sightline_store::StoreError),
    /// Saving or loading the checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] sightline_stream::StreamError),
    /// The correlator refused its configuration.
    #[error("correlator: {0}")]
    Correlate(#[from] CorrelateError),
    /// Encoding the checkpoint or an output record failed.
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Settings of the correlation runner.
#[derive(Clone, Debug)]
pub struct CorrelationRunnerConfig {
    /// The correlator's rules. Default: [`CorrelatorConfig::default`].
    pub correlator: CorrelatorConfig,
    /// Reads Avro-encoded system events (Confluent wire format); JSON is always read.
    /// Default `None`.
    pub codec: Option<Codec>,
    /// How often topology and silences are re-read from the store. Default 5 s.
    pub refresh_interval: Duration,
    /// How often state is checkpointed and offsets committed. Default 5 s.
    pub checkpoint_interval: Duration,
    /// How often the correlator's timers run. Default 1 s.
    pub tick_interval: Duration,
    /// Most records read at a time. Default 5000.
    pub batch_size: usize,
    /// Pause before retrying a failed store write. Default 500 ms.
    pub retry_backoff: Duration,
}

impl Default for CorrelationRunnerConfig {
    fn default() -> Self {
        Self {
            correlator: CorrelatorConfig::default(),
            codec: None,
            refresh_interval: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(5),
            tick_interval: Duration::from_secs(1),
            batch_size: 5000,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// What the runner checkpoints (JSON: the correlator state uses tagged enums).
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    positions: SourcePositions,
    state: CorrelatorState,
    /// Absent in checkpoints written before the clock was kept: the clock restarts.
    #[serde(default)]
    clock: SignalClock,
}

type Shutdown<'a, F> = Pin<&'a mut F>;

/// Runs the correlator until `shutdown` completes (then saves a final checkpoint and
/// returns `Ok`), or until the log or the checkpoint store fails. See the module docs.
pub async fn run_correlation(
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    checkpoints: Arc<dyn CheckpointStore>,
    config: CorrelationRunnerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunnerError> {
    let mut shutdown = std::pin::pin!(shutdown);
    config.correlator.validate()?;
    sightline_stream::runner::ensure_builtin_topics(
        log.as_ref(),
        &[
            topics::ANOMALIES,
            topics::SYSTEM_EVENTS,
            topics::INCIDENTS_UPDATED,
            topics::INCIDENTS_DETECTED,
        ],
    )
    .await?;
    let topology = loop {
        match store.get_topology().await {
            Ok(t) => break t.map(|t| t.topology).unwrap_or_default(),
            Err(error) => {
                metrics::counter!(telemetry::REFRESH_ERRORS).increment(1);
                tracing::warn!(%error, "correlate: reading the topology failed; retrying");
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => return Ok(()),
                    () = tokio::time::sleep(config.retry_backoff) => {}
                }
            }
        }
    };
    let (mut correlator, mut positions, mut clock) =
        restore(checkpoints.as_ref(), &config.correlator, topology).await?;
    refresh_silences(store.as_ref(), &mut correlator, clock.now(now_ms())).await;
    let restored = positions.clone();
    let mut sub = log.subscribe(GROUP, &TOPICS).await?;
    sightline_stream::runner::seek_to(sub.as_mut(), &restored, GROUP);
    tracing::info!(group = GROUP, "correlation runner started");

    let mut tick = tokio::time::interval(config.tick_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refresh = tokio::time::interval(config.refresh_interval);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Both were just read.
    refresh.reset();
    let mut last_checkpoint = Instant::now();
    let batch_size = config.batch_size.max(1);
    let mut dirty = false;

    loop {
        let outputs = tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = refresh.tick() => {
                refresh_topology(store.as_ref(), &mut correlator).await;
                refresh_silences(store.as_ref(), &mut correlator, clock.now(now_ms())).await;
                Vec::new()
            }
            _ = tick.tick() => correlator.tick(clock.now(now_ms())),
            batch = sub.next_batch(batch_size) => {
                let batch = batch?;
                for (topic, partition) in sub.take_revoked() {
                    metrics::counter!(telemetry::REVOKED).increment(1);
                    tracing::warn!(
                        %topic, partition,
                        "correlate: partition revoked by a rebalance; incidents stay with \
                         this node's state"
                    );
                }
                dirty = dirty || !batch.is_empty();
                process(&mut correlator, &mut clock, &mut positions, &restored, &config, &batch)
                    .await
            }
        };
        if !outputs.is_empty() {
            dirty = true;
            if !write(
                log.as_ref(),
                store.as_ref(),
                &config,
                &outputs,
                &mut shutdown,
            )
            .await?
            {
                tracing::info!("correlation runner stopped during a store retry");
                return Ok(());
            }
        }
        if dirty && last_checkpoint.elapsed() >= config.checkpoint_interval {
            checkpoint(
                &correlator,
                clock,
                &positions,
                checkpoints.as_ref(),
                sub.as_mut(),
            )
            .await?;
            dirty = false;
            last_checkpoint = Instant::now();
        }
    }
    if dirty {
        checkpoint(
            &correlator,
            clock,
            &positions,
            checkpoints.as_ref(),
            sub.as_mut(),
        )
        .await?;
    }
    tracing::info!("correlation runner stopped");
    Ok(())
}

async fn restore(
    checkpoints: &dyn CheckpointStore,
    config: &CorrelatorConfig,
    topology: Topology,
) -> Result<(Correlator, SourcePositions, SignalClock), RunnerError> {
    let fresh = |topology| -> Result<(Correlator, SourcePositions, SignalClock), RunnerError> {
        Ok((
            Correlator::new(config.clone(), topology)?,
            SourcePositions::default(),
            SignalClock::new(),
        ))
    };
    let Some(bytes) = checkpoints.load(CHECKPOINT_JOB).await? else {
        return fresh(topology);
    };
    let snapshot = match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(s) if s.version == CHECKPOINT_VERSION => s,
        Ok(s) => {
            tracing::error!(
                found = s.version,
                supported = CHECKPOINT_VERSION,
                "correlate: checkpoint of another version; starting with empty state"
            );
            return fresh(topology);
        }
        Err(error) => {
            tracing::error!(%error, "correlate: unusable checkpoint; starting with empty state");
            return fresh(topology);
        }
    };
    match Correlator::restore(config.clone(), topology.clone(), snapshot.state) {
        Ok(c) => {
            tracing::info!(positions = ?snapshot.positions, "correlate: restored checkpoint");
            Ok((c, snapshot.positions, snapshot.clock))
        }
        Err(error) => {
            tracing::error!(%error, "correlate: checkpoint does not restore; starting empty");
            fresh(topology)
        }
    }
}

async fn refresh_topology(store: &dyn Store, correlator: &mut Correlator) {
    match store.get_topology().await {
        Ok(Some(stored)) => {
            if &stored.topology != correlator.topology() {
                tracing::info!(version = stored.version, "correlate: topology changed");
                correlator.set_topology(stored.topology);
            }
        }
        Ok(None) => {}
        Err(error) => {
            metrics::counter!(telemetry::REFRESH_ERRORS).increment(1);
            tracing::warn!(%error, "correlate: reading the topology failed; keeping the last");
        }
    }
}

/// Installs the store's active silences; ones that do not compile are logged and skipped.
async fn refresh_silences(store: &dyn Store, correlator: &mut Correlator, now: i64) {
    let silences = match store.list_silences(false, now).await {
        Ok(s) => s,
        Err(error) => {
            metrics::counter!(telemetry::REFRESH_ERRORS).increment(1);
            tracing::warn!(%error, "correlate: reading silences failed; keeping the last");
            return;
        }
    };
    if silences.as_slice() == correlator.silences() {
        return;
    }
    let good: Vec<Silence> = silences
        .into_iter()
        .filter(
            |s| match CompiledSilences::compile(std::slice::from_ref(s)) {
                Ok(_) => true,
                Err(error) => {
                    metrics::counter!(telemetry::BAD_SILENCES).increment(1);
                    tracing::warn!(%error, silence = %s.id, "correlate: skipping a bad silence");
                    false
                }
            },
        )
        .collect();
    if let Err(error) = correlator.set_silences(good) {
        metrics::counter!(telemetry::BAD_SILENCES).increment(1);
        tracing::warn!(%error, "correlate: silences refused; keeping the last");
    }
}

/// Saves the correlator's snapshot with its positions, then commits the positions.
async fn checkpoint(
    correlator: &Correlator,
    clock: SignalClock,
    positions: &SourcePositions,
    checkpoints: &dyn CheckpointStore,
    sub: &mut dyn Subscription,
) -> Result<(), RunnerError> {
    let started = Instant::now();
    let snapshot = Snapshot {
        version: CHECKPOINT_VERSION,
        positions: positions.clone(),
        state: correlator.snapshot(),
        clock,
    };
    let bytes = serde_json::to_vec(&snapshot).map_err(|e| RunnerError::Encode(e.to_string()))?;
    checkpoints.save(CHECKPOINT_JOB, bytes).await?;
    sightline_stream::runner::commit_positions(sub, positions).await?;
    metrics::histogram!(telemetry::CHECKPOINT_SECONDS).record(started.elapsed().as_secs_f64());
    Ok(())
}

/// Feeds a batch to the correlator; returns its outputs in decision order.
async fn process(
    correlator: &mut Correlator,
    clock: &mut SignalClock,
    positions: &mut SourcePositions,
    restored: &SourcePositions,
    config: &CorrelationRunnerConfig,
    batch: &[Delivered],
) -> Vec<Output> {
    // Records it still cannot read are rejected below, counted and logged.
    prefetch_writers(
        config.codec.as_ref(),
        batch
            .iter()
            .filter(|d| &*d.topic == topics::SYSTEM_EVENTS)
            .map(|d| d.record.value.as_slice()),
        "correlate",
    )
    .await;
    let mut out = Vec::new();
    for d in batch {
        if restored
            .get(&d.topic, d.partition)
            .is_some_and(|next| d.offset < next)
        {
            metrics::counter!(telemetry::REPLAY_SKIPPED, "topic" => d.topic.to_string())
                .increment(1);
            continue;
        }
        metrics::counter!(telemetry::RECORDS_IN, "topic" => d.topic.to_string()).increment(1);
        let wall = now_ms();
        match &*d.topic {
            topics::ANOMALIES => match serde_json::from_slice::<Anomaly>(&d.record.value) {
                Ok(a) => {
                    clock.observe(a.timestamp, wall);
                    out.extend(correlator.on_anomaly(&a, clock.now(wall)));
                }
                Err(e) => reject(d, &format!("not an anomaly: {e}")),
            },
            topics::SYSTEM_EVENTS => match read_event(&d.record.value, config.codec.as_ref()) {
                Ok(e) => {
                    clock.observe(e.timestamp, wall);
                    out.extend(correlator.on_event(&e, clock.now(wall)));
                }
                Err(reason) => reject(d, &reason),
            },
            // Operator updates carry wall-clock times: they do not move the signal clock.
            topics::INCIDENTS_UPDATED => {
                match serde_json::from_slice::<Incident>(&d.record.value) {
                    Ok(i) => out.extend(correlator.apply_external_update(&i, clock.now(wall))),
                    Err(e) => reject(d, &format!("not an incident: {e}")),
                }
            }
            other => reject(
                d,
                &format!("the correlation runner does not read '{other}'"),
            ),
        }
        positions.advance(&d.topic, d.partition, d.offset);
    }
    out
}

fn reject(d: &Delivered, reason: &str) {
    metrics::counter!(telemetry::REJECTED, "topic" => d.topic.to_string()).increment(1);
    tracing::warn!(
        topic = %d.topic,
        partition = d.partition,
        offset = d.offset,
        %reason,
        "correlate: skipping a record it cannot decode"
    );
}

/// Retries a store write every `backoff` until it succeeds (`Some`) or shutdown arrives
/// (`None`).
async fn retry<T, F, Fut>(
    output: &'static str,
    backoff: Duration,
    shutdown: &mut Shutdown<'_, impl Future<Output = ()>>,
    mut write: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, sightline_store::StoreError>>,
{
    loop {
        match write().await {
            Ok(v) => return Some(v),
            Err(error) => {
                metrics::counter!(telemetry::WRITE_ERRORS, "output" => output).increment(1);
                tracing::warn!(%error, output, "correlate: writing to the store failed; retrying");
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => return None,
                    () = tokio::time::sleep(backoff) => {}
                }
            }
        }
    }
}

/// Writes the outputs: store first (retried), then the topics. Returns `false` when
/// shutdown arrived while a store write was being retried.
async fn write(
    log: &dyn EventLog,
    store: &dyn Store,
    config: &CorrelationRunnerConfig,
    outputs: &[Output],
    shutdown: &mut Shutdown<'_, impl Future<Output = ()>>,
) -> Result<bool, RunnerError> {
    let backoff = config.retry_backoff;
    // The latest version of each incident, in first-seen order.
    let mut incidents: Vec<&Incident> = Vec::new();
    let mut correlations: Vec<Correlation> = Vec::new();
    let mut links: Vec<(String, Vec<String>)> = Vec::new();
    let mut detected: Vec<Record> = Vec::new();
    let mut updated: Vec<Record> = Vec::new();
    for o in outputs {
        match o {
            Output::Opened(i) | Output::Updated(i) => {
                match incidents.iter_mut().find(|x| x.id == i.id) {
                    Some(slot) => *slot = i,
                    None => incidents.push(i),
                }
                if !i.anomaly_ids.is_empty() {
                    links.push((i.id.clone(), i.anomaly_ids.clone()));
                }
                let value =
                    serde_json::to_vec(i).map_err(|e| RunnerError::Encode(e.to_string()))?;
                let record = Record::new(Some(&i.id), value, i.updated_at);
                let (list, output) = match o {
                    Output::Opened(_) => (&mut detected, "opened"),
                    _ => (&mut updated, "updated"),
                };
                list.push(record);
                metrics::counter!(telemetry::OUTPUTS, "output" => output).increment(1);
                tracing::info!(id = %i.id, service = %i.service_name, title = %i.title, output, "incident");
            }
            Output::Correlated(c) => {
                if is_anomaly_id(&c.source_id) {
                    links.push((c.incident_id.clone(), vec![c.source_id.clone()]));
                }
                correlations.push(c.clone());
                metrics::counter!(telemetry::OUTPUTS, "output" => "correlated").increment(1);
            }
            Output::Suppressed(s) => {
                let reason = match s.reason {
                    SuppressionReason::Silenced { .. } => "silenced",
                    SuppressionReason::Inhibited { .. } => "inhibited",
                    SuppressionReason::Overflow { .. } => "overflow",
                };
                metrics::counter!(telemetry::SUPPRESSED, "reason" => reason).increment(1);
                tracing::debug!(
                    signal = %s.signal_id,
                    service = %s.service_name,
                    reason = ?s.reason,
                    "correlate: signal suppressed"
                );
            }
        }
    }
    if !incidents.is_empty() {
        let rows: Vec<Incident> = incidents.into_iter().cloned().collect();
        let rows = &rows;
        if retry("incidents", backoff, shutdown, || {
            store.upsert_incidents(rows)
        })
        .await
        .is_none()
        {
            return Ok(false);
        }
    }
    if !correlations.is_empty() {
        let rows = &correlations;
        if retry("correlations", backoff, shutdown, || {
            store.write_correlations(rows)
        })
        .await
        .is_none()
        {
            return Ok(false);
        }
    }
    for (incident, ids) in &links {
        if retry("links", backoff, shutdown, || {
            store.link_anomalies(incident, ids)
        })
        .await
        .is_none()
        {
            return Ok(false);
        }
    }
    if !detected.is_empty() {
        log.append(topics::INCIDENTS_DETECTED, detected).await?;
    }
    if !updated.is_empty() {
        log.append(topics::INCIDENTS_UPDATED, updated).await?;
    }
    // Once everything is written: outputs a failed write leaves to the replay are counted
    // when the replay writes them.
    outputs.iter().for_each(incident_metrics::record_output);
    Ok(true)
}

/// Whether a correlation's source is an anomaly ([`Anomaly::id_for`] ids) rather than
/// an event.
fn is_anomaly_id(id: &str) -> bool {
    id.starts_with("an-")
}
