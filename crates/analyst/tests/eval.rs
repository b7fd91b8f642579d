//! Root-cause accuracy of the built-in analyst on the simulator's incident scenario, over
//! several seeds, through the real detectors, correlator, rollups and SQLite store (see
//! `sightline_analyst::eval`). The floors are what the analyst achieves across these
//! seeds, not a number fitted to one run.

#![allow(clippy::unwrap_used)]

use sightline_analyst::eval::{EvalConfig, run};

#[tokio::test]
async fn builtin_analyst_names_the_injected_root_cause() {
    let dir = tempfile::tempdir().unwrap();
    let config = EvalConfig::default();
    let report = run(&config, dir.path()).await.unwrap();
    for seed in &report.seeds {
        for c in &seed.cases {
            eprintln!(
                "seed {} {:<18} truth={:<12} predicted={:<12} top3={:?}",
                c.seed,
                c.fault_kind.as_str(),
                c.truth,
                c.predicted.as_deref().unwrap_or("-"),
                c.top3
            );
        }
        assert!(
            seed.faults_detected * 2 >= seed.faults,
            "seed {}: only {} of {} faults became incidents",
            seed.seed,
            seed.faults_detected,
            seed.faults
        );
    }
    eprintln!(
        "top1 {:.3} top3 {:.3} over {} cases",
        report.top1, report.top3, report.cases
    );
    assert!(report.cases >= 15, "{} cases", report.cases);
    assert!(report.top1 >= TOP1_FLOOR, "top-1 {:.3}", report.top1);
    assert!(report.top3 >= TOP3_FLOOR, "top-3 {:.3}", report.top3);
}

/// Measured 0.89 on these seeds (0.89 over seeds 1 to 6).
const TOP1_FLOOR: f64 = 0.85;
/// The target. Measured 1.00 on these seeds (0.98 over seeds 1 to 6).
const TOP3_FLOOR: f64 = 0.95;

/// `sightline bench rca --llm`: the same scenario through an OpenAI-compatible provider (a
/// local fake that answers after 40 ms, always naming `postgres-db`): every case is
/// answered by the LLM, each request carries the model and the JSON schema, and the
/// provider's waiting time is reported apart from sightline's own.
#[tokio::test]
async fn the_llm_path_is_scored_with_the_provider_time_apart() {
    use serde_json::json;
    use sightline_analyst::llm::LlmConfig;
    use sightline_model::{AnalystKind, Secret};
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let answer = json!({
        "root_cause": "The database is saturated.",
        "root_cause_service": "postgres-db",
        "confidence": 0.7,
        "impacted_services": ["postgres-db"],
        "suggested_actions": [],
        "technical_summary": "postgres-db latency rose first.",
        "executive_summary": "The database is slow.",
        "evidence": [],
    });
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_delay(std::time::Duration::from_millis(40))
                .set_body_json(json!({
                    "id": "cmpl-eval", "object": "chat.completion",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": answer.to_string()}}],
                    "usage": {"prompt_tokens": 800, "completion_tokens": 100, "total_tokens": 900}
                })),
        )
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = EvalConfig {
        seeds: vec![1],
        duration: std::time::Duration::from_secs(4 * 3600),
        faults: Some(3),
        llm: Some(LlmConfig {
            base_url: format!("{}/v1", server.uri()),
            model: "eval-model".into(),
            api_key: Secret::new("sk-eval"),
            ..LlmConfig::default()
        }),
        ..EvalConfig::default()
    };
    let report = run(&config, dir.path()).await.unwrap();
    assert!(report.cases >= 1, "{report:#?}");
    assert_eq!(report.llm_answered, report.cases, "{report:#?}");
    let cases: Vec<_> = report.seeds.iter().flat_map(|s| &s.cases).collect();
    for c in &cases {
        assert_eq!(c.answered_by, AnalystKind::Llm);
        assert_eq!(c.predicted.as_deref(), Some("postgres-db"));
        assert!(c.provider_ms >= 40, "{c:?}");
        assert!(c.latency_ms >= c.provider_ms, "{c:?}");
    }
    assert!(report.own_latency_p99_ms <= report.latency_p99_ms);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), cases.len(), "one call per case");
    for r in &requests {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body["model"], "eval-model");
        assert_eq!(body["response_format"]["type"], "json_schema", "{body}");
    }
}
