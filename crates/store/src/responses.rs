//! Persistence for response: playbooks (response templates), their executions, the
//! approvals that gate steps, and the autonomous service's decision log.
//!
//! [`ResponseStore`] is a supertrait of [`Store`](crate::Store), like
//! [`IncidentStore`](crate::IncidentStore). Schema:
//! `migrations/{sqlite,postgres}/0008_responses.sql`. Each row keeps its model value as
//! JSON in `document`; the other columns copy what is filtered or constrained on.
//!
//! Two properties the response engine relies on:
//!
//! - [`ResponseStore::insert_execution`] refuses a second execution for the same
//!   `firing_id` (a unique column), so a replayed firing never runs a playbook twice, even
//!   across restarts and nodes;
//! - [`ResponseStore::consume_approval`] marks an approval used with a conditional
//!   `UPDATE … WHERE used_at IS NULL`, so of two concurrent uses of one token exactly one
//!   wins.
//!
//! As in [`crate::incidents`], the SQL text is the same for both backends and one macro
//! implements the trait for each.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sightline_model::{Approval, Decision, Execution, ExecutionStatus, ResponseTemplate};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::common::column;
use crate::{Result, StoreError};

/// Most rows one list query returns.
pub const MAX_RESPONSE_ROWS: u32 = 1000;

/// Filters for [`ResponseStore::query_executions`]; newest first. Empty filters match all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExecutionQuery {
    /// Exact rule id.
    pub rule_id: Option<String>,
    /// Exact template id.
    pub template_id: Option<String>,
    /// Any of these statuses (empty: any).
    pub statuses: Vec<ExecutionStatus>,
    /// At most this many, clamped to 1..=[`MAX_RESPONSE_ROWS`].
    pub limit: u32,
}

/// Filters for [`ResponseStore::query_decisions`]; newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecisionQuery {
    /// Exact event id.
    pub event_id: Option<String>,
    /// Exact incident id.
    pub incident_id: Option<String>,
    /// Made at or after this time (epoch ms).
    pub since: Option<i64>,
    /// At most this many, clamped to 1..=[`MAX_RESPONSE_ROWS`].
    pub limit: u32,
}

/// Persistence for playbooks, executions, approvals and decisions (see the module docs).
#[async_trait::async_trait]
pub trait ResponseStore: Send + Sync {
    /// Adds a template; [`StoreError::Conflict`] when its id is taken.
    async fn create_template(&self, template: &ResponseTemplate) -> Result<()>;

    /// One template by id.
    async fn get_template(&self, id: &str) -> Result<Option<ResponseTemplate>>;

    /// Every template, by name then id.
    async fn list_templates(&self) -> Result<Vec<ResponseTemplate>>;

    /// Replaces a template by id and returns the version it replaced;
    /// [`StoreError::NotFound`] when there is none.
    async fn update_template(&self, template: &ResponseTemplate) -> Result<ResponseTemplate>;

    /// Removes a template; what was removed, if anything.
    async fn delete_template(&self, id: &str) -> Result<Option<ResponseTemplate>>;

    /// Adds an execution. `false` (and nothing written) when its id or its `firing_id` is
    /// already stored: that firing has already started a run.
    async fn insert_execution(&self, execution: &Execution) -> Result<bool>;

    /// Writes an execution's current state over the stored one;
    /// [`StoreError::NotFound`] when it was never inserted.
    async fn save_execution(&self, execution: &Execution) -> Result<()>;

    /// One execution by id.
    async fn get_execution(&self, id: &str) -> Result<Option<Execution>>;

    /// Executions matching the filters, newest first.
    async fn query_executions(&self, query: &ExecutionQuery) -> Result<Vec<Execution>>;

    /// Adds an approval request.
    async fn insert_approval(&self, approval: &Approval) -> Result<()>;

    /// The newest unused approval of an execution, if any (expired ones included: the
    /// caller tells "expired" from "no such approval").
    async fn open_approval(&self, execution_id: &str) -> Result<Option<Approval>>;

    /// Marks an approval used by `actor` with `decision` at `now`; `false` when it was
    /// already used (single use: exactly one of concurrent callers gets `true`).
    async fn consume_approval(
        &self,
        id: &str,
        decision: &str,
        actor: &str,
        now: i64,
    ) -> Result<bool>;

