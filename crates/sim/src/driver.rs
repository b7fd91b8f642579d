//! Sending simulated traffic to a running node: pacing, concurrency, retries, accounting.
//!
//! This is the loop behind `sightline simulate`. It exists apart from the generator so
//! that the traffic model stays a pure function and everything with time, sockets and
//! failure lives here. The loop is *open*: batches are released on a token-bucket
//! schedule derived from the target rate, not when the previous request returns, so a slow
//! server shows up as latency and as a lower achieved rate instead of silently slowing the
//! producer down. At most `concurrency` requests are in flight; backpressure answers
//! (429/503 with `Retry-After`) are honoured by retrying the same batch, boundedly, and a
//! batch that cannot even be connected (a node restarting) is resent the same way.
//! Every item sent ends up in exactly one of acknowledged, rejected or failed.

use std::fmt;
use std::future::Future;
use std::io::IsTerminal as _;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::SimError;
use crate::generator::{Burst, EventGenerator, GeneratorConfig, MetricGenerator};
use crate::scenario::ecommerce::{EcommerceConfig, EcommerceGenerator};
use crate::scenario::incidents::{self, IncidentsConfig};
use crate::scenario::{GroundTruth, ScenarioKind};
use sightline_model::clock::now_ms;

/// Retries of one batch answered with 429/503 before it is counted as failed.
pub const MAX_RETRIES: u32 = 10;
/// Longest `Retry-After` honoured; longer values are shortened to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Latency samples kept for the percentiles (a uniform reservoir beyond that).
pub const LATENCY_SAMPLES: usize = 1_000_000;
/// Pause before resending a batch the node could not be connected to (bounded by
/// [`MAX_RETRIES`]: about 5 s of unreachability is ridden out).
pub const CONNECT_RETRY: Duration = Duration::from_millis(500);
/// Time limit of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Metric points sent per event sent, when metrics are on.
const METRICS_PER_EVENT: u64 = 10;
/// At a set rate, batches are made small enough for at least this many requests a second.
const MIN_BATCHES_PER_SEC: u64 = 20;
/// Simulated length of an incidents run without `duration`: one day.
pub const DEFAULT_INCIDENTS_DURATION: Duration = Duration::from_secs(86_400);

/// What to send, where, how fast and for how long.
#[derive(Clone, Debug, PartialEq)]
pub struct SimulateOptions {
    /// Base URL of the node, e.g. `http://127.0.0.1:8080` (plain HTTP only).
    pub target: String,
    /// Events per second; 0 sends as fast as the node acknowledges.
    pub rate: u64,
    /// Stop sending after this long.
    pub duration: Option<Duration>,
    /// Stop after this many events.
    pub count: Option<u64>,
    /// Most events per request. At a set rate, batches shrink so that at least 20 requests
    /// a second smooth the flow (e.g. 50 per batch at 1 000 events/s).
    pub batch_size: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Fraction of events that are errors outside bursts (0..=1).
    pub error_rate: f64,
    /// Inject periodic error bursts (see [`BurstConfig`](crate::BurstConfig)).
    pub bursts: bool,
    /// Also send metric points, about one for every ten events.
    pub metrics: bool,
    /// Seed of the traffic: the same seed gives the same events (their ids carry a fresh
    /// per-run prefix, so runs never collide) and the same bursts.
    pub seed: u64,
    /// Sent as `Authorization: Bearer …` when present.
    pub api_key: Option<String>,
    /// Draw a progress bar on stderr (only when stderr is a terminal).
    pub progress: bool,
    /// What to send. `Normal` is everything above; `Ecommerce` sends shopping records
    /// (paced by `rate`, records per second) to the topic endpoint; `Incidents` sends the
    /// fault scenario in simulated time (paced by `speed`; `duration` is simulated time,
    /// a day when absent; `count` counts metric points and events; `rate`, `error_rate`,
    /// `bursts` and `metrics` do not apply).
    pub scenario: ScenarioKind,
    /// `Ecommerce`: the user topic, `POST {target}/api/v1/topics/{topic}/records`.
    pub topic: String,
    /// `Ecommerce`: shopping sessions open at once.
    pub sessions: usize,
    /// `Incidents`: simulated seconds per wall second (0: as fast as the node acknowledges).
    pub speed: f64,
    /// `Incidents`: metric interval in simulated time.
    pub step: Duration,
    /// `Incidents`: number of faults; `None`: one of each kind per simulated day.
    pub faults: Option<usize>,
    /// `Incidents`: simulated start, epoch ms; `None`: in the past, so that the simulated
    /// clock reaches the wall clock when the run ends ([`incidents_start`]).
    pub start_ms: Option<i64>,
}

impl Default for SimulateOptions {
    fn default() -> Self {
        Self {
            target: "http://127.0.0.1:8080".to_owned(),
            rate: 1_000,
            duration: None,
            count: None,
            batch_size: 500,
            concurrency: 4,
            error_rate: 0.05,
            bursts: true,
            metrics: false,
            seed: 1,
            api_key: None,
            progress: true,
            scenario: ScenarioKind::Normal,
            topic: crate::scenario::ecommerce::TOPIC.to_owned(),
            sessions: 200,
            speed: 60.0,
            step: Duration::from_secs(10),
            faults: None,
            start_ms: None,
        }
    }
}

