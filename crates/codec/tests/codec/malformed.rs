//! Bad values are refused with an error that says what is wrong and where; none panics.

use axum::http::StatusCode;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sightline_codec::{Codec, CodecError, RecordKind, ValueFormat};
use sightline_model::topics::{METRICS_RAW, SYSTEM_EVENTS};

use crate::fake_registry::FakeRegistry;
use crate::fixtures::{full_event, full_metric};
use crate::framed;

fn reader() -> Codec {
    Codec::new(&sightline_codec::CodecConfig::default()).unwrap()
}

fn malformed_at(err: &CodecError) -> usize {
    match err {
        CodecError::Malformed { offset, .. } => *offset,
        other => panic!("expected Malformed, got {other}"),
    }
}

#[test]
fn an_empty_value_is_malformed_at_byte_0() {
    let err = reader().decode_event(b"").unwrap_err();
    assert_eq!(malformed_at(&err), 0);
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn a_magic_byte_without_a_full_header_is_malformed_at_its_end() {
    for len in 1..5 {
        let value = vec![0u8; len];
        let err = reader().decode_metric(&value).unwrap_err();
        assert_eq!(malformed_at(&err), len, "{err}");
        assert!(err.to_string().contains("5-byte header"), "{err}");
    }
}

#[test]
fn a_first_byte_in_neither_format_is_named() {
    for value in [&b"\x01\x00\x00\x00\x01"[..], b"[1,2]", b"null", b"\xff\xfe"] {
        let err = reader().decode_event(value).unwrap_err();
        assert_eq!(malformed_at(&err), 0);
        assert!(
            err.to_string().contains(&format!("0x{:02x}", value[0])),
            "{err}"
        );
    }
}

#[test]
fn broken_json_is_a_json_error() {
    for value in [
        &b"{"[..],
        b"{\"service_name\": 1}",
        b"  {} trailing",
        b"{\"event_id\":\"\xff\"}",
    ] {
        let err = reader().decode_event(value).unwrap_err();
        assert!(matches!(err, CodecError::Json(_)), "{err}");
    }
}

#[tokio::test]
async fn an_unknown_schema_id_is_named_before_and_after_asking_the_registry() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Json);
    let value = framed(4242, &[2, b'x']);
    let err = codec.decode_event(&value).unwrap_err();
    assert!(
        matches!(err, CodecError::UnknownSchemaId { id: 4242 }),
        "{err}"
    );

    // The registry answers 404: not a batch failure, the value alone is refused.
    codec.ensure_known([value.as_slice()]).await.unwrap();
    assert_eq!(registry.fetches(4242), 1);
    let err = codec.decode_event(&value).unwrap_err();
    assert!(
        matches!(err, CodecError::UnknownSchemaId { id: 4242 }),
        "{err}"
    );

    // Not remembered as missing: a registry replica that lagged may have it next time.
    codec.ensure_known([value.as_slice()]).await.unwrap();
    assert_eq!(registry.fetches(4242), 2);
}

#[tokio::test]
async fn a_schema_that_is_not_avro_is_unsupported() {
    let registry = FakeRegistry::spawn().await;
    let id = registry.add_typed_schema("syntax = \"proto3\"; message M {}", Some("PROTOBUF"));
    let broken = registry.add_schema("{\"type\": \"record\"}");
    let codec = registry.codec(ValueFormat::Json);
    let values = [framed(id, &[0]), framed(broken, &[0])];
    codec
        .ensure_known(values.iter().map(Vec::as_slice))
        .await
        .unwrap();
    let err = codec.decode_event(&values[0]).unwrap_err();
    assert!(
        matches!(&err, CodecError::UnsupportedSchema { reason, .. } if reason.contains("PROTOBUF")),
        "{err}"
    );
    let err = codec.decode_event(&values[1]).unwrap_err();
    assert!(
        matches!(&err, CodecError::UnsupportedSchema { reason, .. } if reason.contains("does not parse")),
        "{err}"
    );
    // Ids never change meaning: no second fetch.
    codec
        .ensure_known(values.iter().map(Vec::as_slice))
        .await
        .unwrap();
    assert_eq!(registry.fetches(id), 1);
}

