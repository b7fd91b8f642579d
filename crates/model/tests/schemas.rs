//! Keeps the schema files in `schemas/` and the Rust types that decode and carry the data
//! in step, with no hand-maintained list of fields on either side.
//!
//! - Each JSON Schema of an input (`system_event`, `webhook_event`, `metric`) must describe
//!   exactly the fields its Rust input accepts (learned from serde's own "unknown field …,
//!   expected one of …" message), and the schema and the Rust decoder must agree on what
//!   is accepted and refused: the minimal document, every missing required field, every
//!   optional field, every wrong JSON type, an unknown field. Values come from each
//!   property's `examples`, so the schema's examples are checked too.
//! - The Avro schema of the normalized event (`system_event.avsc`) must have exactly the
//!   fields `Event` serializes, with compatible types and the enum symbols of `Severity`
//!   and `SourceType` (again learned from serde, not listed here), and must be able to carry
//!   a real event through Avro binary encoding and back unchanged.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeSet, HashMap};

use apache_avro::Schema as Avro;
use apache_avro::types::Value as AvroValue;
use serde_json::{Map, Value, json};
use sightline_model::{
    Event, IngestContext, Severity, SourceType, ValidationError, decode, schemas,
};

/// One input shape: its JSON Schema and its Rust decoder.
struct Input {
    name: &'static str,
    schema: &'static str,
    decode: fn(&[u8], &IngestContext) -> Result<(), ValidationError>,
}

fn inputs() -> [Input; 3] {
    [
        Input {
            name: "system_event.schema.json",
            schema: schemas::SYSTEM_EVENT_JSON,
            decode: |b, c| decode::system_event(b, c).map(drop),
        },
        Input {
            name: "webhook_event.schema.json",
            schema: schemas::WEBHOOK_EVENT_JSON,
            decode: |b, c| decode::webhook(b, c).map(drop),
        },
        Input {
            name: "metric.schema.json",
            schema: schemas::METRIC_JSON,
            decode: |b, c| decode::metric(b, c).map(drop),
        },
    ]
}

fn ctx() -> IngestContext {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    IngestContext::new(SourceType::Http, i64::try_from(now).unwrap(), "schema-test")
}

/// The schema and Rust verdicts on one document.
struct Verdicts {
    schema_errors: Vec<String>,
    rust: Result<(), ValidationError>,
}

/// A JSON Schema with the Rust decoder it should agree with.
struct Checker {
    name: &'static str,
    schema: Value,
    validator: jsonschema::Validator,
    decode: fn(&[u8], &IngestContext) -> Result<(), ValidationError>,
    ctx: IngestContext,
}

impl Checker {
    fn new(input: &Input) -> Self {
        let schema: Value = serde_json::from_str(input.schema)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", input.name));
        assert!(
            jsonschema::meta::is_valid(&schema),
            "{} is not a valid JSON Schema",
            input.name
        );
        let validator =
            jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{}: {e}", input.name));
        Self {
            name: input.name,
            schema,
            validator,
            decode: input.decode,
            ctx: ctx(),
        }
    }

    fn properties(&self) -> &Map<String, Value> {
        self.schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no properties", self.name))
    }

