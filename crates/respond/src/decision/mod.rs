//! The autonomous response service: looks at an event or incident, decides what to do
//! about it (`investigate | automate | escalate | ignore`) with a confidence, reasons and
//! recommended playbooks, logs the decision, and runs a recommended playbook on request —
//! through the same engine and safety controller as rule-driven runs.
//!
//! The decision is deterministic: the subject's severity sets a base confidence; each
//! consideration (the recommended playbook's risk, the system's criticality, a maintenance
//! window, business hours) moves it by a fixed amount and adds one line of reasoning. Only
//! a confidence above [`AUTOMATE_ABOVE`] with a playbook the safety controller would run
//! alone yields `automate`. Candidate playbooks come through [`CandidatePlaybooks`]:
//! [`RuleCandidates`] asks the trigger rules which playbooks they would run for the
//! subject.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sightline_model::playbook::RecommendedAction;
use sightline_model::{
    Clock, Decision, DecisionKind, Execution, ExecutionStatus, ResponseTemplate, RiskLevel,
    Severity,
};
use sightline_store::{ExecutionQuery, Store};

use crate::firing::Subject;
use crate::playbook::{Actor, Engine, RunRequest};
use crate::safety::SafetyController;
use crate::trigger::CompiledRule;
use crate::{RespondError, Result};

/// Confidence a decision needs to automate.
pub const AUTOMATE_ABOVE: f64 = 0.8;

/// What the caller knows about the moment (all optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisContext {
    /// Whether people are at work now.
    pub business_hours: Option<bool>,
    /// Whether a maintenance window is open (people are changing the system).
    pub maintenance_window: Option<bool>,
    /// How critical the affected system is (`low | medium | high | critical`).
    pub system_criticality: Option<RiskLevel>,
}

/// Which playbooks could respond to a subject.
#[async_trait::async_trait]
pub trait CandidatePlaybooks: Send + Sync + std::fmt::Debug {
    /// The candidate templates (any order).
    async fn candidates(&self, subject: &Subject) -> Result<Vec<ResponseTemplate>>;
}

/// The playbooks named by the active trigger rules that match the subject (kind,
/// severity threshold and condition; windows and throttles aside, since the question is
/// what *would* respond). A subject no rule with a playbook matches falls back to every
/// stored template, so the service still recommends something before rules exist.
#[derive(Clone, Debug)]
pub struct RuleCandidates {
    store: Arc<dyn Store>,
    clock: Clock,
}

impl RuleCandidates {
    /// Candidates from the rules and templates in `store`, conditions evaluated at `clock`.
    pub fn new(store: Arc<dyn Store>, clock: Clock) -> Self {
        Self { store, clock }
    }
}

#[async_trait::async_trait]
impl CandidatePlaybooks for RuleCandidates {
    async fn candidates(&self, subject: &Subject) -> Result<Vec<ResponseTemplate>> {
        let now = self.clock.now_ms();
        let mut named: Vec<String> = Vec::new();
        for rule in self.store.list_rules(true).await? {
            if rule.response_template_id.is_none() {
                continue;
            }
            // A stored rule that no longer compiles is skipped, as the rules runner does.
            let Ok(rule) = CompiledRule::compile(rule) else {
                continue;
            };
            if rule.matches(subject, now)
                && let Some(id) = &rule.rule().response_template_id
                && !named.contains(id)
            {
                named.push(id.clone());
            }
        }
        let templates = self.store.list_templates().await?;
        if named.is_empty() {
            return Ok(templates);
        }
        Ok(templates
            .into_iter()
            .filter(|t| named.contains(&t.id))
            .collect())
    }
}

fn risk_rank(risk: RiskLevel) -> u8 {
    match risk {
        RiskLevel::Low => 0,
        RiskLevel::Medium => 1,
        RiskLevel::High => 2,
        RiskLevel::Critical => 3,
    }
}

