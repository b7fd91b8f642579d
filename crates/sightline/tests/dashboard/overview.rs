//! Logging in, and the overview's live counters.

use reqwest::Method;
use serde_json::json;

use crate::browser::{Browser, Node};

#[tokio::test]
async fn an_operator_logs_in_and_sees_live_counters_move() {
    let node = Node::start("").await;
    let mut browser = Browser::start("overview-live").await;

    // Anonymous visitors land on the login page; a wrong password is refused in place.
    browser.client.goto(&node.url("/")).await.unwrap();
    browser
        .element("#username")
        .await
        .send_keys("viewer")
        .await
        .unwrap();
    browser
        .element("#password")
        .await
        .send_keys("wrong password")
        .await
        .unwrap();
    browser
        .element("#login-submit")
        .await
        .click()
        .await
        .unwrap();
    browser
        .until_text("#login-error", "Wrong username or password")
        .await;
    browser.screenshot("login-refused").await;

    browser.login(&node, "viewer").await;
    browser.until_text("#whoami", "viewer").await;
    // A reload keeps the session (it lives in the tab's session storage).
    browser.open(&node, "#/").await;
    browser.client.refresh().await.unwrap();
    browser.until_text("#whoami", "viewer").await;
    browser
        .until("the live stream to connect", || async {
            let class = browser
                .element("#live-state")
                .await
                .attr("class")
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            class.contains("on").then_some(())
        })
        .await;
    browser.screenshot("overview-empty").await;

    let events: Vec<_> = (0..30)
        .map(|i| {
            json!({"service_name": "checkout", "event_type": "ERROR",
                   "severity": if i % 3 == 0 { "critical" } else { "low" },
                   "details": format!("payment timeout {i}")})
        })
        .collect();
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/events/batch",
            Some(json!(events)),
        )
        .await;
    assert!(status < 300, "{status} {answer}");

    browser.until_text("#live-events-total", "30").await;
    browser.until_text("[data-severity=critical]", "10").await;
    browser.until_text("[data-severity=low]", "20").await;
    browser.screenshot("overview-counted").await;
    browser.close().await;
}