/// What a run achieved. Every event sent is acknowledged, rejected or failed:
/// `sent == acknowledged + rejected + failed_events` (likewise for metrics).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SimReport {
    /// Prefix of this run's event ids (`{run_id}-{seq}`).
    pub run_id: String,
    /// When the run started, epoch milliseconds.
    pub started_at_ms: i64,
    /// Events sent (each once, however often its batch was retried).
    pub sent: u64,
    /// Events the node acknowledged (durably accepted).
    pub acknowledged: u64,
    /// Events the node refused as invalid.
    pub rejected: u64,
    /// Events in requests that failed (transport errors, unexpected statuses, retries
    /// exhausted, interrupted while waiting to retry).
    pub failed_events: u64,
    /// HTTP requests made, retries included.
    pub requests: u64,
    /// Batches (events or metrics) that failed.
    pub failed_requests: u64,
    /// Batches resent after a 429/503.
    pub retries: u64,
    /// From the first request to the last answer, seconds.
    pub elapsed_secs: f64,
    /// The rate asked for (0: unlimited).
    pub target_rate: u64,
    /// `acknowledged / elapsed_secs`.
    pub achieved_rate: f64,
    /// Time from sending a request to reading its whole answer.
    pub request_latency_ms: LatencySummary,
    /// Metric points sent.
    pub metrics_sent: u64,
    /// Metric points acknowledged.
    pub metrics_acknowledged: u64,
    /// Metric points refused as invalid.
    pub metrics_rejected: u64,
    /// Whether the run was cut short by the shutdown signal.
    pub interrupted: bool,
    /// The error bursts injected (ground truth for detectors), oldest first (`normal`).
    pub bursts: Vec<Burst>,
    /// The scenario played.
    pub scenario: ScenarioKind,
    /// What the scenario injected (`ecommerce`, `incidents`); written separately by the
    /// CLI (`--ground-truth FILE`) since it grows with the run.
    #[serde(skip)]
    pub ground_truth: Option<GroundTruth>,
}

/// Latency percentiles, milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest seen (exact, not sampled).
    pub max: f64,
    /// Requests measured.
    pub samples: u64,
}

impl fmt::Display for SimReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rate = if self.scenario == ScenarioKind::Incidents {
            "none: simulated time".to_owned()
        } else if self.target_rate == 0 {
            "unlimited".to_owned()
        } else {
            format!("{}/s", self.target_rate)
        };
        let what = match self.scenario {
            ScenarioKind::Ecommerce => "records",
            _ => "events",
        };
        writeln!(
            f,
            "run {} ({}): {} {what} sent in {:.2} s (target rate {rate}){}",
            self.run_id,
            self.scenario,
            self.sent,
            self.elapsed_secs,
            if self.interrupted {
                ", interrupted"
            } else {
                ""
            }
        )?;
        writeln!(
            f,
            "  acknowledged {:>10}  ({:.0} events/s)",
            self.acknowledged, self.achieved_rate
        )?;
        writeln!(f, "  rejected     {:>10}", self.rejected)?;
        writeln!(
            f,
            "  failed       {:>10}  ({} failed requests of {}, {} retries)",
            self.failed_events, self.failed_requests, self.requests, self.retries
        )?;
        if self.metrics_sent > 0 {
            writeln!(
                f,
                "  metrics      {:>10}  sent, {} acknowledged, {} rejected",
                self.metrics_sent, self.metrics_acknowledged, self.metrics_rejected
            )?;
        }
        write!(
            f,
            "  latency      p50 {:.2} ms · p99 {:.2} ms · max {:.2} ms",
            self.request_latency_ms.p50, self.request_latency_ms.p99, self.request_latency_ms.max
        )?;
        for b in &self.bursts {
            write!(
                f,
                "\n  burst        {} {} from +{:.1} s to +{:.1} s: \"{}\"",
                b.service,
                b.version,
                (b.started_at_ms - self.started_at_ms) as f64 / 1000.0,
                (b.ended_at_ms - self.started_at_ms) as f64 / 1000.0,
                b.error_template
            )?;
        }
        match &self.ground_truth {
            Some(GroundTruth::Ecommerce(t)) => {
                let purchases = t.sessions.values().filter(|s| s.purchase_count > 0).count();
                write!(
                    f,
                    "\n  sessions     {:>10}  ({purchases} with a purchase) into topic {}",
                    t.sessions.len(),
                    t.topic
                )?;
            }
            Some(GroundTruth::Incidents(t)) => {
                for fault in &t.faults {
                    write!(
                        f,
                        "\n  fault        {} on {} from +{:.0} min to +{:.0} min (simulated)",
                        fault.kind.as_str(),
                        fault.root_cause_service,
                        (fault.start_ms - t.start_ms) as f64 / 60_000.0,
                        (fault.end_ms - t.start_ms) as f64 / 60_000.0,
                    )?;
                }
            }
            None => {}
        }
        Ok(())
    }
}

/// Sends traffic until the count or duration is reached, or Ctrl-C.
pub async fn run(opts: SimulateOptions) -> Result<SimReport, SimError> {
    run_until(opts, async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler available: never interrupt.
            std::future::pending::<()>().await;
        }
    })
    .await
}

