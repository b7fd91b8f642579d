//! Table-driven semantics of the condition language.

use serde_json::{Value, json};
use sightline_model::{AppliesTo, Event, Incident};

use super::Condition;
use crate::{RespondError, Subject};

const NOW: i64 = 1_700_000_600_000;

pub(crate) fn event() -> Subject {
    let e: Event = serde_json::from_value(json!({
        "event_id": "ev-1", "service_name": "checkout", "event_type": "THRESHOLD_BREACH",
        "timestamp": 1_700_000_000_000i64, "environment": "PRODUCTION",
        "details": "CPU above limit on web-1", "severity": "critical",
        "metadata": {"cpu_usage": 95.5, "cores": 8, "region": "eu-west-1", "ok": false,
                     "nested": {"a": {"b": "deep"}}, "list": ["x", "y", 3], "none": null,
                     "seen": "2023-11-14T22:13:20Z", "num_str": "90"},
        "source": "prometheus", "source_type": "webhook", "host": "web-1",
        "tags": {"team": "payments", "k8s.io/app": "shop"},
        "fingerprint": "fp-1", "correlation_id": "req-1", "received_at": 1_700_000_000_500i64
    }))
    .unwrap();
    Subject::Event(Box::new(e))
}

fn incident() -> Subject {
    let i: Incident = serde_json::from_value(json!({
        "id": "inc-1", "title": "checkout latency", "description": "p99 up", "severity": "high",
        "score": 0.8, "status": "open", "service_name": "checkout",
        "affected_services": ["checkout", "payments"], "detected_at": NOW - 60_000,
        "updated_at": NOW, "acknowledged_at": null, "resolved_at": null,
        "correlation_id": "c", "fingerprint": "f", "labels": {"team": "shop"},
        "event_ids": [], "anomaly_ids": [], "occurrences": 3, "assignee": null,
        "flapping": false, "timeline": []
    }))
    .unwrap();
    Subject::Incident(Box::new(i))
}

fn eval(kind: AppliesTo, doc: Value, subject: &Subject) -> bool {
    Condition::compile(kind, &doc)
        .unwrap_or_else(|e| panic!("{doc} should compile: {e}"))
        .matches(subject, NOW)
}

