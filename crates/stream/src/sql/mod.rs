//! Continuous SQL: ksqlDB-style statements compiled onto the window engine, so a user can
//! declare a live aggregate in SQL instead of writing a job.
//!
//! The pipeline is *compile once, evaluate per record*: a statement is tokenized (with
//! line/column positions), its ksqlDB clauses (`WITH (…)`, `WINDOW …`, `EMIT …`) are read
//! by [`statement`], the `SELECT` itself is parsed by `sqlparser` with a small custom
//! dialect, and [`planner`] turns it into plain data: a row decoder, expression trees
//! ([`expr`]), and a [`WindowAggregateConfig`](crate::WindowAggregateConfig). At run time a
//! [`ContinuousQuery`] decodes each JSON record once, evaluates `WHERE`, the group key and
//! the aggregate inputs, feeds the [`WindowAggregate`](crate::WindowAggregate), and turns
//! its rows into JSON output rows with deterministic keys. Nothing re-scans data.
//!
//! # Supported SQL
//!
//! ```sql
//! CREATE STREAM events_stream (session_id VARCHAR, cart_total DOUBLE, ts BIGINT, metadata MAP<VARCHAR, VARCHAR>)
//!   WITH (KAFKA_TOPIC='ecommerce.events', VALUE_FORMAT='JSON', TIMESTAMP='ts');
//! CREATE TABLE t AS SELECT k, COUNT(*) AS n, WINDOWSTART AS ws FROM events_stream
//!   WINDOW TUMBLING (SIZE 1 MINUTE [, GRACE PERIOD 10 SECONDS])   -- or HOPPING (SIZE …, ADVANCE BY …) / SESSION (30 MINUTES)
//!   WHERE … GROUP BY k HAVING … EMIT CHANGES;                      -- or EMIT FINAL (windowed only)
//! CREATE STREAM s AS SELECT a, b * 2 AS c FROM events_stream WHERE …;
//! SELECT * FROM t WHERE k = 'x' [AND …] [LIMIT n];                 -- pull query
//! DROP TABLE t;  DROP STREAM s;
//! ```
//!
//! Column types: `VARCHAR`/`STRING`, `INT`/`INTEGER`/`BIGINT`, `DOUBLE`/`DECIMAL`,
//! `BOOLEAN`, and `MAP<…>`/`STRUCT<…>`/`ARRAY<…>`/`JSON` (kept as JSON). Expressions:
//! literals, columns, `+ - * / %`, `||`, comparisons, `AND/OR/NOT`, `[NOT] LIKE`/`ILIKE`,
//! `[NOT] IN (…)`, `[NOT] BETWEEN`, `IS [NOT] NULL`, `CASE`, `CAST(x AS type)`, and the
//! functions `UCASE/UPPER`, `LCASE/LOWER`, `LEN/LENGTH`, `ABS`, `ROUND`, `FLOOR`, `CEIL`,
//! `COALESCE`, `IFNULL`, `CONCAT`. JSON access into a JSON/MAP column: ksqlDB's
//! `EXTRACTJSONFIELD(metadata, '$.a.b')` (a string, or the JSON text of a nested value) and
//! the PostgreSQL-style `metadata->'a'->'b'` (the typed value) / `metadata->>'a'` (text).
//! Aggregates: `COUNT(*)`, `COUNT(x)`, `COUNT(DISTINCT x)`/`COUNT_DISTINCT(x)`, `SUM`,
//! `MIN`, `MAX`, `AVG`, `STDDEV`/`STDDEV_SAMP`, `P50/P95/P99(x)`, `PERCENTILE(x, q)`,
//! `LATEST_BY_OFFSET`, `EARLIEST_BY_OFFSET`, `TOPK(x, k)`, `TOPK_FREQUENT(x, k)`.
//! SQL null semantics throughout: a comparison with `NULL` is `NULL`, and `WHERE`/`HAVING`
//! keep a row only when the condition is `TRUE`.
//!
//! Errors are [`SqlError`]s with the 1-based line and column of the offending token.

mod catalog;
pub mod expr;
mod output;
pub mod planner;
mod pull;
mod query;
pub mod runner;
pub mod schema;
pub mod statement;

pub use catalog::{Catalog, CatalogDefinitions, Executed, StoredStatement};
pub use pull::{MaterializedTable, PullPlan};
pub use query::{ContinuousQuery, OutputRow, Processed, RecordError, output_key};
pub use schema::{ColumnDef, SqlType, StreamDef};

/// A statement that cannot be compiled: where, and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SqlError {
    /// 1-based line of the offending token (0 when unknown).
    pub line: u64,
    /// 1-based column of the offending token (0 when unknown).
    pub column: u64,
    /// What is wrong.
    pub message: String,
}

impl SqlError {
    /// An error at a source location.
    pub fn at(loc: sqlparser::tokenizer::Location, message: impl Into<String>) -> Self {
        Self {
            line: loc.line,
            column: loc.column,
            message: message.into(),
        }
    }

    /// Converts a `sqlparser` error, whose message ends in " at Line: L, Column: C".
    pub(crate) fn from_parser(err: sqlparser::parser::ParserError, fallback: Location) -> Self {
        use sqlparser::parser::ParserError;
        let text = match err {
            ParserError::TokenizerError(m) | ParserError::ParserError(m) => m,
            ParserError::RecursionLimitExceeded => {
                return SqlError::at(fallback, "expression nested too deeply");
            }
        };
        if let Some(i) = text.rfind(" at Line: ") {
            let pos = &text[i + " at Line: ".len()..];
            let mut parts = pos.split(", Column: ");
            let line = parts.next().and_then(|l| l.trim().parse().ok());
            let column = parts.next().and_then(|c| c.trim().parse().ok());
            if let (Some(line), Some(column)) = (line, column) {
                return SqlError {
                    line,
                    column,
                    message: text[..i].to_owned(),
                };
            }
        }
        SqlError::at(fallback, text)
    }
}

pub(crate) use sqlparser::tokenizer::Location;

/// The `sqlparser` dialect of continuous SQL: identifiers as in ANSI SQL, `"` and `` ` ``
/// quote identifiers, and every optional grammar extension off — ksqlDB's own clauses are
/// handled by [`statement`] before the parser sees the `SELECT`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KsqlDialect;

impl sqlparser::dialect::Dialect for KsqlDialect {
    fn is_identifier_start(&self, ch: char) -> bool {
        ch.is_alphabetic() || ch == '_'
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        ch.is_alphanumeric() || ch == '_' || ch == '$'
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        ch == '"' || ch == '`'
    }
}
