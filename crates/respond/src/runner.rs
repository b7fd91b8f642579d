//! The rules runner: drives the trigger-rule engine ([`RuleSet`]) from the event log and
//! hands every [`Firing`] to the playbook side through a bounded channel.
//!
//! [`run_rules`] joins consumer group [`GROUP`] on `system-events`, `anomalies`,
//! `incidents.detected` and `incidents.updated` and loops (the shape of the correlation
//! runner):
//!
//! 1. **start** — reads the active rules from the store (retrying until it can), builds the
//!    rule set, loads the [`CHECKPOINT_JOB`] checkpoint (engine state + the source
//!    positions it reflects), restores it and seeks the subscription there. Records the
//!    log still delivers below those positions are skipped: their effect is in the state.
//! 2. **per record** — decodes it (events JSON or, with a codec, Avro; anomalies and
//!    incidents JSON) and evaluates it at `now` from the runner's [`Clock`]. Undecodable
//!    records are counted, logged and skipped.
//! 3. **firings** are sent into the caller's bounded channel before the runner reads on:
//!    when the playbook side is slow, the runner waits (backpressure), it never drops.
//! 4. **rules** are re-read every `reload_interval`, and at once when the optional
//!    `reload` [`Notify`] is woken (by the rules API). A rule that no longer compiles is
//!    logged and skipped; a failed read keeps the rules in force. Window and throttle
//!    state survives a reload for rules whose version (`updated_at`) did not change.
//! 5. **every `checkpoint_interval`** — saves engine state and positions together, then
//!    commits the offsets. Shutdown saves a final checkpoint.
//!
//! Restarts: after a graceful stop the checkpoint covers every firing sent, so nothing is
//! fired twice and no window loses its count. After a crash, records since the last
//! checkpoint are replayed into the restored state and may fire again — with the same
//! deterministic [`Firing::id`], so the playbook side refuses to run one twice.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sightline_codec::{Codec, read_event};
use sightline_log::{Delivered, EventLog, Subscription};
use sightline_model::{Anomaly, Clock, Incident, topics};
use sightline_store::Store;
use sightline_stream::{CheckpointStore, SourcePositions};
use tokio::sync::{Notify, mpsc};

use crate::trigger::{CompiledRule, RuleSet, RuleSetState, Stats};
use crate::{Firing, Subject};

/// The consumer group the runner commits its positions under.
pub const GROUP: &str = "rules";

/// The topics the runner consumes.
pub const TOPICS: [&str; 4] = [
    topics::SYSTEM_EVENTS,
    topics::ANOMALIES,
    topics::INCIDENTS_DETECTED,
    topics::INCIDENTS_UPDATED,
];

/// The name the runner's checkpoint is saved under in the [`CheckpointStore`].
pub const CHECKPOINT_JOB: &str = "rules";

/// The checkpoint format version this build writes and reads.
const CHECKPOINT_VERSION: u32 = 1;

/// Metric names of the rules runner.
pub mod telemetry {
    /// Records read from the input topics, by `topic`.
    pub const RECORDS_IN: &str = "sightline_rules_records_in_total";
    /// Records skipped because the restored checkpoint already covers them.
    pub const REPLAY_SKIPPED: &str = "sightline_rules_replay_skipped_total";
    /// Records that could not be decoded, by `topic`.
    pub const REJECTED: &str = "sightline_rules_rejected_total";
    /// Rules evaluated (index candidates) against a subject.
    pub const EVALUATIONS: &str = "sightline_rules_evaluations_total";
    /// Evaluations whose condition held.
    pub const MATCHES: &str = "sightline_rules_matches_total";
    /// Firings sent to the playbook side.
    pub const FIRINGS: &str = "sightline_rules_firings_total";
    /// Firings held back by throttles.
    pub const THROTTLED: &str = "sightline_rules_throttled_total";
    /// Stored rules that do not compile (skipped).
    pub const BAD_RULES: &str = "sightline_rules_bad_rules_total";
    /// Failed reads of the rules (the previous ones stay in force).
    pub const RELOAD_ERRORS: &str = "sightline_rules_reload_errors_total";
    /// Active rules in force.
    pub const ACTIVE_RULES: &str = "sightline_rules_active";
}

/// What stops the rules runner.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The event log failed (reading or committing).
    #[error("event log: {0}")]
    Log(#[from] sightline_log::LogError),
    /// Saving or loading the checkpoint failed.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] sightline_stream::StreamError),
    /// Encoding the checkpoint failed.
    #[error("cannot encode: {0}")]
    Encode(String),
    /// The receiver of firings is gone: nobody would act on them.
    #[error("the firing receiver was dropped")]
    Closed,
}

/// Settings of the rules runner.
#[derive(Clone, Debug)]
pub struct RulesRunnerConfig {
    /// Reads Avro-encoded system events; JSON is always read. Default `None`.
    pub codec: Option<Codec>,
    /// How often the rules are re-read from the store. Default 5 s.
    pub reload_interval: Duration,
    /// How often state is checkpointed and offsets committed. Default 5 s.
    pub checkpoint_interval: Duration,
    /// Most records read at a time. Default 5000.
    pub batch_size: usize,
    /// Pause before retrying the first read of the rules. Default 500 ms.
    pub retry_backoff: Duration,
}

