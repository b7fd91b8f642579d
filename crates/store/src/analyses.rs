//! Persistence for root-cause analyses and the feedback operators give on them, plus the
//! look-ups the analyst needs to learn from the past (similar incidents, confirmed or
//! refuted root causes), and for per-event insights (`event_insights`, one row per
//! event, filtered with [`InsightQuery`]).
//!
//! [`AnalysisStore`] is a supertrait of [`Store`](crate::Store), like
//! [`IncidentStore`](crate::IncidentStore). Schema:
//! `migrations/{sqlite,postgres}/0006_analyses.sql` (`ai_analyses`, `analysis_feedback`).
//!
//! Analyses carry deterministic ids (one per incident version), so
//! [`AnalysisStore::upsert_analysis`] replaces by id and a replayed incident never
//! duplicates its analysis. Feedback rows are appended (every verdict counts).
//!
//! As in [`crate::incidents`], the SQL text is the same for both backends, so one macro
//! implements the trait for each and they cannot drift apart.

use serde::Serialize;
use sightline_model::{
    Analysis, AnalysisStatus, AnalystKind, EventInsight, EvidenceRef, Feedback, FeedbackVerdict,
    Incident, SuggestedAction,
};
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::Result;
use crate::StoreError;
use crate::common::column;
use crate::insights::InsightQuery;

/// Most rows one analysis look-up returns.
pub const MAX_ANALYSIS_ROWS: u32 = 1000;

/// A verdict on an analysis, with the root cause that analysis named: what the analyst
/// learns from ("db was confirmed as the cause of a similar incident").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RootCauseVerdict {
    /// The analysis judged.
    pub analysis_id: String,
    /// Its incident.
    pub incident_id: String,
    /// The service that analysis named as the root cause.
    pub root_cause_service: Option<String>,
    /// The verdict.
    pub verdict: FeedbackVerdict,
    /// When the verdict was given, epoch milliseconds.
    pub created_at: i64,
}

/// Which past incidents count as similar to one being analysed: those touching any of
/// `services` or sharing `fingerprint`, detected before `before`, other than
/// `exclude_id`; newest first, at most `limit` (clamped to 1..=[`MAX_ANALYSIS_ROWS`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimilarIncidents {
    /// Services the incident touches.
    pub services: Vec<String>,
    /// The incident's fingerprint.
    pub fingerprint: Option<String>,
    /// The incident itself (never similar to itself).
    pub exclude_id: String,
    /// Only incidents detected before this time, epoch milliseconds.
    pub before: i64,
    /// At most this many.
    pub limit: u32,
}

/// Persistence for analyses and feedback (see the module docs).
#[async_trait::async_trait]
pub trait AnalysisStore: Send + Sync {
    /// Inserts or replaces an analysis by id. NaN confidence is refused with
    /// [`StoreError::InvalidData`].
    async fn upsert_analysis(&self, analysis: &Analysis) -> Result<()>;

    /// One analysis by id.
    async fn get_analysis(&self, id: &str) -> Result<Option<Analysis>>;

    /// The newest analysis of an incident (by `created_at`, then id).
    async fn latest_analysis(&self, incident_id: &str) -> Result<Option<Analysis>>;

    /// Analyses of an incident, newest first, at most `limit` (clamped to
    /// 1..=[`MAX_ANALYSIS_ROWS`]).
    async fn list_analyses(&self, incident_id: &str, limit: u32) -> Result<Vec<Analysis>>;

    /// Appends a verdict; [`StoreError::NotFound`] when the analysis does not exist.
    async fn add_feedback(&self, feedback: &Feedback) -> Result<()>;

    /// Every verdict given on an analysis of any of these incidents, newest first.
    async fn verdicts_for_incidents(
        &self,
        incident_ids: &[String],
    ) -> Result<Vec<RootCauseVerdict>>;

