//! Sending simulated traffic to a running node: pacing, concurrency, retries, accounting.
//!
//! This is the loop behind `sightline simulate`. It exists apart from the generator so
//! that the traffic model stays a pure function and everything with time, sockets and
//! failure lives here. The loop is *open*: batches are released on a token-bucket
//! schedule derived from the target rate, not when the previous request returns, so a slow
//! server shows up as latency and as a lower achieved rate instead of silently slowing the
//! producer down. At most `concurrency` requests are in flight; backpressure answers
//! (429/503 with `Retry-After`) are honoured by retrying the same batch, boundedly.
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
use crate::generator::{Burst, EventGenerator, GeneratorConfig, MetricGenerator, now_ms};

/// Retries of one batch answered with 429/503 before it is counted as failed.
pub const MAX_RETRIES: u32 = 10;
/// Longest `Retry-After` honoured; longer values are shortened to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// Latency samples kept for the percentiles (a uniform reservoir beyond that).
pub const LATENCY_SAMPLES: usize = 1_000_000;
/// Time limit of one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Metric points sent per event sent, when metrics are on.
const METRICS_PER_EVENT: u64 = 10;
/// At a set rate, batches are made small enough for at least this many requests a second.
const MIN_BATCHES_PER_SEC: u64 = 20;

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
    /// The error bursts injected (ground truth for detectors), oldest first.
    pub bursts: Vec<Burst>,
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
        let rate = if self.target_rate == 0 {
            "unlimited".to_owned()
        } else {
            format!("{}/s", self.target_rate)
        };
        writeln!(
            f,
            "run {}: {} events sent in {:.2} s (target rate {rate}){}",
            self.run_id,
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
    let client = reqwest::Client::builder()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(plan.concurrency * 2)
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        .user_agent(concat!("sightline-sim/", env!("CARGO_PKG_VERSION")))
        .build()?;

    let start_ms = now_ms();
    let run_id = format!("sim-{start_ms:x}{:04x}", rand::random::<u16>());
    let config = GeneratorConfig {
        run_id: run_id.clone(),
        error_rate: opts.error_rate,
        bursts: if opts.bursts {
            GeneratorConfig::default().bursts
        } else {
            None
        },
        ..GeneratorConfig::default()
    };
    let mut metric_gen = opts
        .metrics
        .then(|| MetricGenerator::new(&config, opts.seed));
    let mut event_gen = EventGenerator::new(config, opts.seed);

    let (stop_tx, stop_rx) = watch::channel(false);
    let started = Instant::now();
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
    let deadline = opts.duration.map(|d| started + d);
    let mut pacer = Pacer::new(opts.rate, per_batch, started);
    let mut scratch: Vec<u8> = Vec::new();
    // Metric points owed, in tenths.
    let mut metric_debt: u64 = 0;
    let mut interrupted = false;
    tokio::pin!(shutdown);

    'produce: loop {
        let remaining = opts
            .count
            .map_or(u64::MAX, |c| c.saturating_sub(sender.tally.sent));
        if remaining == 0 {
            break;
        }
        let n = remaining.min(per_batch);
        match sender.free_slot(&mut shutdown, deadline).await {
            Some(Stop::Shutdown) => {
                interrupted = true;
                break;
            }
            Some(Stop::Deadline) => break,
            None => {}
        }
        // The tokens for this batch.
        if let Some(due) = pacer.as_mut().map(|p| p.reserve(n, Instant::now())) {
            if deadline.is_some_and(|d| due >= d) {
                break;
            }
            loop {
                tokio::select! {
                    biased;
                    () = &mut shutdown => { interrupted = true; break 'produce; }
                    () = tokio::time::sleep_until(due.into()) => break,
                    Some(joined) = sender.tasks.join_next(), if !sender.tasks.is_empty() => {
                        sender.absorb(Some(joined));
                    }
                }
            }
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }

        let now = now_ms();
        event_gen.write_batch(
            now,
            usize::try_from(n).unwrap_or(plan.per_batch),
            &mut scratch,
        )?;
        sender.tally.sent += n;
        sender.progress.set_position(sender.tally.sent);
        sender.spawn(Payload::Events, batch_body(&mut scratch), n);

        if let Some(metric_gen) = metric_gen.as_mut() {
            metric_debt += n;
            while metric_debt / METRICS_PER_EVENT >= per_batch {
                match sender.free_slot(&mut shutdown, deadline).await {
                    Some(Stop::Shutdown) => {
                        interrupted = true;
                        break 'produce;
                    }
                    Some(Stop::Deadline) => break 'produce,
                    None => {}
                }
                metric_debt -= per_batch * METRICS_PER_EVENT;
                metric_gen.write_batch(now, plan.per_batch, &mut scratch)?;
                sender.tally.metrics_sent += per_batch;
                sender.spawn(Payload::Metrics, batch_body(&mut scratch), per_batch);
            }
        }
    }

    // The metric points still owed for the events sent.
    let owed = metric_debt / METRICS_PER_EVENT;
    if let Some(metric_gen) = metric_gen.as_mut()
        && owed > 0
        && !interrupted
    {
        if sender.free_slot(&mut shutdown, None).await.is_some() {
            interrupted = true;
        } else {
            metric_gen.write_batch(now_ms(), usize::try_from(owed).unwrap_or(0), &mut scratch)?;
            sender.tally.metrics_sent += owed;
            sender.spawn(Payload::Metrics, batch_body(&mut scratch), owed);
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
    Ok(sender.tally.report(
        run_id,
        start_ms,
        opts.rate,
        elapsed,
        interrupted,
        event_gen.bursts().to_vec(),
    ))
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
    fn spawn(&mut self, payload: Payload, body: Vec<u8>, items: u64) {
        self.tasks.spawn(deliver(
            self.endpoint.clone(),
            self.client.clone(),
            payload,
            body,
            items,
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
        let per_batch = if opts.rate > 0 {
            let smooth = usize::try_from(opts.rate / MIN_BATCHES_PER_SEC).unwrap_or(usize::MAX);
            smooth.clamp(1, opts.batch_size)
        } else {
            opts.batch_size
        };
        Ok(Self {
            endpoint: Endpoint {
                events: format!("{base}/api/v1/events/batch"),
                metrics: format!("{base}/api/v1/metrics"),
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
    api_key: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payload {
    Events,
    Metrics,
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
    accepted: u64,
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
                    Ok(a) => {
                        out.acknowledged = a.accepted.min(items);
                        out.rejected = a.rejected.min(items - out.acknowledged);
                        if a.accepted + a.rejected != items {
                            tracing::warn!(
                                items,
                                accepted = a.accepted,
                                rejected = a.rejected,
                                "the answer does not account for every item"
                            );
                        }
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
            Payload::Events => {
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
