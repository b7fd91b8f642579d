//! The schema files agree with the Rust types they carry.

use std::collections::BTreeSet;

use apache_avro::Schema;
use sightline_codec::RecordKind;

use crate::fixtures::{full_event, full_metric};
use crate::schema;

fn record(kind: RecordKind) -> apache_avro::schema::RecordSchema {
    match schema(kind) {
        Schema::Record(r) => r,
        other => panic!("{kind:?}: not a record: {other:?}"),
    }
}

fn field_names(kind: RecordKind) -> BTreeSet<String> {
    record(kind).fields.iter().map(|f| f.name.clone()).collect()
}

fn json_keys(value: serde_json::Value) -> BTreeSet<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn event_schema_fields_are_the_event_serde_fields() {
    let event = full_event();
    assert!(event.host.is_some() && !event.tags.is_empty() && !event.metadata.is_empty());
    assert_eq!(
        field_names(RecordKind::Event),
        json_keys(serde_json::to_value(&event).unwrap()),
        "system_event.avsc (left) vs Event (right)"
    );
}

#[test]
fn metric_schema_fields_are_the_metric_serde_fields() {
    assert_eq!(
        field_names(RecordKind::Metric),
        json_keys(serde_json::to_value(full_metric()).unwrap()),
        "metric.avsc (left) vs Metric (right)"
    );
}

#[test]
fn schemas_are_named_in_the_sightline_namespace() {
    for kind in RecordKind::ALL {
        let r = record(kind);
        assert_eq!(r.name.namespace.as_deref(), Some("io.sightline"));
        assert_eq!(r.name.fullname(None), kind.record_name());
        assert!(r.doc.is_some(), "{kind:?} has a doc");
    }
}

#[test]
fn optional_fields_are_null_first_unions_defaulting_to_null() {
    for kind in RecordKind::ALL {
        for f in record(kind).fields {
            if let Schema::Union(u) = &f.schema {
                assert_eq!(u.variants()[0], Schema::Null, "{}: null first", f.name);
                assert_eq!(u.variants().len(), 2, "{}: [null, T]", f.name);
                assert_eq!(
                    f.default,
                    Some(serde_json::Value::Null),
                    "{}: default null",
                    f.name
                );
            }
        }
    }
}

#[test]
fn times_are_timestamp_millis() {
    for kind in RecordKind::ALL {
        for f in record(kind).fields {
            if f.name == "timestamp" || f.name == "received_at" {
                assert_eq!(f.schema, Schema::TimestampMillis, "{kind:?}.{}", f.name);
            }
        }
    }
}

#[test]
fn metadata_is_json_text_and_says_so() {
    let r = record(RecordKind::Event);
    let metadata = r.fields.iter().find(|f| f.name == "metadata").unwrap();
    assert_eq!(metadata.schema, Schema::String);
    assert!(metadata.doc.as_deref().unwrap().contains("JSON"));
}
