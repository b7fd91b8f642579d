//! A playbook run that waits for a person: a trigger rule fires on a real event, the run
//! pauses before its approval-gated step and sends the approval request (with its
//! single-use token) to a chat webhook — here a local receiver. A viewer sees the waiting
//! run with nothing to click; an approver whose pasted token is wrong is told so in place,
//! then approves with one click (signed in as an approver) and watches the remaining steps
//! complete; the emailed token is spent with it.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::actions::{click, login_and_open};
use crate::browser::{Browser, Node};

/// A chat webhook: every POST body it receives (as JSON) goes to the channel.
async fn webhook_receiver() -> (String, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/approvals", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then exactly content-length bytes of body.
                let body = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break buf[end + 4..end + 4 + length].to_vec();
                    }
                };
                let _ = socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
                if let Ok(value) = serde_json::from_slice(&body) {
                    let _ = tx.send(value).await;
                }
            });
        }
    });
    (url, rx)
}

/// The token in an approval message (`… {"token":"<64 hex>"} …`).
fn token_in(message: &str) -> String {
    let start = message
        .find("\"token\":\"")
        .expect("a token in the message")
        + 9;
    message[start..start + 64].to_owned()
}

#[tokio::test]
async fn approve_a_pending_execution_as_an_approver_and_see_it_complete() {
    let (hook, mut approvals) = webhook_receiver().await;
    let node = Node::start(&format!(
        r#"
[respond.playbooks]
approval_channel = {{ type = "webhook", url = "{hook}", format = "slack" }}
[respond.playbooks.executors.http]
allow_private = ["127.0.0.0/8"]
"#
    ))
    .await;

    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/rules/responses",
            Some(json!({
                "id": "restart-checkout", "name": "Restart checkout",
                "description": "look, restart (approved), tell",
                "steps": [
                    {"name": "diagnose", "kind": "diagnostic", "action": {"type": "noop"}},
                    {"name": "restart", "kind": "remediation", "approval_required": true,
                     "action": {"type": "noop", "sleep_ms": 300}},
                    {"name": "tell", "kind": "notification", "action": {"type": "noop"}}
                ]
            })),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/rules/triggers",
            Some(json!({
                "name": "checkout pool", "applies_to": "events",
                "conditions": {"service_name": "checkout", "event_type": "ERROR"},
                "response_template_id": "restart-checkout"
            })),
        )
        .await;
    assert_eq!(status, 201, "{answer}");
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

    // The rule fires, the run pauses, the approval request arrives at the webhook.
    let message = tokio::time::timeout(Duration::from_secs(30), approvals.recv())
        .await
        .unwrap_or_else(|_| panic!("no approval request; node log:\n{}", node.log()))
        .expect("receiver open");
    let token = token_in(message["text"].as_str().expect("slack text"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let id = loop {
        let (_, list) = node
            .call(
                "viewer",
                Method::GET,
                "/api/v1/executions?status=awaiting_approval",
                None,
            )
            .await;
        if let Some(id) = list["items"][0]["id"].as_str() {
            break id.to_owned();
        }
        assert!(Instant::now() < deadline, "no paused execution: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // A viewer finds the waiting run, but cannot decide.
    let mut browser = Browser::start("execution-approval").await;
    login_and_open(&browser, &node, "viewer", "#/executions").await;
    browser
        .until_text("#executions-rows", "Restart checkout")
        .await;
    assert!(
        browser
            .text("#executions-rows")
            .await
            .contains("awaiting approval")
    );
    click(&browser, "#executions-rows a.execution-link").await;
    browser.until_text("#approval", "waits for approval").await;
    for button in ["#approve", "#reject"] {
        assert_eq!(
            browser
                .element(button)
                .await
                .attr("disabled")
                .await
                .unwrap()
                .as_deref(),
            Some("true"),
            "{button} for a viewer"
        );
    }
    assert_eq!(
        browser
            .element("#steps li[data-index='0']")
            .await
            .attr("data-status")
            .await
            .unwrap()
            .as_deref(),
        Some("succeeded")
    );
    browser.screenshot("viewer-waiting").await;

    // The approver: a wrong token is refused in place; one click as the approver resumes
    // the run.
    click(&browser, "#logout").await;
    login_and_open(&browser, &node, "approver", &format!("#/executions/{id}")).await;
    let input = browser.element("#approval-token").await;
    input.send_keys(&"0".repeat(64)).await.unwrap();
    click(&browser, "#approve").await;
    browser
        .until_text("#approval-state", "does not belong")
        .await;
    browser.screenshot("approver-wrong-token").await;
    input.clear().await.unwrap();
    click(&browser, "#approve").await;

    // The page follows the run to its end by itself.
    browser.until_text("#execution-status", "succeeded").await;
    let steps = browser
        .client
        .find_all(Locator::Css("#steps li.step[data-status='succeeded']"))
        .await
        .unwrap();
    assert_eq!(steps.len(), 3);
    assert!(
        browser
            .text("#steps")
            .await
            .contains("approved by approver")
    );
    assert!(!browser.visible("#approval").await);
    browser.until_text("#execution-rule", "checkout pool").await;
    let (_, done) = node
        .call(
            "viewer",
            Method::GET,
            &format!("/api/v1/executions/{id}"),
            None,
        )
        .await;
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["steps"][1]["approved_by"], "approver");
    // The token from the chat message was spent by the click.
    let (status, _) = node
        .call(
            "approver",
            Method::POST,
            &format!("/api/v1/executions/{id}/approve"),
            Some(json!({"token": token})),
        )
        .await;
    assert_eq!(status, 409);
    browser.screenshot("approved-and-done").await;
    browser.close().await;
}