/// Like [`run`], stopping early (after the requests in flight are answered) when
/// `shutdown` completes.
pub async fn run_until(
    opts: SimulateOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<SimReport, SimError> {
    let plan = Plan::new(&opts)?;
    let start_ms = now_ms();
    let run_id = format!("sim-{start_ms:x}{:04x}", rand::random::<u16>());
    let started = Instant::now();
    match opts.scenario {
        ScenarioKind::Normal => {
            let source = NormalSource::new(&opts, &plan, run_id.clone(), started);
            drive(opts, plan, source, run_id, start_ms, started, shutdown).await
        }
        ScenarioKind::Ecommerce => {
            let source = EcommerceSource {
                generator: EcommerceGenerator::new(
                    EcommerceConfig {
                        run_id: run_id.clone(),
                        concurrent_sessions: opts.sessions,
                        ..EcommerceConfig::default()
                    },
                    opts.seed,
                ),
                pacer: Pacer::new(opts.rate, plan.per_batch as u64, started),
                scratch: Vec::new(),
            };
            drive(opts, plan, source, run_id, start_ms, started, shutdown).await
        }
        ScenarioKind::Incidents => {
            let duration = opts.duration.unwrap_or(DEFAULT_INCIDENTS_DURATION);
            let sim_start = opts
                .start_ms
                .unwrap_or_else(|| incidents_start(start_ms, duration, opts.speed));
            let scenario = incidents::Scenario::with_config(
                opts.seed,
                sim_start,
                duration,
                opts.step,
                IncidentsConfig {
                    run_id: run_id.clone(),
                    faults: opts.faults,
                    ..IncidentsConfig::default()
                },
            );
            let source = IncidentsSource {
                scenario,
                speed: opts.speed,
                started,
                metrics: Vec::new(),
                events: Vec::new(),
            };
            drive(opts, plan, source, run_id, start_ms, started, shutdown).await
        }
    }
}

/// Where the incidents scenario starts by default: in the past, so that at `speed` the
/// simulated clock catches up with the wall clock just as the run ends (no timestamp is
/// ever in the future).
pub fn incidents_start(now_ms: i64, duration: Duration, speed: f64) -> i64 {
    let d = duration.as_secs_f64() * 1000.0;
    let wall = if speed > 0.0 { d / speed } else { 0.0 };
    now_ms - (d - wall).max(0.0) as i64
}

/// One request body, ready to go.
struct Batch {
    payload: Payload,
    body: Vec<u8>,
    items: u64,
    /// Items that count toward `--count`.
    counted: u64,
}

/// The traffic of a run. The driver owns the sockets, the waiting, the concurrency and
/// the accounting; a source decides what goes out and when it is due.
trait Source {
    /// When the next batch of at most `max` counted items is due (now or later), and how
    /// many it will hold; `None` when the source has nothing more to send.
    fn schedule(&mut self, max: u64, now: Instant) -> Option<(Instant, u64)>;
    /// Appends the batches due now: the scheduled one (`n` counted items, possibly split
    /// by endpoint), then any extra ones owed (metric points for the events sent).
    fn fill(
        &mut self,
        n: u64,
        now: Instant,
        now_ms: i64,
        out: &mut Vec<Batch>,
    ) -> Result<(), SimError>;
    /// The extras still owed when production ends (not called after an interruption).
    fn finish(&mut self, _now_ms: i64, _out: &mut Vec<Batch>) -> Result<(), SimError> {
        Ok(())
    }
    /// What was injected.
    fn truth(self) -> (Vec<Burst>, Option<GroundTruth>);
}

/// The original traffic: system events paced to the rate, metric points alongside.
struct NormalSource {
    events: EventGenerator,
    metrics: Option<MetricGenerator>,
    pacer: Option<Pacer>,
    per_batch: u64,
    /// Metric points owed, in tenths.
    metric_debt: u64,
    scratch: Vec<u8>,
}

impl NormalSource {
    fn new(opts: &SimulateOptions, plan: &Plan, run_id: String, started: Instant) -> Self {
        let config = GeneratorConfig {
            run_id,
            error_rate: opts.error_rate,
            bursts: if opts.bursts {
                GeneratorConfig::default().bursts
            } else {
                None
            },
            ..GeneratorConfig::default()
        };
        Self {
            metrics: opts
                .metrics
                .then(|| MetricGenerator::new(&config, opts.seed)),
            events: EventGenerator::new(config, opts.seed),
            pacer: Pacer::new(opts.rate, plan.per_batch as u64, started),
            per_batch: plan.per_batch as u64,
            metric_debt: 0,
            scratch: Vec::new(),
        }
    }
}

impl Source for NormalSource {
    fn schedule(&mut self, max: u64, now: Instant) -> Option<(Instant, u64)> {
        Some((
            self.pacer.as_mut().map_or(now, |p| p.reserve(max, now)),
            max,
        ))
    }

    fn fill(
        &mut self,
        n: u64,
        _now: Instant,
        now_ms: i64,
        out: &mut Vec<Batch>,
    ) -> Result<(), SimError> {
        self.events
            .write_batch(now_ms, usize::try_from(n).unwrap_or(0), &mut self.scratch)?;
        out.push(Batch {
            payload: Payload::Events,
            body: batch_body(&mut self.scratch),
            items: n,
            counted: n,
        });
        if let Some(metrics) = self.metrics.as_mut() {
            self.metric_debt += n;
            while self.metric_debt / METRICS_PER_EVENT >= self.per_batch {
                self.metric_debt -= self.per_batch * METRICS_PER_EVENT;
                let m = usize::try_from(self.per_batch).unwrap_or(0);
                metrics.write_batch(now_ms, m, &mut self.scratch)?;
                out.push(Batch {
                    payload: Payload::Metrics,
                    body: batch_body(&mut self.scratch),
                    items: self.per_batch,
                    counted: 0,
                });
            }
        }
        Ok(())
    }

    fn finish(&mut self, now_ms: i64, out: &mut Vec<Batch>) -> Result<(), SimError> {
        let owed = self.metric_debt / METRICS_PER_EVENT;
        if let Some(metrics) = self.metrics.as_mut()
            && owed > 0
        {
            self.metric_debt = 0;
            metrics.write_batch(
                now_ms,
                usize::try_from(owed).unwrap_or(0),
                &mut self.scratch,
            )?;
            out.push(Batch {
                payload: Payload::Metrics,
                body: batch_body(&mut self.scratch),
                items: owed,
                counted: 0,
            });
        }
        Ok(())
    }

    fn truth(self) -> (Vec<Burst>, Option<GroundTruth>) {
        (self.events.bursts().to_vec(), None)
    }
}

/// Shopping records for the topic endpoint, paced to the rate.
struct EcommerceSource {
    generator: EcommerceGenerator,
    pacer: Option<Pacer>,
    scratch: Vec<u8>,
}

impl Source for EcommerceSource {
    fn schedule(&mut self, max: u64, now: Instant) -> Option<(Instant, u64)> {
        Some((
            self.pacer.as_mut().map_or(now, |p| p.reserve(max, now)),
            max,
        ))
    }

    fn fill(
        &mut self,
        n: u64,
        _now: Instant,
        now_ms: i64,
        out: &mut Vec<Batch>,
    ) -> Result<(), SimError> {
        self.generator
            .write_batch(now_ms, usize::try_from(n).unwrap_or(0), &mut self.scratch)?;
        out.push(Batch {
            payload: Payload::Records,
            body: batch_body(&mut self.scratch),
            items: n,
            counted: n,
        });
        Ok(())
    }

    fn truth(self) -> (Vec<Burst>, Option<GroundTruth>) {
        (
            Vec::new(),
            Some(GroundTruth::Ecommerce(self.generator.into_truth())),
        )
    }
}

/// The incidents scenario, released as its simulated clock runs at `speed`.
struct IncidentsSource {
    scenario: incidents::Scenario,
    /// Simulated seconds per wall second; 0: as fast as the node acknowledges.
    speed: f64,
    started: Instant,
    metrics: Vec<u8>,
    events: Vec<u8>,
}

impl IncidentsSource {
    /// The simulated time reached at `now`.
    fn sim_now(&self, now: Instant) -> i64 {
        if self.speed > 0.0 {
            let elapsed = now.saturating_duration_since(self.started).as_secs_f64();
            self.scenario.start_ms() + (elapsed * self.speed * 1000.0) as i64
        } else {
            i64::MAX
        }
    }
}

impl Source for IncidentsSource {
    fn schedule(&mut self, max: u64, now: Instant) -> Option<(Instant, u64)> {
        let ts = self.scenario.peek_timestamp()?;
        let due = if self.speed > 0.0 {
            let offset = (ts - self.scenario.start_ms()).max(0) as f64 / 1000.0 / self.speed;
            self.started + Duration::from_secs_f64(offset.min(1e9))
        } else {
            now
        };
        Some((due, max))
    }

    fn fill(
        &mut self,
        n: u64,
        now: Instant,
        _now_ms: i64,
        out: &mut Vec<Batch>,
    ) -> Result<(), SimError> {
        let sim_now = self.sim_now(now);
        let (mut metrics, mut events) = (0u64, 0u64);
        self.metrics.clear();
        self.events.clear();
        while metrics + events < n {
            // The first item was due when this batch was scheduled; then whatever else is due.
            match self.scenario.peek_timestamp() {
                Some(ts) if ts <= sim_now || metrics + events == 0 => {}
                _ => break,
            }
            let Some(item) = self.scenario.next() else {
                break;
            };
            let (buf, count) = match item {
                incidents::Item::Metric(_) => (&mut self.metrics, &mut metrics),
                incidents::Item::Event(_) => (&mut self.events, &mut events),
            };
            buf.push(if *count == 0 { b'[' } else { b',' });
            item.write_json(buf)?;
            *count += 1;
        }
        for (payload, buf, count) in [
            (Payload::Metrics, &mut self.metrics, metrics),
            (Payload::Events, &mut self.events, events),
        ] {
            if count > 0 {
                buf.push(b']');
                out.push(Batch {
                    payload,
                    body: batch_body(buf),
                    items: count,
                    counted: count,
                });
            }
        }
        Ok(())
    }

    fn truth(self) -> (Vec<Burst>, Option<GroundTruth>) {
        (
            Vec::new(),
            Some(GroundTruth::Incidents(self.scenario.ground_truth().clone())),
        )
    }
}

/// The one sending loop behind every scenario.
async fn drive<S: Source>(
    opts: SimulateOptions,
    plan: Plan,
    mut source: S,
    run_id: String,
    start_ms: i64,
    started: Instant,
    shutdown: impl Future<Output = ()>,
) -> Result<SimReport, SimError> {
    let client = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(plan.concurrency * 2)
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("sightline-sim/", env!("CARGO_PKG_VERSION")))
        .build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sender = Sender {
        endpoint: Arc::new(plan.endpoint),
        client,
        stop: stop_rx,
        tasks: JoinSet::new(),
        tally: Tally::new(opts.seed),
        progress: progress_bar(opts.progress, opts.count),
        started,
        concurrency: plan.concurrency,
    };
    let per_batch = plan.per_batch as u64;
    // Simulated-time scenarios end by themselves; --duration is their simulated length.
    let deadline = match opts.scenario {
        ScenarioKind::Incidents => None,
        _ => opts.duration.map(|d| started + d),
    };
    let mut produced: u64 = 0;
    let mut batches: Vec<Batch> = Vec::new();
    let mut interrupted = false;
    tokio::pin!(shutdown);

    'produce: loop {
        let remaining = opts.count.map_or(u64::MAX, |c| c.saturating_sub(produced));
        if remaining == 0 {
            break;
        }
        match sender.free_slot(&mut shutdown, deadline).await {
            Some(Stop::Shutdown) => {
                interrupted = true;
                break;
            }
            Some(Stop::Deadline) => break,
            None => {}
        }
        let Some((due, n)) = source.schedule(remaining.min(per_batch), Instant::now()) else {
            break;
        };
        if deadline.is_some_and(|d| due >= d) {
            break;
        }
        while due > Instant::now() {
            tokio::select! {
                biased;
                () = &mut shutdown => { interrupted = true; break 'produce; }
                () = tokio::time::sleep_until(due.into()) => break,
                Some(joined) = sender.tasks.join_next(), if !sender.tasks.is_empty() => {
                    sender.absorb(Some(joined));
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        source.fill(n, Instant::now(), now_ms(), &mut batches)?;
        for (i, batch) in batches.drain(..).enumerate() {
            if i > 0 {
                match sender.free_slot(&mut shutdown, deadline).await {
                    Some(Stop::Shutdown) => {
                        interrupted = true;
                        break 'produce;
                    }
                    Some(Stop::Deadline) => break 'produce,
                    None => {}
                }
            }
            produced += batch.counted;
            sender.progress.set_position(produced);
            sender.spawn(batch);
        }
    }

    if !interrupted {
        source.finish(now_ms(), &mut batches)?;
        for batch in batches.drain(..) {
            if sender.free_slot(&mut shutdown, None).await.is_some() {
                interrupted = true;
                break;
            }
            sender.spawn(batch);
        }
    }
    if interrupted {
        let _ = stop_tx.send(true);
    }
    // Wait for every answer; a shutdown signal meanwhile cuts retries' waits short.
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown, if !interrupted => {
                interrupted = true;
                let _ = stop_tx.send(true);
            }
            joined = sender.tasks.join_next() => match joined {
                Some(joined) => sender.absorb(Some(joined)),
                None => break,
            },
        }
    }
    sender.progress.finish_and_clear();
    let elapsed = started.elapsed().as_secs_f64();
    let (bursts, ground_truth) = source.truth();
    let mut report = sender.tally.report(
        run_id,
        start_ms,
        if opts.scenario == ScenarioKind::Incidents {
            0
        } else {
            opts.rate
        },
        elapsed,
        interrupted,
        bursts,
    );
    report.scenario = opts.scenario;
    report.ground_truth = ground_truth;
    Ok(report)
}

/// Why production stopped.
enum Stop {
    Shutdown,
    Deadline,
}

/// The requests in flight and the totals of those answered.
struct Sender {
    endpoint: Arc<Endpoint>,
    client: reqwest::Client,
    stop: watch::Receiver<bool>,
    tasks: JoinSet<Outcome>,
    tally: Tally,
    progress: ProgressBar,
    started: Instant,
    concurrency: usize,
}

impl Sender {
    fn spawn(&mut self, batch: Batch) {
        match batch.payload {
            Payload::Metrics => self.tally.metrics_sent += batch.items,
            Payload::Events | Payload::Records => self.tally.sent += batch.items,
        }
        self.tasks.spawn(deliver(
            self.endpoint.clone(),
            self.client.clone(),
            batch.payload,
            batch.body,
            batch.items,
            self.stop.clone(),
        ));
    }

    fn absorb(&mut self, joined: Option<Result<Outcome, tokio::task::JoinError>>) {
        self.tally.absorb(joined, &self.progress, self.started);
    }

    /// Waits until fewer than `concurrency` requests are in flight, absorbing answers;
    /// `Some` when the shutdown signal or the deadline came first.
    async fn free_slot<F: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut F>,
        deadline: Option<Instant>,
    ) -> Option<Stop> {
        while self.tasks.len() >= self.concurrency {
            tokio::select! {
                biased;
                () = shutdown.as_mut() => return Some(Stop::Shutdown),
                () = sleep_until(deadline) => return Some(Stop::Deadline),
                joined = self.tasks.join_next() => self.absorb(joined),
            }
        }
        None
    }
}

