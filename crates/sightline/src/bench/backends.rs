//! Which engines a benchmark runs on: the embedded defaults, or Kafka and PostgreSQL. Each
//! run gets its own Kafka namespace and PostgreSQL schema, so runs never see each other's
//! data and nothing needs cleaning up by hand.

use sightline_api::{LogKind, NodeConfig, StoreKind};

/// `--log`, `--store` and where the servers are.
#[derive(Clone, Debug, clap::Args)]
pub struct BackendArgs {
    /// Event log backends to measure, comma-separated: embedded, kafka.
    #[arg(long = "log", value_delimiter = ',', default_value = "embedded", value_parser = parse_log)]
    pub logs: Vec<LogKind>,
    /// Store backend of the Kafka runs: sqlite or postgres (embedded runs use SQLite).
    #[arg(long, default_value = "postgres", value_parser = parse_store)]
    pub store: StoreKind,
    /// Kafka bootstrap brokers.
    #[arg(long, default_value = "127.0.0.1:19092")]
    pub brokers: String,
    /// PostgreSQL URL.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub pg_url: String,
}

fn parse_log(s: &str) -> Result<LogKind, String> {
    match s {
        "embedded" => Ok(LogKind::Embedded),
        "kafka" => Ok(LogKind::Kafka),
        other => Err(format!("unknown log '{other}': expected embedded or kafka")),
    }
}

fn parse_store(s: &str) -> Result<StoreKind, String> {
    match s {
        "sqlite" => Ok(StoreKind::Sqlite),
        "postgres" => Ok(StoreKind::Postgres),
        other => Err(format!(
            "unknown store '{other}': expected sqlite or postgres"
        )),
    }
}

/// One backend combination, isolated under `namespace`.
#[derive(Clone, Debug)]
pub struct Backend {
    pub log: LogKind,
    pub store: StoreKind,
    brokers: String,
    pg_url: String,
    namespace: String,
}

impl BackendArgs {
    /// The combinations to run, each with a fresh namespace.
    pub fn each(&self) -> Vec<Backend> {
        let run = format!("bench_{}_{}", std::process::id(), rand::random::<u32>());
        self.logs
            .iter()
            .map(|&log| Backend {
                log,
                store: match log {
                    LogKind::Embedded => StoreKind::Sqlite,
                    LogKind::Kafka => self.store,
                },
                brokers: self.brokers.clone(),
                pg_url: self.pg_url.clone(),
                namespace: format!("{run}_{}", log_name(log)),
            })
            .collect()
    }
}

fn log_name(log: LogKind) -> &'static str {
    match log {
        LogKind::Embedded => "embedded",
        LogKind::Kafka => "kafka",
    }
}

impl Backend {
    /// `log=…, store=…`, for reports.
    pub fn label(&self) -> String {
        let store = match self.store {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres => "postgres",
        };
        format!("{}+{store}", log_name(self.log))
    }

    /// The same backend in a namespace of its own, so one run starts without the records
    /// (and consumer backlog) another left on the shared servers.
    pub fn isolated(&self, run: &str) -> Backend {
        Backend {
            namespace: format!("{}_{run}", self.namespace),
            ..self.clone()
        }
    }

    /// Points an in-process node's configuration at this backend.
    pub fn apply(&self, config: &mut NodeConfig) {
        config.log.kind = self.log;
        config.log.kafka.brokers = self.brokers.clone();
        config.log.kafka.namespace = self.namespace.clone();
        // The broker's minimum: a killed node's partitions move on within seconds.
        config.log.kafka.session_timeout_ms = 6_000;
        config.store.kind = self.store;
        config.store.postgres.url = self.pg_url.clone();
        config.store.postgres.schema = Some(self.namespace.clone());
    }

    /// The same, as `SIGHTLINE_*` variables for a node started as a child process.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut config = NodeConfig::default();
        self.apply(&mut config);
        vec![
            ("SIGHTLINE_LOG__KIND", log_name(self.log).to_owned()),
            ("SIGHTLINE_LOG__KAFKA__BROKERS", config.log.kafka.brokers),
            (
                "SIGHTLINE_LOG__KAFKA__NAMESPACE",
                config.log.kafka.namespace,
            ),
            (
                "SIGHTLINE_LOG__KAFKA__SESSION_TIMEOUT_MS",
                config.log.kafka.session_timeout_ms.to_string(),
            ),
            (
                "SIGHTLINE_STORE__KIND",
                match self.store {
                    StoreKind::Sqlite => "sqlite",
                    StoreKind::Postgres => "postgres",
                }
                .to_owned(),
            ),
            ("SIGHTLINE_STORE__POSTGRES__URL", config.store.postgres.url),
            ("SIGHTLINE_STORE__POSTGRES__SCHEMA", self.namespace.clone()),
        ]
    }
}
