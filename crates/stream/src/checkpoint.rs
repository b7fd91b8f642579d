//! Crash-safe state: an operator's complete state together with the source positions it
//! reflects, as one atomically written blob.
//!
//! A [`Checkpoint`] is the unit of recovery: the snapshots of every operator of a job and
//! the next offset to read on every source partition, taken between two records. After a
//! crash the job restores the checkpoint, seeks its subscription to
//! [`Checkpoint::positions`] and replays; because operators are deterministic, the output
//! is identical to a run without the crash (outputs carry deterministic keys, so rows
//! emitted twice around the crash upsert rather than duplicate). Commit source offsets to
//! the log only *after* the checkpoint is saved.
//!
//! The encoding is `SLCP` magic, a format version, a CRC-32C of the payload and the
//! payload in postcard (compact serde); anything else is refused as
//! [`StreamError::CorruptCheckpoint`], never half-loaded. [`FileCheckpointStore`] writes
//! it atomically (temp file, fsync, rename, directory fsync) into the data directory.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::error::StreamError;
use crate::operator::OperatorSnapshot;
use crate::telemetry;

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"SLCP";
const HEADER_LEN: usize = 4 + 2 + 4;

/// Next offset to read per (topic, partition): what the state reflects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePositions(BTreeMap<String, BTreeMap<u32, u64>>);

impl SourcePositions {
    /// Notes that the record at `offset` has been processed.
    pub fn advance(&mut self, topic: &str, partition: u32, offset: u64) {
        let next = offset.saturating_add(1);
        let partitions = match self.0.get_mut(topic) {
            Some(p) => p,
            None => self.0.entry(topic.to_owned()).or_default(),
        };
        let slot = partitions.entry(partition).or_insert(next);
        *slot = (*slot).max(next);
    }

    /// The next offset to read on a partition, when any record of it was processed.
    pub fn get(&self, topic: &str, partition: u32) -> Option<u64> {
        self.0.get(topic).and_then(|p| p.get(&partition)).copied()
    }

    /// Every `(topic, partition, next offset)`, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32, u64)> {
        self.0
            .iter()
            .flat_map(|(t, parts)| parts.iter().map(move |(p, o)| (t.as_str(), *p, *o)))
    }
}

/// A job's operators' state and the source positions it reflects.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Where to resume reading.
    pub positions: SourcePositions,
    /// One snapshot per operator, by operator name.
    pub operators: BTreeMap<String, OperatorSnapshot>,
}

impl Checkpoint {
    /// Adds an operator's snapshot under its name.
    pub fn insert(&mut self, snapshot: OperatorSnapshot) {
        self.operators.insert(snapshot.name().to_owned(), snapshot);
    }

    /// Takes out the snapshot of operator `name`.
    pub fn take(&mut self, name: &str) -> Option<OperatorSnapshot> {
        self.operators.remove(name)
    }

    /// Serializes to the versioned, checksummed byte format.
    pub fn encode(&self) -> Result<Vec<u8>, StreamError> {
        let payload = postcard::to_stdvec(self).map_err(|e| StreamError::Encode(e.to_string()))?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + payload.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        Ok(bytes)
    }

