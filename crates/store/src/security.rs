//! Users, API keys, refresh tokens and the audit trail: the state authentication needs.
//!
//! [`SecurityStore`] is a supertrait of [`Store`](crate::Store), so every backend keeps its
//! security tables next to its data and the CLI can manage users and keys offline against
//! the same database a running node uses. Secrets are never stored: passwords as Argon2id
//! hashes, API keys and refresh tokens as SHA-256 digests of high-entropy random values.
//!
//! The SQL is the same text for both backends (`$n` placeholders work in SQLite too), so
//! one macro implements the trait for each and they cannot drift apart.

use sightline_model::{ActorKind, ApiKey, AuditEntry, Role, User};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::common::column;
use crate::{Cursor, Page, Result, StoreError};

/// A stored refresh token (its digest, never the token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefreshToken {
    /// SHA-256 digest of the token, hex.
    pub token_hash: String,
    /// The user it logs in.
    pub user_id: String,
    /// Every token rotated from one login shares a family; reuse of a rotated token
    /// revokes the whole family (it means the token was stolen).
    pub family: String,
    /// Expiry (epoch ms).
    pub expires_at: i64,
    /// Issue time (epoch ms).
    pub created_at: i64,
    /// When it was used or revoked (epoch ms), if it was.
    pub revoked_at: Option<i64>,
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserChange {
    /// New role.
    pub role: Option<Role>,
    /// Disable or re-enable.
    pub disabled: Option<bool>,
    /// New Argon2id password hash.
    pub password_hash: Option<String>,
}

/// Filters for [`SecurityStore::query_audit`]; newest first, keyset-paginated.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only this actor.
    pub actor: Option<String>,
    /// Only actions starting with this prefix (`auth.` matches `auth.login`).
    pub action_prefix: Option<String>,
    /// Entries at or after (epoch ms).
    pub since: Option<i64>,
    /// Entries before (epoch ms).
    pub until: Option<i64>,
    /// Page size.
    pub limit: u32,
    /// Continue after this cursor.
    pub cursor: Option<Cursor>,
}

/// Persistence for authentication and auditing (see the module docs).
#[async_trait::async_trait]
pub trait SecurityStore: Send + Sync {
    /// Creates a user; [`StoreError::Conflict`] when the username is taken.
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<()>;
    /// A user and their password hash, by username.
    async fn user_by_name(&self, username: &str) -> Result<Option<(User, String)>>;
    /// A user by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>>;
    /// Every user, by username.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// How many users exist (zero means the node still needs bootstrapping).
    async fn count_users(&self) -> Result<u64>;
    /// Applies `change` to the user `id`; false when there is no such user.
    async fn update_user(&self, id: &str, change: &UserChange, now_ms: i64) -> Result<bool>;

    /// Stores a new API key with the digest of its secret.
    async fn create_api_key(&self, key: &ApiKey, secret_hash: &str) -> Result<()>;
    /// A key and its secret digest, by id.
    async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>>;
    /// Every key, newest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>>;
    /// Revokes a key; false when it does not exist or was already revoked.
    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> Result<bool>;

    /// Stores a refresh token.
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()>;
    /// A refresh token by digest.
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>>;
    /// Marks a token used/revoked; true only for the one call that found it active, so
    /// two concurrent refreshes with one token cannot both succeed.
    async fn revoke_refresh_token(&self, token_hash: &str, now_ms: i64) -> Result<bool>;
    /// Revokes every active token of a family; returns how many.
    async fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> Result<u64>;
    /// Revokes every active token of a user (disable, password change); returns how many.
    async fn revoke_user_refresh_tokens(&self, user_id: &str, now_ms: i64) -> Result<u64>;

    /// Appends an audit entry.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Audit entries matching the filters, newest first.
    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>>;
}

/// For stores that wrap another (fault injection, instrumentation): name the inner store and
/// [`SecurityStore`] is implemented by handing every call to it.
pub trait DelegateSecurity: Send + Sync {
    /// The store that keeps the security tables.
    fn security(&self) -> &dyn SecurityStore;
}

