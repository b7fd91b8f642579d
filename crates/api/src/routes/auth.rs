//! Sessions: log in with a password, refresh (rotating the refresh token), log out, create
//! the first admin with the bootstrap token, see who you are, change your own password.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use sightline_auth::{Actor, AuthError, Principal};
use sightline_model::Secret;

use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState};

/// The session routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .post("/api/v1/auth/login", login)
        .post("/api/v1/auth/refresh", refresh)
        .post("/api/v1/auth/logout", logout)
        .post("/api/v1/auth/bootstrap", bootstrap)
        .get("/api/v1/auth/me", me)
        .post("/api/v1/auth/password", change_password)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: Secret,
}

async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let Login { username, password } = parse_json(&body)?;
    let session = state.auth.login(&username, password.expose(), ip).await?;
    Ok(no_store(Json(session)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: Secret,
}

async fn refresh(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let Refresh { refresh_token } = parse_json(&body)?;
    let session = state.auth.refresh(refresh_token.expose(), ip).await?;
    Ok(no_store(Json(session)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Logout {
    #[serde(default)]
    refresh_token: Option<Secret>,
}

async fn logout(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: axum::http::HeaderMap,
    SmallBody(body): SmallBody,
) -> Result<StatusCode, ApiError> {
    let Logout { refresh_token } = if body.is_empty() {
        Logout::default()
    } else {
        parse_json(&body)?
    };
    let access = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if refresh_token.is_none() && access.is_none() {
        return Err(ApiError::Malformed(sightline_model::ValidationError::new(
            "refresh_token",
            "nothing to log out: send the refresh token or the access token",
        )));
    }
    state
        .auth
        .logout(
            refresh_token.as_ref().map(Secret::expose),
            access,
            &Actor::principal(&principal, ip),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Bootstrap {
    token: Secret,
    username: String,
    password: Secret,
}

async fn bootstrap(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let Bootstrap {
        token,
        username,
        password,
    } = parse_json(&body)?;
    let user = state
        .auth
        .bootstrap(token.expose(), &username, password.expose(), ip)
        .await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

async fn me(Extension(principal): Extension<Principal>) -> Json<Principal> {
    Json(principal)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    current_password: Secret,
    new_password: Secret,
}

async fn change_password(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<StatusCode, ApiError> {
    let ChangePassword {
        current_password,
        new_password,
    } = parse_json(&body)?;
    let Principal::User { username, .. } = &principal else {
        return Err(ApiError::Auth(AuthError::Forbidden(
            "only users have passwords".into(),
        )));
    };
    // Re-authenticate: a stolen access token alone must not be able to take the account.
    state
        .auth
        .check_password(username, current_password.expose(), ip)
        .await?;
    state
        .auth
        .update_user(
            username,
            None,
            None,
            Some(new_password.expose()),
            &Actor::principal(&principal, ip),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Token responses must not be cached by browsers or proxies.
fn no_store(body: impl IntoResponse) -> Response {
    ([(header::CACHE_CONTROL, "no-store")], body).into_response()
}
