//! Metric names of the auth crate, defined once.

use crate::AuthError;

/// Requests whose credentials were refused, by `reason`.
pub const AUTH_FAILED: &str = "sightline_auth_failed_total";
/// Authenticated requests refused by the route policy.
pub const AUTH_DENIED: &str = "sightline_auth_denied_total";
/// Login attempts, by `outcome` (success, failed, throttled).
pub const LOGIN: &str = "sightline_auth_logins_total";
/// Inbound webhooks refused for their signature.
pub const WEBHOOK_REJECTED: &str = "sightline_webhook_signature_rejected_total";
/// Audit entries that could not be written.
pub const AUDIT_FAILED: &str = "sightline_audit_write_failed_total";

/// A low-cardinality label for an authentication failure.
pub(crate) fn reason(e: &AuthError) -> &'static str {
    match e {
        AuthError::Unauthenticated(_) => "unauthenticated",
        AuthError::Forbidden(_) => "forbidden",
        AuthError::Throttled { .. } => "rate_limited",
        _ => "error",
    }
}
