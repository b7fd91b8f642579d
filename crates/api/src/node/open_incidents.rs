//! Keeps `sightline_incidents_open` equal to the store's count of unresolved incidents.
//! A counter kept in memory would start from zero after a restart and differ between
//! nodes; reading the store makes the gauge the same on every node that serves queries,
//! whoever opened or closed the incidents.

use std::sync::Arc;
use std::time::Duration;

use sightline_correlate::incident_metrics;
use sightline_store::Store;
use tokio::sync::watch;

/// How often the gauge is refreshed: about one Prometheus scrape interval.
const REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// Refreshes the gauge at once and then every [`REFRESH_INTERVAL`] until the node stops.
/// A failed read keeps the last values (and is logged): the store's own metrics and
/// `/ready` report the outage.
pub(super) async fn refresh(store: Arc<dyn Store>, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(REFRESH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.wait_for(|s| *s) => return,
        }
        match store.count_unresolved_incidents().await {
            Ok(counts) => incident_metrics::set_open(&counts),
            Err(error) => tracing::warn!(%error, "counting open incidents failed"),
        }
    }
}
