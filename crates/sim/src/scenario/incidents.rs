//! A service graph with labelled faults: metrics and system events in simulated time.
//!
//! Thirteen services ([`SERVICES`]: `frontend` → `api-gateway` → `auth`, `catalog`,
//! `search`, `cart`, `checkout` → `payments`, `inventory`, `shipping`, `notification` →
//! `postgres-db`, `redis-cache`) report `latency_ms`, `error_rate`, `cpu_usage`,
//! `memory_usage` and `request_rate` every step. Traffic follows a day curve (quiet around
//! 03:00 UTC, busiest around 15:00) and flows down the graph, so a service's load is the
//! sum of its callers'; latency and CPU rise with load; a dependency's latency and errors
//! show up in its callers one step later per hop (the cascade a correlator must unwind).
//!
//! Faults ([`FaultKind`]) are injected at seeded, spaced-out times, one of each kind per
//! simulated day by default, and recorded as [`Fault`]s in the [`GroundTruth`]:
//!
//! - `cpu_hog`: CPU of one service +45 points, its latency up by half;
//! - `memory_leak`: memory of one service ramps up slowly, the GC pauses lengthen, it ends
//!   in an out-of-memory restart;
//! - `bad_deployment`: a `DEPLOYMENT` event, then `ERROR` events and `error_rate` up on that
//!   service (and, attenuated, on its callers) until a rollback deployment;
//! - `dependency_latency`: a deep dependency (`postgres-db`, `redis-cache` or `inventory`)
//!   slows down, and the slowness cascades to its callers;
//! - `traffic_spike`: three times the traffic at the edge (`frontend`), load, latency and
//!   CPU follow everywhere.
//!
//! [`Scenario`] is a pure iterator: the same seed, start, duration and step give the same
//! items, in timestamp order, as fast as the CPU allows; nothing here reads a clock.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use sightline_model::{MetricInput, ServiceNode, SystemEventInput, Topology};

use crate::generator::{SOURCE, normal, splitmix64};

/// One simulated day, milliseconds.
pub const DAY_MS: i64 = 86_400_000;
/// Fault kinds per simulated day by default (one of each).
pub const DEFAULT_FAULTS_PER_DAY: usize = 5;
/// Edge traffic (requests per second at `frontend`) averaged over a day.
pub const EDGE_RPS: f64 = 400.0;

/// What can go wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// A runaway process eats the CPU of one service.
    CpuHog,
    /// Memory of one service grows slowly until it restarts.
    MemoryLeak,
    /// A faulty release: errors right after a deployment.
    BadDeployment,
    /// A deep dependency slows down; its callers follow.
    DependencyLatency,
    /// Three times the traffic at the edge.
    TrafficSpike,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [Self; 5] = [
        Self::CpuHog,
        Self::MemoryLeak,
        Self::BadDeployment,
        Self::DependencyLatency,
        Self::TrafficSpike,
    ];

    /// The name used in the ground truth (`cpu_hog`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CpuHog => "cpu_hog",
            Self::MemoryLeak => "memory_leak",
            Self::BadDeployment => "bad_deployment",
            Self::DependencyLatency => "dependency_latency",
            Self::TrafficSpike => "traffic_spike",
        }
    }

    /// How long the fault lasts when the schedule leaves room for it.
    pub fn default_duration(self) -> Duration {
        Duration::from_secs(match self {
            Self::CpuHog => 20 * 60,
            Self::MemoryLeak => 3 * 3600,
            Self::BadDeployment => 30 * 60,
            Self::DependencyLatency => 30 * 60,
            Self::TrafficSpike => 15 * 60,
        })
    }
}

/// One injected fault: the label a detector's and correlator's findings are scored against.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `fault-{n}-{kind}`.
    pub id: String,
    /// What was injected.
    pub kind: FaultKind,
    /// Where it was injected.
    pub root_cause_service: String,
    /// The services whose metrics it visibly moves: the root cause first, then the others
    /// in the order the effect reaches them (nearest callers first).
    pub affected_services: Vec<String>,
    /// Start, epoch milliseconds.
    pub start_ms: i64,
    /// End (exclusive), epoch milliseconds.
    pub end_ms: i64,
    /// For `bad_deployment`: the faulty version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// Everything a scorer needs to know about a run of the scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The seed.
    pub seed: u64,
    /// First timestamp, epoch milliseconds.
    pub start_ms: i64,
    /// End (exclusive), epoch milliseconds.
    pub end_ms: i64,
    /// Metric interval, milliseconds.
    pub step_ms: i64,
    /// The service graph.
    pub topology: Topology,
    /// The faults, by start time.
    pub faults: Vec<Fault>,
}

/// Options beyond seed, start, duration and step.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentsConfig {
    /// Prefix of event ids (`{run_id}-{seq}`).
    pub run_id: String,
    /// How many faults in the whole run; `None`: one of each kind per simulated day (at
    /// least one). Kinds rotate so that every five consecutive faults have every kind.
    pub faults: Option<usize>,
    /// Routine (harmless) deployments per simulated day.
    pub routine_deployments_per_day: u32,
}

