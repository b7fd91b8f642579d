//! `/api/v1/stream`: what is pushed, what is filtered, and the per-node connection cap.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestApp, now_ms};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

fn event(id: &str, service: &str) -> Value {
    json!({
        "event_id": id,
        "service_name": service,
        "event_type": "ERROR",
        "severity": "high",
        "timestamp": now_ms(),
        "details": format!("<script>{id}</script>"),
    })
}

fn ws_url(app: &TestApp, path: &str) -> String {
    app.url(path).replacen("http", "ws", 1)
}

#[tokio::test]
async fn websocket_pushes_new_records_of_the_chosen_topics_and_service() {
    let app = TestApp::spawn().await;
    // Before the client connects: not pushed (the stream starts at the end).
    let res = app
        .post_json("/api/v1/events/batch", &json!([event("old-1", "checkout")]))
        .await;
    assert!(res.status().is_success());

    let (mut socket, _) = tokio_tungstenite::connect_async(ws_url(
        &app,
        "/api/v1/stream?topics=system-events&service=checkout",
    ))
    .await
    .unwrap();
    let res = app
        .post_json(
            "/api/v1/events/batch",
            &json!([
                event("new-1", "payments"),
                event("new-2", "checkout"),
                event("new-3", "checkout"),
            ]),
        )
        .await;
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());

    let mut ids = Vec::new();
    while ids.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("two checkout events within 10 s")
            .unwrap()
            .unwrap();
        let Message::Text(text) = msg else { continue };
        let m: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(m["topic"], "system-events");
        assert_eq!(m["value"]["service_name"], "checkout", "{m}");
        assert!(m["offset"].is_u64() && m["partition"].is_u64());
        // Text stays text: the client decides how to render it.
        assert!(
            m["value"]["details"]
                .as_str()
                .unwrap()
                .starts_with("<script>")
        );
        ids.push(m["value"]["event_id"].as_str().unwrap().to_owned());
    }
    ids.sort();
    assert_eq!(ids, ["new-2", "new-3"]);
    app.shutdown().await;
}

#[tokio::test]
async fn server_sent_events_name_each_message_by_its_topic() {
    let app = TestApp::spawn().await;
    let res = app
        .client
        .get(app.url("/api/v1/stream?topics=system-events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut body = res.bytes_stream();
    let posted = app
        .post_json("/api/v1/events/batch", &json!([event("sse-1", "search")]))
        .await;
    assert!(posted.status().is_success());
    let mut text = String::new();
    while !text.contains("sse-1") {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the event within 10 s")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: system-events"), "{text}");
    app.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_refused_until_one_closes() {
    let app = TestApp::spawn_with(|c| c.api.max_live_connections = 1).await;
    let (socket, _) = tokio_tungstenite::connect_async(ws_url(&app, "/api/v1/stream"))
        .await
        .unwrap();
    let res = app.get("/api/v1/stream").await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    // Push queries share the budget.
    let res = app.get("/api/v1/queries/any/changes").await;
    assert_eq!(res.status(), 503);

    drop(socket);
    // The server notices the close and frees the slot.
    let mut freed = false;
    for _ in 0..100 {
        if tokio_tungstenite::connect_async(ws_url(&app, "/api/v1/stream"))
            .await
            .is_ok()
        {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(freed, "the slot was never freed");
    app.shutdown().await;
}

#[tokio::test]
async fn unknown_topics_and_parameters_are_refused_with_the_field() {
    let app = TestApp::spawn().await;
    let res = app.get("/api/v1/stream?topics=anomalies,secrets").await;
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "topics", "{body}");
    let res = app.get("/api/v1/stream?service=").await;
    assert_eq!(res.status(), 422);
    let res = app.get("/api/v1/stream?topic=anomalies").await;
    assert_eq!(res.status(), 400);
    app.shutdown().await;
}
