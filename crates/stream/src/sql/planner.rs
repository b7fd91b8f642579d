//! The planner: turns parsed statements into plain, executable plans — a [`StreamDef`]
//! for `CREATE STREAM`, a [`TablePlan`] (an operator configuration plus the expressions
//! around it) for `CREATE TABLE … AS SELECT`, a [`StreamPlan`] for
//! `CREATE STREAM … AS SELECT` — checking names, aggregate placement and types on the way.
//!
//! An aggregation is split at the operator. *Before* it, expressions read the decoded
//! input row: `WHERE`, the `GROUP BY` key, and each aggregate's argument, which is
//! projected into [`InputRecord::fields`](crate::InputRecord) (so `SUM(CASE WHEN …)` sums
//! a per-record computed field). *After* it, expressions read the aggregated row
//! `[key parts…, WINDOWSTART, WINDOWEND, aggregate results…]`: `HAVING` and the `SELECT`
//! list, where a sub-expression equal to a `GROUP BY` expression becomes a key reference
//! and any other column reference is an error.

use std::sync::Arc;

use sqlparser::ast::{
    self, BinaryOperator, DuplicateTreatment, FunctionArg, FunctionArgExpr, FunctionArguments,
    GroupByExpr, SelectItem, SetExpr, Spanned, TableFactor, UnaryOperator,
};

use super::expr::{ArithOp, CmpOp, Expr, Func, LikePattern, PathStep, parse_json_path};
use super::schema::{ColumnDef, SqlType, StreamDef};
use super::statement::{Name, Property, Relation, WindowClause};
use super::{Location, SqlError};
use crate::aggregate::{AggregateKind, AggregateSpec};
use crate::operator::{EmitMode, WindowAggregateConfig};
use crate::window::WindowSpec;

/// A compiled `CREATE TABLE … AS SELECT`.
#[derive(Clone, Debug)]
pub struct TablePlan {
    /// The stream it reads.
    pub source: Arc<StreamDef>,
    /// `WHERE`, over the input row.
    pub filter: Option<Expr>,
    /// `GROUP BY` expressions, over the input row.
    pub group_by: Vec<Expr>,
    /// Aggregate inputs, over the input row: `InputRecord::fields`.
    pub fields: Vec<Expr>,
    /// The operator.
    pub config: WindowAggregateConfig,
    /// `HAVING`, over the aggregated row.
    pub having: Option<Expr>,
    /// The `SELECT` list, over the aggregated row.
    pub projection: Vec<Expr>,
    /// Output columns (names and types), in `SELECT` order.
    pub columns: Vec<ColumnDef>,
    /// For each key part, the output column that holds it, if one does (pull queries).
    pub key_in_output: Vec<Option<usize>>,
}

impl TablePlan {
    /// Number of key parts: the aggregated row starts with them.
    pub fn key_len(&self) -> usize {
        self.group_by.len()
    }

    /// Whether the table is windowed.
    pub fn windowed(&self) -> bool {
        self.config.window != WindowSpec::Unwindowed
    }
}

/// A compiled `CREATE STREAM … AS SELECT`: a per-record filter and projection.
#[derive(Clone, Debug)]
pub struct StreamPlan {
    /// The stream it reads.
    pub source: Arc<StreamDef>,
    /// `WHERE`, over the input row.
    pub filter: Option<Expr>,
    /// The `SELECT` list, over the input row.
    pub projection: Vec<Expr>,
    /// Output columns.
    pub columns: Vec<ColumnDef>,
}

/// What a `CREATE … AS SELECT` compiles to.
#[derive(Clone, Debug)]
pub enum Plan {
    /// An aggregation.
    Table(Box<TablePlan>),
    /// A filter/projection.
    Stream(StreamPlan),
}

/// Looks up a stream by name, for `FROM`; `Err` carries the reason it is not a stream.
pub trait StreamLookup {
    /// The stream called `name` (case-insensitive).
    fn lookup_stream(&self, name: &str) -> Result<Arc<StreamDef>, String>;
}

/// `CREATE STREAM name (…) WITH (…)`.
pub fn plan_create_stream(
    name: &Name,
    columns: &[(Name, SqlType)],
    properties: &[Property],
) -> Result<StreamDef, SqlError> {
    let columns: Vec<ColumnDef> = columns
        .iter()
        .map(|(n, ty)| ColumnDef {
            name: n.value.clone(),
            ty: *ty,
        })
        .collect();
    let mut def = StreamDef {
        name: name.value.clone(),
        columns,
        topic: String::new(),
        timestamp_column: None,
    };
    let mut topic = None;
    for p in properties {
        match p.key.as_str() {
            "KAFKA_TOPIC" => topic = Some(p.value.clone()),
            "VALUE_FORMAT" => check_json_format(p)?,
            "TIMESTAMP" => {
                let i = def.column_index(&p.value).ok_or_else(|| {
                    SqlError::at(
                        p.value_loc,
                        format!(
                            "TIMESTAMP column '{}' is not a column of the stream",
                            p.value
                        ),
                    )
                })?;
                if def.columns[i].ty != SqlType::BigInt {
                    return Err(SqlError::at(
                        p.value_loc,
                        format!(
                            "TIMESTAMP column '{}' must be BIGINT epoch milliseconds, it is {}",
                            p.value, def.columns[i].ty
                        ),
                    ));
                }
                def.timestamp_column = Some(i);
            }
            "PARTITIONS" | "REPLICAS" | "KEY_FORMAT" => {}
            other => {
                return Err(SqlError::at(
                    p.key_loc,
                    format!(
                        "unsupported property {other} (supported: KAFKA_TOPIC, VALUE_FORMAT, TIMESTAMP, PARTITIONS, REPLICAS)"
                    ),
                ));
            }
        }
    }
    def.topic = topic.ok_or_else(|| {
        SqlError::at(
            name.loc,
            format!("stream '{}' needs WITH (KAFKA_TOPIC='…')", name.value),
        )
    })?;
    if def.topic.is_empty() {
        return Err(SqlError::at(name.loc, "KAFKA_TOPIC must not be empty"));
    }
    Ok(def)
}

fn check_json_format(p: &Property) -> Result<(), SqlError> {
    if p.value.eq_ignore_ascii_case("JSON") {
        Ok(())
    } else {
        Err(SqlError::at(
            p.value_loc,
            format!("VALUE_FORMAT '{}' is not supported: only JSON", p.value),
        ))
    }
}

