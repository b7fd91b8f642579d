//! The events page: a search finds an event whose details and metadata carry HTML, and
//! expanding it shows that HTML as text: nothing of it becomes an element or runs.

use reqwest::Method;
use serde_json::{Value, json};

use crate::browser::{Browser, Node};

const DETAILS: &str = r#"<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">"#;

#[tokio::test]
async fn an_event_whose_details_contain_script_renders_as_text() {
    let node = Node::start("").await;
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/events",
            Some(json!({
                "service_name": "html-probe",
                "event_type": "ERROR",
                "severity": "high",
                "details": DETAILS,
                "metadata": {"note": "<b>bold</b><img src=x onerror=\"window.__pwned=3\">", "attempt": 2},
            })),
        )
        .await;
    assert!(status < 300, "{status} {answer}");
    // The store sink writes asynchronously: wait until the query API finds it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, page) = node
            .call(
                "viewer",
                Method::GET,
                "/api/v1/events?service=html-probe",
                None,
            )
            .await;
        if page["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty())
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "event not stored: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    let mut browser = Browser::start("events-html").await;
    browser.login(&node, "viewer").await;
    // Login lands on the overview; opening another page before that would race it.
    browser.element("#live-events-total").await;
    browser.open(&node, "#/events?q=script&hours=24").await;
    browser.until_text("#events-status", "1 event").await;
    // The filters came from the link.
    let q: Value = browser
        .client
        .execute("return document.getElementById('events-q').value", vec![])
        .await
        .unwrap();
    assert_eq!(q, "script");
    let row = browser
        .until_text("#events-rows .event-row", "html-probe")
        .await;
    assert!(row.contains("<script>window.__pwned=1</script>"), "{row}");

    browser
        .element("#events-rows .event-row")
        .await
        .click()
        .await
        .unwrap();
    let details = browser.until_text(".event-details", "<script>").await;
    assert_eq!(details, DETAILS);
    let metadata = browser.until_text(".event-metadata", "<img src=x").await;
    assert!(metadata.contains("<b>bold</b>"), "{metadata}");
    let page = browser.text("#view").await;
    assert!(page.contains("<script>window.__pwned=1</script>"), "{page}");

    let safe: Value = browser
        .client
        .execute(
            "return [window.__pwned === undefined, \
             document.querySelectorAll('#view script, #view img, #view b').length]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        safe,
        json!([true, 0]),
        "HTML from the event became elements"
    );
    browser.screenshot("expanded").await;

    // A search that matches nothing says so; the severity filter is kept in the link.
    browser
        .open(&node, "#/events?q=script&severity=low&hours=24")
        .await;
    browser
        .until_text("#events-status", "No events match")
        .await;
    browser.close().await;
}