#[test]
fn event_condition_semantics() {
    let ev = event();
    let cases: &[(Value, bool)] = &[
        // the spec's example, with a lower-case event type
        (
            json!({"event_type": "threshold_breach", "severity": ["critical","high"], "metadata.cpu_usage": {"$gt": 90}}),
            true,
        ),
        (json!({}), true),
        (json!({"service_name": "checkout"}), true),
        (json!({"service": "checkout"}), true),
        (json!({"service_name": "Checkout"}), false),
        (json!({"environment": "production"}), true),
        (json!({"source_type": "WEBHOOK"}), true),
        (json!({"severity": "fatal"}), true),
        (json!({"severity": {"$gte": "high"}}), true),
        (json!({"severity": {"$lt": "high"}}), false),
        (json!({"metadata.cpu_usage": {"$gt": 95.5}}), false),
        (
            json!({"metadata.cpu_usage": {"$gte": 95.5, "$lt": 96}}),
            true,
        ),
        (json!({"metadata.cores": 8}), true),
        (json!({"metadata.cores": 8.0}), true),
        (json!({"metadata.cores": {"$in": [4, 8]}}), true),
        (json!({"metadata.cores": {"$nin": [4, 8]}}), false),
        (json!({"metadata.ok": false}), true),
        (json!({"metadata.nested.a.b": "deep"}), true),
        (json!({"metadata.nested.a.c": {"$exists": false}}), true),
        (json!({"metadata.nested": {"$contains": "a"}}), true),
        (json!({"metadata.list": "y"}), true),
        (json!({"metadata.list": {"$contains": 3}}), true),
        (json!({"metadata.list.1": "y"}), true),
        (json!({"metadata.list": {"$gt": 2}}), true),
        (json!({"metadata.none": null}), true),
        (json!({"metadata.none": {"$exists": true}}), true),
        // missing fields
        (json!({"metadata.missing": {"$gt": 0}}), false),
        (json!({"metadata.missing": {"$lte": 0}}), false),
        (json!({"metadata.missing": {"$ne": 1}}), true),
        (json!({"metadata.missing": {"$nin": [1]}}), true),
        (json!({"metadata.missing": null}), true),
        (json!({"metadata.missing": {"$exists": true}}), false),
        (json!({"metadata.missing": {"$regex": ".*"}}), false),
        (
            json!({"metadata.cpu_usage.deeper": {"$exists": false}}),
            true,
        ),
        // type mismatches: no coercion
        (json!({"metadata.num_str": 90}), false),
        (json!({"metadata.num_str": {"$gt": 80}}), false),
        (json!({"metadata.region": {"$gt": 1}}), false),
        (json!({"metadata.cores": "8"}), false),
        (json!({"metadata.cores": {"$ne": "8"}}), true),
        // strings
        (json!({"details": {"$contains": "above"}}), true),
        (json!({"message": {"$startswith": "CPU"}}), true),
        (json!({"details": {"$endswith": "web-1"}}), true),
        (json!({"details": {"$regex": "^cpu"}}), false),
        (json!({"details": {"$regex": "(?i)^cpu"}}), true),
        (json!({"metadata.cores": {"$regex": "8"}}), false),
        (json!({"host": {"$in": ["web-1", "web-2"]}}), true),
        // tags
        (json!({"tags.team": "payments"}), true),
        (json!({"tags.k8s.io/app": "shop"}), true),
        (json!({"tags": {"$contains": "team"}}), true),
        (json!({"tags.owner": {"$exists": true}}), false),
        // time
        (json!({"timestamp": {"$timediff_lt": 601}}), true),
        (json!({"timestamp": {"$timediff_gt": 599}}), true),
        (json!({"timestamp": {"$timediff_lt": 600}}), false),
        (
            json!({"metadata.seen": {"$timediff_gt": 599, "$timediff_lt": 601}}),
            true,
        ),
        (json!({"metadata.region": {"$timediff_lt": 1e9}}), false),
        // combinators
        (
            json!({"$or": [{"service_name": "x"}, {"host": "web-1"}]}),
            true,
        ),
        (
            json!({"$or": [{"service_name": "x"}, {"host": "web-2"}]}),
            false,
        ),
        (
            json!({"$and": [{"service_name": "checkout"}, {"$not": {"host": "web-1"}}]}),
            false,
        ),
        (json!({"$not": {"metadata.cpu_usage": {"$lt": 50}}}), true),
        (json!({"metadata.cpu_usage": {"$not": {"$lt": 50}}}), true),
        (json!({"metadata.missing": {"$not": {"$gt": 1}}}), true),
    ];
    for (doc, want) in cases {
        assert_eq!(eval(AppliesTo::Events, doc.clone(), &ev), *want, "{doc}");
    }
}

#[test]
fn incident_condition_semantics() {
    let inc = incident();
    let cases: &[(Value, bool)] = &[
        (json!({"affected_services": "payments"}), true),
        (
            json!({"affected_services": {"$contains": "payments"}}),
            true,
        ),
        (json!({"affected_services": {"$startswith": "pay"}}), true),
        (json!({"status": "OPEN"}), true),
        (json!({"resolved_at": {"$exists": false}}), true),
        (json!({"assignee": null}), true),
        (
            json!({"labels.team": "shop", "occurrences": {"$gte": 3}}),
            true,
        ),
        (json!({"detected_at": {"$timediff_lt": 120}}), true),
        (json!({"flapping": true}), false),
        (json!({"severity": {"$in": ["critical"]}}), false),
    ];
    for (doc, want) in cases {
        assert_eq!(
            eval(AppliesTo::Incidents, doc.clone(), &inc),
            *want,
            "{doc}"
        );
    }
    // A condition over events never matches an incident.
    assert!(!eval(AppliesTo::Events, json!({}), &inc));
}