/// The parts of a `CREATE … AS SELECT` the planner needs.
#[derive(Debug)]
pub struct CreateAs<'a> {
    /// Table or stream.
    pub relation: Relation,
    /// Its name.
    pub name: &'a Name,
    /// `WITH` properties.
    pub properties: &'a [Property],
    /// The query.
    pub query: &'a ast::Query,
    /// Position of `SELECT`.
    pub select_loc: Location,
    /// `WINDOW`.
    pub window: Option<&'a WindowClause>,
    /// `EMIT`.
    pub emit: Option<(EmitMode, Location)>,
}

/// The output topic a `CREATE … AS` names in `WITH (KAFKA_TOPIC=…)`, if any.
pub fn output_topic_property(properties: &[Property]) -> Result<Option<String>, SqlError> {
    let mut topic = None;
    for p in properties {
        match p.key.as_str() {
            "KAFKA_TOPIC" => topic = Some(p.value.clone()),
            "VALUE_FORMAT" => check_json_format(p)?,
            "PARTITIONS" | "REPLICAS" | "KEY_FORMAT" => {}
            other => {
                return Err(SqlError::at(
                    p.key_loc,
                    format!(
                        "unsupported property {other} (supported: KAFKA_TOPIC, VALUE_FORMAT, PARTITIONS, REPLICAS)"
                    ),
                ));
            }
        }
    }
    Ok(topic)
}

/// Plans a `CREATE TABLE|STREAM … AS SELECT`.
pub fn plan_create_as(stmt: &CreateAs<'_>, streams: &dyn StreamLookup) -> Result<Plan, SqlError> {
    let select = simple_select(stmt.query, stmt.select_loc)?;
    let source = resolve_from(select, stmt.select_loc, streams)?;
    let alias = from_alias(select);
    let group_by = match &select.group_by {
        GroupByExpr::Expressions(exprs, modifiers) if modifiers.is_empty() => exprs.clone(),
        _ => {
            return Err(SqlError::at(
                stmt.select_loc,
                "unsupported GROUP BY form (use GROUP BY expr, …)",
            ));
        }
    };
    let input = || RowScope::input(&source, alias.clone());
    let filter = match &select.selection {
        Some(w) => Some(compile_predicate(
            w,
            &mut input().context("WHERE"),
            "WHERE",
        )?),
        None => None,
    };
    let has_aggregates = select
        .projection
        .iter()
        .any(|item| select_item_expr(item).is_some_and(contains_aggregate))
        || select.having.as_ref().is_some_and(contains_aggregate);
    let is_table = stmt.relation == Relation::Table;
    if !is_table {
        if let Some(g) = group_by.first() {
            return Err(SqlError::at(
                loc_of(g, stmt.select_loc),
                "GROUP BY makes a table: use CREATE TABLE … AS SELECT",
            ));
        }
        if let Some(w) = stmt.window {
            return Err(SqlError::at(
                w.loc,
                "WINDOW needs an aggregation: use CREATE TABLE … AS SELECT … GROUP BY",
            ));
        }
        if let Some(h) = &select.having {
            return Err(SqlError::at(
                loc_of(h, stmt.select_loc),
                "HAVING needs an aggregation: use CREATE TABLE … AS SELECT … GROUP BY",
            ));
        }
        if let Some((EmitMode::Final, loc)) = stmt.emit {
            return Err(SqlError::at(loc, "EMIT FINAL needs a windowed aggregation"));
        }
        let mut scope = input().context("the SELECT list of a stream");
        let mut projection = Vec::new();
        let mut columns: Vec<ColumnDef> = Vec::new();
        for (i, item) in select.projection.iter().enumerate() {
            match item {
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                    for (c, col) in source.columns.iter().enumerate() {
                        push_column(&mut columns, col.name.clone(), col.ty, stmt.select_loc)?;
                        projection.push(Expr::Column(c));
                    }
                }
                _ => {
                    let (e, name, loc) = select_item_parts(item, i, stmt.select_loc)?;
                    let (compiled, ty) = compile(e, &mut scope)?;
                    push_column(&mut columns, name, ty, loc)?;
                    projection.push(compiled);
                }
            }
        }
        return Ok(Plan::Stream(StreamPlan {
            source,
            filter,
            projection,
            columns,
        }));
    }

    if !has_aggregates && group_by.is_empty() {
        return Err(SqlError::at(
            stmt.select_loc,
            "CREATE TABLE … AS SELECT needs GROUP BY or aggregate functions (for a filter or projection use CREATE STREAM … AS SELECT)",
        ));
    }
    // GROUP BY, over the input row.
    let mut keys = Vec::new();
    let mut key_types = Vec::new();
    for g in &group_by {
        let (e, ty) = compile(g, &mut input().context("GROUP BY"))?;
        if ty == SqlType::Json || ty == SqlType::Array {
            return Err(SqlError::at(
                loc_of(g, stmt.select_loc),
                format!("cannot GROUP BY a {ty} value: extract a scalar first"),
            ));
        }
        keys.push(e);
        key_types.push(ty);
    }
    let window = stmt.window.map_or(WindowSpec::Unwindowed, |w| w.spec);
    let emit = match stmt.emit {
        None | Some((EmitMode::Changes, _)) => EmitMode::Changes,
        Some((EmitMode::Final, loc)) => {
            if window == WindowSpec::Unwindowed {
                return Err(SqlError::at(
                    loc,
                    "EMIT FINAL needs a WINDOW: an unwindowed table never closes",
                ));
            }
            EmitMode::Final
        }
    };
    let mut agg = AggScope {
        input: input(),
        keys: &keys,
        key_types: &key_types,
        windowed: window != WindowSpec::Unwindowed,
        fields: Vec::new(),
        aggregates: Vec::new(),
    };
    let having = match &select.having {
        Some(h) => Some(compile_predicate(h, &mut agg, "HAVING")?),
        None => None,
    };
    let mut projection = Vec::new();
    let mut columns: Vec<ColumnDef> = Vec::new();
    for (i, item) in select.projection.iter().enumerate() {
        if let SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) = item {
            return Err(SqlError::at(
                loc_of_item(item, stmt.select_loc),
                "SELECT * cannot be used with GROUP BY: name the key columns and aggregates",
            ));
        }
        let (e, name, loc) = select_item_parts(item, i, stmt.select_loc)?;
        let (compiled, ty) = compile(e, &mut agg)?;
        push_column(&mut columns, name, ty, loc)?;
        projection.push(compiled);
    }
    let AggScope {
        fields,
        mut aggregates,
        ..
    } = agg;
    if aggregates.is_empty() {
        // The engine needs one aggregate; a pure GROUP BY keeps a hidden count.
        aggregates.push(AggCall {
            kind: AggregateKind::Count,
            field: None,
            name: "COUNT(*)".into(),
        });
    }
    let key_in_output: Vec<Option<usize>> = (0..keys.len())
        .map(|k| projection.iter().position(|p| *p == Expr::Column(k)))
        .collect();
    let key_columns = (0..keys.len())
        .map(|k| match key_in_output[k] {
            Some(c) => columns[c].name.clone(),
            None => group_by[k].to_string(),
        })
        .collect();
    let mut config = WindowAggregateConfig::new(
        stmt.name.value.to_lowercase(),
        window,
        aggregates
            .iter()
            .map(|a| AggregateSpec {
                kind: a.kind,
                input: a.field,
                name: a.name.clone(),
            })
            .collect(),
        emit,
    );
    config.key_columns = key_columns;
    if let Some(w) = stmt.window {
        config.grace_ms = w.grace_ms.unwrap_or(0);
    }
    config
        .validate()
        .map_err(|e| SqlError::at(stmt.select_loc, e.to_string()))?;
    Ok(Plan::Table(Box::new(TablePlan {
        source,
        filter,
        group_by: keys,
        fields,
        config,
        having,
        projection,
        columns,
        key_in_output,
    })))
}

