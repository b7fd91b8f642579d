//! The Avro form of the normalized records: the embedded schemas, writing a record as a
//! datum, and reading a datum (written with any compatible schema) back into a record.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::LazyLock;

use apache_avro::Schema;
use apache_avro::error::Details;
use apache_avro::schema::{Name, SchemaKind};
use apache_avro::types::Value;
use serde::de::IntoDeserializer;
use serde::ser::{Error as _, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use sightline_model::{Event, Metric, Severity, SourceType};

use crate::CodecError;

/// Which normalized record a value holds, and so which schema describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// An [`Event`] (topic `system-events`): `schemas/system_event.avsc`.
    Event,
    /// A [`Metric`] point (topic `metrics.raw`): `schemas/metric.avsc`.
    Metric,
}

impl RecordKind {
    /// Both kinds.
    pub const ALL: [RecordKind; 2] = [RecordKind::Event, RecordKind::Metric];

    /// The Avro schema (`.avsc` text) values of this kind are written with.
    pub fn avro_schema(self) -> &'static str {
        match self {
            RecordKind::Event => include_str!("../../../schemas/system_event.avsc"),
            RecordKind::Metric => include_str!("../../../schemas/metric.avsc"),
        }
    }

    /// The Avro record's full name, e.g. `io.sightline.SystemEvent`.
    pub fn record_name(self) -> &'static str {
        match self {
            RecordKind::Event => "io.sightline.SystemEvent",
            RecordKind::Metric => "io.sightline.Metric",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Field names, shared by the writer and the reader; the tests hold them to the schema
/// files and to the Rust types' serde names.
mod field {
    pub const EVENT_ID: &str = "event_id";
    pub const SERVICE_NAME: &str = "service_name";
    pub const EVENT_TYPE: &str = "event_type";
    pub const TIMESTAMP: &str = "timestamp";
    pub const ENVIRONMENT: &str = "environment";
    pub const DETAILS: &str = "details";
    pub const SEVERITY: &str = "severity";
    pub const METADATA: &str = "metadata";
    pub const SOURCE: &str = "source";
    pub const SOURCE_TYPE: &str = "source_type";
    pub const HOST: &str = "host";
    pub const TAGS: &str = "tags";
    pub const FINGERPRINT: &str = "fingerprint";
    pub const CORRELATION_ID: &str = "correlation_id";
    pub const RECEIVED_AT: &str = "received_at";
    pub const METRIC_TYPE: &str = "metric_type";
    pub const VALUE: &str = "value";
}

/// A parsed embedded schema and what writing with it needs.
#[derive(Debug)]
pub(crate) struct Embedded {
    pub(crate) schema: Schema,
    /// The body of the registration request: `{"schema": "<compact schema JSON>"}`.
    pub(crate) registration: Vec<u8>,
    severity_symbols: Vec<String>,
    source_type_symbols: Vec<String>,
}

/// The embedded schemas, parsed once. They are part of the binary, so a failure here is a
/// build defect, caught by every test that touches Avro.
static EMBEDDED: LazyLock<[Embedded; 2]> = LazyLock::new(|| RecordKind::ALL.map(embed));

fn embed(kind: RecordKind) -> Embedded {
    let text = kind.avro_schema();
    let schema = Schema::parse_str(text).expect("embedded .avsc parses");
    let json: serde_json::Value = serde_json::from_str(text).expect("embedded .avsc is JSON");
    let registration = serde_json::to_vec(&serde_json::json!({ "schema": json.to_string() }))
        .expect("a JSON value serializes");
    let symbols = |name| match field_schema(&schema, name) {
        Some(Schema::Enum(e)) => e.symbols.clone(),
        _ => Vec::new(),
    };
    Embedded {
        severity_symbols: symbols(field::SEVERITY),
        source_type_symbols: symbols(field::SOURCE_TYPE),
        schema,
        registration,
    }
}

/// The embedded schema of `kind`.
pub(crate) fn embedded(kind: RecordKind) -> &'static Embedded {
    &EMBEDDED[kind.index()]
}

