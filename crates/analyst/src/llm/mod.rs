//! The LLM analyst: an OpenAI-compatible model explains the incident from the same
//! context, within limits.
//!
//! One analysis goes through, in order: the token budgets ([`budget`]; exhausted → the
//! built-in analyst, counted), the circuit breaker ([`breaker`]; open → built-in), the
//! concurrency limit (a semaphore), the chat call ([`client`]: timeout, jittered
//! retries, `Retry-After`), lenient parsing and strict validation of the answer
//! ([`schema`]; a violation is sent back once with the error, then the call counts as
//! failed), and the evidence check ([`crate::evidence`]). The prompt ([`prompt`]) shows
//! event text only as delimited, labelled, untrusted data; the answer is only stored
//! text — nothing here can run anything. Per-event insights ([`crate::insights`]) ask the
//! same provider through the same path ([`LlmAnalyst`]'s budgets, breaker and limit).

pub mod breaker;
pub mod budget;
pub mod client;
pub mod prompt;
pub mod schema;

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sightline_model::{Analysis, AnalysisStatus, AnalystKind, Secret};

use crate::builtin::Candidate;
use crate::context::AnalysisContext;
use crate::evidence;

use self::breaker::CircuitBreaker;
use self::budget::{BudgetExhausted, TokenBudget};
use self::client::{ClientError, LlmClient};
use self::prompt::Message;

/// Metric names of the LLM analyst.
pub mod telemetry {
    /// Chat calls made (each retry is one more), by `outcome`.
    pub const CALLS: &str = "sightline_analyst_llm_calls_total";
    /// Retries of a chat call.
    pub const RETRIES: &str = "sightline_analyst_llm_retries_total";
    /// Fallbacks to the built-in analyst, by `reason` (`budget`, `breaker`, `error`,
    /// `invalid`).
    pub const FALLBACKS: &str = "sightline_analyst_llm_fallbacks_total";
    /// Tokens used, by `kind` (`prompt`, `completion`).
    pub const TOKENS: &str = "sightline_analyst_llm_tokens_total";
}

/// `[analyst.llm]`: the provider and the limits on its use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// The API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`
    /// (`/chat/completions` is appended).
    pub base_url: String,
    /// The model name.
    pub model: String,
    /// The API key (prefer `api_key_env`); never printed.
    pub api_key: Secret,
    /// The environment variable holding the API key, read at start-up.
    pub api_key_env: Option<String>,
    /// Timeout of one attempt, milliseconds. Default 30 s.
    pub timeout_ms: u64,
    /// Retries after the first attempt (timeouts, connection errors, 429, 5xx). Default 2.
    pub max_retries: u32,
    /// First backoff, milliseconds (doubles per retry, jittered). Default 500.
    pub backoff_base_ms: u64,
    /// Longest backoff, milliseconds. Default 10 s.
    pub backoff_max_ms: u64,
    /// Consecutive failed calls that open the circuit breaker. Default 5.
    pub breaker_failures: u32,
    /// How long the breaker stays open before a probe, milliseconds. Default 60 s.
    pub breaker_cooldown_ms: u64,
    /// Most calls in flight at once. Default 4.
    pub max_concurrency: usize,
    /// `max_tokens` of the answer. Default 1200.
    pub max_completion_tokens: u64,
    /// Sampling temperature. Default 0.
    pub temperature: f64,
    /// Tokens one incident may use (0: unlimited). Default 20,000.
    pub per_incident_tokens: u64,
    /// Tokens per UTC day (0: unlimited). Default 2,000,000.
    pub per_day_tokens: u64,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: "http://127.0.0.1:11434/v1".into(),
            model: String::new(),
            api_key: Secret::default(),
            api_key_env: None,
            timeout_ms: 30_000,
            max_retries: 2,
            backoff_base_ms: 500,
            backoff_max_ms: 10_000,
            breaker_failures: 5,
            breaker_cooldown_ms: 60_000,
            max_concurrency: 4,
            max_completion_tokens: 1200,
            temperature: 0.0,
            per_incident_tokens: 20_000,
            per_day_tokens: 2_000_000,
        }
    }
}

impl LlmConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(format!(
                "llm.base_url: '{}' must start with http:// or https://",
                self.base_url
            ));
        }
        if self.model.trim().is_empty() {
            return Err("llm.model: must not be empty".into());
        }
        if self.timeout_ms == 0 {
            return Err("llm.timeout_ms: must be positive".into());
        }
        if self.max_concurrency == 0 {
            return Err("llm.max_concurrency: must be at least 1".into());
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return Err("llm.temperature: must be within 0..=2".into());
        }
        Ok(())
    }

    /// The API key: `api_key` if set, else the variable named by `api_key_env`.
    pub fn resolve_key(&self) -> Option<Secret> {
        if !self.api_key.is_empty() {
            return Some(self.api_key.clone());
        }
        let name = self.api_key_env.as_deref()?;
        std::env::var(name)
            .ok()
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    }
}

