//! The event log: sightline's bus, and the durable record of everything it accepted.
//!
//! Every pipeline stage talks to the next only through an [`EventLog`]: ingestion
//! [`append`](EventLog::append)s records to a topic, and processors read them back through a
//! [`Subscription`] in a consumer group, committing how far they got. Because the log is
//! replayable and commits are explicit, a processor that crashes resumes from its last
//! commit and nothing acknowledged is lost (at-least-once; consumers are idempotent).
//!
//! Two implementations share this contract: [`EmbeddedLog`], an on-disk segmented log in the
//! data directory (the default), and [`KafkaLog`] on a Kafka cluster for scale-out, where
//! several nodes in one consumer group split the partitions.
//!
//! A topic has `N` partitions; a record's key picks its partition with Kafka's murmur2
//! partitioner, so the same key lands on the same partition number in both backends.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use sightline_log::{EmbeddedLog, EventLog, LogConfig, Record, TopicConfig};
//!
//! let dir = std::env::temp_dir().join(format!("sightline-doc-{}", std::process::id()));
//! let log = EmbeddedLog::open(&dir, LogConfig::default()).unwrap();
//! log.create_topic("system-events", TopicConfig::with_partitions(2)).await.unwrap();
//!
//! // Returns once the records are fsync'd.
//! let offsets = log
//!     .append("system-events", vec![Record::new(Some("payment-service"), b"{}".to_vec(), 0)])
//!     .await
//!     .unwrap();
//!
//! let mut sub = log.subscribe("store", &["system-events"]).await.unwrap();
//! let batch = sub.next_batch(100).await.unwrap();
//! assert_eq!(batch[0].offset, offsets[0].offset);
//! sub.commit(&[batch[0].next_position()]).await.unwrap();
//! # std::fs::remove_dir_all(&dir).unwrap();
//! # });
//! ```

mod embedded;
mod error;
mod kafka;
mod partitioner;
mod record;
mod telemetry;

pub use embedded::{EmbeddedLog, FsyncPolicy, LogConfig};
pub use error::LogError;
pub use kafka::{KafkaConfig, KafkaLog, KafkaSecurity, SaslMechanism, SecurityProtocol};
pub use partitioner::partition_for;
pub use record::{
    Delivered, Offset, PartitionStats, Position, Record, TopicConfig, TopicStats, next_positions,
};

/// Result type of the log.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// An append-only, partitioned, replayable log. Offsets are per (topic, partition).
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + std::fmt::Debug {
    /// Creates a topic if it does not exist. An existing topic keeps its partition count;
    /// its retention is updated.
    async fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()>;

    /// Appends records to a topic and returns their offsets, in order, once they are durable
    /// (per the configured fsync policy).
    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<Offset>>;

    /// Joins consumer group `group` on `topics`, resuming from the group's committed
    /// positions (or the start of each partition when it has none).
    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>>;

    /// Partitions, offsets and sizes of every topic.
    async fn stats(&self) -> Result<Vec<TopicStats>>;

    /// The committed position of `group` on every partition of `topic` (next offset to read).
    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<Option<u64>>>;

    /// Whether the log can take appends (false after an unrecoverable I/O error).
    fn is_healthy(&self) -> bool {
        true
    }
}

/// A consumer group member's view of its assigned partitions.
#[async_trait::async_trait]
pub trait Subscription: Send + std::fmt::Debug {
    /// Waits until at least one record is available and returns up to `max` of them, in
    /// offset order within each partition. Cancel-safe: dropping the future loses nothing.
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivered>>;

    /// Durably records that everything before each position has been processed.
    async fn commit(&mut self, upto: &[Position]) -> Result<()>;

    /// Moves the read cursor of one partition (for replays); does not commit.
    fn seek(&mut self, position: &Position) -> Result<()>;

    /// Partitions taken from this member by a rebalance since the last call: a consumer
    /// that keeps per-partition state drops it, because the new owner rebuilds it from the
    /// committed offsets. Always empty for the embedded log (one member per group).
    fn take_revoked(&mut self) -> Vec<(std::sync::Arc<str>, u32)> {
        Vec::new()
    }
}
