//! Continuous SQL: the statements that define streams and queries (`stream_statements`),
//! and the current rows of every table query (`query_rows`), which pull queries read.
//!
//! The statements are the catalog's durable form: a node rebuilds its catalog by replaying
//! them in creation order, so definitions survive restarts and every node of a cluster
//! sees the same ones. Each statement has a UUIDv7 `id` besides its name, so a table that
//! is dropped and created again under the same name is a new query with new rows and new
//! consumer positions.
//!
//! Rows are keyed by the engine's deterministic row key, so a replay after a crash
//! upserts the same rows instead of adding new ones. As in [`crate::rollups`], one macro
//! holds the SQL for both backends.

use serde::{Deserialize, Serialize};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::common::column;
use crate::{Result, StoreError};

/// Most rows one [`QueryRowsRequest`] returns.
pub const MAX_QUERY_ROWS: u32 = 100_000;

/// One `CREATE` statement in effect.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamStatement {
    /// UUIDv7 of this definition.
    pub id: String,
    /// The stream or table it creates, lower-cased.
    pub name: String,
    /// Its SQL text.
    pub sql: String,
    /// When it was created, epoch milliseconds.
    pub created_at: i64,
    /// Who created it.
    pub created_by: String,
}

/// One current row of a table query.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryRow {
    /// The engine's row key: the group key, plus `@<window start>` for windowed tables.
    pub key: String,
    /// The group key alone (`["s1"]`), for key lookups.
    pub group_key: String,
    /// The window's start, for windowed tables.
    pub window_start: Option<i64>,
    /// The window's end, for windowed tables.
    pub window_end: Option<i64>,
    /// The row as a JSON object; `None` deletes the row (a tombstone).
    pub value: Option<serde_json::Value>,
    /// Event time of the row, epoch milliseconds.
    pub event_time: i64,
}

/// Which rows of a table query to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRowsRequest {
    /// The query's [`StreamStatement::id`].
    pub query_id: String,
    /// Only the rows of this group key.
    pub group_key: Option<String>,
    /// Most rows, at most [`MAX_QUERY_ROWS`].
    pub limit: u32,
}

pub(crate) const STATEMENT_COLUMNS: &str = "id, name, sql, created_at, created_by";
pub(crate) const ROW_COLUMNS: &str =
    "row_key, group_key, window_start, window_end, value, event_time";

pub(crate) fn check_limit(limit: u32) -> Result<i64> {
    if limit == 0 || limit > MAX_QUERY_ROWS {
        return Err(StoreError::InvalidQuery(format!(
            "limit must be between 1 and {MAX_QUERY_ROWS}"
        )));
    }
    Ok(i64::from(limit))
}

pub(crate) fn statement_from_row<'r, R>(row: &'r R) -> Result<StreamStatement>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "stream_statements";
    Ok(StreamStatement {
        id: column(row, "id", T)?,
        name: column(row, "name", T)?,
        sql: column(row, "sql", T)?,
        created_at: column(row, "created_at", T)?,
        created_by: column(row, "created_by", T)?,
    })
}

pub(crate) fn query_row_from_row<'r, R>(row: &'r R) -> Result<QueryRow>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "query_rows";
    let key: String = column(row, "row_key", T)?;
    let text: String = column(row, "value", T)?;
    let value = serde_json::from_str(&text)
        .map_err(|e| StoreError::corrupt(format!("{T}.value of '{key}'"), e))?;
    Ok(QueryRow {
        group_key: column(row, "group_key", T)?,
        window_start: column(row, "window_start", T)?,
        window_end: column(row, "window_end", T)?,
        value: Some(value),
        event_time: column(row, "event_time", T)?,
        key,
    })
}

