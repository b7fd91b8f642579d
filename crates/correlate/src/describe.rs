//! Scores, severities, ids and the words: how an incident's severity is computed and how
//! its title and description are generated from the evidence.
//!
//! **Score** = the highest (detector score × criticality of the signal's service) over the
//! incident's signals × breadth, where breadth = `1 + 0.25·(n − 1)` for `n` affected
//! services, capped at 2. Events count with a detector score set by their severity
//! (critical 1.0, high 0.8, medium 0.5, low 0.3, info 0.1).
//!
//! **Severity** from the score: `≥ 1.2` critical, `≥ 0.8` high, `≥ 0.5` medium, otherwise
//! low (an incident is never `info`). When events are involved, the incident takes the more
//! severe of that and the most severe event.

use std::fmt::Write as _;

use sightline_model::{Severity, Topology};
use xxhash_rust::xxh3::Xxh3;

use crate::state::{Detail, Tracked};

/// Score at or above which an incident is critical.
pub const CRITICAL_SCORE: f64 = 1.2;
/// Score at or above which an incident is high.
pub const HIGH_SCORE: f64 = 0.8;
/// Score at or above which an incident is medium.
pub const MEDIUM_SCORE: f64 = 0.5;
/// Breadth factor cap.
pub const MAX_BREADTH: f64 = 2.0;

/// The breadth factor for `n` affected services: `1 + 0.25·(n − 1)`, at most 2.
pub fn breadth(n: usize) -> f64 {
    let extra = n.saturating_sub(1) as f64;
    (1.0 + 0.25 * extra).min(MAX_BREADTH)
}

/// The severity a score maps to (see the module documentation for the cut-offs).
pub fn severity_for_score(score: f64) -> Severity {
    if score >= CRITICAL_SCORE {
        Severity::Critical
    } else if score >= HIGH_SCORE {
        Severity::High
    } else if score >= MEDIUM_SCORE {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// The detector score an event counts with.
pub fn event_score(severity: Severity) -> f64 {
    match severity {
        Severity::Critical => 1.0,
        Severity::High => 0.8,
        Severity::Medium => 0.5,
        Severity::Low => 0.3,
        Severity::Info => 0.1,
    }
}

/// The more severe of two severities.
pub fn most_severe(a: Severity, b: Severity) -> Severity {
    // `Severity` orders most severe first.
    a.min(b)
}

/// A detector score as a number in 0..=1 (NaN counts as 0).
pub(crate) fn clamp_score(s: f64) -> f64 {
    if s.is_nan() { 0.0 } else { s.clamp(0.0, 1.0) }
}

fn hash_hex(prefix: &str, parts: &[&str]) -> String {
    let mut h = Xxh3::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(&[0x1f]);
    }
    format!("{prefix}-{:016x}", h.digest())
}

/// The id of the incident a group opens with its first signal.
pub fn incident_id(group_key: &str, first_source_id: &str) -> String {
    hash_hex("inc", &[group_key, first_source_id])
}

/// The id of the link between an incident and a signal.
pub fn correlation_id(incident_id: &str, source_id: &str) -> String {
    hash_hex("cor", &[incident_id, source_id])
}

/// The `fingerprint` of an incident: a hash of its group key.
pub(crate) fn group_fingerprint(group_key: &str) -> String {
    hash_hex("grp", &[group_key])
}

/// A duration for people: `850 ms`, `45 s`, `3 min`, `3 min 20 s`, `2 h 5 min`.
pub fn human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    if ms < 1000 {
        return format!("{ms} ms");
    }
    let s = ms / 1000;
    if s < 60 {
        return format!("{s} s");
    }
    let (m, rs) = (s / 60, s % 60);
    if m < 60 {
        return if rs == 0 || m >= 10 {
            format!("{m} min")
        } else {
            format!("{m} min {rs} s")
        };
    }
    let (h, rm) = (m / 60, m % 60);
    if rm == 0 {
        format!("{h} h")
    } else {
        format!("{h} h {rm} min")
    }
}

