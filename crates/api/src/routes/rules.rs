//! Trigger rules: create, list, read, replace, delete, and backtest against stored history.
//!
//! Every rule is compiled before it is stored (`sightline_respond::CompiledRule`), so a
//! rule the engine could not run never reaches the store: a faulty condition is a 422
//! naming the path to the fault (`conditions.$and[1].metadata.cpu_usage.$gt`). Every
//! change is appended to the audit trail with the rule before and after.
//!
//! A backtest replays what the store holds for the rule's subject kind in `[from, to)`
//! through a fresh engine holding only that rule, and reports how often it would have
//! fired, on what, and which response template it would have started. Nothing runs.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, Principal};
use sightline_model::clock::now_ms;
use sightline_model::{AppliesTo, TriggerRule, TriggerRuleSpec, ValidationError};
use sightline_respond::{CompiledRule, RespondError, Subject, trigger};
use sightline_store::{AnomalyQuery, EventQuery, IncidentQuery, MAX_PAGE};

use super::items::Items;
use super::params::{self, bad, reject_unknown};
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};

/// Most stored records one backtest replays; a longer history is cut (newest kept) and the
/// report says so.
pub const MAX_BACKTEST_RECORDS: usize = 50_000;

/// The trigger-rule routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/rules/triggers", list)
        .post("/api/v1/rules/triggers", create)
        .get("/api/v1/rules/triggers/{id}", get)
        .put("/api/v1/rules/triggers/{id}", replace)
        .delete("/api/v1/rules/triggers/{id}", delete)
        .post("/api/v1/rules/{id}/backtest", backtest)
}

/// Validates and compiles a submitted rule; faults are 422 with the field path.
fn check(body: &[u8]) -> Result<TriggerRuleSpec, ApiError> {
    let spec: TriggerRuleSpec = parse_json(body)?;
    let spec = spec.validate().map_err(ApiError::Invalid)?;
    // Compile once now so a rule the engine cannot run is never stored.
    compile(TriggerRule::from_spec(
        spec.clone(),
        String::new(),
        String::new(),
        0,
        0,
    ))?;
    Ok(spec)
}

// `RespondError` grows variants with the playbook half of the crate; compiling a rule only
// ever yields `Invalid`, anything else would be our fault.
#[allow(unreachable_patterns)]
fn compile(rule: TriggerRule) -> Result<CompiledRule, ApiError> {
    CompiledRule::compile(rule).map_err(|e| match e {
        RespondError::Invalid { path, reason } => {
            ApiError::Invalid(ValidationError::new(path, reason))
        }
        other => ApiError::Internal(format!("compiling a rule: {other}")),
    })
}

/// List trigger rules.
///
/// `GET /api/v1/rules/triggers?active=true`: `{items}`, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/rules/triggers",
    tag = "rules",
    params(
        ("active" = Option<bool>, Query, description = "Only active rules."),
    ),
    responses(
        (status = 200, description = "Rules, oldest first.", body = Items<sightline_model::TriggerRule>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &["active"])?;
    let active_only = match q.get("active").map(String::as_str) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => return Err(bad("active", format!("'{other}' is not true or false"))),
    };
    let items = state.store.list_rules(active_only).await?;
    Ok(Json(Items { items }).into_response())
}

/// Create a trigger rule.
///
/// `POST /api/v1/rules/triggers` with a rule: 201 with the stored rule.
#[utoipa::path(
    post,
    path = "/api/v1/rules/triggers",
    tag = "rules",
    request_body = sightline_model::TriggerRuleSpec,
    responses(
        (status = 201, description = "The stored rule.", body = sightline_model::TriggerRule),
        (status = 409, description = "The id is taken."),
        (status = 422, description = "An invalid rule; `errors` names the field."),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let spec = check(&body)?;
    let actor = Actor::principal(&principal, ip);
    let now = now_ms();
    let rule = TriggerRule::from_spec(
        spec,
        uuid::Uuid::now_v7().to_string(),
        actor.name.clone(),
        now,
        now,
    );
    state.store.create_rule(&rule).await?;
    // This node's rules runner reloads now; others at their next poll.
    state.rules_changed.notify_one();
    state
        .auth
        .record(
            &actor,
            "rule.create",
            Some(&rule.id),
            serde_json::json!({ "before": null, "after": rule }),
        )
        .await;
    Ok((StatusCode::CREATED, Json(rule)).into_response())
}