/// Implements the continuous-SQL methods as inherent `sql_*` methods of a backend (the
/// `Store` impl forwards to them). Same arguments as `rollup_store_methods!`.
macro_rules! query_store_methods {
    ($store:ty, $db:ty, writer = |$w:ident| $writer:expr, reader = |$r:ident| $reader:expr) => {
        impl $store {
            async fn sql_insert_statements(
                &self,
                statements: &[$crate::StreamStatement],
            ) -> $crate::Result<()> {
                let $w = self;
                let mut tx = ($writer).begin().await?;
                for s in statements {
                    let taken: Option<String> = sqlx::query_scalar::<$db, String>(
                        "SELECT name FROM stream_statements WHERE name = $1",
                    )
                    .bind(&s.name)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if taken.is_some() {
                        return Err($crate::StoreError::Conflict(format!(
                            "a stream or table named '{}' already exists",
                            s.name
                        )));
                    }
                    sqlx::query::<$db>(&format!(
                        "INSERT INTO stream_statements (seq, {}) VALUES \
                         ((SELECT COALESCE(MAX(seq), 0) + 1 FROM stream_statements), \
                         $1, $2, $3, $4, $5)",
                        $crate::queries::STATEMENT_COLUMNS
                    ))
                    .bind(&s.id)
                    .bind(&s.name)
                    .bind($crate::rollups::clean(&s.sql))
                    .bind(s.created_at)
                    .bind($crate::rollups::clean(&s.created_by))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn sql_delete_statement(
                &self,
                name: &str,
            ) -> $crate::Result<Option<$crate::StreamStatement>> {
                let $w = self;
                let mut tx = ($writer).begin().await?;
                let found = sqlx::query::<$db>(&format!(
                    "SELECT {} FROM stream_statements WHERE name = $1",
                    $crate::queries::STATEMENT_COLUMNS
                ))
                .bind(name)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(row) = found else {
                    return Ok(None);
                };
                let statement = $crate::queries::statement_from_row(&row)?;
                sqlx::query::<$db>("DELETE FROM query_rows WHERE query_id = $1")
                    .bind(&statement.id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query::<$db>("DELETE FROM stream_statements WHERE name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(statement))
            }

            async fn sql_list_statements(&self) -> $crate::Result<Vec<$crate::StreamStatement>> {
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM stream_statements ORDER BY seq",
                    $crate::queries::STATEMENT_COLUMNS
                ))
                .fetch_all($reader)
                .await?
                .iter()
                .map($crate::queries::statement_from_row)
                .collect()
            }

            async fn sql_write_query_rows(
                &self,
                query_id: &str,
                rows: &[$crate::QueryRow],
            ) -> $crate::Result<u64> {
                if rows.is_empty() {
                    return Ok(0);
                }
                let $w = self;
                let upsert = format!(
                    "INSERT INTO query_rows (query_id, {}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (query_id, row_key) DO UPDATE SET \
                     group_key = excluded.group_key, window_start = excluded.window_start, \
                     window_end = excluded.window_end, value = excluded.value, \
                     event_time = excluded.event_time",
                    $crate::queries::ROW_COLUMNS
                );
                let mut tx = ($writer).begin().await?;
                for row in rows {
                    match &row.value {
                        Some(value) => {
                            let text = serde_json::to_string(value).map_err(|e| {
                                $crate::StoreError::InvalidQuery(format!(
                                    "row '{}' cannot be encoded: {e}",
                                    row.key
                                ))
                            })?;
                            sqlx::query::<$db>(&upsert)
                                .bind(query_id)
                                .bind($crate::rollups::clean(&row.key))
                                .bind($crate::rollups::clean(&row.group_key))
                                .bind(row.window_start)
                                .bind(row.window_end)
                                .bind($crate::rollups::clean(&text))
                                .bind(row.event_time)
                                .execute(&mut *tx)
                                .await?;
                        }
                        None => {
                            sqlx::query::<$db>(
                                "DELETE FROM query_rows WHERE query_id = $1 AND row_key = $2",
                            )
                            .bind(query_id)
                            .bind($crate::rollups::clean(&row.key))
                            .execute(&mut *tx)
                            .await?;
                        }
                    }
                }
                tx.commit().await?;
                Ok(rows.len() as u64)
            }

            async fn sql_read_query_rows(
                &self,
                request: &$crate::QueryRowsRequest,
            ) -> $crate::Result<Vec<$crate::QueryRow>> {
                let limit = $crate::queries::check_limit(request.limit)?;
                let $r = self;
                let rows = match &request.group_key {
                    Some(group_key) => {
                        sqlx::query::<$db>(&format!(
                            "SELECT {} FROM query_rows WHERE query_id = $1 AND group_key = $2 \
                             ORDER BY row_key LIMIT $3",
                            $crate::queries::ROW_COLUMNS
                        ))
                        .bind(&request.query_id)
                        .bind(group_key)
                        .bind(limit)
                        .fetch_all($reader)
                        .await?
                    }
                    None => {
                        sqlx::query::<$db>(&format!(
                            "SELECT {} FROM query_rows WHERE query_id = $1 \
                             ORDER BY row_key LIMIT $2",
                            $crate::queries::ROW_COLUMNS
                        ))
                        .bind(&request.query_id)
                        .bind(limit)
                        .fetch_all($reader)
                        .await?
                    }
                };
                rows.iter()
                    .map($crate::queries::query_row_from_row)
                    .collect()
            }
        }
    };
}

pub(crate) use query_store_methods;