/// The `SELECT` of a query without set operations, `ORDER BY`, `WITH` and the like.
pub(crate) fn simple_select(q: &ast::Query, loc: Location) -> Result<&ast::Select, SqlError> {
    if q.with.is_some() {
        return Err(SqlError::at(
            loc,
            "WITH (common table expressions) is not supported",
        ));
    }
    if let Some(o) = &q.order_by {
        return Err(SqlError::at(
            span_loc(o.span(), loc),
            "ORDER BY is not supported in a continuous query",
        ));
    }
    if q.fetch.is_some() || !q.locks.is_empty() || q.for_clause.is_some() {
        return Err(SqlError::at(loc, "unsupported clause after the query"));
    }
    let SetExpr::Select(select) = q.body.as_ref() else {
        return Err(SqlError::at(
            loc,
            "only a plain SELECT is supported (no UNION, VALUES or subquery)",
        ));
    };
    if select.distinct.is_some() {
        return Err(SqlError::at(
            span_loc(select.select_token.0.span, loc),
            "SELECT DISTINCT is not supported: use GROUP BY",
        ));
    }
    if select.top.is_some()
        || select.into.is_some()
        || !select.lateral_views.is_empty()
        || select.prewhere.is_some()
        || !select.cluster_by.is_empty()
        || !select.distribute_by.is_empty()
        || !select.sort_by.is_empty()
        || !select.named_window.is_empty()
        || select.qualify.is_some()
        || !select.connect_by.is_empty()
    {
        return Err(SqlError::at(loc, "unsupported SELECT clause"));
    }
    Ok(select)
}

/// The one stream in `FROM`.
fn resolve_from(
    select: &ast::Select,
    loc: Location,
    streams: &dyn StreamLookup,
) -> Result<Arc<StreamDef>, SqlError> {
    let (name, name_loc) = from_name(select, loc)?;
    streams
        .lookup_stream(&name)
        .map_err(|reason| SqlError::at(name_loc, reason))
}

/// The name (and its position) of the single relation in `FROM`.
pub(crate) fn from_name(
    select: &ast::Select,
    loc: Location,
) -> Result<(String, Location), SqlError> {
    let [from] = select.from.as_slice() else {
        return Err(match select.from.get(1) {
            None => SqlError::at(loc, "missing FROM"),
            Some(second) => SqlError::at(
                span_loc(second.relation.span(), loc),
                "only one stream can be read (joins are not supported)",
            ),
        });
    };
    if let Some(j) = from.joins.first() {
        return Err(SqlError::at(
            span_loc(j.relation.span(), loc),
            "joins are not supported",
        ));
    }
    let TableFactor::Table { name, args, .. } = &from.relation else {
        return Err(SqlError::at(
            span_loc(from.relation.span(), loc),
            "FROM must name a stream",
        ));
    };
    if args.is_some() || name.0.len() != 1 {
        return Err(SqlError::at(
            span_loc(name.span(), loc),
            "FROM must name a stream",
        ));
    }
    let Some(ident) = name.0[0].as_ident() else {
        return Err(SqlError::at(
            span_loc(name.span(), loc),
            "FROM must name a stream",
        ));
    };
    Ok((ident.value.clone(), span_loc(ident.span, loc)))
}

fn from_alias(select: &ast::Select) -> Vec<String> {
    let mut names = Vec::new();
    if let Some(from) = select.from.first()
        && let TableFactor::Table { name, alias, .. } = &from.relation
    {
        if let Some(id) = name.0.last().and_then(|p| p.as_ident()) {
            names.push(id.value.clone());
        }
        if let Some(a) = alias {
            names.push(a.name.value.clone());
        }
    }
    names
}

fn push_column(
    columns: &mut Vec<ColumnDef>,
    name: String,
    ty: SqlType,
    loc: Location,
) -> Result<(), SqlError> {
    if columns.iter().any(|c| c.name.eq_ignore_ascii_case(&name)) {
        return Err(SqlError::at(
            loc,
            format!("duplicate output column '{name}': give it an alias with AS"),
        ));
    }
    columns.push(ColumnDef { name, ty });
    Ok(())
}

fn select_item_expr(item: &SelectItem) -> Option<&ast::Expr> {
    match item {
        SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => Some(e),
        _ => None,
    }
}

fn loc_of_item(item: &SelectItem, fallback: Location) -> Location {
    span_loc(item.span(), fallback)
}

/// An item's expression, output name (alias, column name, or `KSQL_COL_i`) and position.
pub(crate) fn select_item_parts(
    item: &SelectItem,
    index: usize,
    fallback: Location,
) -> Result<(&ast::Expr, String, Location), SqlError> {
    match item {
        SelectItem::UnnamedExpr(e) => {
            let name = match e {
                ast::Expr::Identifier(id) => id.value.clone(),
                ast::Expr::CompoundIdentifier(ids) => ids
                    .last()
                    .map_or_else(|| format!("KSQL_COL_{index}"), |id| id.value.clone()),
                _ => format!("KSQL_COL_{index}"),
            };
            Ok((e, name, loc_of(e, fallback)))
        }
        SelectItem::ExprWithAlias { expr, alias } => {
            Ok((expr, alias.value.clone(), span_loc(alias.span, fallback)))
        }
        other => Err(SqlError::at(
            loc_of_item(other, fallback),
            "unsupported SELECT item",
        )),
    }
}

pub(crate) fn span_loc(span: sqlparser::tokenizer::Span, fallback: Location) -> Location {
    if span.start.line == 0 {
        fallback
    } else {
        span.start
    }
}

pub(crate) fn loc_of(e: &ast::Expr, fallback: Location) -> Location {
    span_loc(e.span(), fallback)
}

