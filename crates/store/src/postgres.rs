//! The scale-out store: PostgreSQL, with the time-series tables partitioned by day.
//!
//! It exists so several sightline nodes can share one queryable store, and so retention
//! can drop a whole day at once instead of deleting rows. It gives exactly the answers
//! [`SqliteStore`](crate::SqliteStore) gives for the same calls (the shared conformance
//! suite in `tests/conformance` runs against both); the decoding, paging and analytics
//! folding code is shared with it (`common`).
//!
//! Schema and reasoning: `migrations/postgres/0001_init.sql`. In short:
//!
//! - `raw_events`, `processed_events` and `system_metrics` are `PARTITION BY RANGE
//!   (timestamp)` with one partition per UTC day, created on demand before a write
//!   ([`PgStore::ensure_partitions`]; the set of existing days is cached in memory, so a
//!   batch for known days costs no extra round trip) and a `DEFAULT` partition as safety
//!   net;
//! - idempotency by id is kept by claiming ids in the non-partitioned `event_ids` /
//!   `metric_ids` tables (`ON CONFLICT DO NOTHING … RETURNING`) in the same statement that
//!   writes only the newly claimed rows: the first durable version of an id wins;
//! - a batch is one statement per table (`UNNEST` of one array per column, with
//!   data-modifying CTEs), hence one transaction;
//! - retention ([`PgStore::drop_partitions_before`], [`PgStore::apply_retention`]) drops
//!   whole daily partitions and the id claims of those days.
//!
//! Text columns cannot hold NUL characters in PostgreSQL (SQLite's can). So that such an
//! event cannot become a poison pill the sink retries forever, NULs in plain text columns
//! are stored as U+FFFD; JSON columns escape them and are exact.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sightline_model::Event;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection as _, Executor as _, PgConnection, Postgres, QueryBuilder, Row as _};
use tokio::sync::{RwLock, RwLockReadGuard};

use crate::common::{
    Filter, analytics_from_rows, analytics_select, check_analytics, event_from_row,
    metric_from_row, metric_id, page, push_keyset_page, summary, to_i64, to_json,
};
use crate::query::contains_pattern;
use crate::{
    Analytics, AnalyticsQuery, Cursor, EventQuery, LoggedEvent, LoggedMetric, MAX_PAGE,
    MetricPoint, MetricQuery, Page, Result, Store, StoreError, WriteSummary,
};

/// Milliseconds in a (UTC) day: the width of a partition.
const DAY_MS: i64 = 86_400_000;

/// The tables partitioned by day, all on `timestamp`.
const PARTITIONED_TABLES: [&str; 3] = ["raw_events", "processed_events", "system_metrics"];

/// Daily partitions exist for days in `FIRST_PARTITION_DAY..END_PARTITION_DAY`
/// (1900-01-01 to 2199-12-31): anything outside (implausible, but storable) goes to the
/// DEFAULT partitions. The range is fixed, so a day with rows in DEFAULT never needs a
/// daily partition later (PostgreSQL refuses to create one over rows in DEFAULT).
const FIRST_PARTITION_DAY: i64 = days_from_civil(1900, 1, 1);
const END_PARTITION_DAY: i64 = days_from_civil(2200, 1, 1);

/// Most days one [`PgStore::ensure_partitions`] call may create (three tables each).
const MAX_DAYS_PER_ENSURE: i64 = 1_000;

/// Columns of `processed_events`, in select order.
const EVENT_COLUMNS: &str = "event_id, service_name, event_type, timestamp, environment, \
     details, severity, metadata, source, source_type, host, tags, fingerprint, \
     correlation_id, received_at";

/// Columns of `system_metrics`, in select order.
const METRIC_COLUMNS: &str =
    "id, service_name, metric_type, value, tags, timestamp, received_at, correlation_id";

