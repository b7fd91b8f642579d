//! The one error type of this crate.

use std::fmt;

/// What a registry request was about: the subject registered, or the schema id fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RegistryTarget {
    /// Registering the schema of a subject (`POST /subjects/{subject}/versions`).
    Subject(String),
    /// Fetching a writer schema by id (`GET /schemas/ids/{id}`).
    SchemaId(u32),
}

impl fmt::Display for RegistryTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegistryTarget::Subject(s) => write!(f, "subject '{s}'"),
            RegistryTarget::SchemaId(id) => write!(f, "schema id {id}"),
        }
    }
}

/// Why a value could not be encoded or decoded, or a schema not registered or fetched.
///
/// [`is_retryable`](Self::is_retryable) separates what may succeed later (registry down:
/// keep the batch and try again) from what never will (a bad value: count it and move on).
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The configuration cannot work (bad registry URL, credentials without a user name).
    #[error("invalid codec configuration: {0}")]
    Config(String),

    /// The registry could not be reached, or did not answer in time.
    #[error("schema registry unreachable ({target}): {reason}")]
    RegistryUnreachable {
        /// What the request was about.
        target: RegistryTarget,
        /// The transport error.
        reason: String,
    },

    /// The registry answered with an error status.
    #[error("schema registry refused ({target}): HTTP {status}: {message}")]
    RegistryStatus {
        /// What the request was about.
        target: RegistryTarget,
        /// The HTTP status code.
        status: u16,
        /// The registry's `message`, or the start of its body.
        message: String,
    },

    /// The registry answered 2xx with a body this client cannot use.
    #[error("schema registry answered ({target}) with an unusable body: {reason}")]
    RegistryResponse {
        /// What the request was about.
        target: RegistryTarget,
        /// What is wrong with the body.
        reason: String,
    },

    /// Values for this topic are to be written in Avro, but its schema was not registered:
    /// call [`Codec::prepare`](crate::Codec::prepare) first.
    #[error("no schema registered for subject '{subject}': call Codec::prepare before encoding")]
    NotPrepared {
        /// The subject that needs registering.
        subject: String,
    },

    /// An Avro value names a schema id that is not known here: the registry does not have
    /// it, or it was not fetched (see [`Codec::ensure_known`](crate::Codec::ensure_known))
    /// before decoding.
    #[error("unknown schema id {id}: not in the registry, or not fetched before decoding")]
    UnknownSchemaId {
        /// The id from the value's header.
        id: u32,
    },

    /// The registry's schema for this id cannot decode values here (not Avro, does not
    /// parse, or describes another record).
    #[error("schema id {id} cannot be used to read this value: {reason}")]
    UnsupportedSchema {
        /// The writer schema id.
        id: u32,
        /// Why it cannot be used.
        reason: String,
    },

    /// The bytes are neither a JSON object nor a Confluent-framed Avro datum.
    #[error("malformed value at byte {offset}: {reason}")]
    Malformed {
        /// Offset of the first byte that does not fit.
        offset: usize,
        /// What was expected there.
        reason: String,
    },

    /// The Avro datum does not decode with its writer schema, or does not resolve to
    /// the record read here.
    #[error("Avro value (schema id {id}) does not decode{}: {reason}", field_suffix(.field))]
    AvroDecode {
        /// The writer schema id.
        id: u32,
        /// The field at fault, when it can be told.
        field: Option<String>,
        /// What went wrong.
        reason: String,
    },

    /// A record could not be written with the embedded schema (a mismatch between the
    /// schema file and the Rust type; the tests rule it out).
    #[error("Avro value does not encode{}: {reason}", field_suffix(.field))]
    AvroEncode {
        /// The field at fault, when it can be told.
        field: Option<String>,
        /// What went wrong.
        reason: String,
    },

    /// A JSON value did not decode into the record (or, never in practice, encode).
    #[error("JSON value: {0}")]
    Json(#[from] serde_json::Error),
}

fn field_suffix(field: &Option<String>) -> String {
    field
        .as_ref()
        .map_or_else(String::new, |f| format!(" at field '{f}'"))
}

impl CodecError {
    /// True when the same call may succeed later without anything changing in the value:
    /// the registry was unreachable, overloaded (HTTP 429) or failing (HTTP 5xx).
    pub fn is_retryable(&self) -> bool {
        match self {
            CodecError::RegistryUnreachable { .. } => true,
            CodecError::RegistryStatus { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }
}
