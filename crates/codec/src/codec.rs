//! [`Codec`]: the one type producers and consumers hold.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, PoisonError, RwLock};

use sightline_model::{Event, Metric, topics};

use crate::avro::{self, RecordKind, WriterSchema};
use crate::registry::Registry;
use crate::wire::{self, Framed};
use crate::{CodecConfig, CodecError, SubjectStrategy, ValueFormat};

/// Writer schemas kept in memory. A deployment uses a handful (one per record and
/// version); the bound only stops values naming random ids from growing the map.
const MAX_WRITER_SCHEMAS: usize = 1024;

/// Largest length apache-avro may allocate for while decoding (a string, or a map's or an
/// array's item count). Its own default is 512 MiB, enough for a few bytes of hostile input
/// to request gigabytes. 16 MiB is four times the embedded log's default record limit and
/// sixteen times Kafka's; a value holding a longer string or more tags is refused.
const MAX_AVRO_ALLOCATION: usize = 16 * 1024 * 1024;

/// Encodes records into log values and decodes them back. See the [crate docs](crate).
///
/// # Why the registry calls are separate
///
/// Encoding and decoding run in synchronous batch loops (on blocking threads for large
/// bodies), and the registry is needed only the first time a subject or a schema id is
/// seen. So the network part is one `async` call per batch — [`prepare`](Self::prepare)
/// before encoding, [`ensure_known`](Self::ensure_known) before decoding — which returns
/// at once, without I/O, when everything is cached (and always with JSON). The per-value
/// calls are plain functions: no future per record, no lock held across an await, one
/// uncontended read lock per Avro value. An Avro encode writes straight into its output
/// (sized up front) without building an intermediate value tree; besides the output it
/// allocates the `metadata` JSON text and, inside apache-avro, one small buffer per tag.
///
/// Cloning is cheap (one `Arc`); clones share the caches.
#[derive(Clone, Debug)]
pub struct Codec {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    format: ValueFormat,
    strategy: SubjectStrategy,
    /// The log's topic namespace: subjects are named after the cluster's topic names.
    namespace: String,
    registry: Registry,
    /// Per [`RecordKind`]: the schema id registered for each topic. Read on every Avro
    /// encode, written once per topic.
    registered: [RwLock<HashMap<String, u32>>; 2],
    /// Held while registering, so concurrent `prepare` calls register a subject once.
    registering: tokio::sync::Mutex<()>,
    writers: RwLock<WriterCache>,
}

/// What is known about a writer schema id the registry has. Ids the registry does not
/// have are not remembered: a registry replica that lags may know them on the next batch.
#[derive(Clone, Debug)]
enum Writer {
    /// Its Avro schema.
    Avro(Arc<WriterSchema>),
    /// The registry has it, but it cannot read values here (ids never change meaning).
    Unusable(Arc<str>),
}

/// Writer schemas by id, oldest evicted first beyond [`MAX_WRITER_SCHEMAS`].
#[derive(Debug, Default)]
struct WriterCache {
    by_id: HashMap<u32, Writer>,
    order: VecDeque<u32>,
}

impl WriterCache {
    fn insert(&mut self, id: u32, writer: Writer) {
        if self.by_id.insert(id, writer).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > MAX_WRITER_SCHEMAS {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }
}

impl Codec {
    /// A codec writing `config.format` for a log whose topic names carry no namespace.
    /// Checks the configuration (and reads the registry's CA file); contacts nothing.
    pub fn new(config: &CodecConfig) -> Result<Self, CodecError> {
        Self::with_namespace(config, "")
    }

    /// A codec for a log that names its topics `"{namespace}.{topic}"` on the cluster
    /// (Kafka's `log.kafka.namespace`): subjects are derived from those names
    /// (`"{namespace}.{topic}-value"`), so deployments sharing a registry never register
    /// under one another's subjects. Topic names given to the codec stay sightline's own.
    pub fn with_namespace(config: &CodecConfig, namespace: &str) -> Result<Self, CodecError> {
        // Process-wide in apache-avro, and only the first setting counts: set it before
        // anything decodes.
        apache_avro::max_allocation_bytes(MAX_AVRO_ALLOCATION);
        Ok(Codec {
            inner: Arc::new(Inner {
                format: config.format,
                strategy: config.schema_registry.subject_strategy,
                namespace: namespace.to_owned(),
                registry: Registry::new(&config.schema_registry)?,
                registered: Default::default(),
                registering: tokio::sync::Mutex::new(()),
                writers: RwLock::default(),
            }),
        })
    }