/// Why the LLM produced no analysis (the caller falls back to the built-in analyst).
#[derive(Debug, thiserror::Error)]
pub enum LlmFailure {
    /// A token budget would be exceeded.
    #[error("{0}")]
    Budget(#[from] BudgetExhausted),
    /// The circuit breaker is open.
    #[error("the circuit breaker is open after repeated provider failures")]
    BreakerOpen,
    /// The call failed after its retries.
    #[error("{0}")]
    Client(#[from] ClientError),
    /// The answer failed the schema twice.
    #[error("the answer does not match the schema: {0}")]
    Invalid(schema::SchemaError),
}

impl LlmFailure {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            LlmFailure::Budget(_) => "budget",
            LlmFailure::BreakerOpen => "breaker",
            LlmFailure::Client(_) => "error",
            LlmFailure::Invalid(_) => "invalid",
        }
    }
}

/// What a failed attempt still cost.
#[derive(Debug)]
pub struct Failed {
    /// Why.
    pub failure: LlmFailure,
    /// Prompt tokens spent anyway.
    pub prompt_tokens: u64,
    /// Completion tokens spent anyway.
    pub completion_tokens: u64,
}

/// A validated answer and what it cost (see [`LlmAnalyst::ask`]).
#[derive(Debug)]
pub(crate) struct Answered<T> {
    /// The answer, as `parse` read it.
    pub(crate) answer: T,
    /// Prompt tokens of every round.
    pub(crate) prompt_tokens: u64,
    /// Completion tokens of every round.
    pub(crate) completion_tokens: u64,
    /// Whether the first answer failed the schema and was sent back.
    pub(crate) retried: bool,
}

/// See the module docs.
#[derive(Debug)]
pub struct LlmAnalyst {
    client: LlmClient,
    config: LlmConfig,
    breaker: CircuitBreaker,
    budget: TokenBudget,
    permits: Arc<tokio::sync::Semaphore>,
    /// Time spent waiting for the provider's answers, microseconds, over all calls.
    waited_us: std::sync::atomic::AtomicU64,
}

impl LlmAnalyst {
    /// An analyst for `config` (validated; the key resolved from config or env).
    pub fn new(config: LlmConfig) -> Result<Self, crate::AnalystError> {
        config.validate().map_err(crate::AnalystError::Config)?;
        let client = LlmClient::new(config.clone(), config.resolve_key())
            .map_err(|e| crate::AnalystError::Config(format!("llm: {e}")))?;
        Ok(Self {
            breaker: CircuitBreaker::new(
                config.breaker_failures,
                std::time::Duration::from_millis(config.breaker_cooldown_ms),
            ),
            budget: TokenBudget::new(config.per_incident_tokens, config.per_day_tokens),
            permits: Arc::new(tokio::sync::Semaphore::new(config.max_concurrency)),
            waited_us: std::sync::atomic::AtomicU64::new(0),
            client,
            config,
        })
    }

    /// The circuit breaker (for tests and health reports).
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// The token budgets.
    pub fn budget(&self) -> &TokenBudget {
        &self.budget
    }

