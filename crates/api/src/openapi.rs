//! The OpenAPI 3.1 description of the HTTP API, generated from the handlers' own
//! `#[utoipa::path]` annotations so that it is written next to the code it describes.
//!
//! [`ApiDoc`] collects the annotated operations and the schemas; [`document`] then fits it
//! to the routes a node really serves:
//!
//! - the `/api/…` aliases of `/api/v1/…` routes are copies of the `/api/v1` operation (one
//!   handler serves both, so one annotation describes both; copying the finished path item
//!   keeps the two from drifting apart, where a second annotation per alias would not),
//! - operations the node does not serve (another role's routes) are left out,
//! - each operation's security requirement comes from the route policy table
//!   ([`crate::auth::policy`]), the same table the guard enforces, so the document cannot
//!   claim a route is public when it is not,
//! - every error response carries the RFC 9457 problem document ([`crate::ApiError`]).

use axum::http::Method;
use sightline_auth::Access;
use sightline_model::Role;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};

use crate::error::{ItemError, Problem};
use crate::routes;

/// Name of the bearer security scheme (a session JWT, or an API key as `Bearer slk_…`).
pub const BEARER: &str = "bearer";
/// Name of the `X-API-Key` security scheme.
pub const API_KEY: &str = "api_key";
/// Content type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// Name of the shared error response component.
const PROBLEM_RESPONSE: &str = "Problem";

/// Every documented operation and the schemas they use.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "sightline",
        version = env!("CARGO_PKG_VERSION"),
        description = "The sightline HTTP API: ingestion of events and metrics, queries, \
            incidents, root-cause analyses, playbooks and their runs, trigger rules, \
            continuous SQL, live streams, sessions and administration. Every error is an \
            RFC 9457 problem document (`application/problem+json`); every answer carries the \
            request's correlation id in `X-Request-Id`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        routes::ops::health,
        routes::ops::ready,
        routes::ops::prometheus,
        routes::docs::openapi_json,
        routes::docs::explorer,
        routes::docs::asset,
        routes::dashboard::index,
        routes::dashboard::file,
        routes::auth::login,
        routes::auth::refresh,
        routes::auth::logout,
        routes::auth::bootstrap,
        routes::auth::me,
        routes::auth::change_password,
        routes::admin::list_users,
        routes::admin::create_user,
        routes::admin::update_user,
        routes::admin::list_keys,
        routes::admin::create_key,
        routes::admin::revoke_key,
        routes::admin::audit,
        routes::ingest::single_event,
        routes::ingest::batch,
        routes::ingest::webhook,
        routes::ingest::metric_points,
        routes::topics::append,
        routes::topics::list,
        routes::events::list,
        routes::events::analytics,
        routes::events::by_id,
        routes::metrics::list,
        routes::metrics::live,
        routes::metrics::aggregated,
        routes::metrics::event_counts,
        routes::queries::create,
        routes::queries::list,
        routes::queries::get_one,
        routes::queries::drop_one,
        routes::queries::changes,
        routes::queries::pull,
        routes::stream::stream,
        routes::incidents::list,
        routes::incidents::create,
        routes::incidents::stats,
        routes::incidents::get_one,
        routes::incidents::update,
        routes::incidents::anomalies,
        routes::incidents::event_correlations,
        routes::analysis::get_one,
        routes::analysis::generate,
        routes::analysis::feedback,
        routes::insights::by_event,
        routes::insights::list,
        routes::silences::list,
        routes::silences::create,
        routes::silences::expire,
        routes::topology::get_topology,
        routes::topology::put_topology,
        routes::responses::create,
        routes::responses::list,
        routes::responses::get_one,
        routes::responses::replace,
        routes::responses::remove,
        routes::responses::dry_run,
        routes::executions::list,
        routes::executions::get_one,
        routes::executions::approve,
        routes::executions::reject,
        routes::autonomous::analyze,
        routes::autonomous::execute,
        routes::autonomous::decisions,
        routes::autonomous::feedback,
        routes::rules::list,
        routes::rules::create,
        routes::rules::get,
        routes::rules::replace,
        routes::rules::delete,
        routes::rules::backtest,
    ),
    components(schemas(Problem<'_>, ItemError)),
    tags(
        (name = "ops", description = "Liveness, readiness and Prometheus metrics."),
        (name = "docs", description = "This document and its explorer."),
        (name = "dashboard", description = "The web dashboard's page and files."),
        (name = "auth", description = "Sessions: login, refresh, logout, the first admin."),
        (name = "admin", description = "Users, API keys and the audit trail."),
        (name = "ingest", description = "Events and metric points in; 202 once durable."),
        (name = "topics", description = "Records appended to named topics."),
        (name = "events", description = "Stored events: search, lookup, analytics."),
        (name = "metrics", description = "Metric points, live points and rollups."),
        (name = "queries", description = "Continuous SQL: streams, queries, pull queries."),
        (name = "stream", description = "The live pipeline over SSE or WebSocket."),
        (name = "incidents", description = "Incidents, anomalies and correlations."),
        (name = "analysis", description = "Root-cause analyses of incidents."),
        (name = "insights", description = "Per-event insights of high-severity events."),
        (name = "silences", description = "Maintenance windows that mute incidents."),
        (name = "topology", description = "The service dependency graph."),
        (name = "responses", description = "Playbooks (response templates) and dry runs."),
        (name = "executions", description = "Playbook runs and their approvals."),
        (name = "autonomous", description = "Autonomous response decisions."),
        (name = "rules", description = "Trigger rules and their backtests."),
    ),
)]
pub struct ApiDoc;

