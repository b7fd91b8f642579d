//! The embedded event log: topics of partitions of segment files in the data directory.
//!
//! ```text
//! <dir>/topics/<topic>/topic.json          partition count and retention
//! <dir>/topics/<topic>/<partition>/<base offset>.log
//! <dir>/groups/<group>.json                committed consumer offsets
//! ```
//!
//! Appends are encoded on the caller's task and handed to a single writer thread that
//! group-commits them ([`writer`]); reads are positional (`pread`) on blocking threads and
//! never take the writer's locks. On open, every segment is validated frame by frame and a
//! torn or corrupt tail is truncated to the last valid record ([`segment`]).

mod durable;
mod frame;
mod groups;
mod partition;
mod segment;
mod subscription;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};

pub use writer::FsyncPolicy;

use self::groups::GroupStore;
use self::partition::{Chunk, Partition};
use self::subscription::EmbeddedSubscription;
use self::writer::{Command, Writer};
use crate::telemetry;
use crate::{
    EventLog, LogError, Offset, PartitionStats, Record, Result, Subscription, TopicConfig,
    TopicStats, partition_for,
};

/// Settings of the embedded log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// When appends become durable.
    pub fsync: FsyncPolicy,
    /// Size at which a partition rolls to a new segment file.
    pub segment_bytes: u64,
    /// Largest record (key, headers and value) accepted.
    pub max_record_bytes: usize,
    /// Appends that may wait for the writer before callers are told the log is busy.
    pub queue_depth: usize,
    /// How often retention runs, in milliseconds.
    pub retention_check_ms: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            fsync: FsyncPolicy::EveryBatch,
            segment_bytes: 128 * 1024 * 1024,
            max_record_bytes: 4 * 1024 * 1024,
            queue_depth: 1024,
            retention_check_ms: 60_000,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Topic {
    pub(crate) name: Arc<str>,
    pub(crate) config: RwLock<TopicConfig>,
    pub(crate) partitions: Vec<Arc<Partition>>,
    /// Round-robin counter for records without a key.
    next_unkeyed: AtomicU32,
}

#[derive(Debug)]
pub(crate) struct Inner {
    dir: PathBuf,
    pub(crate) config: LogConfig,
    topics: RwLock<HashMap<String, Arc<Topic>>>,
    pub(crate) groups: GroupStore,
    tx: mpsc::Sender<Command>,
    pub(crate) appended: watch::Sender<u64>,
    failed: Arc<AtomicBool>,
}

/// The on-disk [`EventLog`]: topics of partitions of segment files, group-committed
/// appends, per-record checksums with tail repair on open, retention by age and size.
#[derive(Clone, Debug)]
pub struct EmbeddedLog {
    inner: Arc<Inner>,
}

impl EmbeddedLog {
    /// Opens (recovering) or creates the log in `dir`, and starts its writer thread.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Self> {
        let dir = dir.as_ref().to_owned();
        let topics_dir = dir.join("topics");
        std::fs::create_dir_all(&topics_dir).map_err(LogError::io(&topics_dir))?;
        let mut topics = HashMap::new();
        let mut truncated = 0;
        for entry in std::fs::read_dir(&topics_dir)
            .map_err(LogError::io(&topics_dir))?
            .flatten()
        {
            let path = entry.path();
            let meta = path.join("topic.json");
            if !meta.exists() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(&meta).map_err(LogError::io(&meta))?;
            let config: TopicConfig = serde_json::from_slice(&bytes).map_err(|e| LogError::Io {
                path: meta.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?;
            let (topic, cut) = open_topic(&path, &name, config, FRAME_MAX_PAYLOAD)?;
            truncated += cut;
            topics.insert(name, Arc::new(topic));
        }
        if truncated > 0 {
            tracing::warn!(
                bytes = truncated,
                "truncated damaged log tails during recovery"
            );
            metrics::counter!(telemetry::RECOVERY_TRUNCATED_BYTES).increment(truncated);
        }
        let groups = GroupStore::open(&dir.join("groups"))?;
        let (tx, rx) = mpsc::channel(config.queue_depth.max(1));
        let (appended, _) = watch::channel(0);
        let failed = Arc::new(AtomicBool::new(false));
        let writer = Writer {
            rx,
            policy: config.fsync,
            segment_bytes: config.segment_bytes,
            appended: appended.clone(),
            failed: failed.clone(),
        };
        std::thread::Builder::new()
            .name("sightline-log-writer".into())
            .spawn(move || writer.run())
            .map_err(LogError::io(&dir))?;
        if let FsyncPolicy::Interval { interval_ms } = config.fsync {
            writer::spawn_interval_sync(tx.downgrade(), Duration::from_millis(interval_ms.max(1)));
        }
        let inner = Arc::new(Inner {
            dir,
            config,
            topics: RwLock::new(topics),
            groups,
            tx,
            appended,
            failed,
        });
        spawn_retention(Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// Bytes truncated from damaged tails are reported through metrics and logs; this
    /// tells whether the writer has stopped after an I/O error.
    pub fn is_failed(&self) -> bool {
        self.inner.failed.load(Ordering::Acquire)
    }

    /// Applies every topic's retention now; returns the bytes deleted.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64> {
        self.inner.enforce_retention(now_ms)
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.inner
            .topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))
    }
}