/// One statement per event batch: claim the ids, then write raw and processed rows of the
/// ids newly claimed. Ids are claimed in id order so two writers of overlapping batches
/// cannot deadlock. The batch holds each id once (deduplicated before binding).
const INSERT_EVENTS: &str = "\
WITH input AS (
    SELECT * FROM UNNEST(
        $1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::int8[],
        $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
        $14::text[], $15::text[], $16::text[], $17::text[], $18::int8[]
    ) AS t(event_id, log_partition, log_offset, payload, service_name, event_type, ts,
           environment, details, severity, metadata, source, source_type, host, tags,
           fingerprint, correlation_id, received_at)
),
claimed AS (
    INSERT INTO event_ids (event_id, timestamp)
    SELECT event_id, ts FROM input ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
),
fresh AS (
    SELECT input.* FROM input JOIN claimed USING (event_id)
),
raw AS (
    INSERT INTO raw_events (event_id, timestamp, partition, log_offset, received_at, payload)
    SELECT event_id, ts, log_partition, log_offset, received_at, payload FROM fresh
)
INSERT INTO processed_events (event_id, service_name, event_type, timestamp, environment,
    details, severity, metadata, source, source_type, host, tags, fingerprint,
    correlation_id, received_at)
SELECT event_id, service_name, event_type, ts, environment, details, severity, metadata,
    source, source_type, host, tags, fingerprint, correlation_id, received_at
FROM fresh";

/// One statement per metric batch, claiming ids like [`INSERT_EVENTS`].
const INSERT_METRICS: &str = "\
WITH input AS (
    SELECT * FROM UNNEST(
        $1::text[], $2::text[], $3::text[], $4::float8[], $5::text[], $6::int8[],
        $7::int8[], $8::text[]
    ) AS t(id, service_name, metric_type, value, tags, ts, received_at, correlation_id)
),
claimed AS (
    INSERT INTO metric_ids (id, timestamp)
    SELECT id, ts FROM input ORDER BY id
    ON CONFLICT (id) DO NOTHING
    RETURNING id
)
INSERT INTO system_metrics (id, service_name, metric_type, value, tags, timestamp,
    received_at, correlation_id)
SELECT id, service_name, metric_type, value, tags, ts, received_at, correlation_id
FROM input JOIN claimed USING (id)";

/// Settings of the PostgreSQL store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgConfig {
    /// Connection URL, e.g. `postgres://sightline@db:5432/sightline`.
    pub url: String,
    /// Most connections in the pool.
    pub max_connections: u32,
    /// `statement_timeout` of every connection, in ms (0 disables it).
    pub statement_timeout_ms: u64,
    /// Schema holding the tables (the connections' `search_path`); created if missing.
    /// `None` uses the database's default search path.
    pub schema: Option<String>,
    /// Days of data [`PgStore::apply_retention`] keeps; `None` keeps everything.
    pub retention_days: Option<u32>,
}

impl Default for PgConfig {
    fn default() -> Self {
        Self {
            url: "postgres://localhost:5432/sightline".to_owned(),
            max_connections: 8,
            statement_timeout_ms: 30_000,
            schema: None,
            retention_days: None,
        }
    }
}

/// The PostgreSQL [`Store`] (see the module docs).
#[derive(Clone, Debug)]
pub struct PgStore {
    pool: PgPool,
    /// Days (since the epoch) whose daily partitions exist in all three tables. Writers
    /// hold a read guard while they write, so retention (write guard) never drops a day
    /// under a write that expects it to exist.
    days: Arc<RwLock<BTreeSet<i64>>>,
    retention_days: Option<u32>,
}

