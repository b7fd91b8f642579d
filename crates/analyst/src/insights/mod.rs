//! Per-event insights: a language model's reading of single high-severity events, as
//! they arrive, without waiting for an incident to form.
//!
//! The optional `[analyst.insights]` mode ([`InsightsConfig`]). The [`runner`] reads
//! `system-events` under its own consumer group, keeps the events at or above
//! `min_severity`, skips those whose fingerprint was explained within
//! `dedup_window_secs` (a storm of identical errors costs one call) and those beyond
//! `max_per_minute` (a GCRA limit: excess events are skipped and counted, never queued),
//! and asks the provider of `[analyst.llm]` through [`explain`]: the same
//! [`LlmAnalyst`] as incident analyses, so the same token budgets, circuit breaker and
//! concurrency limit, with the event's text shown only as delimited untrusted data
//! ([`prompt`]) and the answer checked against its JSON Schema ([`answer`]). The
//! resulting [`EventInsight`] is stored in `event_insights` and published on
//! `insights.generated`. Like an analysis it is only text: nothing here runs anything.

pub mod answer;
pub mod prompt;
pub mod runner;

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sightline_model::{Event, EventInsight, Severity};

use crate::llm::prompt::Message;
use crate::llm::{Answered, Failed, LlmAnalyst};

/// Longest duplicate window accepted, seconds (30 days).
const MAX_DEDUP_WINDOW_SECS: u64 = 30 * 86_400;

/// `[analyst.insights]`: which events get an insight and how many.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsightsConfig {
    /// Run the insight runner (needs `[analyst.llm]`). Default `false`: every insight is
    /// a paid call.
    pub enabled: bool,
    /// Least severe event explained; less severe ones are ignored. Default `high`.
    pub min_severity: Severity,
    /// Most provider calls per minute (GCRA, bursts up to this many); events beyond are
    /// skipped and counted. Default 30.
    pub max_per_minute: u32,
    /// An event whose fingerprint was explained this recently is skipped (0: never).
    /// Default 900 (15 minutes).
    pub dedup_window_secs: u64,
    /// Most event records read at a time. Default 500.
    pub batch_size: usize,
}

impl Default for InsightsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            min_severity: Severity::High,
            max_per_minute: 30,
            dedup_window_secs: 900,
            batch_size: 500,
        }
    }
}

impl InsightsConfig {
    /// Checks the values; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_per_minute == 0 {
            return Err("insights.max_per_minute: must be at least 1".into());
        }
        if self.batch_size == 0 {
            return Err("insights.batch_size: must be at least 1".into());
        }
        if self.dedup_window_secs > MAX_DEDUP_WINDOW_SECS {
            return Err(format!(
                "insights.dedup_window_secs: must be at most {MAX_DEDUP_WINDOW_SECS} (30 days)"
            ));
        }
        Ok(())
    }

    /// Whether `severity` is severe enough to be explained.
    pub fn wants(&self, severity: Severity) -> bool {
        // `Severity` orders from critical (least) to info (greatest).
        severity <= self.min_severity
    }
}

/// Asks `llm` about `event`; `now_ms` stamps `created_at` and dates the token budgets.
/// The event's budget key is `event:{event_id}`, so `per_incident_tokens` caps one event.
pub async fn explain(llm: &LlmAnalyst, event: &Event, now_ms: i64) -> Result<EventInsight, Failed> {
    let started = Instant::now();
    let messages = vec![
        Message::new("system", prompt::SYSTEM),
        Message::new("user", prompt::user_message(event)),
    ];
    let Answered {
        answer,
        prompt_tokens,
        completion_tokens,
        ..
    } = llm
        .ask(
            &format!("event:{}", event.event_id),
            messages,
            &answer::response_format(),
            answer::parse,
            now_ms,
        )
        .await?;
    Ok(EventInsight {
        event_id: event.event_id.clone(),
        service_name: event.service_name.clone(),
        severity: event.severity,
        fingerprint: event.fingerprint.clone(),
        root_causes: answer.root_causes,
        recommended_actions: answer.recommended_actions,
        related_concerns: answer.related_concerns,
        confidence: answer.confidence,
        summary: answer.summary,
        model: llm.model().to_owned(),
        prompt_tokens,
        completion_tokens,
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        created_at: now_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_threshold_and_validation_name_the_field() {
        let c = InsightsConfig::default();
        assert!(c.wants(Severity::Critical) && c.wants(Severity::High));
        assert!(!c.wants(Severity::Medium) && !c.wants(Severity::Info));
        assert!(c.validate().is_ok());
        let bad = InsightsConfig {
            max_per_minute: 0,
            ..c.clone()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .starts_with("insights.max_per_minute")
        );
        let bad = InsightsConfig {
            dedup_window_secs: u64::MAX,
            ..c
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .starts_with("insights.dedup_window_secs")
        );
    }
}