// Other variants come with the playbook half of the crate.
#[allow(unreachable_patterns)]
fn fault(kind: AppliesTo, doc: Value) -> (String, String) {
    match Condition::compile(kind, &doc) {
        Err(RespondError::Invalid { path, reason }) => (path, reason),
        Ok(_) => panic!("{doc} should be refused"),
        Err(other) => panic!("unexpected error {other:?}"),
    }
}

#[test]
fn malformed_rules_are_refused_with_the_path_to_the_fault() {
    let cases: &[(Value, &str, &str)] = &[
        (
            json!({"$and": [{"service_name": "a"}, {"metadata.cpu_usage": {"$gt": "x"}}]}),
            "conditions.$and[1].metadata.cpu_usage.$gt",
            "expected a number",
        ),
        (json!([1]), "conditions", "expected a condition object"),
        (
            json!({"nope": 1}),
            "conditions.nope",
            "unknown field 'nope'",
        ),
        (
            json!({"metadata": {"cpu": 1}}),
            "conditions.metadata.cpu",
            "not an operator",
        ),
        (
            json!({"host": {"$like": "a"}}),
            "conditions.host.$like",
            "unknown operator",
        ),
        (json!({"$xor": []}), "conditions.$xor", "unknown combinator"),
        (json!({"$or": []}), "conditions.$or", "at least one"),
        (
            json!({"$or": {"a": 1}}),
            "conditions.$or",
            "expected an array",
        ),
        (
            json!({"$and": [1]}),
            "conditions.$and[0]",
            "expected a condition object",
        ),
        (json!({"host": {}}), "conditions.host", "expected a value"),
        (json!({"host": []}), "conditions.host", "at least one"),
        (
            json!({"host": [[1]]}),
            "conditions.host[0]",
            "expected a string",
        ),
        (
            json!({"host": {"$in": "a"}}),
            "conditions.host.$in",
            "expected an array",
        ),
        (
            json!({"host": {"$regex": "("}}),
            "conditions.host.$regex",
            "invalid regular expression",
        ),
        (
            json!({"host": {"$regex": "a{1000}{1000}"}}),
            "conditions.host.$regex",
            "invalid regular expression",
        ),
        (
            json!({"host": {"$exists": 1}}),
            "conditions.host.$exists",
            "expected true or false",
        ),
        (
            json!({"timestamp": {"$timediff_lt": -1}}),
            "conditions.timestamp.$timediff_lt",
            "between 0",
        ),
        (
            json!({"timestamp": {"$timediff_gt": "1h"}}),
            "conditions.timestamp.$timediff_gt",
            "number of seconds",
        ),
        (
            json!({"severity": "severe"}),
            "conditions.severity",
            "unknown severity",
        ),
        (
            json!({"severity": {"$gt": true}}),
            "conditions.severity.$gt",
            "severity name",
        ),
        (
            json!({"host": {"$startswith": 1}}),
            "conditions.host.$startswith",
            "expected a string",
        ),
        (
            json!({"severity": {"$endswith": "gh"}}),
            "conditions.severity.$endswith",
            "do not apply to a severity",
        ),
        (
            json!({"metadata.": 1}),
            "conditions.metadata.",
            "empty path segment",
        ),
        (json!({"host.x": 1}), "conditions.host.x", "unknown field"),
        (
            json!({"$not": {"x": 1}}),
            "conditions.$not.x",
            "unknown field",
        ),
        (
            json!({"host": {"$not": {"$gt": "a"}}}),
            "conditions.host.$not.$gt",
            "expected a number",
        ),
    ];
    for (doc, path, reason) in cases {
        let (p, r) = fault(AppliesTo::Events, doc.clone());
        assert_eq!(&p, path, "{doc}: {r}");
        assert!(r.contains(reason), "{doc}: reason '{r}' lacks '{reason}'");
    }
    // Fields are per subject kind.
    assert_eq!(
        fault(AppliesTo::Anomalies, json!({"metadata.x": 1})).0,
        "conditions.metadata.x"
    );
    assert_eq!(
        fault(AppliesTo::Incidents, json!({"event_type": "X"})).0,
        "conditions.event_type"
    );
}