    /// The format values are written in.
    pub fn format(&self) -> ValueFormat {
        self.inner.format
    }

    /// The registry subject of `topic`'s values: named after the topic as the cluster
    /// names it (namespace included), by the configured strategy.
    pub fn subject(&self, topic: &str) -> String {
        self.inner
            .strategy
            .subject(&topics::namespaced(&self.inner.namespace, topic))
    }

    /// Readies encoding `kind` records for `topic`: with Avro, registers the schema under
    /// the topic's subject (`<topic>-value`, see [`subject`](Self::subject)) unless this
    /// codec already did. Call it before
    /// encoding a batch; it is a map lookup once done, and does nothing with JSON.
    ///
    /// A failed registration is not remembered: the next call tries again. See
    /// [`CodecError::is_retryable`].
    pub async fn prepare(&self, kind: RecordKind, topic: &str) -> Result<(), CodecError> {
        if self.inner.format == ValueFormat::Json || self.registered_id(kind, topic).is_some() {
            return Ok(());
        }
        let _only_registration = self.inner.registering.lock().await;
        if self.registered_id(kind, topic).is_some() {
            return Ok(());
        }
        let subject = self.subject(topic);
        let body = avro::embedded(kind).registration.as_slice();
        let id = self.inner.registry.register(&subject, body).await?;
        tracing::info!(%subject, id, record = kind.record_name(), "registered Avro schema");
        // This process reads what it writes: no need to fetch its own schema back.
        self.cache_writer(id, Writer::Avro(Arc::new(WriterSchema::embedded(kind))));
        self.inner.registered[kind.index()]
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(topic.to_owned(), id);
        Ok(())
    }

    /// Fetches the writer schema of every Avro value in `values` whose schema id is not
    /// known yet, so that decoding them needs no I/O. Call it once per batch before
    /// decoding; it does no I/O when every id is cached or the batch holds only JSON.
    ///
    /// `values` is read before this returns; the future holds only the ids to fetch.
    /// An id the registry does not have is no failure here: decoding its values answers
    /// [`CodecError::UnknownSchemaId`], so one bad record never blocks a batch. Only a
    /// registry that cannot be asked fails the call (see [`CodecError::is_retryable`]).
    pub fn ensure_known<'v>(
        &self,
        values: impl IntoIterator<Item = &'v [u8]>,
    ) -> impl Future<Output = Result<(), CodecError>> + Send + '_ {
        let missing = self.unknown_ids(values);
        async move {
            for id in missing {
                let Some(fetched) = self.inner.registry.fetch(id).await? else {
                    continue;
                };
                let writer = match fetched.schema_type.as_deref() {
                    None | Some("AVRO") => match WriterSchema::parse(&fetched.schema) {
                        Ok(schema) => Writer::Avro(Arc::new(schema)),
                        Err(reason) => Writer::Unusable(reason.into()),
                    },
                    Some(other) => {
                        Writer::Unusable(format!("it is a {other} schema, not Avro").into())
                    }
                };
                self.cache_writer(id, writer);
            }
            Ok(())
        }
    }

    /// Encodes an event for `topic`: JSON exactly as `serde_json::to_vec(event)`, or a
    /// Confluent-framed Avro datum (after [`prepare`](Self::prepare)).
    pub fn encode_event(&self, event: &Event, topic: &str) -> Result<Vec<u8>, CodecError> {
        match self.inner.format {
            ValueFormat::Json => Ok(serde_json::to_vec(event)?),
            ValueFormat::Avro => {
                let mut out = self.avro_header(RecordKind::Event, topic)?;
                avro::write_event(event, &mut out)?;
                Ok(out)
            }
        }
    }

    /// Encodes a metric point for `topic`, like [`encode_event`](Self::encode_event).
    pub fn encode_metric(&self, metric: &Metric, topic: &str) -> Result<Vec<u8>, CodecError> {
        match self.inner.format {
            ValueFormat::Json => Ok(serde_json::to_vec(metric)?),
            ValueFormat::Avro => {
                let mut out = self.avro_header(RecordKind::Metric, topic)?;
                avro::write_metric(metric, &mut out)?;
                Ok(out)
            }
        }
    }

    /// Decodes an event from a value in either format, whatever this codec writes.
    /// Avro values need their writer schema known (see [`ensure_known`](Self::ensure_known)).
    pub fn decode_event(&self, value: &[u8]) -> Result<Event, CodecError> {
        match wire::frame(value)? {
            Framed::Json(text) => Ok(serde_json::from_slice(text)?),
            Framed::Avro { id, datum } => avro::read_event(id, &*self.writer(id)?, datum),
        }
    }

    /// Decodes a metric point from a value in either format, like
    /// [`decode_event`](Self::decode_event).
    pub fn decode_metric(&self, value: &[u8]) -> Result<Metric, CodecError> {
        match wire::frame(value)? {
            Framed::Json(text) => Ok(serde_json::from_slice(text)?),
            Framed::Avro { id, datum } => avro::read_metric(id, &*self.writer(id)?, datum),
        }
    }

    /// The writer schema id of a Confluent-framed Avro value; `None` for JSON or bytes in
    /// neither format. Cheap: it reads the first five bytes.
    pub fn schema_id(value: &[u8]) -> Option<u32> {
        wire::schema_id(value)
    }

    fn registered_id(&self, kind: RecordKind, topic: &str) -> Option<u32> {
        self.inner.registered[kind.index()]
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .copied()
    }

    /// A new value holding the Avro header of `topic`'s registered schema.
    fn avro_header(&self, kind: RecordKind, topic: &str) -> Result<Vec<u8>, CodecError> {
        let id = self
            .registered_id(kind, topic)
            .ok_or_else(|| CodecError::NotPrepared {
                subject: self.subject(topic),
            })?;
        let mut out = Vec::new();
        wire::write_header(&mut out, id);
        Ok(out)
    }

    fn writer(&self, id: u32) -> Result<Arc<WriterSchema>, CodecError> {
        let writer = self
            .inner
            .writers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .by_id
            .get(&id)
            .cloned();
        match writer {
            Some(Writer::Avro(schema)) => Ok(schema),
            Some(Writer::Unusable(reason)) => Err(CodecError::UnsupportedSchema {
                id,
                reason: reason.to_string(),
            }),
            None => Err(CodecError::UnknownSchemaId { id }),
        }
    }

    fn cache_writer(&self, id: u32, writer: Writer) {
        self.inner
            .writers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, writer);
    }

    /// The distinct schema ids in `values` not cached yet.
    fn unknown_ids<'v>(&self, values: impl IntoIterator<Item = &'v [u8]>) -> Vec<u32> {
        let writers = self
            .inner
            .writers
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let mut missing = Vec::new();
        for id in values.into_iter().filter_map(wire::schema_id) {
            if !writers.by_id.contains_key(&id) && !missing.contains(&id) {
                missing.push(id);
            }
        }
        missing
    }
}

