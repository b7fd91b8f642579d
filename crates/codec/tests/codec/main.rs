//! The codec's behaviour, end to end: one binary (one link on a small machine), one module
//! per concern. The schema registry is a fake HTTP(S) server on a loopback port.

#![allow(clippy::unwrap_used)]

mod config;
mod evolution;
mod fake_registry;
mod fixtures;
mod https;
mod malformed;
mod registry;
mod round_trip;
mod schema_files;

use apache_avro::Schema;
use apache_avro::types::Value as AvroValue;
use sightline_codec::RecordKind;

/// The embedded schema of `kind`, parsed.
pub fn schema(kind: RecordKind) -> Schema {
    Schema::parse_str(kind.avro_schema()).unwrap()
}

/// Header for schema `id` followed by `datum`.
pub fn framed(id: u32, datum: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(datum);
    v
}

/// The fields of a Confluent-framed value written with `schema`, decoded by apache-avro
/// alone (the reference reader).
pub fn reference_fields(schema: &Schema, value: &[u8]) -> Vec<(String, AvroValue)> {
    assert_eq!(value[0], 0, "magic byte");
    let mut datum = &value[5..];
    let decoded = apache_avro::from_avro_datum(schema, &mut datum, None).unwrap();
    assert!(datum.is_empty(), "{} bytes after the datum", datum.len());
    match decoded {
        AvroValue::Record(fields) => fields,
        other => panic!("not a record: {other:?}"),
    }
}
