//! An incident made by the real pipeline (a never-seen error → new-pattern anomaly →
//! incident → built-in analysis), found in the incidents list as it arrives live, opened,
//! its analysis read, and acknowledged by an engineer; a viewer gets the same page with the
//! actions disabled.

use fantoccini::Locator;
use reqwest::Method;
use serde_json::json;

use crate::actions::{click, login_and_open};
use crate::browser::{Browser, Node};

/// Detection and correlation without waiting: the first error of a service is a new
/// pattern at once, and a medium anomaly opens an incident.
const QUICK_PIPELINE: &str = r#"
[stream]
checkpoint_interval_ms = 100
[correlate.rules]
group_wait_ms = 200
min_opening_anomaly_severity = "medium"
[detect.new_pattern]
learning_period_ms = 0
"#;

#[tokio::test]
async fn open_an_incident_created_by_an_injected_fault_and_see_its_analysis() {
    let node = Node::start(QUICK_PIPELINE).await;
    let mut browser = Browser::start("incident-analysis").await;
    login_and_open(&browser, &node, "engineer", "#/incidents").await;
    browser.until_text("#incidents-empty", "No incidents").await;

    // The fault: checkout's connection pool runs dry (its first error ever).
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/events",
            Some(
                json!({"service_name": "checkout", "event_type": "ERROR", "severity": "high",
                        "details": "connection pool exhausted"}),
            ),
        )
        .await;
    assert!(status < 300, "{status} {answer}");

    // The incident arrives in the open list over the live stream, no reload.
    let title = browser
        .until_text("#incidents-rows tr a.incident-link", "checkout")
        .await;
    let row = browser.text("#incidents-rows tr").await;
    assert!(row.contains("high") && row.contains("open"), "{row}");
    browser.screenshot("list").await;

    click(&browser, "#incidents-rows tr a.incident-link").await;
    browser.until_text("#incident-title", &title).await;
    let url = browser.client.current_url().await.unwrap();
    let id = url
        .fragment()
        .and_then(|f| f.strip_prefix("/incidents/"))
        .expect("incident route")
        .to_owned();

    // The analysis the node made is the one shown.
    let analysis = browser
        .until("the analysis on the node", || async {
            let (status, analysis) = node
                .call(
                    "viewer",
                    Method::GET,
                    &format!("/api/v1/analysis/{id}"),
                    None,
                )
                .await;
            (status == 200).then_some(analysis)
        })
        .await;
    let root_cause = analysis["root_cause"].as_str().unwrap();
    browser.until_text("#analysis-root-cause", root_cause).await;
    let percent = format!(
        "{}%",
        (analysis["confidence"].as_f64().unwrap() * 100.0).round()
    );
    let shown = browser.text("#analysis-confidence").await;
    assert!(shown.contains(&percent), "{shown} vs {percent}");
    assert!(
        browser
            .text("#analysis-model")
            .await
            .contains(analysis["model"].as_str().unwrap())
    );
    // Evidence links point into the timeline, which holds the cited anomaly.
    let cited = analysis["evidence"][0]["id"].as_str().unwrap();
    let target = format!(
        "#tl-{}-{cited}",
        analysis["evidence"][0]["kind"].as_str().unwrap()
    );
    assert!(browser.visible(&target).await, "{target} in the timeline");
    click(&browser, ".evidence-link").await;
    assert!(
        browser
            .text("#timeline")
            .await
            .contains("new ERROR pattern")
    );
    browser.screenshot("detail-with-analysis").await;

    // Feedback is recorded.
    click(&browser, "[data-verdict=helpful]").await;
    browser.until_text("#feedback-state", "Recorded").await;

    // Acknowledge: the status changes on the page, on the node and in the timeline.
    click(&browser, "#incident-ack").await;
    browser.until_text("#incident-status", "acknowledged").await;
    let (_, incident) = node
        .call(
            "viewer",
            Method::GET,
            &format!("/api/v1/incidents/{id}"),
            None,
        )
        .await;
    assert_eq!(incident["status"], "acknowledged");
    assert_ne!(browser.text("#incident-acknowledged").await, "—");
    browser.until_text("#timeline", "acknowledged").await;
    assert_eq!(
        browser
            .element("#incident-ack")
            .await
            .attr("disabled")
            .await
            .unwrap()
            .as_deref(),
        Some("true")
    );
    browser.screenshot("acknowledged").await;

    // A viewer sees the incident, but the actions are disabled and say why.
    click(&browser, "#logout").await;
    login_and_open(&browser, &node, "viewer", &format!("#/incidents/{id}")).await;
    browser.until_text("#analysis-root-cause", root_cause).await;
    for button in [
        "#incident-resolve",
        "#incident-assign",
        "#analysis-regenerate",
    ] {
        let element = browser.element(button).await;
        assert_eq!(
            element.attr("disabled").await.unwrap().as_deref(),
            Some("true"),
            "{button} for a viewer"
        );
        assert_eq!(
            element.attr("title").await.unwrap().as_deref(),
            Some("Needs the engineer role")
        );
    }
    // The filters live in the URL: resolved-only shows nothing yet.
    browser.open(&node, "#/incidents?status=resolved").await;
    browser.until_text("#incidents-empty", "No incidents").await;
    assert!(
        browser
            .client
            .find_all(Locator::Css("#incidents-rows tr"))
            .await
            .unwrap()
            .is_empty()
    );
    browser.close().await;
}
