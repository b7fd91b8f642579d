//! End to end over real sockets: ingest through every route, read back through the query
//! API, and refuse bad input precisely without losing the good.
#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, now_ms};
use serde_json::{Value, json};

fn event(id: &str, service: &str, severity: &str, ts: i64) -> Value {
    json!({
        "event_id": id,
        "service_name": service,
        "event_type": if severity == "info" { "INFO" } else { "ERROR" },
        "timestamp": ts,
        "environment": "production",
        "details": format!("details of {id}"),
        "severity": severity,
        "host": format!("{service}-host-{}", id.len() % 2),
        "metadata": {"k": id},
    })
}

#[tokio::test]
async fn single_event_is_acknowledged_stored_and_traced() {
    let app = TestApp::spawn().await;
    let ts = now_ms() - 1000;
    let res = app
        .client
        .post(app.url("/api/v1/events"))
        .header("x-request-id", "req-abc-123")
        .json(&event("evt-1", "payment-service", "critical", ts))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["x-request-id"], "req-abc-123");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["event_id"], "evt-1");

    app.wait_for_events("service=payment-service", 1).await;
    let stored: Value = app.get("/api/v1/events/evt-1").await.json().await.unwrap();
    assert_eq!(stored["service_name"], "payment-service");
    assert_eq!(stored["severity"], "critical");
    assert_eq!(stored["environment"], "PRODUCTION");
    assert_eq!(stored["timestamp"], ts);
    assert_eq!(stored["correlation_id"], "req-abc-123");
    assert_eq!(stored["source_type"], "http");
    assert_eq!(stored["metadata"]["k"], "evt-1");
    assert!(stored["fingerprint"].as_str().unwrap().starts_with("v1-"));
    assert_eq!(app.get("/api/v1/events/nope").await.status(), 404);
    app.shutdown().await;
}

#[tokio::test]
async fn batch_accepts_valid_items_and_reports_each_invalid_one() {
    let app = TestApp::spawn().await;
    let ts = now_ms();
    let batch = json!([
        event("b-0", "api", "high", ts),
        {"service_name": "api"},
        event("b-2", "api", "low", ts),
        {"service_name": "api", "event_type": "ERROR", "severity": "extreme"},
        event("b-4", "api", "info", ts),
    ]);
    let res = app.post_json("/api/v1/events/batch", &batch).await;
    assert_eq!(res.status(), 202);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["accepted"], 3);
    assert_eq!(report["rejected"], 2);
    assert_eq!(report["results"][1]["status"], "rejected");
    assert_eq!(report["results"][1]["index"], 1);
    assert_eq!(report["results"][1]["error"]["field"], "event_type");
    assert_eq!(report["results"][3]["error"]["field"], "severity");
    assert_eq!(report["results"][4]["event_id"], "b-4");

    // NDJSON, with a blank line and one malformed line.
    let ndjson = format!(
        "{}\n\n{{not json\n{}\n",
        event("n-0", "api", "medium", ts),
        event("n-1", "api", "medium", ts)
    );
    let res = app
        .post_raw("/api/v1/events/batch", "application/x-ndjson", ndjson)
        .await;
    assert_eq!(res.status(), 202);
    let report: Value = res.json().await.unwrap();
    assert_eq!(
        (report["accepted"].as_u64(), report["rejected"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(report["results"][1]["error"]["field"], "$");

    let stored = app.wait_for_events("service=api", 5).await;
    let mut ids: Vec<&str> = stored
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["b-0", "b-2", "b-4", "n-0", "n-1"]);
    app.shutdown().await;
}

#[tokio::test]
async fn atomic_batch_with_an_invalid_item_stores_nothing() {
    let app = TestApp::spawn().await;
    let ts = now_ms();
    let batch = json!([event("a-0", "atomic", "high", ts), {"service_name": 7, "event_type": "X"}]);
    let res = app
        .post_json("/api/v1/events/batch?atomic=true", &batch)
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["status"], 422);
    assert_eq!(problem["errors"][0]["index"], 1);
    assert_eq!(problem["errors"][0]["field"], "service_name");
    // A later event arrives; the atomic batch's valid item never does.
    app.post_json("/api/v1/events", &event("sentinel", "atomic", "info", ts))
        .await;
    let stored = app.wait_for_events("service=atomic", 1).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["event_id"], "sentinel");
    app.shutdown().await;
}

