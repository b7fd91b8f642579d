//! How a node encodes values, as written in its TOML file (e.g. under `[log.codec]`).

use std::fmt;

use serde::{Deserialize, Serialize};

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
    /// The subject under which values of `topic` register their schema.
    pub fn subject(self, topic: &str) -> String {
        match self {
            SubjectStrategy::TopicName => format!("{topic}-value"),
        }
    }
}

/// Where the schema registry is and how to talk to it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Base URL, e.g. `http://127.0.0.1:8081` (a path prefix is kept).
    pub url: String,
    /// Bound on every registry request, connecting included, in milliseconds.
    pub timeout_ms: u64,
    /// How subjects are named.
    pub subject_strategy: SubjectStrategy,
    /// HTTP basic-auth user name, when the registry requires one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// HTTP basic-auth password (needs `username`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl RegistryConfig {
    /// Defaults for the registry at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        RegistryConfig {
            url: url.into(),
            ..RegistryConfig::default()
        }
    }

    /// Checks the URL and credentials; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| format!("schema_registry.url '{}' is not a URL: {e}", self.url))?;
        // The workspace builds its HTTP client without TLS; refusing https here turns a
        // failure on every batch into one clear message at start-up.
        if url.scheme() != "http" {
            return Err(format!(
                "schema_registry.url must use http:// (this build has no TLS), not {}://",
                url.scheme()
            ));
        }
        if url.cannot_be_a_base() || url.host().is_none() {
            return Err(format!("schema_registry.url '{}' has no host", self.url));
        }
        if self.timeout_ms == 0 {
            return Err("schema_registry.timeout_ms must be at least 1".into());
        }
        if self.password.is_some() && self.username.is_none() {
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
            username: None,
            password: None,
        }
    }
}

// By hand so the password never reaches a log line.
impl fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("url", &self.url)
            .field("timeout_ms", &self.timeout_ms)
            .field("subject_strategy", &self.subject_strategy)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}
