//! [`Auth`]: the one object the API and the CLI use to authenticate callers and to manage
//! users, keys and sessions — every change it makes is written to the audit log.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::Serialize;
use sightline_model::{ActorKind, ApiKey, AuditEntry, Clock, Role, Scope, User, ValidationError};
use sightline_store::{RefreshToken, Store, UserChange};

use crate::config::{AuthConfig, read_secret_file};
use crate::jwt::{Claims, TokenKeys};
use crate::policy::{Access, Principal, authorize};
use crate::rate::KeyRateLimits;
use crate::throttle::LoginThrottle;
use crate::webhook::{WebhookHeaders, WebhookVerifier};
use crate::{AuthError, api_key, opaque, password, telemetry};

/// Longest username.
const MAX_USERNAME: usize = 64;
/// Most API keys the cache remembers before it is cleared.
const KEY_CACHE_MAX: usize = 10_000;

/// Tokens handed out by a login or a refresh.
#[derive(Clone, Debug, Serialize)]
pub struct Session {
    /// The JWT to send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Single-use token for `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Who is logged in.
    pub user: User,
}

/// A freshly created API key: the description and the token, shown this once.
#[derive(Clone, Debug, Serialize)]
pub struct CreatedKey {
    /// The key's description.
    #[serde(flatten)]
    pub key: ApiKey,
    /// The whole key; it cannot be shown again.
    pub token: String,
}

/// What a new API key should allow.
#[derive(Clone, Debug, Default)]
pub struct KeyRequest {
    /// Label.
    pub name: String,
    /// Scopes (at least one).
    pub scopes: Vec<Scope>,
    /// Allowed source networks (empty: any).
    pub allowed_ips: Vec<String>,
    /// Requests per minute (`None`: the configured default).
    pub rate_per_minute: Option<u32>,
}

/// Who is acting, for the audit log: the principal and the client address.
#[derive(Clone, Debug)]
pub struct Actor {
    /// Name recorded (username, key id, `cli`, `system`).
    pub name: String,
    /// Kind recorded.
    pub kind: ActorKind,
    /// Client address, when over the network.
    pub ip: Option<IpAddr>,
}

impl Actor {
    /// The command-line tool, working directly on the store.
    pub fn cli() -> Self {
        Self {
            name: "cli".into(),
            kind: ActorKind::Cli,
            ip: None,
        }
    }

    /// An authenticated API caller.
    pub fn principal(principal: &Principal, ip: Option<IpAddr>) -> Self {
        Self {
            name: principal.actor().to_owned(),
            kind: principal.actor_kind(),
            ip,
        }
    }
}

#[derive(Clone, Debug)]
struct CachedKey {
    key: ApiKey,
    secret_hash: String,
    networks: Vec<IpNet>,
}

/// Authentication and account management (see the module docs).
pub struct Auth {
    config: AuthConfig,
    store: Arc<dyn Store>,
    tokens: TokenKeys,
    webhooks: Option<WebhookVerifier>,
    throttle: LoginThrottle,
    rates: KeyRateLimits,
    keys: Mutex<HashMap<String, (Instant, Option<CachedKey>)>>,
    revoked_access: Mutex<HashMap<String, u64>>,
    bootstrap: Mutex<Option<String>>,
    clock: Clock,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("enabled", &self.config.enabled)
            .field("tokens", &self.tokens)
            .field("webhooks", &self.webhooks)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs CPU-heavy work (Argon2) off the async runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

fn check_username(name: &str) -> Result<String, ValidationError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= MAX_USERNAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(ValidationError::new(
            "username",
            format!("must be 1 to {MAX_USERNAME} of letters, digits, '.', '_', '-', '@'"),
        ))
    }
}

