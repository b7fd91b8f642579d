//! The service dependency graph: read it, replace it (versioned, audited).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sightline_auth::{Actor, Principal};
use sightline_model::Topology;

use super::params::reject_unknown;
use crate::auth::ClientIp;
use crate::body::{LimitedBody, parse_json};
use crate::{ApiError, AppState};

/// The topology routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/topology", get_topology)
        .put("/api/v1/topology", put_topology)
}

/// The service dependency graph.
///
/// `GET /api/v1/topology`: `{topology, version, updated_at, updated_by}`; an empty graph
/// at version 0 (with `null` times) when none was ever put.
#[utoipa::path(
    get,
    path = "/api/v1/topology",
    tag = "topology",
    responses(
        (status = 200, description = "`{topology, version, updated_at, updated_by}`.", body = Object),
    ),
)]
pub(crate) async fn get_topology(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &[])?;
    let body = match state.store.get_topology().await? {
        Some(t) => serde_json::json!({
            "topology": t.topology,
            "version": t.version,
            "updated_at": t.updated_at,
            "updated_by": t.updated_by,
        }),
        None => serde_json::json!({
            "topology": Topology::default(),
            "version": 0,
            "updated_at": null,
            "updated_by": null,
        }),
    };
    Ok(Json(body).into_response())
}

/// Replace the service dependency graph.
///
/// `PUT /api/v1/topology` with a `Topology` body (`{"services": {"db": {"depends_on": [],
/// "criticality": 2}}}`): replaces the graph; 200 with what `GET` now answers. An invalid
/// graph is a 422 naming the field.
#[utoipa::path(
    put,
    path = "/api/v1/topology",
    tag = "topology",
    request_body = sightline_model::Topology,
    responses(
        (status = 200, description = "`{topology, version, updated_at, updated_by}`.", body = Object),
        (status = 422, description = "An invalid graph; `errors` names the field."),
    ),
)]
pub(crate) async fn put_topology(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    let topology: Topology = parse_json(&body)?;
    topology.validate().map_err(ApiError::Invalid)?;
    let actor = Actor::principal(&principal, ip);
    let now = sightline_model::clock::now_ms();
    let version = state
        .store
        .put_topology(&topology, &actor.name, now)
        .await?;
    state
        .auth
        .record(
            &actor,
            "topology.put",
            Some("topology"),
            serde_json::json!({
                "version": version,
                "services": topology.services.len(),
            }),
        )
        .await;
    Ok(Json(serde_json::json!({
        "topology": topology,
        "version": version,
        "updated_at": now,
        "updated_by": actor.name,
    }))
    .into_response())
}