impl Default for IncidentsConfig {
    fn default() -> Self {
        Self {
            run_id: "inc".to_owned(),
            faults: None,
            routine_deployments_per_day: 3,
        }
    }
}

/// What the scenario yields.
#[derive(Clone, Debug)]
pub enum Item {
    /// A metric point, for `POST /api/v1/metrics`.
    Metric(MetricInput),
    /// A system event, for `POST /api/v1/events/batch`.
    Event(SystemEventInput),
}

impl Item {
    /// Its timestamp, epoch milliseconds.
    pub fn timestamp_ms(&self) -> i64 {
        let ts = match self {
            Self::Metric(m) => m.timestamp.as_ref(),
            Self::Event(e) => e.timestamp.as_ref(),
        };
        ts.and_then(serde_json::Value::as_i64).unwrap_or(0)
    }

    /// Appends its JSON object (the input shape the endpoints take) to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        match self {
            Self::Metric(m) => serde_json::to_writer(
                out,
                &MetricOut {
                    service_name: m.service_name.as_deref(),
                    metric_type: m.metric_type.as_deref(),
                    value: m.value.as_ref(),
                    tags: m.tags.as_ref(),
                    timestamp: m.timestamp.as_ref(),
                },
            ),
            Self::Event(e) => serde_json::to_writer(
                out,
                &EventOut {
                    event_id: e.event_id.as_deref(),
                    service_name: e.service_name.as_deref(),
                    event_type: e.event_type.as_deref(),
                    timestamp: e.timestamp.as_ref(),
                    environment: e.environment.as_deref(),
                    details: e.details.as_deref(),
                    severity: e.severity.as_deref(),
                    metadata: e.metadata.as_ref(),
                    source: e.source.as_deref(),
                    host: e.host.as_deref(),
                    tags: e.tags.as_ref(),
                },
            ),
        }
    }

    /// Its JSON object as a value.
    pub fn to_json(&self) -> serde_json::Value {
        let mut buf = Vec::new();
        match self.write_json(&mut buf) {
            Ok(()) => serde_json::from_slice(&buf).unwrap_or(serde_json::Value::Null),
            Err(_) => serde_json::Value::Null,
        }
    }
}

#[derive(Serialize)]
struct MetricOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    service_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metric_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a serde_json::Value>,
}

#[derive(Serialize)]
struct EventOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    environment: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    severity: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    host: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a BTreeMap<String, String>>,
}

// ---------------------------------------------------------------------------------------
// The service graph.

/// One service of the simulated platform.
#[derive(Debug)]
pub struct ServiceSpec {
    /// Its name.
    pub name: &'static str,
    /// `(dependency, weight)`: the weight is both the calls made to the dependency per
    /// request and the share of the dependency's latency added to this service's.
    pub depends_on: &'static [(&'static str, f64)],
    /// Own latency of a request at average load, milliseconds.
    pub latency_ms: f64,
    /// Memory use at rest, percent.
    pub memory_pct: f64,
    /// Criticality in the topology (0.1..=10).
    pub criticality: f64,
}

/// The services, callers before the services they call (a topological order).
pub static SERVICES: [ServiceSpec; 13] = [
    ServiceSpec {
        name: "frontend",
        depends_on: &[("api-gateway", 1.0)],
        latency_ms: 20.0,
        memory_pct: 45.0,
        criticality: 3.0,
    },
    ServiceSpec {
        name: "api-gateway",
        depends_on: &[
            ("auth", 0.3),
            ("catalog", 0.4),
            ("search", 0.2),
            ("cart", 0.2),
            ("checkout", 0.05),
        ],
        latency_ms: 5.0,
        memory_pct: 38.0,
        criticality: 3.0,
    },
    ServiceSpec {
        name: "checkout",
        depends_on: &[
            ("cart", 1.0),
            ("payments", 0.8),
            ("inventory", 0.8),
            ("shipping", 0.6),
            ("notification", 0.5),
        ],
        latency_ms: 30.0,
        memory_pct: 52.0,
        criticality: 3.0,
    },
    ServiceSpec {
        name: "search",
        depends_on: &[("catalog", 0.3), ("redis-cache", 0.5)],
        latency_ms: 40.0,
        memory_pct: 61.0,
        criticality: 1.0,
    },
    ServiceSpec {
        name: "cart",
        depends_on: &[("redis-cache", 1.0), ("inventory", 0.3)],
        latency_ms: 15.0,
        memory_pct: 41.0,
        criticality: 2.0,
    },
    ServiceSpec {
        name: "auth",
        depends_on: &[("redis-cache", 1.0), ("postgres-db", 0.1)],
        latency_ms: 8.0,
        memory_pct: 36.0,
        criticality: 2.5,
    },
    ServiceSpec {
        name: "catalog",
        depends_on: &[("postgres-db", 0.6), ("redis-cache", 1.0)],
        latency_ms: 25.0,
        memory_pct: 55.0,
        criticality: 1.5,
    },
    ServiceSpec {
        name: "payments",
        depends_on: &[("postgres-db", 1.0)],
        latency_ms: 120.0,
        memory_pct: 47.0,
        criticality: 3.0,
    },
    ServiceSpec {
        name: "inventory",
        depends_on: &[("postgres-db", 1.0), ("redis-cache", 0.5)],
        latency_ms: 12.0,
        memory_pct: 43.0,
        criticality: 2.0,
    },
    ServiceSpec {
        name: "shipping",
        depends_on: &[("postgres-db", 0.5)],
        latency_ms: 35.0,
        memory_pct: 39.0,
        criticality: 1.0,
    },
    ServiceSpec {
        name: "notification",
        depends_on: &[],
        latency_ms: 20.0,
        memory_pct: 33.0,
        criticality: 0.5,
    },
    ServiceSpec {
        name: "redis-cache",
        depends_on: &[],
        latency_ms: 0.8,
        memory_pct: 64.0,
        criticality: 3.0,
    },
    ServiceSpec {
        name: "postgres-db",
        depends_on: &[],
        latency_ms: 4.0,
        memory_pct: 70.0,
        criticality: 4.0,
    },
];

