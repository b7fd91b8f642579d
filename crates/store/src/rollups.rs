//! Built-in metric rollups and event counters: the rows the stream engine's rollup job
//! writes (`aggregations`, `event_counts`) and the query the API reads them with.
//!
//! Rows carry deterministic ids chosen by the producer, and writes are upserts
//! (`ON CONFLICT (id) DO UPDATE`): a window replayed after a crash replaces its row with
//! identical values instead of adding a second one. As in [`crate::security`], the SQL
//! text is the same for both backends (`$n` placeholders work in SQLite too), so one macro
//! implements the [`Store`](crate::Store) methods for each and they cannot drift apart.

use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use crate::common::{Filter, column};
use crate::{Result, StoreError};

/// Most rows one rollup query returns.
pub const MAX_ROLLUP_ROWS: u32 = 10_000;

/// The rollup window labels the `aggregations` table accepts.
pub const ROLLUP_WINDOWS: [&str; 3] = ["1m", "5m", "15m"];

/// One metric rollup: a `(service, metric)` series aggregated over one window.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct RollupRow {
    /// Deterministic id (`service|metric|window|window_start`).
    pub id: String,
    /// Service measured.
    pub service_name: String,
    /// Metric name.
    pub metric_type: String,
    /// `"1m"`, `"5m"` or `"15m"`.
    pub window: String,
    /// Window start, epoch ms (inclusive).
    pub window_start: i64,
    /// Window end, epoch ms (exclusive).
    pub window_end: i64,
    /// Number of points.
    pub count: u64,
    /// Sum of values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Mean value.
    pub avg: f64,
    /// 95th percentile (approximate, 1 % relative error).
    pub p95: f64,
    /// 99th percentile (approximate, 1 % relative error).
    pub p99: f64,
}

/// Events of one service and severity in one window.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct EventCountRow {
    /// Deterministic id (`service|severity|window_start`).
    pub id: String,
    /// Service the events are about.
    pub service_name: String,
    /// Severity (`critical`, `high`, `medium`, `low`, `info`).
    pub severity: String,
    /// Window start, epoch ms (inclusive).
    pub window_start: i64,
    /// Window end, epoch ms (exclusive).
    pub window_end: i64,
    /// Number of events.
    pub count: u64,
}

/// Filters for [`Store::query_rollups`](crate::Store::query_rollups): windows starting in
/// `[since, until)`, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RollupQuery {
    /// Only this service.
    pub service: Option<String>,
    /// Only this metric.
    pub metric: Option<String>,
    /// Only this window size (`1m`, `5m`, `15m`).
    pub window: Option<String>,
    /// Windows starting at or after (epoch ms).
    pub since: Option<i64>,
    /// Windows starting before (epoch ms).
    pub until: Option<i64>,
    /// Most rows, 1..=[`MAX_ROLLUP_ROWS`].
    pub limit: u32,
}

/// Filters for [`Store::query_event_counts`](crate::Store::query_event_counts): windows
/// starting in `[since, until)`, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventCountQuery {
    /// Only this service.
    pub service: Option<String>,
    /// Only this severity.
    pub severity: Option<String>,
    /// Windows starting at or after (epoch ms).
    pub since: Option<i64>,
    /// Windows starting before (epoch ms).
    pub until: Option<i64>,
    /// Most rows, 1..=[`MAX_ROLLUP_ROWS`].
    pub limit: u32,
}

pub(crate) const ROLLUP_COLUMNS: &str = "id, service_name, metric_type, \"window\", \
     window_start, window_end, count, sum, min, max, avg, p95, p99";
pub(crate) const EVENT_COUNT_COLUMNS: &str =
    "id, service_name, severity, window_start, window_end, count";

