//! One sightline node with embedded defaults: the event log and SQLite in the data
//! directory, the store consumer, and the HTTP API — started together, stopped together.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sightline_api::NodeError> {
//! use sightline_api::{Node, NodeConfig};
//!
//! let node = Node::start(NodeConfig::default(), None).await?;
//! println!("listening on http://{}", node.addr());
//! node.shutdown().await;
//! # Ok(()) }
//! ```

mod config;

use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sightline_ingest::Ingestor;
use sightline_log::{EmbeddedLog, EventLog, LogError, TopicConfig};
use sightline_model::{Clock, topics};
use sightline_store::{SqliteStore, Store, StoreError, sink};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{NodeConfig, StoreConfig, TelemetryConfig};

use crate::{AppState, router, serve};

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The event log could not be opened.
    #[error("event log: {0}")]
    Log(#[from] LogError),
    /// The store could not be opened.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The HTTP address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running node. Dropping it without [`shutdown`](Node::shutdown) leaves its tasks running.
#[derive(Debug)]
pub struct Node {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    /// Opens the log and the store, creates the built-in topics, starts the store consumer
    /// and the HTTP API. Returns once the API is listening.
    pub async fn start(
        config: NodeConfig,
        prometheus: Option<PrometheusHandle>,
    ) -> Result<Node, NodeError> {
        config.validate().map_err(NodeError::Config)?;
        let log_dir = config.data_dir.join("log");
        let log_config = config.log.clone();
        let log = tokio::task::spawn_blocking(move || EmbeddedLog::open(&log_dir, log_config))
            .await
            .map_err(|_| LogError::Closed)??;
        for t in topics::BUILTIN {
            let topic = TopicConfig {
                partitions: t.partitions,
                retention_ms: Some(t.retention_ms),
                retention_bytes: None,
            };
            log.create_topic(t.name, topic).await?;
        }
        let log: Arc<dyn EventLog> = Arc::new(log);
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&config.sqlite_path()).await?);
        let (stop, stopped) = watch::channel(false);
        let until_stopped = move || {
            let mut rx = stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };

        let mut tasks = Vec::new();
        if config.store.consume {
            let sink_config = sink::SinkConfig {
                batch_size: config.store.batch_size,
                ..sink::SinkConfig::default()
            };
            let (log, store, stopped) = (log.clone(), store.clone(), stop.subscribe());
            let until_stopped = until_stopped.clone();
            tasks.push(tokio::spawn(async move {
                // Supervised: a failed consumer resumes from its committed offsets.
                while let Err(e) = sink::run(
                    log.clone(),
                    store.clone(),
                    sink_config.clone(),
                    until_stopped(),
                )
                .await
                {
                    if *stopped.borrow() {
                        break;
                    }
                    tracing::error!(error = %e, "store consumer failed; restarting in 1 s");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }));
        }

        let ingestor = Arc::new(Ingestor::new(
            log.clone(),
            Clock::system(),
            config.ingest.clone(),
        ));
        let state = AppState {
            ingestor,
            store,
            log,
            prometheus,
            config: config.api.clone(),
        };
        let listener = tokio::net::TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| NodeError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: config.http_addr,
            source,
        })?;
        tasks.push(tokio::spawn({
            let stop = until_stopped();
            async move {
                if let Err(e) = serve(listener, router(state), stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }
        }));
        tracing::info!(%addr, data_dir = %config.data_dir.display(), "sightline node started");
        Ok(Node { addr, stop, tasks })
    }

    /// The address the API listens on (useful when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the consumers.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