/// The document for a node serving exactly `served` (method, path) routes: aliases filled
/// in, unserved operations removed, security and error bodies set (see the module doc).
pub fn document(served: &[(Method, &'static str)]) -> utoipa::openapi::OpenApi {
    // (method, path as OpenAPI writes it, route as registered)
    let served: Vec<(Method, String, &'static str)> = served
        .iter()
        .map(|(method, route)| (method.clone(), openapi_path(route), *route))
        .collect();
    let route_of = |method: &Method, path: &str| {
        served
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .map(|(_, _, route)| *route)
    };
    let mut doc = ApiDoc::openapi();
    add_components(&mut doc);
    qualify_operation_ids(&mut doc);
    add_aliases(&mut doc, &served);
    doc.paths.paths.retain(|path, item| {
        for (method, op) in operations_mut(item) {
            if route_of(&method, path).is_none() {
                *op = None;
            }
        }
        operations_mut(item).iter().any(|(_, op)| op.is_some())
    });
    for (path, item) in &mut doc.paths.paths {
        for (method, op) in operations_mut(item) {
            if let Some(op) = op {
                let access = route_of(&method, path)
                    .and_then(|route| crate::auth::policy::access(&method, route));
                secure(op, access);
                problem_bodies(op);
            }
        }
    }
    doc
}

/// `route` as an OpenAPI path: axum's catch-all `{*rest}` becomes the parameter `{rest}`
/// (OpenAPI has no catch-all; the operation says the value may hold `/`).
pub fn openapi_path(route: &str) -> String {
    route.replace("{*", "{")
}

/// The security schemes and the shared error response.
fn add_components(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A session token from `POST /api/v1/auth/login`, or an API key \
                     (`slk_…`). Requirements list the least role (users) or the scope (keys) \
                     the route needs.",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key (`slk_…`); requirements list the scope the route needs.",
        ))),
    );
    components.responses.insert(
        PROBLEM_RESPONSE.to_owned(),
        RefOr::T(
            ResponseBuilder::new()
                .description("An RFC 9457 problem document saying what went wrong.")
                .content(PROBLEM_JSON, problem_content())
                .build(),
        ),
    );
}

fn problem_content() -> Content {
    Content::new(Some(Ref::from_schema_name("Problem")))
}