#[test]
fn limits_bound_depth_and_size() {
    let mut doc = json!({"host": "a"});
    for _ in 0..40 {
        doc = json!({"$not": doc});
    }
    assert!(
        fault(AppliesTo::Events, doc)
            .1
            .contains("nested too deeply")
    );
    let many: Vec<Value> = (0..2000)
        .map(|i| json!({"host": format!("h{i}")}))
        .collect();
    assert!(
        fault(AppliesTo::Events, json!({"$or": many}))
            .1
            .contains("too large")
    );
    let long = "x".repeat(super::MAX_STRING + 1);
    assert!(
        fault(AppliesTo::Events, json!({"host": long}))
            .1
            .contains("longer than")
    );
}

#[test]
fn index_keys_come_from_required_top_level_equalities() {
    let c = Condition::compile(
        AppliesTo::Events,
        &json!({"$and": [{"event_type": ["error", "fatal"]}], "service_name": "api"}),
    )
    .unwrap();
    assert_eq!(
        c.required_values(super::Accessor::is_event_type),
        Some(vec!["ERROR", "FATAL"])
    );
    assert_eq!(
        c.required_values(super::Accessor::is_service_name),
        Some(vec!["api"])
    );
    let or = Condition::compile(
        AppliesTo::Events,
        &json!({"$or": [{"event_type": "A"}, {"host": "h"}]}),
    )
    .unwrap();
    assert_eq!(or.required_values(super::Accessor::is_event_type), None);
}

mod props {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            prop_oneof![
                Just("$gt".to_owned()),
                Just("$regex".to_owned()),
                Just("$and".to_owned()),
                Just("$or".to_owned()),
                Just("$not".to_owned()),
                Just("$in".to_owned()),
                Just("metadata.cpu_usage".to_owned()),
                Just("severity".to_owned()),
                Just("$timediff_lt".to_owned()),
                Just("$contains".to_owned()),
                Just("tags.team".to_owned()),
                Just("$exists".to_owned()),
                ".{0,12}",
            ]
            .prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            let key = prop_oneof![
                Just("$and".to_owned()),
                Just("$or".to_owned()),
                Just("$not".to_owned()),
                Just("$gt".to_owned()),
                Just("$lte".to_owned()),
                Just("$in".to_owned()),
                Just("$nin".to_owned()),
                Just("$regex".to_owned()),
                Just("$eq".to_owned()),
                Just("$contains".to_owned()),
                Just("$exists".to_owned()),
                Just("$timediff_gt".to_owned()),
                Just("$startswith".to_owned()),
                Just("metadata.cpu_usage".to_owned()),
                Just("metadata.list".to_owned()),
                Just("severity".to_owned()),
                Just("service_name".to_owned()),
                Just("event_type".to_owned()),
                Just("timestamp".to_owned()),
                Just("tags".to_owned()),
                Just("affected_services".to_owned()),
                "[a-z$.]{0,8}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key, inner), 0..4)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn compile_then_evaluate_never_panics(doc in json_value()) {
            let subjects = [event(), incident()];
            for kind in [AppliesTo::Events, AppliesTo::Anomalies, AppliesTo::Incidents] {
                if let Ok(c) = Condition::compile(kind, &doc) {
                    for s in &subjects {
                        let _ = c.matches(s, NOW);
                        let _ = c.matches(s, i64::MIN);
                        let _ = c.matches(s, i64::MAX);
                    }
                }
            }
        }
    }
}
