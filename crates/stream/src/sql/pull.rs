//! Pull queries: `SELECT … FROM table WHERE key_col = 'x' [AND …] [LIMIT n]` answered
//! from a table query's in-memory state, the way ksqlDB serves its materialized views.
//!
//! The planner looks for equalities that fix every `GROUP BY` key part (through the output
//! column that projects it); then the answer is a key lookup
//! ([`MaterializedTable::rows_for_key`]), otherwise a bounded scan of the current rows
//! ([`MaterializedTable::scan`], at most [`MAX_SCAN_ROWS`]). Either way the whole `WHERE`
//! is evaluated on the candidate rows, which are the table's output rows (after `HAVING`)
//! plus `WINDOWSTART`/`WINDOWEND` for windowed tables.

use sqlparser::ast::{self, BinaryOperator, SelectItem};

use super::expr::Expr;
use super::planner::{
    RowScope, TablePlan, compile, compile_predicate, from_name, loc_of, select_item_parts,
    simple_select, span_loc,
};
use super::query::{output_key, table_row};
use super::schema::{ColumnDef, SqlType};
use super::{Location, SqlError};
use crate::operator::{WindowAggregate, WindowRow};
use crate::{Key, Value};
use sightline_store::QueryRow;

/// The most rows a pull query without a key lookup examines.
pub const MAX_SCAN_ROWS: usize = 100_000;
/// The most rows a pull query returns without a `LIMIT`.
pub const DEFAULT_LIMIT: usize = 10_000;

/// A materialized table a pull query can read: current rows by key, or a bounded scan.
pub trait MaterializedTable {
    /// The current rows of `key` (one per open window; one for an unwindowed table).
    fn rows_for_key(&self, key: &Key) -> Vec<WindowRow>;
    /// Up to `limit` current rows, in a deterministic order.
    fn scan(&self, limit: usize) -> Vec<WindowRow>;
}

impl MaterializedTable for WindowAggregate {
    fn rows_for_key(&self, key: &Key) -> Vec<WindowRow> {
        self.current_rows(key)
    }

    fn scan(&self, limit: usize) -> Vec<WindowRow> {
        self.scan_rows(limit)
    }
}

/// A compiled pull query.
#[derive(Clone, Debug)]
pub struct PullPlan {
    /// The table's name, lower-cased.
    pub table: String,
    /// The key to look up, when `WHERE` fixes every key part.
    pub lookup: Option<Key>,
    /// `WHERE`, over the pull row (output columns, then `WINDOWSTART`, `WINDOWEND`).
    pub filter: Option<Expr>,
    /// Result columns: name and expression over the pull row.
    pub projection: Vec<(String, Expr)>,
    /// Most rows returned.
    pub limit: usize,
}

