-- sightline store, PostgreSQL dialect (same tables and semantics as
-- migrations/sqlite/0005_incidents.sql): what detection and correlation produce and
-- operators act on: anomalies, incidents, the correlations that explain them, silences and the
-- service topology. Ids are deterministic where the producer makes them so (anomalies,
-- detected incidents, correlations), so a replay upserts instead of duplicating.
-- Times are epoch milliseconds. JSON columns are TEXT holding minified JSON, as in 0001
-- (JSONB would reorder keys and reformat numbers; reads must give back exactly what was
-- written). Text columns that
-- are compared or ordered use the "C" collation, so ordering is byte-wise like SQLite's.
-- These tables are small next to the event tables and are not partitioned.
--
-- Numbered 0005: 0004 is reserved for another change landing in parallel. sqlx applies
-- every migration it has not applied yet, in version order, and does not require
-- contiguous versions, so the gap is harmless and 0004 may be applied after this one.

-- One abnormal point of one signal, as judged by one detector.
CREATE TABLE anomalies (
    id            TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- Anomaly::id_for(detector, service, signal, ts)
    detector      TEXT COLLATE "C" NOT NULL,
    service_name  TEXT COLLATE "C" NOT NULL,
    signal_kind   TEXT COLLATE "C" NOT NULL CHECK (signal_kind IN ('metric', 'error_rate', 'pattern')),
    signal_name   TEXT COLLATE "C" NOT NULL, -- metric type, 'error_events', or fingerprint
    timestamp     BIGINT NOT NULL,
    value         DOUBLE PRECISION NOT NULL,
    expected_low  DOUBLE PRECISION NOT NULL,
    expected_high DOUBLE PRECISION NOT NULL,
    score         DOUBLE PRECISION NOT NULL,
    severity      TEXT COLLATE "C" NOT NULL,
    explanation   TEXT NOT NULL,
    event_id      TEXT COLLATE "C",
    detected_at   BIGINT NOT NULL,
    incident_id   TEXT COLLATE "C" -- set by link_anomalies
);
CREATE INDEX anomalies_time ON anomalies (timestamp DESC, id DESC);
CREATE INDEX anomalies_service_time ON anomalies (service_name, timestamp DESC, id DESC);
CREATE INDEX anomalies_detector_time ON anomalies (detector, timestamp DESC, id DESC);
CREATE INDEX anomalies_incident ON anomalies (incident_id);

-- Incidents, one row each; the list-valued fields are JSON.
CREATE TABLE incidents (
    id                TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    title             TEXT NOT NULL,
    description       TEXT NOT NULL,
    severity          TEXT COLLATE "C" NOT NULL,
    severity_rank     BIGINT NOT NULL, -- 0 critical .. 4 info: "at least as severe as"
    score             DOUBLE PRECISION NOT NULL,
    status            TEXT COLLATE "C" NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    service_name      TEXT COLLATE "C" NOT NULL,
    affected_services TEXT NOT NULL, -- JSON array of service names
    detected_at       BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    acknowledged_at   BIGINT,
    resolved_at       BIGINT,
    correlation_id    TEXT COLLATE "C" NOT NULL,
    fingerprint       TEXT COLLATE "C" NOT NULL,
    labels            TEXT NOT NULL, -- JSON object of strings
    event_ids         TEXT NOT NULL, -- JSON array
    anomaly_ids       TEXT NOT NULL, -- JSON array
    occurrences       BIGINT NOT NULL,
    assignee          TEXT,
    flapping          BOOLEAN NOT NULL,
    timeline          TEXT NOT NULL  -- JSON array of timeline entries, oldest first
);
CREATE INDEX incidents_time ON incidents (detected_at DESC, id DESC);
CREATE INDEX incidents_status_time ON incidents (status, detected_at DESC, id DESC);
CREATE INDEX incidents_fingerprint ON incidents (fingerprint);

-- Every service an incident touches (its service_name and affected_services), kept in
-- step with the incident row by the store, so "incidents touching service X" is an index
-- lookup with the same SQL on both backends.
CREATE TABLE incident_services (
    service_name TEXT COLLATE "C" NOT NULL,
    incident_id  TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (service_name, incident_id)
);
CREATE INDEX incident_services_incident ON incident_services (incident_id);

-- Why a signal (event or anomaly) was folded into an incident.
CREATE TABLE event_correlations (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    incident_id TEXT COLLATE "C" NOT NULL,
    source_id   TEXT COLLATE "C" NOT NULL,
    target_id   TEXT COLLATE "C" NOT NULL,
    kind        TEXT COLLATE "C" NOT NULL CHECK (kind IN ('time_based', 'pattern_based', 'causal')),
    score       DOUBLE PRECISION NOT NULL,
    reason      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX event_correlations_incident ON event_correlations (incident_id, created_at, id);
CREATE INDEX event_correlations_source ON event_correlations (source_id, created_at);
CREATE INDEX event_correlations_target ON event_correlations (target_id, created_at);

-- Silences and maintenance windows. Expiring one early sets ends_at to the time of
-- expiry and records it in expired_at; rows are never deleted (they explain suppressions).
CREATE TABLE silences (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    matchers   TEXT NOT NULL, -- JSON array of {name, op, value}
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expired_at BIGINT
);
CREATE INDEX silences_ends ON silences (ends_at);

-- The current service topology: one row (id = 1) whose version counts the puts.
CREATE TABLE topology (
    id         SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    version    BIGINT NOT NULL,
    document   TEXT NOT NULL, -- JSON
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
