//! The API's own description: `GET /api/openapi.json` (OpenAPI 3.1, see
//! [`crate::openapi`]) and `GET /api/docs`, an explorer page that reads it.
//!
//! The explorer is three small files compiled into the binary (no CDN, nothing fetched at
//! build or run time), so it works on an air-gapped network and under the API's strict
//! Content Security Policy (`default-src 'self'`, no inline scripts or styles).

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;
use crate::openapi;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/openapi.json";
/// Where the explorer is served.
pub const DOCS_PATH: &str = "/api/docs";
/// The explorer's script and style sheet.
const ASSET_PATH: &str = "/api/docs/{asset}";

const PAGE: &str = include_str!("docs/explorer.html");
const SCRIPT: &str = include_str!("docs/explorer.js");
const STYLE: &str = include_str!("docs/explorer.css");

/// The documentation routes of a node that serves `served`: the document describes those
/// routes and these.
pub fn routes(served: &[(Method, &'static str)]) -> super::Routes {
    let mut all = served.to_vec();
    all.extend([
        (Method::GET, OPENAPI_PATH),
        (Method::GET, DOCS_PATH),
        (Method::GET, ASSET_PATH),
    ]);
    // Rendered once: the document only changes with the binary.
    let json: Arc<str> = match serde_json::to_string(&openapi::document(&all)) {
        Ok(json) => json.into(),
        Err(e) => unreachable!("an OpenAPI document always serializes: {e}"),
    };
    super::Routes::default()
        .get(OPENAPI_PATH, move || openapi_json(json.clone()))
        .get(DOCS_PATH, explorer)
        .get(ASSET_PATH, asset)
}

/// The OpenAPI document.
///
/// The OpenAPI 3.1 description of every route this node serves, generated from the route
/// definitions.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "docs",
    responses((status = 200, description = "The OpenAPI 3.1 document.", content_type = "application/json", body = Object)),
)]
pub(crate) async fn openapi_json(json: Arc<str>) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json.to_string(),
    )
        .into_response()
}

/// The API explorer.
///
/// An interactive page listing every operation of `/api/openapi.json`, with a form to try
/// each one.
#[utoipa::path(
    get,
    path = "/api/docs",
    tag = "docs",
    responses((status = 200, description = "The explorer page.", content_type = "text/html", body = String)),
)]
pub(crate) async fn explorer() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// The explorer's script or style sheet.
///
/// `explorer.js` or `explorer.css`.
#[utoipa::path(
    get,
    path = "/api/docs/{asset}",
    tag = "docs",
    params(("asset" = String, Path, description = "`explorer.js` or `explorer.css`.")),
    responses(
        (status = 200, description = "The asset.", content(
            (String = "text/javascript"),
            (String = "text/css"),
        )),
        (status = 404, description = "No such asset."),
    ),
)]
pub(crate) async fn asset(Path(asset): Path<String>) -> Result<Response, ApiError> {
    let (content_type, body) = match asset.as_str() {
        "explorer.js" => ("text/javascript; charset=utf-8", SCRIPT),
        "explorer.css" => ("text/css; charset=utf-8", STYLE),
        _ => return Err(ApiError::NotFound(format!("no asset named '{asset}'"))),
    };
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}