impl PullPlan {
    /// Plans `query` against the table `plan` named `table`.
    pub fn new(
        query: &ast::Query,
        select_loc: Location,
        table: &str,
        plan: &TablePlan,
    ) -> Result<Self, SqlError> {
        let select = simple_select(query, select_loc)?;
        let (_, _) = from_name(select, select_loc)?;
        if !matches!(&select.group_by, ast::GroupByExpr::Expressions(e, _) if e.is_empty())
            || select.having.is_some()
        {
            return Err(SqlError::at(
                select_loc,
                "a pull query cannot aggregate: it reads the table's current rows",
            ));
        }
        let mut columns = plan.columns.clone();
        let width = columns.len();
        for bound in ["WINDOWSTART", "WINDOWEND"] {
            let name_taken = columns.iter().any(|c| c.name.eq_ignore_ascii_case(bound));
            // Hidden names keep the slots aligned when an output column already has it.
            columns.push(ColumnDef {
                name: if plan.windowed() && !name_taken {
                    bound.to_owned()
                } else {
                    format!("\u{0}{bound}")
                },
                ty: SqlType::BigInt,
            });
        }
        let mut scope =
            RowScope::new(columns.clone(), vec![table.to_owned()]).context("a pull query");
        let filter = match &select.selection {
            Some(w) => Some(compile_predicate(w, &mut scope, "WHERE")?),
            None => None,
        };
        let lookup = match &select.selection {
            Some(w) => key_lookup(w, plan, &columns[..width], &mut scope),
            None => None,
        };
        let mut projection = Vec::new();
        for (i, item) in select.projection.iter().enumerate() {
            match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    for (c, col) in columns.iter().enumerate() {
                        if !col.name.starts_with('\u{0}') {
                            projection.push((col.name.clone(), Expr::Column(c)));
                        }
                    }
                }
                _ => {
                    let (e, name, loc) = select_item_parts(item, i, select_loc)?;
                    if projection
                        .iter()
                        .any(|(n, _): &(String, Expr)| n.eq_ignore_ascii_case(&name))
                    {
                        return Err(SqlError::at(
                            loc,
                            format!("duplicate output column '{name}'"),
                        ));
                    }
                    projection.push((name, compile(e, &mut scope)?.0));
                }
            }
        }
        let limit = match &query.limit_clause {
            None => DEFAULT_LIMIT,
            Some(ast::LimitClause::LimitOffset {
                limit: Some(l),
                offset: None,
                limit_by,
            }) if limit_by.is_empty() => match compile(l, &mut scope)?.0 {
                Expr::Literal(Value::Int(n)) if n >= 0 => {
                    usize::try_from(n).unwrap_or(usize::MAX).min(MAX_SCAN_ROWS)
                }
                _ => {
                    return Err(SqlError::at(
                        loc_of(l, select_loc),
                        "LIMIT must be a non-negative integer",
                    ));
                }
            },
            Some(_) => {
                return Err(SqlError::at(
                    select_loc,
                    "only LIMIT n is supported (no OFFSET)",
                ));
            }
        };
        Ok(Self {
            table: table.to_lowercase(),
            lookup,
            filter,
            projection,
            limit,
        })
    }

    /// Runs the query over `table`'s current state; `plan` is the table's plan.
    pub fn execute(
        &self,
        plan: &TablePlan,
        table: &dyn MaterializedTable,
    ) -> Vec<serde_json::Value> {
        let rows = match &self.lookup {
            Some(key) => table.rows_for_key(key),
            None => table.scan(MAX_SCAN_ROWS),
        };
        let mut agg_row = Vec::new();
        let mut out = Vec::new();
        for row in &rows {
            if out.len() >= self.limit {
                break;
            }
            let Some(mut values) = table_row(plan, row, &mut agg_row) else {
                continue;
            };
            match row.window {
                Some(w) => values.extend([Value::Int(w.start), Value::Int(w.end)]),
                None => values.extend([Value::Null, Value::Null]),
            }
            self.select(&values, &mut out);
        }
        out
    }

    /// The stored group key ([`output_key`] without a window) to read, when `WHERE` fixes
    /// the whole key.
    pub fn lookup_group_key(&self) -> Option<String> {
        self.lookup.as_ref().map(|k| output_key(k, None))
    }

    /// Runs the query over a table's rows as the store keeps them (`query_rows`: the
    /// output rows as JSON objects); `plan` is the table's plan.
    pub fn execute_stored(&self, plan: &TablePlan, rows: &[QueryRow]) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        for row in rows {
            if out.len() >= self.limit {
                break;
            }
            let Some(serde_json::Value::Object(obj)) = &row.value else {
                continue;
            };
            let mut values: Vec<Value> = plan
                .columns
                .iter()
                .map(|c| obj.get(&c.name).map_or(Value::Null, Value::from_json))
                .collect();
            let bound = |t: Option<i64>| t.map_or(Value::Null, Value::Int);
            values.extend([bound(row.window_start), bound(row.window_end)]);
            self.select(&values, &mut out);
        }
        out
    }

    /// Applies `WHERE` and the projection to one pull row.
    fn select(&self, values: &[Value], out: &mut Vec<serde_json::Value>) {
        if let Some(f) = &self.filter
            && f.eval(values) != Value::Bool(true)
        {
            return;
        }
        let mut obj = serde_json::Map::with_capacity(self.projection.len());
        for (name, e) in &self.projection {
            obj.insert(name.clone(), e.eval(values).to_json());
        }
        out.push(serde_json::Value::Object(obj));
    }
}

/// The key fixed by `col = literal` conjuncts of `where_`, when they fix every key part.
fn key_lookup(
    where_: &ast::Expr,
    plan: &TablePlan,
    outputs: &[ColumnDef],
    scope: &mut RowScope,
) -> Option<Key> {
    if plan.key_len() == 0 {
        return None;
    }
    let mut conjuncts = Vec::new();
    flatten_and(where_, &mut conjuncts);
    let mut parts: Vec<Option<Value>> = vec![None; plan.key_len()];
    for c in conjuncts {
        let ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::Eq,
            right,
        } = c
        else {
            continue;
        };
        let (Ok((l, _)), Ok((r, _))) = (compile(left, scope), compile(right, scope)) else {
            continue;
        };
        let (col, lit) = match (l, r) {
            (Expr::Column(c), Expr::Literal(v)) | (Expr::Literal(v), Expr::Column(c)) => (c, v),
            _ => continue,
        };
        let Some(k) = plan.key_in_output.iter().position(|o| *o == Some(col)) else {
            continue;
        };
        let Some(ty) = outputs.get(col).map(|c| c.ty) else {
            continue;
        };
        parts[k] = Some(coerce_key(lit, ty));
    }
    let parts: Option<Vec<Value>> = parts.into_iter().collect();
    parts.map(Key::new)
}

/// Key values are compared structurally, so a literal takes the key column's type.
fn coerce_key(v: Value, ty: SqlType) -> Value {
    match (ty, v) {
        (SqlType::Double, Value::Int(i)) => Value::Float(i as f64),
        (SqlType::BigInt, Value::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e18 => {
            Value::Int(f as i64)
        }
        (_, v) => v,
    }
}

fn flatten_and<'a>(e: &'a ast::Expr, out: &mut Vec<&'a ast::Expr>) {
    match e {
        ast::Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            flatten_and(left, out);
            flatten_and(right, out);
        }
        ast::Expr::Nested(inner) => flatten_and(inner, out),
        other => out.push(other),
    }
}

/// Where a pull query's `FROM` name is, for "unknown table" errors.
pub(crate) fn pull_table_name(
    query: &ast::Query,
    select_loc: Location,
) -> Result<(String, Location), SqlError> {
    let select = simple_select(query, select_loc)?;
    let (name, loc) = from_name(select, select_loc)?;
    Ok((
        name,
        span_loc(sqlparser::tokenizer::Span::new(loc, loc), select_loc),
    ))
}
