//! Code both SQL backends share, so that they cannot drift apart: how filters are joined,
//! how a fetched page is cut and its cursor made, how write counts are derived, how rows
//! decode into events and metric points (and when a row counts as corrupt), and how
//! analytics rows fold into an [`Analytics`] answer.
//!
//! The backends differ only in their SQL text and connection handling; everything that
//! decides what a caller sees lives here.

use std::collections::{BTreeMap, HashMap};

use sightline_model::{Event, Metric, Severity, SourceType};
use sqlx::{ColumnIndex, Database, Decode, Encode, QueryBuilder, Row, Type};

use crate::{
    Analytics, AnalyticsQuery, BucketCounts, Cursor, GroupCount, MAX_BUCKETS, MetricPoint, Page,
    Result, StoreError, WriteSummary,
};

/// The id of a metric point: its log position, zero-padded so ids sort like positions.
pub(crate) fn metric_id(partition: u32, offset: u64) -> String {
    format!("{partition:05}-{offset:020}")
}

/// Joins filter clauses: the first gets ` WHERE `, the rest ` AND `.
pub(crate) struct Filter {
    any: bool,
}

impl Filter {
    pub(crate) fn new() -> Self {
        Filter { any: false }
    }

    pub(crate) fn and<'b, 'args, DB: Database>(
        &mut self,
        builder: &'b mut QueryBuilder<'args, DB>,
    ) -> &'b mut QueryBuilder<'args, DB> {
        builder.push(if self.any { " AND " } else { " WHERE " });
        self.any = true;
        builder
    }
}

/// Ends a newest-first query: the time range `[since, until)`, the keyset cursor
/// `(timestamp, id_column) < cursor`, the order, and a limit one row beyond the page (so
/// [`page`] can tell whether more exist). The cursor id is bound as given, so each backend
/// passes it in the form its text columns store.
pub(crate) fn push_keyset_page<'args, DB, Id>(
    select: &mut QueryBuilder<'args, DB>,
    filter: &mut Filter,
    (since, until): (Option<i64>, Option<i64>),
    cursor: Option<(i64, Id)>,
    id_column: &str,
    limit: u32,
) where
    DB: Database,
    i64: 'args + Encode<'args, DB> + Type<DB>,
    Id: 'args + Encode<'args, DB> + Type<DB>,
{
    if let Some(since) = since {
        filter.and(select).push("timestamp >= ").push_bind(since);
    }
    if let Some(until) = until {
        filter.and(select).push("timestamp < ").push_bind(until);
    }
    if let Some((timestamp, id)) = cursor {
        filter
            .and(select)
            .push("(timestamp, ")
            .push(id_column)
            .push(") < (")
            .push_bind(timestamp)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    select
        .push(" ORDER BY timestamp DESC, ")
        .push(id_column)
        .push(" DESC LIMIT ")
        .push_bind(i64::from(limit) + 1);
}

/// Cuts `rows` (fetched with `limit + 1`) to one page, with a cursor when more exist.
pub(crate) fn page<T>(mut rows: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| cursor_of(last).encode())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// The summary of a write of `batch_len` rows of which `inserted` were new.
pub(crate) fn summary(batch_len: usize, inserted: u64) -> WriteSummary {
    let offered = u64::try_from(batch_len).unwrap_or(u64::MAX);
    WriteSummary {
        inserted,
        duplicates: offered.saturating_sub(inserted),
    }
}

/// Log offsets are far below `i64::MAX`; saturate rather than wrap if one ever is not.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Minified JSON text of a metadata or tags value.
pub(crate) fn to_json(value: &impl serde::Serialize, column: &str, id: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::corrupt(format!("{column} of '{id}' (encoding)"), e))
}

/// Checks an analytics query can be answered: a positive bucket width and at most
/// [`MAX_BUCKETS`] buckets.
pub(crate) fn check_analytics(query: &AnalyticsQuery) -> Result<()> {
    let bucket_ms = query.bucket_ms;
    if bucket_ms <= 0 {
        return Err(StoreError::InvalidQuery(format!(
            "bucket width must be positive, got {bucket_ms} ms"
        )));
    }
    let span = i128::from(query.until_ms) - i128::from(query.since_ms);
    if span / i128::from(bucket_ms) > i128::from(MAX_BUCKETS) {
        return Err(StoreError::InvalidQuery(format!(
            "{span} ms in buckets of {bucket_ms} ms is more than {MAX_BUCKETS} buckets"
        )));
    }
    Ok(())
}

/// The analytics query, the same SQL on both backends: `(bucket, grp, n)` rows ordered by
/// bucket. Bucket index = floor(timestamp / bucket_ms), computed without overflow for
/// negative timestamps (`/` truncates toward zero in SQLite and PostgreSQL alike).
pub(crate) fn analytics_select<'q, DB>(query: &AnalyticsQuery) -> QueryBuilder<'q, DB>
where
    DB: Database,
    i64: 'q + Encode<'q, DB> + Type<DB>,
{
    let bucket_ms = query.bucket_ms;
    let mut select = QueryBuilder::<DB>::new("SELECT CASE WHEN timestamp >= 0 THEN timestamp / ");
    select
        .push_bind(bucket_ms)
        .push(" ELSE (timestamp + 1) / ")
        .push_bind(bucket_ms)
        .push(" - 1 END AS bucket, COALESCE(")
        .push(query.group_by.column())
        .push(", '') AS grp, COUNT(*) AS n FROM processed_events WHERE timestamp >= ")
        .push_bind(query.since_ms)
        .push(" AND timestamp < ")
        .push_bind(query.until_ms)
        .push(" GROUP BY bucket, grp ORDER BY bucket");
    select
}

