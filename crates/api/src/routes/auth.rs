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

/// `POST /api/v1/auth/login`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    #[schema(value_type = String, format = Password)]
    password: Secret,
}

/// Log in.
///
/// Exchanges a username and password for an access token (JWT) and a refresh token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "The session: `{access_token, token_type, expires_in, refresh_token, …}`.", body = Object),
        (status = 401, description = "Unknown user or wrong password."),
        (status = 429, description = "Too many failed attempts; retry after `Retry-After` seconds."),
    ),
)]
pub(crate) async fn login(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let Login { username, password } = parse_json(&body)?;
    let session = state.auth.login(&username, password.expose(), ip).await?;
    Ok(no_store(Json(session)))
}

/// `POST /api/v1/auth/refresh`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Refresh {
    #[schema(value_type = String, format = Password)]
    refresh_token: Secret,
}

/// Refresh a session.
///
/// A new access token for a refresh token; the refresh token is rotated (the old one stops
/// working).
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "auth",
    request_body = Refresh,
    responses(
        (status = 200, description = "The new session, as `login` answers it.", body = Object),
        (status = 401, description = "Unknown, expired or revoked refresh token."),
    ),
)]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let Refresh { refresh_token } = parse_json(&body)?;
    let session = state.auth.refresh(refresh_token.expose(), ip).await?;
    Ok(no_store(Json(session)))
}

/// `POST /api/v1/auth/logout`.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Logout {
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Password)]
    refresh_token: Option<Secret>,
}

/// Log out.
///
/// Revokes the refresh token in the body and/or the access token of the `Authorization`
/// header.
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "auth",
    request_body(content = Option<Logout>, description = "Optional: the refresh token to revoke."),
    responses(
        (status = 204, description = "Logged out."),
        (status = 400, description = "Neither a refresh token nor an access token was sent."),
    ),
)]
pub(crate) async fn logout(
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

/// `POST /api/v1/auth/bootstrap`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Bootstrap {
    /// The one-time bootstrap token the node logged at start-up.
    #[schema(value_type = String, format = Password)]
    token: Secret,
    username: String,
    #[schema(value_type = String, format = Password)]
    password: Secret,
}

/// Create the first admin.
///
/// Creates the first administrator with the one-time bootstrap token; refused once any
/// user exists.
#[utoipa::path(
    post,
    path = "/api/v1/auth/bootstrap",
    tag = "auth",
    request_body = Bootstrap,
    responses(
        (status = 201, description = "The admin user.", body = sightline_model::User),
        (status = 401, description = "Wrong or used bootstrap token."),
        (status = 409, description = "A user exists already."),
    ),
)]
pub(crate) async fn bootstrap(
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

/// Who am I.
///
/// The caller as the server sees it: a user (id, username, role) or an API key (id,
/// scopes).
#[utoipa::path(
    get,
    path = "/api/v1/auth/me",
    tag = "auth",
    responses((status = 200, description = "The caller (`{kind: user|api_key|…, …}`).", body = Object)),
)]
pub(crate) async fn me(Extension(principal): Extension<Principal>) -> Json<Principal> {
    Json(principal)
}

/// `POST /api/v1/auth/password`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    #[schema(value_type = String, format = Password)]
    current_password: Secret,
    #[schema(value_type = String, format = Password)]
    new_password: Secret,
}

/// Change my password.
///
/// The caller's own password; the current one is asked again.
#[utoipa::path(
    post,
    path = "/api/v1/auth/password",
    tag = "auth",
    request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "The new password is not acceptable."),
    ),
)]
pub(crate) async fn change_password(
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