#[async_trait::async_trait]
impl<T: DelegateSecurity> SecurityStore for T {
    async fn create_user(&self, user: &User, password_hash: &str) -> Result<()> {
        self.security().create_user(user, password_hash).await
    }
    async fn user_by_name(&self, username: &str) -> Result<Option<(User, String)>> {
        self.security().user_by_name(username).await
    }
    async fn user_by_id(&self, id: &str) -> Result<Option<User>> {
        self.security().user_by_id(id).await
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        self.security().list_users().await
    }
    async fn count_users(&self) -> Result<u64> {
        self.security().count_users().await
    }
    async fn update_user(&self, id: &str, change: &UserChange, now_ms: i64) -> Result<bool> {
        self.security().update_user(id, change, now_ms).await
    }
    async fn create_api_key(&self, key: &ApiKey, secret_hash: &str) -> Result<()> {
        self.security().create_api_key(key, secret_hash).await
    }
    async fn api_key(&self, id: &str) -> Result<Option<(ApiKey, String)>> {
        self.security().api_key(id).await
    }
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>> {
        self.security().list_api_keys().await
    }
    async fn revoke_api_key(&self, id: &str, now_ms: i64) -> Result<bool> {
        self.security().revoke_api_key(id, now_ms).await
    }
    async fn insert_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        self.security().insert_refresh_token(token).await
    }
    async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshToken>> {
        self.security().refresh_token(token_hash).await
    }
    async fn revoke_refresh_token(&self, token_hash: &str, now_ms: i64) -> Result<bool> {
        self.security()
            .revoke_refresh_token(token_hash, now_ms)
            .await
    }
    async fn revoke_refresh_family(&self, family: &str, now_ms: i64) -> Result<u64> {
        self.security().revoke_refresh_family(family, now_ms).await
    }
    async fn revoke_user_refresh_tokens(&self, user_id: &str, now_ms: i64) -> Result<u64> {
        self.security()
            .revoke_user_refresh_tokens(user_id, now_ms)
            .await
    }
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        self.security().append_audit(entry).await
    }
    async fn query_audit(&self, query: &AuditQuery) -> Result<Page<AuditEntry>> {
        self.security().query_audit(query).await
    }
}

pub(crate) const USER_COLUMNS: &str =
    "id, username, password_hash, role, disabled, created_at, updated_at";
pub(crate) const KEY_COLUMNS: &str = "id, name, secret_hash, scopes, allowed_ips, \
     rate_per_minute, created_by, created_at, revoked_at";
pub(crate) const TOKEN_COLUMNS: &str =
    "token_hash, user_id, family, expires_at, created_at, revoked_at";
pub(crate) const AUDIT_COLUMNS: &str =
    "id, timestamp, actor, actor_kind, action, target, source_ip, success, details";

/// Decodes a `users` row into the user and their password hash.
pub(crate) fn user_from_row<'r, R>(row: &'r R) -> Result<(User, String)>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    let id: String = column(row, "id", "users")?;
    let role: String = column(row, "role", "users")?;
    let role = role
        .parse::<Role>()
        .map_err(|e| StoreError::corrupt(format!("users.role of '{id}'"), e))?;
    let user = User {
        username: column(row, "username", "users")?,
        role,
        disabled: column(row, "disabled", "users")?,
        created_at: column(row, "created_at", "users")?,
        updated_at: column(row, "updated_at", "users")?,
        id,
    };
    Ok((user, column(row, "password_hash", "users")?))
}

/// Decodes an `api_keys` row into the key and its secret digest.
pub(crate) fn key_from_row<'r, R>(row: &'r R) -> Result<(ApiKey, String)>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    let id: String = column(row, "id", "api_keys")?;
    let json = |name: &str| -> Result<Vec<String>> {
        let text: String = column(row, name, "api_keys")?;
        serde_json::from_str(&text)
            .map_err(|e| StoreError::corrupt(format!("api_keys.{name} of '{id}'"), e))
    };
    let scopes = json("scopes")?
        .iter()
        .map(|s| s.parse())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| StoreError::corrupt(format!("api_keys.scopes of '{id}'"), e))?;
    let rate: Option<i64> = column(row, "rate_per_minute", "api_keys")?;
    let key = ApiKey {
        name: column(row, "name", "api_keys")?,
        scopes,
        allowed_ips: json("allowed_ips")?,
        rate_per_minute: rate.and_then(|r| u32::try_from(r).ok()),
        created_by: column(row, "created_by", "api_keys")?,
        created_at: column(row, "created_at", "api_keys")?,
        revoked_at: column(row, "revoked_at", "api_keys")?,
        id,
    };
    Ok((key, column(row, "secret_hash", "api_keys")?))
}

