//! Synthetic traffic: system events and metric points that look like a small e-commerce
//! platform, reproducible from a seed.
//!
//! The simulator exists so that every later stage (windows, detectors, correlation, the
//! analyst) has realistic input with a *known* story behind it. [`EventGenerator`] emits
//! system events in the input shape of `schemas/system_event.schema.json` for eight
//! services; [`MetricGenerator`] emits the metric points of `schemas/metric.schema.json`
//! for the same services and hosts. Both follow one burst schedule ([`BurstConfig`]): every
//! so often one service, freshly deployed, starts failing for a while. Every burst that
//! happened is recorded as a [`Burst`], the ground truth a detector's findings can be
//! scored against.
//!
//! Everything is a pure function of the seed and of the sequence of `now_ms` values the
//! caller passes in, so a test (or a bug report) can replay a run exactly. Output is
//! serialized straight into a caller-owned `Vec<u8>`, so a driver can reuse one buffer per
//! batch and never build intermediate `serde_json::Value`s on the hot path.

use std::fmt::Write as _;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use sightline_model::clock::now_ms;

/// The `source` every simulated event carries.
pub const SOURCE: &str = "sightline-sim";

/// The metric types [`MetricGenerator`] produces.
pub const METRIC_TYPES: [&str; 5] = [
    "cpu_usage",
    "memory_usage",
    "latency_ms",
    "error_rate",
    "request_rate",
];

/// What the event generator produces, and how often things go wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// Prefix of every `event_id` (`{run_id}-{seq}`); make it unique per run so ids never
    /// collide with an earlier run's.
    pub run_id: String,
    /// Fraction of events that are `ERROR` outside bursts (0..=1).
    pub error_rate: f64,
    /// Fraction of events that are `WARNING` (0..=1; shrunk when it and `error_rate` exceed 1).
    pub warning_rate: f64,
    /// Fraction of events from the `STAGING` environment (the rest are `PRODUCTION`).
    pub staging_rate: f64,
    /// A routine deployment of a random service this often (generator time); `None`: only
    /// the deployments that precede bursts.
    pub deploy_every: Option<Duration>,
    /// Error bursts; `None` disables them.
    pub bursts: Option<BurstConfig>,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            run_id: "sim".to_owned(),
            error_rate: 0.05,
            warning_rate: 0.08,
            staging_rate: 0.1,
            deploy_every: Some(Duration::from_secs(20)),
            bursts: Some(BurstConfig::default()),
        }
    }
}

/// Periodic error bursts: in every period of `every`, starting half-way through it, one
/// service (chosen from the seed) emits errors at `error_rate` for `duration`, in its
/// production environment. The service is deployed `deploy_lead` before the burst starts,
/// so the deployment is the burst's root cause.
#[derive(Clone, Debug, PartialEq)]
pub struct BurstConfig {
    /// Length of one period; one burst per period.
    pub every: Duration,
    /// How long a burst lasts (at most half of `every`).
    pub duration: Duration,
    /// Fraction of the bursting service's production events that are errors.
    pub error_rate: f64,
    /// How long before the burst the faulty version is deployed (at most half of `every`).
    pub deploy_lead: Duration,
}

impl Default for BurstConfig {
    fn default() -> Self {
        Self {
            every: Duration::from_secs(30),
            duration: Duration::from_secs(5),
            error_rate: 0.5,
            deploy_lead: Duration::from_secs(2),
        }
    }
}

/// One burst that happened: the ground truth of an injected incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Burst {
    /// The failing service.
    pub service: &'static str,
    /// The version deployed just before the burst (its root cause).
    pub version: String,
    /// The error message that dominates the burst (its template, variable parts unfilled).
    pub error_template: &'static str,
    /// Start, epoch milliseconds.
    pub started_at_ms: i64,
    /// End (exclusive), epoch milliseconds.
    pub ended_at_ms: i64,
}

/// How many events of each type a generator has produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    /// `INFO` events.
    pub info: u64,
    /// `WARNING` events.
    pub warning: u64,
    /// `ERROR` events.
    pub error: u64,
    /// `DEPLOYMENT` events.
    pub deployment: u64,
}

impl EventCounts {
    /// All events.
    pub fn total(&self) -> u64 {
        self.info + self.warning + self.error + self.deployment
    }
}

// ---------------------------------------------------------------------------------------
// The simulated platform.

struct Host {
    name: &'static str,
    region: &'static str,
}

struct Service {
    name: &'static str,
    team: &'static str,
    /// Relative share of the traffic.
    weight: u32,
    hosts: &'static [Host],
    staging_host: &'static str,
    /// Version at start: (major, minor, patch).
    version: (u32, u32, u32),
    /// Median latency of a healthy request, milliseconds.
    latency_ms: f64,
    /// Requests per second over all hosts, for `request_rate`.
    requests_per_sec: f64,
    info: &'static [&'static str],
    warning: &'static [&'static str],
    error: &'static [&'static str],
}

const fn host(name: &'static str, region: &'static str) -> Host {
    Host { name, region }
}

