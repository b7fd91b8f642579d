//! Split → validate → enrich → append, for any input kind.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use serde::Serialize;
use sightline_log::{EventLog, LogError, Record};
use sightline_model::decode::{self, BodyShape};
use sightline_model::{Clock, Event, IngestContext, Metric, SourceType, ValidationError, topics};
use tokio::sync::Semaphore;

use crate::telemetry;

/// The input shape of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// System events (`SystemEventInput`) → `system-events`.
    SystemEvent,
    /// Generic webhook events (`WebhookInput`) → `system-events`.
    Webhook,
    /// Metric points (`MetricInput`) → `metrics.raw`.
    Metric,
}

impl Kind {
    fn source_type(self) -> SourceType {
        match self {
            Kind::SystemEvent => SourceType::Http,
            Kind::Webhook => SourceType::Webhook,
            Kind::Metric => SourceType::Metrics,
        }
    }

    fn topic(self) -> &'static str {
        match self {
            Kind::SystemEvent | Kind::Webhook => topics::SYSTEM_EVENTS,
            Kind::Metric => topics::METRICS_RAW,
        }
    }
}

/// Limits of the ingestion edge.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Request bytes that may be in flight (decoding and appending) at once; a request
    /// that would exceed it is refused as overloaded (HTTP 503 with `Retry-After`) instead
    /// of queueing without bound. Counting bytes, not requests, bounds memory while
    /// letting many small requests through.
    pub max_in_flight_bytes: usize,
    /// Most items in one batch.
    pub max_batch_items: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_in_flight_bytes: 256 * 1024 * 1024,
            max_batch_items: 50_000,
        }
    }
}

/// Why a whole request was refused (item-level problems are in the [`BatchReport`]).
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not a JSON document, array or NDJSON stream.
    #[error("malformed body: {0}")]
    Malformed(ValidationError),
    /// Every item was invalid, or (atomic mode) at least one was.
    #[error("{} item(s) rejected", .0.rejected)]
    Rejected(BatchReport),
    /// More items than allowed in one batch.
    #[error("batch of {items} items exceeds the limit of {limit}")]
    TooManyItems {
        /// Items in the batch.
        items: usize,
        /// Configured limit.
        limit: usize,
    },
    /// Too many appends in flight: retry after a short wait.
    #[error("ingestion is overloaded; retry shortly")]
    Overloaded,
    /// The log could not make the batch durable; nothing of it is acknowledged.
    #[error("event log unavailable: {0}")]
    Log(#[from] LogError),
}

/// What happened to one item.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum ItemOutcome {
    /// Durably appended.
    Accepted {
        /// Position in the request (0-based; blank NDJSON lines are not counted).
        index: usize,
        /// The event's id (absent for metrics).
        #[serde(skip_serializing_if = "Option::is_none")]
        event_id: Option<String>,
    },
    /// Refused; nothing of it was stored.
    Rejected {
        /// Position in the request.
        index: usize,
        /// Which field and why.
        error: ValidationError,
    },
}

/// The per-item answer to a request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BatchReport {
    /// Items durably appended.
    pub accepted: usize,
    /// Items refused.
    pub rejected: usize,
    /// One entry per item, in request order.
    pub results: Vec<ItemOutcome>,
    /// The request's correlation id.
    pub correlation_id: String,
}

/// The ingestion edge: see the [crate docs](crate).
#[derive(Debug)]
pub struct Ingestor {
    log: Arc<dyn EventLog>,
    clock: Clock,
    config: IngestConfig,
    in_flight: Arc<Semaphore>,
}

enum Item {
    Event(Event),
    Metric(Metric),
}

impl Ingestor {
    /// An ingestor appending to `log`.
    pub fn new(log: Arc<dyn EventLog>, clock: Clock, config: IngestConfig) -> Self {
        let in_flight = Arc::new(Semaphore::new(
            permits(config.max_in_flight_bytes).max(1) as usize
        ));
        Self {
            log,
            clock,
            config,
            in_flight,
        }
    }

    /// Ingests a body holding one document, a JSON array or NDJSON (detected from its
    /// content). Valid items are appended even when others are refused, unless `atomic`.
    pub async fn ingest(
        &self,
        kind: Kind,
        body: impl Into<Bytes>,
        correlation_id: &str,
        atomic: bool,
    ) -> Result<BatchReport, IngestError> {
        let body = body.into();
        let shape = decode::shape_of(&body);
        self.ingest_shaped(kind, body, shape, correlation_id, atomic)
            .await
    }

