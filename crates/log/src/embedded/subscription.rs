//! A consumer group member reading every partition of its topics.
//!
//! In one process there is one member per group, so it is assigned all partitions. It
//! waits on the log's append counter instead of polling, so a consumer sees a record as
//! soon as the group commit that made it durable completes.

use std::sync::Arc;

use tokio::sync::watch;

use super::{Inner, Topic};
use crate::{Delivered, LogError, Position, Result, Subscription};

/// Values read per partition per call, at most (keeps one slow topic from starving others).
const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug)]
struct Assignment {
    topic: Arc<Topic>,
    partition: u32,
    next: u64,
}

/// [`Subscription`] over an [`EmbeddedLog`](super::EmbeddedLog).
#[derive(Debug)]
pub(crate) struct EmbeddedSubscription {
    inner: Arc<Inner>,
    group: String,
    assignments: Vec<Assignment>,
    appended: watch::Receiver<u64>,
    /// Where the next read starts, rotating so every partition gets its turn.
    cursor: usize,
}

impl EmbeddedSubscription {
    pub(crate) fn new(inner: Arc<Inner>, group: &str, topics: Vec<Arc<Topic>>) -> Self {
        let mut assignments = Vec::new();
        for topic in topics {
            for p in &topic.partitions {
                // A commit beyond the end means records it covered were lost (possible
                // only with interval fsync and a power cut): resume at the end, where new
                // records will be written, rather than skip them.
                let next = inner
                    .groups
                    .committed(group, &topic.name, p.id)
                    .map_or_else(|| p.start_offset(), |c| c.min(p.high_watermark()));
                assignments.push(Assignment {
                    topic: topic.clone(),
                    partition: p.id,
                    next,
                });
            }
        }
        let appended = inner.appended.subscribe();
        Self {
            inner,
            group: group.to_owned(),
            assignments,
            appended,
            cursor: 0,
        }
    }

    /// Reads what is available now without waiting.
    async fn poll(&mut self, max: usize) -> Result<Vec<Delivered>> {
        let n = self.assignments.len();
        let mut out = Vec::new();
        // Cursors move only after every read finished, so a cancelled call loses nothing.
        let mut advanced = Vec::new();
        for k in 0..n {
            if out.len() >= max {
                break;
            }
            let i = (self.cursor + k) % n;
            let a = &self.assignments[i];
            let partition = a.topic.partitions[a.partition as usize].clone();
            if a.next >= partition.high_watermark() {
                continue;
            }
            let (from, want) = (a.next, max - out.len());
            let (records, next) = tokio::task::spawn_blocking(move || {
                partition.read(from, want, MAX_BATCH_BYTES, super::FRAME_MAX_PAYLOAD)
            })
            .await
            .map_err(|_| LogError::Closed)??;
            advanced.push((i, next));
            let a = &self.assignments[i];
            out.extend(records.into_iter().map(|(offset, record)| Delivered {
                topic: a.topic.name.clone(),
                partition: a.partition,
                offset,
                record,
            }));
        }
        for (i, next) in advanced {
            self.assignments[i].next = next;
        }
        self.cursor = (self.cursor + 1) % n.max(1);
        Ok(out)
    }
}

#[async_trait::async_trait]
impl Subscription for EmbeddedSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivered>> {
        loop {
            // Mark the counter seen *before* reading, so an append that lands after the
            // read wakes the wait below instead of being missed.
            self.appended.borrow_and_update();
            let batch = self.poll(max.max(1)).await?;
            if !batch.is_empty() {
                return Ok(batch);
            }
            self.appended
                .changed()
                .await
                .map_err(|_| LogError::Closed)?;
        }
    }

    async fn commit(&mut self, upto: &[Position]) -> Result<()> {
        let positions: Vec<(String, u32, u64)> = upto
            .iter()
            .map(|p| (p.topic.to_string(), p.partition, p.offset))
            .collect();
        let inner = self.inner.clone();
        let group = self.group.clone();
        tokio::task::spawn_blocking(move || inner.groups.commit(&group, &positions))
            .await
            .map_err(|_| LogError::Closed)?
    }

    fn seek(&mut self, position: &Position) -> Result<()> {
        let a = self
            .assignments
            .iter_mut()
            .find(|a| *a.topic.name == *position.topic && a.partition == position.partition)
            .ok_or_else(|| LogError::UnknownPartition {
                topic: position.topic.to_string(),
                partition: position.partition,
            })?;
        a.next = position.offset;
        Ok(())
    }
}
