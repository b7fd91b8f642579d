-- sightline store, SQLite dialect: the tables the log sink fills.
--
-- Ids are the idempotency keys: `event_id` for events, the log position
-- (`{partition:05}-{offset:020}`) for metric points. Writers insert with
-- `ON CONFLICT DO NOTHING`, so a redelivered batch changes nothing.
-- Times are epoch milliseconds (INTEGER). JSON columns hold minified JSON text.

-- Every accepted event exactly as it sits in the log (the record value's JSON text).
CREATE TABLE raw_events (
    event_id    TEXT    NOT NULL PRIMARY KEY,
    partition   INTEGER NOT NULL,
    log_offset  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    payload     TEXT    NOT NULL
) STRICT;

-- The normalized event, one column per field, for filtering and analytics.
CREATE TABLE processed_events (
    event_id       TEXT    NOT NULL PRIMARY KEY,
    service_name   TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    timestamp      INTEGER NOT NULL,
    environment    TEXT    NOT NULL,
    details        TEXT    NOT NULL,
    severity       TEXT    NOT NULL,
    metadata       TEXT    NOT NULL, -- JSON object
    source         TEXT    NOT NULL,
    source_type    TEXT    NOT NULL,
    host           TEXT,
    tags           TEXT    NOT NULL, -- JSON object of strings
    fingerprint    TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    received_at    INTEGER NOT NULL
) STRICT;

-- Newest-first keyset pagination over everything, and time-range scans
-- (environment and text filters ride on this one).
CREATE INDEX processed_events_time
    ON processed_events (timestamp DESC, event_id DESC);
-- Equality filter + newest-first order, one per filterable column.
CREATE INDEX processed_events_service_time
    ON processed_events (service_name, timestamp DESC, event_id DESC);
CREATE INDEX processed_events_severity_time
    ON processed_events (severity, timestamp DESC, event_id DESC);
CREATE INDEX processed_events_host_time
    ON processed_events (host, timestamp DESC, event_id DESC);
CREATE INDEX processed_events_type_time
    ON processed_events (event_type, timestamp DESC, event_id DESC);

-- Raw metric points from `metrics.raw`.
CREATE TABLE system_metrics (
    id             TEXT    NOT NULL PRIMARY KEY, -- log position of the record
    service_name   TEXT    NOT NULL,
    metric_type    TEXT    NOT NULL,
    value          REAL    NOT NULL,
    tags           TEXT    NOT NULL, -- JSON object of strings
    timestamp      INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    correlation_id TEXT    NOT NULL
) STRICT;

-- One series over time (service + metric type), newest first.
CREATE INDEX system_metrics_series_time
    ON system_metrics (service_name, metric_type, timestamp DESC, id DESC);
-- Newest-first pagination without a series filter.
CREATE INDEX system_metrics_time
    ON system_metrics (timestamp DESC, id DESC);
