//! Group commit: one thread writes every append and fsyncs once per round.
//!
//! Appenders encode their frames on their own task and queue them here. The writer takes
//! everything queued, assigns offsets, writes each partition's frames, syncs every file it
//! touched (in parallel), publishes the new high watermarks and only then answers the
//! appenders. While it syncs, new appends queue up and form the next round, so the cost of
//! an fsync is shared by every append that arrived during the previous one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, watch};

use super::Topic;
use super::partition::Chunk;
use super::segment::Segment;
use crate::telemetry;
use crate::{LogError, Offset, Result};

/// When appends are made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum FsyncPolicy {
    /// fsync every group-commit round before acknowledging: an acknowledged record survives
    /// a crash or power loss. The default.
    EveryBatch,
    /// Acknowledge after the write reaches the OS; fsync every `interval_ms`. Survives a
    /// process crash, may lose the last interval on power loss.
    Interval {
        /// Milliseconds between fsyncs.
        interval_ms: u64,
    },
}

pub(crate) enum Command {
    Append {
        topic: Arc<Topic>,
        chunks: Vec<Chunk>,
        records: usize,
        reply: oneshot::Sender<Result<Vec<Offset>>>,
    },
    /// Periodic fsync for [`FsyncPolicy::Interval`].
    Sync,
}

pub(crate) struct Writer {
    pub(crate) rx: mpsc::Receiver<Command>,
    pub(crate) policy: FsyncPolicy,
    pub(crate) segment_bytes: u64,
    /// Bumped after every round so waiting consumers wake up.
    pub(crate) appended: watch::Sender<u64>,
    /// Set after an I/O failure: the on-disk state is unknown until the log is reopened
    /// (and recovery truncates whatever was half-written), so no more appends are taken.
    pub(crate) failed: Arc<AtomicBool>,
}

/// Most bytes one round takes before it syncs, so a flood cannot delay acks without bound.
const ROUND_BYTES: usize = 16 * 1024 * 1024;

impl Writer {
    pub(crate) fn run(mut self) {
        let mut unsynced: Vec<Arc<Segment>> = Vec::new();
        while let Some(first) = self.rx.blocking_recv() {
            let mut round = vec![first];
            let mut bytes = 0;
            while bytes < ROUND_BYTES {
                match self.rx.try_recv() {
                    Ok(cmd) => {
                        if let Command::Append { chunks, .. } = &cmd {
                            bytes += chunks.iter().map(|c| c.buf.len()).sum::<usize>();
                        }
                        round.push(cmd);
                    }
                    Err(_) => break,
                }
            }
            self.round(round, &mut unsynced);
        }
        let _ = sync_all(&unsynced);
    }

    fn round(&mut self, round: Vec<Command>, unsynced: &mut Vec<Arc<Segment>>) {
        let mut replies = Vec::with_capacity(round.len());
        let mut touched: Vec<(Arc<Topic>, u32)> = Vec::new();
        let mut result: Result<()> = Ok(());
        let mut force_sync = false;
        let mut records_in_round = 0;
        for cmd in round {
            match cmd {
                Command::Sync => force_sync = true,
                Command::Append {
                    topic,
                    mut chunks,
                    records,
                    reply,
                } => {
                    if self.failed.load(Ordering::Acquire) || result.is_err() {
                        let _ = reply.send(Err(LogError::Closed));
                        continue;
                    }
                    let mut offsets = vec![0u64; records];
                    let mut slots_partition = vec![0u32; records];
                    for chunk in &mut chunks {
                        let partition = &topic.partitions[chunk.partition as usize];
                        match partition.write_chunk(chunk, self.segment_bytes, &mut offsets) {
                            Ok(segment) => {
                                if !unsynced.iter().any(|s| Arc::ptr_eq(s, &segment)) {
                                    unsynced.push(segment);
                                }
                                if !touched
                                    .iter()
                                    .any(|(t, p)| Arc::ptr_eq(t, &topic) && *p == chunk.partition)
                                {
                                    touched.push((topic.clone(), chunk.partition));
                                }
                                for &slot in &chunk.slots {
                                    slots_partition[slot] = chunk.partition;
                                }
                            }
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                    records_in_round += records;
                    metrics::counter!(telemetry::APPENDED_RECORDS, "topic" => topic.name.to_string())
                        .increment(records as u64);
                    let offsets = offsets
                        .into_iter()
                        .zip(slots_partition)
                        .map(|(offset, partition)| Offset { partition, offset })
                        .collect();
                    replies.push((reply, offsets));
                }
            }
        }
        if result.is_ok() && (self.policy == FsyncPolicy::EveryBatch || force_sync) {
            let started = Instant::now();
            result = sync_all(unsynced);
            metrics::histogram!(telemetry::FSYNC_SECONDS).record(started.elapsed().as_secs_f64());
            unsynced.clear();
        }
        if let Err(e) = result {
            tracing::error!(error = %e, "log write failed; refusing further appends until restart");
            self.failed.store(true, Ordering::Release);
            for (reply, _) in replies {
                let _ = reply.send(Err(LogError::Closed));
            }
            return;
        }
        for (topic, p) in &touched {
            topic.partitions[*p as usize].publish();
        }
        metrics::histogram!(telemetry::GROUP_COMMIT_RECORDS).record(records_in_round as f64);
        self.appended.send_modify(|n| *n += 1);
        for (reply, offsets) in replies {
            let _ = reply.send(Ok(offsets));
        }
    }
}

/// fsyncs every segment, in parallel when there are several.
fn sync_all(segments: &[Arc<Segment>]) -> Result<()> {
    match segments {
        [] => Ok(()),
        [one] => one.sync().map_err(LogError::io(&one.path)),
        many => std::thread::scope(|s| {
            let handles: Vec<_> = many
                .iter()
                .map(|seg| s.spawn(move || seg.sync().map_err(LogError::io(&seg.path))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or(Err(LogError::Closed)))
                .collect::<Result<Vec<()>>>()
                .map(|_| ())
        }),
    }
}

/// Sends [`Command::Sync`] every `interval` until the log is dropped.
pub(crate) fn spawn_interval_sync(tx: mpsc::WeakSender<Command>, interval: Duration) {
    std::thread::Builder::new()
        .name("sightline-log-sync".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let Some(tx) = tx.upgrade() else { break };
                if tx.blocking_send(Command::Sync).is_err() {
                    break;
                }
            }
        })
        .ok();
}
