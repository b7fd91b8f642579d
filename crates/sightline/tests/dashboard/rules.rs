//! Trigger rules in the dashboard: a faulty condition is refused by the node and the
//! refusal is shown next to the condition editor; the fixed rule is stored and listed, and
//! can be backtested.

use reqwest::Method;
use serde_json::json;

use crate::actions::{click, login_and_open};
use crate::browser::{Browser, Node};

const BAD_CONDITION: &str = r#"{"metadata.cpu": {"$gtx": 90}}"#;
const GOOD_CONDITION: &str = r#"{"metadata.cpu": {"$gt": 90}}"#;

#[tokio::test]
async fn create_a_rule_with_an_invalid_condition_and_see_the_error_in_place() {
    let node = Node::start("").await;
    // What the node says about the faulty condition, asked directly.
    let (status, problem) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/rules/triggers",
            Some(json!({"name": "cpu hot", "applies_to": "events",
                        "conditions": serde_json::from_str::<serde_json::Value>(BAD_CONDITION).unwrap()})),
        )
        .await;
    assert_eq!(status, 422, "{problem}");
    let field = problem["errors"][0]["field"].as_str().unwrap().to_owned();
    let reason = problem["errors"][0]["reason"].as_str().unwrap().to_owned();
    assert!(field.starts_with("conditions."), "{field}");

    let mut browser = Browser::start("rules-invalid-condition").await;
    login_and_open(&browser, &node, "engineer", "#/rules").await;
    browser.until_text("#rules-rows", "No trigger rules").await;
    click(&browser, "#rule-new").await;
    browser
        .element("#rule-name")
        .await
        .send_keys("cpu hot")
        .await
        .unwrap();
    let editor = browser.element("#rule-conditions").await;
    editor.clear().await.unwrap();
    editor.send_keys(BAD_CONDITION).await.unwrap();
    click(&browser, "#rule-submit").await;

    // The node's words, next to the editor, which is marked invalid.
    let shown = browser.until_text("#rule-conditions-error", &reason).await;
    assert!(shown.contains(&field), "{shown} names {field}");
    assert_eq!(
        editor.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert!(!browser.visible("#rule-form-error").await);
    let (_, rules) = node
        .call("viewer", Method::GET, "/api/v1/rules/triggers", None)
        .await;
    assert_eq!(rules["items"], json!([]), "nothing was created");
    browser.screenshot("condition-refused").await;

    // Broken JSON never leaves the browser; it is marked in the same place.
    editor.clear().await.unwrap();
    editor.send_keys(r#"{"metadata.cpu": "#).await.unwrap();
    click(&browser, "#rule-submit").await;
    browser
        .until_text("#rule-conditions-error", "not valid JSON")
        .await;

    // Fixed: stored, listed, and the form is gone.
    editor.clear().await.unwrap();
    editor.send_keys(GOOD_CONDITION).await.unwrap();
    click(&browser, "#rule-submit").await;
    browser.until_text("#rules-rows", "cpu hot").await;
    assert!(!browser.visible("#rule-form").await);
    let (_, rules) = node
        .call("viewer", Method::GET, "/api/v1/rules/triggers", None)
        .await;
    assert_eq!(rules["items"][0]["name"], "cpu hot");
    assert_eq!(rules["items"][0]["conditions"]["metadata.cpu"]["$gt"], 90);

    // A backtest over the (empty) history: a report, nothing fired.
    click(
        &browser,
        "#rules-rows button[title='What it would have done']",
    )
    .await;
    click(&browser, "#backtest-run").await;
    browser.until_text("#backtest-fired", "0").await;
    browser
        .until_text("#backtest-result", "would not have fired")
        .await;
    browser.screenshot("rule-listed-and-backtested").await;

    // Playbooks: a step named twice is refused next to the steps editor; fixed, the
    // playbook is listed and its dry-run shows every step as it would run.
    click(&browser, "#tab-playbooks").await;
    browser.until_text("#playbooks-rows", "No playbooks").await;
    click(&browser, "#playbook-new").await;
    browser
        .element("#playbook-name")
        .await
        .send_keys("Restart checkout")
        .await
        .unwrap();
    let steps = browser.element("#playbook-steps").await;
    steps.clear().await.unwrap();
    steps.send_keys(TWICE_NAMED_STEPS).await.unwrap();
    click(&browser, "#playbook-submit").await;
    browser
        .until_text("#playbook-steps-error", "steps[1].name")
        .await;
    assert_eq!(
        steps.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    steps.clear().await.unwrap();
    steps
        .send_keys(&TWICE_NAMED_STEPS.replacen("look", "restart", 1))
        .await
        .unwrap();
    click(&browser, "#playbook-submit").await;
    browser
        .until_text("#playbooks-rows", "Restart checkout")
        .await;
    click(
        &browser,
        "#playbooks-rows button[title^='Render every step']",
    )
    .await;
    click(&browser, "#dry-run-run").await;
    let plan = browser.until_text("#dry-run-result", "dry run").await;
    assert!(plan.contains("look") && plan.contains("restart"), "{plan}");
    assert!(plan.contains("waits for an approver"), "{plan}");
    browser.screenshot("playbook-dry-run").await;
    browser.close().await;
}

/// Two steps called `look`: the second name is refused.
const TWICE_NAMED_STEPS: &str = r#"[{"name": "look", "kind": "diagnostic", "action": {"type": "noop"}},
{"name": "look", "kind": "remediation", "approval_required": true, "action": {"type": "noop"}}]"#;
