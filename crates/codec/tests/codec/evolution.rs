//! Values written with another version of a schema resolve to the embedded one.

use apache_avro::Schema;
use apache_avro::types::Value as AvroValue;
use serde_json::Value;
use sightline_codec::{CodecError, RecordKind, ValueFormat};
use sightline_model::Event;
use sightline_model::topics::{METRICS_RAW, SYSTEM_EVENTS};

use crate::fake_registry::FakeRegistry;
use crate::fixtures::{full_event, full_metric};
use crate::{framed, reference_fields, schema};

/// The `.avsc` of `kind` with its field list changed by `edit`.
fn variant(kind: RecordKind, edit: impl FnOnce(&mut Vec<Value>)) -> String {
    let mut json: Value = serde_json::from_str(kind.avro_schema()).unwrap();
    edit(json["fields"].as_array_mut().unwrap());
    json.to_string()
}

fn position(fields: &[Value], name: &str) -> usize {
    fields.iter().position(|f| f["name"] == name).unwrap()
}

/// Re-encodes the fields of an embedded-schema value with `writer`, after `edit`.
fn rewrite(
    value: &[u8],
    kind: RecordKind,
    writer: &str,
    id: u32,
    edit: impl FnOnce(&mut Vec<(String, AvroValue)>),
) -> Vec<u8> {
    let mut fields = reference_fields(&schema(kind), value);
    edit(&mut fields);
    let writer = Schema::parse_str(writer).unwrap();
    framed(
        id,
        &apache_avro::to_avro_datum(&writer, AvroValue::Record(fields)).unwrap(),
    )
}

#[tokio::test]
async fn a_newer_writer_with_an_added_field_resolves() {
    let registry = FakeRegistry::spawn().await;
    let writer = registry.avro_codec().await;
    let v2 = variant(RecordKind::Event, |fields| {
        let at = position(fields, "details") + 1;
        fields.insert(
            at,
            serde_json::json!({"name": "region", "type": ["null", "string"], "default": null}),
        );
        fields.push(serde_json::json!({"name": "attempt", "type": "int", "default": 0}));
    });
    let id = registry.add_schema(&v2);
    let event = full_event();
    let value = rewrite(
        &writer.encode_event(&event, SYSTEM_EVENTS).unwrap(),
        RecordKind::Event,
        &v2,
        id,
        |fields| {
            let at = fields.iter().position(|(n, _)| n == "details").unwrap() + 1;
            let region = AvroValue::Union(1, Box::new(AvroValue::String("eu-west-1".into())));
            fields.insert(at, ("region".into(), region));
            fields.push(("attempt".into(), AvroValue::Int(3)));
        },
    );

    let reader = registry.codec(ValueFormat::Json);
    reader.ensure_known([value.as_slice()]).await.unwrap();
    assert_eq!(reader.decode_event(&value).unwrap(), event);
}

#[tokio::test]
async fn an_older_writer_without_a_defaulted_field_resolves_to_the_default() {
    let registry = FakeRegistry::spawn().await;
    let writer = registry.avro_codec().await;
    let v0 = variant(RecordKind::Event, |fields| {
        let at = position(fields, "host");
        fields.remove(at);
    });
    let id = registry.add_schema(&v0);
    let event = full_event();
    let value = rewrite(
        &writer.encode_event(&event, SYSTEM_EVENTS).unwrap(),
        RecordKind::Event,
        &v0,
        id,
        |fields| fields.retain(|(n, _)| n != "host"),
    );

    let reader = registry.codec(ValueFormat::Json);
    reader.ensure_known([value.as_slice()]).await.unwrap();
    let back = reader.decode_event(&value).unwrap();
    assert_eq!(back.host, None, "the reader's default");
    assert_eq!(
        back,
        Event {
            host: None,
            ..event
        }
    );
}

#[tokio::test]
async fn a_metric_writer_with_an_added_field_resolves() {
    let registry = FakeRegistry::spawn().await;
    let writer = registry.avro_codec().await;
    let v2 = variant(RecordKind::Metric, |fields| {
        fields.push(serde_json::json!({"name": "unit", "type": "string", "default": ""}));
    });
    let id = registry.add_schema(&v2);
    let metric = full_metric();
    let value = rewrite(
        &writer.encode_metric(&metric, METRICS_RAW).unwrap(),
        RecordKind::Metric,
        &v2,
        id,
        |fields| fields.push(("unit".into(), AvroValue::String("ms".into()))),
    );
    let reader = registry.codec(ValueFormat::Json);
    reader.ensure_known([value.as_slice()]).await.unwrap();
    assert_eq!(reader.decode_metric(&value).unwrap(), metric);
}

#[tokio::test]
async fn a_writer_missing_a_field_without_default_names_the_field() {
    let registry = FakeRegistry::spawn().await;
    let writer = registry.avro_codec().await;
    let without_details = variant(RecordKind::Event, |fields| {
        let at = position(fields, "details");
        fields.remove(at);
    });
    let id = registry.add_schema(&without_details);
    let value = rewrite(
        &writer.encode_event(&full_event(), SYSTEM_EVENTS).unwrap(),
        RecordKind::Event,
        &without_details,
        id,
        |fields| fields.retain(|(n, _)| n != "details"),
    );
    let reader = registry.codec(ValueFormat::Json);
    reader.ensure_known([value.as_slice()]).await.unwrap();
    match reader.decode_event(&value).unwrap_err() {
        CodecError::AvroDecode {
            id: got,
            field,
            reason,
        } => {
            assert_eq!(got, id);
            assert!(
                field.as_deref() == Some("details") || reason.contains("details"),
                "field {field:?}: {reason}"
            );
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn a_metric_schema_id_does_not_read_as_an_event() {
    let registry = FakeRegistry::spawn().await;
    let writer = registry.avro_codec().await;
    let value = writer.encode_metric(&full_metric(), METRICS_RAW).unwrap();
    let err = writer.decode_event(&value).unwrap_err();
    assert!(
        matches!(&err, CodecError::UnsupportedSchema { id: 102, reason } if reason.contains("io.sightline.Metric")),
        "{err}"
    );
}

#[tokio::test]
async fn a_value_cut_inside_a_field_only_the_writer_knows_is_still_refused() {
    let registry = FakeRegistry::spawn().await;
    let writer = registry.avro_codec().await;
    let v2 = variant(RecordKind::Metric, |fields| {
        fields.push(serde_json::json!({"name": "note", "type": "string", "default": ""}));
    });
    let id = registry.add_schema(&v2);
    let value = rewrite(
        &writer.encode_metric(&full_metric(), METRICS_RAW).unwrap(),
        RecordKind::Metric,
        &v2,
        id,
        |fields| {
            fields.push((
                "note".into(),
                AvroValue::String("dropped by the reader".into()),
            ))
        },
    );
    let reader = registry.codec(ValueFormat::Json);
    reader.ensure_known([value.as_slice()]).await.unwrap();
    assert_eq!(reader.decode_metric(&value).unwrap(), full_metric());
    let err = reader.decode_metric(&value[..value.len() - 3]).unwrap_err();
    assert!(
        matches!(&err, CodecError::AvroDecode { field: Some(f), .. } if f == "note"),
        "{err}"
    );
}