/// The decision proper: kind, confidence, reasoning and recommended actions.
pub fn evaluate(
    subject: &Subject,
    context: &AnalysisContext,
    candidates: &[ResponseTemplate],
    safety: &SafetyController,
    now_ms: i64,
) -> (DecisionKind, f64, Vec<String>, Vec<RecommendedAction>) {
    let severity = subject.severity();
    let mut reasoning = Vec::new();
    let mut confidence: f64 = match severity {
        Severity::Critical => 0.9,
        Severity::High => 0.85,
        Severity::Medium => 0.7,
        Severity::Low => 0.55,
        Severity::Info => 0.5,
    };
    reasoning.push(format!(
        "severity {} sets the base confidence to {confidence:.2}",
        severity.as_str()
    ));
    let maintenance = context.maintenance_window == Some(true);
    let mut sorted: Vec<&ResponseTemplate> = candidates.iter().collect();
    sorted.sort_by(|a, b| {
        (a.effective_risk(), &a.name, &a.id).cmp(&(b.effective_risk(), &b.name, &b.id))
    });
    let actions: Vec<RecommendedAction> = sorted
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let risk = t.effective_risk();
            let verdict = safety
                .risk_allows(risk)
                .and_then(|()| safety.frozen(now_ms));
            let (auto_allowed, reason) = match (verdict, maintenance) {
                (Err(refusal), _) => (false, refusal.to_string()),
                (Ok(()), true) => (false, "maintenance window open".to_owned()),
                (Ok(()), false) => (true, "within the safety policy".to_owned()),
            };
            RecommendedAction {
                action_id: format!("a{}", i + 1),
                template_id: t.id.clone(),
                template_name: t.name.clone(),
                risk_level: risk,
                auto_allowed,
                reason,
            }
        })
        .collect();
    let high = matches!(severity, Severity::Critical | Severity::High);
    let Some(best) = actions.first() else {
        let (kind, c) = match severity {
            Severity::Info | Severity::Low => {
                reasoning.push("no playbook applies and the severity is low".into());
                (DecisionKind::Ignore, 0.9)
            }
            Severity::Medium => {
                reasoning.push("no playbook applies; worth a closer look".into());
                (DecisionKind::Investigate, 0.6)
            }
            _ => {
                reasoning.push("no playbook applies to a severe problem: people must act".into());
                (DecisionKind::Escalate, confidence)
            }
        };
        return (kind, c, reasoning, actions);
    };
    let rank = risk_rank(best.risk_level);
    if rank > 0 {
        confidence -= 0.1 * f64::from(rank);
        reasoning.push(format!(
            "best playbook '{}' is {} risk: -{:.2}",
            best.template_name,
            best.risk_level.as_str(),
            0.1 * f64::from(rank)
        ));
    } else {
        reasoning.push(format!(
            "best playbook '{}' is low risk",
            best.template_name
        ));
    }
    if context.system_criticality >= Some(RiskLevel::High) && rank >= 1 {
        confidence -= 0.15;
        reasoning.push("critical system and a non-trivial change: -0.15".into());
    }
    if maintenance {
        confidence -= 0.2;
        reasoning.push("maintenance window open, people are changing the system: -0.20".into());
    }
    match context.business_hours {
        Some(true) => {
            confidence -= 0.05;
            reasoning.push("business hours, people can respond: -0.05".into());
        }
        Some(false) => {
            confidence += 0.05;
            reasoning.push("outside business hours, automation saves time: +0.05".into());
        }
        None => {}
    }
    let confidence = (confidence.clamp(0.0, 1.0) * 100.0).round() / 100.0;
    let kind = if confidence > AUTOMATE_ABOVE && best.auto_allowed {
        reasoning.push(format!(
            "confidence {confidence:.2} > {AUTOMATE_ABOVE} and the safety policy allows it: automate"
        ));
        DecisionKind::Automate
    } else if high {
        reasoning.push(format!(
            "confidence {confidence:.2} or the safety policy ({}) does not allow automation of a severe problem: escalate",
            best.reason
        ));
        DecisionKind::Escalate
    } else {
        reasoning.push("not severe enough to escalate: investigate".into());
        DecisionKind::Investigate
    };
    (kind, confidence, reasoning, actions)
}

/// What the subject of an analysis is, by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubjectRef {
    /// An event id.
    Event(String),
    /// An incident id.
    Incident(String),
}

/// Loads the subject an analysis names.
pub async fn load_subject(store: &dyn Store, subject: &SubjectRef) -> Result<Subject> {
    match subject {
        SubjectRef::Event(id) => store
            .get_event(id)
            .await?
            .map(|e| Subject::Event(Box::new(e)))
            .ok_or_else(|| RespondError::NotFound(format!("event '{id}'"))),
        SubjectRef::Incident(id) => store
            .get_incident(id)
            .await?
            .map(|i| Subject::Incident(Box::new(i)))
            .ok_or_else(|| RespondError::NotFound(format!("incident '{id}'"))),
    }
}

