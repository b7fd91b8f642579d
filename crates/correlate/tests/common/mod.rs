//! Shared builders for the correlator's integration tests: a small service graph,
//! anomalies, events, and output filters. Time is whatever `now_ms` the test passes.
#![allow(dead_code)]

use std::collections::BTreeMap;

use sightline_correlate::{Correlator, CorrelatorConfig, Output, Suppression};
use sightline_model::{
    Anomaly, Correlation, Event, Incident, ServiceNode, Severity, Signal, SourceType, Topology,
};

/// frontend → checkout → {db, payments}; catalog → db; `search` stands alone.
/// db has criticality 2.
pub fn topology() -> Topology {
    let mut t = Topology::default();
    let mut add = |name: &str, deps: &[&str], criticality: f64| {
        t.services.insert(
            name.into(),
            ServiceNode {
                depends_on: deps.iter().map(|d| d.to_string()).collect(),
                criticality,
            },
        );
    };
    add("frontend", &["checkout", "catalog"], 1.0);
    add("checkout", &["db", "payments"], 1.0);
    add("catalog", &["db"], 1.0);
    add("payments", &[], 1.0);
    add("db", &[], 2.0);
    add("search", &[], 1.0);
    t.validate().expect("valid topology");
    t
}

pub fn correlator() -> Correlator {
    Correlator::new(CorrelatorConfig::default(), topology()).expect("valid config")
}

pub fn correlator_with(config: CorrelatorConfig) -> Correlator {
    Correlator::new(config, topology()).expect("valid config")
}

/// An anomaly of `zscore` on a metric of a service at event time `t`, score 0.9, high.
pub fn anomaly(service: &str, metric: &str, t: i64) -> Anomaly {
    anomaly_with(service, metric, t, 0.9, Severity::High)
}

pub fn anomaly_with(
    service: &str,
    metric: &str,
    t: i64,
    score: f64,
    severity: Severity,
) -> Anomaly {
    let signal = Signal::Metric {
        metric_type: metric.into(),
    };
    Anomaly {
        id: Anomaly::id_for("zscore", service, &signal, t),
        detector: "zscore".into(),
        service_name: service.into(),
        signal,
        timestamp: t,
        value: 950.0,
        expected_low: 80.0,
        expected_high: 120.0,
        score,
        severity,
        explanation: format!("{metric} 950 far above 80–120"),
        event_id: None,
        detected_at: t,
    }
}

pub fn event(id: &str, service: &str, event_type: &str, severity: Severity, t: i64) -> Event {
    Event {
        event_id: id.into(),
        service_name: service.into(),
        event_type: event_type.into(),
        timestamp: t,
        environment: "PRODUCTION".into(),
        details: format!("{event_type} in {service}: card declined"),
        severity,
        metadata: serde_json::Map::new(),
        source: "test".into(),
        source_type: SourceType::Http,
        host: Some("host-1".into()),
        tags: BTreeMap::new(),
        fingerprint: format!("fp-{service}-{event_type}"),
        correlation_id: format!("req-{id}"),
        received_at: t,
    }
}

pub fn opened(out: &[Output]) -> Vec<&Incident> {
    out.iter()
        .filter_map(|o| match o {
            Output::Opened(i) => Some(i),
            _ => None,
        })
        .collect()
}

pub fn updated(out: &[Output]) -> Vec<&Incident> {
    out.iter()
        .filter_map(|o| match o {
            Output::Updated(i) => Some(i),
            _ => None,
        })
        .collect()
}

pub fn correlations(out: &[Output]) -> Vec<&Correlation> {
    out.iter()
        .filter_map(|o| match o {
            Output::Correlated(c) => Some(c),
            _ => None,
        })
        .collect()
}

pub fn suppressions(out: &[Output]) -> Vec<&Suppression> {
    out.iter()
        .filter_map(|o| match o {
            Output::Suppressed(s) => Some(s),
            _ => None,
        })
        .collect()
}