impl Default for RulesRunnerConfig {
    fn default() -> Self {
        Self {
            codec: None,
            reload_interval: Duration::from_secs(5),
            checkpoint_interval: Duration::from_secs(5),
            batch_size: 5000,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// What the runner checkpoints (JSON).
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    version: u32,
    positions: SourcePositions,
    state: RuleSetState,
}

/// Where the runner gets what it needs.
#[derive(Debug, Clone)]
pub struct RulesRunner {
    /// The event log to consume.
    pub log: Arc<dyn EventLog>,
    /// Where the rules are read from.
    pub store: Arc<dyn Store>,
    /// Where the engine state is checkpointed.
    pub checkpoints: Arc<dyn CheckpointStore>,
    /// The clock rules are evaluated at (windows, throttles, `$timediff_*`).
    pub clock: Clock,
    /// Woken when rules change, for an immediate reload.
    pub reload: Option<Arc<Notify>>,
    /// Settings.
    pub config: RulesRunnerConfig,
}

/// Runs the rules until `shutdown` completes (then saves a final checkpoint and returns
/// `Ok`), or until the log or the checkpoint store fails, or `firings` is closed.
pub async fn run_rules(
    runner: RulesRunner,
    firings: mpsc::Sender<Firing>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), RunnerError> {
    let RulesRunner {
        log,
        store,
        checkpoints,
        clock,
        reload,
        config,
    } = runner;
    let mut shutdown = std::pin::pin!(shutdown);
    sightline_stream::runner::ensure_builtin_topics(log.as_ref(), &TOPICS).await?;
    let rules = loop {
        match load_rules(store.as_ref()).await {
            Some(r) => break r,
            None => tokio::select! {
                biased;
                () = shutdown.as_mut() => return Ok(()),
                () = tokio::time::sleep(config.retry_backoff) => {}
            },
        }
    };
    let mut loaded = rules.iter().map(|r| r.rule().clone()).collect::<Vec<_>>();
    let mut set = RuleSet::new(rules);
    let mut positions = restore(checkpoints.as_ref(), &mut set).await?;
    metrics::gauge!(telemetry::ACTIVE_RULES).set(set.rules().len() as f64);
    let restored = positions.clone();
    let mut sub = log.subscribe(GROUP, &TOPICS).await?;
    sightline_stream::runner::seek_to(sub.as_mut(), &restored, GROUP);
    tracing::info!(
        group = GROUP,
        rules = set.rules().len(),
        "rules runner started"
    );

    let mut reload_tick = tokio::time::interval(config.reload_interval);
    reload_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    reload_tick.reset();
    let mut last_checkpoint = Instant::now();
    let mut dirty = false;
    let mut reported = set.stats();
    let mut out: Vec<Firing> = Vec::new();
    loop {
        tokio::select! {
            biased;
            () = shutdown.as_mut() => break,
            // `notify_one` keeps a permit, so a wake-up between two iterations is not lost.
            () = reload_wanted(reload.as_deref()) => {
                reload_rules(store.as_ref(), &mut set, &mut loaded).await;
            }
            _ = reload_tick.tick() => reload_rules(store.as_ref(), &mut set, &mut loaded).await,
            batch = sub.next_batch(config.batch_size.max(1)) => {
                let batch = batch?;
                dirty = dirty || !batch.is_empty();
                for d in &batch {
                    out.clear();
                    process(&mut set, &mut positions, &restored, &config, &clock, d, &mut out);
                    for f in out.drain(..) {
                        tokio::select! {
                            biased;
                            // Stopping mid-batch: no checkpoint, so these records are
                            // replayed (and their firings re-sent, same ids) next time.
                            () = shutdown.as_mut() => {
                                tracing::info!("rules runner stopped while handing over firings");
                                return Ok(());
                            }
                            sent = firings.send(f) => sent.map_err(|_| RunnerError::Closed)?,
                        }
                    }
                }
                report(&mut reported, set.stats());
            }
        }
        if dirty && last_checkpoint.elapsed() >= config.checkpoint_interval {
            checkpoint(
                &mut set,
                &positions,
                &clock,
                checkpoints.as_ref(),
                sub.as_mut(),
            )
            .await?;
            dirty = false;
            last_checkpoint = Instant::now();
        }
    }
    if dirty {
        checkpoint(
            &mut set,
            &positions,
            &clock,
            checkpoints.as_ref(),
            sub.as_mut(),
        )
        .await?;
    }
    tracing::info!("rules runner stopped");
    Ok(())
}

/// Completes when the rules API signals a change; never without a [`Notify`].
async fn reload_wanted(reload: Option<&Notify>) {
    match reload {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// The active rules that compile; `None` when the store could not be read.
async fn load_rules(store: &dyn Store) -> Option<Vec<CompiledRule>> {
    let rules = match store.list_rules(true).await {
        Ok(r) => r,
        Err(error) => {
            metrics::counter!(telemetry::RELOAD_ERRORS).increment(1);
            tracing::warn!(%error, "rules: reading the rules failed");
            return None;
        }
    };
    Some(
        rules
            .into_iter()
            .filter_map(|r| {
                let id = r.id.clone();
                match CompiledRule::compile(r) {
                    Ok(c) => Some(c),
                    Err(error) => {
                        metrics::counter!(telemetry::BAD_RULES).increment(1);
                        tracing::warn!(%error, rule = %id, "rules: skipping a rule that does not compile");
                        None
                    }
                }
            })
            .collect(),
    )
}

async fn reload_rules(
    store: &dyn Store,
    set: &mut RuleSet,
    loaded: &mut Vec<sightline_model::TriggerRule>,
) {
    let Some(rules) = load_rules(store).await else {
        return;
    };
    if rules.len() == loaded.len() && rules.iter().zip(loaded.iter()).all(|(a, b)| a.rule() == b) {
        return;
    }
    *loaded = rules.iter().map(|r| r.rule().clone()).collect();
    tracing::info!(rules = rules.len(), "rules: rules changed");
    set.replace_rules(rules);
    metrics::gauge!(telemetry::ACTIVE_RULES).set(set.rules().len() as f64);
}

async fn restore(
    checkpoints: &dyn CheckpointStore,
    set: &mut RuleSet,
) -> Result<SourcePositions, RunnerError> {
    let Some(bytes) = checkpoints.load(CHECKPOINT_JOB).await? else {
        return Ok(SourcePositions::default());
    };
    match serde_json::from_slice::<Snapshot>(&bytes) {
        Ok(s) if s.version == CHECKPOINT_VERSION => {
            set.restore(s.state);
            tracing::info!(positions = ?s.positions, "rules: restored checkpoint");
            Ok(s.positions)
        }
        Ok(s) => {
            tracing::error!(
                found = s.version,
                supported = CHECKPOINT_VERSION,
                "rules: checkpoint of another version; starting with empty state"
            );
            Ok(SourcePositions::default())
        }
        Err(error) => {
            tracing::error!(%error, "rules: unusable checkpoint; starting with empty state");
            Ok(SourcePositions::default())
        }
    }
}

async fn checkpoint(
    set: &mut RuleSet,
    positions: &SourcePositions,
    clock: &Clock,
    checkpoints: &dyn CheckpointStore,
    sub: &mut dyn Subscription,
) -> Result<(), RunnerError> {
    let snapshot = Snapshot {
        version: CHECKPOINT_VERSION,
        positions: positions.clone(),
        state: set.state(clock.now_ms()),
    };
    let bytes = serde_json::to_vec(&snapshot).map_err(|e| RunnerError::Encode(e.to_string()))?;
    checkpoints.save(CHECKPOINT_JOB, bytes).await?;
    sightline_stream::runner::commit_positions(sub, positions).await?;
    Ok(())
}

/// Decodes one record and evaluates it; firings go to `out`.
fn process(
    set: &mut RuleSet,
    positions: &mut SourcePositions,
    restored: &SourcePositions,
    config: &RulesRunnerConfig,
    clock: &Clock,
    d: &Delivered,
    out: &mut Vec<Firing>,
) {
    if restored
        .get(&d.topic, d.partition)
        .is_some_and(|next| d.offset < next)
    {
        metrics::counter!(telemetry::REPLAY_SKIPPED).increment(1);
        return;
    }
    metrics::counter!(telemetry::RECORDS_IN, "topic" => d.topic.to_string()).increment(1);
    let subject = match &*d.topic {
        topics::SYSTEM_EVENTS => {
            read_event(&d.record.value, config.codec.as_ref()).map(|e| Subject::Event(Box::new(e)))
        }
        topics::ANOMALIES => serde_json::from_slice::<Anomaly>(&d.record.value)
            .map(|a| Subject::Anomaly(Box::new(a)))
            .map_err(|e| format!("not an anomaly: {e}")),
        topics::INCIDENTS_DETECTED | topics::INCIDENTS_UPDATED => {
            serde_json::from_slice::<Incident>(&d.record.value)
                .map(|i| Subject::Incident(Box::new(i)))
                .map_err(|e| format!("not an incident: {e}"))
        }
        other => Err(format!("the rules runner does not read '{other}'")),
    };
    match subject {
        Ok(s) => {
            set.observe(&s, clock.now_ms(), out);
        }
        Err(reason) => {
            metrics::counter!(telemetry::REJECTED, "topic" => d.topic.to_string()).increment(1);
            tracing::warn!(
                topic = %d.topic, partition = d.partition, offset = d.offset, %reason,
                "rules: skipping a record it cannot decode"
            );
        }
    }
    positions.advance(&d.topic, d.partition, d.offset);
}

/// Adds what the engine counted since the last report to the metrics.
fn report(last: &mut Stats, now: Stats) {
    metrics::counter!(telemetry::EVALUATIONS).increment(now.evaluations - last.evaluations);
    metrics::counter!(telemetry::MATCHES).increment(now.matches - last.matches);
    metrics::counter!(telemetry::FIRINGS).increment(now.firings - last.firings);
    metrics::counter!(telemetry::THROTTLED).increment(now.throttled - last.throttled);
    *last = now;
}