const N: usize = SERVICES.len();
/// Services a cpu_hog, memory_leak or bad_deployment may hit.
const APP_SERVICES: [&str; 9] = [
    "auth",
    "catalog",
    "search",
    "cart",
    "checkout",
    "payments",
    "inventory",
    "shipping",
    "notification",
];
/// Where dependency_latency strikes, and how many milliseconds it adds there.
const DEEP_DEPENDENCIES: [(&str, f64); 3] = [
    ("postgres-db", 150.0),
    ("redis-cache", 60.0),
    ("inventory", 200.0),
];
/// Baseline error rate (fraction of requests).
const BASE_ERROR_RATE: f64 = 0.002;
/// Share of a dependency's error rate that shows up in a caller, per unit of weight.
const ERROR_PROPAGATION: f64 = 0.5;
/// Error events emitted per failed request (the rest are sampled away).
const ERROR_EVENT_SAMPLING: f64 = 0.01;
/// Most error events per service and step.
const MAX_ERRORS_PER_STEP: u32 = 20;

/// The platform's dependency graph as a [`Topology`].
pub fn topology() -> Topology {
    Topology {
        services: SERVICES
            .iter()
            .map(|s| {
                (
                    s.name.to_owned(),
                    ServiceNode {
                        depends_on: s.depends_on.iter().map(|(d, _)| (*d).to_owned()).collect(),
                        criticality: s.criticality,
                    },
                )
            })
            .collect(),
    }
}

fn index_of(name: &str) -> usize {
    SERVICES.iter().position(|s| s.name == name).unwrap_or(0)
}

/// `deps[i]`: `(index, weight)` of the services `i` calls.
fn dependency_indices() -> Vec<Vec<(usize, f64)>> {
    SERVICES
        .iter()
        .map(|s| {
            s.depends_on
                .iter()
                .map(|(d, w)| (index_of(d), *w))
                .collect()
        })
        .collect()
}

/// Requests per second of every service when the edge takes `edge` (callers first).
fn propagate_rates(deps: &[Vec<(usize, f64)>], edge: f64, noise: &[f64; N]) -> [f64; N] {
    let mut rr = [0.0; N];
    rr[0] = edge;
    for i in 0..N {
        rr[i] *= 1.0 + noise[i];
        for &(d, w) in &deps[i] {
            rr[d] += rr[i] * w;
        }
    }
    rr
}

/// `impact[i]`: how much of an added `unit` at `root` reaches `i` through the graph, with
/// `factor` applied per hop (sum over call paths); `hops[i]`: the shortest distance.
fn impact(deps: &[Vec<(usize, f64)>], root: usize, factor: f64) -> ([f64; N], [Option<usize>; N]) {
    let mut imp = [0.0; N];
    let mut hops = [None; N];
    imp[root] = 1.0;
    hops[root] = Some(0);
    // Deps come after their callers, so walking backwards visits a service after
    // everything it calls.
    for i in (0..N).rev() {
        for &(d, w) in &deps[i] {
            if imp[d] > 0.0 {
                imp[i] += imp[d] * w * factor;
                if let Some(h) = hops[d] {
                    hops[i] = Some(hops[i].map_or(h + 1, |x: usize| x.min(h + 1)));
                }
            }
        }
    }
    (imp, hops)
}

/// A fault with its internal parameters.
#[derive(Clone, Debug)]
struct Injected {
    kind: FaultKind,
    root: usize,
    start: i64,
    end: i64,
    /// Strength, around 1.
    magnitude: f64,
    /// dependency_latency: milliseconds added at the root.
    added_ms: f64,
    /// bad_deployment: the error message of the faulty release.
    error_template: &'static str,
    version: String,
    previous_version: String,
}

