//! Playbooks, executions and autonomous response through the HTTP API of a real node:
//! template CRUD with precise validation errors, dry-run rendering, an analysis whose
//! recommended playbook runs a diagnostic command, pauses for approval (token delivered
//! to a local webhook receiver), is approved through the API and notifies; expired
//! tokens; the decision log, feedback and the audit trail.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use common::{TestApp, now_ms};
use serde_json::{Value, json};
use sightline_model::playbook::{ChatFormat, NotifyChannel};
use sightline_respond::PlaybookConfig;

const PRINTF: &str = "/usr/bin/printf";

/// A local webhook receiver: records `(path, body)` of every POST.
#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    base: String,
}

impl Receiver {
    async fn start() -> Self {
        let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
        let sink = got.clone();
        let app = axum::Router::new().route(
            "/{*path}",
            post(
                move |axum::extract::Path(path): axum::extract::Path<String>,
                      axum::Json(body): axum::Json<Value>| {
                    let sink = sink.clone();
                    async move {
                        sink.lock().unwrap().push((format!("/{path}"), body));
                        "ok"
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { got, base }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn wait_for(&self, path: &str) -> Value {
        for _ in 0..1000 {
            if let Some((_, body)) = self.got.lock().unwrap().iter().find(|(p, _)| p == path) {
                return body.clone();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("nothing arrived on {path}");
    }
}

fn playbooks(receiver: &Receiver, ttl_secs: u64) -> PlaybookConfig {
    let mut config = PlaybookConfig::default();
    config.executors.command.allowed = vec![PRINTF.into()];
    config.executors.http.allow_private = vec!["127.0.0.0/8".parse().unwrap()];
    config.approval_channel = Some(NotifyChannel::Webhook {
        url: receiver.url("/approvals"),
        format: ChatFormat::Slack,
    });
    config.approval_ttl_secs = ttl_secs;
    config
}

fn template(receiver: &Receiver) -> Value {
    json!({
        "id": "restart-checkout", "name": "Restart checkout", "description": "diagnose, restart, tell",
        "steps": [
            {"name": "diagnose", "kind": "diagnostic",
             "action": {"type": "command", "program": PRINTF, "args": ["[%s]", "{{subject.details}}"]}},
            {"name": "restart", "kind": "remediation", "approval_required": true,
             "action": {"type": "http", "url": receiver.url("/restart"), "body": {"service": "{{subject.service_name}}"}}},
            {"name": "tell", "kind": "notification",
             "action": {"type": "notify", "channel": {"type": "webhook", "url": receiver.url("/chat"), "format": "slack"},
                        "message": "restarted {{subject.service_name}}"}}
        ]
    })
}

fn token_from(message: &str) -> String {
    let start = message.find("\"token\":\"").unwrap() + 9;
    message[start..start + 64].to_owned()
}

async fn wait_execution(app: &TestApp, id: &str, status: &str) -> Value {
    for _ in 0..1000 {
        let e: Value = app
            .get(&format!("/api/v1/executions/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if e["status"] == status {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("execution {id} never reached {status}");
}

async fn put_json(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url(path))
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn templates_validate_precisely_and_changes_are_audited_before_and_after() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|c| c.respond.playbooks = playbooks(&receiver, 600)).await;
    let mut bad = template(&receiver);
    bad["steps"][0]["action"]["program"] = json!("printf");
    let res = app.post_json("/api/v1/rules/responses", &bad).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "steps[0].action.program",
        "{problem}"
    );

    let res = app.post_json("/api/v1/rules/responses", &json!({"name": "x", "steps": [{"name": "a", "kind": "sideways", "action": {"type": "noop"}}]})).await;
    assert_eq!(res.status(), 400);

    let res = app
        .post_json("/api/v1/rules/responses", &template(&receiver))
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["created_by"], "anonymous");
    assert_eq!(
        app.post_json("/api/v1/rules/responses", &template(&receiver))
            .await
            .status(),
        409
    );

    let mut changed = template(&receiver);
    changed["description"] = json!("changed");
    let res = put_json(&app, "/api/v1/rules/responses/restart-checkout", &changed).await;
    assert_eq!(res.status(), 200);
    let list: Value = app
        .get("/api/v1/rules/responses")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["description"], "changed");

    let res = app
        .client
        .delete(app.url("/api/v1/rules/responses/restart-checkout"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    assert_eq!(
        app.get("/api/v1/rules/responses/restart-checkout")
            .await
            .status(),
        404
    );

    let audit: Value = app
        .get("/api/v1/audit?limit=100")
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    let update = entries
        .iter()
        .find(|e| e["action"] == "response_template.update")
        .unwrap();
    assert_eq!(
        update["details"]["before"]["description"],
        "diagnose, restart, tell"
    );
    assert_eq!(update["details"]["after"]["description"], "changed");
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "response_template.create")
    );
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "response_template.delete")
    );
    app.shutdown().await;
}

#[tokio::test]
async fn analysis_execution_approval_and_notification_end_to_end() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|c| c.respond.playbooks = playbooks(&receiver, 600)).await;
    assert_eq!(
        app.post_json("/api/v1/rules/responses", &template(&receiver))
            .await
            .status(),
        201
    );
    let nasty = "card declined; rm -rf / $(id) `id`";
    let res = app
        .post_json(
            "/api/v1/events",
            &json!({"event_id": "ev-42", "service_name": "checkout", "event_type": "ERROR", "severity": "critical",
                    "timestamp": now_ms(), "details": nasty}),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    app.wait_for_events("service=checkout", 1).await;

    // Dry-run: rendered exactly, nothing performed.
    let res = app
        .post_json(
            "/api/v1/rules/responses/restart-checkout/dry-run",
            &json!({"subject": {"event_id": "ev-42"}}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let dry: Value = res.json().await.unwrap();
    assert_eq!(dry["status"], "dry_run");
    assert_eq!(
        dry["steps"][0]["rendered"]["argv"],
        json!([PRINTF, "[%s]", nasty])
    );
    assert_eq!(
        dry["steps"][1]["rendered"]["body"],
        json!({"service": "checkout"})
    );

    let res = app
        .post_json("/api/v1/autonomous/analyze", &json!({"event_id": "ev-42",
            "context": {"business_hours": false, "maintenance_window": false, "system_criticality": "medium"}}))
        .await;
    assert_eq!(res.status(), 201);
    let decision: Value = res.json().await.unwrap();
    assert_eq!(decision["decision"], "automate", "{decision}");
    assert!(decision["confidence"].as_f64().unwrap() > 0.8);
    assert_eq!(
        decision["recommended_actions"][0]["template_id"],
        "restart-checkout"
    );
    let decision_id = decision["id"].as_str().unwrap();

    let res = app
        .post_json(
            "/api/v1/autonomous/execute",
            &json!({"decision_id": decision_id, "action_id": "a1",
            "execution_options": {"dry_run": false, "rollback_on_failure": true}}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let execution: Value = res.json().await.unwrap();
    let id = execution["id"].as_str().unwrap().to_owned();

    let paused = wait_execution(&app, &id, "awaiting_approval").await;
    assert_eq!(paused["steps"][0]["status"], "succeeded");
    assert!(
        paused["steps"][0]["output"]
            .as_str()
            .unwrap()
            .contains(&format!("[{nasty}]"))
    );
    let message = receiver.wait_for("/approvals").await["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let token = token_from(&message);

    let approve = format!("/api/v1/executions/{id}/approve");
    let res = app
        .post_json(&approve, &json!({"token": "0".repeat(64)}))
        .await;
    assert_eq!(res.status(), 403);
    let res = app.post_json(&approve, &json!({"token": token})).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = app.post_json(&approve, &json!({"token": token})).await;
    assert_eq!(res.status(), 409, "a token is single use");

    let done = wait_execution(&app, &id, "succeeded").await;
    assert_eq!(done["steps"][1]["approved_by"], "anonymous");
    assert_eq!(
        receiver.wait_for("/restart").await,
        json!({"service": "checkout"})
    );
    assert_eq!(
        receiver.wait_for("/chat").await,
        json!({"text": "restarted checkout"})
    );
    assert_eq!(
        done["steps"][0]["rendered"], dry["steps"][0]["rendered"],
        "dry-run differs from the run"
    );

    let listed: Value = app
        .get(&format!(
            "/api/v1/executions?rule_id=autonomous:{decision_id}:a1&status=succeeded"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        app.get("/api/v1/executions?status=nope").await.status(),
        400
    );

    let decisions: Value = app
        .get("/api/v1/autonomous/decisions?event_id=ev-42&timerange=7d")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(decisions["items"][0]["id"], decision_id);
    let res = app
        .post_json(
            "/api/v1/autonomous/feedback",
            &json!({"decision_id": decision_id, "outcome": "resolved", "helpful": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let with_feedback: Value = res.json().await.unwrap();
    assert_eq!(with_feedback["feedback"]["outcome"], "resolved");

    let audit: Value = app
        .get("/api/v1/audit?limit=200")
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for want in [
        "autonomous.decision",
        "autonomous.execute",
        "execution.dry_run",
        "execution.start",
        "execution.awaiting_approval",
        "execution.approve",
        "execution.succeeded",
        "autonomous.feedback",
    ] {
        assert!(actions.contains(&want), "audit lacks {want}: {actions:?}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn expired_and_rejected_approvals() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|c| c.respond.playbooks = playbooks(&receiver, 1)).await;
    let gated = json!({"id": "gated", "name": "gated", "steps": [
        {"name": "a", "kind": "remediation", "approval_required": true, "action": {"type": "noop"}}]});
    assert_eq!(
        app.post_json("/api/v1/rules/responses", &gated)
            .await
            .status(),
        201
    );
    app.post_json(
        "/api/v1/events",
        &json!({"event_id": "ev-1", "service_name": "api", "event_type": "ERROR",
        "severity": "critical", "timestamp": now_ms(), "details": "x"}),
    )
    .await;
    app.wait_for_events("service=api", 1).await;
    let decision: Value = app
        .post_json("/api/v1/autonomous/analyze", &json!({"event_id": "ev-1"}))
        .await
        .json()
        .await
        .unwrap();
    let execute = json!({"decision_id": decision["id"], "action_id": "a1"});
    let execution: Value = app
        .post_json("/api/v1/autonomous/execute", &execute)
        .await
        .json()
        .await
        .unwrap();
    let id = execution["id"].as_str().unwrap().to_owned();
    wait_execution(&app, &id, "awaiting_approval").await;
    let token = token_from(
        receiver.wait_for("/approvals").await["text"]
            .as_str()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let res = app
        .post_json(
            &format!("/api/v1/executions/{id}/approve"),
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 410);
    let problem: Value = res.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("expired"),
        "{problem}"
    );

    // A second run, rejected in time (ttl 1 s: reject at once).
    let app2 = TestApp::spawn_with(|c| c.respond.playbooks = playbooks(&receiver, 600)).await;
    assert_eq!(
        app2.post_json("/api/v1/rules/responses", &gated)
            .await
            .status(),
        201
    );
    app2.post_json(
        "/api/v1/events",
        &json!({"event_id": "ev-2", "service_name": "api", "event_type": "ERROR",
        "severity": "critical", "timestamp": now_ms(), "details": "x"}),
    )
    .await;
    app2.wait_for_events("service=api", 1).await;
    let decision: Value = app2
        .post_json("/api/v1/autonomous/analyze", &json!({"event_id": "ev-2"}))
        .await
        .json()
        .await
        .unwrap();
    let before = receiver.got.lock().unwrap().len();
    let execution: Value = app2
        .post_json(
            "/api/v1/autonomous/execute",
            &json!({"decision_id": decision["id"], "action_id": "a1"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = execution["id"].as_str().unwrap().to_owned();
    wait_execution(&app2, &id, "awaiting_approval").await;
    let mut token = None;
    for _ in 0..500 {
        let got = receiver.got.lock().unwrap().clone();
        if let Some((_, body)) = got.iter().skip(before).find(|(p, _)| p == "/approvals") {
            token = Some(token_from(body["text"].as_str().unwrap()));
            break;
        }
        drop(got);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = app2
        .post_json(
            &format!("/api/v1/executions/{id}/reject"),
            &json!({"token": token.unwrap()}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let rejected: Value = res.json().await.unwrap();
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["steps"][0]["status"], "skipped");

    // A third run, approved through `execute` with the approval token.
    let before = receiver.got.lock().unwrap().len();
    let execute = json!({"decision_id": decision["id"], "action_id": "a1"});
    let execution: Value = app2
        .post_json("/api/v1/autonomous/execute", &execute)
        .await
        .json()
        .await
        .unwrap();
    let id = execution["id"].as_str().unwrap().to_owned();
    wait_execution(&app2, &id, "awaiting_approval").await;
    let mut token = None;
    for _ in 0..500 {
        let got = receiver.got.lock().unwrap().clone();
        if let Some((_, body)) = got.iter().skip(before).find(|(p, _)| p == "/approvals") {
            token = Some(token_from(body["text"].as_str().unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let res = app2
        .post_json(
            "/api/v1/autonomous/execute",
            &json!({"decision_id": decision["id"], "action_id": "a1",
            "approval_token": token.unwrap()}),
        )
        .await;
    assert_eq!(res.status(), 202);
    wait_execution(&app2, &id, "succeeded").await;
    app.shutdown().await;
    app2.shutdown().await;
}

/// The whole response path inside one node: an error event is ingested, the rules runner
/// matches it against a trigger rule created through the API, the playbook engine runs
/// the rule's playbook (a diagnostic command), pauses the remediation for approval, and
/// after the approval through the API restarts and notifies — nothing called by hand.
#[tokio::test]
async fn an_ingested_event_fires_a_rule_whose_playbook_runs_after_approval() {
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_with(|c| c.respond.playbooks = playbooks(&receiver, 600)).await;
    let res = app
        .post_json("/api/v1/rules/responses", &template(&receiver))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let res = app
        .post_json(
            "/api/v1/rules/triggers",
            &json!({
                "name": "checkout payment errors",
                "applies_to": "events",
                "conditions": {"event_type": "ERROR", "service_name": "checkout",
                               "details": {"$contains": "payment"}},
                "response_template_id": "restart-checkout",
            }),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let rule: Value = res.json().await.unwrap();

    // Not matching (other service), then matching.
    for (id, service) in [("evt-other", "search"), ("evt-pay", "checkout")] {
        let res = app
            .post_json(
                "/api/v1/events",
                &json!({"event_id": id, "service_name": service, "event_type": "ERROR",
                        "severity": "high", "timestamp": now_ms(),
                        "details": "payment gateway timeout; $(reboot)"}),
            )
            .await;
        assert_eq!(res.status(), 202);
    }

    let mut execution = Value::Null;
    for _ in 0..1500 {
        let list: Value = app
            .get(&format!(
                "/api/v1/executions?rule_id={}",
                rule["id"].as_str().unwrap()
            ))
            .await
            .json()
            .await
            .unwrap();
        if let Some(first) = list["items"].as_array().and_then(|items| items.first()) {
            execution = first.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let id = execution["id"]
        .as_str()
        .expect("the rule fired a playbook")
        .to_owned();
    let paused = wait_execution(&app, &id, "awaiting_approval").await;
    assert_eq!(paused["steps"][0]["status"], "succeeded");
    assert!(
        paused["steps"][0]["output"]
            .as_str()
            .unwrap()
            .contains("[payment gateway timeout; $(reboot)]"),
        "the event text is one argv element: {paused}"
    );
    let token = token_from(
        receiver.wait_for("/approvals").await["text"]
            .as_str()
            .unwrap(),
    );
    let res = app
        .post_json(
            &format!("/api/v1/executions/{id}/approve"),
            &json!({"token": token}),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    wait_execution(&app, &id, "succeeded").await;
    assert_eq!(receiver.wait_for("/restart").await["service"], "checkout");
    receiver.wait_for("/chat").await;
    // Exactly one run: the other service's event did not match.
    let all: Value = app.get("/api/v1/executions").await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 1, "{all}");
    app.shutdown().await;
}