    fn required(&self) -> Vec<String> {
        self.schema["required"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no required list", self.name))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    }

    fn optional(&self) -> Vec<String> {
        let required = self.required();
        self.properties()
            .keys()
            .filter(|k| !required.contains(k))
            .cloned()
            .collect()
    }

    /// A property's first example: every property must have one.
    fn example(&self, property: &str) -> Value {
        self.properties()[property]["examples"]
            .get(0)
            .unwrap_or_else(|| panic!("{}: property {property} has no examples", self.name))
            .clone()
    }

    /// The JSON types a property allows.
    fn types(&self, property: &str) -> Vec<String> {
        match &self.properties()[property]["type"] {
            Value::String(t) => vec![t.clone()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap().to_owned()).collect(),
            other => panic!("{}: property {property} has type {other}", self.name),
        }
    }

    /// The smallest valid document: the required properties with their examples.
    fn minimal(&self) -> Map<String, Value> {
        self.required()
            .iter()
            .map(|p| (p.clone(), self.example(p)))
            .collect()
    }

    fn judge(&self, doc: &Map<String, Value>) -> Verdicts {
        let doc = Value::Object(doc.clone());
        Verdicts {
            schema_errors: self
                .validator
                .iter_errors(&doc)
                .map(|e| format!("{} at '{}'", e, e.instance_path))
                .collect(),
            rust: (self.decode)(&serde_json::to_vec(&doc).unwrap(), &self.ctx),
        }
    }

    fn assert_accepted(&self, doc: &Map<String, Value>, what: &str) {
        let v = self.judge(doc);
        assert!(
            v.schema_errors.is_empty(),
            "{}: {what}: the schema refuses {}: {:?}",
            self.name,
            Value::Object(doc.clone()),
            v.schema_errors
        );
        if let Err(e) = v.rust {
            panic!(
                "{}: {what}: Rust refuses {}: {e}",
                self.name,
                Value::Object(doc.clone())
            );
        }
    }

    /// Both refuse `doc`, and Rust names `field`.
    fn assert_refused(&self, doc: &Map<String, Value>, field: &str, what: &str) {
        let v = self.judge(doc);
        assert!(
            !v.schema_errors.is_empty(),
            "{}: {what}: the schema accepts {}",
            self.name,
            Value::Object(doc.clone())
        );
        match v.rust {
            Ok(()) => panic!(
                "{}: {what}: Rust accepts {}",
                self.name,
                Value::Object(doc.clone())
            ),
            Err(e) => assert_eq!(
                e.field, field,
                "{}: {what}: Rust names the wrong field ({e})",
                self.name
            ),
        }
    }

    /// The fields the Rust input accepts, as serde lists them when it meets an unknown one.
    fn rust_fields(&self) -> BTreeSet<String> {
        let e = (self.decode)(br#"{"__probe__": 1}"#, &self.ctx)
            .expect_err("an unknown field must be refused");
        assert_eq!(e.field, "__probe__", "{}: {e}", self.name);
        expected_names(&e.reason, "field")
    }
}

/// The backquoted names in serde's "unknown field|variant `x`, expected one of `a`, `b`"
/// (or "expected `a`" / "expected `a` or `b`") message.
fn expected_names(message: &str, kind: &str) -> BTreeSet<String> {
    let prefix = format!("unknown {kind} `__probe__`, expected ");
    let list = message
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("not serde's unknown-{kind} message: {message}"));
    let names: BTreeSet<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!names.is_empty(), "no names in: {message}");
    names
}

/// A value of each JSON type, named as JSON Schema names types. `null` is left out: see
/// [`null_means_absent_for_optional_fields_in_both`].
fn samples() -> Vec<(&'static str, Value)> {
    vec![
        ("boolean", json!(true)),
        ("integer", json!(42)),
        ("number", json!(4.5)),
        ("string", json!("text")),
        ("array", json!(["text"])),
        ("object", json!({"k": "v"})),
    ]
}

/// Whether a property allowing `types` allows a value of JSON type `kind`.
fn allows(types: &[String], kind: &str) -> bool {
    types.iter().any(|t| t == kind) || (kind == "integer" && types.iter().any(|t| t == "number"))
}

#[test]
fn json_schema_properties_are_the_fields_rust_accepts() {
    for input in inputs() {
        let c = Checker::new(&input);
        let schema_fields: BTreeSet<String> = c.properties().keys().cloned().collect();
        assert_eq!(
            schema_fields,
            c.rust_fields(),
            "{}: properties (left) differ from the Rust input's fields (right)",
            c.name
        );
        assert_eq!(
            c.schema["additionalProperties"],
            json!(false),
            "{}: unknown properties must be refused, as Rust refuses them",
            c.name
        );
        for r in c.required() {
            assert!(
                schema_fields.contains(&r),
                "{}: required {r} is not a property",
                c.name
            );
        }
    }
}

#[test]
fn the_minimal_document_is_accepted_by_both() {
    for input in inputs() {
        let c = Checker::new(&input);
        c.assert_accepted(&c.minimal(), "minimal document");
        let mut full = c.minimal();
        for p in c.optional() {
            full.insert(p.clone(), c.example(&p));
        }
        c.assert_accepted(&full, "document with every property");
    }
}

#[test]
fn a_missing_required_field_is_refused_by_both_and_named() {
    for input in inputs() {
        let c = Checker::new(&input);
        for r in c.required() {
            let mut doc = c.minimal();
            doc.remove(&r);
            c.assert_refused(&doc, &r, &format!("without {r}"));
        }
    }
}

#[test]
fn every_optional_field_is_accepted_by_both() {
    for input in inputs() {
        let c = Checker::new(&input);
        for p in c.optional() {
            let mut doc = c.minimal();
            doc.insert(p.clone(), c.example(&p));
            c.assert_accepted(&doc, &format!("with {p}"));
        }
    }
}

#[test]
fn a_value_of_a_wrong_type_is_refused_by_both_and_named() {
    for input in inputs() {
        let c = Checker::new(&input);
        for (p, _) in c.properties().clone() {
            let types = c.types(&p);
            for (kind, value) in samples() {
                if allows(&types, kind) {
                    continue;
                }
                let mut doc = c.minimal();
                doc.insert(p.clone(), value);
                c.assert_refused(&doc, &p, &format!("{p} as {kind} (allowed: {types:?})"));
            }
        }
    }
}

/// A known divergence, pinned exactly so that a fix on either side shows up here: Rust
/// reads an explicit `null` in an optional field as "absent" (the inputs' fields are
/// `Option`s), while the schemas, which do not list `"null"` among those fields' types,
/// refuse it. A required field given `null` is refused by both and named by Rust.
#[test]
fn null_means_absent_for_optional_fields_in_both() {
    for input in inputs() {
        let c = Checker::new(&input);
        let required = c.required();
        for (p, _) in c.properties().clone() {
            let mut doc = c.minimal();
            doc.insert(p.clone(), Value::Null);
            let what = format!("{p} as null");
            if required.contains(&p) {
                c.assert_refused(&doc, &p, &what);
            } else {
                assert!(
                    allows(&c.types(&p), "null"),
                    "{}: optional {p} must allow null",
                    c.name
                );
                c.assert_accepted(&doc, &what);
            }
        }
    }
}

#[test]
fn an_unknown_field_is_refused_by_both_and_named() {
    for input in inputs() {
        let c = Checker::new(&input);
        let mut doc = c.minimal();
        doc.insert("severtiy".into(), json!("high"));
        c.assert_refused(&doc, "severtiy", "with a misspelt field");
    }
}

// ---------------------------------------------------------------------------------------
// Avro.

fn avro_schema() -> Avro {
    Avro::parse_str(schemas::SYSTEM_EVENT_AVRO).unwrap()
}

fn avro_fields(schema: &Avro) -> &[apache_avro::schema::RecordField] {
    match schema {
        Avro::Record(r) => &r.fields,
        other => panic!("system_event.avsc is not a record: {other:?}"),
    }
}

fn avro_field<'a>(schema: &'a Avro, name: &str) -> &'a Avro {
    &avro_fields(schema)
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no field {name}"))
        .schema
}

