//! Trigger rules: *when* sightline responds. A rule is a condition (a JSON document in the
//! rules query language, compiled by `sightline-respond`) over events, anomalies or
//! incidents, with a severity floor, an optional count-in-window threshold, throttles
//! keyed by group, and the response template (playbook) to start when it fires.
//!
//! This module owns the shape and the checks that need no compiler (names, ranges,
//! combinations); the condition document itself is checked by
//! `sightline_respond::Condition::compile`, which names the faulty path.

use serde::{Deserialize, Serialize};

use crate::{Severity, ValidationError, validation};

/// Bounds of trigger-rule fields, defined once so docs, API and checks agree.
pub mod rule_limits {
    /// Longest rule name.
    pub const NAME: usize = 128;
    /// Longest description, in bytes.
    pub const DESCRIPTION: usize = 4096;
    /// Longest window: one week.
    pub const WINDOW_MINUTES: u32 = 7 * 24 * 60;
    /// Largest count threshold.
    pub const THRESHOLD_COUNT: u32 = 10_000;
    /// Most `group_by` paths.
    pub const GROUP_BY: usize = 8;
    /// Longest `group_by` path.
    pub const GROUP_BY_PATH: usize = 256;
    /// Largest `max_triggers_per_hour`.
    pub const TRIGGERS_PER_HOUR: u32 = 3600;
    /// Longest throttle period: one week.
    pub const THROTTLE_MINUTES: u32 = 7 * 24 * 60;
}

/// What a rule is evaluated against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppliesTo {
    /// System events from `system-events`.
    Events,
    /// Anomalies from `anomalies`.
    Anomalies,
    /// Incidents from `incidents.detected` / `incidents.updated`.
    Incidents,
}

impl AppliesTo {
    /// The canonical lower-case name (also the stored form).
    pub fn as_str(self) -> &'static str {
        match self {
            AppliesTo::Events => "events",
            AppliesTo::Anomalies => "anomalies",
            AppliesTo::Incidents => "incidents",
        }
    }

    /// Parses the stored form; `field` names the input in the error.
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        match s {
            "events" => Ok(AppliesTo::Events),
            "anomalies" => Ok(AppliesTo::Anomalies),
            "incidents" => Ok(AppliesTo::Incidents),
            other => Err(ValidationError::new(
                field,
                format!("unknown subject '{other}': expected events, anomalies or incidents"),
            )),
        }
    }
}

/// How often one group of one rule may fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Throttle {
    /// At most once within `minutes` of the previous firing of the group (a fixed quiet
    /// period measured from the firing).
    OnceWithin {
        /// Length of the period.
        minutes: u32,
    },
    /// Once, then again only after the group has seen no match for `minutes` (every
    /// suppressed match restarts the period: a debounce for flapping signals).
    OnceAfter {
        /// Length of the quiet period.
        minutes: u32,
    },
}

impl Throttle {
    /// The period in milliseconds.
    pub fn period_ms(self) -> i64 {
        let m = match self {
            Throttle::OnceWithin { minutes } | Throttle::OnceAfter { minutes } => minutes,
        };
        i64::from(m) * 60_000
    }
}

/// What a client submits to create or replace a rule (`POST`/`PUT /api/v1/rules/triggers`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRuleSpec {
    /// Human name.
    pub name: String,
    /// What the rule is for.
    #[serde(default)]
    pub description: String,
    /// What it is evaluated against.
    pub applies_to: AppliesTo,
    /// The condition document (see `sightline_respond::condition`).
    pub conditions: serde_json::Value,
    /// Only subjects at least this severe are considered.
    #[serde(default)]
    pub severity_threshold: Option<Severity>,
    /// With `threshold_count`: fire when that many matches of one group fall within this
    /// many minutes.
    #[serde(default)]
    pub time_window_minutes: Option<u32>,
    /// Matches needed to fire (1 = every match fires).
    #[serde(default = "one")]
    pub threshold_count: u32,
    /// Paths (as in conditions) whose values key windows and throttles.
    #[serde(default)]
    pub group_by: Vec<String>,
    /// At most this many firings per group per rolling hour.
    #[serde(default)]
    pub max_triggers_per_hour: Option<u32>,
    /// Once-within / once-after throttle per group.
    #[serde(default)]
    pub throttle: Option<Throttle>,
    /// The response template (playbook) to start when it fires.
    #[serde(default)]
    pub response_template_id: Option<String>,
    /// Inactive rules are stored but never evaluated.
    #[serde(default = "yes")]
    pub active: bool,
}