impl Injected {
    fn active(&self, t: i64) -> bool {
        self.start <= t && t < self.end
    }
    /// 0 → 1 over `ramp_ms` from the start.
    fn ramp(&self, t: i64, ramp_ms: i64) -> f64 {
        ((t - self.start) as f64 / ramp_ms as f64).clamp(0.0, 1.0)
    }
    fn progress(&self, t: i64) -> f64 {
        ((t - self.start) as f64 / (self.end - self.start).max(1) as f64).clamp(0.0, 1.0)
    }
}

const BAD_RELEASE_ERRORS: [&str; 5] = [
    "NullPointerException in RequestHandler.process: field 'currency' is null",
    "Unhandled exception: KeyError 'discount_code' while serializing the response",
    "SQL error: column \"region_id\" does not exist",
    "Deserialization failed: unknown variant 'PENDING_REVIEW' in upstream payload",
    "panic: index out of range [3] with length 3 in pricing rules",
];

/// The incidents scenario: an iterator of [`Item`]s in timestamp order.
pub struct Scenario {
    seed: u64,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    run_id: String,
    rng: StdRng,
    deps: Vec<Vec<(usize, f64)>>,
    /// Mean request rate of each service over a day.
    mean_rr: [f64; N],
    /// Steady-state total latency of each service at average load.
    steady_latency: [f64; N],
    faults: Vec<Injected>,
    truth: GroundTruth,
    /// (timestamp, service) of harmless deployments.
    routine: Vec<(i64, usize)>,
    versions: Vec<(u32, u32, u32)>,
    /// The version a faulty release replaced, until its rollback.
    before_bad: [Option<(u32, u32, u32)>; N],
    // State carried from step to step.
    next_t: i64,
    prev_latency: [f64; N],
    prev_error: [f64; N],
    edge_noise: f64,
    cpu_noise: [f64; N],
    buffer: VecDeque<Item>,
    seq: u64,
    items: u64,
}

impl std::fmt::Debug for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scenario")
            .field("seed", &self.seed)
            .field("start_ms", &self.start_ms)
            .field("end_ms", &self.end_ms)
            .field("step_ms", &self.step_ms)
            .field("next_ms", &self.next_t)
            .field("items", &self.items)
            .finish_non_exhaustive()
    }
}

impl Scenario {
    /// The scenario from `start_ms` for `duration` of simulated time, metrics every `step`
    /// (at least 1 s), with the default [`IncidentsConfig`].
    pub fn new(seed: u64, start_ms: i64, duration: Duration, step: Duration) -> Self {
        Self::with_config(seed, start_ms, duration, step, IncidentsConfig::default())
    }

    /// Like [`new`](Self::new), with `config`.
    pub fn with_config(
        seed: u64,
        start_ms: i64,
        duration: Duration,
        step: Duration,
        config: IncidentsConfig,
    ) -> Self {
        let step_ms = i64::try_from(step.as_millis())
            .unwrap_or(i64::MAX)
            .max(1_000);
        let duration_ms = i64::try_from(duration.as_millis())
            .unwrap_or(i64::MAX / 4)
            .clamp(0, i64::MAX / 4);
        let end_ms = start_ms.saturating_add(duration_ms);
        let mut rng = StdRng::seed_from_u64(splitmix64(seed ^ 0x1c1d_e275));
        let deps = dependency_indices();
        let mean_rr = propagate_rates(&deps, EDGE_RPS, &[0.0; N]);
        let mut steady_latency = [0.0; N];
        for i in (0..N).rev() {
            steady_latency[i] = SERVICES[i].latency_ms * 1.12
                + deps[i]
                    .iter()
                    .map(|&(d, w)| w * steady_latency[d])
                    .sum::<f64>();
        }
        let mut versions: Vec<(u32, u32, u32)> = (0..N)
            .map(|i| {
                let h = splitmix64(seed ^ (i as u64 + 1));
                (
                    1 + (h % 5) as u32,
                    ((h >> 8) % 30) as u32,
                    ((h >> 16) % 10) as u32,
                )
            })
            .collect();
        let faults = schedule_faults(
            &mut rng,
            start_ms,
            duration_ms,
            step_ms,
            config.faults,
            &mut versions,
        );
        let mut routine = Vec::new();
        let days = (duration_ms as f64 / DAY_MS as f64).ceil().max(1.0) as u64;
        for _ in 0..days * u64::from(config.routine_deployments_per_day) {
            if duration_ms == 0 {
                break;
            }
            let t = start_ms + rng.random_range(0..duration_ms);
            let s = index_of(APP_SERVICES[rng.random_range(0..APP_SERVICES.len())]);
            // Never during a fault of the same service, so the faulty version stays the
            // one running until its rollback.
            if !faults
                .iter()
                .any(|f| f.root == s && f.start - 600_000 <= t && t < f.end)
            {
                routine.push((t, s));
            }
        }
        routine.sort_unstable();
        let truth = GroundTruth {
            seed,
            start_ms,
            end_ms,
            step_ms,
            topology: topology(),
            faults: faults
                .iter()
                .enumerate()
                .map(|(n, f)| Fault {
                    id: format!("fault-{n}-{}", f.kind.as_str()),
                    kind: f.kind,
                    root_cause_service: SERVICES[f.root].name.to_owned(),
                    affected_services: affected(&deps, f, &steady_latency),
                    start_ms: f.start,
                    end_ms: f.end,
                    version: (f.kind == FaultKind::BadDeployment).then(|| f.version.clone()),
                })
                .collect(),
        };
        let versions_now = (0..N)
            .map(|i| {
                let h = splitmix64(seed ^ (i as u64 + 1));
                (
                    1 + (h % 5) as u32,
                    ((h >> 8) % 30) as u32,
                    ((h >> 16) % 10) as u32,
                )
            })
            .collect();
        Self {
            seed,
            start_ms,
            end_ms,
            step_ms,
            run_id: config.run_id,
            rng,
            prev_latency: steady_latency,
            prev_error: [BASE_ERROR_RATE; N],
            deps,
            mean_rr,
            steady_latency,
            faults,
            truth,
            routine,
            versions: versions_now,
            before_bad: [None; N],
            next_t: start_ms,
            edge_noise: 0.0,
            cpu_noise: [0.0; N],
            buffer: VecDeque::new(),
            seq: 0,
            items: 0,
        }
    }

