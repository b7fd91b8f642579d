//! The normalized metric point carried on `metrics.raw`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One measurement of one metric of one service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Metric {
    /// The service measured.
    pub service_name: String,
    /// What was measured: `cpu_usage`, `latency_ms`, `error_rate`, …
    pub metric_type: String,
    /// The value; always finite.
    pub value: f64,
    /// Labels such as host or region.
    pub tags: BTreeMap<String, String>,
    /// When it was measured, epoch milliseconds.
    pub timestamp: i64,
    /// When sightline received it, epoch milliseconds.
    pub received_at: i64,
    /// The request id it arrived with.
    pub correlation_id: String,
}
