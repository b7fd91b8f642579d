//! Configuration of a node: one typed tree, validated as a whole, passed down.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sightline_cache::{MemoryConfig, RedisConfig};
use sightline_codec::CodecConfig;
use sightline_ingest::IngestConfig;
use sightline_ingest::kafka_source::KafkaSourceConfig;
use sightline_log::{KafkaConfig, LogConfig};
use sightline_store::PgConfig;

use sightline_auth::AuthConfig;

use crate::ApiConfig;

/// Everything a node can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// What this node does; several nodes with different roles share one cluster.
    pub role: Role,
    /// Address the HTTP API listens on.
    pub http_addr: SocketAddr,
    /// Where the log and the database live.
    pub data_dir: PathBuf,
    /// Event log backend.
    pub log: EventLogConfig,
    /// Ingestion edge limits.
    pub ingest: IngestConfig,
    /// HTTP limits and transport.
    pub api: ApiConfig,
    /// Authentication: users, tokens, API keys, signed webhooks.
    pub auth: AuthConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// Live cache settings.
    pub cache: CacheConfig,
    /// Inputs besides the HTTP API, run by nodes that ingest.
    pub sources: SourcesConfig,
    /// Stream engine: built-in metric rollups and event counters.
    pub stream: StreamConfig,
    /// Anomaly detection on metrics and error events, run by processing nodes.
    pub detect: DetectSection,
    /// Correlation of anomalies and events into incidents, run by processing nodes.
    pub correlate: CorrelateSection,
    /// Root-cause analysis of incidents, run by processing nodes.
    pub analyst: sightline_analyst::AnalystConfig,
    /// Trigger rules and playbooks: the rules runner on processing nodes, the playbook
    /// engine on every node (the API approves and dry-runs through it).
    pub respond: RespondSection,
    /// Log output.
    pub telemetry: TelemetryConfig,
}

/// What a node does. Every role serves `/health`, `/ready` and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in one process: the embedded default.
    #[default]
    All,
    /// The ingestion endpoints: validate, append to the log, acknowledge.
    Ingest,
    /// The log consumers (store writer, live cache feeder). Several process nodes in one
    /// consumer group split the partitions and take over from one another.
    Process,
    /// The query endpoints.
    Api,
}

impl Role {
    /// Serves the ingestion endpoints.
    pub fn ingests(self) -> bool {
        matches!(self, Role::All | Role::Ingest)
    }

    /// Runs the log consumers.
    pub fn processes(self) -> bool {
        matches!(self, Role::All | Role::Process)
    }

    /// Serves the query endpoints.
    pub fn queries(self) -> bool {
        matches!(self, Role::All | Role::Api)
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Role::All),
            "ingest" => Ok(Role::Ingest),
            "process" => Ok(Role::Process),
            "api" => Ok(Role::Api),
            other => Err(format!(
                "unknown role '{other}': expected all, ingest, process or api"
            )),
        }
    }
}

/// Which backend carries the event log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogKind {
    /// Segment files in the data directory: the embedded default.
    #[default]
    Embedded,
    /// A Kafka cluster, shared by every node.
    Kafka,
}

/// Event log settings.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventLogConfig {
    /// `embedded` (default) or `kafka`.
    pub kind: LogKind,
    /// Embedded log settings, used when `kind = "embedded"`.
    pub embedded: LogConfig,
    /// Kafka settings, used when `kind = "kafka"`.
    pub kafka: KafkaConfig,
    /// How record values are written: JSON (default) or Avro with a schema registry.
    pub codec: CodecConfig,
}

impl EventLogConfig {
    /// The prefix of sightline's topic names on the log: `log.kafka.namespace` on Kafka,
    /// none on the embedded log (its topics are this deployment's alone).
    pub fn namespace(&self) -> &str {
        match self.kind {
            LogKind::Embedded => "",
            LogKind::Kafka => &self.kafka.namespace,
        }
    }
}

/// Inputs besides the HTTP API.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourcesConfig {
    /// External Kafka topics to ingest (`[[sources.kafka]]`).
    pub kafka: Vec<KafkaSourceConfig>,
}

/// Which backend holds the live cache (`metrics:live:*`, `analysis:*`, …).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheKind {
    /// In this process: the embedded default.
    #[default]
    Memory,
    /// Redis, shared by every node.
    Redis,
}

/// Live cache settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// `memory` (default) or `redis`.
    pub kind: CacheKind,
    /// In-process cache settings.
    pub memory: MemoryConfig,
    /// Redis settings, used when `kind = "redis"`.
    pub redis: RedisConfig,
}