/// Compiles a `WHERE`/`HAVING` condition, which must be boolean.
pub(crate) fn compile_predicate(
    e: &ast::Expr,
    scope: &mut dyn Scope,
    clause: &str,
) -> Result<Expr, SqlError> {
    let (compiled, ty) = compile(e, scope)?;
    if !matches!(ty, SqlType::Boolean | SqlType::Unknown) {
        return Err(SqlError::at(
            loc_of(e, Location::new(1, 1)),
            format!("{clause} must be a boolean condition, this is {ty}"),
        ));
    }
    Ok(compiled)
}

// ---------------------------------------------------------------------------------------
// Scopes: what names mean where an expression is compiled.

/// Resolves names and aggregate calls for [`compile`].
pub(crate) trait Scope {
    /// A column reference.
    fn column(&mut self, ident: &ast::Ident) -> Result<(Expr, SqlType), SqlError>;
    /// A qualified column reference `rel.col`.
    fn qualified(&mut self, idents: &[ast::Ident]) -> Result<(Expr, SqlType), SqlError>;
    /// An aggregate function call.
    fn aggregate(
        &mut self,
        f: &ast::Function,
        name: &str,
        loc: Location,
    ) -> Result<(Expr, SqlType), SqlError>;
    /// A chance to replace a whole sub-expression (group-key matching).
    fn intercept(&mut self, _e: &ast::Expr) -> Result<Option<(Expr, SqlType)>, SqlError> {
        Ok(None)
    }
}

/// A row of named, typed columns: a stream's decoded record, or a table's output row.
pub(crate) struct RowScope {
    columns: Vec<ColumnDef>,
    relation_names: Vec<String>,
    context: &'static str,
    /// Set when an aggregate or window bound was met (the aggregation probe).
    probe_hit: bool,
}

impl RowScope {
    pub(crate) fn input(source: &StreamDef, relation_names: Vec<String>) -> Self {
        Self::new(source.columns.clone(), relation_names)
    }

    pub(crate) fn new(columns: Vec<ColumnDef>, relation_names: Vec<String>) -> Self {
        Self {
            columns,
            relation_names,
            context: "this clause",
            probe_hit: false,
        }
    }

    pub(crate) fn context(mut self, context: &'static str) -> Self {
        self.context = context;
        self
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .or_else(|| {
                self.columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(name))
            })
    }
}

fn is_window_bound(name: &str) -> bool {
    name.eq_ignore_ascii_case("WINDOWSTART") || name.eq_ignore_ascii_case("WINDOWEND")
}

impl Scope for RowScope {
    fn column(&mut self, ident: &ast::Ident) -> Result<(Expr, SqlType), SqlError> {
        let loc = span_loc(ident.span, Location::new(1, 1));
        match self.index(&ident.value) {
            Some(i) => Ok((Expr::Column(i), self.columns[i].ty)),
            None if is_window_bound(&ident.value) => {
                self.probe_hit = true;
                Err(SqlError::at(
                    loc,
                    format!(
                        "{} is only available in the SELECT list and HAVING of a windowed aggregation, not in {}",
                        ident.value.to_ascii_uppercase(),
                        self.context
                    ),
                ))
            }
            None => Err(SqlError::at(
                loc,
                format!("unknown column '{}'", ident.value),
            )),
        }
    }

    fn qualified(&mut self, idents: &[ast::Ident]) -> Result<(Expr, SqlType), SqlError> {
        match idents {
            [rel, col]
                if self
                    .relation_names
                    .iter()
                    .any(|n| n.eq_ignore_ascii_case(&rel.value)) =>
            {
                self.column(col)
            }
            [rel, ..] => Err(SqlError::at(
                span_loc(rel.span, Location::new(1, 1)),
                format!("unknown stream or alias '{}'", rel.value),
            )),
            [] => Err(SqlError::at(Location::new(1, 1), "empty identifier")),
        }
    }

    fn aggregate(
        &mut self,
        _f: &ast::Function,
        name: &str,
        loc: Location,
    ) -> Result<(Expr, SqlType), SqlError> {
        self.probe_hit = true;
        Err(SqlError::at(
            loc,
            format!(
                "aggregate function {name} is not allowed in {}",
                self.context
            ),
        ))
    }
}

struct AggCall {
    kind: AggregateKind,
    field: Option<usize>,
    name: String,
}

/// The aggregated row: key parts, window bounds, aggregate results.
struct AggScope<'a> {
    input: RowScope,
    keys: &'a [Expr],
    key_types: &'a [SqlType],
    windowed: bool,
    fields: Vec<Expr>,
    aggregates: Vec<AggCall>,
}

impl AggScope<'_> {
    fn slot_window_start(&self) -> usize {
        self.keys.len()
    }

    fn field(&mut self, e: Expr) -> usize {
        match self.fields.iter().position(|f| *f == e) {
            Some(i) => i,
            None => {
                self.fields.push(e);
                self.fields.len() - 1
            }
        }
    }

    fn input_arg(&mut self, e: &ast::Expr) -> Result<(Expr, SqlType), SqlError> {
        let mut scope = RowScope::new(
            self.input.columns.clone(),
            self.input.relation_names.clone(),
        )
        .context("an aggregate function's arguments");
        compile(e, &mut scope)
    }
}

