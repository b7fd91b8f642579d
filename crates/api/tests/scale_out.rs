//! The same node, the same HTTP contract, on every backend: one test body run with the
//! embedded defaults, with PostgreSQL as the store, and with Kafka + PostgreSQL + Redis —
//! then split by role over three nodes sharing those servers.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestApp, now_ms};
use serde_json::{Value, json};
use sightline_api::{CacheKind, LogKind, NodeConfig, Role, StoreKind};

fn pg_url() -> String {
    std::env::var("SIGHTLINE_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn kafka_brokers() -> String {
    std::env::var("SIGHTLINE_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:19092".into())
}

fn redis_url() -> String {
    std::env::var("SIGHTLINE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A name for this test's PostgreSQL schema, Kafka namespace and Redis key prefix.
fn namespace() -> String {
    format!("test_api_{}", uuid::Uuid::new_v4().simple())
}

fn on_postgres(c: &mut NodeConfig, ns: &str) {
    c.store.kind = StoreKind::Postgres;
    c.store.postgres.url = pg_url();
    c.store.postgres.schema = Some(ns.to_owned());
}

fn on_servers(c: &mut NodeConfig, ns: &str) {
    on_postgres(c, ns);
    c.log.kind = LogKind::Kafka;
    c.log.kafka.brokers = kafka_brokers();
    c.log.kafka.namespace = ns.to_owned();
    c.log.kafka.session_timeout_ms = 6_000;
    c.cache.kind = CacheKind::Redis;
    c.cache.redis.url = redis_url();
    c.cache.redis.key_prefix = Some(ns.to_owned());
}

async fn drop_schema(ns: &str) {
    let pool = sqlx::PgPool::connect(&pg_url()).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {ns} CASCADE"))
        .execute(&pool)
        .await
        .unwrap();
}

fn batch(ts: i64) -> Vec<Value> {
    (0..120)
        .map(|i| {
            json!({
                "event_id": format!("ev-{i:03}"),
                "service_name": if i % 2 == 0 { "payment-service" } else { "order-service" },
                "event_type": "ERROR",
                "severity": if i % 3 == 0 { "critical" } else { "high" },
                "timestamp": ts - i * 1000,
                "details": format!("gateway timeout #{i}"),
            })
        })
        .collect()
}

/// Ingest through `edge`, read back through `reader`: the contract every backend keeps.
async fn ingest_and_query(edge: &TestApp, reader: &TestApp) {
    let ts = now_ms();
    let res = edge
        .post_json("/api/v1/events/batch", &json!(batch(ts)))
        .await;
    assert_eq!(res.status(), 202);
    let metric = json!({"service_name": "payment-service", "metric_type": "latency_ms",
                        "value": 42.5, "timestamp": ts});
    assert_eq!(
        edge.post_json("/api/v1/metrics", &metric).await.status(),
        202
    );

    let all = reader.wait_for_events("", 120).await;
    let ids: Vec<&str> = all
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..120).map(|i| format!("ev-{i:03}")).collect();
    assert_eq!(ids, expected, "newest first, each once");
    let critical = reader
        .all_events("severity=critical&service=payment-service", 7)
        .await;
    assert_eq!(
        critical.len(),
        (0..120).filter(|i| i % 2 == 0 && i % 3 == 0).count()
    );
    let one: Value = reader
        .get("/api/v1/events/ev-007")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(one["details"], "gateway timeout #7");

    // The live cache is fed by the processing side and read by the query side.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let live: Value = reader
            .get("/api/v1/metrics/live?service=payment-service")
            .await
            .json()
            .await
            .unwrap();
        if live["points"].as_array().is_some_and(|p| !p.is_empty()) {
            assert_eq!(live["points"][0]["value"], 42.5, "{live}");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no live metric: {live}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reader.get("/ready").await.status(), 200);
    assert_eq!(edge.get("/ready").await.status(), 200);
}

#[tokio::test]
async fn embedded_defaults() {
    let app = TestApp::spawn().await;
    ingest_and_query(&app, &app).await;
    app.shutdown().await;
}

#[tokio::test]
async fn postgres_store() {
    let ns = namespace();
    let app = TestApp::spawn_with(|c| on_postgres(c, &ns)).await;
    ingest_and_query(&app, &app).await;
    app.shutdown().await;
    drop_schema(&ns).await;
}

#[tokio::test]
async fn kafka_postgres_and_redis() {
    let ns = namespace();
    let app = TestApp::spawn_with(|c| on_servers(c, &ns)).await;
    ingest_and_query(&app, &app).await;
    app.shutdown().await;
    drop_schema(&ns).await;
}

#[tokio::test]
async fn roles_split_over_three_nodes() {
    let ns = namespace();
    let with_role = |role| {
        let ns = ns.clone();
        move |c: &mut NodeConfig| {
            on_servers(c, &ns);
            c.role = role;
        }
    };
    let ingest = TestApp::spawn_with(with_role(Role::Ingest)).await;
    let process = TestApp::spawn_with(with_role(Role::Process)).await;
    let api = TestApp::spawn_with(with_role(Role::Api)).await;

    // Each node serves its own endpoints only; every node serves the operational ones.
    assert_eq!(ingest.get("/api/v1/events/analytics").await.status(), 404);
    assert_eq!(
        api.post_json("/api/metrics", &json!([])).await.status(),
        404
    );
    // The path exists on an api node (GET lists events); posting to it is not allowed.
    assert_eq!(
        api.post_json("/api/v1/events", &json!({})).await.status(),
        405
    );
    assert_eq!(process.get("/api/v1/events").await.status(), 404);
    assert_eq!(
        process
            .post_json("/api/v1/events", &json!({}))
            .await
            .status(),
        404
    );
    for node in [&ingest, &process, &api] {
        assert_eq!(node.get("/health").await.status(), 200);
        assert_eq!(node.get("/metrics").await.status(), 200);
    }

    ingest_and_query(&ingest, &api).await;
    for node in [ingest, process, api] {
        node.shutdown().await;
    }
    drop_schema(&ns).await;
}

/// A schema registry speaking the two calls the codec makes, remembering what it was sent.
#[derive(Clone, Default)]
struct Registry {
    schemas: std::sync::Arc<std::sync::Mutex<Vec<(String, String)>>>,
}

impl Registry {
    async fn serve(&self) -> String {
        use axum::extract::{Path, State};
        use axum::routing::{get, post};
        async fn register(
            State(r): State<Registry>,
            Path(subject): Path<String>,
            body: String,
        ) -> axum::Json<Value> {
            let schema = serde_json::from_str::<Value>(&body).unwrap()["schema"]
                .as_str()
                .unwrap()
                .to_owned();
            let mut schemas = r.schemas.lock().unwrap();
            let id = match schemas.iter().position(|(_, s)| *s == schema) {
                Some(i) => i,
                None => {
                    schemas.push((subject, schema));
                    schemas.len() - 1
                }
            };
            axum::Json(json!({ "id": id + 1 }))
        }
        async fn by_id(
            State(r): State<Registry>,
            Path(id): Path<usize>,
        ) -> Result<axum::Json<Value>, axum::http::StatusCode> {
            let schemas = r.schemas.lock().unwrap();
            let (_, schema) = id
                .checked_sub(1)
                .and_then(|i| schemas.get(i))
                .ok_or(axum::http::StatusCode::NOT_FOUND)?;
            Ok(axum::Json(json!({ "schema": schema })))
        }
        let app = axum::Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/schemas/ids/{id}", get(by_id))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }
}

#[tokio::test]
async fn avro_values_with_a_schema_registry() {
    let ns = namespace();
    let registry = Registry::default();
    let url = registry.serve().await;
    let app = TestApp::spawn_with(|c| {
        on_servers(c, &ns);
        c.log.codec.format = sightline_codec::ValueFormat::Avro;
        c.log.codec.schema_registry.url = url.clone();
    })
    .await;
    ingest_and_query(&app, &app).await;
    app.shutdown().await;

    let subjects: Vec<String> = registry
        .schemas
        .lock()
        .unwrap()
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    // Subjects are named after the cluster's topics, namespace included.
    assert_eq!(
        subjects,
        [
            format!("{ns}.system-events-value"),
            format!("{ns}.metrics.raw-value")
        ]
    );

    // On the log itself the values are in the Confluent wire format.
    let mut kafka = sightline_log::KafkaConfig {
        brokers: kafka_brokers(),
        ..Default::default()
    };
    kafka.namespace = ns.clone();
    let log = sightline_log::KafkaLog::connect(kafka).unwrap();
    let mut sub = sightline_log::EventLog::subscribe(&log, "inspect", &["system-events"])
        .await
        .unwrap();
    let batch = sub.next_batch(1).await.unwrap();
    assert_eq!(batch[0].record.value[0], 0, "magic byte");
    drop_schema(&ns).await;
}

/// An event as another system's producer writes it in Avro: already normalized.
fn external_event(i: i64, ts: i64) -> sightline_model::Event {
    sightline_model::Event {
        event_id: format!("avro-{i:02}"),
        service_name: "inventory-service".into(),
        event_type: "ERROR".into(),
        timestamp: ts - i * 1000,
        environment: "PRODUCTION".into(),
        details: format!("stock sync failed #{i}"),
        severity: sightline_model::Severity::High,
        metadata: json!({"attempt": i, "region": "eu-west-1", "nested": {"ok": false}})
            .as_object()
            .unwrap()
            .clone(),
        source: "inventory-exporter".into(),
        source_type: sightline_model::SourceType::Kafka,
        host: (i % 2 == 0).then(|| format!("inv-{i}")),
        tags: [("team".to_owned(), "supply".to_owned())].into(),
        fingerprint: format!("fp-inventory-{i}"),
        correlation_id: format!("corr-{i}"),
        received_at: ts,
    }
}

#[tokio::test]
async fn a_kafka_source_ingests_external_topics_in_json_and_avro() {
    use sightline_codec::{Codec, CodecConfig, RecordKind, RegistryConfig, ValueFormat};
    use sightline_ingest::kafka_source::KafkaSourceConfig;
    use sightline_log::{EventLog, KafkaConfig, KafkaLog, Record, TopicConfig};
    // Topics other systems write, outside any sightline namespace.
    let topic = format!("external-{}", uuid::Uuid::new_v4().simple());
    let avro_topic = format!("external-avro-{}", uuid::Uuid::new_v4().simple());
    let cluster = KafkaLog::connect(KafkaConfig {
        brokers: kafka_brokers(),
        ..KafkaConfig::default()
    })
    .unwrap();
    for t in [&topic, &avro_topic] {
        cluster
            .create_topic(t, TopicConfig::with_partitions(2))
            .await
            .unwrap();
    }
    let ts = now_ms();
    let mut records: Vec<Record> = batch(ts)
        .iter()
        .map(|e| Record::new(None, serde_json::to_vec(e).unwrap(), ts))
        .collect();
    // Two values no producer should send: refused and counted, the rest unaffected.
    records.push(Record::new(None, br#"{"event_type":"ERROR"}"#.to_vec(), ts));
    records.push(Record::new(None, b"\x7fnot json".to_vec(), ts));
    cluster.append(&topic, records).await.unwrap();

    // The Avro producer registers its schema under `<topic>-value` in the registry and
    // writes the Confluent wire format (magic byte, schema id, datum).
    let registry = Registry::default();
    let url = registry.serve().await;
    let producer = Codec::new(&CodecConfig {
        format: ValueFormat::Avro,
        schema_registry: RegistryConfig::new(&url),
    })
    .unwrap();
    producer
        .prepare(RecordKind::Event, &avro_topic)
        .await
        .unwrap();
    let events: Vec<_> = (0..30).map(|i| external_event(i, ts)).collect();
    let mut values: Vec<Vec<u8>> = events
        .iter()
        .map(|e| producer.encode_event(e, &avro_topic).unwrap())
        .collect();
    assert_eq!(values[0][0], 0, "magic byte");
    // Two malformed Avro values among them: a datum cut short after a valid header, and a
    // schema id the registry never issued.
    let truncated = values[0][..8].to_vec();
    let mut unknown_id = values[1].clone();
    unknown_id[1..5].copy_from_slice(&4242u32.to_be_bytes());
    values.insert(7, truncated);
    values.insert(20, unknown_id);
    cluster
        .append(
            &avro_topic,
            values
                .into_iter()
                .map(|v| Record::new(None, v, ts))
                .collect(),
        )
        .await
        .unwrap();

    let source = |topic: &str| KafkaSourceConfig {
        brokers: kafka_brokers(),
        topic: topic.to_owned(),
        kind: sightline_ingest::Kind::SystemEvent,
        group: format!("{topic}-reader"),
        batch_size: 50,
        ..KafkaSourceConfig::default()
    };
    let app = TestApp::spawn_with(|c| {
        c.log.codec.schema_registry.url = url.clone();
        c.sources.kafka.push(source(&topic));
        c.sources.kafka.push(source(&avro_topic));
    })
    .await;
    let all = app.wait_for_events("", 150).await;
    assert_eq!(all.len(), 150);
    assert!(
        all.iter().all(|e| e["source_type"] == "kafka"),
        "{}",
        all[0]
    );
    // Every Avro event arrives as its producer wrote it.
    for event in &events {
        let stored: Value = app
            .get(&format!("/api/v1/events/{}", event.event_id))
            .await
            .json()
            .await
            .unwrap();
        let sent = serde_json::to_value(event).unwrap();
        for (field, value) in sent.as_object().unwrap() {
            assert_eq!(&stored[field], value, "{field} of {}", event.event_id);
        }
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sightline_ingest_rejected_total{source=\"kafka\"} 4")),
        "two JSON and two Avro values refused: {metrics}"
    );
    app.shutdown().await;
}