/// Which database backs the [`Store`](sightline_store::Store).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// SQLite (WAL) in the data directory: the embedded default.
    #[default]
    Sqlite,
    /// PostgreSQL, daily-partitioned time-series tables: for scale-out.
    Postgres,
}

/// Store settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` (default) or `postgres`.
    pub kind: StoreKind,
    /// PostgreSQL settings, used when `kind = "postgres"`.
    pub postgres: PgConfig,
    /// SQLite database file; relative paths are inside `data_dir`.
    pub sqlite_path: PathBuf,
    /// Records the store consumer takes from the log per transaction.
    pub batch_size: usize,
}

/// Stream engine settings: the built-in rollup job run by nodes that process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamConfig {
    /// Run the built-in metric rollups (1m/5m/15m) and event counters (5m).
    pub rollups: bool,
    /// Run the continuous SQL queries defined through `/api/v1/queries`.
    pub queries: bool,
    /// How often rollup state is checkpointed (in `<data_dir>/checkpoints/`) and its
    /// source offsets committed, ms.
    pub checkpoint_interval_ms: u64,
    /// How far behind the newest event time a point may arrive and still count, ms.
    pub max_out_of_orderness_ms: i64,
    /// Processing time after which a silent partition stops holding windows open, ms;
    /// 0 waits for every partition forever.
    pub idle_timeout_ms: i64,
    /// How long after its end a window still accepts points, ms.
    pub grace_ms: i64,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            rollups: true,
            queries: true,
            checkpoint_interval_ms: 5_000,
            max_out_of_orderness_ms: 5_000,
            idle_timeout_ms: 30_000,
            grace_ms: 5_000,
        }
    }
}

/// `[detect]`: which detectors watch which series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectSection {
    /// Run the detection runner (`metrics.raw` + `system-events` → `anomalies`).
    pub enabled: bool,
    /// Detectors per series (default: the ensemble everywhere).
    pub detectors: sightline_detect::DetectConfig,
    /// Width of the error-event count windows the event-rate detector judges, ms.
    pub event_rate_window_ms: i64,
    /// The new-error-pattern detector (`[detect.new_pattern]`: learning period, caps).
    pub new_pattern: sightline_detect::new_pattern::NewPatternConfig,
}

impl Default for DetectSection {
    fn default() -> Self {
        Self {
            enabled: true,
            detectors: sightline_detect::DetectConfig::default(),
            event_rate_window_ms: 60_000,
            new_pattern: sightline_detect::new_pattern::NewPatternConfig::default(),
        }
    }
}

/// `[correlate]`: how anomalies and events become incidents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorrelateSection {
    /// Run the correlation runner (`anomalies` + `system-events` → incidents).
    pub enabled: bool,
    /// Grouping, timing, inhibition, flapping and severity rules.
    pub rules: sightline_correlate::CorrelatorConfig,
    /// The service dependency graph, inline (`[correlate.topology.services.checkout]
    /// depends_on = ["payments"]`). Written to the store at start when it differs from the
    /// stored one; `PUT /api/v1/topology` changes it at run time.
    pub topology: Option<sightline_model::Topology>,
    /// The same from a file: JSON when it ends in `.json` (what `sightline simulate
    /// --topology-out` writes), TOML otherwise. Exclusive with `topology`.
    pub topology_path: Option<PathBuf>,
}

impl Default for CorrelateSection {
    fn default() -> Self {
        Self {
            enabled: true,
            rules: sightline_correlate::CorrelatorConfig::default(),
            topology: None,
            topology_path: None,
        }
    }
}

impl CorrelateSection {
    /// The configured topology, read and validated; `None` when none is configured.
    pub fn configured_topology(&self) -> Result<Option<sightline_model::Topology>, String> {
        let topology = match (&self.topology, &self.topology_path) {
            (Some(_), Some(_)) => {
                return Err("correlate: set `topology` or `topology_path`, not both".to_owned());
            }
            (Some(t), None) => t.clone(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    format!(
                        "correlate.topology_path: cannot read {}: {e}",
                        path.display()
                    )
                })?;
                let parsed = if path.extension().is_some_and(|e| e == "json") {
                    serde_json::from_str(&text).map_err(|e| e.to_string())
                } else {
                    toml::from_str(&text).map_err(|e| e.to_string())
                };
                parsed.map_err(|e| {
                    format!(
                        "correlate.topology_path: {} is not a topology: {e}",
                        path.display()
                    )
                })?
            }
            (None, None) => return Ok(None),
        };
        topology
            .validate()
            .map_err(|e| format!("correlate.topology: {e}"))?;
        Ok(Some(topology))
    }
}