/// The answer from the rows of [`analytics_select`].
pub(crate) fn analytics_from_rows<R>(query: &AnalyticsQuery, rows: &[R]) -> Result<Analytics>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    let rows = rows
        .iter()
        .map(|row| {
            Ok((
                row.try_get("bucket")?,
                row.try_get("grp")?,
                row.try_get("n")?,
            ))
        })
        .collect::<Result<Vec<(i64, String, i64)>, sqlx::Error>>()?;
    Ok(fold_analytics(query, rows))
}

/// Folds `(bucket index, group key, count)` rows, ordered by bucket index, into the answer.
fn fold_analytics(
    query: &AnalyticsQuery,
    rows: impl IntoIterator<Item = (i64, String, i64)>,
) -> Analytics {
    let bucket_ms = query.bucket_ms;
    let mut total = 0u64;
    let mut per_group: HashMap<String, u64> = HashMap::new();
    let mut buckets: Vec<BucketCounts> = Vec::new();
    for (bucket, group, count) in rows {
        let count = u64::try_from(count).unwrap_or(0);
        let start_ms = bucket.saturating_mul(bucket_ms);
        total += count;
        *per_group.entry(group.clone()).or_default() += count;
        match buckets.last_mut() {
            Some(last) if last.start_ms == start_ms => {
                *last.counts.entry(group).or_default() += count;
            }
            _ => buckets.push(BucketCounts {
                start_ms,
                counts: BTreeMap::from([(group, count)]),
            }),
        }
    }
    let mut groups: Vec<GroupCount> = per_group
        .into_iter()
        .map(|(key, count)| GroupCount { key, count })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));

    Analytics {
        group_by: query.group_by,
        since_ms: query.since_ms,
        until_ms: query.until_ms,
        bucket_ms,
        total,
        groups,
        buckets,
    }
}

/// Reads a column, reporting an undecodable value as corruption of that row.
pub(crate) fn column<'r, R, T>(row: &'r R, name: &str, table: &str) -> Result<T>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(|e| {
        let id = row
            .try_get::<String, _>(0)
            .unwrap_or_else(|_| "<unreadable id>".to_owned());
        StoreError::corrupt(format!("{table}.{name} of '{id}'"), e)
    })
}

/// Decodes a `processed_events` row selected with the columns in the backends' order.
pub(crate) fn event_from_row<'r, R>(row: &'r R) -> Result<Event>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    const TABLE: &str = "processed_events";
    let event_id: String = column(row, "event_id", TABLE)?;
    let corrupt = |name: &str, reason: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("{TABLE}.{name} of '{event_id}'"), reason)
    };

    let severity_text: String = column(row, "severity", TABLE)?;
    let severity = Severity::parse("severity", &severity_text)
        .map_err(|e| corrupt("severity", &e.to_string()))?;
    let source_type_text: String = column(row, "source_type", TABLE)?;
    let source_type = parse_source_type(&source_type_text).ok_or_else(|| {
        corrupt(
            "source_type",
            &format!("unknown source type '{source_type_text}'"),
        )
    })?;
    let metadata_text: String = column(row, "metadata", TABLE)?;
    let metadata = serde_json::from_str(&metadata_text).map_err(|e| corrupt("metadata", &e))?;
    let tags_text: String = column(row, "tags", TABLE)?;
    let tags = serde_json::from_str(&tags_text).map_err(|e| corrupt("tags", &e))?;

    Ok(Event {
        service_name: column(row, "service_name", TABLE)?,
        event_type: column(row, "event_type", TABLE)?,
        timestamp: column(row, "timestamp", TABLE)?,
        environment: column(row, "environment", TABLE)?,
        details: column(row, "details", TABLE)?,
        severity,
        metadata,
        source: column(row, "source", TABLE)?,
        source_type,
        host: column(row, "host", TABLE)?,
        tags,
        fingerprint: column(row, "fingerprint", TABLE)?,
        correlation_id: column(row, "correlation_id", TABLE)?,
        received_at: column(row, "received_at", TABLE)?,
        event_id,
    })
}

/// Decodes a `system_metrics` row selected with the columns in the backends' order.
pub(crate) fn metric_from_row<'r, R>(row: &'r R) -> Result<MetricPoint>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    const TABLE: &str = "system_metrics";
    let id: String = column(row, "id", TABLE)?;
    let tags_text: String = column(row, "tags", TABLE)?;
    let tags = serde_json::from_str(&tags_text)
        .map_err(|e| StoreError::corrupt(format!("{TABLE}.tags of '{id}'"), e))?;
    Ok(MetricPoint {
        metric: Metric {
            service_name: column(row, "service_name", TABLE)?,
            metric_type: column(row, "metric_type", TABLE)?,
            value: column(row, "value", TABLE)?,
            tags,
            timestamp: column(row, "timestamp", TABLE)?,
            received_at: column(row, "received_at", TABLE)?,
            correlation_id: column(row, "correlation_id", TABLE)?,
        },
        id,
    })
}

/// Parses a source type by its canonical (serde) name, as written by the stores.
fn parse_source_type(name: &str) -> Option<SourceType> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}
