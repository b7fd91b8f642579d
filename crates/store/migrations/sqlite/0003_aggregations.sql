-- sightline store, SQLite dialect: built-in metric rollups and event counters written by
-- the stream engine's rollup job. Ids are deterministic (see sightline-stream's
-- Rollup::id / EventCount::id), so a replayed window upserts its row instead of adding one.
-- Times are epoch milliseconds; windows are [window_start, window_end).

CREATE TABLE aggregations (
    id           TEXT    NOT NULL PRIMARY KEY, -- service|metric|window|window_start
    service_name TEXT    NOT NULL,
    metric_type  TEXT    NOT NULL,
    "window"     TEXT    NOT NULL CHECK ("window" IN ('1m', '5m', '15m')),
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    sum          REAL    NOT NULL,
    min          REAL    NOT NULL,
    max          REAL    NOT NULL,
    avg          REAL    NOT NULL,
    p95          REAL    NOT NULL,
    p99          REAL    NOT NULL
) STRICT;
CREATE INDEX aggregations_series ON aggregations (service_name, metric_type, "window", window_start);
CREATE INDEX aggregations_time ON aggregations (window_start);

CREATE TABLE event_counts (
    id           TEXT    NOT NULL PRIMARY KEY, -- service|severity|window_start
    service_name TEXT    NOT NULL,
    severity     TEXT    NOT NULL,
    window_start INTEGER NOT NULL,
    window_end   INTEGER NOT NULL,
    count        INTEGER NOT NULL
) STRICT;
CREATE INDEX event_counts_series ON event_counts (service_name, severity, window_start);
CREATE INDEX event_counts_time ON event_counts (window_start);