fn enum_symbols(schema: &Avro) -> Vec<String> {
    match schema {
        Avro::Enum(e) => e.symbols.clone(),
        other => panic!("not an enum: {other:?}"),
    }
}

/// The variants a serde enum accepts, learned from its unknown-variant message.
fn serde_variants<T: serde::de::DeserializeOwned + std::fmt::Debug>() -> BTreeSet<String> {
    let e = serde_json::from_str::<T>(r#""__probe__""#).expect_err("an unknown variant is refused");
    expected_names(&e.to_string(), "variant")
}

/// Normalized events from full system event inputs (every property from the schema's
/// examples), one with a host and one without.
fn events() -> Vec<Event> {
    let c = Checker::new(&inputs()[0]);
    let mut full = c.minimal();
    for p in c.optional() {
        full.insert(p.clone(), c.example(&p));
    }
    let with_host = decode::system_event(&serde_json::to_vec(&full).unwrap(), &c.ctx).unwrap();
    assert!(
        with_host.host.is_some() && !with_host.tags.is_empty() && !with_host.metadata.is_empty()
    );
    full.remove("host");
    full.insert(
        "metadata".into(),
        json!({"nested": {"list": [1, 2.5, null, "x"]}, "ok": true}),
    );
    let without_host = decode::system_event(&serde_json::to_vec(&full).unwrap(), &c.ctx).unwrap();
    assert!(without_host.host.is_none());
    vec![with_host, without_host]
}

/// The keys of a JSON object in document order (`serde_json::Map` sorts them).
fn keys_in_order(text: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::Deserialize<'de> for Keys {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_map(Keys(Vec::new()))
        }
    }
    impl<'de> serde::de::Visitor<'de> for Keys {
        type Value = Keys;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(mut self, mut map: A) -> Result<Keys, A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                self.0.push(key);
            }
            Ok(self)
        }
    }
    serde_json::from_str::<Keys>(text).unwrap().0
}