impl Auth {
    /// Builds the service: loads (or generates, in `data_dir`) the token keys and the
    /// webhook secrets.
    pub async fn new(
        config: AuthConfig,
        store: Arc<dyn Store>,
        data_dir: Option<&Path>,
        clock: Clock,
    ) -> Result<Self, AuthError> {
        let tokens = TokenKeys::load(&config.jwt, data_dir).await?;
        let mut secrets = config.webhooks.secrets.clone();
        for file in &config.webhooks.secret_files {
            secrets.push(read_secret_file(file)?);
        }
        secrets.retain(|s| !s.is_empty());
        let webhooks = WebhookVerifier::new(&secrets, config.webhooks.tolerance)?;
        Ok(Self {
            throttle: LoginThrottle::new(config.login_max_failures, config.login_lockout),
            config,
            store,
            tokens,
            webhooks,
            rates: KeyRateLimits::default(),
            keys: Mutex::new(HashMap::new()),
            revoked_access: Mutex::new(HashMap::new()),
            bootstrap: Mutex::new(None),
            clock,
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Whether credentials are required.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Whether inbound webhooks must be (and may be, alone) authenticated by a signature.
    pub fn webhook_signing(&self) -> bool {
        self.webhooks.is_some()
    }

    fn now_secs(&self) -> u64 {
        u64::try_from(self.clock.now_ms() / 1000).unwrap_or(0)
    }

    async fn audit(&self, entry: AuditEntry) {
        if let Err(e) = self.store.append_audit(&entry).await {
            // The action itself already happened; losing its audit line must be loud.
            tracing::error!(action = %entry.action, error = %e, "writing the audit log failed");
            metrics::counter!(telemetry::AUDIT_FAILED).increment(1);
        }
    }

    fn entry(&self, actor: &Actor, action: &str) -> AuditEntry {
        AuditEntry::new(self.clock.now_ms(), &actor.name, actor.kind, action).from_ip(actor.ip)
    }

    // ---------------------------------------------------------------- authentication

    /// Identifies the caller of a request from its `Authorization` header value (`Bearer
    /// <jwt>` or `Bearer slk_…`) or `X-API-Key` value. No credentials: anonymous (or admin,
    /// when auth is disabled).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        api_key: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        if !self.config.enabled {
            return Ok(Principal::User {
                id: "anonymous-admin".into(),
                username: "anonymous".into(),
                role: Role::Admin,
            });
        }
        let bearer = match authorization {
            Some(value) => Some(
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
                    .map(str::trim)
                    .ok_or_else(|| AuthError::unauthenticated("Authorization must be Bearer"))?,
            ),
            None => None,
        };
        let result = match (bearer, api_key) {
            (Some(token), _) if token.starts_with(api_key::PREFIX) => {
                self.authenticate_key(token, ip).await
            }
            (Some(token), _) => self.authenticate_token(token),
            (None, Some(key)) => self.authenticate_key(key.trim(), ip).await,
            (None, None) => return Ok(Principal::Anonymous),
        };
        if let Err(e) = &result {
            metrics::counter!(telemetry::AUTH_FAILED, "reason" => telemetry::reason(e))
                .increment(1);
        }
        result
    }

    fn authenticate_token(&self, token: &str) -> Result<Principal, AuthError> {
        let claims = self.tokens.verify(token)?;
        if !claims.jti.is_empty() && lock(&self.revoked_access).contains_key(&claims.jti) {
            return Err(AuthError::unauthenticated("token was revoked by logout"));
        }
        Ok(Principal::User {
            id: claims.sub,
            username: claims.name,
            role: claims.role,
        })
    }

    async fn authenticate_key(
        &self,
        token: &str,
        ip: Option<IpAddr>,
    ) -> Result<Principal, AuthError> {
        let (id, secret) =
            api_key::parse(token).ok_or_else(|| AuthError::unauthenticated("malformed API key"))?;
        let cached = self.cached_key(id).await?;
        let Some(found) = cached else {
            return Err(AuthError::unauthenticated("unknown API key"));
        };
        if !opaque::matches(secret, &found.secret_hash) {
            return Err(AuthError::unauthenticated("unknown API key"));
        }
        if found.key.revoked_at.is_some() {
            return Err(AuthError::unauthenticated("API key was revoked"));
        }
        if !api_key::ip_allowed(&found.networks, ip) {
            return Err(AuthError::forbidden(
                "API key may not be used from this address",
            ));
        }
        let rate = found
            .key
            .rate_per_minute
            .unwrap_or(self.config.api_key_rate_per_minute);
        self.rates
            .check(id, rate)
            .map_err(|retry_after| AuthError::Throttled {
                reason: format!("API key {id} exceeded {rate} requests per minute"),
                retry_after,
            })?;
        Ok(Principal::ApiKey {
            id: found.key.id,
            scopes: found.key.scopes,
        })
    }

    async fn cached_key(&self, id: &str) -> Result<Option<CachedKey>, AuthError> {
        let now = Instant::now();
        if let Some((at, entry)) = lock(&self.keys).get(id)
            && now.duration_since(*at) < self.config.api_key_cache_ttl
        {
            return Ok(entry.clone());
        }
        let entry = match self.store.api_key(id).await? {
            Some((key, secret_hash)) => Some(CachedKey {
                networks: api_key::parse_networks(&key.allowed_ips).unwrap_or_default(),
                key,
                secret_hash,
            }),
            None => None,
        };
        let mut keys = lock(&self.keys);
        if keys.len() >= KEY_CACHE_MAX {
            keys.clear();
        }
        keys.insert(id.to_owned(), (now, entry.clone()));
        Ok(entry)
    }

    /// Checks `principal` against a route's `access` (see [`authorize`]).
    pub fn authorize(&self, principal: &Principal, access: Access) -> Result<(), AuthError> {
        let result = authorize(principal, access, self.webhook_signing());
        if result.is_err() {
            metrics::counter!(telemetry::AUTH_DENIED).increment(1);
        }
        result
    }

    /// Checks an inbound webhook's signature over the raw body, when signing is configured.
    pub fn verify_webhook(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
    ) -> Result<(), AuthError> {
        match &self.webhooks {
            Some(verifier) => verifier
                .verify(headers, body, self.now_secs())
                .inspect_err(|_| metrics::counter!(telemetry::WEBHOOK_REJECTED).increment(1)),
            None => Ok(()),
        }
    }

    // ---------------------------------------------------------------- sessions

    /// Logs a user in with a password (see [`Auth::check_password`]) and opens a session.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<Session, AuthError> {
        let user = self.check_password(username, password, ip).await?;
        let session = self.open_session(user, None).await?;
        let actor = Actor {
            name: session.user.username.clone(),
            kind: ActorKind::User,
            ip,
        };
        self.audit(self.entry(&actor, "auth.login")).await;
        metrics::counter!(telemetry::LOGIN, "outcome" => "success").increment(1);
        Ok(session)
    }

