//! Incidents (the LiveOps paths, under `/api/v1` and the `/api` aliases): list with
//! filters and keyset pagination, one incident with its evidence, manual creation, and
//! the operator's changes (status, assignee, notes); the detector output (`anomalies`)
//! and the correlations of a signal.
//!
//! Created incidents are published on `incidents.detected`, changed ones on
//! `incidents.updated` (JSON, keyed by the incident id), as the correlator does.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Deserializer, Serialize};
use sightline_auth::{Actor, Principal};
use sightline_log::Record;
use sightline_model::{
    Correlation, Event, Incident, IncidentStatus, Severity, TimelineEntry, ValidationError, topics,
};
use sightline_store::{
    AnomalyQuery, IncidentPatch, IncidentQuery, MAX_CORRELATIONS, MAX_PAGE, StoredAnomaly,
};

use super::items::Items;
use super::params::{self, bad, reject_unknown};
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::request_id::CorrelationId;
use crate::{ApiError, AppState};
use sightline_model::clock::now_ms;

/// Most events an incident's detail carries.
const MAX_DETAIL_EVENTS: usize = 100;
/// Longest incident title, in characters.
const MAX_TITLE: usize = 200;
/// Longest description, in characters.
const MAX_DESCRIPTION: usize = 10_000;
/// Longest service, assignee or actor name, in characters.
const MAX_NAME: usize = 128;
/// Longest timeline note, in characters.
const MAX_NOTE: usize = 4_000;
/// Correlations of a signal returned when no `limit` is given.
const DEFAULT_CORRELATIONS: u32 = 100;

/// The incident routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/incidents", list)
        .get("/api/incidents", list)
        .post("/api/v1/incidents", create)
        .post("/api/incidents", create)
        .get("/api/v1/incidents/stats", stats)
        .get("/api/v1/incidents/{id}", get_one)
        .get("/api/incidents/{id}", get_one)
        .patch("/api/v1/incidents/{id}", update)
        .patch("/api/incidents/{id}", update)
        .get("/api/v1/anomalies", anomalies)
        .get("/api/v1/events/{id}/correlations", event_correlations)
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
    ApiError::Invalid(ValidationError::new(field, reason))
}

/// A comma list of values of parameter `field`, each parsed by `parse`.
fn comma_list<T>(
    field: &str,
    raw: &str,
    parse: impl Fn(&str, &str) -> Result<T, ValidationError>,
) -> Result<Vec<T>, ApiError> {
    raw.split(',')
        .map(|v| {
            if v.trim().is_empty() {
                Err(bad(field, format!("empty value in the list '{raw}'")))
            } else {
                parse(field, v).map_err(ApiError::BadParameter)
            }
        })
        .collect()
}

/// List incidents.
///
/// `GET /api/v1/incidents?status=&severity=|min_severity=&service=&from=&to=&hours=&limit=&cursor=`:
/// newest detected first, `{items, next_cursor}`.
#[utoipa::path(
    get,
    path = "/api/v1/incidents",
    tag = "incidents",
    params(
        ("status" = Option<String>, Query, description = "Comma list: `open`, `acknowledged`, `resolved`."),
        ("severity" = Option<String>, Query, description = "Comma list of severities (not with `min_severity`)."),
        ("min_severity" = Option<String>, Query, description = "This severity or worse (not with `severity`)."),
        ("service" = Option<String>, Query, description = "Exact service name."),
        ("from" = Option<String>, Query, description = "Start of the time range (inclusive): epoch ms or RFC 3339."),
        ("to" = Option<String>, Query, description = "End of the time range (exclusive): epoch ms or RFC 3339."),
        ("hours" = Option<f64>, Query, description = "The last N hours (`from` = now − N h)."),
        ("limit" = Option<u32>, Query, description = "Page size, at least 1 (default 50; above 1000 capped to 1000)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "Incidents, newest detected first, keyset-paginated.", body = sightline_store::Page<sightline_model::Incident>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(
        &q,
        &[
            "status",
            "severity",
            "min_severity",
            "service",
            "from",
            "to",
            "hours",
            "limit",
            "cursor",
        ],
    )?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let status = get("status")
        .map(|s| comma_list("status", s, IncidentStatus::parse))
        .transpose()?;
    let severities = get("severity")
        .map(|s| comma_list("severity", s, Severity::parse))
        .transpose()?
        .unwrap_or_default();
    let min_severity = get("min_severity")
        .map(|s| Severity::parse("min_severity", s).map_err(ApiError::BadParameter))
        .transpose()?;
    if min_severity.is_some() && !severities.is_empty() {
        return Err(bad(
            "min_severity",
            "give either 'severity' (a list) or 'min_severity', not both",
        ));
    }
    let (from, to) = params::requested_range(&q)?;
    let query = IncidentQuery {
        status,
        severities,
        min_severity,
        service: get("service").map(str::to_owned),
        from,
        to,
        limit: params::limit(get("limit"))?,
        cursor: params::cursor(get("cursor"))?,
    };
    Ok(Json(state.store.query_incidents(&query).await?).into_response())
}

