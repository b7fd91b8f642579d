//! One partition: an ordered list of segments, the next offset to assign and the high
//! watermark up to which records are durable and visible to consumers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::durable;
use super::segment::{self, INDEX_INTERVAL, Segment};
use crate::{LogError, Record, Result};

#[derive(Debug)]
pub(crate) struct Partition {
    pub(crate) id: u32,
    dir: PathBuf,
    /// Oldest first; the last one is active.
    segments: RwLock<Vec<Arc<Segment>>>,
    /// Everything below this offset is durable and may be read.
    high_watermark: AtomicU64,
    /// Writer-only state.
    write: Mutex<WriteState>,
}

#[derive(Debug)]
struct WriteState {
    next_offset: u64,
    /// Position of the last sparse index entry in the active segment.
    last_indexed: Option<u64>,
}

/// Frames for one partition, ready to be written.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub(crate) partition: u32,
    pub(crate) buf: Vec<u8>,
    /// Start of each frame in `buf`.
    pub(crate) frames: Vec<usize>,
    /// Index of each frame's record in the append request.
    pub(crate) slots: Vec<usize>,
    pub(crate) max_timestamp: i64,
}

impl Partition {
    /// Opens (recovering) or creates the partition in `dir`. Returns it and the number of
    /// bytes recovery truncated.
    pub(crate) fn open(id: u32, dir: &Path, max_payload: usize) -> Result<(Self, u64)> {
        std::fs::create_dir_all(dir).map_err(LogError::io(dir))?;
        let mut bases: Vec<u64> = std::fs::read_dir(dir)
            .map_err(LogError::io(dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                name.strip_suffix(".log")?.parse::<u64>().ok()
            })
            .collect();
        bases.sort_unstable();
        let mut segments = Vec::new();
        let mut next_offset = bases.first().copied().unwrap_or(0);
        let mut truncated = 0;
        let mut broken = false;
        for base in bases {
            let path = dir.join(segment::file_name(base));
            if broken || base != next_offset {
                // Data after a damaged or missing stretch cannot continue the offset
                // sequence: drop it, as Kafka does on unclean recovery.
                truncated += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                std::fs::remove_file(&path).map_err(LogError::io(&path))?;
                broken = true;
                continue;
            }
            let rec = Segment::recover(&path, base, max_payload)?;
            truncated += rec.truncated_bytes;
            broken = rec.truncated_bytes > 0;
            next_offset = rec.next_offset;
            segments.push(Arc::new(rec.segment));
        }
        if segments.is_empty() {
            segments.push(Arc::new(Segment::create(dir, next_offset)?));
            durable::sync_dir(dir)?;
        }
        let last_indexed = segments.last().and_then(|s| s.last_index_position());
        Ok((
            Self {
                id,
                dir: dir.to_owned(),
                segments: RwLock::new(segments),
                high_watermark: AtomicU64::new(next_offset),
                write: Mutex::new(WriteState {
                    next_offset,
                    last_indexed,
                }),
            },
            truncated,
        ))
    }

    pub(crate) fn high_watermark(&self) -> u64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub(crate) fn start_offset(&self) -> u64 {
        self.segments().first().map_or(0, |s| s.base_offset)
    }

    pub(crate) fn size_bytes(&self) -> u64 {
        self.segments().iter().map(|s| s.size()).sum()
    }

