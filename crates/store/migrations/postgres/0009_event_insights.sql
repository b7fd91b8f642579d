-- sightline store, PostgreSQL dialect (same table and semantics as
-- migrations/sqlite/0009_event_insights.sql): per-event insights, what a language model
-- made of one high-severity event. One insight per event (the event id is the key), so a
-- redelivered event upserts instead of duplicating. Times are epoch milliseconds; JSON
-- columns are TEXT holding minified JSON. Compared text columns use the "C" collation, so
-- ordering is byte-wise like SQLite's.

CREATE TABLE event_insights (
    event_id            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    service_name        TEXT COLLATE "C" NOT NULL,
    severity            TEXT COLLATE "C" NOT NULL,
    fingerprint         TEXT COLLATE "C" NOT NULL,
    root_causes         TEXT NOT NULL, -- JSON array of strings, most likely first
    recommended_actions TEXT NOT NULL, -- JSON array of strings (never executed)
    related_concerns    TEXT NOT NULL, -- JSON array of strings
    confidence          DOUBLE PRECISION NOT NULL,
    summary             TEXT NOT NULL,
    model               TEXT NOT NULL,
    prompt_tokens       BIGINT NOT NULL,
    completion_tokens   BIGINT NOT NULL,
    latency_ms          BIGINT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE INDEX event_insights_created ON event_insights (created_at DESC, event_id DESC);
CREATE INDEX event_insights_service ON event_insights (service_name, created_at DESC);
-- The runner's duplicate check: was this fingerprint explained recently?
CREATE INDEX event_insights_fingerprint ON event_insights (fingerprint, created_at DESC);
