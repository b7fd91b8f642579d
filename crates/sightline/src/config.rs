//! Loading the configuration: defaults, then a TOML file, then `SIGHTLINE_*` environment
//! variables (nested keys joined by `__`, e.g. `SIGHTLINE_LOG__SEGMENT_BYTES`), then
//! command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use sightline_api::{NodeConfig, Role};

/// Command-line values that override the file and the environment.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// `--insecure`: allow a non-loopback address without authentication.
    #[serde(skip)]
    pub insecure: bool,
}

/// Loads defaults ← `file` ← environment ← `overrides`, then validates.
pub fn load(file: Option<&Path>, overrides: Overrides) -> anyhow::Result<NodeConfig> {
    let mut figment = Figment::from(Serialized::defaults(NodeConfig::default()));
    if let Some(path) = file {
        anyhow::ensure!(
            path.exists(),
            "config file {} does not exist",
            path.display()
        );
        figment = figment.merge(Toml::file(path));
    }
    let insecure = overrides.insecure;
    // SIGHTLINE_CONFIG names the file and SIGHTLINE_API_KEY is a client credential:
    // neither is a configuration key. `*_FILE` variables are read below.
    let (from_files, file_vars) = env_files(std::env::vars())?;
    let mut config: NodeConfig = figment
        .merge(
            Env::prefixed("SIGHTLINE_")
                .split("__")
                .ignore(&["api_key", "config"])
                .filter(move |key| !file_vars.iter().any(|f| key.as_str() == f)),
        )
        .merge(Serialized::defaults(from_files))
        .merge(Serialized::defaults(overrides))
        .extract()
        .context("invalid configuration")?;
    config.auth.allow_insecure |= insecure;
    config
        .validate()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    Ok(config)
}

/// `SIGHTLINE_<KEY>_FILE=/path` sets `<KEY>` to the file's contents (trailing newline
/// removed): secrets come from mounted files instead of the environment. A variable naming
/// a setting that itself ends in `_file` (e.g. `SIGHTLINE_LOG__KAFKA__SECURITY__CA_FILE`)
/// sets that path instead. Returns the values as a nested document, and the variable names
/// (lowercased, without the prefix) so the plain environment provider skips them.
fn env_files(
    vars: impl Iterator<Item = (String, String)>,
) -> anyhow::Result<(serde_json::Value, Vec<String>)> {
    let settings = serde_json::to_value(NodeConfig::default())?;
    let mut root = serde_json::Map::new();
    let mut names = Vec::new();
    for (name, path) in vars {
        let Some(key) = name
            .strip_prefix("SIGHTLINE_")
            .and_then(|k| k.strip_suffix("_FILE"))
        else {
            continue;
        };
        let own_setting = name["SIGHTLINE_".len()..]
            .split("__")
            .try_fold(&settings, |node, part| node.get(part.to_ascii_lowercase()));
        if own_setting.is_some() {
            continue;
        }
        let value = std::fs::read_to_string(&path)
            .with_context(|| format!("{name}: cannot read {path}"))?;
        let parts: Vec<String> = key.split("__").map(str::to_ascii_lowercase).collect();
        let mut node = &mut root;
        for part in &parts[..parts.len() - 1] {
            node = node
                .entry(part.clone())
                .or_insert_with(|| serde_json::Value::Object(serde_json::Map::new()))
                .as_object_mut()
                .context("conflicting *_FILE variables")?;
        }
        node.insert(
            parts[parts.len() - 1].clone(),
            serde_json::Value::String(value.trim_end_matches(['\n', '\r']).to_owned()),
        );
        names.push(format!("{}_file", key.to_ascii_lowercase()));
    }
    Ok((serde_json::Value::Object(root), names))
}

/// The effective configuration as TOML, every default included, secrets redacted: typed
/// secrets print as `[redacted]`, and so do passwords inside URLs and any setting whose
/// name says it holds a secret (e.g. Kafka client properties).
pub fn to_toml(config: &NodeConfig) -> anyhow::Result<String> {
    let mut value = toml::Value::try_from(config)?;
    redact(&mut value, "");
    Ok(toml::to_string_pretty(&value)?)
}

