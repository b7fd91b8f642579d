//! Keeps `metrics:live:{serviceName}` current: a consumer (group [`GROUP`]) of
//! `metrics.raw` that pushes every point onto its service's bounded list of the newest
//! [`LIVE_POINTS`](crate::keys::LIVE_POINTS).
//!
//! The cache is a view, not a record: when the cache is unavailable the batch's points
//! are skipped (counted in `sightline_cache_live_skipped_total`) and the consumer moves on,
//! so an outage never builds up lag; readers fall back to the store meanwhile.

use std::future::Future;
use std::sync::Arc;

use sightline_codec::Codec;
use sightline_log::{EventLog, LogError, next_positions};
use sightline_model::{Metric, topics};

use crate::{Cache, keys};

/// The consumer group of the live-metrics feeder.
pub const GROUP: &str = "live";

/// Points pushed into the cache.
const PUSHED: &str = "sightline_cache_live_pushed_total";
/// Points skipped because the cache was unavailable or the record undecodable.
const SKIPPED: &str = "sightline_cache_live_skipped_total";

/// Feeds `metrics:live:*` from `metrics.raw` until `shutdown` completes. With a `codec`,
/// Avro values are read too (and cached as JSON, the form readers expect).
pub async fn run(
    log: Arc<dyn EventLog>,
    cache: Arc<dyn Cache>,
    codec: Option<Codec>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), LogError> {
    let mut sub = log.subscribe(GROUP, &[topics::METRICS_RAW]).await?;
    tokio::pin!(shutdown);
    loop {
        let batch = tokio::select! {
            batch = sub.next_batch(1000) => batch?,
            () = &mut shutdown => return Ok(()),
        };
        let (mut pushed, mut skipped) = (0u64, 0u64);
        if let Some(codec) = &codec
            && let Err(e) = codec
                .ensure_known(batch.iter().map(|d| d.record.value.as_slice()))
                .await
        {
            // A view, not a record: points it cannot read now are skipped.
            tracing::debug!(error = %e, "live metrics: writer schemas unavailable");
        }
        for d in &batch {
            let avro = codec
                .as_ref()
                .filter(|_| Codec::schema_id(&d.record.value).is_some());
            let (metric, value) = match avro {
                Some(codec) => match codec.decode_metric(&d.record.value) {
                    Ok(m) => {
                        let json = serde_json::to_string(&m).unwrap_or_default();
                        (m, std::borrow::Cow::Owned(json))
                    }
                    Err(_) => {
                        skipped += 1;
                        continue;
                    }
                },
                None => match serde_json::from_slice::<Metric>(&d.record.value) {
                    Ok(m) => (m, String::from_utf8_lossy(&d.record.value)),
                    Err(_) => {
                        skipped += 1;
                        continue;
                    }
                },
            };
            match cache
                .push_recent(
                    &keys::metrics_live(&metric.service_name),
                    &value,
                    keys::LIVE_POINTS,
                )
                .await
            {
                Ok(()) => pushed += 1,
                Err(e) => {
                    tracing::debug!(error = %e, "live metrics: cache unavailable, point skipped");
                    skipped += 1;
                }
            }
        }
        metrics::counter!(PUSHED).increment(pushed);
        metrics::counter!(SKIPPED).increment(skipped);
        sub.commit(&next_positions(&batch)).await?;
    }
}
