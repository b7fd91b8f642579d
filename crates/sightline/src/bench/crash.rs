//! The crash harness: a node runs as a child process while concurrent clients ingest
//! events with unique ids; the node is killed with SIGKILL at random moments and restarted
//! on the same data directory. At the end every id that got a 2xx must be in the store
//! exactly once — the "ack means durable" guarantee, checked end to end.
//!
//! With `--process-nodes N` (on Kafka and PostgreSQL) it runs a cluster instead: an ingest
//! node, an api node and N process nodes in one consumer group. Each kill stops a process
//! node for good (at least one survives), so the survivors must take over its partitions
//! from the committed offsets and finish the stream.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::backends::BackendArgs;
use super::node::NodeProcess;
use super::{emit, http};

/// Options of `sightline bench crash`.
#[derive(Debug, clap::Args)]
pub struct CrashArgs {
    /// Acknowledged events to reach (ingestion continues until the kills are done too).
    #[arg(long, default_value_t = 50_000)]
    events: u64,
    /// How many times to kill -9 the node.
    #[arg(long, default_value_t = 10)]
    kills: u32,
    /// Concurrent clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Events per request.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Total send rate in events/s, so ingestion overlaps the kills.
    #[arg(long, default_value_t = 5_000)]
    rate: u64,
    /// Seed for the kill schedule.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Data directory for the node (default: a fresh temporary directory, removed after).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    json: bool,
    /// Run a cluster with this many process nodes (0: one node with every role).
    #[arg(long, default_value_t = 0)]
    process_nodes: usize,
    /// In a cluster, restart each killed process node (it rejoins the consumer group);
    /// without it the survivors must finish the stream alone.
    #[arg(long)]
    restart_killed: bool,
    #[command(flatten)]
    backends: BackendArgs,
}

/// What the harness found.
#[derive(Debug, Serialize)]
pub struct CrashReport {
    backend: String,
    process_nodes: usize,
    /// Per kill, the events each live process node had stored just before it (all
    /// non-zero: the partitions were split between the nodes); the first is the victim.
    stored_at_kills: Vec<Vec<u64>>,
    acknowledged: u64,
    sent: u64,
    kills: u32,
    stored: u64,
    missing: u64,
    duplicates: u64,
    unexpected: u64,
    elapsed_secs: f64,
    passed: bool,
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "crash test: {}",
            if self.passed { "PASSED" } else { "FAILED" }
        )?;
        writeln!(f, "  backend                {}", self.backend)?;
        if self.process_nodes > 0 {
            writeln!(f, "  process nodes          {}", self.process_nodes)?;
            writeln!(f, "  stored per node, kills {:?}", self.stored_at_kills)?;
        }
        writeln!(f, "  kills (SIGKILL)        {}", self.kills)?;
        writeln!(f, "  events sent            {}", self.sent)?;
        writeln!(f, "  events acknowledged    {}", self.acknowledged)?;
        writeln!(f, "  events stored          {}", self.stored)?;
        writeln!(f, "  acknowledged, missing  {}", self.missing)?;
        writeln!(f, "  stored more than once  {}", self.duplicates)?;
        writeln!(f, "  stored, never sent     {}", self.unexpected)?;
        write!(f, "  elapsed                {:.1} s", self.elapsed_secs)
    }
}

fn batch_body(ids: &[String], seq: u64) -> Vec<u8> {
    let events: Vec<serde_json::Value> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            serde_json::json!({
                "event_id": id,
                "service_name": format!("svc-{}", (seq as usize + i) % 7),
                "event_type": if i % 10 == 0 { "ERROR" } else { "INFO" },
                "details": format!("crash harness event {id}"),
                "metadata": { "seq": seq },
            })
        })
        .collect();
    serde_json::to_vec(&events).unwrap_or_default()
}

/// Posts one batch; the ids the node acknowledged, or `None` when there was no 202 answer.
async fn post_batch(client: &reqwest::Client, base: &str, body: &[u8]) -> Option<Vec<String>> {
    let res = client
        .post(format!("{base}/api/v1/events/batch"))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .ok()
        .filter(|r| r.status().as_u16() == 202)?;
    let report: serde_json::Value = res.json().await.ok()?;
    Some(
        report["results"]
            .as_array()?
            .iter()
            .filter(|x| x["status"] == "accepted")
            .filter_map(|x| x["event_id"].as_str().map(str::to_owned))
            .collect(),
    )
}