impl PgStore {
    /// Connects, creates the configured schema if missing, and applies pending migrations.
    pub async fn connect(config: &PgConfig) -> Result<PgStore> {
        let options = PgConnectOptions::from_str(&config.url)?
            .application_name("sightline")
            .options([("statement_timeout", config.statement_timeout_ms)]);

        // One connection first: it fails fast when the server is unreachable (the pool
        // would keep retrying until its acquire timeout), and creates the schema.
        let mut conn = PgConnection::connect_with(&options).await?;
        let search_path = config.schema.as_deref().map(quote_ident);
        if let Some(schema) = &search_path {
            let created = sqlx::raw_sql(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut conn)
                .await;
            // Two stores creating the same schema at once: the loser sees a unique
            // violation although the schema now exists; connecting below settles it.
            if let Err(error) = created {
                tracing::debug!(%error, "creating the store schema failed; using it anyway");
            }
        }
        conn.close().await?;

        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections.max(1))
            .after_connect(move |conn, _meta| {
                let set = search_path
                    .as_ref()
                    .map(|schema| format!("SET search_path TO {schema}"));
                Box::pin(async move {
                    if let Some(set) = set {
                        conn.execute(set.as_str()).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;

        let store = PgStore {
            pool,
            days: Arc::default(),
            retention_days: config.retention_days,
        };
        let existing = store.existing_days().await?;
        *store.days.write().await = existing.complete;
        Ok(store)
    }

    /// The connection pool, for inspection and maintenance (tests, admin tools).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Waits for in-flight work and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Creates the missing daily partitions covering `[from_ms, to_ms)` in every
    /// partitioned table (days outside 1900..2200 are left to the DEFAULT partitions).
    /// Writes call this themselves; it is public to create partitions ahead of time.
    pub async fn ensure_partitions(&self, from_ms: i64, to_ms: i64) -> Result<()> {
        if to_ms <= from_ms {
            return Ok(());
        }
        let first = day_of(from_ms).max(FIRST_PARTITION_DAY);
        let last = day_of(to_ms - 1).min(END_PARTITION_DAY - 1);
        if last - first >= MAX_DAYS_PER_ENSURE {
            return Err(StoreError::InvalidQuery(format!(
                "{} daily partitions requested; at most {MAX_DAYS_PER_ENSURE} at once",
                last - first + 1
            )));
        }
        let wanted: BTreeSet<i64> = (first..=last).collect();
        drop(self.partitions_for_days(wanted).await?);
        Ok(())
    }

    /// Drops every daily partition that ends at or before `cutoff_ms` (in all three
    /// tables) together with the id claims of those days, in one transaction. Returns the
    /// number of days dropped. Rows in the DEFAULT partitions are left alone.
    ///
    /// An event of a dropped day that is delivered again is stored again (its claim is
    /// gone): retention should stay well behind the log's own retention.
    pub async fn drop_partitions_before(&self, cutoff_ms: i64) -> Result<u32> {
        let mut known = self.days.write().await;
        let existing = self.existing_days().await?;
        let doomed: Vec<i64> = existing
            .any
            .iter()
            .copied()
            .filter(|day| day.saturating_add(1).saturating_mul(DAY_MS) <= cutoff_ms)
            .collect();
        let Some(&last) = doomed.last() else {
            return Ok(0);
        };

        let mut tx = self.pool.begin().await?;
        for day in &doomed {
            let names: Vec<String> = PARTITIONED_TABLES
                .iter()
                .map(|table| quote_ident(&partition_name(table, *day)))
                .collect();
            sqlx::raw_sql(&format!("DROP TABLE IF EXISTS {}", names.join(", ")))
                .execute(&mut *tx)
                .await?;
        }
        // Claims live only where daily partitions do (or in DEFAULT ranges, which lie
        // outside FIRST_PARTITION_DAY..END_PARTITION_DAY), so one range covers them all.
        let (from, to) = (FIRST_PARTITION_DAY * DAY_MS, (last + 1) * DAY_MS);
        for table in ["event_ids", "metric_ids"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE timestamp >= $1 AND timestamp < $2"
            ))
            .bind(from)
            .bind(to)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;

        for day in &doomed {
            known.remove(day);
        }
        tracing::info!(
            days = doomed.len(),
            cutoff_ms,
            "store retention dropped daily partitions"
        );
        Ok(u32::try_from(doomed.len()).unwrap_or(u32::MAX))
    }

    /// Applies the configured retention (`retention_days`) as of `now_ms`; returns the
    /// number of days dropped (0 without a retention setting).
    pub async fn apply_retention(&self, now_ms: i64) -> Result<u32> {
        match self.retention_days {
            Some(days) => {
                let keep = i64::from(days).saturating_mul(DAY_MS);
                self.drop_partitions_before(now_ms.saturating_sub(keep))
                    .await
            }
            None => Ok(0),
        }
    }

    /// A read guard on the partition cache, once the partitions of every timestamp in
    /// `timestamps` exist. Hold it for the duration of the write.
    async fn partitions_for(
        &self,
        timestamps: impl Iterator<Item = i64>,
    ) -> Result<RwLockReadGuard<'_, BTreeSet<i64>>> {
        let wanted: BTreeSet<i64> = timestamps
            .map(day_of)
            .filter(|day| (FIRST_PARTITION_DAY..END_PARTITION_DAY).contains(day))
            .collect();
        self.partitions_for_days(wanted).await
    }

    async fn partitions_for_days(
        &self,
        wanted: BTreeSet<i64>,
    ) -> Result<RwLockReadGuard<'_, BTreeSet<i64>>> {
        {
            let known = self.days.read().await;
            if wanted.is_subset(&known) {
                return Ok(known);
            }
        }
        let mut known = self.days.write().await;
        let missing: Vec<i64> = wanted.difference(&known).copied().collect();
        if !missing.is_empty() {
            if let Err(error) = self.create_partitions(&missing).await {
                // Another process may have created some of them at the same moment: look
                // again, and try once more for what is still missing.
                tracing::debug!(%error, "creating partitions failed; retrying");
                let existing = self.existing_days().await?;
                let still: Vec<i64> = missing
                    .iter()
                    .copied()
                    .filter(|day| !existing.complete.contains(day))
                    .collect();
                if !still.is_empty() {
                    self.create_partitions(&still).await?;
                }
            }
            known.extend(missing);
        }
        Ok(known.downgrade())
    }

    /// Creates the daily partitions of `days` in all three tables, in one round trip.
    async fn create_partitions(&self, days: &[i64]) -> Result<()> {
        let mut sql = String::new();
        for &day in days {
            let (from, to) = (day * DAY_MS, (day + 1) * DAY_MS);
            for table in PARTITIONED_TABLES {
                sql.push_str(&format!(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} \
                     FOR VALUES FROM ({from}) TO ({to});\n",
                    quote_ident(&partition_name(table, day)),
                ));
            }
        }
        // Several statements in one simple query run as one implicit transaction.
        sqlx::raw_sql(&sql).execute(&self.pool).await?;
        tracing::debug!(days = days.len(), "created daily partitions");
        Ok(())
    }

