//! Persistence for trigger rules (table `trigger_rules`): what the rules API writes and the
//! rules runner reloads.
//!
//! [`RuleStore`] is a supertrait of [`Store`](crate::Store), like
//! [`IncidentStore`](crate::IncidentStore). Schema: `migrations/{sqlite,postgres}/0007_rules.sql`.
//! The condition document, `group_by` and `throttle` are kept as minified JSON text and
//! given back exactly as written. Changes return the version they replaced or removed,
//! read in the same transaction, so the audit trail records a true before/after.
//!
//! As in [`crate::incidents`], the SQL text is the same for both backends (`$n`
//! placeholders work in SQLite too), so one macro implements the trait for each.

use sightline_model::{AppliesTo, Severity, TriggerRule};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::common::column;
use crate::{Result, StoreError};

/// Persistence for trigger rules (see the module docs).
#[async_trait::async_trait]
pub trait RuleStore: Send + Sync {
    /// Stores a new rule; [`StoreError::Conflict`] when its id is taken.
    async fn create_rule(&self, rule: &TriggerRule) -> Result<()>;

    /// One rule by id.
    async fn get_rule(&self, id: &str) -> Result<Option<TriggerRule>>;

    /// Every rule (only the active ones with `active_only`), oldest first (by
    /// `created_at`, then id).
    async fn list_rules(&self, active_only: bool) -> Result<Vec<TriggerRule>>;

    /// Replaces the rule with `rule.id` (all fields but `id`, `created_by` and
    /// `created_at`) in one transaction and returns the version it replaced;
    /// [`StoreError::NotFound`] when there is none.
    async fn update_rule(&self, rule: &TriggerRule) -> Result<TriggerRule>;

    /// Deletes a rule and returns it; [`StoreError::NotFound`] when there is none.
    async fn delete_rule(&self, id: &str) -> Result<TriggerRule>;
}

/// For stores that wrap another (fault injection, instrumentation): name the inner store and
/// [`RuleStore`] is implemented by handing every call to it.
pub trait DelegateRules: Send + Sync {
    /// The store that keeps the rule tables.
    fn rules(&self) -> &dyn RuleStore;
}

#[async_trait::async_trait]
impl<T: DelegateRules> RuleStore for T {
    async fn create_rule(&self, rule: &TriggerRule) -> Result<()> {
        self.rules().create_rule(rule).await
    }
    async fn get_rule(&self, id: &str) -> Result<Option<TriggerRule>> {
        self.rules().get_rule(id).await
    }
    async fn list_rules(&self, active_only: bool) -> Result<Vec<TriggerRule>> {
        self.rules().list_rules(active_only).await
    }
    async fn update_rule(&self, rule: &TriggerRule) -> Result<TriggerRule> {
        self.rules().update_rule(rule).await
    }
    async fn delete_rule(&self, id: &str) -> Result<TriggerRule> {
        self.rules().delete_rule(id).await
    }
}

pub(crate) const RULE_COLUMNS: &str = "id, name, description, applies_to, conditions, \
     severity_threshold, time_window_minutes, threshold_count, group_by, \
     max_triggers_per_hour, throttle, response_template_id, active, created_by, created_at, \
     updated_at";

pub(crate) const INSERT_RULE: &str = "INSERT INTO trigger_rules (id, name, description, \
     applies_to, conditions, severity_threshold, time_window_minutes, threshold_count, \
     group_by, max_triggers_per_hour, throttle, response_template_id, active, created_by, \
     created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)";

pub(crate) const UPDATE_RULE: &str = "UPDATE trigger_rules SET name = $2, description = $3, \
     applies_to = $4, conditions = $5, severity_threshold = $6, time_window_minutes = $7, \
     threshold_count = $8, group_by = $9, max_triggers_per_hour = $10, throttle = $11, \
     response_template_id = $12, active = $13, updated_at = $16 \
     WHERE id = $1 AND $14 = $14 AND $15 = $15";
// `created_by` ($14) and `created_at` ($15) never change; they are compared with themselves
// only so that one binder (`bind_rule`) serves both statements.

