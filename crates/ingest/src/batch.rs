//! Split → validate → enrich → append, for any input kind.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use serde::Serialize;
use sightline_codec::{Codec, CodecError, RecordKind};
use sightline_log::{EventLog, LogError, Offset, Record};
use sightline_model::decode::{self, BodyShape};
use sightline_model::{Clock, Event, IngestContext, Metric, SourceType, ValidationError, topics};
use tokio::sync::Semaphore;

use crate::telemetry::{self, SeverityCounts};

/// The input shape of a request body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
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

    fn record_kind(self) -> RecordKind {
        match self {
            Kind::SystemEvent | Kind::Webhook => RecordKind::Event,
            Kind::Metric => RecordKind::Metric,
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
    /// User topics written through `POST /api/v1/topics/{topic}/records`.
    pub topics: crate::topic::TopicIngestConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            max_in_flight_bytes: 256 * 1024 * 1024,
            max_batch_items: 50_000,
            topics: crate::topic::TopicIngestConfig::default(),
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
    /// The topic does not exist and is not created automatically.
    #[error("unknown topic '{0}'")]
    UnknownTopic(String),
    /// Too many appends in flight: retry after a short wait.
    #[error("ingestion is overloaded; retry shortly")]
    Overloaded,
    /// The log could not make the batch durable; nothing of it is acknowledged.
    #[error("event log unavailable: {0}")]
    Log(#[from] LogError),
    /// Values could not be encoded (with Avro: the schema registry failed); nothing of the
    /// batch is acknowledged.
    #[error("record encoding failed: {0}")]
    Codec(#[from] CodecError),
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
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) clock: Clock,
    pub(crate) config: IngestConfig,
    in_flight: Arc<Semaphore>,
    codec: Option<Codec>,
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
            codec: None,
        }
    }

    /// Writes record values with `codec` (default: JSON, as `serde_json` writes them).
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// The codec record values are written with; `None`: JSON.
    pub fn codec(&self) -> Option<&Codec> {
        self.codec.as_ref()
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
        let source = kind.source_type();
        let _permit = self.admit(source.as_str(), body.len())?;
        let ctx = IngestContext::new(source, self.clock.now_ms(), correlation_id);
        let max_items = self.config.max_batch_items;
        if let Some(codec) = &self.codec {
            codec.prepare(kind.record_kind(), kind.topic()).await?;
        }
        // Decoding a large body is CPU work: keep it off the async workers.
        let (results, records, severities) = if body.len() > INLINE_DECODE_BYTES {
            let (ctx, codec) = (ctx.clone(), self.codec.clone());
            tokio::task::spawn_blocking(move || {
                let parts = split(&body, shape, max_items)?;
                prepare(kind, parts, &ctx, codec.as_ref())
            })
            .await
            .map_err(|_| IngestError::Log(LogError::Closed))??
        } else {
            let parts = split(&body, shape, max_items)?;
            prepare(kind, parts, &ctx, self.codec.as_ref())?
        };
        self.append(kind, ctx, results, records, severities, atomic)
            .await
    }

    /// Ingests values that arrive one item each (records of an external Kafka topic): each
    /// is a JSON document of `kind`'s input shape, or — with a codec — an Avro value in the
    /// Confluent wire format holding the normalized record. Invalid items are reported and
    /// the others appended, in one append.
    pub async fn ingest_values(
        &self,
        kind: Kind,
        source: SourceType,
        values: &[&[u8]],
        correlation_id: &str,
    ) -> Result<BatchReport, IngestError> {
        let _permit = self.admit(source.as_str(), values.iter().map(|v| v.len()).sum())?;
        let ctx = IngestContext::new(source, self.clock.now_ms(), correlation_id);
        if let Some(codec) = &self.codec {
            codec.prepare(kind.record_kind(), kind.topic()).await?;
            codec.ensure_known(values.iter().copied()).await?;
        }
        let (results, records, severities) =
            prepare(kind, values.to_vec(), &ctx, self.codec.as_ref())?;
        self.append(kind, ctx, results, records, severities, false)
            .await
    }

    /// Takes in-flight budget for `bytes`, or refuses as overloaded.
    pub(crate) fn admit(
        &self,
        source: &'static str,
        bytes: usize,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, IngestError> {
        let total = permits(self.config.max_in_flight_bytes).max(1);
        let wanted = permits(bytes).clamp(1, total);
        self.in_flight
            .clone()
            .try_acquire_many_owned(wanted)
            .map_err(|_| {
                metrics::counter!(telemetry::OVERLOADED, "source" => source).increment(1);
                IngestError::Overloaded
            })
    }

    /// Counts the outcomes and appends the valid records (all or nothing when `atomic`);
    /// the accepted events are counted by severity once they are appended.
    async fn append(
        &self,
        kind: Kind,
        ctx: IngestContext,
        results: Vec<ItemOutcome>,
        records: Vec<Record>,
        severities: SeverityCounts,
        atomic: bool,
    ) -> Result<BatchReport, IngestError> {
        let source = ctx.source_type.as_str();
        let (report, _) = self
            .append_to(
                kind.topic(),
                source,
                ctx.correlation_id,
                results,
                records,
                atomic,
            )
            .await?;
        severities.record();
        Ok(report)
    }

    /// Counts the outcomes under `source` and appends the valid records to `topic` (all or
    /// nothing when `atomic`); the report and where the records landed.
    pub(crate) async fn append_to(
        &self,
        topic: &str,
        source: &'static str,
        correlation_id: String,
        results: Vec<ItemOutcome>,
        records: Vec<Record>,
        atomic: bool,
    ) -> Result<(BatchReport, Vec<Offset>), IngestError> {
        metrics::counter!(telemetry::RECEIVED, "source" => source).increment(results.len() as u64);
        let rejected = results.len() - records.len();
        let report = BatchReport {
            accepted: records.len(),
            rejected,
            results,
            correlation_id,
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
        let offsets = self.log.append(topic, records).await?;
        metrics::histogram!(telemetry::APPEND_SECONDS, "source" => source)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(telemetry::ACCEPTED, "source" => source)
            .increment(report.accepted as u64);
        Ok((report, offsets))
    }
}

/// Semaphore permits for `bytes` (one per KiB, rounded up).
fn permits(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Bodies up to this size are decoded on the calling task; larger ones on a blocking thread.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Splits a body into its items, refusing more than `max_items`.
pub(crate) fn split(
    body: &[u8],
    shape: BodyShape,
    max_items: usize,
) -> Result<Vec<&[u8]>, IngestError> {
    let parts = decode::split_batch(body, shape).map_err(IngestError::Malformed)?;
    if parts.len() > max_items {
        return Err(IngestError::TooManyItems {
            items: parts.len(),
            limit: max_items,
        });
    }
    Ok(parts)
}

/// Decodes items: an outcome per item, the records of the valid ones and their events'
/// severities.
fn prepare(
    kind: Kind,
    parts: Vec<&[u8]>,
    ctx: &IngestContext,
    codec: Option<&Codec>,
) -> Result<(Vec<ItemOutcome>, Vec<Record>, SeverityCounts), IngestError> {
    let mut results = Vec::with_capacity(parts.len());
    let mut records = Vec::with_capacity(parts.len());
    let mut severities = SeverityCounts::default();
    for (index, bytes) in parts.into_iter().enumerate() {
        match decode_item(kind, bytes, ctx, codec) {
            Ok(item) => {
                if let Item::Event(e) = &item {
                    severities.add(e.severity);
                }
                let (record, event_id) = to_record(item, codec)?;
                records.push(record);
                results.push(ItemOutcome::Accepted { index, event_id });
            }
            Err(error) => results.push(ItemOutcome::Rejected { index, error }),
        }
    }
    Ok((results, records, severities))
}

fn decode_item(
    kind: Kind,
    bytes: &[u8],
    ctx: &IngestContext,
    codec: Option<&Codec>,
) -> Result<Item, ValidationError> {
    // An Avro value already holds the normalized record (only external topics carry them).
    if let Some(codec) = codec.filter(|_| Codec::schema_id(bytes).is_some()) {
        let invalid = |e: CodecError| ValidationError::new("$", e.to_string());
        return Ok(match kind {
            Kind::SystemEvent | Kind::Webhook => {
                Item::Event(codec.decode_event(bytes).map_err(invalid)?)
            }
            Kind::Metric => Item::Metric(codec.decode_metric(bytes).map_err(invalid)?),
        });
    }
    Ok(match kind {
        Kind::SystemEvent => Item::Event(decode::system_event(bytes, ctx)?),
        Kind::Webhook => Item::Event(decode::webhook(bytes, ctx)?),
        Kind::Metric => Item::Metric(decode::metric(bytes, ctx)?),
    })
}

/// Serializes an item into its log record, keyed by service. The correlation id and source
/// type travel inside the value, so records need no headers.
fn to_record(item: Item, codec: Option<&Codec>) -> Result<(Record, Option<String>), CodecError> {
    // Without a codec: JSON. Serializing plain structs of strings, numbers and JSON maps
    // cannot fail.
    Ok(match item {
        Item::Event(e) => {
            let value = match codec {
                Some(codec) => codec.encode_event(&e, topics::SYSTEM_EVENTS)?,
                None => serde_json::to_vec(&e).unwrap_or_default(),
            };
            (
                Record::new(Some(&e.service_name), value, e.timestamp),
                Some(e.event_id),
            )
        }
        Item::Metric(m) => {
            let value = match codec {
                Some(codec) => codec.encode_metric(&m, topics::METRICS_RAW)?,
                None => serde_json::to_vec(&m).unwrap_or_default(),
            };
            (Record::new(Some(&m.service_name), value, m.timestamp), None)
        }
    })
}
