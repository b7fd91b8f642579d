//! The configuration as a node's TOML file holds it.

use serde::Deserialize;
use sightline_codec::{CodecConfig, RegistryConfig, SubjectStrategy, ValueFormat};

/// Stands for the node's config tree: the codec sits at `[log.codec]`.
#[derive(Debug, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Node {
    log: Log,
}

#[derive(Debug, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
struct Log {
    codec: CodecConfig,
}

#[test]
fn defaults_are_json_and_a_local_registry() {
    let c = CodecConfig::default();
    assert_eq!(c.format, ValueFormat::Json);
    assert_eq!(c.schema_registry.url, "http://127.0.0.1:8081");
    assert_eq!(
        c.schema_registry.subject_strategy,
        SubjectStrategy::TopicName
    );
    assert_eq!(
        c.schema_registry.subject_strategy.subject("metrics.raw"),
        "metrics.raw-value"
    );
    assert_eq!(c.validate(), Ok(()));
    let empty: Node = toml::from_str("").unwrap();
    assert_eq!(empty.log.codec, c);
}

#[test]
fn a_log_codec_table_parses() {
    let node: Node = toml::from_str(
        r#"
        [log.codec]
        format = "avro"

        [log.codec.schema_registry]
        url = "http://registry.internal:8081/base"
        timeout_ms = 750
        subject_strategy = "topic_name"
        username = "sightline"
        password = "s3cret"
        "#,
    )
    .unwrap();
    assert_eq!(
        node.log.codec,
        CodecConfig {
            format: ValueFormat::Avro,
            schema_registry: RegistryConfig {
                url: "http://registry.internal:8081/base".into(),
                timeout_ms: 750,
                subject_strategy: SubjectStrategy::TopicName,
                ca_file: None,
                username: Some("sightline".into()),
                password: "s3cret".into(),
            },
        }
    );
    assert_eq!(node.log.codec.validate(), Ok(()));
}

#[test]
fn defaults_round_trip_through_toml() {
    let node = Node::default();
    let text = toml::to_string_pretty(&node).unwrap();
    assert_eq!(toml::from_str::<Node>(&text).unwrap(), node);
}

#[test]
fn unknown_keys_and_formats_are_refused() {
    for text in [
        "[log.codec]\nformt = \"avro\"",
        "[log.codec]\nformat = \"AVRO\"",
        "[log.codec]\nformat = \"protobuf\"",
        "[log.codec.schema_registry]\nurll = \"http://x\"",
        "[log.codec.schema_registry]\nsubject_strategy = \"record_name\"",
    ] {
        assert!(toml::from_str::<Node>(text).is_err(), "accepted: {text}");
    }
}

#[test]
fn validation_names_the_key_at_fault() {
    let with = |edit: fn(&mut RegistryConfig)| {
        let mut c = CodecConfig::default();
        edit(&mut c.schema_registry);
        c.validate().unwrap_err()
    };
    assert!(with(|r| r.url = "not a url".into()).contains("schema_registry.url"));
    assert!(with(|r| r.url = "ftp://registry:8081".into()).contains("https://"));
    assert!(with(|r| r.timeout_ms = 0).contains("schema_registry.timeout_ms"));
    assert!(with(|r| r.password = "p".into()).contains("schema_registry.username"));
    // A CA file only makes sense for https, and it must be readable.
    assert!(
        with(|r| r.ca_file = Some("/etc/hostname".into()))
            .starts_with("schema_registry.ca_file is set but schema_registry.url uses http://")
    );
    let mut https = RegistryConfig::new("https://registry:8081");
    assert_eq!(https.validate(), Ok(()));
    https.ca_file = Some(std::env::temp_dir().join(format!("no-ca-{}.pem", std::process::id())));
    let err = https.validate().unwrap_err();
    assert!(
        err.starts_with("schema_registry.ca_file: cannot read"),
        "{err}"
    );
    let err = sightline_codec::Codec::new(&CodecConfig {
        schema_registry: RegistryConfig::new("ftp://x"),
        ..CodecConfig::default()
    })
    .unwrap_err();
    assert!(
        matches!(err, sightline_codec::CodecError::Config(_)),
        "{err}"
    );
}

#[test]
fn debug_and_serialized_output_hide_the_password() {
    let c = RegistryConfig {
        username: Some("sightline".into()),
        password: "s3cret".into(),
        ..RegistryConfig::default()
    };
    let text = format!("{c:?}");
    assert!(
        !text.contains("s3cret") && text.contains("[redacted]"),
        "{text}"
    );
    let serialized = toml::to_string(&c).unwrap();
    assert!(
        !serialized.contains("s3cret") && serialized.contains("[redacted]"),
        "{serialized}"
    );
    assert_eq!(c.password.expose(), "s3cret");
}
