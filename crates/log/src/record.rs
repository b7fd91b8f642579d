//! What travels through the log.

use std::sync::Arc;

/// One record to append: an optional key (chooses the partition), a value, headers and a
/// timestamp (epoch milliseconds, the event time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Partitioning key, e.g. the service name.
    pub key: Option<Vec<u8>>,
    /// The payload (JSON by default).
    pub value: Vec<u8>,
    /// Metadata such as the correlation id or the source.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Event time, epoch milliseconds.
    pub timestamp: i64,
}

impl Record {
    /// A record without headers.
    pub fn new(key: Option<&str>, value: Vec<u8>, timestamp: i64) -> Self {
        Self {
            key: key.map(|k| k.as_bytes().to_vec()),
            value,
            headers: Vec::new(),
            timestamp,
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The value of the first header called `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Where an appended record landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Offset {
    /// Partition number.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
}

/// A consumer position: the next offset to read from one partition of one topic.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Position {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: u32,
    /// Next offset to read.
    pub offset: u64,
}

/// A record read from the log, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// Topic name.
    pub topic: Arc<str>,
    /// Partition number.
    pub partition: u32,
    /// Offset within the partition.
    pub offset: u64,
    /// The record.
    pub record: Record,
}

impl Delivered {
    /// The position just after this record: commit it once the record is processed.
    pub fn next_position(&self) -> Position {
        Position {
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset + 1,
        }
    }
}

/// Per (topic, partition) in `batch`, the position after its highest offset: what a
/// consumer commits once it has processed the whole batch. Sorted by topic and partition.
pub fn next_positions(batch: &[Delivered]) -> Vec<Position> {
    let mut positions: Vec<Position> = Vec::new();
    for d in batch {
        let next = d.next_position();
        match positions
            .iter_mut()
            .find(|p| p.partition == next.partition && p.topic == next.topic)
        {
            Some(p) => p.offset = p.offset.max(next.offset),
            None => positions.push(next),
        }
    }
    positions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    positions
}

/// Per-topic settings.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicConfig {
    /// Number of partitions (fixed once the topic exists).
    pub partitions: u32,
    /// Delete data older than this many milliseconds (`None`: keep forever).
    pub retention_ms: Option<i64>,
    /// Delete the oldest data once a partition holds more than this many bytes.
    pub retention_bytes: Option<u64>,
}

impl TopicConfig {
    /// `partitions` partitions, kept forever.
    pub fn with_partitions(partitions: u32) -> Self {
        Self {
            partitions,
            retention_ms: None,
            retention_bytes: None,
        }
    }
}

/// Offsets and size of one partition.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PartitionStats {
    /// Partition number.
    pub partition: u32,
    /// First offset still retained.
    pub start_offset: u64,
    /// Next offset to be written (the high watermark).
    pub end_offset: u64,
    /// Bytes on disk.
    pub size_bytes: u64,
}

/// Offsets and sizes of one topic.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopicStats {
    /// Topic name.
    pub name: String,
    /// Settings.
    pub config: TopicConfig,
    /// One entry per partition.
    pub partitions: Vec<PartitionStats>,
}
