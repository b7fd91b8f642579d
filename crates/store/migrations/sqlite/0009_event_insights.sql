-- sightline store, SQLite dialect: per-event insights, what a language model made of one
-- high-severity event. One insight per event (the event id is the key), so a redelivered
-- event upserts instead of duplicating. Times are epoch milliseconds; JSON columns hold
-- minified JSON text, as in 0001.

CREATE TABLE event_insights (
    event_id            TEXT    NOT NULL PRIMARY KEY,
    service_name        TEXT    NOT NULL,
    severity            TEXT    NOT NULL,
    fingerprint         TEXT    NOT NULL,
    root_causes         TEXT    NOT NULL, -- JSON array of strings, most likely first
    recommended_actions TEXT    NOT NULL, -- JSON array of strings (never executed)
    related_concerns    TEXT    NOT NULL, -- JSON array of strings
    confidence          REAL    NOT NULL,
    summary             TEXT    NOT NULL,
    model               TEXT    NOT NULL,
    prompt_tokens       INTEGER NOT NULL,
    completion_tokens   INTEGER NOT NULL,
    latency_ms          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL
) STRICT;
CREATE INDEX event_insights_created ON event_insights (created_at DESC, event_id DESC);
CREATE INDEX event_insights_service ON event_insights (service_name, created_at DESC);
-- The runner's duplicate check: was this fingerprint explained recently?
CREATE INDEX event_insights_fingerprint ON event_insights (fingerprint, created_at DESC);
