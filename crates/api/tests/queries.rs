//! Continuous SQL end to end: the e-commerce example as written in the issue — records
//! posted to a user topic, a stream and a table defined over HTTP, rows pushed over SSE and
//! a WebSocket, pull queries answered from the store — and the definitions, the rows and
//! the query's state surviving a restart without double counting.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::TestApp;
use futures::StreamExt as _;
use serde_json::{Value, json};

const SESSION_STATS: &str = "
CREATE STREAM events_stream (
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
  EMIT CHANGES;
";

#[derive(Clone, Debug, Default, PartialEq)]
struct Expected {
    user_id: String,
    events: i64,
    cart: f64,
    purchases: i64,
}

/// Deterministic sessions: `n` records spread over `sessions` sessions.
fn records(n: usize, sessions: usize, seed: usize) -> (Vec<Value>, Vec<(String, Value)>) {
    let kinds = [
        "product_viewed",
        "added_to_cart",
        "checkout_started",
        "purchase",
    ];
    let mut out = Vec::new();
    let mut kv = Vec::new();
    for i in 0..n {
        let s = (i * 7 + seed) % sessions;
        let session = format!("s{s}");
        let value = json!({
            "session_id": session,
            "user_id": format!("u{}", (i + seed) % 5),
            "event_type": kinds[(i + s) % 4],
            "cart_total": ((i * 13 + seed) % 200) as f64 + 0.5,
            "timestamp": 1_700_000_000_000_i64 + i as i64 * 10,
        });
        out.push(json!({ "key": session, "value": value }));
        kv.push((session, value));
    }
    (out, kv)
}

fn fold(expected: &mut BTreeMap<String, Expected>, kv: &[(String, Value)]) {
    for (session, v) in kv {
        let e = expected.entry(session.clone()).or_default();
        e.user_id = v["user_id"].as_str().unwrap().to_owned();
        e.events += 1;
        e.cart = e.cart.max(v["cart_total"].as_f64().unwrap());
        e.purchases += i64::from(v["event_type"] == "purchase");
    }
}

fn as_expected(row: &Value) -> Expected {
    Expected {
        user_id: row["user_id"].as_str().unwrap_or_default().to_owned(),
        events: row["events_count"].as_i64().unwrap_or(-1),
        cart: row["cart_value"].as_f64().unwrap_or(-1.0),
        purchases: row["purchase_count"].as_i64().unwrap_or(-1),
    }
}

async fn pull(app: &TestApp, sql: &str) -> reqwest::Response {
    app.post_json("/api/v1/query", &json!({ "sql": sql })).await
}

/// Pulls the whole table until it equals `expected` (the query runs asynchronously).
async fn wait_for_table(app: &TestApp, expected: &BTreeMap<String, Expected>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = pull(app, "SELECT * FROM session_stats").await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        let got: BTreeMap<String, Expected> = body["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["session_id"].as_str().unwrap().to_owned(), as_expected(r)))
            .collect();
        if &got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "table never matched: {} rows vs {} expected; first diff: {:?}",
            got.len(),
            expected.len(),
            expected.iter().find(|(k, v)| got.get(*k) != Some(v))
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn post_records(app: &TestApp, body: &[Value]) {
    let res = app
        .post_json(
            "/api/v1/topics/ecommerce.events/records",
            &Value::Array(body.to_vec()),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

#[tokio::test]
async fn session_stats_example_runs_as_written_and_survives_a_restart() {
    let tweak = |c: &mut sightline_api::NodeConfig| c.stream.checkpoint_interval_ms = 100;
    let app = TestApp::spawn_with(tweak).await;

    let res = app
        .post_json("/api/v1/queries", &json!({ "sql": SESSION_STATS }))
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let created: Value = res.json().await.unwrap();
    let kinds: Vec<&str> = created["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["stream", "table"]);

    // A push query, opened before any record exists: it must see rows as they happen.
    let sse = app
        .client
        .get(app.url("/api/v1/queries/session_stats/changes"))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 200);
    assert!(
        sse.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut sse = sse.bytes_stream();

    let (body, kv) = records(2_000, 40, 0);
    post_records(&app, &body).await;
    let mut expected = BTreeMap::new();
    fold(&mut expected, &kv);
    wait_for_table(&app, &expected).await;

    // EMIT CHANGES: one pushed row per input record, the last of each session final.
    let mut text = String::new();
    let mut pushed = 0;
    let deadline = Instant::now() + Duration::from_secs(30);
    while pushed < 2_000 {
        let chunk = tokio::time::timeout_at(deadline.into(), sse.next())
            .await
            .expect("push rows arrive")
            .unwrap()
            .unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
        pushed = text.matches("event: row").count();
    }
    let last_s0 = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .rfind(|c| c["key"] == "[\"s0\"]")
        .unwrap();
    assert_eq!(as_expected(&last_s0["row"]), expected["s0"]);

    // A key lookup and a filtered scan.
    let res = pull(&app, "SELECT * FROM session_stats WHERE session_id = 's7'").await;
    let rows: Value = res.json().await.unwrap();
    assert_eq!(rows["rows"].as_array().unwrap().len(), 1);
    assert_eq!(as_expected(&rows["rows"][0]), expected["s7"]);
    let most = expected.values().map(|e| e.purchases).max().unwrap();
    let matching: Vec<&String> = expected
        .iter()
        .filter(|(_, e)| e.purchases >= most)
        .map(|(k, _)| k)
        .collect();
    let res = pull(
        &app,
        &format!(
            "SELECT session_id, events_count FROM session_stats WHERE purchase_count >= {most} LIMIT 3"
        ),
    )
    .await;
    let rows: Value = res.json().await.unwrap();
    let rows = rows["rows"].as_array().unwrap();
    assert_eq!(rows.len(), matching.len().min(3), "{rows:?}");
    for row in rows {
        assert_eq!(
            row.as_object().unwrap().len(),
            2,
            "projection applied: {row}"
        );
        assert!(matching.contains(&&row["session_id"].as_str().unwrap().to_owned()));
    }

    // Listed with their topics; the output topic holds one row per input record.
    let list: Value = app.get("/api/v1/queries").await.json().await.unwrap();
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["events_stream", "session_stats"]);
    assert_eq!(list["items"][1]["output_topic"], "session_stats");
    let topics: Value = app.get("/api/v1/topics").await.json().await.unwrap();
    let count = |name: &str| {
        topics["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .map(|t| t["records"].as_u64().unwrap())
    };
    assert_eq!(count("ecommerce.events"), Some(2_000));
    assert_eq!(count("session_stats"), Some(2_000));

    // Restart on the same data directory: definitions, rows and state are all back, and
    // new records continue the aggregates (no record counted twice, none lost).
    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, tweak).await;
    let list: Value = app.get("/api/v1/queries").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    wait_for_table(&app, &expected).await;
    let (body, kv) = records(500, 40, 3);
    post_records(&app, &body).await;
    fold(&mut expected, &kv);
    wait_for_table(&app, &expected).await;
    app.shutdown().await;
}

#[tokio::test]
async fn bad_sql_bad_records_and_drops_are_handled_precisely() {
    let app = TestApp::spawn().await;

    // A positioned SQL error.
    let res = app
        .post_json(
            "/api/v1/queries",
            &json!({ "sql": "CREATE STREAM s (a VARCHAR) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');\nCREATE TABLE t AS SELECT a, COUNT(*) AS n FROM nowhere GROUP BY a;" }),
        )
        .await;
    assert_eq!(res.status(), 400);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["line"], 2, "{problem}");
    assert!(problem["column"].as_u64().unwrap() > 1);
    assert!(
        problem["detail"].as_str().unwrap().contains("nowhere"),
        "{problem}"
    );
    // Nothing of the failed script was kept.
    let list: Value = app.get("/api/v1/queries").await.json().await.unwrap();
    assert!(list["items"].as_array().unwrap().is_empty());

    let res = app
        .post_json(
            "/api/v1/queries",
            &json!({ "sql": "CREATE STREAM s (a VARCHAR, n BIGINT) WITH (KAFKA_TOPIC='in', VALUE_FORMAT='JSON');
                             CREATE TABLE t AS SELECT a, SUM(n) AS total FROM s GROUP BY a EMIT CHANGES;" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    // A taken name is a conflict.
    let res = app
        .post_json(
            "/api/v1/queries",
            &json!({ "sql": "CREATE TABLE t AS SELECT a, COUNT(*) AS c FROM s GROUP BY a;" }),
        )
        .await;
    assert_eq!(
        res.status(),
        400,
        "the catalog refuses a taken name with its position"
    );

    // Bare records keyed by a field; one with a wrong type goes to the dead-letter topic.
    let body = "{\"a\":\"x\",\"n\":1}\n{\"a\":\"x\",\"n\":2}\n{\"a\":\"y\",\"n\":\"three\"}\n";
    let res = app
        .client
        .post(app.url("/api/v1/topics/in/records?key=a"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["accepted"], 3);
    assert_eq!(report["offsets"].as_array().unwrap().len(), 3);
    // A record that is not an object is refused with its index, the rest appended.
    let res = app
        .post_json("/api/v1/topics/in/records", &json!([{"a": "z", "n": 5}, 7]))
        .await;
    assert_eq!(res.status(), 200);
    let report: Value = res.json().await.unwrap();
    assert_eq!(
        (report["accepted"].clone(), report["rejected"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(report["results"][1]["error"]["field"], "$");
    // Built-in topics are refused.
    let res = app
        .post_json("/api/v1/topics/metrics.raw/records", &json!([{"a": 1}]))
        .await;
    assert_eq!(res.status(), 400);

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let res = pull(&app, "SELECT * FROM t WHERE a = 'x'").await;
        let body: Value = res.json().await.unwrap();
        let topics: Value = app.get("/api/v1/topics").await.json().await.unwrap();
        let dead = topics["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == "t.dlq")
            .map_or(0, |t| t["records"].as_u64().unwrap());
        if body["rows"][0]["total"] == 3 && dead == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "rows {body}, dead letters {dead}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A stream read by a table cannot be dropped; the table can, and its rows go with it.
    let res = app
        .client
        .delete(app.url("/api/v1/queries/s"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = app
        .client
        .delete(app.url("/api/v1/queries/t"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = pull(&app, "SELECT * FROM t").await;
    assert_eq!(res.status(), 400, "unknown table");
    let res = app
        .client
        .delete(app.url("/api/v1/queries/t"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.shutdown().await;
}

#[tokio::test]
async fn push_query_over_websocket_streams_rows_in_order() {
    let app = TestApp::spawn().await;
    let res = app
        .post_json(
            "/api/v1/queries",
            &json!({ "sql": "CREATE STREAM clicks (page VARCHAR, ms BIGINT) WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON');
                             CREATE TABLE per_page AS SELECT page, COUNT(*) AS n, MAX(ms) AS slowest FROM clicks GROUP BY page EMIT CHANGES;" }),
        )
        .await;
    assert_eq!(res.status(), 201);
    let url = format!(
        "{}/api/v1/queries/per_page/changes",
        app.base.replacen("http", "ws", 1)
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let body: Vec<Value> = (0..50)
        .map(|i| json!({ "key": "home", "value": { "page": "home", "ms": i } }))
        .collect();
    let res = app
        .post_json("/api/v1/topics/clicks/records", &Value::Array(body))
        .await;
    assert_eq!(res.status(), 200);

    // One message per record, counts rising one by one on the single key's partition.
    let mut seen = Vec::new();
    while seen.len() < 50 {
        let msg = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a pushed row")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = msg {
            let change: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(change["key"], "[\"home\"]");
            seen.push(change["row"]["n"].as_i64().unwrap());
        }
    }
    assert_eq!(seen, (1..=50).collect::<Vec<_>>());
    app.shutdown().await;
}
