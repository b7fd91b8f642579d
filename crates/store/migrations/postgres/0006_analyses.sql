-- sightline store, PostgreSQL dialect (same tables and semantics as
-- migrations/sqlite/0006_analyses.sql): root-cause analyses of incidents and the feedback
-- operators give on them. Analysis ids are deterministic per incident version, so a replay
-- upserts instead of duplicating. Times are epoch milliseconds; JSON columns are TEXT
-- holding minified JSON (reads give back exactly what was written). Compared text columns
-- use the "C" collation, so ordering is byte-wise like SQLite's.

-- One analysis of one version of an incident (built-in analyst or LLM).
CREATE TABLE ai_analyses (
    id                 TEXT COLLATE "C" NOT NULL PRIMARY KEY, -- Analysis::id_for(incident, updated_at)
    incident_id        TEXT COLLATE "C" NOT NULL,
    root_cause         TEXT NOT NULL,
    root_cause_service TEXT COLLATE "C",
    confidence         DOUBLE PRECISION NOT NULL,
    impacted_services  TEXT NOT NULL, -- JSON array of service names
    suggested_actions  TEXT NOT NULL, -- JSON array of {title, description, risk, command_hint}
    technical_summary  TEXT NOT NULL,
    executive_summary  TEXT NOT NULL,
    evidence           TEXT NOT NULL, -- JSON array of {kind, id}
    flags              TEXT NOT NULL, -- JSON array of strings
    analyst            TEXT COLLATE "C" NOT NULL CHECK (analyst IN ('builtin', 'llm')),
    model              TEXT NOT NULL,
    prompt_tokens      BIGINT NOT NULL,
    completion_tokens  BIGINT NOT NULL,
    latency_ms         BIGINT NOT NULL,
    status             TEXT COLLATE "C" NOT NULL CHECK (status IN ('completed', 'failed')),
    error              TEXT,
    created_at         BIGINT NOT NULL
);
CREATE INDEX ai_analyses_incident ON ai_analyses (incident_id, created_at DESC, id DESC);
CREATE INDEX ai_analyses_root ON ai_analyses (root_cause_service);

-- Operators' verdicts on analyses; appended, never updated.
CREATE TABLE analysis_feedback (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    analysis_id TEXT COLLATE "C" NOT NULL,
    incident_id TEXT COLLATE "C" NOT NULL,
    verdict     TEXT COLLATE "C" NOT NULL CHECK (verdict IN ('helpful', 'not_helpful', 'incorrect')),
    notes       TEXT NOT NULL,
    author      TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX analysis_feedback_analysis ON analysis_feedback (analysis_id);
CREATE INDEX analysis_feedback_incident ON analysis_feedback (incident_id);