    /// Verdicts on analyses that named one of `services` as the root cause, newest first,
    /// at most `limit` (clamped to 1..=[`MAX_ANALYSIS_ROWS`]).
    async fn verdicts_for_services(
        &self,
        services: &[String],
        limit: u32,
    ) -> Result<Vec<RootCauseVerdict>>;

    /// Past incidents similar to one being analysed (see [`SimilarIncidents`]).
    async fn similar_incidents(&self, query: &SimilarIncidents) -> Result<Vec<Incident>>;

    /// Inserts or replaces the insight of an event, by event id. NaN confidence is refused
    /// with [`StoreError::InvalidData`].
    async fn upsert_event_insight(&self, insight: &EventInsight) -> Result<()>;

    /// The insight of an event, if it has one.
    async fn get_event_insight(&self, event_id: &str) -> Result<Option<EventInsight>>;

    /// Insights matching `query`, newest first (see [`InsightQuery`]).
    async fn list_event_insights(&self, query: &InsightQuery) -> Result<Vec<EventInsight>>;
}

/// For stores that wrap another: name the inner store and [`AnalysisStore`] is implemented
/// by handing every call to it.
pub trait DelegateAnalyses: Send + Sync {
    /// The store that keeps the analysis tables.
    fn analyses(&self) -> &dyn AnalysisStore;
}

#[async_trait::async_trait]
impl<T: DelegateAnalyses> AnalysisStore for T {
    async fn upsert_analysis(&self, analysis: &Analysis) -> Result<()> {
        self.analyses().upsert_analysis(analysis).await
    }
    async fn get_analysis(&self, id: &str) -> Result<Option<Analysis>> {
        self.analyses().get_analysis(id).await
    }
    async fn latest_analysis(&self, incident_id: &str) -> Result<Option<Analysis>> {
        self.analyses().latest_analysis(incident_id).await
    }
    async fn list_analyses(&self, incident_id: &str, limit: u32) -> Result<Vec<Analysis>> {
        self.analyses().list_analyses(incident_id, limit).await
    }
    async fn add_feedback(&self, feedback: &Feedback) -> Result<()> {
        self.analyses().add_feedback(feedback).await
    }
    async fn verdicts_for_incidents(
        &self,
        incident_ids: &[String],
    ) -> Result<Vec<RootCauseVerdict>> {
        self.analyses().verdicts_for_incidents(incident_ids).await
    }
    async fn verdicts_for_services(
        &self,
        services: &[String],
        limit: u32,
    ) -> Result<Vec<RootCauseVerdict>> {
        self.analyses().verdicts_for_services(services, limit).await
    }
    async fn similar_incidents(&self, query: &SimilarIncidents) -> Result<Vec<Incident>> {
        self.analyses().similar_incidents(query).await
    }
    async fn upsert_event_insight(&self, insight: &EventInsight) -> Result<()> {
        self.analyses().upsert_event_insight(insight).await
    }
    async fn get_event_insight(&self, event_id: &str) -> Result<Option<EventInsight>> {
        self.analyses().get_event_insight(event_id).await
    }
    async fn list_event_insights(&self, query: &InsightQuery) -> Result<Vec<EventInsight>> {
        self.analyses().list_event_insights(query).await
    }
}

pub(crate) const ANALYSIS_COLUMNS: &str = "id, incident_id, root_cause, root_cause_service, \
     confidence, impacted_services, suggested_actions, technical_summary, executive_summary, \
     evidence, flags, analyst, model, prompt_tokens, completion_tokens, latency_ms, status, \
     error, created_at";