// Placeholders in templates: {ms} latency, {status} HTTP status, {order} order id,
// {user} user id, {ip} address, {n} a count, {sku} a product, {amount} money, {pct} a
// percentage, {path} an API path, {upstream} another service, {client} an API client,
// {attempt} a retry number.
static SERVICES: [Service; 8] = [
    Service {
        name: "api-gateway",
        team: "platform",
        weight: 20,
        hosts: &[
            host("gw-prod-01", "us-east-1"),
            host("gw-prod-02", "us-east-1"),
            host("gw-prod-03", "eu-west-1"),
            host("gw-prod-04", "eu-west-1"),
        ],
        staging_host: "gw-stg-01",
        version: (3, 8, 1),
        latency_ms: 12.0,
        requests_per_sec: 2400.0,
        info: &[
            "GET {path} {status} in {ms} ms from {ip}",
            "POST {path} {status} in {ms} ms from {ip}",
            "PUT {path} {status} in {ms} ms from {ip}",
        ],
        warning: &[
            "Rate limit approaching for client {client}: {n} requests in the last minute",
            "Upstream {upstream} slow: {ms} ms on {path}",
            "Slow client {ip}: request body upload took {ms} ms on {path}",
        ],
        error: &[
            "Upstream {upstream} returned {status} on {path} after {ms} ms",
            "Circuit breaker OPEN for {upstream} after {n} consecutive failures",
            "TLS handshake with upstream {upstream} failed after {ms} ms",
        ],
    },
    Service {
        name: "order-service",
        team: "checkout",
        weight: 15,
        hosts: &[
            host("order-prod-01", "us-east-1"),
            host("order-prod-02", "us-east-1"),
            host("order-prod-03", "eu-west-1"),
        ],
        staging_host: "order-stg-01",
        version: (2, 14, 0),
        latency_ms: 45.0,
        requests_per_sec: 600.0,
        info: &[
            "Order {order} created for user {user} with {n} items",
            "Order {order} status changed to SHIPPED",
            "GET /v1/orders/{order} {status} in {ms} ms",
        ],
        warning: &[
            "Inventory reservation slow for order {order}: {ms} ms",
            "Order {order} awaiting payment confirmation for {n} minutes",
        ],
        error: &[
            "Failed to create order {order}: payment-service returned {status}",
            "Order {order} rolled back after inventory reservation failure",
            "Publishing to topic orders.created failed after {ms} ms",
        ],
    },
    Service {
        name: "payment-service",
        team: "payments",
        weight: 12,
        hosts: &[
            host("pay-prod-01", "us-east-1"),
            host("pay-prod-02", "us-east-1"),
            host("pay-prod-03", "eu-west-1"),
        ],
        staging_host: "pay-stg-01",
        version: (4, 2, 7),
        latency_ms: 180.0,
        requests_per_sec: 350.0,
        info: &[
            "Payment authorized for order {order}: {amount} USD in {ms} ms",
            "Refund processed for order {order}: {amount} USD",
            "POST /v1/payments {status} in {ms} ms",
        ],
        warning: &[
            "Payment gateway latency high: {ms} ms for order {order}",
            "Retrying card authorization for order {order} (attempt {attempt} of 3)",
            "Fraud check slow: {ms} ms, falling back to asynchronous review",
        ],
        error: &[
            "Payment gateway timeout after {ms} ms for order {order}",
            "Card authorization failed for order {order}: issuer returned {status}",
            "Database connection pool exhausted: {n} connections in use, max 50",
        ],
    },
    Service {
        name: "user-service",
        team: "identity",
        weight: 12,
        hosts: &[
            host("user-prod-01", "us-east-1"),
            host("user-prod-02", "eu-west-1"),
        ],
        staging_host: "user-stg-01",
        version: (1, 31, 2),
        latency_ms: 25.0,
        requests_per_sec: 900.0,
        info: &[
            "Profile updated for user {user}",
            "GET /v1/users/{user} {status} in {ms} ms",
            "Session refreshed for user {user} from {ip}",
        ],
        warning: &[
            "Cache miss ratio high on user-profile cache: {pct}%",
            "Slow query on users table: {ms} ms",
        ],
        error: &[
            "Failed to load profile for user {user}: database timeout after {ms} ms",
            "Redis connection reset by peer {ip}",
            "GET /v1/users/{user} {status} after {ms} ms",
        ],
    },
    Service {
        name: "auth-service",
        team: "identity",
        weight: 12,
        hosts: &[
            host("auth-prod-01", "us-east-1"),
            host("auth-prod-02", "us-east-1"),
            host("auth-prod-03", "eu-west-1"),
        ],
        staging_host: "auth-stg-01",
        version: (5, 0, 3),
        latency_ms: 30.0,
        requests_per_sec: 800.0,
        info: &[
            "Login succeeded for user {user} from {ip}",
            "Token issued for client {client}, expires in 3600 s",
            "Signing keys refreshed in {ms} ms",
        ],
        warning: &[
            "Repeated failed logins for user {user} from {ip}: {n} attempts",
            "Token validation slow: {ms} ms",
        ],
        error: &[
            "Token signing failed: key service returned {status}",
            "LDAP bind to {ip} timed out after {ms} ms",
            "Login failed for user {user}: session store unavailable",
        ],
    },
    Service {
        name: "inventory-service",
        team: "fulfilment",
        weight: 10,
        hosts: &[
            host("inv-prod-01", "us-east-1"),
            host("inv-prod-02", "eu-west-1"),
        ],
        staging_host: "inv-stg-01",
        version: (2, 3, 9),
        latency_ms: 35.0,
        requests_per_sec: 450.0,
        info: &[
            "Reserved {n} units of {sku} for order {order}",
            "Stock level for {sku} updated to {n}",
            "Warehouse sync completed in {ms} ms",
        ],
        warning: &[
            "Low stock for {sku}: {n} units remaining",
            "Reservation lock contention on {sku}: waited {ms} ms",
        ],
        error: &[
            "Reservation failed for {sku}: deadlock detected after {ms} ms",
            "Warehouse API returned {status} for {sku}",
        ],
    },
    Service {
        name: "search-service",
        team: "discovery",
        weight: 12,
        hosts: &[
            host("search-prod-01", "us-east-1"),
            host("search-prod-02", "us-east-1"),
            host("search-prod-03", "eu-west-1"),
            host("search-prod-04", "eu-west-1"),
        ],
        staging_host: "search-stg-01",
        version: (7, 1, 0),
        latency_ms: 60.0,
        requests_per_sec: 1100.0,
        info: &[
            "Query served in {ms} ms with {n} hits",
            "Index refresh completed in {ms} ms",
            "Autocomplete served in {ms} ms for client {client}",
        ],
        warning: &[
            "Slow query: {ms} ms for {n} terms",
            "Shard relocation in progress: {n} shards moving",
        ],
        error: &[
            "Search cluster node {ip} unreachable after {ms} ms",
            "Query failed: index products returned {status}",
        ],
    },
    Service {
        name: "notification-service",
        team: "engagement",
        weight: 7,
        hosts: &[
            host("notify-prod-01", "us-east-1"),
            host("notify-prod-02", "eu-west-1"),
        ],
        staging_host: "notify-stg-01",
        version: (1, 9, 4),
        latency_ms: 90.0,
        requests_per_sec: 150.0,
        info: &[
            "Order confirmation email sent to user {user} in {ms} ms",
            "Push notification delivered to {n} devices",
            "SMS queued for user {user}",
        ],
        warning: &[
            "Email provider throttling: {n} messages deferred",
            "Notification queue depth {n} above threshold",
        ],
        error: &[
            "SMTP relay {ip} refused connection: {status}",
            "Push provider returned {status} for a batch of {n} messages",
        ],
    },
];

