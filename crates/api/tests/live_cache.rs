//! `GET /api/v1/metrics/live`: a service's newest points from the live cache
//! (`metrics:live:{service}`), in-process or Redis, and from the store when Redis is down
//! — the node stays up either way.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{TestApp, now_ms};
use serde_json::{Value, json};
use sightline_api::CacheKind;

fn redis_url() -> String {
    std::env::var("SIGHTLINE_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Posts 130 points for `service` (one request) and waits until `/live` shows 100 points
/// ending with the newest one: the live feeder applies the batch in steps, so a full window
/// alone does not mean the last point has arrived.
async fn post_and_read_live(app: &TestApp, service: &str) -> Value {
    let ts = now_ms() - 200_000;
    let points: Vec<Value> = (0..130)
        .map(|i| json!({"service_name": service, "metric_type": "cpu_usage", "value": i, "timestamp": ts + i * 1000}))
        .collect();
    assert_eq!(
        app.post_json("/api/v1/metrics", &json!(points))
            .await
            .status(),
        202
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live: Value = app
            .get(&format!("/api/metrics/live?service={service}"))
            .await
            .json()
            .await
            .unwrap();
        let points = live["points"].as_array().unwrap();
        if points.len() == 100 && points.last().unwrap()["value"].as_f64() == Some(129.0) {
            return live;
        }
        assert!(
            Instant::now() < deadline,
            "live points never reached 100: {live}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn values(live: &Value) -> Vec<f64> {
    live["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect()
}

#[tokio::test]
async fn memory_cache_keeps_the_newest_100_points_oldest_first() {
    let app = TestApp::spawn().await;
    let live = post_and_read_live(&app, "db").await;
    assert_eq!(live["source"], "cache");
    assert_eq!(values(&live), (30..130).map(f64::from).collect::<Vec<_>>());
    let missing = app.get("/api/v1/metrics/live").await;
    assert_eq!(missing.status(), 400);
    app.shutdown().await;
}

#[tokio::test]
async fn redis_cache_serves_live_points() {
    let prefix = format!("test-api-{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_with(|c| {
        c.cache.kind = CacheKind::Redis;
        c.cache.redis.url = redis_url();
        c.cache.redis.key_prefix = Some(prefix.clone());
    })
    .await;
    let live = post_and_read_live(&app, "api").await;
    assert_eq!(live["source"], "cache", "{live}");
    assert_eq!(values(&live), (30..130).map(f64::from).collect::<Vec<_>>());
    app.shutdown().await;
    redis_del(&redis_url(), &format!("{prefix}:metrics:live:api")).await;
}

#[tokio::test]
async fn with_redis_down_the_node_stays_up_and_reads_fall_back_to_the_store() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let app = TestApp::spawn_with(|c| {
        c.cache.kind = CacheKind::Redis;
        c.cache.redis.url = format!("redis://127.0.0.1:{port}");
    })
    .await;
    assert_eq!(app.get("/health").await.status(), 200);
    let live = post_and_read_live(&app, "web").await;
    assert_eq!(live["source"], "store", "{live}");
    assert_eq!(values(&live), (30..130).map(f64::from).collect::<Vec<_>>());
    app.shutdown().await;
}

/// Deletes a key with a raw RESP command over TCP (no client library needed in tests).
async fn redis_del(url: &str, key: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("redis://").trim_end_matches('/');
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let cmd = format!("*2\r\n$3\r\nDEL\r\n${}\r\n{key}\r\n", key.len());
    s.write_all(cmd.as_bytes()).await.unwrap();
    let mut buf = [0u8; 16];
    let _ = s.read(&mut buf).await.unwrap();
}
