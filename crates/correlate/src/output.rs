//! [`Output`]: what every correlator call hands back for the wiring layer to publish.

use serde::{Deserialize, Serialize};
use sightline_model::{Correlation, Incident};

/// One thing the correlator decided. Outputs come in decision order; the wiring layer
/// publishes `Opened` on `incidents.detected`, `Updated` on `incidents.updated`, stores
/// `Correlated` in `event_correlations`, and counts/logs `Suppressed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// A new incident, published after its group wait.
    Opened(Incident),
    /// An incident changed (new evidence, status, assignee, note, root, severity), or an
    /// unchanged open incident is re-published after `repeat_interval_ms`.
    Updated(Incident),
    /// A signal was linked to an incident, and why.
    Correlated(Correlation),
    /// A signal opened nothing, and why.
    Suppressed(Suppression),
}

impl Output {
    /// The incident carried by `Opened`/`Updated`.
    pub fn incident(&self) -> Option<&Incident> {
        match self {
            Output::Opened(i) | Output::Updated(i) => Some(i),
            _ => None,
        }
    }
}

/// A signal that was kept out of the incidents.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Suppression {
    /// The anomaly id or event id.
    pub signal_id: String,
    /// The service of the signal.
    pub service_name: String,
    /// The incident that inhibited it, when one did.
    pub incident_id: Option<String>,
    /// Why.
    pub reason: SuppressionReason,
    /// When, epoch milliseconds (the `now_ms` of the call).
    pub at: i64,
}

/// Why a signal was suppressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SuppressionReason {
    /// An active silence (maintenance window) matched the signal's labels.
    Silenced {
        /// The silence's id.
        silence_id: String,
    },
    /// An open critical incident on a service upstream of the signal's service inhibits
    /// its warnings (`medium`/`low` signals).
    Inhibited {
        /// The inhibiting incident.
        by_incident: String,
    },
    /// The cap on active incidents was reached; the signal would have opened one more.
    Overflow {
        /// The cap (`max_active_incidents`).
        limit: usize,
    },
}