/// Decodes a `refresh_tokens` row.
pub(crate) fn token_from_row<'r, R>(row: &'r R) -> Result<RefreshToken>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "refresh_tokens";
    Ok(RefreshToken {
        token_hash: column(row, "token_hash", T)?,
        user_id: column(row, "user_id", T)?,
        family: column(row, "family", T)?,
        expires_at: column(row, "expires_at", T)?,
        created_at: column(row, "created_at", T)?,
        revoked_at: column(row, "revoked_at", T)?,
    })
}

/// Decodes an `audit_log` row.
pub(crate) fn audit_from_row<'r, R>(row: &'r R) -> Result<AuditEntry>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "audit_log";
    let id: String = column(row, "id", T)?;
    let kind: String = column(row, "actor_kind", T)?;
    let actor_kind = kind
        .parse::<ActorKind>()
        .map_err(|e| StoreError::corrupt(format!("audit_log.actor_kind of '{id}'"), e))?;
    let details: String = column(row, "details", T)?;
    let details = serde_json::from_str(&details)
        .map_err(|e| StoreError::corrupt(format!("audit_log.details of '{id}'"), e))?;
    Ok(AuditEntry {
        timestamp: column(row, "timestamp", T)?,
        actor: column(row, "actor", T)?,
        actor_kind,
        action: column(row, "action", T)?,
        target: column(row, "target", T)?,
        source_ip: column(row, "source_ip", T)?,
        success: column(row, "success", T)?,
        details,
        id,
    })
}

/// A JSON array of the items' text forms, as stored in `api_keys.scopes` / `allowed_ips`.
pub(crate) fn json_list<T: std::fmt::Display>(items: &[T]) -> String {
    serde_json::Value::from(items.iter().map(ToString::to_string).collect::<Vec<_>>()).to_string()
}

/// Maps a unique-constraint violation to [`StoreError::Conflict`].
pub(crate) fn conflict(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => StoreError::Database(e),
    }
}

