//! The catalog: every declared stream and running continuous query, by name — what the
//! API's `/queries` endpoints manage and what a processor runs.
//!
//! Definitions persist as their SQL text ([`CatalogDefinitions`]), in creation order, and
//! are recompiled on start: SQL is the stable format, compiled plans are not. Operator
//! state persists separately, in a [`Checkpoint`] with each table query's snapshot under
//! the query's name, next to the source offsets it reflects.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::planner::{
    CreateAs, Plan, StreamLookup, output_topic_property, plan_create_as, plan_create_stream,
};
use super::pull::{PullPlan, pull_table_name};
use super::query::ContinuousQuery;
use super::schema::{ColumnDef, SqlType, StreamDef};
use super::statement::{Relation, Statement, parse_script};
use super::{Location, SqlError};
use crate::checkpoint::Checkpoint;
use crate::error::StreamError;

/// One stored definition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredStatement {
    /// Name of the stream or table it creates (lower-cased).
    pub name: String,
    /// The statement's SQL.
    pub sql: String,
}

/// Everything needed to rebuild a catalog: its statements in creation order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogDefinitions {
    /// `CREATE` statements still in effect, oldest first.
    pub statements: Vec<StoredStatement>,
}

/// What one statement did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Executed {
    /// `CREATE STREAM name (…)`: a source stream was declared.
    CreatedStream(String),
    /// `CREATE TABLE|STREAM name AS SELECT`: a continuous query started.
    CreatedQuery(String),
    /// `DROP`: a stream or query was removed.
    Dropped(String),
    /// `DROP … IF EXISTS` of nothing.
    NothingDropped(String),
}

/// Streams and continuous queries by name. See the `sql` module docs.
#[derive(Debug, Default)]
pub struct Catalog {
    streams: BTreeMap<String, Arc<StreamDef>>,
    queries: BTreeMap<String, ContinuousQuery>,
    statements: Vec<StoredStatement>,
}

/// A catalog serializes as its [`CatalogDefinitions`] (SQL text; operator state goes in
/// checkpoints) and deserializes by recompiling them.
impl Serialize for Catalog {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.definitions().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let defs = CatalogDefinitions::deserialize(deserializer)?;
        Catalog::from_definitions(&defs).map_err(serde::de::Error::custom)
    }
}

impl StreamLookup for Catalog {
    fn lookup_stream(&self, name: &str) -> Result<Arc<StreamDef>, String> {
        let key = name.to_lowercase();
        match self.streams.get(&key) {
            Some(def) => Ok(def.clone()),
            None if self.queries.contains_key(&key) => Err(format!(
                "'{name}' is a table: a continuous query reads a stream"
            )),
            None => Err(format!("unknown stream '{name}'")),
        }
    }
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a catalog by recompiling stored definitions.
    pub fn from_definitions(defs: &CatalogDefinitions) -> Result<Self, SqlError> {
        let mut catalog = Self::new();
        for s in &defs.statements {
            catalog.execute(&s.sql)?;
        }
        Ok(catalog)
    }

    /// The definitions to store.
    pub fn definitions(&self) -> CatalogDefinitions {
        CatalogDefinitions {
            statements: self.statements.clone(),
        }
    }

    /// Executes a script of `CREATE`/`DROP` statements separated by `;`. On an error,
    /// the streams and queries this call created are removed again.
    pub fn execute(&mut self, sql: &str) -> Result<Vec<Executed>, SqlError> {
        let statements = parse_script(sql)?;
        let mut done = Vec::new();
        for parsed in statements {
            match self.execute_one(parsed.statement, parsed.text) {
                Ok(e) => done.push(e),
                Err(err) => {
                    for e in done.iter().rev() {
                        if let Executed::CreatedStream(n) | Executed::CreatedQuery(n) = e {
                            self.remove(n);
                        }
                    }
                    return Err(err);
                }
            }
        }
        Ok(done)
    }

