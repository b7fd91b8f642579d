//! One sightline node: the event log, the store, the cache, the log consumers and the HTTP
//! API — started together, stopped together. With the defaults everything is embedded (log
//! and SQLite in the data directory, in-process cache); the configuration swaps in Kafka,
//! PostgreSQL and Redis, and a [`Role`] splits the work over several nodes.
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

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sightline_cache::{Cache, MemoryCache, RedisCache, live};
use sightline_codec::Codec;
use sightline_ingest::{Ingestor, kafka_source};
use sightline_log::{EmbeddedLog, EventLog, KafkaLog, LogError, TopicConfig};
use sightline_model::{Clock, topics};
use sightline_store::{PgStore, SqliteStore, Store, StoreError, sink};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    CacheConfig, CacheKind, EventLogConfig, LogKind, NodeConfig, Role, StoreConfig, StoreKind,
    TelemetryConfig,
};

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
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Node {
    /// Opens the log and the store, creates the built-in topics, starts the store consumer
    /// and the HTTP API. Returns once the API is listening.
    pub async fn start(
        config: NodeConfig,
        prometheus: Option<PrometheusHandle>,
    ) -> Result<Node, NodeError> {
        config.validate().map_err(NodeError::Config)?;
        let log = open_log(&config).await?;
        for t in topics::BUILTIN {
            let topic = TopicConfig {
                partitions: t.partitions,
                retention_ms: Some(t.retention_ms),
                retention_bytes: None,
            };
            log.create_topic(t.name, topic).await?;
        }
        let (stop, stopped) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut threads = Vec::new();
        let store: Arc<dyn Store> = match config.store.kind {
            StoreKind::Sqlite => Arc::new(SqliteStore::open(&config.sqlite_path()).await?),
            StoreKind::Postgres => {
                let pg = PgStore::connect(&config.store.postgres).await?;
                if config.store.postgres.retention_days.is_some() {
                    let (pg, stopped) = (pg.clone(), stop.subscribe());
                    threads.push(on_own_thread("sightline-store-retention", move || {
                        pg_retention(pg, stopped)
                    })?);
                }
                Arc::new(pg)
            }
        };
        let until_stopped = move || {
            let mut rx = stopped.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };

        let cache: Arc<dyn Cache> = match config.cache.kind {
            CacheKind::Memory => Arc::new(MemoryCache::new(
                config.cache.memory.clone(),
                Clock::system(),
            )),
            // Connects lazily: a Redis that is down does not stop the node; reads fall back.
            CacheKind::Redis => Arc::new(
                RedisCache::connect(config.cache.redis.clone())
                    .await
                    .map_err(|e| NodeError::Config(format!("cache: {e}")))?,
            ),
        };
        let codec = Codec::new(&config.log.codec)
            .map_err(|e| NodeError::Config(format!("log.codec: {e}")))?;
        if config.role.processes() {
            let (feed_log, feed_cache, feed_codec, stopped) =
                (log.clone(), cache.clone(), codec.clone(), stop.subscribe());
            threads.push(on_own_thread("sightline-live-metrics", move || {
                supervised(
                    "live metrics feeder".into(),
                    stopped,
                    move |until_stopped| {
                        let codec = Some(feed_codec.clone());
                        live::run(feed_log.clone(), feed_cache.clone(), codec, until_stopped)
                    },
                )
            })?);
            let sink_config = sink::SinkConfig {
                batch_size: config.store.batch_size,
                codec: Some(codec.clone()),
                ..sink::SinkConfig::default()
            };
            let (log, store, stopped) = (log.clone(), store.clone(), stop.subscribe());
            threads.push(on_own_thread("sightline-store-consumer", move || {
                supervised("store consumer".into(), stopped, move |until_stopped| {
                    sink::run(
                        log.clone(),
                        store.clone(),
                        sink_config.clone(),
                        until_stopped,
                    )
                })
            })?);
        }

        let ingestor = Arc::new(
            Ingestor::new(log.clone(), Clock::system(), config.ingest.clone()).with_codec(codec),
        );
        if config.role.ingests() {
            for source in &config.sources.kafka {
                let (source, ingestor) = (source.clone(), ingestor.clone());
                let name = format!("Kafka source '{}'", source.topic);
                tasks.push(tokio::spawn(supervised(
                    name,
                    stop.subscribe(),
                    move |until_stopped| {
                        kafka_source::run(source.clone(), ingestor.clone(), until_stopped)
                    },
                )));
            }
        }
        let state = AppState {
            ingestor,
            store,
            cache,
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
                if let Err(e) = serve(listener, router(state, config.role), stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }
        }));
        tracing::info!(
            %addr,
            role = ?config.role,
            log = ?config.log.kind,
            store = ?config.store.kind,
            cache = ?config.cache.kind,
            "sightline node started"
        );
        Ok(Node {
            addr,
            stop,
            tasks,
            threads,
        })
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
        for thread in self.threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Opens the configured event log backend.
async fn open_log(config: &NodeConfig) -> Result<Arc<dyn EventLog>, NodeError> {
    Ok(match config.log.kind {
        LogKind::Embedded => {
            let (dir, settings) = (config.data_dir.join("log"), config.log.embedded.clone());
            let log = tokio::task::spawn_blocking(move || EmbeddedLog::open(&dir, settings))
                .await
                .map_err(|_| LogError::Closed)??;
            Arc::new(log)
        }
        LogKind::Kafka => Arc::new(KafkaLog::connect(config.log.kafka.clone())?),
    })
}

/// Runs a background job on its own thread with a single-threaded runtime. Processing
/// (decoding and writing large batches) then never occupies an HTTP worker between two
/// awaits; the OS shares the cores between acknowledging and storing. The future is built
/// on that thread, so it need not be `Send`.
fn on_own_thread<F, Fut>(name: &str, make: F) -> Result<std::thread::JoinHandle<()>, NodeError>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| NodeError::Config(format!("cannot start {name}: {e}")))?;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || runtime.block_on(make()))
        .map_err(|e| NodeError::Config(format!("cannot start {name}: {e}")))
}

/// Runs a log consumer, supervised: `run` gets a future that completes when the node
/// stops; a consumer that fails resumes from its committed offsets after a pause.
async fn supervised<F, Fut, E>(what: String, mut stopped: watch::Receiver<bool>, mut run: F)
where
    F: FnMut(std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    loop {
        let mut rx = stopped.clone();
        let until_stopped = Box::pin(async move {
            let _ = rx.wait_for(|s| *s).await;
        });
        match run(until_stopped).await {
            Ok(()) => break,
            Err(_) if *stopped.borrow_and_update() => break,
            Err(e) => {
                tracing::error!(error = %e, "{what} failed; restarting in 1 s");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
            }
        }
    }
}

/// Drops expired daily partitions at start-up and then hourly, until the node stops.
async fn pg_retention(store: PgStore, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        match store
            .apply_retention(chrono::Utc::now().timestamp_millis())
            .await
        {
            Ok(0) => {}
            Ok(days) => tracing::info!(days, "dropped expired store partitions"),
            Err(e) => tracing::warn!(error = %e, "store retention failed"),
        }
    }
}
