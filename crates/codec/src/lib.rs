//! How record values are written on the event log and read back.
//!
//! Records on the built-in topics carry a normalized [`Event`](sightline_model::Event)
//! (`system-events`) or [`Metric`](sightline_model::Metric) (`metrics.raw`). This crate
//! owns their bytes: JSON by default, or Avro in the Confluent wire format (magic byte
//! `0`, 4-byte big-endian schema id, Avro binary datum) with schemas kept in a Confluent
//! schema registry, so that any Kafka tool that speaks that format reads sightline's
//! topics and sightline reads theirs.
//!
//! The principal type is [`Codec`], built from a [`CodecConfig`] (the `[log.codec]`
//! table of a node's TOML file). Records enter as `&Event`/`&Metric` and leave as the
//! `Vec<u8>` a log record carries ([`Codec::encode_event`], [`Codec::encode_metric`]);
//! values come back with [`Codec::decode_event`] and [`Codec::decode_metric`], which
//! recognise the format from the first byte (`0` → Avro, `{` or whitespace → JSON)
//! whatever the codec writes, so consumers read both during a migration. The schema
//! registry is reached only in the two `async` calls made once per batch:
//! [`Codec::prepare`] before encoding (registers `<topic>-value` once, `<topic>` being
//! the name on the cluster, namespace included: [`Codec::with_namespace`]) and
//! [`Codec::ensure_known`] before decoding (fetches writer schemas it has not seen).
//! The registry is reached over HTTP or HTTPS (rustls, optionally trusting a private CA),
//! with basic auth. Errors are one [`CodecError`].
//!
//! # Schemas
//!
//! `schemas/system_event.avsc` and `schemas/metric.avsc` (namespace `io.sightline`) are
//! embedded in the binary ([`RecordKind::avro_schema`]). Avro values written with another
//! version of a schema are resolved to these by Avro's rules, so a producer may add a
//! field with a default. Choices in the schemas:
//!
//! - `metadata` is an arbitrary JSON object; Avro has no free-form JSON type, so it
//!   travels as JSON text in a `string` field. Tags are string-to-string maps.
//! - `severity` and `source_type` are Avro enums: one byte on the wire, the allowed
//!   values visible to every consumer and to the registry's compatibility checks. A new
//!   symbol cannot be read by an older reader — exactly as the Rust enums behave, which
//!   cannot hold it either.
//! - Times are `long` with `logicalType: timestamp-millis`; `host` is `["null","string"]`
//!   with default `null`.
//!
//! # Example
//!
//! The default configuration writes JSON, byte for byte what `serde_json` writes, and
//! needs no registry:
//!
//! ```
//! use sightline_codec::{Codec, CodecConfig, RecordKind};
//! use sightline_model::{Metric, topics};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), sightline_codec::CodecError> {
//! let codec = Codec::new(&CodecConfig::default())?;
//! let point = Metric {
//!     service_name: "payment-service".into(),
//!     metric_type: "latency_ms".into(),
//!     value: 41.5,
//!     tags: [("region".to_string(), "eu-west-1".to_string())].into(),
//!     timestamp: 1_700_000_000_000,
//!     received_at: 1_700_000_000_250,
//!     correlation_id: "req-1".into(),
//! };
//!
//! // Once per batch: a no-op for JSON, registers the schema once for Avro.
//! codec.prepare(RecordKind::Metric, topics::METRICS_RAW).await?;
//! let value = codec.encode_metric(&point, topics::METRICS_RAW)?;
//! assert_eq!(value, serde_json::to_vec(&point)?);
//!
//! // Once per batch: fetches unknown Avro writer schemas; nothing to do for JSON.
//! codec.ensure_known([value.as_slice()]).await?;
//! assert_eq!(codec.decode_metric(&value)?, point);
//!
//! // Bytes in neither format are refused with the offending byte, never a panic.
//! let err = codec.decode_metric(b"\x7fELF").unwrap_err();
//! assert!(err.to_string().contains("at byte 0"));
//! # Ok(())
//! # }
//! ```

mod avro;
mod codec;
mod config;
mod error;
mod registry;
mod wire;

pub use avro::RecordKind;
pub use codec::{Codec, prefetch_writers, read_event, read_metric};
pub use config::{CodecConfig, RegistryConfig, SubjectStrategy, ValueFormat};
pub use error::{CodecError, RegistryTarget};