/// Checks a query's limit and window label before any SQL runs.
/// Ends a rollup or event-count query: equality on each given column, window starts in
/// `[since, until)`, newest windows first, at most `limit` rows.
pub(crate) fn push_window_filters<'args, DB>(
    select: &mut QueryBuilder<'args, DB>,
    exact: &[(&str, Option<&String>)],
    (since, until): (Option<i64>, Option<i64>),
    limit: i64,
) where
    DB: Database,
    i64: 'args + Encode<'args, DB> + Type<DB>,
    String: 'args + Encode<'args, DB> + Type<DB>,
{
    let mut filter = Filter::new();
    for (column, value) in exact {
        if let Some(value) = value {
            filter
                .and(select)
                .push(*column)
                .push(" = ")
                .push_bind((*value).clone());
        }
    }
    if let Some(since) = since {
        filter.and(select).push("window_start >= ").push_bind(since);
    }
    if let Some(until) = until {
        filter.and(select).push("window_start < ").push_bind(until);
    }
    select
        .push(" ORDER BY window_start DESC, id LIMIT ")
        .push_bind(limit);
}

pub(crate) fn check_limit(limit: u32) -> Result<i64> {
    if limit == 0 || limit > MAX_ROLLUP_ROWS {
        return Err(StoreError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_ROLLUP_ROWS}, got {limit}"
        )));
    }
    Ok(i64::from(limit))
}

pub(crate) fn check_window(window: Option<&str>) -> Result<()> {
    match window {
        Some(w) if !ROLLUP_WINDOWS.contains(&w) => Err(StoreError::InvalidQuery(format!(
            "window must be one of 1m, 5m, 15m, got '{w}'"
        ))),
        _ => Ok(()),
    }
}

/// Text as both backends store it: NUL (which PostgreSQL text refuses) becomes U+FFFD.
pub(crate) fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

pub(crate) fn count_to_u64(count: i64, what: &str, id: &str) -> Result<u64> {
    u64::try_from(count).map_err(|e| StoreError::corrupt(format!("{what} of '{id}'"), e))
}

/// A count (tokens, milliseconds) for a signed 64-bit column: the counterpart of
/// [`count_to_u64`]. One too large for the column is refused, naming it and its row.
pub(crate) fn count_to_i64(count: u64, what: &str, id: &str) -> Result<i64> {
    i64::try_from(count)
        .map_err(|_| StoreError::InvalidData(format!("{what} of '{id}' is too large")))
}

/// Decodes an `aggregations` row.
pub(crate) fn rollup_from_row<'r, R>(row: &'r R) -> Result<RollupRow>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "aggregations";
    let id: String = column(row, "id", T)?;
    let count: i64 = column(row, "count", T)?;
    Ok(RollupRow {
        service_name: column(row, "service_name", T)?,
        metric_type: column(row, "metric_type", T)?,
        window: column(row, "window", T)?,
        window_start: column(row, "window_start", T)?,
        window_end: column(row, "window_end", T)?,
        count: count_to_u64(count, "aggregations.count", &id)?,
        sum: column(row, "sum", T)?,
        min: column(row, "min", T)?,
        max: column(row, "max", T)?,
        avg: column(row, "avg", T)?,
        p95: column(row, "p95", T)?,
        p99: column(row, "p99", T)?,
        id,
    })
}

/// Decodes an `event_counts` row.
pub(crate) fn event_count_from_row<'r, R>(row: &'r R) -> Result<EventCountRow>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "event_counts";
    let id: String = column(row, "id", T)?;
    let count: i64 = column(row, "count", T)?;
    Ok(EventCountRow {
        service_name: column(row, "service_name", T)?,
        severity: column(row, "severity", T)?,
        window_start: column(row, "window_start", T)?,
        window_end: column(row, "window_end", T)?,
        count: count_to_u64(count, "event_counts.count", &id)?,
        id,
    })
}