    /// Adds a decision to `decision_log`.
    async fn insert_decision(&self, decision: &Decision) -> Result<()>;

    /// One decision by id.
    async fn get_decision(&self, id: &str) -> Result<Option<Decision>>;

    /// Decisions matching the filters, newest first.
    async fn query_decisions(&self, query: &DecisionQuery) -> Result<Vec<Decision>>;

    /// Records feedback on a decision and returns it as stored;
    /// [`StoreError::NotFound`] for an unknown id.
    async fn set_decision_feedback(
        &self,
        id: &str,
        feedback: &serde_json::Value,
    ) -> Result<Decision>;
}

/// For stores that wrap another: name the inner store and [`ResponseStore`] is
/// implemented by handing every call to it.
pub trait DelegateResponses: Send + Sync {
    /// The store that keeps the response tables.
    fn responses(&self) -> &dyn ResponseStore;
}

#[async_trait::async_trait]
impl<T: DelegateResponses> ResponseStore for T {
    async fn create_template(&self, template: &ResponseTemplate) -> Result<()> {
        self.responses().create_template(template).await
    }
    async fn get_template(&self, id: &str) -> Result<Option<ResponseTemplate>> {
        self.responses().get_template(id).await
    }
    async fn list_templates(&self) -> Result<Vec<ResponseTemplate>> {
        self.responses().list_templates().await
    }
    async fn update_template(&self, template: &ResponseTemplate) -> Result<ResponseTemplate> {
        self.responses().update_template(template).await
    }
    async fn delete_template(&self, id: &str) -> Result<Option<ResponseTemplate>> {
        self.responses().delete_template(id).await
    }
    async fn insert_execution(&self, execution: &Execution) -> Result<bool> {
        self.responses().insert_execution(execution).await
    }
    async fn save_execution(&self, execution: &Execution) -> Result<()> {
        self.responses().save_execution(execution).await
    }
    async fn get_execution(&self, id: &str) -> Result<Option<Execution>> {
        self.responses().get_execution(id).await
    }
    async fn query_executions(&self, query: &ExecutionQuery) -> Result<Vec<Execution>> {
        self.responses().query_executions(query).await
    }
    async fn insert_approval(&self, approval: &Approval) -> Result<()> {
        self.responses().insert_approval(approval).await
    }
    async fn open_approval(&self, execution_id: &str) -> Result<Option<Approval>> {
        self.responses().open_approval(execution_id).await
    }
    async fn consume_approval(
        &self,
        id: &str,
        decision: &str,
        actor: &str,
        now: i64,
    ) -> Result<bool> {
        self.responses()
            .consume_approval(id, decision, actor, now)
            .await
    }
    async fn insert_decision(&self, decision: &Decision) -> Result<()> {
        self.responses().insert_decision(decision).await
    }
    async fn get_decision(&self, id: &str) -> Result<Option<Decision>> {
        self.responses().get_decision(id).await
    }
    async fn query_decisions(&self, query: &DecisionQuery) -> Result<Vec<Decision>> {
        self.responses().query_decisions(query).await
    }
    async fn set_decision_feedback(
        &self,
        id: &str,
        feedback: &serde_json::Value,
    ) -> Result<Decision> {
        self.responses().set_decision_feedback(id, feedback).await
    }
}

pub(crate) const APPROVAL_COLUMNS: &str = "id, execution_id, step_index, token_hash, \
     created_at, expires_at, used_at, decision, decided_by";

/// `SELECT id, document FROM <table> WHERE id = $1` on an executor, decoded: the one read
/// every document table (templates, executions, decisions) shares. Evaluates to
/// `Result<Option<T>>`.
macro_rules! document_by_id {
    ($db:ty, $executor:expr, $table:literal, $id:expr) => {
        sqlx::query::<$db>(concat!(
            "SELECT id, document FROM ",
            $table,
            " WHERE id = $1"
        ))
        .bind($id)
        .fetch_optional($executor)
        .await?
        .as_ref()
        .map(|row| $crate::responses::from_document(row, $table))
        .transpose()
    };
}
pub(crate) use document_by_id;

/// A model value as its `document` column.
pub(crate) fn document<T: Serialize>(value: &T, what: &str) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::InvalidData(format!("{what} does not serialize: {e}")))
}

