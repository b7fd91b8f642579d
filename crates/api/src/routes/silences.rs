//! Silences (Alertmanager-like maintenance windows): list, create, expire.
//!
//! A silence's matchers must all match a signal's labels for it to be suppressed between
//! `starts_at` and `ends_at`. Regular expressions (`=~`, `!~`) match the whole value, so
//! they are checked here the way the correlator compiles them: anchored.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sightline_auth::{Actor, Principal};
use sightline_model::{MatchOp, Matcher, Silence, ValidationError};

use super::items::Items;
use super::params::{self, bad, reject_unknown};
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};
use sightline_model::clock::now_ms;

/// Most matchers one silence may have.
const MAX_MATCHERS: usize = 64;
/// Longest matcher value or regular expression, in bytes.
const MAX_VALUE: usize = 1024;
/// Longest comment, in characters.
const MAX_COMMENT: usize = 4_000;
/// Compiled size limit of one regular expression.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// The silence routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .get("/api/v1/silences", list)
        .post("/api/v1/silences", create)
        .delete("/api/v1/silences/{id}", expire)
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
    ApiError::Invalid(ValidationError::new(field, reason))
}

/// A silence as listed, with its state at the time of the request.
#[derive(Serialize, utoipa::ToSchema)]
struct SilenceView {
    #[serde(flatten)]
    silence: Silence,
    /// `active`, `pending` (starts later) or `expired`.
    #[schema(value_type = String)]
    state: &'static str,
}

fn view(silence: Silence, now: i64) -> SilenceView {
    let state = if silence.ends_at <= now {
        "expired"
    } else if silence.starts_at > now {
        "pending"
    } else {
        "active"
    };
    SilenceView { silence, state }
}

/// List silences.
///
/// `GET /api/v1/silences?include_expired=true`: newest first, `{items}`; without
/// `include_expired`, only active and pending ones.
#[utoipa::path(
    get,
    path = "/api/v1/silences",
    tag = "silences",
    params(
        ("include_expired" = Option<bool>, Query, description = "Include expired silences (default: only active and pending ones)."),
    ),
    responses(
        (status = 200, description = "Silences, newest first.", body = Items<SilenceView>),
        (status = 400, description = "An invalid parameter."),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &["include_expired"])?;
    let include_expired = match q.get("include_expired").map(String::as_str) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => {
            return Err(bad(
                "include_expired",
                format!("'{other}' is not true or false"),
            ));
        }
    };
    let now = now_ms();
    let items: Vec<SilenceView> = state
        .store
        .list_silences(include_expired, now)
        .await?
        .into_iter()
        .map(|s| view(s, now))
        .collect();
    Ok(Json(Items { items }).into_response())
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
                invalid(
                    field,
                    format!("'{s}' is neither epoch milliseconds nor RFC 3339"),
                )
            }),
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    matchers: Vec<Matcher>,
    #[serde(default)]
    starts_at: Option<Instant>,
    #[serde(default)]
    ends_at: Option<Instant>,
    /// Instead of `ends_at`: how long from `starts_at`, e.g. `2h`.
    #[serde(default)]
    duration: Option<String>,
    comment: String,
}

/// Checks the matchers: names and values present, regular expressions compile.
fn check_matchers(matchers: &[Matcher]) -> Result<Vec<Matcher>, ApiError> {
    if matchers.is_empty() {
        return Err(invalid(
            "matchers",
            "at least one matcher is required (a silence without matchers would silence everything)",
        ));
    }
    if matchers.len() > MAX_MATCHERS {
        return Err(invalid(
            "matchers",
            format!("more than {MAX_MATCHERS} matchers"),
        ));
    }
    let mut out = Vec::with_capacity(matchers.len());
    for (i, m) in matchers.iter().enumerate() {
        let name = m.name.trim();
        if name.is_empty() {
            return Err(invalid(format!("matchers[{i}].name"), "must not be empty"));
        }
        if name.len() > 128 {
            return Err(invalid(
                format!("matchers[{i}].name"),
                "longer than 128 bytes",
            ));
        }
        if m.value.len() > MAX_VALUE {
            return Err(invalid(
                format!("matchers[{i}].value"),
                format!("longer than {MAX_VALUE} bytes"),
            ));
        }
        if matches!(m.op, MatchOp::Regex | MatchOp::NotRegex) {
            regex::RegexBuilder::new(&format!("^(?:{})$", m.value))
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| {
                    let reason = e.to_string();
                    let reason = reason.lines().last().unwrap_or("invalid").trim();
                    invalid(
                        format!("matchers[{i}].value"),
                        format!("'{}' is not a valid regular expression: {reason}", m.value),
                    )
                })?;
        }
        out.push(Matcher {
            name: name.to_owned(),
            op: m.op,
            value: m.value.clone(),
        });
    }
    Ok(out)
}