    fn execute_one(&mut self, statement: Statement, text: String) -> Result<Executed, SqlError> {
        match statement {
            Statement::CreateStream {
                name,
                columns,
                properties,
            } => {
                self.check_free(&name.value, name.loc)?;
                let def = plan_create_stream(&name, &columns, &properties)?;
                let key = name.value.to_lowercase();
                self.streams.insert(key.clone(), Arc::new(def));
                self.statements.push(StoredStatement {
                    name: key.clone(),
                    sql: text,
                });
                Ok(Executed::CreatedStream(key))
            }
            Statement::CreateAs {
                relation,
                name,
                properties,
                query,
                select_loc,
                window,
                emit,
            } => {
                self.check_free(&name.value, name.loc)?;
                let key = name.value.to_lowercase();
                let output_topic =
                    output_topic_property(&properties)?.unwrap_or_else(|| key.clone());
                let plan = plan_create_as(
                    &CreateAs {
                        relation,
                        name: &name,
                        properties: &properties,
                        query: &query,
                        select_loc,
                        window: window.as_ref(),
                        emit,
                    },
                    self,
                )?;
                let q = match plan {
                    Plan::Table(plan) => {
                        ContinuousQuery::table(key.clone(), text.clone(), output_topic, plan)
                            .map_err(|e| SqlError::at(select_loc, e.to_string()))?
                    }
                    Plan::Stream(plan) => {
                        // The output is itself a stream other queries can read.
                        let columns = plan
                            .columns
                            .iter()
                            .map(|c| ColumnDef {
                                name: c.name.clone(),
                                ty: match c.ty {
                                    SqlType::Array => SqlType::Json,
                                    t => t,
                                },
                            })
                            .collect();
                        self.streams.insert(
                            key.clone(),
                            Arc::new(StreamDef {
                                name: name.value.clone(),
                                columns,
                                topic: output_topic.clone(),
                                timestamp_column: None,
                            }),
                        );
                        debug_assert_eq!(relation, Relation::Stream);
                        ContinuousQuery::stream(key.clone(), text.clone(), output_topic, plan)
                    }
                };
                self.queries.insert(key.clone(), q);
                self.statements.push(StoredStatement {
                    name: key.clone(),
                    sql: text,
                });
                Ok(Executed::CreatedQuery(key))
            }
            Statement::Drop { name, if_exists } => {
                let key = name.value.to_lowercase();
                if !self.streams.contains_key(&key) && !self.queries.contains_key(&key) {
                    if if_exists {
                        return Ok(Executed::NothingDropped(key));
                    }
                    return Err(SqlError::at(
                        name.loc,
                        format!("no stream or table named '{}'", name.value),
                    ));
                }
                if let Some(reader) = self
                    .queries
                    .values()
                    .find(|q| q.name() != key && q.source().name.eq_ignore_ascii_case(&key))
                {
                    return Err(SqlError::at(
                        name.loc,
                        format!(
                            "'{}' is read by query '{}': drop that first",
                            name.value,
                            reader.name()
                        ),
                    ));
                }
                self.remove(&key);
                Ok(Executed::Dropped(key))
            }
            Statement::Select { select_loc, .. } => Err(SqlError::at(
                select_loc,
                "a SELECT is a pull query: run it with Catalog::pull",
            )),
        }
    }

    fn check_free(&self, name: &str, loc: Location) -> Result<(), SqlError> {
        let key = name.to_lowercase();
        if self.streams.contains_key(&key) || self.queries.contains_key(&key) {
            return Err(SqlError::at(
                loc,
                format!("a stream or table named '{name}' already exists"),
            ));
        }
        Ok(())
    }

    fn remove(&mut self, key: &str) {
        self.streams.remove(key);
        self.queries.remove(key);
        self.statements.retain(|s| s.name != key);
    }

    /// Takes a compiled query out of the catalog, to run it on its own.
    pub fn take_query(&mut self, name: &str) -> Option<ContinuousQuery> {
        self.queries.remove(&name.to_lowercase())
    }

    /// A declared stream (source streams and `CREATE STREAM … AS` outputs).
    pub fn stream(&self, name: &str) -> Option<&StreamDef> {
        self.streams.get(&name.to_lowercase()).map(|d| d.as_ref())
    }

    /// Every stream, by lower-cased name.
    pub fn streams(&self) -> impl Iterator<Item = &StreamDef> {
        self.streams.values().map(|d| d.as_ref())
    }

