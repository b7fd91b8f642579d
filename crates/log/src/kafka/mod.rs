//! The event log on Apache Kafka (or any Kafka-protocol broker), for scale-out.
//!
//! Same contract as the embedded log: [`append`](EventLog::append) returns once every
//! record is acknowledged by all in-sync replicas (idempotent producer, `acks=all`), so an
//! HTTP client is never told "accepted" for a record Kafka could still lose; consumer
//! groups commit by hand after processing ([`subscription`]). Records are placed on
//! partitions by the same murmur2 function as the embedded log, so per-key order and
//! partition numbers agree between backends.
//!
//! Every client (producer, consumers, admin) connects with the same TLS and SASL settings
//! ([`KafkaSecurity`], [`security`]). A connection librdkafka cannot make — a refused
//! handshake, rejected credentials — is reported to a callback, not to the waiting call;
//! [`context`] keeps that report so the call's error names the cause.
//!
//! librdkafka's metadata, offset and commit calls block; they run on blocking threads.

mod config;
mod context;
mod security;
mod subscription;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset as KafkaOffset, TopicPartitionList};

pub use self::config::KafkaConfig;
use self::context::{Diagnostics, LogContext};
pub use self::security::{KafkaSecurity, SaslMechanism, SecurityProtocol};
use self::subscription::{GroupContext, KafkaSubscription};
use crate::telemetry;
use crate::{
    EventLog, LogError, Offset, PartitionStats, Record, Result, Subscription, TopicConfig,
    TopicStats, partition_for,
};

/// How long an append waits for room in a full producer queue before answering `Busy`.
const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(2);

pub(crate) fn broker_error(e: KafkaError) -> LogError {
    LogError::Broker(e.to_string())
}

/// [`EventLog`] on a Kafka cluster.
pub struct KafkaLog {
    config: KafkaConfig,
    producer: FutureProducer<LogContext>,
    /// For metadata and watermarks (no group).
    metadata: Arc<BaseConsumer<LogContext>>,
    admin: AdminClient<LogContext>,
    /// The latest connection failure any client of this log reported.
    diagnostics: Diagnostics,
    /// Partition counts, learned from metadata; a topic's count never shrinks.
    partitions: RwLock<HashMap<String, u32>>,
    /// Settings of the topics this node created (Kafka is the source of truth for others).
    topic_configs: RwLock<BTreeMap<String, TopicConfig>>,
    /// One offset reader per consumer group, for lag reporting.
    group_readers: Mutex<HashMap<String, Arc<BaseConsumer<LogContext>>>>,
    /// Round-robin counter for records without a key.
    unkeyed: std::sync::atomic::AtomicU32,
    failed: AtomicBool,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog")
            .field("brokers", &self.config.brokers)
            .finish_non_exhaustive()
    }
}

impl KafkaLog {
    /// Checks the security settings (files included) and creates the clients.
    /// Connections are made lazily; [`create_topic`] is the first call that needs the
    /// cluster to answer.
    ///
    /// [`create_topic`]: EventLog::create_topic
    pub fn connect(config: KafkaConfig) -> Result<Self> {
        config
            .security
            .validate("security")
            .map_err(LogError::Config)?;
        let context = LogContext::default();
        let diagnostics = context.diagnostics.clone();
        // Creating a client reads the certificate and key files: a bad one fails here.
        let setup = |e: KafkaError| LogError::Config(e.to_string());
        let producer: FutureProducer<LogContext> = config
            .producer()
            .create_with_context(context.clone())
            .map_err(setup)?;
        let metadata: BaseConsumer<LogContext> = config
            .admin()
            .create_with_context(context.clone())
            .map_err(setup)?;
        let admin: AdminClient<LogContext> =
            config.admin().create_with_context(context).map_err(setup)?;
        Ok(Self {
            config,
            producer,
            metadata: Arc::new(metadata),
            admin,
            diagnostics,
            partitions: RwLock::new(HashMap::new()),
            topic_configs: RwLock::new(BTreeMap::new()),
            group_readers: Mutex::new(HashMap::new()),
            unkeyed: std::sync::atomic::AtomicU32::new(0),
            failed: AtomicBool::new(false),
        })
    }

    /// A failed call's error, with the connection failure behind it when there was one.
    fn explain(&self, error: KafkaError) -> LogError {
        self.diagnostics.explain(error, self.config.longest_wait())
    }