/// Takes the serialized batch out of the scratch buffer, leaving an empty buffer with the
/// same capacity so the next batch serializes without regrowing.
fn batch_body(scratch: &mut Vec<u8>) -> Vec<u8> {
    let capacity = scratch.capacity();
    std::mem::replace(scratch, Vec::with_capacity(capacity))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}

/// The validated shape of a run.
struct Plan {
    endpoint: Endpoint,
    per_batch: usize,
    concurrency: usize,
}

impl Plan {
    fn new(opts: &SimulateOptions) -> Result<Self, SimError> {
        let invalid = |m: String| Err(SimError::InvalidOptions(m));
        if opts.batch_size == 0 {
            return invalid("batch_size must be at least 1".into());
        }
        if opts.concurrency == 0 {
            return invalid("concurrency must be at least 1".into());
        }
        if !(opts.speed.is_finite() && opts.speed >= 0.0) {
            return invalid(format!("speed must be 0 or more, got {}", opts.speed));
        }
        if opts.step < Duration::from_secs(1) {
            return invalid("step must be at least 1 s".into());
        }
        if opts.sessions == 0 {
            return invalid("sessions must be at least 1".into());
        }
        if opts.topic.is_empty()
            || !opts
                .topic
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return invalid(format!(
                "topic '{}' must be letters, digits, '.', '_' or '-'",
                opts.topic
            ));
        }
        if !(0.0..=1.0).contains(&opts.error_rate) {
            return invalid(format!(
                "error_rate must be between 0 and 1, got {}",
                opts.error_rate
            ));
        }
        let base = opts.target.trim_end_matches('/');
        let url = reqwest::Url::parse(base)
            .map_err(|e| SimError::InvalidOptions(format!("target '{base}' is not a URL: {e}")))?;
        if url.scheme() != "http" {
            return invalid(format!(
                "target '{base}': only http:// targets are supported (this build has no TLS)"
            ));
        }
        let per_batch = if opts.rate > 0 && opts.scenario != ScenarioKind::Incidents {
            let smooth = usize::try_from(opts.rate / MIN_BATCHES_PER_SEC).unwrap_or(usize::MAX);
            smooth.clamp(1, opts.batch_size)
        } else {
            opts.batch_size
        };
        Ok(Self {
            endpoint: Endpoint {
                events: format!("{base}/api/v1/events/batch"),
                metrics: format!("{base}/api/v1/metrics"),
                records: format!("{base}/api/v1/topics/{}/records", opts.topic),
                api_key: opts.api_key.clone(),
            },
            per_batch,
            concurrency: opts.concurrency,
        })
    }
}

