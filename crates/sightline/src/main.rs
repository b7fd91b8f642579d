//! `sightline`: the command-line entry point. Wiring only — every behaviour lives in the
//! library crates (`sightline-api` assembles a node; `sightline-sim` generates traffic).

mod accounts;
mod bench;
mod config;
mod simulate;
mod telemetry;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

// The ingestion path allocates many small strings per event; mimalloc handles that pattern
// markedly better than the system allocator (measured with `sightline bench ingest`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// sightline — real-time event intelligence for operations teams, in one binary.
///
/// Ingests events and metrics over HTTP into a durable event log, stores them and answers
/// queries. Run `sightline run` to start a node with embedded defaults (data in ./data,
/// API on 127.0.0.1:8080), then `sightline simulate` in another terminal to feed it.
#[derive(Debug, Parser)]
#[command(name = "sightline", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a node: event log, store and HTTP API in one process.
    Run(RunArgs),
    /// Send realistic traffic to a running node: platform events (and metrics), shopping
    /// sessions into a user topic, or a service graph with labelled faults.
    Simulate(simulate::SimulateArgs),
    /// Measure throughput, latency and crash safety.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage users offline, on the configured store.
    #[command(subcommand)]
    User(accounts::UserCommand),
    /// Manage API keys offline, on the configured store.
    #[command(subcommand)]
    Key(accounts::KeyCommand),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Allow serving a non-loopback address with authentication disabled.
    #[arg(long)]
    insecure: bool,
}

/// Where configuration comes from; flags win over `SIGHTLINE_*` variables, which win over
/// the file, which wins over the defaults.
#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// TOML configuration file (see sightline.example.toml).
    #[arg(long, short = 'c', env = "SIGHTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the event log and the database [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address for the HTTP API [default: 127.0.0.1:8080].
    #[arg(long)]
    http_addr: Option<SocketAddr>,
    /// What this node does: all, ingest, process or api [default: all].
    #[arg(long)]
    role: Option<sightline_api::Role>,
}

impl ConfigArgs {
    fn load(&self) -> anyhow::Result<sightline_api::NodeConfig> {
        self.load_with(false)
    }

    fn load_with(&self, insecure: bool) -> anyhow::Result<sightline_api::NodeConfig> {
        config::load(
            self.config.as_deref(),
            config::Overrides {
                role: self.role,
                http_addr: self.http_addr,
                data_dir: self.data_dir.clone(),
                insecure,
            },
        )
    }
}

/// Where the store is, for commands that work on it directly (`user`, `key`).
#[derive(Debug, clap::Args)]
pub(crate) struct StoreArgs {
    /// TOML configuration file (see sightline.example.toml).
    #[arg(long, short = 'c', env = "SIGHTLINE_CONFIG")]
    config: Option<PathBuf>,
    /// Directory holding the database [default: ./data].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl StoreArgs {
    pub(crate) fn load(&self) -> anyhow::Result<sightline_api::NodeConfig> {
        config::load(
            self.config.as_deref(),
            config::Overrides {
                data_dir: self.data_dir.clone(),
                ..config::Overrides::default()
            },
        )
    }
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective configuration (every default included) as TOML.
    Show {
        #[command(flatten)]
        config: ConfigArgs,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => {
            let config = args.config.load_with(args.insecure)?;
            let prometheus = telemetry::init(&config.telemetry)?;
            let scheme = if config.api.tls.enabled() {
                "https"
            } else {
                "http"
            };
            let node = sightline_api::Node::start(config, Some(prometheus)).await?;
            eprintln!(
                "sightline listening on {scheme}://{}  (Ctrl-C to stop)",
                node.addr()
            );
            if let Some(token) = node.bootstrap_token() {
                eprintln!(
                    "\nNo users yet. Create the first admin within this run with the one-time token:\n\n  \
                     curl -X POST {scheme}://{addr}/api/v1/auth/bootstrap -H 'content-type: application/json' \\\n    \
                     -d '{{\"token\":\"{token}\",\"username\":\"admin\",\"password\":\"<12+ characters>\"}}'\n\n\
                     or offline: sightline user add admin --role admin\n\
                     Producers need an API key: sightline key create --scopes ingest:events,ingest:metrics\n",
                    addr = node.addr()
                );
            }
            shutdown_signal().await;
            tracing::info!("shutting down");
            node.shutdown().await;
            Ok(ExitCode::SUCCESS)
        }
        Command::Simulate(args) => simulate::run(args).await,
        Command::User(cmd) => accounts::user(cmd).await,
        Command::Key(cmd) => accounts::key(cmd).await,
        Command::Bench(cmd) => bench::run(cmd).await,
        Command::Config(ConfigCommand::Show { config }) => {
            let text = config::to_toml(&config.load()?)?;
            #[allow(clippy::print_stdout)] // the command's output
            {
                print!("{text}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
