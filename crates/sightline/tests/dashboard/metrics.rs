//! The metrics page: a steady latency series with one spike, rolled up by the stream
//! engine and judged by the detector, drawn as a line with the anomaly marked on it.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, Node};

/// Short checkpoints and idle timeouts so windows close within a second; one robust
/// z-score detector so a spike after 200 steady points is an anomaly.
const CONFIG: &str = r#"
[stream]
checkpoint_interval_ms = 100
idle_timeout_ms = 300
max_out_of_orderness_ms = 1000
grace_ms = 0

[[detect.detectors.default]]
kind = "robust_zscore"
window = 120
"#;

#[tokio::test]
async fn a_metric_is_drawn_with_its_anomaly_marked() {
    let node = Node::start(CONFIG).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // 200 minutes of steady latency, one point a minute, then a spike and a calm point
    // that moves event time past the spike's window.
    let base = (now / 60_000 - 240) * 60_000;
    let mut points: Vec<Value> = (0..200)
        .map(|i| {
            json!({"service_name": "checkout", "metric_type": "latency_ms",
                   "value": 120.0 + [-9.0, -3.0, 0.0, 4.0, 8.0][i % 5],
                   "timestamp": base + i as i64 * 60_000})
        })
        .collect();
    let spike_at = base + 200 * 60_000;
    points.push(
        json!({"service_name": "checkout", "metric_type": "latency_ms",
                       "value": 812.0, "timestamp": spike_at}),
    );
    points.push(
        json!({"service_name": "checkout", "metric_type": "latency_ms",
                       "value": 121.0, "timestamp": spike_at + 3 * 60_000}),
    );
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/metrics",
            Some(Value::Array(points)),
        )
        .await;
    assert_eq!(status, 202, "{answer}");

    // Wait for the rollups (including the spike's window) and the anomaly.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, rollups) = node
            .call(
                "viewer",
                Method::GET,
                "/api/v1/metrics/aggregated?service=checkout&metric=latency_ms&window=1m&hours=6",
                None,
            )
            .await;
        let (_, anomalies) = node
            .call(
                "viewer",
                Method::GET,
                "/api/v1/anomalies?service=checkout",
                None,
            )
            .await;
        let windows = rollups["items"].as_array().map_or(0, Vec::len);
        let spike = rollups["items"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|r| r["window_start"] == spike_at));
        let found = anomalies["items"].as_array().map_or(0, Vec::len);
        if windows >= 200 && spike && found > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rollups {windows} (spike window: {spike}), anomalies {found}: {anomalies}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    let mut browser = Browser::start("metrics-anomaly").await;
    browser.login(&node, "viewer").await;
    // Login lands on the overview; opening another page before that would race it.
    browser.element("#live-events-total").await;

    // Without a choice the page offers the services it has rollups of; the choice made in
    // the form lands in the link.
    browser.open(&node, "#/metrics").await;
    browser.until_text("#metric-chart", "Pick a service").await;
    browser
        .until("checkout among the suggested services", || async {
            let found: Value = browser
                .client
                .execute(
                    "return !!document.querySelector('#metric-services option[value=checkout]')",
                    vec![],
                )
                .await
                .ok()?;
            (found == Value::Bool(true)).then_some(())
        })
        .await;
    browser
        .element("#metric-service")
        .await
        .send_keys("checkout")
        .await
        .unwrap();
    browser
        .element("#metric-name")
        .await
        .send_keys("latency_ms")
        .await
        .unwrap();
    browser
        .element("#metric-form button[type=submit]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until("the choice in the link", || async {
            let url = browser.client.current_url().await.ok()?;
            url.fragment()
                .is_some_and(|f| {
                    f == "/metrics?service=checkout&metric=latency_ms&window=1m&hours=6"
                })
                .then_some(())
        })
        .await;
    browser.element("#metric-chart path[data-series=avg]").await;

    // The link alone reproduces the view.
    browser
        .open(
            &node,
            "#/metrics?service=checkout&metric=latency_ms&window=1m&hours=6",
        )
        .await;
    browser.client.refresh().await.unwrap();
    let points = browser
        .until("the avg line with its points", || async {
            let n = avg_points(&browser).await;
            (n >= 200).then_some(n)
        })
        .await;
    assert!(points >= 201, "{points} points");
    browser.element("#metric-chart circle.marker title").await;
    let title: Value = browser
        .client
        .execute(
            "return document.querySelector('#metric-chart circle.marker title').textContent",
            vec![],
        )
        .await
        .unwrap();
    let title = title.as_str().unwrap_or_default();
    assert!(
        title.contains("robust_zscore") && title.contains("812"),
        "{title}"
    );
    let band: Value = browser
        .client
        .execute(
            "return document.querySelector('#metric-chart path.band').getAttribute('d').length",
            vec![],
        )
        .await
        .unwrap();
    assert!(band.as_u64().unwrap_or(0) > 100, "no expected-range band");
    browser
        .until_text("#metric-anomalies", "robust_zscore")
        .await;
    browser.until_text(".chart-legend", "typical range").await;
    // The form shows the linked state.
    let window: Value = browser
        .client
        .execute(
            "return document.getElementById('metric-window').value",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(window, "1m");
    browser.screenshot("latency-with-anomaly").await;

    // Windows that close while the page is open are appended from the live stream.
    let later: Vec<Value> = [4, 5, 9]
        .iter()
        .map(|m| {
            json!({"service_name": "checkout", "metric_type": "latency_ms",
                   "value": 119.0, "timestamp": spike_at + m * 60_000})
        })
        .collect();
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/metrics",
            Some(Value::Array(later)),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    browser
        .until("the new windows on the line", || async {
            (avg_points(&browser).await > points).then_some(())
        })
        .await;
    browser.close().await;
}

/// How many points the chart's avg line has.
async fn avg_points(browser: &Browser) -> u64 {
    browser
        .client
        .execute(
            "const p = document.querySelector('#metric-chart path[data-series=avg]');
             return p ? (p.getAttribute('d').match(/L/g) || []).length + 1 : 0;",
            vec![],
        )
        .await
        .ok()
        .and_then(|n| n.as_u64())
        .unwrap_or(0)
}
