//! The registry over HTTPS: trusted through `ca_file` (a private CA), with basic auth, and
//! refused when its certificate is not trusted.

use sightline_codec::{Codec, CodecError, RecordKind, RegistryTarget, ValueFormat};
use sightline_model::topics::SYSTEM_EVENTS;

use crate::fake_registry::FakeRegistry;
use crate::fixtures::full_event;

#[tokio::test]
async fn with_the_private_ca_and_basic_auth_values_round_trip_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("registry-ca.pem");
    let registry = FakeRegistry::spawn_https(&ca_file).await;
    assert!(registry.url.starts_with("https://"), "{}", registry.url);
    registry.require_basic_auth("sightline", "s3cret");
    let mut config = registry.config(ValueFormat::Avro);
    config.schema_registry.ca_file = Some(ca_file);
    config.schema_registry.username = Some("sightline".into());
    config.schema_registry.password = "s3cret".into();

    let writer = Codec::new(&config).unwrap();
    writer
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap();
    let value = writer.encode_event(&full_event(), SYSTEM_EVENTS).unwrap();
    // Another process reads it: it fetches the writer schema by id, over HTTPS too.
    let reader = Codec::new(&config).unwrap();
    reader.ensure_known([value.as_slice()]).await.unwrap();
    assert_eq!(reader.decode_event(&value).unwrap(), full_event());
    let id = Codec::schema_id(&value).unwrap();
    assert_eq!(registry.registrations("system-events-value"), 1);
    assert_eq!(registry.fetches(id), 1);

    // The registry's own refusal of a wrong password is reported as such.
    config.schema_registry.password = "wrong".into();
    let err = Codec::new(&config)
        .unwrap()
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CodecError::RegistryStatus { status: 401, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn without_the_ca_the_registry_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let registry = FakeRegistry::spawn_https(&dir.path().join("ca.pem")).await;
    let codec = registry.codec(ValueFormat::Avro);
    let err = codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CodecError::RegistryUnreachable { target: RegistryTarget::Subject(s), .. } if s == "system-events-value"),
        "{err}"
    );
    assert!(err.to_string().contains("certificate"), "{err}");
    assert!(
        registry.seen().is_empty(),
        "no request crossed the refused handshake"
    );
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_refused_at_construction() {
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("empty.pem");
    std::fs::write(&ca_file, "not a certificate\n").unwrap();
    let mut config = sightline_codec::CodecConfig::default();
    config.schema_registry.url = "https://127.0.0.1:8081".into();
    config.schema_registry.ca_file = Some(ca_file);
    let err = Codec::new(&config).unwrap_err();
    assert!(
        matches!(&err, CodecError::Config(m) if m.starts_with("schema_registry.ca_file:")),
        "{err}"
    );
}