    /// The labelled faults, the time range and the topology.
    pub fn ground_truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// First timestamp.
    pub fn start_ms(&self) -> i64 {
        self.start_ms
    }

    /// End of the scenario (exclusive).
    pub fn end_ms(&self) -> i64 {
        self.end_ms
    }

    /// Items yielded so far.
    pub fn items(&self) -> u64 {
        self.items
    }

    /// The timestamp of the next item without taking it; `None` at the end.
    pub fn peek_timestamp(&mut self) -> Option<i64> {
        self.fill();
        self.buffer.front().map(Item::timestamp_ms)
    }

    fn fill(&mut self) {
        // Steps always yield their metrics, so one round fills the buffer.
        if self.buffer.is_empty() && self.next_t < self.end_ms {
            let t = self.next_t;
            self.next_t = t.saturating_add(self.step_ms);
            self.step(t);
        }
    }

    fn step(&mut self, t: i64) {
        let step_end = (t + self.step_ms).min(self.end_ms);
        let hour = t.rem_euclid(DAY_MS) as f64 / 3_600_000.0;
        let day = 1.0 + 0.6 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
        let rng = &mut self.rng;
        self.edge_noise = 0.9 * self.edge_noise + 0.435_889 * 0.04 * normal(rng);
        let active: Vec<&Injected> = self.faults.iter().filter(|f| f.active(t)).collect();
        let spike = active
            .iter()
            .filter(|f| f.kind == FaultKind::TrafficSpike)
            .map(|f| 1.0 + 2.0 * f.magnitude * f.ramp(t, 60_000))
            .fold(1.0, f64::max);
        let mut noise = [0.0; N];
        for n in noise.iter_mut().skip(1) {
            *n = 0.02 * normal(rng);
        }
        let rr = propagate_rates(
            &self.deps,
            EDGE_RPS * day * (1.0 + self.edge_noise) * spike,
            &noise,
        );
        let mut latency = [0.0; N];
        let mut error = [0.0; N];
        let ts = serde_json::Value::from(t);
        for i in 0..N {
            let spec = &SERVICES[i];
            let load = rr[i] / self.mean_rr[i];
            let mut own_latency =
                spec.latency_ms * (1.0 + 0.12 * load * load) * (0.08 * normal(rng)).exp();
            let mut own_error = (BASE_ERROR_RATE * (1.0 + 0.25 * normal(rng))).max(0.0);
            if load > 3.0 {
                own_error += 0.01 * (load - 3.0);
            }
            self.cpu_noise[i] = 0.8 * self.cpu_noise[i] + 0.6 * 2.0 * normal(rng);
            let mut cpu = 8.0 + 30.0 * load + self.cpu_noise[i];
            let mut memory = spec.memory_pct + 3.0 * load + 0.4 * normal(rng);
            for f in active.iter().filter(|f| f.root == i) {
                match f.kind {
                    FaultKind::CpuHog => {
                        let r = f.ramp(t, 60_000);
                        cpu += 45.0 * f.magnitude * r;
                        own_latency *= 1.0 + 0.6 * r;
                    }
                    FaultKind::MemoryLeak => {
                        let p = f.progress(t);
                        memory += 42.0 * f.magnitude * p;
                        own_latency *= 1.0 + 0.8 * p * p * p;
                    }
                    FaultKind::BadDeployment => {
                        let r = f.ramp(t, 30_000);
                        own_error += 0.18 * f.magnitude * r;
                        own_latency *= 1.0 + 0.25 * r;
                    }
                    FaultKind::DependencyLatency => {
                        own_latency += f.added_ms * f.magnitude * f.ramp(t, 60_000);
                    }
                    FaultKind::TrafficSpike => {}
                }
            }
            let mut total_latency = own_latency;
            let mut total_error = own_error;
            for &(d, w) in &self.deps[i] {
                total_latency += w * self.prev_latency[d];
                total_error += ERROR_PROPAGATION * w * self.prev_error[d];
            }
            latency[i] = total_latency;
            error[i] = total_error.clamp(0.0, 1.0);
            let values = [
                ("latency_ms", latency[i]),
                ("error_rate", error[i]),
                ("cpu_usage", cpu.clamp(0.5, 100.0)),
                ("memory_usage", memory.clamp(1.0, 99.5)),
                ("request_rate", rr[i].max(0.0)),
            ];
            for (metric_type, value) in values {
                let digits = if metric_type == "error_rate" {
                    1e5
                } else {
                    1e2
                };
                self.buffer.push_back(Item::Metric(MetricInput {
                    service_name: Some(spec.name.to_owned()),
                    metric_type: Some(metric_type.to_owned()),
                    value: Some(serde_json::Value::from((value * digits).round() / digits)),
                    tags: Some(tags(spec.name)),
                    timestamp: Some(ts.clone()),
                }));
            }
        }
        self.events(t, step_end, &rr, &latency, &error);
        self.prev_latency = latency;
        self.prev_error = error;
    }

