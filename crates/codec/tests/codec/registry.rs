//! What the codec asks the registry, how often, and what a failing registry looks like.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use sightline_codec::{
    Codec, CodecConfig, CodecError, RecordKind, RegistryConfig, RegistryTarget, ValueFormat,
};
use sightline_model::topics::{METRICS_RAW, SYSTEM_EVENTS};

use crate::fake_registry::{CONTENT_TYPE, FakeRegistry};
use crate::fixtures::{full_event, full_metric};
use crate::schema;

#[tokio::test]
async fn registration_posts_the_schema_with_the_registry_content_type() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Avro);
    codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap();

    let seen = registry.seen();
    assert_eq!(seen.len(), 1);
    let post = &seen[0];
    assert_eq!(post.method, "POST");
    assert_eq!(post.target, "system-events-value", "topic-name strategy");
    assert_eq!(post.content_type.as_deref(), Some(CONTENT_TYPE));
    assert_eq!(post.accept.as_deref(), Some(CONTENT_TYPE));
    assert_eq!(post.authorization, None);
    let body: serde_json::Value = serde_json::from_slice(&post.body).unwrap();
    let posted = apache_avro::Schema::parse_str(body["schema"].as_str().unwrap()).unwrap();
    assert_eq!(posted, schema(RecordKind::Event));
    assert_eq!(
        body.as_object().unwrap().len(),
        1,
        "only the schema: {body}"
    );
}

#[tokio::test]
async fn each_subject_registers_once_across_many_encodes_and_concurrent_prepares() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Avro);
    let prepares = (0..32).map(|i| {
        let codec = codec.clone();
        tokio::spawn(async move {
            let (kind, topic) = if i % 2 == 0 {
                (RecordKind::Event, SYSTEM_EVENTS)
            } else {
                (RecordKind::Metric, METRICS_RAW)
            };
            codec.prepare(kind, topic).await.unwrap();
        })
    });
    for p in prepares.collect::<Vec<_>>() {
        p.await.unwrap();
    }
    for _ in 0..1_000 {
        codec
            .prepare(RecordKind::Event, SYSTEM_EVENTS)
            .await
            .unwrap();
        codec.encode_event(&full_event(), SYSTEM_EVENTS).unwrap();
        codec
            .prepare(RecordKind::Metric, METRICS_RAW)
            .await
            .unwrap();
        codec.encode_metric(&full_metric(), METRICS_RAW).unwrap();
    }
    assert_eq!(registry.registrations("system-events-value"), 1);
    assert_eq!(registry.registrations("metrics.raw-value"), 1);
    assert_eq!(registry.seen().len(), 2);
}

#[tokio::test]
async fn json_never_talks_to_the_registry() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Json);
    codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap();
    let value = codec.encode_event(&full_event(), SYSTEM_EVENTS).unwrap();
    codec.ensure_known([value.as_slice()]).await.unwrap();
    codec.decode_event(&value).unwrap();
    assert!(registry.seen().is_empty());
}

#[tokio::test]
async fn encoding_avro_before_prepare_names_the_subject() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Avro);
    let err = codec
        .encode_event(&full_event(), SYSTEM_EVENTS)
        .unwrap_err();
    assert!(
        matches!(&err, CodecError::NotPrepared { subject } if subject == "system-events-value"),
        "{err}"
    );
    // Prepared for events only: metrics on that topic are still unprepared.
    codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap();
    let err = codec
        .encode_metric(&full_metric(), SYSTEM_EVENTS)
        .unwrap_err();
    assert!(matches!(err, CodecError::NotPrepared { .. }), "{err}");
}

#[tokio::test]
async fn topic_names_are_percent_encoded_and_a_path_prefix_is_kept() {
    let registry = FakeRegistry::spawn().await;
    let config = CodecConfig {
        format: ValueFormat::Avro,
        schema_registry: RegistryConfig::new(format!("{}/prefix/registry/", registry.url)),
    };
    let codec = Codec::new(&config).unwrap();
    let topic = "odd topic/ä?#%";
    codec.prepare(RecordKind::Event, topic).await.unwrap();
    assert_eq!(registry.registrations("odd topic/ä?#%-value"), 1);
    let value = codec.encode_event(&full_event(), topic).unwrap();
    assert_eq!(codec.decode_event(&value).unwrap(), full_event());
}

