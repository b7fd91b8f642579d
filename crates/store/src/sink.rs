//! The log → store consumer: how events and metrics get from the event log into the store.
//!
//! The sink joins consumer group [`GROUP`] on `system-events` and `metrics.raw`, and for
//! each batch it reads:
//!
//! 1. decodes every record (an undecodable record is logged, counted and skipped: it can
//!    never succeed, so it must not block the partition);
//! 2. writes the events, then the metrics, each in one store transaction;
//! 3. only after both writes succeeded, commits per partition the position after the
//!    highest offset it processed.
//!
//! A failed write is retried with the same batch after a pause, forever (until shutdown):
//! the sink never commits past data it has not written and never drops data. A crash between
//! the store commit and the log commit redelivers the batch, which the store's keyed upserts
//! absorb — effectively once.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sightline_codec::Codec;
use sightline_log::{Delivered, EventLog, Position, next_positions};
use sightline_model::{Event, Metric, topics};

use crate::{LoggedEvent, LoggedMetric, Store, StoreError, WriteSummary};

/// Rows newly written, by `table`.
pub const METRIC_WRITTEN: &str = "sightline_store_written_total";
/// Rows already present (redeliveries, re-sent ids), by `table`.
pub const METRIC_DUPLICATES: &str = "sightline_store_duplicates_total";
/// Records that could not be decoded and were skipped, by `topic`.
pub const METRIC_REJECTED: &str = "sightline_store_rejected_total";
/// Failed store writes (each is retried), by `table`.
pub const METRIC_WRITE_ERRORS: &str = "sightline_store_write_errors_total";
/// Time to decode and write one batch, seconds.
pub const METRIC_BATCH_SECONDS: &str = "sightline_store_batch_seconds";
/// Records in each batch read from the log.
pub const METRIC_BATCH_RECORDS: &str = "sightline_store_batch_records";

/// The consumer group the sink commits its positions under.
pub const GROUP: &str = "store";

/// The topics the sink consumes.
pub const TOPICS: [&str; 2] = [topics::SYSTEM_EVENTS, topics::METRICS_RAW];

/// The `table` label of events (counted by their `processed_events` rows).
/// The `table` label of event rows in the store metrics.
pub const TABLE_EVENTS: &str = "processed_events";
/// The `table` label of metric points.
const TABLE_METRICS: &str = "system_metrics";

/// Registers descriptions of the sink's metrics with the installed recorder.
pub fn describe_metrics() {
    metrics::describe_counter!(METRIC_WRITTEN, "Rows newly written to the store, by table.");
    metrics::describe_counter!(
        METRIC_DUPLICATES,
        "Rows the store already held (redeliveries or re-sent ids), by table."
    );
    metrics::describe_counter!(
        METRIC_REJECTED,
        "Log records the store sink could not decode and skipped, by topic."
    );
    metrics::describe_counter!(
        METRIC_WRITE_ERRORS,
        "Failed store writes (each is retried), by table."
    );
    metrics::describe_histogram!(
        METRIC_BATCH_SECONDS,
        metrics::Unit::Seconds,
        "Time for the store sink to decode and write one batch."
    );
    metrics::describe_histogram!(
        METRIC_BATCH_RECORDS,
        metrics::Unit::Count,
        "Records in each batch the store sink read from the log."
    );
}

/// Settings of the sink.
#[derive(Clone, Debug)]
pub struct SinkConfig {
    /// Most records read (and written in one transaction per table) at a time.
    pub batch_size: usize,
    /// Pause before retrying a batch whose write failed.
    pub retry_backoff: Duration,
    /// Reads Avro values (Confluent wire format); without it only JSON values decode.
    pub codec: Option<Codec>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            batch_size: 5000,
            retry_backoff: Duration::from_millis(500),
            codec: None,
        }
    }
}

/// What processing one batch did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Per (topic, partition), the position after the highest offset processed: commit these.
    pub positions: Vec<Position>,
    /// Result of writing the batch's events.
    pub events: WriteSummary,
    /// Result of writing the batch's metric points.
    pub metrics: WriteSummary,
    /// Records skipped because they could not be decoded.
    pub rejected: u64,
}