/// A rule's columns, encoded for binding in [`RULE_COLUMNS`] order.
#[derive(Debug)]
pub(crate) struct EncodedRule {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) applies_to: &'static str,
    pub(crate) conditions: String,
    pub(crate) severity_threshold: Option<&'static str>,
    pub(crate) time_window_minutes: Option<i64>,
    pub(crate) threshold_count: i64,
    pub(crate) group_by: String,
    pub(crate) max_triggers_per_hour: Option<i64>,
    pub(crate) throttle: Option<String>,
    pub(crate) response_template_id: Option<String>,
    pub(crate) active: bool,
    pub(crate) created_by: String,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

pub(crate) fn encode_rule(rule: &TriggerRule) -> Result<EncodedRule> {
    use crate::incidents::json;
    use crate::rollups::clean;
    Ok(EncodedRule {
        id: clean(&rule.id).into_owned(),
        name: clean(&rule.name).into_owned(),
        description: clean(&rule.description).into_owned(),
        applies_to: rule.applies_to.as_str(),
        conditions: json(&rule.conditions, "rule conditions", &rule.id)?,
        severity_threshold: rule.severity_threshold.map(Severity::as_str),
        time_window_minutes: rule.time_window_minutes.map(i64::from),
        threshold_count: i64::from(rule.threshold_count),
        group_by: json(&rule.group_by, "rule group_by", &rule.id)?,
        max_triggers_per_hour: rule.max_triggers_per_hour.map(i64::from),
        throttle: rule
            .throttle
            .map(|t| json(&t, "rule throttle", &rule.id))
            .transpose()?,
        response_template_id: rule
            .response_template_id
            .as_deref()
            .map(|s| clean(s).into_owned()),
        active: rule.active,
        created_by: clean(&rule.created_by).into_owned(),
        created_at: rule.created_at,
        updated_at: rule.updated_at,
    })
}

fn small(value: i64, what: &str, id: &str) -> Result<u32> {
    u32::try_from(value)
        .map_err(|e| StoreError::corrupt(format!("trigger_rules.{what} of '{id}'"), e))
}

pub(crate) fn rule_from_row<'r, R>(row: &'r R) -> Result<TriggerRule>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "trigger_rules";
    let id: String = column(row, "id", T)?;
    let corrupt = |what: &str, e: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("{T}.{what} of '{id}'"), e.to_string())
    };
    let applies_to: String = column(row, "applies_to", T)?;
    let applies_to =
        AppliesTo::parse("applies_to", &applies_to).map_err(|e| corrupt("applies_to", &e))?;
    let conditions: String = column(row, "conditions", T)?;
    let conditions = serde_json::from_str(&conditions).map_err(|e| corrupt("conditions", &e))?;
    let severity_threshold: Option<String> = column(row, "severity_threshold", T)?;
    let severity_threshold = severity_threshold
        .map(|s| Severity::parse("severity_threshold", &s))
        .transpose()
        .map_err(|e| corrupt("severity_threshold", &e))?;
    let group_by: String = column(row, "group_by", T)?;
    let group_by = serde_json::from_str(&group_by).map_err(|e| corrupt("group_by", &e))?;
    let throttle: Option<String> = column(row, "throttle", T)?;
    let throttle = throttle
        .map(|t| serde_json::from_str(&t))
        .transpose()
        .map_err(|e| corrupt("throttle", &e))?;
    let window: Option<i64> = column(row, "time_window_minutes", T)?;
    let per_hour: Option<i64> = column(row, "max_triggers_per_hour", T)?;
    Ok(TriggerRule {
        name: column(row, "name", T)?,
        description: column(row, "description", T)?,
        applies_to,
        conditions,
        severity_threshold,
        time_window_minutes: window
            .map(|w| small(w, "time_window_minutes", &id))
            .transpose()?,
        threshold_count: small(column(row, "threshold_count", T)?, "threshold_count", &id)?,
        group_by,
        max_triggers_per_hour: per_hour
            .map(|n| small(n, "max_triggers_per_hour", &id))
            .transpose()?,
        throttle,
        response_template_id: column(row, "response_template_id", T)?,
        active: column(row, "active", T)?,
        created_by: column(row, "created_by", T)?,
        created_at: column(row, "created_at", T)?,
        updated_at: column(row, "updated_at", T)?,
        id,
    })
}

