//! One segment file of a partition: a run of frames starting at `base_offset`.
//!
//! Segments are append-only; only the newest (active) one is written. Each keeps a sparse
//! in-memory index (one entry every [`INDEX_INTERVAL`] bytes) mapping offsets to file
//! positions, so a read seeks close to its offset and scans at most a few KiB.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::frame::{self, Parsed};
use crate::{LogError, Record, Result};

/// Bytes of log between two sparse index entries.
pub(crate) const INDEX_INTERVAL: u64 = 4096;
/// How much a reader pulls from disk at once.
const READ_CHUNK: usize = 256 * 1024;

/// File name of the segment starting at `base`.
pub(crate) fn file_name(base: u64) -> String {
    format!("{base:020}.log")
}

#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) base_offset: u64,
    pub(crate) path: PathBuf,
    file: File,
    /// Bytes written (not necessarily durable: readers stop at the high watermark).
    size: AtomicU64,
    /// Largest record timestamp, for retention by age.
    max_timestamp: AtomicI64,
    /// `(offset, position)` pairs, ascending.
    index: RwLock<Vec<(u64, u64)>>,
}

/// What recovery found in a segment file.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub(crate) segment: Segment,
    /// Offset after the last valid record.
    pub(crate) next_offset: u64,
    /// Bytes cut from the end because they did not form valid records.
    pub(crate) truncated_bytes: u64,
}

impl Segment {
    /// Creates an empty segment file.
    pub(crate) fn create(dir: &Path, base_offset: u64) -> Result<Self> {
        let path = dir.join(file_name(base_offset));
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(&path)
            .map_err(LogError::io(&path))?;
        Ok(Self::from_parts(
            base_offset,
            path,
            file,
            0,
            i64::MIN,
            Vec::new(),
        ))
    }

    fn from_parts(
        base_offset: u64,
        path: PathBuf,
        file: File,
        size: u64,
        max_ts: i64,
        index: Vec<(u64, u64)>,
    ) -> Self {
        Self {
            base_offset,
            path,
            file,
            size: AtomicU64::new(size),
            max_timestamp: AtomicI64::new(max_ts),
            index: RwLock::new(index),
        }
    }

    /// Opens an existing segment, validates every frame, rebuilds the index and truncates
    /// the file after the last valid record whose offset continues the sequence.
    pub(crate) fn recover(path: &Path, base_offset: u64, max_payload: usize) -> Result<Recovered> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(LogError::io(path))?;
        let len = file.metadata().map_err(LogError::io(path))?.len();
        let mut index = Vec::new();
        let mut expected = base_offset;
        let mut pos = 0u64;
        let mut last_indexed: Option<u64> = None;
        let mut max_ts = i64::MIN;
        let mut buf = ChunkReader::new(&file, len);
        loop {
            match buf.frame_at(pos, max_payload).map_err(LogError::io(path))? {
                Some((
                    Parsed::Frame {
                        offset,
                        timestamp,
                        size,
                    },
                    _,
                )) if offset == expected => {
                    if last_indexed.is_none_or(|p| pos - p >= INDEX_INTERVAL) {
                        index.push((offset, pos));
                        last_indexed = Some(pos);
                    }
                    max_ts = max_ts.max(timestamp);
                    expected += 1;
                    pos += size as u64;
                }
                _ => break,
            }
        }
        let truncated_bytes = len - pos;
        if truncated_bytes > 0 {
            file.set_len(pos).map_err(LogError::io(path))?;
            file.sync_all().map_err(LogError::io(path))?;
        }
        Ok(Recovered {
            segment: Self::from_parts(base_offset, path.to_owned(), file, pos, max_ts, index),
            next_offset: expected,
            truncated_bytes,
        })
    }

    pub(crate) fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub(crate) fn max_timestamp(&self) -> i64 {
        self.max_timestamp.load(Ordering::Acquire)
    }

    /// Appends sealed frames. Called only by the partition's writer.
    pub(crate) fn write(
        &self,
        bytes: &[u8],
        index: &[(u64, u64)],
        max_ts: i64,
    ) -> std::io::Result<()> {
        use std::io::Write;
        (&self.file).write_all(bytes)?;
        if !index.is_empty() {
            self.index
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(index);
        }
        self.max_timestamp.fetch_max(max_ts, Ordering::AcqRel);
        self.size.fetch_add(bytes.len() as u64, Ordering::AcqRel);
        Ok(())
    }

    /// Position of the last index entry at or before `offset`, and the position after it.
    pub(crate) fn last_index_position(&self) -> Option<u64> {
        self.index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .last()
            .map(|&(_, p)| p)
    }

    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    fn seek_position(&self, offset: u64) -> u64 {
        let index = self
            .index
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match index.partition_point(|&(o, _)| o <= offset) {
            0 => 0,
            i => index[i - 1].1,
        }
    }

    /// Reads records with offsets in `[from, high_watermark)`, appending them to `out` until
    /// `max` records or `max_bytes` of values are collected. Returns the next offset to read.
    pub(crate) fn read(
        &self,
        from: u64,
        high_watermark: u64,
        max: usize,
        max_bytes: usize,
        max_payload: usize,
        out: &mut Vec<(u64, Record)>,
    ) -> Result<u64> {
        let end = self.size();
        let mut pos = self.seek_position(from);
        let mut next = from;
        let mut bytes = 0usize;
        let mut reader = ChunkReader::new(&self.file, end);
        while out.len() < max && bytes < max_bytes {
            let Some((parsed, frame)) = reader
                .frame_at(pos, max_payload)
                .map_err(LogError::io(&self.path))?
            else {
                break;
            };
            let Parsed::Frame { offset, size, .. } = parsed else {
                return Err(corrupt(&self.path, pos));
            };
            if offset >= high_watermark {
                break;
            }
            if offset >= from {
                let record = frame::decode(frame).ok_or_else(|| corrupt(&self.path, pos))?;
                bytes += record.value.len();
                out.push((offset, record));
                next = offset + 1;
            }
            pos += size as u64;
        }
        Ok(next)
    }
}