    /// Parses bytes written by [`Checkpoint::encode`]; refuses anything damaged.
    pub fn decode(bytes: &[u8]) -> Result<Self, StreamError> {
        let corrupt = |m: &str| StreamError::CorruptCheckpoint(m.to_owned());
        if bytes.len() < HEADER_LEN || &bytes[..4] != MAGIC {
            return Err(corrupt("not a sightline checkpoint (bad magic)"));
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if version != FORMAT_VERSION {
            return Err(StreamError::UnsupportedCheckpointVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let crc = u32::from_le_bytes([bytes[6], bytes[7], bytes[8], bytes[9]]);
        let payload = &bytes[HEADER_LEN..];
        if crc32c::crc32c(payload) != crc {
            return Err(corrupt("checksum mismatch"));
        }
        postcard::from_bytes(payload).map_err(|e| StreamError::CorruptCheckpoint(e.to_string()))
    }
}

/// Where checkpoints are kept, one current checkpoint per job name.
#[async_trait::async_trait]
pub trait CheckpointStore: Send + Sync + std::fmt::Debug {
    /// Replaces the job's checkpoint atomically: after a crash, either the old or the new
    /// bytes are there, whole.
    async fn save(&self, job: &str, bytes: Vec<u8>) -> Result<(), StreamError>;

    /// The job's latest checkpoint bytes, if any.
    async fn load(&self, job: &str) -> Result<Option<Vec<u8>>, StreamError>;

    /// Forgets the job's checkpoint (a dropped query); nothing when there is none.
    async fn delete(&self, job: &str) -> Result<(), StreamError>;

    /// Encodes and saves a checkpoint.
    async fn save_checkpoint(&self, job: &str, checkpoint: &Checkpoint) -> Result<(), StreamError> {
        let bytes = checkpoint.encode()?;
        self.save(job, bytes).await
    }

    /// Loads and decodes the job's checkpoint, if any.
    async fn load_checkpoint(&self, job: &str) -> Result<Option<Checkpoint>, StreamError> {
        match self.load(job).await? {
            Some(bytes) => Checkpoint::decode(&bytes).map(Some),
            None => Ok(None),
        }
    }
}

/// Checkpoints as files `<dir>/<job>.ckpt`, replaced atomically.
#[derive(Clone, Debug)]
pub struct FileCheckpointStore {
    dir: PathBuf,
}

impl FileCheckpointStore {
    /// Keeps checkpoints in `dir` (e.g. `<data dir>/checkpoints`), creating it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StreamError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(StreamError::io(&dir))?;
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, job: &str) -> Result<PathBuf, StreamError> {
        let valid = !job.is_empty()
            && job.len() <= 200
            && job
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            && !job.starts_with('.');
        if !valid {
            return Err(StreamError::InvalidConfig(format!(
                "invalid checkpoint job name '{job}': use letters, digits, '.', '_' and '-'"
            )));
        }
        Ok(self.dir.join(format!("{job}.ckpt")))
    }
}

fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), StreamError> {
    let tmp = path.with_extension("ckpt.tmp");
    let mut file = File::create(&tmp).map_err(StreamError::io(&tmp))?;
    file.write_all(bytes).map_err(StreamError::io(&tmp))?;
    file.sync_all().map_err(StreamError::io(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(StreamError::io(path))?;
    // The rename is durable only once the directory entry is.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StreamError::io(dir))
}

#[async_trait::async_trait]
impl CheckpointStore for FileCheckpointStore {
    async fn save(&self, job: &str, bytes: Vec<u8>) -> Result<(), StreamError> {
        let path = self.path(job)?;
        let dir = self.dir.clone();
        let started = Instant::now();
        let len = bytes.len();
        tokio::task::spawn_blocking(move || write_atomically(&dir, &path, &bytes))
            .await
            .map_err(|e| StreamError::Io {
                path: self.dir.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        metrics::histogram!(telemetry::CHECKPOINT_BYTES).record(len as f64);
        metrics::histogram!(telemetry::CHECKPOINT_SECONDS).record(started.elapsed().as_secs_f64());
        Ok(())
    }

    async fn delete(&self, job: &str) -> Result<(), StreamError> {
        let path = self.path(job)?;
        tokio::task::spawn_blocking(move || match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StreamError::Io { path, source: e }),
        })
        .await
        .map_err(|e| StreamError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
    }

    async fn load(&self, job: &str) -> Result<Option<Vec<u8>>, StreamError> {
        let path = self.path(job)?;
        tokio::task::spawn_blocking(move || match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StreamError::Io { path, source: e }),
        })
        .await
        .map_err(|e| StreamError::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_keep_the_next_offset_per_partition() {
        let mut p = SourcePositions::default();
        p.advance("metrics.raw", 0, 4);
        p.advance("metrics.raw", 0, 2);
        p.advance("metrics.raw", 1, 0);
        assert_eq!(p.get("metrics.raw", 0), Some(5));
        assert_eq!(p.get("metrics.raw", 1), Some(1));
        assert_eq!(p.get("metrics.raw", 2), None);
        assert_eq!(p.iter().count(), 2);
    }

    #[test]
    fn encode_decode_roundtrip() {
        let mut c = Checkpoint::default();
        c.positions.advance("t", 3, 99);
        let bytes = c.encode().unwrap();
        assert_eq!(Checkpoint::decode(&bytes).unwrap(), c);
    }

    #[test]
    fn damaged_bytes_are_refused_not_half_loaded() {
        let mut c = Checkpoint::default();
        c.positions.advance("t", 0, 1);
        let bytes = c.encode().unwrap();
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(
            Checkpoint::decode(&flipped),
            Err(StreamError::CorruptCheckpoint(_))
        ));
        assert!(Checkpoint::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Checkpoint::decode(b"nope").is_err());
        let mut future = bytes;
        future[4] = 9;
        assert!(matches!(
            Checkpoint::decode(&future),
            Err(StreamError::UnsupportedCheckpointVersion { found: 9, .. })
        ));
    }

    #[test]
    fn job_names_must_be_file_safe() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileCheckpointStore::open(dir.path()).unwrap();
        assert!(store.path("rollups").is_ok());
        assert!(store.path("../etc").is_err());
        assert!(store.path("").is_err());
        assert!(store.path("a/b").is_err());
    }
}