    /// The days that have daily partitions, per the catalog.
    async fn existing_days(&self) -> Result<ExistingDays> {
        let rows = sqlx::query(
            "SELECT parent.relname AS parent, child.relname AS child \
             FROM pg_inherits i \
             JOIN pg_class parent ON parent.oid = i.inhparent \
             JOIN pg_class child ON child.oid = i.inhrelid \
             WHERE i.inhparent = ANY($1::regclass[])",
        )
        .bind(PARTITIONED_TABLES.as_slice())
        .fetch_all(&self.pool)
        .await?;
        let mut per_table: Vec<BTreeSet<i64>> = vec![BTreeSet::new(); PARTITIONED_TABLES.len()];
        for row in &rows {
            let parent: String = row.try_get("parent")?;
            let child: String = row.try_get("child")?;
            if let Some(index) = PARTITIONED_TABLES.iter().position(|t| *t == parent)
                && let Some(day) = parse_partition_name(&parent, &child)
            {
                per_table[index].insert(day);
            }
        }
        let any: BTreeSet<i64> = per_table.iter().flatten().copied().collect();
        let complete = any
            .iter()
            .copied()
            .filter(|day| per_table.iter().all(|days| days.contains(day)))
            .collect();
        Ok(ExistingDays { any, complete })
    }
}

/// Daily partitions found in the catalog.
struct ExistingDays {
    /// Days with a partition in at least one table.
    any: BTreeSet<i64>,
    /// Days with a partition in every table.
    complete: BTreeSet<i64>,
}

crate::security::impl_security_store!(
    PgStore,
    Postgres,
    writer = |s| &s.pool,
    reader = |s| &s.pool
);

crate::rules::impl_rule_store!(
    PgStore,
    Postgres,
    writer = |s| &s.pool,
    reader = |s| &s.pool
);

crate::incidents::impl_incident_store!(
    PgStore,
    Postgres,
    writer = |s| &s.pool,
    reader = |s| &s.pool
);

crate::responses::impl_response_store!(
    PgStore,
    Postgres,
    writer = |s| &s.pool,
    reader = |s| &s.pool
);

crate::analyses::impl_analysis_store!(
    PgStore,
    Postgres,
    writer = |s| &s.pool,
    reader = |s| &s.pool
);