    /// How long this analyst has waited for the provider's answers in all (retries and
    /// back-off included): the difference across one analysis, taken from its latency,
    /// is sightline's own share of it.
    pub fn provider_time(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.waited_us.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn call_failed(&self) {
        self.breaker.failure();
        metrics::counter!(telemetry::CALLS, "outcome" => "failed").increment(1);
    }

    /// The model asked.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// Asks for one structured answer: `messages` with `response_format`, the reply read
    /// by `parse`. Goes through the token budgets (`budget_key` names whose per-item budget
    /// is charged), the breaker and the concurrency limit; an answer `parse` refuses is sent
    /// back once with the error. Every caller (incident analyses, event insights) comes
    /// through here, so they share the provider's limits.
    pub(crate) async fn ask<T>(
        &self,
        budget_key: &str,
        mut messages: Vec<Message>,
        response_format: &serde_json::Value,
        parse: impl Fn(&str) -> Result<T, schema::SchemaError>,
        now_ms: i64,
    ) -> Result<Answered<T>, Failed> {
        let estimate = |messages: &[Message]| {
            // About four characters per token; the worst case includes a full answer.
            messages.iter().map(|m| m.content.len() as u64).sum::<u64>() / 4
                + self.config.max_completion_tokens
        };
        let fail = |failure, p, c| Failed {
            failure,
            prompt_tokens: p,
            completion_tokens: c,
        };
        let (mut prompt_tokens, mut completion_tokens) = (0, 0);
        let mut last_error = None;
        for round in 0..2 {
            if let Err(e) = self.budget.check(budget_key, estimate(&messages), now_ms) {
                return Err(fail(e.into(), prompt_tokens, completion_tokens));
            }
            if !self.breaker.allow() {
                return Err(fail(
                    LlmFailure::BreakerOpen,
                    prompt_tokens,
                    completion_tokens,
                ));
            }
            let reply = {
                let Ok(_permit) = self.permits.acquire().await else {
                    return Err(fail(
                        LlmFailure::BreakerOpen,
                        prompt_tokens,
                        completion_tokens,
                    ));
                };
                let asked = Instant::now();
                let reply = self.client.chat(&messages, response_format).await;
                let waited = u64::try_from(asked.elapsed().as_micros()).unwrap_or(u64::MAX);
                self.waited_us
                    .fetch_add(waited, std::sync::atomic::Ordering::Relaxed);
                reply
            };
            let reply = match reply {
                Ok(r) => r,
                Err(e) => {
                    self.call_failed();
                    return Err(fail(e.into(), prompt_tokens, completion_tokens));
                }
            };
            self.breaker.success();
            metrics::counter!(telemetry::CALLS, "outcome" => "ok").increment(1);
            metrics::counter!(telemetry::TOKENS, "kind" => "prompt").increment(reply.prompt_tokens);
            metrics::counter!(telemetry::TOKENS, "kind" => "completion")
                .increment(reply.completion_tokens);
            prompt_tokens += reply.prompt_tokens;
            completion_tokens += reply.completion_tokens;
            self.budget.record(
                budget_key,
                reply.prompt_tokens + reply.completion_tokens,
                now_ms,
            );
            match parse(&reply.content) {
                Ok(answer) => {
                    return Ok(Answered {
                        answer,
                        prompt_tokens,
                        completion_tokens,
                        retried: round > 0,
                    });
                }
                Err(e) => {
                    messages.push(Message::new("assistant", reply.content));
                    messages.push(Message::new(
                        "user",
                        format!(
                            "Your answer does not match the schema: {e}. Answer again with \
                             only the corrected JSON object."
                        ),
                    ));
                    last_error = Some(e);
                }
            }
        }
        let e = last_error.unwrap_or_else(|| schema::SchemaError {
            path: "$".into(),
            reason: "no answer".into(),
        });
        Err(fail(
            LlmFailure::Invalid(e),
            prompt_tokens,
            completion_tokens,
        ))
    }

    /// Analyses the incident of `ctx`; `ranking` is the built-in analyst's, shown as a hint.
    pub async fn analyze(
        &self,
        ctx: &AnalysisContext,
        ranking: &[Candidate],
        now_ms: i64,
    ) -> Result<Analysis, Failed> {
        let started = Instant::now();
        let messages = vec![
            Message::new("system", prompt::SYSTEM),
            Message::new("user", prompt::user_message(ctx, ranking)),
        ];
        let Answered {
            answer,
            prompt_tokens,
            completion_tokens,
            retried,
        } = self
            .ask(
                &ctx.incident.id,
                messages,
                &schema::response_format(),
                schema::parse,
                now_ms,
            )
            .await?;
        let checked = evidence::check(
            ctx,
            &answer.evidence,
            answer.root_cause_service.as_deref(),
            &answer.impacted_services,
            answer.confidence,
        );
        let mut flags = checked.flags;
        if retried {
            flags.push("retried: the first answer did not match the schema".into());
        }
        Ok(Analysis {
            id: Analysis::id_for(&ctx.incident.id, ctx.incident.updated_at),
            incident_id: ctx.incident.id.clone(),
            root_cause: answer.root_cause,
            root_cause_service: answer.root_cause_service,
            confidence: checked.confidence,
            impacted_services: answer.impacted_services,
            suggested_actions: answer.suggested_actions,
            technical_summary: answer.technical_summary,
            executive_summary: answer.executive_summary,
            evidence: checked.evidence,
            flags,
            analyst: AnalystKind::Llm,
            model: self.config.model.clone(),
            prompt_tokens,
            completion_tokens,
            latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            status: AnalysisStatus::Completed,
            error: None,
            created_at: now_ms,
        })
    }
}