/// Prepares a batch for [`read_event`] / [`read_metric`]: fetches the writer schemas an
/// optional codec has not seen. A registry that cannot be asked is logged as `reader`'s
/// problem, not returned: records still unreadable are then rejected one by one by the
/// reader, so a registry outage never stalls a stage that can count and skip records.
pub fn prefetch_writers<'c, 'v>(
    codec: Option<&'c Codec>,
    values: impl IntoIterator<Item = &'v [u8]>,
    reader: &'static str,
) -> impl Future<Output = ()> + Send + 'c {
    let fetch = codec.map(|codec| codec.ensure_known(values));
    async move {
        if let Some(fetch) = fetch
            && let Err(error) = fetch.await
        {
            tracing::warn!(%error, "{reader}: writer schemas unavailable");
        }
    }
}

/// Reads a system event from a log record value: Avro in the Confluent wire format when a
/// codec is given and the value is framed so, JSON otherwise. The error says what failed.
pub fn read_event(value: &[u8], codec: Option<&Codec>) -> Result<Event, String> {
    match codec.filter(|_| Codec::schema_id(value).is_some()) {
        Some(codec) => codec.decode_event(value).map_err(|e| e.to_string()),
        None => serde_json::from_slice(value).map_err(|e| e.to_string()),
    }
    .map_err(|e| format!("not a system event: {e}"))
}

/// Reads a metric point from a log record value, like [`read_event`].
pub fn read_metric(value: &[u8], codec: Option<&Codec>) -> Result<Metric, String> {
    match codec.filter(|_| Codec::schema_id(value).is_some()) {
        Some(codec) => codec.decode_metric(value).map_err(|e| e.to_string()),
        None => serde_json::from_slice(value).map_err(|e| e.to_string()),
    }
    .map_err(|e| format!("not a metric point: {e}"))
}
