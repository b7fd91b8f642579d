//! Settings of the Kafka backend.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;

use super::security::KafkaSecurity;

/// How to reach the Kafka cluster and how topics are created on it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma-separated `host:port`.
    pub brokers: String,
    /// `client.id` of every connection (shows in broker logs and quotas).
    pub client_id: String,
    /// Prefix of every topic and consumer group sightline uses on the cluster
    /// (`"{namespace}.{topic}"`), so several deployments can share one cluster. Empty: the
    /// topic names as they are.
    pub namespace: String,
    /// Replication factor of the topics sightline creates.
    pub replication_factor: i32,
    /// How long the producer keeps retrying a record before the append fails (ms). An
    /// append that fails was never acknowledged to the client, so a broker outage shorter
    /// than this loses nothing and a longer one is answered with 503.
    pub delivery_timeout_ms: u64,
    /// How long the producer waits to fill a batch (ms).
    pub linger_ms: u64,
    /// A consumer that sends no heartbeat for this long is removed from its group (ms);
    /// bounds how fast a surviving node takes over a dead node's partitions.
    pub session_timeout_ms: u64,
    /// Bound on metadata, offset and admin requests (ms).
    pub request_timeout_ms: u64,
    /// TLS and SASL (`[log.kafka.security]`); default plaintext, no authentication.
    pub security: KafkaSecurity,
    /// Extra librdkafka properties passed verbatim (e.g. `compression.type = "lz4"`); they
    /// win over everything above.
    pub properties: BTreeMap<String, String>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            client_id: "sightline".into(),
            namespace: String::new(),
            replication_factor: 1,
            delivery_timeout_ms: 30_000,
            linger_ms: 5,
            session_timeout_ms: 10_000,
            request_timeout_ms: 10_000,
            security: KafkaSecurity::default(),
            properties: BTreeMap::new(),
        }
    }
}

impl KafkaConfig {
    /// Brokers and client id, the security settings, then `specific`, then the extra
    /// properties (which win, so an operator can tune anything the defaults get wrong for
    /// their cluster).
    fn client(&self, specific: &[(&str, String)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id);
        for (key, value) in self.security.properties().iter().chain(specific) {
            config.set(*key, value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        // Connection failures (a broker closing the connection at once, as a TLS listener
        // does with a plaintext client) are logged at info only: they explain errors.
        if matches!(
            config.log_level,
            RDKafkaLogLevel::Emerg
                | RDKafkaLogLevel::Alert
                | RDKafkaLogLevel::Critical
                | RDKafkaLogLevel::Error
                | RDKafkaLogLevel::Warning
                | RDKafkaLogLevel::Notice
        ) {
            config.set_log_level(RDKafkaLogLevel::Info);
        }
        config
    }

    /// For metadata, watermarks and admin requests.
    pub(crate) fn admin(&self) -> ClientConfig {
        self.client(&[])
    }

    /// An idempotent producer that acknowledges only what every in-sync replica has.
    pub(crate) fn producer(&self) -> ClientConfig {
        self.client(&[
            ("enable.idempotence", "true".into()),
            ("acks", "all".into()),
            ("message.timeout.ms", self.delivery_timeout_ms.to_string()),
            ("linger.ms", self.linger_ms.to_string()),
        ])
    }

    /// A consumer-group member that commits by hand after processing (at-least-once).
    pub(crate) fn consumer(&self, group: &str) -> ClientConfig {
        self.client(&[
            ("group.id", group.into()),
            ("enable.auto.commit", "false".into()),
            ("enable.auto.offset.store", "false".into()),
            ("auto.offset.reset", "earliest".into()),
            ("session.timeout.ms", self.session_timeout_ms.to_string()),
            (
                "heartbeat.interval.ms",
                (self.session_timeout_ms / 3).max(100).to_string(),
            ),
        ])
    }

    /// The cluster's name for a topic or group.
    pub(crate) fn physical(&self, name: &str) -> String {
        sightline_model::topics::namespaced(&self.namespace, name)
    }

    /// The name sightline uses for a cluster topic, if it belongs to this namespace.
    pub(crate) fn logical<'a>(&self, physical: &'a str) -> Option<&'a str> {
        if self.namespace.is_empty() {
            Some(physical)
        } else {
            physical
                .strip_prefix(self.namespace.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
        }
    }

    pub(crate) fn request_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms)
    }

    /// The longest any call waits on the cluster (an append waits for delivery).
    pub(crate) fn longest_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.request_timeout_ms.max(self.delivery_timeout_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::security::{SaslMechanism, SecurityProtocol};

    #[test]
    fn security_applies_to_every_client_and_verbatim_properties_win() {
        let mut config = KafkaConfig {
            security: KafkaSecurity {
                protocol: SecurityProtocol::SaslSsl,
                sasl_mechanism: Some(SaslMechanism::ScramSha512),
                username: "sightline".into(),
                password: "s3cret".into(),
                ..KafkaSecurity::default()
            },
            ..KafkaConfig::default()
        };
        config
            .properties
            .insert("sasl.mechanism".into(), "PLAIN".into());
        for client in [config.admin(), config.producer(), config.consumer("g")] {
            assert_eq!(client.get("security.protocol"), Some("sasl_ssl"));
            assert_eq!(client.get("ssl.ca.location"), Some("probe"));
            assert_eq!(client.get("sasl.username"), Some("sightline"));
            assert_eq!(client.get("sasl.password"), Some("s3cret"));
            assert_eq!(client.get("sasl.mechanism"), Some("PLAIN"));
        }
    }
}