/// Implements [`SecurityStore`] for a backend: `$writer` / `$reader` are expressions giving
/// the pools for writes and reads (the same pool for PostgreSQL), `$db` the sqlx database.
macro_rules! impl_security_store {
    ($store:ty, $db:ty, writer = |$w:ident| $writer:expr, reader = |$r:ident| $reader:expr) => {
        /// Marks the active refresh tokens whose `column` (one of a fixed set, never input)
        /// equals `value` as revoked; returns how many were active.
        async fn revoke_tokens_where(
            pool: &sqlx::Pool<$db>,
            column: &'static str,
            value: &str,
            now_ms: i64,
        ) -> $crate::Result<u64> {
            let done = sqlx::query(&format!(
                "UPDATE refresh_tokens SET revoked_at = $2 \
                 WHERE {column} = $1 AND revoked_at IS NULL"
            ))
            .bind(value)
            .bind(now_ms)
            .execute(pool)
            .await?;
            Ok(done.rows_affected())
        }

        #[async_trait::async_trait]
        impl $crate::security::SecurityStore for $store {
            async fn create_user(
                &self,
                user: &sightline_model::User,
                password_hash: &str,
            ) -> $crate::Result<()> {
                let $w = self;
                sqlx::query(&format!(
                    "INSERT INTO users ({}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    $crate::security::USER_COLUMNS
                ))
                .bind(&user.id)
                .bind(&user.username)
                .bind(password_hash)
                .bind(user.role.as_str())
                .bind(user.disabled)
                .bind(user.created_at)
                .bind(user.updated_at)
                .execute($writer)
                .await
                .map_err(|e| {
                    $crate::security::conflict(e, || {
                        format!("user '{}' already exists", user.username)
                    })
                })?;
                Ok(())
            }

            async fn user_by_name(
                &self,
                username: &str,
            ) -> $crate::Result<Option<(sightline_model::User, String)>> {
                let $r = self;
                sqlx::query(&format!(
                    "SELECT {} FROM users WHERE username = $1",
                    $crate::security::USER_COLUMNS
                ))
                .bind(username)
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::security::user_from_row)
                .transpose()
            }

            async fn user_by_id(&self, id: &str) -> $crate::Result<Option<sightline_model::User>> {
                let $r = self;
                let row = sqlx::query(&format!(
                    "SELECT {} FROM users WHERE id = $1",
                    $crate::security::USER_COLUMNS
                ))
                .bind(id)
                .fetch_optional($reader)
                .await?;
                Ok(row
                    .as_ref()
                    .map($crate::security::user_from_row)
                    .transpose()?
                    .map(|(user, _)| user))
            }

            async fn list_users(&self) -> $crate::Result<Vec<sightline_model::User>> {
                let $r = self;
                sqlx::query(&format!(
                    "SELECT {} FROM users ORDER BY username",
                    $crate::security::USER_COLUMNS
                ))
                .fetch_all($reader)
                .await?
                .iter()
                .map(|row| $crate::security::user_from_row(row).map(|(user, _)| user))
                .collect()
            }

            async fn count_users(&self) -> $crate::Result<u64> {
                let $r = self;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one($reader)
                    .await?;
                Ok(u64::try_from(n).unwrap_or(0))
            }

            async fn update_user(
                &self,
                id: &str,
                change: &$crate::security::UserChange,
                now_ms: i64,
            ) -> $crate::Result<bool> {
                let $w = self;
                let done = sqlx::query(
                    "UPDATE users SET role = COALESCE($2, role), \
                     disabled = COALESCE($3, disabled), \
                     password_hash = COALESCE($4, password_hash), updated_at = $5 \
                     WHERE id = $1",
                )
                .bind(id)
                .bind(change.role.map(sightline_model::Role::as_str))
                .bind(change.disabled)
                .bind(change.password_hash.as_deref())
                .bind(now_ms)
                .execute($writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn create_api_key(
                &self,
                key: &sightline_model::ApiKey,
                secret_hash: &str,
            ) -> $crate::Result<()> {
                let $w = self;
                sqlx::query(&format!(
                    "INSERT INTO api_keys ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    $crate::security::KEY_COLUMNS
                ))
                .bind(&key.id)
                .bind(&key.name)
                .bind(secret_hash)
                .bind($crate::security::json_list(&key.scopes))
                .bind($crate::security::json_list(&key.allowed_ips))
                .bind(key.rate_per_minute.map(i64::from))
                .bind(&key.created_by)
                .bind(key.created_at)
                .bind(key.revoked_at)
                .execute($writer)
                .await
                .map_err(|e| {
                    $crate::security::conflict(e, || format!("API key '{}' already exists", key.id))
                })?;
                Ok(())
            }

            async fn api_key(
                &self,
                id: &str,
            ) -> $crate::Result<Option<(sightline_model::ApiKey, String)>> {
                let $r = self;
                sqlx::query(&format!(
                    "SELECT {} FROM api_keys WHERE id = $1",
                    $crate::security::KEY_COLUMNS
                ))
                .bind(id)
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::security::key_from_row)
                .transpose()
            }

            async fn list_api_keys(&self) -> $crate::Result<Vec<sightline_model::ApiKey>> {
                let $r = self;
                sqlx::query(&format!(
                    "SELECT {} FROM api_keys ORDER BY created_at DESC, id DESC",
                    $crate::security::KEY_COLUMNS
                ))
                .fetch_all($reader)
                .await?
                .iter()
                .map(|row| $crate::security::key_from_row(row).map(|(key, _)| key))
                .collect()
            }

            async fn revoke_api_key(&self, id: &str, now_ms: i64) -> $crate::Result<bool> {
                let $w = self;
                let done = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(id)
                .bind(now_ms)
                .execute($writer)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn insert_refresh_token(
                &self,
                token: &$crate::security::RefreshToken,
            ) -> $crate::Result<()> {
                let $w = self;
                sqlx::query(&format!(
                    "INSERT INTO refresh_tokens ({}) VALUES ($1, $2, $3, $4, $5, $6)",
                    $crate::security::TOKEN_COLUMNS
                ))
                .bind(&token.token_hash)
                .bind(&token.user_id)
                .bind(&token.family)
                .bind(token.expires_at)
                .bind(token.created_at)
                .bind(token.revoked_at)
                .execute($writer)
                .await?;
                Ok(())
            }

            async fn refresh_token(
                &self,
                token_hash: &str,
            ) -> $crate::Result<Option<$crate::security::RefreshToken>> {
                // The writer: a token rotated a moment ago must be seen as used.
                let $w = self;
                sqlx::query(&format!(
                    "SELECT {} FROM refresh_tokens WHERE token_hash = $1",
                    $crate::security::TOKEN_COLUMNS
                ))
                .bind(token_hash)
                .fetch_optional($writer)
                .await?
                .as_ref()
                .map($crate::security::token_from_row)
                .transpose()
            }

            async fn revoke_refresh_token(
                &self,
                token_hash: &str,
                now_ms: i64,
            ) -> $crate::Result<bool> {
                let $w = self;
                Ok(revoke_tokens_where($writer, "token_hash", token_hash, now_ms).await? == 1)
            }

            async fn revoke_refresh_family(
                &self,
                family: &str,
                now_ms: i64,
            ) -> $crate::Result<u64> {
                let $w = self;
                revoke_tokens_where($writer, "family", family, now_ms).await
            }

            async fn revoke_user_refresh_tokens(
                &self,
                user_id: &str,
                now_ms: i64,
            ) -> $crate::Result<u64> {
                let $w = self;
                revoke_tokens_where($writer, "user_id", user_id, now_ms).await
            }

            async fn append_audit(
                &self,
                entry: &sightline_model::AuditEntry,
            ) -> $crate::Result<()> {
                let $w = self;
                sqlx::query(&format!(
                    "INSERT INTO audit_log ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    $crate::security::AUDIT_COLUMNS
                ))
                .bind(&entry.id)
                .bind(entry.timestamp)
                .bind(&entry.actor)
                .bind(entry.actor_kind.as_str())
                .bind(&entry.action)
                .bind(entry.target.as_deref())
                .bind(entry.source_ip.as_deref())
                .bind(entry.success)
                .bind(entry.details.to_string())
                .execute($writer)
                .await?;
                Ok(())
            }

            async fn query_audit(
                &self,
                query: &$crate::security::AuditQuery,
            ) -> $crate::Result<$crate::Page<sightline_model::AuditEntry>> {
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM audit_log",
                    $crate::security::AUDIT_COLUMNS
                ));
                let mut filter = $crate::common::Filter::new();
                if let Some(actor) = &query.actor {
                    filter
                        .and(&mut select)
                        .push("actor = ")
                        .push_bind(actor.clone());
                }
                if let Some(prefix) = &query.action_prefix {
                    filter
                        .and(&mut select)
                        .push("action LIKE ")
                        .push_bind($crate::query::prefix_pattern(prefix))
                        .push(" ESCAPE '\\'");
                }
                $crate::common::push_keyset_page(
                    &mut select,
                    &mut filter,
                    (query.since, query.until),
                    query.cursor.as_ref().map(|c| (c.timestamp, c.id.clone())),
                    "id",
                    query.limit,
                );
                let rows = select.build().fetch_all($reader).await?;
                let entries = rows
                    .iter()
                    .map($crate::security::audit_from_row)
                    .collect::<$crate::Result<Vec<_>>>()?;
                Ok($crate::common::page(entries, query.limit, |e| {
                    $crate::Cursor {
                        timestamp: e.timestamp,
                        id: e.id.clone(),
                    }
                }))
            }
        }
    };
}

pub(crate) use impl_security_store;
