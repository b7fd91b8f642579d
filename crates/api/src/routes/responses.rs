//! Playbooks (response templates): `POST/GET /api/v1/rules/responses`,
//! `GET/PUT/DELETE /api/v1/rules/responses/{id}`, and
//! `POST /api/v1/rules/responses/{id}/dry-run`, which renders every step for a subject
//! exactly as it would run (argv, URL, body) without performing anything.
//!
//! Every change is appended to the audit trail with the template before and after.
//! The playbook engine these routes (and `executions`, `autonomous`) use is the
//! [`Responses`] extension the router installs.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, AuthError, Principal};
use sightline_model::clock::now_ms;
use sightline_model::{IngestContext, ResponseTemplate, SourceType, ValidationError, decode};
use sightline_respond::decision::{Autonomous, SubjectRef, load_subject};
use sightline_respond::playbook::Actor as RunActor;
use sightline_respond::{RespondError, RunRequest, Subject};

use super::items::Items;
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};

/// The response service the routes share (engine, safety controller, decisions).
#[derive(Clone, Debug)]
pub struct Responses(pub Arc<Autonomous>);

/// The playbook routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .post("/api/v1/rules/responses", create)
        .get("/api/v1/rules/responses", list)
        .get("/api/v1/rules/responses/{id}", get_one)
        .put("/api/v1/rules/responses/{id}", replace)
        .delete("/api/v1/rules/responses/{id}", remove)
        .post("/api/v1/rules/responses/{id}/dry-run", dry_run)
}

/// The engine's view of the API caller.
pub(crate) fn run_actor(actor: &Actor) -> RunActor {
    RunActor {
        name: actor.name.clone(),
        kind: actor.kind,
    }
}

/// Maps the response crate's errors onto problem documents.
pub(crate) fn respond_error(e: RespondError) -> ApiError {
    match e {
        RespondError::Invalid { path, reason } => {
            ApiError::Invalid(ValidationError::new(path, reason))
        }
        RespondError::Store(e) => e.into(),
        RespondError::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
        RespondError::Conflict(what) => ApiError::Conflict(what),
        RespondError::BadToken => ApiError::Auth(AuthError::Forbidden(
            "the approval token does not match this execution".into(),
        )),
        RespondError::Expired(at) => ApiError::Gone(format!(
            "the approval token expired at {at} (epoch ms); the step stays unapproved"
        )),
    }
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty()
        || id.len() > 128
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ApiError::Invalid(ValidationError::new(
            "id",
            "must be 1-128 characters of A-Z, a-z, 0-9, '-', '_' and '.'",
        )));
    }
    Ok(())
}

fn audit_doc(template: &ResponseTemplate) -> serde_json::Value {
    serde_json::to_value(template).unwrap_or_default()
}

/// Create a playbook.
///
/// `POST /api/v1/rules/responses`: 201 with the stored template (id assigned when absent).
#[utoipa::path(
    post,
    path = "/api/v1/rules/responses",
    tag = "responses",
    request_body = sightline_model::ResponseTemplate,
    responses(
        (status = 201, description = "The stored template.", body = sightline_model::ResponseTemplate),
        (status = 409, description = "The id is taken."),
        (status = 422, description = "An invalid template."),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let mut template: ResponseTemplate = parse_json(&body)?;
    if template.id.is_empty() {
        template.id = uuid::Uuid::now_v7().to_string();
    }
    check_id(&template.id)?;
    template.validate().map_err(ApiError::Invalid)?;
    let actor = Actor::principal(&principal, ip);
    let now = now_ms();
    template.created_by = actor.name.clone();
    template.created_at = now;
    template.updated_at = now;
    state.store.create_template(&template).await?;
    state
        .auth
        .record(
            &actor,
            "response_template.create",
            Some(&template.id),
            serde_json::json!({"before": null, "after": audit_doc(&template)}),
        )
        .await;
    Ok((StatusCode::CREATED, Json(template)).into_response())
}

/// List playbooks.
///
/// `GET /api/v1/rules/responses`: `{items}`, by name.
#[utoipa::path(
    get,
    path = "/api/v1/rules/responses",
    tag = "responses",
    responses(
        (status = 200, description = "Every template, by name.", body = Items<sightline_model::ResponseTemplate>),
    ),
)]
pub(crate) async fn list(State(state): State<AppState>) -> Result<Response, ApiError> {
    let items = state.store.list_templates().await?;
    Ok(Json(Items { items }).into_response())
}

/// Get one playbook.
#[utoipa::path(
    get,
    path = "/api/v1/rules/responses/{id}",
    tag = "responses",
    params(
        ("id" = String, Path, description = "The template id."),
    ),
    responses(
        (status = 200, description = "The template.", body = sightline_model::ResponseTemplate),
        (status = 404, description = "No such template."),
    ),
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.store.get_template(&id).await? {
        Some(t) => Ok(Json(t).into_response()),
        None => Err(ApiError::NotFound(format!(
            "response template '{id}' not found"
        ))),
    }
}

