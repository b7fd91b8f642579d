//! Records to encode: hand-picked edge cases and proptest strategies.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use sightline_model::{Event, Metric, Severity, SourceType};

pub const SOURCE_TYPES: [SourceType; 7] = [
    SourceType::Http,
    SourceType::Webhook,
    SourceType::Syslog,
    SourceType::Snmp,
    SourceType::Email,
    SourceType::Metrics,
    SourceType::Kafka,
];

/// An event with every optional field set and every collection non-empty.
pub fn full_event() -> Event {
    Event {
        event_id: "0190f5c2-7d4e-7cc0-9a37-2f1c4f9d2b11".into(),
        service_name: "payment-service".into(),
        event_type: "ERROR".into(),
        timestamp: 1_700_000_000_000,
        environment: "PRODUCTION".into(),
        details: "card declined 4021".into(),
        severity: Severity::High,
        metadata: object(json!({
            "order_id": 4021,
            "amount": 19.99,
            "retry": true,
            "nested": {"list": [1, 2.5, null, "x"], "empty": {}},
        })),
        source: "checkout".into(),
        source_type: SourceType::Webhook,
        host: Some("pay-1.eu-west-1".into()),
        tags: [("region", "eu-west-1"), ("team", "payments")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        fingerprint: "9f3c1a2b7d4e5f60".into(),
        correlation_id: "req-1".into(),
        received_at: 1_700_000_000_250,
    }
}

/// An event with every optional field absent and every collection empty.
pub fn minimal_event() -> Event {
    Event {
        event_id: String::new(),
        service_name: "s".into(),
        event_type: "INFO".into(),
        timestamp: 0,
        environment: "UNSPECIFIED".into(),
        details: String::new(),
        severity: Severity::Info,
        metadata: Map::new(),
        source: String::new(),
        source_type: SourceType::Http,
        host: None,
        tags: BTreeMap::new(),
        fingerprint: String::new(),
        correlation_id: String::new(),
        received_at: 0,
    }
}

/// Hand-picked events: optional fields both ways, unicode, extremes, big metadata.
pub fn edge_events() -> Vec<Event> {
    let mut unicode = full_event();
    unicode.service_name = "služba-платежей-支付-🚀".into();
    unicode.details = "NUL \u{0} tab \t newline \n quote \" backslash \\ emoji 👩‍💻".into();
    unicode.host = Some("hôte-ü".into());
    unicode.tags = [
        ("ключ".to_owned(), "值".to_owned()),
        (String::new(), String::new()),
    ]
    .into();
    unicode.metadata = object(json!({"😀": "ñ", "": [], "\u{0}": {"\u{1f}": null}}));

    let mut extremes = full_event();
    extremes.timestamp = i64::MIN;
    extremes.received_at = i64::MAX;
    extremes.metadata = object(json!({
        "max_u64": u64::MAX, "min_i64": i64::MIN, "tiny": 5e-324, "huge": 1.7976931348623157e308,
        "neg_zero": -0.0,
    }));

    let mut big = full_event();
    big.details = "x".repeat(200_000);
    big.metadata = (0..5_000)
        .map(|i: u32| {
            (
                format!("key-{i}"),
                json!({"i": i, "s": "v".repeat(i as usize % 50), "f": f64::from(i) / 7.0}),
            )
        })
        .collect();
    big.tags = (0..1_000)
        .map(|i| (format!("t{i}"), format!("v{i}")))
        .collect();

    let mut events = vec![full_event(), minimal_event(), unicode, extremes, big];
    for (i, severity) in Severity::ALL.into_iter().enumerate() {
        let mut e = minimal_event();
        e.severity = severity;
        e.source_type = SOURCE_TYPES[i % SOURCE_TYPES.len()];
        events.push(e);
    }
    for source_type in SOURCE_TYPES {
        let mut e = full_event();
        e.source_type = source_type;
        e.host = None;
        events.push(e);
    }
    events
}

pub fn full_metric() -> Metric {
    Metric {
        service_name: "payment-service".into(),
        metric_type: "latency_ms".into(),
        value: 41.5,
        tags: [("region".to_owned(), "eu-west-1".to_owned())].into(),
        timestamp: 1_700_000_000_000,
        received_at: 1_700_000_000_250,
        correlation_id: "req-1".into(),
    }
}

pub fn edge_metrics() -> Vec<Metric> {
    let mut metrics = vec![full_metric()];
    for value in [
        0.0,
        -0.0,
        f64::MIN_POSITIVE,
        f64::MAX,
        f64::MIN,
        5e-324,
        -1.0 / 3.0,
    ] {
        let mut m = full_metric();
        m.value = value;
        m.tags.clear();
        m.correlation_id = String::new();
        metrics.push(m);
    }
    let mut unicode = full_metric();
    unicode.service_name = "服务-🚀".into();
    unicode.tags = (0..500)
        .map(|i| (format!("ключ{i}"), "值".repeat(i % 7)))
        .collect();
    unicode.timestamp = i64::MIN;
    unicode.received_at = i64::MAX;
    metrics.push(unicode);
    metrics
}

pub fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |x| x.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(any::<String>(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn metadata() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(any::<String>(), json_value(), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

fn tags() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(any::<String>(), any::<String>(), 0..6)
}

pub fn arb_event() -> impl Strategy<Value = Event> {
    (
        (
            any::<String>(),
            any::<String>(),
            any::<String>(),
            any::<i64>(),
        ),
        (
            any::<String>(),
            any::<String>(),
            prop::sample::select(Severity::ALL.to_vec()),
        ),
        (
            metadata(),
            any::<String>(),
            prop::sample::select(SOURCE_TYPES.to_vec()),
        ),
        (
            prop::option::of(any::<String>()),
            tags(),
            any::<String>(),
            any::<String>(),
            any::<i64>(),
        ),
    )
        .prop_map(
            |(
                (event_id, service_name, event_type, timestamp),
                (environment, details, severity),
                (metadata, source, source_type),
                (host, tags, fingerprint, correlation_id, received_at),
            )| Event {
                event_id,
                service_name,
                event_type,
                timestamp,
                environment,
                details,
                severity,
                metadata,
                source,
                source_type,
                host,
                tags,
                fingerprint,
                correlation_id,
                received_at,
            },
        )
}

pub fn arb_metric() -> impl Strategy<Value = Metric> {
    (
        any::<String>(),
        any::<String>(),
        any::<f64>().prop_filter("metric values are finite", |x| x.is_finite()),
        tags(),
        any::<i64>(),
        any::<i64>(),
        any::<String>(),
    )
        .prop_map(
            |(service_name, metric_type, value, tags, timestamp, received_at, correlation_id)| {
                Metric {
                    service_name,
                    metric_type,
                    value,
                    tags,
                    timestamp,
                    received_at,
                    correlation_id,
                }
            },
        )
}