fn field_schema<'s>(schema: &'s Schema, name: &str) -> Option<&'s Schema> {
    match schema {
        Schema::Record(r) => r
            .lookup
            .get(name)
            .and_then(|&i| r.fields.get(i))
            .map(|f| &f.schema),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Writing.

/// An enum symbol, written as its index in the schema's symbol list (looked up by name,
/// so the Rust enum's declaration order does not matter).
struct Symbol {
    enum_name: &'static str,
    index: u32,
    name: &'static str,
}

impl Symbol {
    fn find(
        enum_name: &'static str,
        field: &'static str,
        symbols: &[String],
        name: &'static str,
    ) -> Result<Self, CodecError> {
        let index =
            symbols
                .iter()
                .position(|s| s == name)
                .ok_or_else(|| CodecError::AvroEncode {
                    field: Some(field.into()),
                    reason: format!("the schema has no symbol '{name}'"),
                })?;
        Ok(Symbol {
            enum_name,
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name,
        })
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit_variant(self.enum_name, self.index, self.name)
    }
}

/// An event as the Avro writer sees it: `metadata` as JSON text, enums as symbols.
struct EventDatum<'a> {
    event: &'a Event,
    metadata: &'a str,
    severity: Symbol,
    source_type: Symbol,
}

impl Serialize for EventDatum<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let schema = &embedded(RecordKind::Event).schema;
        let Schema::Record(record) = schema else {
            return Err(S::Error::custom("the event schema is not a record"));
        };
        let e = self.event;
        let mut out = s.serialize_struct("SystemEvent", record.fields.len())?;
        // The apache-avro serializer writes fields in the order given: follow the schema.
        for f in &record.fields {
            match f.name.as_str() {
                field::EVENT_ID => out.serialize_field(field::EVENT_ID, &e.event_id)?,
                field::SERVICE_NAME => out.serialize_field(field::SERVICE_NAME, &e.service_name)?,
                field::EVENT_TYPE => out.serialize_field(field::EVENT_TYPE, &e.event_type)?,
                field::TIMESTAMP => out.serialize_field(field::TIMESTAMP, &e.timestamp)?,
                field::ENVIRONMENT => out.serialize_field(field::ENVIRONMENT, &e.environment)?,
                field::DETAILS => out.serialize_field(field::DETAILS, &e.details)?,
                field::SEVERITY => out.serialize_field(field::SEVERITY, &self.severity)?,
                field::METADATA => out.serialize_field(field::METADATA, self.metadata)?,
                field::SOURCE => out.serialize_field(field::SOURCE, &e.source)?,
                field::SOURCE_TYPE => out.serialize_field(field::SOURCE_TYPE, &self.source_type)?,
                field::HOST => out.serialize_field(field::HOST, &e.host)?,
                field::TAGS => out.serialize_field(field::TAGS, &e.tags)?,
                field::FINGERPRINT => out.serialize_field(field::FINGERPRINT, &e.fingerprint)?,
                field::CORRELATION_ID => {
                    out.serialize_field(field::CORRELATION_ID, &e.correlation_id)?;
                }
                field::RECEIVED_AT => out.serialize_field(field::RECEIVED_AT, &e.received_at)?,
                other => {
                    return Err(S::Error::custom(format!(
                        "schema field '{other}' has no counterpart in Event"
                    )));
                }
            }
        }
        out.end()
    }
}

/// A metric point as the Avro writer sees it.
struct MetricDatum<'a>(&'a Metric);

impl Serialize for MetricDatum<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let schema = &embedded(RecordKind::Metric).schema;
        let Schema::Record(record) = schema else {
            return Err(S::Error::custom("the metric schema is not a record"));
        };
        let m = self.0;
        let mut out = s.serialize_struct("Metric", record.fields.len())?;
        for f in &record.fields {
            match f.name.as_str() {
                field::SERVICE_NAME => out.serialize_field(field::SERVICE_NAME, &m.service_name)?,
                field::METRIC_TYPE => out.serialize_field(field::METRIC_TYPE, &m.metric_type)?,
                field::VALUE => out.serialize_field(field::VALUE, &m.value)?,
                field::TAGS => out.serialize_field(field::TAGS, &m.tags)?,
                field::TIMESTAMP => out.serialize_field(field::TIMESTAMP, &m.timestamp)?,
                field::RECEIVED_AT => out.serialize_field(field::RECEIVED_AT, &m.received_at)?,
                field::CORRELATION_ID => {
                    out.serialize_field(field::CORRELATION_ID, &m.correlation_id)?;
                }
                other => {
                    return Err(S::Error::custom(format!(
                        "schema field '{other}' has no counterpart in Metric"
                    )));
                }
            }
        }
        out.end()
    }
}