/// Implements [`RuleStore`] for a backend: `$writer` / `$reader` are expressions giving
/// the pools for writes and reads (the same pool for PostgreSQL), `$db` the sqlx database.
macro_rules! impl_rule_store {
    ($store:ty, $db:ty, writer = |$w:ident| $writer:expr, reader = |$r:ident| $reader:expr) => {
        /// Binds an encoded rule to `$1`…`$16` in [`RULE_COLUMNS`] order.
        fn bind_rule<'q>(
            q: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
            e: &'q $crate::rules::EncodedRule,
        ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
            q.bind(&e.id)
                .bind(&e.name)
                .bind(&e.description)
                .bind(e.applies_to)
                .bind(&e.conditions)
                .bind(e.severity_threshold)
                .bind(e.time_window_minutes)
                .bind(e.threshold_count)
                .bind(&e.group_by)
                .bind(e.max_triggers_per_hour)
                .bind(&e.throttle)
                .bind(&e.response_template_id)
                .bind(e.active)
                .bind(&e.created_by)
                .bind(e.created_at)
                .bind(e.updated_at)
        }

        #[async_trait::async_trait]
        impl $crate::rules::RuleStore for $store {
            async fn create_rule(&self, rule: &sightline_model::TriggerRule) -> $crate::Result<()> {
                let e = $crate::rules::encode_rule(rule)?;
                let $w = self;
                bind_rule(sqlx::query::<$db>($crate::rules::INSERT_RULE), &e)
                    .execute($writer)
                    .await
                    .map_err(|err| {
                        $crate::security::conflict(err, || {
                            format!("trigger rule '{}' already exists", rule.id)
                        })
                    })?;
                Ok(())
            }

            async fn get_rule(
                &self,
                id: &str,
            ) -> $crate::Result<Option<sightline_model::TriggerRule>> {
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM trigger_rules WHERE id = $1",
                    $crate::rules::RULE_COLUMNS
                ))
                .bind(id)
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::rules::rule_from_row)
                .transpose()
            }

            async fn list_rules(
                &self,
                active_only: bool,
            ) -> $crate::Result<Vec<sightline_model::TriggerRule>> {
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM trigger_rules",
                    $crate::rules::RULE_COLUMNS
                ));
                if active_only {
                    select.push(" WHERE active = ").push_bind(true);
                }
                select.push(" ORDER BY created_at, id");
                select
                    .build()
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map($crate::rules::rule_from_row)
                    .collect()
            }

            async fn update_rule(
                &self,
                rule: &sightline_model::TriggerRule,
            ) -> $crate::Result<sightline_model::TriggerRule> {
                let e = $crate::rules::encode_rule(rule)?;
                let $w = self;
                let mut tx = ($writer).begin().await?;
                // Take the row's write lock first (a no-op UPDATE), so the version read
                // next is the one this update replaces, on both backends.
                let locked = sqlx::query::<$db>("UPDATE trigger_rules SET id = id WHERE id = $1")
                    .bind(&e.id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if locked == 0 {
                    return Err($crate::StoreError::NotFound(format!(
                        "trigger rule '{}'",
                        rule.id
                    )));
                }
                let before = sqlx::query::<$db>(&format!(
                    "SELECT {} FROM trigger_rules WHERE id = $1",
                    $crate::rules::RULE_COLUMNS
                ))
                .bind(&e.id)
                .fetch_one(&mut *tx)
                .await?;
                let before = $crate::rules::rule_from_row(&before)?;
                bind_rule(sqlx::query::<$db>($crate::rules::UPDATE_RULE), &e)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(before)
            }

            async fn delete_rule(&self, id: &str) -> $crate::Result<sightline_model::TriggerRule> {
                let $w = self;
                let row = sqlx::query::<$db>(&format!(
                    "DELETE FROM trigger_rules WHERE id = $1 RETURNING {}",
                    $crate::rules::RULE_COLUMNS
                ))
                .bind(id)
                .fetch_optional($writer)
                .await?;
                match row {
                    Some(row) => $crate::rules::rule_from_row(&row),
                    None => Err($crate::StoreError::NotFound(format!("trigger rule '{id}'"))),
                }
            }
        }
    };
}

pub(crate) use impl_rule_store;