    fn segments(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Segment>>> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn active(&self) -> Arc<Segment> {
        self.segments()
            .last()
            .cloned()
            .expect("a partition always has an active segment")
    }

    /// Assigns offsets to the chunk's frames, seals them and writes them to the active
    /// segment (rolling to a new one first when it is full). Returns the segment written,
    /// which the caller must sync before [`publish`](Self::publish). Writer thread only.
    pub(crate) fn write_chunk(
        &self,
        chunk: &mut Chunk,
        segment_bytes: u64,
        offsets: &mut [u64],
    ) -> Result<Arc<Segment>> {
        let mut state = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let mut active = self.active();
        if active.size() > 0 && active.size() + chunk.buf.len() as u64 > segment_bytes {
            let fresh = Arc::new(Segment::create(&self.dir, state.next_offset)?);
            durable::sync_dir(&self.dir)?;
            // The sealed segment's data must be durable before the new file is used.
            active.sync().map_err(LogError::io(&active.path))?;
            self.segments
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .push(fresh.clone());
            active = fresh;
            state.last_indexed = None;
        }
        let base_pos = active.size();
        let mut index = Vec::new();
        let ends = chunk
            .frames
            .iter()
            .skip(1)
            .copied()
            .chain([chunk.buf.len()]);
        for ((&start, end), &slot) in chunk.frames.iter().zip(ends).zip(&chunk.slots) {
            let offset = state.next_offset;
            state.next_offset += 1;
            super::frame::seal(&mut chunk.buf[start..end], offset);
            let pos = base_pos + start as u64;
            if state.last_indexed.is_none_or(|p| pos - p >= INDEX_INTERVAL) {
                index.push((offset, pos));
                state.last_indexed = Some(pos);
            }
            offsets[slot] = offset;
        }
        active
            .write(&chunk.buf, &index, chunk.max_timestamp)
            .map_err(LogError::io(&active.path))?;
        Ok(active)
    }

    /// Makes everything written so far visible to readers. Call after syncing.
    pub(crate) fn publish(&self) {
        let next = self
            .write
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_offset;
        self.high_watermark.store(next, Ordering::Release);
    }

    /// Reads up to `max` records (and about `max_bytes` of values) from `from`. Returns the
    /// records and the next offset to read; `from` below the retained start skips forward.
    pub(crate) fn read(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
        max_payload: usize,
    ) -> Result<(Vec<(u64, Record)>, u64)> {
        let hw = self.high_watermark();
        let mut out = Vec::new();
        let segments: Vec<Arc<Segment>> = self.segments().clone();
        let start = segments.first().map_or(0, |s| s.base_offset);
        let mut next = from.max(start);
        let mut i = segments
            .partition_point(|s| s.base_offset <= next)
            .saturating_sub(1);
        let mut bytes = 0;
        while next < hw && i < segments.len() {
            let before = out.len();
            next = segments[i]
                .read(
                    next,
                    hw,
                    max,
                    max_bytes.saturating_sub(bytes),
                    max_payload,
                    &mut out,
                )?
                .max(next);
            bytes += out[before..]
                .iter()
                .map(|(_, r)| r.value.len())
                .sum::<usize>();
            if out.len() >= max || bytes >= max_bytes {
                break;
            }
            // This segment is exhausted; offsets continue in the next one.
            i += 1;
            if let Some(following) = segments.get(i) {
                next = next.max(following.base_offset);
            }
        }
        Ok((out, next))
    }

    /// Deletes sealed segments older than `min_timestamp` or beyond `max_bytes` in total,
    /// oldest first. The active segment is never deleted. Returns the bytes removed.
    pub(crate) fn enforce_retention(
        &self,
        min_timestamp: Option<i64>,
        max_bytes: Option<u64>,
    ) -> Result<u64> {
        let mut removed = Vec::new();
        {
            let mut segments = self
                .segments
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let mut total: u64 = segments.iter().map(|s| s.size()).sum();
            while segments.len() > 1 {
                let oldest = &segments[0];
                let too_old = min_timestamp.is_some_and(|t| oldest.max_timestamp() < t);
                let too_big = max_bytes.is_some_and(|b| total > b);
                if !(too_old || too_big) {
                    break;
                }
                total -= oldest.size();
                removed.push(segments.remove(0));
            }
        }
        let mut bytes = 0;
        for seg in removed {
            bytes += seg.size();
            std::fs::remove_file(&seg.path).map_err(LogError::io(&seg.path))?;
        }
        Ok(bytes)
    }
}
