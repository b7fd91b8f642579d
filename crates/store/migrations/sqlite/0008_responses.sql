-- sightline store, SQLite dialect: playbooks (response templates), their executions, the
-- approvals that gate steps, and the autonomous service's decision log.
--
-- Each row keeps its whole model value as minified JSON in `document` (what the API shows
-- and the engine resumes from); the other columns are copies of the fields that are
-- filtered, ordered or constrained on. Times are epoch milliseconds.
--
-- Numbered 0008: 0006 and 0007 are reserved for changes landing in parallel (sqlx applies
-- any version it has not applied yet, gaps are harmless).

CREATE TABLE response_templates (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE rule_executions (
    id          TEXT    NOT NULL PRIMARY KEY,
    rule_id     TEXT    NOT NULL,
    firing_id   TEXT    UNIQUE, -- a replayed firing never runs twice (NULLs are distinct)
    template_id TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    dry_run     INTEGER NOT NULL,
    document    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX rule_executions_time ON rule_executions (created_at DESC, id DESC);
CREATE INDEX rule_executions_rule ON rule_executions (rule_id, created_at DESC);
CREATE INDEX rule_executions_status ON rule_executions (status, created_at DESC);

-- Only the SHA-256 of an approval token is kept; a token is used at most once.
CREATE TABLE approvals (
    id           TEXT    NOT NULL PRIMARY KEY,
    execution_id TEXT    NOT NULL,
    step_index   INTEGER NOT NULL,
    token_hash   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    decision     TEXT,
    decided_by   TEXT
) STRICT;
CREATE INDEX approvals_execution ON approvals (execution_id, created_at DESC);

CREATE TABLE decision_log (
    id          TEXT    NOT NULL PRIMARY KEY,
    event_id    TEXT,
    incident_id TEXT,
    decision    TEXT    NOT NULL,
    confidence  REAL    NOT NULL,
    document    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX decision_log_time ON decision_log (created_at DESC, id DESC);
CREATE INDEX decision_log_event ON decision_log (event_id, created_at DESC);