fn one() -> u32 {
    1
}

fn yes() -> bool {
    true
}

/// A stored trigger rule (table `trigger_rules`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TriggerRule {
    /// A UUIDv7.
    pub id: String,
    /// Human name.
    pub name: String,
    /// What the rule is for.
    pub description: String,
    /// What it is evaluated against.
    pub applies_to: AppliesTo,
    /// The condition document.
    pub conditions: serde_json::Value,
    /// Only subjects at least this severe are considered.
    pub severity_threshold: Option<Severity>,
    /// Count window in minutes (with `threshold_count`).
    pub time_window_minutes: Option<u32>,
    /// Matches needed to fire.
    pub threshold_count: u32,
    /// Paths whose values key windows and throttles.
    pub group_by: Vec<String>,
    /// At most this many firings per group per rolling hour.
    pub max_triggers_per_hour: Option<u32>,
    /// Once-within / once-after throttle per group.
    pub throttle: Option<Throttle>,
    /// The response template to start when it fires.
    pub response_template_id: Option<String>,
    /// Inactive rules are never evaluated.
    pub active: bool,
    /// Who created it.
    pub created_by: String,
    /// When it was created, epoch milliseconds.
    pub created_at: i64,
    /// When it last changed, epoch milliseconds (engines drop a rule's window state when
    /// this moves).
    pub updated_at: i64,
}

impl TriggerRuleSpec {
    /// Checks everything but the condition document's contents; returns the spec with
    /// names trimmed.
    pub fn validate(mut self) -> Result<Self, ValidationError> {
        use rule_limits as l;
        self.name = validation::name("name", &self.name, l::NAME)?;
        self.description = validation::text(
            "description",
            std::mem::take(&mut self.description),
            l::DESCRIPTION,
        )?;
        if !self.conditions.is_object() {
            return Err(ValidationError::new(
                "conditions",
                "expected an object such as {\"event_type\": \"ERROR\"}",
            ));
        }
        if self.threshold_count == 0 || self.threshold_count > l::THRESHOLD_COUNT {
            return Err(ValidationError::new(
                "threshold_count",
                format!("must be between 1 and {}", l::THRESHOLD_COUNT),
            ));
        }
        match self.time_window_minutes {
            Some(m) if m == 0 || m > l::WINDOW_MINUTES => {
                return Err(ValidationError::new(
                    "time_window_minutes",
                    format!("must be between 1 and {}", l::WINDOW_MINUTES),
                ));
            }
            None if self.threshold_count > 1 => {
                return Err(ValidationError::new(
                    "time_window_minutes",
                    "is required when threshold_count is above 1",
                ));
            }
            _ => {}
        }
        if self.group_by.len() > l::GROUP_BY {
            return Err(ValidationError::new(
                "group_by",
                format!("at most {} paths", l::GROUP_BY),
            ));
        }
        for (i, p) in self.group_by.iter_mut().enumerate() {
            *p = validation::name(&format!("group_by[{i}]"), p, l::GROUP_BY_PATH)?;
        }
        if let Some(n) = self.max_triggers_per_hour
            && (n == 0 || n > l::TRIGGERS_PER_HOUR)
        {
            return Err(ValidationError::new(
                "max_triggers_per_hour",
                format!("must be between 1 and {}", l::TRIGGERS_PER_HOUR),
            ));
        }
        if let Some(t) = self.throttle {
            let (Throttle::OnceWithin { minutes } | Throttle::OnceAfter { minutes }) = t;
            if minutes == 0 || minutes > l::THROTTLE_MINUTES {
                return Err(ValidationError::new(
                    "throttle.minutes",
                    format!("must be between 1 and {}", l::THROTTLE_MINUTES),
                ));
            }
        }
        self.response_template_id = validation::optional_name(
            "response_template_id",
            self.response_template_id.as_deref(),
            l::NAME,
        )?;
        Ok(self)
    }
}

