//! `sightline bench ingest`: a node with embedded defaults in this process (durable acks:
//! fsync per group commit), driven over real HTTP on loopback.
//!
//! Two measurements:
//! * closed loop per batch size — `concurrency` clients post pre-built bodies as fast as
//!   acknowledgements come back: events/s and ack latency percentiles;
//! * single events at a fixed rate (open loop, latency measured from the scheduled send
//!   time so a stall is not hidden): ack latency percentiles.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use sightline_api::{Node, NodeConfig};

use super::{emit, percentile};

/// Options of `sightline bench ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Batch sizes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    batch_sizes: Vec<usize>,
    /// Duration of each closed-loop measurement.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    duration: Duration,
    /// Concurrent clients in the closed-loop runs.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Rate of the single-event open-loop run (requests/s; 0 skips it).
    #[arg(long, default_value_t = 1_000)]
    single_rate: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct BatchResult {
    batch_size: usize,
    requests: u64,
    events: u64,
    errors: u64,
    events_per_sec: f64,
    requests_per_sec: f64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
}

#[derive(Debug, Serialize)]
struct SingleResult {
    target_rate: u64,
    achieved_rate: f64,
    errors: u64,
    ack_p50_ms: f64,
    ack_p99_ms: f64,
    ack_max_ms: f64,
}

/// One node configuration's figures.
#[derive(Debug, Serialize)]
struct ModeResult {
    /// `edge`: the store consumer is off, so only ingestion runs; `full`: the node as
    /// `sightline run` starts it, the store consumer writing SQLite at the same time.
    mode: &'static str,
    batches: Vec<BatchResult>,
    single_at_rate: Option<SingleResult>,
}

#[derive(Debug, Serialize)]
struct IngestReport {
    fsync: &'static str,
    concurrency: usize,
    duration_secs: f64,
    modes: Vec<ModeResult>,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "HTTP ingestion, durable ack ({}), {} clients, {:.0} s per run",
            self.fsync, self.concurrency, self.duration_secs
        )?;
        for m in &self.modes {
            let what = if m.mode == "edge" {
                "ingestion only (store consumer off)"
            } else {
                "full node (store consumer on)"
            };
            writeln!(f, "\n{what}")?;
            writeln!(
                f,
                "{:>6} {:>12} {:>10} {:>10} {:>10} {:>7}",
                "batch", "events/s", "req/s", "p50 ms", "p99 ms", "errors"
            )?;
            for b in &m.batches {
                writeln!(
                    f,
                    "{:>6} {:>12.0} {:>10.0} {:>10.2} {:>10.2} {:>7}",
                    b.batch_size,
                    b.events_per_sec,
                    b.requests_per_sec,
                    b.ack_p50_ms,
                    b.ack_p99_ms,
                    b.errors
                )?;
            }
            if let Some(s) = &m.single_at_rate {
                writeln!(
                    f,
                    "single events at {}/s (achieved {:.0}/s): ack p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, errors {}",
                    s.target_rate,
                    s.achieved_rate,
                    s.ack_p50_ms,
                    s.ack_p99_ms,
                    s.ack_max_ms,
                    s.errors
                )?;
            }
        }
        Ok(())
    }
}

/// Bodies of `size` events each, without event ids (the node assigns unique UUIDv7s).
fn bodies(size: usize, count: usize) -> Vec<Bytes> {
    let mut generator =
        sightline_sim::EventGenerator::new(sightline_sim::GeneratorConfig::default(), 42);
    (0..count)
        .map(|_| {
            let events: Vec<serde_json::Value> = (0..size)
                .map(|_| {
                    let mut e = generator.next_event();
                    if let Some(obj) = e.as_object_mut() {
                        obj.remove("event_id");
                    }
                    e
                })
                .collect();
            Bytes::from(serde_json::to_vec(&events).unwrap_or_default())
        })
        .collect()
}

/// Posts a JSON body; whether the node acknowledged it (202), with the whole answer read.
async fn post_acknowledged(client: &reqwest::Client, url: &str, body: Bytes) -> bool {
    match client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status().as_u16() == 202 => r.bytes().await.is_ok(),
        _ => false,
    }
}

