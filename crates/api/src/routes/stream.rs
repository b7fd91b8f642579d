//! `GET /api/v1/stream`: the pipeline as it happens — new events, anomalies, incidents and
//! analyses pushed to the dashboard (or `curl -N`) over Server-Sent Events or a WebSocket.
//!
//! `?topics=` picks the pipeline topics to follow (comma list; default: anomalies,
//! incidents and analyses), `?service=` keeps only records about one service (its
//! `service_name`, or one of its `affected_services` / `impacted_services`). Each message
//! is one JSON object:
//!
//! ```json
//! {"topic": "incidents.detected", "key": "inc-…", "partition": 0, "offset": 17,
//!  "timestamp": 1764000000000, "value": { …the incident… }}
//! ```
//!
//! Over SSE the event name is the topic, so a browser can `addEventListener` per topic.
//! Records that cannot be decoded are skipped (the pipeline stage that reads them counts
//! them). Connections count against `api.max_live_connections`.

use std::collections::HashMap;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Serialize;
use serde_json::value::RawValue;
use sightline_codec::{Codec, read_event, read_metric};
use sightline_log::Delivered;
use sightline_model::ValidationError;
use sightline_model::topics;

use super::params::reject_unknown;
use crate::{ApiError, AppState, live};

/// The topics a client may follow.
pub const STREAMABLE: [&str; 8] = [
    topics::SYSTEM_EVENTS,
    topics::METRICS_RAW,
    topics::METRICS_AGGREGATED,
    topics::ANOMALIES,
    topics::INCIDENTS_DETECTED,
    topics::INCIDENTS_UPDATED,
    topics::ANALYSIS_COMPLETED,
    topics::INSIGHTS_GENERATED,
];

/// What a client follows without `?topics=`.
const DEFAULT_TOPICS: [&str; 4] = [
    topics::ANOMALIES,
    topics::INCIDENTS_DETECTED,
    topics::INCIDENTS_UPDATED,
    topics::ANALYSIS_COMPLETED,
];

/// The live-stream route.
pub fn routes() -> super::Routes {
    super::Routes::default().get("/api/v1/stream", stream)
}

/// One pushed record.
#[derive(Serialize)]
struct Message<'a> {
    topic: &'static str,
    key: Option<&'a str>,
    partition: u32,
    offset: u64,
    timestamp: i64,
    value: &'a RawValue,
}

/// Follow the pipeline live (SSE or WebSocket).
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "stream",
    params(
        ("topics" = Option<String>, Query, description = "Comma list of topics to follow (default: anomalies, incidents, analyses)."),
        ("service" = Option<String>, Query, description = "Only records about this service."),
    ),
    responses(
        (status = 200, description = "Server-Sent Events; the event name is the topic, the data `{topic, key, partition, offset, timestamp, value}`.", content_type = "text/event-stream", body = String),
        (status = 101, description = "WebSocket upgrade (when requested): one JSON message per record."),
        (status = 422, description = "An unknown topic or an empty service."),
        (status = 503, description = "Too many live connections (`api.max_live_connections`)."),
    ),
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    reject_unknown(&q, &["topics", "service"])?;
    let followed = match q.get("topics") {
        None => DEFAULT_TOPICS.to_vec(),
        Some(list) => parse_topics(list)?,
    };
    let service = match q.get("service").map(|s| s.trim()) {
        Some("") => {
            return Err(ApiError::Invalid(ValidationError::new(
                "service",
                "must not be empty",
            )));
        }
        other => other.map(str::to_owned),
    };
    let slot = state.live.acquire()?;
    let sub = live::tail(&state.log, &followed).await?;
    let codec = state.ingestor.codec().cloned();
    Ok(live::respond(
        ws,
        live::Push {
            _slot: slot,
            sub,
            render: Box::new(move |d| render(d, codec.as_ref(), service.as_deref())),
            stopping: state.stopping.clone(),
            route: "stream",
        },
    ))
}

fn parse_topics(list: &str) -> Result<Vec<&'static str>, ApiError> {
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let Some(topic) = STREAMABLE.iter().find(|t| **t == name) else {
            return Err(ApiError::Invalid(ValidationError::new(
                "topics",
                format!(
                    "'{name}' cannot be followed; choose from {}",
                    STREAMABLE.join(", ")
                ),
            )));
        };
        if !out.contains(topic) {
            out.push(*topic);
        }
    }
    if out.is_empty() {
        return Err(ApiError::Invalid(ValidationError::new(
            "topics",
            "name at least one topic",
        )));
    }
    Ok(out)
}

/// The message for `d`, or `None` when it is filtered out or cannot be decoded.
fn render(
    d: &Delivered,
    codec: Option<&Codec>,
    service: Option<&str>,
) -> Option<(&'static str, String)> {
    let topic = STREAMABLE.iter().copied().find(|t| **t == *d.topic)?;
    // Events and raw metrics may be Avro on the log: clients always get JSON.
    let json = match topic {
        topics::SYSTEM_EVENTS => {
            serde_json::to_string(&read_event(&d.record.value, codec).ok()?).ok()?
        }
        topics::METRICS_RAW => {
            serde_json::to_string(&read_metric(&d.record.value, codec).ok()?).ok()?
        }
        _ => String::from_utf8(d.record.value.clone()).ok()?,
    };
    let value: Box<RawValue> = RawValue::from_string(json).ok()?;
    if let Some(service) = service
        && !about_service(&value, service)
    {
        return None;
    }
    let message = Message {
        topic,
        key: d
            .record
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok()),
        partition: d.partition,
        offset: d.offset,
        timestamp: d.record.timestamp,
        value: &value,
    };
    Some((topic, serde_json::to_string(&message).ok()?))
}

/// Whether a pipeline record is about `service`.
fn about_service(value: &RawValue, service: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct Services<'a> {
        #[serde(borrow, default)]
        service_name: Option<std::borrow::Cow<'a, str>>,
        #[serde(default)]
        affected_services: Vec<String>,
        #[serde(default)]
        impacted_services: Vec<String>,
    }
    serde_json::from_str::<Services<'_>>(value.get()).is_ok_and(|s| {
        s.service_name.as_deref() == Some(service)
            || s.affected_services.iter().any(|a| a == service)
            || s.impacted_services.iter().any(|a| a == service)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_are_checked_and_deduplicated() {
        assert_eq!(
            parse_topics("anomalies, incidents.detected,anomalies").unwrap(),
            vec![topics::ANOMALIES, topics::INCIDENTS_DETECTED]
        );
        assert!(parse_topics("secrets").is_err());
        assert!(parse_topics(" , ").is_err());
    }

    #[test]
    fn service_filter_reads_every_service_field() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert!(about_service(&raw(r#"{"service_name":"api"}"#), "api"));
        assert!(about_service(
            &raw(r#"{"service_name":"db","affected_services":["db","api"]}"#),
            "api"
        ));
        assert!(about_service(
            &raw(r#"{"impacted_services":["api"]}"#),
            "api"
        ));
        assert!(!about_service(&raw(r#"{"service_name":"db"}"#), "api"));
        assert!(!about_service(&raw("[1,2]"), "api"));
    }
}