fn event_json(event: &Event) -> Map<String, Value> {
    match serde_json::to_value(event).unwrap() {
        Value::Object(m) => m,
        other => panic!("an event serializes to {other}"),
    }
}

/// Why `value` (the JSON of field `field`) cannot be carried by Avro type `schema`.
fn incompatibility(field: &str, schema: &Avro, value: &Value) -> Option<String> {
    let ok = match (schema, value) {
        // `metadata` is an object carried as JSON text.
        (Avro::String, Value::Object(m)) if field == "metadata" => {
            let text = serde_json::to_string(m).unwrap();
            serde_json::from_str::<Value>(&text).unwrap() == *value
        }
        (Avro::String, Value::String(_)) => true,
        (Avro::Long | Avro::TimestampMillis, Value::Number(n)) => n.is_i64(),
        (Avro::Enum(e), Value::String(s)) => e.symbols.contains(s),
        (Avro::Map(m), Value::Object(o)) => {
            *m.types == Avro::String && o.values().all(Value::is_string)
        }
        (Avro::Union(u), v) => u
            .variants()
            .iter()
            .any(|s| incompatibility(field, s, v).is_none()),
        (Avro::Null, Value::Null) => true,
        _ => false,
    };
    (!ok).then(|| format!("field {field}: Avro {schema:?} cannot carry {value}"))
}

/// The event's JSON as an Avro value of `schema`.
fn to_avro(field: &str, schema: &Avro, value: &Value) -> AvroValue {
    match (schema, value) {
        (Avro::String, Value::Object(_)) if field == "metadata" => {
            AvroValue::String(serde_json::to_string(value).unwrap())
        }
        (Avro::String, Value::String(s)) => AvroValue::String(s.clone()),
        (Avro::Long, Value::Number(n)) => AvroValue::Long(n.as_i64().unwrap()),
        (Avro::TimestampMillis, Value::Number(n)) => {
            AvroValue::TimestampMillis(n.as_i64().unwrap())
        }
        (Avro::Enum(e), Value::String(s)) => {
            let i = e.symbols.iter().position(|x| x == s).unwrap();
            AvroValue::Enum(u32::try_from(i).unwrap(), s.clone())
        }
        (Avro::Map(m), Value::Object(o)) => AvroValue::Map(
            o.iter()
                .map(|(k, v)| (k.clone(), to_avro(field, &m.types, v)))
                .collect::<HashMap<_, _>>(),
        ),
        (Avro::Union(u), v) => {
            let (i, s) = u
                .variants()
                .iter()
                .enumerate()
                .find(|(_, s)| incompatibility(field, s, v).is_none())
                .unwrap();
            AvroValue::Union(u32::try_from(i).unwrap(), Box::new(to_avro(field, s, v)))
        }
        (Avro::Null, Value::Null) => AvroValue::Null,
        (s, v) => panic!("field {field}: no conversion of {v} to {s:?}"),
    }
}

