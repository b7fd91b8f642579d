//! From a [`Verdict`] to a stored [`Anomaly`]: the deterministic id, a severity, and the
//! one line a human reads ("latency_ms 812 ms on checkout is 6.3σ above its expected
//! 120 ms (expected 80–160)").

use sightline_model::{Anomaly, Severity, Signal};

use crate::Verdict;

/// Formats a number for an explanation: no needless decimals, none at all from 100 up.
pub fn fmt_value(v: f64) -> String {
    if !v.is_finite() {
        return if v > 0.0 {
            "∞".into()
        } else if v < 0.0 {
            "−∞".into()
        } else {
            "NaN".into()
        };
    }
    let a = v.abs();
    let s = if a >= 100.0 || a == a.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// The unit suffix a metric name implies (`latency_ms` → " ms").
pub fn unit_of(metric: &str) -> &'static str {
    let m = metric.to_ascii_lowercase();
    if m.ends_with("_ms") || m.contains("latency") {
        " ms"
    } else if m.ends_with("_pct") || m.ends_with("_percent") || m.ends_with("_usage") {
        "%"
    } else if m.ends_with("_bytes") {
        " B"
    } else if m.ends_with("_seconds") || m.ends_with("_s") {
        " s"
    } else {
        ""
    }
}

/// The severity of a verdict: by its deviation when it has one, else by its score.
pub fn severity_of(verdict: &Verdict) -> Severity {
    match verdict.sigmas.map(f64::abs) {
        Some(z) if z >= 10.0 => Severity::Critical,
        Some(z) if z >= 6.0 => Severity::High,
        Some(z) if z >= 4.0 => Severity::Medium,
        Some(_) => Severity::Low,
        None if verdict.score >= 0.999 => Severity::High,
        None => Severity::Medium,
    }
}

/// The one-line explanation of a verdict on `value` of `signal` of `service`, against
/// `baseline` (what the detector compares with, e.g. "its 1h mean").
pub fn explain(
    service: &str,
    signal: &Signal,
    value: f64,
    verdict: &Verdict,
    baseline: &str,
) -> String {
    let name = signal.name();
    let unit = unit_of(name);
    let v = |x: f64| format!("{}{unit}", fmt_value(x));
    let range = format!(
        "(expected {}–{})",
        fmt_value(verdict.expected_low),
        v(verdict.expected_high)
    );
    let direction = if verdict.is_above(value) {
        "above"
    } else {
        "below"
    };
    match verdict.sigmas {
        Some(z) if z.is_finite() => format!(
            "{name} {} on {service} is {:.1}σ {direction} {baseline} {} {range}",
            v(value),
            z.abs(),
            v(verdict.expected)
        ),
        _ => format!(
            "{name} {} on {service} is {direction} {baseline} {} {range}",
            v(value),
            v(verdict.expected)
        ),
    }
}

/// Turns a verdict into an anomaly with a deterministic id ([`Anomaly::id_for`]).
#[allow(clippy::too_many_arguments)]
pub fn to_anomaly(
    detector: &str,
    service: &str,
    signal: Signal,
    timestamp: i64,
    value: f64,
    verdict: &Verdict,
    baseline: &str,
    detected_at: i64,
) -> Anomaly {
    Anomaly {
        id: Anomaly::id_for(detector, service, &signal, timestamp),
        detector: detector.to_string(),
        service_name: service.to_string(),
        explanation: explain(service, &signal, value, verdict, baseline),
        signal,
        timestamp,
        value,
        expected_low: verdict.expected_low,
        expected_high: verdict.expected_high,
        score: verdict.score.clamp(0.0, 1.0),
        severity: severity_of(verdict),
        event_id: None,
        detected_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explanation_reads_like_a_sentence() {
        let verdict = Verdict {
            score: 0.99,
            expected: 120.0,
            expected_low: 80.0,
            expected_high: 160.0,
            anomalous: true,
            sigmas: Some(6.34),
        };
        let signal = Signal::Metric {
            metric_type: "latency_ms".into(),
        };
        let a = to_anomaly(
            "zscore",
            "checkout",
            signal.clone(),
            1_000,
            812.0,
            &verdict,
            "its 1h mean",
            2_000,
        );
        assert_eq!(
            a.explanation,
            "latency_ms 812 ms on checkout is 6.3σ above its 1h mean 120 ms (expected 80–160 ms)"
        );
        assert_eq!(a.id, Anomaly::id_for("zscore", "checkout", &signal, 1_000));
        assert_eq!(a.severity, Severity::High);
        assert_eq!(fmt_value(0.12345), "0.123");
        assert_eq!(fmt_value(2.50), "2.5");
    }
}
