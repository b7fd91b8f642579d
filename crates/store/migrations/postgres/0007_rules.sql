-- sightline store, PostgreSQL dialect: trigger rules (when sightline responds). The
-- condition document, group_by and throttle are TEXT holding minified JSON (JSONB would
-- reorder keys; reads must give back exactly what was written). Times are epoch ms.
--
-- Numbered 0007: 0006 is reserved for the response templates landing in parallel. sqlx
-- applies every migration it has not applied yet, in version order, and does not require
-- contiguous versions.
CREATE TABLE trigger_rules (
    id                    TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- UUIDv7
    name                  TEXT NOT NULL,
    description           TEXT NOT NULL,
    applies_to            TEXT NOT NULL CHECK (applies_to IN ('events', 'anomalies', 'incidents')),
    conditions            TEXT NOT NULL, -- JSON object (the condition language)
    severity_threshold    TEXT,
    time_window_minutes   BIGINT,
    threshold_count       BIGINT NOT NULL,
    group_by              TEXT NOT NULL, -- JSON array of paths
    max_triggers_per_hour BIGINT,
    throttle              TEXT,          -- JSON {"mode": "once_within"|"once_after", "minutes": n}
    response_template_id  TEXT,
    active                BOOLEAN NOT NULL,
    created_by            TEXT NOT NULL,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX trigger_rules_created ON trigger_rules (created_at, id);