/// Appends `event` as an Avro datum of the embedded event schema.
pub(crate) fn write_event(event: &Event, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let embedded = embedded(RecordKind::Event);
    let metadata = serde_json::to_string(&event.metadata)?;
    let datum = EventDatum {
        event,
        metadata: &metadata,
        severity: Symbol::find(
            "Severity",
            field::SEVERITY,
            &embedded.severity_symbols,
            event.severity.as_str(),
        )?,
        source_type: Symbol::find(
            "SourceType",
            field::SOURCE_TYPE,
            &embedded.source_type_symbols,
            event.source_type.as_str(),
        )?,
    };
    out.reserve(event_size_hint(event, metadata.len()));
    apache_avro::write_avro_datum_ref(&embedded.schema, &datum, out).map_err(encode_error)?;
    Ok(())
}

/// Appends `metric` as an Avro datum of the embedded metric schema.
pub(crate) fn write_metric(metric: &Metric, out: &mut Vec<u8>) -> Result<(), CodecError> {
    let schema = &embedded(RecordKind::Metric).schema;
    out.reserve(
        metric.service_name.len()
            + metric.metric_type.len()
            + metric.correlation_id.len()
            + tags_len(&metric.tags)
            + 48,
    );
    apache_avro::write_avro_datum_ref(schema, &MetricDatum(metric), out).map_err(encode_error)?;
    Ok(())
}

/// Close to the datum's size, so the output grows at most once.
fn event_size_hint(e: &Event, metadata: usize) -> usize {
    [
        &e.event_id,
        &e.service_name,
        &e.event_type,
        &e.environment,
        &e.details,
        &e.source,
        &e.fingerprint,
        &e.correlation_id,
    ]
    .iter()
    .map(|s| s.len())
    .sum::<usize>()
        + e.host.as_ref().map_or(0, String::len)
        + tags_len(&e.tags)
        + metadata
        + 64
}

fn tags_len(tags: &BTreeMap<String, String>) -> usize {
    tags.iter().map(|(k, v)| k.len() + v.len() + 4).sum()
}

fn encode_error(e: apache_avro::Error) -> CodecError {
    match e.details() {
        Details::SerializeRecordFieldWithSchema {
            field_name, error, ..
        } => CodecError::AvroEncode {
            field: Some((*field_name).into()),
            reason: error.to_string(),
        },
        _ => CodecError::AvroEncode {
            field: None,
            reason: e.to_string(),
        },
    }
}

// ---------------------------------------------------------------------------------------
// Reading.

/// A writer schema fetched from the registry, with what decoding needs to know about it.
#[derive(Debug)]
pub(crate) struct WriterSchema {
    schema: Schema,
    /// The record's name, checked against the reader's before resolving.
    name: Option<Name>,
    /// Per [`RecordKind`]: the writer schema is the embedded one, so no resolution is needed.
    identical: [bool; 2],
}

impl WriterSchema {
    /// A writer schema from its registry text.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let schema = Schema::parse_str(text).map_err(|e| format!("does not parse: {e}"))?;
        Ok(Self::new(schema))
    }

    /// The embedded schema of `kind`, as registered by this process.
    pub(crate) fn embedded(kind: RecordKind) -> Self {
        Self::new(embedded(kind).schema.clone())
    }

    fn new(schema: Schema) -> Self {
        let name = match &schema {
            Schema::Record(r) => Some(r.name.clone()),
            _ => None,
        };
        let identical = RecordKind::ALL.map(|k| schema == embedded(k).schema);
        WriterSchema {
            schema,
            name,
            identical,
        }
    }
}

/// Decodes `datum` (written with schema `id`) into an [`Event`].
pub(crate) fn read_event(
    id: u32,
    writer: &WriterSchema,
    datum: &[u8],
) -> Result<Event, CodecError> {
    let value = read(RecordKind::Event, id, writer, datum)?;
    event_from(value).map_err(|e| field_error(id, e))
}

/// Decodes `datum` (written with schema `id`) into a [`Metric`].
pub(crate) fn read_metric(
    id: u32,
    writer: &WriterSchema,
    datum: &[u8],
) -> Result<Metric, CodecError> {
    let value = read(RecordKind::Metric, id, writer, datum)?;
    metric_from(value).map_err(|e| field_error(id, e))
}

