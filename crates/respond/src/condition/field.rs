//! Field paths resolved once, at compile time, into accessors over a [`Subject`].
//!
//! A condition names fields by dotted paths (`service_name`, `metadata.cpu.usage`,
//! `tags.region`). Parsing a path per event would allocate and repeat work, so each path
//! becomes an [`Accessor`]: known fields of `Event`/`Anomaly`/`Incident` are read
//! directly, and `metadata.*`, `tags.*`, `labels.*` walk the stored maps with
//! pre-split keys. Reading a field yields a borrowed [`FieldRef`]; nothing is copied.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use sightline_model::{AppliesTo, Severity, Signal};

use crate::{RespondError, Subject};

/// How literals compared with a field are normalized at compile time, so evaluation is a
/// plain comparison with what the pipeline stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Norm {
    /// Compared as written.
    AsIs,
    /// Stored upper-case (`event_type`, `environment`): literals are upper-cased.
    Upper,
    /// Stored lower-case (`source_type`, `status`): literals are lower-cased.
    Lower,
    /// A severity: literals are parsed (synonyms accepted) and ordered by rank.
    Severity,
}

/// One segment of a JSON path: an object key, or an array index when it is a number.
#[derive(Clone, Debug)]
pub(crate) struct Seg {
    key: Box<str>,
    index: Option<usize>,
}

/// A pre-split path into `metadata`.
#[derive(Clone, Debug)]
pub(crate) struct JsonPath(Box<[Seg]>);

impl JsonPath {
    fn parse(rest: &str) -> Self {
        if rest.is_empty() {
            return JsonPath(Box::new([]));
        }
        JsonPath(
            rest.split('.')
                .map(|s| Seg {
                    key: s.into(),
                    index: s.parse().ok(),
                })
                .collect(),
        )
    }

    fn walk<'a>(&self, root: &'a Map<String, Value>) -> FieldRef<'a> {
        let mut segs = self.0.iter();
        let Some(first) = segs.next() else {
            return FieldRef::JsonObject(root);
        };
        let Some(mut cur) = root.get(&*first.key) else {
            return FieldRef::Missing;
        };
        for seg in segs {
            let next = match cur {
                Value::Object(m) => m.get(&*seg.key),
                Value::Array(a) => seg.index.and_then(|i| a.get(i)),
                _ => None,
            };
            match next {
                Some(v) => cur = v,
                None => return FieldRef::Missing,
            }
        }
        FieldRef::from_json(cur)
    }
}

