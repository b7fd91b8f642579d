//! The edge of the pipeline: bytes from producers in, durable log records out.
//!
//! An [`Ingestor`] takes a request body in one of the input [`Kind`]s, splits it into items,
//! validates and normalizes each (via `sightline-model`), enriches it (event id, arrival
//! time, correlation id, source type, fingerprint) and appends the valid ones to the event
//! log — `system-events` for events, `metrics.raw` for metrics — keyed by service so one
//! service's records stay in order. It answers only once the append is durable, with a
//! [`BatchReport`] that says, item by item, what was accepted and why anything was refused.
//!
//! Transport-specific code (HTTP routes, status codes) lives in `sightline-api`; the
//! [`kafka_source`] reads an external Kafka topic through the same path, and future sources
//! (syslog, SNMP, SMTP, OTLP) will too.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use std::sync::Arc;
//! use sightline_ingest::{Ingestor, IngestConfig, Kind};
//! use sightline_log::{EmbeddedLog, EventLog, LogConfig, TopicConfig};
//! use sightline_model::{Clock, topics};
//!
//! let dir = std::env::temp_dir().join(format!("sightline-ingest-doc-{}", std::process::id()));
//! let log = EmbeddedLog::open(&dir, LogConfig::default()).unwrap();
//! log.create_topic(topics::SYSTEM_EVENTS, TopicConfig::with_partitions(2)).await.unwrap();
//! let ingestor = Ingestor::new(Arc::new(log), Clock::system(), IngestConfig::default());
//!
//! let body = br#"[{"service_name":"api","event_type":"ERROR","details":"boom"},
//!                 {"event_type":"ERROR"}]"#;
//! let report = ingestor.ingest(Kind::SystemEvent, &body[..], "req-1", false).await.unwrap();
//! assert_eq!((report.accepted, report.rejected), (1, 1));
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```

mod batch;
pub mod kafka_source;
mod telemetry;
pub mod topic;

pub use batch::{BatchReport, IngestConfig, IngestError, Ingestor, ItemOutcome, Kind};
pub use sightline_model::decode::BodyShape;