fn field_error(id: u32, (field, reason): (&'static str, String)) -> CodecError {
    CodecError::AvroDecode {
        id,
        field: (!field.is_empty()).then(|| field.to_owned()),
        reason,
    }
}

/// Decodes with the writer schema, then resolves to the embedded reader schema of `kind`.
fn read(
    kind: RecordKind,
    id: u32,
    writer: &WriterSchema,
    datum: &[u8],
) -> Result<Value, CodecError> {
    let reader = &embedded(kind).schema;
    if !writer.identical[kind.index()] {
        // Avro resolves records by unqualified name: a metric schema never reads as an event.
        let reader_name = match reader {
            Schema::Record(r) => Some(&r.name.name),
            _ => None,
        };
        if writer.name.as_ref().map(|n| &n.name) != reader_name {
            return Err(CodecError::UnsupportedSchema {
                id,
                reason: format!(
                    "it describes {}, not {}",
                    writer
                        .name
                        .as_ref()
                        .map_or_else(|| "a non-record type".to_owned(), |n| n.fullname(None)),
                    kind.record_name()
                ),
            });
        }
    }
    let mut input = Input::new(datum);
    let decoded = apache_avro::from_avro_datum(&writer.schema, &mut input, None);
    let value = match decoded {
        Ok(value) if !input.ran_out => value,
        // apache-avro reads a string or union cut short by the end of the input as null
        // rather than failing: the input's own record of running out tells.
        Ok(_) => {
            return Err(CodecError::AvroDecode {
                id,
                field: failing_field(&writer.schema, datum),
                reason: "the value ends inside this field: it was cut short".into(),
            });
        }
        Err(e) => {
            return Err(CodecError::AvroDecode {
                id,
                field: failing_field(&writer.schema, datum),
                reason: e.to_string(),
            });
        }
    };
    if !input.rest.is_empty() {
        return Err(CodecError::AvroDecode {
            id,
            field: None,
            reason: format!(
                "{} bytes left over after the datum (at byte {}): the value was not written \
                 with this schema",
                input.rest.len(),
                crate::wire::HEADER_LEN + datum.len() - input.rest.len()
            ),
        });
    }
    if writer.identical[kind.index()] {
        return Ok(value);
    }
    value.resolve(reader).map_err(|e| CodecError::AvroDecode {
        id,
        field: match e.details() {
            Details::GetField(f) => Some(f.clone()),
            _ => None,
        },
        reason: format!("does not resolve to {}: {e}", kind.record_name()),
    })
}

/// The first field of a record datum that does not decode. Only on the error path: a
/// record's encoding is its fields' encodings back to back, so they can be tried one by one.
fn failing_field(writer: &Schema, datum: &[u8]) -> Option<String> {
    let Schema::Record(record) = writer else {
        return None;
    };
    let mut input = Input::new(datum);
    for f in &record.fields {
        let decoded =
            apache_avro::from_avro_datum_schemata(&f.schema, vec![writer], &mut input, None);
        if decoded.is_err() || input.ran_out {
            return Some(f.name.clone());
        }
    }
    None
}

/// The datum as apache-avro reads it, remembering whether a read asked for bytes past
/// the end: a complete datum never does.
struct Input<'a> {
    rest: &'a [u8],
    ran_out: bool,
}

impl<'a> Input<'a> {
    fn new(datum: &'a [u8]) -> Self {
        Input {
            rest: datum,
            ran_out: false,
        }
    }
}

impl Read for Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.ran_out = true;
        }
        self.rest.read(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if buf.len() > self.rest.len() {
            self.ran_out = true;
        }
        self.rest.read_exact(buf)
    }
}

