//! A client for any OpenAI-compatible chat-completions endpoint (OpenAI, Azure OpenAI,
//! vLLM, Ollama, llama.cpp server): one request with structured output, a timeout per
//! attempt, retries with jittered exponential backoff, and `429 Retry-After` honoured.
//!
//! The API key is sent as a bearer token and never logged: it lives in a
//! [`Secret`], and errors carry status codes and provider
//! messages, never the request.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use sightline_model::Secret;

use super::LlmConfig;
use super::prompt::Message;

/// Longest wait a `Retry-After` may impose before the call gives up instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Why a chat call failed (after its retries).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No answer within the timeout.
    #[error("the provider did not answer within {0:?}")]
    Timeout(Duration),
    /// The provider answered with an error status.
    #[error("the provider answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The provider's message (truncated).
        message: String,
    },
    /// The connection failed.
    #[error("cannot reach the provider: {0}")]
    Connect(String),
    /// The response is not a chat completion.
    #[error("the provider's response is not a chat completion: {0}")]
    Decode(String),
}

/// What one chat call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatReply {
    /// The assistant's text.
    pub content: String,
    /// Prompt tokens the provider counted.
    pub prompt_tokens: u64,
    /// Completion tokens the provider counted.
    pub completion_tokens: u64,
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct Usage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct LlmClient {
    http: reqwest::Client,
    url: String,
    api_key: Option<Secret>,
    config: LlmConfig,
}

/// How one attempt ended.
enum Attempt {
    Done(ChatReply),
    Retry(ClientError, Option<Duration>),
    Fail(ClientError),
}

impl LlmClient {
    /// A client for `config`; `api_key` as resolved from the config or its env var.
    pub fn new(config: LlmConfig, api_key: Option<Secret>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(10_000)))
            .build()
            .map_err(|e| ClientError::Connect(e.to_string()))?;
        let url = format!("{}/chat/completions", config.base_url.trim_end_matches('/'));
        Ok(Self {
            http,
            url,
            api_key,
            config,
        })
    }

    /// Sends `messages` asking for an answer in `response_format` (structured output,
    /// see [`super::schema::structured_output`]) and returns the reply, retrying timeouts,
    /// connection errors, 429 and 5xx answers up to `max_retries` times.
    pub async fn chat(
        &self,
        messages: &[Message],
        response_format: &serde_json::Value,
    ) -> Result<ChatReply, ClientError> {
        let body = json!({
            "model": self.config.model,
            "messages": messages,
            "response_format": response_format,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_completion_tokens,
        });
        let mut attempt: u32 = 0;
        loop {
            match self.attempt(&body).await {
                Attempt::Done(reply) => return Ok(reply),
                Attempt::Fail(e) => return Err(e),
                Attempt::Retry(e, _) if attempt >= self.config.max_retries => return Err(e),
                Attempt::Retry(e, retry_after) => {
                    let wait = match retry_after {
                        Some(d) if d > MAX_RETRY_AFTER => return Err(e),
                        Some(d) => d,
                        None => self.backoff(attempt),
                    };
                    metrics::counter!(super::telemetry::RETRIES).increment(1);
                    tracing::debug!(error = %e, ?wait, attempt, "llm: retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
            }
        }
    }

    /// `base × 2^attempt`, capped, times a random factor in [0.5, 1) so that many clients
    /// retrying together spread out.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.config.backoff_base_ms as f64 * 2f64.powi(attempt.min(16) as i32);
        let capped = base.min(self.config.backoff_max_ms as f64);
        let jitter = 0.5 + rand::random::<f64>() * 0.5;
        Duration::from_millis((capped * jitter) as u64)
    }

    async fn attempt(&self, body: &serde_json::Value) -> Attempt {
        let mut request = self.http.post(&self.url).json(body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(
                    ClientError::Timeout(Duration::from_millis(self.config.timeout_ms)),
                    None,
                );
            }
            // Never the URL with its query or any header: just what went wrong.
            Err(e) => {
                return Attempt::Retry(ClientError::Connect(e.without_url().to_string()), None);
            }
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) if e.is_timeout() => {
                return Attempt::Retry(
                    ClientError::Timeout(Duration::from_millis(self.config.timeout_ms)),
                    None,
                );
            }
            Err(e) => {
                return Attempt::Retry(ClientError::Connect(e.without_url().to_string()), None);
            }
        };
        if !status.is_success() {
            let e = ClientError::Status {
                status: status.as_u16(),
                message: text.chars().take(300).collect(),
            };
            return if status.as_u16() == 429 {
                Attempt::Retry(e, retry_after)
            } else if status.is_server_error() {
                Attempt::Retry(e, None)
            } else {
                Attempt::Fail(e)
            };
        }
        match serde_json::from_str::<Completion>(&text) {
            Ok(c) => {
                let usage = c.usage.unwrap_or_default();
                match c.choices.into_iter().next().and_then(|c| c.message.content) {
                    Some(content) => Attempt::Done(ChatReply {
                        content,
                        prompt_tokens: usage.prompt_tokens,
                        completion_tokens: usage.completion_tokens,
                    }),
                    None => Attempt::Fail(ClientError::Decode("no message content".into())),
                }
            }
            Err(e) => Attempt::Fail(ClientError::Decode(e.to_string())),
        }
    }
}
