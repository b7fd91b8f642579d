//! The incident business metrics — opened, resolved, open now, time to acknowledge and
//! time to resolve, each by severity — named once here because two places change
//! incidents: the correlation runner (incidents it opens, resolves automatically or merges
//! away) and the API (incidents created by hand, operators' status changes). Each records
//! the change it makes, so every transition is observed once, on the node that made it.
//!
//! Labels are bounded on purpose: `severity` has five values and `status` two. Service
//! names, titles or ids never become labels — they are unbounded and would make every
//! incident a new time series.
//!
//! An incident that is reopened and then acknowledged or resolved again is observed
//! again, its time still measured from detection; reopening is rare and the reopened
//! incident is work done again.

use sightline_model::{Incident, IncidentStatus, Severity};

use crate::Output;

/// Incidents opened (detected or created by hand), by `severity`.
pub const OPENED: &str = "sightline_incidents_opened_total";
/// Incidents that became resolved (automatically, by an operator, or merged into
/// another), by `severity`.
pub const RESOLVED: &str = "sightline_incidents_resolved_total";
/// Incidents not resolved now, by `severity` and `status` (`open`, `acknowledged`); set
/// from the store's counts, so it is right after a restart and the same on every node.
pub const OPEN: &str = "sightline_incidents_open";
/// From detection to acknowledgement, seconds, by `severity` (MTTA = `_sum / _count`).
pub const TIME_TO_ACKNOWLEDGE: &str = "sightline_incident_time_to_acknowledge_seconds";
/// From detection to resolution, seconds, by `severity` (MTTR = `_sum / _count`).
pub const TIME_TO_RESOLVE: &str = "sightline_incident_time_to_resolve_seconds";

/// Histogram buckets (seconds) for [`TIME_TO_ACKNOWLEDGE`] and [`TIME_TO_RESOLVE`]:
/// 30 s to a week, dense in the minutes-to-hours range incidents live in.
pub const DURATION_BUCKETS: &[f64] = &[
    30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1_800.0, 3_600.0, 7_200.0, 14_400.0, 28_800.0,
    43_200.0, 86_400.0, 172_800.0, 604_800.0,
];

/// The unresolved statuses [`OPEN`] reports.
const UNRESOLVED: [IncidentStatus; 2] = [IncidentStatus::Open, IncidentStatus::Acknowledged];

/// Counts a new incident.
pub fn opened(incident: &Incident) {
    metrics::counter!(OPENED, "severity" => incident.severity.as_str()).increment(1);
}

/// Observes the time to acknowledge of an incident that just became acknowledged.
pub fn acknowledged(incident: &Incident) {
    if let Some(at) = incident.acknowledged_at {
        metrics::histogram!(TIME_TO_ACKNOWLEDGE, "severity" => incident.severity.as_str())
            .record(seconds_since_detection(incident, at));
    }
}

/// Counts an incident that just became resolved and observes its time to resolve.
pub fn resolved(incident: &Incident) {
    let severity = incident.severity.as_str();
    metrics::counter!(RESOLVED, "severity" => severity).increment(1);
    if let Some(at) = incident.resolved_at {
        metrics::histogram!(TIME_TO_RESOLVE, "severity" => severity)
            .record(seconds_since_detection(incident, at));
    }
}

/// Sets [`OPEN`] from `(status, severity, count)` rows: every unresolved status and
/// severity gets a value, zero when no row names it, so a series drops back to zero
/// instead of keeping its last count.
pub fn set_open(counts: &[(IncidentStatus, Severity, u64)]) {
    for status in UNRESOLVED {
        for severity in Severity::ALL {
            let n: u64 = counts
                .iter()
                .filter(|(st, sev, _)| *st == status && *sev == severity)
                .map(|(_, _, n)| n)
                .sum();
            metrics::gauge!(OPEN, "severity" => severity.as_str(), "status" => status.as_str())
                .set(n as f64);
        }
    }
}

/// Records what a correlator output changed: `Opened` opens an incident; an `Updated`
/// carrying the moment of resolution (`resolved_at == updated_at`: the correlator resolved
/// it just now, on its own or by merging it into another) resolves one. Operator changes
/// seen on `incidents.updated` produce no output: the API node that made them recorded them.
pub(crate) fn record_output(output: &Output) {
    match output {
        Output::Opened(incident) => opened(incident),
        Output::Updated(incident)
            if incident.status == IncidentStatus::Resolved
                && incident.resolved_at == Some(incident.updated_at) =>
        {
            resolved(incident);
        }
        Output::Updated(_) | Output::Correlated(_) | Output::Suppressed(_) => {}
    }
}

