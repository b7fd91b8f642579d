//! The web dashboard's files: `GET /` answers the single page, `GET /ui/{*path}` its
//! modules, styles and images (from `sightline-dashboard`, compiled into the binary).
//!
//! Both are public: the files hold no data, and every call the pages make goes through
//! the API's guard with the user's token. Each answer carries a strong `ETag` and
//! `Cache-Control: no-cache`, so a browser revalidates (a cheap `304`) and never runs a
//! stale module after an upgrade.

use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sightline_dashboard::Asset;

use crate::ApiError;

/// The dashboard's routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/", index)
        .get("/ui/{*path}", file)
}

/// The dashboard page.
///
/// The single page of the web dashboard; its calls to the API carry the user's token.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`."),
    ),
)]
pub(crate) async fn index(headers: HeaderMap) -> Response {
    serve(sightline_dashboard::index(), &headers)
}

/// A dashboard file.
///
/// A module, style sheet or image of the dashboard.
#[utoipa::path(
    get,
    path = "/ui/{path}",
    tag = "dashboard",
    params(("path" = String, Path, description = "The file's path under `/ui/` (may hold `/`).")),
    responses(
        (status = 200, description = "The file, with its content type.", content_type = "application/octet-stream", body = String),
        (status = 304, description = "Unchanged since the `ETag` sent in `If-None-Match`."),
        (status = 404, description = "No such file."),
    ),
)]
pub(crate) async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(sightline_dashboard::asset(&path), &headers)
}

fn serve(asset: Option<Asset>, request: &HeaderMap) -> Response {
    let Some(asset) = asset else {
        return ApiError::NotFound("no such dashboard file".into()).into_response();
    };
    let etag = HeaderValue::from_str(&asset.etag).ok();
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == asset.etag));
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let mut response = if unchanged {
        (StatusCode::NOT_MODIFIED, [cache]).into_response()
    } else {
        let content_type = HeaderValue::from_str(&asset.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream"));
        (
            [(header::CONTENT_TYPE, content_type), cache],
            asset.body.into_owned(),
        )
            .into_response()
    };
    if let Some(etag) = etag {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}
