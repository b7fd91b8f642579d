-- sightline store, SQLite dialect: root-cause analyses of incidents and the feedback
-- operators give on them. Analysis ids are deterministic per incident version, so a replay
-- upserts instead of duplicating. Times are epoch milliseconds; JSON columns hold
-- minified JSON text, as in 0001.

-- One analysis of one version of an incident (built-in analyst or LLM).
CREATE TABLE ai_analyses (
    id                 TEXT    NOT NULL PRIMARY KEY, -- Analysis::id_for(incident, updated_at)
    incident_id        TEXT    NOT NULL,
    root_cause         TEXT    NOT NULL,
    root_cause_service TEXT,
    confidence         REAL    NOT NULL,
    impacted_services  TEXT    NOT NULL, -- JSON array of service names
    suggested_actions  TEXT    NOT NULL, -- JSON array of {title, description, risk, command_hint}
    technical_summary  TEXT    NOT NULL,
    executive_summary  TEXT    NOT NULL,
    evidence           TEXT    NOT NULL, -- JSON array of {kind, id}
    flags              TEXT    NOT NULL, -- JSON array of strings
    analyst            TEXT    NOT NULL CHECK (analyst IN ('builtin', 'llm')),
    model              TEXT    NOT NULL,
    prompt_tokens      INTEGER NOT NULL,
    completion_tokens  INTEGER NOT NULL,
    latency_ms         INTEGER NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('completed', 'failed')),
    error              TEXT,
    created_at         INTEGER NOT NULL
) STRICT;
CREATE INDEX ai_analyses_incident ON ai_analyses (incident_id, created_at DESC, id DESC);
CREATE INDEX ai_analyses_root ON ai_analyses (root_cause_service);

-- Operators' verdicts on analyses; appended, never updated.
CREATE TABLE analysis_feedback (
    id          INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    analysis_id TEXT    NOT NULL,
    incident_id TEXT    NOT NULL,
    verdict     TEXT    NOT NULL CHECK (verdict IN ('helpful', 'not_helpful', 'incorrect')),
    notes       TEXT    NOT NULL,
    author      TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX analysis_feedback_analysis ON analysis_feedback (analysis_id);
CREATE INDEX analysis_feedback_incident ON analysis_feedback (incident_id);
