//! The driver against a real HTTP server on loopback: every event sent is accounted for
//! exactly as the server saw it, backpressure is retried (boundedly), failures are counted,
//! and a run stops on its count, its duration or its shutdown signal.
//!
//! The server here is a stand-in for a sightline node implementing the batch contract
//! (202 with per-item results, 422 when every item is refused, 503 + `Retry-After` on
//! backpressure) and validating items with the real decoders of `sightline-model`.

#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use sightline_model::decode::{self, BodyShape};
use sightline_model::{IngestContext, SourceType};
use sightline_sim::{SimReport, SimulateOptions, run, run_until};

const API_KEY: &str = "test-key";
/// Every test finishes well within this; it only bounds a hang.
const TEST_LIMIT: Duration = Duration::from_secs(60);

/// How the stand-in server misbehaves.
#[derive(Clone, Copy, Debug, Default)]
struct Behaviour {
    /// Answer the n-th events request (1-based) with 503 + `Retry-After: 1`.
    busy_on: Option<u64>,
    /// Answer every events request with 429 + `Retry-After: 0`.
    always_busy: bool,
    /// Refuse every item of the n-th events request (→ 422).
    reject_all_on: Option<u64>,
}

/// What the server saw.
#[derive(Debug, Default)]
struct Received {
    requests: u64,
    event_requests: u64,
    busy_answers: u64,
    unauthorized: u64,
    accepted: u64,
    rejected: u64,
    /// Every event id seen in a request that was answered 202/422, with repeats counted.
    ids: HashSet<String>,
    repeated_ids: u64,
    metrics_accepted: u64,
    metrics_rejected: u64,
}

#[derive(Clone)]
struct Server {
    behaviour: Behaviour,
    received: Arc<Mutex<Received>>,
}

fn problem(status: StatusCode, detail: &str) -> Response {
    let body = json!({"type": "about:blank", "title": detail, "status": status.as_u16(), "detail": detail});
    (
        status,
        [(header::CONTENT_TYPE, "application/problem+json")],
        body.to_string(),
    )
        .into_response()
}

fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        == Some(&format!("Bearer {API_KEY}"))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn events(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
    let b = server.behaviour;
    let mut r = server.received.lock().unwrap();
    r.requests += 1;
    if !authorized(&headers) {
        r.unauthorized += 1;
        return problem(StatusCode::UNAUTHORIZED, "missing bearer token");
    }
    r.event_requests += 1;
    let n = r.event_requests;
    if b.always_busy {
        r.busy_answers += 1;
        let mut resp = problem(StatusCode::TOO_MANY_REQUESTS, "slow down");
        resp.headers_mut()
            .insert(header::RETRY_AFTER, "0".parse().unwrap());
        return resp;
    }
    if b.busy_on == Some(n) {
        r.busy_answers += 1;
        let mut resp = problem(StatusCode::SERVICE_UNAVAILABLE, "overloaded");
        resp.headers_mut()
            .insert(header::RETRY_AFTER, "1".parse().unwrap());
        return resp;
    }
    let ctx = IngestContext::new(SourceType::Http, now_ms(), format!("req-{n}"));
    let Ok(items) = decode::split_batch(&body, BodyShape::Array) else {
        return problem(StatusCode::BAD_REQUEST, "not a JSON array");
    };
    let reject_all = b.reject_all_on == Some(n);
    let (mut accepted, mut rejected, mut results) = (0u64, 0u64, Vec::new());
    for (index, item) in items.iter().enumerate() {
        let outcome = decode::system_event(item, &ctx).and_then(|ev| {
            // Refuse a tenth of the events, so partial rejection is exercised too.
            if reject_all || ev.event_id.ends_with('7') {
                Err(sightline_model::ValidationError::new(
                    "event_id",
                    format!("{} refused by the test server", ev.event_id),
                ))
            } else {
                Ok(ev)
            }
        });
        // Note the id whatever the outcome, to prove no event is sent twice.
        let id = serde_json::from_slice::<serde_json::Value>(item).unwrap()["event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        if !r.ids.insert(id) {
            r.repeated_ids += 1;
        }
        match outcome {
            Ok(ev) => {
                accepted += 1;
                results
                    .push(json!({"index": index, "status": "accepted", "event_id": ev.event_id}));
            }
            Err(e) => {
                rejected += 1;
                results.push(json!({"index": index, "status": "rejected", "error": {"field": e.field, "reason": e.reason}}));
            }
        }
    }
    r.accepted += accepted;
    r.rejected += rejected;
    if accepted == 0 {
        return problem(StatusCode::UNPROCESSABLE_ENTITY, "every item was rejected");
    }
    let body = json!({"accepted": accepted, "rejected": rejected, "results": results, "correlation_id": ctx.correlation_id});
    (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn metrics(State(server): State<Server>, headers: HeaderMap, body: Bytes) -> Response {
    let mut r = server.received.lock().unwrap();
    r.requests += 1;
    if !authorized(&headers) {
        r.unauthorized += 1;
        return problem(StatusCode::UNAUTHORIZED, "missing bearer token");
    }
    let ctx = IngestContext::new(SourceType::Metrics, now_ms(), "metrics");
    let Ok(items) = decode::split_batch(&body, BodyShape::Array) else {
        return problem(StatusCode::BAD_REQUEST, "not a JSON array");
    };
    let (mut accepted, mut rejected) = (0u64, 0u64);
    for item in items {
        match decode::metric(item, &ctx) {
            Ok(_) => accepted += 1,
            Err(_) => rejected += 1,
        }
    }
    r.metrics_accepted += accepted;
    r.metrics_rejected += rejected;
    let body = json!({"accepted": accepted, "rejected": rejected, "results": []});
    (StatusCode::ACCEPTED, body.to_string()).into_response()
}

/// Starts the stand-in server on an ephemeral loopback port.
async fn serve(behaviour: Behaviour) -> (String, Arc<Mutex<Received>>) {
    let received = Arc::new(Mutex::new(Received::default()));
    let app = Router::new()
        .route("/api/v1/events/batch", post(events))
        .route("/api/v1/metrics", post(metrics))
        .with_state(Server {
            behaviour,
            received: received.clone(),
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), received)
}

fn options(target: String) -> SimulateOptions {
    SimulateOptions {
        target,
        rate: 0,
        duration: None,
        count: None,
        batch_size: 500,
        concurrency: 4,
        error_rate: 0.05,
        bursts: true,
        metrics: false,
        seed: 7,
        api_key: Some(API_KEY.to_owned()),
        progress: false,
        ..SimulateOptions::default()
    }
}

async fn bounded(f: impl Future<Output = SimReport>) -> SimReport {
    tokio::time::timeout(TEST_LIMIT, f)
        .await
        .expect("the run finished in time")
}

/// The sum rule every report obeys.
fn assert_accounted(report: &SimReport) {
    assert_eq!(
        report.sent,
        report.acknowledged + report.rejected + report.failed_events,
        "{report:?}"
    );
    assert!(
        report.request_latency_ms.samples <= report.requests,
        "{report:?}"
    );
}

#[tokio::test]
async fn every_event_is_accounted_for_exactly_as_the_server_saw_it() {
    let (target, received) = serve(Behaviour {
        busy_on: Some(2),
        reject_all_on: Some(5),
        ..Behaviour::default()
    })
    .await;
    let report = bounded(async {
        run(SimulateOptions {
            rate: 20_000,
            count: Some(5000),
            metrics: true,
            ..options(target)
        })
        .await
        .unwrap()
    })
    .await;
    let r = received.lock().unwrap();

    assert_eq!(r.unauthorized, 0);
    assert_eq!(r.busy_answers, 1);
    assert_eq!(r.repeated_ids, 0, "an event was delivered twice");
    let expected: HashSet<String> = (0..5000)
        .map(|seq| format!("{}-{seq}", report.run_id))
        .collect();
    assert_eq!(r.ids, expected);
    assert_eq!(r.accepted + r.rejected, 5000);
    assert!(
        r.rejected >= 500,
        "the all-rejected batch and the tenth: {}",
        r.rejected
    );

    assert_eq!(report.sent, 5000);
    assert_eq!(report.acknowledged, r.accepted);
    assert_eq!(report.rejected, r.rejected);
    assert_eq!(report.failed_events, 0);
    assert_eq!(report.failed_requests, 0);
    assert_eq!(report.retries, 1);
    // 10 event batches + 1 retry + 1 metric batch.
    assert_eq!(report.requests, r.requests);
    assert_eq!(report.requests, 12);
    assert_eq!(report.request_latency_ms.samples, 12);
    assert!(report.request_latency_ms.p50 > 0.0);
    assert!(report.request_latency_ms.p50 <= report.request_latency_ms.p99);
    assert!(report.request_latency_ms.p99 <= report.request_latency_ms.max);
    // The retried batch waited for its Retry-After.
    assert!(report.elapsed_secs >= 1.0, "{}", report.elapsed_secs);
    assert!((report.achieved_rate - report.acknowledged as f64 / report.elapsed_secs).abs() < 1e-6);

    // One metric point per ten events.
    assert_eq!(report.metrics_sent, 500);
    assert_eq!(r.metrics_accepted, 500);
    assert_eq!(r.metrics_rejected, 0);
    assert_eq!(report.metrics_acknowledged, 500);
    assert_eq!(report.metrics_rejected, 0);
    assert!(!report.interrupted);
    assert_accounted(&report);

    let text = report.to_string();
    assert!(text.contains("5000 events sent"), "{text}");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["acknowledged"], r.accepted);
    assert!(json["request_latency_ms"]["p99"].is_number());
}

#[tokio::test]
async fn backpressure_is_retried_at_most_ten_times() {
    let (target, received) = serve(Behaviour {
        always_busy: true,
        ..Behaviour::default()
    })
    .await;
    let report = bounded(async {
        run_until(
            SimulateOptions {
                count: Some(20),
                batch_size: 10,
                concurrency: 1,
                ..options(target)
            },
            std::future::pending(),
        )
        .await
        .unwrap()
    })
    .await;
    let r = received.lock().unwrap();
    assert_eq!(report.sent, 20);
    assert_eq!(report.failed_requests, 2);
    assert_eq!(report.failed_events, 20);
    assert_eq!(report.retries, 20);
    assert_eq!(report.requests, 22);
    assert_eq!(r.busy_answers, 22);
    assert_eq!((report.acknowledged, report.rejected), (0, 0));
    assert_eq!(report.achieved_rate, 0.0);
    assert_accounted(&report);
}

#[tokio::test]
async fn an_unreachable_node_fails_requests_without_hanging() {
    // A port nobody listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let report = bounded(async {
        run_until(
            SimulateOptions {
                count: Some(1000),
                ..options(format!("http://127.0.0.1:{port}/"))
            },
            std::future::pending(),
        )
        .await
        .unwrap()
    })
    .await;
    assert_eq!(report.sent, 1000);
    assert_eq!(report.failed_requests, 2);
    assert_eq!(report.failed_events, 1000);
    assert_eq!(report.acknowledged, 0);
    assert_eq!(report.request_latency_ms.samples, 0);
    assert_accounted(&report);
}

