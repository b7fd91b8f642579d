//! The OpenAPI document against the routes a real node serves: every route documented,
//! nothing documented that is not served, security as the policy table says, references
//! that resolve, and the document and its explorer reachable without credentials.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;

use common::TestApp;
use serde_json::{Value, json};
use sightline_api::Role;
use sightline_auth::Access;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// A node with auth on (the document must be public even then).
async fn secured() -> TestApp {
    TestApp::spawn_with(|c| c.auth.enabled = true).await
}

async fn fetch_document(app: &TestApp) -> Value {
    let res = app.get("/api/openapi.json").await;
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    res.json().await.unwrap()
}

/// Every `(METHOD, path)` operation of `doc`.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if item.get(method).is_some() {
                out.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// The routes a node with `role` serves, their paths as OpenAPI writes them.
fn served(role: Role) -> BTreeSet<(String, String)> {
    sightline_api::routes(role)
        .registered()
        .iter()
        .map(|(m, p)| (m.to_string(), sightline_api::openapi::openapi_path(p)))
        .collect()
}

/// The policy entry of the route documented as `path`.
fn access(method: &str, path: &str) -> Access {
    let method = method.parse().unwrap();
    let route = sightline_api::routes(Role::All)
        .registered()
        .iter()
        .find(|(m, p)| *m == method && sightline_api::openapi::openapi_path(p) == path)
        .map(|(_, p)| *p)
        .unwrap();
    sightline_api::auth::policy::access(&method, route).unwrap()
}

#[tokio::test]
async fn documents_exactly_the_served_routes() {
    let app = secured().await;
    let doc = fetch_document(&app).await;
    let documented = operations(&doc);
    let served = served(Role::All);
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");
    // Aliases are documented as the `/api/v1` operation they share a handler with.
    let alias = &doc["paths"]["/api/incidents/{id}"]["patch"];
    let canonical = &doc["paths"]["/api/v1/incidents/{id}"]["patch"];
    assert_eq!(alias["summary"], canonical["summary"]);
    assert_eq!(alias["requestBody"], canonical["requestBody"]);
    assert_ne!(alias["operationId"], canonical["operationId"]);
    app.shutdown().await;
}

#[test]
fn a_node_documents_only_its_own_role_routes() {
    for role in [Role::Ingest, Role::Api, Role::Process] {
        let routes = sightline_api::routes(role);
        let doc =
            serde_json::to_value(sightline_api::openapi::document(routes.registered())).unwrap();
        assert_eq!(operations(&doc), served(role), "{role:?}");
    }
    let ingest = served(Role::Ingest);
    assert!(ingest.contains(&("POST".into(), "/api/v1/events".into())));
    assert!(!ingest.contains(&("GET".into(), "/api/v1/incidents".into())));
}