    /// Checks a user's password. Failures are audited and throttled per user name and per
    /// client address; a locked-out caller gets [`AuthError::Throttled`] without the
    /// password being checked at all.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        let user_key = format!("user:{}", username.trim());
        let ip_key = format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default());
        let keys = [user_key.as_str(), ip_key.as_str()];
        let attempt = Actor {
            name: username.trim().chars().take(MAX_USERNAME).collect(),
            kind: ActorKind::Anonymous,
            ip,
        };
        if let Some(retry_after) = self.throttle.locked(&keys, Instant::now()) {
            self.audit(
                self.entry(&attempt, "auth.login")
                    .failed()
                    .details(serde_json::json!({ "reason": "throttled" })),
            )
            .await;
            metrics::counter!(telemetry::LOGIN, "outcome" => "throttled").increment(1);
            return Err(AuthError::Throttled {
                reason: "too many failed logins".into(),
                retry_after,
            });
        }
        let found = self.store.user_by_name(username.trim()).await?;
        let hash = found
            .as_ref()
            .map_or_else(|| password::dummy_hash().to_owned(), |(_, h)| h.clone());
        let given = password.to_owned();
        let matches = blocking(move || password::verify(&given, &hash)).await;
        match found {
            Some((user, _)) if matches && !user.disabled => {
                self.throttle.succeeded(&user_key);
                Ok(user)
            }
            other => {
                let reason = match other {
                    None => "unknown user",
                    Some((u, _)) if u.disabled && matches => "user disabled",
                    Some(_) => "wrong password",
                };
                self.throttle.failed(&keys, Instant::now());
                self.audit(
                    self.entry(&attempt, "auth.login")
                        .failed()
                        .details(serde_json::json!({ "reason": reason })),
                )
                .await;
                metrics::counter!(telemetry::LOGIN, "outcome" => "failed").increment(1);
                Err(AuthError::unauthenticated("invalid username or password"))
            }
        }
    }

    async fn open_session(&self, user: User, family: Option<String>) -> Result<Session, AuthError> {
        let now_secs = self.now_secs();
        let (access_token, _) = self.tokens.issue(&user, now_secs)?;
        let refresh_token = format!("slr_{}", opaque::random_secret(32));
        let now_ms = self.clock.now_ms();
        let ttl_ms = i64::try_from(self.config.refresh_token_ttl.as_millis()).unwrap_or(i64::MAX);
        self.store
            .insert_refresh_token(&RefreshToken {
                token_hash: opaque::digest(&refresh_token),
                user_id: user.id.clone(),
                family: family.unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
                expires_at: now_ms.saturating_add(ttl_ms),
                created_at: now_ms,
                revoked_at: None,
            })
            .await?;
        Ok(Session {
            access_token,
            token_type: "Bearer",
            expires_in: self.tokens.ttl().as_secs(),
            refresh_token,
            user,
        })
    }

    /// Exchanges a refresh token for a new session; the old token stops working. Using a
    /// token a second time revokes its whole family (it was stolen, or replayed).
    pub async fn refresh(
        &self,
        refresh_token: &str,
        ip: Option<IpAddr>,
    ) -> Result<Session, AuthError> {
        let hash = opaque::digest(refresh_token);
        let now = self.clock.now_ms();
        let Some(stored) = self.store.refresh_token(&hash).await? else {
            return Err(AuthError::unauthenticated("unknown refresh token"));
        };
        let user = self.store.user_by_id(&stored.user_id).await?;
        let actor = Actor {
            name: user
                .as_ref()
                .map_or_else(|| stored.user_id.clone(), |u| u.username.clone()),
            kind: ActorKind::User,
            ip,
        };
        if stored.revoked_at.is_some() || !self.store.revoke_refresh_token(&hash, now).await? {
            let revoked = self
                .store
                .revoke_refresh_family(&stored.family, now)
                .await?;
            self.audit(
                self.entry(&actor, "auth.refresh")
                    .failed()
                    .details(serde_json::json!({
                        "reason": "refresh token reused; session family revoked",
                        "revoked": revoked,
                    })),
            )
            .await;
            return Err(AuthError::unauthenticated(
                "refresh token was already used or revoked",
            ));
        }
        if stored.expires_at <= now {
            return Err(AuthError::unauthenticated("refresh token expired"));
        }
        let user = match user {
            Some(u) if !u.disabled => u,
            _ => return Err(AuthError::unauthenticated("user no longer active")),
        };
        self.open_session(user, Some(stored.family)).await
    }

    /// Ends a session: revokes the refresh token's family and, when given, the access token
    /// (until it would have expired anyway).
    pub async fn logout(
        &self,
        refresh_token: Option<&str>,
        access_token: Option<&str>,
        actor: &Actor,
    ) -> Result<(), AuthError> {
        let now = self.clock.now_ms();
        if let Some(token) = refresh_token
            && let Some(stored) = self.store.refresh_token(&opaque::digest(token)).await?
        {
            self.store
                .revoke_refresh_family(&stored.family, now)
                .await?;
        }
        if let Some(token) = access_token
            && let Ok(Claims { jti, exp, .. }) = self.tokens.verify(token)
        {
            let now_secs = self.now_secs();
            let mut revoked = lock(&self.revoked_access);
            revoked.retain(|_, until| *until > now_secs);
            revoked.insert(jti, exp + self.config.jwt.leeway_secs);
        }
        self.audit(self.entry(actor, "auth.logout")).await;
        Ok(())
    }

    // ---------------------------------------------------------------- bootstrap

    /// When no user exists yet, a one-time token that creates the first admin through
    /// `POST /api/v1/auth/bootstrap`; print it once. `None` once users exist.
    pub async fn bootstrap_token(&self) -> Result<Option<String>, AuthError> {
        if !self.config.enabled || self.store.count_users().await? > 0 {
            return Ok(None);
        }
        let token = format!("slb_{}", opaque::random_secret(24));
        *lock(&self.bootstrap) = Some(opaque::digest(&token));
        Ok(Some(token))
    }

    /// Creates the first admin with the bootstrap token; the token then stops working.
    pub async fn bootstrap(
        &self,
        token: &str,
        username: &str,
        password: &str,
        ip: Option<IpAddr>,
    ) -> Result<User, AuthError> {
        let expected = lock(&self.bootstrap).clone();
        let valid = expected.is_some_and(|digest| opaque::matches(token, &digest));
        if !valid || self.store.count_users().await? > 0 {
            return Err(AuthError::unauthenticated(
                "invalid or used bootstrap token",
            ));
        }
        let actor = Actor {
            name: "bootstrap".into(),
            kind: ActorKind::System,
            ip,
        };
        let user = self
            .create_user(username, password, Role::Admin, &actor)
            .await?;
        *lock(&self.bootstrap) = None;
        Ok(user)
    }

    // ---------------------------------------------------------------- users

    /// Creates a user.
    pub async fn create_user(
        &self,
        username: &str,
        password: &str,
        role: Role,
        actor: &Actor,
    ) -> Result<User, AuthError> {
        let username = check_username(username)?;
        password::check_policy(password)?;
        let given = password.to_owned();
        let hash = blocking(move || password::hash(&given)).await;
        let now = self.clock.now_ms();
        let user = User {
            id: uuid::Uuid::now_v7().to_string(),
            username,
            role,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        self.store.create_user(&user, &hash).await?;
        self.audit(
            self.entry(actor, "user.create")
                .target(&user.username)
                .details(serde_json::json!({ "role": role })),
        )
        .await;
        Ok(user)
    }

    /// Every user.
    pub async fn list_users(&self) -> Result<Vec<User>, AuthError> {
        Ok(self.store.list_users().await?)
    }

    /// Changes a user's role, enabled state or password. Disabling or changing the password
    /// ends the user's sessions.
    pub async fn update_user(
        &self,
        username: &str,
        role: Option<Role>,
        disabled: Option<bool>,
        new_password: Option<&str>,
        actor: &Actor,
    ) -> Result<User, AuthError> {
        let Some((user, _)) = self.store.user_by_name(username.trim()).await? else {
            return Err(AuthError::NotFound(format!("user '{username}'")));
        };
        let password_hash = match new_password {
            Some(p) => {
                password::check_policy(p)?;
                let given = p.to_owned();
                Some(blocking(move || password::hash(&given)).await)
            }
            None => None,
        };
        let ends_sessions = disabled == Some(true) || password_hash.is_some();
        let change = UserChange {
            role,
            disabled,
            password_hash,
        };
        let now = self.clock.now_ms();
        self.store.update_user(&user.id, &change, now).await?;
        if ends_sessions {
            self.store.revoke_user_refresh_tokens(&user.id, now).await?;
        }
        self.audit(
            self.entry(actor, "user.update")
                .target(&user.username)
                .details(serde_json::json!({
                    "role": role,
                    "disabled": disabled,
                    "password_changed": new_password.is_some(),
                })),
        )
        .await;
        self.store
            .user_by_id(&user.id)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("user '{username}'")))
    }

    // ---------------------------------------------------------------- API keys

    /// Creates an API key; the returned token is the only time the secret is visible.
    pub async fn create_key(
        &self,
        request: KeyRequest,
        actor: &Actor,
    ) -> Result<CreatedKey, AuthError> {
        let name = request.name.trim();
        if name.is_empty() || name.len() > 128 || name.chars().any(char::is_control) {
            return Err(
                ValidationError::new("name", "must be 1 to 128 printable characters").into(),
            );
        }
        if request.scopes.is_empty() {
            return Err(ValidationError::new("scopes", "at least one scope is required").into());
        }
        if request.rate_per_minute == Some(0) {
            return Err(ValidationError::new("rate_per_minute", "must be at least 1").into());
        }
        let networks = api_key::parse_networks(&request.allowed_ips)?;
        let mut scopes = request.scopes;
        scopes.sort();
        scopes.dedup();
        let new = api_key::generate();
        let key = ApiKey {
            id: new.id,
            name: name.to_owned(),
            scopes,
            allowed_ips: networks.iter().map(ToString::to_string).collect(),
            rate_per_minute: request.rate_per_minute,
            created_by: actor.name.clone(),
            created_at: self.clock.now_ms(),
            revoked_at: None,
        };
        self.store.create_api_key(&key, &new.secret_hash).await?;
        self.audit(self.entry(actor, "api_key.create").target(&key.id).details(
            serde_json::json!({
                "name": key.name,
                "scopes": key.scopes,
                "allowed_ips": key.allowed_ips,
                "rate_per_minute": key.rate_per_minute,
            }),
        ))
        .await;
        Ok(CreatedKey {
            key,
            token: new.token,
        })
    }

    /// Every API key (without secrets).
    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, AuthError> {
        Ok(self.store.list_api_keys().await?)
    }

    /// Revokes an API key; it stops working on this node at once (on others within the
    /// key cache time).
    pub async fn revoke_key(&self, id: &str, actor: &Actor) -> Result<(), AuthError> {
        if !self.store.revoke_api_key(id, self.clock.now_ms()).await? {
            return Err(AuthError::NotFound(format!("active API key '{id}'")));
        }
        lock(&self.keys).remove(id);
        self.rates.forget(id);
        self.audit(self.entry(actor, "api_key.revoke").target(id))
            .await;
        Ok(())
    }

    /// Records an action taken elsewhere (rule changes, approvals, executions).
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: Option<&str>,
        details: serde_json::Value,
    ) {
        let mut entry = self.entry(actor, action).details(details);
        entry.target = target.map(str::to_owned);
        self.audit(entry).await;
    }
}

/// A fresh `Duration` from whole seconds, rounded up, for `Retry-After`.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}
