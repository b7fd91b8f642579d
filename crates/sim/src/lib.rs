//! Realistic traffic for sightline, with the ground truth of what was injected.
//!
//! `sightline simulate` is this crate. It plays one of three scenarios
//! ([`ScenarioKind`], `--scenario`) against a running node:
//!
//! - **`normal`** (the default): a small e-commerce platform (eight services such as
//!   `payment-service` and `api-gateway`, two to four hosts each) sends its system events,
//!   and optionally its metric points. [`EventGenerator`] and [`MetricGenerator`] make the
//!   traffic: system events in the input shape of `schemas/system_event.schema.json` (ids
//!   `{run_id}-{seq}`, mostly `INFO`, some `WARNING`, `ERROR` at
//!   [`GeneratorConfig::error_rate`], routine `DEPLOYMENT`s) and metric points
//!   (`cpu_usage`, `memory_usage`, `latency_ms`, `error_rate`, `request_rate`). Both are
//!   deterministic from a seed and follow one [`BurstConfig`] schedule: now and then a
//!   freshly deployed service starts failing, and each such [`Burst`] is recorded as
//!   ground truth for the detectors.
//! - **`ecommerce`** ([`scenario::ecommerce`]): shopping sessions for the user topic
//!   `ecommerce.events`, `POST`ed as `[{"key": session_id, "value": {…}}]` to
//!   `{target}/api/v1/topics/{topic}/records`. Many sessions are open at once and each
//!   walks the funnel `product_viewed → added_to_cart (→ removed_from_cart) →
//!   checkout_started → purchase`, most leaving on the way, `vip` users converting more
//!   than `returning` and `new` ones. The ground truth
//!   ([`EcommerceTruth`](scenario::ecommerce::EcommerceTruth)) holds per session what the
//!   stream SQL `GROUP BY session_id` must compute: record count, largest `cart_total`,
//!   purchases, latest `user_id`.
//! - **`incidents`** ([`scenario::incidents`]): thirteen services with dependencies
//!   (exported as a `sightline_model::Topology`), their five metrics every step of
//!   simulated time with a day curve, noise and latency that cascades from dependencies
//!   to callers, their system events, and labelled faults (`cpu_hog`, `memory_leak`,
//!   `bad_deployment`, `dependency_latency`, `traffic_spike`; one of each per simulated
//!   day by default) recorded in a
//!   [`GroundTruth`](scenario::incidents::GroundTruth). The generator,
//!   [`scenario::incidents::Scenario`], is a pure iterator in simulated time, so a
//!   benchmark can push days of it through the pipeline in-process; `sightline simulate`
//!   sends it to `/api/v1/metrics` and `/api/v1/events/batch` at `--speed` simulated
//!   seconds per wall second.
//!
//! [`run`] (or [`run_until`] with your own shutdown signal) drives any of them against a
//! node as described by [`SimulateOptions`]: JSON-array batches, paced (a token bucket at
//! the requested rate, or the simulated clock), a bounded number in flight, 429/503
//! answers retried after their `Retry-After`. It returns a [`SimReport`] (serializable,
//! and printable for humans): what was sent, acknowledged, rejected and failed, the
//! achieved rate, the request latency percentiles, and the scenario's ground truth.
//!
//! Nothing leaves the crate except those HTTP requests (plain HTTP, keep-alive) and the
//! report; progress is drawn on stderr only when asked for and stderr is a terminal.
//!
//! ```no_run
//! use std::time::Duration;
//! use sightline_sim::{SimulateOptions, run};
//!
//! # async fn demo() -> Result<(), sightline_sim::SimError> {
//! let report = run(SimulateOptions {
//!     target: "http://127.0.0.1:8080".into(),
//!     rate: 20_000,
//!     duration: Some(Duration::from_secs(30)),
//!     ..SimulateOptions::default()
//! })
//! .await?;
//! eprintln!("{report}");
//! assert_eq!(report.sent, report.acknowledged + report.rejected + report.failed_events);
//! # Ok(())
//! # }
//! ```

mod driver;
mod generator;
pub mod scenario;

pub use driver::{
    DEFAULT_INCIDENTS_DURATION, LATENCY_SAMPLES, LatencySummary, MAX_RETRIES, MAX_RETRY_AFTER,
    REQUEST_TIMEOUT, SimReport, SimulateOptions, incidents_start, run, run_until,
};
pub use generator::{
    Burst, BurstConfig, EventCounts, EventGenerator, GeneratorConfig, METRIC_TYPES,
    MetricGenerator, SOURCE, service_names,
};
pub use scenario::{GroundTruth, ScenarioKind};

/// Why a simulation could not run. Failures of individual requests are not errors: they
/// are counted in the [`SimReport`].
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The options make no sense (zero batch size, non-HTTP target, …).
    #[error("invalid simulation options: {0}")]
    InvalidOptions(String),
    /// The HTTP client could not be built.
    #[error("could not build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// A batch could not be serialized.
    #[error("could not serialize a batch: {0}")]
    Encode(#[from] serde_json::Error),
}