/// Prefixes each operation id (the handler's name: `list`, `get_one`, …) with its tag, so
/// ids are unique across resources (`incidents_list`, `silences_list`).
fn qualify_operation_ids(doc: &mut utoipa::openapi::OpenApi) {
    for item in doc.paths.paths.values_mut() {
        for (_, op) in operations_mut(item) {
            if let Some(op) = op {
                let tag = op.tags.as_ref().and_then(|t| t.first()).cloned();
                if let (Some(tag), Some(id)) = (tag, op.operation_id.as_mut()) {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
}

/// Adds, for every served `/api/X` route that has no operation of its own, a copy of the
/// `/api/v1/X` operation (same handler, see `routes`), with its own operation id.
fn add_aliases(doc: &mut utoipa::openapi::OpenApi, served: &[(Method, String, &'static str)]) {
    for (method, path, _) in served {
        let Some(rest) = path.strip_prefix("/api/") else {
            continue;
        };
        let documented = |doc: &utoipa::openapi::OpenApi, p: &str| {
            doc.paths
                .paths
                .get(p)
                .and_then(|item| operation(item, method))
                .cloned()
        };
        if documented(doc, path.as_str()).is_some() {
            continue;
        }
        let canonical = format!("/api/v1/{rest}");
        let Some(mut op) = documented(doc, &canonical) else {
            continue;
        };
        op.operation_id = op.operation_id.map(|id| format!("{id}_alias"));
        op.description = Some(format!(
            "Alias of `{method} {canonical}`.\n\n{}",
            op.description.unwrap_or_default()
        ));
        let item = doc.paths.paths.entry(path.clone()).or_default();
        if let Some((_, slot)) = operations_mut(item).into_iter().find(|(m, _)| m == method) {
            *slot = Some(op);
        }
    }
}

/// The operation of `item` for `method`.
fn operation<'a>(item: &'a PathItem, method: &Method) -> Option<&'a Operation> {
    match *method {
        Method::GET => item.get.as_ref(),
        Method::POST => item.post.as_ref(),
        Method::PUT => item.put.as_ref(),
        Method::PATCH => item.patch.as_ref(),
        Method::DELETE => item.delete.as_ref(),
        _ => None,
    }
}

/// The operation slots of `item` by method (the methods routes may use).
fn operations_mut(item: &mut PathItem) -> [(Method, &mut Option<Operation>); 5] {
    [
        (Method::GET, &mut item.get),
        (Method::POST, &mut item.post),
        (Method::PUT, &mut item.put),
        (Method::PATCH, &mut item.patch),
        (Method::DELETE, &mut item.delete),
    ]
}

/// Sets `op`'s security from the policy entry `access`, and adds the 401/403 answers of
/// guarded routes. OpenAPI 3.1 lets a requirement list role names for non-OAuth schemes:
/// they name the least user role, or the key scope, that passes.
fn secure(op: &mut Operation, access: Option<Access>) {
    let scope = |s: sightline_model::Scope| s.as_str().to_owned();
    let requirements = match access {
        Some(Access::Public) => {
            op.security = None;
            return;
        }
        // No entry: the guard refuses the route to everyone; say it needs an admin.
        None => vec![SecurityRequirement::new(BEARER, [Role::Admin.as_str()])],
        Some(Access::Role(role)) if role == Role::Viewer => vec![
            SecurityRequirement::new(BEARER, [role.as_str()]),
            SecurityRequirement::new(API_KEY, ["read"]),
        ],
        Some(Access::Role(role)) => vec![SecurityRequirement::new(BEARER, [role.as_str()])],
        Some(Access::Ingest(s)) => vec![
            SecurityRequirement::new(BEARER, [Role::Engineer.as_str().to_owned(), scope(s)]),
            SecurityRequirement::new(API_KEY, [scope(s)]),
        ],
        // Anonymous deliveries pass when webhook signing is configured (the signature
        // authenticates them): the empty requirement says so.
        Some(Access::SignedWebhook(s)) => vec![
            SecurityRequirement::new(BEARER, [Role::Engineer.as_str().to_owned(), scope(s)]),
            SecurityRequirement::new(API_KEY, [scope(s)]),
            SecurityRequirement::default(),
        ],
    };
    op.security = Some(requirements);
    for (status, what) in [
        ("401", "Missing, invalid or expired credentials."),
        ("403", "The caller's role or key scope does not allow this."),
    ] {
        op.responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| {
                RefOr::T(
                    ResponseBuilder::new()
                        .description(what)
                        .content(PROBLEM_JSON, problem_content())
                        .build(),
                )
            });
    }
}

/// Gives every error response without a body the problem document, and adds the shared
/// problem response as `default` (any other error: 400, 413, 429, 503, …).
fn problem_bodies(op: &mut Operation) {
    for (status, response) in &mut op.responses.responses {
        let is_error = status.starts_with('4') || status.starts_with('5');
        if let RefOr::T(Response { content, .. }) = response
            && is_error
            && content.is_empty()
        {
            content.insert(PROBLEM_JSON.to_owned(), problem_content());
        }
    }
    op.responses
        .responses
        .entry("default".to_owned())
        .or_insert_with(|| RefOr::Ref(Ref::from_response_name(PROBLEM_RESPONSE)));
}