#[derive(Debug)]
struct Endpoint {
    events: String,
    metrics: String,
    records: String,
    api_key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payload {
    Events,
    Metrics,
    /// Records for a user topic (`{"key", "value"}` envelopes).
    Records,
}

/// The fate of one batch.
#[derive(Debug)]
struct Outcome {
    payload: Payload,
    items: u64,
    acknowledged: u64,
    rejected: u64,
    failed: bool,
    retries: u64,
    /// Requests made for this batch (1 + retries, fewer if a transport error cut it short).
    attempts: u64,
    /// Latency of each answered attempt, microseconds.
    latencies_us: Vec<u64>,
}

/// The 2xx answer of the batch endpoints; the per-item `results` are not needed here.
#[derive(serde::Deserialize)]
struct BatchAnswer {
    /// Absent from the topic endpoint's answer: there, 2xx means all were appended.
    #[serde(default)]
    accepted: Option<u64>,
    #[serde(default)]
    rejected: u64,
}

/// Sends one batch, retrying on backpressure; never panics, always accounts for every item.
async fn deliver(
    endpoint: Arc<Endpoint>,
    client: reqwest::Client,
    payload: Payload,
    body: Vec<u8>,
    items: u64,
    mut stop: watch::Receiver<bool>,
) -> Outcome {
    let mut out = Outcome {
        payload,
        items,
        acknowledged: 0,
        rejected: 0,
        failed: true,
        retries: 0,
        attempts: 0,
        latencies_us: Vec::new(),
    };
    let url = match payload {
        Payload::Events => &endpoint.events,
        Payload::Metrics => &endpoint.metrics,
        Payload::Records => &endpoint.records,
    };
    let mut builder = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(key) = &endpoint.api_key {
        builder = builder.bearer_auth(key);
    }
    let request = match builder.build() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "could not build a request");
            return out;
        }
    };
    loop {
        let Some(attempt) = request.try_clone() else {
            return out;
        };
        out.attempts += 1;
        let sent_at = Instant::now();
        let response = match client.execute(attempt).await {
            Ok(r) => r,
            // Nothing was sent (the node is restarting, say): as safe to resend as a 503.
            Err(e) if e.is_connect() && out.retries < u64::from(MAX_RETRIES) => {
                tracing::debug!(error = %e, url, "cannot connect; retrying");
                out.retries += 1;
                tokio::select! {
                    () = tokio::time::sleep(CONNECT_RETRY) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return out,
                }
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, url, "request failed");
                return out;
            }
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let answer = response.bytes().await;
        out.latencies_us
            .push(u64::try_from(sent_at.elapsed().as_micros()).unwrap_or(u64::MAX));
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, url, %status, "reading the answer failed");
                return out;
            }
        };
        match status {
            s if s.is_success() => {
                match serde_json::from_slice::<BatchAnswer>(&answer) {
                    Ok(BatchAnswer {
                        accepted: Some(accepted),
                        rejected,
                    }) => {
                        out.acknowledged = accepted.min(items);
                        out.rejected = rejected.min(items - out.acknowledged);
                        if accepted + rejected != items {
                            tracing::warn!(
                                items,
                                accepted,
                                rejected,
                                "the answer does not account for every item"
                            );
                        }
                    }
                    _ if payload == Payload::Records => out.acknowledged = items,
                    Ok(BatchAnswer { accepted: None, .. }) => {
                        tracing::warn!(%status, "answer without a count; counting the batch as acknowledged");
                        out.acknowledged = items;
                    }
                    Err(e) => {
                        // 2xx means durably accepted, whatever the body says.
                        tracing::warn!(error = %e, %status, "unexpected answer body; counting the batch as acknowledged");
                        out.acknowledged = items;
                    }
                }
                out.failed = false;
                return out;
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                // Every item was refused (the node answers 202 when any is accepted).
                out.rejected = items;
                out.failed = false;
                tracing::debug!(body = %String::from_utf8_lossy(&answer), "batch rejected");
                return out;
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                if out.retries >= u64::from(MAX_RETRIES) {
                    tracing::warn!(%status, retries = out.retries, "giving up on a batch");
                    return out;
                }
                out.retries += 1;
                tokio::select! {
                    () = tokio::time::sleep(retry_after) => {}
                    _ = stop.wait_for(|stopped| *stopped) => return out,
                }
            }
            s if payload == Payload::Records && s.is_client_error() => {
                // The topic endpoint refuses a whole batch with any 4xx but 429.
                out.rejected = items;
                out.failed = false;
                let text = String::from_utf8_lossy(&answer[..answer.len().min(512)]).into_owned();
                tracing::warn!(%status, url, body = %text, "records rejected");
                return out;
            }
            _ => {
                let text = String::from_utf8_lossy(&answer[..answer.len().min(512)]).into_owned();
                tracing::warn!(%status, url, body = %text, "batch refused");
                return out;
            }
        }
    }
}