/// Decodes the `document` column of a row of `table`.
pub(crate) fn from_document<'r, R, T>(row: &'r R, table: &str) -> Result<T>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    T: DeserializeOwned,
{
    let text: String = column(row, "document", table)?;
    serde_json::from_str(&text).map_err(|e| {
        let id = row
            .try_get::<String, _>(0)
            .unwrap_or_else(|_| "<unreadable id>".to_owned());
        StoreError::corrupt(format!("{table}.document of '{id}'"), e)
    })
}

/// Decodes an `approvals` row selected with [`APPROVAL_COLUMNS`].
pub(crate) fn approval_from_row<'r, R>(row: &'r R) -> Result<Approval>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "approvals";
    let step: i64 = column(row, "step_index", T)?;
    Ok(Approval {
        id: column(row, "id", T)?,
        execution_id: column(row, "execution_id", T)?,
        step_index: u32::try_from(step)
            .map_err(|e| StoreError::corrupt(format!("{T}.step_index ({step})"), e))?,
        token_hash: column(row, "token_hash", T)?,
        created_at: column(row, "created_at", T)?,
        expires_at: column(row, "expires_at", T)?,
        used_at: column(row, "used_at", T)?,
        decision: column(row, "decision", T)?,
        decided_by: column(row, "decided_by", T)?,
    })
}

