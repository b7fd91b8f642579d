//! Continuous SQL over HTTP: create, list and drop streams and queries; read a table with
//! a pull query; follow a query's output live (push query) over Server-Sent Events or a
//! WebSocket.
//!
//! Definitions live in the store (`stream_statements`), so every node sees the same
//! catalog and it survives restarts; the processing nodes run the queries (see the node's
//! query supervisor) and keep the tables' rows in the store, which pull queries read. A
//! push query tails the query's output topic from its end, so a client sees every row
//! emitted after it connected, from whichever node runs the query.

use std::collections::HashMap;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use sightline_auth::{Actor, Principal};
use sightline_log::{Delivered, EventLog};
use sightline_store::{MAX_QUERY_ROWS, QueryRowsRequest, StreamStatement};
use sightline_stream::sql::{Catalog, CatalogDefinitions, Executed, StoredStatement};

use super::items::Items;
use super::params::reject_unknown;
use crate::auth::ClientIp;
use crate::body::{SmallBody, parse_json};
use crate::{ApiError, AppState, live};

/// The continuous-SQL routes.
pub fn routes() -> super::Routes {
    super::Routes::default()
        .post("/api/v1/queries", create)
        .get("/api/v1/queries", list)
        .get("/api/v1/queries/{name}", get_one)
        .delete("/api/v1/queries/{name}", drop_one)
        .get("/api/v1/queries/{name}/changes", changes)
        .post("/api/v1/query", pull)
}

/// `{"sql": "…"}`: the body of the SQL routes.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SqlBody {
    sql: String,
}

/// The catalog the stored statements describe, and the statements.
async fn load(state: &AppState) -> Result<(Vec<StreamStatement>, Catalog), ApiError> {
    let statements = state.store.list_statements().await?;
    let defs = CatalogDefinitions {
        statements: statements
            .iter()
            .map(|s| StoredStatement {
                name: s.name.clone(),
                sql: s.sql.clone(),
            })
            .collect(),
    };
    let catalog = Catalog::from_definitions(&defs)
        .map_err(|e| ApiError::Internal(format!("stored SQL no longer compiles: {e}")))?;
    Ok((statements, catalog))
}

/// A column of a stream or query.
#[derive(Serialize, utoipa::ToSchema)]
struct ColumnView {
    name: String,
    #[serde(rename = "type")]
    ty: &'static str,
}

/// A stream or query as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct StatementView {
    id: String,
    name: String,
    /// `stream` (a declared source), `table` (an aggregation) or `stream_query` (a filter
    /// or projection writing a derived stream).
    kind: &'static str,
    sql: String,
    created_at: i64,
    created_by: String,
    /// The topic it reads.
    source_topic: String,
    /// The topic its rows are written to (queries only).
    #[serde(skip_serializing_if = "Option::is_none")]
    output_topic: Option<String>,
    columns: Vec<ColumnView>,
    /// Source records not yet processed (queries only; absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    lag: Option<u64>,
}

async fn describe(
    state: &AppState,
    catalog: &Catalog,
    s: &StreamStatement,
    end_offsets: &HashMap<String, Vec<u64>>,
) -> Option<StatementView> {
    let column_views = |cols: &[sightline_stream::sql::ColumnDef]| {
        cols.iter()
            .map(|c| ColumnView {
                name: c.name.clone(),
                ty: c.ty.name(),
            })
            .collect::<Vec<_>>()
    };
    let base = |kind, source_topic: &str, output_topic: Option<&str>, columns| StatementView {
        id: s.id.clone(),
        name: s.name.clone(),
        kind,
        sql: s.sql.clone(),
        created_at: s.created_at,
        created_by: s.created_by.clone(),
        source_topic: source_topic.to_owned(),
        output_topic: output_topic.map(str::to_owned),
        columns,
        lag: None,
    };
    if let Some(q) = catalog.query(&s.name) {
        let kind = if q.is_table() {
            "table"
        } else {
            "stream_query"
        };
        let mut view = base(
            kind,
            q.source_topic(),
            Some(q.output_topic()),
            column_views(q.columns()),
        );
        let group = sightline_stream::sql::runner::job_name(&s.id);
        if let (Some(ends), Ok(committed)) = (
            end_offsets.get(q.source_topic()),
            state.log.committed(&group, q.source_topic()).await,
        ) {
            view.lag = Some(
                ends.iter()
                    .enumerate()
                    .map(|(p, end)| {
                        end.saturating_sub(committed.get(p).copied().flatten().unwrap_or(0))
                    })
                    .sum(),
            );
        }
        return Some(view);
    }
    catalog
        .stream(&s.name)
        .map(|d| base("stream", &d.topic, None, column_views(&d.columns)))
}

async fn end_offsets(log: &dyn EventLog) -> HashMap<String, Vec<u64>> {
    log.stats()
        .await
        .map(|stats| {
            stats
                .into_iter()
                .map(|t| (t.name, t.partitions.iter().map(|p| p.end_offset).collect()))
                .collect()
        })
        .unwrap_or_default()
}