/// The upsert of one analysis, by id.
pub(crate) const UPSERT_ANALYSIS: &str = "INSERT INTO ai_analyses (id, incident_id, \
     root_cause, root_cause_service, confidence, impacted_services, suggested_actions, \
     technical_summary, executive_summary, evidence, flags, analyst, model, prompt_tokens, \
     completion_tokens, latency_ms, status, error, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19) \
     ON CONFLICT (id) DO UPDATE SET incident_id = excluded.incident_id, \
     root_cause = excluded.root_cause, root_cause_service = excluded.root_cause_service, \
     confidence = excluded.confidence, impacted_services = excluded.impacted_services, \
     suggested_actions = excluded.suggested_actions, \
     technical_summary = excluded.technical_summary, \
     executive_summary = excluded.executive_summary, evidence = excluded.evidence, \
     flags = excluded.flags, analyst = excluded.analyst, model = excluded.model, \
     prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, \
     latency_ms = excluded.latency_ms, status = excluded.status, error = excluded.error, \
     created_at = excluded.created_at";

/// The verdict rows joined with the root cause of the analysis they judge.
pub(crate) const VERDICT_SELECT: &str = "SELECT f.analysis_id, f.incident_id, f.verdict, \
     f.created_at, a.root_cause_service FROM analysis_feedback f \
     JOIN ai_analyses a ON a.id = f.analysis_id";

/// An analysis's columns that need encoding before they can be bound.
#[derive(Debug)]
pub(crate) struct EncodedAnalysis {
    pub(crate) impacted_services: String,
    pub(crate) suggested_actions: String,
    pub(crate) evidence: String,
    pub(crate) flags: String,
    pub(crate) prompt_tokens: i64,
    pub(crate) completion_tokens: i64,
    pub(crate) latency_ms: i64,
}

/// Encodes an analysis's JSON columns (and checks its numbers).
pub(crate) fn encode_analysis(a: &Analysis) -> Result<EncodedAnalysis> {
    use crate::incidents::{check_number, json};
    let id = a.id.as_str();
    check_number(a.confidence, "analysis confidence", id)?;
    let int = |v: u64, what: &str| crate::rollups::count_to_i64(v, what, id);
    Ok(EncodedAnalysis {
        impacted_services: json(&a.impacted_services, "impacted_services", id)?,
        suggested_actions: json(&a.suggested_actions, "suggested_actions", id)?,
        evidence: json(&a.evidence, "evidence", id)?,
        flags: json(&a.flags, "flags", id)?,
        prompt_tokens: int(a.prompt_tokens, "prompt_tokens")?,
        completion_tokens: int(a.completion_tokens, "completion_tokens")?,
        latency_ms: int(a.latency_ms, "latency_ms")?,
    })
}

/// Decodes an `ai_analyses` row.
pub(crate) fn analysis_from_row<'r, R>(row: &'r R) -> Result<Analysis>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "ai_analyses";
    let id: String = column(row, "id", T)?;
    let corrupt = |name: &str, reason: &dyn std::fmt::Display| {
        StoreError::corrupt(format!("{T}.{name} of '{id}'"), reason)
    };
    let text = |name: &str| -> Result<String> { column(row, name, T) };
    let impacted_services: Vec<String> = serde_json::from_str(&text("impacted_services")?)
        .map_err(|e| corrupt("impacted_services", &e))?;
    let suggested_actions: Vec<SuggestedAction> = serde_json::from_str(&text("suggested_actions")?)
        .map_err(|e| corrupt("suggested_actions", &e))?;
    let evidence: Vec<EvidenceRef> =
        serde_json::from_str(&text("evidence")?).map_err(|e| corrupt("evidence", &e))?;
    let flags: Vec<String> =
        serde_json::from_str(&text("flags")?).map_err(|e| corrupt("flags", &e))?;
    let analyst = AnalystKind::parse("analyst", &text("analyst")?)
        .map_err(|e| corrupt("analyst", &e.to_string()))?;
    let status = AnalysisStatus::parse("status", &text("status")?)
        .map_err(|e| corrupt("status", &e.to_string()))?;
    let count = |name: &str| -> Result<u64> {
        let v: i64 = column(row, name, T)?;
        crate::rollups::count_to_u64(v, &format!("{T}.{name}"), &id)
    };
    Ok(Analysis {
        incident_id: text("incident_id")?,
        root_cause: text("root_cause")?,
        root_cause_service: column(row, "root_cause_service", T)?,
        confidence: column(row, "confidence", T)?,
        impacted_services,
        suggested_actions,
        technical_summary: text("technical_summary")?,
        executive_summary: text("executive_summary")?,
        evidence,
        flags,
        analyst,
        model: text("model")?,
        prompt_tokens: count("prompt_tokens")?,
        completion_tokens: count("completion_tokens")?,
        latency_ms: count("latency_ms")?,
        status,
        error: column(row, "error", T)?,
        created_at: column(row, "created_at", T)?,
        id,
    })
}

