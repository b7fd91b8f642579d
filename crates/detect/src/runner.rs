//! The detection runner: what drives the detectors from the event log, so that every
//! metric point and system event is judged and every anomaly is stored and published,
//! surviving `kill -9`.
//!
//! [`run_detection`] joins consumer group [`GROUP`] on `metrics.raw` + `system-events`
//! and loops (the same shape as the stream crate's rollup runner):
//!
//! 1. **restore** — loads the [`CHECKPOINT_JOB`] checkpoint (detector state + the source
//!    positions it reflects) from the [`CheckpointStore`], or starts empty, then seeks the
//!    subscription to those positions. Records the log still delivers below them (a crash
//!    between saving a checkpoint and committing its offsets redelivers them) are
//!    **skipped**: their effect is already in the restored state.
//! 2. **per batch** — decodes each record (JSON, or Avro in the Confluent wire format when
//!    [`DetectionRunnerConfig::codec`] is set; undecodable records are counted, logged and
//!    skipped) and feeds it:
//!    * a metric point → [`SeriesDetectors`] (one detector set per (service, metric type));
//!    * an error-level event (severity `critical`/`high`, or type `ERROR`/`CRITICAL`, see
//!      [`is_error_level`]) → the [`NewPatternDetector`] (per service, by fingerprint): a
//!      never-seen fingerprint is an anomaly carrying the event's id;
//!    * every event → the error-event counter of its service: error events are counted
//!      per service in tumbling event-time windows of
//!      [`DetectionRunnerConfig::event_rate_window_ms`] (1 min). A window **closes when a
//!      later event of the same service** (any severity) falls into a later window; the
//!      closed count — and a zero for each empty window in between, at most
//!      [`MAX_GAP_WINDOWS`] — goes to that service's [`EventRateDetector`]. Closing by
//!      event time (never by the wall clock) keeps replays deterministic; the price is
//!      that the last window of a service that falls silent is judged only when it emits
//!      again. Error events older than the service's open window count into the open
//!      window.
//!
//!    Then the batch's anomalies are written: first to the store
//!    ([`sightline_store::IncidentStore::write_anomalies`], idempotent by id), then as
//!    JSON to topic `anomalies` (key = service name, record timestamp = anomaly
//!    timestamp). Store first, so a consumer of the topic can always find the row.
//! 3. **every `tick_interval`** — the loop wakes up even without input, so a due
//!    checkpoint is taken while idle. Detection itself never depends on processing time
//!    (only `detected_at` is stamped with the wall clock).
//! 4. **every `checkpoint_interval`** — saves the checkpoint (atomically, see
//!    [`sightline_stream::FileCheckpointStore`]) and **then** commits the offsets it
//!    covers. A graceful shutdown saves a final checkpoint.
//!
//! Why this is effectively once: a checkpoint is saved only after every anomaly of the
//! state it holds was written, and offsets are committed only after the checkpoint that
//! covers them. A crash anywhere restores the last checkpoint and replays from its
//! positions; the detectors are deterministic (time comes only from the records, and
//! each series / service lives on one partition because producers key by service), so
//! the replay raises the same anomalies with the same ids ([`Anomaly::id_for`]): the
//! store upserts them (counted as duplicates), and nothing is lost. The `anomalies`
//! topic may carry a re-published record after a crash (at least once there); consumers
//! dedup by anomaly id (the correlator does).
//!
//! Caps: the series registry and the new-pattern detector evict least-recently-used
//! entries beyond their caps (logical clocks, so deterministic for a given interleaving of
//! partitions); the event-rate counters keep at most `new_pattern.max_services` services,
//! evicting the one with the oldest open window. Eviction only happens at the caps.
//!
//! Failures: a store write is retried with the same rows every `retry_backoff` until it
//! succeeds or shutdown (then the runner stops without a checkpoint: the rows are
//! replayed next time). A log failure (read, append, commit) or a checkpoint failure is
//! returned; the node's supervisor restarts the runner, which resumes from the last
//! checkpoint. A checkpoint that cannot be decoded (corrupt, older build) is logged and
//! ignored: the runner starts empty from the committed offsets.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sightline_codec::{Codec, prefetch_writers, read_event, read_metric};
use sightline_log::{Delivered, EventLog, Record, Subscription};
use sightline_model::{Anomaly, Event, Signal, topics};
use sightline_store::Store;
use sightline_stream::{CheckpointStore, SourcePositions};