/// Implements the rollup methods as inherent `sql_*` methods of a backend (the `Store`
/// impl forwards to them: `async_trait` cannot see into a macro expansion): `$writer` / `$reader`
/// are expressions giving the pools for writes and reads, `$db` the sqlx database.
macro_rules! rollup_store_methods {
    ($store:ty, $db:ty, writer = |$w:ident| $writer:expr, reader = |$r:ident| $reader:expr) => {
        impl $store {
        async fn sql_write_rollups(&self, rows: &[$crate::RollupRow]) -> $crate::Result<u64> {
            use $crate::rollups::clean;
            if rows.is_empty() {
                return Ok(0);
            }
            let $w = self;
            let sql = format!(
                "INSERT INTO aggregations ({}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                 ON CONFLICT (id) DO UPDATE SET service_name = excluded.service_name, \
                 metric_type = excluded.metric_type, \"window\" = excluded.\"window\", \
                 window_start = excluded.window_start, window_end = excluded.window_end, \
                 count = excluded.count, sum = excluded.sum, min = excluded.min, \
                 max = excluded.max, avg = excluded.avg, p95 = excluded.p95, p99 = excluded.p99",
                $crate::rollups::ROLLUP_COLUMNS
            );
            let mut tx = ($writer).begin().await?;
            for row in rows {
                $crate::rollups::check_window(Some(&row.window))?;
                sqlx::query::<$db>(&sql)
                    .bind(clean(&row.id))
                    .bind(clean(&row.service_name))
                    .bind(clean(&row.metric_type))
                    .bind(&row.window)
                    .bind(row.window_start)
                    .bind(row.window_end)
                    .bind($crate::common::to_i64(row.count))
                    .bind(row.sum)
                    .bind(row.min)
                    .bind(row.max)
                    .bind(row.avg)
                    .bind(row.p95)
                    .bind(row.p99)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(rows.len() as u64)
        }

        async fn sql_write_event_counts(
            &self,
            rows: &[$crate::EventCountRow],
        ) -> $crate::Result<u64> {
            use $crate::rollups::clean;
            if rows.is_empty() {
                return Ok(0);
            }
            let $w = self;
            let sql = format!(
                "INSERT INTO event_counts ({}) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (id) DO UPDATE SET service_name = excluded.service_name, \
                 severity = excluded.severity, window_start = excluded.window_start, \
                 window_end = excluded.window_end, count = excluded.count",
                $crate::rollups::EVENT_COUNT_COLUMNS
            );
            let mut tx = ($writer).begin().await?;
            for row in rows {
                sqlx::query::<$db>(&sql)
                    .bind(clean(&row.id))
                    .bind(clean(&row.service_name))
                    .bind(clean(&row.severity))
                    .bind(row.window_start)
                    .bind(row.window_end)
                    .bind($crate::common::to_i64(row.count))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(rows.len() as u64)
        }

        async fn sql_query_rollups(
            &self,
            query: &$crate::RollupQuery,
        ) -> $crate::Result<Vec<$crate::RollupRow>> {
            let limit = $crate::rollups::check_limit(query.limit)?;
            $crate::rollups::check_window(query.window.as_deref())?;
            let $r = self;
            let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                "SELECT {} FROM aggregations",
                $crate::rollups::ROLLUP_COLUMNS
            ));
            $crate::rollups::push_window_filters(
                &mut select,
                &[
                    ("service_name", query.service.as_ref()),
                    ("metric_type", query.metric.as_ref()),
                    ("\"window\"", query.window.as_ref()),
                ],
                (query.since, query.until),
                limit,
            );
            select
                .build()
                .fetch_all($reader)
                .await?
                .iter()
                .map($crate::rollups::rollup_from_row)
                .collect()
        }

        async fn sql_query_event_counts(
            &self,
            query: &$crate::EventCountQuery,
        ) -> $crate::Result<Vec<$crate::EventCountRow>> {
            let limit = $crate::rollups::check_limit(query.limit)?;
            let $r = self;
            let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                "SELECT {} FROM event_counts",
                $crate::rollups::EVENT_COUNT_COLUMNS
            ));
            $crate::rollups::push_window_filters(
                &mut select,
                &[
                    ("service_name", query.service.as_ref()),
                    ("severity", query.severity.as_ref()),
                ],
                (query.since, query.until),
                limit,
            );
            select
                .build()
                .fetch_all($reader)
                .await?
                .iter()
                .map($crate::rollups::event_count_from_row)
                .collect()
        }
        }
    };
}
pub(crate) use rollup_store_methods;