impl Scope for AggScope<'_> {
    fn intercept(&mut self, e: &ast::Expr) -> Result<Option<(Expr, SqlType)>, SqlError> {
        // Compile at the row level; if that meets an aggregate or a window bound, the
        // expression is not row-level and is compiled piecewise instead.
        self.input.probe_hit = false;
        let (compiled, ty) = match compile(e, &mut self.input) {
            Ok(c) => c,
            Err(_) if self.input.probe_hit => return Ok(None),
            Err(err) => return Err(err),
        };
        if let Some(k) = self.keys.iter().position(|key| *key == compiled) {
            return Ok(Some((Expr::Column(k), self.key_types[k])));
        }
        if compiled.is_constant() {
            return Ok(Some((compiled, ty)));
        }
        Ok(None)
    }

    fn column(&mut self, ident: &ast::Ident) -> Result<(Expr, SqlType), SqlError> {
        let loc = span_loc(ident.span, Location::new(1, 1));
        if is_window_bound(&ident.value) && self.input.index(&ident.value).is_none() {
            if !self.windowed {
                return Err(SqlError::at(
                    loc,
                    format!("{} needs a WINDOW clause", ident.value.to_ascii_uppercase()),
                ));
            }
            let slot = self.slot_window_start()
                + usize::from(ident.value.eq_ignore_ascii_case("WINDOWEND"));
            return Ok((Expr::Column(slot), SqlType::BigInt));
        }
        match self.input.index(&ident.value) {
            Some(_) => Err(SqlError::at(
                loc,
                format!(
                    "column '{}' must appear in GROUP BY or be used in an aggregate function",
                    ident.value
                ),
            )),
            None => Err(SqlError::at(
                loc,
                format!("unknown column '{}'", ident.value),
            )),
        }
    }

    fn qualified(&mut self, idents: &[ast::Ident]) -> Result<(Expr, SqlType), SqlError> {
        match idents {
            [_, col] => {
                // Resolvable at the row level means it was a known column not in GROUP BY
                // (a grouped one was intercepted); report it like an unqualified one.
                self.input.qualified(idents)?;
                self.column(col)
            }
            _ => self.input.qualified(idents),
        }
    }

    fn aggregate(
        &mut self,
        f: &ast::Function,
        name: &str,
        loc: Location,
    ) -> Result<(Expr, SqlType), SqlError> {
        let FunctionArguments::List(list) = &f.args else {
            return Err(SqlError::at(loc, format!("{name} needs arguments")));
        };
        if !list.clauses.is_empty() || f.filter.is_some() || f.over.is_some() {
            return Err(SqlError::at(
                loc,
                format!("unsupported clause in the call to {name}"),
            ));
        }
        let distinct = matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct));
        let mut args = Vec::new();
        let mut star = false;
        for a in &list.args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
                FunctionArg::Unnamed(FunctionArgExpr::Wildcard) => star = true,
                _ => {
                    return Err(SqlError::at(loc, format!("unsupported argument to {name}")));
                }
            }
        }
        let arity = |n: usize| -> Result<(), SqlError> {
            if args.len() == n && !star {
                Ok(())
            } else {
                Err(SqlError::at(
                    loc,
                    format!("{name} takes {n} argument{}", if n == 1 { "" } else { "s" }),
                ))
            }
        };
        let (kind, input, ty): (AggregateKind, Option<&ast::Expr>, Option<SqlType>) = match name {
            "COUNT" if star && args.is_empty() && !distinct => {
                (AggregateKind::Count, None, Some(SqlType::BigInt))
            }
            "COUNT" => {
                arity(1)?;
                let kind = if distinct {
                    AggregateKind::CountDistinct
                } else {
                    AggregateKind::Count
                };
                (kind, Some(args[0]), Some(SqlType::BigInt))
            }
            "COUNT_DISTINCT" => {
                arity(1)?;
                (
                    AggregateKind::CountDistinct,
                    Some(args[0]),
                    Some(SqlType::BigInt),
                )
            }
            "SUM" => {
                arity(1)?;
                (AggregateKind::Sum, Some(args[0]), None)
            }
            "MIN" => {
                arity(1)?;
                (AggregateKind::Min, Some(args[0]), None)
            }
            "MAX" => {
                arity(1)?;
                (AggregateKind::Max, Some(args[0]), None)
            }
            "AVG" => {
                arity(1)?;
                (AggregateKind::Avg, Some(args[0]), Some(SqlType::Double))
            }
            "STDDEV" | "STDDEV_SAMP" | "STDDEV_SAMPLE" => {
                arity(1)?;
                (AggregateKind::Stddev, Some(args[0]), Some(SqlType::Double))
            }
            "P50" | "P95" | "P99" => {
                arity(1)?;
                let q = match name {
                    "P50" => 0.5,
                    "P95" => 0.95,
                    _ => 0.99,
                };
                (
                    AggregateKind::Percentile { q },
                    Some(args[0]),
                    Some(SqlType::Double),
                )
            }
            "PERCENTILE" => {
                arity(2)?;
                let q = number_literal(args[1]).filter(|q| (0.0..=1.0).contains(q));
                let Some(q) = q else {
                    return Err(SqlError::at(
                        loc_of(args[1], loc),
                        "PERCENTILE's second argument must be a number between 0 and 1",
                    ));
                };
                (
                    AggregateKind::Percentile { q },
                    Some(args[0]),
                    Some(SqlType::Double),
                )
            }
            "LATEST_BY_OFFSET" => {
                arity(1)?;
                (AggregateKind::LatestByOffset, Some(args[0]), None)
            }
            "EARLIEST_BY_OFFSET" => {
                arity(1)?;
                (AggregateKind::EarliestByOffset, Some(args[0]), None)
            }
            "TOPK" | "TOPK_FREQUENT" => {
                arity(2)?;
                let k = number_literal(args[1])
                    .filter(|k| k.fract() == 0.0 && *k >= 1.0 && *k <= 1_000.0)
                    .ok_or_else(|| {
                        SqlError::at(
                            loc_of(args[1], loc),
                            format!(
                                "{name}'s second argument must be a whole number from 1 to 1000"
                            ),
                        )
                    })? as usize;
                let kind = if name == "TOPK" {
                    AggregateKind::TopK { k }
                } else {
                    AggregateKind::TopKFrequent { k }
                };
                (kind, Some(args[0]), Some(SqlType::Array))
            }
            _ => return Err(SqlError::at(loc, format!("unknown aggregate {name}"))),
        };
        let (field, in_ty) = match input {
            Some(arg) => {
                let (e, t) = self.input_arg(arg)?;
                let numeric_only = matches!(
                    kind,
                    AggregateKind::Sum
                        | AggregateKind::Avg
                        | AggregateKind::Stddev
                        | AggregateKind::Percentile { .. }
                );
                if numeric_only && !t.is_numeric() {
                    return Err(SqlError::at(
                        loc_of(arg, loc),
                        format!("{name} needs a numeric argument, this is {t}"),
                    ));
                }
                (Some(self.field(e)), t)
            }
            None => (None, SqlType::BigInt),
        };
        let ty = ty.unwrap_or(in_ty);
        let slot = match self
            .aggregates
            .iter()
            .position(|a| a.kind == kind && a.field == field)
        {
            Some(i) => i,
            None => {
                self.aggregates.push(AggCall {
                    kind,
                    field,
                    name: ast::Expr::Function(f.clone()).to_string(),
                });
                self.aggregates.len() - 1
            }
        };
        Ok((Expr::Column(self.keys.len() + 2 + slot), ty))
    }
}