#[tokio::test]
async fn shutdown_stops_an_unbounded_run_and_drains_it() {
    let (target, received) = serve(Behaviour::default()).await;
    let report = bounded(async {
        run_until(
            SimulateOptions {
                rate: 2_000,
                ..options(target)
            },
            tokio::time::sleep(Duration::from_millis(300)),
        )
        .await
        .unwrap()
    })
    .await;
    let r = received.lock().unwrap();
    assert!(report.interrupted);
    assert!(report.sent > 0);
    assert_eq!(report.failed_requests, 0);
    assert_eq!(report.acknowledged, r.accepted);
    assert_eq!(report.rejected, r.rejected);
    assert_eq!(report.sent, r.accepted + r.rejected);
    assert_eq!(r.repeated_ids, 0);
    assert_accounted(&report);
}

#[tokio::test]
async fn a_duration_bounds_the_run_and_the_rate_bounds_what_is_sent() {
    let (target, received) = serve(Behaviour::default()).await;
    let report = bounded(async {
        run_until(
            SimulateOptions {
                rate: 4_000,
                duration: Some(Duration::from_millis(500)),
                ..options(target)
            },
            std::future::pending(),
        )
        .await
        .unwrap()
    })
    .await;
    let r = received.lock().unwrap();
    assert!(!report.interrupted);
    // The token bucket releases one batch (200 events at 4 000/s) up front, then the rate.
    assert!(
        report.sent > 0 && report.sent <= 200 + 2_000,
        "{}",
        report.sent
    );
    assert_eq!(report.sent % 200, 0);
    assert_eq!(report.sent, r.accepted + r.rejected);
    assert_eq!(report.acknowledged, r.accepted);
    assert_accounted(&report);
}

