//! Detection and correlation inside a running node: metric points and events posted over
//! HTTP become anomalies (detection runner), the anomalies and the error event become one
//! incident (correlation runner), and the API shows the incident with its evidence.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, now_ms};
use serde_json::{Value, json};

#[tokio::test]
async fn a_latency_spike_and_a_new_error_become_one_incident_with_its_evidence() {
    let app = TestApp::spawn_with(|c| {
        c.stream.checkpoint_interval_ms = 100;
        c.detect.detectors =
            serde_json::from_value(json!({"default": [{"kind": "robust_zscore", "window": 120}]}))
                .unwrap();
        c.correlate.rules.group_wait_ms = 200;
        // The service's first error ever is the new pattern under test.
        c.detect.new_pattern.learning_period_ms = 0;
    })
    .await;

    // 200 minutes of steady latency, then a spike, then a never-seen error.
    let base = now_ms() - 300 * 60_000;
    let mut points: Vec<Value> = (0..200)
        .map(|i| {
            json!({
                "service_name": "checkout",
                "metric_type": "latency_ms",
                "value": 120.0 + [-9.0, -3.0, 0.0, 4.0, 8.0][i % 5],
                "timestamp": base + i as i64 * 60_000,
            })
        })
        .collect();
    let spike_at = base + 200 * 60_000;
    points.push(json!({
        "service_name": "checkout", "metric_type": "latency_ms", "value": 812.0, "timestamp": spike_at,
    }));
    let res = app
        .post_json("/api/v1/metrics", &Value::Array(points))
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let res = app
        .post_json(
            "/api/v1/events",
            &json!({
                "event_id": "evt-pool-1",
                "service_name": "checkout",
                "event_type": "ERROR",
                "timestamp": spike_at + 1_000,
                "details": "connection pool exhausted",
            }),
        )
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(60);
    let incident = loop {
        let list: Value = app
            .get("/api/v1/incidents?service=checkout")
            .await
            .json()
            .await
            .unwrap();
        let items = list["items"].as_array().unwrap().clone();
        let anomalies: Value = app
            .get("/api/v1/anomalies?service=checkout")
            .await
            .json()
            .await
            .unwrap();
        let detectors: Vec<&str> = anomalies["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["detector"].as_str())
            .collect();
        if items.len() == 1
            && detectors.contains(&"robust_zscore")
            && detectors.contains(&"new_pattern")
            && items[0]["anomaly_ids"].as_array().unwrap().len() >= 2
        {
            break items[0].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no single incident with both anomalies: incidents {items:?}, anomaly detectors {detectors:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(incident["service_name"], "checkout");
    assert_eq!(incident["status"], "open");

    let id = incident["id"].as_str().unwrap();
    let detail: Value = app
        .get(&format!("/api/v1/incidents/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert!(
        !detail["anomalies"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    assert!(
        !detail["timeline"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    // The new error is evidence through its new-pattern anomaly, which names the event.
    assert!(
        detail["anomalies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["detector"] == "new_pattern" && a["event_id"] == "evt-pool-1"),
        "the error event is evidence: {detail}"
    );

    // An operator acknowledges it; the pipeline keeps it as one incident.
    let res = app
        .client
        .patch(app.url(&format!("/api/v1/incidents/{id}")))
        .json(&json!({"status": "acknowledged", "note": "looking"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let list: Value = app
        .get("/api/v1/incidents?service=checkout")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.shutdown().await;
}
