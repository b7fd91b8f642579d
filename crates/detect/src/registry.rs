//! One detector set per series: [`SeriesDetectors`] routes each metric point to the
//! detectors configured for its (service, metric type), creating them on first sight, and
//! turns anomalous verdicts into [`Anomaly`]s.
//!
//! The number of series is capped (`max_series`): a new series beyond the cap evicts the
//! least recently updated one (recency by a logical clock of observations, so replays
//! are deterministic). The whole registry serializes, so a node checkpoints it with the
//! source offsets it reflects and resumes identically after a crash.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sightline_model::{Anomaly, Metric, Signal};

use crate::config::{AnyDetector, DetectConfig};
use crate::report::to_anomaly;
use crate::{DetectError, Detector};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Series {
    detectors: Vec<AnyDetector>,
    last_tick: u64,
}

/// Per-series detector state for all series (see the module docs).
///
/// The configuration is not part of the serialized state (it comes from the node's
/// configuration file, and its tagged detector specs are not postcard-friendly): after
/// deserializing a checkpoint, call [`SeriesDetectors::set_config`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesDetectors {
    #[serde(skip)]
    config: DetectConfig,
    /// Key: `service \x1f metric_type` (ordered maps: a checkpoint encodes identically).
    series: BTreeMap<String, Series>,
    by_age: BTreeMap<u64, String>,
    tick: u64,
    evicted: u64,
}

impl SeriesDetectors {
    /// An empty registry; the configuration is validated.
    pub fn new(config: DetectConfig) -> Result<Self, DetectError> {
        config.validate()?;
        Ok(SeriesDetectors {
            config,
            series: BTreeMap::new(),
            by_age: BTreeMap::new(),
            tick: 0,
            evicted: 0,
        })
    }

    /// Replaces the configuration (validated): for a registry restored from a checkpoint.
    /// Existing series keep their detectors; new series get the new configuration's.
    pub fn set_config(&mut self, config: DetectConfig) -> Result<(), DetectError> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Series currently tracked (≤ `max_series`).
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Whether no series is tracked.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Series dropped so far to honour the cap.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Feeds one metric point to its series' detectors; returns the anomalies they raise
    /// (one per detector that flags the point). `detected_at` is the processing time
    /// stamped on them.
    pub fn observe(&mut self, metric: &Metric, detected_at: i64) -> Vec<Anomaly> {
        self.tick += 1;
        let tick = self.tick;
        let key = format!("{}\u{1f}{}", metric.service_name, metric.metric_type);
        let series = match self.series.get_mut(&key) {
            Some(s) => {
                self.by_age.remove(&s.last_tick);
                s
            }
            None => {
                while self.series.len() >= self.config.max_series.max(1) {
                    let Some((_, old)) = self.by_age.pop_first() else {
                        break;
                    };
                    self.series.remove(&old);
                    self.evicted += 1;
                }
                let detectors = self
                    .config
                    .detectors_for(&metric.service_name, &metric.metric_type)
                    .iter()
                    .map(|s| s.build())
                    .collect();
                self.series.entry(key.clone()).or_insert(Series {
                    detectors,
                    last_tick: tick,
                })
            }
        };
        series.last_tick = tick;
        self.by_age.insert(tick, key);
        let mut anomalies = Vec::new();
        for d in &mut series.detectors {
            let verdict = d.observe(metric.timestamp, metric.value);
            if verdict.anomalous {
                anomalies.push(to_anomaly(
                    d.name(),
                    &metric.service_name,
                    Signal::Metric {
                        metric_type: metric.metric_type.clone(),
                    },
                    metric.timestamp,
                    metric.value,
                    &verdict,
                    d.baseline(),
                    detected_at,
                ));
            }
        }
        anomalies
    }
}
