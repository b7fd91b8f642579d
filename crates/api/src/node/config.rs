//! Configuration of a node: one typed tree, validated as a whole, passed down.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use sightline_cache::{MemoryConfig, RedisConfig};
use sightline_ingest::IngestConfig;
use sightline_log::LogConfig;
use sightline_store::PgConfig;

use crate::ApiConfig;

/// Everything a node can be told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address the HTTP API listens on.
    pub http_addr: SocketAddr,
    /// Where the log and the database live.
    pub data_dir: PathBuf,
    /// Embedded event log.
    pub log: LogConfig,
    /// Ingestion edge limits.
    pub ingest: IngestConfig,
    /// HTTP limits.
    pub api: ApiConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// Live cache settings.
    pub cache: CacheConfig,
    /// Log output.
    pub telemetry: TelemetryConfig,
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
    /// Run the log → store consumer in this node. Off for a node that only ingests (its
    /// records wait in the log for a node that consumes).
    pub consume: bool,
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
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            log: LogConfig::default(),
            ingest: IngestConfig::default(),
            api: ApiConfig::default(),
            store: StoreConfig::default(),
            cache: CacheConfig::default(),
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
            consume: true,
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
                self.log.segment_bytes >= 4096,
                "log.segment_bytes must be at least 4096",
            ),
            (
                self.log.max_record_bytes >= 1024,
                "log.max_record_bytes must be at least 1024",
            ),
            (
                self.log.queue_depth >= 1,
                "log.queue_depth must be at least 1",
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
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err((*msg).to_owned()),
            None => Ok(()),
        }
    }

    /// The SQLite file, resolved against the data directory.
    pub fn sqlite_path(&self) -> PathBuf {
        self.data_dir.join(&self.store.sqlite_path)
    }
}
