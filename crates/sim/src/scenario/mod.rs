//! The scenarios `sightline simulate --scenario …` plays, each with its ground truth.
//!
//! - [`ScenarioKind::Normal`]: the original platform traffic of [`EventGenerator`] and
//!   [`MetricGenerator`](crate::MetricGenerator), with periodic error bursts.
//! - [`ScenarioKind::Ecommerce`]: shopping sessions for the user topic `ecommerce.events`
//!   ([`ecommerce`]).
//! - [`ScenarioKind::Incidents`]: a service graph with labelled faults, in simulated time
//!   ([`incidents`]).
//!
//! [`EventGenerator`]: crate::EventGenerator

pub mod ecommerce;
pub mod incidents;

use serde::{Deserialize, Serialize};

/// Which traffic a run sends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    /// System events (and optionally metrics) of a small platform, with error bursts.
    #[default]
    Normal,
    /// Shopping sessions into the user topic `ecommerce.events`.
    Ecommerce,
    /// A 13-service graph with injected, labelled faults, in simulated time.
    Incidents,
}

impl ScenarioKind {
    /// `normal`, `ecommerce` or `incidents`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Ecommerce => "ecommerce",
            Self::Incidents => "incidents",
        }
    }
}

impl std::fmt::Display for ScenarioKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for ScenarioKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Self::Normal),
            "ecommerce" => Ok(Self::Ecommerce),
            "incidents" => Ok(Self::Incidents),
            other => Err(format!(
                "unknown scenario '{other}': expected normal, ecommerce or incidents"
            )),
        }
    }
}

/// What a scenario run injected, for scoring what the product made of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "scenario", rename_all = "snake_case")]
pub enum GroundTruth {
    /// Per-session aggregates of the shopping records sent.
    Ecommerce(ecommerce::EcommerceTruth),
    /// The labelled faults, the time range and the topology.
    Incidents(incidents::GroundTruth),
}
