//! The analysis API end to end on a real node (SQLite, event log, analyst runner,
//! loopback HTTP): an incident published on `incidents.detected` gets an analysis from the
//! runner; it is read (cache, store, `/api` alias), re-generated on demand, and judged
//! with audited feedback; bad input gets precise problems.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::TestApp;
use serde_json::{Value, json};

async fn send(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn field_of(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or("")
}

/// Waits for the analyst runner's analysis of `incident`; panics after 30 s.
async fn wait_for_analysis(app: &TestApp, incident: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = send(app, "GET", &format!("/api/v1/analysis/{incident}"), None).await;
        if status == 200 {
            return body;
        }
        assert_eq!(status, 404, "{body}");
        assert!(
            Instant::now() < deadline,
            "no analysis of {incident} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn topic_records(app: &TestApp, topic: &str) -> u64 {
    let (status, body) = send(app, "GET", "/api/v1/topics", None).await;
    assert_eq!(status, 200);
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == topic)
        .map_or(0, |t| t["records"].as_u64().unwrap())
}

#[tokio::test]
async fn detected_incidents_are_analysed_regenerated_and_judged() {
    let app = TestApp::spawn().await;
    let graph = json!({"services": {
        "db": {"depends_on": [], "criticality": 2.0},
        "api": {"depends_on": ["db"]},
    }});
    let (status, _) = send(&app, "PUT", "/api/v1/topology", Some(graph)).await;
    assert_eq!(status, 200);
    let (status, incident) = send(
        &app,
        "POST",
        "/api/v1/incidents",
        Some(json!({"title": "db is slow", "severity": "high", "service_name": "db"})),
    )
    .await;
    assert_eq!(status, 201, "{incident}");
    let id = incident["id"].as_str().unwrap().to_owned();

    // The runner analyses the detected incident: the full schema, from the built-in analyst.
    let analysis = wait_for_analysis(&app, &id).await;
    assert_eq!(analysis["incident_id"], id.as_str());
    assert_eq!(analysis["analyst"], "builtin");
    assert_eq!(analysis["model"], "builtin-v1");
    assert_eq!(analysis["status"], "completed");
    assert_eq!(analysis["root_cause_service"], "db");
    let confidence = analysis["confidence"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&confidence), "{confidence}");
    assert!(
        analysis["impacted_services"]
            .as_array()
            .unwrap()
            .contains(&json!("db"))
    );
    assert!(!analysis["technical_summary"].as_str().unwrap().is_empty());
    assert!(!analysis["executive_summary"].as_str().unwrap().is_empty());
    assert!(!analysis["suggested_actions"].as_array().unwrap().is_empty());
    let deadline = Instant::now() + Duration::from_secs(10);
    while topic_records(&app, "analysis.completed").await < 1 {
        assert!(Instant::now() < deadline, "analysis.completed stayed empty");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The /api alias, and generate without force: the same analysis.
    let (status, alias) = send(&app, "GET", &format!("/api/analysis/{id}"), None).await;
    assert_eq!((status, &alias["id"]), (200, &analysis["id"]));
    let (status, same) = send(
        &app,
        "POST",
        "/api/analysis/generate",
        Some(json!({"incident_id": id})),
    )
    .await;
    assert_eq!((status, &same["id"]), (200, &analysis["id"]), "{same}");

    // Forced: a new analysis now, stored, published and served from then on.
    let before = topic_records(&app, "analysis.completed").await;
    let (status, forced) = send(
        &app,
        "POST",
        "/api/v1/analysis/generate",
        Some(json!({"incident_id": id, "force": true})),
    )
    .await;
    assert_eq!(status, 201, "{forced}");
    assert_ne!(forced["id"], analysis["id"]);
    assert_eq!(forced["root_cause_service"], "db");
    let (_, latest) = send(&app, "GET", &format!("/api/v1/analysis/{id}"), None).await;
    assert_eq!(latest["id"], forced["id"]);
    assert_eq!(topic_records(&app, "analysis.completed").await, before + 1);

    // Feedback: stored, audited; bad verdicts and unknown analyses are refused precisely.
    let forced_id = forced["id"].as_str().unwrap();
    let (status, fb) = send(
        &app,
        "POST",
        &format!("/api/v1/analysis/{forced_id}/feedback"),
        Some(json!({"verdict": "helpful", "notes": "it was the db"})),
    )
    .await;
    assert_eq!(status, 201, "{fb}");
    assert_eq!(fb["verdict"], "helpful");
    assert_eq!(fb["incident_id"], id.as_str());
    let (status, problem) = send(
        &app,
        "POST",
        &format!("/api/v1/analysis/{forced_id}/feedback"),
        Some(json!({"verdict": "meh"})),
    )
    .await;
    assert_eq!((status, field_of(&problem)), (422, "verdict"), "{problem}");
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/analysis/ana-nope/feedback",
        Some(json!({"verdict": "incorrect"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = send(&app, "GET", "/api/v1/audit?action=analysis", None).await;
    assert_eq!(status, 200, "{body}");
    let actions: BTreeSet<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from(["analysis.generate", "analysis.feedback"])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn bad_generate_requests_get_precise_problems() {
    let app = TestApp::spawn_with(|c| c.analyst.enabled = false).await;
    let (status, problem) = send(
        &app,
        "POST",
        "/api/v1/analysis/generate",
        Some(json!({"incident_id": "  "})),
    )
    .await;
    assert_eq!(
        (status, field_of(&problem)),
        (422, "incident_id"),
        "{problem}"
    );
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/analysis/generate",
        Some(json!({"incident_id": "inc-unknown"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = send(
        &app,
        "POST",
        "/api/v1/analysis/generate",
        Some(json!({"incident_id": "x", "bogus": 1})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = send(&app, "GET", "/api/v1/analysis/inc-unknown", None).await;
    assert_eq!(status, 404);
    app.shutdown().await;
}
