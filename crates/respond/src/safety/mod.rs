//! The safety controller: whether a playbook may run *without a person* right now.
//!
//! It weighs the playbook's risk against the configured most-risky automatic level,
//! refuses during change freezes (maintenance windows), limits runs per playbook and per
//! target (GCRA rate limits, `governor`), and caps the blast radius: how many distinct
//! hosts and services one run may touch.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use sightline_model::{RenderedAction, ResponseTemplate, RiskLevel};

use crate::firing::Subject;

/// A period during which no playbook runs automatically.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeFreeze {
    /// Start, epoch ms.
    pub starts_at: i64,
    /// End (exclusive), epoch ms.
    pub ends_at: i64,
    /// Why (shown in refusals).
    #[serde(default)]
    pub reason: String,
}

/// The safety policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SafetyPolicy {
    /// The riskiest level that may run without approval.
    pub max_auto_risk: RiskLevel,
    /// Change freezes / maintenance windows.
    pub change_freezes: Vec<ChangeFreeze>,
    /// Automatic runs per playbook per hour.
    pub per_playbook_per_hour: u32,
    /// Automatic runs per target (service or host) per hour.
    pub per_target_per_hour: u32,
    /// Most distinct hosts and services one run may touch.
    pub max_blast_radius: usize,
}

impl Default for SafetyPolicy {
    fn default() -> Self {
        Self {
            max_auto_risk: RiskLevel::Low,
            change_freezes: Vec::new(),
            per_playbook_per_hour: 60,
            per_target_per_hour: 30,
            max_blast_radius: 5,
        }
    }
}

/// Why a run may not go ahead automatically.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Too risky for automation: a person must approve it.
    #[error("risk {risk} exceeds the automatic limit {limit}; approval required")]
    Risk {
        /// The playbook's effective risk.
        risk: &'static str,
        /// The policy's limit.
        limit: &'static str,
    },
    /// A change freeze is in effect.
    #[error("change freeze in effect until {until}: {reason}")]
    Freeze {
        /// End of the freeze, epoch ms.
        until: i64,
        /// Its reason.
        reason: String,
    },
    /// A rate limit is exhausted.
    #[error("rate limit reached for {what}")]
    RateLimited {
        /// `playbook <id>` or `target <name>`.
        what: String,
    },
    /// The run would touch too many hosts/services.
    #[error("run would touch {count} hosts/services, more than the cap of {cap}")]
    BlastRadius {
        /// Distinct targets.
        count: usize,
        /// The cap.
        cap: usize,
    },
}

impl Refusal {
    /// Whether a person's approval can override it (risk only; freezes, rate limits and
    /// the blast radius hold for everyone).
    pub fn approvable(&self) -> bool {
        matches!(self, Refusal::Risk { .. })
    }
}

/// Applies a [`SafetyPolicy`].
#[derive(Clone, Debug)]
pub struct SafetyController {
    policy: SafetyPolicy,
    playbooks: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    targets: Option<Arc<DefaultKeyedRateLimiter<String>>>,
}

fn per_hour(n: u32) -> Option<Arc<DefaultKeyedRateLimiter<String>>> {
    NonZeroU32::new(n).map(|n| Arc::new(RateLimiter::keyed(Quota::per_hour(n))))
}

impl SafetyController {
    /// A controller for `policy`; a rate of 0 means "no limit".
    pub fn new(policy: SafetyPolicy) -> Self {
        Self {
            playbooks: per_hour(policy.per_playbook_per_hour),
            targets: per_hour(policy.per_target_per_hour),
            policy,
        }
    }

    /// The policy.
    pub fn policy(&self) -> &SafetyPolicy {
        &self.policy
    }

    /// Whether the risk alone allows an automatic run.
    pub fn risk_allows(&self, risk: RiskLevel) -> Result<(), Refusal> {
        if risk > self.policy.max_auto_risk {
            return Err(Refusal::Risk {
                risk: risk.as_str(),
                limit: self.policy.max_auto_risk.as_str(),
            });
        }
        Ok(())
    }

