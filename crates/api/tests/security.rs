//! The attack suite: a real node with authentication on, attacked over real HTTP.
//!
//! JWT forgeries, the whole route × role matrix against the policy table, API-key abuse,
//! signed-webhook tampering and replay, size limits, brute force, session theft, TLS and the
//! refusal to serve a public address unauthenticated.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::Method;
use common::{TestApp, now_ms};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sightline_api::{NodeConfig, Role};
use sightline_auth::webhook::{sign_hub, sign_standard};
use sightline_auth::{Access, Principal, VerifyKeyConfig};
use sightline_model::{Role as UserRole, Scope, Secret};

const JWT_SECRET: &str = "test-signing-secret-of-at-least-32-bytes!!";
const WEBHOOK_OLD: &str = "webhook-secret-old";
const WEBHOOK_NEW: &str = "webhook-secret-new";
const PASSWORD: &str = "correct horse battery staple";

fn secure(config: &mut NodeConfig) {
    config.auth.enabled = true;
    config.auth.jwt.secret = Secret::new(JWT_SECRET);
    config.auth.jwt.kid = "main".into();
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A node with auth on and an admin created through the bootstrap token.
struct Secured {
    app: TestApp,
    admin: String,
}

impl Secured {
    async fn start(tweak: impl FnOnce(&mut NodeConfig)) -> Self {
        let app = TestApp::spawn_with(|c| {
            secure(c);
            tweak(c);
        })
        .await;
        let token = app
            .bootstrap_token
            .clone()
            .expect("bootstrap token printed");
        let res = app
            .post_json(
                "/api/v1/auth/bootstrap",
                &json!({"token": token, "username": "root", "password": PASSWORD}),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let admin = login(&app, "root", PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        Secured { app, admin }
    }

    async fn user(&self, name: &str, role: UserRole) -> String {
        let res = self
            .send(
                Method::POST,
                "/api/v1/users",
                Some(&self.admin),
                Some(json!({"username": name, "password": PASSWORD, "role": role})),
            )
            .await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        login(&self.app, name, PASSWORD).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn key(&self, body: Value) -> Value {
        let res = self
            .send(Method::POST, "/api/v1/keys", Some(&self.admin), Some(body))
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.app.client.request(method, self.app.url(path));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.unwrap()
    }
}

async fn login(app: &TestApp, username: &str, password: &str) -> Value {
    let res = app
        .post_json(
            "/api/v1/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await;
    assert_eq!(res.status(), 200, "login of {username}");
    res.json().await.unwrap()
}

fn event(details: &str) -> Value {
    json!({"service_name": "attack-target", "event_type": "ERROR", "details": details, "timestamp": now_ms()})
}

#[tokio::test]
async fn bootstrap_token_creates_the_first_admin_only_once() {
    let app = TestApp::spawn_with(secure).await;
    let token = app.bootstrap_token.clone().unwrap();
    let bad = app
        .post_json(
            "/api/v1/auth/bootstrap",
            &json!({"token": "slb_wrong", "username": "root", "password": PASSWORD}),
        )
        .await;
    assert_eq!(bad.status(), 401);
    let weak = app
        .post_json(
            "/api/v1/auth/bootstrap",
            &json!({"token": token, "username": "root", "password": "short"}),
        )
        .await;
    assert_eq!(weak.status(), 400);
    let ok = app
        .post_json(
            "/api/v1/auth/bootstrap",
            &json!({"token": token, "username": "root", "password": PASSWORD}),
        )
        .await;
    assert_eq!(ok.status(), 201);
    let again = app
        .post_json(
            "/api/v1/auth/bootstrap",
            &json!({"token": token, "username": "root2", "password": PASSWORD}),
        )
        .await;
    assert_eq!(again.status(), 401);
    // Without credentials, nothing but the public routes answers.
    assert_eq!(app.get("/api/v1/events").await.status(), 401);
    assert_eq!(
        app.get("/api/v1/events").await.headers()["www-authenticate"],
        "Bearer realm=\"sightline\""
    );
    assert_eq!(app.get("/health").await.status(), 200);
    app.shutdown().await;
}

fn sign(claims: &Value, kid: Option<&str>, alg: Algorithm, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

#[tokio::test]
async fn forged_and_invalid_tokens_are_refused_before_any_handler_runs() {
    let sso = rcgen::KeyPair::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let public_pem = dir.path().join("sso.pub.pem");
    std::fs::write(&public_pem, sso.public_key_pem()).unwrap();
    let s = Secured::start(|c| {
        c.auth.jwt.algorithms = vec!["HS256".into(), "ES256".into()];
        c.auth.jwt.verify_keys = vec![VerifyKeyConfig {
            kid: "sso".into(),
            algorithm: "ES256".into(),
            secret: Secret::default(),
            file: Some(public_pem.clone()),
        }];
    })
    .await;
    let now = now_secs();
    let claims = |role: &str, iss: &str, aud: &str, nbf: u64, exp: u64| json!({"sub": "u1", "name": "mallory", "role": role, "iss": iss, "aud": aud, "nbf": nbf, "iat": now, "exp": exp, "jti": "j1"});
    let good = claims("admin", "sightline", "sightline-api", now, now + 600);
    let hs = EncodingKey::from_secret(JWT_SECRET.as_bytes());
    let b64 = |v: &Value| {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let valid = sign(&good, Some("main"), Algorithm::HS256, &hs);
    let (head, rest) = valid.split_once('.').unwrap();
    let signature = rest.split_once('.').unwrap().1;

    let forgeries: Vec<(&str, String)> = vec![
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(&json!({"alg": "none", "typ": "JWT"})),
                b64(&good)
            ),
        ),
        (
            "ES256 key used as an HMAC secret",
            sign(
                &good,
                Some("sso"),
                Algorithm::HS256,
                &EncodingKey::from_secret(sso.public_key_pem().as_bytes()),
            ),
        ),
        (
            "expired",
            sign(
                &claims(
                    "admin",
                    "sightline",
                    "sightline-api",
                    now - 7200,
                    now - 3600,
                ),
                Some("main"),
                Algorithm::HS256,
                &hs,
            ),
        ),
        (
            "not yet valid",
            sign(
                &claims(
                    "admin",
                    "sightline",
                    "sightline-api",
                    now + 3600,
                    now + 7200,
                ),
                Some("main"),
                Algorithm::HS256,
                &hs,
            ),
        ),
        (
            "wrong audience",
            sign(
                &claims("admin", "sightline", "other-api", now, now + 600),
                Some("main"),
                Algorithm::HS256,
                &hs,
            ),
        ),
        (
            "wrong issuer",
            sign(
                &claims("admin", "evil", "sightline-api", now, now + 600),
                Some("main"),
                Algorithm::HS256,
                &hs,
            ),
        ),
        (
            "unknown kid",
            sign(&good, Some("rotated-away"), Algorithm::HS256, &hs),
        ),
        (
            "other secret",
            sign(
                &good,
                Some("main"),
                Algorithm::HS256,
                &EncodingKey::from_secret(b"guessed-secret-guessed-secret-guessed"),
            ),
        ),
        (
            "tampered payload",
            format!(
                "{head}.{}.{signature}",
                b64(&claims(
                    "admin",
                    "sightline",
                    "sightline-api",
                    now,
                    now + 99_999
                ))
            ),
        ),
        ("garbage", "not.a.jwt".into()),
    ];
    for (what, token) in &forgeries {
        let res = s
            .send(
                Method::POST,
                "/api/v1/events",
                Some(token),
                Some(event(what)),
            )
            .await;
        assert_eq!(res.status(), 401, "{what}");
    }
    // Control: the honest tokens work — ours, and an SSO provider's ES256 token.
    let sso_key = EncodingKey::from_ec_pem(sso.serialize_pem().as_bytes()).unwrap();
    let sso_token = sign(
        &claims("engineer", "sightline", "sightline-api", now, now + 600),
        Some("sso"),
        Algorithm::ES256,
        &sso_key,
    );
    for token in [&valid, &sso_token] {
        let res = s
            .send(
                Method::POST,
                "/api/v1/events",
                Some(token),
                Some(event("honest")),
            )
            .await;
        assert_eq!(res.status(), 202);
    }
    // No refused request reached the handler: only the two honest events are stored.
    let stored = wait_for_stored(&s, "service=attack-target", 2).await;
    assert!(
        stored.iter().all(|e| e["details"] == "honest"),
        "{stored:?}"
    );
    s.app.shutdown().await;
}

async fn wait_for_stored(s: &Secured, query: &str, n: usize) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let res = s
            .send(
                Method::GET,
                &format!("/api/v1/events?{query}&limit=1000"),
                Some(&s.admin),
                None,
            )
            .await;
        let items = res.json::<Value>().await.unwrap()["items"]
            .as_array()
            .unwrap()
            .clone();
        if items.len() >= n {
            tokio::time::sleep(Duration::from_millis(300)).await;
            return items;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} stored",
            items.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_route_answers_every_role_as_the_policy_table_says() {
    // The table and the served routes are the same set.
    let mut registered: Vec<(String, String)> = sightline_api::routes(Role::All)
        .registered()
        .iter()
        .map(|(m, p)| (m.to_string(), (*p).to_owned()))
        .collect();
    // Logging out revokes the caller's token: keep it for last.
    registered.sort_by_key(|(_, path)| path == "/api/v1/auth/logout");
    let mut table: Vec<(String, String)> = sightline_api::auth::policy::POLICY
        .iter()
        .map(|(m, p, _)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    let mut served = registered.clone();
    served.sort();
    table.sort();
    assert_eq!(served, table, "every route needs exactly one policy entry");

    let s = Secured::start(|_| {}).await;
    let mut callers: Vec<(String, Principal, Option<String>)> =
        vec![("anonymous".into(), Principal::Anonymous, None)];
    for role in UserRole::ALL {
        let token = s.user(&format!("user-{role}"), role).await;
        let principal = Principal::User {
            id: String::new(),
            username: String::new(),
            role,
        };
        callers.push((role.to_string(), principal, Some(token)));
    }
    for scopes in [
        vec![Scope::Read],
        vec![Scope::IngestEvents],
        vec![Scope::IngestMetrics],
    ] {
        let key = s.key(json!({"name": "matrix", "scopes": scopes})).await;
        let principal = Principal::ApiKey {
            id: String::new(),
            scopes: scopes.clone(),
        };
        callers.push((
            format!("key {scopes:?}"),
            principal,
            Some(key["token"].as_str().unwrap().to_owned()),
        ));
    }
    let mut mismatches = Vec::new();
    for (method, path) in &registered {
        let access = sightline_api::auth::policy::access(&method.parse().unwrap(), path).unwrap();
        let url = path
            .replace("{id}", "no-such-id")
            .replace("{username}", "no-such-user");
        for (name, principal, token) in &callers {
            let expected = sightline_auth::policy::authorize(principal, access, false);
            let body = (method != "GET").then(|| json!({}));
            let res = s
                .send(method.parse().unwrap(), &url, token.as_deref(), body)
                .await;
            let status = res.status().as_u16();
            let ok = match &expected {
                Ok(()) => status != 401 && status != 403,
                Err(sightline_auth::AuthError::Unauthenticated(_)) => status == 401,
                Err(_) => status == 403,
            };
            if !ok {
                mismatches.push(format!(
                    "{method} {path} as {name}: {status}, policy {access:?} says {expected:?}"
                ));
            }
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
    // Public routes stay public with a broken token (a stale browser token cannot lock
    // anyone out of logging in).
    let res = s
        .send(
            Method::POST,
            "/api/v1/auth/login",
            Some("stale.token.here"),
            Some(json!({"username": "root", "password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(matches!(
        sightline_api::auth::policy::access(&Method::GET, "/health"),
        Some(Access::Public)
    ));
    s.app.shutdown().await;
}

#[tokio::test]
async fn api_keys_are_scoped_revocable_rate_limited_and_address_bound() {
    let s = Secured::start(|_| {}).await;
    let limited = s
        .key(json!({"name": "producer", "scopes": ["ingest:events"], "rate_per_minute": 3}))
        .await;
    let token = limited["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("slk_"));
    for i in 0..3 {
        let res = s
            .send(
                Method::POST,
                "/api/v1/events",
                Some(&token),
                Some(event(&format!("k{i}"))),
            )
            .await;
        assert_eq!(res.status(), 202);
    }
    let limited_res = s
        .send(
            Method::POST,
            "/api/v1/events",
            Some(&token),
            Some(event("k3")),
        )
        .await;
    assert_eq!(limited_res.status(), 429);
    let retry: u64 = limited_res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&retry), "{retry}");

    // X-API-Key works like Bearer; the wrong scope is 403.
    let events_only = s
        .key(json!({"name": "events-only", "scopes": ["ingest:events"]}))
        .await;
    let res = s
        .app
        .client
        .post(s.app.url("/api/v1/metrics"))
        .header("x-api-key", events_only["token"].as_str().unwrap())
        .json(&json!({"service_name": "a", "metric_type": "cpu", "value": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Unknown (well-formed) and revoked keys are 401.
    let unknown = format!("slk_{}_{}", "0123456789abcdef", "x".repeat(43));
    assert_eq!(
        s.send(Method::GET, "/api/v1/events", Some(&unknown), None)
            .await
            .status(),
        401
    );
    let reader = s.key(json!({"name": "grafana", "scopes": ["read"]})).await;
    let reader_token = reader["token"].as_str().unwrap();
    assert_eq!(
        s.send(Method::GET, "/api/v1/events", Some(reader_token), None)
            .await
            .status(),
        200
    );
    let id = reader["id"].as_str().unwrap();
    let revoke = s
        .send(
            Method::DELETE,
            &format!("/api/v1/keys/{id}"),
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(revoke.status(), 204);
    assert_eq!(
        s.send(Method::GET, "/api/v1/events", Some(reader_token), None)
            .await
            .status(),
        401
    );
    // A key only for another network is refused from loopback.
    let remote = s
        .key(json!({"name": "dc", "scopes": ["read"], "allowed_ips": ["10.0.0.0/8"]}))
        .await;
    let res = s
        .send(
            Method::GET,
            "/api/v1/events",
            remote["token"].as_str(),
            None,
        )
        .await;
    assert_eq!(res.status(), 403);
    // Listing never shows secrets.
    let listed = s
        .send(Method::GET, "/api/v1/keys", Some(&s.admin), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains(&token[20..]),
        "secret leaked in the key list"
    );
    s.app.shutdown().await;
}

#[tokio::test]
async fn signed_webhooks_reject_tampering_staleness_and_replay_before_parsing() {
    let s = Secured::start(|c| {
        c.auth.webhooks.secrets = vec![Secret::new(WEBHOOK_OLD), Secret::new(WEBHOOK_NEW)];
    })
    .await;
    let body = json!({"source": "alertmanager", "event_type": "ALERT", "severity": "high", "service": "checkout", "message": "5xx spike"}).to_string();
    let post = |headers: Vec<(&'static str, String)>, body: String| {
        let mut req = s
            .app
            .client
            .post(s.app.url("/api/v1/events/webhook"))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    let standard = |id: &str, ts: u64, secret: &str, body: &str| {
        vec![
            ("webhook-id", id.to_owned()),
            ("webhook-timestamp", ts.to_string()),
            (
                "webhook-signature",
                sign_standard(secret.as_bytes(), id, ts, body.as_bytes()),
            ),
        ]
    };
    let now = now_secs();
    assert_eq!(
        post(standard("m1", now, WEBHOOK_NEW, &body), body.clone())
            .await
            .unwrap()
            .status(),
        202
    );
    // Rotation: the old secret is still accepted.
    assert_eq!(
        post(standard("m2", now, WEBHOOK_OLD, &body), body.clone())
            .await
            .unwrap()
            .status(),
        202
    );
    // Replay of an accepted delivery.
    assert_eq!(
        post(standard("m1", now, WEBHOOK_NEW, &body), body.clone())
            .await
            .unwrap()
            .status(),
        401
    );
    // One bit flipped in the body.
    let mut flipped = body.clone().into_bytes();
    flipped[10] ^= 1;
    let flipped = String::from_utf8(flipped).unwrap();
    assert_eq!(
        post(standard("m3", now, WEBHOOK_NEW, &body), flipped)
            .await
            .unwrap()
            .status(),
        401
    );
    // Stale timestamp, correctly signed.
    assert_eq!(
        post(standard("m4", now - 3600, WEBHOOK_NEW, &body), body.clone())
            .await
            .unwrap()
            .status(),
        401
    );
    // A bad signature over malformed JSON is 401, not 400: nothing is parsed unsigned.
    let garbage = "{not json".to_owned();
    assert_eq!(
        post(
            standard("m5", now, "wrong-secret", &garbage),
            garbage.clone()
        )
        .await
        .unwrap()
        .status(),
        401
    );
    // Unsigned.
    assert_eq!(post(vec![], body.clone()).await.unwrap().status(), 401);
    // GitHub style.
    let hub = vec![
        (
            "x-hub-signature-256",
            sign_hub(WEBHOOK_NEW.as_bytes(), body.as_bytes()),
        ),
        ("x-github-delivery", "d-1".to_owned()),
    ];
    assert_eq!(post(hub, body.clone()).await.unwrap().status(), 202);
    // Exactly the three signed deliveries were stored.
    let stored = wait_for_stored(&s, "service=checkout", 3).await;
    assert_eq!(stored.len(), 3);
    s.app.shutdown().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_and_page_sizes_are_capped() {
    let s = Secured::start(|c| c.api.max_body_bytes = 256 * 1024).await;
    let huge_login = json!({"username": "root", "password": "x".repeat(100 * 1024)});
    let res = s
        .send(Method::POST, "/api/v1/auth/login", None, Some(huge_login))
        .await;
    assert_eq!(res.status(), 413, "account routes take at most 64 KiB");
    let big = vec![event(&"y".repeat(1000)); 400];
    let res = s
        .send(
            Method::POST,
            "/api/v1/events/batch",
            Some(&s.admin),
            Some(json!(big)),
        )
        .await;
    assert_eq!(res.status(), 413);
    let batch: Vec<Value> = (0..1001).map(|i| event(&format!("e{i}"))).collect();
    let res = s
        .send(
            Method::POST,
            "/api/v1/events/batch",
            Some(&s.admin),
            Some(json!(batch)),
        )
        .await;
    assert_eq!(res.status(), 202);
    wait_for_stored(&s, "service=attack-target", 1000).await;
    let capped = s
        .send(
            Method::GET,
            "/api/v1/events?limit=1000000000",
            Some(&s.admin),
            None,
        )
        .await;
    assert_eq!(capped.status(), 200);
    let page: Value = capped.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1000);
    assert!(page["next_cursor"].is_string());
    s.app.shutdown().await;
}

#[tokio::test]
async fn repeated_failed_logins_are_slowed_and_audited() {
    let s = Secured::start(|c| {
        c.auth.login_max_failures = 3;
        c.auth.login_lockout = Duration::from_millis(1500);
    })
    .await;
    let attempt = async |password: &'static str| {
        s.app
            .post_json(
                "/api/v1/auth/login",
                &json!({"username": "root", "password": password}),
            )
            .await
    };
    for _ in 0..3 {
        assert_eq!(attempt("wrong password!").await.status(), 401);
    }
    // Locked: even the right password is refused until the wait is over.
    let locked = attempt(PASSWORD).await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().contains_key("retry-after"));
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(attempt(PASSWORD).await.status(), 200);

    let audit: Value = s
        .send(
            Method::GET,
            "/api/v1/audit?action=auth.login&actor=root",
            Some(&s.admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    let failed = entries.iter().filter(|e| e["success"] == false).count();
    assert_eq!(
        failed, 4,
        "three wrong passwords and one throttled attempt: {audit}"
    );
    assert!(entries.iter().all(|e| e["source_ip"] == "127.0.0.1"));
    assert!(
        entries
            .iter()
            .any(|e| e["details"]["reason"] == "throttled")
    );
    s.app.shutdown().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_or_logout_ends_the_session() {
    let s = Secured::start(|_| {}).await;
    let first = login(&s.app, "root", PASSWORD).await;
    let refresh = async |token: &str| {
        s.app
            .post_json("/api/v1/auth/refresh", &json!({"refresh_token": token}))
            .await
    };
    let r1 = first["refresh_token"].as_str().unwrap();
    let second: Value = {
        let res = refresh(r1).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    };
    let r2 = second["refresh_token"].as_str().unwrap();
    assert_ne!(r1, r2);
    // Reusing the rotated token is theft: it fails and takes the newer token with it.
    assert_eq!(refresh(r1).await.status(), 401);
    assert_eq!(refresh(r2).await.status(), 401);

    // Logout revokes the access token and the refresh token.
    let third = login(&s.app, "root", PASSWORD).await;
    let access = third["access_token"].as_str().unwrap();
    assert_eq!(
        s.send(Method::GET, "/api/v1/auth/me", Some(access), None)
            .await
            .status(),
        200
    );
    let out = s
        .send(
            Method::POST,
            "/api/v1/auth/logout",
            Some(access),
            Some(json!({"refresh_token": third["refresh_token"]})),
        )
        .await;
    assert_eq!(out.status(), 204);
    assert_eq!(
        s.send(Method::GET, "/api/v1/auth/me", Some(access), None)
            .await
            .status(),
        401
    );
    assert_eq!(
        refresh(third["refresh_token"].as_str().unwrap())
            .await
            .status(),
        401
    );
    s.app.shutdown().await;
}

#[tokio::test]
async fn admins_manage_users_and_every_change_is_audited() {
    let s = Secured::start(|_| {}).await;
    let engineer = s.user("eve", UserRole::Engineer).await;
    assert_eq!(
        s.send(Method::GET, "/api/v1/users", Some(&engineer), None)
            .await
            .status(),
        403
    );
    let dup = s
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&s.admin),
            Some(json!({"username": "eve", "password": PASSWORD, "role": "viewer"})),
        )
        .await;
    assert_eq!(dup.status(), 409);
    let bad = s
        .send(
            Method::POST,
            "/api/v1/users",
            Some(&s.admin),
            Some(json!({"username": "zed", "password": PASSWORD, "role": "root"})),
        )
        .await;
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.unwrap()["errors"][0]["field"],
        "role"
    );
    let disable = s
        .send(
            Method::PATCH,
            "/api/v1/users/eve",
            Some(&s.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disable.status(), 200);
    let res = s
        .app
        .post_json(
            "/api/v1/auth/login",
            &json!({"username": "eve", "password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 401);
    let audit: Value = s
        .send(
            Method::GET,
            "/api/v1/audit?actor=root&action=user.",
            Some(&s.admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let actions: Vec<(&str, &str)> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["action"].as_str().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(actions, [("user.update", "eve"), ("user.create", "eve")]);
    // The bootstrap itself is audited too.
    let boot: Value = s
        .send(
            Method::GET,
            "/api/v1/audit?actor=bootstrap",
            Some(&s.admin),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(boot["items"][0]["action"], "user.create");
    s.app.shutdown().await;
}

#[tokio::test]
async fn a_public_address_without_auth_is_refused_unless_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig {
        http_addr: ([0, 0, 0, 0], 0).into(),
        data_dir: dir.path().to_owned(),
        ..NodeConfig::default()
    };
    config.auth.enabled = false;
    let err = sightline_api::Node::start(config.clone(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("--insecure"), "{err}");
    config.auth.allow_insecure = true;
    let node = sightline_api::Node::start(config, None).await.unwrap();
    // With auth off every caller is an admin, and no bootstrap token is offered.
    assert!(node.bootstrap_token().is_none());
    let url = format!("http://127.0.0.1:{}/api/v1/users", node.addr().port());
    assert_eq!(reqwest::get(url).await.unwrap().status(), 200);
    node.shutdown().await;
}

#[tokio::test]
async fn responses_carry_security_headers_and_cors_is_off() {
    let s = Secured::start(|_| {}).await;
    let res = s.app.get("/health").await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let preflight = s
        .app
        .client
        .request(reqwest::Method::OPTIONS, s.app.url("/api/v1/events"))
        .header("origin", "https://evil.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(
        !preflight
            .headers()
            .contains_key("access-control-allow-origin")
    );
    s.app.shutdown().await;
}

#[tokio::test]
async fn https_serves_the_api_and_plain_http_is_redirected() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
    let redirect = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let redirect_addr = redirect.local_addr().unwrap();
    drop(redirect);
    let app = TestApp::spawn_with(|c| {
        c.api.tls.cert_file = Some(cert_file.clone());
        c.api.tls.key_file = Some(key_file.clone());
        c.api.tls.redirect_http_from = Some(redirect_addr);
    })
    .await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.cert.pem().as_bytes()).unwrap())
        .resolve("localhost", format!("127.0.0.1:{port}").parse().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = client
        .get(format!("https://localhost:{port}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("strict-transport-security"));
    // Plain HTTP on the TLS port gets no answer; the redirect port sends it to HTTPS.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .is_err()
    );
    let moved = client
        .get(format!("http://{redirect_addr}/api/v1/events?limit=1"))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        moved.headers()["location"],
        format!("https://localhost:{port}/api/v1/events?limit=1").as_str()
    );
    app.shutdown().await;
}

#[tokio::test]
async fn tokens_signed_with_keys_from_an_sso_jwks_document_are_accepted() {
    use base64::Engine as _;
    let sso = rcgen::KeyPair::generate().unwrap();
    // P-256 public key, uncompressed: 0x04 || X || Y.
    let raw = sso.public_key_raw();
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "idp-1", "alg": "ES256", "use": "sig",
        "x": b64(&raw[1..33]), "y": b64(&raw[33..65]),
    }]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    let served = jwks.clone();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/jwks.json",
            axum::routing::get(move || async move { axum::Json(served) }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let s = Secured::start(|c| {
        c.auth.jwt.algorithms = vec!["HS256".into(), "ES256".into()];
        c.auth.jwt.jwks_url = Some(jwks_url.clone());
    })
    .await;
    let now = now_secs();
    let claims = json!({"sub": "sso-user", "preferred_username": "dana", "role": "engineer", "iss": "sightline", "aud": "sightline-api", "exp": now + 600, "iat": now});
    let key = EncodingKey::from_ec_pem(sso.serialize_pem().as_bytes()).unwrap();
    let token = sign(&claims, Some("idp-1"), Algorithm::ES256, &key);
    let me: Value = s
        .send(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("dana"), Some("engineer"))
    );
    // The same claims signed by anyone else are refused.
    let other = rcgen::KeyPair::generate().unwrap();
    let forged = sign(
        &claims,
        Some("idp-1"),
        Algorithm::ES256,
        &EncodingKey::from_ec_pem(other.serialize_pem().as_bytes()).unwrap(),
    );
    assert_eq!(
        s.send(Method::GET, "/api/v1/auth/me", Some(&forged), None)
            .await
            .status(),
        401
    );
    s.app.shutdown().await;
    server.abort();
}

#[tokio::test]
async fn rs256_tokens_from_an_sso_key_file_are_accepted_and_forgeries_are_not() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public_pem = fixtures.join("sso-rsa.pub.pem");
    let s = Secured::start(|c| {
        c.auth.jwt.algorithms = vec!["HS256".into(), "RS256".into()];
        c.auth.jwt.verify_keys = vec![VerifyKeyConfig {
            kid: "sso-rsa".into(),
            algorithm: "RS256".into(),
            secret: Secret::default(),
            file: Some(public_pem.clone()),
        }];
    })
    .await;
    let now = now_secs();
    let claims = json!({"sub": "sso-user", "preferred_username": "erin", "role": "approver", "iss": "sightline", "aud": "sightline-api", "exp": now + 600, "iat": now});
    let rsa = |file: &str| {
        EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join(file)).unwrap()).unwrap()
    };
    let token = sign(
        &claims,
        Some("sso-rsa"),
        Algorithm::RS256,
        &rsa("sso-rsa.key.pem"),
    );
    let me: Value = s
        .send(Method::GET, "/api/v1/auth/me", Some(&token), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some("erin"), Some("approver"))
    );
    // Signed by another RSA key under the same kid: refused.
    let forged = sign(
        &claims,
        Some("sso-rsa"),
        Algorithm::RS256,
        &rsa("other-rsa.key.pem"),
    );
    // Key confusion: HS256 "signed" with the public key's PEM text as the HMAC secret.
    let confused = sign(
        &claims,
        Some("sso-rsa"),
        Algorithm::HS256,
        &EncodingKey::from_secret(&std::fs::read(&public_pem).unwrap()),
    );
    for (what, token) in [("forged", forged), ("key confusion", confused)] {
        assert_eq!(
            s.send(Method::GET, "/api/v1/auth/me", Some(&token), None)
                .await
                .status(),
            401,
            "{what}"
        );
    }
    s.app.shutdown().await;
}
