//! A body extractor that enforces the configured size limit and answers 413 as problem+json.

use axum::extract::{FromRequest, Request};
use bytes::Bytes;

use crate::{ApiError, AppState};

/// The whole request body, at most `ApiConfig::max_body_bytes`.
pub(crate) struct LimitedBody(pub(crate) Bytes);

impl FromRequest<AppState> for LimitedBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_body_bytes;
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
            .map(LimitedBody)
            .map_err(|_| ApiError::TooLarge { limit })
    }
}
