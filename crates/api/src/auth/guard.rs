//! The guard: identifies the caller (`Authorization: Bearer <jwt | API key>` or
//! `X-API-Key`), looks the matched route up in the policy table and lets the request through
//! only if the caller may use it. Browsers cannot set headers on a WebSocket, so a WebSocket
//! upgrade may carry its bearer token as the subprotocol `sightline.bearer.<token>` instead
//! (the live routes then answer with the subprotocol `sightline`). It runs before any handler or body extractor, so a refused
//! request costs no parsing and runs no handler code.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sightline_auth::{AuthError, Principal};

use super::policy;
use crate::{ApiError, AppState};

/// The client's address (the TCP peer), for key allow-lists, throttling and the audit log.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClientIp(pub(crate) Option<IpAddr>);

pub(crate) async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let Some(access) = route
        .as_deref()
        .and_then(|route| policy::access(req.method(), route))
    else {
        tracing::error!(route = ?route, method = %req.method(), "route has no policy entry; refused");
        return ApiError::Auth(AuthError::Forbidden("route has no access policy".into()))
            .into_response();
    };
    // Owned copies: the request (whose body is not `Sync`) must not be borrowed across the
    // authentication await.
    let (authorization, api_key) = {
        let text = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let authorization = text(header::AUTHORIZATION.as_str()).or_else(|| {
            text(header::SEC_WEBSOCKET_PROTOCOL.as_str())
                .as_deref()
                .and_then(websocket_bearer)
        });
        (authorization, text("x-api-key"))
    };
    let authenticated = state
        .auth
        .authenticate(authorization.as_deref(), api_key.as_deref(), ip)
        .await;
    let principal = match authenticated {
        Ok(p) => p,
        // A stale token must not lock a client out of login or logout.
        Err(_) if matches!(access, sightline_auth::Access::Public) => Principal::Anonymous,
        Err(e) => return ApiError::Auth(e).into_response(),
    };
    if let Err(e) = state.auth.authorize(&principal, access) {
        return ApiError::Auth(e).into_response();
    }
    req.extensions_mut().insert(principal);
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

/// The subprotocol prefix that carries a bearer token on a WebSocket upgrade.
const WEBSOCKET_BEARER: &str = "sightline.bearer.";

/// `Bearer <token>` from a `Sec-WebSocket-Protocol` list holding `sightline.bearer.<token>`.
fn websocket_bearer(protocols: &str) -> Option<String> {
    protocols
        .split(',')
        .find_map(|p| p.trim().strip_prefix(WEBSOCKET_BEARER))
        .filter(|token| !token.is_empty())
        .map(|token| format!("Bearer {token}"))
}

#[cfg(test)]
mod tests {
    use super::websocket_bearer;

    #[test]
    fn a_websocket_subprotocol_carries_the_bearer_token() {
        assert_eq!(
            websocket_bearer("sightline, sightline.bearer.eyJ.a-b_c").as_deref(),
            Some("Bearer eyJ.a-b_c")
        );
        assert_eq!(websocket_bearer("sightline"), None);
        assert_eq!(websocket_bearer("sightline.bearer."), None);
    }
}
