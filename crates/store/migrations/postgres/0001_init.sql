-- sightline store, PostgreSQL dialect: the tables the log sink fills, with the same
-- columns and the same semantics as the SQLite schema (migrations/sqlite/0001_init.sql).
--
-- Times are epoch milliseconds (BIGINT). JSON columns (metadata, tags) are TEXT holding the
-- minified JSON exactly as serde_json wrote it: JSONB would reorder keys and reformat
-- numbers, and reads must give back bit-identical values. Every text column uses the "C"
-- collation: ordering and cursor comparisons are then byte-wise like SQLite's BINARY
-- collation, and ILIKE folds ASCII letters only, like SQLite's LIKE.
--
-- Partitioning. raw_events, processed_events and system_metrics are partitioned by day on
-- `timestamp` (the event's or point's own time; raw_events carries it too, so an event's
-- raw and processed rows always share a day and retention drops both together). Daily
-- partitions (<table>_pYYYYMMDD, covering [00:00, 24:00) UTC) are created by the store on
-- demand before a write (PgStore::ensure_partitions); the DEFAULT partitions catch anything
-- else (timestamps outside the years 1900..2200, for which no daily partitions are made)
-- and are otherwise empty. Retention drops whole daily partitions
-- (PgStore::drop_partitions_before).
--
-- Idempotency. A primary key of a partitioned table must contain the partition key, so
-- (timestamp, event_id) could not stop the same event_id arriving again with another
-- timestamp (a producer re-sending an id with different content). SQLite's rule is "the
-- first durable version of an id wins", whatever changed. So ids are claimed in small,
-- non-partitioned tables, event_ids and metric_ids, whose primary key is the id alone:
-- one statement per batch inserts the batch's ids there with ON CONFLICT DO NOTHING and
-- writes only the rows whose ids it newly claimed (RETURNING) into the partitioned tables.
-- A concurrent writer of the same id blocks on the uncommitted claim and then skips it, so
-- the first committed version wins as in SQLite. The claim tables keep the timestamp, which
-- locates an id's day partition (lookups by id prune to one partition) and lets retention
-- delete the claims of the days it drops. Metric ids are log positions, which never change
-- content in a healthy log, but they use the same scheme so that both stores agree even
-- when a position is reused (a recreated topic).

CREATE TABLE event_ids (
    event_id  TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    timestamp BIGINT NOT NULL
);
-- Retention deletes the claims of a dropped day.
CREATE INDEX event_ids_time ON event_ids (timestamp);

CREATE TABLE metric_ids (
    id        TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    timestamp BIGINT NOT NULL
);
CREATE INDEX metric_ids_time ON metric_ids (timestamp);

-- Every accepted event exactly as it sits in the log (the record value's JSON text).
CREATE TABLE raw_events (
    event_id    TEXT COLLATE "C" NOT NULL,
    timestamp   BIGINT NOT NULL, -- the event's timestamp: the partition key
    partition   BIGINT NOT NULL,
    log_offset  BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    payload     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (timestamp, event_id)
) PARTITION BY RANGE (timestamp);
CREATE TABLE raw_events_default PARTITION OF raw_events DEFAULT;

-- The normalized event, one column per field, for filtering and analytics.
CREATE TABLE processed_events (
    event_id       TEXT COLLATE "C" NOT NULL,
    service_name   TEXT COLLATE "C" NOT NULL,
    event_type     TEXT COLLATE "C" NOT NULL,
    timestamp      BIGINT NOT NULL,
    environment    TEXT COLLATE "C" NOT NULL,
    details        TEXT COLLATE "C" NOT NULL,
    severity       TEXT COLLATE "C" NOT NULL,
    metadata       TEXT COLLATE "C" NOT NULL, -- JSON object
    source         TEXT COLLATE "C" NOT NULL,
    source_type    TEXT COLLATE "C" NOT NULL,
    host           TEXT COLLATE "C",
    tags           TEXT COLLATE "C" NOT NULL, -- JSON object of strings
    fingerprint    TEXT COLLATE "C" NOT NULL,
    correlation_id TEXT COLLATE "C" NOT NULL,
    received_at    BIGINT NOT NULL,
    -- Also the newest-first keyset index (scanned backwards) and the lookup by id (the
    -- timestamp comes from event_ids).
    PRIMARY KEY (timestamp, event_id)
) PARTITION BY RANGE (timestamp);
CREATE TABLE processed_events_default PARTITION OF processed_events DEFAULT;

-- Equality filter + newest-first order, one per filterable column (as in SQLite).
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
    id             TEXT COLLATE "C" NOT NULL, -- log position of the record
    service_name   TEXT COLLATE "C" NOT NULL,
    metric_type    TEXT COLLATE "C" NOT NULL,
    value          DOUBLE PRECISION NOT NULL,
    tags           TEXT COLLATE "C" NOT NULL, -- JSON object of strings
    timestamp      BIGINT NOT NULL,
    received_at    BIGINT NOT NULL,
    correlation_id TEXT COLLATE "C" NOT NULL,
    -- Also newest-first pagination without a series filter.
    PRIMARY KEY (timestamp, id)
) PARTITION BY RANGE (timestamp);
CREATE TABLE system_metrics_default PARTITION OF system_metrics DEFAULT;

-- One series over time (service + metric type), newest first.
CREATE INDEX system_metrics_series_time
    ON system_metrics (service_name, metric_type, timestamp DESC, id DESC);
