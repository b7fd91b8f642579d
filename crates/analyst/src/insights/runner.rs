//! The insight runner: high-severity events get an insight each, stored and published,
//! within a rate limit and without repeating itself.
//!
//! [`run_insights`] joins consumer group [`GROUP`] on `system-events` and, per batch,
//! decodes each event (JSON or Avro; undecodable records are counted, logged and skipped)
//! and decides, in this order (each outcome counted in [`telemetry::INSIGHTS`]):
//!
//! 1. below `min_severity` → `skipped_severity`;
//! 2. the store already holds the event's insight (a redelivery) → `republished`: published
//!    again from the store, the provider is not asked;
//! 3. its fingerprint was explained within `dedup_window_secs` (remembered in memory,
//!    bounded, and looked up in the store after a restart or on another node) →
//!    `skipped_duplicate`;
//! 4. the GCRA limit of `max_per_minute` has no cell left → `skipped_rate`;
//! 5. the provider fails (breaker open, budget exhausted, timeouts, errors, answers off the
//!    schema) → `failed`, with the reason in [`telemetry::FAILURES`]; the runner goes on;
//! 6. otherwise → `generated`: upserted into `event_insights` (retried until it succeeds or
//!    shutdown), then published on `insights.generated` (key = service name).
//!
//! Offsets are committed after the whole batch: at least once. A crash before the commit
//! redelivers the batch, whose stored insights are re-published, not recomputed.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock as GovernorClock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use sightline_codec::{Codec, prefetch_writers, read_event};
use sightline_log::{EventLog, Record};
use sightline_model::{Clock, Event, EventInsight, topics};
use sightline_store::{InsightQuery, Store};
use sightline_stream::SourcePositions;

use super::InsightsConfig;
use crate::AnalystError;
use crate::llm::LlmAnalyst;
use crate::runner::retry;

/// The consumer group the runner commits its positions under.
pub const GROUP: &str = "insights";

/// The topics the runner consumes.
pub const TOPICS: [&str; 1] = [topics::SYSTEM_EVENTS];

/// How many fingerprints the runner remembers as recently explained.
const MAX_REMEMBERED: usize = 10_000;

/// Metric names of the insight runner.
pub mod telemetry {
    /// Events considered, by `outcome`: `generated`, `republished`, `skipped_severity`,
    /// `skipped_duplicate`, `skipped_rate`, `failed`.
    pub const INSIGHTS: &str = "sightline_insights_total";
    /// Provider failures, by `reason` (`budget`, `breaker`, `error`, `invalid`).
    pub const FAILURES: &str = "sightline_insights_failures_total";
    /// Records that could not be decoded as events.
    pub const REJECTED: &str = "sightline_insights_rejected_total";
    /// Store operations that failed (retried).
    pub const STORE_ERRORS: &str = "sightline_insights_store_errors_total";
    /// Time to get one insight from the provider, seconds.
    pub const LATENCY_SECONDS: &str = "sightline_insights_latency_seconds";
}

/// What happened to one event (the `outcome` label of [`telemetry::INSIGHTS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An insight was generated, stored and published.
    Generated,
    /// The insight was already stored; it was published again.
    Republished,
    /// The event is below `min_severity`.
    SkippedSeverity,
    /// Its fingerprint was explained within the duplicate window.
    SkippedDuplicate,
    /// The rate limit had no room.
    SkippedRate,
    /// The provider produced no insight.
    Failed,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Generated => "generated",
            Outcome::Republished => "republished",
            Outcome::SkippedSeverity => "skipped_severity",
            Outcome::SkippedDuplicate => "skipped_duplicate",
            Outcome::SkippedRate => "skipped_rate",
            Outcome::Failed => "failed",
        }
    }
}

/// The rate limiter's time source: the runner's [`Clock`], so tests can move time.
#[derive(Clone, Debug)]
struct LimiterClock(Clock);

impl GovernorClock for LimiterClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let ms = u64::try_from(self.0.now_ms()).unwrap_or(0);
        Nanos::from(ms.saturating_mul(1_000_000))
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, LimiterClock, NoOpMiddleware<Nanos>>;

