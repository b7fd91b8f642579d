//! How a node encodes values, as written in its TOML file (e.g. under `[log.codec]`).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sightline_model::Secret;

/// The format new values are written in. Reading accepts both, whatever is set here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// JSON text: the default, readable with any tool, needs no registry.
    #[default]
    Json,
    /// Avro binary in the Confluent wire format, schema ids from the schema registry.
    Avro,
}

impl ValueFormat {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueFormat::Json => "json",
            ValueFormat::Avro => "avro",
        }
    }
}

impl fmt::Display for ValueFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Value encoding settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodecConfig {
    /// `json` (default) or `avro`: the format new values are written in.
    pub format: ValueFormat,
    /// The registry holding Avro schemas: used to write when `format = "avro"`, and to read
    /// any Avro value found on the log whatever the format.
    pub schema_registry: RegistryConfig,
}

impl CodecConfig {
    /// Checks values no type can rule out; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        self.schema_registry.validate()
    }
}

/// How the registry subject of a topic's values is named.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectStrategy {
    /// `<topic>-value`: Confluent's default (`TopicNameStrategy`), one schema per topic.
    #[default]
    TopicName,
}

impl SubjectStrategy {
    /// The subject under which values of `topic` register their schema. `topic` is the
    /// name on the cluster, namespace included (see [`Codec::subject`](crate::Codec::subject)).
    pub fn subject(self, topic: &str) -> String {
        match self {
            SubjectStrategy::TopicName => format!("{topic}-value"),
        }
    }
}

/// Where the schema registry is and how to talk to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, `http://` or `https://`, e.g. `https://registry.internal:8081` (a path
    /// prefix is kept).
    pub url: String,
    /// Bound on every registry request, connecting included, in milliseconds.
    pub timeout_ms: u64,
    /// How subjects are named.
    pub subject_strategy: SubjectStrategy,
    /// PEM file of CA certificates to trust besides the built-in public roots, for a
    /// registry whose certificate a private CA signed (`https://` only).
    pub ca_file: Option<PathBuf>,
    /// HTTP basic-auth user name, when the registry requires one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// HTTP basic-auth password (needs `username`); empty when there is none.
    pub password: Secret,
}

impl RegistryConfig {
    /// Defaults for the registry at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            url: url.into(),
            ..RegistryConfig::default()
        }
    }

    /// Checks the URL, the CA file and the credentials; the message names the offending
    /// key.
    pub fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("schema_registry.url '{}' is not a URL: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "schema_registry.url must use http:// or https://, not {}://",
                url.scheme()
            ));
        }
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(format!("schema_registry.url '{}' has no host", self.url));
        }
        if self.timeout_ms == 0 {
            return Err("schema_registry.timeout_ms must be at least 1".into());
        }
        if let Some(path) = &self.ca_file {
            if url.scheme() != "https" {
                return Err(
                    "schema_registry.ca_file is set but schema_registry.url uses http://".into(),
                );
            }
            let metadata = std::fs::metadata(path).map_err(|e| {
                format!(
                    "schema_registry.ca_file: cannot read {}: {e}",
                    path.display()
                )
            })?;
            if !metadata.is_file() {
                return Err(format!(
                    "schema_registry.ca_file: {} is not a file",
                    path.display()
                ));
            }
        }
        if !self.password.is_empty() && self.username.is_none() {
            return Err("schema_registry.password is set without schema_registry.username".into());
        }
        Ok(())
    }
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            url: "http://127.0.0.1:8081".into(),
            timeout_ms: 5000,
            subject_strategy: SubjectStrategy::TopicName,
            ca_file: None,
            username: None,
            password: Secret::default(),
        }
    }
}