/// Runs the sink until `shutdown` completes (then returns `Ok`), or until the log fails
/// (reading or committing), which is returned. Store failures are retried, not returned.
///
/// A write in progress is finished (or failed) before shutdown is honoured, so shutdown
/// never interrupts a transaction; its batch is committed to the log if the write succeeded.
pub async fn run(
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    config: SinkConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), StoreError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let batch_size = config.batch_size.max(1);
    let mut subscription = log.subscribe(GROUP, &TOPICS).await?;
    tracing::info!(group = GROUP, batch_size, "store sink started");

    loop {
        let batch = tokio::select! {
            biased;
            () = &mut shutdown => break,
            batch = subscription.next_batch(batch_size) => batch?,
        };
        if batch.is_empty() {
            continue;
        }
        metrics::histogram!(METRIC_BATCH_RECORDS).record(batch.len() as f64);

        let positions = loop {
            match process_batch(store.as_ref(), config.codec.as_ref(), &batch).await {
                Ok(positions) => break positions,
                Err(error) => {
                    tracing::warn!(
                        %error,
                        records = batch.len(),
                        retry_in = ?config.retry_backoff,
                        "store sink: writing a batch failed; retrying it"
                    );
                    tokio::select! {
                        biased;
                        () = &mut shutdown => {
                            tracing::info!("store sink stopped with an unwritten batch; it will be redelivered");
                            return Ok(());
                        }
                        () = tokio::time::sleep(config.retry_backoff) => {}
                    }
                }
            }
        };
        subscription.commit(&positions).await?;
    }

    tracing::info!("store sink stopped");
    Ok(())
}

/// Decodes and writes one batch, returning the positions to commit once it succeeded.
pub async fn process_batch(
    store: &dyn Store,
    codec: Option<&Codec>,
    batch: &[Delivered],
) -> Result<Vec<Position>, StoreError> {
    Ok(process_batch_outcome(store, codec, batch).await?.positions)
}

/// [`process_batch`], also reporting what was written and what was rejected.
pub async fn process_batch_outcome(
    store: &dyn Store,
    codec: Option<&Codec>,
    batch: &[Delivered],
) -> Result<BatchOutcome, StoreError> {
    let started = Instant::now();
    if let Some(codec) = codec {
        // Writer schemas this process has not seen yet; a registry outage fails the batch,
        // which is retried, rather than skipping records it could read a moment later.
        codec
            .ensure_known(batch.iter().map(|d| d.record.value.as_slice()))
            .await
            .map_err(|e| StoreError::Decode(e.to_string()))?;
    }
    let decoded = decode_batch(batch, codec).await;

    let events = if decoded.events.is_empty() {
        WriteSummary::default()
    } else {
        store.write_events(&decoded.events).await.inspect_err(|_| {
            metrics::counter!(METRIC_WRITE_ERRORS, "table" => TABLE_EVENTS).increment(1);
        })?
    };
    let metric_points = if decoded.metrics.is_empty() {
        WriteSummary::default()
    } else {
        store
            .write_metrics(&decoded.metrics)
            .await
            .inspect_err(|_| {
                metrics::counter!(METRIC_WRITE_ERRORS, "table" => TABLE_METRICS).increment(1);
            })?
    };

    // Counted only once the whole batch is written, so retries do not inflate them.
    record_summary(TABLE_EVENTS, events);
    record_summary(TABLE_METRICS, metric_points);
    for (topic, count) in &decoded.rejected_by_topic {
        metrics::counter!(METRIC_REJECTED, "topic" => topic.to_string()).increment(*count);
    }
    metrics::histogram!(METRIC_BATCH_SECONDS).record(started.elapsed().as_secs_f64());

    Ok(BatchOutcome {
        positions: next_positions(batch),
        events,
        metrics: metric_points,
        rejected: decoded.rejected_by_topic.values().sum(),
    })
}

fn record_summary(table: &'static str, summary: WriteSummary) {
    if summary.inserted > 0 {
        metrics::counter!(METRIC_WRITTEN, "table" => table).increment(summary.inserted);
    }
    if summary.duplicates > 0 {
        metrics::counter!(METRIC_DUPLICATES, "table" => table).increment(summary.duplicates);
    }
}

/// A batch split into what the store takes, plus the count of what it cannot.
#[derive(Default)]
struct DecodedBatch {
    events: Vec<LoggedEvent>,
    metrics: Vec<LoggedMetric>,
    rejected_by_topic: HashMap<Arc<str>, u64>,
}