use crate::event_rate::{EventRateConfig, EventRateDetector};
use crate::new_pattern::{NewPatternConfig, NewPatternDetector, is_error_level};
use crate::report::to_anomaly;
use crate::{DetectConfig, DetectError, Detector, SeriesDetectors};
use sightline_model::clock::now_ms;

/// The consumer group the runner commits its positions under.
pub const GROUP: &str = "detect";

/// The topics the runner consumes.
pub const TOPICS: [&str; 2] = [topics::METRICS_RAW, topics::SYSTEM_EVENTS];

/// The name the runner's checkpoint is saved under in the [`CheckpointStore`].
pub const CHECKPOINT_JOB: &str = "detect";

/// Most empty windows fed to an event-rate detector when a service's events resume
/// after a gap (the baseline has decayed enough by then).
pub const MAX_GAP_WINDOWS: i64 = 60;

const CHECKPOINT_MAGIC: &[u8; 4] = b"SLDT";
const CHECKPOINT_VERSION: u16 = 1;

/// Metric names of the detection runner.
pub mod telemetry {
    /// Records read from the input topics, by `topic`.
    pub const RECORDS_IN: &str = "sightline_detect_records_in_total";
    /// Records skipped because the restored checkpoint already covers them, by `topic`.
    pub const REPLAY_SKIPPED: &str = "sightline_detect_replay_skipped_total";
    /// Records that could not be decoded (or came from an unexpected topic), by `topic`.
    pub const REJECTED: &str = "sightline_detect_rejected_total";
    /// Anomalies written and published, by `detector`.
    pub const ANOMALIES_OUT: &str = "sightline_detect_anomalies_total";
    /// Anomalies the store already held (replays), counted by the store's summary.
    pub const ANOMALIES_DUPLICATE: &str = "sightline_detect_anomalies_duplicate_total";
    /// Failed store writes (each is retried).
    pub const WRITE_ERRORS: &str = "sightline_detect_write_errors_total";
    /// Time to save a checkpoint and commit the offsets it covers.
    pub const CHECKPOINT_SECONDS: &str = "sightline_detect_checkpoint_seconds";
    /// Partitions revoked from this node by a consumer-group rebalance.
    pub const REVOKED: &str = "sightline_detect_revoked_partitions_total";
}

/// Settings of the detection runner.
#[derive(Clone, Debug)]
pub struct DetectionRunnerConfig {
    /// Which metric detectors run on which series. Default: [`DetectConfig::default`]
    /// (the ensemble everywhere, 10 000 series).
    pub detect: DetectConfig,
    /// The new-pattern detector. Default: [`NewPatternConfig::default`]. Only used when
    /// no checkpoint is restored (the restored detector keeps its own).
    pub new_pattern: NewPatternConfig,
    /// The per-service event-rate detectors. Default: [`EventRateConfig::default`].
    /// Only used for services first seen after start.
    pub event_rate: EventRateConfig,
    /// Size of the error-event count windows, milliseconds. Default 60 000.
    pub event_rate_window_ms: i64,
    /// Reads Avro-encoded records (Confluent wire format); JSON is always read.
    /// Default `None`.
    pub codec: Option<Codec>,
    /// How often state is checkpointed and offsets committed. Default 5 s.
    pub checkpoint_interval: Duration,
    /// How often the loop wakes up without input. Default 1 s.
    pub tick_interval: Duration,
    /// Most records read at a time. Default 5000.
    pub batch_size: usize,
    /// Pause before retrying a failed store write. Default 500 ms.
    pub retry_backoff: Duration,
}

