-- sightline store, SQLite dialect: continuous SQL. `stream_statements` holds the CREATE
-- statements in effect (the catalog is rebuilt from their SQL on start); `query_rows` holds
-- the current rows of every table query, upserted by the engine's deterministic row key.

CREATE TABLE stream_statements (
    name       TEXT    NOT NULL PRIMARY KEY, -- lower-cased stream or table name
    id         TEXT    NOT NULL UNIQUE,      -- UUIDv7: a re-created name is a new query
    seq        INTEGER NOT NULL,             -- creation order (definitions replay in it)
    sql        TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    created_by TEXT    NOT NULL
) STRICT;

CREATE TABLE query_rows (
    query_id     TEXT    NOT NULL,
    row_key      TEXT    NOT NULL, -- the group key, plus @<window start> when windowed
    group_key    TEXT    NOT NULL, -- the group key alone, for key lookups
    window_start INTEGER,
    window_end   INTEGER,
    value        TEXT    NOT NULL, -- the row as a JSON object
    event_time   INTEGER NOT NULL,
    PRIMARY KEY (query_id, row_key)
) STRICT;
CREATE INDEX query_rows_group ON query_rows (query_id, group_key);
