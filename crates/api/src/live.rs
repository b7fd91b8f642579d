//! Live push to clients: records as the event log receives them, over Server-Sent Events
//! or a WebSocket, from the moment the client connects.
//!
//! Two routes push: a continuous query's output (`/api/v1/queries/{name}/changes`) and the
//! live stream of the pipeline's topics (`/api/v1/stream`, see `routes::stream`). Both
//! follow the log the same way, so they share this module:
//!
//! - each connection tails its topics from their current end under a group of its own
//!   (`tail`), so a slow client only falls behind in the log, never holds records in
//!   this process, and never slows another client or the pipeline;
//! - connections are capped per node ([`LiveSlots`], `api.max_live_connections`): one
//!   more is answered `503` with `Retry-After` and counted, before anything is opened;
//! - a connection ends when the client closes it, when the node stops, or when the log
//!   fails.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::SinkExt as _;
use sightline_log::{Delivered, EventLog, Position, Subscription};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::ApiError;

/// Most records read from the log per push round.
const PUSH_BATCH: usize = 500;

/// Metric names of live connections.
pub mod telemetry {
    /// Live connections open now.
    pub const CONNECTIONS: &str = "sightline_api_live_connections";
    /// Live connections refused because the node's cap was reached.
    pub const REFUSED: &str = "sightline_api_live_refused_total";
    /// Messages pushed to live clients, by `route` (`stream`, `changes`).
    pub const MESSAGES: &str = "sightline_api_live_messages_total";
}

/// The node's budget of live connections (SSE and WebSocket together).
#[derive(Clone, Debug)]
pub struct LiveSlots {
    slots: Arc<Semaphore>,
    max: usize,
}

impl LiveSlots {
    /// A budget of `max` connections at once.
    pub fn new(max: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Takes a slot for one connection, or refuses with `503` when all are taken.
    pub(crate) fn acquire(&self) -> Result<LiveSlot, ApiError> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => {
                metrics::gauge!(telemetry::CONNECTIONS).increment(1.0);
                Ok(LiveSlot { _permit: permit })
            }
            Err(_) => {
                metrics::counter!(telemetry::REFUSED).increment(1);
                Err(ApiError::Unavailable {
                    reason: format!(
                        "this node already serves {} live connections (api.max_live_connections)",
                        self.max
                    ),
                    retry_after: 5,
                })
            }
        }
    }
}

/// One live connection's slot; freed when the connection ends.
#[derive(Debug)]
pub(crate) struct LiveSlot {
    _permit: OwnedSemaphorePermit,
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        metrics::gauge!(telemetry::CONNECTIONS).decrement(1.0);
    }
}

/// A subscription to `topics` positioned at their current ends, under a group of its own.
pub(crate) async fn tail(
    log: &Arc<dyn EventLog>,
    topics: &[&str],
) -> Result<Box<dyn Subscription>, ApiError> {
    let unavailable = |e: sightline_log::LogError| ApiError::Unavailable {
        reason: format!("the event log is unavailable: {e}"),
        retry_after: 5,
    };
    let stats = log.stats().await.map_err(unavailable)?;
    let group = format!("live-{}", uuid::Uuid::now_v7());
    let mut sub = log.subscribe(&group, topics).await.map_err(unavailable)?;
    for t in stats.iter().filter(|t| topics.contains(&t.name.as_str())) {
        for p in &t.partitions {
            sub.seek(&Position {
                topic: Arc::from(t.name.as_str()),
                partition: p.partition,
                offset: p.end_offset,
            })
            .map_err(unavailable)?;
        }
    }
    Ok(sub)
}

/// Turns a delivered record into one message: the SSE event name and the JSON text;
/// `None` skips the record (a filter said no).
pub(crate) type Render = Box<dyn Fn(&Delivered) -> Option<(&'static str, String)> + Send + Sync>;

/// What one live connection needs.
pub(crate) struct Push {
    /// Its slot in the node's budget, freed when the push ends.
    pub _slot: LiveSlot,
    /// Where its records come from.
    pub sub: Box<dyn Subscription>,
    /// How they are sent.
    pub render: Render,
    /// Ends the push when the node stops.
    pub stopping: watch::Receiver<bool>,
    /// `route` label of the messages counter.
    pub route: &'static str,
}

/// Answers a live request: a WebSocket when it is an upgrade request (one text message
/// per record), Server-Sent Events otherwise (one event per record, named by the
/// renderer, and a keep-alive comment every 15 s).
pub(crate) fn respond(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    push: Push,
) -> Response {
    match ws {
        // Browsers offer `sightline` next to the token subprotocol (see the auth guard);
        // answering with it completes their handshake.
        Ok(ws) => ws
            .protocols(["sightline"])
            .on_upgrade(move |socket| push_ws(socket, push)),
        Err(_) => {
            let stream = futures::stream::unfold(
                (push, Vec::<(&'static str, String)>::new()),
                |(mut push, mut pending)| async move {
                    loop {
                        if let Some((name, json)) = pending.pop() {
                            metrics::counter!(telemetry::MESSAGES, "route" => push.route)
                                .increment(1);
                            let event = SseEvent::default().event(name).data(json);
                            return Some((Ok::<_, Infallible>(event), (push, pending)));
                        }
                        let batch = tokio::select! {
                            batch = push.sub.next_batch(PUSH_BATCH) => batch.ok()?,
                            () = until_stopped(&mut push.stopping) => return None,
                        };
                        // Popped from the back: kept reversed to send in order.
                        pending = batch.iter().rev().filter_map(&push.render).collect();
                    }
                },
            );
            Sse::new(stream)
                .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
                .into_response()
        }
    }
}

async fn push_ws(mut socket: WebSocket, mut push: Push) {
    loop {
        tokio::select! {
            batch = push.sub.next_batch(PUSH_BATCH) => {
                let Ok(batch) = batch else { break };
                // One flush per batch, not per message: at thousands of rows a second the
                // per-message write is what a client would wait on.
                let mut sent = 0;
                for (_, json) in batch.iter().filter_map(&push.render) {
                    if socket.feed(Message::Text(json.into())).await.is_err() {
                        return;
                    }
                    sent += 1;
                }
                if socket.flush().await.is_err() {
                    return;
                }
                metrics::counter!(telemetry::MESSAGES, "route" => push.route).increment(sent);
            }
            incoming = socket.recv() => match incoming {
                // The client only listens; a close or an error ends the push.
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
                Some(Ok(_)) => {}
            },
            () = until_stopped(&mut push.stopping) => break,
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// Completes when the node starts stopping.
async fn until_stopped(stopping: &mut watch::Receiver<bool>) {
    let _ = stopping.wait_for(|s| *s).await;
}
