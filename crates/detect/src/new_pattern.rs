//! New error patterns: the first time a service emits an ERROR/CRITICAL event whose
//! fingerprint it has never emitted before (at that level) is worth a look, whatever the
//! rates say.
//!
//! Memory is bounded: each service remembers at most `max_fingerprints_per_service`
//! fingerprints (least recently seen evicted first — an evicted fingerprint that returns
//! is "new" again, which for a pattern silent that long is the right call), and at most
//! `max_services` services (least recently active evicted). Recency is a logical clock of
//! observations, not wall time, so replays are deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sightline_model::{Anomaly, Event, Severity, Signal};

/// Configuration of a [`NewPatternDetector`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NewPatternConfig {
    /// Fingerprints remembered per service (LRU beyond). Default 10 000.
    pub max_fingerprints_per_service: usize,
    /// Services remembered (LRU beyond). Default 10 000.
    pub max_services: usize,
    /// Error-level events a service must have shown before a new fingerprint counts
    /// (the first events of a brand-new service are all "new"). Default 0.
    pub warmup_events: u64,
    /// How long after a service's first error-level event (event time) its fingerprints
    /// are learned silently. Every service has a repertoire of routine errors (timeouts,
    /// 500s with varying details): when sightline first sees a service, each of them is
    /// "new" once, and flagging them would open incidents on a healthy system. Default
    /// 1 h; 0 flags from the first event.
    pub learning_period_ms: i64,
    /// Severity of a new-pattern anomaly. A never-seen error is a lead, not by itself a
    /// page: at the default `medium` it joins the incident its service's other signals
    /// open (and names the new error in it) but opens none alone (see the correlator's
    /// `min_opening_anomaly_severity`). `None` keeps the event's own severity.
    pub severity: Option<Severity>,
}

impl Default for NewPatternConfig {
    fn default() -> Self {
        NewPatternConfig {
            max_fingerprints_per_service: 10_000,
            max_services: 10_000,
            warmup_events: 0,
            learning_period_ms: 3_600_000,
            severity: Some(Severity::Medium),
        }
    }
}

/// An LRU set keyed by string, with a logical clock.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct LruSet {
    last_used: BTreeMap<String, u64>,
    by_age: BTreeMap<u64, String>,
}

impl LruSet {
    /// Touches `key`; returns whether it was present.
    fn touch(&mut self, key: &str, tick: u64) -> bool {
        let present = match self.last_used.get_mut(key) {
            Some(t) => {
                self.by_age.remove(t);
                *t = tick;
                true
            }
            None => {
                self.last_used.insert(key.to_string(), tick);
                false
            }
        };
        self.by_age.insert(tick, key.to_string());
        present
    }

    fn evict_to(&mut self, cap: usize) -> Vec<String> {
        let mut evicted = Vec::new();
        while self.last_used.len() > cap {
            let Some((_, key)) = self.by_age.pop_first() else {
                break;
            };
            self.last_used.remove(&key);
            evicted.push(key);
        }
        evicted
    }

    fn len(&self) -> usize {
        self.last_used.len()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ServicePatterns {
    fingerprints: LruSet,
    error_events: u64,
    /// Event time of the service's first error-level event (start of its learning period).
    #[serde(default)]
    first_error_ms: Option<i64>,
}

/// Whether an event was a new pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatternVerdict {
    /// Not an error-level event: not tracked.
    Ignored,
    /// An error-level fingerprint this service has shown before (within the cap).
    Known,
    /// An error-level fingerprint this service has never shown (or not within the cap).
    New,
}

/// New error-pattern detector.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewPatternDetector {
    config: NewPatternConfig,
    services: BTreeMap<String, ServicePatterns>,
    service_lru: LruSet,
    tick: u64,
}

/// Whether an event is error level: severity critical/high, or event type ERROR/CRITICAL.
pub fn is_error_level(severity: Severity, event_type: &str) -> bool {
    matches!(severity, Severity::Critical | Severity::High)
        || event_type.eq_ignore_ascii_case("error")
        || event_type.eq_ignore_ascii_case("critical")
}

impl NewPatternDetector {
    /// A detector that has seen nothing.
    pub fn new(config: NewPatternConfig) -> Self {
        NewPatternDetector {
            config,
            services: BTreeMap::new(),
            service_lru: LruSet::default(),
            tick: 0,
        }
    }

    /// Fingerprints remembered for a service.
    pub fn remembered(&self, service: &str) -> usize {
        self.services
            .get(service)
            .map_or(0, |s| s.fingerprints.len())
    }

    /// Services remembered.
    pub fn services(&self) -> usize {
        self.services.len()
    }

    /// Judges one event given its parts; `timestamp` is its event time (ms).
    pub fn observe_parts(
        &mut self,
        service: &str,
        fingerprint: &str,
        severity: Severity,
        event_type: &str,
        timestamp: i64,
    ) -> PatternVerdict {
        if !is_error_level(severity, event_type) {
            return PatternVerdict::Ignored;
        }
        self.tick += 1;
        let tick = self.tick;
        self.service_lru.touch(service, tick);
        for gone in self.service_lru.evict_to(self.config.max_services.max(1)) {
            self.services.remove(&gone);
        }
        let patterns = self.services.entry(service.to_string()).or_default();
        let known = patterns.fingerprints.touch(fingerprint, tick);
        patterns
            .fingerprints
            .evict_to(self.config.max_fingerprints_per_service.max(1));
        patterns.error_events += 1;
        let learning_since = *patterns.first_error_ms.get_or_insert(timestamp);
        let learning = timestamp.saturating_sub(learning_since) < self.config.learning_period_ms;
        if known || learning || patterns.error_events <= self.config.warmup_events {
            PatternVerdict::Known
        } else {
            PatternVerdict::New
        }
    }

    /// Judges one event; a new pattern becomes an anomaly (`detector = "new_pattern"`,
    /// signal = the fingerprint, deterministic id from the event's timestamp).
    pub fn observe(&mut self, event: &Event, detected_at: i64) -> Option<Anomaly> {
        let verdict = self.observe_parts(
            &event.service_name,
            &event.fingerprint,
            event.severity,
            &event.event_type,
            event.timestamp,
        );
        if verdict != PatternVerdict::New {
            return None;
        }
        let signal = Signal::Pattern {
            fingerprint: event.fingerprint.clone(),
        };
        let summary: String = event.details.chars().take(120).collect();
        Some(Anomaly {
            id: Anomaly::id_for("new_pattern", &event.service_name, &signal, event.timestamp),
            detector: "new_pattern".into(),
            service_name: event.service_name.clone(),
            signal,
            timestamp: event.timestamp,
            value: 1.0,
            expected_low: 0.0,
            expected_high: 0.0,
            score: 1.0,
            severity: self.config.severity.unwrap_or(event.severity),
            explanation: format!(
                "new {} pattern on {}: first occurrence of {} ({summary})",
                event.event_type, event.service_name, event.fingerprint
            ),
            event_id: Some(event.event_id.clone()),
            detected_at,
        })
    }
}