/// The autonomous service.
#[derive(Clone, Debug)]
pub struct Autonomous {
    engine: Arc<Engine>,
    candidates: Arc<dyn CandidatePlaybooks>,
}

/// Options of [`Autonomous::execute`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExecutionOptions {
    /// Render only.
    pub dry_run: bool,
    /// Roll back on failure.
    pub rollback_on_failure: bool,
}

impl Autonomous {
    /// The service over an engine, with a source of candidate playbooks.
    pub fn new(engine: Arc<Engine>, candidates: Arc<dyn CandidatePlaybooks>) -> Self {
        Self { engine, candidates }
    }

    async fn audit(&self, actor: &Actor, action: &str, target: &str, details: serde_json::Value) {
        let mut entry = sightline_model::AuditEntry::new(
            self.engine.clock().now_ms(),
            &actor.name,
            actor.kind,
            action,
        )
        .target(target);
        entry.details = details;
        if let Err(e) = self.engine.store().append_audit(&entry).await {
            tracing::error!(error = %e, action, "cannot append to the audit trail");
        }
    }

    /// Analyses a subject, logs the decision in `decision_log` and the audit trail.
    pub async fn analyze(
        &self,
        subject_ref: &SubjectRef,
        context: &AnalysisContext,
        actor: &Actor,
    ) -> Result<Decision> {
        let store = self.engine.store();
        let subject = load_subject(store.as_ref(), subject_ref).await?;
        let candidates = self.candidates.candidates(&subject).await?;
        let now = self.engine.clock().now_ms();
        let (kind, confidence, reasoning, recommended_actions) =
            evaluate(&subject, context, &candidates, self.engine.safety(), now);
        let (event_id, incident_id) = match subject_ref {
            SubjectRef::Event(id) => (Some(id.clone()), None),
            SubjectRef::Incident(id) => (None, Some(id.clone())),
        };
        let decision = Decision {
            id: uuid::Uuid::now_v7().to_string(),
            event_id,
            incident_id,
            decision: kind,
            confidence,
            reasoning,
            recommended_actions,
            context: serde_json::to_value(context).unwrap_or_default(),
            requested_by: actor.name.clone(),
            feedback: None,
            created_at: now,
        };
        store.insert_decision(&decision).await?;
        metrics::counter!("sightline_respond_decisions_total", "decision" => kind.as_str())
            .increment(1);
        self.audit(
            actor,
            "autonomous.decision",
            &decision.id,
            serde_json::json!({
                "decision": kind, "confidence": confidence,
                "event_id": decision.event_id, "incident_id": decision.incident_id,
            }),
        )
        .await;
        Ok(decision)
    }

    /// Runs a decision's recommended action through the engine and the safety
    /// controller. A run too risky to start alone waits for approval (its token goes to
    /// the approval channel); calling again with that `approval_token` approves it.
    pub async fn execute(
        &self,
        decision_id: &str,
        action_id: &str,
        approval_token: Option<&str>,
        options: ExecutionOptions,
        actor: &Actor,
    ) -> Result<Execution> {
        let store = self.engine.store();
        let decision = store
            .get_decision(decision_id)
            .await?
            .ok_or_else(|| RespondError::NotFound(format!("decision '{decision_id}'")))?;
        let action = decision
            .recommended_actions
            .iter()
            .find(|a| a.action_id == action_id)
            .ok_or_else(|| {
                RespondError::NotFound(format!("action '{action_id}' of decision '{decision_id}'"))
            })?;
        let rule_id = format!("autonomous:{decision_id}:{action_id}");
        if let Some(token) = approval_token {
            let waiting = store
                .query_executions(&ExecutionQuery {
                    rule_id: Some(rule_id.clone()),
                    statuses: vec![ExecutionStatus::AwaitingApproval],
                    limit: 1,
                    ..ExecutionQuery::default()
                })
                .await?;
            let Some(waiting) = waiting.first() else {
                return Err(RespondError::Conflict(format!(
                    "no run of action '{action_id}' awaits approval"
                )));
            };
            return self.engine.decide(&waiting.id, token, true, actor).await;
        }
        let template = store
            .get_template(&action.template_id)
            .await?
            .ok_or_else(|| RespondError::NotFound(format!("template '{}'", action.template_id)))?;
        let subject_ref = match (&decision.event_id, &decision.incident_id) {
            (Some(e), _) => SubjectRef::Event(e.clone()),
            (None, Some(i)) => SubjectRef::Incident(i.clone()),
            (None, None) => return Err(RespondError::Conflict("decision names no subject".into())),
        };
        let subject = load_subject(store.as_ref(), &subject_ref).await?;
        let mut request = RunRequest::for_subject(template, subject, actor.clone());
        request.rule_id = rule_id;
        request.dry_run = options.dry_run;
        request.rollback_on_failure = options.rollback_on_failure;
        request.automatic = true;
        self.audit(
            actor,
            "autonomous.execute",
            decision_id,
            serde_json::json!({"action_id": action_id, "template_id": action.template_id, "dry_run": options.dry_run}),
        )
        .await;
        self.engine
            .start(request)
            .await?
            .ok_or_else(|| RespondError::Conflict("the run already exists".into()))
    }