impl Default for DetectionRunnerConfig {
    fn default() -> Self {
        Self {
            detect: DetectConfig::default(),
            new_pattern: NewPatternConfig::default(),
            event_rate: EventRateConfig::default(),
            event_rate_window_ms: 60_000,
            codec: None,
            checkpoint_interval: Duration::from_secs(5),
            tick_interval: Duration::from_secs(1),
            batch_size: 5000,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// The open error-count window of one service and its detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct RateWindow {
    detector: EventRateDetector,
    /// Start of the open window, epoch milliseconds.
    start: i64,
    /// Error events counted in it.
    count: u64,
}

/// Everything the runner checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct DetectionState {
    positions: SourcePositions,
    series: SeriesDetectors,
    patterns: NewPatternDetector,
    rates: BTreeMap<String, RateWindow>,
}

impl DetectionState {
    fn new(config: &DetectionRunnerConfig) -> Result<Self, DetectError> {
        Ok(Self {
            positions: SourcePositions::default(),
            series: SeriesDetectors::new(config.detect.clone())?,
            patterns: NewPatternDetector::new(config.new_pattern.clone()),
            rates: BTreeMap::new(),
        })
    }

    fn encode(&self) -> Result<Vec<u8>, DetectError> {
        let payload = postcard::to_stdvec(self).map_err(|e| DetectError::Encode(e.to_string()))?;
        let mut bytes = Vec::with_capacity(6 + payload.len());
        bytes.extend_from_slice(CHECKPOINT_MAGIC);
        bytes.extend_from_slice(&CHECKPOINT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 6 || &bytes[..4] != CHECKPOINT_MAGIC {
            return Err("not a detection checkpoint (bad magic)".into());
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != CHECKPOINT_VERSION {
            return Err(format!(
                "checkpoint version {version} (this build reads {CHECKPOINT_VERSION})"
            ));
        }
        postcard::from_bytes(&bytes[6..]).map_err(|e| e.to_string())
    }

    /// Counts an event into its service's error-count window, closing windows it passes.
    fn count_event(
        &mut self,
        config: &DetectionRunnerConfig,
        event: &Event,
        now: i64,
        out: &mut Vec<Anomaly>,
    ) {
        let size = config.event_rate_window_ms.max(1);
        let start = event.timestamp.div_euclid(size).saturating_mul(size);
        let error = is_error_level(event.severity, &event.event_type);
        let service = event.service_name.as_str();
        let Some(window) = self.rates.get_mut(service) else {
            if error {
                let cap = config.new_pattern.max_services.max(1);
                while self.rates.len() >= cap {
                    let oldest = self
                        .rates
                        .iter()
                        .min_by_key(|(name, w)| (w.start, (*name).clone()))
                        .map(|(name, _)| name.clone());
                    match oldest {
                        Some(name) => self.rates.remove(&name),
                        None => break,
                    };
                }
                self.rates.insert(
                    service.to_owned(),
                    RateWindow {
                        detector: EventRateDetector::new(config.event_rate.clone()),
                        start,
                        count: 1,
                    },
                );
            }
            return;
        };
        if start > window.start {
            let mut close = |at: i64, count: u64| {
                let verdict = window.detector.observe(at, count as f64);
                if verdict.anomalous {
                    out.push(to_anomaly(
                        "event_rate",
                        service,
                        Signal::ErrorRate,
                        at,
                        count as f64,
                        &verdict,
                        "its usual rate",
                        now,
                    ));
                }
            };
            close(window.start, window.count);
            let mut next = window.start.saturating_add(size);
            let mut gaps = 0;
            while next < start && gaps < MAX_GAP_WINDOWS {
                close(next, 0);
                next = next.saturating_add(size);
                gaps += 1;
            }
            window.start = start;
            window.count = 0;
        }
        if error {
            window.count += 1;
        }
    }
}

/// Runs detection until `shutdown` completes (then saves a final checkpoint and returns
/// `Ok`), or until the log or the checkpoint store fails. See the module docs.
pub async fn run_detection(
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    checkpoints: Arc<dyn CheckpointStore>,
    config: DetectionRunnerConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DetectError> {
    let mut shutdown = std::pin::pin!(shutdown);
    sightline_stream::runner::ensure_builtin_topics(
        log.as_ref(),
        &[
            topics::METRICS_RAW,
            topics::SYSTEM_EVENTS,
            topics::ANOMALIES,
        ],
    )
    .await?;
    let mut state = restore(checkpoints.as_ref(), &config).await?;
    let restored = state.positions.clone();
    let mut sub = log.subscribe(GROUP, &TOPICS).await?;
    sightline_stream::runner::seek_to(sub.as_mut(), &restored, GROUP);
    tracing::info!(group = GROUP, "detection runner started");

    let mut tick = tokio::time::interval(config.tick_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_checkpoint = Instant::now();
    let batch_size = config.batch_size.max(1);
    let mut dirty = false;

    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            _ = tick.tick() => {}
            batch = sub.next_batch(batch_size) => {
                let batch = batch?;
                for (topic, partition) in sub.take_revoked() {
                    metrics::counter!(telemetry::REVOKED).increment(1);
                    tracing::warn!(
                        %topic, partition,
                        "detect: partition revoked by a rebalance; its series continue on \
                         the new owner from the committed offsets"
                    );
                }
                let anomalies = process(&mut state, &config, &restored, &batch).await;
                dirty = dirty || !batch.is_empty();
                if !write(log.as_ref(), store.as_ref(), &config, &anomalies, &mut shutdown).await? {
                    tracing::info!("detection runner stopped during a store retry");
                    return Ok(());
                }
            }
        }
        if dirty && last_checkpoint.elapsed() >= config.checkpoint_interval {
            checkpoint(&state, checkpoints.as_ref(), sub.as_mut()).await?;
            dirty = false;
            last_checkpoint = Instant::now();
        }
    }
    if dirty {
        checkpoint(&state, checkpoints.as_ref(), sub.as_mut()).await?;
    }
    tracing::info!("detection runner stopped");
    Ok(())
}

async fn restore(
    checkpoints: &dyn CheckpointStore,
    config: &DetectionRunnerConfig,
) -> Result<DetectionState, DetectError> {
    let Some(bytes) = checkpoints.load(CHECKPOINT_JOB).await? else {
        return DetectionState::new(config);
    };
    match DetectionState::decode(&bytes) {
        Ok(mut state) => {
            state.series.set_config(config.detect.clone())?;
            tracing::info!(positions = ?state.positions, "detect: restored checkpoint");
            Ok(state)
        }
        Err(reason) => {
            // Starting empty from the committed offsets can only miss anomalies that need
            // history, never duplicate one (ids are deterministic, writes upsert).
            tracing::error!(%reason, "detect: unusable checkpoint; starting with empty state");
            DetectionState::new(config)
        }
    }
}

/// Saves the state's checkpoint, then commits the positions it covers.
async fn checkpoint(
    state: &DetectionState,
    checkpoints: &dyn CheckpointStore,
    sub: &mut dyn Subscription,
) -> Result<(), DetectError> {
    let started = Instant::now();
    checkpoints.save(CHECKPOINT_JOB, state.encode()?).await?;
    sightline_stream::runner::commit_positions(sub, &state.positions).await?;
    metrics::histogram!(telemetry::CHECKPOINT_SECONDS).record(started.elapsed().as_secs_f64());
    Ok(())
}

/// Feeds a batch to the detectors; returns the anomalies raised, in input order.
async fn process(
    state: &mut DetectionState,
    config: &DetectionRunnerConfig,
    restored: &SourcePositions,
    batch: &[Delivered],
) -> Vec<Anomaly> {
    // Records it still cannot read are rejected below, counted and logged.
    prefetch_writers(
        config.codec.as_ref(),
        batch.iter().map(|d| d.record.value.as_slice()),
        "detect",
    )
    .await;
    let now = now_ms();
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
        match &*d.topic {
            topics::METRICS_RAW => match read_metric(&d.record.value, config.codec.as_ref()) {
                Ok(m) => out.extend(state.series.observe(&m, now)),
                Err(reason) => reject(d, &reason),
            },
            topics::SYSTEM_EVENTS => match read_event(&d.record.value, config.codec.as_ref()) {
                Ok(e) => {
                    out.extend(state.patterns.observe(&e, now));
                    state.count_event(config, &e, now, &mut out);
                }
                Err(reason) => reject(d, &reason),
            },
            other => reject(d, &format!("the detection runner does not read '{other}'")),
        }
        // Rejected records too: they would only be rejected again.
        state.positions.advance(&d.topic, d.partition, d.offset);
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
        "detect: skipping a record it cannot decode"
    );
}

/// Writes a batch's anomalies to the store (retried), then publishes them on `anomalies`.
/// Returns `false` when shutdown arrived while a store write was being retried.
async fn write(
    log: &dyn EventLog,
    store: &dyn Store,
    config: &DetectionRunnerConfig,
    anomalies: &[Anomaly],
    shutdown: &mut Pin<&mut impl Future<Output = ()>>,
) -> Result<bool, DetectError> {
    if anomalies.is_empty() {
        return Ok(true);
    }
    let mut records = Vec::with_capacity(anomalies.len());
    for a in anomalies {
        let value = serde_json::to_vec(a).map_err(|e| DetectError::Encode(e.to_string()))?;
        records.push(Record::new(Some(&a.service_name), value, a.timestamp));
    }
    let summary = loop {
        match store.write_anomalies(anomalies).await {
            Ok(summary) => break summary,
            Err(error) => {
                metrics::counter!(telemetry::WRITE_ERRORS).increment(1);
                tracing::warn!(%error, "detect: writing anomalies to the store failed; retrying");
                tokio::select! {
                    biased;
                    () = shutdown.as_mut() => return Ok(false),
                    () = tokio::time::sleep(config.retry_backoff) => {}
                }
            }
        }
    };
    log.append(topics::ANOMALIES, records).await?;
    metrics::counter!(telemetry::ANOMALIES_DUPLICATE).increment(summary.duplicates);
    for a in anomalies {
        metrics::counter!(telemetry::ANOMALIES_OUT, "detector" => a.detector.clone()).increment(1);
        tracing::debug!(id = %a.id, service = %a.service_name, explanation = %a.explanation, "anomaly");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(t: i64, severity: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "event_id": format!("e-{t}"),
            "service_name": "api",
            "event_type": "ERROR",
            "timestamp": t,
            "environment": "PRODUCTION",
            "details": "boom",
            "severity": severity,
            "metadata": {},
            "source": "test",
            "source_type": "http",
            "host": null,
            "tags": {},
            "fingerprint": "fp",
            "correlation_id": "",
            "received_at": t,
        }))
        .expect("event")
    }

    #[test]
    fn error_bursts_close_by_event_time_and_state_round_trips() {
        let config = DetectionRunnerConfig::default();
        let mut state = DetectionState::new(&config).expect("state");
        let mut out = Vec::new();
        // 20 quiet minutes with one error each, then a burst of 40 in minute 20.
        for m in 0..20 {
            state.count_event(&config, &event(m * 60_000 + 5, "high"), 0, &mut out);
        }
        for i in 0..40 {
            state.count_event(&config, &event(20 * 60_000 + i, "critical"), 0, &mut out);
        }
        assert!(out.is_empty(), "{out:?}");
        // A later, non-error event of the service closes the burst window.
        state.count_event(&config, &event(21 * 60_000, "info"), 0, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].detector, "event_rate");
        assert_eq!(out[0].signal, Signal::ErrorRate);
        assert_eq!(out[0].timestamp, 20 * 60_000);
        assert_eq!(out[0].value, 40.0);

        let bytes = state.encode().expect("encode");
        let back = DetectionState::decode(&bytes).expect("decode");
        assert_eq!(back.rates, state.rates);
        assert!(DetectionState::decode(b"garbage").is_err());
    }
}