    /// A running query by name.
    pub fn query(&self, name: &str) -> Option<&ContinuousQuery> {
        self.queries.get(&name.to_lowercase())
    }

    /// A running query by name, to feed it.
    pub fn query_mut(&mut self, name: &str) -> Option<&mut ContinuousQuery> {
        self.queries.get_mut(&name.to_lowercase())
    }

    /// Every running query, by name.
    pub fn queries(&self) -> impl Iterator<Item = &ContinuousQuery> {
        self.queries.values()
    }

    /// Every running query, to feed them.
    pub fn queries_mut(&mut self) -> impl Iterator<Item = &mut ContinuousQuery> {
        self.queries.values_mut()
    }

    /// The topics the running queries read.
    pub fn source_topics(&self) -> BTreeSet<String> {
        self.queries
            .values()
            .map(|q| q.source_topic().to_owned())
            .collect()
    }

    /// Plans a pull query (`SELECT … FROM table WHERE …`).
    pub fn plan_pull(&self, sql: &str) -> Result<PullPlan, SqlError> {
        let mut statements = parse_script(sql)?;
        if statements.len() != 1 {
            return Err(SqlError::at(
                Location::new(1, 1),
                "a pull query is one SELECT statement",
            ));
        }
        let Some(parsed) = statements.pop() else {
            return Err(SqlError::at(Location::new(1, 1), "no statement"));
        };
        let Statement::Select {
            query,
            select_loc,
            emit,
        } = parsed.statement
        else {
            return Err(SqlError::at(
                Location::new(1, 1),
                "a pull query is a SELECT; use execute for CREATE and DROP",
            ));
        };
        if let Some((_, loc)) = emit {
            return Err(SqlError::at(
                loc,
                "EMIT makes a push query: subscribe to the table's output topic instead",
            ));
        }
        let (table, loc) = pull_table_name(&query, select_loc)?;
        let key = table.to_lowercase();
        let plan = match self.queries.get(&key).and_then(|q| q.table_plan()) {
            Some(plan) => plan,
            None if self.streams.contains_key(&key) => {
                return Err(SqlError::at(
                    loc,
                    format!("'{table}' is a stream: pull queries read tables"),
                ));
            }
            None => {
                return Err(SqlError::at(loc, format!("unknown table '{table}'")));
            }
        };
        PullPlan::new(&query, select_loc, &table, plan)
    }

    /// Runs a pull query against the current state of a table: rows as JSON objects.
    pub fn pull(&self, sql: &str) -> Result<Vec<serde_json::Value>, SqlError> {
        let plan = self.plan_pull(sql)?;
        Ok(self.run_pull(&plan))
    }

    /// Runs a planned pull query (nothing when its table was dropped since).
    pub fn run_pull(&self, plan: &PullPlan) -> Vec<serde_json::Value> {
        match self.queries.get(&plan.table) {
            Some(q) => match (q.table_plan(), q.operator()) {
                (Some(table), Some(op)) => plan.execute(table, op),
                _ => Vec::new(),
            },
            None => Vec::new(),
        }
    }

    /// Runs a planned pull query over the table's rows as the store keeps them (nothing
    /// when its table was dropped since).
    pub fn run_pull_stored(
        &self,
        plan: &PullPlan,
        rows: &[sightline_store::QueryRow],
    ) -> Vec<serde_json::Value> {
        match self.queries.get(&plan.table).and_then(|q| q.table_plan()) {
            Some(table) => plan.execute_stored(table, rows),
            None => Vec::new(),
        }
    }

    /// Adds every table query's operator state to `checkpoint`, under the query's name.
    pub fn checkpoint_into(&self, checkpoint: &mut Checkpoint) {
        for q in self.queries.values() {
            if let Some(s) = q.snapshot() {
                checkpoint.insert(s);
            }
        }
    }

    /// Restores every table query whose state `checkpoint` holds (taking it out); queries
    /// without an entry start empty.
    pub fn restore_from(&mut self, checkpoint: &mut Checkpoint) -> Result<(), StreamError> {
        for q in self.queries.values_mut() {
            if q.is_table()
                && let Some(s) = checkpoint.take(q.name())
            {
                q.restore(s)?;
            }
        }
        Ok(())
    }
}