const PATHS: [&str; 6] = [
    "/api/v1/orders",
    "/api/v1/payments",
    "/api/v1/users/me",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/inventory",
];

const DEPLOY_TEMPLATES: [&str; 2] = [
    "Deployed {service} {version} to {environment}: rolling update, {hosts} of {hosts} hosts healthy",
    "Rolling deployment of {service} {version} completed in {seconds} s",
];

/// The names of the simulated services.
pub fn service_names() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().map(|s| s.name)
}

// ---------------------------------------------------------------------------------------
// The burst schedule, shared by events and metrics.

/// A burst in progress at some instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ActiveBurst {
    window: u64,
    service: usize,
    template: usize,
    /// Start and end relative to the generator's origin, milliseconds.
    start: i64,
    end: i64,
}

#[derive(Clone, Debug)]
struct BurstSchedule {
    every: i64,
    duration: i64,
    lead: i64,
    error_rate: f64,
    seed: u64,
}

impl BurstSchedule {
    fn new(cfg: &BurstConfig, seed: u64) -> Option<Self> {
        let every = i64::try_from(cfg.every.as_millis()).ok()?.max(2);
        let half = every / 2;
        Some(Self {
            every,
            duration: i64::try_from(cfg.duration.as_millis())
                .unwrap_or(half)
                .clamp(1, half),
            lead: i64::try_from(cfg.deploy_lead.as_millis())
                .unwrap_or(half)
                .clamp(0, half),
            error_rate: clamp_rate(cfg.error_rate),
            seed,
        })
    }

    fn window_of(&self, elapsed: i64) -> u64 {
        u64::try_from(elapsed.max(0) / self.every).unwrap_or(0)
    }

    /// The burst of period `window` (whether or not it is running).
    fn burst(&self, window: u64) -> ActiveBurst {
        let h = splitmix64(self.seed ^ window.wrapping_add(1).wrapping_mul(0xA24B_AED4_963E_E407));
        let service = (h % SERVICES.len() as u64) as usize;
        let template = ((h >> 32) % SERVICES[service].error.len() as u64) as usize;
        let start = i64::try_from(window).unwrap_or(i64::MAX / 4) * self.every + self.every / 2;
        ActiveBurst {
            window,
            service,
            template,
            start,
            end: start + self.duration,
        }
    }

    /// The burst running at `elapsed`, if any.
    fn active(&self, elapsed: i64) -> Option<ActiveBurst> {
        let b = self.burst(self.window_of(elapsed));
        (b.start..b.end).contains(&elapsed).then_some(b)
    }

    /// When the deployment preceding the burst of `window` happens.
    fn deploy_at(&self, window: u64) -> i64 {
        self.burst(window).start - self.lead
    }
}

pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn clamp_rate(r: f64) -> f64 {
    if r.is_finite() {
        r.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// A standard normal draw (Box–Muller).
pub(crate) fn normal(rng: &mut StdRng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A log-normal draw with the given median.
pub(crate) fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * normal(rng)).exp()
}

pub(crate) fn pick<T: Copy>(rng: &mut StdRng, items: &[T]) -> T {
    items[rng.random_range(0..items.len())]
}

fn pick_service(rng: &mut StdRng) -> usize {
    let total: u32 = SERVICES.iter().map(|s| s.weight).sum();
    let mut x = rng.random_range(0..total);
    for (i, s) in SERVICES.iter().enumerate() {
        if x < s.weight {
            return i;
        }
        x -= s.weight;
    }
    SERVICES.len() - 1
}

// ---------------------------------------------------------------------------------------
// Events.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Info,
    Warning,
    Error,
    Deployment,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Info => "INFO",
            Kind::Warning => "WARNING",
            Kind::Error => "ERROR",
            Kind::Deployment => "DEPLOYMENT",
        }
    }
}

/// One event as written; borrowed so nothing is allocated per event but the text.
#[derive(Serialize)]
struct EventOut<'a> {
    event_id: EventId<'a>,
    service_name: &'static str,
    event_type: &'static str,
    timestamp: i64,
    environment: &'static str,
    details: &'a str,
    severity: &'static str,
    source: &'static str,
    host: &'static str,
    metadata: EventMetadata<'a>,
    tags: EventTags,
}

struct EventId<'a> {
    run_id: &'a str,
    seq: u64,
}

impl Serialize for EventId<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}-{}", self.run_id, self.seq))
    }
}

#[derive(Serialize)]
struct EventMetadata<'a> {
    region: &'static str,
    version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    latency_ms: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_code: Option<u16>,
    trace_id: &'a str,
}

#[derive(Serialize)]
struct EventTags {
    team: &'static str,
}

