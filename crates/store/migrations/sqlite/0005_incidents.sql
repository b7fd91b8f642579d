-- sightline store, SQLite dialect: what detection and correlation produce and operators
-- act on: anomalies, incidents, the correlations that explain them, silences and the
-- service topology. Ids are deterministic where the producer makes them so (anomalies,
-- detected incidents, correlations), so a replay upserts instead of duplicating.
-- Times are epoch milliseconds. JSON columns hold minified JSON text, as in 0001.
--
-- Numbered 0005: 0004 is reserved for another change landing in parallel. sqlx applies
-- every migration it has not applied yet, in version order, and does not require
-- contiguous versions, so the gap is harmless and 0004 may be applied after this one.

-- One abnormal point of one signal, as judged by one detector.
CREATE TABLE anomalies (
    id            TEXT    NOT NULL PRIMARY KEY, -- Anomaly::id_for(detector, service, signal, ts)
    detector      TEXT    NOT NULL,
    service_name  TEXT    NOT NULL,
    signal_kind   TEXT    NOT NULL CHECK (signal_kind IN ('metric', 'error_rate', 'pattern')),
    signal_name   TEXT    NOT NULL, -- metric type, 'error_events', or fingerprint
    timestamp     INTEGER NOT NULL,
    value         REAL    NOT NULL,
    expected_low  REAL    NOT NULL,
    expected_high REAL    NOT NULL,
    score         REAL    NOT NULL,
    severity      TEXT    NOT NULL,
    explanation   TEXT    NOT NULL,
    event_id      TEXT,
    detected_at   INTEGER NOT NULL,
    incident_id   TEXT              -- set by link_anomalies
) STRICT;
CREATE INDEX anomalies_time ON anomalies (timestamp DESC, id DESC);
CREATE INDEX anomalies_service_time ON anomalies (service_name, timestamp DESC, id DESC);
CREATE INDEX anomalies_detector_time ON anomalies (detector, timestamp DESC, id DESC);
CREATE INDEX anomalies_incident ON anomalies (incident_id);

-- Incidents, one row each; the list-valued fields are JSON.
CREATE TABLE incidents (
    id                TEXT    NOT NULL PRIMARY KEY,
    title             TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    severity          TEXT    NOT NULL,
    severity_rank     INTEGER NOT NULL, -- 0 critical .. 4 info: "at least as severe as"
    score             REAL    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
    service_name      TEXT    NOT NULL,
    affected_services TEXT    NOT NULL, -- JSON array of service names
    detected_at       INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    acknowledged_at   INTEGER,
    resolved_at       INTEGER,
    correlation_id    TEXT    NOT NULL,
    fingerprint       TEXT    NOT NULL,
    labels            TEXT    NOT NULL, -- JSON object of strings
    event_ids         TEXT    NOT NULL, -- JSON array
    anomaly_ids       TEXT    NOT NULL, -- JSON array
    occurrences       INTEGER NOT NULL,
    assignee          TEXT,
    flapping          INTEGER NOT NULL,
    timeline          TEXT    NOT NULL  -- JSON array of timeline entries, oldest first
) STRICT;
CREATE INDEX incidents_time ON incidents (detected_at DESC, id DESC);
CREATE INDEX incidents_status_time ON incidents (status, detected_at DESC, id DESC);
CREATE INDEX incidents_fingerprint ON incidents (fingerprint);

-- Every service an incident touches (its service_name and affected_services), kept in
-- step with the incident row by the store, so "incidents touching service X" is an index
-- lookup with the same SQL on both backends.
CREATE TABLE incident_services (
    service_name TEXT NOT NULL,
    incident_id  TEXT NOT NULL,
    PRIMARY KEY (service_name, incident_id)
) STRICT;
CREATE INDEX incident_services_incident ON incident_services (incident_id);

-- Why a signal (event or anomaly) was folded into an incident.
CREATE TABLE event_correlations (
    id          TEXT    NOT NULL PRIMARY KEY,
    incident_id TEXT    NOT NULL,
    source_id   TEXT    NOT NULL,
    target_id   TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('time_based', 'pattern_based', 'causal')),
    score       REAL    NOT NULL,
    reason      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX event_correlations_incident ON event_correlations (incident_id, created_at, id);
CREATE INDEX event_correlations_source ON event_correlations (source_id, created_at);
CREATE INDEX event_correlations_target ON event_correlations (target_id, created_at);

-- Silences and maintenance windows. Expiring one early sets ends_at to the time of
-- expiry and records it in expired_at; rows are never deleted (they explain suppressions).
CREATE TABLE silences (
    id         TEXT    NOT NULL PRIMARY KEY,
    matchers   TEXT    NOT NULL, -- JSON array of {name, op, value}
    starts_at  INTEGER NOT NULL,
    ends_at    INTEGER NOT NULL,
    created_by TEXT    NOT NULL,
    comment    TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expired_at INTEGER
) STRICT;
CREATE INDEX silences_ends ON silences (ends_at);

-- The current service topology: one row (id = 1) whose version counts the puts.
CREATE TABLE topology (
    id         INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    version    INTEGER NOT NULL,
    document   TEXT    NOT NULL, -- JSON
    updated_at INTEGER NOT NULL,
    updated_by TEXT    NOT NULL
) STRICT;
