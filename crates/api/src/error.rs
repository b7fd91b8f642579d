//! One error type for every handler, rendered as RFC 9457 problem details.
//!
//! Internals (database messages, file paths) are logged once here and never sent to the
//! client; what the client gets says what *it* can do about the problem.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sightline_auth::AuthError;
use sightline_ingest::{BatchReport, IngestError, ItemOutcome};
use sightline_model::ValidationError;

/// An error answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON or not the expected shape (400).
    #[error("{0}")]
    Malformed(ValidationError),
    /// A query parameter is invalid (400).
    #[error("{0}")]
    BadParameter(ValidationError),
    /// A field of the body is well-formed but not acceptable (422), with which and why.
    #[error("{0}")]
    Invalid(ValidationError),
    /// Items failed validation (422), each with its index, field and reason.
    #[error("{} item(s) rejected", .0.rejected)]
    Rejected(BatchReport),
    /// Nothing there (404).
    #[error("{0}")]
    NotFound(String),
    /// Body larger than allowed (413).
    #[error("request body exceeds {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Backpressure: retry after the given seconds (503).
    #[error("{reason}")]
    Unavailable {
        /// Why.
        reason: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Authentication or authorization refused the request (401, 403, 429), or an account
    /// change is invalid (400), conflicting (409) or about nothing (404).
    #[error("{0}")]
    Auth(#[from] sightline_auth::AuthError),
    /// A SQL statement that does not compile (400), with where and why.
    #[error("{0}")]
    Sql(sightline_stream::sql::SqlError),
    /// The request conflicts with what exists (409), e.g. a name that is taken.
    #[error("{0}")]
    Conflict(String),
    /// Something that existed is gone for good (410), e.g. an expired approval token.
    #[error("{0}")]
    Gone(String),
    /// A fault on our side (500); the details go to the log only.
    #[error("internal error")]
    Internal(String),
}

/// The body of every error answer (`application/problem+json`, RFC 9457).
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct Problem<'a> {
    /// A URI naming the kind of problem, e.g. `https://sightline.dev/problems/not-found`.
    #[serde(rename = "type")]
    kind: String,
    /// A short summary of the kind of problem.
    title: &'a str,
    /// The HTTP status code.
    status: u16,
    /// What went wrong with this request, and what the caller can do about it.
    detail: String,
    /// The invalid fields or batch items, when the problem is about input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<ItemError>,
    /// The correlation id of a rejected batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<String>,
    /// For SQL errors: 1-based line of the offending token.
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    /// For SQL errors: 1-based column of the offending token.
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u64>,
}

