//! `sightline bench ingest`: a node in this process, driven over real HTTP on loopback, on
//! each backend asked for (`--log embedded,kafka --store postgres`), reported side by side.
//!
//! Per backend:
//! * closed loop per batch size — `concurrency` clients post pre-built bodies as fast as
//!   acknowledgements come back: events/s and ack latency percentiles, with the store
//!   consumer off (`edge`) and on (`full`);
//! * single events at a fixed rate (open loop, latency measured from the scheduled send
//!   time so a stall is not hidden): ack latency percentiles;
//! * end to end — a fixed number of events posted, timed until the store consumer has
//!   written the last one (HTTP → log → consumer → store);
//! * a steady offered rate (`--steady-rate`), sampling the store consumer's lag.

use std::fmt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use sightline_api::{Node, NodeConfig, Role};

use super::backends::{Backend, BackendArgs};
use super::{emit, http, percentile};

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
    /// Events posted for the end-to-end measurement (0 skips it).
    #[arg(long, default_value_t = 200_000)]
    e2e_events: u64,
    /// Offered rate of the steady-load measurement, events/s (0 skips it).
    #[arg(long, default_value_t = 50_000)]
    steady_rate: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    backends: BackendArgs,
}

/// Events posted until the store held the last of them.
#[derive(Debug, Serialize)]
struct EndToEnd {
    events: u64,
    seconds: f64,
    events_per_sec: f64,
}

/// The store consumer's lag while clients offer a steady rate.
#[derive(Debug, Serialize)]
struct SteadyLoad {
    offered_rate: u64,
    acknowledged_rate: f64,
    errors: u64,
    lag_p50: u64,
    lag_p99: u64,
    lag_max: u64,
    /// After the load stopped, seconds until the lag was 0.
    drain_secs: f64,
}

/// One backend's figures.
#[derive(Debug, Serialize)]
struct BackendResult {
    backend: String,
    modes: Vec<ModeResult>,
    end_to_end: Option<EndToEnd>,
    steady: Option<SteadyLoad>,
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
    backends: Vec<BackendResult>,
}

impl fmt::Display for IngestReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "HTTP ingestion, durable ack ({}), {} clients, {:.0} s per run",
            self.fsync, self.concurrency, self.duration_secs
        )?;
        for b in &self.backends {
            writeln!(f, "\n=== {} ===", b.backend)?;
            b.fmt_modes(f)?;
            if let Some(e) = &b.end_to_end {
                writeln!(
                    f,
                    "end to end (HTTP → log → store): {} events in {:.1} s = {:.0} events/s",
                    e.events, e.seconds, e.events_per_sec
                )?;
            }
            if let Some(s) = &b.steady {
                writeln!(
                    f,
                    "steady {} events/s offered (acknowledged {:.0}/s, {} errors): store lag p50 {}, p99 {}, max {} records; drained {:.1} s after the load",
                    s.offered_rate,
                    s.acknowledged_rate,
                    s.errors,
                    s.lag_p50,
                    s.lag_p99,
                    s.lag_max,
                    s.drain_secs
                )?;
            }
        }
        Ok(())
    }
}

impl BackendResult {
    fn fmt_modes(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for m in &self.modes {
            let what = if m.mode == "edge" {
                "ingestion only (store consumer off)"
            } else {
                "full node (store consumer on)"
            };
            writeln!(f, "{what}")?;
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

/// Posts `total` events in batches of 1000 at `rate` events/s (0: as fast as acknowledged
/// by `concurrency` clients); returns (acknowledged, errors).
async fn offer(base: &str, total: u64, rate: u64, concurrency: usize) -> (u64, u64) {
    const BATCH: u64 = 1000;
    let client = reqwest::Client::new();
    let url = format!("{base}/api/v1/events/batch");
    let bodies: Arc<Vec<Bytes>> = Arc::new(bodies(BATCH as usize, 32));
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let requests = total.div_ceil(BATCH);
    let started = tokio::time::Instant::now();
    let interval = (rate > 0).then(|| Duration::from_secs_f64(BATCH as f64 / rate as f64));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, url, bodies, next) =
            (client.clone(), url.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= requests {
                    return (ok, errors);
                }
                if let Some(every) = interval {
                    tokio::time::sleep_until(started + every.mul_f64(i as f64)).await;
                }
                let body = bodies[i as usize % bodies.len()].clone();
                if post_acknowledged(&client, &url, body).await {
                    ok += BATCH;
                } else {
                    errors += 1;
                }
            }
        }));
    }
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        if let Ok((o, e)) = t.await {
            ok += o;
            errors += e;
        }
    }
    (ok, errors)
}

