//! Who may do what in sightline: authentication, authorization and the audit trail.
//!
//! An operations platform that can run remediation commands must let no one in where they
//! don't belong. This crate holds every check, so the API only has to ask:
//!
//! - [`Auth`] authenticates a request from its `Authorization` / `X-API-Key` header
//!   (a short-lived JWT, see [`jwt`], or an API key, see [`api_key`]), logs users in with
//!   Argon2id passwords ([`password`]) behind a failed-login [`throttle`], rotates refresh
//!   tokens (reuse revokes the whole session family), rate-limits keys ([`rate`]), verifies
//!   signed webhooks before their body is parsed ([`webhook`]), and writes every login and
//!   every change to users and keys to the audit log.
//! - [`policy`] is the vocabulary of the API's route table: a [`Principal`] (user, key,
//!   anonymous) against an [`Access`] requirement (public, a role, an ingest scope).
//!
//! Users, keys, tokens and audit entries are kept by the store's `SecurityStore`, so the CLI
//! can create users and keys offline against the same database a node uses.

pub mod api_key;
mod config;
mod error;
pub mod jwt;
pub mod opaque;
pub mod password;
pub mod policy;
pub mod rate;
mod service;
pub mod telemetry;
pub mod throttle;
pub mod webhook;

pub use config::{AuthConfig, JwtConfig, VerifyKeyConfig, WebhookConfig};
pub use error::AuthError;
pub use policy::{Access, Principal};
pub use service::{Actor, Auth, CreatedKey, KeyRequest, Session, retry_after_secs};
pub use webhook::WebhookHeaders;