    /// Like [`ingest`](Self::ingest) with the body's shape given by the caller.
    pub async fn ingest_shaped(
        &self,
        kind: Kind,
        body: Bytes,
        shape: BodyShape,
        correlation_id: &str,
        atomic: bool,
    ) -> Result<BatchReport, IngestError> {
        let source = kind.source_type().as_str();
        let total = permits(self.config.max_in_flight_bytes).max(1);
        let wanted = permits(body.len()).clamp(1, total);
        let _permit = self
            .in_flight
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| {
                metrics::counter!(telemetry::OVERLOADED, "source" => source).increment(1);
                IngestError::Overloaded
            })?;
        let ctx = IngestContext::new(kind.source_type(), self.clock.now_ms(), correlation_id);
        let max_items = self.config.max_batch_items;
        // Decoding a large body is CPU work: keep it off the async workers.
        let (results, records) = if body.len() > INLINE_DECODE_BYTES {
            let ctx = ctx.clone();
            tokio::task::spawn_blocking(move || prepare(kind, &body, shape, &ctx, max_items))
                .await
                .map_err(|_| IngestError::Log(LogError::Closed))??
        } else {
            prepare(kind, &body, shape, &ctx, max_items)?
        };
        metrics::counter!(telemetry::RECEIVED, "source" => source).increment(results.len() as u64);
        let rejected = results.len() - records.len();
        let report = BatchReport {
            accepted: records.len(),
            rejected,
            results,
            correlation_id: ctx.correlation_id,
        };
        if rejected > 0 {
            metrics::counter!(telemetry::REJECTED, "source" => source).increment(rejected as u64);
            if atomic || records.is_empty() {
                let mut report = report;
                report.accepted = 0;
                return Err(IngestError::Rejected(report));
            }
        }
        let started = Instant::now();
        self.log.append(kind.topic(), records).await?;
        metrics::histogram!(telemetry::APPEND_SECONDS, "source" => source)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(telemetry::ACCEPTED, "source" => source)
            .increment(report.accepted as u64);
        Ok(report)
    }
}

/// Semaphore permits for `bytes` (one per KiB, rounded up).
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Bodies up to this size are decoded on the calling task; larger ones on a blocking thread.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Splits and decodes a body: an outcome per item and the records of the valid ones.
fn prepare(
    kind: Kind,
    body: &[u8],
    shape: BodyShape,
    ctx: &IngestContext,
    max_items: usize,
) -> Result<(Vec<ItemOutcome>, Vec<Record>), IngestError> {
    let parts = decode::split_batch(body, shape).map_err(IngestError::Malformed)?;
    if parts.len() > max_items {
        return Err(IngestError::TooManyItems {
            items: parts.len(),
            limit: max_items,
        });
    }
    let mut results = Vec::with_capacity(parts.len());
    let mut records = Vec::with_capacity(parts.len());
    for (index, bytes) in parts.into_iter().enumerate() {
        match decode_item(kind, bytes, ctx) {
            Ok(item) => {
                let (record, event_id) = to_record(item);
                records.push(record);
                results.push(ItemOutcome::Accepted { index, event_id });
            }
            Err(error) => results.push(ItemOutcome::Rejected { index, error }),
        }
    }
    Ok((results, records))
}

fn decode_item(kind: Kind, bytes: &[u8], ctx: &IngestContext) -> Result<Item, ValidationError> {
    Ok(match kind {
        Kind::SystemEvent => Item::Event(decode::system_event(bytes, ctx)?),
        Kind::Webhook => Item::Event(decode::webhook(bytes, ctx)?),
        Kind::Metric => Item::Metric(decode::metric(bytes, ctx)?),
    })
}

/// Serializes an item into its log record, keyed by service. The correlation id and source
/// type travel inside the value, so records need no headers.
fn to_record(item: Item) -> (Record, Option<String>) {
    // Serializing plain structs of strings, numbers and JSON maps cannot fail.
    match item {
        Item::Event(e) => {
            let value = serde_json::to_vec(&e).unwrap_or_default();
            (
                Record::new(Some(&e.service_name), value, e.timestamp),
                Some(e.event_id),
            )
        }
        Item::Metric(m) => {
            let value = serde_json::to_vec(&m).unwrap_or_default();
            (Record::new(Some(&m.service_name), value, m.timestamp), None)
        }
    }
}
