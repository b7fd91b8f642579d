//! A minimal Confluent schema-registry client: register a subject's schema, fetch a
//! schema by id. Nothing else of the registry's API is needed to read and write values.
//! It speaks HTTP or HTTPS (rustls; a private CA from `ca_file`), with basic auth.

use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::{RequestBuilder, StatusCode, Url};
use serde::Deserialize;
use sightline_model::Secret;

use crate::{CodecError, RegistryConfig, RegistryTarget};

/// The registry's content type, for requests and accepted answers.
pub(crate) const REGISTRY_CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Longest piece of an error body quoted in an error.
const QUOTED_BODY_CHARS: usize = 200;

/// A writer schema as the registry returns it.
#[derive(Debug, Deserialize)]
pub(crate) struct FetchedSchema {
    /// The schema text.
    pub(crate) schema: String,
    /// `AVRO` when absent; `JSON` or `PROTOBUF` for the registry's other schema types.
    #[serde(rename = "schemaType")]
    pub(crate) schema_type: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Registry {
    client: reqwest::Client,
    base: Url,
    username: Option<String>,
    password: Secret,
}

impl Registry {
    pub(crate) fn new(config: &RegistryConfig) -> Result<Self, CodecError> {
        config.validate().map_err(CodecError::Config)?;
        let base = Url::parse(&config.url).map_err(|e| CodecError::Config(e.to_string()))?;
        let timeout = Duration::from_millis(config.timeout_ms);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        if let Some(path) = &config.ca_file {
            for certificate in private_cas(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .build()
            .map_err(|e| CodecError::Config(format!("HTTP client: {e}")))?;
        Ok(Registry {
            client,
            base,
            username: config.username.clone(),
            password: config.password.clone(),
        })
    }

    /// Registers the schema in `body` (`{"schema": "..."}`) under `subject`; the registry
    /// answers with the id, the same one each time for the same schema.
    pub(crate) async fn register(
        &self,
        subject: &str,
        body: &'static [u8],
    ) -> Result<u32, CodecError> {
        #[derive(Deserialize)]
        struct Registered {
            id: u32,
        }
        let target = RegistryTarget::Subject(subject.to_owned());
        let request = self
            .client
            .post(self.url(&["subjects", subject, "versions"]))
            .header(CONTENT_TYPE, REGISTRY_CONTENT_TYPE)
            .body(body);
        let (status, bytes) = self.send(request, &target).await?;
        if !status.is_success() {
            return Err(status_error(target, status, &bytes));
        }
        serde_json::from_slice::<Registered>(&bytes)
            .map(|r| r.id)
            .map_err(|e| CodecError::RegistryResponse {
                target,
                reason: format!("expected {{\"id\": <number>}}: {e}"),
            })
    }

    /// The schema with `id`, or `None` when the registry does not have it.
    pub(crate) async fn fetch(&self, id: u32) -> Result<Option<FetchedSchema>, CodecError> {
        let target = RegistryTarget::SchemaId(id);
        let request = self
            .client
            .get(self.url(&["schemas", "ids", &id.to_string()]));
        let (status, bytes) = self.send(request, &target).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(status_error(target, status, &bytes));
        }
        serde_json::from_slice::<FetchedSchema>(&bytes)
            .map(Some)
            .map_err(|e| CodecError::RegistryResponse {
                target,
                reason: format!("expected {{\"schema\": <string>}}: {e}"),
            })
    }

    /// `base` with `segments` appended, each percent-encoded (topic names may hold any
    /// character) and any path prefix of the configured URL kept.
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        // Only URLs that cannot be a base refuse segments; validation ruled them out.
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    async fn send(
        &self,
        request: RequestBuilder,
        target: &RegistryTarget,
    ) -> Result<(StatusCode, Vec<u8>), CodecError> {
        let request = match &self.username {
            Some(user) => request.basic_auth(
                user,
                (!self.password.is_empty()).then(|| self.password.expose()),
            ),
            None => request,
        };
        let unreachable = |e: reqwest::Error| CodecError::RegistryUnreachable {
            target: target.clone(),
            reason: error_chain(&e),
        };
        let response = request
            .header(ACCEPT, REGISTRY_CONTENT_TYPE)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        Ok((status, bytes.to_vec()))
    }
}

/// The certificates of a PEM file of private CAs; refuses a file that holds none.
fn private_cas(path: &std::path::Path) -> Result<Vec<reqwest::Certificate>, CodecError> {
    let refuse = |reason: String| {
        CodecError::Config(format!(
            "schema_registry.ca_file: {}: {reason}",
            path.display()
        ))
    };
    let pem = std::fs::read(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| refuse(format!("not PEM certificates: {e}")))?;
    if certificates.is_empty() {
        return Err(refuse("holds no PEM certificate".into()));
    }
    Ok(certificates)
}

/// An error answer, with the registry's own message when it sent one.
fn status_error(target: RegistryTarget, status: StatusCode, body: &[u8]) -> CodecError {
    #[derive(Deserialize)]
    struct RegistryErrorBody {
        message: String,
    }
    let message = match serde_json::from_slice::<RegistryErrorBody>(body) {
        Ok(b) => b.message,
        Err(_) => String::from_utf8_lossy(body)
            .chars()
            .take(QUOTED_BODY_CHARS)
            .collect(),
    };
    CodecError::RegistryStatus {
        target,
        status: status.as_u16(),
        message,
    }
}

/// An error and its causes on one line: reqwest's own message alone ("error sending
/// request") hides the part an operator needs ("connection refused").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
