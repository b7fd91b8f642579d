//! One sightline node: the event log, the store, the cache, the log consumers and the HTTP
//! API — started together, stopped together. With the defaults everything is embedded (log
//! and SQLite in the data directory, in-process cache); the configuration swaps in Kafka,
//! PostgreSQL and Redis, and a [`Role`] splits the work over several nodes. Processing
//! nodes also run the stream engine's rollup runner (`[stream]`), checkpointing into
//! `<data_dir>/checkpoints/`.
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
mod open_incidents;
mod queries;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use sightline_cache::{Cache, MemoryCache, RedisCache, live};
use sightline_codec::Codec;
use sightline_ingest::{Ingestor, kafka_source};
use sightline_log::{EmbeddedLog, EventLog, KafkaLog, LogError, TopicConfig};
use sightline_model::{Clock, Topology, topics};
use sightline_store::{PgStore, SqliteStore, Store, StoreError, sink};
use sightline_stream::rollup::RollupConfig;
use sightline_stream::{CheckpointStore, FileCheckpointStore, WatermarkConfig, runner};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::{
    CacheConfig, CacheKind, CorrelateSection, DetectSection, EventLogConfig, LogKind, NodeConfig,
    RespondSection, Role, StoreConfig, StoreKind, StreamConfig, TelemetryConfig,
};

use sightline_auth::Auth;

