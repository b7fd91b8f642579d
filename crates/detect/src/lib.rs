//! Anomaly detection for sightline (placeholder docs, rewritten below).

pub mod changepoint;
pub mod ensemble;
mod error;
pub mod ewma;
pub mod nab;
pub mod seasonal;
pub mod stats;
pub mod threshold;
mod verdict;
pub mod window;
pub mod zscore;

pub use error::DetectError;
pub use verdict::{Detector, Verdict};