/// Count incidents per status.
///
/// `GET /api/v1/incidents/stats`: how many incidents are in each status.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/stats",
    tag = "incidents",
    responses(
        (status = 200, description = "`{open, acknowledged, resolved, total}`.", body = Object),
    ),
)]
pub(crate) async fn stats(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &[])?;
    let counts = state.store.count_incidents_by_status().await?;
    Ok(Json(serde_json::json!({
        "open": counts.open,
        "acknowledged": counts.acknowledged,
        "resolved": counts.resolved,
        "total": counts.open + counts.acknowledged + counts.resolved,
    }))
    .into_response())
}

/// One incident with its evidence.
#[derive(Serialize, utoipa::ToSchema)]
struct IncidentDetail {
    #[serde(flatten)]
    incident: Incident,
    /// Its anomalies (at most one page of [`MAX_PAGE`]), newest first.
    anomalies: Vec<StoredAnomaly>,
    /// Its correlations, oldest first.
    correlations: Vec<Correlation>,
    /// The stored events among its first [`MAX_DETAIL_EVENTS`] `event_ids`.
    events: Vec<Event>,
    /// Whether `event_ids` holds more than [`MAX_DETAIL_EVENTS`] ids.
    events_truncated: bool,
}

async fn load(state: &AppState, id: &str) -> Result<Incident, ApiError> {
    state
        .store
        .get_incident(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no incident with id '{id}'")))
}

/// Get one incident with its evidence.
///
/// `GET /api/v1/incidents/{id}`: the incident (with its `timeline`) plus its `anomalies`,
/// `correlations` and `events`.
#[utoipa::path(
    get,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(
        ("id" = String, Path, description = "The incident id."),
    ),
    responses(
        (status = 200, description = "The incident with its anomalies, correlations and events.", body = IncidentDetail),
        (status = 404, description = "No incident with this id."),
    ),
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let incident = load(&state, &id).await?;
    let anomalies = state
        .store
        .query_anomalies(&AnomalyQuery {
            incident_id: Some(id.clone()),
            limit: MAX_PAGE,
            ..AnomalyQuery::default()
        })
        .await?
        .items;
    let correlations = state.store.correlations_for_incident(&id).await?;
    let mut events = Vec::new();
    for event_id in incident.event_ids.iter().take(MAX_DETAIL_EVENTS) {
        events.extend(state.store.get_event(event_id).await?);
    }
    let events_truncated = incident.event_ids.len() > MAX_DETAIL_EVENTS;
    Ok(Json(IncidentDetail {
        incident,
        anomalies,
        correlations,
        events,
        events_truncated,
    })
    .into_response())
}

/// Appends `incident` as JSON to `topic`, keyed by its id.
async fn publish(state: &AppState, topic: &str, incident: &Incident) -> Result<(), ApiError> {
    let value = serde_json::to_vec(incident)
        .map_err(|e| ApiError::Internal(format!("encoding incident: {e}")))?;
    let record = Record::new(Some(&incident.id), value, incident.updated_at)
        .with_header("correlation_id", incident.correlation_id.as_bytes());
    state
        .log
        .append(topic, vec![record])
        .await
        .map(|_| ())
        .map_err(|e| {
            tracing::error!(error = %e, %topic, id = %incident.id, "publishing incident failed");
            ApiError::Unavailable {
                reason: format!(
                    "incident '{}' was stored but could not be published on {topic}: the \
                     event log is unavailable",
                    incident.id
                ),
                retry_after: 5,
            }
        })
}

/// `POST /api/v1/incidents`: an incident opened by hand.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewIncident {
    title: String,
    #[serde(default)]
    description: Option<String>,
    severity: String,
    service_name: String,
    #[serde(default)]
    affected_services: Option<Vec<String>>,
    #[serde(default)]
    assignee: Option<String>,
}

/// A name field: trimmed, non-empty, at most [`MAX_NAME`] characters, no control
/// characters.
fn name(field: &str, raw: &str) -> Result<String, ApiError> {
    let v = raw.trim();
    if v.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if v.chars().count() > MAX_NAME {
        return Err(invalid(field, format!("longer than {MAX_NAME} characters")));
    }
    if v.chars().any(char::is_control) {
        return Err(invalid(field, "contains control characters"));
    }
    Ok(v.to_owned())
}