type FieldResult<T> = Result<T, (&'static str, String)>;

/// A decoded record's fields, taken out by name (in schema order, so usually the next one).
struct Fields {
    fields: Vec<(String, Value)>,
    next: usize,
}

impl Fields {
    fn of(value: Value) -> FieldResult<Self> {
        match value {
            Value::Record(fields) => Ok(Fields { fields, next: 0 }),
            other => Err(("", format!("expected a record, found {}", kind_of(&other)))),
        }
    }

    fn take(&mut self, name: &'static str) -> FieldResult<Value> {
        let at = match self.fields.get(self.next) {
            Some((n, _)) if n == name => self.next,
            _ => self
                .fields
                .iter()
                .position(|(n, _)| n == name)
                .ok_or((name, "missing".to_owned()))?,
        };
        self.next = at + 1;
        Ok(std::mem::replace(&mut self.fields[at].1, Value::Null))
    }

    fn string(&mut self, name: &'static str) -> FieldResult<String> {
        match unwrap_union(self.take(name)?) {
            Value::String(s) => Ok(s),
            other => Err(unexpected(name, "a string", &other)),
        }
    }

    fn optional_string(&mut self, name: &'static str) -> FieldResult<Option<String>> {
        match unwrap_union(self.take(name)?) {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Err(unexpected(name, "null or a string", &other)),
        }
    }

    fn long(&mut self, name: &'static str) -> FieldResult<i64> {
        match unwrap_union(self.take(name)?) {
            Value::Long(n) | Value::TimestampMillis(n) => Ok(n),
            Value::Int(n) => Ok(n.into()),
            other => Err(unexpected(name, "a long", &other)),
        }
    }

    fn double(&mut self, name: &'static str) -> FieldResult<f64> {
        match unwrap_union(self.take(name)?) {
            Value::Double(x) => Ok(x),
            Value::Float(x) => Ok(x.into()),
            other => Err(unexpected(name, "a double", &other)),
        }
    }

    fn symbol(&mut self, name: &'static str) -> FieldResult<String> {
        match unwrap_union(self.take(name)?) {
            Value::Enum(_, s) | Value::String(s) => Ok(s),
            other => Err(unexpected(name, "an enum symbol", &other)),
        }
    }

    fn string_map(&mut self, name: &'static str) -> FieldResult<BTreeMap<String, String>> {
        match unwrap_union(self.take(name)?) {
            Value::Map(m) => m
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    other => Err(unexpected(name, "string values", &other)),
                })
                .collect(),
            other => Err(unexpected(name, "a map", &other)),
        }
    }
}

fn unwrap_union(v: Value) -> Value {
    match v {
        Value::Union(_, inner) => *inner,
        v => v,
    }
}

fn kind_of(v: &Value) -> String {
    format!("{:?}", SchemaKind::from(v)).to_lowercase()
}

fn unexpected(field: &'static str, expected: &str, found: &Value) -> (&'static str, String) {
    (
        field,
        format!("expected {expected}, found {}", kind_of(found)),
    )
}

fn severity(symbol: &str) -> FieldResult<Severity> {
    Severity::ALL
        .into_iter()
        .find(|s| s.as_str() == symbol)
        .ok_or_else(|| (field::SEVERITY, format!("unknown severity '{symbol}'")))
}

fn source_type(symbol: &str) -> FieldResult<SourceType> {
    SourceType::deserialize(symbol.into_deserializer())
        .map_err(|e: serde::de::value::Error| (field::SOURCE_TYPE, e.to_string()))
}

fn metadata(text: &str) -> FieldResult<serde_json::Map<String, serde_json::Value>> {
    serde_json::from_str(text).map_err(|e| (field::METADATA, format!("not a JSON object: {e}")))
}

fn event_from(value: Value) -> FieldResult<Event> {
    let mut f = Fields::of(value)?;
    // Struct fields are evaluated in the order written: the schema's order.
    Ok(Event {
        event_id: f.string(field::EVENT_ID)?,
        service_name: f.string(field::SERVICE_NAME)?,
        event_type: f.string(field::EVENT_TYPE)?,
        timestamp: f.long(field::TIMESTAMP)?,
        environment: f.string(field::ENVIRONMENT)?,
        details: f.string(field::DETAILS)?,
        severity: severity(&f.symbol(field::SEVERITY)?)?,
        metadata: metadata(&f.string(field::METADATA)?)?,
        source: f.string(field::SOURCE)?,
        source_type: source_type(&f.symbol(field::SOURCE_TYPE)?)?,
        host: f.optional_string(field::HOST)?,
        tags: f.string_map(field::TAGS)?,
        fingerprint: f.string(field::FINGERPRINT)?,
        correlation_id: f.string(field::CORRELATION_ID)?,
        received_at: f.long(field::RECEIVED_AT)?,
    })
}

/// A metric's value is always finite (JSON cannot say otherwise; Avro can).
fn finite(x: f64) -> FieldResult<f64> {
    if x.is_finite() {
        Ok(x)
    } else {
        Err((field::VALUE, format!("{x} is not a finite number")))
    }
}

fn metric_from(value: Value) -> FieldResult<Metric> {
    let mut f = Fields::of(value)?;
    Ok(Metric {
        service_name: f.string(field::SERVICE_NAME)?,
        metric_type: f.string(field::METRIC_TYPE)?,
        value: finite(f.double(field::VALUE)?)?,
        tags: f.string_map(field::TAGS)?,
        timestamp: f.long(field::TIMESTAMP)?,
        received_at: f.long(field::RECEIVED_AT)?,
        correlation_id: f.string(field::CORRELATION_ID)?,
    })
}
