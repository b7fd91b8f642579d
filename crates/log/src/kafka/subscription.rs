//! A consumer-group member on Kafka.
//!
//! Offsets are committed by hand after the caller processed a batch (at-least-once). A
//! rebalance can take partitions away between a batch and its commit: positions the broker
//! refused because a rebalance was under way are kept and committed with the next commit
//! or, for partitions being revoked, in the revocation callback — before the new owner
//! starts reading — so a rebalance costs at most the redelivery of one uncommitted batch.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};

use futures::FutureExt;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{ClientContext, Offset as KafkaOffset, TopicPartitionList};

use super::context::Diagnostics;
use super::{KafkaConfig, broker_error};
use crate::telemetry;
use crate::{Delivered, LogError, Position, Record, Result, Subscription};

/// `(topic, partition) → next offset to read`, processed but not yet committed.
type Pending = BTreeMap<(Arc<str>, i32), i64>;

/// Callbacks librdkafka runs on the consumer's poll, during rebalances.
#[derive(Debug)]
pub(crate) struct GroupContext {
    pending: Mutex<Pending>,
    revoked: Mutex<Vec<(Arc<str>, u32)>>,
    diagnostics: Diagnostics,
}

impl GroupContext {
    /// A context reporting connection failures to `diagnostics`.
    pub(crate) fn new(diagnostics: Diagnostics) -> Self {
        Self {
            pending: Mutex::default(),
            revoked: Mutex::default(),
            diagnostics,
        }
    }
}

impl ClientContext for GroupContext {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, facility: &str, message: &str) {
        self.diagnostics.client_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnostics.client_error(error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else {
            return;
        };
        let lost: Vec<(String, i32)> = partitions
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let to_commit: Pending = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            let (theirs, ours) = std::mem::take(&mut *pending)
                .into_iter()
                .partition(|((t, p), _)| lost.iter().any(|(lt, lp)| **t == **lt && p == lp));
            *pending = ours;
            theirs
        };
        if !to_commit.is_empty() {
            // Still a member of the old generation here, so the commit is accepted. Not
            // waited for: blocking in this callback would hold up the rebalance itself.
            if let Err(e) = consumer.commit(&offsets_list(&to_commit), CommitMode::Async) {
                tracing::warn!(error = %e, "commit before revocation failed; records will be redelivered");
            }
        }
        metrics::counter!(telemetry::KAFKA_REVOKED_PARTITIONS).increment(lost.len() as u64);
        tracing::info!(partitions = ?lost, "partitions revoked");
        let mut revoked = self.revoked.lock().unwrap_or_else(PoisonError::into_inner);
        revoked.extend(
            lost.into_iter()
                .filter_map(|(t, p)| Some((Arc::from(t), u32::try_from(p).ok()?))),
        );
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            let assigned: Vec<(String, i32)> = partitions
                .elements()
                .iter()
                .map(|e| (e.topic().to_owned(), e.partition()))
                .collect();
            tracing::info!(partitions = ?assigned, "partitions assigned");
        }
    }
}

fn offsets_list(positions: &Pending) -> TopicPartitionList {
    let mut list = TopicPartitionList::with_capacity(positions.len());
    for ((topic, partition), offset) in positions {
        // Adding to a fresh list cannot fail for a valid offset.
        let _ = list.add_partition_offset(topic, *partition, KafkaOffset::Offset(*offset));
    }
    list
}

/// Errors that mean "a rebalance is under way or just happened", not "Kafka is broken".
fn is_rebalance(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::RebalanceInProgress
                | RDKafkaErrorCode::IllegalGeneration
                | RDKafkaErrorCode::UnknownMemberId
                | RDKafkaErrorCode::NoOffset
                | RDKafkaErrorCode::State
        )
    )
}

/// [`Subscription`] over a Kafka consumer group.
pub(crate) struct KafkaSubscription {
    consumer: Arc<StreamConsumer<GroupContext>>,
    /// Cluster topic name → sightline's name, interned so delivered records share one
    /// allocation per topic.
    topics: HashMap<String, Arc<str>>,
    config: KafkaConfig,
}

impl std::fmt::Debug for KafkaSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSubscription")
            .field("topics", &self.topics.keys())
            .finish_non_exhaustive()
    }
}

impl KafkaSubscription {
    pub(crate) fn new(
        consumer: StreamConsumer<GroupContext>,
        topics: Vec<(String, Arc<str>)>,
        config: KafkaConfig,
    ) -> Self {
        Self {
            consumer: Arc::new(consumer),
            topics: topics.into_iter().collect(),
            config,
        }
    }

