-- sightline store, SQLite dialect: trigger rules (when sightline responds). The condition
-- document, group_by and throttle are minified JSON text, read back exactly as written.
-- Times are epoch milliseconds.
--
-- Numbered 0007: 0006 is reserved for the response templates landing in parallel. sqlx
-- applies every migration it has not applied yet, in version order, and does not require
-- contiguous versions.
CREATE TABLE trigger_rules (
    id                    TEXT    NOT NULL PRIMARY KEY, -- UUIDv7
    name                  TEXT    NOT NULL,
    description           TEXT    NOT NULL,
    applies_to            TEXT    NOT NULL CHECK (applies_to IN ('events', 'anomalies', 'incidents')),
    conditions            TEXT    NOT NULL, -- JSON object (the condition language)
    severity_threshold    TEXT,
    time_window_minutes   INTEGER,
    threshold_count       INTEGER NOT NULL,
    group_by              TEXT    NOT NULL, -- JSON array of paths
    max_triggers_per_hour INTEGER,
    throttle              TEXT,             -- JSON {"mode": "once_within"|"once_after", "minutes": n}
    response_template_id  TEXT,
    active                INTEGER NOT NULL,
    created_by            TEXT    NOT NULL,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;
CREATE INDEX trigger_rules_created ON trigger_rules (created_at, id);