impl TriggerRule {
    /// A rule built from a validated spec.
    pub fn from_spec(
        spec: TriggerRuleSpec,
        id: String,
        created_by: String,
        created_at: i64,
        updated_at: i64,
    ) -> Self {
        Self {
            id,
            name: spec.name,
            description: spec.description,
            applies_to: spec.applies_to,
            conditions: spec.conditions,
            severity_threshold: spec.severity_threshold,
            time_window_minutes: spec.time_window_minutes,
            threshold_count: spec.threshold_count,
            group_by: spec.group_by,
            max_triggers_per_hour: spec.max_triggers_per_hour,
            throttle: spec.throttle,
            response_template_id: spec.response_template_id,
            active: spec.active,
            created_by,
            created_at,
            updated_at,
        }
    }

    /// The window length in milliseconds, if the rule has one.
    pub fn window_ms(&self) -> Option<i64> {
        self.time_window_minutes.map(|m| i64::from(m) * 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(v: serde_json::Value) -> Result<TriggerRuleSpec, ValidationError> {
        let s: TriggerRuleSpec =
            serde_json::from_value(v).map_err(|e| ValidationError::new("$", e.to_string()))?;
        s.validate()
    }

    #[test]
    fn accepts_a_full_rule_and_defaults_the_rest() {
        let s = spec(serde_json::json!({
            "name": " cpu ", "applies_to": "events",
            "conditions": {"event_type": "threshold_breach"},
            "time_window_minutes": 10, "threshold_count": 5, "group_by": ["service_name"],
            "throttle": {"mode": "once_within", "minutes": 30}
        }))
        .unwrap();
        assert_eq!(s.name, "cpu");
        assert!(s.active);
        assert_eq!(s.throttle.unwrap().period_ms(), 30 * 60_000);
        let min =
            spec(serde_json::json!({"name":"a","applies_to":"incidents","conditions":{}})).unwrap();
        assert_eq!(min.threshold_count, 1);
    }

    #[test]
    fn refuses_inconsistent_or_out_of_range_fields() {
        let base = |extra: serde_json::Value| {
            let mut v = serde_json::json!({"name":"a","applies_to":"events","conditions":{}});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            spec(v).unwrap_err().field
        };
        assert_eq!(
            base(serde_json::json!({"threshold_count": 3})),
            "time_window_minutes"
        );
        assert_eq!(
            base(serde_json::json!({"threshold_count": 0})),
            "threshold_count"
        );
        assert_eq!(
            base(serde_json::json!({"time_window_minutes": 0})),
            "time_window_minutes"
        );
        assert_eq!(base(serde_json::json!({"conditions": [1]})), "conditions");
        assert_eq!(base(serde_json::json!({"name": ""})), "name");
        assert_eq!(
            base(serde_json::json!({"max_triggers_per_hour": 0})),
            "max_triggers_per_hour"
        );
        assert_eq!(
            base(serde_json::json!({"throttle": {"mode":"once_after","minutes":0}})),
            "throttle.minutes"
        );
        assert_eq!(base(serde_json::json!({"group_by": [" "]})), "group_by[0]");
        assert!(spec(serde_json::json!({"name":"a","applies_to":"logs","conditions":{}})).is_err());
    }
}