/// Implements [`ResponseStore`] for a backend: `$writer` / `$reader` are expressions giving
/// the pools for writes and reads (the same pool for PostgreSQL), `$db` the sqlx database.
macro_rules! impl_response_store {
    ($store:ty, $db:ty, writer = |$w:ident| $writer:expr, reader = |$r:ident| $reader:expr) => {
        #[async_trait::async_trait]
        impl $crate::responses::ResponseStore for $store {
            async fn create_template(
                &self,
                template: &sightline_model::ResponseTemplate,
            ) -> $crate::Result<()> {
                use $crate::rollups::clean;
                let doc = $crate::responses::document(template, "template")?;
                let $w = self;
                sqlx::query::<$db>(
                    "INSERT INTO response_templates (id, name, document, created_at, \
                     updated_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(clean(&template.id).into_owned())
                .bind(clean(&template.name).into_owned())
                .bind(clean(&doc).into_owned())
                .bind(template.created_at)
                .bind(template.updated_at)
                .execute($writer)
                .await
                .map_err(|e| {
                    $crate::security::conflict(e, || {
                        format!("response template '{}' already exists", template.id)
                    })
                })?;
                Ok(())
            }

            async fn get_template(
                &self,
                id: &str,
            ) -> $crate::Result<Option<sightline_model::ResponseTemplate>> {
                let $r = self;
                $crate::responses::document_by_id!($db, $reader, "response_templates", id)
            }

            async fn list_templates(
                &self,
            ) -> $crate::Result<Vec<sightline_model::ResponseTemplate>> {
                let $r = self;
                sqlx::query::<$db>("SELECT id, document FROM response_templates ORDER BY name, id")
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map(|row| $crate::responses::from_document(row, "response_templates"))
                    .collect()
            }

            async fn update_template(
                &self,
                template: &sightline_model::ResponseTemplate,
            ) -> $crate::Result<sightline_model::ResponseTemplate> {
                use $crate::rollups::clean;
                let doc = $crate::responses::document(template, "template")?;
                let $w = self;
                let mut tx = ($writer).begin().await?;
                let before: Option<sightline_model::ResponseTemplate> = $crate::responses::document_by_id!(
                    $db,
                    &mut *tx,
                    "response_templates",
                    &template.id
                )?;
                let Some(before) = before else {
                    return Err($crate::StoreError::NotFound(format!(
                        "response template '{}'",
                        template.id
                    )));
                };
                sqlx::query::<$db>(
                    "UPDATE response_templates SET name = $2, document = $3, \
                     updated_at = $4 WHERE id = $1",
                )
                .bind(&template.id)
                .bind(clean(&template.name).into_owned())
                .bind(clean(&doc).into_owned())
                .bind(template.updated_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(before)
            }

            async fn delete_template(
                &self,
                id: &str,
            ) -> $crate::Result<Option<sightline_model::ResponseTemplate>> {
                let $w = self;
                sqlx::query::<$db>(
                    "DELETE FROM response_templates WHERE id = $1 RETURNING id, document",
                )
                .bind(id)
                .fetch_optional($writer)
                .await?
                .as_ref()
                .map(|row| $crate::responses::from_document(row, "response_templates"))
                .transpose()
            }

            async fn insert_execution(
                &self,
                execution: &sightline_model::Execution,
            ) -> $crate::Result<bool> {
                use $crate::rollups::clean;
                let doc = $crate::responses::document(execution, "execution")?;
                let $w = self;
                let inserted = sqlx::query::<$db>(
                    "INSERT INTO rule_executions (id, rule_id, firing_id, template_id, \
                     status, dry_run, document, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(clean(&execution.id).into_owned())
                .bind(clean(&execution.rule_id).into_owned())
                .bind(
                    execution
                        .firing_id
                        .as_deref()
                        .map(|f| clean(f).into_owned()),
                )
                .bind(clean(&execution.template_id).into_owned())
                .bind(execution.status.as_str())
                .bind(execution.dry_run)
                .bind(clean(&doc).into_owned())
                .bind(execution.created_at)
                .bind(execution.updated_at)
                .execute($writer)
                .await?
                .rows_affected();
                Ok(inserted == 1)
            }

            async fn save_execution(
                &self,
                execution: &sightline_model::Execution,
            ) -> $crate::Result<()> {
                use $crate::rollups::clean;
                let doc = $crate::responses::document(execution, "execution")?;
                let $w = self;
                let updated = sqlx::query::<$db>(
                    "UPDATE rule_executions SET status = $2, document = $3, updated_at = $4 \
                     WHERE id = $1",
                )
                .bind(&execution.id)
                .bind(execution.status.as_str())
                .bind(clean(&doc).into_owned())
                .bind(execution.updated_at)
                .execute($writer)
                .await?
                .rows_affected();
                if updated == 0 {
                    return Err($crate::StoreError::NotFound(format!(
                        "execution '{}'",
                        execution.id
                    )));
                }
                Ok(())
            }

            async fn get_execution(
                &self,
                id: &str,
            ) -> $crate::Result<Option<sightline_model::Execution>> {
                let $r = self;
                $crate::responses::document_by_id!($db, $reader, "rule_executions", id)
            }

            async fn query_executions(
                &self,
                query: &$crate::responses::ExecutionQuery,
            ) -> $crate::Result<Vec<sightline_model::Execution>> {
                let limit = query.limit.clamp(1, $crate::responses::MAX_RESPONSE_ROWS);
                let $r = self;
                let mut select =
                    sqlx::QueryBuilder::<$db>::new("SELECT id, document FROM rule_executions");
                let mut filter = $crate::common::Filter::new();
                for (column, value) in [
                    ("rule_id", &query.rule_id),
                    ("template_id", &query.template_id),
                ] {
                    if let Some(value) = value {
                        filter
                            .and(&mut select)
                            .push(column)
                            .push(" = ")
                            .push_bind(value.clone());
                    }
                }
                if !query.statuses.is_empty() {
                    filter.and(&mut select).push("status IN (");
                    let mut list = select.separated(", ");
                    for status in &query.statuses {
                        list.push_bind(status.as_str());
                    }
                    select.push(")");
                }
                select
                    .push(" ORDER BY created_at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                select
                    .build()
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map(|row| $crate::responses::from_document(row, "rule_executions"))
                    .collect()
            }

            async fn insert_approval(
                &self,
                approval: &sightline_model::Approval,
            ) -> $crate::Result<()> {
                let $w = self;
                sqlx::query::<$db>(&format!(
                    "INSERT INTO approvals ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    $crate::responses::APPROVAL_COLUMNS
                ))
                .bind(&approval.id)
                .bind(&approval.execution_id)
                .bind(i64::from(approval.step_index))
                .bind(&approval.token_hash)
                .bind(approval.created_at)
                .bind(approval.expires_at)
                .bind(approval.used_at)
                .bind(&approval.decision)
                .bind(&approval.decided_by)
                .execute($writer)
                .await
                .map_err(|e| {
                    $crate::security::conflict(e, || {
                        format!("approval '{}' already exists", approval.id)
                    })
                })?;
                Ok(())
            }

            async fn open_approval(
                &self,
                execution_id: &str,
            ) -> $crate::Result<Option<sightline_model::Approval>> {
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM approvals WHERE execution_id = $1 AND used_at IS NULL \
                     ORDER BY created_at DESC, id DESC LIMIT 1",
                    $crate::responses::APPROVAL_COLUMNS
                ))
                .bind(execution_id)
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::responses::approval_from_row)
                .transpose()
            }

            async fn consume_approval(
                &self,
                id: &str,
                decision: &str,
                actor: &str,
                now: i64,
            ) -> $crate::Result<bool> {
                let $w = self;
                let updated = sqlx::query::<$db>(
                    "UPDATE approvals SET used_at = $2, decision = $3, decided_by = $4 \
                     WHERE id = $1 AND used_at IS NULL",
                )
                .bind(id)
                .bind(now)
                .bind(decision)
                .bind($crate::rollups::clean(actor).into_owned())
                .execute($writer)
                .await?
                .rows_affected();
                Ok(updated == 1)
            }

            async fn insert_decision(
                &self,
                decision: &sightline_model::Decision,
            ) -> $crate::Result<()> {
                use $crate::rollups::clean;
                if !decision.confidence.is_finite() {
                    return Err($crate::StoreError::InvalidData(format!(
                        "decision '{}' has a non-finite confidence",
                        decision.id
                    )));
                }
                let doc = $crate::responses::document(decision, "decision")?;
                let $w = self;
                sqlx::query::<$db>(
                    "INSERT INTO decision_log (id, event_id, incident_id, decision, \
                     confidence, document, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(clean(&decision.id).into_owned())
                .bind(decision.event_id.as_deref().map(|e| clean(e).into_owned()))
                .bind(
                    decision
                        .incident_id
                        .as_deref()
                        .map(|e| clean(e).into_owned()),
                )
                .bind(decision.decision.as_str())
                .bind(decision.confidence)
                .bind(clean(&doc).into_owned())
                .bind(decision.created_at)
                .execute($writer)
                .await
                .map_err(|e| {
                    $crate::security::conflict(e, || {
                        format!("decision '{}' already exists", decision.id)
                    })
                })?;
                Ok(())
            }

            async fn get_decision(
                &self,
                id: &str,
            ) -> $crate::Result<Option<sightline_model::Decision>> {
                let $r = self;
                $crate::responses::document_by_id!($db, $reader, "decision_log", id)
            }

            async fn query_decisions(
                &self,
                query: &$crate::responses::DecisionQuery,
            ) -> $crate::Result<Vec<sightline_model::Decision>> {
                let limit = query.limit.clamp(1, $crate::responses::MAX_RESPONSE_ROWS);
                let $r = self;
                let mut select =
                    sqlx::QueryBuilder::<$db>::new("SELECT id, document FROM decision_log");
                let mut filter = $crate::common::Filter::new();
                for (column, value) in [
                    ("event_id", &query.event_id),
                    ("incident_id", &query.incident_id),
                ] {
                    if let Some(value) = value {
                        filter
                            .and(&mut select)
                            .push(column)
                            .push(" = ")
                            .push_bind(value.clone());
                    }
                }
                if let Some(since) = query.since {
                    filter
                        .and(&mut select)
                        .push("created_at >= ")
                        .push_bind(since);
                }
                select
                    .push(" ORDER BY created_at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                select
                    .build()
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map(|row| $crate::responses::from_document(row, "decision_log"))
                    .collect()
            }

            async fn set_decision_feedback(
                &self,
                id: &str,
                feedback: &serde_json::Value,
            ) -> $crate::Result<sightline_model::Decision> {
                use $crate::rollups::clean;
                let $w = self;
                let mut tx = ($writer).begin().await?;
                let decision: Option<sightline_model::Decision> =
                    $crate::responses::document_by_id!($db, &mut *tx, "decision_log", id)?;
                let Some(mut decision) = decision else {
                    return Err($crate::StoreError::NotFound(format!("decision '{id}'")));
                };
                decision.feedback = Some(feedback.clone());
                let doc = $crate::responses::document(&decision, "decision")?;
                sqlx::query::<$db>("UPDATE decision_log SET document = $2 WHERE id = $1")
                    .bind(id)
                    .bind(clean(&doc).into_owned())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(decision)
            }
        }
    };
}

pub(crate) use impl_response_store;