#[tokio::test]
async fn subjects_follow_the_cluster_topic_names_of_a_namespace() {
    let registry = FakeRegistry::spawn().await;
    let config = registry.config(ValueFormat::Avro);
    let (a, b) = (
        Codec::with_namespace(&config, "team-a").unwrap(),
        Codec::with_namespace(&config, "team-b").unwrap(),
    );
    assert_eq!(a.subject(SYSTEM_EVENTS), "team-a.system-events-value");
    a.prepare(RecordKind::Event, SYSTEM_EVENTS).await.unwrap();
    b.prepare(RecordKind::Event, SYSTEM_EVENTS).await.unwrap();
    assert_eq!(registry.registrations("team-a.system-events-value"), 1);
    assert_eq!(registry.registrations("team-b.system-events-value"), 1);
    assert_eq!(registry.registrations("system-events-value"), 0);
    // Values are still encoded for the topic as sightline names it.
    let value = a.encode_event(&full_event(), SYSTEM_EVENTS).unwrap();
    assert_eq!(b.decode_event(&value).unwrap(), full_event());
    let err = b.encode_metric(&full_metric(), METRICS_RAW).unwrap_err();
    assert!(
        matches!(&err, CodecError::NotPrepared { subject } if subject == "team-b.metrics.raw-value"),
        "{err}"
    );
    assert_eq!(
        Codec::new(&config).unwrap().subject(SYSTEM_EVENTS),
        "system-events-value"
    );
}

#[tokio::test]
async fn basic_auth_is_sent_when_configured() {
    let registry = FakeRegistry::spawn().await;
    let mut config = registry.config(ValueFormat::Avro);
    config.schema_registry.username = Some("user".into());
    config.schema_registry.password = "pass".into();
    let codec = Codec::new(&config).unwrap();
    codec
        .prepare(RecordKind::Metric, METRICS_RAW)
        .await
        .unwrap();
    codec
        .ensure_known([crate::framed(999, &[]).as_slice()])
        .await
        .unwrap();
    let seen = registry.seen();
    assert_eq!(seen.len(), 2);
    for s in seen {
        // base64("user:pass")
        assert_eq!(
            s.authorization.as_deref(),
            Some("Basic dXNlcjpwYXNz"),
            "{s:?}"
        );
    }
}

#[tokio::test]
async fn a_registry_500_is_a_retryable_error_and_the_next_prepare_retries() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Avro);
    registry.fail_with(Some(StatusCode::INTERNAL_SERVER_ERROR));
    let err = codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap_err();
    match &err {
        CodecError::RegistryStatus {
            target,
            status,
            message,
        } => {
            assert_eq!(
                *target,
                RegistryTarget::Subject("system-events-value".into())
            );
            assert_eq!(*status, 500);
            assert_eq!(message, "injected failure", "the registry's own message");
        }
        other => panic!("unexpected {other}"),
    }
    assert!(err.is_retryable());
    assert!(err.to_string().contains("system-events-value"), "{err}");
    assert!(matches!(
        codec.encode_event(&full_event(), SYSTEM_EVENTS),
        Err(CodecError::NotPrepared { .. })
    ));

    registry.fail_with(None);
    codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap();
    codec.encode_event(&full_event(), SYSTEM_EVENTS).unwrap();
    assert_eq!(registry.registrations("system-events-value"), 2);
}

#[tokio::test]
async fn a_registry_refusal_is_not_retryable() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Avro);
    registry.fail_with(Some(StatusCode::CONFLICT));
    let err = codec
        .prepare(RecordKind::Metric, METRICS_RAW)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CodecError::RegistryStatus { status: 409, .. }),
        "{err}"
    );
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn an_unusable_answer_is_a_registry_response_error() {
    let registry = FakeRegistry::spawn().await;
    let codec = registry.codec(ValueFormat::Avro);
    registry.answer_garbage(Some("<html>proxy login</html>"));
    let err = codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap_err();
    assert!(matches!(err, CodecError::RegistryResponse { .. }), "{err}");
    let err = codec
        .ensure_known([crate::framed(5, &[]).as_slice()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::RegistryResponse {
                target: RegistryTarget::SchemaId(5),
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_registry_is_a_retryable_error_not_a_panic() {
    // A port that was just free: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = CodecConfig {
        format: ValueFormat::Avro,
        schema_registry: RegistryConfig::new(format!("http://127.0.0.1:{port}")),
    };
    let codec = Codec::new(&config).unwrap();
    let err = codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, CodecError::RegistryUnreachable { target: RegistryTarget::Subject(s), .. } if s == "system-events-value"),
        "{err}"
    );
    assert!(err.is_retryable());
    let err = codec
        .ensure_known([crate::framed(3, &[]).as_slice()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            CodecError::RegistryUnreachable {
                target: RegistryTarget::SchemaId(3),
                ..
            }
        ),
        "{err}"
    );
    // JSON still reads while the registry is down.
    let json = serde_json::to_vec(&full_event()).unwrap();
    codec.ensure_known([json.as_slice()]).await.unwrap();
    assert_eq!(codec.decode_event(&json).unwrap(), full_event());
}

#[tokio::test]
async fn a_slow_registry_times_out() {
    let registry = FakeRegistry::spawn().await;
    registry.delay(Some(Duration::from_secs(5)));
    let mut config = registry.config(ValueFormat::Avro);
    config.schema_registry.timeout_ms = 200;
    let codec = Codec::new(&config).unwrap();
    let started = Instant::now();
    let err = codec
        .prepare(RecordKind::Event, SYSTEM_EVENTS)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CodecError::RegistryUnreachable { .. }),
        "{err}"
    );
    assert!(err.is_retryable());
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "bounded by timeout_ms"
    );
}