/// Reads and recovery accept any frame the format can express: a record limit lowered after
/// data was written must not make valid records unreadable. Checksums catch garbage.
pub(crate) const FRAME_MAX_PAYLOAD: usize = u32::MAX as usize;

fn open_topic(
    path: &Path,
    name: &str,
    config: TopicConfig,
    max_payload: usize,
) -> Result<(Topic, u64)> {
    let mut partitions = Vec::new();
    let mut truncated = 0;
    for p in 0..config.partitions {
        let (partition, cut) = Partition::open(p, &path.join(p.to_string()), max_payload)?;
        truncated += cut;
        partitions.push(Arc::new(partition));
    }
    Ok((
        Topic {
            name: name.into(),
            config: RwLock::new(config),
            partitions,
            next_unkeyed: AtomicU32::new(0),
        },
        truncated,
    ))
}

fn valid_name(name: &str) -> bool {
    (1..=200).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Inner {
    fn all_topics(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    fn enforce_retention(&self, now_ms: i64) -> Result<u64> {
        let topics = self.all_topics();
        let mut deleted = 0;
        for topic in topics {
            let config = topic
                .config
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let min_ts = config.retention_ms.map(|r| now_ms.saturating_sub(r));
            for p in &topic.partitions {
                deleted += p.enforce_retention(min_ts, config.retention_bytes)?;
            }
        }
        if deleted > 0 {
            metrics::counter!(telemetry::RETENTION_DELETED_BYTES).increment(deleted);
        }
        Ok(deleted)
    }
}

fn spawn_retention(inner: Weak<Inner>) {
    std::thread::Builder::new()
        .name("sightline-log-retention".into())
        .spawn(move || {
            while let Some(interval) = inner.upgrade().map(|i| i.config.retention_check_ms) {
                // Sleep in short steps so the thread ends soon after the log is dropped.
                let mut slept = 0;
                while slept < interval {
                    std::thread::sleep(Duration::from_millis(200.min(interval)));
                    slept += 200;
                    if inner.strong_count() == 0 {
                        return;
                    }
                }
                let Some(inner) = inner.upgrade() else { break };
                let now = chrono_now_ms();
                if let Err(e) = inner.enforce_retention(now) {
                    tracing::warn!(error = %e, "log retention failed");
                }
            }
        })
        .ok();
}

fn chrono_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[async_trait::async_trait]
impl EventLog for EmbeddedLog {
    async fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        if !valid_name(name) {
            return Err(LogError::InvalidName(name.to_owned()));
        }
        if let Ok(existing) = self.topic(name) {
            let updated = {
                let mut current = existing
                    .config
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                current.retention_ms = config.retention_ms;
                current.retention_bytes = config.retention_bytes;
                current.clone()
            };
            let meta = self.inner.dir.join("topics").join(name).join("topic.json");
            return tokio::task::spawn_blocking(move || write_topic_meta(&meta, &updated))
                .await
                .map_err(|_| LogError::Closed)?;
        }
        let inner = self.inner.clone();
        let name = name.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut topics = inner
                .topics
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if topics.contains_key(&name) {
                return Ok(());
            }
            let config = TopicConfig {
                partitions: config.partitions.max(1),
                ..config
            };
            let path = inner.dir.join("topics").join(&name);
            std::fs::create_dir_all(&path).map_err(LogError::io(&path))?;
            let (topic, _) = open_topic(&path, &name, config.clone(), FRAME_MAX_PAYLOAD)?;
            write_topic_meta(&path.join("topic.json"), &config)?;
            durable::sync_dir(&inner.dir.join("topics"))?;
            topics.insert(name, Arc::new(topic));
            Ok(())
        })
        .await
        .map_err(|_| LogError::Closed)?
    }

    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<Offset>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_failed() {
            return Err(LogError::Closed);
        }
        let topic = self.topic(topic)?;
        let n = topic.partitions.len() as u32;
        let limit = self.inner.config.max_record_bytes;
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut chunk_of: Vec<Option<usize>> = vec![None; n as usize];
        // Sized up front so encoding never reallocates and copies a growing buffer.
        let approx: usize = records.iter().map(|r| r.value.len() + 64).sum::<usize>();
        let capacity = if records.len() < n as usize {
            approx
        } else {
            approx / n as usize + approx / 8
        };
        for (slot, record) in records.iter().enumerate() {
            let size = record.value.len()
                + record.key.as_ref().map_or(0, Vec::len)
                + record
                    .headers
                    .iter()
                    .map(|(k, v)| k.len() + v.len())
                    .sum::<usize>();
            if size > limit || record.headers.len() > usize::from(u16::MAX) {
                return Err(LogError::RecordTooLarge { size, limit });
            }
            let p = match &record.key {
                Some(key) => partition_for(key, n),
                None => topic.next_unkeyed.fetch_add(1, Ordering::Relaxed) % n,
            };
            let idx = *chunk_of[p as usize].get_or_insert_with(|| {
                chunks.push(Chunk {
                    partition: p,
                    buf: Vec::with_capacity(capacity),
                    frames: Vec::new(),
                    slots: Vec::new(),
                    max_timestamp: i64::MIN,
                });
                chunks.len() - 1
            });
            let chunk = &mut chunks[idx];
            chunk.frames.push(chunk.buf.len());
            chunk.slots.push(slot);
            chunk.max_timestamp = chunk.max_timestamp.max(record.timestamp);
            frame::encode_into(&mut chunk.buf, record);
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .tx
            .send(Command::Append {
                topic,
                chunks,
                records: records.len(),
                reply,
            })
            .await
            .map_err(|_| LogError::Closed)?;
        rx.await.map_err(|_| LogError::Closed)?
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        if !valid_name(group) {
            return Err(LogError::InvalidName(group.to_owned()));
        }
        let topics = topics
            .iter()
            .map(|t| self.topic(t))
            .collect::<Result<Vec<_>>>()?;
        Ok(Box::new(EmbeddedSubscription::new(
            self.inner.clone(),
            group,
            topics,
        )))
    }

    async fn stats(&self) -> Result<Vec<TopicStats>> {
        let topics = self.inner.all_topics();
        let mut stats: Vec<TopicStats> = topics
            .iter()
            .map(|t| TopicStats {
                name: t.name.to_string(),
                config: t
                    .config
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| PartitionStats {
                        partition: p.id,
                        start_offset: p.start_offset(),
                        end_offset: p.high_watermark(),
                        size_bytes: p.size_bytes(),
                    })
                    .collect(),
            })
            .collect();
        stats.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(stats)
    }

    fn is_healthy(&self) -> bool {
        !self.is_failed()
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<Option<u64>>> {
        let t = self.topic(topic)?;
        Ok(t.partitions
            .iter()
            .map(|p| self.inner.groups.committed(group, topic, p.id))
            .collect())
    }
}

fn write_topic_meta(path: &Path, config: &TopicConfig) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(config).map_err(|e| LogError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(e),
    })?;
    durable::replace(path, &bytes)
}
