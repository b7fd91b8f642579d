//! The metric point of the LiveOps specification.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::IngestContext;
use crate::validation::{self, limits};
use crate::{Metric, ValidationError};

/// A metric point as a producer sends it (`schemas/metric.schema.json`):
/// `{service_name, metric_type, value, tags{}, timestamp}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricInput {
    /// The service measured.
    pub service_name: Option<String>,
    /// What was measured.
    pub metric_type: Option<String>,
    /// A finite number.
    pub value: Option<serde_json::Value>,
    /// String labels.
    pub tags: Option<BTreeMap<String, String>>,
    /// Epoch milliseconds or RFC 3339; arrival time when absent.
    pub timestamp: Option<serde_json::Value>,
}

impl MetricInput {
    /// Validates every field and builds the normalized metric.
    pub fn normalize(self, ctx: &IngestContext) -> Result<Metric, ValidationError> {
        let service_name =
            validation::required_name("service_name", self.service_name.as_deref(), limits::NAME)?;
        let metric_type =
            validation::required_name("metric_type", self.metric_type.as_deref(), limits::NAME)?;
        let value = match self.value {
            None | Some(serde_json::Value::Null) => return Err(ValidationError::missing("value")),
            Some(serde_json::Value::Number(n)) => n
                .as_f64()
                .filter(|v| v.is_finite())
                .ok_or_else(|| ValidationError::new("value", "must be a finite number"))?,
            Some(other) => {
                return Err(ValidationError::new(
                    "value",
                    format!("must be a number, got {}", validation::json_kind(&other)),
                ));
            }
        };
        let timestamp = validation::timestamp_or_arrival(
            "timestamp",
            self.timestamp.as_ref(),
            ctx.received_at,
        )?;
        Ok(Metric {
            service_name,
            metric_type,
            value,
            tags: validation::tags("tags", self.tags.unwrap_or_default())?,
            timestamp,
            received_at: ctx.received_at,
            correlation_id: ctx.correlation_id.clone(),
        })
    }
}