fn redact(value: &mut toml::Value, key: &str) {
    const SECRET_WORDS: [&str; 4] = ["password", "secret", "token", "credential"];
    match value {
        toml::Value::Table(table) => {
            for (k, v) in table.iter_mut() {
                redact(v, k);
            }
        }
        toml::Value::Array(items) => items.iter_mut().for_each(|v| redact(v, key)),
        toml::Value::String(s) => {
            let key = key.to_ascii_lowercase();
            // Names of files and lifetimes mention secrets without holding one.
            let named_secret = SECRET_WORDS.iter().any(|w| key.contains(w))
                && !["_file", "_files", "_ttl"].iter().any(|s| key.ends_with(s));
            if named_secret && !s.is_empty() {
                *s = sightline_model::REDACTED.to_owned();
            } else if let Some(clean) = redact_url_password(s) {
                *s = clean;
            }
        }
        _ => {}
    }
}

/// `scheme://user:password@host…` with the password replaced; `None` when there is none.
fn redact_url_password(s: &str) -> Option<String> {
    let (scheme, rest) = s.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (userinfo, after) = rest[..authority_end].rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| {
        format!(
            "{scheme}://{user}:{}@{after}{}",
            sightline_model::REDACTED,
            &rest[authority_end..]
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_file_parses_and_matches_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sightline.example.toml");
        let config = load(Some(&path), Overrides::default()).expect("example config loads");
        assert_eq!(
            config,
            NodeConfig::default(),
            "the example file documents the defaults"
        );
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = to_toml(&NodeConfig::default()).expect("serializes");
        let back: NodeConfig = toml::from_str(&text).expect("parses");
        assert_eq!(back, NodeConfig::default());
    }

    #[test]
    fn config_show_redacts_secrets() {
        let mut config = NodeConfig::default();
        config.store.postgres.url =
            "postgres://app:hunter2@db:5432/sightline?sslmode=disable".into();
        config.auth.jwt.secret =
            sightline_model::Secret::new("a-very-long-signing-secret-value-123");
        config
            .log
            .kafka
            .properties
            .insert("sasl.password".into(), "kafka-pass".into());
        config.log.kafka.security.password = "scram-pass".into();
        config.log.kafka.security.key_password = "key-pass".into();
        config.log.codec.schema_registry.password = "registry-pass".into();
        let mut source = sightline_ingest::kafka_source::KafkaSourceConfig::default();
        source.security.password = "source-pass".into();
        config.sources.kafka.push(source);
        let text = to_toml(&config).expect("serializes");
        for secret in [
            "hunter2",
            "a-very-long-signing-secret",
            "kafka-pass",
            "scram-pass",
            "key-pass",
            "registry-pass",
            "source-pass",
        ] {
            assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        }
        assert!(text.contains("postgres://app:[redacted]@db:5432/sightline?sslmode=disable"));
    }

    #[test]
    fn file_variables_read_secrets_but_set_file_settings_as_they_are() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("password");
        std::fs::write(&secret, "scram-pass\n").expect("write");
        let vars = [
            (
                "SIGHTLINE_LOG__KAFKA__SECURITY__PASSWORD_FILE".to_owned(),
                secret.display().to_string(),
            ),
            (
                "SIGHTLINE_LOG__KAFKA__SECURITY__CA_FILE".to_owned(),
                "/etc/kafka/ca.pem".to_owned(),
            ),
        ];
        let (values, names) = env_files(vars.into_iter()).expect("reads");
        assert_eq!(
            values,
            serde_json::json!({"log": {"kafka": {"security": {"password": "scram-pass"}}}})
        );
        assert_eq!(names, ["log__kafka__security__password_file"]);
    }

    #[test]
    fn invalid_values_are_refused_with_their_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[log.embedded]\nsegment_bytes = 10\n").expect("write");
        let err = load(Some(&path), Overrides::default()).expect_err("refused");
        assert!(
            err.to_string().contains("log.embedded.segment_bytes"),
            "{err}"
        );
        std::fs::write(&path, "[log.embedded]\nsegmnt_bytes = 10\n").expect("write");
        let err = load(Some(&path), Overrides::default()).expect_err("refused");
        assert!(format!("{err:#}").contains("segmnt_bytes"), "{err:#}");
        // Per-event insights need a provider, and the error says which.
        std::fs::write(&path, "[analyst.insights]\nenabled = true\n").expect("write");
        let err = load(Some(&path), Overrides::default()).expect_err("refused");
        let text = format!("{err:#}");
        assert!(
            text.contains("analyst.insights.enabled") && text.contains("[analyst.llm]"),
            "{text}"
        );
    }
}
