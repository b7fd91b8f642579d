//! `[auth]` settings, with their defaults.
//!
//! Every secret is a [`Secret`] (printed as `[redacted]`) and can also come from a file
//! (`*_file`), so it need not sit in the config file or the environment.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sightline_model::Secret;

/// Authentication settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials on every route but `/health` and login. When false, every
    /// request is treated as an admin — allowed only on loopback (or with `--insecure`).
    pub enabled: bool,
    /// Serve without authentication on a non-loopback address anyway.
    pub allow_insecure: bool,
    /// Access tokens (JWT).
    pub jwt: JwtConfig,
    /// Lifetime of a refresh token; each use rotates it.
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// Requests per minute an API key may make when the key sets no rate itself.
    pub api_key_rate_per_minute: u32,
    /// How long a looked-up API key is trusted before it is read again (a key revoked by
    /// the CLI, bypassing the API, stops working within this time).
    #[serde(with = "humantime_serde")]
    pub api_key_cache_ttl: Duration,
    /// Failed logins (per user name and per client address) before further attempts are
    /// refused for a while; the wait doubles with each further failure.
    pub login_max_failures: u32,
    /// The first wait after `login_max_failures` failures.
    #[serde(with = "humantime_serde")]
    pub login_lockout: Duration,
    /// Signed inbound webhooks.
    pub webhooks: WebhookConfig,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            allow_insecure: false,
            jwt: JwtConfig::default(),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            api_key_rate_per_minute: 60_000,
            api_key_cache_ttl: Duration::from_secs(10),
            login_max_failures: 5,
            login_lockout: Duration::from_secs(1),
            webhooks: WebhookConfig::default(),
        }
    }
}

/// Access-token settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JwtConfig {
    /// `iss` of issued tokens; required in accepted ones.
    pub issuer: String,
    /// `aud` of issued tokens; required in accepted ones.
    pub audience: String,
    /// Lifetime of an access token.
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_secs: u64,
    /// Algorithms accepted at all (`HS256`, `RS256`, `ES256`); a token whose header names
    /// another is refused before any key is looked at.
    pub algorithms: Vec<String>,
    /// The HS256 key sightline signs its own tokens with. Empty: read `secret_file`, or
    /// else a random key generated once in `<data_dir>/auth/jwt.key`.
    pub secret: Secret,
    /// File holding the signing key (e.g. a mounted Kubernetes secret).
    pub secret_file: Option<PathBuf>,
    /// `kid` of the signing key. Empty: derived from the key (a digest prefix).
    pub kid: String,
    /// More keys accepted for verification: older signing keys during rotation, or an SSO
    /// provider's public keys.
    pub verify_keys: Vec<VerifyKeyConfig>,
    /// An SSO provider's JWKS document (RS256/ES256 keys by `kid`), fetched at start-up.
    pub jwks_url: Option<String>,
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: "sightline".into(),
            audience: "sightline-api".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            leeway_secs: 30,
            algorithms: vec!["HS256".into()],
            secret: Secret::default(),
            secret_file: None,
            kid: String::new(),
            verify_keys: Vec::new(),
            jwks_url: None,
        }
    }
}

/// One extra verification key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyKeyConfig {
    /// The `kid` tokens signed with it carry.
    pub kid: String,
    /// `HS256`, `RS256` or `ES256`.
    pub algorithm: String,
    /// HS256: the shared secret.
    #[serde(default)]
    pub secret: Secret,
    /// HS256: a file holding the shared secret; RS256/ES256: a PEM public key.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

/// Signed inbound webhooks (`POST /api/v1/events/webhook`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Active signing secrets (at most two, for rotation). When any is set, every webhook
    /// request must carry a valid signature, and a signature alone authenticates it.
    /// `whsec_`-prefixed secrets are base64 (Standard Webhooks); others are used as bytes.
    pub secrets: Vec<Secret>,
    /// Files holding more secrets, one per file.
    pub secret_files: Vec<PathBuf>,
    /// How far `webhook-timestamp` may be from now.
    #[serde(with = "humantime_serde")]
    pub tolerance: Duration,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            secrets: Vec::new(),
            secret_files: Vec::new(),
            tolerance: Duration::from_secs(300),
        }
    }
}

/// Reads a secret from a file, trimming the trailing newline editors and `kubectl` add.
pub(crate) fn read_secret_file(path: &std::path::Path) -> Result<Secret, crate::AuthError> {
    std::fs::read_to_string(path)
        .map(|s| Secret::new(s.trim_end_matches(['\n', '\r'])))
        .map_err(|e| crate::AuthError::Config(format!("reading {}: {e}", path.display())))
}