/// Create a silence.
///
/// `POST /api/v1/silences`
/// `{matchers: [{name, op, value}], starts_at?, ends_at | duration, comment}`: 201 with
/// the silence.
#[utoipa::path(
    post,
    path = "/api/v1/silences",
    tag = "silences",
    request_body = NewSilence,
    responses(
        (status = 201, description = "The silence.", body = SilenceView),
        (status = 422, description = "An invalid matcher, time or comment."),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let req: NewSilence = parse_json(&body)?;
    let matchers = check_matchers(&req.matchers)?;
    let now = now_ms();
    let starts_at = req
        .starts_at
        .as_ref()
        .map(|t| t.millis("starts_at"))
        .transpose()?
        .unwrap_or(now);
    let ends_at = match (&req.ends_at, &req.duration) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "duration",
                "give either 'ends_at' or 'duration', not both",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "ends_at",
                "required (or give 'duration', e.g. \"2h\")",
            ));
        }
        (Some(t), None) => t.millis("ends_at")?,
        (None, Some(d)) => {
            let ms = params::duration_ms("duration", d).map_err(|e| match e {
                ApiError::BadParameter(v) => ApiError::Invalid(v),
                other => other,
            })?;
            starts_at.saturating_add(ms)
        }
    };
    if ends_at <= starts_at {
        return Err(invalid("ends_at", "must be after 'starts_at'"));
    }
    if ends_at <= now {
        return Err(invalid("ends_at", "must be in the future"));
    }
    let comment = req.comment.trim().to_owned();
    if comment.is_empty() {
        return Err(invalid(
            "comment",
            "must not be empty: say why signals are silenced",
        ));
    }
    if comment.chars().count() > MAX_COMMENT {
        return Err(invalid(
            "comment",
            format!("longer than {MAX_COMMENT} characters"),
        ));
    }
    let actor = Actor::principal(&principal, ip);
    let silence = Silence {
        id: uuid::Uuid::now_v7().to_string(),
        matchers,
        starts_at,
        ends_at,
        created_by: actor.name.clone(),
        comment,
        created_at: now,
    };
    state.store.create_silence(&silence).await?;
    state
        .auth
        .record(
            &actor,
            "silence.create",
            Some(&silence.id),
            serde_json::json!({
                "matchers": silence.matchers,
                "starts_at": silence.starts_at,
                "ends_at": silence.ends_at,
                "comment": silence.comment,
            }),
        )
        .await;
    Ok((StatusCode::CREATED, Json(view(silence, now))).into_response())
}

/// End a silence now.
///
/// `DELETE /api/v1/silences/{id}`: ends the silence now; 200 with it, 404 when unknown.
#[utoipa::path(
    delete,
    path = "/api/v1/silences/{id}",
    tag = "silences",
    params(
        ("id" = String, Path, description = "The silence id."),
    ),
    responses(
        (status = 200, description = "The silence, now expired.", body = SilenceView),
        (status = 404, description = "No such silence."),
    ),
)]
pub(crate) async fn expire(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let now = now_ms();
    let silence = state.store.expire_silence(&id, now).await?;
    state
        .auth
        .record(
            &Actor::principal(&principal, ip),
            "silence.expire",
            Some(&silence.id),
            serde_json::json!({ "ends_at": silence.ends_at }),
        )
        .await;
    Ok(Json(view(silence, now)).into_response())
}