fn cut_field(err: CodecError) -> String {
    match err {
        CodecError::AvroDecode { id, field, reason } => {
            assert!(id == 101 || id == 102);
            field.unwrap_or_else(|| panic!("no field named: {reason}"))
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn every_truncation_of_an_avro_value_names_the_field_it_cut() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    let event = full_event();
    let value = codec.encode_event(&event, SYSTEM_EVENTS).unwrap();
    let order: Vec<String> = match crate::schema(RecordKind::Event) {
        apache_avro::Schema::Record(r) => r.fields.into_iter().map(|f| f.name).collect(),
        _ => unreachable!(),
    };
    let mut last = 0;
    for cut in 5..value.len() {
        let field = cut_field(codec.decode_event(&value[..cut]).unwrap_err());
        let at = order.iter().position(|f| *f == field).unwrap();
        assert!(
            at >= last,
            "cut at {cut}: {field} comes before the previous cut's field"
        );
        last = at;
    }
    // The header, then event_id's length byte and its 36 bytes.
    let id_end = 5 + 1 + event.event_id.len();
    for cut in 5..id_end {
        assert_eq!(
            cut_field(codec.decode_event(&value[..cut]).unwrap_err()),
            "event_id"
        );
    }
    assert_eq!(
        cut_field(codec.decode_event(&value[..id_end]).unwrap_err()),
        "service_name"
    );
    assert_eq!(
        cut_field(codec.decode_event(&value[..value.len() - 1]).unwrap_err()),
        "received_at"
    );

    // A metric ends with a string: cut inside it, the value is still refused.
    let value = codec.encode_metric(&full_metric(), METRICS_RAW).unwrap();
    let err = codec.decode_metric(&value[..value.len() - 1]).unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    assert_eq!(cut_field(err), "correlation_id");
}

#[tokio::test]
async fn bytes_after_the_datum_are_refused_with_their_position() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    let mut value = codec.encode_metric(&full_metric(), METRICS_RAW).unwrap();
    let end = value.len();
    value.extend_from_slice(b"xyz");
    let err = codec.decode_metric(&value).unwrap_err();
    assert!(
        matches!(&err, CodecError::AvroDecode { reason, .. }
            if reason.contains("3 bytes left over") && reason.contains(&format!("at byte {end}"))),
        "{err}"
    );
}

#[tokio::test]
async fn a_non_finite_metric_value_is_refused() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    let mut fields = crate::reference_fields(
        &crate::schema(RecordKind::Metric),
        &codec.encode_metric(&full_metric(), METRICS_RAW).unwrap(),
    );
    for (name, v) in &mut fields {
        if name == "value" {
            *v = apache_avro::types::Value::Double(f64::NAN);
        }
    }
    let datum = apache_avro::to_avro_datum(
        &crate::schema(RecordKind::Metric),
        apache_avro::types::Value::Record(fields),
    )
    .unwrap();
    let err = codec.decode_metric(&framed(102, &datum)).unwrap_err();
    assert!(
        matches!(&err, CodecError::AvroDecode { field: Some(f), .. } if f == "value"),
        "{err}"
    );
}

/// Lengths claiming more than any record holds are refused before anything is allocated.
#[tokio::test]
async fn hostile_lengths_are_refused_without_allocating_them() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    // Metric datum: service_name, metric_type, value, then the tags map's item count.
    let mut datum = vec![2, b's', 2, b't'];
    datum.extend_from_slice(&1.0f64.to_le_bytes());
    for count in [i64::MAX / 2, 1 << 40, 16 * 1024 * 1024 - 1] {
        let mut hostile = datum.clone();
        hostile.extend(zigzag(count));
        let err = codec.decode_metric(&framed(102, &hostile)).unwrap_err();
        assert!(
            matches!(&err, CodecError::AvroDecode { field: Some(f), .. } if f == "tags"),
            "{err}"
        );
    }
    // A string claiming a terabyte.
    let mut hostile = zigzag(1 << 40);
    hostile.push(b'x');
    let err = codec.decode_event(&framed(101, &hostile)).unwrap_err();
    assert!(
        matches!(&err, CodecError::AvroDecode { field: Some(f), .. } if f == "event_id"),
        "{err}"
    );
}

fn zigzag(n: i64) -> Vec<u8> {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    let mut out = Vec::new();
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

#[tokio::test]
async fn arbitrary_bytes_never_panic() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    let mut runner = TestRunner::new(Config::with_cases(2_000));
    // Anything at all, and anything behind a header naming a known schema (event 101,
    // metric 102): the second reaches the Avro decoder with garbage.
    let values = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64),
        (
            prop::sample::select(vec![101u32, 102]),
            prop::collection::vec(any::<u8>(), 0..96)
        )
            .prop_map(|(id, datum)| framed(id, &datum)),
    ];
    runner
        .run(&values, |value| {
            let _ = codec.decode_event(&value);
            let _ = codec.decode_metric(&value);
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn a_failing_registry_fails_ensure_known_as_retryable() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Json);
    registry.fail_with(Some(StatusCode::INTERNAL_SERVER_ERROR));
    let value = framed(7, &[0]);
    let err = codec.ensure_known([value.as_slice()]).await.unwrap_err();
    assert!(
        matches!(
            &err,
            CodecError::RegistryStatus {
                status: 500,
                target: sightline_codec::RegistryTarget::SchemaId(7),
                ..
            }
        ),
        "{err}"
    );
    assert!(err.is_retryable());
}
