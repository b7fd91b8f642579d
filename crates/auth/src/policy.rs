//! Who is calling ([`Principal`]) and what a route requires ([`Access`]): the vocabulary of
//! the API's route policy table, and the one function that decides.

use serde::Serialize;
use sightline_model::{Role, Scope};

use crate::AuthError;

/// The authenticated caller of a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Principal {
    /// A user with a valid access token (or everyone, as admin, when auth is disabled).
    User {
        /// User id.
        id: String,
        /// Username.
        username: String,
        /// Role.
        role: Role,
    },
    /// A valid, unrevoked API key used from an allowed address.
    ApiKey {
        /// Key id.
        id: String,
        /// Its scopes.
        scopes: Vec<Scope>,
    },
    /// No credentials.
    Anonymous,
}

impl Principal {
    /// The name recorded in the audit log.
    pub fn actor(&self) -> &str {
        match self {
            Principal::User { username, .. } => username,
            Principal::ApiKey { id, .. } => id,
            Principal::Anonymous => "anonymous",
        }
    }

    /// The kind recorded in the audit log.
    pub fn actor_kind(&self) -> sightline_model::ActorKind {
        match self {
            Principal::User { .. } => sightline_model::ActorKind::User,
            Principal::ApiKey { .. } => sightline_model::ActorKind::ApiKey,
            Principal::Anonymous => sightline_model::ActorKind::Anonymous,
        }
    }
}

/// What a route requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Access {
    /// Anyone, without credentials (health, login).
    Public,
    /// A user with at least this role. A key with the `read` scope counts as a viewer.
    Role(Role),
    /// A key with this scope, or a user who is at least an engineer.
    Ingest(Scope),
    /// Like `Ingest(scope)`, but anonymous callers pass too when webhook signing secrets
    /// are configured: the handler then requires a valid signature.
    SignedWebhook(Scope),
}

/// Decides whether `principal` may use a route that requires `access`. Anonymous callers
/// get 401 (authenticate, then retry); known callers without the power get 403.
pub fn authorize(
    principal: &Principal,
    access: Access,
    webhook_signing: bool,
) -> Result<(), AuthError> {
    let allowed = match (principal, access) {
        (_, Access::Public) => true,
        (Principal::Anonymous, Access::SignedWebhook(_)) if webhook_signing => true,
        (Principal::Anonymous, _) => {
            return Err(AuthError::unauthenticated("credentials required"));
        }
        (Principal::User { role, .. }, Access::Role(required)) => role.includes(required),
        (Principal::User { role, .. }, Access::Ingest(_) | Access::SignedWebhook(_)) => {
            role.includes(Role::Engineer)
        }
        (Principal::ApiKey { scopes, .. }, Access::Role(required)) => {
            required == Role::Viewer && scopes.contains(&Scope::Read)
        }
        (Principal::ApiKey { scopes, .. }, Access::Ingest(s) | Access::SignedWebhook(s)) => {
            scopes.contains(&s)
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(AuthError::forbidden(match access {
            Access::Role(role) => format!("requires the {role} role"),
            Access::Ingest(scope) | Access::SignedWebhook(scope) => {
                format!("requires the {scope} scope or the engineer role")
            }
            Access::Public => String::new(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role) -> Principal {
        Principal::User {
            id: "u".into(),
            username: "u".into(),
            role,
        }
    }

    #[test]
    fn roles_scopes_and_anonymous_follow_the_matrix() {
        let key = |scopes: &[Scope]| Principal::ApiKey {
            id: "k".into(),
            scopes: scopes.to_vec(),
        };
        let ingest = Access::Ingest(Scope::IngestEvents);
        assert!(authorize(&Principal::Anonymous, Access::Public, false).is_ok());
        assert!(matches!(
            authorize(&Principal::Anonymous, Access::Role(Role::Viewer), false),
            Err(AuthError::Unauthenticated(_))
        ));
        assert!(authorize(&user(Role::Viewer), Access::Role(Role::Viewer), false).is_ok());
        assert!(matches!(
            authorize(&user(Role::Viewer), ingest, false),
            Err(AuthError::Forbidden(_))
        ));
        assert!(authorize(&user(Role::Engineer), ingest, false).is_ok());
        assert!(authorize(&user(Role::Approver), Access::Role(Role::Admin), false).is_err());
        assert!(authorize(&key(&[Scope::IngestEvents]), ingest, false).is_ok());
        assert!(authorize(&key(&[Scope::IngestMetrics]), ingest, false).is_err());
        assert!(authorize(&key(&[Scope::Read]), Access::Role(Role::Viewer), false).is_ok());
        assert!(authorize(&key(&[Scope::Read]), Access::Role(Role::Engineer), false).is_err());
        let webhook = Access::SignedWebhook(Scope::IngestEvents);
        assert!(authorize(&Principal::Anonymous, webhook, false).is_err());
        assert!(authorize(&Principal::Anonymous, webhook, true).is_ok());
    }
}