/// Get one trigger rule.
///
/// `GET /api/v1/rules/triggers/{id}`: the rule, or 404.
#[utoipa::path(
    get,
    path = "/api/v1/rules/triggers/{id}",
    tag = "rules",
    params(
        ("id" = String, Path, description = "The rule id."),
    ),
    responses(
        (status = 200, description = "The rule.", body = sightline_model::TriggerRule),
        (status = 404, description = "No such rule."),
    ),
)]
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.get_rule(&id).await? {
        Some(rule) => Ok(Json(rule).into_response()),
        None => Err(ApiError::NotFound(format!("trigger rule '{id}' not found"))),
    }
}

/// Replace a trigger rule.
///
/// `PUT /api/v1/rules/triggers/{id}` with a whole rule: replaces it (window and throttle
/// state of the running engine starts afresh); 200 with the stored rule.
#[utoipa::path(
    put,
    path = "/api/v1/rules/triggers/{id}",
    tag = "rules",
    params(
        ("id" = String, Path, description = "The rule id."),
    ),
    request_body = sightline_model::TriggerRuleSpec,
    responses(
        (status = 200, description = "The stored rule.", body = sightline_model::TriggerRule),
        (status = 404, description = "No such rule."),
        (status = 422, description = "An invalid rule."),
    ),
)]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let spec = check(&body)?;
    let actor = Actor::principal(&principal, ip);
    let Some(current) = state.store.get_rule(&id).await? else {
        return Err(ApiError::NotFound(format!("trigger rule '{id}' not found")));
    };
    // The version must move even within one millisecond: engines key state by it.
    let now = now_ms().max(current.updated_at + 1);
    let rule = TriggerRule::from_spec(spec, id, current.created_by, current.created_at, now);
    let before = state.store.update_rule(&rule).await?;
    // This node's rules runner reloads now; others at their next poll.
    state.rules_changed.notify_one();
    state
        .auth
        .record(
            &actor,
            "rule.update",
            Some(&rule.id),
            serde_json::json!({ "before": before, "after": rule }),
        )
        .await;
    Ok(Json(rule).into_response())
}

/// Delete a trigger rule.
///
/// `DELETE /api/v1/rules/triggers/{id}`: 200 with the deleted rule, or 404.
#[utoipa::path(
    delete,
    path = "/api/v1/rules/triggers/{id}",
    tag = "rules",
    params(
        ("id" = String, Path, description = "The rule id."),
    ),
    responses(
        (status = 200, description = "The deleted rule.", body = sightline_model::TriggerRule),
        (status = 404, description = "No such rule."),
    ),
)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let before = state.store.delete_rule(&id).await?;
    // This node's rules runner reloads now; others at their next poll.
    state.rules_changed.notify_one();
    state
        .auth
        .record(
            &Actor::principal(&principal, ip),
            "rule.delete",
            Some(&before.id),
            serde_json::json!({ "before": before, "after": null }),
        )
        .await;
    Ok(Json(before).into_response())
}

/// A time in a body: epoch milliseconds or RFC 3339.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
enum Instant {
    Millis(i64),
    Text(String),
}