/// `[respond]`: what happens when a trigger rule fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RespondSection {
    /// Run the rules runner (`system-events`, `anomalies`, `incidents.*` → firings →
    /// playbooks) on nodes with role all or process.
    pub enabled: bool,
    /// Firings waiting for the playbook engine; when full, the rules runner waits
    /// (backpressure) rather than drop one.
    pub firing_queue: usize,
    /// The playbook engine: executor allow-lists, safety policy, approvals.
    pub playbooks: sightline_respond::PlaybookConfig,
}

impl Default for RespondSection {
    fn default() -> Self {
        Self {
            enabled: true,
            firing_queue: 1024,
            playbooks: sightline_respond::PlaybookConfig::default(),
        }
    }
}

/// Logging settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// `tracing` filter directive, e.g. `info` or `sightline=debug,info`; `RUST_LOG` wins.
    pub log_level: String,
    /// Emit logs as JSON lines instead of text.
    pub json_logs: bool,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            role: Role::All,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            log: EventLogConfig::default(),
            ingest: IngestConfig::default(),
            api: ApiConfig::default(),
            auth: AuthConfig::default(),
            store: StoreConfig::default(),
            cache: CacheConfig::default(),
            sources: SourcesConfig::default(),
            stream: StreamConfig::default(),
            detect: DetectSection::default(),
            correlate: CorrelateSection::default(),
            analyst: sightline_analyst::AnalystConfig::default(),
            respond: RespondSection::default(),
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Sqlite,
            postgres: PgConfig::default(),
            sqlite_path: PathBuf::from("sightline.db"),
            batch_size: 5000,
        }
    }
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            json_logs: false,
        }
    }
}

impl NodeConfig {
    /// Checks values no type can rule out.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.log.embedded.segment_bytes >= 4096,
                "log.embedded.segment_bytes must be at least 4096",
            ),
            (
                self.log.embedded.max_record_bytes >= 1024,
                "log.embedded.max_record_bytes must be at least 1024",
            ),
            (
                self.log.embedded.queue_depth >= 1,
                "log.embedded.queue_depth must be at least 1",
            ),
            (
                !self.log.kafka.brokers.trim().is_empty(),
                "log.kafka.brokers must name at least one broker",
            ),
            (
                self.log.kafka.replication_factor >= 1,
                "log.kafka.replication_factor must be at least 1",
            ),
            (
                self.ingest.max_in_flight_bytes >= 1024,
                "ingest.max_in_flight_bytes must be at least 1024",
            ),
            (
                self.ingest.max_batch_items >= 1,
                "ingest.max_batch_items must be at least 1",
            ),
            (
                self.api.max_body_bytes >= 1024,
                "api.max_body_bytes must be at least 1024",
            ),
            (
                self.store.batch_size >= 1,
                "store.batch_size must be at least 1",
            ),
            (
                self.stream.checkpoint_interval_ms >= 10,
                "stream.checkpoint_interval_ms must be at least 10",
            ),
            (
                self.stream.max_out_of_orderness_ms >= 0,
                "stream.max_out_of_orderness_ms must not be negative",
            ),
            (
                self.stream.idle_timeout_ms >= 0,
                "stream.idle_timeout_ms must not be negative (0 disables it)",
            ),
            (
                self.stream.grace_ms >= 0,
                "stream.grace_ms must not be negative",
            ),
        ];
        self.api.tls.validate()?;
        if self.log.kind == LogKind::Kafka {
            self.log.kafka.security.validate("log.kafka.security")?;
        }
        for (i, source) in self.sources.kafka.iter().enumerate() {
            source
                .security
                .validate(&format!("sources.kafka[{i}].security"))?;
        }
        if !self.auth.enabled && !self.auth.allow_insecure && !self.http_addr.ip().is_loopback() {
            return Err(format!(
                "refusing to serve {} without authentication: only loopback addresses may run \
                 with auth.enabled = false; enable [auth] or pass --insecure",
                self.http_addr
            ));
        }
        if self.auth.webhooks.secrets.len() + self.auth.webhooks.secret_files.len() > 2 {
            return Err("auth.webhooks: at most two active secrets (current and next)".into());
        }
        self.detect
            .detectors
            .validate()
            .map_err(|e| format!("detect.detectors: {e}"))?;
        if self.detect.event_rate_window_ms <= 0 {
            return Err("detect.event_rate_window_ms must be positive".into());
        }
        self.correlate
            .rules
            .validate()
            .map_err(|e| format!("correlate.rules: {e}"))?;
        self.analyst
            .validate()
            .map_err(|e| format!("analyst.{e}"))?;
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err((*msg).to_owned()),
            None => self
                .log
                .codec
                .validate()
                .map_err(|e| format!("log.codec: {e}")),
        }
    }

    /// The SQLite file, resolved against the data directory.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(&self.store.sqlite_path)
    }
}
