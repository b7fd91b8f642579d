//! The route policy table: every route the API serves and who may call it, in one place.
//!
//! The guard (`super::guard`) looks each request up here by its matched route; a route that
//! is missing is refused (default deny), and a test compares this table with the routes
//! actually registered, so a new route cannot ship without a decision here.
//!
//! | access | who passes |
//! |---|---|
//! | `Public` | anyone |
//! | `Role(r)` | users with role `r` or higher; `read`-scoped keys for `Role(Viewer)` |
//! | `Ingest(s)` | keys with scope `s`; users from `engineer` up |
//! | `SignedWebhook(s)` | as `Ingest(s)`; anonymous too when webhook signing is configured (the signature then authenticates) |

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::http::Method;
use sightline_auth::Access;
use sightline_model::{Role, Scope};

use Access::{Ingest, Public, Role as R, SignedWebhook};

/// `(method, route, access)` for every route.
pub const POLICY: &[(&str, &str, Access)] = &[
    // Operations: probes and Prometheus scrapes carry no credentials.
    ("GET", "/health", Public),
    ("GET", "/ready", Public),
    ("GET", "/metrics", Public),
    // The dashboard's files hold no data; its API calls carry the user's token.
    ("GET", "/", Public),
    ("GET", "/ui/{*path}", Public),
    // The API's description and its explorer.
    ("GET", "/api/openapi.json", Public),
    ("GET", "/api/docs", Public),
    ("GET", "/api/docs/{asset}", Public),
    // Sessions.
    ("POST", "/api/v1/auth/login", Public),
    ("POST", "/api/v1/auth/refresh", Public),
    ("POST", "/api/v1/auth/logout", Public),
    ("POST", "/api/v1/auth/bootstrap", Public),
    ("GET", "/api/v1/auth/me", R(Role::Viewer)),
    ("POST", "/api/v1/auth/password", R(Role::Viewer)),
    // Ingestion.
    ("POST", "/api/v1/events", Ingest(Scope::IngestEvents)),
    ("POST", "/api/v1/events/batch", Ingest(Scope::IngestEvents)),
    (
        "POST",
        "/api/v1/events/webhook",
        SignedWebhook(Scope::IngestEvents),
    ),
    ("POST", "/api/v1/metrics", Ingest(Scope::IngestMetrics)),
    ("POST", "/api/metrics", Ingest(Scope::IngestMetrics)),
    (
        "POST",
        "/api/v1/topics/{topic}/records",
        Ingest(Scope::IngestTopics),
    ),
    // Queries.
    ("GET", "/api/v1/events", R(Role::Viewer)),
    ("GET", "/api/v1/events/analytics", R(Role::Viewer)),
    ("GET", "/api/v1/events/{id}", R(Role::Viewer)),
    ("GET", "/api/v1/metrics", R(Role::Viewer)),
    ("GET", "/api/v1/metrics/live", R(Role::Viewer)),
    ("GET", "/api/metrics/live", R(Role::Viewer)),
    ("GET", "/api/v1/metrics/aggregated", R(Role::Viewer)),
    ("GET", "/api/metrics/aggregated", R(Role::Viewer)),
    ("GET", "/api/v1/events/counts", R(Role::Viewer)),
    ("GET", "/api/v1/topics", R(Role::Viewer)),
    // Continuous SQL: engineers define queries, viewers read them.
    ("POST", "/api/v1/queries", R(Role::Engineer)),
    ("GET", "/api/v1/queries", R(Role::Viewer)),
    ("GET", "/api/v1/queries/{name}", R(Role::Viewer)),
    ("DELETE", "/api/v1/queries/{name}", R(Role::Engineer)),
    ("GET", "/api/v1/queries/{name}/changes", R(Role::Viewer)),
    // The live stream of the pipeline (dashboard).
    ("GET", "/api/v1/stream", R(Role::Viewer)),
    ("POST", "/api/v1/query", R(Role::Viewer)),
    // Incidents: viewers read, engineers act.
    ("GET", "/api/v1/incidents", R(Role::Viewer)),
    ("GET", "/api/incidents", R(Role::Viewer)),
    ("POST", "/api/v1/incidents", R(Role::Engineer)),
    ("POST", "/api/incidents", R(Role::Engineer)),
    ("GET", "/api/v1/incidents/stats", R(Role::Viewer)),
    ("GET", "/api/v1/incidents/{id}", R(Role::Viewer)),
    ("GET", "/api/incidents/{id}", R(Role::Viewer)),
    ("PATCH", "/api/v1/incidents/{id}", R(Role::Engineer)),
    ("PATCH", "/api/incidents/{id}", R(Role::Engineer)),
    // Analyses: viewers read and give feedback, engineers (re-)generate (an LLM costs money).
    ("GET", "/api/v1/analysis/{incident_id}", R(Role::Viewer)),
    ("GET", "/api/analysis/{incident_id}", R(Role::Viewer)),
    ("POST", "/api/v1/analysis/generate", R(Role::Engineer)),
    ("POST", "/api/analysis/generate", R(Role::Engineer)),
    (
        "POST",
        "/api/v1/analysis/{analysis_id}/feedback",
        R(Role::Viewer),
    ),
    // Per-event insights: read-only, the insight runner writes them.
    ("GET", "/api/v1/events/{id}/insight", R(Role::Viewer)),
    ("GET", "/api/v1/insights", R(Role::Viewer)),
    ("GET", "/api/v1/anomalies", R(Role::Viewer)),
    ("GET", "/api/v1/events/{id}/correlations", R(Role::Viewer)),
    ("GET", "/api/v1/silences", R(Role::Viewer)),
    ("POST", "/api/v1/silences", R(Role::Engineer)),
    ("DELETE", "/api/v1/silences/{id}", R(Role::Engineer)),
    ("GET", "/api/v1/topology", R(Role::Viewer)),
    ("PUT", "/api/v1/topology", R(Role::Engineer)),
    // Playbooks: engineers define and dry-run them, approvers approve paused runs.
    ("POST", "/api/v1/rules/responses", R(Role::Engineer)),
    ("GET", "/api/v1/rules/responses", R(Role::Viewer)),
    ("GET", "/api/v1/rules/responses/{id}", R(Role::Viewer)),
    ("PUT", "/api/v1/rules/responses/{id}", R(Role::Engineer)),
    ("DELETE", "/api/v1/rules/responses/{id}", R(Role::Engineer)),
    (
        "POST",
        "/api/v1/rules/responses/{id}/dry-run",
        R(Role::Engineer),
    ),
    ("GET", "/api/v1/executions", R(Role::Viewer)),
    ("GET", "/api/v1/executions/{id}", R(Role::Viewer)),
    ("POST", "/api/v1/executions/{id}/approve", R(Role::Approver)),
    ("POST", "/api/v1/executions/{id}/reject", R(Role::Approver)),
    // Autonomous response: runs go through the safety controller.
    ("POST", "/api/v1/autonomous/analyze", R(Role::Engineer)),
    ("POST", "/api/v1/autonomous/execute", R(Role::Engineer)),
    ("GET", "/api/v1/autonomous/decisions", R(Role::Viewer)),
    ("POST", "/api/v1/autonomous/feedback", R(Role::Engineer)),
    // Trigger rules: engineers write and backtest, viewers read.
    ("GET", "/api/v1/rules/triggers", R(Role::Viewer)),
    ("POST", "/api/v1/rules/triggers", R(Role::Engineer)),
    ("GET", "/api/v1/rules/triggers/{id}", R(Role::Viewer)),
    ("PUT", "/api/v1/rules/triggers/{id}", R(Role::Engineer)),
    ("DELETE", "/api/v1/rules/triggers/{id}", R(Role::Engineer)),
    ("POST", "/api/v1/rules/{id}/backtest", R(Role::Engineer)),
    // Administration.
    ("GET", "/api/v1/users", R(Role::Admin)),
    ("POST", "/api/v1/users", R(Role::Admin)),
    ("PATCH", "/api/v1/users/{username}", R(Role::Admin)),
    ("GET", "/api/v1/keys", R(Role::Admin)),
    ("POST", "/api/v1/keys", R(Role::Admin)),
    ("DELETE", "/api/v1/keys/{id}", R(Role::Admin)),
    ("GET", "/api/v1/audit", R(Role::Admin)),
];

static TABLE: LazyLock<HashMap<(&'static str, &'static str), Access>> = LazyLock::new(|| {
    POLICY
        .iter()
        .map(|(method, route, access)| ((*method, *route), *access))
        .collect()
});

/// What `method` on the matched `route` requires; `None` when the table has no entry.
/// `HEAD` is answered by `GET` handlers, so it follows the `GET` entry.
pub fn access(method: &Method, route: &str) -> Option<Access> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    TABLE.get(&(method, route)).copied()
}
