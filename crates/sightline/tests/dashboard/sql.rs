//! The SQL console: the e-commerce `session_stats` example typed in and created, its rows
//! followed live while records are produced to its topic (one row per session, updated in
//! place), read back with a pull query; a syntax error is shown at its line and column.

use fantoccini::Locator;
use reqwest::Method;
use serde_json::{Value, json};

use crate::actions::{click, login_and_open};
use crate::browser::{Browser, Node};

const SESSION_STATS: &str = "CREATE STREAM events_stream (
    session_id VARCHAR, user_id VARCHAR, event_type VARCHAR, cart_total DOUBLE, timestamp BIGINT
) WITH (KAFKA_TOPIC='ecommerce.events', VALUE_FORMAT='JSON', TIMESTAMP='timestamp');

CREATE TABLE session_stats AS
  SELECT session_id,
         LATEST_BY_OFFSET(user_id) AS user_id,
         COUNT(*) AS events_count,
         MAX(cart_total) AS cart_value,
         SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchase_count
  FROM events_stream
  GROUP BY session_id
  EMIT CHANGES;";

const BROKEN: &str = "CREATE TABLE broken AS\n  SELECT session_id FROM WHERE;";

fn record(session: &str, user: &str, kind: &str, cart: f64, i: i64) -> Value {
    json!({"key": session, "value": {"session_id": session, "user_id": user, "event_type": kind,
           "cart_total": cart, "timestamp": 1_700_000_000_000_i64 + i * 10}})
}

async fn produce(node: &Node, records: Vec<Value>) {
    let (status, answer) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/topics/ecommerce.events/records",
            Some(Value::Array(records)),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test]
async fn sql_console_creates_a_query_shows_live_rows_and_marks_syntax_errors() {
    let node = Node::start("[stream]\ncheckpoint_interval_ms = 100\n").await;
    let mut browser = Browser::start("sql-console").await;
    login_and_open(&browser, &node, "engineer", "#/sql").await;
    browser.until_text("#queries-rows", "No streams").await;

    let editor = browser.element("#sql-editor").await;
    editor.send_keys(SESSION_STATS).await.unwrap();
    click(&browser, "#sql-submit").await;
    browser
        .until_text("#sql-created", "table session_stats")
        .await;
    let listed = browser
        .until_text(
            "#queries-rows tr[data-name='session_stats']",
            "ecommerce.events",
        )
        .await;
    assert!(listed.contains("table"), "{listed}");

    // Watch it, then produce: rows appear, one per session, updated in place.
    click(&browser, "[data-watch='session_stats']").await;
    browser.until_text("#live-rows-state", "connected").await;
    produce(
        &node,
        vec![
            record("s1", "u1", "product_viewed", 10.5, 0),
            record("s2", "u2", "added_to_cart", 42.0, 1),
            record("s1", "u1", "purchase", 99.5, 2),
        ],
    )
    .await;
    // Rows are keyed by the GROUP BY values (a JSON array). Columns: key, session_id,
    // user_id, events_count, cart_value, purchase_count, updated.
    let cell = |session: &str, column: usize| {
        format!("#live-rows-table tr[data-key='[\"{session}\"]'] td:nth-child({column})")
    };
    browser
        .until("session s1 with both of its events", || async {
            let count = browser.text(&cell("s1", 4)).await;
            let cart = browser.text(&cell("s1", 5)).await;
            (count == "2" && cart == "99.5").then_some(())
        })
        .await;
    assert_eq!(browser.text(&cell("s1", 3)).await, "u1");
    assert_eq!(browser.text(&cell("s1", 6)).await, "1");
    browser.until_text(&cell("s2", 5), "42").await;
    produce(&node, vec![record("s2", "u2", "purchase", 50.0, 3)]).await;
    browser
        .until("session s2 updated in place", || async {
            let count = browser.text(&cell("s2", 4)).await;
            let cart = browser.text(&cell("s2", 5)).await;
            (count == "2" && cart == "50").then_some(())
        })
        .await;
    let rows = browser
        .client
        .find_all(Locator::Css("#live-rows-table tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "one row per session");
    browser.screenshot("live-rows").await;

    // A pull query reads the table as the node stores it.
    browser
        .element("#pull-editor")
        .await
        .send_keys("SELECT * FROM session_stats WHERE session_id = 's1'")
        .await
        .unwrap();
    click(&browser, "#pull-run").await;
    browser.until_text("#pull-result", "99.5").await;
    assert!(!browser.text("#pull-result").await.contains("s2"));

    // Dropping the stream a query reads is refused, and said why.
    click(&browser, "[data-drop='events_stream']").await;
    browser
        .until_text(
            "#queries-rows tr[data-name='events_stream']",
            "another query reads it",
        )
        .await;

    // A syntax error: where the node says, marked in the editor.
    let (status, problem) = node
        .call(
            "engineer",
            Method::POST,
            "/api/v1/queries",
            Some(json!({ "sql": BROKEN })),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let at = format!(
        "line {}, column {}",
        problem["line"].as_u64().unwrap(),
        problem["column"].as_u64().unwrap()
    );
    editor.clear().await.unwrap();
    editor.send_keys(BROKEN).await.unwrap();
    click(&browser, "#sql-submit").await;
    browser.until_text("#sql-error-position", &at).await;
    assert_eq!(
        editor.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    let pointer = browser.text("#sql-error-pointer").await;
    assert!(
        pointer.contains("SELECT session_id FROM WHERE") && pointer.contains('^'),
        "{pointer}"
    );
    browser.screenshot("syntax-error").await;
    browser.close().await;
}
