//! The built-in rollups end to end: metrics posted over HTTP go through the real log,
//! the rollup runner and SQLite, and come back from `GET /api/v1/metrics/aggregated`
//! with exact count/sum/min/max/avg and p95/p99 within the sketch's 1 %.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::TestApp;
use serde_json::{Value, json};

/// The start of a minute ten minutes ago: the points are in the past, as after an outage.
fn base_ms() -> i64 {
    let now = chrono::Utc::now().timestamp_millis();
    (now / 60_000 - 10) * 60_000
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    // The sketch's rank convention: floor(q * (n - 1)).
    let rank = (q * (sorted.len() - 1) as f64).floor() as usize;
    sorted[rank]
}

async fn aggregated(app: &TestApp, query: &str) -> Vec<Value> {
    let res = app
        .get(&format!("/api/v1/metrics/aggregated?{query}"))
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn posted_metrics_roll_up_into_exact_one_minute_windows() {
    let app = TestApp::spawn_with(|c| {
        c.stream.checkpoint_interval_ms = 100;
        c.stream.max_out_of_orderness_ms = 1_000;
        c.stream.grace_ms = 0;
        // All points are one service's, so they land on one of metrics.raw's partitions:
        // the others deliver nothing and must go idle before any window can close. Then
        // event time closes the windows: a later point is posted below.
        c.stream.idle_timeout_ms = 300;
    })
    .await;
    let base = base_ms();

    // Four minutes of points, 60 per minute, values that differ per minute.
    let mut points = Vec::new();
    let mut per_minute: Vec<Vec<f64>> = vec![Vec::new(); 4];
    for m in 0..4_i64 {
        for s in 0..60_i64 {
            let value = (m * 100 + (s * 37) % 60 + 1) as f64 + 0.25;
            per_minute[m as usize].push(value);
            points.push(json!({
                "service_name": "checkout",
                "metric_type": "latency_ms",
                "value": value,
                "timestamp": base + m * 60_000 + s * 1_000,
            }));
        }
    }
    // One point well after them moves the watermark past the fourth minute.
    points.push(json!({
        "service_name": "checkout",
        "metric_type": "latency_ms",
        "value": 1.0,
        "timestamp": base + 6 * 60_000,
    }));
    let res = app
        .post_json("/api/v1/metrics", &Value::Array(points))
        .await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = aggregated(&app, "service=checkout&metric=latency_ms&window=1m").await;
        if rows.len() >= 4 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "1m rollups did not appear: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (i, row) in rows.iter().rev().enumerate() {
        let mut values = per_minute[i].clone();
        values.sort_by(f64::total_cmp);
        let start = base + i as i64 * 60_000;
        assert_eq!(row["window"], "1m");
        assert_eq!(row["window_start"], start);
        assert_eq!(row["window_end"], start + 60_000);
        assert_eq!(row["id"], format!("checkout|latency_ms|1m|{start}"));
        assert_eq!(row["count"], 60);
        let sum: f64 = values.iter().sum();
        assert_eq!(row["sum"].as_f64().unwrap(), sum);
        assert_eq!(row["min"].as_f64().unwrap(), values[0]);
        assert_eq!(row["max"].as_f64().unwrap(), values[59]);
        assert!((row["avg"].as_f64().unwrap() - sum / 60.0).abs() < 1e-9);
        for (name, q) in [("p95", 0.95), ("p99", 0.99)] {
            let want = percentile(&values, q);
            let got = row[name].as_f64().unwrap();
            assert!(
                (got - want).abs() <= want * 0.01,
                "{name} of minute {i}: {got} vs {want}"
            );
        }
    }

    // Filters and the alias.
    let res = app
        .get(&format!(
            "/api/metrics/aggregated?service=checkout&window=1m&from={}&to={}",
            base + 60_000,
            base + 120_000
        ))
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["window_start"], base + 60_000);
    assert!(aggregated(&app, "service=nope").await.is_empty());

    // Bad parameters are 400s that name the field.
    for (query, field) in [
        ("window=2m", "window"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("from=yesterday-ish", "from"),
        ("bogus=1", "bogus"),
    ] {
        let res = app
            .get(&format!("/api/v1/metrics/aggregated?{query}"))
            .await;
        assert_eq!(res.status(), 400, "{query}");
        let body = res.text().await.unwrap();
        assert!(body.contains(field), "{query}: {body}");
    }
    let res = app.get("/api/v1/events/counts?severity=purple").await;
    assert_eq!(res.status(), 400);
    let res = app.get("/api/v1/events/counts?service=checkout").await;
    assert_eq!(res.status(), 200);

    app.shutdown().await;
}
