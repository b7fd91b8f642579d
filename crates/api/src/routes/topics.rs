//! Generic topics: append JSON records to any user topic (a small Kafka REST proxy) and
//! list every topic with its partitions, offsets and retention. This is how users feed
//! streams such as `ecommerce.events` to continuous SQL without writing a producer.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Serialize;
use sightline_log::PartitionStats;
use sightline_model::decode;

use super::items::Items;
use super::params::{bad, reject_unknown};
use crate::body::LimitedBody;
use crate::request_id::CorrelationId;
use crate::{ApiError, AppState};

/// The topic routes.
pub fn ingest_routes() -> super::Routes {
    super::Routes::default().post("/api/v1/topics/{topic}/records", append)
}

/// The topic listing.
pub fn query_routes() -> super::Routes {
    super::Routes::default().get("/api/v1/topics", list)
}

/// Append records to a topic.
///
/// `POST /api/v1/topics/{topic}/records[?key=<field>][&atomic=true]`: a JSON array or
/// NDJSON of records (envelopes `{"key", "value", "timestamp", "headers"}` or bare JSON
/// objects); 200 once every accepted record is durable, with where each landed.
#[utoipa::path(
    post,
    path = "/api/v1/topics/{topic}/records",
    tag = "topics",
    params(
        ("topic" = String, Path, description = "The topic name."),
        ("key" = Option<String>, Query, description = "Take each record's key from this field of its value."),
        ("atomic" = Option<bool>, Query, description = "Refuse the whole batch when any record is invalid."),
    ),
    request_body(description = "JSON (one object or an array) or NDJSON (one object per line).", content((Object = "application/json"), (String = "application/x-ndjson"))),
    responses(
        (status = 200, description = "Per-record outcomes with partition and offset.", body = Object),
        (status = 404, description = "No such topic."),
        (status = 422, description = "Invalid records (atomic: nothing stored)."),
        (status = 503, description = "The event log is unavailable; retry after `Retry-After`."),
    ),
)]
pub(crate) async fn append(
    State(state): State<AppState>,
    Extension(CorrelationId(cid)): Extension<CorrelationId>,
    Path(topic): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    LimitedBody(body): LimitedBody,
) -> Result<Response, ApiError> {
    reject_unknown(&params, &["key", "atomic"])?;
    let atomic = match params.get("atomic").map(String::as_str) {
        None | Some("false" | "0" | "") => false,
        Some("true" | "1") => true,
        Some(other) => return Err(bad("atomic", format!("'{other}' is not true or false"))),
    };
    let key_field = params
        .get("key")
        .map(String::as_str)
        .filter(|k| !k.is_empty());
    let shape = match decode::shape_of(&body) {
        // One object is a batch of one.
        decode::BodyShape::Single => decode::BodyShape::Ndjson,
        shape => shape,
    };
    let report = state
        .ingestor
        .ingest_topic(&topic, body, shape, key_field, &cid, atomic)
        .await?;
    Ok(Json(report).into_response())
}

/// A topic with its retention and per-partition offsets.
#[derive(Serialize, utoipa::ToSchema)]
struct TopicView {
    name: String,
    partitions: u32,
    retention_ms: Option<i64>,
    retention_bytes: Option<u64>,
    /// Records currently retained, over all partitions.
    records: u64,
    size_bytes: u64,
    /// Per partition: start and end offsets, size.
    #[schema(value_type = Vec<Object>)]
    offsets: Vec<PartitionStats>,
}

/// List topics.
///
/// `GET /api/v1/topics`: every topic, by name.
#[utoipa::path(
    get,
    path = "/api/v1/topics",
    tag = "topics",
    responses(
        (status = 200, description = "Every topic, by name.", body = Items<TopicView>),
        (status = 503, description = "The event log is unavailable."),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&params, &[])?;
    let mut stats = state.log.stats().await.map_err(|e| ApiError::Unavailable {
        reason: format!("the event log is unavailable: {e}"),
        retry_after: 5,
    })?;
    stats.sort_by(|a, b| a.name.cmp(&b.name));
    let items: Vec<TopicView> = stats
        .into_iter()
        .map(|t| TopicView {
            partitions: t.config.partitions,
            retention_ms: t.config.retention_ms,
            retention_bytes: t.config.retention_bytes,
            records: t
                .partitions
                .iter()
                .map(|p| p.end_offset.saturating_sub(p.start_offset))
                .sum(),
            size_bytes: t.partitions.iter().map(|p| p.size_bytes).sum(),
            offsets: t.partitions,
            name: t.name,
        })
        .collect();
    Ok(Json(Items { items }).into_response())
}