/// Single-event bodies (objects, not arrays).
fn single_bodies(count: usize) -> Vec<Bytes> {
    bodies(1, count)
        .into_iter()
        .map(|b| b.slice(1..b.len() - 1))
        .collect()
}

async fn closed_loop(
    base: &str,
    size: usize,
    concurrency: usize,
    duration: Duration,
) -> BatchResult {
    let client = reqwest::Client::new();
    let url = if size == 1 {
        format!("{base}/api/v1/events")
    } else {
        format!("{base}/api/v1/events/batch")
    };
    let bodies: Arc<Vec<Bytes>> = Arc::new(if size == 1 {
        single_bodies(256)
    } else {
        bodies(size, 32)
    });
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for worker in 0..concurrency.max(1) {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        tasks.push(tokio::spawn(async move {
            let (mut latencies, mut ok, mut errors) = (Vec::new(), 0u64, 0u64);
            let mut i = worker;
            while Instant::now() < deadline {
                let body = bodies[i % bodies.len()].clone();
                i += 1;
                let t = Instant::now();
                if post_acknowledged(&client, &url, body).await {
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                    ok += 1;
                } else {
                    errors += 1;
                }
            }
            (latencies, ok, errors)
        }));
    }
    let (mut latencies, mut requests, mut errors) = (Vec::new(), 0, 0);
    for t in tasks {
        if let Ok((l, ok, e)) = t.await {
            latencies.extend(l);
            requests += ok;
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    BatchResult {
        batch_size: size,
        requests,
        events: requests * size as u64,
        errors,
        events_per_sec: (requests * size as u64) as f64 / elapsed,
        requests_per_sec: requests as f64 / elapsed,
        ack_p50_ms: percentile(&latencies, 50.0),
        ack_p99_ms: percentile(&latencies, 99.0),
    }
}

async fn open_loop_single(base: &str, rate: u64, duration: Duration) -> SingleResult {
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/events");
    let bodies: Arc<Vec<Bytes>> = Arc::new(single_bodies(256));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let total = (duration.as_secs_f64() * rate as f64) as u64;
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let scheduled = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let (client, url, body) = (
            client.clone(),
            url.clone(),
            bodies[i as usize % bodies.len()].clone(),
        );
        tasks.push(tokio::spawn(async move {
            let ok = post_acknowledged(&client, &url, body).await;
            (ok, scheduled.elapsed().as_secs_f64() * 1e3)
        }));
    }
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for t in tasks {
        match t.await {
            Ok((true, ms)) => latencies.push(ms),
            _ => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    SingleResult {
        target_rate: rate,
        achieved_rate: latencies.len() as f64 / elapsed,
        errors,
        ack_p50_ms: percentile(&latencies, 50.0),
        ack_p99_ms: percentile(&latencies, 99.0),
        ack_max_ms: latencies.last().copied().unwrap_or(0.0),
    }
}

pub async fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let prometheus = crate::telemetry::init(&sightline_api::TelemetryConfig {
        log_level: "warn".into(),
        json_logs: false,
    })?;
    let mut modes = Vec::new();
    for (mode, consume) in [("edge", false), ("full", true)] {
        let dir = std::env::temp_dir().join(format!(
            "sightline-bench-ingest-{}-{mode}",
            std::process::id()
        ));
        let mut config = NodeConfig {
            http_addr: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.clone(),
            ..NodeConfig::default()
        };
        config.store.consume = consume;
        let node = Node::start(config, Some(prometheus.clone())).await?;
        let base = format!("http://{}", node.addr());
        let mut batches = Vec::new();
        for &size in &args.batch_sizes {
            if !args.json {
                eprintln!("[{mode}] batches of {size} for {:?}…", args.duration);
            }
            batches.push(closed_loop(&base, size.max(1), args.concurrency, args.duration).await);
        }
        let single_at_rate = if args.single_rate > 0 {
            if !args.json {
                eprintln!("[{mode}] single events at {}/s…", args.single_rate);
            }
            Some(open_loop_single(&base, args.single_rate, args.duration).await)
        } else {
            None
        };
        node.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        modes.push(ModeResult {
            mode,
            batches,
            single_at_rate,
        });
    }
    let report = IngestReport {
        fsync: "fsync every group commit",
        concurrency: args.concurrency,
        duration_secs: args.duration.as_secs_f64(),
        modes,
    };
    emit(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}