/// The wait a 429/503 asks for: `Retry-After` in seconds, 1 s when absent or unreadable
/// (HTTP dates included), at most [`MAX_RETRY_AFTER`].
fn retry_after(headers: &HeaderMap) -> Duration {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs)
        .min(MAX_RETRY_AFTER)
}

/// A token bucket releasing `rate` events a second, holding at most one second of them,
/// so a stalled run catches up by at most a second's worth.
#[derive(Debug)]
struct Pacer {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Pacer {
    /// `None` when `rate` is 0 (no pacing). The bucket starts with one batch's tokens.
    fn new(rate: u64, batch: u64, now: Instant) -> Option<Self> {
        (rate > 0).then(|| Self {
            rate: rate as f64,
            capacity: (rate as f64).max(batch as f64),
            tokens: batch as f64,
            last: now,
        })
    }

    /// Takes `n` tokens, returning when they are (or were) available.
    fn reserve(&mut self, n: u64, now: Instant) -> Instant {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 {
            now
        } else {
            now + Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }
}

/// Running totals.
struct Tally {
    sent: u64,
    acknowledged: u64,
    rejected: u64,
    metrics_sent: u64,
    metrics_acknowledged: u64,
    metrics_rejected: u64,
    requests: u64,
    failed_requests: u64,
    retries: u64,
    latencies: Reservoir,
}

impl Tally {
    fn new(seed: u64) -> Self {
        Self {
            sent: 0,
            acknowledged: 0,
            rejected: 0,
            metrics_sent: 0,
            metrics_acknowledged: 0,
            metrics_rejected: 0,
            requests: 0,
            failed_requests: 0,
            retries: 0,
            latencies: Reservoir::new(LATENCY_SAMPLES, seed),
        }
    }

