//! An ingestion source reading an external Kafka topic: every record's value is one item
//! (JSON in the topic's input shape, or an Avro value in the Confluent wire format), fed
//! through the same [`Ingestor`] path as HTTP and committed only once the items it
//! accepted are durable in sightline's own log. Invalid records are counted as rejected
//! (source `kafka`) and skipped, never retried forever.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sightline_log::{EventLog, KafkaConfig, KafkaLog, KafkaSecurity, LogError, next_positions};
use sightline_model::SourceType;

use crate::{IngestError, Ingestor, Kind};

/// One external topic to ingest (`[[sources.kafka]]`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// Bootstrap brokers of the cluster holding the topic.
    pub brokers: String,
    /// The topic, as named on that cluster (no namespace is applied).
    pub topic: String,
    /// The input shape of its values: `system_event`, `webhook` or `metric`.
    pub kind: Kind,
    /// Consumer group sightline reads it with (its committed offsets are the resume point).
    pub group: String,
    /// Records ingested per append.
    pub batch_size: usize,
    /// TLS and SASL towards that cluster (the same keys as `[log.kafka.security]`).
    pub security: KafkaSecurity,
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            topic: String::new(),
            kind: Kind::SystemEvent,
            group: "sightline-source".into(),
            batch_size: 1000,
            security: KafkaSecurity::default(),
        }
    }
}

/// Ingests `config.topic` until `shutdown` completes. Returns an error when the cluster
/// fails (the caller restarts it; reading resumes from the committed offsets).
pub async fn run(
    config: KafkaSourceConfig,
    ingestor: Arc<Ingestor>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), LogError> {
    let cluster = KafkaLog::connect(KafkaConfig {
        brokers: config.brokers.clone(),
        security: config.security.clone(),
        ..KafkaConfig::default()
    })?;
    let mut sub = cluster.subscribe(&config.group, &[&config.topic]).await?;
    tracing::info!(topic = %config.topic, group = %config.group, "Kafka source started");
    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            batch = sub.next_batch(config.batch_size.max(1)) => batch?,
            () = &mut shutdown => return Ok(()),
        };
        let Some(first) = batch.first() else { continue };
        let correlation_id = format!(
            "kafka:{}:{}:{}",
            config.topic, first.partition, first.offset
        );
        let values: Vec<&[u8]> = batch.iter().map(|d| d.record.value.as_slice()).collect();
        // Until the batch is durable in our log it is not committed: retry what failed
        // for a reason that passes (overload, log or registry unavailable).
        loop {
            match ingestor
                .ingest_values(config.kind, SourceType::Kafka, &values, &correlation_id)
                .await
            {
                Ok(_) | Err(IngestError::Rejected(_)) => break,
                Err(e) => {
                    tracing::warn!(error = %e, topic = %config.topic, "Kafka source: ingesting a batch failed; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        () = &mut shutdown => return Ok(()),
                    }
                }
            }
        }
        sub.commit(&next_positions(&batch)).await?;
    }
}