    /// The freeze in effect at `now`, if any.
    pub fn frozen(&self, now_ms: i64) -> Result<(), Refusal> {
        match self
            .policy
            .change_freezes
            .iter()
            .find(|f| f.starts_at <= now_ms && now_ms < f.ends_at)
        {
            Some(f) => Err(Refusal::Freeze {
                until: f.ends_at,
                reason: f.reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Every check except risk and the rate limits, which do not consume anything: freeze
    /// and blast radius.
    pub fn check_static(&self, targets: &BTreeSet<String>, now_ms: i64) -> Result<(), Refusal> {
        self.frozen(now_ms)?;
        if targets.len() > self.policy.max_blast_radius {
            return Err(Refusal::BlastRadius {
                count: targets.len(),
                cap: self.policy.max_blast_radius,
            });
        }
        Ok(())
    }

    /// The full gate for an automatic run; consumes one unit of each rate limit when it
    /// allows the run. Risk is checked last, so a refusal for risk (the approvable one)
    /// means every other rule passed.
    pub fn admit(
        &self,
        template: &ResponseTemplate,
        targets: &BTreeSet<String>,
        now_ms: i64,
    ) -> Result<(), Refusal> {
        self.check_static(targets, now_ms)?;
        self.consume_rates(template, targets)?;
        self.risk_allows(template.effective_risk())
    }

    /// Consumes one unit of the playbook's and each target's rate limit.
    pub fn consume_rates(
        &self,
        template: &ResponseTemplate,
        targets: &BTreeSet<String>,
    ) -> Result<(), Refusal> {
        if let Some(limiter) = &self.playbooks
            && limiter.check_key(&template.id).is_err()
        {
            return Err(Refusal::RateLimited {
                what: format!("playbook {}", template.id),
            });
        }
        if let Some(limiter) = &self.targets {
            for target in targets {
                if limiter.check_key(target).is_err() {
                    return Err(Refusal::RateLimited {
                        what: format!("target {target}"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The hosts and services a run touches: the subject's service(s) and host, and the host
/// of every URL its actions call.
pub fn targets(subject: &Subject, actions: &[&RenderedAction]) -> BTreeSet<String> {
    let mut set = BTreeSet::new();
    match subject {
        Subject::Event(e) => {
            set.insert(format!("service:{}", e.service_name));
            if let Some(host) = &e.host {
                set.insert(format!("host:{host}"));
            }
        }
        Subject::Anomaly(a) => {
            set.insert(format!("service:{}", a.service_name));
        }
        Subject::Incident(i) => {
            set.insert(format!("service:{}", i.service_name));
            for s in &i.affected_services {
                set.insert(format!("service:{s}"));
            }
        }
    }
    for action in actions {
        let url = match action {
            RenderedAction::Http { url, .. } | RenderedAction::Webhook { url, .. } => url,
            _ => continue,
        };
        if let Some(host) = reqwest::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
        {
            set.insert(format!("host:{host}"));
        }
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(risk: RiskLevel) -> ResponseTemplate {
        let mut t: ResponseTemplate = serde_json::from_value(serde_json::json!({
            "id": "t1", "name": "t", "steps": [{"name": "a", "kind": "remediation", "action": {"type": "noop"}}]
        }))
        .unwrap();
        t.risk_level = risk;
        t
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn risk_above_the_policy_needs_approval() {
        let c = SafetyController::new(SafetyPolicy {
            max_auto_risk: RiskLevel::Medium,
            ..SafetyPolicy::default()
        });
        assert!(
            c.admit(&template(RiskLevel::Medium), &set(&["service:a"]), 0)
                .is_ok()
        );
        let refusal = c
            .admit(&template(RiskLevel::High), &set(&["service:a"]), 0)
            .unwrap_err();
        assert!(refusal.approvable(), "{refusal}");
    }

    #[test]
    fn freezes_rates_and_blast_radius_refuse() {
        let c = SafetyController::new(SafetyPolicy {
            change_freezes: vec![ChangeFreeze {
                starts_at: 100,
                ends_at: 200,
                reason: "release".into(),
            }],
            per_playbook_per_hour: 2,
            per_target_per_hour: 0,
            max_blast_radius: 2,
            ..SafetyPolicy::default()
        });
        let t = template(RiskLevel::Low);
        let one = set(&["service:a"]);
        assert!(matches!(
            c.admit(&t, &one, 150),
            Err(Refusal::Freeze { until: 200, .. })
        ));
        assert!(matches!(
            c.admit(&t, &set(&["a", "b", "c"]), 0),
            Err(Refusal::BlastRadius { count: 3, cap: 2 })
        ));
        assert!(c.admit(&t, &one, 0).is_ok());
        assert!(c.admit(&t, &one, 200).is_ok());
        let refusal = c.admit(&t, &one, 0).unwrap_err();
        assert!(matches!(refusal, Refusal::RateLimited { .. }));
        assert!(!refusal.approvable());
    }
}
