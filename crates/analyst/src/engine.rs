//! The analyst as the runner and the API use it: gather the context of an incident, ask
//! the LLM when one is configured, fall back to the built-in analyst, time it.
//!
//! [`Analyst::analyze`] is the one code path every caller goes through (the log runner,
//! `POST /api/v1/analysis/generate`, the evaluation), so what is measured is what runs.

use std::sync::Arc;
use std::time::Instant;

use sightline_model::{Analysis, Incident};

use crate::builtin::{BuiltinAnalyst, Candidate};
use crate::context::{AnalysisContext, ContextSource};
use crate::llm::{LlmAnalyst, telemetry};
use crate::{AnalystConfig, AnalystError};

/// Analyses incidents with context from a [`ContextSource`].
#[derive(Debug, Clone)]
pub struct Analyst {
    context: Arc<dyn ContextSource>,
    builtin: BuiltinAnalyst,
    llm: Option<Arc<LlmAnalyst>>,
}

impl Analyst {
    /// An analyst reading context from `context`, using the built-in analyst only.
    pub fn new(context: Arc<dyn ContextSource>) -> Self {
        Self {
            context,
            builtin: BuiltinAnalyst,
            llm: None,
        }
    }

    /// The analyst `config` describes: with its LLM when `[analyst.llm]` is set.
    pub fn from_config(
        context: Arc<dyn ContextSource>,
        config: &AnalystConfig,
    ) -> Result<Self, AnalystError> {
        let mut analyst = Self::new(context);
        if let Some(llm) = &config.llm {
            analyst = analyst.with_llm(Arc::new(LlmAnalyst::new(llm.clone())?));
        }
        Ok(analyst)
    }

    /// Uses `llm` first, the built-in analyst as the fallback.
    pub fn with_llm(mut self, llm: Arc<LlmAnalyst>) -> Self {
        self.llm = Some(llm);
        self
    }

    /// The LLM analyst, if any.
    pub fn llm(&self) -> Option<&LlmAnalyst> {
        self.llm.as_deref()
    }

    /// The LLM analyst as a shared handle, for other callers of the same provider (the
    /// insight runner), so all share its budgets, breaker and concurrency limit.
    pub fn shared_llm(&self) -> Option<Arc<LlmAnalyst>> {
        self.llm.clone()
    }

    /// Gathers the context of `incident`.
    pub async fn context(&self, incident: &Incident) -> Result<AnalysisContext, AnalystError> {
        self.context.gather(incident).await
    }

    /// Analyses `incident` (the version given); `now_ms` stamps `created_at`. Only a
    /// failure to gather context is an error (the store is unavailable: retry later);
    /// an LLM failure falls back to the built-in analyst, recorded in `error` and `flags`.
    pub async fn analyze(
        &self,
        incident: &Incident,
        now_ms: i64,
    ) -> Result<Analysis, AnalystError> {
        let started = Instant::now();
        let ctx = self.context(incident).await?;
        let ranking = self.builtin.rank(&ctx);
        let mut analysis = match &self.llm {
            None => self.builtin.analyze_ranked(&ctx, &ranking, now_ms),
            Some(llm) => match llm.analyze(&ctx, &ranking, now_ms).await {
                Ok(a) => a,
                Err(failed) => {
                    let reason = failed.failure.reason();
                    metrics::counter!(telemetry::FALLBACKS, "reason" => reason).increment(1);
                    tracing::warn!(
                        incident = %incident.id,
                        reason,
                        error = %failed.failure,
                        "analyst: the LLM produced no analysis; using the built-in analyst"
                    );
                    let mut a = self.builtin.analyze_ranked(&ctx, &ranking, now_ms);
                    a.error = Some(format!(
                        "llm failed ({reason}): {}; the built-in analyst answered",
                        failed.failure
                    ));
                    a.flags.push(format!("llm_fallback: {reason}"));
                    a.prompt_tokens = failed.prompt_tokens;
                    a.completion_tokens = failed.completion_tokens;
                    a
                }
            },
        };
        analysis.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(analysis)
    }

    /// The built-in analyst's ranking for `incident` (for evaluation and explanations).
    pub async fn rank(&self, incident: &Incident) -> Result<Vec<Candidate>, AnalystError> {
        let ctx = self.context(incident).await?;
        Ok(self.builtin.rank(&ctx))
    }
}
