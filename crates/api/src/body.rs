//! Body extractors that enforce size limits (answering 413 as problem+json) and the JSON
//! parser the account routes share.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;

use crate::{ApiError, AppState};

/// The whole request body, at most `ApiConfig::max_body_bytes`.
pub(crate) struct LimitedBody(pub(crate) Bytes);

/// The whole request body, at most 64 KiB: for account and session routes, whose bodies
/// are a few fields (a large body there is an attack, not a use).
pub(crate) struct SmallBody(pub(crate) Bytes);

/// Limit of [`SmallBody`].
pub(crate) const SMALL_BODY_BYTES: usize = 64 * 1024;

impl FromRequest<AppState> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_limited(req, state.config.max_body_bytes)
            .await
            .map(LimitedBody)
    }
}

impl FromRequest<AppState> for SmallBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = SMALL_BODY_BYTES.min(state.config.max_body_bytes);
        read_limited(req, limit).await.map(SmallBody)
    }
}

/// Reads at most `limit` bytes; a larger declared or actual body is a 413.
async fn read_limited(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::TooLarge { limit });
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|_| ApiError::TooLarge { limit })
}

/// Parses a JSON body into `T`, naming the offending field on failure (400).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let fail = |field: String, reason: String| {
        ApiError::Malformed(sightline_model::ValidationError::new(field, reason))
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." { "$".to_owned() } else { path };
        fail(field, e.into_inner().to_string())
    })?;
    de.end()
        .map_err(|e| fail("$".to_owned(), format!("trailing data: {e}")))?;
    Ok(value)
}
