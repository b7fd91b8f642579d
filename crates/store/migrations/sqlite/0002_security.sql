-- sightline store, SQLite dialect: users, API keys, refresh tokens and the audit trail.
-- No secret is stored in clear: passwords are Argon2id hashes, API-key secrets and refresh
-- tokens SHA-256 digests (hex). Times are epoch milliseconds.

CREATE TABLE users (
    id            TEXT    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE api_keys (
    id              TEXT    NOT NULL PRIMARY KEY,
    name            TEXT    NOT NULL,
    secret_hash     TEXT    NOT NULL,
    scopes          TEXT    NOT NULL, -- JSON array of scope names
    allowed_ips     TEXT    NOT NULL, -- JSON array of CIDR networks; empty: any
    rate_per_minute INTEGER,
    created_by      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    revoked_at      INTEGER
) STRICT;

CREATE TABLE refresh_tokens (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL,
    family     TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
) STRICT;
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Append-only: who did what, when, from where.
CREATE TABLE audit_log (
    id         TEXT    NOT NULL PRIMARY KEY,
    timestamp  INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    actor_kind TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    target     TEXT,
    source_ip  TEXT,
    success    INTEGER NOT NULL,
    details    TEXT    NOT NULL -- JSON
) STRICT;
CREATE INDEX audit_log_time ON audit_log (timestamp DESC, id DESC);
CREATE INDEX audit_log_actor_time ON audit_log (actor, timestamp DESC, id DESC);