/// The runner's collaborators and settings. Cloning shares the rate limiter, so a runner
/// restarted by its supervisor does not get a fresh burst.
#[derive(Debug, Clone)]
pub struct InsightRunner {
    log: Arc<dyn EventLog>,
    store: Arc<dyn Store>,
    llm: Arc<LlmAnalyst>,
    codec: Option<Codec>,
    clock: Clock,
    config: InsightsConfig,
    limiter: Arc<Limiter>,
    retry_backoff: Duration,
}

fn limiter(config: &InsightsConfig, clock: &Clock) -> Arc<Limiter> {
    let rate = NonZeroU32::new(config.max_per_minute).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct_with_clock(
        Quota::per_minute(rate),
        LimiterClock(clock.clone()),
    ))
}

impl InsightRunner {
    /// A runner reading `log`, writing `store`, asking `llm` as `config` says (validated),
    /// on the system clock.
    pub fn new(
        log: Arc<dyn EventLog>,
        store: Arc<dyn Store>,
        llm: Arc<LlmAnalyst>,
        config: InsightsConfig,
    ) -> Result<Self, AnalystError> {
        config.validate().map_err(AnalystError::Config)?;
        let clock = Clock::system();
        Ok(Self {
            limiter: limiter(&config, &clock),
            log,
            store,
            llm,
            codec: None,
            clock,
            config,
            retry_backoff: Duration::from_millis(500),
        })
    }

    /// Reads Avro-framed events with `codec` (JSON is always read).
    #[must_use]
    pub fn with_codec(mut self, codec: Codec) -> Self {
        self.codec = Some(codec);
        self
    }

    /// Takes time (rate limit, duplicate window, `created_at`) from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.limiter = limiter(&self.config, &clock);
        self.clock = clock;
        self
    }

    /// Pauses `backoff` before retrying a failed store operation (default 500 ms).
    #[must_use]
    pub fn with_retry_backoff(mut self, backoff: Duration) -> Self {
        self.retry_backoff = backoff;
        self
    }
}

/// Fingerprints recently explained, with when (bounded; the oldest forgotten first).
#[derive(Debug, Default)]
struct Recent {
    at: HashMap<String, i64>,
    order: VecDeque<String>,
}

impl Recent {
    fn within(&self, fingerprint: &str, since_ms: i64) -> bool {
        self.at.get(fingerprint).is_some_and(|t| *t >= since_ms)
    }

    fn insert(&mut self, fingerprint: &str, at_ms: i64) {
        if self.at.insert(fingerprint.to_owned(), at_ms).is_none() {
            self.order.push_back(fingerprint.to_owned());
            while self.order.len() > MAX_REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.at.remove(&old);
                }
            }
        }
    }
}

type Shutdown<'a, S> = Pin<&'a mut S>;

/// Runs the insight runner until `shutdown` completes (then returns `Ok`), or until the
/// log fails. See the module docs.
pub async fn run_insights(
    runner: InsightRunner,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), AnalystError> {
    let mut shutdown = std::pin::pin!(shutdown);
    sightline_stream::runner::ensure_builtin_topics(
        runner.log.as_ref(),
        &[topics::SYSTEM_EVENTS, topics::INSIGHTS_GENERATED],
    )
    .await?;
    let mut sub = runner.log.subscribe(GROUP, &TOPICS).await?;
    let mut recent = Recent::default();
    tracing::info!(group = GROUP, "insight runner started");
    loop {
        let batch = tokio::select! {
            biased;
            () = &mut shutdown => break,
            batch = sub.next_batch(runner.config.batch_size.max(1)) => batch?,
        };
        if batch.is_empty() {
            continue;
        }
        // Records it still cannot read are rejected below, counted and logged.
        prefetch_writers(
            runner.codec.as_ref(),
            batch.iter().map(|d| d.record.value.as_slice()),
            "insights",
        )
        .await;
        let mut positions = SourcePositions::default();
        for d in &batch {
            positions.advance(&d.topic, d.partition, d.offset);
            let event = match read_event(&d.record.value, runner.codec.as_ref()) {
                Ok(e) => e,
                Err(reason) => {
                    metrics::counter!(telemetry::REJECTED).increment(1);
                    tracing::warn!(
                        topic = %d.topic, partition = d.partition, offset = d.offset, %reason,
                        "insights: skipping a record it cannot decode"
                    );
                    continue;
                }
            };
            let Some(outcome) = handle(&runner, &mut recent, &event, &mut shutdown).await? else {
                tracing::info!("insight runner stopped during an event");
                return Ok(());
            };
            metrics::counter!(telemetry::INSIGHTS, "outcome" => outcome.as_str()).increment(1);
        }
        sightline_stream::runner::commit_positions(sub.as_mut(), &positions).await?;
    }
    tracing::info!("insight runner stopped");
    Ok(())
}