/// How long a killed process node stays down: beyond the bench's session timeout (6 s).
const RESTART_AFTER: Duration = Duration::from_secs(8);

/// Waits until every process node has stored events — the consumer group has split the
/// partitions between them — and returns how many each stored.
async fn wait_until_all_store(
    client: &reqwest::Client,
    nodes: &[NodeProcess],
) -> anyhow::Result<Vec<u64>> {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_error = None;
    loop {
        let mut stored = Vec::with_capacity(nodes.len());
        for node in nodes {
            // A node busy catching up may answer a scrape slowly: that is "not yet", not
            // a failed run; the deadline still bounds the wait.
            match http::stored_by_node(client, &node.base()).await {
                Ok(n) => stored.push(n),
                Err(e) => {
                    last_error = Some(format!("{e:#}"));
                    stored.push(0);
                }
            }
        }
        if stored.iter().all(|n| *n > 0) {
            return Ok(stored);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the process nodes never split the partitions: stored {stored:?}; last scrape \
             error: {last_error:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The nodes of one run: `edge` takes the clients' requests, `reader` answers the final
/// store query, `victims` are the process nodes that get killed (none: the one node, which
/// is killed and restarted).
struct Topology {
    edge: NodeProcess,
    reader: Option<NodeProcess>,
    victims: Vec<NodeProcess>,
}

impl Topology {
    async fn start(args: &CrashArgs, dir: &std::path::Path) -> anyhow::Result<(Self, String)> {
        let backends = args.backends.each();
        anyhow::ensure!(backends.len() == 1, "bench crash runs on one --log backend");
        let backend = backends[0].clone();
        let env = backend.env();
        if args.process_nodes == 0 {
            let node = NodeProcess::new(dir.to_owned(), "all", env).await?;
            return Ok((
                Self {
                    edge: node,
                    reader: None,
                    victims: Vec::new(),
                },
                backend.label(),
            ));
        }
        anyhow::ensure!(
            backend.log == sightline_api::LogKind::Kafka,
            "several process nodes share partitions through Kafka: add --log kafka"
        );
        anyhow::ensure!(
            args.restart_killed || args.kills < args.process_nodes as u32,
            "--kills must leave at least one of the {} process nodes alive (or add --restart-killed)",
            args.process_nodes
        );
        let edge = NodeProcess::new(dir.join("ingest"), "ingest", env.clone()).await?;
        let reader = NodeProcess::new(dir.join("api"), "api", env.clone()).await?;
        let mut victims = Vec::new();
        for i in 0..args.process_nodes {
            victims.push(
                NodeProcess::new(dir.join(format!("process-{i}")), "process", env.clone()).await?,
            );
        }
        Ok((
            Self {
                edge,
                reader: Some(reader),
                victims,
            },
            backend.label(),
        ))
    }

    fn all(&mut self) -> impl Iterator<Item = &mut NodeProcess> {
        std::iter::once(&mut self.edge)
            .chain(self.reader.as_mut())
            .chain(self.victims.iter_mut())
    }

    fn reader(&self) -> &NodeProcess {
        self.reader.as_ref().unwrap_or(&self.edge)
    }
}

pub async fn run(args: CrashArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let (dir, temporary) = match &args.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "sightline-crash-{}-{}",
                std::process::id(),
                rand::random::<u32>()
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&dir)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let (mut nodes, backend) = Topology::start(&args, &dir).await?;
    for node in nodes.all() {
        http::wait_healthy(&client, &node.base(), Duration::from_secs(60)).await?;
    }
    let base = nodes.edge.base();

    let acked = Arc::new(Mutex::new(HashSet::<String>::new()));
    let sent = Arc::new(AtomicU64::new(0));
    let kills_done = Arc::new(AtomicBool::new(args.kills == 0));
    let next_batch = Arc::new(AtomicU64::new(0));
    let per_client_interval =
        Duration::from_secs_f64(args.batch as f64 * args.clients as f64 / args.rate.max(1) as f64);

    let mut clients = Vec::new();
    for _ in 0..args.clients.max(1) {
        let (client, base, acked, sent, kills_done, next_batch) = (
            client.clone(),
            base.clone(),
            acked.clone(),
            sent.clone(),
            kills_done.clone(),
            next_batch.clone(),
        );
        let (target, batch) = (args.events, args.batch.max(1));
        clients.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(per_client_interval);
            loop {
                let enough = acked
                    .lock()
                    .map(|a| a.len() as u64 >= target)
                    .unwrap_or(true);
                if enough && kills_done.load(Ordering::Acquire) {
                    return;
                }
                ticker.tick().await;
                let seq = next_batch.fetch_add(1, Ordering::Relaxed);
                let ids: Vec<String> = (0..batch).map(|i| format!("crash-{seq}-{i}")).collect();
                let body = batch_body(&ids, seq);
                sent.fetch_add(ids.len() as u64, Ordering::Relaxed);
                // Retry the same ids until acknowledged: a retry after a lost answer re-sends
                // events that may already be durable, which the store must deduplicate.
                for attempt in 0..600u32 {
                    if let Some(ids) = post_batch(&client, &base, &body).await {
                        if let Ok(mut a) = acked.lock() {
                            a.extend(ids);
                        }
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50 + u64::from(attempt.min(10)) * 20))
                        .await;
                }
            }
        }));
    }

    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let mut stored_at_kills = Vec::new();
    for k in 0..args.kills as usize {
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1200))).await;
        if nodes.victims.is_empty() {
            let node = &mut nodes.edge;
            node.kill().await?;
            node.start().await?;
            http::wait_healthy(&client, &node.base(), Duration::from_secs(60)).await?;
        } else {
            stored_at_kills.push(wait_until_all_store(&client, &nodes.victims).await?);
            if args.restart_killed {
                let victim = k % nodes.victims.len();
                // The victim's count goes first in the report.
                if let Some(stored) = stored_at_kills.last_mut() {
                    stored.swap(0, victim);
                }
                let node = &mut nodes.victims[victim];
                node.kill().await?;
                // Stay down past the group's session timeout, so the dead member has left
                // before its successor joins: a rejoin within that window can leave
                // partitions assigned to the dead member on some coordinators (tansu 0.6).
                tokio::time::sleep(RESTART_AFTER).await;
                node.start().await?;
                http::wait_healthy(&client, &node.base(), Duration::from_secs(60)).await?;
            } else {
                nodes.victims.remove(0).kill().await?;
            }
        }
    }
    kills_done.store(true, Ordering::Release);
    for c in clients {
        c.await?;
    }

    let reader = nodes.reader().base();
    http::wait_store_caught_up(&client, &reader, Duration::from_secs(300)).await?;
    let stored = http::stored_event_ids(&client, &reader).await?;
    for node in nodes.all() {
        node.kill().await?;
    }

    let acked = acked.lock().map(|a| a.clone()).unwrap_or_default();
    let batches = next_batch.load(Ordering::Relaxed);
    let was_sent = |id: &str| {
        let mut parts = id.strip_prefix("crash-").unwrap_or("").split('-');
        let seq: Option<u64> = parts.next().and_then(|s| s.parse().ok());
        let idx: Option<usize> = parts.next().and_then(|s| s.parse().ok());
        matches!((seq, idx), (Some(s), Some(i)) if s < batches && i < args.batch.max(1))
    };
    let report = CrashReport {
        backend,
        process_nodes: args.process_nodes,
        stored_at_kills,
        acknowledged: acked.len() as u64,
        sent: sent.load(Ordering::Relaxed),
        kills: args.kills,
        stored: stored.len() as u64,
        missing: acked.iter().filter(|id| !stored.contains_key(*id)).count() as u64,
        duplicates: stored.values().filter(|&&n| n > 1).count() as u64,
        unexpected: stored.keys().filter(|id| !was_sent(id)).count() as u64,
        elapsed_secs: started.elapsed().as_secs_f64(),
        passed: false,
    };
    let passed = report.missing == 0
        && report.duplicates == 0
        && report.unexpected == 0
        && report.acknowledged >= args.events
        && report.stored_at_kills.iter().flatten().all(|n| *n > 0);
    let report = CrashReport { passed, ..report };
    emit(&report, args.json)?;
    if temporary && passed {
        let _ = std::fs::remove_dir_all(&dir);
    } else if !passed {
        eprintln!("node data and node.log kept in {}", dir.display());
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