/// Create streams and queries.
///
/// `POST /api/v1/queries {"sql": "CREATE …; DROP …"}`: runs a script of `CREATE STREAM`,
/// `CREATE TABLE|STREAM … AS SELECT` and `DROP` statements; 201 with what was created.
#[utoipa::path(
    post,
    path = "/api/v1/queries",
    tag = "queries",
    request_body = SqlBody,
    responses(
        (status = 201, description = "`{created: [statement], dropped: [name]}`.", body = Object),
        (status = 400, description = "The SQL does not compile; `line` and `column` say where."),
        (status = 409, description = "A name is taken, or a dropped stream is still read."),
    ),
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let SqlBody { sql } = parse_json(&body)?;
    let (_, mut catalog) = load(&state).await?;
    let executed = catalog.execute(&sql).map_err(ApiError::Sql)?;
    let defs = catalog.definitions();
    let now = sightline_model::clock::now_ms();
    let actor = Actor::principal(&principal, ip);
    let mut created = Vec::new();
    let mut dropped = Vec::new();
    for e in executed {
        match e {
            Executed::CreatedStream(name) | Executed::CreatedQuery(name) => {
                let sql = defs
                    .statements
                    .iter()
                    .find(|s| s.name == name)
                    .map(|s| s.sql.clone())
                    .unwrap_or_default();
                created.push(StreamStatement {
                    id: uuid::Uuid::now_v7().to_string(),
                    name,
                    sql,
                    created_at: now,
                    created_by: actor.name.clone(),
                });
            }
            Executed::Dropped(name) => dropped.push(name),
            Executed::NothingDropped(_) => {}
        }
    }
    for name in &dropped {
        state.store.delete_statement(name).await?;
        state
            .auth
            .record(&actor, "query.drop", Some(name), serde_json::json!({}))
            .await;
    }
    // The topics exist from now on, so producers and push queries can start at once.
    let partitions = state.ingestor.topic_config().partitions;
    for s in &created {
        if let Some(q) = catalog.query(&s.name) {
            sightline_stream::sql::runner::ensure_topics(state.log.as_ref(), q, partitions)
                .await
                .map_err(|e| ApiError::Unavailable {
                    reason: format!("cannot create the query's topics: {e}"),
                    retry_after: 5,
                })?;
        }
    }
    state.store.insert_statements(&created).await?;
    for s in &created {
        state
            .auth
            .record(
                &actor,
                "query.create",
                Some(&s.name),
                serde_json::json!({ "id": s.id, "sql": s.sql }),
            )
            .await;
    }
    state.queries_changed.notify_one();
    let ends = end_offsets(state.log.as_ref()).await;
    let mut views = Vec::new();
    for s in &created {
        views.extend(describe(&state, &catalog, s, &ends).await);
    }
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({ "created": views, "dropped": dropped })),
    )
        .into_response())
}

/// List streams and queries.
///
/// `GET /api/v1/queries`: every stream and query, in creation order.
#[utoipa::path(
    get,
    path = "/api/v1/queries",
    tag = "queries",
    responses(
        (status = 200, description = "Every stream and query, in creation order.", body = Items<StatementView>),
    ),
)]
pub(crate) async fn list(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    reject_unknown(&params, &[])?;
    let (statements, catalog) = load(&state).await?;
    let ends = end_offsets(state.log.as_ref()).await;
    let mut items = Vec::with_capacity(statements.len());
    for s in &statements {
        items.extend(describe(&state, &catalog, s, &ends).await);
    }
    Ok(Json(Items { items }).into_response())
}

/// Get one stream or query.
///
/// `GET /api/v1/queries/{name}`.
#[utoipa::path(
    get,
    path = "/api/v1/queries/{name}",
    tag = "queries",
    params(
        ("name" = String, Path, description = "The stream or query name."),
    ),
    responses(
        (status = 200, description = "The statement.", body = StatementView),
        (status = 404, description = "No such stream or query."),
    ),
)]
pub(crate) async fn get_one(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (statements, catalog) = load(&state).await?;
    let key = name.to_lowercase();
    let s = statements
        .iter()
        .find(|s| s.name == key)
        .ok_or_else(|| ApiError::NotFound(format!("no stream or query named '{name}'")))?;
    let ends = end_offsets(state.log.as_ref()).await;
    let view = describe(&state, &catalog, s, &ends)
        .await
        .ok_or_else(|| ApiError::NotFound(format!("no stream or query named '{name}'")))?;
    Ok(Json(view).into_response())
}

