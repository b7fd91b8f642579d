//! The store: where events, metrics and (later) everything derived from them are kept for
//! querying.
//!
//! The [`Store`] trait is the only way the rest of sightline touches a database: typed
//! methods, no SQL leaking out. [`SqliteStore`] (WAL mode, in the data directory) is the
//! embedded default; [`PgStore`] (PostgreSQL, time-series tables partitioned by day, see
//! [`PgConfig`]) implements the same trait with the same semantics for scale-out. One
//! behavioural test suite (`tests/conformance`) runs against both.
//!
//! Metric rollups and event counters computed by the stream engine are upserted into
//! `aggregations` and `event_counts` by deterministic id ([`RollupRow`], [`EventCountRow`]).
//!
//! Users, API keys, refresh tokens and the audit trail live in the same database, behind
//! the [`SecurityStore`] supertrait.
//!
//! Anomalies, incidents and their timelines, correlations, silences and the service
//! topology (what detection and correlation produce) live behind the [`IncidentStore`]
//! supertrait.
//!
//! Playbooks (response templates), their executions, approvals and the autonomous
//! service's decision log live behind the [`ResponseStore`] supertrait.
//!
//! Root-cause analyses, operators' feedback on them and per-event insights live behind the
//! [`AnalysisStore`] supertrait.
//!
//! Trigger rules live behind the [`RuleStore`] supertrait.
//!
//! Data enters through the [`sink`]: a consumer in group `store` that reads `system-events`
//! and `metrics.raw` from the event log, writes each batch in one transaction and only then
//! commits its log offsets. Writes are keyed upserts (`event_id` for events, the log
//! position for metrics), so a redelivered batch changes nothing.

mod analyses;
mod common;
mod error;
mod incidents;
mod insights;
mod postgres;
mod queries;
mod query;
mod responses;
mod rollups;
mod rules;
mod security;
pub mod sink;
mod sqlite;

pub use analyses::{
    AnalysisStore, DelegateAnalyses, MAX_ANALYSIS_ROWS, RootCauseVerdict, SimilarIncidents,
};
pub use error::StoreError;
pub use incidents::{
    AnomalyQuery, DelegateIncidents, IncidentCounts, IncidentPatch, IncidentQuery, IncidentStore,
    MAX_CORRELATIONS, StoredAnomaly, StoredTopology, transition_allowed,
};
pub use insights::InsightQuery;
pub use postgres::{PgConfig, PgStore};
pub use queries::{MAX_QUERY_ROWS, QueryRow, QueryRowsRequest, StreamStatement};
pub use query::{
    Analytics, AnalyticsQuery, BucketCounts, Cursor, EventQuery, GroupBy, GroupCount, MAX_BUCKETS,
    MAX_PAGE, MetricPoint, MetricQuery, Page,
};
pub use responses::{
    DecisionQuery, DelegateResponses, ExecutionQuery, MAX_RESPONSE_ROWS, ResponseStore,
};
pub use rollups::{EventCountQuery, EventCountRow, MAX_ROLLUP_ROWS, RollupQuery, RollupRow};
pub use rules::{DelegateRules, RuleStore};
pub use security::{AuditQuery, DelegateSecurity, RefreshToken, SecurityStore, UserChange};
pub use sqlite::SqliteStore;

use sightline_model::{Event, Metric};

/// Result type of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// An event as read from the log, with its log position and its exact payload.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    /// The decoded event.
    pub event: Event,
    /// The record value exactly as it sits in the log (JSON text), kept in `raw_events`.
    pub payload: String,
    /// Log partition.
    pub partition: u32,
    /// Log offset.
    pub offset: u64,
}

/// A metric point as read from the log, with its log position (its idempotency key).
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedMetric {
    /// The decoded metric.
    pub metric: Metric,
    /// Log partition.
    pub partition: u32,
    /// Log offset.
    pub offset: u64,
}

/// How many rows a write inserted and how many it found already present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Rows that were new.
    pub inserted: u64,
    /// Rows already stored (redeliveries or re-sent ids).
    pub duplicates: u64,
}

/// Persistent, queryable storage for everything sightline keeps.
#[async_trait::async_trait]
pub trait Store:
    SecurityStore
    + IncidentStore
    + ResponseStore
    + AnalysisStore
    + RuleStore
    + Send
    + Sync
    + std::fmt::Debug
{
    /// Writes events into `raw_events` and `processed_events` in one transaction; an
    /// `event_id` already stored is left as it is (the first durable version wins).
    async fn write_events(&self, batch: &[LoggedEvent]) -> Result<WriteSummary>;

    /// Writes metric points into `system_metrics` in one transaction, keyed by log position.
    async fn write_metrics(&self, batch: &[LoggedMetric]) -> Result<WriteSummary>;

    /// Events matching the filters, newest first, with keyset pagination.
    async fn query_events(&self, query: &EventQuery) -> Result<Page<Event>>;

    /// One event by id.
    async fn get_event(&self, event_id: &str) -> Result<Option<Event>>;

    /// Event counts per group and per time bucket.
    async fn event_analytics(&self, query: &AnalyticsQuery) -> Result<Analytics>;

    /// Metric points matching the filters, newest first, with keyset pagination.
    async fn query_metrics(&self, query: &MetricQuery) -> Result<Page<MetricPoint>>;

    /// Upserts metric rollups into `aggregations` by id, in one transaction; returns the
    /// rows written. A replayed window replaces its row (same id, same values).
    async fn write_rollups(&self, rows: &[RollupRow]) -> Result<u64>;

    /// Upserts event counters into `event_counts` by id, in one transaction.
    async fn write_event_counts(&self, rows: &[EventCountRow]) -> Result<u64>;

    /// Rollups whose window starts in `[since, until)`, newest first.
    async fn query_rollups(&self, query: &RollupQuery) -> Result<Vec<RollupRow>>;

    /// Event counters whose window starts in `[since, until)`, newest first.
    async fn query_event_counts(&self, query: &EventCountQuery) -> Result<Vec<EventCountRow>>;

    /// Checks the database answers (for `/ready`).
    /// Adds `CREATE` statements in one transaction; [`StoreError::Conflict`] when a name is
    /// taken (then none is added).
    async fn insert_statements(&self, statements: &[StreamStatement]) -> Result<()>;

    /// Removes the statement named `name` and its table's rows; what was removed, if any.
    async fn delete_statement(&self, name: &str) -> Result<Option<StreamStatement>>;

    /// Every statement in effect, in creation order.
    async fn list_statements(&self) -> Result<Vec<StreamStatement>>;

    /// Upserts (or, for tombstones, deletes) rows of a table query by row key.
    async fn write_query_rows(&self, query_id: &str, rows: &[QueryRow]) -> Result<u64>;

    /// Current rows of a table query, in row-key order.
    async fn read_query_rows(&self, request: &QueryRowsRequest) -> Result<Vec<QueryRow>>;

    async fn ping(&self) -> Result<()>;
}