/// A field value, borrowed from the subject.
#[derive(Clone, Copy, Debug)]
pub(crate) enum FieldRef<'a> {
    /// The field does not exist (or an optional field is unset).
    Missing,
    /// JSON `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number (integers are compared as `f64`).
    Num(f64),
    /// A string.
    Str(&'a str),
    /// A severity (ordered by rank).
    Severity(Severity),
    /// A list of strings (`affected_services`).
    StrList(&'a [String]),
    /// A string map (`tags`, `labels`).
    StrMap(&'a BTreeMap<String, String>),
    /// A JSON array inside `metadata`.
    JsonArray(&'a [Value]),
    /// A JSON object inside `metadata` (or `metadata` itself).
    JsonObject(&'a Map<String, Value>),
}

impl<'a> FieldRef<'a> {
    pub(crate) fn from_json(v: &'a Value) -> Self {
        match v {
            Value::Null => FieldRef::Null,
            Value::Bool(b) => FieldRef::Bool(*b),
            Value::Number(n) => n.as_f64().map_or(FieldRef::Null, FieldRef::Num),
            Value::String(s) => FieldRef::Str(s),
            Value::Array(a) => FieldRef::JsonArray(a),
            Value::Object(m) => FieldRef::JsonObject(m),
        }
    }

    fn opt_str(s: &'a Option<String>) -> Self {
        s.as_deref().map_or(FieldRef::Missing, FieldRef::Str)
    }

    fn opt_ms(t: Option<i64>) -> Self {
        t.map_or(FieldRef::Missing, |t| FieldRef::Num(t as f64))
    }

    /// Appends the value as group-key text (`""` for missing/null, JSON for compounds).
    pub(crate) fn render(self, out: &mut String) {
        use std::fmt::Write;
        match self {
            FieldRef::Missing | FieldRef::Null => {}
            FieldRef::Bool(b) => out.push_str(if b { "true" } else { "false" }),
            FieldRef::Num(n) => {
                if n.fract() == 0.0 && n.abs() < 9.0e15 {
                    let _ = write!(out, "{}", n as i64);
                } else {
                    let _ = write!(out, "{n}");
                }
            }
            FieldRef::Str(s) => out.push_str(s),
            FieldRef::Severity(s) => out.push_str(s.as_str()),
            FieldRef::StrList(l) => out.push_str(&l.join(",")),
            FieldRef::StrMap(m) => {
                let _ = write!(out, "{}", serde_json::to_string(m).unwrap_or_default());
            }
            FieldRef::JsonArray(a) => {
                let _ = write!(out, "{}", serde_json::to_string(a).unwrap_or_default());
            }
            FieldRef::JsonObject(m) => {
                let _ = write!(out, "{}", serde_json::to_string(m).unwrap_or_default());
            }
        }
    }
}

/// Rank of a severity for ordered comparisons: `info` 1 … `critical` 5, so
/// `{"severity": {"$gte": "high"}}` means high or critical.
pub(crate) fn severity_rank(s: Severity) -> f64 {
    match s {
        Severity::Critical => 5.0,
        Severity::High => 4.0,
        Severity::Medium => 3.0,
        Severity::Low => 2.0,
        Severity::Info => 1.0,
    }
}

/// A field of an [`sightline_model::Event`].
#[derive(Clone, Debug)]
pub(crate) enum EventField {
    EventId,
    ServiceName,
    EventType,
    Timestamp,
    Environment,
    Details,
    Severity,
    Source,
    SourceType,
    Host,
    Fingerprint,
    CorrelationId,
    ReceivedAt,
    Metadata(JsonPath),
    Tags,
    Tag(Box<str>),
}

/// A field of an [`sightline_model::Anomaly`].
#[derive(Clone, Debug)]
pub(crate) enum AnomalyField {
    Id,
    Detector,
    ServiceName,
    Signal,
    SignalKind,
    Timestamp,
    Value,
    ExpectedLow,
    ExpectedHigh,
    Score,
    Severity,
    Explanation,
    EventId,
    DetectedAt,
}

/// A field of an [`sightline_model::Incident`].
#[derive(Clone, Debug)]
pub(crate) enum IncidentField {
    Id,
    Title,
    Description,
    Severity,
    Score,
    Status,
    ServiceName,
    AffectedServices,
    DetectedAt,
    UpdatedAt,
    AcknowledgedAt,
    ResolvedAt,
    CorrelationId,
    Fingerprint,
    Labels,
    Label(Box<str>),
    Occurrences,
    Assignee,
    Flapping,
}

const EVENT_FIELDS: &str = "event_id, service_name, event_type, timestamp, environment, \
    details, severity, source, source_type, host, fingerprint, correlation_id, received_at, \
    metadata.*, tags, tags.*";
const ANOMALY_FIELDS: &str = "id, detector, service_name, signal, signal_kind, timestamp, \
    value, expected_low, expected_high, score, severity, explanation, event_id, detected_at";
const INCIDENT_FIELDS: &str = "id, title, description, severity, score, status, \
    service_name, affected_services, detected_at, updated_at, acknowledged_at, resolved_at, \
    correlation_id, fingerprint, labels, labels.*, occurrences, assignee, flapping";

/// A compiled field path.
#[derive(Clone, Debug)]
pub(crate) enum Accessor {
    /// A field of an event.
    Event(EventField),
    /// A field of an anomaly.
    Anomaly(AnomalyField),
    /// A field of an incident.
    Incident(IncidentField),
}

impl Accessor {
    /// Resolves `name` for subjects of `kind`; `path` locates it in the rule for errors.
    pub(crate) fn resolve(kind: AppliesTo, name: &str, path: &str) -> Result<Self, RespondError> {
        let (head, rest) = match name.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (name, None),
        };
        let unknown = |known: &str| RespondError::Invalid {
            path: path.to_owned(),
            reason: format!(
                "unknown field '{name}' for {}; known: {known}",
                kind.as_str()
            ),
        };
        if rest.is_some_and(|r| r.is_empty() || r.split('.').any(str::is_empty)) {
            return Err(RespondError::Invalid {
                path: path.to_owned(),
                reason: format!("'{name}' has an empty path segment"),
            });
        }
        Ok(match kind {
            AppliesTo::Events => Accessor::Event(match (head, rest) {
                ("metadata", r) => EventField::Metadata(JsonPath::parse(r.unwrap_or_default())),
                ("tags", Some(k)) => EventField::Tag(k.into()),
                ("tags", None) => EventField::Tags,
                (_, Some(_)) => return Err(unknown(EVENT_FIELDS)),
                ("event_id", None) => EventField::EventId,
                ("service_name" | "service", None) => EventField::ServiceName,
                ("event_type", None) => EventField::EventType,
                ("timestamp", None) => EventField::Timestamp,
                ("environment", None) => EventField::Environment,
                ("details" | "message", None) => EventField::Details,
                ("severity", None) => EventField::Severity,
                ("source", None) => EventField::Source,
                ("source_type", None) => EventField::SourceType,
                ("host", None) => EventField::Host,
                ("fingerprint", None) => EventField::Fingerprint,
                ("correlation_id", None) => EventField::CorrelationId,
                ("received_at", None) => EventField::ReceivedAt,
                _ => return Err(unknown(EVENT_FIELDS)),
            }),
            AppliesTo::Anomalies => Accessor::Anomaly(match (head, rest) {
                (_, Some(_)) => return Err(unknown(ANOMALY_FIELDS)),
                ("id", None) => AnomalyField::Id,
                ("detector", None) => AnomalyField::Detector,
                ("service_name" | "service", None) => AnomalyField::ServiceName,
                ("signal", None) => AnomalyField::Signal,
                ("signal_kind", None) => AnomalyField::SignalKind,
                ("timestamp", None) => AnomalyField::Timestamp,
                ("value", None) => AnomalyField::Value,
                ("expected_low", None) => AnomalyField::ExpectedLow,
                ("expected_high", None) => AnomalyField::ExpectedHigh,
                ("score", None) => AnomalyField::Score,
                ("severity", None) => AnomalyField::Severity,
                ("explanation", None) => AnomalyField::Explanation,
                ("event_id", None) => AnomalyField::EventId,
                ("detected_at", None) => AnomalyField::DetectedAt,
                _ => return Err(unknown(ANOMALY_FIELDS)),
            }),
            AppliesTo::Incidents => Accessor::Incident(match (head, rest) {
                ("labels", Some(k)) => IncidentField::Label(k.into()),
                ("labels", None) => IncidentField::Labels,
                (_, Some(_)) => return Err(unknown(INCIDENT_FIELDS)),
                ("id", None) => IncidentField::Id,
                ("title", None) => IncidentField::Title,
                ("description", None) => IncidentField::Description,
                ("severity", None) => IncidentField::Severity,
                ("score", None) => IncidentField::Score,
                ("status", None) => IncidentField::Status,
                ("service_name" | "service", None) => IncidentField::ServiceName,
                ("affected_services", None) => IncidentField::AffectedServices,
                ("detected_at", None) => IncidentField::DetectedAt,
                ("updated_at", None) => IncidentField::UpdatedAt,
                ("acknowledged_at", None) => IncidentField::AcknowledgedAt,
                ("resolved_at", None) => IncidentField::ResolvedAt,
                ("correlation_id", None) => IncidentField::CorrelationId,
                ("fingerprint", None) => IncidentField::Fingerprint,
                ("occurrences", None) => IncidentField::Occurrences,
                ("assignee", None) => IncidentField::Assignee,
                ("flapping", None) => IncidentField::Flapping,
                _ => return Err(unknown(INCIDENT_FIELDS)),
            }),
        })
    }

    /// How literals compared with this field are normalized.
    pub(crate) fn norm(&self) -> Norm {
        match self {
            Accessor::Event(EventField::EventType | EventField::Environment) => Norm::Upper,
            Accessor::Event(EventField::SourceType) | Accessor::Incident(IncidentField::Status) => {
                Norm::Lower
            }
            Accessor::Event(EventField::Severity)
            | Accessor::Anomaly(AnomalyField::Severity)
            | Accessor::Incident(IncidentField::Severity) => Norm::Severity,
            _ => Norm::AsIs,
        }
    }

    /// Whether this is the subject's event type (the primary index key of event rules).
    pub(crate) fn is_event_type(&self) -> bool {
        matches!(self, Accessor::Event(EventField::EventType))
    }

    /// Whether this is the subject's service name (the secondary index key).
    pub(crate) fn is_service_name(&self) -> bool {
        matches!(
            self,
            Accessor::Event(EventField::ServiceName)
                | Accessor::Anomaly(AnomalyField::ServiceName)
                | Accessor::Incident(IncidentField::ServiceName)
        )
    }

    /// Reads the field from `subject`; a subject of another kind reads as missing.
    pub(crate) fn get<'a>(&self, subject: &'a Subject) -> FieldRef<'a> {
        use FieldRef as F;
        match (self, subject) {
            (Accessor::Event(f), Subject::Event(e)) => match f {
                EventField::EventId => F::Str(&e.event_id),
                EventField::ServiceName => F::Str(&e.service_name),
                EventField::EventType => F::Str(&e.event_type),
                EventField::Timestamp => F::Num(e.timestamp as f64),
                EventField::Environment => F::Str(&e.environment),
                EventField::Details => F::Str(&e.details),
                EventField::Severity => F::Severity(e.severity),
                EventField::Source => F::Str(&e.source),
                EventField::SourceType => F::Str(e.source_type.as_str()),
                EventField::Host => F::opt_str(&e.host),
                EventField::Fingerprint => F::Str(&e.fingerprint),
                EventField::CorrelationId => F::Str(&e.correlation_id),
                EventField::ReceivedAt => F::Num(e.received_at as f64),
                EventField::Metadata(p) => p.walk(&e.metadata),
                EventField::Tags => F::StrMap(&e.tags),
                EventField::Tag(k) => e.tags.get(&**k).map_or(F::Missing, |v| F::Str(v)),
            },
            (Accessor::Anomaly(f), Subject::Anomaly(a)) => match f {
                AnomalyField::Id => F::Str(&a.id),
                AnomalyField::Detector => F::Str(&a.detector),
                AnomalyField::ServiceName => F::Str(&a.service_name),
                AnomalyField::Signal => F::Str(a.signal.name()),
                AnomalyField::SignalKind => F::Str(match a.signal {
                    Signal::Metric { .. } => "metric",
                    Signal::ErrorRate => "error_rate",
                    Signal::Pattern { .. } => "pattern",
                }),
                AnomalyField::Timestamp => F::Num(a.timestamp as f64),
                AnomalyField::Value => F::Num(a.value),
                AnomalyField::ExpectedLow => F::Num(a.expected_low),
                AnomalyField::ExpectedHigh => F::Num(a.expected_high),
                AnomalyField::Score => F::Num(a.score),
                AnomalyField::Severity => F::Severity(a.severity),
                AnomalyField::Explanation => F::Str(&a.explanation),
                AnomalyField::EventId => F::opt_str(&a.event_id),
                AnomalyField::DetectedAt => F::Num(a.detected_at as f64),
            },
            (Accessor::Incident(f), Subject::Incident(i)) => match f {
                IncidentField::Id => F::Str(&i.id),
                IncidentField::Title => F::Str(&i.title),
                IncidentField::Description => F::Str(&i.description),
                IncidentField::Severity => F::Severity(i.severity),
                IncidentField::Score => F::Num(i.score),
                IncidentField::Status => F::Str(i.status.as_str()),
                IncidentField::ServiceName => F::Str(&i.service_name),
                IncidentField::AffectedServices => F::StrList(&i.affected_services),
                IncidentField::DetectedAt => F::Num(i.detected_at as f64),
                IncidentField::UpdatedAt => F::Num(i.updated_at as f64),
                IncidentField::AcknowledgedAt => F::opt_ms(i.acknowledged_at),
                IncidentField::ResolvedAt => F::opt_ms(i.resolved_at),
                IncidentField::CorrelationId => F::Str(&i.correlation_id),
                IncidentField::Fingerprint => F::Str(&i.fingerprint),
                IncidentField::Labels => F::StrMap(&i.labels),
                IncidentField::Label(k) => i.labels.get(&**k).map_or(F::Missing, |v| F::Str(v)),
                IncidentField::Occurrences => F::Num(i.occurrences as f64),
                IncidentField::Assignee => F::opt_str(&i.assignee),
                IncidentField::Flapping => F::Bool(i.flapping),
            },
            _ => F::Missing,
        }
    }
}