    /// The step's events, in timestamp order, after its metrics.
    fn events(
        &mut self,
        t: i64,
        step_end: i64,
        rr: &[f64; N],
        latency: &[f64; N],
        error: &[f64; N],
    ) {
        let mut events: Vec<(i64, u64, SystemEventInput)> = Vec::new();
        let span = (step_end - t).max(1);
        let step_s = self.step_ms as f64 / 1000.0;
        // Deployments: faulty releases, their rollbacks, routine releases.
        let mut deployments: Vec<(i64, usize, String, String, &'static str)> = Vec::new();
        for f in &self.faults {
            if f.kind != FaultKind::BadDeployment {
                continue;
            }
            if (t..step_end).contains(&f.start) {
                let running = version_text(self.versions[f.root]);
                self.before_bad[f.root] = Some(self.versions[f.root]);
                deployments.push((f.start, f.root, f.version.clone(), running, "Deployed"));
            }
            if (t..step_end).contains(&f.end) {
                let back = self.before_bad[f.root]
                    .take()
                    .map_or_else(|| f.previous_version.clone(), version_text);
                deployments.push((f.end, f.root, back, f.version.clone(), "Rolled back to"));
            }
        }
        for &(at, s) in &self.routine {
            if (t..step_end).contains(&at) {
                let (ma, mi, pa) = self.versions[s];
                let next = (ma, mi, pa + 1);
                self.versions[s] = next;
                deployments.push((
                    at,
                    s,
                    version_text(next),
                    version_text((ma, mi, pa)),
                    "Deployed",
                ));
            }
        }
        for (at, s, version, previous, verb) in deployments {
            let name = SERVICES[s].name;
            let details = format!("{verb} {name} {version} (was {previous})");
            let metadata = serde_json::json!({
                "version": version,
                "previous_version": previous,
                "deployed_by": "ci-pipeline",
                "rollback": verb != "Deployed",
            });
            if let Some(v) = parse_version(&version) {
                self.versions[s] = v;
            }
            events.push((
                at,
                0,
                self.event(name, "DEPLOYMENT", at, "info", details, metadata),
            ));
        }
        let active: Vec<Injected> = self
            .faults
            .iter()
            .filter(|f| f.active(t))
            .cloned()
            .collect();
        for i in 0..N {
            let name = SERVICES[i].name;
            let rng = &mut self.rng;
            // Errors, sampled from the failed requests.
            let expected = error[i] * rr[i] * step_s * ERROR_EVENT_SAMPLING;
            let mut count = expected.floor() as u32;
            if rng.random_bool((expected - expected.floor()).clamp(0.0, 1.0)) {
                count += 1;
            }
            let bad_release = active
                .iter()
                .find(|f| f.root == i && f.kind == FaultKind::BadDeployment);
            let worst_dep = self.deps[i]
                .iter()
                .max_by(|a, b| {
                    (a.1 * self.prev_error[a.0]).total_cmp(&(b.1 * self.prev_error[b.0]))
                })
                .map(|&(d, _)| d);
            for _ in 0..count.min(MAX_ERRORS_PER_STEP) {
                let at = t + self.rng.random_range(0..span);
                let ms = (latency[i] * (1.0 + self.rng.random::<f64>())).round() as u64;
                let own_share = (error[i]
                    - worst_dep.map_or(0.0, |d| ERROR_PROPAGATION * self.prev_error[d]))
                .max(0.0)
                    / error[i].max(1e-9);
                let details = match (bad_release, worst_dep) {
                    (Some(f), _) if self.rng.random_bool(0.85) => f.error_template.to_owned(),
                    (_, Some(d)) if !self.rng.random_bool(own_share.clamp(0.0, 1.0)) => {
                        format!("Upstream {} returned 503 after {ms} ms", SERVICES[d].name)
                    }
                    _ => format!("Request failed with 500 after {ms} ms"),
                };
                let severity = if self.rng.random_bool(0.1) {
                    "critical"
                } else {
                    "high"
                };
                let seq = self.rng.random();
                let metadata = serde_json::json!({
                    "status_code": if details.starts_with("Upstream") { 502 } else { 500 },
                    "latency_ms": ms,
                    "version": version_text(self.versions[i]),
                });
                events.push((
                    at,
                    seq,
                    self.event(name, "ERROR", at, severity, details, metadata),
                ));
            }
            // Warnings when something looks unhealthy.
            let mut warnings: Vec<String> = Vec::new();
            for f in active.iter().filter(|f| f.root == i) {
                match f.kind {
                    FaultKind::CpuHog if self.rng.random_bool(0.3) => warnings.push(format!(
                        "CPU throttled in {}% of scheduling periods",
                        self.rng.random_range(20..70)
                    )),
                    FaultKind::MemoryLeak if f.progress(t) > 0.6 && self.rng.random_bool(0.2) => {
                        warnings.push(format!(
                            "GC pause of {} ms; heap {}% full",
                            self.rng.random_range(200..1500),
                            (70.0 + 30.0 * f.progress(t)).min(99.0).round()
                        ));
                    }
                    _ => {}
                }
            }
            if latency[i] > 2.0 * self.steady_latency[i] && self.rng.random_bool(0.3) {
                let slow = self.deps[i]
                    .iter()
                    .max_by(|a, b| {
                        (a.1 * self.prev_latency[a.0]).total_cmp(&(b.1 * self.prev_latency[b.0]))
                    })
                    .map_or(name, |&(d, _)| SERVICES[d].name);
                warnings.push(format!(
                    "Slow responses: p99 {} ms (calls to {slow})",
                    (latency[i] * 3.0).round()
                ));
            }
            for details in warnings {
                let at = t + self.rng.random_range(0..span);
                let seq = self.rng.random();
                events.push((
                    at,
                    seq,
                    self.event(
                        name,
                        "WARNING",
                        at,
                        "medium",
                        details,
                        serde_json::json!({}),
                    ),
                ));
            }
            if self.rng.random_bool(0.15) {
                let at = t + self.rng.random_range(0..span);
                let details = format!(
                    "Health check passed: {} rps, p50 {} ms",
                    rr[i].round(),
                    (latency[i] * 0.7).round()
                );
                let seq = self.rng.random();
                events.push((
                    at,
                    seq,
                    self.event(name, "INFO", at, "info", details, serde_json::json!({})),
                ));
            }
        }
        // Out-of-memory restarts end memory leaks.
        for f in &active {
            if f.kind == FaultKind::MemoryLeak && f.end <= t + self.step_ms {
                let name = SERVICES[f.root].name;
                let at = (f.end - 1).max(t);
                events.push((
                    at,
                    0,
                    self.event(
                        name,
                        "ERROR",
                        at,
                        "critical",
                        "OutOfMemoryError: container killed (exit 137), restarting".to_owned(),
                        serde_json::json!({"exit_code": 137}),
                    ),
                ));
            }
        }
        events.sort_by_key(|(at, tie, _)| (*at, *tie));
        for (_, _, mut e) in events {
            e.event_id = Some(format!("{}-{}", self.run_id, self.seq));
            self.seq += 1;
            self.buffer.push_back(Item::Event(e));
        }
    }

    fn event(
        &self,
        service: &str,
        event_type: &str,
        at: i64,
        severity: &str,
        details: String,
        metadata: serde_json::Value,
    ) -> SystemEventInput {
        SystemEventInput {
            event_id: None,
            service_name: Some(service.to_owned()),
            event_type: Some(event_type.to_owned()),
            timestamp: Some(serde_json::Value::from(at)),
            environment: Some("PRODUCTION".to_owned()),
            details: Some(details),
            severity: Some(severity.to_owned()),
            metadata: Some(metadata),
            source: Some(SOURCE.to_owned()),
            host: Some(format!("{service}-prod-1")),
            tags: Some(BTreeMap::from([(
                "scenario".to_owned(),
                "incidents".to_owned(),
            )])),
        }
    }
}

impl Iterator for Scenario {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        self.fill();
        let item = self.buffer.pop_front()?;
        self.items += 1;
        Some(item)
    }
}