/// `at - detected_at` in seconds, never negative (clocks of two nodes may disagree).
fn seconds_since_detection(incident: &Incident, at: i64) -> f64 {
    at.saturating_sub(incident.detected_at).max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use metrics_exporter_prometheus::PrometheusBuilder;
    use sightline_model::{Anomaly, Signal, Topology};

    use super::*;
    use crate::{Correlator, CorrelatorConfig};

    fn anomaly(t: i64) -> Anomaly {
        let signal = Signal::Metric {
            metric_type: "latency_ms".into(),
        };
        Anomaly {
            id: Anomaly::id_for("zscore", "search", &signal, t),
            detector: "zscore".into(),
            service_name: "search".into(),
            signal,
            timestamp: t,
            value: 900.0,
            expected_low: 80.0,
            expected_high: 120.0,
            score: 0.9,
            severity: Severity::High,
            explanation: "p99 far above its usual range".into(),
            event_id: None,
            detected_at: t,
        }
    }

    /// The value of the series whose line starts with `series` (name and labels).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    #[test]
    fn correlator_outputs_count_each_opening_and_resolution_once() {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                metrics_exporter_prometheus::Matcher::Full(TIME_TO_RESOLVE.into()),
                DURATION_BUCKETS,
            )
            .expect("buckets")
            .build_recorder();
        let handle = recorder.handle();
        let mut c =
            Correlator::new(CorrelatorConfig::default(), Topology::default()).expect("correlator");
        let mut outputs = c.on_anomaly(&anomaly(0), 0);
        outputs.extend(c.tick(10_000));
        // A later signal only updates the open incident.
        outputs.extend(c.on_anomaly(&anomaly(100_000), 100_000));
        outputs.extend(c.tick(200_000));
        // Quiet long enough: resolved automatically, once, however often time moves on.
        outputs.extend(c.tick(1_000_000));
        outputs.extend(c.tick(1_100_000));
        let resolved_versions: Vec<&Incident> = outputs
            .iter()
            .filter_map(Output::incident)
            .filter(|i| i.status == IncidentStatus::Resolved)
            .collect();
        assert_eq!(resolved_versions.len(), 1, "{outputs:#?}");
        // The operator's echo of a change the correlator already holds changes nothing.
        let echo = resolved_versions[0].clone();
        outputs.extend(c.apply_external_update(&echo, 1_200_000));
        metrics::with_local_recorder(&recorder, || {
            outputs.iter().for_each(record_output);
        });

        let text = handle.render();
        assert_eq!(
            value(
                &text,
                r#"sightline_incidents_opened_total{severity="high"}"#
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                r#"sightline_incidents_resolved_total{severity="high"}"#
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                r#"sightline_incident_time_to_resolve_seconds_count{severity="high"}"#
            ),
            Some(1.0),
            "{text}"
        );
        let resolved_after = (echo.resolved_at.expect("resolved_at") - echo.detected_at) / 1000;
        assert_eq!(
            value(
                &text,
                r#"sightline_incident_time_to_resolve_seconds_sum{severity="high"}"#
            ),
            Some(resolved_after as f64),
            "{text}"
        );
        // Minutes-to-hours buckets, not the sub-second latency ones.
        assert!(
            text.contains(
                r#"sightline_incident_time_to_resolve_seconds_bucket{severity="high",le="3600"}"#
            ),
            "{text}"
        );
    }

    #[test]
    fn open_gauge_reports_zero_for_severities_without_incidents() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            set_open(&[
                (IncidentStatus::Open, Severity::Critical, 2),
                (IncidentStatus::Acknowledged, Severity::Low, 1),
            ]);
            // A later refresh where the critical ones are gone.
            set_open(&[(IncidentStatus::Acknowledged, Severity::Low, 1)]);
        });
        let text = handle.render();
        assert_eq!(
            value(
                &text,
                r#"sightline_incidents_open{severity="critical",status="open"}"#
            ),
            Some(0.0),
            "{text}"
        );
        assert_eq!(
            value(
                &text,
                r#"sightline_incidents_open{severity="low",status="acknowledged"}"#
            ),
            Some(1.0),
            "{text}"
        );
        let series = text
            .lines()
            .filter(|l| l.starts_with("sightline_incidents_open{"))
            .count();
        assert_eq!(series, 10, "{text}");
    }
}
