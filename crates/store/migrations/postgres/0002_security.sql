-- sightline store, PostgreSQL dialect: users, API keys, refresh tokens and the audit trail.
-- No secret is stored in clear: passwords are Argon2id hashes, API-key secrets and refresh
-- tokens SHA-256 digests (hex). Times are epoch milliseconds. Low volume: not partitioned.

CREATE TABLE users (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    username      TEXT COLLATE "C" NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name            TEXT NOT NULL,
    secret_hash     TEXT NOT NULL,
    scopes          TEXT NOT NULL, -- JSON array of scope names
    allowed_ips     TEXT NOT NULL, -- JSON array of CIDR networks; empty: any
    rate_per_minute BIGINT,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);

CREATE TABLE refresh_tokens (
    token_hash TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL,
    family     TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);

-- Append-only: who did what, when, from where.
CREATE TABLE audit_log (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    timestamp  BIGINT NOT NULL,
    actor      TEXT COLLATE "C" NOT NULL,
    actor_kind TEXT NOT NULL,
    action     TEXT COLLATE "C" NOT NULL,
    target     TEXT,
    source_ip  TEXT,
    success    BOOLEAN NOT NULL,
    details    TEXT NOT NULL -- JSON
);
CREATE INDEX audit_log_time ON audit_log (timestamp DESC, id DESC);
CREATE INDEX audit_log_actor_time ON audit_log (actor, timestamp DESC, id DESC);