/// Deterministic generator of system events.
///
/// Each event is a JSON object in the input shape of `schemas/system_event.schema.json`:
/// id `{run_id}-{seq}`, one of eight services (weighted by traffic) and one of its hosts,
/// type `INFO`, `WARNING` or `ERROR` by the configured rates, a `DEPLOYMENT` now and then
/// (and one before every burst, bumping the service's version), a severity consistent with
/// the type, text from per-service templates with variable parts, and metadata (region,
/// version, latency, status code, trace id). Output depends only on the seed and on the
/// `now_ms` values passed in; bursts and deployments are timed from the first `now_ms`.
///
/// ```
/// use sightline_sim::{EventGenerator, GeneratorConfig};
///
/// let mut g = EventGenerator::new(GeneratorConfig::default(), 7);
/// let mut body = Vec::new();
/// g.write_batch(1_700_000_000_000, 3, &mut body).expect("serializable");
/// let events: Vec<serde_json::Value> = serde_json::from_slice(&body).expect("an array");
/// assert_eq!(events.len(), 3);
/// assert_eq!(events[0]["event_id"], "sim-0");
/// ```
#[derive(Debug)]
pub struct EventGenerator {
    run_id: String,
    error_rate: f64,
    warning_rate: f64,
    staging_rate: f64,
    deploy_every: Option<i64>,
    schedule: Option<BurstSchedule>,
    rng: StdRng,
    seq: u64,
    origin_ms: Option<i64>,
    /// Current version of each service, and its text.
    versions: Vec<((u32, u32, u32), String)>,
    /// Elapsed time of the next routine deployment.
    next_deploy: i64,
    /// The last period whose pre-burst deployment was emitted.
    deployed_window: Option<u64>,
    /// The last period whose burst was recorded.
    recorded_window: Option<u64>,
    bursts: Vec<Burst>,
    counts: EventCounts,
    details: String,
}

impl EventGenerator {
    /// A generator of the events described by `config`, drawing from `seed`.
    pub fn new(config: GeneratorConfig, seed: u64) -> Self {
        let error_rate = clamp_rate(config.error_rate);
        let deploy_every = config
            .deploy_every
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .filter(|&ms| ms > 0);
        Self {
            run_id: config.run_id,
            error_rate,
            warning_rate: clamp_rate(config.warning_rate).min(1.0 - error_rate),
            staging_rate: clamp_rate(config.staging_rate),
            next_deploy: deploy_every.unwrap_or(i64::MAX),
            deploy_every,
            schedule: config
                .bursts
                .as_ref()
                .and_then(|b| BurstSchedule::new(b, seed)),
            rng: StdRng::seed_from_u64(seed),
            seq: 0,
            origin_ms: None,
            versions: SERVICES
                .iter()
                .map(|s| (s.version, version_text(s.version)))
                .collect(),
            deployed_window: None,
            recorded_window: None,
            bursts: Vec::new(),
            counts: EventCounts::default(),
            details: String::with_capacity(160),
        }
    }

    /// Appends a JSON array of `n` events stamped `now_ms` to `out` (cleared first).
    pub fn write_batch(
        &mut self,
        now_ms: i64,
        n: usize,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        write_array(out, n, |out| self.write_event(now_ms, out))
    }

    /// Appends one event (a JSON object) stamped `now_ms` to `out`.
    pub fn write_event(&mut self, now_ms: i64, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let mut trace = [0u8; 32];
        let seq = self.seq;
        self.seq += 1;
        let origin = *self.origin_ms.get_or_insert(now_ms);
        let elapsed = now_ms.saturating_sub(origin);
        let burst = self.schedule.as_ref().and_then(|s| s.active(elapsed));
        // Deploy first, so a burst records the version it runs on even when no event fell
        // between the deployment time and the burst's start.
        let deployment = self.due_deployment(elapsed);
        if let Some(b) = burst {
            self.record_burst(origin, b);
        }
        let trace_id = self.trace_id(&mut trace);
        if let Some((service, previous)) = deployment {
            return self.write_deployment(seq, now_ms, service, &previous, trace_id, out);
        }

        let service_ix = pick_service(&mut self.rng);
        let service = &SERVICES[service_ix];
        let staging = self.rng.random_bool(self.staging_rate);
        let bursting = burst.filter(|b| b.service == service_ix && !staging);
        let error_rate = bursting.map_or(self.error_rate, |_| {
            self.schedule
                .as_ref()
                .map_or(self.error_rate, |s| s.error_rate)
        });
        let warning_rate = self.warning_rate.min(1.0 - error_rate);
        let roll: f64 = self.rng.random();
        let kind = if roll < error_rate {
            Kind::Error
        } else if roll < error_rate + warning_rate {
            Kind::Warning
        } else {
            Kind::Info
        };
        let (status, latency) = self.status_and_latency(kind, service);
        let severity = match kind {
            Kind::Error
                if self
                    .rng
                    .random_bool(if bursting.is_some() { 0.3 } else { 0.1 }) =>
            {
                "critical"
            }
            Kind::Error => "high",
            Kind::Warning => "medium",
            _ if self.rng.random_bool(0.15) => "low",
            _ => "info",
        };
        let template = match (kind, bursting) {
            // Most of a burst's errors are one problem, so they share a fingerprint.
            (Kind::Error, Some(b)) if self.rng.random_bool(0.8) => service.error[b.template],
            (Kind::Error, _) => pick(&mut self.rng, service.error),
            (Kind::Warning, _) => pick(&mut self.rng, service.warning),
            _ => pick(&mut self.rng, service.info),
        };
        let mut details = std::mem::take(&mut self.details);
        details.clear();
        self.expand(template, status, latency, &mut details);
        let host = if staging {
            Host {
                name: service.staging_host,
                region: "us-east-1",
            }
        } else {
            let h = &service.hosts[self.rng.random_range(0..service.hosts.len())];
            Host {
                name: h.name,
                region: h.region,
            }
        };
        self.count(kind);
        let event = EventOut {
            event_id: EventId {
                run_id: &self.run_id,
                seq,
            },
            service_name: service.name,
            event_type: kind.as_str(),
            timestamp: now_ms,
            environment: if staging { "STAGING" } else { "PRODUCTION" },
            details: &details,
            severity,
            source: SOURCE,
            host: host.name,
            metadata: EventMetadata {
                region: host.region,
                version: &self.versions[service_ix].1,
                previous_version: None,
                latency_ms: Some(latency),
                status_code: Some(status),
                trace_id,
            },
            tags: EventTags { team: service.team },
        };
        let result = serde_json::to_writer(&mut *out, &event);
        self.details = details;
        result
    }