fn tags(service: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("host".to_owned(), format!("{service}-prod-1")),
        ("region".to_owned(), "us-east-1".to_owned()),
        ("environment".to_owned(), "production".to_owned()),
    ])
}

fn version_text((ma, mi, pa): (u32, u32, u32)) -> String {
    format!("v{ma}.{mi}.{pa}")
}

fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v
        .strip_prefix('v')?
        .split('.')
        .map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// Places the faults: one per equal slot of the run, somewhere in its middle, so that
/// every fault has quiet time before and after it.
fn schedule_faults(
    rng: &mut StdRng,
    start_ms: i64,
    duration_ms: i64,
    step_ms: i64,
    count: Option<usize>,
    versions: &mut [(u32, u32, u32)],
) -> Vec<Injected> {
    let n = count.unwrap_or_else(|| {
        ((duration_ms as f64 / DAY_MS as f64) * DEFAULT_FAULTS_PER_DAY as f64).ceil() as usize
    });
    if n == 0 || duration_ms < 10 * step_ms {
        return Vec::new();
    }
    let n = n
        .min(usize::try_from(duration_ms / (10 * step_ms)).unwrap_or(usize::MAX))
        .max(1);
    let slot = duration_ms / n as i64;
    let mut order = FaultKind::ALL;
    let mut out = Vec::with_capacity(n);
    for k in 0..n {
        if k % order.len() == 0 {
            // A fresh shuffle of the kinds for every five faults.
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
        }
        let kind = order[k % order.len()];
        let wanted = i64::try_from(kind.default_duration().as_millis()).unwrap_or(i64::MAX);
        let length = wanted.min(slot / 2).max(step_ms);
        let margin = slot / 5;
        let latest = (slot - length - margin).max(margin);
        let offset = margin + rng.random_range(0..=(latest - margin));
        // Whole seconds.
        let start = (start_ms + k as i64 * slot + offset) / 1000 * 1000;
        let (root, added_ms) = match kind {
            FaultKind::TrafficSpike => (0, 0.0),
            FaultKind::DependencyLatency => {
                let (name, ms) = DEEP_DEPENDENCIES[rng.random_range(0..DEEP_DEPENDENCIES.len())];
                (index_of(name), ms)
            }
            _ => (
                index_of(APP_SERVICES[rng.random_range(0..APP_SERVICES.len())]),
                0.0,
            ),
        };
        let (ma, mi, pa) = versions[root];
        let previous_version = version_text((ma, mi, pa));
        let version = version_text((ma, mi + 1, 0));
        if kind == FaultKind::BadDeployment {
            // After the rollback the next release skips the bad one.
            versions[root] = (ma, mi + 1, 1);
        }
        out.push(Injected {
            kind,
            root,
            start,
            end: start + length,
            magnitude: 0.85 + 0.3 * rng.random::<f64>(),
            added_ms,
            error_template: BAD_RELEASE_ERRORS[rng.random_range(0..BAD_RELEASE_ERRORS.len())],
            version,
            previous_version,
        });
    }
    out
}