crate::rollups::rollup_store_methods!(
    PgStore,
    Postgres,
    writer = |s| &s.pool,
    reader = |s| &s.pool
);

crate::queries::query_store_methods!(
    PgStore,
    Postgres,
    writer = |s| &s.pool,
    reader = |s| &s.pool
);

#[async_trait::async_trait]
impl Store for PgStore {
    async fn insert_statements(&self, statements: &[crate::StreamStatement]) -> Result<()> {
        self.sql_insert_statements(statements).await
    }

    async fn delete_statement(&self, name: &str) -> Result<Option<crate::StreamStatement>> {
        self.sql_delete_statement(name).await
    }

    async fn list_statements(&self) -> Result<Vec<crate::StreamStatement>> {
        self.sql_list_statements().await
    }

    async fn write_query_rows(&self, query_id: &str, rows: &[crate::QueryRow]) -> Result<u64> {
        self.sql_write_query_rows(query_id, rows).await
    }

    async fn read_query_rows(
        &self,
        request: &crate::QueryRowsRequest,
    ) -> Result<Vec<crate::QueryRow>> {
        self.sql_read_query_rows(request).await
    }

    async fn write_rollups(&self, rows: &[crate::RollupRow]) -> Result<u64> {
        self.sql_write_rollups(rows).await
    }

    async fn write_event_counts(&self, rows: &[crate::EventCountRow]) -> Result<u64> {
        self.sql_write_event_counts(rows).await
    }

    async fn query_rollups(&self, query: &crate::RollupQuery) -> Result<Vec<crate::RollupRow>> {
        self.sql_query_rollups(query).await
    }

    async fn query_event_counts(
        &self,
        query: &crate::EventCountQuery,
    ) -> Result<Vec<crate::EventCountRow>> {
        self.sql_query_event_counts(query).await
    }

    async fn write_events(&self, batch: &[LoggedEvent]) -> Result<WriteSummary> {
        if batch.is_empty() {
            return Ok(WriteSummary::default());
        }
        // The first occurrence of an id in the batch wins, as in SQLite.
        let mut seen = HashSet::with_capacity(batch.len());
        let unique: Vec<&LoggedEvent> = batch
            .iter()
            .filter(|logged| seen.insert(logged.event.event_id.as_str()))
            .collect();

        let metadata = unique
            .iter()
            .map(|l| to_json(&l.event.metadata, "metadata", &l.event.event_id))
            .collect::<Result<Vec<_>>>()?;
        let tags = unique
            .iter()
            .map(|l| to_json(&l.event.tags, "tags", &l.event.event_id))
            .collect::<Result<Vec<_>>>()?;
        let events = || unique.iter().map(|l| &l.event);
        let ids = texts(events().map(|e| e.event_id.as_str()));
        let payloads = texts(unique.iter().map(|l| l.payload.as_str()));
        let services = texts(events().map(|e| e.service_name.as_str()));
        let types = texts(events().map(|e| e.event_type.as_str()));
        let environments = texts(events().map(|e| e.environment.as_str()));
        let details = texts(events().map(|e| e.details.as_str()));
        let sources = texts(events().map(|e| e.source.as_str()));
        let fingerprints = texts(events().map(|e| e.fingerprint.as_str()));
        let correlations = texts(events().map(|e| e.correlation_id.as_str()));
        let hosts: Vec<Option<Cow<'_, str>>> =
            events().map(|e| e.host.as_deref().map(pg_text)).collect();

        let _partitions = self.partitions_for(events().map(|e| e.timestamp)).await?;
        let inserted = sqlx::query(INSERT_EVENTS)
            .bind(refs(&ids))
            .bind(
                unique
                    .iter()
                    .map(|l| i64::from(l.partition))
                    .collect::<Vec<_>>(),
            )
            .bind(unique.iter().map(|l| to_i64(l.offset)).collect::<Vec<_>>())
            .bind(refs(&payloads))
            .bind(refs(&services))
            .bind(refs(&types))
            .bind(events().map(|e| e.timestamp).collect::<Vec<_>>())
            .bind(refs(&environments))
            .bind(refs(&details))
            .bind(events().map(|e| e.severity.as_str()).collect::<Vec<_>>())
            .bind(metadata.iter().map(String::as_str).collect::<Vec<_>>())
            .bind(refs(&sources))
            .bind(events().map(|e| e.source_type.as_str()).collect::<Vec<_>>())
            .bind(
                hosts
                    .iter()
                    .map(|h| h.as_deref())
                    .collect::<Vec<Option<&str>>>(),
            )
            .bind(tags.iter().map(String::as_str).collect::<Vec<_>>())
            .bind(refs(&fingerprints))
            .bind(refs(&correlations))
            .bind(events().map(|e| e.received_at).collect::<Vec<_>>())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(summary(batch.len(), inserted))
    }

