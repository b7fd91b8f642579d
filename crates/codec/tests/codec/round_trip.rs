//! Records survive both formats unchanged, and readers take both formats mixed.

use proptest::test_runner::{Config, TestRunner};
use sightline_codec::{Codec, CodecConfig, RecordKind, ValueFormat};
use sightline_model::topics::{METRICS_RAW, SYSTEM_EVENTS};

use crate::fake_registry::FakeRegistry;
use crate::fixtures::{arb_event, arb_metric, edge_events, edge_metrics};
use crate::{reference_fields, schema};

fn json_codec() -> Codec {
    Codec::new(&CodecConfig::default()).unwrap()
}

#[test]
fn json_is_the_default_and_byte_identical_to_serde_json() {
    let codec = json_codec();
    assert_eq!(codec.format(), ValueFormat::Json);
    for event in edge_events() {
        let value = codec.encode_event(&event, SYSTEM_EVENTS).unwrap();
        assert_eq!(value, serde_json::to_vec(&event).unwrap());
        assert_eq!(codec.decode_event(&value).unwrap(), event);
    }
    for metric in edge_metrics() {
        let value = codec.encode_metric(&metric, METRICS_RAW).unwrap();
        assert_eq!(value, serde_json::to_vec(&metric).unwrap());
        assert_eq!(codec.decode_metric(&value).unwrap(), metric);
    }
}

/// Arbitrary events and metrics decode back to themselves; with `json`, event values are
/// also byte for byte what `serde_json` writes.
fn any_record_round_trips(codec: &Codec, cases: u32, json: bool) {
    let mut runner = TestRunner::new(Config::with_cases(cases));
    runner
        .run(&arb_event(), |event| {
            let value = codec.encode_event(&event, SYSTEM_EVENTS).unwrap();
            if json {
                assert_eq!(value, serde_json::to_vec(&event).unwrap());
            }
            assert_eq!(codec.decode_event(&value).unwrap(), event);
            Ok(())
        })
        .unwrap();
    runner
        .run(&arb_metric(), |metric| {
            let value = codec.encode_metric(&metric, METRICS_RAW).unwrap();
            assert_eq!(codec.decode_metric(&value).unwrap(), metric);
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_record_round_trips_through_json() {
    any_record_round_trips(&json_codec(), 128, true);
}

#[tokio::test]
async fn edge_case_records_round_trip_through_avro() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    for event in edge_events() {
        let value = codec.encode_event(&event, SYSTEM_EVENTS).unwrap();
        assert_eq!(value[0], 0, "magic byte");
        assert_eq!(Codec::schema_id(&value), Some(101));
        assert_eq!(codec.decode_event(&value).unwrap(), event);
    }
    for metric in edge_metrics() {
        let value = codec.encode_metric(&metric, METRICS_RAW).unwrap();
        assert_eq!(Codec::schema_id(&value), Some(102));
        let back = codec.decode_metric(&value).unwrap();
        assert_eq!(back, metric);
        assert_eq!(
            back.value.to_bits(),
            metric.value.to_bits(),
            "bit-exact double"
        );
    }
}

#[tokio::test]
async fn any_record_round_trips_through_avro() {
    let registry = FakeRegistry::spawn().await;
    any_record_round_trips(&registry.avro_codec().await, 256, false);
}

/// The bytes are what the reference implementation reads with the registered schema,
/// field for field: other Avro consumers of the topic see the same record.
#[tokio::test]
async fn avro_values_are_read_by_the_reference_decoder() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    let event = crate::fixtures::full_event();
    let fields = reference_fields(
        &schema(RecordKind::Event),
        &codec.encode_event(&event, SYSTEM_EVENTS).unwrap(),
    );
    let json = serde_json::to_value(&event).unwrap();
    let names: Vec<&str> = fields.iter().map(|(n, _)| n.as_str()).collect();
    let mut expected: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    expected.sort_unstable();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    for (name, value) in fields {
        use apache_avro::types::Value as A;
        let got = match value {
            A::String(s) if name == "metadata" => serde_json::from_str(&s).unwrap(),
            A::String(s) | A::Enum(_, s) => serde_json::json!(s),
            A::TimestampMillis(n) => serde_json::json!(n),
            A::Union(_, v) => match *v {
                A::String(s) => serde_json::json!(s),
                A::Null => serde_json::Value::Null,
                other => panic!("{name}: {other:?}"),
            },
            A::Map(m) => serde_json::to_value(
                m.into_iter()
                    .map(|(k, v)| match v {
                        A::String(s) => (k, s),
                        other => panic!("{name}: {other:?}"),
                    })
                    .collect::<std::collections::BTreeMap<_, _>>(),
            )
            .unwrap(),
            other => panic!("{name}: unexpected {other:?}"),
        };
        assert_eq!(got, json[&name], "field {name}");
    }
}

#[tokio::test]
async fn a_batch_mixing_json_and_avro_decodes_after_one_ensure_known() {
    let registry = FakeRegistry::spawn().await;
    let writer = registry.avro_codec().await;
    let events = edge_events();
    let batch: Vec<Vec<u8>> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            if i % 2 == 0 {
                serde_json::to_vec(e).unwrap()
            } else {
                writer.encode_event(e, SYSTEM_EVENTS).unwrap()
            }
        })
        .collect();

    // A consumer still configured for JSON, as during a migration, in another process.
    let reader = registry.codec(ValueFormat::Json);
    reader
        .ensure_known(batch.iter().map(Vec::as_slice))
        .await
        .unwrap();
    for (value, event) in batch.iter().zip(&events) {
        assert_eq!(&reader.decode_event(value).unwrap(), event);
    }
    assert_eq!(registry.fetches(101), 1, "one fetch for the whole batch");

    // Nothing left to fetch: the next batch costs no request.
    reader
        .ensure_known(batch.iter().map(Vec::as_slice))
        .await
        .unwrap();
    assert_eq!(registry.fetches(101), 1);
}

#[tokio::test]
async fn a_writer_reads_its_own_values_without_fetching_its_schema() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.avro_codec().await;
    let value = codec
        .encode_event(&crate::fixtures::full_event(), SYSTEM_EVENTS)
        .unwrap();
    codec.ensure_known([value.as_slice()]).await.unwrap();
    codec.decode_event(&value).unwrap();
    assert!(registry.seen().iter().all(|s| s.method == "POST"));
}

#[tokio::test]
async fn the_codec_and_its_batch_futures_can_move_between_threads() {
    fn send_sync_clone<T: Send + Sync + Clone + 'static>(t: T) -> T {
        t
    }
    fn send<T: Send>(t: T) -> T {
        t
    }
    let registry = FakeRegistry::spawn().await;
    let codec = send_sync_clone(registry.codec(ValueFormat::Avro));
    send(codec.prepare(RecordKind::Event, SYSTEM_EVENTS))
        .await
        .unwrap();
    let batch = [codec
        .encode_event(&crate::fixtures::full_event(), SYSTEM_EVENTS)
        .unwrap()];
    send(codec.ensure_known(batch.iter().map(Vec::as_slice)))
        .await
        .unwrap();
    // Encoding is plain synchronous work, as on a blocking thread.
    let on_thread = codec.clone();
    let value = tokio::task::spawn_blocking(move || {
        on_thread.encode_event(&crate::fixtures::minimal_event(), SYSTEM_EVENTS)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        codec.decode_event(&value).unwrap(),
        crate::fixtures::minimal_event()
    );
}