/// An Avro value back as the event's JSON.
fn from_avro(field: &str, value: AvroValue) -> Value {
    match value {
        AvroValue::String(s) if field == "metadata" => serde_json::from_str(&s).unwrap(),
        AvroValue::String(s) | AvroValue::Enum(_, s) => Value::String(s),
        AvroValue::Long(n) | AvroValue::TimestampMillis(n) => json!(n),
        AvroValue::Map(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| (k, from_avro(field, v)))
                .collect(),
        ),
        AvroValue::Union(_, v) => from_avro(field, *v),
        AvroValue::Null => Value::Null,
        other => panic!("field {field}: unexpected Avro value {other:?}"),
    }
}

#[test]
fn avro_fields_are_the_event_fields_with_compatible_types() {
    let schema = avro_schema();
    let avro_names: Vec<&str> = avro_fields(&schema)
        .iter()
        .map(|f| f.name.as_str())
        .collect();
    for event in events() {
        let json = event_json(&event);
        let event_names = keys_in_order(&serde_json::to_string(&event).unwrap());
        assert_eq!(
            avro_names.iter().copied().collect::<BTreeSet<_>>(),
            event_names
                .iter()
                .map(String::as_str)
                .collect::<BTreeSet<_>>(),
            "Avro fields (left) differ from Event's JSON keys (right)"
        );
        assert_eq!(avro_names, event_names, "same fields, different order");
        for f in avro_fields(&schema) {
            if let Some(why) = incompatibility(&f.name, &f.schema, &json[&f.name]) {
                panic!("{why}");
            }
        }
    }
}

#[test]
fn avro_enums_are_the_rust_enums() {
    let schema = avro_schema();
    let severity = enum_symbols(avro_field(&schema, "severity"));
    let all: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
    assert_eq!(severity, all, "Severity symbols, in order");
    assert_eq!(
        severity.iter().cloned().collect::<BTreeSet<_>>(),
        serde_variants::<Severity>(),
        "Severity symbols vs serde's variants"
    );
    for s in Severity::ALL {
        assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
    }

    let source_type = enum_symbols(avro_field(&schema, "source_type"));
    assert_eq!(
        source_type.iter().cloned().collect::<BTreeSet<_>>(),
        serde_variants::<SourceType>(),
        "SourceType symbols vs serde's variants"
    );
    assert_eq!(
        source_type.len(),
        serde_variants::<SourceType>().len(),
        "duplicate symbols"
    );
    for symbol in &source_type {
        let st: SourceType = serde_json::from_value(json!(symbol)).unwrap();
        assert_eq!(st.as_str(), symbol);
        assert_eq!(serde_json::to_value(st).unwrap(), json!(symbol));
    }
}

#[test]
fn an_event_survives_avro_binary_encoding() {
    let schema = avro_schema();
    for event in events() {
        let json = event_json(&event);
        let mut record = apache_avro::types::Record::new(&schema).unwrap();
        for f in avro_fields(&schema) {
            record.put(&f.name, to_avro(&f.name, &f.schema, &json[&f.name]));
        }
        let bytes = apache_avro::to_avro_datum(&schema, record).unwrap();
        let decoded = apache_avro::from_avro_datum(&schema, &mut bytes.as_slice(), None).unwrap();
        let AvroValue::Record(fields) = decoded else {
            panic!("decoded to {decoded:?}");
        };
        let back: Map<String, Value> = fields
            .into_iter()
            .map(|(name, v)| {
                let v = from_avro(&name, v);
                (name, v)
            })
            .collect();
        assert_eq!(back, json);
        let again: Event = serde_json::from_value(Value::Object(back)).unwrap();
        assert_eq!(again, event);
    }
}
