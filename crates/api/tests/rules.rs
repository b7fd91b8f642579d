//! The trigger-rules API end to end on a real node (SQLite, event log, loopback HTTP):
//! create / list / read / replace / delete with validation and the audit trail, and a
//! backtest over events ingested through the API.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, now_ms};
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

fn cpu_rule() -> Value {
    json!({
        "name": "cpu saturation",
        "description": "sustained CPU above 90% on one host",
        "applies_to": "events",
        "conditions": {"event_type": "threshold_breach", "severity": ["critical", "high"],
                       "metadata.cpu_usage": {"$gt": 90}},
        "time_window_minutes": 10,
        "threshold_count": 3,
        "group_by": ["service_name", "host"],
        "throttle": {"mode": "once_within", "minutes": 30},
        "response_template_id": "scale-out"
    })
}

#[tokio::test]
async fn trigger_rules_are_validated_stored_changed_deleted_and_audited() {
    let app = TestApp::spawn().await;

    // A faulty condition is a 422 naming the path to the fault.
    let mut bad = cpu_rule();
    bad["conditions"] = json!({"$and": [{"host": "a"}, {"metadata.cpu_usage": {"$gt": "ninety"}}]});
    let (status, problem) = send(&app, "POST", "/api/v1/rules/triggers", Some(bad)).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(
        problem["errors"][0]["field"],
        "conditions.$and[1].metadata.cpu_usage.$gt"
    );
    assert!(
        problem["errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("expected a number")
    );
    let mut bad = cpu_rule();
    bad["group_by"] = json!(["service_name", "nope"]);
    let (status, problem) = send(&app, "POST", "/api/v1/rules/triggers", Some(bad)).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "group_by[1]");
    let mut bad = cpu_rule();
    bad["threshold_count"] = json!(0);
    let (status, problem) = send(&app, "POST", "/api/v1/rules/triggers", Some(bad)).await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "threshold_count");
    let mut bad = cpu_rule();
    bad["colour"] = json!("red");
    assert_eq!(
        send(&app, "POST", "/api/v1/rules/triggers", Some(bad))
            .await
            .0,
        400
    );

    let (status, created) = send(&app, "POST", "/api/v1/rules/triggers", Some(cpu_rule())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["active"], true);
    assert_eq!(created["conditions"], cpu_rule()["conditions"]);
    let (status, got) = send(&app, "GET", &format!("/api/v1/rules/triggers/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(got, created);

    let mut changed = cpu_rule();
    changed["active"] = json!(false);
    changed["threshold_count"] = json!(5);
    let (status, updated) = send(
        &app,
        "PUT",
        &format!("/api/v1/rules/triggers/{id}"),
        Some(changed),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["threshold_count"], 5);
    assert_eq!(updated["created_at"], created["created_at"]);
    assert!(updated["updated_at"].as_i64() > created["updated_at"].as_i64());
    let (_, all) = send(&app, "GET", "/api/v1/rules/triggers", None).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 1);
    let (_, active) = send(&app, "GET", "/api/v1/rules/triggers?active=true", None).await;
    assert!(active["items"].as_array().unwrap().is_empty());
    assert_eq!(
        send(
            &app,
            "PUT",
            "/api/v1/rules/triggers/ghost",
            Some(cpu_rule())
        )
        .await
        .0,
        404
    );

    let (status, deleted) = send(
        &app,
        "DELETE",
        &format!("/api/v1/rules/triggers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(deleted, updated);
    assert_eq!(
        send(&app, "GET", &format!("/api/v1/rules/triggers/{id}"), None)
            .await
            .0,
        404
    );
    assert_eq!(
        send(
            &app,
            "DELETE",
            &format!("/api/v1/rules/triggers/{id}"),
            None
        )
        .await
        .0,
        404
    );

    // Every change is in the audit trail with before and after.
    let (status, audit) = send(&app, "GET", "/api/v1/audit?action=rule.", None).await;
    assert_eq!(status, 200, "{audit}");
    let items = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rule.delete", "rule.update", "rule.create"]);
    assert!(items.iter().all(|e| e["target"] == id.as_str()));
    assert_eq!(items[2]["details"]["before"], Value::Null);
    assert_eq!(items[2]["details"]["after"], created);
    assert_eq!(items[1]["details"]["before"], created);
    assert_eq!(items[1]["details"]["after"], updated);
    assert_eq!(items[0]["details"]["before"], updated);
    assert_eq!(items[0]["details"]["after"], Value::Null);
    app.shutdown().await;
}

#[tokio::test]
async fn backtest_reports_what_a_rule_would_have_fired_on_stored_events() {
    let app = TestApp::spawn().await;
    let t0 = now_ms() - 3_600_000;
    let minute = 60_000;
    let event = |id: &str, host: &str, cpu: f64, t: i64| {
        json!({"event_id": id, "service_name": "checkout", "event_type": "THRESHOLD_BREACH",
               "severity": "critical", "host": host, "timestamp": t,
               "metadata": {"cpu_usage": cpu}})
    };
    let batch = json!([
        // web-1: three hot readings within 10 minutes → fires at e3; e4 is throttled.
        event("e1", "web-1", 95.0, t0),
        event("e2", "web-1", 97.0, t0 + 2 * minute),
        event("e3", "web-1", 99.0, t0 + 4 * minute),
        event("e4", "web-1", 96.0, t0 + 5 * minute),
        event("e5", "web-1", 96.0, t0 + 6 * minute),
        event("e6", "web-1", 96.0, t0 + 7 * minute),
        // web-2: hot but spread out beyond the window → never fires.
        event("f1", "web-2", 95.0, t0),
        event("f2", "web-2", 95.0, t0 + 11 * minute),
        event("f3", "web-2", 95.0, t0 + 22 * minute),
        // cool readings never match.
        event("g1", "web-3", 50.0, t0),
        event("g2", "web-3", 50.0, t0 + minute),
        event("g3", "web-3", 50.0, t0 + 2 * minute),
    ]);
    let res = app.post_json("/api/v1/events/batch", &batch).await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    app.wait_for_events("service=checkout", 12).await;

    let mut rule = cpu_rule();
    rule["active"] = json!(false); // a backtest is how one tries a rule before enabling it
    let (status, created) = send(&app, "POST", "/api/v1/rules/triggers", Some(rule)).await;
    assert_eq!(status, 201);
    let id = created["id"].as_str().unwrap();
    let (status, report) = send(
        &app,
        "POST",
        &format!("/api/v1/rules/{id}/backtest"),
        Some(json!({"from": t0 - minute, "to": now_ms()})),
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["scanned"], 12);
    assert_eq!(report["truncated"], false);
    assert_eq!(report["matches"], 9);
    assert_eq!(report["would_fire"], 1);
    assert_eq!(report["throttled"], 1);
    assert_eq!(report["executed"], false);
    assert_eq!(report["response_template_id"], "scale-out");
    let f = &report["firings"][0];
    assert_eq!(f["subject_id"], "e3");
    assert_eq!(f["subject_kind"], "event");
    assert_eq!(f["at"], t0 + 4 * minute);
    assert_eq!(f["group_key"], "checkout|web-1");
    assert_eq!(f["match_count"], 3);
    assert_eq!(f["response_template_id"], "scale-out");

    // A window that excludes the hot burst finds nothing; bad ranges are refused.
    let (_, empty) = send(
        &app,
        "POST",
        &format!("/api/v1/rules/{id}/backtest"),
        Some(json!({"from": t0 + 30 * minute, "to": now_ms()})),
    )
    .await;
    assert_eq!(empty["scanned"], 0);
    assert_eq!(empty["would_fire"], 0);
    let (status, problem) = send(
        &app,
        "POST",
        &format!("/api/v1/rules/{id}/backtest"),
        Some(json!({"from": t0, "to": t0})),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(problem["errors"][0]["field"], "to");
    assert_eq!(
        send(
            &app,
            "POST",
            "/api/v1/rules/ghost/backtest",
            Some(json!({"from": t0, "to": now_ms()}))
        )
        .await
        .0,
        404
    );
    app.shutdown().await;
}
