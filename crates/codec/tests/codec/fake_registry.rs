//! A schema registry on a loopback port that answers like Confluent's and records what it
//! was asked, so tests can check requests as well as answers. It speaks HTTP, or HTTPS
//! with a certificate made at test time, and can require basic auth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use sightline_codec::{Codec, CodecConfig, RecordKind, RegistryConfig, ValueFormat};
use sightline_model::topics::{METRICS_RAW, SYSTEM_EVENTS};

pub const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// One request as the registry saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: &'static str,
    /// The subject or id, percent-decoded.
    pub target: String,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Default)]
struct Registry {
    /// Schema text and type by id.
    schemas: HashMap<u32, (String, Option<String>)>,
    next_id: u32,
    seen: Vec<Seen>,
    fail_with: Option<StatusCode>,
    delay: Option<Duration>,
    /// Answer 200 with this body instead of the real answer.
    garbage: Option<&'static str>,
    /// The `Authorization` header every request must carry (401 otherwise).
    required_authorization: Option<String>,
}

type Shared = Arc<Mutex<Registry>>;

/// The running fake; the server stops when it is dropped.
#[derive(Debug)]
pub struct FakeRegistry {
    pub url: String,
    state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeRegistry {
    pub async fn spawn() -> Self {
        let (state, app) = Self::app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeRegistry { url, state, server }
    }

    /// The registry over HTTPS (rustls) with a self-signed certificate for `127.0.0.1`,
    /// whose PEM — the CA a client must trust — is written to `ca_file`.
    pub async fn spawn_https(ca_file: &std::path::Path) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        std::fs::write(ca_file, cert.cert.pem()).unwrap();
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
            cert.cert.pem().into_bytes(),
            cert.signing_key.serialize_pem().into_bytes(),
        )
        .await
        .unwrap();
        let (state, app) = Self::app();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("https://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum_server::from_tcp_rustls(listener, tls)
                .unwrap()
                .serve(app.into_make_service())
                .await
                .unwrap();
        });
        FakeRegistry { url, state, server }
    }

    fn app() -> (Shared, Router) {
        let state = Shared::new(Mutex::new(Registry {
            // Ids unlike small counters, so a mix-up with an index shows.
            next_id: 101,
            ..Registry::default()
        }));
        let routes = Router::new()
            .route("/subjects/{subject}/versions", post(register))
            .route("/schemas/ids/{id}", get(fetch))
            .with_state(state.clone());
        // The same API under a path prefix, as behind a reverse proxy.
        (state, routes.clone().nest("/prefix/registry", routes))
    }

    /// Every later request must authenticate as `user` with `password` (401 otherwise).
    pub fn require_basic_auth(&self, user: &str, password: &str) {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.state.lock().unwrap().required_authorization = Some(format!("Basic {token}"));
    }

    /// Codec settings pointing here.
    pub fn config(&self, format: ValueFormat) -> CodecConfig {
        CodecConfig {
            format,
            schema_registry: RegistryConfig {
                timeout_ms: 2_000,
                ..RegistryConfig::new(&self.url)
            },
        }
    }

    /// A codec writing `format`, reading both, talking to this registry.
    pub fn codec(&self, format: ValueFormat) -> Codec {
        Codec::new(&self.config(format)).unwrap()
    }

    /// An Avro codec with both built-in topics registered.
    pub async fn avro_codec(&self) -> Codec {
        let codec = self.codec(ValueFormat::Avro);
        codec
            .prepare(RecordKind::Event, SYSTEM_EVENTS)
            .await
            .unwrap();
        codec
            .prepare(RecordKind::Metric, METRICS_RAW)
            .await
            .unwrap();
        codec
    }

    /// Stores a schema under a new id, as another producer's registration would.
    pub fn add_schema(&self, text: &str) -> u32 {
        self.add_typed_schema(text, None)
    }

    pub fn add_typed_schema(&self, text: &str, schema_type: Option<&str>) -> u32 {
        let mut r = self.state.lock().unwrap();
        let id = r.next_id;
        r.next_id += 1;
        r.schemas
            .insert(id, (text.to_owned(), schema_type.map(str::to_owned)));
        id
    }

    /// Every later request answers `status` (until cleared with `None`).
    pub fn fail_with(&self, status: Option<StatusCode>) {
        self.state.lock().unwrap().fail_with = status;
    }

    pub fn delay(&self, delay: Option<Duration>) {
        self.state.lock().unwrap().delay = delay;
    }

    pub fn answer_garbage(&self, body: Option<&'static str>) {
        self.state.lock().unwrap().garbage = body;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn registrations(&self, subject: &str) -> usize {
        self.count("POST", subject)
    }

    pub fn fetches(&self, id: u32) -> usize {
        self.count("GET", &id.to_string())
    }

    fn count(&self, method: &str, target: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == method && s.target == target)
            .count()
    }
}

fn header(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        body.to_string(),
    )
        .into_response()
}

/// Records the request; returns the injected answer, if any, after the injected delay.
async fn observe(
    state: &Shared,
    method: &'static str,
    target: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response> {
    let authorization = header(headers, header::AUTHORIZATION);
    let (delay, fail, garbage, required) = {
        let mut r = state.lock().unwrap();
        r.seen.push(Seen {
            method,
            target,
            content_type: header(headers, header::CONTENT_TYPE),
            accept: header(headers, header::ACCEPT),
            authorization: authorization.clone(),
            body: body.to_vec(),
        });
        (
            r.delay,
            r.fail_with,
            r.garbage,
            r.required_authorization.clone(),
        )
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if required.is_some() && authorization != required {
        return Some(answer(
            StatusCode::UNAUTHORIZED,
            json!({"error_code": 401, "message": "Unauthorized"}),
        ));
    }
    if let Some(status) = fail {
        return Some(answer(
            status,
            json!({"error_code": u32::from(status.as_u16()) * 100, "message": "injected failure"}),
        ));
    }
    garbage.map(|g| (StatusCode::OK, g).into_response())
}

async fn register(
    State(state): State<Shared>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(r) = observe(&state, "POST", subject, &headers, &body).await {
        return r;
    }
    if header(&headers, header::CONTENT_TYPE).as_deref() != Some(CONTENT_TYPE) {
        return answer(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error_code": 415, "message": "unsupported content type"}),
        );
    }
    let Some(text) = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("schema").and_then(|s| s.as_str()).map(str::to_owned))
        .filter(|t| apache_avro::Schema::parse_str(t).is_ok())
    else {
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"error_code": 42201, "message": "Invalid schema"}),
        );
    };
    let mut r = state.lock().unwrap();
    // The same schema text always gets the same id, as in the real registry.
    let existing = r
        .schemas
        .iter()
        .find(|(_, (t, _))| *t == text)
        .map(|(id, _)| *id);
    let id = existing.unwrap_or_else(|| {
        let id = r.next_id;
        r.next_id += 1;
        r.schemas.insert(id, (text, None));
        id
    });
    answer(StatusCode::OK, json!({ "id": id }))
}

async fn fetch(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = observe(&state, "GET", id.clone(), &headers, &[]).await {
        return r;
    }
    let found = id
        .parse::<u32>()
        .ok()
        .and_then(|id| state.lock().unwrap().schemas.get(&id).cloned());
    match found {
        Some((schema, None)) => answer(StatusCode::OK, json!({ "schema": schema })),
        Some((schema, Some(t))) => {
            answer(StatusCode::OK, json!({ "schema": schema, "schemaType": t }))
        }
        None => answer(
            StatusCode::NOT_FOUND,
            json!({"error_code": 40403, "message": format!("Schema {id} not found")}),
        ),
    }
}
