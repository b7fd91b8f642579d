//! Anomaly detection for sightline (placeholder docs, rewritten below).

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
pub mod seasonal;
pub mod stats;
pub mod threshold;
mod verdict;
pub mod window;
pub mod zscore;

pub use error::DetectError;
pub use verdict::{Detector, Verdict};
pub use config::{AnyDetector, DetectConfig, DetectorSpec, SeriesRule};
pub use registry::SeriesDetectors;
