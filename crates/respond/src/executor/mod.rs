//! Step executors: what turns a [`RenderedAction`] into an effect.
//!
//! [`render`] (a pure function) fills an action's placeholders; [`Executors::run`] performs
//! the rendered action under the rules of its kind (allow-lists, address checks,
//! timeouts, output truncation). Dry-runs stop after rendering, so what a dry-run shows is
//! exactly what a run performs.

pub mod command;
pub mod email;
pub mod emit;
pub mod http;
mod render;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sightline_log::EventLog;
use sightline_model::playbook::HttpMethod;
use sightline_model::{Clock, RenderedAction};

pub use command::CommandConfig;
pub use email::{SmtpConfig, SmtpTls};
pub use http::HttpConfig;
pub(crate) use render::subject_json;
pub use render::{
    RenderContext, RenderError, chat_payload, render, render_json, render_text, render_url,
};

/// Why a step did not succeed, with whatever output it produced.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StepFailure {
    /// `true` when a rule refused the action before anything ran (allow-list, SSRF
    /// guard); `false` when it ran and failed.
    pub refused: bool,
    /// What went wrong.
    pub message: String,
    /// Output captured before it went wrong.
    pub output: String,
}

impl StepFailure {
    /// A refusal before anything ran.
    pub fn refused(message: impl Into<String>) -> Self {
        Self {
            refused: true,
            message: message.into(),
            output: String::new(),
        }
    }

    /// A failure of something that ran.
    pub fn failed(message: impl Into<String>, output: String) -> Self {
        Self {
            refused: false,
            message: message.into(),
            output,
        }
    }
}

/// Cuts text to at most `max` bytes on a character boundary.
pub(crate) fn truncate_utf8(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[truncated]");
    }
    text
}

/// Configuration of every executor.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutorConfig {
    /// `command` rules.
    pub command: CommandConfig,
    /// `http` (and chat webhook) rules.
    pub http: HttpConfig,
    /// The SMTP relay for email notifications.
    pub smtp: Option<SmtpConfig>,
}

/// Runs rendered actions.
#[derive(Clone, Debug)]
pub struct Executors {
    config: ExecutorConfig,
    log: Option<Arc<dyn EventLog>>,
    clock: Clock,
}

impl Executors {
    /// Executors with their configuration; `log` is where `emit` publishes (without one,
    /// `emit` steps fail).
    pub fn new(config: ExecutorConfig, log: Option<Arc<dyn EventLog>>, clock: Clock) -> Self {
        Self { config, log, clock }
    }

    /// The configuration.
    pub fn config(&self) -> &ExecutorConfig {
        &self.config
    }

    /// Performs a rendered action within `limit`; the output on success.
    /// `correlation_id` tags emitted events (the execution id).
    pub async fn run(
        &self,
        action: &RenderedAction,
        limit: Duration,
        correlation_id: &str,
    ) -> Result<String, StepFailure> {
        metrics::counter!("sightline_respond_actions_total", "kind" => kind(action)).increment(1);
        // Each executor enforces `limit` itself (a command must get to kill its process
        // group); this outer bound is only a safety net and must not pre-empt them.
        let net = limit.saturating_add(Duration::from_secs(2));
        let result = tokio::time::timeout(net, self.perform(action, limit, correlation_id))
            .await
            .unwrap_or_else(|_| {
                Err(StepFailure::failed(
                    format!("timed out after {} ms", limit.as_millis()),
                    String::new(),
                ))
            });
        if result.is_err() {
            metrics::counter!("sightline_respond_actions_failed_total", "kind" => kind(action))
                .increment(1);
        }
        result
    }

    async fn perform(
        &self,
        action: &RenderedAction,
        limit: Duration,
        correlation_id: &str,
    ) -> Result<String, StepFailure> {
        match action {
            RenderedAction::Command { argv } => {
                command::run(&self.config.command, argv, limit).await
            }
            RenderedAction::Http {
                method,
                url,
                headers,
                body,
            } => {
                self.config
                    .http
                    .send(*method, url, headers, body.as_ref(), limit)
                    .await
            }
            RenderedAction::Webhook { url, payload } => {
                self.config
                    .http
                    .send(
                        HttpMethod::Post,
                        url,
                        &Default::default(),
                        Some(payload),
                        limit,
                    )
                    .await
            }
            RenderedAction::Email { to, subject, body } => {
                email::send(self.config.smtp.as_ref(), to, subject, body, limit).await
            }
            RenderedAction::Emit { event } => {
                emit::publish(
                    self.log.as_ref(),
                    event,
                    self.clock.now_ms(),
                    correlation_id,
                )
                .await
            }
            RenderedAction::Noop { fail, sleep_ms } => {
                let sleep = Duration::from_millis(*sleep_ms);
                if sleep > limit {
                    tokio::time::sleep(limit).await;
                    return Err(StepFailure::failed(
                        format!("timed out after {} ms", limit.as_millis()),
                        String::new(),
                    ));
                }
                if !sleep.is_zero() {
                    tokio::time::sleep(sleep).await;
                }
                if *fail {
                    Err(StepFailure::failed("noop told to fail", String::new()))
                } else {
                    Ok(String::new())
                }
            }
        }
    }
}

fn kind(action: &RenderedAction) -> &'static str {
    match action {
        RenderedAction::Http { .. } => "http",
        RenderedAction::Command { .. } => "command",
        RenderedAction::Webhook { .. } => "webhook",
        RenderedAction::Email { .. } => "email",
        RenderedAction::Emit { .. } => "emit",
        RenderedAction::Noop { .. } => "noop",
    }
}
