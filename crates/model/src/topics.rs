//! Topic names, defined once. They come from the specifications sightline answers.

/// Normalized system events from every ingestion source.
pub const SYSTEM_EVENTS: &str = "system-events";
/// Raw metric points as ingested.
pub const METRICS_RAW: &str = "metrics.raw";
/// `metrics.raw` records that arrived after every rollup window they belong to had closed.
pub const METRICS_RAW_LATE: &str = "metrics.raw.late";
/// `system-events` records that arrived after their event-count window had closed.
pub const SYSTEM_EVENTS_LATE: &str = "system-events.late";
/// Windowed metric rollups.
pub const METRICS_AGGREGATED: &str = "metrics.aggregated";
/// Anomalies raised by the detectors (JSON [`crate::Anomaly`], key = service name).
pub const ANOMALIES: &str = "anomalies";
/// Newly detected incidents.
pub const INCIDENTS_DETECTED: &str = "incidents.detected";
/// Changes to existing incidents.
pub const INCIDENTS_UPDATED: &str = "incidents.updated";
/// Completed root-cause analyses.
pub const ANALYSIS_COMPLETED: &str = "analysis.completed";
/// Per-event insights of high-severity events (JSON [`crate::EventInsight`], key = service
/// name).
pub const INSIGHTS_GENERATED: &str = "insights.generated";

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// The name a topic or consumer group has on a cluster that several deployments share,
/// each under its own `namespace`: `"{namespace}.{name}"`, or `name` itself when the
/// namespace is empty. The Kafka log names its topics so, and the schema registry's
/// subjects follow the cluster's topic names, so deployments sharing a registry never
/// register under one another's subjects.
pub fn namespaced(namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        name.to_owned()
    } else {
        format!("{namespace}.{name}")
    }
}

/// A built-in topic with its default partition count and retention.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BuiltinTopic {
    /// Topic name.
    pub name: &'static str,
    /// Default number of partitions.
    pub partitions: u32,
    /// Default retention by age, in milliseconds.
    pub retention_ms: i64,
}

/// Every topic sightline creates at start-up, with the defaults from the architecture map.
pub const BUILTIN: &[BuiltinTopic] = &[
    BuiltinTopic {
        name: SYSTEM_EVENTS,
        partitions: 4,
        retention_ms: 7 * DAY_MS,
    },
    BuiltinTopic {
        name: METRICS_RAW,
        partitions: 4,
        retention_ms: 7 * DAY_MS,
    },
    BuiltinTopic {
        name: SYSTEM_EVENTS_LATE,
        partitions: 1,
        retention_ms: 7 * DAY_MS,
    },
    BuiltinTopic {
        name: METRICS_RAW_LATE,
        partitions: 1,
        retention_ms: 7 * DAY_MS,
    },
    BuiltinTopic {
        name: METRICS_AGGREGATED,
        partitions: 4,
        retention_ms: 30 * DAY_MS,
    },
    BuiltinTopic {
        name: ANOMALIES,
        partitions: 4,
        retention_ms: 30 * DAY_MS,
    },
    BuiltinTopic {
        name: INCIDENTS_DETECTED,
        partitions: 1,
        retention_ms: 90 * DAY_MS,
    },
    BuiltinTopic {
        name: INCIDENTS_UPDATED,
        partitions: 1,
        retention_ms: 90 * DAY_MS,
    },
    BuiltinTopic {
        name: ANALYSIS_COMPLETED,
        partitions: 1,
        retention_ms: 90 * DAY_MS,
    },
    BuiltinTopic {
        name: INSIGHTS_GENERATED,
        partitions: 1,
        retention_ms: 90 * DAY_MS,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_prefixes_names_and_an_empty_one_keeps_them() {
        assert_eq!(namespaced("", SYSTEM_EVENTS), "system-events");
        assert_eq!(namespaced("prod", METRICS_RAW), "prod.metrics.raw");
    }
}
