//! The correlator: anomalies and events that belong to one problem become **one**
//! incident, and every decision is explained.
//!
//! This is the "correlate" stage of the pipeline (ingest → stream → detect → **correlate**
//! → explain → act). It is pure, deterministic logic: no I/O, no wall clock, no randomness.
//! A wiring layer feeds it anomalies and `system-events` from the log with the current
//! time, publishes its [`Output`]s (`Opened` on `incidents.detected`, `Updated` on
//! `incidents.updated`, `Correlated` into `event_correlations`), and checkpoints its
//! [`CorrelatorState`] with the log positions it reflects: that layer is
//! [`runner::run_correlation`], the only part of the crate that does I/O.
//!
//! # The rules, in the order a signal meets them
//!
//! 1. **Redelivery.** A signal id already folded into an incident (or already suppressed)
//!    is ignored: no output, no counter on the incident. Each incident remembers its last
//!    `max_seen_ids` ids.
//! 2. **Silences.** A [`Silence`](sightline_model::Silence) active at `now_ms` whose
//!    matchers (`=`, `!=`, `=~`, `!~`; regular expressions anchored) all match the signal's
//!    labels suppresses it: [`SuppressionReason::Silenced`].
//! 3. **Grouping.** The signal's `group_by` label values form its group key (Alertmanager
//!    style). A key held by an active incident joins it. Repeats of one fingerprint
//!    ([`Anomaly::fingerprint`](sightline_model::Anomaly::fingerprint), the event
//!    fingerprint) increment `occurrences`; their timeline entries are rate-limited.
//! 4. **Inhibition.** A `medium`/`low` signal on a service downstream of an active
//!    critical incident's root is suppressed: [`SuppressionReason::Inhibited`].
//! 5. **Topology and time.** A signal on a service related (upstream or downstream, per
//!    [`Topology::related`](sightline_model::Topology::related)) to an active incident's
//!    service, or on the same service with another signal, within `correlation_window_ms`
//!    of that incident's last signal, folds into it. The incident is attributed to the
//!    upstream-most affected service (the one others depend on) and moves there when a
//!    later signal reveals a more upstream root. Each link is a
//!    [`Correlation`](sightline_model::Correlation): `causal` (dependency graph),
//!    `time_based` (same service, other signal) or `pattern_based` (same fingerprint, or
//!    only the same group labels). A signal that links two incidents merges them.
//! 6. **Flapping.** A group whose incidents opened and resolved `flap_threshold` times
//!    within `flap_window_ms` does not open a new incident: its last one is reopened with
//!    `flapping = true` and only resolves after `flap_resolve_after_ms` of quiet.
//! 7. Otherwise a **new incident** waits `group_wait_ms` collecting signals, then is
//!    published (`Opened`) with the correlations made meanwhile.
//!
//! Timers ([`Correlator::tick`], also run at the start of every signal call): publication
//! after the group wait, auto-resolve after `resolve_after_ms` without signals, coalesced
//! `Updated` after `group_interval_ms`, re-publication of open incidents after
//! `repeat_interval_ms`, eviction of resolved incidents after `retention_ms`.
//!
//! Ids are deterministic: an incident's id hashes its group key and first signal id
//! (`inc-<16 hex>`), a correlation's hashes the incident id and the linked id
//! (`cor-<16 hex>`). Severity and the generated words are described in [`describe`].
//!
//! # Example
//!
//! ```
//! use sightline_correlate::{Correlator, CorrelatorConfig, Output};
//! use sightline_model::{Anomaly, ServiceNode, Severity, Signal, Topology};
//!
//! // checkout calls db.
//! let mut topology = Topology::default();
//! topology.services.insert("db".into(), ServiceNode { depends_on: vec![], criticality: 2.0 });
//! topology.services.insert(
//!     "checkout".into(),
//!     ServiceNode { depends_on: vec!["db".into()], criticality: 1.0 },
//! );
//! let mut c = Correlator::new(CorrelatorConfig::default(), topology)?;
//!
//! let anomaly = |service: &str, metric: &str, t: i64| {
//!     let signal = Signal::Metric { metric_type: metric.into() };
//!     Anomaly {
//!         id: Anomaly::id_for("zscore", service, &signal, t),
//!         detector: "zscore".into(),
//!         service_name: service.into(),
//!         signal,
//!         timestamp: t,
//!         value: 900.0,
//!         expected_low: 80.0,
//!         expected_high: 120.0,
//!         score: 0.9,
//!         severity: Severity::High,
//!         explanation: "p99 far above its usual range".into(),
//!         event_id: None,
//!         detected_at: t,
//!     }
//! };
//!
//! // The downstream symptom arrives first, the upstream cause 2 s later.
//! assert!(c.on_anomaly(&anomaly("checkout", "latency_ms", 1_000), 1_000).is_empty());
//! assert!(c.on_anomaly(&anomaly("db", "latency_ms", 3_000), 3_000).is_empty());
//!
//! // After the group wait (10 s) one incident is published, rooted at db.
//! let out = c.tick(11_000);
//! let Some(Output::Opened(incident)) = out.first() else { panic!("expected an incident") };
//! assert_eq!(incident.service_name, "db");
//! assert_eq!(incident.affected_services, ["checkout", "db"]);
//! assert_eq!(incident.title, "db: latency_ms anomaly (+1 downstream service)");
//! assert!(matches!(&out[1], Output::Correlated(c) if c.kind.as_str() == "causal"));
//! # Ok::<(), sightline_correlate::CorrelateError>(())
//! ```

pub mod clock;
mod config;
mod correlator;
pub mod describe;
mod error;
pub mod incident_metrics;
mod output;
pub mod runner;
mod silence;
mod state;

pub use clock::SignalClock;
pub use config::CorrelatorConfig;
pub use correlator::{Correlator, ENGINE_ACTOR, ManualIncident};
pub use error::CorrelateError;
pub use output::{Output, Suppression, SuppressionReason};
pub use silence::{CompiledSilences, Labels};
pub use state::{CorrelatorState, CorrelatorStats, STATE_VERSION};
