//! Who may do what: roles, API-key scopes, users, keys and audit entries.
//!
//! These are the shapes the store keeps and the API and CLI hand around; the checks that
//! use them (password hashing, tokens, the route policy) live in `sightline-auth`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// A user's role. Each role can do everything the roles before it can:
/// `viewer < engineer < approver < admin`.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Views metrics, events, incidents, analyses and dashboards (the LiveOps spec's
    /// MANAGER; `manager` is accepted as an alias).
    #[serde(alias = "manager")]
    Viewer,
    /// Also creates and updates incidents, manages rules, queries and silences.
    Engineer,
    /// Also approves or rejects playbook executions.
    Approver,
    /// Also manages users, API keys and system settings.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Engineer, Role::Approver, Role::Admin];

    /// The role's name as used in tokens, the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Engineer => "engineer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may do what `required` may.
    pub fn includes(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "viewer" | "manager" => Ok(Role::Viewer),
            "engineer" => Ok(Role::Engineer),
            "approver" => Ok(Role::Approver),
            "admin" => Ok(Role::Admin),
            other => Err(ValidationError::new(
                "role",
                format!("'{other}' is not one of viewer, engineer, approver, admin"),
            )),
        }
    }
}

/// What an API key may do. Keys are for producers and integrations, so their powers are
/// narrow and explicit rather than a role.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Scope {
    /// Send events (`POST /api/v1/events`, batch, webhook).
    #[serde(rename = "ingest:events")]
    IngestEvents,
    /// Send metric points.
    #[serde(rename = "ingest:metrics")]
    IngestMetrics,
    /// Append records to user topics (`POST /api/v1/topics/{topic}/records`).
    #[serde(rename = "ingest:topics")]
    IngestTopics,
    /// Read what a viewer may read (dashboards, exporters).
    #[serde(rename = "read")]
    Read,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [
        Scope::IngestEvents,
        Scope::IngestMetrics,
        Scope::IngestTopics,
        Scope::Read,
    ];

    /// The scope's name, e.g. `ingest:events`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::IngestEvents => "ingest:events",
            Scope::IngestMetrics => "ingest:metrics",
            Scope::IngestTopics => "ingest:topics",
            Scope::Read => "read",
        }
    }

    /// Parses a comma-separated scope list such as `ingest:events,ingest:metrics`.
    pub fn parse_list(s: &str) -> Result<Vec<Scope>, ValidationError> {
        let mut scopes: Vec<Scope> = s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            return Err(ValidationError::new(
                "scopes",
                "at least one scope is required",
            ));
        }
        Ok(scopes)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| {
                ValidationError::new(
                    "scopes",
                    format!(
                        "'{s}' is not one of ingest:events, ingest:metrics, ingest:topics, read"
                    ),
                )
            })
    }
}

/// A local user, without the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// Stable id (UUIDv7).
    pub id: String,
    /// Login name, unique.
    pub username: String,
    /// What the user may do.
    pub role: Role,
    /// A disabled user cannot log in and their refresh tokens stop working.
    pub disabled: bool,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// Last change (epoch ms).
    pub updated_at: i64,
}

/// An API key's public description; the secret itself is only ever shown once, at creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    /// Public id, also the key's visible prefix (`slk_<id>_…`).
    pub id: String,
    /// A human label, e.g. `checkout-producer`.
    pub name: String,
    /// What the key may do.
    pub scopes: Vec<Scope>,
    /// Source networks allowed to use the key (CIDR); empty means any.
    pub allowed_ips: Vec<String>,
    /// Requests per minute allowed (burst of the same size); `None` uses the configured default.
    pub rate_per_minute: Option<u32>,
    /// Who created it (username, or `cli`).
    pub created_by: String,
    /// Creation time (epoch ms).
    pub created_at: i64,
    /// When it was revoked (epoch ms), if it was.
    pub revoked_at: Option<i64>,
}

/// Who did something recorded in the audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A logged-in user.
    User,
    /// An API key.
    ApiKey,
    /// The command-line tool working directly on the store.
    Cli,
    /// sightline itself (bootstrap, automatic actions).
    System,
    /// Nobody authenticated (failed logins).
    Anonymous,
}

impl ActorKind {
    /// The kind's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::Cli => "cli",
            ActorKind::System => "system",
            ActorKind::Anonymous => "anonymous",
        }
    }
}

impl FromStr for ActorKind {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ActorKind::User,
            ActorKind::ApiKey,
            ActorKind::Cli,
            ActorKind::System,
            ActorKind::Anonymous,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| ValidationError::new("actor_kind", format!("unknown actor kind '{s}'")))
    }
}

/// One line of the audit trail: who did what, when, from where, and what changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Id (UUIDv7, so ids sort by time).
    pub id: String,
    /// When (epoch ms).
    pub timestamp: i64,
    /// Username, key id, `cli` or `system`; for failed logins, the name that was tried.
    pub actor: String,
    /// What kind of actor.
    pub actor_kind: ActorKind,
    /// What was done, e.g. `auth.login`, `user.create`, `api_key.revoke`.
    pub action: String,
    /// What it was done to (a user name, a key id, a rule id), if anything.
    pub target: Option<String>,
    /// The client address, when the action came over the network.
    pub source_ip: Option<String>,
    /// `true` when the action succeeded.
    pub success: bool,
    /// What changed, or why it failed (never secrets).
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// A new entry stamped `now` with a fresh id.
    pub fn new(
        now_ms: i64,
        actor: impl Into<String>,
        actor_kind: ActorKind,
        action: impl Into<String>,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            timestamp: now_ms,
            actor: actor.into(),
            actor_kind,
            action: action.into(),
            target: None,
            source_ip: None,
            success: true,
            details: serde_json::Value::Null,
        }
    }

    /// Sets what the action was done to.
    #[must_use]
    pub fn target(mut self, target: impl Into<String>) -> Self {
        self.target = Some(target.into());
        self
    }

    /// Sets the client address.
    #[must_use]
    pub fn from_ip(mut self, ip: Option<std::net::IpAddr>) -> Self {
        self.source_ip = ip.map(|ip| ip.to_string());
        self
    }

    /// Marks the action as failed.
    #[must_use]
    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }

    /// Sets the details document.
    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse_with_the_manager_alias() {
        assert!(Role::Admin.includes(Role::Approver));
        assert!(Role::Approver.includes(Role::Engineer));
        assert!(!Role::Viewer.includes(Role::Engineer));
        assert_eq!("MANAGER".parse::<Role>().ok(), Some(Role::Viewer));
        assert_eq!(
            serde_json::from_str::<Role>("\"manager\"").ok(),
            Some(Role::Viewer)
        );
        let err = "root".parse::<Role>().unwrap_err();
        assert_eq!(err.field, "role");
    }

    #[test]
    fn scope_lists_parse_sorted_and_deduplicated() {
        assert_eq!(
            Scope::parse_list("ingest:metrics, ingest:events,ingest:metrics").ok(),
            Some(vec![Scope::IngestEvents, Scope::IngestMetrics])
        );
        assert!(Scope::parse_list("").is_err());
        assert_eq!(Scope::parse_list("admin").unwrap_err().field, "scopes");
        assert_eq!(
            serde_json::to_string(&Scope::IngestEvents).ok().as_deref(),
            Some("\"ingest:events\"")
        );
    }
}