/// Open an incident by hand.
///
/// `POST /api/v1/incidents`: an incident opened by hand; 201 with it.
#[utoipa::path(
    post,
    path = "/api/v1/incidents",
    tag = "incidents",
    request_body = NewIncident,
    responses(
        (status = 201, description = "The incident, published on `incidents.detected`.", body = sightline_model::Incident),
        (status = 422, description = "An invalid field."),
        (status = 503, description = "Stored but not published: the event log is unavailable."),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let req: NewIncident = parse_json(&body)?;
    let title = req.title.trim().to_owned();
    if title.is_empty() {
        return Err(invalid("title", "must not be empty"));
    }
    if title.chars().count() > MAX_TITLE {
        return Err(invalid(
            "title",
            format!("longer than {MAX_TITLE} characters"),
        ));
    }
    let description = req.description.unwrap_or_default();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(invalid(
            "description",
            format!("longer than {MAX_DESCRIPTION} characters"),
        ));
    }
    let severity = Severity::parse("severity", &req.severity).map_err(ApiError::Invalid)?;
    let service_name = name("service_name", &req.service_name)?;
    let mut affected_services = vec![service_name.clone()];
    for (i, s) in req.affected_services.unwrap_or_default().iter().enumerate() {
        let s = name(&format!("affected_services[{i}]"), s)?;
        if !affected_services.contains(&s) {
            affected_services.push(s);
        }
    }
    if affected_services.len() > 100 {
        return Err(invalid("affected_services", "more than 100 services"));
    }
    let assignee = req
        .assignee
        .as_deref()
        .map(|a| name("assignee", a))
        .transpose()?;
    let actor = Actor::principal(&principal, ip);
    let now = now_ms();
    let id = uuid::Uuid::now_v7().to_string();
    let mut timeline = vec![TimelineEntry {
        at: now,
        kind: "created".into(),
        message: format!("created by {}", actor.name),
        actor: actor.name.clone(),
    }];
    if let Some(a) = &assignee {
        timeline.push(TimelineEntry {
            at: now,
            kind: "assigned".into(),
            message: format!("assigned to {a}"),
            actor: actor.name.clone(),
        });
    }
    let incident = Incident {
        fingerprint: format!("manual:{id}"),
        id,
        title,
        description,
        severity,
        score: 0.0,
        status: IncidentStatus::Open,
        service_name,
        affected_services,
        detected_at: now,
        updated_at: now,
        acknowledged_at: None,
        resolved_at: None,
        correlation_id: cid,
        labels: Default::default(),
        event_ids: Vec::new(),
        anomaly_ids: Vec::new(),
        occurrences: 1,
        assignee,
        flapping: false,
        timeline,
    };
    state
        .store
        .upsert_incidents(std::slice::from_ref(&incident))
        .await?;
    sightline_correlate::incident_metrics::opened(&incident);
    state
        .auth
        .record(
            &actor,
            "incident.create",
            Some(&incident.id),
            serde_json::json!({
                "title": incident.title,
                "severity": incident.severity,
                "service_name": incident.service_name,
            }),
        )
        .await;
    publish(&state, topics::INCIDENTS_DETECTED, &incident).await?;
    Ok((StatusCode::CREATED, Json(incident)).into_response())
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /api/v1/incidents/{id}`: what the operator changes (at least one field).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = IncidentChange)]
struct Change {
    #[serde(default)]
    status: Option<String>,
    /// `null` unassigns.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    assignee: Option<Option<String>>,
    #[serde(default)]
    note: Option<String>,
}

/// Change an incident's status, assignee or notes.
///
/// `PATCH /api/v1/incidents/{id}` `{status?, assignee? (null unassigns), note?}`: 200 with
/// the incident as stored; published on `incidents.updated`.
#[utoipa::path(
    patch,
    path = "/api/v1/incidents/{id}",
    tag = "incidents",
    params(
        ("id" = String, Path, description = "The incident id."),
    ),
    request_body = Change,
    responses(
        (status = 200, description = "The incident as stored, published on `incidents.updated`.", body = sightline_model::Incident),
        (status = 404, description = "No incident with this id."),
        (status = 409, description = "A status change that is not allowed."),
        (status = 422, description = "An invalid field, or nothing to change."),
    ),
)]
pub(crate) async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let change: Change = parse_json(&body)?;
    let status = change
        .status
        .as_deref()
        .map(|s| IncidentStatus::parse("status", s).map_err(ApiError::Invalid))
        .transpose()?;
    let assignee = match change.assignee {
        None => None,
        Some(None) => Some(None),
        Some(Some(a)) => Some(Some(name("assignee", &a).map_err(|e| match e {
            ApiError::Invalid(v) if v.reason == "must not be empty" => {
                invalid("assignee", "must not be empty: send null to unassign")
            }
            other => other,
        })?)),
    };
    let note = match change.note {
        Some(n) if n.trim().is_empty() => return Err(invalid("note", "must not be empty")),
        Some(n) if n.chars().count() > MAX_NOTE => {
            return Err(invalid(
                "note",
                format!("longer than {MAX_NOTE} characters"),
            ));
        }
        other => other.map(|n| n.trim().to_owned()),
    };
    if status.is_none() && assignee.is_none() && note.is_none() {
        return Err(invalid(
            "$",
            "nothing to change: give status, assignee or note",
        ));
    }
    let actor = Actor::principal(&principal, ip);
    let patch = IncidentPatch {
        status,
        assignee,
        note,
        actor: actor.name.clone(),
        now: now_ms(),
    };
    let incident = state.store.update_incident(&id, &patch).await?;
    // The store refuses a status the incident already has, so a status here is a
    // transition this request made: observed once, on this node.
    match patch.status {
        Some(IncidentStatus::Acknowledged) => {
            sightline_correlate::incident_metrics::acknowledged(&incident);
        }
        Some(IncidentStatus::Resolved) => {
            sightline_correlate::incident_metrics::resolved(&incident)
        }
        Some(IncidentStatus::Open) | None => {}
    }
    state
        .auth
        .record(
            &actor,
            "incident.update",
            Some(&incident.id),
            serde_json::json!({
                "status": patch.status,
                "assignee": patch.assignee,
                "note": patch.note.is_some(),
            }),
        )
        .await;
    publish(&state, topics::INCIDENTS_UPDATED, &incident).await?;
    Ok(Json(incident).into_response())
}

/// List anomalies (detector output).
///
/// `GET /api/v1/anomalies?service=&detector=&incident_id=&from=&to=&hours=&limit=&cursor=`:
/// newest first, `{items, next_cursor}`.
#[utoipa::path(
    get,
    path = "/api/v1/anomalies",
    tag = "incidents",
    params(
        ("service" = Option<String>, Query, description = "Exact service name."),
        ("detector" = Option<String>, Query, description = "Detector name."),
        ("incident_id" = Option<String>, Query, description = "Only anomalies linked to this incident."),
        ("from" = Option<String>, Query, description = "Start of the time range (inclusive): epoch ms or RFC 3339."),
        ("to" = Option<String>, Query, description = "End of the time range (exclusive): epoch ms or RFC 3339."),
        ("hours" = Option<f64>, Query, description = "The last N hours (`from` = now − N h)."),
        ("limit" = Option<u32>, Query, description = "Page size, at least 1 (default 50; above 1000 capped to 1000)."),
        ("cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page."),
    ),
    responses(
        (status = 200, description = "Anomalies, newest first, keyset-paginated.", body = sightline_store::Page<sightline_store::StoredAnomaly>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn anomalies(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(
        &q,
        &[
            "service",
            "detector",
            "incident_id",
            "from",
            "to",
            "hours",
            "limit",
            "cursor",
        ],
    )?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let (from, to) = params::requested_range(&q)?;
    let query = AnomalyQuery {
        service: get("service").map(str::to_owned),
        detector: get("detector").map(str::to_owned),
        incident_id: get("incident_id").map(str::to_owned),
        from,
        to,
        limit: params::limit(get("limit"))?,
        cursor: params::cursor(get("cursor"))?,
    };
    Ok(Json(state.store.query_anomalies(&query).await?).into_response())
}

/// Correlations of an event or anomaly.
///
/// `GET /api/v1/events/{id}/correlations?limit=`: the correlations in which the event (or
/// anomaly) is the source or the target, newest first, `{items}`.
#[utoipa::path(
    get,
    path = "/api/v1/events/{id}/correlations",
    tag = "incidents",
    params(
        ("id" = String, Path, description = "The event or anomaly id."),
        ("limit" = Option<u32>, Query, description = "At most this many (default 100, at most 1000)."),
    ),
    responses(
        (status = 200, description = "Correlations in which the signal is source or target, newest first.", body = Items<sightline_model::Correlation>),
    ),
)]
pub(crate) async fn event_correlations(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &["limit"])?;
    let limit = match q.get("limit").map(String::as_str).filter(|s| !s.is_empty()) {
        None => DEFAULT_CORRELATIONS,
        Some(s) => params::limit(Some(s))?.min(MAX_CORRELATIONS),
    };
    let items = state.store.correlations_for_signal(&id, limit).await?;
    Ok(Json(Items { items }).into_response())
}