    async fn write_metrics(&self, batch: &[LoggedMetric]) -> Result<WriteSummary> {
        if batch.is_empty() {
            return Ok(WriteSummary::default());
        }
        let mut seen = HashSet::with_capacity(batch.len());
        let mut ids = Vec::with_capacity(batch.len());
        let mut unique = Vec::with_capacity(batch.len());
        for logged in batch {
            if seen.insert((logged.partition, logged.offset)) {
                ids.push(metric_id(logged.partition, logged.offset));
                unique.push(&logged.metric);
            }
        }
        let tags = unique
            .iter()
            .zip(&ids)
            .map(|(m, id)| to_json(&m.tags, "tags", id))
            .collect::<Result<Vec<_>>>()?;
        let services = texts(unique.iter().map(|m| m.service_name.as_str()));
        let types = texts(unique.iter().map(|m| m.metric_type.as_str()));
        let correlations = texts(unique.iter().map(|m| m.correlation_id.as_str()));

        let _partitions = self
            .partitions_for(unique.iter().map(|m| m.timestamp))
            .await?;
        let inserted = sqlx::query(INSERT_METRICS)
            .bind(ids.iter().map(String::as_str).collect::<Vec<_>>())
            .bind(refs(&services))
            .bind(refs(&types))
            .bind(unique.iter().map(|m| m.value).collect::<Vec<_>>())
            .bind(tags.iter().map(String::as_str).collect::<Vec<_>>())
            .bind(unique.iter().map(|m| m.timestamp).collect::<Vec<_>>())
            .bind(unique.iter().map(|m| m.received_at).collect::<Vec<_>>())
            .bind(refs(&correlations))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(summary(batch.len(), inserted))
    }

    async fn query_events(&self, query: &EventQuery) -> Result<Page<Event>> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut select =
            QueryBuilder::<Postgres>::new(format!("SELECT {EVENT_COLUMNS} FROM processed_events"));
        let mut filter = Filter::new();

        if !query.severities.is_empty() {
            filter
                .and(&mut select)
                .push("severity = ANY(")
                .push_bind(
                    query
                        .severities
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>(),
                )
                .push(")");
        }
        let exact = [
            ("service_name", &query.service),
            ("host", &query.host),
            ("event_type", &query.event_type),
            ("environment", &query.environment),
        ];
        for (column, value) in exact {
            if let Some(value) = value {
                filter
                    .and(&mut select)
                    .push(column)
                    .push(" = ")
                    .push_bind(pg_text(value));
            }
        }
        if let Some(text) = &query.text {
            // The column's "C" collation makes ILIKE fold ASCII letters only, like
            // SQLite's LIKE.
            filter
                .and(&mut select)
                .push("details ILIKE ")
                .push_bind(contains_pattern(&pg_text(text)))
                .push(" ESCAPE '\\'");
        }
        push_keyset_page(
            &mut select,
            &mut filter,
            (query.since_ms, query.until_ms),
            query.cursor.as_ref().map(|c| (c.timestamp, pg_text(&c.id))),
            "event_id",
            limit,
        );

