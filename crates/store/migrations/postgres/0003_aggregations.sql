-- sightline store, PostgreSQL dialect: built-in metric rollups and event counters written
-- by the stream engine's rollup job. Ids are deterministic (see sightline-stream's
-- Rollup::id / EventCount::id), so a replayed window upserts its row instead of adding one.
-- Times are epoch milliseconds; windows are [window_start, window_end). These tables hold
-- one row per series and window (not per point), so they are not partitioned.

CREATE TABLE aggregations (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- service|metric|window|window_start
    service_name TEXT COLLATE "C" NOT NULL,
    metric_type  TEXT COLLATE "C" NOT NULL,
    "window"     TEXT COLLATE "C" NOT NULL CHECK ("window" IN ('1m', '5m', '15m')),
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    count        BIGINT NOT NULL,
    sum          DOUBLE PRECISION NOT NULL,
    min          DOUBLE PRECISION NOT NULL,
    max          DOUBLE PRECISION NOT NULL,
    avg          DOUBLE PRECISION NOT NULL,
    p95          DOUBLE PRECISION NOT NULL,
    p99          DOUBLE PRECISION NOT NULL
);
CREATE INDEX aggregations_series ON aggregations (service_name, metric_type, "window", window_start);
CREATE INDEX aggregations_time ON aggregations (window_start);

CREATE TABLE event_counts (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- service|severity|window_start
    service_name TEXT COLLATE "C" NOT NULL,
    severity     TEXT COLLATE "C" NOT NULL,
    window_start BIGINT NOT NULL,
    window_end   BIGINT NOT NULL,
    count        BIGINT NOT NULL
);
CREATE INDEX event_counts_series ON event_counts (service_name, severity, window_start);
CREATE INDEX event_counts_time ON event_counts (window_start);
