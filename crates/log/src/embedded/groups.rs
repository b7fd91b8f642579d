//! Durable consumer-group offsets: one small JSON file per group, replaced atomically
//! (write a temporary file, fsync, rename, fsync the directory) on every commit.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::durable;
use crate::{LogError, Result};

/// `topic → partition → next offset to read`.
type GroupOffsets = BTreeMap<String, BTreeMap<u32, u64>>;

#[derive(Debug)]
pub(crate) struct GroupStore {
    dir: PathBuf,
    groups: Mutex<HashMap<String, GroupOffsets>>,
}

impl GroupStore {
    pub(crate) fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(LogError::io(dir))?;
        let mut groups = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(LogError::io(dir))?.flatten() {
            let path = entry.path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue; // leftover temporary files from an interrupted commit
            };
            let bytes = std::fs::read(&path).map_err(LogError::io(&path))?;
            let offsets: GroupOffsets =
                serde_json::from_slice(&bytes).map_err(|e| LogError::Io {
                    path: path.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                })?;
            groups.insert(name.to_owned(), offsets);
        }
        Ok(Self {
            dir: dir.to_owned(),
            groups: Mutex::new(groups),
        })
    }

    pub(crate) fn committed(&self, group: &str, topic: &str, partition: u32) -> Option<u64> {
        let groups = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        groups.get(group)?.get(topic)?.get(&partition).copied()
    }

    /// Records `positions` for `group` and makes them durable before returning.
    pub(crate) fn commit(&self, group: &str, positions: &[(String, u32, u64)]) -> Result<()> {
        let mut groups = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut offsets = groups.get(group).cloned().unwrap_or_default();
        for (topic, partition, offset) in positions {
            offsets
                .entry(topic.clone())
                .or_default()
                .insert(*partition, *offset);
        }
        let path = self.dir.join(format!("{group}.json"));
        let bytes = serde_json::to_vec(&offsets).map_err(|e| LogError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        durable::replace(&path, &bytes)?;
        groups.insert(group.to_owned(), offsets);
        Ok(())
    }
}