/// Decodes a row of [`VERDICT_SELECT`].
pub(crate) fn verdict_from_row<'r, R>(row: &'r R) -> Result<RootCauseVerdict>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    usize: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    const T: &str = "analysis_feedback";
    let analysis_id: String = column(row, "analysis_id", T)?;
    let verdict: String = column(row, "verdict", T)?;
    let verdict = FeedbackVerdict::parse("verdict", &verdict).map_err(|e| {
        StoreError::corrupt(format!("{T}.verdict of '{analysis_id}'"), e.to_string())
    })?;
    Ok(RootCauseVerdict {
        incident_id: column(row, "incident_id", T)?,
        root_cause_service: column(row, "root_cause_service", T)?,
        verdict,
        created_at: column(row, "created_at", T)?,
        analysis_id,
    })
}

/// Implements [`AnalysisStore`] for a backend: `$writer` / `$reader` are expressions giving
/// the pools for writes and reads (the same pool for PostgreSQL), `$db` the sqlx database.
macro_rules! impl_analysis_store {
    ($store:ty, $db:ty, writer = |$w:ident| $writer:expr, reader = |$r:ident| $reader:expr) => {
        #[async_trait::async_trait]
        impl $crate::analyses::AnalysisStore for $store {
            async fn upsert_analysis(&self, a: &sightline_model::Analysis) -> $crate::Result<()> {
                use $crate::rollups::clean;
                let e = $crate::analyses::encode_analysis(a)?;
                let $w = self;
                sqlx::query::<$db>($crate::analyses::UPSERT_ANALYSIS)
                    .bind(clean(&a.id).into_owned())
                    .bind(clean(&a.incident_id).into_owned())
                    .bind(clean(&a.root_cause).into_owned())
                    .bind(
                        a.root_cause_service
                            .as_deref()
                            .map(|s| clean(s).into_owned()),
                    )
                    .bind(a.confidence)
                    .bind(clean(&e.impacted_services).into_owned())
                    .bind(clean(&e.suggested_actions).into_owned())
                    .bind(clean(&a.technical_summary).into_owned())
                    .bind(clean(&a.executive_summary).into_owned())
                    .bind(clean(&e.evidence).into_owned())
                    .bind(clean(&e.flags).into_owned())
                    .bind(a.analyst.as_str())
                    .bind(clean(&a.model).into_owned())
                    .bind(e.prompt_tokens)
                    .bind(e.completion_tokens)
                    .bind(e.latency_ms)
                    .bind(a.status.as_str())
                    .bind(a.error.as_deref().map(|s| clean(s).into_owned()))
                    .bind(a.created_at)
                    .execute($writer)
                    .await?;
                Ok(())
            }

            async fn get_analysis(
                &self,
                id: &str,
            ) -> $crate::Result<Option<sightline_model::Analysis>> {
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM ai_analyses WHERE id = $1",
                    $crate::analyses::ANALYSIS_COLUMNS
                ))
                .bind(id)
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::analyses::analysis_from_row)
                .transpose()
            }

            async fn latest_analysis(
                &self,
                incident_id: &str,
            ) -> $crate::Result<Option<sightline_model::Analysis>> {
                Ok(self.list_analyses(incident_id, 1).await?.into_iter().next())
            }

            async fn list_analyses(
                &self,
                incident_id: &str,
                limit: u32,
            ) -> $crate::Result<Vec<sightline_model::Analysis>> {
                let limit = limit.clamp(1, $crate::analyses::MAX_ANALYSIS_ROWS);
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM ai_analyses WHERE incident_id = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                    $crate::analyses::ANALYSIS_COLUMNS
                ))
                .bind(incident_id)
                .bind(i64::from(limit))
                .fetch_all($reader)
                .await?
                .iter()
                .map($crate::analyses::analysis_from_row)
                .collect()
            }

            async fn add_feedback(
                &self,
                feedback: &sightline_model::Feedback,
            ) -> $crate::Result<()> {
                use $crate::rollups::clean;
                let $w = self;
                // Inserted only when the analysis exists (and belongs to the incident), in
                // one statement, so a concurrent delete cannot slip in between.
                let inserted = sqlx::query::<$db>(
                    "INSERT INTO analysis_feedback (analysis_id, incident_id, verdict, notes, \
                     author, created_at) \
                     SELECT id, incident_id, $2, $3, $4, $5 FROM ai_analyses \
                     WHERE id = $1 AND incident_id = $6",
                )
                .bind(clean(&feedback.analysis_id).into_owned())
                .bind(feedback.verdict.as_str())
                .bind(clean(&feedback.notes).into_owned())
                .bind(clean(&feedback.author).into_owned())
                .bind(feedback.created_at)
                .bind(clean(&feedback.incident_id).into_owned())
                .execute($writer)
                .await?
                .rows_affected();
                if inserted == 0 {
                    return Err($crate::StoreError::NotFound(format!(
                        "analysis '{}' of incident '{}'",
                        feedback.analysis_id, feedback.incident_id
                    )));
                }
                Ok(())
            }

            async fn verdicts_for_incidents(
                &self,
                incident_ids: &[String],
            ) -> $crate::Result<Vec<$crate::analyses::RootCauseVerdict>> {
                if incident_ids.is_empty() {
                    return Ok(Vec::new());
                }
                let $r = self;
                let mut out = Vec::new();
                for chunk in incident_ids.chunks($crate::incidents::IDS_PER_STATEMENT) {
                    let mut select =
                        sqlx::QueryBuilder::<$db>::new($crate::analyses::VERDICT_SELECT);
                    select.push(" WHERE f.incident_id IN (");
                    let mut list = select.separated(", ");
                    for id in chunk {
                        list.push_bind(id.clone());
                    }
                    select.push(")");
                    for row in select.build().fetch_all($reader).await? {
                        out.push($crate::analyses::verdict_from_row(&row)?);
                    }
                }
                out.sort_by(|a, b| {
                    (b.created_at, &b.analysis_id).cmp(&(a.created_at, &a.analysis_id))
                });
                Ok(out)
            }

            async fn verdicts_for_services(
                &self,
                services: &[String],
                limit: u32,
            ) -> $crate::Result<Vec<$crate::analyses::RootCauseVerdict>> {
                if services.is_empty() {
                    return Ok(Vec::new());
                }
                let limit = limit.clamp(1, $crate::analyses::MAX_ANALYSIS_ROWS);
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new($crate::analyses::VERDICT_SELECT);
                select.push(" WHERE a.root_cause_service IN (");
                let mut list = select.separated(", ");
                for s in services.iter().take($crate::incidents::IDS_PER_STATEMENT) {
                    list.push_bind(s.clone());
                }
                select
                    .push(") ORDER BY f.created_at DESC, f.id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                select
                    .build()
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map($crate::analyses::verdict_from_row)
                    .collect()
            }

            async fn similar_incidents(
                &self,
                query: &$crate::analyses::SimilarIncidents,
            ) -> $crate::Result<Vec<sightline_model::Incident>> {
                if query.services.is_empty() && query.fingerprint.is_none() {
                    return Ok(Vec::new());
                }
                let limit = query.limit.clamp(1, $crate::analyses::MAX_ANALYSIS_ROWS);
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM incidents WHERE id <> ",
                    $crate::incidents::INCIDENT_COLUMNS
                ));
                select
                    .push_bind(query.exclude_id.clone())
                    .push(" AND detected_at < ")
                    .push_bind(query.before)
                    .push(" AND (");
                let mut any = false;
                if !query.services.is_empty() {
                    select.push(
                        "id IN (SELECT incident_id FROM incident_services WHERE service_name IN (",
                    );
                    let mut list = select.separated(", ");
                    for s in query
                        .services
                        .iter()
                        .take($crate::incidents::IDS_PER_STATEMENT)
                    {
                        list.push_bind(s.clone());
                    }
                    select.push("))");
                    any = true;
                }
                if let Some(fingerprint) = &query.fingerprint {
                    if any {
                        select.push(" OR ");
                    }
                    select.push("fingerprint = ").push_bind(fingerprint.clone());
                }
                select
                    .push(") ORDER BY detected_at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                select
                    .build()
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map($crate::incidents::incident_from_row)
                    .collect()
            }

            async fn upsert_event_insight(
                &self,
                i: &sightline_model::EventInsight,
            ) -> $crate::Result<()> {
                use $crate::rollups::clean;
                let e = $crate::insights::encode_insight(i)?;
                let $w = self;
                sqlx::query::<$db>($crate::insights::UPSERT_INSIGHT)
                    .bind(clean(&i.event_id).into_owned())
                    .bind(clean(&i.service_name).into_owned())
                    .bind(i.severity.as_str())
                    .bind(clean(&i.fingerprint).into_owned())
                    .bind(clean(&e.root_causes).into_owned())
                    .bind(clean(&e.recommended_actions).into_owned())
                    .bind(clean(&e.related_concerns).into_owned())
                    .bind(i.confidence)
                    .bind(clean(&i.summary).into_owned())
                    .bind(clean(&i.model).into_owned())
                    .bind(e.prompt_tokens)
                    .bind(e.completion_tokens)
                    .bind(e.latency_ms)
                    .bind(i.created_at)
                    .execute($writer)
                    .await?;
                Ok(())
            }

            async fn get_event_insight(
                &self,
                event_id: &str,
            ) -> $crate::Result<Option<sightline_model::EventInsight>> {
                let $r = self;
                sqlx::query::<$db>(&format!(
                    "SELECT {} FROM event_insights WHERE event_id = $1",
                    $crate::insights::INSIGHT_COLUMNS
                ))
                .bind(event_id)
                .fetch_optional($reader)
                .await?
                .as_ref()
                .map($crate::insights::insight_from_row)
                .transpose()
            }

            async fn list_event_insights(
                &self,
                query: &$crate::insights::InsightQuery,
            ) -> $crate::Result<Vec<sightline_model::EventInsight>> {
                let limit = query.limit.clamp(1, $crate::analyses::MAX_ANALYSIS_ROWS);
                let $r = self;
                let mut select = sqlx::QueryBuilder::<$db>::new(format!(
                    "SELECT {} FROM event_insights WHERE 1 = 1",
                    $crate::insights::INSIGHT_COLUMNS
                ));
                if let Some(service) = &query.service {
                    select
                        .push(" AND service_name = ")
                        .push_bind(service.clone());
                }
                if let Some(fingerprint) = &query.fingerprint {
                    select
                        .push(" AND fingerprint = ")
                        .push_bind(fingerprint.clone());
                }
                if let Some(since) = query.since {
                    select.push(" AND created_at >= ").push_bind(since);
                }
                if let Some(until) = query.until {
                    select.push(" AND created_at < ").push_bind(until);
                }
                select
                    .push(" ORDER BY created_at DESC, event_id DESC LIMIT ")
                    .push_bind(i64::from(limit));
                select
                    .build()
                    .fetch_all($reader)
                    .await?
                    .iter()
                    .map($crate::insights::insight_from_row)
                    .collect()
            }
        }
    };
}

pub(crate) use impl_analysis_store;