/// A number for people: integers without decimals, others with two.
pub(crate) fn num(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn truncate(s: &str, max: usize) -> String {
    let s = s.trim();
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// The upstream-most affected service: the one with the most other affected services
/// downstream of it; `current` wins ties, so the root only moves for a better one.
pub(crate) fn root_service(topology: &Topology, affected: &[String], current: &str) -> String {
    let count = |s: &str| {
        let down = topology.downstream_of(s);
        affected
            .iter()
            .filter(|a| down.contains(a.as_str()))
            .count()
    };
    let mut best = current.to_owned();
    let mut best_n = count(current);
    for s in affected {
        let n = count(s);
        if n > best_n {
            best = s.clone();
            best_n = n;
        }
    }
    best
}

/// Recomputes score, severity, title and description of a tracked incident from its
/// evidence. Returns the previous severity when it changed.
pub(crate) fn refresh(t: &mut Tracked, topology: &Topology) -> Option<Severity> {
    if t.manual {
        return None;
    }
    let best = t
        .signals
        .values()
        .map(|s| s.weighted_score)
        .fold(0.0_f64, f64::max);
    let n = t.incident.affected_services.len().max(1);
    let score = best * breadth(n);
    let mut severity = severity_for_score(score);
    if let Some(ev) = t.event_severity {
        severity = most_severe(severity, ev);
    }
    t.incident.score = score;
    let previous = t.incident.severity;
    t.incident.severity = severity;
    t.incident.title = title(t, topology);
    t.incident.description = description(t, topology);
    (previous != severity).then_some(previous)
}

fn ordered_signals(t: &Tracked) -> Vec<&crate::state::SignalSummary> {
    let mut v: Vec<_> = t.signals.values().collect();
    v.sort_by_key(|s| s.seq);
    v
}

fn title(t: &Tracked, topology: &Topology) -> String {
    let root = &t.incident.service_name;
    let signals = ordered_signals(t);
    let on_root: Vec<_> = signals
        .iter()
        .copied()
        .filter(|s| &s.service == root)
        .collect();
    let primary = on_root.first().or(signals.first()).copied();
    let mut title = match primary {
        Some(s) => match &s.detail {
            Detail::Anomaly { .. } => format!("{root}: {} anomaly", s.name),
            Detail::Event {
                event_type,
                details,
            } => format!("{root}: {event_type} \"{}\"", truncate(details, 60)),
        },
        None => format!("{root}: incident"),
    };
    if on_root.len() > 1 {
        let _ = write!(title, " and {} more signals", on_root.len() - 1);
    }
    let down = topology.downstream_of(root);
    let others: Vec<_> = t
        .incident
        .affected_services
        .iter()
        .filter(|s| *s != root)
        .collect();
    let n_down = others.iter().filter(|s| down.contains(s.as_str())).count();
    let n_other = others.len() - n_down;
    let mut extra = Vec::new();
    if n_down > 0 {
        extra.push(format!(
            "+{n_down} downstream service{}",
            if n_down == 1 { "" } else { "s" }
        ));
    }
    if n_other > 0 {
        extra.push(format!(
            "+{n_other} related service{}",
            if n_other == 1 { "" } else { "s" }
        ));
    }
    if !extra.is_empty() {
        let _ = write!(title, " ({})", extra.join(", "));
    }
    title
}

/// How many signals a description lists before summarising the rest.
const LISTED_SIGNALS: usize = 20;

fn description(t: &Tracked, topology: &Topology) -> String {
    let inc = &t.incident;
    let root = &inc.service_name;
    let mut d = String::new();
    let _ = writeln!(
        d,
        "{} incident on {root} (criticality {}), score {:.2}.",
        capitalize(inc.severity.as_str()),
        num(topology.criticality(root)),
        inc.score
    );
    let _ = writeln!(
        d,
        "Affected services: {}.",
        inc.affected_services.join(", ")
    );
    let _ = writeln!(d, "{} signal(s) in total; evidence:", inc.occurrences);
    let signals = ordered_signals(t);
    for s in signals.iter().take(LISTED_SIGNALS) {
        let at = human_duration(s.first_ts - t.first_signal_ts);
        let times = if s.count == 1 {
            "once".to_owned()
        } else {
            format!("{} times", s.count)
        };
        match &s.detail {
            Detail::Anomaly {
                value,
                expected_low,
                expected_high,
                ..
            } => {
                let _ = writeln!(
                    d,
                    "- {} {} = {} (expected {}–{}), {} detector, {times}, first at +{at}",
                    s.service,
                    s.name,
                    num(*value),
                    num(*expected_low),
                    num(*expected_high),
                    s.detector
                );
            }
            Detail::Event {
                event_type,
                details,
            } => {
                let _ = writeln!(
                    d,
                    "- {} {event_type} \"{}\", {times}, first at +{at}",
                    s.service,
                    truncate(details, 120)
                );
            }
        }
    }
    if signals.len() > LISTED_SIGNALS {
        let _ = writeln!(d, "- … and {} more signals", signals.len() - LISTED_SIGNALS);
    }
    if let Some(dep) = &t.cited_deployment {
        let _ = writeln!(d, "Likely cause: {}.", deployment_sentence(t, dep));
    }
    d.trim_end().to_owned()
}

/// "payment-service was deployed 3 min before the first error (version 2.4.1)".
pub(crate) fn deployment_sentence(t: &Tracked, dep: &crate::state::Deployment) -> String {
    let what = if t.has_events { "error" } else { "anomaly" };
    let mut s = format!(
        "{} was deployed {} before the first {what}",
        dep.service,
        human_duration(t.first_signal_ts - dep.at)
    );
    if let Some(v) = &dep.version {
        let _ = write!(s, " (version {v})");
    }
    s
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_offs_and_breadth() {
        assert_eq!(breadth(1), 1.0);
        assert_eq!(breadth(3), 1.5);
        assert_eq!(breadth(50), MAX_BREADTH);
        assert_eq!(severity_for_score(1.2), Severity::Critical);
        assert_eq!(severity_for_score(0.9), Severity::High);
        assert_eq!(severity_for_score(0.5), Severity::Medium);
        assert_eq!(severity_for_score(0.1), Severity::Low);
        assert_eq!(most_severe(Severity::Low, Severity::High), Severity::High);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(850), "850 ms");
        assert_eq!(human_duration(45_000), "45 s");
        assert_eq!(human_duration(180_000), "3 min");
        assert_eq!(human_duration(200_000), "3 min 20 s");
        assert_eq!(human_duration(7_500_000), "2 h 5 min");
    }

    #[test]
    fn ids_are_stable() {
        assert_eq!(
            incident_id("{service=\"db\"}", "an-1"),
            incident_id("{service=\"db\"}", "an-1")
        );
        assert_ne!(
            incident_id("{service=\"db\"}", "an-1"),
            incident_id("{service=\"db\"}", "an-2")
        );
        assert!(correlation_id("inc-1", "an-1").starts_with("cor-"));
    }
}