#[tokio::test]
async fn webhook_and_metrics_routes_store_what_they_accept() {
    let app = TestApp::spawn().await;
    let hook = json!({
        "source": "grafana", "event_type": "alert", "severity": "warning", "host": "web-7",
        "service": "checkout", "message": "p99 latency above 800 ms",
        "timestamp": "2026-11-23T10:00:00Z", "metadata": {"environment": "staging", "rule": "p99"}
    });
    let res = app.post_json("/api/v1/events/webhook", &hook).await;
    assert_eq!(res.status(), 202);
    let missing = app
        .post_json("/api/v1/events/webhook", &json!({"source": "x"}))
        .await;
    assert_eq!(missing.status(), 422);

    let stored = app.wait_for_events("service=checkout", 1).await;
    let e = &stored[0];
    assert_eq!(e["details"], "p99 latency above 800 ms");
    assert_eq!(e["source"], "grafana");
    assert_eq!(e["source_type"], "webhook");
    assert_eq!(e["severity"], "medium");
    assert_eq!(e["host"], "web-7");
    assert_eq!(e["environment"], "STAGING");
    assert_eq!(e["event_type"], "ALERT");
    assert_eq!(e["timestamp"], 1_795_428_000_000i64);

    let ts = now_ms();
    let one = json!({"service_name": "db", "metric_type": "cpu_usage", "value": 91.5, "timestamp": ts, "tags": {"host": "db-1"}});
    assert_eq!(app.post_json("/api/metrics", &one).await.status(), 202);
    let many = json!([
        {"service_name": "db", "metric_type": "cpu_usage", "value": 92.0, "timestamp": ts + 1},
        {"service_name": "db", "metric_type": "latency_ms", "value": 12},
        {"service_name": "db", "metric_type": "cpu_usage", "value": "hot"},
    ]);
    let res = app.post_json("/api/v1/metrics", &many).await;
    assert_eq!(res.status(), 202);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["results"][2]["error"]["field"], "value");

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page: Value = app
            .get("/api/v1/metrics?service=db&metric=cpu_usage")
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        if items.len() == 2 {
            assert_eq!(items[0]["value"], 92.0, "newest first");
            assert_eq!(items[1]["tags"]["host"], "db-1");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "metrics not stored: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn filters_and_pagination_are_exact() {
    let app = TestApp::spawn().await;
    let now = now_ms();
    let services = ["payment-service", "order-service", "auth-service"];
    let severities = ["critical", "high", "medium", "low", "info"];
    let mut all = Vec::new();
    for i in 0..250usize {
        // Some timestamps collide on purpose: pagination must order ties by id.
        let ts = now - 1000 * (i as i64 / 3) - if i >= 240 { 30 * 3_600_000 } else { 0 };
        let mut e = event(&format!("f-{i:03}"), services[i % 3], severities[i % 5], ts);
        if i % 4 == 0 {
            e["details"] = json!(format!("disk 100% full_{i} on /var"));
        }
        all.push(e);
    }
    assert_eq!(
        app.post_json("/api/v1/events/batch", &json!(all))
            .await
            .status(),
        202
    );
    app.wait_for_events("", 250).await;

    let expect = |pred: &dyn Fn(&Value) -> bool| {
        let mut v: Vec<&Value> = all.iter().filter(|e| pred(e)).collect();
        v.sort_by(|a, b| {
            (b["timestamp"].as_i64(), b["event_id"].as_str())
                .cmp(&(a["timestamp"].as_i64(), a["event_id"].as_str()))
        });
        v.iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let ids = |v: Vec<Value>| {
        v.iter()
            .map(|e| e["event_id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    assert_eq!(ids(app.all_events("", 7).await), expect(&|_| true));
    assert_eq!(
        ids(app
            .all_events("severity=critical&service=payment-service", 5)
            .await),
        expect(&|e| e["severity"] == "critical" && e["service_name"] == "payment-service")
    );
    assert_eq!(
        ids(app
            .all_events("severity=critical,high&hours=24", 1000)
            .await),
        expect(
            &|e| (e["severity"] == "critical" || e["severity"] == "high")
                && e["timestamp"].as_i64().unwrap() >= now - 24 * 3_600_000
        )
    );
    assert_eq!(
        ids(app
            .all_events("host=order-service-host-1&event_type=error", 1000)
            .await),
        expect(&|e| e["host"] == "order-service-host-1" && e["event_type"] == "ERROR")
    );
    // `%` and `_` in q are literal characters, not wildcards.
    assert_eq!(
        ids(app.all_events("q=100%25%20FULL_", 1000).await),
        expect(&|e| e["details"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("100% full_"))
    );
    assert_eq!(
        ids(app.all_events("q=nothing-matches-this", 10).await),
        Vec::<String>::new()
    );

    let analytics: Value = app
        .get("/api/v1/events/analytics?timerange=24h&groupby=severity")
        .await
        .json()
        .await
        .unwrap();
    let recent: Vec<&Value> = all
        .iter()
        .filter(|e| e["timestamp"].as_i64().unwrap() >= now - 24 * 3_600_000)
        .collect();
    assert_eq!(analytics["total"], recent.len());
    for g in analytics["groups"].as_array().unwrap() {
        let n = recent.iter().filter(|e| e["severity"] == g["key"]).count();
        assert_eq!(g["count"], n, "{g}");
    }
    let bucket_sum: u64 = analytics["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|b| {
            b["counts"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
        })
        .sum();
    assert_eq!(bucket_sum, recent.len() as u64);
    let by_service: Value = app
        .get("/api/v1/events/analytics?timerange=7d&groupby=service")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_service["total"], 250);
    assert_eq!(by_service["groups"].as_array().unwrap().len(), 3);
    app.shutdown().await;
}

#[tokio::test]
async fn query_parameters_are_validated_precisely() {
    let app = TestApp::spawn().await;
    for (query, field) in [
        ("severity=extreme", "severity"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("hours=-3", "hours"),
        ("cursor=%25%25%25", "cursor"),
        ("servce=x", "servce"),
        ("from=yesterday", "from"),
    ] {
        let res = app.get(&format!("/api/v1/events?{query}")).await;
        assert_eq!(res.status(), 400, "{query}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], field, "{query}: {problem}");
    }
    let res = app.get("/api/v1/events/analytics?groupby=colour").await;
    assert_eq!(res.status(), 400);
    // Absurd page sizes are capped, not refused.
    assert_eq!(
        app.get("/api/v1/events?limit=1000000000").await.status(),
        200
    );
    assert_eq!(app.get("/no/such/route").await.status(), 404);
    app.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_refused_precisely_and_the_good_survives() {
    let app = TestApp::spawn_with(|c| c.api.max_body_bytes = 4 * 1024 * 1024).await;
    // Malformed JSON: 400, on the document.
    let res = app
        .post_raw("/api/v1/events", "application/json", "{\"service_name\": ")
        .await;
    assert_eq!(res.status(), 400);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "$");
    // Wrong type and missing field: 422 naming the field.
    let res = app
        .post_json(
            "/api/v1/events",
            &json!({"service_name": "a", "event_type": "ERROR", "timestamp": "soon"}),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<Value>().await.unwrap()["errors"][0]["field"],
        "timestamp"
    );
    let res = app
        .post_json("/api/v1/events", &json!({"event_type": "ERROR"}))
        .await;
    assert_eq!(
        res.json::<Value>().await.unwrap()["errors"][0]["field"],
        "service_name"
    );
    // An array sent to the single-event route is pointed to the batch route.
    assert_eq!(
        app.post_json("/api/v1/events", &json!([])).await.status(),
        400
    );
    // Oversized body: 413 problem, declared or streamed.
    let big = vec![b' '; 5 * 1024 * 1024];
    let res = app
        .post_raw("/api/v1/events/batch", "application/json", big)
        .await;
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..6).map(|_| Ok(vec![b' '; 1024 * 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures_util_stream(chunks));
    let res = app
        .post_raw("/api/v1/events/batch", "application/json", stream)
        .await;
    assert_eq!(res.status(), 413);

    // 10,000 items, every 97th invalid in a different way.
    let ts = now_ms();
    let mut items = Vec::new();
    let mut invalid = Vec::new();
    for i in 0..10_000usize {
        if i % 97 == 0 {
            invalid.push(i);
            items.push(match (i / 97) % 4 {
                0 => json!({"service_name": "bulk", "event_type": "ERROR", "severity": 5}),
                1 => json!({"service_name": "", "event_type": "ERROR"}),
                2 => json!({"service_name": "bulk", "event_type": "ERROR", "metadata": "[1,2]"}),
                _ => json!({"service_name": "bulk", "event_type": "bad type!"}),
            });
        } else {
            items.push(event(&format!("bulk-{i}"), "bulk", "info", ts));
        }
    }
    let res = app.post_json("/api/v1/events/batch", &json!(items)).await;
    assert_eq!(res.status(), 202);
    let report: Value = res.json().await.unwrap();
    assert_eq!(report["accepted"], 10_000 - invalid.len());
    assert_eq!(report["rejected"], invalid.len());
    let rejected: Vec<usize> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "rejected")
        .map(|r| r["index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(rejected, invalid);
    let stored = app
        .wait_for_events("service=bulk", 10_000 - invalid.len())
        .await;
    assert_eq!(stored.len(), 10_000 - invalid.len());
    assert_eq!(app.get("/health").await.status(), 200);
    assert_eq!(app.get("/ready").await.status(), 200);

    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("sightline_ingest_rejected_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("sightline_consumer_lag_records"),
        "{metrics}"
    );
    app.shutdown().await;
}

fn futures_util_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::iter(chunks)
}

#[tokio::test]
async fn saturation_answers_503_with_retry_after_and_loses_nothing_acknowledged() {
    let app = TestApp::spawn_with(|c| c.ingest.max_in_flight_bytes = 64 * 1024).await;
    let ts = now_ms();
    let body = |r: usize| {
        let items: Vec<Value> = (0..2000)
            .map(|i| event(&format!("sat-{r}-{i}"), "sat", "info", ts))
            .collect();
        serde_json::to_vec(&items).unwrap()
    };
    let requests: Vec<_> = (0..24)
        .map(|r| {
            let (client, url, body) =
                (app.client.clone(), app.url("/api/v1/events/batch"), body(r));
            tokio::spawn(async move {
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let (mut accepted, mut refused) = (0u64, 0);
    for r in requests {
        let res = r.await.unwrap();
        match res.status().as_u16() {
            202 => {
                accepted += res.json::<Value>().await.unwrap()["accepted"]
                    .as_u64()
                    .unwrap()
            }
            503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                assert_eq!(res.headers()["content-type"], "application/problem+json");
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        refused > 0,
        "24 concurrent 400 KiB batches against a 64 KiB budget must overflow"
    );
    assert!(accepted > 0);
    let stored = app.wait_for_events("service=sat", accepted as usize).await;
    assert_eq!(
        stored.len() as u64,
        accepted,
        "exactly the acknowledged events are stored"
    );
    app.shutdown().await;
}