    /// The partition count of `topic`, from the cache or the cluster's metadata.
    async fn partition_count(&self, topic: &str) -> Result<u32> {
        if let Some(n) = self.read_partitions().get(topic) {
            return Ok(*n);
        }
        let n = self.fetch_partition_count(topic).await?;
        self.partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), n);
        Ok(n)
    }

    fn read_partitions(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, u32>> {
        self.partitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch_partition_count(&self, topic: &str) -> Result<u32> {
        let (client, name, physical, timeout, diagnostics, window) = (
            self.metadata.clone(),
            topic.to_owned(),
            self.config.physical(topic),
            self.config.request_timeout(),
            self.diagnostics.clone(),
            self.config.longest_wait(),
        );
        tokio::task::spawn_blocking(move || {
            let metadata = client
                .fetch_metadata(Some(&physical), timeout)
                .map_err(|e| diagnostics.explain(e, window))?;
            match metadata.topics().iter().find(|t| t.name() == physical) {
                Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
                    Ok(t.partitions().len() as u32)
                }
                _ => Err(LogError::UnknownTopic(name)),
            }
        })
        .await
        .map_err(|_| LogError::Closed)?
    }

    /// Waits until the cluster's metadata shows `topic` (creation propagates
    /// asynchronously), bounded by the request timeout.
    async fn await_topic(&self, topic: &str) -> Result<u32> {
        let deadline = Instant::now() + self.config.request_timeout();
        loop {
            match self.fetch_partition_count(topic).await {
                Ok(n) => return Ok(n),
                Err(LogError::UnknownTopic(_)) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// `group` is the cluster's name for the group.
    fn group_reader(&self, group: &str) -> Result<Arc<BaseConsumer<LogContext>>> {
        let mut readers = self
            .group_readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(r) = readers.get(group) {
            return Ok(r.clone());
        }
        // Never subscribes: it only reads the group's committed offsets.
        let reader: BaseConsumer<LogContext> = self
            .config
            .consumer(group)
            .create_with_context(LogContext {
                diagnostics: self.diagnostics.clone(),
            })
            .map_err(broker_error)?;
        let reader = Arc::new(reader);
        readers.insert(group.to_owned(), reader.clone());
        Ok(reader)
    }

    fn kafka_record<'a>(
        &self,
        topic: &'a str,
        partitions: u32,
        record: &'a Record,
    ) -> FutureRecord<'a, [u8], [u8]> {
        let partition = match &record.key {
            Some(key) => partition_for(key, partitions),
            None => self.unkeyed.fetch_add(1, Ordering::Relaxed) % partitions.max(1),
        };
        let mut out = FutureRecord::to(topic)
            .payload(record.value.as_slice())
            .partition(partition as i32)
            .timestamp(record.timestamp);
        if let Some(key) = &record.key {
            out = out.key(key.as_slice());
        }
        if !record.headers.is_empty() {
            let headers = record.headers.iter().fold(
                OwnedHeaders::new_with_capacity(record.headers.len()),
                |hs, (name, value)| {
                    hs.insert(Header {
                        key: name,
                        value: Some(value.as_slice()),
                    })
                },
            );
            out = out.headers(headers);
        }
        out
    }
}

#[async_trait::async_trait]
impl EventLog for KafkaLog {
    async fn create_topic(&self, name: &str, config: TopicConfig) -> Result<()> {
        let retention_ms = config.retention_ms.unwrap_or(-1).to_string();
        let retention_bytes = config
            .retention_bytes
            .map_or_else(|| "-1".to_owned(), |b| b.to_string());
        let partitions = i32::try_from(config.partitions.max(1))
            .map_err(|_| LogError::Broker(format!("too many partitions for '{name}'")))?;
        let physical = self.config.physical(name);
        let topic = NewTopic::new(
            &physical,
            partitions,
            TopicReplication::Fixed(self.config.replication_factor),
        )
        .set("retention.ms", &retention_ms)
        .set("retention.bytes", &retention_bytes);
        let options = AdminOptions::new()
            .operation_timeout(Some(self.config.request_timeout()))
            .request_timeout(Some(self.config.request_timeout()));
        let results = self
            .admin
            .create_topics([&topic], &options)
            .await
            .map_err(|e| self.explain(e))?;
        for result in results {
            match result {
                Ok(_) => tracing::info!(topic = name, partitions, "created Kafka topic"),
                Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    // The partition count stays; retention follows the configuration.
                    let alter = AlterConfig::new(ResourceSpecifier::Topic(&physical))
                        .set("retention.ms", &retention_ms)
                        .set("retention.bytes", &retention_bytes);
                    match self.admin.alter_configs([&alter], &options).await {
                        Ok(results) => {
                            if let Some(Err((_, code))) = results.into_iter().next() {
                                tracing::warn!(topic = name, error = %code, "cannot update topic retention");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(topic = name, error = %e, "cannot update topic retention");
                        }
                    }
                }
                Err((_, code)) => {
                    return Err(LogError::Broker(format!(
                        "cannot create topic '{name}': {code}"
                    )));
                }
            }
        }
        let n = self.await_topic(name).await?;
        self.partitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), n);
        self.topic_configs
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(
                name.to_owned(),
                TopicConfig {
                    partitions: n,
                    ..config
                },
            );
        Ok(())
    }

    async fn append(&self, topic: &str, records: Vec<Record>) -> Result<Vec<Offset>> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let partitions = self.partition_count(topic).await?;
        let physical = self.config.physical(topic);
        let started = Instant::now();
        let mut deliveries = Vec::with_capacity(records.len());
        for record in &records {
            let mut pending = self.kafka_record(&physical, partitions, record);
            let patience = Instant::now() + QUEUE_FULL_PATIENCE;
            loop {
                match self.producer.send_result(pending) {
                    Ok(delivery) => {
                        deliveries.push(delivery);
                        break;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                        if Instant::now() < patience =>
                    {
                        pending = back;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        return Err(LogError::Busy);
                    }
                    Err((
                        KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge),
                        _,
                    )) => {
                        return Err(LogError::Broker(format!(
                            "a record of {} bytes exceeds the producer's message.max.bytes",
                            record.value.len()
                        )));
                    }
                    Err((e, _)) => return Err(self.explain(e)),
                }
            }
        }
        let mut offsets = Vec::with_capacity(deliveries.len());
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(d)) => offsets.push(Offset {
                    partition: u32::try_from(d.partition).unwrap_or_default(),
                    offset: u64::try_from(d.offset).unwrap_or_default(),
                }),
                Ok(Err((e, _))) => {
                    if matches!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::Fatal)) {
                        self.failed.store(true, Ordering::Relaxed);
                    }
                    return Err(self.explain(e));
                }
                Err(_) => return Err(LogError::Closed),
            }
        }
        metrics::histogram!(telemetry::KAFKA_PRODUCE_SECONDS)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!(telemetry::APPENDED_RECORDS, "topic" => topic.to_owned())
            .increment(offsets.len() as u64);
        Ok(offsets)
    }

    async fn subscribe(&self, group: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        for topic in topics {
            self.partition_count(topic).await?;
        }
        let consumer = self
            .config
            .consumer(&self.config.physical(group))
            .create_with_context(GroupContext::new(self.diagnostics.clone()))
            .map_err(broker_error)?;
        let names: Vec<(String, Arc<str>)> = topics
            .iter()
            .map(|t| (self.config.physical(t), Arc::from(*t)))
            .collect();
        let physical: Vec<&str> = names.iter().map(|(p, _)| p.as_str()).collect();
        rdkafka::consumer::Consumer::subscribe(&consumer, &physical).map_err(broker_error)?;
        Ok(Box::new(KafkaSubscription::new(
            consumer,
            names,
            self.config.clone(),
        )))
    }

    async fn stats(&self) -> Result<Vec<TopicStats>> {
        let (client, timeout, config, diagnostics) = (
            self.metadata.clone(),
            self.config.request_timeout(),
            self.config.clone(),
            self.diagnostics.clone(),
        );
        let known = self
            .topic_configs
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tokio::task::spawn_blocking(move || {
            let explain = |e| diagnostics.explain(e, config.longest_wait());
            let metadata = client.fetch_metadata(None, timeout).map_err(explain)?;
            let mut stats = Vec::new();
            for t in metadata.topics() {
                // Kafka's own bookkeeping topics and other namespaces are not ours.
                let Some(name) = config.logical(t.name()) else {
                    continue;
                };
                if name.starts_with("__") || t.error().is_some() {
                    continue;
                }
                let mut partitions = Vec::with_capacity(t.partitions().len());
                for p in t.partitions() {
                    let (low, high) = client
                        .fetch_watermarks(t.name(), p.id(), timeout)
                        .map_err(explain)?;
                    partitions.push(PartitionStats {
                        partition: u32::try_from(p.id()).unwrap_or_default(),
                        start_offset: u64::try_from(low).unwrap_or_default(),
                        end_offset: u64::try_from(high).unwrap_or_default(),
                        // Kafka does not report partition sizes to clients.
                        size_bytes: 0,
                    });
                }
                partitions.sort_by_key(|p| p.partition);
                let settings = known.get(name).cloned().unwrap_or(TopicConfig {
                    partitions: partitions.len() as u32,
                    retention_ms: None,
                    retention_bytes: None,
                });
                stats.push(TopicStats {
                    name: name.to_owned(),
                    config: settings,
                    partitions,
                });
            }
            stats.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(stats)
        })
        .await
        .map_err(|_| LogError::Closed)?
    }

    async fn committed(&self, group: &str, topic: &str) -> Result<Vec<Option<u64>>> {
        let partitions = self.partition_count(topic).await?;
        let reader = self.group_reader(&self.config.physical(group))?;
        let (topic, timeout) = (self.config.physical(topic), self.config.request_timeout());
        let (diagnostics, window) = (self.diagnostics.clone(), self.config.longest_wait());
        tokio::task::spawn_blocking(move || {
            let mut list = TopicPartitionList::with_capacity(partitions as usize);
            for p in 0..partitions {
                list.add_partition(&topic, p as i32);
            }
            let committed = reader
                .committed_offsets(list, timeout)
                .map_err(|e| diagnostics.explain(e, window))?;
            let mut out = vec![None; partitions as usize];
            for e in committed.elements() {
                if let (KafkaOffset::Offset(o), Ok(p)) =
                    (e.offset(), usize::try_from(e.partition()))
                    && let Some(slot) = out.get_mut(p)
                {
                    *slot = u64::try_from(o).ok();
                }
            }
            Ok(out)
        })
        .await
        .map_err(|_| LogError::Closed)?
    }

    fn is_healthy(&self) -> bool {
        !self.failed.load(Ordering::Relaxed)
    }
}

impl Drop for KafkaLog {
    fn drop(&mut self) {
        // Hand over what is still queued; appends already failed or succeeded by now.
        let _ = self.producer.flush(Duration::from_secs(1));
    }
}