    /// Records feedback on a decision (and audits it).
    pub async fn feedback(
        &self,
        decision_id: &str,
        feedback: &serde_json::Value,
        actor: &Actor,
    ) -> Result<Decision> {
        let decision = self
            .engine
            .store()
            .set_decision_feedback(decision_id, feedback)
            .await
            .map_err(|e| match e {
                sightline_store::StoreError::NotFound(what) => RespondError::NotFound(what),
                other => RespondError::Store(other),
            })?;
        self.audit(actor, "autonomous.feedback", decision_id, feedback.clone())
            .await;
        Ok(decision)
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::safety::{ChangeFreeze, SafetyPolicy};
    use sightline_model::{Event, SourceType};

    fn subject(severity: Severity) -> Subject {
        Subject::Event(Box::new(Event {
            event_id: "e".into(),
            service_name: "api".into(),
            event_type: "ERROR".into(),
            timestamp: 0,
            environment: "prod".into(),
            details: String::new(),
            severity,
            metadata: Default::default(),
            source: "t".into(),
            source_type: SourceType::Http,
            host: None,
            tags: Default::default(),
            fingerprint: String::new(),
            correlation_id: String::new(),
            received_at: 0,
        }))
    }

    fn template(id: &str, risk: RiskLevel) -> ResponseTemplate {
        let mut t: ResponseTemplate = serde_json::from_value(serde_json::json!({
            "id": id, "name": id, "steps": [{"name": "a", "kind": "remediation", "action": {"type": "noop"}}]
        }))
        .unwrap();
        t.risk_level = risk;
        t
    }

    #[test]
    fn decisions_follow_severity_risk_and_context() {
        let safety = SafetyController::new(SafetyPolicy::default());
        let ctx = AnalysisContext::default();
        let low = [
            template("restart", RiskLevel::Low),
            template("failover", RiskLevel::High),
        ];
        let (kind, c, reasoning, actions) =
            evaluate(&subject(Severity::Critical), &ctx, &low, &safety, 0);
        assert_eq!((kind, c), (DecisionKind::Automate, 0.9), "{reasoning:?}");
        assert_eq!(actions[0].template_id, "restart");
        assert!(actions[0].auto_allowed && !actions[1].auto_allowed);

        let risky = [template("failover", RiskLevel::High)];
        let (kind, c, _, _) = evaluate(&subject(Severity::Critical), &ctx, &risky, &safety, 0);
        assert_eq!((kind, c), (DecisionKind::Escalate, 0.7));

        let maint = AnalysisContext {
            maintenance_window: Some(true),
            ..ctx.clone()
        };
        let (kind, _, _, actions) =
            evaluate(&subject(Severity::Critical), &maint, &low, &safety, 0);
        assert_eq!(kind, DecisionKind::Escalate);
        assert!(!actions[0].auto_allowed);

        let (kind, _, _, _) = evaluate(&subject(Severity::Info), &ctx, &[], &safety, 0);
        assert_eq!(kind, DecisionKind::Ignore);
        let (kind, _, _, _) = evaluate(&subject(Severity::Medium), &ctx, &low, &safety, 0);
        assert_eq!(kind, DecisionKind::Investigate);

        let frozen = SafetyController::new(SafetyPolicy {
            change_freezes: vec![ChangeFreeze {
                starts_at: 0,
                ends_at: 10,
                reason: "release".into(),
            }],
            ..SafetyPolicy::default()
        });
        let (kind, _, _, actions) = evaluate(&subject(Severity::Critical), &ctx, &low, &frozen, 5);
        assert_eq!(kind, DecisionKind::Escalate);
        assert!(
            actions[0].reason.contains("freeze"),
            "{}",
            actions[0].reason
        );
    }
}