fn number_literal(e: &ast::Expr) -> Option<f64> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// Whether an expression calls an aggregate function anywhere.
fn contains_aggregate(e: &ast::Expr) -> bool {
    use ast::Expr as E;
    match e {
        E::Function(f) => {
            if aggregate_name(f).is_some() {
                return true;
            }
            match &f.args {
                FunctionArguments::List(list) => list.args.iter().any(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => contains_aggregate(x),
                    _ => false,
                }),
                _ => false,
            }
        }
        E::BinaryOp { left, right, .. } => contains_aggregate(left) || contains_aggregate(right),
        E::UnaryOp { expr, .. }
        | E::Nested(expr)
        | E::IsNull(expr)
        | E::IsNotNull(expr)
        | E::Cast { expr, .. } => contains_aggregate(expr),
        E::In {
            expr,
            target: ast::InTarget::List(list),
            ..
        } => contains_aggregate(expr) || list.iter().any(contains_aggregate),
        E::Between {
            expr, low, high, ..
        } => contains_aggregate(expr) || contains_aggregate(low) || contains_aggregate(high),
        E::Like { expr, pattern, .. } | E::ILike { expr, pattern, .. } => {
            contains_aggregate(expr) || contains_aggregate(pattern)
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            operand.as_ref().is_some_and(|o| contains_aggregate(o))
                || conditions
                    .iter()
                    .any(|c| contains_aggregate(&c.condition) || contains_aggregate(&c.result))
                || else_result.as_ref().is_some_and(|x| contains_aggregate(x))
        }
        _ => false,
    }
}

fn function_name(f: &ast::Function) -> Option<String> {
    match f.name.0.as_slice() {
        [part] => part.as_ident().map(|id| id.value.to_ascii_uppercase()),
        _ => None,
    }
}

fn aggregate_name(f: &ast::Function) -> Option<String> {
    let name = function_name(f)?;
    matches!(
        name.as_str(),
        "COUNT"
            | "COUNT_DISTINCT"
            | "SUM"
            | "MIN"
            | "MAX"
            | "AVG"
            | "STDDEV"
            | "STDDEV_SAMP"
            | "STDDEV_SAMPLE"
            | "P50"
            | "P95"
            | "P99"
            | "PERCENTILE"
            | "LATEST_BY_OFFSET"
            | "EARLIEST_BY_OFFSET"
            | "TOPK"
            | "TOPK_FREQUENT"
    )
    .then_some(name)
}

// ---------------------------------------------------------------------------------------
// Expression compilation.

/// Compiles an expression in `scope`, returning it and its static type.
pub(crate) fn compile(e: &ast::Expr, scope: &mut dyn Scope) -> Result<(Expr, SqlType), SqlError> {
    if let Some(done) = scope.intercept(e)? {
        return Ok(done);
    }
    let (compiled, ty) = compile_node(e, scope)?;
    // Fold constant sub-trees once, at compile time.
    if compiled.is_constant() && !matches!(compiled, Expr::Literal(_)) {
        return Ok((Expr::Literal(compiled.eval(&[])), ty));
    }
    Ok((compiled, ty))
}

fn compile_node(e: &ast::Expr, scope: &mut dyn Scope) -> Result<(Expr, SqlType), SqlError> {
    use ast::Expr as E;
    let loc = loc_of(e, Location::new(1, 1));
    match e {
        E::Identifier(id) => scope.column(id),
        E::CompoundIdentifier(ids) => scope.qualified(ids),
        E::Value(v) => literal(&v.value, loc).map(|v| {
            let ty = SqlType::of(&v);
            (Expr::Literal(v), ty)
        }),
        E::Nested(inner) => compile(inner, scope),
        E::UnaryOp { op, expr } => {
            let (x, ty) = compile(expr, scope)?;
            match op {
                UnaryOperator::Not => {
                    expect_bool(ty, expr, "NOT")?;
                    Ok((Expr::Not(Box::new(x)), SqlType::Boolean))
                }
                UnaryOperator::Minus => {
                    expect_numeric(ty, expr, "-")?;
                    Ok((Expr::Neg(Box::new(x)), ty))
                }
                UnaryOperator::Plus => {
                    expect_numeric(ty, expr, "+")?;
                    Ok((x, ty))
                }
                other => Err(SqlError::at(loc, format!("unsupported operator {other}"))),
            }
        }
        E::BinaryOp { left, op, right } => compile_binary(left, op, right, loc, scope),
        E::IsNull(x) | E::IsNotNull(x) => {
            let (c, _) = compile(x, scope)?;
            Ok((
                Expr::IsNull {
                    expr: Box::new(c),
                    negated: matches!(e, E::IsNotNull(_)),
                },
                SqlType::Boolean,
            ))
        }
        E::In {
            expr,
            target: ast::InTarget::List(list),
            negated,
            global: false,
        } => {
            let (x, ty) = compile(expr, scope)?;
            let mut items = Vec::with_capacity(list.len());
            for item in list {
                let (c, ity) = compile(item, scope)?;
                if !ty.comparable(ity) {
                    return Err(SqlError::at(
                        loc_of(item, loc),
                        format!("IN list item is {ity}, the value is {ty}"),
                    ));
                }
                items.push(c);
            }
            Ok((
                Expr::InList {
                    expr: Box::new(x),
                    list: items,
                    negated: *negated,
                },
                SqlType::Boolean,
            ))
        }
        E::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let (x, ty) = compile(expr, scope)?;
            let (l, lty) = compile(low, scope)?;
            let (h, hty) = compile(high, scope)?;
            for (t, at) in [(lty, low), (hty, high)] {
                if !ty.comparable(t) {
                    return Err(SqlError::at(
                        loc_of(at, loc),
                        format!("cannot compare {ty} with {t} in BETWEEN"),
                    ));
                }
            }
            Ok((
                Expr::Between {
                    expr: Box::new(x),
                    low: Box::new(l),
                    high: Box::new(h),
                    negated: *negated,
                },
                SqlType::Boolean,
            ))
        }
        E::Like {
            negated,
            any,
            expr,
            pattern,
            escape_char,
        }
        | E::ILike {
            negated,
            any,
            expr,
            pattern,
            escape_char,
        } => {
            if *any {
                return Err(SqlError::at(loc, "LIKE ANY is not supported"));
            }
            let (x, ty) = compile(expr, scope)?;
            if !matches!(ty, SqlType::String | SqlType::Unknown) {
                return Err(SqlError::at(
                    loc_of(expr, loc),
                    format!("LIKE needs a VARCHAR operand, this is {ty}"),
                ));
            }
            let Some(p) = string_literal(pattern) else {
                return Err(SqlError::at(
                    loc_of(pattern, loc),
                    "the LIKE pattern must be a string literal",
                ));
            };
            let escape = match escape_char {
                None => None,
                Some(esc) => match string_literal(esc).map(|s| {
                    let mut chars = s.chars();
                    (chars.next(), chars.next())
                }) {
                    Some((Some(c), None)) => Some(c),
                    _ => {
                        return Err(SqlError::at(
                            loc_of(esc, loc),
                            "ESCAPE must be a single character",
                        ));
                    }
                },
            };
            Ok((
                Expr::Like {
                    expr: Box::new(x),
                    pattern: LikePattern::new(p, escape, matches!(e, E::ILike { .. })),
                    negated: *negated,
                },
                SqlType::Boolean,
            ))
        }
        E::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let operand = match operand {
                Some(o) => Some(compile(o, scope)?),
                None => None,
            };
            let mut whens = Vec::with_capacity(conditions.len());
            let mut result_ty = SqlType::Unknown;
            for cw in conditions {
                let (c, cty) = compile(&cw.condition, scope)?;
                match &operand {
                    Some((_, oty)) if !oty.comparable(cty) => {
                        return Err(SqlError::at(
                            loc_of(&cw.condition, loc),
                            format!("WHEN value is {cty}, the CASE operand is {oty}"),
                        ));
                    }
                    None => expect_bool(cty, &cw.condition, "WHEN")?,
                    _ => {}
                }
                let (r, rty) = compile(&cw.result, scope)?;
                result_ty = unify(result_ty, rty, &cw.result)?;
                whens.push((c, r));
            }
            let otherwise = match else_result {
                Some(x) => {
                    let (c, t) = compile(x, scope)?;
                    result_ty = unify(result_ty, t, x)?;
                    Some(Box::new(c))
                }
                None => None,
            };
            Ok((
                Expr::Case {
                    operand: operand.map(|(o, _)| Box::new(o)),
                    whens,
                    otherwise,
                },
                result_ty,
            ))
        }
        E::Cast {
            expr, data_type, ..
        } => {
            let (x, _) = compile(expr, scope)?;
            let text = data_type.to_string();
            let base = text.split(['(', '<', ' ']).next().unwrap_or("");
            let ty = SqlType::from_name(base)
                .ok_or_else(|| SqlError::at(loc, format!("cannot CAST to {text}")))?;
            Ok((Expr::Cast(Box::new(x), ty), ty))
        }
        E::Function(f) => compile_function(f, loc, scope),
        other => Err(SqlError::at(
            loc,
            format!("unsupported expression '{other}'"),
        )),
    }
}