impl Instant {
    fn millis(&self, field: &str) -> Result<i64, ApiError> {
        match self {
            Instant::Millis(ms) => Ok(*ms),
            Instant::Text(s) => params::instant_ms(field, s).map_err(|_| {
                ApiError::Invalid(ValidationError::new(
                    field,
                    format!("'{s}' is neither epoch milliseconds nor RFC 3339"),
                ))
            }),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct BacktestRequest {
    from: Instant,
    to: Instant,
}

/// Backtest a trigger rule over stored history.
///
/// `POST /api/v1/rules/{id}/backtest {from, to}`: what the rule would have done over the
/// stored history in `[from, to)`.
#[utoipa::path(
    post,
    path = "/api/v1/rules/{id}/backtest",
    tag = "rules",
    params(
        ("id" = String, Path, description = "The rule id."),
    ),
    request_body = BacktestRequest,
    responses(
        (status = 200, description = "What the rule would have done: matches, firings, throttled, per group.", body = Object),
        (status = 404, description = "No such rule."),
        (status = 422, description = "An invalid time range."),
    ),
)]
pub(crate) async fn backtest(
    State(state): State<AppState>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let req: BacktestRequest = parse_json(&body)?;
    let (from, to) = (req.from.millis("from")?, req.to.millis("to")?);
    if to <= from {
        return Err(ApiError::Invalid(ValidationError::new(
            "to",
            "must be after 'from'",
        )));
    }
    let Some(rule) = state.store.get_rule(&id).await? else {
        return Err(ApiError::NotFound(format!("trigger rule '{id}' not found")));
    };
    let compiled = compile(rule.clone())?;
    let (history, truncated) = load_history(&state, rule.applies_to, from, to).await?;
    let oldest = history.iter().map(trigger::subject_time).min();
    let report = tokio::task::spawn_blocking(move || trigger::backtest(compiled, history))
        .await
        .map_err(|e| ApiError::Internal(format!("backtest task: {e}")))?;
    Ok(Json(serde_json::json!({
        "rule_id": rule.id,
        "applies_to": rule.applies_to,
        "from": from,
        "to": to,
        "scanned": report.scanned,
        "truncated": truncated,
        // With `truncated`, history before this time was not replayed.
        "replayed_from": if truncated { oldest } else { Some(from) },
        "matches": report.matches,
        "would_fire": report.firings,
        "throttled": report.throttled,
        "by_group": report.by_group,
        "response_template_id": rule.response_template_id,
        "firings": report.listed,
        "firings_listed": report.listed.len(),
        "executed": false,
    }))
    .into_response())
}

/// The stored subjects of `kind` in `[from, to)`, newest first, at most
/// [`MAX_BACKTEST_RECORDS`]; `true` when more were there.
async fn load_history(
    state: &AppState,
    kind: AppliesTo,
    from: i64,
    to: i64,
) -> Result<(Vec<Subject>, bool), ApiError> {
    let mut out: Vec<Subject> = Vec::new();
    let mut cursor = None;
    loop {
        let remaining = MAX_BACKTEST_RECORDS - out.len();
        let limit = MAX_PAGE.min(u32::try_from(remaining).unwrap_or(MAX_PAGE));
        let next = match kind {
            AppliesTo::Events => {
                let page = state
                    .store
                    .query_events(&EventQuery {
                        since_ms: Some(from),
                        until_ms: Some(to),
                        limit,
                        cursor,
                        ..EventQuery::default()
                    })
                    .await?;
                out.extend(page.items.into_iter().map(|e| Subject::Event(Box::new(e))));
                page.next_cursor
            }
            AppliesTo::Anomalies => {
                let page = state
                    .store
                    .query_anomalies(&AnomalyQuery {
                        from: Some(from),
                        to: Some(to),
                        limit,
                        cursor,
                        ..AnomalyQuery::default()
                    })
                    .await?;
                out.extend(
                    page.items
                        .into_iter()
                        .map(|a| Subject::Anomaly(Box::new(a.anomaly))),
                );
                page.next_cursor
            }
            AppliesTo::Incidents => {
                let page = state
                    .store
                    .query_incidents(&IncidentQuery {
                        from: Some(from),
                        to: Some(to),
                        limit,
                        cursor,
                        ..IncidentQuery::default()
                    })
                    .await?;
                out.extend(
                    page.items
                        .into_iter()
                        .map(|i| Subject::Incident(Box::new(i))),
                );
                page.next_cursor
            }
        };
        match next {
            None => return Ok((out, false)),
            Some(_) if out.len() >= MAX_BACKTEST_RECORDS => return Ok((out, true)),
            Some(c) => cursor = params::cursor(Some(&c))?,
        }
    }
}