    /// One event as a JSON value, stamped with the current time. Convenient for tests and
    /// benchmarks; the driver uses [`write_batch`](Self::write_batch).
    pub fn next_event(&mut self) -> serde_json::Value {
        self.next_event_at(now_ms())
    }

    /// One event as a JSON value, stamped `now_ms`.
    pub fn next_event_at(&mut self, now_ms: i64) -> serde_json::Value {
        let mut buf = Vec::with_capacity(512);
        match self.write_event(now_ms, &mut buf) {
            Ok(()) => serde_json::from_slice(&buf).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        }
    }

    /// The bursts that have started so far (ground truth), oldest first.
    pub fn bursts(&self) -> &[Burst] {
        &self.bursts
    }

    /// How many events of each type have been generated.
    pub fn counts(&self) -> EventCounts {
        self.counts
    }

    /// The `run_id` prefix of the event ids.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    fn count(&mut self, kind: Kind) {
        let c = match kind {
            Kind::Info => &mut self.counts.info,
            Kind::Warning => &mut self.counts.warning,
            Kind::Error => &mut self.counts.error,
            Kind::Deployment => &mut self.counts.deployment,
        };
        *c += 1;
    }

    fn record_burst(&mut self, origin: i64, b: ActiveBurst) {
        if self.recorded_window.is_some_and(|w| w >= b.window) {
            return;
        }
        self.recorded_window = Some(b.window);
        let service = &SERVICES[b.service];
        self.bursts.push(Burst {
            service: service.name,
            version: self.versions[b.service].1.clone(),
            error_template: service.error[b.template],
            started_at_ms: origin + b.start,
            ended_at_ms: origin + b.end,
        });
    }

    /// The service to deploy now, if a deployment is due (the one preceding a burst first,
    /// then a routine one), with its version bumped; returns the service and the version it
    /// replaced.
    fn due_deployment(&mut self, elapsed: i64) -> Option<(usize, String)> {
        let mut due = None;
        if let Some(s) = &self.schedule {
            let window = s.window_of(elapsed);
            // The burst of this period, once its deployment time has come and until it ends.
            let b = s.burst(window);
            if elapsed >= s.deploy_at(window)
                && elapsed < b.end
                && self.deployed_window.is_none_or(|w| w < window)
            {
                self.deployed_window = Some(window);
                due = Some(b.service);
            }
        }
        if due.is_none() && elapsed >= self.next_deploy {
            let every = self.deploy_every.unwrap_or(i64::MAX);
            self.next_deploy = (elapsed / every).saturating_add(1).saturating_mul(every);
            due = Some(self.rng.random_range(0..SERVICES.len()));
        }
        let service = due?;
        let (old, old_text) = self.versions[service].clone();
        let new = if self.rng.random_bool(0.2) {
            (old.0, old.1 + 1, 0)
        } else {
            (old.0, old.1, old.2 + 1)
        };
        self.versions[service] = (new, version_text(new));
        Some((service, old_text))
    }

    fn write_deployment(
        &mut self,
        seq: u64,
        now_ms: i64,
        service_ix: usize,
        previous_version: &str,
        trace_id: &str,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        let service = &SERVICES[service_ix];
        let template = pick(&mut self.rng, &DEPLOY_TEMPLATES);
        let seconds = self.rng.random_range(40..240);
        let mut details = std::mem::take(&mut self.details);
        details.clear();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            details.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            match &rest[open + 1..open + close] {
                "service" => details.push_str(service.name),
                "version" => details.push_str(&self.versions[service_ix].1),
                "environment" => details.push_str("production"),
                "hosts" => {
                    let _ = write!(details, "{}", service.hosts.len());
                }
                "seconds" => {
                    let _ = write!(details, "{seconds}");
                }
                other => {
                    details.push('{');
                    details.push_str(other);
                    details.push('}');
                }
            }
            rest = &rest[open + close + 1..];
        }
        details.push_str(rest);
        self.count(Kind::Deployment);
        let host = &service.hosts[0];
        let event = EventOut {
            event_id: EventId {
                run_id: &self.run_id,
                seq,
            },
            service_name: service.name,
            event_type: Kind::Deployment.as_str(),
            timestamp: now_ms,
            environment: "PRODUCTION",
            details: &details,
            severity: "info",
            source: SOURCE,
            host: host.name,
            metadata: EventMetadata {
                region: host.region,
                version: &self.versions[service_ix].1,
                previous_version: Some(previous_version),
                latency_ms: None,
                status_code: None,
                trace_id,
            },
            tags: EventTags { team: service.team },
        };
        let result = serde_json::to_writer(&mut *out, &event);
        self.details = details;
        result
    }

    fn status_and_latency(&mut self, kind: Kind, service: &Service) -> (u16, u32) {
        let rng = &mut self.rng;
        let (status, latency) = match kind {
            Kind::Error => {
                let status = pick(rng, &[500, 500, 502, 503, 504, 504]);
                let latency = if status == 504 {
                    rng.random_range(3_000.0..30_000.0)
                } else {
                    lognormal(rng, service.latency_ms * 8.0, 0.6)
                };
                (status, latency)
            }
            Kind::Warning => (
                pick(rng, &[200, 200, 200, 429, 408]),
                lognormal(rng, service.latency_ms * 6.0, 0.5),
            ),
            _ => (
                pick(rng, &[200, 200, 200, 200, 201, 204]),
                lognormal(rng, service.latency_ms, 0.4),
            ),
        };
        (status, latency.clamp(1.0, 120_000.0) as u32)
    }

    fn trace_id<'b>(&mut self, buf: &'b mut [u8; 32]) -> &'b str {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let (a, b): (u64, u64) = (self.rng.random(), self.rng.random());
        for (i, byte) in buf.iter_mut().enumerate() {
            let word = if i < 16 { a } else { b };
            *byte = HEX[((word >> ((i % 16) * 4)) & 0xf) as usize];
        }
        std::str::from_utf8(buf).unwrap_or_default()
    }

    /// Fills a template's placeholders.
    fn expand(&mut self, template: &str, status: u16, latency: u32, out: &mut String) {
        let rng = &mut self.rng;
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let _ = match &rest[open + 1..open + close] {
                "ms" => write!(out, "{latency}"),
                "status" => write!(out, "{status}"),
                "order" => write!(out, "ORD-{:08X}", rng.random::<u32>()),
                "user" => write!(out, "u-{}", rng.random_range(100_000..1_000_000)),
                "ip" => write!(
                    out,
                    "10.{}.{}.{}",
                    rng.random_range(0..=255),
                    rng.random_range(0..=255),
                    rng.random_range(1..=254)
                ),
                "n" => write!(out, "{}", rng.random_range(2..=50)),
                "sku" => write!(out, "SKU-{}", rng.random_range(10_000..100_000)),
                "amount" => write!(out, "{:.2}", rng.random_range(5.0..500.0)),
                "pct" => write!(out, "{}", rng.random_range(35..=95)),
                "path" => write!(out, "{}", pick(rng, &PATHS)),
                "upstream" => write!(
                    out,
                    "{}",
                    SERVICES[rng.random_range(1..SERVICES.len())].name
                ),
                "client" => write!(out, "client-{:04x}", rng.random::<u16>()),
                "attempt" => write!(out, "{}", rng.random_range(2..=3)),
                other => write!(out, "{{{other}}}"),
            };
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
    }
}