    fn absorb(
        &mut self,
        joined: Option<Result<Outcome, tokio::task::JoinError>>,
        progress: &ProgressBar,
        started: Instant,
    ) {
        let outcome = match joined {
            None => return,
            Some(Ok(o)) => o,
            Some(Err(e)) => {
                // Its items stay unaccounted for, so they count as failed in the report.
                tracing::error!(error = %e, "a request task died");
                self.failed_requests += 1;
                self.requests += 1;
                return;
            }
        };
        match outcome.payload {
            Payload::Events | Payload::Records => {
                self.acknowledged += outcome.acknowledged;
                self.rejected += outcome.rejected;
            }
            Payload::Metrics => {
                self.metrics_acknowledged += outcome.acknowledged;
                self.metrics_rejected += outcome.rejected;
            }
        }
        debug_assert!(outcome.acknowledged + outcome.rejected <= outcome.items);
        self.failed_requests += u64::from(outcome.failed);
        self.retries += outcome.retries;
        self.requests += outcome.attempts;
        for l in outcome.latencies_us {
            self.latencies.record(l);
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        progress.set_message(format!(
            "{} acked · {} rejected · {} failed requests · {:.0} events/s",
            self.acknowledged,
            self.rejected,
            self.failed_requests,
            self.acknowledged as f64 / secs
        ));
    }

    fn report(
        self,
        run_id: String,
        started_at_ms: i64,
        target_rate: u64,
        elapsed_secs: f64,
        interrupted: bool,
        bursts: Vec<Burst>,
    ) -> SimReport {
        SimReport {
            run_id,
            started_at_ms,
            sent: self.sent,
            acknowledged: self.acknowledged,
            rejected: self.rejected,
            failed_events: self.sent.saturating_sub(self.acknowledged + self.rejected),
            requests: self.requests,
            failed_requests: self.failed_requests,
            retries: self.retries,
            elapsed_secs,
            target_rate,
            achieved_rate: if elapsed_secs > 0.0 {
                self.acknowledged as f64 / elapsed_secs
            } else {
                0.0
            },
            request_latency_ms: self.latencies.summary(),
            metrics_sent: self.metrics_sent,
            metrics_acknowledged: self.metrics_acknowledged,
            metrics_rejected: self.metrics_rejected,
            interrupted,
            bursts,
            scenario: ScenarioKind::Normal,
            ground_truth: None,
        }
    }
}

/// A bounded uniform sample of latencies (reservoir sampling), plus the exact maximum.
#[derive(Debug)]
struct Reservoir {
    samples: Vec<u64>,
    cap: usize,
    seen: u64,
    max: u64,
    rng: StdRng,
}

impl Reservoir {
    fn new(cap: usize, seed: u64) -> Self {
        Self {
            samples: Vec::new(),
            cap: cap.max(1),
            seen: 0,
            max: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn record(&mut self, value: u64) {
        self.seen += 1;
        self.max = self.max.max(value);
        if self.samples.len() < self.cap {
            self.samples.push(value);
        } else {
            let j = self.rng.random_range(0..self.seen);
            if let Ok(j) = usize::try_from(j)
                && j < self.cap
            {
                self.samples[j] = value;
            }
        }
    }

    fn summary(mut self) -> LatencySummary {
        self.samples.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        LatencySummary {
            p50: ms(percentile(&self.samples, 50.0)),
            p99: ms(percentile(&self.samples, 99.0)),
            max: ms(self.max),
            samples: self.seen,
        }
    }
}

/// The nearest-rank `p`-th percentile of sorted samples (0 when there are none).
fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn progress_bar(enabled: bool, count: Option<u64>) -> ProgressBar {
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match count {
        Some(c) => (
            ProgressBar::with_draw_target(Some(c), ProgressDrawTarget::stderr()),
            "{spinner} [{elapsed_precise}] {bar:30} {human_pos}/{human_len} sent · {msg}",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} [{elapsed_precise}] {human_pos} sent · {msg}",
        ),
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pacer_releases_the_rate_and_catches_up_at_most_a_second() {
        let t0 = Instant::now();
        let mut p = Pacer::new(1000, 100, t0).unwrap();
        // The first batch goes at once; the next ones 100 ms apart.
        assert_eq!(p.reserve(100, t0), t0);
        let due = p.reserve(100, t0);
        assert_eq!(due - t0, Duration::from_millis(100));
        let due = p.reserve(100, due);
        assert_eq!(due - t0, Duration::from_millis(200));
        // After a 10 s stall, one second of tokens is banked, no more.
        let later = t0 + Duration::from_secs(10);
        let mut immediate = 0;
        while p.reserve(100, later) == later {
            immediate += 1;
        }
        assert_eq!(immediate, 10);
        assert!(Pacer::new(0, 100, t0).is_none());
    }

    #[test]
    fn retry_after_is_read_bounded_and_defaulted() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), Duration::from_secs(1));
        h.insert(RETRY_AFTER, "3".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::from_secs(3));
        h.insert(RETRY_AFTER, "0".parse().unwrap());
        assert_eq!(retry_after(&h), Duration::ZERO);
        h.insert(RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&h), MAX_RETRY_AFTER);
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Duration::from_secs(1));
    }