/// Records decoded between yields to the runtime: decoding a full batch takes tens of
/// milliseconds, too long to hold a worker thread other tasks (API requests) may need.
const DECODE_CHUNK: usize = 512;

async fn decode_batch(batch: &[Delivered], codec: Option<&Codec>) -> DecodedBatch {
    let mut decoded = DecodedBatch::default();
    for (index, delivered) in batch.iter().enumerate() {
        if index > 0 && index % DECODE_CHUNK == 0 {
            tokio::task::yield_now().await;
        }
        let outcome = match &*delivered.topic {
            topics::SYSTEM_EVENTS => decode_event(delivered, codec).map(|e| decoded.events.push(e)),
            topics::METRICS_RAW => decode_metric(delivered, codec).map(|m| decoded.metrics.push(m)),
            other => Err(format!("the store sink does not read topic '{other}'")),
        };
        if let Err(reason) = outcome {
            tracing::warn!(
                topic = %delivered.topic,
                partition = delivered.partition,
                offset = delivered.offset,
                %reason,
                "store sink: skipping a record it cannot decode"
            );
            *decoded
                .rejected_by_topic
                .entry(delivered.topic.clone())
                .or_default() += 1;
        }
    }
    decoded
}

/// The codec when `value` is in the Avro wire format and there is one to read it.
fn avro_reader<'c>(codec: Option<&'c Codec>, value: &[u8]) -> Option<&'c Codec> {
    codec.filter(|_| Codec::schema_id(value).is_some())
}

fn decode_event(delivered: &Delivered, codec: Option<&Codec>) -> Result<LoggedEvent, String> {
    let value = &delivered.record.value;
    let (event, payload) = match avro_reader(codec, value) {
        Some(codec) => {
            let event = codec
                .decode_event(value)
                .map_err(|e| format!("not a system event: {e}"))?;
            // `raw_events` keeps the payload as text: the JSON form of what was read.
            let payload = serde_json::to_string(&event).map_err(|e| e.to_string())?;
            (event, payload)
        }
        None => {
            let payload =
                std::str::from_utf8(value).map_err(|e| format!("value is not UTF-8: {e}"))?;
            let event: Event =
                serde_json::from_str(payload).map_err(|e| format!("not a system event: {e}"))?;
            (event, payload.to_owned())
        }
    };
    Ok(LoggedEvent {
        event,
        payload,
        partition: delivered.partition,
        offset: delivered.offset,
    })
}

fn decode_metric(delivered: &Delivered, codec: Option<&Codec>) -> Result<LoggedMetric, String> {
    let value = &delivered.record.value;
    let metric: Metric = match avro_reader(codec, value) {
        Some(codec) => codec.decode_metric(value).map_err(|e| e.to_string()),
        None => serde_json::from_slice(value).map_err(|e| e.to_string()),
    }
    .map_err(|e| format!("not a metric point: {e}"))?;
    Ok(LoggedMetric {
        metric,
        partition: delivered.partition,
        offset: delivered.offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_log::Record;

    fn delivered(topic: &str, partition: u32, offset: u64) -> Delivered {
        Delivered {
            topic: Arc::from(topic),
            partition,
            offset,
            record: Record::new(None, b"{}".to_vec(), 0),
        }
    }

    #[test]
    fn positions_follow_the_highest_offset_per_partition() {
        let batch = [
            delivered("a", 0, 5),
            delivered("a", 1, 2),
            delivered("a", 0, 7),
            delivered("b", 0, 1),
            delivered("a", 0, 6),
        ];
        let positions = next_positions(&batch);
        let got: Vec<(&str, u32, u64)> = positions
            .iter()
            .map(|p| (&*p.topic, p.partition, p.offset))
            .collect();
        assert_eq!(got, vec![("a", 0, 8), ("a", 1, 3), ("b", 0, 2)]);
    }

    #[tokio::test]
    async fn undecodable_records_are_counted_per_topic() {
        let batch = [
            delivered(topics::SYSTEM_EVENTS, 0, 0),
            delivered(topics::METRICS_RAW, 0, 0),
            delivered("elsewhere", 0, 0),
        ];
        let decoded = decode_batch(&batch, None).await;
        assert!(decoded.events.is_empty() && decoded.metrics.is_empty());
        assert_eq!(decoded.rejected_by_topic.len(), 3);
        assert_eq!(decoded.rejected_by_topic.values().sum::<u64>(), 3);
    }
}