use crate::{AppState, router, serve, tls};

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
    /// Authentication could not be set up (key files, JWKS, secrets).
    #[error("auth: {0}")]
    Auth(#[from] sightline_auth::AuthError),
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
    bootstrap_token: Option<String>,
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
        let (store, pg) = open_store(&config).await?;
        if let Some(topology) = config
            .correlate
            .configured_topology()
            .map_err(NodeError::Config)?
        {
            apply_topology(store.as_ref(), &topology).await?;
        }
        if let Some(pg) = pg
            && config.store.postgres.retention_days.is_some()
        {
            let stopped = stop.subscribe();
            threads.push(on_own_thread("sightline-store-retention", move || {
                pg_retention(pg, stopped)
            })?);
        }
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
        // Registry subjects follow the cluster's topic names, namespace included.
        let codec = Codec::with_namespace(&config.log.codec, config.log.namespace())
            .map_err(|e| NodeError::Config(format!("log.codec: {e}")))?;
        // One analyst per process: the runner and the API share its LLM limits (budgets,
        // breaker, concurrency).
        let analyst = sightline_analyst::Analyst::from_config(
            Arc::new(sightline_analyst::context::StoreContext::new(
                store.clone(),
                config.analyst.context.clone(),
            )),
            &config.analyst,
        )
        .map_err(|e| NodeError::Config(format!("analyst: {e}")))?;
        let queries_changed = Arc::new(tokio::sync::Notify::new());
        // One playbook engine per process: rule firings, API approvals, dry-runs and
        // autonomous decisions share its rate limits and run slots. Candidate playbooks
        // for a decision are every stored template (the safety controller and the risk
        // policy then decide).
        let engine = sightline_respond::Engine::new(
            store.clone(),
            Some(log.clone()),
            config.respond.playbooks.clone(),
            Clock::system(),
        );
        let responses = Arc::new(sightline_respond::decision::Autonomous::new(
            engine.clone(),
            Arc::new(sightline_respond::decision::RuleCandidates::new(
                store.clone(),
                Clock::system(),
            )),
        ));
        let rules_changed = Arc::new(tokio::sync::Notify::new());
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
            if config.stream.rollups {
                let checkpoints = checkpoint_store(&config)?;
                let runner_config = runner_config(&config.stream);
                let (log, store, codec, stopped) =
                    (log.clone(), store.clone(), codec.clone(), stop.subscribe());
                threads.push(on_own_thread("sightline-rollups", move || {
                    supervised("rollup runner".into(), stopped, move |until_stopped| {
                        runner::run_rollups(
                            log.clone(),
                            store.clone(),
                            Some(codec.clone()),
                            checkpoints.clone(),
                            runner_config.clone(),
                            until_stopped,
                        )
                    })
                })?);
            }
            if config.stream.queries {
                let checkpoints = checkpoint_store(&config)?;
                let query_config = sightline_stream::sql::runner::QueryRunnerConfig {
                    checkpoint_interval: std::time::Duration::from_millis(
                        config.stream.checkpoint_interval_ms,
                    ),
                    source_partitions: config.ingest.topics.partitions,
                    ..Default::default()
                };
                let (log, store, changed, stopped) = (
                    log.clone(),
                    store.clone(),
                    queries_changed.clone(),
                    stop.subscribe(),
                );
                threads.push(on_own_thread("sightline-queries", move || {
                    queries::supervise(log, store, checkpoints, query_config, changed, stopped)
                })?);
            }
            if config.detect.enabled {
                let checkpoints = checkpoint_store(&config)?;
                let detect_config = sightline_detect::runner::DetectionRunnerConfig {
                    detect: config.detect.detectors.clone(),
                    event_rate_window_ms: config.detect.event_rate_window_ms,
                    new_pattern: config.detect.new_pattern.clone(),
                    codec: Some(codec.clone()),
                    checkpoint_interval: std::time::Duration::from_millis(
                        config.stream.checkpoint_interval_ms,
                    ),
                    ..Default::default()
                };
                let (log, store, stopped) = (log.clone(), store.clone(), stop.subscribe());
                threads.push(on_own_thread("sightline-detect", move || {
                    supervised("detection runner".into(), stopped, move |until_stopped| {
                        sightline_detect::runner::run_detection(
                            log.clone(),
                            store.clone(),
                            checkpoints.clone(),
                            detect_config.clone(),
                            until_stopped,
                        )
                    })
                })?);
            }
            if config.correlate.enabled {
                let checkpoints = checkpoint_store(&config)?;
                let correlate_config = sightline_correlate::runner::CorrelationRunnerConfig {
                    correlator: config.correlate.rules.clone(),
                    codec: Some(codec.clone()),
                    checkpoint_interval: std::time::Duration::from_millis(
                        config.stream.checkpoint_interval_ms,
                    ),
                    ..Default::default()
                };
                let (log, store, stopped) = (log.clone(), store.clone(), stop.subscribe());
                threads.push(on_own_thread("sightline-correlate", move || {
                    supervised("correlation runner".into(), stopped, move |until_stopped| {
                        sightline_correlate::runner::run_correlation(
                            log.clone(),
                            store.clone(),
                            checkpoints.clone(),
                            correlate_config.clone(),
                            until_stopped,
                        )
                    })
                })?);
            }
            if config.analyst.enabled {
                let runner = sightline_analyst::runner::AnalystRunner {
                    log: log.clone(),
                    store: store.clone(),
                    cache: Some(cache.clone()),
                    analyst: analyst.clone(),
                    config: sightline_analyst::runner::AnalystRunnerConfig {
                        batch_size: config.analyst.batch_size,
                        ..Default::default()
                    },
                };
                let stopped = stop.subscribe();
                threads.push(on_own_thread("sightline-analyst", move || {
                    supervised("analyst runner".into(), stopped, move |until_stopped| {
                        sightline_analyst::runner::run_analyst(runner.clone(), until_stopped)
                    })
                })?);
            }
            if config.analyst.insights.enabled {
                // The analyst's own provider: insights and incident analyses share its
                // token budgets, breaker and concurrency limit.
                let llm = analyst.shared_llm().ok_or_else(|| {
                    NodeError::Config(
                        "analyst.insights.enabled: per-event insights need [analyst.llm]".into(),
                    )
                })?;
                let runner = sightline_analyst::insights::runner::InsightRunner::new(
                    log.clone(),
                    store.clone(),
                    llm,
                    config.analyst.insights.clone(),
                )
                .map_err(|e| NodeError::Config(format!("analyst: {e}")))?
                .with_codec(codec.clone());
                let stopped = stop.subscribe();
                threads.push(on_own_thread("sightline-insights", move || {
                    supervised("insight runner".into(), stopped, move |until_stopped| {
                        sightline_analyst::insights::runner::run_insights(
                            runner.clone(),
                            until_stopped,
                        )
                    })
                })?);
            }
            if config.respond.enabled {
                // Rules fire into a bounded queue; the playbook engine drains it. A full
                // queue makes the rules runner wait (and its offsets with it).
                let (firings, queued) =
                    tokio::sync::mpsc::channel(config.respond.firing_queue.max(1));
                let runner = sightline_respond::runner::RulesRunner {
                    log: log.clone(),
                    store: store.clone(),
                    checkpoints: checkpoint_store(&config)?,
                    clock: Clock::system(),
                    reload: Some(rules_changed.clone()),
                    config: sightline_respond::runner::RulesRunnerConfig {
                        codec: Some(codec.clone()),
                        checkpoint_interval: std::time::Duration::from_millis(
                            config.stream.checkpoint_interval_ms,
                        ),
                        ..Default::default()
                    },
                };
                let stopped = stop.subscribe();
                threads.push(on_own_thread("sightline-rules", move || {
                    supervised("rules runner".into(), stopped, move |until_stopped| {
                        sightline_respond::runner::run_rules(
                            runner.clone(),
                            firings.clone(),
                            until_stopped,
                        )
                    })
                })?);
                let queued = Arc::new(tokio::sync::Mutex::new(queued));
                let engine = engine.clone();
                tasks.push(tokio::spawn(supervised(
                    "playbook engine".into(),
                    stop.subscribe(),
                    move |until_stopped| {
                        let (engine, queued) = (engine.clone(), queued.clone());
                        async move {
                            let mut queued = queued.lock().await;
                            sightline_respond::run_playbooks(engine, &mut queued, until_stopped)
                                .await
                        }
                    },
                )));
            }
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
        let auth = Arc::new(
            Auth::new(
                config.auth.clone(),
                store.clone(),
                Some(&config.data_dir),
                Clock::system(),
            )
            .await?,
        );
        let bootstrap_token = auth.bootstrap_token().await?;
        if !config.auth.enabled {
            tracing::warn!(
                addr = %config.http_addr,
                "authentication is disabled: every caller is an admin"
            );
        }
        if config.role.queries() {
            tasks.push(tokio::spawn(open_incidents::refresh(
                store.clone(),
                stop.subscribe(),
            )));
        }
        let state = AppState {
            ingestor,
            store,
            cache,
            log,
            prometheus,
            auth,
            config: config.api.clone(),
            queries_changed,
            live: crate::live::LiveSlots::new(config.api.max_live_connections),
            stopping: stop.subscribe(),
            responses,
            rules_changed,
            analyst,
        };
        let app = router(state, config.role).map_err(NodeError::Config)?;
        let listener =
            std::net::TcpListener::bind(config.http_addr).map_err(|source| NodeError::Bind {
                addr: config.http_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| NodeError::Bind {
            addr: config.http_addr,
            source,
        })?;
        let bind_error = |source| NodeError::Bind { addr, source };
        listener.set_nonblocking(true).map_err(bind_error)?;
        if config.api.tls.enabled() {
            let tls = tls::load(&config.api.tls)
                .await
                .map_err(NodeError::Config)?;
            if let Some(from) = config.api.tls.redirect_http_from {
                let plain = tokio::net::TcpListener::bind(from)
                    .await
                    .map_err(|source| NodeError::Bind { addr: from, source })?;
                let stop = until_stopped();
                tasks.push(tokio::spawn(async move {
                    if let Err(e) = serve(plain, tls::redirect_app(addr.port()), stop).await {
                        tracing::error!(error = %e, "HTTP redirect server failed");
                    }
                }));
            }
            let stop = until_stopped();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = tls::serve(listener, tls, app, stop).await {
                    tracing::error!(error = %e, "HTTPS server failed");
                }
            }));
        } else {
            let listener = tokio::net::TcpListener::from_std(listener).map_err(bind_error)?;
            let stop = until_stopped();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = serve(listener, app, stop).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }));
        }
        tracing::info!(
            %addr,
            role = ?config.role,
            log = ?config.log.kind,
            store = ?config.store.kind,
            cache = ?config.cache.kind,
            tls = config.api.tls.enabled(),
            auth = config.auth.enabled,
            "sightline node started"
        );
        Ok(Node {
            addr,
            bootstrap_token,
            stop,
            tasks,
            threads,
        })
    }

    /// The one-time token that creates the first admin (`POST /api/v1/auth/bootstrap`),
    /// when authentication is on and no user exists yet. Show it to the operator once.
    pub fn bootstrap_token(&self) -> Option<&str> {
        self.bootstrap_token.as_deref()
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

/// Opens the configured store (applying migrations); for PostgreSQL also returns the
/// concrete store, for maintenance jobs.
pub async fn open_store(
    config: &NodeConfig,
) -> Result<(Arc<dyn Store>, Option<PgStore>), NodeError> {
    Ok(match config.store.kind {
        StoreKind::Sqlite => (
            Arc::new(SqliteStore::open(&config.sqlite_path()).await?),
            None,
        ),
        StoreKind::Postgres => {
            let pg = PgStore::connect(&config.store.postgres).await?;
            (Arc::new(pg.clone()), Some(pg))
        }
    })
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

/// The stream engine's checkpoints: files in `<data_dir>/checkpoints/`.
fn checkpoint_store(config: &NodeConfig) -> Result<Arc<dyn CheckpointStore>, NodeError> {
    Ok(Arc::new(
        FileCheckpointStore::open(config.data_dir.join("checkpoints"))
            .map_err(|e| NodeError::Config(format!("stream: {e}")))?,
    ))
}

/// The rollup runner's settings from the `[stream]` section.
fn runner_config(stream: &StreamConfig) -> runner::RunnerConfig {
    runner::RunnerConfig {
        rollup: RollupConfig {
            watermark: WatermarkConfig {
                max_out_of_orderness_ms: stream.max_out_of_orderness_ms,
                idle_timeout_ms: (stream.idle_timeout_ms > 0).then_some(stream.idle_timeout_ms),
            },
            grace_ms: stream.grace_ms,
        },
        checkpoint_interval: std::time::Duration::from_millis(stream.checkpoint_interval_ms),
        ..runner::RunnerConfig::default()
    }
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
            .apply_retention(sightline_model::clock::now_ms())
            .await
        {
            Ok(0) => {}
            Ok(days) => tracing::info!(days, "dropped expired store partitions"),
            Err(e) => tracing::warn!(error = %e, "store retention failed"),
        }
    }
}

/// Writes the configured service topology to the store unless it already holds it, so a
/// restart with an unchanged file changes nothing and a changed file wins over the stored
/// graph (until the next `PUT /api/v1/topology`).
async fn apply_topology(store: &dyn Store, topology: &Topology) -> Result<(), NodeError> {
    let stored = store.get_topology().await?;
    if stored.is_some_and(|s| &s.topology == topology) {
        return Ok(());
    }
    let version = store
        .put_topology(topology, "config", sightline_model::clock::now_ms())
        .await?;
    tracing::info!(
        version,
        services = topology.services.len(),
        "service topology from the configuration stored"
    );
    Ok(())
}
