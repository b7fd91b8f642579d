-- sightline store, PostgreSQL dialect: continuous SQL. `stream_statements` holds the CREATE
-- statements in effect (the catalog is rebuilt from their SQL on start); `query_rows` holds
-- the current rows of every table query, upserted by the engine's deterministic row key.

CREATE TABLE stream_statements (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- lower-cased stream or table name
    id         TEXT COLLATE "C" NOT NULL UNIQUE,      -- UUIDv7: a re-created name is a new query
    seq        BIGINT NOT NULL,                       -- creation order (definitions replay in it)
    sql        TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    created_by TEXT   NOT NULL
);

CREATE TABLE query_rows (
    query_id     TEXT COLLATE "C" NOT NULL,
    row_key      TEXT COLLATE "C" NOT NULL, -- the group key, plus @<window start> when windowed
    group_key    TEXT COLLATE "C" NOT NULL, -- the group key alone, for key lookups
    window_start BIGINT,
    window_end   BIGINT,
    value        TEXT   NOT NULL,           -- the row as a JSON object
    event_time   BIGINT NOT NULL,
    PRIMARY KEY (query_id, row_key)
);
CREATE INDEX query_rows_group ON query_rows (query_id, group_key);