    fn deliver(&mut self, message: &BorrowedMessage<'_>) -> Delivered {
        // Only subscribed topics are delivered, so the name is always known.
        let topic = self
            .topics
            .get(message.topic())
            .cloned()
            .unwrap_or_else(|| Arc::from(message.topic()));
        let headers = message
            .headers()
            .map(|hs| {
                hs.iter()
                    .map(|h| (h.key.to_owned(), h.value.unwrap_or_default().to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        Delivered {
            topic,
            partition: u32::try_from(message.partition()).unwrap_or_default(),
            offset: u64::try_from(message.offset()).unwrap_or_default(),
            record: Record {
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().unwrap_or_default().to_vec(),
                headers,
                timestamp: message.timestamp().to_millis().unwrap_or_default(),
            },
        }
    }
}

#[async_trait::async_trait]
impl Subscription for KafkaSubscription {
    async fn next_batch(&mut self, max: usize) -> Result<Vec<Delivered>> {
        let consumer = self.consumer.clone();
        // `recv` is cancel-safe: a message leaves librdkafka's queue only when returned.
        let first = consumer.recv().await.map_err(broker_error)?;
        let mut out = Vec::with_capacity(max.clamp(1, 1024));
        out.push(self.deliver(&first));
        drop(first);
        // Then whatever is already fetched, without waiting.
        while out.len() < max {
            match consumer.recv().now_or_never() {
                Some(Ok(message)) => out.push(self.deliver(&message)),
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "consumer error");
                    break;
                }
                None => break,
            }
        }
        Ok(out)
    }

    async fn commit(&mut self, upto: &[Position]) -> Result<()> {
        if upto.is_empty() {
            return Ok(());
        }
        let (consumer, upto) = (self.consumer.clone(), self.on_cluster(upto));
        let commit = tokio::task::spawn_blocking(move || commit_blocking(&consumer, upto));
        // A coordinator in the middle of a rebalance may hold a commit until the rebalance
        // completes, and the rebalance needs this member to poll: waiting forever would
        // deadlock. The positions stay pending and go out with the next commit instead.
        match tokio::time::timeout(self.config.request_timeout(), commit).await {
            Ok(done) => done.map_err(|_| LogError::Closed)?,
            Err(_) => {
                tracing::debug!("commit not answered in time; deferred");
                metrics::counter!(telemetry::KAFKA_DEFERRED_COMMITS).increment(1);
                Ok(())
            }
        }
    }

    fn seek(&mut self, position: &Position) -> Result<()> {
        let partition =
            i32::try_from(position.partition).map_err(|_| LogError::UnknownPartition {
                topic: position.topic.to_string(),
                partition: position.partition,
            })?;
        let offset = i64::try_from(position.offset)
            .map_err(|_| LogError::Broker(format!("offset {} out of range", position.offset)))?;
        self.consumer
            .seek(
                &self.config.physical(&position.topic),
                partition,
                KafkaOffset::Offset(offset),
                self.config.request_timeout(),
            )
            .map_err(broker_error)
    }

    fn take_revoked(&mut self) -> Vec<(Arc<str>, u32)> {
        let context = self.consumer.context();
        let revoked = std::mem::take(
            &mut *context
                .revoked
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        revoked
            .into_iter()
            .filter_map(|(t, p)| Some((self.topics.get(&*t)?.clone(), p)))
            .collect()
    }
}

impl KafkaSubscription {
    /// Positions with the cluster's topic names and Kafka's integer types.
    fn on_cluster(&self, upto: &[Position]) -> Vec<(Arc<str>, i32, i64)> {
        upto.iter()
            .filter_map(|p| {
                Some((
                    Arc::from(self.config.physical(&p.topic)),
                    i32::try_from(p.partition).ok()?,
                    i64::try_from(p.offset).ok()?,
                ))
            })
            .collect()
    }
}

/// Adds `upto` to the pending positions and commits those of partitions this member still
/// owns. Positions of partitions already revoked are dropped: their records go to the new
/// owner again (at-least-once), and committing them now could move the new owner backwards.
fn commit_blocking(
    consumer: &StreamConsumer<GroupContext>,
    upto: Vec<(Arc<str>, i32, i64)>,
) -> Result<()> {
    let assigned = consumer.assignment().map_err(broker_error)?;
    let owned = |topic: &str, partition: i32| {
        assigned
            .elements()
            .iter()
            .any(|e| e.topic() == topic && e.partition() == partition)
    };
    let snapshot = {
        let mut pending = consumer
            .context()
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (topic, partition, offset) in upto {
            let slot = pending.entry((topic, partition)).or_insert(offset);
            *slot = (*slot).max(offset);
        }
        pending.retain(|(t, p), _| owned(t, *p));
        pending.clone()
    };
    if snapshot.is_empty() {
        return Ok(());
    }
    match consumer.commit(&offsets_list(&snapshot), CommitMode::Sync) {
        Ok(()) => {
            let mut pending = consumer
                .context()
                .pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            pending.retain(|key, offset| snapshot.get(key).is_none_or(|done| *offset > *done));
            Ok(())
        }
        Err(e) if is_rebalance(&e) => {
            // Kept pending: committed with the next commit, or on revocation.
            tracing::debug!(error = %e, "commit deferred by a rebalance");
            metrics::counter!(telemetry::KAFKA_DEFERRED_COMMITS).increment(1);
            Ok(())
        }
        Err(e) => Err(broker_error(e)),
    }
}