async fn end_to_end(base: &str, events: u64, concurrency: usize) -> anyhow::Result<EndToEnd> {
    let client = reqwest::Client::new();
    http::wait_store_caught_up(&client, base, Duration::from_secs(600)).await?;
    let started = Instant::now();
    let (acknowledged, _) = offer(base, events, 0, concurrency).await;
    http::wait_store_caught_up(&client, base, Duration::from_secs(600)).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(EndToEnd {
        events: acknowledged,
        seconds,
        events_per_sec: acknowledged as f64 / seconds,
    })
}

async fn steady_load(
    base: &str,
    rate: u64,
    duration: Duration,
    concurrency: usize,
) -> anyhow::Result<SteadyLoad> {
    let client = reqwest::Client::new();
    http::wait_store_caught_up(&client, base, Duration::from_secs(600)).await?;
    let total = (rate as f64 * duration.as_secs_f64()) as u64;
    let load = tokio::spawn({
        let base = base.to_owned();
        // Enough clients that acknowledgement latency does not cap the offered rate.
        async move { offer(&base, total, rate, concurrency.max(16)).await }
    });
    let started = Instant::now();
    let mut lags = Vec::new();
    while !load.is_finished() {
        if let Some(lag) = http::store_lag(&client, base).await? {
            lags.push(lag);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (acknowledged, errors) = load.await?;
    let load_secs = started.elapsed().as_secs_f64();
    let drained = Instant::now();
    http::wait_store_caught_up(&client, base, Duration::from_secs(600)).await?;
    lags.sort_unstable();
    let pick = |p: f64| {
        lags.get(((p / 100.0) * lags.len().saturating_sub(1) as f64).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    Ok(SteadyLoad {
        offered_rate: rate,
        acknowledged_rate: acknowledged as f64 / load_secs,
        errors,
        lag_p50: pick(50.0),
        lag_p99: pick(99.0),
        lag_max: lags.last().copied().unwrap_or(0),
        drain_secs: drained.elapsed().as_secs_f64(),
    })
}

async fn measure_backend(
    args: &IngestArgs,
    backend: &Backend,
    prometheus: &metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<BackendResult> {
    let mut result = BackendResult {
        backend: backend.label(),
        modes: Vec::new(),
        end_to_end: None,
        steady: None,
    };
    for (mode, consume) in [("edge", false), ("full", true)] {
        let dir = std::env::temp_dir().join(format!(
            "sightline-bench-ingest-{}-{mode}-{}",
            std::process::id(),
            backend.label()
        ));
        let mut config = NodeConfig {
            http_addr: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.clone(),
            ..NodeConfig::default()
        };
        // Embedded modes get a fresh data directory; server modes a fresh namespace. The
        // node is on loopback and measured without credentials.
        config.auth.enabled = false;
        backend.isolated(mode).apply(&mut config);
        config.role = if consume { Role::All } else { Role::Ingest };
        let node = Node::start(config, Some(prometheus.clone())).await?;
        let base = format!("http://{}", node.addr());
        let label = format!("{}/{mode}", backend.label());
        let mut batches = Vec::new();
        for &size in &args.batch_sizes {
            if !args.json {
                eprintln!("[{label}] batches of {size} for {:?}…", args.duration);
            }
            batches.push(closed_loop(&base, size.max(1), args.concurrency, args.duration).await);
        }
        let single_at_rate = if args.single_rate > 0 {
            if !args.json {
                eprintln!("[{label}] single events at {}/s…", args.single_rate);
            }
            Some(open_loop_single(&base, args.single_rate, args.duration).await)
        } else {
            None
        };
        if consume && args.e2e_events > 0 {
            if !args.json {
                eprintln!("[{label}] {} events end to end…", args.e2e_events);
            }
            result.end_to_end = Some(end_to_end(&base, args.e2e_events, args.concurrency).await?);
        }
        if consume && args.steady_rate > 0 {
            if !args.json {
                eprintln!(
                    "[{label}] steady {} events/s for {:?}…",
                    args.steady_rate, args.duration
                );
            }
            result.steady =
                Some(steady_load(&base, args.steady_rate, args.duration, args.concurrency).await?);
        }
        node.shutdown().await;
        let _ = std::fs::remove_dir_all(&dir);
        result.modes.push(ModeResult {
            mode,
            batches,
            single_at_rate,
        });
    }
    Ok(result)
}

pub async fn run(args: IngestArgs) -> anyhow::Result<ExitCode> {
    let prometheus = crate::telemetry::init(&sightline_api::TelemetryConfig {
        log_level: "warn".into(),
        json_logs: false,
    })?;
    let mut backends = Vec::new();
    for backend in args.backends.each() {
        backends.push(measure_backend(&args, &backend, &prometheus).await?);
    }
    let report = IngestReport {
        fsync: "embedded: fsync every group commit; kafka: acks=all",
        concurrency: args.concurrency,
        duration_secs: args.duration.as_secs_f64(),
        backends,
    };
    emit(&report, args.json)?;
    Ok(ExitCode::SUCCESS)
}