#[tokio::test]
async fn bad_options_are_refused_before_sending() {
    let err = run_until(
        SimulateOptions {
            target: "https://example.invalid".into(),
            ..options(String::new())
        },
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("only http://"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Scenarios

/// What the stand-in topic endpoint saw.
#[derive(Debug, Default)]
struct TopicLog {
    /// (topic, content type, authorized) of every request.
    requests: Vec<(String, String, bool)>,
    /// Bodies of the requests answered 200 or 400 (not the 503'd one).
    bodies: Vec<Vec<serde_json::Value>>,
}

/// `POST /api/v1/topics/{topic}/records`: 503 on the first request, 400 on the third,
/// 200 otherwise (with a body that carries no count, as the real endpoint's may not).
async fn records(
    State(log): State<Arc<Mutex<TopicLog>>>,
    axum::extract::Path(topic): axum::extract::Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut log = log.lock().unwrap();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    log.requests
        .push((topic, content_type, authorized(&headers)));
    match log.requests.len() {
        1 => {
            let mut resp = problem(StatusCode::SERVICE_UNAVAILABLE, "busy");
            resp.headers_mut()
                .insert(header::RETRY_AFTER, "0".parse().unwrap());
            resp
        }
        n => {
            log.bodies.push(serde_json::from_slice(&body).unwrap());
            if n == 3 {
                problem(StatusCode::BAD_REQUEST, "no such field")
            } else {
                (StatusCode::OK, json!({"appended": true}).to_string()).into_response()
            }
        }
    }
}

#[tokio::test]
async fn ecommerce_records_go_to_the_topic_endpoint_as_keyed_envelopes() {
    let log = Arc::new(Mutex::new(TopicLog::default()));
    let app = Router::new()
        .route("/api/v1/topics/{topic}/records", post(records))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let report = bounded(async {
        run_until(
            SimulateOptions {
                scenario: sightline_sim::ScenarioKind::Ecommerce,
                count: Some(2_000),
                batch_size: 100,
                concurrency: 1,
                sessions: 50,
                ..options(format!("http://{addr}"))
            },
            std::future::pending(),
        )
        .await
        .unwrap()
    })
    .await;
    assert_accounted(&report);
    assert_eq!(report.sent, 2_000);
    assert_eq!(report.retries, 1);
    assert_eq!(
        report.rejected, 100,
        "the 400'd batch is a counted rejection"
    );
    assert_eq!(report.acknowledged, 1_900);
    assert_eq!(report.failed_requests, 0);
    assert_eq!(report.requests, 21);

    let log = log.lock().unwrap();
    assert_eq!(log.requests.len(), 21);
    for (topic, content_type, authorized) in &log.requests {
        assert_eq!(topic, "ecommerce.events");
        assert_eq!(content_type, "application/json");
        assert!(authorized);
    }
    let truth = match report.ground_truth.as_ref().unwrap() {
        sightline_sim::GroundTruth::Ecommerce(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(truth.records, 2_000);
    let mut per_session: HashMap<String, (u64, f64, u64, String)> = HashMap::new();
    let mut ids = HashSet::new();
    for envelope in log.bodies.iter().flatten() {
        let obj = envelope.as_object().unwrap();
        assert_eq!(
            obj.keys().map(String::as_str).collect::<Vec<_>>(),
            ["key", "value"]
        );
        let v = &envelope["value"];
        assert_eq!(envelope["key"], v["session_id"]);
        assert!(v["event_id"].as_str().unwrap().starts_with(&report.run_id));
        assert!(ids.insert(v["event_id"].as_str().unwrap().to_owned()));
        let s = per_session
            .entry(v["session_id"].as_str().unwrap().to_owned())
            .or_default();
        s.0 += 1;
        s.1 = s.1.max(v["cart_total"].as_f64().unwrap());
        s.2 += u64::from(v["event_type"] == "purchase");
        s.3 = v["user_id"].as_str().unwrap().to_owned();
    }
    assert_eq!(ids.len(), 2_000);
    assert_eq!(per_session.len(), truth.sessions.len());
    for (id, (count, cart, purchases, user)) in &per_session {
        let t = &truth.sessions[id];
        assert_eq!(
            (t.events_count, t.cart_value, t.purchase_count, &t.user_id),
            (*count, *cart, *purchases, user)
        );
    }
}

#[derive(Debug, Default)]
struct Collected {
    metrics: Vec<serde_json::Value>,
    events: Vec<serde_json::Value>,
}

async fn collect_metrics(State(c): State<Arc<Mutex<Collected>>>, body: Bytes) -> Response {
    let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let n = items.len();
    c.lock().unwrap().metrics.extend(items);
    (
        StatusCode::ACCEPTED,
        json!({"accepted": n, "rejected": 0}).to_string(),
    )
        .into_response()
}

async fn collect_events(State(c): State<Arc<Mutex<Collected>>>, body: Bytes) -> Response {
    let items: Vec<serde_json::Value> = serde_json::from_slice(&body).unwrap();
    let n = items.len();
    c.lock().unwrap().events.extend(items);
    (
        StatusCode::ACCEPTED,
        json!({"accepted": n, "rejected": 0}).to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn the_incidents_scenario_is_sent_whole_in_simulated_time() {
    let collected = Arc::new(Mutex::new(Collected::default()));
    let app = Router::new()
        .route("/api/v1/metrics", post(collect_metrics))
        .route("/api/v1/events/batch", post(collect_events))
        .with_state(collected.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let start = 1_700_000_000_000;
    let opts = |speed: f64, minutes: u64| SimulateOptions {
        scenario: sightline_sim::ScenarioKind::Incidents,
        speed,
        duration: Some(Duration::from_secs(minutes * 60)),
        start_ms: Some(start),
        faults: Some(1),
        concurrency: 1,
        ..options(format!("http://{addr}"))
    };

    // As fast as the server acknowledges: everything the iterator yields arrives, in order.
    let report = bounded(async { run(opts(0.0, 30)).await.unwrap() }).await;
    assert_accounted(&report);
    let expected: Vec<_> = sightline_sim::scenario::incidents::Scenario::with_config(
        7,
        start,
        Duration::from_secs(1800),
        Duration::from_secs(10),
        sightline_sim::scenario::incidents::IncidentsConfig {
            faults: Some(1),
            ..Default::default()
        },
    )
    .map(|i| i.to_json())
    .collect();
    let (want_metrics, want_events): (Vec<_>, Vec<_>) = expected
        .into_iter()
        .partition(|v| v.get("metric_type").is_some());
    {
        let c = collected.lock().unwrap();
        assert_eq!(c.metrics.len(), 180 * 13 * 5);
        assert_eq!(c.metrics, want_metrics);
        assert_eq!(c.events.len(), want_events.len());
        for (got, want) in c.events.iter().zip(&want_events) {
            // Identical but for the run's own id prefix.
            assert_eq!(got["details"], want["details"]);
            assert_eq!(got["timestamp"], want["timestamp"]);
            assert!(
                got["event_id"]
                    .as_str()
                    .unwrap()
                    .starts_with(&report.run_id)
            );
        }
    }
    assert_eq!(report.metrics_sent, 180 * 65);
    assert_eq!(report.metrics_acknowledged, report.metrics_sent);
    assert_eq!(report.sent, want_events.len() as u64);
    assert_eq!(report.acknowledged, report.sent);
    match report.ground_truth.as_ref().unwrap() {
        sightline_sim::GroundTruth::Incidents(t) => {
            assert_eq!((t.start_ms, t.end_ms), (start, start + 1_800_000));
            assert_eq!(t.faults.len(), 1);
        }
        other => panic!("{other:?}"),
    }

    // Paced: 10 simulated minutes at 600× take about a second.
    let report = bounded(async { run(opts(600.0, 10)).await.unwrap() }).await;
    assert_accounted(&report);
    assert_eq!(report.metrics_sent, 60 * 65);
    assert!(report.elapsed_secs > 0.8, "{}", report.elapsed_secs);
}