fn literal(v: &ast::Value, loc: Location) -> Result<crate::Value, SqlError> {
    use crate::Value;
    Ok(match v {
        ast::Value::Number(n, _) => match n.parse::<i64>() {
            Ok(i) => Value::Int(i),
            Err(_) => n
                .parse::<f64>()
                .map(Value::Float)
                .map_err(|_| SqlError::at(loc, format!("bad number '{n}'")))?,
        },
        ast::Value::SingleQuotedString(s) => Value::string(s),
        ast::Value::Boolean(b) => Value::Bool(*b),
        ast::Value::Null => Value::Null,
        other => {
            return Err(SqlError::at(loc, format!("unsupported literal {other}")));
        }
    })
}

fn string_literal(e: &ast::Expr) -> Option<&str> {
    match e {
        ast::Expr::Value(v) => match &v.value {
            ast::Value::SingleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

fn expect_bool(ty: SqlType, e: &ast::Expr, what: &str) -> Result<(), SqlError> {
    if matches!(ty, SqlType::Boolean | SqlType::Unknown) {
        Ok(())
    } else {
        Err(SqlError::at(
            loc_of(e, Location::new(1, 1)),
            format!("{what} needs a boolean operand, this is {ty}"),
        ))
    }
}

fn expect_numeric(ty: SqlType, e: &ast::Expr, what: &str) -> Result<(), SqlError> {
    if ty.is_numeric() {
        Ok(())
    } else {
        Err(SqlError::at(
            loc_of(e, Location::new(1, 1)),
            format!("'{what}' needs numeric operands, this is {ty}"),
        ))
    }
}

fn unify(a: SqlType, b: SqlType, at: &ast::Expr) -> Result<SqlType, SqlError> {
    Ok(match (a, b) {
        (SqlType::Unknown, t) | (t, SqlType::Unknown) => t,
        (x, y) if x == y => x,
        (SqlType::BigInt, SqlType::Double) | (SqlType::Double, SqlType::BigInt) => SqlType::Double,
        (x, y) => {
            return Err(SqlError::at(
                loc_of(at, Location::new(1, 1)),
                format!("CASE results mix {x} and {y}"),
            ));
        }
    })
}

fn compile_binary(
    left: &ast::Expr,
    op: &BinaryOperator,
    right: &ast::Expr,
    loc: Location,
    scope: &mut dyn Scope,
) -> Result<(Expr, SqlType), SqlError> {
    if matches!(op, BinaryOperator::Arrow | BinaryOperator::LongArrow) {
        let (base, ty) = compile(left, scope)?;
        if !matches!(ty, SqlType::Json | SqlType::String | SqlType::Unknown) {
            return Err(SqlError::at(
                loc_of(left, loc),
                format!("'{op}' needs a JSON or MAP operand, this is {ty}"),
            ));
        }
        let step = match right {
            ast::Expr::Value(v) => match &v.value {
                ast::Value::SingleQuotedString(s) => Some(PathStep::Field(s.clone())),
                ast::Value::Number(n, _) => n.parse().ok().map(PathStep::Index),
                _ => None,
            },
            _ => None,
        };
        let Some(step) = step else {
            return Err(SqlError::at(
                loc_of(right, loc),
                format!("'{op}' needs a quoted field name or an array index"),
            ));
        };
        let as_text = *op == BinaryOperator::LongArrow;
        // metadata->'a'->'b' extends one path rather than nesting lookups.
        let compiled = match base {
            Expr::JsonPath {
                expr,
                mut path,
                as_text: false,
            } => {
                path.push(step);
                Expr::JsonPath {
                    expr,
                    path,
                    as_text,
                }
            }
            other => Expr::JsonPath {
                expr: Box::new(other),
                path: vec![step],
                as_text,
            },
        };
        let ty = if as_text {
            SqlType::String
        } else {
            SqlType::Unknown
        };
        return Ok((compiled, ty));
    }
    let (l, lt) = compile(left, scope)?;
    let (r, rt) = compile(right, scope)?;
    let (l, r) = (Box::new(l), Box::new(r));
    let arith = |a: ArithOp| -> Result<(Expr, SqlType), SqlError> {
        expect_numeric(lt, left, &op.to_string())?;
        expect_numeric(rt, right, &op.to_string())?;
        let ty = match (lt, rt) {
            (SqlType::BigInt, SqlType::BigInt) => SqlType::BigInt,
            (SqlType::Unknown, _) | (_, SqlType::Unknown) => SqlType::Unknown,
            _ => SqlType::Double,
        };
        Ok((Expr::Arith(a, l.clone(), r.clone()), ty))
    };
    let cmp = |c: CmpOp| -> Result<(Expr, SqlType), SqlError> {
        if !lt.comparable(rt) {
            return Err(SqlError::at(
                loc_of(right, loc),
                format!("cannot compare {lt} with {rt}"),
            ));
        }
        Ok((Expr::Cmp(c, l.clone(), r.clone()), SqlType::Boolean))
    };
    match op {
        BinaryOperator::Plus => arith(ArithOp::Add),
        BinaryOperator::Minus => arith(ArithOp::Sub),
        BinaryOperator::Multiply => arith(ArithOp::Mul),
        BinaryOperator::Divide => arith(ArithOp::Div),
        BinaryOperator::Modulo => arith(ArithOp::Mod),
        BinaryOperator::Eq => cmp(CmpOp::Eq),
        BinaryOperator::NotEq => cmp(CmpOp::Ne),
        BinaryOperator::Lt => cmp(CmpOp::Lt),
        BinaryOperator::LtEq => cmp(CmpOp::Le),
        BinaryOperator::Gt => cmp(CmpOp::Gt),
        BinaryOperator::GtEq => cmp(CmpOp::Ge),
        BinaryOperator::And | BinaryOperator::Or => {
            expect_bool(lt, left, &op.to_string())?;
            expect_bool(rt, right, &op.to_string())?;
            let e = if *op == BinaryOperator::And {
                Expr::And(l, r)
            } else {
                Expr::Or(l, r)
            };
            Ok((e, SqlType::Boolean))
        }
        BinaryOperator::StringConcat => Ok((Expr::StrConcat(l, r), SqlType::String)),
        other => Err(SqlError::at(loc, format!("unsupported operator {other}"))),
    }
}

fn compile_function(
    f: &ast::Function,
    loc: Location,
    scope: &mut dyn Scope,
) -> Result<(Expr, SqlType), SqlError> {
    let loc = span_loc(f.name.span(), loc);
    let Some(name) = function_name(f) else {
        return Err(SqlError::at(loc, format!("unknown function {}", f.name)));
    };
    if aggregate_name(f).is_some() {
        return scope.aggregate(f, &name, loc);
    }
    let FunctionArguments::List(list) = &f.args else {
        return Err(SqlError::at(loc, format!("{name} needs an argument list")));
    };
    if list.duplicate_treatment.is_some()
        || !list.clauses.is_empty()
        || f.filter.is_some()
        || f.over.is_some()
    {
        return Err(SqlError::at(
            loc,
            format!("unsupported clause in the call to {name}"),
        ));
    }
    let mut args = Vec::with_capacity(list.args.len());
    for a in &list.args {
        match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => args.push(e),
            _ => {
                return Err(SqlError::at(loc, format!("unsupported argument to {name}")));
            }
        }
    }
    let arity = |lo: usize, hi: usize| -> Result<(), SqlError> {
        if (lo..=hi).contains(&args.len()) {
            Ok(())
        } else if lo == hi {
            Err(SqlError::at(loc, format!("{name} takes {lo} argument(s)")))
        } else {
            Err(SqlError::at(
                loc,
                format!("{name} takes {lo} to {hi} arguments"),
            ))
        }
    };
    if name == "EXTRACTJSONFIELD" {
        arity(2, 2)?;
        let (base, ty) = compile(args[0], scope)?;
        if !matches!(ty, SqlType::Json | SqlType::String | SqlType::Unknown) {
            return Err(SqlError::at(
                loc_of(args[0], loc),
                format!("EXTRACTJSONFIELD needs a JSON, MAP or VARCHAR value, this is {ty}"),
            ));
        }
        let Some(path) = string_literal(args[1]) else {
            return Err(SqlError::at(
                loc_of(args[1], loc),
                "EXTRACTJSONFIELD's path must be a string literal like '$.a.b'",
            ));
        };
        let path = parse_json_path(path).map_err(|m| SqlError::at(loc_of(args[1], loc), m))?;
        return Ok((
            Expr::JsonPath {
                expr: Box::new(base),
                path,
                as_text: true,
            },
            SqlType::String,
        ));
    }
    let (func, lo, hi) = match name.as_str() {
        "UCASE" | "UPPER" => (Func::Upper, 1, 1),
        "LCASE" | "LOWER" => (Func::Lower, 1, 1),
        "LEN" | "LENGTH" => (Func::Len, 1, 1),
        "ABS" => (Func::Abs, 1, 1),
        "ROUND" => (Func::Round, 1, 2),
        "FLOOR" => (Func::Floor, 1, 1),
        "CEIL" | "CEILING" => (Func::Ceil, 1, 1),
        "COALESCE" => (Func::Coalesce, 1, usize::MAX),
        "IFNULL" => (Func::Coalesce, 2, 2),
        "CONCAT" => (Func::Concat, 1, usize::MAX),
        _ => return Err(SqlError::at(loc, format!("unknown function {name}"))),
    };
    arity(lo, hi)?;
    let mut compiled = Vec::with_capacity(args.len());
    let mut types = Vec::with_capacity(args.len());
    for a in &args {
        let (c, t) = compile(a, scope)?;
        compiled.push(c);
        types.push(t);
    }
    let string_arg = |i: usize| -> Result<(), SqlError> {
        if matches!(types[i], SqlType::String | SqlType::Unknown) {
            Ok(())
        } else {
            Err(SqlError::at(
                loc_of(args[i], loc),
                format!("{name} needs a VARCHAR argument, this is {}", types[i]),
            ))
        }
    };
    let ty = match func {
        Func::Upper | Func::Lower => {
            string_arg(0)?;
            SqlType::String
        }
        Func::Len => {
            string_arg(0)?;
            SqlType::BigInt
        }
        Func::Abs | Func::Floor | Func::Ceil => {
            expect_numeric(types[0], args[0], &name)?;
            types[0]
        }
        Func::Round => {
            expect_numeric(types[0], args[0], &name)?;
            if let Some(t) = types.get(1)
                && !matches!(t, SqlType::BigInt | SqlType::Unknown)
            {
                return Err(SqlError::at(
                    loc_of(args[1], loc),
                    "ROUND's digits must be an integer",
                ));
            }
            if args.len() == 1 {
                SqlType::BigInt
            } else {
                types[0]
            }
        }
        Func::Coalesce => {
            let mut t = SqlType::Unknown;
            for (i, a) in args.iter().enumerate() {
                t = unify(t, types[i], a)?;
            }
            t
        }
        Func::Concat => SqlType::String,
    };
    Ok((Expr::Call(func, compiled), ty))
}
