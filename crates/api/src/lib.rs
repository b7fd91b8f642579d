//! The HTTP face of sightline: ingestion, queries and operations endpoints on one axum
//! router.
//!
//! [`Node`] wires a whole embedded-defaults node (log, store, store consumer, API) from one
//! [`NodeConfig`]. [`router`] builds the whole API from an [`AppState`] (the [`Ingestor`], the [`Store`],
//! the [`EventLog`] and the Prometheus handle); [`serve`] runs it until a shutdown signal.
//! Routes are grouped by resource under [`mod@routes`], each module with its own `routes()`.
//! Every error leaves as an RFC 9457 `application/problem+json` document ([`ApiError`]);
//! every response carries the request's correlation id in `X-Request-Id`. Every handler is
//! described by a `#[utoipa::path]` annotation; [`mod@openapi`] assembles them into the
//! OpenAPI 3.1 document of exactly the routes a node serves.
//!
//! The main routes (the complete, always current list with every parameter and schema is
//! the OpenAPI document at `GET /api/openapi.json`):
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/events` | one system event |
//! | `POST /api/v1/events/batch` | JSON array or NDJSON; per-item results; `?atomic=true` |
//! | `POST /api/v1/events/webhook` | the generic webhook shape (one or many) |
//! | `POST /api/v1/metrics`, `POST /api/metrics` | metric points (one or many) |
//! | `GET /api/v1/events` | filtered, keyset-paginated query, newest first |
//! | `GET /api/v1/events/{id}` | one event |
//! | `GET /api/v1/events/analytics` | counts per group and time bucket |
//! | `GET /api/v1/metrics` | raw metric points |
//! | `GET /api/v1/metrics/live` (alias `/api/metrics/live`) | a service's newest 100 points, from the cache (store fallback) |
//! | `GET/POST /api/v1/incidents` (alias `/api/incidents`) | incidents: filtered, keyset-paginated list; manual creation |
//! | `GET/PATCH /api/v1/incidents/{id}` (alias `/api/incidents/{id}`) | one incident with its evidence; status, assignee, notes |
//! | `GET /api/v1/incidents/stats` | incidents per status |
//! | `GET /api/v1/anomalies`, `GET /api/v1/events/{id}/correlations` | detector output and correlations |
//! | `GET /api/v1/events/{id}/insight`, `GET /api/v1/insights` | per-event insights of high-severity events |
//! | `GET/POST /api/v1/silences`, `DELETE /api/v1/silences/{id}` | silences (maintenance windows) |
//! | `GET/PUT /api/v1/topology` | the service dependency graph |
//! | `GET /health`, `/ready`, `/metrics` | liveness, readiness, Prometheus |
//! | `GET /`, `GET /ui/{*path}` | the web dashboard (query nodes) |
//! | `GET /api/openapi.json` | the OpenAPI 3.1 document of this node's routes |
//! | `GET /api/docs` (assets `/api/docs/{asset}`) | the API explorer (offline, no CDN) |
//! | `POST /api/v1/auth/{login,refresh,logout,bootstrap,password}`, `GET /api/v1/auth/me` | sessions |
//! | `GET/POST /api/v1/users`, `PATCH /api/v1/users/{username}` | users (admin) |
//! | `GET/POST /api/v1/keys`, `DELETE /api/v1/keys/{id}` | API keys (admin) |
//! | `GET /api/v1/audit` | the audit trail (admin) |
//!
//! Every routed request first passes the auth guard ([`auth`]): the caller is identified
//! (JWT or API key) and checked against the route policy table
//! ([`auth::policy::POLICY`]), before any handler or body parsing runs.

pub mod auth;
mod body;
mod error;
mod headers;
pub mod live;
mod node;
pub mod openapi;
mod request_id;
pub mod routes;
mod telemetry;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use sightline_auth::Auth;
use sightline_ingest::Ingestor;
use sightline_log::EventLog;
use sightline_store::Store;

pub use error::ApiError;
pub use node::{
    CacheConfig, CacheKind, CorrelateSection, DetectSection, EventLogConfig, LogKind, Node,
    NodeConfig, NodeError, RespondSection, Role, StoreConfig, StoreKind, StreamConfig,
    TelemetryConfig, open_store,
};
pub use routes::Routes;
pub use telemetry::prometheus_builder;
pub use tls::TlsConfig;

/// Limits and transport of the HTTP layer.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Largest request body accepted on ingestion routes, in bytes (larger: 413). Account
    /// and session routes accept at most 64 KiB.
    pub max_body_bytes: usize,
    /// Seconds a request may take before it is answered with 503.
    pub request_timeout_secs: u64,
    /// Browser origins allowed to call the API cross-origin (CORS); empty: none.
    pub cors_allowed_origins: Vec<String>,
    /// HTTPS (rustls).
    pub tls: TlsConfig,
    /// Live connections (SSE and WebSocket: `/api/v1/stream`, push queries) one node
    /// serves at once; one more is answered 503.
    pub max_live_connections: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            request_timeout_secs: 30,
            cors_allowed_origins: Vec::new(),
            tls: TlsConfig::default(),
            max_live_connections: 256,
        }
    }
}

/// Everything the handlers share.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The ingestion edge.
    pub ingestor: Arc<Ingestor>,
    /// Queryable storage.
    pub store: Arc<dyn Store>,
    /// Live cache (`metrics:live:*`, …); reads fall back to the store when it is down.
    pub cache: Arc<dyn sightline_cache::Cache>,
    /// The event log (for readiness and lag figures).
    pub log: Arc<dyn EventLog>,
    /// Renders `/metrics`.
    pub prometheus: Option<PrometheusHandle>,
    /// Authentication, authorization and the audit trail.
    pub auth: Arc<Auth>,
    /// HTTP limits.
    pub config: ApiConfig,
    /// Woken when continuous-SQL definitions change, so this node's query supervisor
    /// picks them up at once rather than at its next poll.
    pub queries_changed: Arc<tokio::sync::Notify>,
    /// The node's budget of live connections (`api.max_live_connections`).
    pub live: live::LiveSlots,
    /// Becomes `true` when the node stops: long-lived responses (push queries) end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// The node's playbook engine behind the autonomous-response service: the API's
    /// approvals, dry-runs and decisions and the rule firings share its limits.
    pub responses: Arc<sightline_respond::decision::Autonomous>,
    /// Woken when trigger rules change, so this node's rules runner reloads at once.
    pub rules_changed: Arc<tokio::sync::Notify>,
    /// The root-cause analyst (`POST /api/v1/analysis/generate` runs it in this process).
    pub analyst: sightline_analyst::Analyst,
}

/// The routes a node with `role` serves: the ingestion endpoints, the query endpoints or
/// both, and always the operational, session and administration ones.
pub fn routes(role: Role) -> Routes {
    let mut api = routes::ops::routes()
        .merge(routes::auth::routes())
        .merge(routes::admin::routes());
    if role.ingests() {
        api = api
            .merge(routes::ingest::routes())
            .merge(routes::topics::ingest_routes());
    }
    if role.queries() {
        api = api
            .merge(routes::events::routes())
            .merge(routes::metrics::routes())
            .merge(routes::topics::query_routes())
            .merge(routes::queries::routes())
            .merge(routes::incidents::routes())
            .merge(routes::analysis::routes())
            .merge(routes::insights::routes())
            .merge(routes::silences::routes())
            .merge(routes::topology::routes())
            .merge(routes::rules::routes())
            .merge(routes::stream::routes())
            // Playbooks, executions, autonomous response.
            .merge(routes::responses::routes())
            .merge(routes::executions::routes())
            .merge(routes::autonomous::routes())
            .merge(routes::dashboard::routes());
    }
    // Last: the API's description, of exactly the routes above.
    let docs = routes::docs::routes(api.registered());
    api.merge(docs)
}

/// The whole API of a node with `role`: its [`routes()`] behind the auth guard, with
/// correlation ids, telemetry, timeouts, security headers and (when configured) CORS.
pub fn router(state: AppState, role: Role) -> Result<Router, String> {
    let timeout = std::time::Duration::from_secs(state.config.request_timeout_secs.max(1));
    let tls = state.config.tls.enabled();
    let cors = headers::cors(&state.config.cors_allowed_origins)?;
    let mut app = routes(role)
        .into_router()
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .route_layer(axum::middleware::from_fn(telemetry::record))
        .layer(axum::Extension(routes::responses::Responses(
            state.responses.clone(),
        )))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(axum::middleware::from_fn(move |req, next| {
            headers::security(tls, req, next)
        }))
        .layer(axum::middleware::from_fn(request_id::propagate));
    if let Some(cors) = cors {
        app = app.layer(cors);
    }
    Ok(app.with_state(state))
}

/// Serves `router` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