    #[test]
    fn percentiles_are_nearest_rank_and_the_reservoir_is_bounded() {
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 50.0), 50);
        assert_eq!(percentile(&sorted, 99.0), 99);
        assert_eq!(percentile(&sorted, 100.0), 100);
        assert_eq!(percentile(&[], 50.0), 0);
        assert_eq!(percentile(&[7], 99.0), 7);

        let mut r = Reservoir::new(1000, 1);
        for v in 1..=100_000u64 {
            r.record(v * 1000);
        }
        assert_eq!(r.samples.len(), 1000);
        let s = r.summary();
        assert_eq!(s.samples, 100_000);
        assert_eq!(s.max, 100_000.0);
        // A uniform sample of 1..=100 000 ms: the median near 50 000.
        assert!((s.p50 - 50_000.0).abs() < 5_000.0, "{}", s.p50);
        assert!(s.p99 > 95_000.0, "{}", s.p99);
    }

    #[test]
    fn options_are_checked() {
        let bad = |o: SimulateOptions| matches!(Plan::new(&o), Err(SimError::InvalidOptions(_)));
        let ok = SimulateOptions::default();
        assert!(Plan::new(&ok).is_ok());
        assert!(bad(SimulateOptions {
            batch_size: 0,
            ..ok.clone()
        }));
        assert!(bad(SimulateOptions {
            concurrency: 0,
            ..ok.clone()
        }));
        assert!(bad(SimulateOptions {
            error_rate: 1.5,
            ..ok.clone()
        }));
        assert!(bad(SimulateOptions {
            error_rate: f64::NAN,
            ..ok.clone()
        }));
        assert!(bad(SimulateOptions {
            target: "https://x".into(),
            ..ok.clone()
        }));
        assert!(bad(SimulateOptions {
            target: "not a url".into(),
            ..ok.clone()
        }));
        let plan = Plan::new(&SimulateOptions {
            target: "http://h:1/".into(),
            ..ok.clone()
        })
        .unwrap();
        assert_eq!(plan.endpoint.events, "http://h:1/api/v1/events/batch");
        assert_eq!(plan.endpoint.metrics, "http://h:1/api/v1/metrics");
        // 1 000 events/s: batches of 50 (20 a second); unlimited: the full batch size.
        assert_eq!(plan.per_batch, 50);
        let fast = Plan::new(&SimulateOptions {
            rate: 0,
            ..ok.clone()
        })
        .unwrap();
        assert_eq!(fast.per_batch, 500);
        let slow = Plan::new(&SimulateOptions { rate: 5, ..ok }).unwrap();
        assert_eq!(slow.per_batch, 1);
    }
}