/// Decides about one event and acts (see the module docs); `None` when shutdown arrived.
async fn handle<S: Future<Output = ()>>(
    runner: &InsightRunner,
    recent: &mut Recent,
    event: &Event,
    shutdown: &mut Shutdown<'_, S>,
) -> Result<Option<Outcome>, AnalystError> {
    if !runner.config.wants(event.severity) {
        return Ok(Some(Outcome::SkippedSeverity));
    }
    let backoff = runner.retry_backoff;
    let errors = telemetry::STORE_ERRORS;
    let Some(stored) = retry(errors, backoff, shutdown, || {
        runner.store.get_event_insight(&event.event_id)
    })
    .await
    else {
        return Ok(None);
    };
    if let Some(insight) = stored {
        publish(runner.log.as_ref(), &insight).await?;
        return Ok(Some(Outcome::Republished));
    }
    let now = runner.clock.now_ms();
    let window_ms = i64::try_from(runner.config.dedup_window_secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1000);
    if window_ms > 0 && !event.fingerprint.is_empty() {
        let since = now.saturating_sub(window_ms);
        if recent.within(&event.fingerprint, since) {
            return Ok(Some(Outcome::SkippedDuplicate));
        }
        let query = InsightQuery {
            fingerprint: Some(event.fingerprint.clone()),
            since: Some(since),
            limit: 1,
            ..InsightQuery::default()
        };
        let Some(found) = retry(errors, backoff, shutdown, || {
            runner.store.list_event_insights(&query)
        })
        .await
        else {
            return Ok(None);
        };
        if let Some(earlier) = found.first() {
            recent.insert(&event.fingerprint, earlier.created_at);
            return Ok(Some(Outcome::SkippedDuplicate));
        }
    }
    if runner.limiter.check().is_err() {
        return Ok(Some(Outcome::SkippedRate));
    }
    let asked = tokio::select! {
        biased;
        () = shutdown.as_mut() => return Ok(None),
        asked = super::explain(&runner.llm, event, now) => asked,
    };
    let insight = match asked {
        Ok(insight) => insight,
        Err(failed) => {
            let reason = failed.failure.reason();
            metrics::counter!(telemetry::FAILURES, "reason" => reason).increment(1);
            tracing::warn!(
                event = %event.event_id,
                reason,
                error = %failed.failure,
                "insights: the provider produced no insight; skipping the event"
            );
            return Ok(Some(Outcome::Failed));
        }
    };
    metrics::histogram!(telemetry::LATENCY_SECONDS).record(insight.latency_ms as f64 / 1000.0);
    if retry(errors, backoff, shutdown, || {
        runner.store.upsert_event_insight(&insight)
    })
    .await
    .is_none()
    {
        return Ok(None);
    }
    publish(runner.log.as_ref(), &insight).await?;
    if !event.fingerprint.is_empty() {
        recent.insert(&event.fingerprint, insight.created_at);
    }
    tracing::info!(
        event = %event.event_id,
        service = %event.service_name,
        confidence = insight.confidence,
        "event insight generated"
    );
    Ok(Some(Outcome::Generated))
}

/// Publishes an insight on `insights.generated`, keyed by its service.
pub async fn publish(log: &dyn EventLog, insight: &EventInsight) -> Result<(), AnalystError> {
    let value = serde_json::to_vec(insight).map_err(|e| AnalystError::Encode(e.to_string()))?;
    log.append(
        topics::INSIGHTS_GENERATED,
        vec![Record::new(
            Some(&insight.service_name),
            value,
            insight.created_at,
        )],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_fingerprints_expire_by_time_and_stay_bounded() {
        let mut r = Recent::default();
        r.insert("fp-1", 1_000);
        assert!(r.within("fp-1", 1_000));
        assert!(!r.within("fp-1", 1_001), "older than the window");
        assert!(!r.within("fp-2", 0));
        for i in 0..=MAX_REMEMBERED {
            r.insert(&format!("fp-x{i}"), 5);
        }
        assert_eq!(r.at.len(), MAX_REMEMBERED);
        assert!(!r.within("fp-1", 0), "the oldest is forgotten");
    }
}