#[tokio::test]
async fn every_operation_has_a_summary_a_tag_a_success_and_the_policy_security() {
    let app = secured().await;
    let doc = fetch_document(&app).await;
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][method.to_lowercase()];
        let name = format!("{method} {path}");
        if op["summary"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no summary"));
        }
        match op["tags"].as_array().map(Vec::as_slice) {
            Some([tag]) if tags.contains(tag.as_str().unwrap()) => {}
            other => problems.push(format!("{name}: tags {other:?}")),
        }
        if !operation_ids.insert(op["operationId"].as_str().unwrap().to_owned()) {
            problems.push(format!("{name}: duplicate operationId"));
        }
        let responses = op["responses"].as_object().unwrap();
        if !responses.keys().any(|s| s.starts_with('2')) {
            problems.push(format!("{name}: no 2xx response"));
        }
        for (status, response) in responses {
            let is_error = status.starts_with('4') || status.starts_with('5');
            // `/ready` answers 503 with its checks, the same JSON document as its 200.
            let checks = path == "/ready" && status == "503";
            if is_error
                && !checks
                && response["content"]
                    .get("application/problem+json")
                    .is_none()
            {
                problems.push(format!("{name}: {status} is not a problem document"));
            }
        }
        let access = access(&method, &path);
        let security = op.get("security").and_then(Value::as_array);
        match (access, security) {
            (Access::Public, None) => {}
            (Access::Public, Some(s)) => problems.push(format!("{name}: public but {s:?}")),
            (_, None) => problems.push(format!("{name}: guarded but no security")),
            (_, Some(requirements)) => {
                let bearer = requirements.iter().any(|r| r.get("bearer").is_some());
                if !bearer || !responses.contains_key("401") {
                    problems.push(format!("{name}: {requirements:?}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The policy's roles show in the requirements.
    let users = &doc["paths"]["/api/v1/users"]["get"]["security"];
    assert_eq!(users, &json!([{"bearer": ["admin"]}]));
    let events = &doc["paths"]["/api/v1/events"]["get"]["security"];
    assert_eq!(
        events,
        &json!([{"bearer": ["viewer"]}, {"api_key": ["read"]}])
    );
    app.shutdown().await;
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_reference_resolves() {
    let app = secured().await;
    let doc = fetch_document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["info"]["title"], "sightline");
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 50, "only {} references", all.len());
    let unresolved: Vec<_> = all
        .iter()
        .filter(|r| {
            r.strip_prefix('#')
                .is_none_or(|pointer| doc.pointer(pointer).is_none())
        })
        .collect();
    assert!(unresolved.is_empty(), "unresolved: {unresolved:?}");
    // Component names are what a client generator turns into type names: no generics.
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "{name}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_document_and_the_explorer_are_served_without_credentials() {
    let app = secured().await;
    for (path, content_type) in [
        ("/api/openapi.json", "application/json"),
        ("/api/docs", "text/html"),
        ("/api/docs/explorer.js", "text/javascript"),
        ("/api/docs/explorer.css", "text/css"),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 200, "{path}");
        let headers = res.headers();
        let ct = headers["content-type"].to_str().unwrap();
        assert!(ct.starts_with(content_type), "{path}: {ct}");
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://cdn"),
            "{path}"
        );
    }
    // The page loads its script and style from this origin, and nothing inline.
    let page = app.get("/api/docs").await.text().await.unwrap();
    assert!(page.contains(r#"src="/api/docs/explorer.js""#));
    assert!(page.contains(r#"href="/api/docs/explorer.css""#));
    assert!(!page.contains("<style") && !page.contains("<script>"));
    // The script never renders document or response text as HTML.
    let script = app.get("/api/docs/explorer.js").await.text().await.unwrap();
    assert!(!script.contains("innerHTML") && !script.contains("insertAdjacentHTML"));
    let res = app.get("/api/docs/nope.js").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    app.shutdown().await;
}

/// Checks `body` against the schema `doc` gives for `status` of `method path`.
fn assert_matches_schema(doc: &Value, method: &str, path: &str, status: u16, body: &Value) {
    let response = &doc["paths"][path][method]["responses"][status.to_string()];
    let content = if status >= 400 && response.get("$ref").is_some() {
        &doc["components"]["responses"]["Problem"]["content"]
    } else {
        &response["content"]
    };
    let schema = content
        .as_object()
        .and_then(|c| c.values().next())
        .map(|media| media["schema"].clone())
        .unwrap_or_else(|| panic!("{method} {path} documents no {status} body"));
    // The schema's `$ref`s point into `#/components`: give it the components as its root.
    let mut root = schema;
    root["components"] = doc["components"].clone();
    let validator = jsonschema::draft202012::new(&root).expect("a valid JSON Schema");
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status} does not match its schema:\n{}\nbody: {body}",
        errors.join("\n")
    );
}

#[tokio::test]
async fn real_answers_match_their_documented_schemas() {
    let app = TestApp::spawn().await;
    let doc = fetch_document(&app).await;
    let check = async |method: &str, path: &str, url: &str, body: Option<Value>| {
        let request = app
            .client
            .request(method.to_uppercase().parse().unwrap(), app.url(url));
        let request = match body {
            Some(b) => request.json(&b),
            None => request,
        };
        let res = request.send().await.unwrap();
        let status = res.status().as_u16();
        let value: Value = res.json().await.unwrap();
        assert_matches_schema(&doc, method, path, status, &value);
        value
    };
    let event = json!({
        "service_name": "checkout",
        "event_type": "ERROR",
        "severity": "high",
        "details": "payment gateway timeout",
        "host": "web-1",
        "metadata": {"attempt": 3},
    });
    let accepted = check("post", "/api/v1/events", "/api/v1/events", Some(event)).await;
    let id = accepted["event_id"].as_str().unwrap().to_owned();
    app.wait_for_events("service=checkout", 1).await;
    check(
        "get",
        "/api/v1/events",
        "/api/v1/events?service=checkout",
        None,
    )
    .await;
    let url = format!("/api/v1/events/{id}");
    check("get", "/api/v1/events/{id}", &url, None).await;
    check("get", "/api/v1/events/{id}", "/api/v1/events/missing", None).await;
    // Insights are off by default: an empty list and a 404, both as documented.
    check("get", "/api/v1/insights", "/api/v1/insights?limit=10", None).await;
    let url = format!("/api/v1/events/{id}/insight");
    check("get", "/api/v1/events/{id}/insight", &url, None).await;
    check(
        "get",
        "/api/v1/events/analytics",
        "/api/v1/events/analytics",
        None,
    )
    .await;
    let incident = json!({
        "title": "Checkout failing",
        "severity": "critical",
        "service_name": "checkout",
        "description": "payments time out",
    });
    let created = check(
        "post",
        "/api/v1/incidents",
        "/api/v1/incidents",
        Some(incident),
    )
    .await;
    let url = format!("/api/v1/incidents/{}", created["id"].as_str().unwrap());
    check("get", "/api/v1/incidents/{id}", &url, None).await;
    let change = json!({"status": "acknowledged", "note": "looking"});
    check(
        "patch",
        "/api/incidents/{id}",
        &url.replace("/v1", ""),
        Some(change),
    )
    .await;
    check("get", "/api/v1/incidents", "/api/v1/incidents", None).await;
    let bad = json!({"title": "", "severity": "critical", "service_name": "x"});
    check("post", "/api/v1/incidents", "/api/v1/incidents", Some(bad)).await;
    check("get", "/api/v1/silences", "/api/v1/silences", None).await;
    check("get", "/api/v1/topics", "/api/v1/topics", None).await;
    check("get", "/api/v1/users", "/api/v1/users", None).await;
    check("get", "/api/v1/auth/me", "/api/v1/auth/me", None).await;
    check("get", "/health", "/health", None).await;
    app.shutdown().await;
}

/// The explorer in a real headless Chromium (Debian's `chromium`, which `scripts/test.sh`
/// installs; `SIGHTLINE_TEST_CHROMIUM` points elsewhere): under the API's Content Security
/// Policy its script runs, reads the document and lists every operation by tag.
#[tokio::test]
async fn the_explorer_renders_every_operation_in_a_browser() {
    let app = secured().await;
    let doc = fetch_document(&app).await;
    let chromium =
        std::env::var("SIGHTLINE_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            // Lets the page's fetch of the document and its rendering finish before the dump.
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(app.url("/api/docs"))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{chromium}: {e}"));
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(
        dom.contains(r#"<main id="operations""#),
        "no page from {chromium}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!dom.contains("Could not load"), "{dom}");
    assert!(dom.contains("sightline API"), "{dom}");
    for (method, path) in operations(&doc) {
        // Rendered as text: `{` stays `{`, `&` would be `&amp;`.
        let row = format!(
            r#"<span class="method {}">{}</span><span class="path">{}</span>"#,
            method.to_lowercase(),
            method.to_lowercase(),
            path
        );
        assert!(dom.contains(&row), "{method} {path} not listed");
    }
    assert!(dom.contains("<h2>incidents</h2>"));
    app.shutdown().await;
}
