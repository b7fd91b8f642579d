//! The cache's key names, defined once so every writer and reader agrees on them (they
//! come from the LiveOps specification and are shared with other tools reading Redis).
//!
//! | key | holds |
//! |---|---|
//! | `metrics:live:{serviceName}` | list: the newest [`LIVE_POINTS`] metric points of a service, oldest first |
//! | `metrics:agg:{serviceName}:{window}` | string: the latest rollup of a service for a window |
//! | `incidents:active` | set: ids of the active incidents |
//! | `analysis:{incidentId}` | string: an incident's analysis, expiring after [`ANALYSIS_TTL`] |
//!
//! Names are joined with `:` as given, without escaping; service names and windows are
//! expected not to contain `:` (otherwise `metrics:agg:a:b:c` would be ambiguous).

use std::time::Duration;

/// How many metric points `metrics:live:{service}` keeps.
pub const LIVE_POINTS: usize = 100;

/// How long an analysis stays in the cache.
pub const ANALYSIS_TTL: Duration = Duration::from_secs(60 * 60);

/// The set of active incident ids.
pub const INCIDENTS_ACTIVE: &str = "incidents:active";

/// `metrics:live:{service}`: the recent metric points of a service.
pub fn metrics_live(service: &str) -> String {
    format!("metrics:live:{service}")
}

/// `metrics:agg:{service}:{window}`: the latest rollup of a service over `window`
/// (e.g. `1m`, `5m`).
pub fn metrics_agg(service: &str, window: &str) -> String {
    format!("metrics:agg:{service}:{window}")
}

/// `analysis:{incident_id}`: the analysis of an incident.
pub fn analysis(incident_id: &str) -> String {
    format!("analysis:{incident_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_specification() {
        assert_eq!(metrics_live("checkout"), "metrics:live:checkout");
        assert_eq!(metrics_agg("checkout", "5m"), "metrics:agg:checkout:5m");
        assert_eq!(INCIDENTS_ACTIVE, "incidents:active");
        assert_eq!(analysis("inc-42"), "analysis:inc-42");
        assert_eq!(ANALYSIS_TTL, Duration::from_secs(3600));
        assert_eq!(LIVE_POINTS, 100);
    }
}
