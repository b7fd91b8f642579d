//! A local fake OpenAI-compatible provider (wiremock) for the LLM tests: the provider
//! config pointing at it, canned chat completions, and what it received.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use sightline_analyst::llm::LlmConfig;
use sightline_model::Secret;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// The API key the tests configure (it must never leak).
pub const KEY: &str = "sk-test-secret-key";

/// A provider config for `server`: short timeouts, one retry, fast backoff.
pub fn config(server: &MockServer) -> LlmConfig {
    LlmConfig {
        base_url: format!("{}/v1", server.uri()),
        model: "test-model-1".into(),
        api_key: Secret::new(KEY),
        timeout_ms: 2_000,
        max_retries: 1,
        backoff_base_ms: 10,
        backoff_max_ms: 50,
        ..LlmConfig::default()
    }
}

/// A chat completion answering `content` (900 prompt and 120 completion tokens).
pub fn completion(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "cmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 120, "total_tokens": 1020}
    }))
}

/// Answers with `responses[i]` on the i-th call (the last one repeated); counts calls.
pub async fn serve(server: &MockServer, responses: Vec<ResponseTemplate>) -> Arc<AtomicUsize> {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(move |_: &Request| {
            let i = counter.fetch_add(1, Ordering::SeqCst);
            responses[i.min(responses.len() - 1)].clone()
        })
        .mount(server)
        .await;
    calls
}

/// The JSON bodies the provider received, in order.
pub async fn bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}
