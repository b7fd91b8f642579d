//! Anomaly detection: online detectors over metric series and event streams, a
//! per-series registry that runs the configured ones, and the NAB harness that scores the
//! default detector.
//!
//! Every detector implements [`Detector`]: `observe(timestamp_ms, value)` judges a point
//! *before* learning it and returns a [`Verdict`] (a 0..1 score, the expected range, and
//! whether the point is anomalous). Detectors are deterministic (time comes only from the
//! points), cost O(1) amortised per point (O(log n) for order statistics), keep bounded
//! state, and serialize, so a node checkpoints them with the offsets they reflect.
//!
//! | detector | module | catches |
//! |---|---|---|
//! | static threshold with `for` (pending → firing) | [`threshold`] | known limits |
//! | rolling z-score, robust (median/MAD) z-score | [`zscore`] | spikes, shifts |
//! | EWMA mean/variance | [`ewma`] | deviations from a wandering level |
//! | seasonal forecast with intervals (augurs MSTL + ETS) | [`seasonal`] | broken daily patterns |
//! | Bayesian online change point (truncated run lengths) | [`changepoint`] | regime changes |
//! | error-event rate vs a Poisson baseline | [`event_rate`] | error bursts |
//! | first error of a never-seen fingerprint | [`new_pattern`] | new failure modes |
//! | least-squares climb toward capacity | [`trend`] | leaks, filling disks |
//! | the default ensemble | [`ensemble`] | all of the above, one alert per problem |
//!
//! [`DetectConfig`] chooses detectors per (service, metric type) by glob rules, with the
//! ensemble as the default (plus the trend forecast on `memory*` and `disk*`); [`SeriesDetectors`] keeps one detector set per series (capped)
//! and turns anomalous verdicts into [`sightline_model::Anomaly`]s with deterministic ids
//! and a one-line explanation ([`report`]). [`nab`] runs the default ensemble over the
//! Numenta Anomaly Benchmark with NAB's scoring (`sightline bench nab`).
//! [`runner::run_detection`] drives all of it from the event log (`metrics.raw` +
//! `system-events` → `anomalies` and the store), checkpointed and effectively once.
//!
//! ```
//! use sightline_detect::{DetectConfig, SeriesDetectors};
//! use sightline_model::Metric;
//!
//! let config: DetectConfig = serde_json::from_str(r#"{
//!     "rules": [{"service": "checkout*", "metric_type": "latency_ms",
//!                "detectors": [{"kind": "robust_zscore", "window": 120}]}]
//! }"#)?;
//! let mut detectors = SeriesDetectors::new(config)?;
//! let point = |t: i64, value: f64| Metric {
//!     service_name: "checkout".into(),
//!     metric_type: "latency_ms".into(),
//!     value,
//!     tags: Default::default(),
//!     timestamp: t,
//!     received_at: t,
//!     correlation_id: String::new(),
//! };
//! for i in 0..200 {
//!     let latency = 120.0 + [-9.0, -3.0, 0.0, 4.0, 8.0][i % 5];
//!     assert!(detectors.observe(&point(i as i64 * 60_000, latency), 0).is_empty());
//! }
//! let anomalies = detectors.observe(&point(200 * 60_000, 812.0), 0);
//! assert_eq!(anomalies.len(), 1);
//! assert!(anomalies[0].explanation.starts_with("latency_ms 812 ms on checkout is"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod changepoint;
pub mod config;
pub mod ensemble;
mod error;
pub mod event_rate;
pub mod ewma;
pub mod nab;
pub mod new_pattern;
pub mod registry;
pub mod report;
pub mod runner;
pub mod seasonal;
pub mod stats;
pub mod threshold;
pub mod trend;
mod verdict;
pub mod window;
pub mod zscore;

pub use config::{AnyDetector, DetectConfig, DetectorSpec, SeriesRule};
pub use error::DetectError;
pub use registry::SeriesDetectors;
pub use verdict::{Detector, Verdict};
