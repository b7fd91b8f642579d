//! Correlation ids: taken from `X-Request-Id` (or generated as a UUIDv7), made available to
//! handlers, attached to the request's tracing span and echoed on the response.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

/// The request header carrying the correlation id.
pub(crate) const HEADER: &str = "x-request-id";

/// The correlation id of the current request.
#[derive(Clone, Debug)]
pub(crate) struct CorrelationId(pub(crate) String);

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) async fn propagate(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    req.extensions_mut().insert(CorrelationId(id.clone()));
    let span = tracing::debug_span!("request", correlation_id = %id, method = %req.method(), path = %req.uri().path());
    let mut response = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}
