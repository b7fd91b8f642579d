//! The ksqlDB e-commerce example, as written in the specification, end to end over the
//! compiled plan: JSON record bytes in, `session_stats` rows out, then a pull query.

// Test helpers unwrap: a panic there is a failed assertion.
#![allow(clippy::unwrap_used)]

use serde_json::json;
use sightline_stream::sql::{Catalog, Executed, Processed};

const STREAM: &str = "CREATE STREAM events_stream (session_id VARCHAR, user_id VARCHAR, event_type VARCHAR, cart_total DOUBLE, ts BIGINT) WITH (KAFKA_TOPIC='ecommerce.events', VALUE_FORMAT='JSON', TIMESTAMP='ts');";
const TABLE: &str = "CREATE TABLE session_stats AS SELECT session_id, LATEST_BY_OFFSET(user_id) AS user_id, COUNT(*) AS events_count, MAX(cart_total) AS cart_value, SUM(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchase_count FROM events_stream GROUP BY session_id EMIT CHANGES;";

#[test]
fn session_stats_example_works_as_written() {
    let mut catalog = Catalog::new();
    let done = catalog.execute(&format!("{STREAM}\n{TABLE}")).unwrap();
    assert_eq!(
        done,
        vec![
            Executed::CreatedStream("events_stream".into()),
            Executed::CreatedQuery("session_stats".into())
        ]
    );
    let q = catalog.query_mut("session_stats").unwrap();
    assert_eq!(q.source_topic(), "ecommerce.events");
    assert_eq!(q.output_topic(), "session_stats");
    assert_eq!(q.late_topic(), "ecommerce.events.late");
    let config = q.operator_config().unwrap();
    assert_eq!(config.key_columns, vec!["session_id"]);
    assert_eq!(config.aggregates.len(), 4);

    let events = [
        json!({"session_id": "s1", "user_id": "u1", "event_type": "product_viewed", "cart_total": 10.0, "ts": 1_000}),
        json!({"session_id": "s1", "user_id": "u1", "event_type": "added_to_cart", "cart_total": 25.5, "ts": 2_000}),
        json!({"session_id": "s2", "user_id": "u2", "event_type": "product_viewed", "cart_total": 5, "ts": 2_500}),
        json!({"session_id": "s1", "user_id": "u1", "event_type": "purchase", "cart_total": 25.5, "ts": 3_000}),
        json!({"session_id": "s2", "user_id": "u3", "event_type": "purchase", "cart_total": 7.25, "ts": 4_000, "extra": {"ignored": [1, 2]}}),
        json!({"session_id": "s1", "user_id": null, "event_type": "purchase", "cart_total": 30.0, "ts": 3_500}),
    ];
    let mut out = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let bytes = serde_json::to_vec(e).unwrap();
        let r = q.process(&bytes, 0, i as u64, 0, &mut out).unwrap();
        assert_eq!(r, Processed::Accepted);
    }
    let row = |s: &str, u: &str, n: i64, cart: f64, p: i64| json!({"session_id": s, "user_id": u, "events_count": n, "cart_value": cart, "purchase_count": p});
    let expected = vec![
        ("[\"s1\"]", row("s1", "u1", 1, 10.0, 0)),
        ("[\"s1\"]", row("s1", "u1", 2, 25.5, 0)),
        ("[\"s2\"]", row("s2", "u2", 1, 5.0, 0)),
        ("[\"s1\"]", row("s1", "u1", 3, 25.5, 1)),
        ("[\"s2\"]", row("s2", "u3", 2, 7.25, 1)),
        // LATEST_BY_OFFSET skips the null user id.
        ("[\"s1\"]", row("s1", "u1", 4, 30.0, 2)),
    ];
    let got: Vec<(&str, serde_json::Value)> = out
        .iter()
        .map(|r| (r.key.as_str(), r.value.clone().unwrap()))
        .collect();
    assert_eq!(got, expected);
    assert!(out.iter().all(|r| r.window.is_none()));
    assert_eq!(out[5].event_time, 3_500);

    // Bad input is an error for the dead-letter topic, never a panic, and changes nothing.
    assert!(q.process(b"{not json", 0, 6, 0, &mut out).is_err());
    assert!(
        q.process(
            br#"{"session_id": "s1", "cart_total": "lots", "ts": 1}"#,
            0,
            7,
            0,
            &mut out
        )
        .is_err()
    );
    assert!(
        q.process(br#"{"session_id": "s1"}"#, 0, 8, 0, &mut out)
            .is_err()
    );
    assert_eq!(out.len(), 6);

    assert_eq!(
        catalog
            .pull("SELECT * FROM session_stats WHERE session_id = 's1'")
            .unwrap(),
        vec![row("s1", "u1", 4, 30.0, 2)]
    );
    assert_eq!(
        catalog
            .pull("SELECT session_id, purchase_count * 10 AS p FROM session_stats WHERE session_id = 's2'")
            .unwrap(),
        vec![json!({"session_id": "s2", "p": 10})]
    );
    assert!(
        catalog
            .pull("SELECT * FROM session_stats WHERE session_id = 'nope'")
            .unwrap()
            .is_empty()
    );
    let plan = catalog
        .plan_pull("SELECT * FROM session_stats WHERE session_id = 's2' AND events_count > 1")
        .unwrap();
    assert!(plan.lookup.is_some(), "key equality is a lookup");
    // No key equality: a bounded scan, in key order.
    let all = catalog
        .pull("SELECT session_id FROM session_stats WHERE purchase_count >= 1 LIMIT 10")
        .unwrap();
    assert_eq!(
        all,
        vec![json!({"session_id": "s1"}), json!({"session_id": "s2"})]
    );
    assert!(
        catalog
            .plan_pull("SELECT * FROM session_stats")
            .unwrap()
            .lookup
            .is_none()
    );
}
