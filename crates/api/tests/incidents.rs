//! The incident API end to end on a real node (SQLite, event log, loopback HTTP): manual
//! incidents, filters and pagination, the lifecycle with its timeline, the topics they are
//! published on, silences, topology, anomalies and correlations.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::TestApp;
use serde_json::{Value, json};

async fn send(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

async fn create(app: &TestApp, title: &str, severity: &str, service: &str) -> Value {
    let (status, body) = send(
        app,
        "POST",
        "/api/v1/incidents",
        Some(json!({"title": title, "severity": severity, "service_name": service})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// Every incident id the list returns for `query`, following cursors with pages of `page`.
async fn all_ids(app: &TestApp, prefix: &str, query: &str, page: u32) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut url = format!("{prefix}?limit={page}&{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let (status, body) = send(app, "GET", &url, None).await;
        assert_eq!(status, 200, "{url}: {body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= page as usize);
        ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(pages >= 1);
    ids
}

fn field_of(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or("")
}

async fn topic_records(app: &TestApp, topic: &str) -> u64 {
    let (status, body) = send(app, "GET", "/api/v1/topics", None).await;
    assert_eq!(status, 200);
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == topic)
        .map_or(0, |t| t["records"].as_u64().unwrap())
}

#[tokio::test]
async fn incidents_are_created_listed_paginated_and_moved_through_their_lifecycle() {
    let app = TestApp::spawn().await;

    // 25 manual incidents on two services and three severities.
    let mut created = Vec::new();
    for i in 0..25 {
        let (severity, service) = match i % 3 {
            0 => ("critical", "checkout"),
            1 => ("high", "payments"),
            _ => ("low", "checkout"),
        };
        let inc = create(&app, &format!("incident {i}"), severity, service).await;
        assert_eq!(inc["status"], "open");
        assert_eq!(inc["severity"], severity);
        assert_eq!(inc["timeline"][0]["kind"], "created");
        assert!(
            inc["timeline"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("created by ")
        );
        assert_eq!(inc["id"].as_str().unwrap().len(), 36);
        created.push(inc["id"].as_str().unwrap().to_owned());
    }

    // Pages of 10: three pages, every incident exactly once, newest first.
    for prefix in ["/api/v1/incidents", "/api/incidents"] {
        let ids = all_ids(&app, prefix, "", 10).await;
        assert_eq!(ids.len(), 25, "{prefix}");
        let unique: BTreeSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), 25, "no repeats on {prefix}");
        let mut expected = created.clone();
        expected.reverse();
        assert_eq!(ids, expected, "newest first, no gaps on {prefix}");
    }

    // Filters.
    let critical = all_ids(&app, "/api/v1/incidents", "severity=critical", 10).await;
    assert_eq!(critical.len(), 9);
    let at_least_high = all_ids(&app, "/api/v1/incidents", "min_severity=high", 10).await;
    assert_eq!(at_least_high.len(), 17);
    let payments = all_ids(&app, "/api/v1/incidents", "service=payments", 10).await;
    assert_eq!(payments.len(), 8);
    let open = all_ids(
        &app,
        "/api/v1/incidents",
        "status=open,acknowledged&hours=1",
        7,
    )
    .await;
    assert_eq!(open.len(), 25);

    // Bad filters name the parameter.
    for (query, field) in [
        ("status=closed", "status"),
        ("severity=huge", "severity"),
        ("min_severity=x", "min_severity"),
        ("severity=high&min_severity=low", "min_severity"),
        ("limit=0", "limit"),
        ("hours=abc", "hours"),
        ("cursor=garbage", "cursor"),
        ("colour=red", "colour"),
    ] {
        let (status, body) = send(&app, "GET", &format!("/api/v1/incidents?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(field_of(&body), field, "{query}: {body}");
    }

    // One incident with its evidence, under both paths.
    let id = created[0].clone();
    for prefix in ["/api/v1/incidents", "/api/incidents"] {
        let (status, body) = send(&app, "GET", &format!("{prefix}/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["timeline"].as_array().unwrap().len(), 1);
        assert_eq!(body["anomalies"], json!([]));
        assert_eq!(body["correlations"], json!([]));
        assert_eq!(body["events"], json!([]));
    }
    let (status, body) = send(&app, "GET", "/api/v1/incidents/no-such-id", None).await;
    assert_eq!(status, 404, "{body}");

    // The lifecycle: open → acknowledged (with an assignee and a note) → resolved.
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(json!({"status": "acknowledged", "assignee": "alice", "note": "looking"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "acknowledged");
    assert_eq!(body["assignee"], "alice");
    assert!(body["acknowledged_at"].is_i64());
    let actor = body["timeline"][0]["actor"].as_str().unwrap().to_owned();
    let kinds: Vec<&str> = body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(
        body["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == actor.as_str())
    );
    // The alias patches too; null unassigns.
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/incidents/{id}"),
        Some(json!({"status": "resolved", "assignee": null})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "resolved");
    assert!(body["assignee"].is_null());
    assert!(body["resolved_at"].is_i64());
    assert!(body["timeline"].as_array().unwrap().len() >= 6);

    // resolved → acknowledged is not a transition: 409 naming both.
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(json!({"status": "acknowledged"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        detail.contains("resolved") && detail.contains("acknowledged"),
        "{detail}"
    );
    // Unknown incident, unknown status, empty patch, unknown field.
    let (status, _) = send(
        &app,
        "PATCH",
        "/api/v1/incidents/no-such-id",
        Some(json!({"status": "resolved"})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(json!({"status": "closed"})),
    )
    .await;
    assert_eq!((status, field_of(&body)), (422, "status"), "{body}");
    let (status, _) = send(
        &app,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, 422);
    let (status, body) = send(
        &app,
        "PATCH",
        &format!("/api/v1/incidents/{id}"),
        Some(json!({"priority": 1})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // The filters see the new statuses; stats count them.
    let resolved = all_ids(&app, "/api/v1/incidents", "status=resolved", 10).await;
    assert_eq!(resolved, vec![id.clone()]);
    let (status, stats) = send(&app, "GET", "/api/v1/incidents/stats", None).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(
        (stats["open"].as_u64(), stats["resolved"].as_u64()),
        (Some(24), Some(1))
    );

    // Invalid new incidents: precise fields.
    for (body, code, field) in [
        (
            json!({"title": " ", "severity": "high", "service_name": "x"}),
            422,
            "title",
        ),
        (
            json!({"title": "t".repeat(201), "severity": "high", "service_name": "x"}),
            422,
            "title",
        ),
        (
            json!({"title": "t", "severity": "apocalyptic", "service_name": "x"}),
            422,
            "severity",
        ),
        (
            json!({"title": "t", "severity": "high", "service_name": ""}),
            422,
            "service_name",
        ),
        (json!({"title": "t", "severity": "high"}), 400, "$"),
        (
            json!({"title": 5, "severity": "high", "service_name": "x"}),
            400,
            "title",
        ),
    ] {
        let (status, problem) = send(&app, "POST", "/api/v1/incidents", Some(body.clone())).await;
        assert_eq!(status, code, "{body}: {problem}");
        assert_eq!(field_of(&problem), field, "{body}: {problem}");
    }
    // The alias creates too.
    let (status, body) = send(
        &app,
        "POST",
        "/api/incidents",
        Some(
            json!({"title": "via alias", "severity": "medium", "service_name": "db",
                    "affected_services": ["db", "api"], "assignee": "bob"}),
        ),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["affected_services"], json!(["db", "api"]));
    assert_eq!(body["assignee"], "bob");

    // Published: 26 created, 2 changes.
    assert_eq!(topic_records(&app, "incidents.detected").await, 26);
    assert_eq!(topic_records(&app, "incidents.updated").await, 2);

    // The detection pipeline is not wired here: empty lists, 200.
    let (status, body) = send(
        &app,
        "GET",
        "/api/v1/anomalies?service=checkout&hours=24",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]));
    let (status, body) = send(&app, "GET", "/api/v1/anomalies?hours=-1", None).await;
    assert_eq!((status, field_of(&body)), (400, "hours"), "{body}");
    let (status, body) = send(&app, "GET", "/api/v1/events/some-event/correlations", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]));

    app.shutdown().await;
}

#[tokio::test]
async fn silences_are_created_listed_and_expired() {
    let app = TestApp::spawn().await;
    let (status, body) = send(
        &app,
        "POST",
        "/api/v1/silences",
        Some(json!({
            "matchers": [
                {"name": "service", "op": "=", "value": "db"},
                {"name": "host", "op": "=~", "value": "db-[0-9]+"}
            ],
            "duration": "2h",
            "comment": "database maintenance, CHG-1234"
        })),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    assert_eq!(body["state"], "active");
    let window = body["ends_at"].as_i64().unwrap() - body["starts_at"].as_i64().unwrap();
    assert_eq!(window, 2 * 3_600_000);
    assert!(!body["created_by"].as_str().unwrap().is_empty());

    let (status, body) = send(&app, "GET", "/api/v1/silences", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["id"], id.as_str());

    // Invalid ones, each naming the field.
    let now = chrono::Utc::now().timestamp_millis();
    for (silence, code, field) in [
        (
            json!({"matchers": [{"name": "host", "op": "=~", "value": "db-(["}],
                   "duration": "1h", "comment": "c"}),
            422,
            "matchers[0].value",
        ),
        (
            json!({"matchers": [], "duration": "1h", "comment": "c"}),
            422,
            "matchers",
        ),
        (
            json!({"matchers": [{"name": "a", "op": "~~", "value": "x"}],
                   "duration": "1h", "comment": "c"}),
            400,
            "matchers[0].op",
        ),
        (
            json!({"matchers": [{"name": "a", "op": "=", "value": "x"}],
                   "starts_at": now + 3_600_000, "ends_at": now + 60_000, "comment": "c"}),
            422,
            "ends_at",
        ),
        (
            json!({"matchers": [{"name": "a", "op": "=", "value": "x"}], "comment": "c"}),
            422,
            "ends_at",
        ),
        (
            json!({"matchers": [{"name": "a", "op": "=", "value": "x"}],
                   "duration": "2 fortnights", "comment": "c"}),
            422,
            "duration",
        ),
        (
            json!({"matchers": [{"name": "a", "op": "=", "value": "x"}],
                   "duration": "1h", "comment": ""}),
            422,
            "comment",
        ),
    ] {
        let (status, problem) = send(&app, "POST", "/api/v1/silences", Some(silence.clone())).await;
        assert_eq!(status, code, "{silence}: {problem}");
        assert_eq!(field_of(&problem), field, "{silence}: {problem}");
    }

    // Expire: 200 with it, gone from the default list, kept with include_expired.
    let (status, body) = send(&app, "DELETE", &format!("/api/v1/silences/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "expired");
    let (_, body) = send(&app, "GET", "/api/v1/silences", None).await;
    assert_eq!(body["items"], json!([]));
    let (_, body) = send(&app, "GET", "/api/v1/silences?include_expired=true", None).await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    let (status, body) = send(&app, "GET", "/api/v1/silences?include_expired=maybe", None).await;
    assert_eq!((status, field_of(&body)), (400, "include_expired"));
    let (status, _) = send(&app, "DELETE", "/api/v1/silences/no-such-id", None).await;
    assert_eq!(status, 404);

    // Audited.
    let (status, body) = send(&app, "GET", "/api/v1/audit?action=silence", None).await;
    assert_eq!(status, 200, "{body}");
    let actions: BTreeSet<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        BTreeSet::from(["silence.create", "silence.expire"])
    );
    app.shutdown().await;
}

#[tokio::test]
async fn topology_is_versioned_and_validated() {
    let app = TestApp::spawn().await;
    let (status, body) = send(&app, "GET", "/api/v1/topology", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["version"], 0);
    assert_eq!(body["topology"]["services"], json!({}));

    let graph = json!({"services": {
        "db": {"depends_on": [], "criticality": 2},
        "api": {"depends_on": ["db"]}
    }});
    for expected in [1, 2] {
        let (status, body) = send(&app, "PUT", "/api/v1/topology", Some(graph.clone())).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["version"], expected);
    }
    let (_, body) = send(&app, "GET", "/api/v1/topology", None).await;
    assert_eq!(body["version"], 2);
    assert_eq!(body["topology"]["services"]["db"]["criticality"], 2.0);
    assert_eq!(body["topology"]["services"]["api"]["criticality"], 1.0);
    assert!(body["updated_at"].is_i64());
    assert!(body["updated_by"].is_string());

    for (bad, code, field) in [
        (
            json!({"services": {"api": {"depends_on": ["ghost"]}}}),
            422,
            "services.api.depends_on",
        ),
        (
            json!({"services": {"db": {"criticality": 50}}}),
            422,
            "services.db.criticality",
        ),
        (
            json!({"services": {"db": {"weight": 1}}}),
            400,
            "services.db",
        ),
    ] {
        let (status, problem) = send(&app, "PUT", "/api/v1/topology", Some(bad.clone())).await;
        assert_eq!(status, code, "{bad}: {problem}");
        assert!(field_of(&problem).starts_with(field), "{bad}: {problem}");
    }
    // Refused puts change nothing.
    let (_, body) = send(&app, "GET", "/api/v1/topology", None).await;
    assert_eq!(body["version"], 2);
    app.shutdown().await;
}