/// Replace a playbook.
///
/// `PUT /api/v1/rules/responses/{id}`: replaces the template (creator and creation time
/// are kept); runs already started keep the steps they rendered.
#[utoipa::path(
    put,
    path = "/api/v1/rules/responses/{id}",
    tag = "responses",
    params(
        ("id" = String, Path, description = "The template id."),
    ),
    request_body = sightline_model::ResponseTemplate,
    responses(
        (status = 200, description = "The stored template.", body = sightline_model::ResponseTemplate),
        (status = 404, description = "No such template."),
        (status = 422, description = "An invalid template."),
    ),
)]
pub(crate) async fn replace(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let mut template: ResponseTemplate = parse_json(&body)?;
    if !template.id.is_empty() && template.id != id {
        return Err(ApiError::Invalid(ValidationError::new(
            "id",
            format!("'{}' differs from the id in the path '{id}'", template.id),
        )));
    }
    template.id = id.clone();
    template.validate().map_err(ApiError::Invalid)?;
    let Some(current) = state.store.get_template(&id).await? else {
        return Err(ApiError::NotFound(format!(
            "response template '{id}' not found"
        )));
    };
    let actor = Actor::principal(&principal, ip);
    template.created_by = current.created_by;
    template.created_at = current.created_at;
    template.updated_at = now_ms().max(current.updated_at);
    let before = state.store.update_template(&template).await?;
    state
        .auth
        .record(
            &actor,
            "response_template.update",
            Some(&id),
            serde_json::json!({"before": audit_doc(&before), "after": audit_doc(&template)}),
        )
        .await;
    Ok(Json(template).into_response())
}

/// Delete a playbook.
#[utoipa::path(
    delete,
    path = "/api/v1/rules/responses/{id}",
    tag = "responses",
    params(
        ("id" = String, Path, description = "The template id."),
    ),
    responses(
        (status = 204, description = "Deleted."),
        (status = 404, description = "No such template."),
        (status = 409, description = "A trigger rule still uses it."),
    ),
)]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let Some(before) = state.store.delete_template(&id).await? else {
        return Err(ApiError::NotFound(format!(
            "response template '{id}' not found"
        )));
    };
    let actor = Actor::principal(&principal, ip);
    state
        .auth
        .record(
            &actor,
            "response_template.delete",
            Some(&id),
            serde_json::json!({"before": audit_doc(&before), "after": null}),
        )
        .await;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// What a dry-run (or an analysis) is about: a stored event or incident, or an event given
/// inline as a system-event document (decoded like ingestion).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubjectInput {
    event_id: Option<String>,
    incident_id: Option<String>,
    event: Option<serde_json::Value>,
}

pub(crate) async fn subject_of(
    state: &AppState,
    input: &SubjectInput,
) -> Result<Subject, ApiError> {
    match (&input.event_id, &input.incident_id, &input.event) {
        (Some(id), None, None) => {
            load_subject(state.store.as_ref(), &SubjectRef::Event(id.clone()))
                .await
                .map_err(respond_error)
        }
        (None, Some(id), None) => {
            load_subject(state.store.as_ref(), &SubjectRef::Incident(id.clone()))
                .await
                .map_err(respond_error)
        }
        (None, None, Some(doc)) => {
            let bytes = serde_json::to_vec(doc).unwrap_or_default();
            let ctx = IngestContext::new(SourceType::Http, now_ms(), "dry-run");
            let event = decode::system_event(&bytes, &ctx).map_err(|e| {
                ApiError::Invalid(ValidationError::new(format!("event.{}", e.field), e.reason))
            })?;
            Ok(Subject::Event(Box::new(event)))
        }
        _ => Err(ApiError::Invalid(ValidationError::new(
            "$",
            "give exactly one of event_id, incident_id or event",
        ))),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DryRunBody {
    subject: SubjectInput,
}

/// Dry-run a playbook.
///
/// `POST /api/v1/rules/responses/{id}/dry-run {subject}`: the execution as it would run,
/// status `dry_run`, every step rendered; nothing is performed. Recorded like any run.
#[utoipa::path(
    post,
    path = "/api/v1/rules/responses/{id}/dry-run",
    tag = "responses",
    params(
        ("id" = String, Path, description = "The template id."),
    ),
    request_body = DryRunBody,
    responses(
        (status = 200, description = "The execution as it would run (status `dry_run`).", body = sightline_model::Execution),
        (status = 404, description = "No such template or subject."),
        (status = 422, description = "An invalid subject."),
    ),
)]
pub(crate) async fn dry_run(
    State(state): State<AppState>,
    Extension(responses): Extension<Responses>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let request: DryRunBody = parse_json(&body)?;
    let Some(template) = state.store.get_template(&id).await? else {
        return Err(ApiError::NotFound(format!(
            "response template '{id}' not found"
        )));
    };
    let subject = subject_of(&state, &request.subject).await?;
    let actor = Actor::principal(&principal, ip);
    let mut run = RunRequest::for_subject(template, subject, run_actor(&actor));
    run.dry_run = true;
    let execution = responses
        .0
        .engine()
        .start(run)
        .await
        .map_err(respond_error)?
        .ok_or_else(|| ApiError::Internal("dry-run was not recorded".into()))?;
    Ok(Json(execution).into_response())
}