/// The services a fault visibly moves, root first, then by distance from it.
fn affected(deps: &[Vec<(usize, f64)>], f: &Injected, steady_latency: &[f64; N]) -> Vec<String> {
    let mut hit: Vec<(usize, usize)> = vec![(0, f.root)];
    match f.kind {
        FaultKind::CpuHog | FaultKind::MemoryLeak => {}
        FaultKind::BadDeployment => {
            // Callers whose error rate rises at least fivefold.
            let (imp, hops) = impact(deps, f.root, ERROR_PROPAGATION);
            for i in 0..N {
                if i != f.root && 0.18 * f.magnitude * imp[i] >= 4.0 * BASE_ERROR_RATE {
                    hit.push((hops[i].unwrap_or(N), i));
                }
            }
        }
        FaultKind::DependencyLatency => {
            // Callers whose latency rises by at least 30 %.
            let (imp, hops) = impact(deps, f.root, 1.0);
            for i in 0..N {
                if i != f.root && f.added_ms * f.magnitude * imp[i] >= 0.3 * steady_latency[i] {
                    hit.push((hops[i].unwrap_or(N), i));
                }
            }
        }
        FaultKind::TrafficSpike => {
            // Everything the edge calls carries three times the load.
            let mut dist = [None; N];
            dist[f.root] = Some(0usize);
            for i in 0..N {
                if let Some(h) = dist[i] {
                    for &(d, _) in &deps[i] {
                        dist[d] = Some(dist[d].map_or(h + 1, |x: usize| x.min(h + 1)));
                    }
                }
            }
            for (i, h) in dist.iter().enumerate() {
                if i != f.root
                    && let Some(h) = *h
                {
                    hit.push((h, i));
                }
            }
        }
    }
    hit.sort_by_key(|&(h, i)| (h, i));
    hit.into_iter()
        .map(|(_, i)| SERVICES[i].name.to_owned())
        .collect()
}