/// One invalid item or field, as listed in a problem document.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct ItemError {
    /// Index of the item in a batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    /// JSON path of the offending field (`$` for the document itself).
    field: String,
    /// Why it was refused.
    reason: String,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Malformed(_) => (
                StatusCode::BAD_REQUEST,
                "malformed-body",
                "Malformed request body",
            ),
            ApiError::BadParameter(_) => (
                StatusCode::BAD_REQUEST,
                "invalid-parameter",
                "Invalid query parameter",
            ),
            ApiError::Invalid(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
            ),
            ApiError::Rejected(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation-failed",
                "Validation failed",
            ),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::TooLarge { .. } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
            ),
            ApiError::Unavailable { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "Service overloaded",
            ),
            ApiError::Auth(e) => match e {
                AuthError::Unauthenticated(_) => (
                    StatusCode::UNAUTHORIZED,
                    "unauthenticated",
                    "Authentication required",
                ),
                AuthError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Forbidden"),
                AuthError::Throttled { .. } => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "too-many-requests",
                    "Too many requests",
                ),
                AuthError::Invalid(_) => (
                    StatusCode::BAD_REQUEST,
                    "invalid-request",
                    "Invalid request",
                ),
                AuthError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
                AuthError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
                AuthError::Config(_) | AuthError::Store(_) => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal error",
                ),
            },
            ApiError::Sql(_) => (StatusCode::BAD_REQUEST, "invalid-sql", "Invalid SQL"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::Gone(_) => (StatusCode::GONE, "gone", "Gone"),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.parts();
        let mut errors = Vec::new();
        let mut correlation_id = None;
        let location = match &self {
            ApiError::Sql(e) => Some((e.line, e.column)),
            _ => None,
        };
        let detail = match &self {
            ApiError::Malformed(e) | ApiError::BadParameter(e) | ApiError::Invalid(e) => {
                errors.push(ItemError {
                    index: None,
                    field: e.field.clone(),
                    reason: e.reason.clone(),
                });
                e.to_string()
            }
            ApiError::Rejected(report) => {
                correlation_id = Some(report.correlation_id.clone());
                errors.extend(report.results.iter().filter_map(|r| match r {
                    ItemOutcome::Rejected { index, error } => Some(ItemError {
                        index: Some(*index),
                        field: error.field.clone(),
                        reason: error.reason.clone(),
                    }),
                    ItemOutcome::Accepted { .. } => None,
                }));
                match (report.results.len(), errors.first()) {
                    (1, Some(e)) => format!("{}: {}", e.field, e.reason),
                    (n, _) => format!(
                        "{} of {n} items are invalid; nothing was stored",
                        report.rejected
                    ),
                }
            }
            ApiError::Internal(msg) => {
                tracing::error!(error = %msg, "request failed");
                "the server could not complete the request; see its log".to_owned()
            }
            // Say little to a caller who failed to authenticate; the reason goes to the log.
            ApiError::Auth(AuthError::Unauthenticated(reason)) => {
                tracing::debug!(%reason, "request refused: unauthenticated");
                "missing, invalid or expired credentials".to_owned()
            }
            ApiError::Auth(AuthError::Forbidden(reason)) => reason.clone(),
            ApiError::Auth(AuthError::Invalid(e)) => {
                errors.push(ItemError {
                    index: None,
                    field: e.field.clone(),
                    reason: e.reason.clone(),
                });
                e.to_string()
            }
            ApiError::Auth(AuthError::Throttled { reason, .. }) => reason.clone(),
            ApiError::Auth(AuthError::Conflict(what) | AuthError::NotFound(what)) => what.clone(),
            ApiError::Auth(e @ (AuthError::Config(_) | AuthError::Store(_))) => {
                tracing::error!(error = %e, "request failed");
                "the server could not complete the request; see its log".to_owned()
            }
            other => other.to_string(),
        };
        let problem = Problem {
            kind: format!("https://sightline.dev/problems/{slug}"),
            title,
            status: status.as_u16(),
            detail,
            errors,
            correlation_id,
            line: location.map(|(line, _)| line),
            column: location.map(|(_, column)| column),
        };
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        let headers = response.headers_mut();
        match self {
            ApiError::Unavailable { retry_after, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::Auth(AuthError::Throttled { retry_after, .. }) => {
                let secs = sightline_auth::retry_after_secs(retry_after).max(1);
                headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            ApiError::Auth(AuthError::Unauthenticated(_)) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"sightline\""),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<IngestError> for ApiError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::Malformed(v) => ApiError::Malformed(v),
            IngestError::Rejected(report) => ApiError::Rejected(report),
            IngestError::TooManyItems { items, limit } => {
                ApiError::Malformed(ValidationError::new(
                    "$",
                    format!("batch of {items} items exceeds the limit of {limit}"),
                ))
            }
            IngestError::UnknownTopic(topic) => {
                ApiError::NotFound(format!("no topic named '{topic}'"))
            }
            IngestError::Overloaded => ApiError::Unavailable {
                reason: "too many ingestion requests in flight; retry shortly".into(),
                retry_after: 1,
            },
            IngestError::Log(e) => {
                tracing::error!(error = %e, "append failed");
                ApiError::Unavailable {
                    reason: "the event log is unavailable".into(),
                    retry_after: 5,
                }
            }
            IngestError::Codec(e) if e.is_retryable() => {
                tracing::error!(error = %e, "encoding records failed");
                ApiError::Unavailable {
                    reason: "the schema registry is unavailable".into(),
                    retry_after: 5,
                }
            }
            IngestError::Codec(e) => ApiError::Internal(format!("encoding records: {e}")),
        }
    }
}

impl From<sightline_store::StoreError> for ApiError {
    fn from(e: sightline_store::StoreError) -> Self {
        match e {
            sightline_store::StoreError::InvalidCursor(c) => {
                ApiError::BadParameter(ValidationError::new(
                    "cursor",
                    format!("'{c}' is not a cursor this server issued"),
                ))
            }
            sightline_store::StoreError::Conflict(what) => ApiError::Conflict(what),
            sightline_store::StoreError::NotFound(what) => {
                ApiError::NotFound(format!("{what} not found"))
            }
            sightline_store::StoreError::InvalidTransition { id, from, to } => {
                ApiError::Conflict(format!(
                    "incident '{id}' cannot go from {from} to {to}: allowed are open → \
                     acknowledged, open → resolved, acknowledged → resolved and resolved → open"
                ))
            }
            sightline_store::StoreError::InvalidData(reason) => {
                ApiError::Invalid(ValidationError::new("$", reason))
            }
            sightline_store::StoreError::InvalidQuery(reason) => {
                ApiError::BadParameter(ValidationError::new("query", reason))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}