fn version_text((major, minor, patch): (u32, u32, u32)) -> String {
    format!("v{major}.{minor}.{patch}")
}

/// The wall clock in epoch milliseconds.

// ---------------------------------------------------------------------------------------
// Metrics.

#[derive(Serialize)]
struct MetricOut {
    service_name: &'static str,
    metric_type: &'static str,
    value: f64,
    tags: MetricTags,
    timestamp: i64,
}

#[derive(Serialize)]
struct MetricTags {
    host: &'static str,
    region: &'static str,
    environment: &'static str,
}

#[derive(Clone, Debug)]
struct Series {
    service: usize,
    host: usize,
    metric: usize,
    /// Slowly wandering level for gauges (cpu, memory).
    level: f64,
}

/// Deterministic generator of metric points for every (service, host, metric type) series,
/// round-robin; values wander with noise and react to the same bursts as the events.
#[derive(Debug)]
pub struct MetricGenerator {
    error_rate: f64,
    schedule: Option<BurstSchedule>,
    rng: StdRng,
    origin_ms: Option<i64>,
    series: Vec<Series>,
    cursor: usize,
}

impl MetricGenerator {
    /// A generator for the services of `config`, following its burst schedule, drawing
    /// from `seed` (use the event generator's seed to get the same bursts).
    pub fn new(config: &GeneratorConfig, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed ^ 0x006d_6574_7269_6373);
        let mut series = Vec::new();
        for (si, s) in SERVICES.iter().enumerate() {
            for hi in 0..s.hosts.len() {
                for (mi, metric_type) in METRIC_TYPES.iter().enumerate() {
                    let level = match *metric_type {
                        "cpu_usage" => rng.random_range(15.0..55.0),
                        "memory_usage" => rng.random_range(40.0..75.0),
                        _ => 0.0,
                    };
                    series.push(Series {
                        service: si,
                        host: hi,
                        metric: mi,
                        level,
                    });
                }
            }
        }
        Self {
            error_rate: clamp_rate(config.error_rate),
            schedule: config
                .bursts
                .as_ref()
                .and_then(|b| BurstSchedule::new(b, seed)),
            rng,
            origin_ms: None,
            series,
            cursor: 0,
        }
    }

    /// How many series there are (one point each per round).
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Appends a JSON array of `n` metric points stamped `now_ms` to `out` (cleared first).
    pub fn write_batch(
        &mut self,
        now_ms: i64,
        n: usize,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        write_array(out, n, |out| self.write_point(now_ms, out))
    }

    /// Appends one metric point (a JSON object) stamped `now_ms` to `out`.
    pub fn write_point(&mut self, now_ms: i64, out: &mut Vec<u8>) -> serde_json::Result<()> {
        let origin = *self.origin_ms.get_or_insert(now_ms);
        let burst = self.schedule.as_ref().and_then(|s| {
            s.active(now_ms.saturating_sub(origin))
                .map(|b| (b, s.error_rate))
        });
        let ix = self.cursor % self.series.len().max(1);
        self.cursor = self.cursor.wrapping_add(1);
        let Some(series) = self.series.get_mut(ix) else {
            return Ok(());
        };
        let service = &SERVICES[series.service];
        let host = &service.hosts[series.host];
        let bursting = burst.filter(|(b, _)| b.service == series.service);
        let rng = &mut self.rng;
        let metric_type = METRIC_TYPES[series.metric];
        let value = match metric_type {
            "cpu_usage" => {
                series.level = (series.level + normal(rng) * 1.5).clamp(5.0, 85.0);
                let surge = if bursting.is_some() { 35.0 } else { 0.0 };
                (series.level + surge + normal(rng) * 3.0).clamp(0.0, 100.0)
            }
            "memory_usage" => {
                series.level = (series.level + normal(rng) * 0.3).clamp(30.0, 88.0);
                let surge = if bursting.is_some() { 8.0 } else { 0.0 };
                (series.level + surge + normal(rng)).clamp(0.0, 100.0)
            }
            "latency_ms" => {
                let factor = if bursting.is_some() { 8.0 } else { 1.0 };
                lognormal(rng, service.latency_ms * factor, 0.25)
            }
            "error_rate" => match bursting {
                Some((_, rate)) => (rate + normal(rng) * 0.03).clamp(0.0, 1.0),
                None => (self.error_rate * (1.0 + normal(rng) * 0.2)).clamp(0.0, 1.0),
            },
            _ => {
                let per_host = service.requests_per_sec / service.hosts.len() as f64;
                (per_host * (1.0 + normal(rng) * 0.08)).max(0.0)
            }
        };
        let value = (value * 100.0).round() / 100.0;
        let point = MetricOut {
            service_name: service.name,
            metric_type,
            value: if value.is_finite() { value } else { 0.0 },
            tags: MetricTags {
                host: host.name,
                region: host.region,
                environment: "production",
            },
            timestamp: now_ms,
        };
        serde_json::to_writer(&mut *out, &point)
    }
}