/// Drop a stream or query.
///
/// `DELETE /api/v1/queries/{name}`: drops a stream or query (204); refused (409) while
/// another query reads it.
#[utoipa::path(
    delete,
    path = "/api/v1/queries/{name}",
    tag = "queries",
    params(
        ("name" = String, Path, description = "The stream or query name."),
    ),
    responses(
        (status = 204, description = "Dropped."),
        (status = 404, description = "No such stream or query."),
        (status = 409, description = "Another query reads it."),
    ),
)]
pub(crate) async fn drop_one(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let (_, mut catalog) = load(&state).await?;
    let key = name.to_lowercase();
    if catalog.query(&key).is_none() && catalog.stream(&key).is_none() {
        return Err(ApiError::NotFound(format!(
            "no stream or query named '{name}'"
        )));
    }
    // The catalog knows who reads what; a quoted identifier keeps any name one token.
    let quoted = format!("\"{}\"", key.replace('"', "\"\""));
    let statement = if catalog.query(&key).is_some_and(|q| q.is_table()) {
        format!("DROP TABLE {quoted}")
    } else {
        format!("DROP STREAM {quoted}")
    };
    catalog
        .execute(&statement)
        .map_err(|e| ApiError::Conflict(e.message))?;
    state.store.delete_statement(&key).await?;
    state
        .auth
        .record(
            &Actor::principal(&principal, ip),
            "query.drop",
            Some(&key),
            serde_json::json!({}),
        )
        .await;
    state.queries_changed.notify_one();
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Pull query against a table's current rows.
///
/// `POST /api/v1/query {"sql": "SELECT … FROM table WHERE …"}`: a pull query against a
/// table's current rows.
#[utoipa::path(
    post,
    path = "/api/v1/query",
    tag = "queries",
    request_body = SqlBody,
    responses(
        (status = 200, description = "`{rows: [...]}`.", body = Object),
        (status = 400, description = "The SQL does not compile or is not a pull query."),
        (status = 404, description = "No such table."),
    ),
)]
pub(crate) async fn pull(
    State(state): State<AppState>,
    SmallBody(body): SmallBody,
) -> Result<Response, ApiError> {
    let SqlBody { sql } = parse_json(&body)?;
    let (statements, catalog) = load(&state).await?;
    let plan = catalog.plan_pull(&sql).map_err(ApiError::Sql)?;
    let Some(statement) = statements.iter().find(|s| s.name == plan.table) else {
        return Err(ApiError::NotFound(format!(
            "no table named '{}'",
            plan.table
        )));
    };
    let rows = state
        .store
        .read_query_rows(&QueryRowsRequest {
            query_id: statement.id.clone(),
            group_key: plan.lookup_group_key(),
            limit: MAX_QUERY_ROWS,
        })
        .await?;
    let rows = catalog.run_pull_stored(&plan, &rows);
    Ok(Json(serde_json::json!({ "rows": rows })).into_response())
}

/// One row of a push query, as sent to clients.
#[derive(Serialize)]
struct Change<'a> {
    /// The row's key (upsert by it).
    key: Option<&'a str>,
    /// The row; `null` when it was deleted.
    row: Option<serde_json::Value>,
    /// Event time of the row.
    timestamp: i64,
    partition: u32,
    offset: u64,
}

fn change_json(d: &Delivered) -> String {
    let row = if d.record.value.is_empty() {
        None
    } else {
        serde_json::from_slice(&d.record.value).ok()
    };
    let change = Change {
        key: d
            .record
            .key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok()),
        row,
        timestamp: d.record.timestamp,
        partition: d.partition,
        offset: d.offset,
    };
    serde_json::to_string(&change).unwrap_or_default()
}

/// Follow a query's changes (SSE or WebSocket).
///
/// `GET /api/v1/queries/{name}/changes`: every row the query emits from now on — as
/// Server-Sent Events (`event: row`, one JSON change per event), or as WebSocket text
/// messages (one JSON change each) when the request is a WebSocket upgrade.
#[utoipa::path(
    get,
    path = "/api/v1/queries/{name}/changes",
    tag = "queries",
    params(
        ("name" = String, Path, description = "The query name."),
    ),
    responses(
        (status = 200, description = "Server-Sent Events, `event: row`, one JSON change per event.", content_type = "text/event-stream", body = String),
        (status = 101, description = "WebSocket upgrade (when requested): one JSON change per text message."),
        (status = 404, description = "No such query."),
        (status = 503, description = "Too many live connections (`api.max_live_connections`)."),
    ),
)]
pub(crate) async fn changes(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let slot = state.live.acquire()?;
    let (_, catalog) = load(&state).await?;
    let Some(query) = catalog.query(&name) else {
        return Err(ApiError::NotFound(format!("no query named '{name}'")));
    };
    let sub = live::tail(&state.log, &[query.output_topic()]).await?;
    Ok(live::respond(
        ws,
        live::Push {
            _slot: slot,
            sub,
            render: Box::new(|d| Some(("row", change_json(d)))),
            stopping: state.stopping.clone(),
            route: "changes",
        },
    ))
}