fn corrupt(path: &Path, pos: u64) -> LogError {
    LogError::Io {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("corrupt record at byte {pos}"),
        ),
    }
}

/// Buffered positional reads over `[0, end)` of a file, for scanning frames.
struct ChunkReader<'f> {
    file: &'f File,
    end: u64,
    buf: Vec<u8>,
    buf_start: u64,
}

impl<'f> ChunkReader<'f> {
    fn new(file: &'f File, end: u64) -> Self {
        Self {
            file,
            end,
            buf: Vec::new(),
            buf_start: 0,
        }
    }

    /// The frame starting at `pos`: `None` at the end of the data, otherwise what
    /// [`frame::parse`] says of it and its bytes (empty unless it is a whole frame).
    fn frame_at(
        &mut self,
        pos: u64,
        max_payload: usize,
    ) -> std::io::Result<Option<(Parsed, &[u8])>> {
        if pos >= self.end {
            return Ok(None);
        }
        let mut want = frame::HEADER;
        loop {
            self.fill(pos, want)?;
            let at = (pos - self.buf_start) as usize;
            let avail = &self.buf[at..];
            match frame::parse(avail, max_payload) {
                Parsed::Frame {
                    offset,
                    timestamp,
                    size,
                } => {
                    let bytes = &self.buf[at..at + size];
                    return Ok(Some((
                        Parsed::Frame {
                            offset,
                            timestamp,
                            size,
                        },
                        bytes,
                    )));
                }
                Parsed::Incomplete if (avail.len() as u64) < self.end - pos => {
                    // Read enough for the whole frame the header announces.
                    let len = avail
                        .get(0..4)
                        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
                        .unwrap_or(0);
                    want = want.max(frame::HEADER + len).max(avail.len() + 1);
                }
                other => return Ok(Some((other, &[]))),
            }
        }
    }

    /// Makes `[pos, pos + want)` (clipped to the end) available in the buffer.
    fn fill(&mut self, pos: u64, want: usize) -> std::io::Result<()> {
        let have_from = pos >= self.buf_start;
        let have_to = pos + want as u64 <= self.buf_start + self.buf.len() as u64;
        let at_end = self.buf_start + self.buf.len() as u64 >= self.end;
        if have_from && (have_to || at_end) {
            return Ok(());
        }
        let len = (want.max(READ_CHUNK) as u64).min(self.end - pos) as usize;
        self.buf.resize(len, 0);
        self.file.read_exact_at(&mut self.buf, pos)?;
        self.buf_start = pos;
        Ok(())
    }
}