/// Writes a JSON array of `n` items produced by `item` into `out` (cleared first).
fn write_array(
    out: &mut Vec<u8>,
    n: usize,
    mut item: impl FnMut(&mut Vec<u8>) -> serde_json::Result<()>,
) -> serde_json::Result<()> {
    out.clear();
    out.push(b'[');
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        item(out)?;
    }
    out.push(b']');
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::{HashMap, HashSet};

    use sightline_model::{IngestContext, Severity, SourceType, decode};

    use super::*;

    const T0: i64 = 1_700_000_000_000;

    fn no_bursts() -> GeneratorConfig {
        GeneratorConfig {
            bursts: None,
            deploy_every: None,
            ..GeneratorConfig::default()
        }
    }

    fn batch(g: &mut EventGenerator, now: i64, n: usize) -> Vec<serde_json::Value> {
        let mut body = Vec::new();
        g.write_batch(now, n, &mut body).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn same_seed_same_traffic_other_seed_other_traffic() {
        let run = |seed| {
            let mut g = EventGenerator::new(GeneratorConfig::default(), seed);
            let mut m = MetricGenerator::new(&GeneratorConfig::default(), seed);
            let (mut events, mut metrics) = (Vec::new(), Vec::new());
            let mut body = Vec::new();
            for second in 0..90 {
                let now = T0 + second * 1000;
                g.write_batch(now, 50, &mut body).unwrap();
                events.extend_from_slice(&body);
                m.write_batch(now, 20, &mut body).unwrap();
                metrics.extend_from_slice(&body);
            }
            (events, metrics, g.bursts().to_vec())
        };
        let a = run(42);
        assert_eq!(a, run(42));
        let b = run(43);
        assert_ne!(a.0, b.0);
        assert_ne!(a.1, b.1);
    }

    #[test]
    fn every_event_validates_and_is_self_consistent() {
        let mut g = EventGenerator::new(
            GeneratorConfig {
                run_id: "run7".into(),
                ..GeneratorConfig::default()
            },
            7,
        );
        let mut body = Vec::new();
        let mut ids = HashSet::new();
        let mut services = HashSet::new();
        let mut types = HashSet::new();
        let mut seq = 0u64;
        // Two simulated minutes, so routine and pre-burst deployments and bursts all occur.
        for step in 0..240 {
            let now = T0 + step * 500;
            g.write_batch(now, 100, &mut body).unwrap();
            let ctx = IngestContext::new(SourceType::Http, now, "t");
            let items = decode::split_batch(&body, decode::BodyShape::Array).unwrap();
            assert_eq!(items.len(), 100);
            for item in items {
                let ev = decode::system_event(item, &ctx)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(item)));
                assert_eq!(ev.event_id, format!("run7-{seq}"));
                seq += 1;
                assert!(ids.insert(ev.event_id.clone()));
                assert_eq!(ev.timestamp, now);
                assert_eq!(ev.source, SOURCE);
                assert!(
                    !ev.details.contains('{'),
                    "unfilled template: {}",
                    ev.details
                );
                assert!(ev.host.is_some());
                assert!(ev.metadata["trace_id"].as_str().unwrap().len() == 32);
                assert!(ev.metadata["version"].as_str().unwrap().starts_with('v'));
                match ev.event_type.as_str() {
                    "ERROR" => assert!(matches!(ev.severity, Severity::High | Severity::Critical)),
                    "WARNING" => assert_eq!(ev.severity, Severity::Medium),
                    "INFO" => assert!(matches!(ev.severity, Severity::Info | Severity::Low)),
                    "DEPLOYMENT" => {
                        assert_eq!(ev.severity, Severity::Info);
                        assert!(ev.metadata["previous_version"].is_string());
                        assert!(
                            ev.details
                                .contains(ev.metadata["version"].as_str().unwrap())
                        );
                    }
                    other => panic!("unexpected type {other}"),
                }
                if ev.event_type != "DEPLOYMENT" {
                    assert!(ev.metadata["latency_ms"].as_u64().unwrap() >= 1);
                    let status = ev.metadata["status_code"].as_u64().unwrap();
                    if ev.event_type == "ERROR" {
                        assert!(status >= 500, "{status}");
                    }
                }
                assert!(matches!(ev.environment.as_str(), "PRODUCTION" | "STAGING"));
                services.insert(ev.service_name.clone());
                types.insert(ev.event_type.clone());
            }
        }
        assert_eq!(services.len(), 8);
        assert_eq!(types.len(), 4, "{types:?}");
        assert_eq!(g.counts().total(), seq);
        let c = g.counts();
        assert!(c.deployment >= 4 && c.deployment <= 12, "{c:?}");
    }

    #[test]
    fn error_rate_matches_the_configuration() {
        for rate in [0.0, 0.05, 0.2] {
            let mut g = EventGenerator::new(
                GeneratorConfig {
                    error_rate: rate,
                    ..no_bursts()
                },
                11,
            );
            let n = 50_000usize;
            let mut body = Vec::new();
            g.write_batch(T0, n, &mut body).unwrap();
            let errors = std::str::from_utf8(&body)
                .unwrap()
                .matches(r#""event_type":"ERROR""#)
                .count();
            let observed = errors as f64 / n as f64;
            // The standard error at 0.2 is 0.0018; 0.008 is over four of them.
            assert!(
                (observed - rate).abs() < 0.008,
                "rate {rate}: observed {observed}"
            );
            assert_eq!(g.counts().error, errors as u64);
            assert_eq!(g.counts().deployment, 0);
        }
        let mut g = EventGenerator::new(
            GeneratorConfig {
                staging_rate: 0.0,
                ..no_bursts()
            },
            3,
        );
        assert!(
            batch(&mut g, T0, 2000)
                .iter()
                .all(|e| e["environment"] == "PRODUCTION")
        );
    }

    #[test]
    fn bursts_happen_on_schedule_after_a_deployment() {
        let cfg = GeneratorConfig {
            deploy_every: None,
            ..GeneratorConfig::default()
        };
        let mut g = EventGenerator::new(cfg, 5);
        let mut per_second: Vec<Vec<serde_json::Value>> = Vec::new();
        for second in 0..120 {
            per_second.push(batch(&mut g, T0 + second * 1000, 400));
        }
        let bursts = g.bursts().to_vec();
        // Default schedule: one 5 s burst in the middle of every 30 s period.
        let starts: Vec<i64> = bursts.iter().map(|b| b.started_at_ms - T0).collect();
        assert_eq!(starts, vec![15_000, 45_000, 75_000, 105_000]);
        for b in &bursts {
            assert_eq!(b.ended_at_ms - b.started_at_ms, 5_000);
            let in_burst = |e: &serde_json::Value| {
                let ts = e["timestamp"].as_i64().unwrap();
                (b.started_at_ms..b.ended_at_ms).contains(&ts)
            };
            let own: Vec<&serde_json::Value> = per_second
                .iter()
                .flatten()
                .filter(|e| {
                    in_burst(e)
                        && e["service_name"] == b.service
                        && e["environment"] == "PRODUCTION"
                })
                .collect();
            let errors = own.iter().filter(|e| e["event_type"] == "ERROR").count();
            let ratio = errors as f64 / own.len() as f64;
            assert!(own.len() > 50, "{}", own.len());
            assert!((0.35..0.65).contains(&ratio), "{}: {ratio}", b.service);
            // The burst's own template dominates its errors.
            let prefix = b.error_template.split('{').next().unwrap();
            let matching = own
                .iter()
                .filter(|e| e["event_type"] == "ERROR")
                .filter(|e| e["details"].as_str().unwrap().starts_with(prefix))
                .count();
            assert!(matching * 10 >= errors * 7, "{matching} of {errors}");
            // Its version was deployed just before.
            let deploy = per_second
                .iter()
                .flatten()
                .find(|e| {
                    e["event_type"] == "DEPLOYMENT"
                        && e["service_name"] == b.service
                        && e["metadata"]["version"] == b.version.as_str()
                })
                .unwrap_or_else(|| panic!("no deployment before {b:?}"));
            assert_eq!(
                deploy["timestamp"].as_i64().unwrap(),
                b.started_at_ms - 2_000
            );
            // Errors carry the new version.
            assert!(
                own.iter()
                    .all(|e| e["metadata"]["version"] == b.version.as_str())
            );
        }
        // Outside bursts the error rate is the baseline.
        let burst_windows: Vec<(i64, i64)> = bursts
            .iter()
            .map(|b| (b.started_at_ms, b.ended_at_ms))
            .collect();
        let calm: Vec<&serde_json::Value> = per_second
            .iter()
            .flatten()
            .filter(|e| {
                let ts = e["timestamp"].as_i64().unwrap();
                !burst_windows.iter().any(|(s, e)| (*s..*e).contains(&ts))
            })
            .collect();
        let errors = calm.iter().filter(|e| e["event_type"] == "ERROR").count();
        let ratio = errors as f64 / calm.len() as f64;
        assert!((0.04..0.06).contains(&ratio), "{ratio}");
    }

    #[test]
    fn metrics_validate_and_react_to_bursts() {
        let cfg = GeneratorConfig::default();
        let mut m = MetricGenerator::new(&cfg, 5);
        let g = {
            let mut g = EventGenerator::new(cfg.clone(), 5);
            for second in 0..20 {
                let _ = g.next_event_at(T0 + second * 1000);
            }
            g
        };
        let burst = g.bursts()[0].clone();
        let series = m.series_count();
        assert_eq!(series, 23 * METRIC_TYPES.len());
        let mut body = Vec::new();
        let mut error_rates: HashMap<(bool, bool), Vec<f64>> = HashMap::new();
        for second in 0..20 {
            let now = T0 + second * 1000;
            m.write_batch(now, series, &mut body).unwrap();
            let ctx = IngestContext::new(SourceType::Metrics, now, "t");
            let items = decode::split_batch(&body, decode::BodyShape::Array).unwrap();
            assert_eq!(items.len(), series);
            let mut seen = HashSet::new();
            for item in items {
                let p = decode::metric(item, &ctx)
                    .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(item)));
                assert!(seen.insert((
                    p.service_name.clone(),
                    p.tags["host"].clone(),
                    p.metric_type.clone()
                )));
                assert!(p.value >= 0.0);
                if matches!(p.metric_type.as_str(), "cpu_usage" | "memory_usage") {
                    assert!(p.value <= 100.0);
                }
                if p.metric_type == "error_rate" {
                    let bursting = (burst.started_at_ms..burst.ended_at_ms).contains(&now);
                    error_rates
                        .entry((bursting, p.service_name == burst.service))
                        .or_default()
                        .push(p.value);
                }
            }
        }
        let mean = |k| {
            let v: &Vec<f64> = &error_rates[&k];
            v.iter().sum::<f64>() / v.len() as f64
        };
        assert!(mean((true, true)) > 0.4, "{}", mean((true, true)));
        assert!(mean((false, true)) < 0.1);
        assert!(mean((true, false)) < 0.1);
    }

    #[test]
    fn next_event_is_one_object() {
        let mut g = EventGenerator::new(GeneratorConfig::default(), 1);
        let e = g.next_event();
        assert_eq!(e["event_id"], "sim-0");
        assert_eq!(g.next_event()["event_id"], "sim-1");
        assert!(e["timestamp"].as_i64().unwrap() > T0);
    }
}
