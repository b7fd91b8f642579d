//! The same node, the same HTTP contract, with PostgreSQL as the store
//! (`[store] kind = "postgres"`): ingest through the API, read back through the API.

mod common;

use common::{TestApp, now_ms};
use serde_json::{Value, json};
use sightline_api::StoreKind;

fn pg_url() -> String {
    std::env::var("SIGHTLINE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test]
async fn a_node_on_postgres_stores_and_answers_like_the_embedded_one() {
    let schema = format!("test_api_{}", uuid::Uuid::new_v4().simple());
    let app = TestApp::spawn_with(|c| {
        c.store.kind = StoreKind::Postgres;
        c.store.postgres.url = pg_url();
        c.store.postgres.schema = Some(schema.clone());
    })
    .await;
    let ts = now_ms();
    let batch: Vec<Value> = (0..120)
        .map(|i| {
            json!({
                "event_id": format!("pg-{i:03}"),
                "service_name": if i % 2 == 0 { "payment-service" } else { "order-service" },
                "event_type": "ERROR",
                "severity": if i % 3 == 0 { "critical" } else { "high" },
                "timestamp": ts - i * 1000,
                "details": format!("gateway timeout #{i}"),
            })
        })
        .collect();
    let res = app.post_json("/api/v1/events/batch", &json!(batch)).await;
    assert_eq!(res.status(), 202);
    let all = app.wait_for_events("", 120).await;
    let ids: Vec<&str> = all
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..120).map(|i| format!("pg-{i:03}")).collect();
    assert_eq!(ids, expected, "newest first");
    let critical = app
        .all_events("severity=critical&service=payment-service", 7)
        .await;
    assert_eq!(
        critical.len(),
        (0..120).filter(|i| i % 2 == 0 && i % 3 == 0).count()
    );
    let one: Value = app.get("/api/v1/events/pg-007").await.json().await.unwrap();
    assert_eq!(one["details"], "gateway timeout #7");
    assert_eq!(app.get("/ready").await.status(), 200);
    app.shutdown().await;

    let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}