        let rows = select.build().fetch_all(&self.pool).await?;
        let events = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page(events, limit, |event| Cursor {
            timestamp: event.timestamp,
            id: event.event_id.clone(),
        }))
    }

    async fn get_event(&self, event_id: &str) -> Result<Option<Event>> {
        // The claim gives the timestamp, so the lookup touches one partition.
        let row = sqlx::query(&format!(
            "SELECT {EVENT_COLUMNS} FROM processed_events WHERE event_id = $1 \
             AND timestamp = (SELECT timestamp FROM event_ids WHERE event_id = $1)"
        ))
        .bind(pg_text(event_id))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(event_from_row).transpose()
    }

    async fn event_analytics(&self, query: &AnalyticsQuery) -> Result<Analytics> {
        check_analytics(query)?;
        let rows = analytics_select::<Postgres>(query)
            .build()
            .fetch_all(&self.pool)
            .await?;
        analytics_from_rows(query, &rows)
    }

    async fn query_metrics(&self, query: &MetricQuery) -> Result<Page<MetricPoint>> {
        let limit = query.limit.clamp(1, MAX_PAGE);
        let mut select =
            QueryBuilder::<Postgres>::new(format!("SELECT {METRIC_COLUMNS} FROM system_metrics"));
        let mut filter = Filter::new();
        for (column, value) in [
            ("service_name", &query.service),
            ("metric_type", &query.metric_type),
        ] {
            if let Some(value) = value {
                filter
                    .and(&mut select)
                    .push(column)
                    .push(" = ")
                    .push_bind(pg_text(value));
            }
        }
        push_keyset_page(
            &mut select,
            &mut filter,
            (query.since_ms, query.until_ms),
            query.cursor.as_ref().map(|c| (c.timestamp, pg_text(&c.id))),
            "id",
            limit,
        );

        let rows = select.build().fetch_all(&self.pool).await?;
        let points = rows
            .iter()
            .map(metric_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(page(points, limit, |point| Cursor {
            timestamp: point.metric.timestamp,
            id: point.id.clone(),
        }))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }
}

/// `text` as PostgreSQL can store it: NUL characters (which no text column accepts)
/// become U+FFFD.
fn pg_text(text: &str) -> Cow<'_, str> {
    if text.contains('\0') {
        Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(text)
    }
}

fn texts<'a>(values: impl Iterator<Item = &'a str>) -> Vec<Cow<'a, str>> {
    values.map(pg_text).collect()
}

fn refs<'a>(values: &'a [Cow<'_, str>]) -> Vec<&'a str> {
    values.iter().map(AsRef::as_ref).collect()
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The day (since the epoch, UTC) holding `timestamp_ms`, rounding down for negatives.
fn day_of(timestamp_ms: i64) -> i64 {
    timestamp_ms.div_euclid(DAY_MS)
}

/// The daily partition of `table` for `day`: `<table>_pYYYYMMDD`.
fn partition_name(table: &str, day: i64) -> String {
    let (year, month, date) = civil_from_days(day);
    format!("{table}_p{year:04}{month:02}{date:02}")
}

/// The day of a partition named by [`partition_name`], if `name` is one of `table`'s.
fn parse_partition_name(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_p")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let year: i64 = digits.get(..4)?.parse().ok()?;
    let month: i64 = digits.get(4..6)?.parse().ok()?;
    let date: i64 = digits.get(6..)?.parse().ok()?;
    let day = days_from_civil(year, month, date);
    (partition_name(table, day) == name).then_some(day)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
const fn days_from_civil(year: i64, month: i64, date: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = if year >= 0 { year } else { year - 399 } / 400;
    let year_of_era = year - era * 400;
    let month_index = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_index + 2) / 5 + date - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `(year, month, day)` of a day since 1970-01-01.
const fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let date = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_675), (2023, 11, 14));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        for day in FIRST_PARTITION_DAY..END_PARTITION_DAY {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
        assert_eq!(civil_from_days(FIRST_PARTITION_DAY), (1900, 1, 1));
        assert_eq!(civil_from_days(END_PARTITION_DAY), (2200, 1, 1));
    }

    #[test]
    fn partition_names_round_trip() {
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(1_700_000_000_000), 19_675);
        assert_eq!(
            partition_name("processed_events", 19_675),
            "processed_events_p20231114"
        );
        assert_eq!(
            parse_partition_name("processed_events", "processed_events_p20231114"),
            Some(19_675)
        );
        for bad in [
            "processed_events_default",
            "processed_events_p2023111",
            "processed_events_p20231314",
            "raw_events_p20231114",
            "processed_events_p2023111x",
        ] {
            assert_eq!(parse_partition_name("processed_events", bad), None, "{bad}");
        }
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(pg_text("a\0b"), "a\u{FFFD}b");
    }
}
