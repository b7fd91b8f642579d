//! The playbook engine: runs a response template's steps in order for one subject,
//! recording every step in the store as it happens.
//!
//! - **Rendering first.** Every step and rollback action is rendered when the run starts
//!   and stored in the execution; the run performs exactly what was stored, and a dry-run
//!   is the same rendering without the performing.
//! - **Time limits.** Each step has its own limit; the run has a budget for the time its
//!   steps take (waiting for a person does not count).
//! - **Approvals.** A step with `approval_required` (or the first step of a run the safety
//!   controller found too risky to start alone) pauses the run in `awaiting_approval`
//!   after storing the hash of a single-use, expiring token and sending the token to the
//!   configured approval channel. [`Engine::decide`] resumes or ends the run.
//! - **Rollback.** When a step fails and the run asked for it, the rollback actions of
//!   the steps that had completed run in reverse step order.
//! - **Crash safety.** The execution document in the store is the state; it is written
//!   before and after every step. On start-up [`Engine::recover`] marks runs that were
//!   `pending` or `running` when the process died as `failed` ("interrupted"): their
//!   current step may or may not have had its effect, so repeating it blindly would be
//!   worse than asking a person. Runs awaiting approval survive a restart unchanged
//!   (their tokens are in the store) and resume when approved.
//! - **Once per firing.** The execution row's `firing_id` is unique: a replayed firing
//!   starts nothing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sightline_log::EventLog;
use sightline_model::playbook::NotifyChannel;
use sightline_model::{
    ActorKind, Approval, AuditEntry, Clock, Execution, ExecutionStatus, RenderedAction,
    ResponseTemplate, StepRun, StepStatus,
};
use sightline_store::{ExecutionQuery, Store};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::approval;
use crate::executor::{self, ExecutorConfig, Executors, RenderContext};
use crate::firing::{Firing, Subject};
use crate::safety::{self, SafetyController, SafetyPolicy};
use crate::{RespondError, Result};

/// Configuration of the playbook engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlaybookConfig {
    /// Executor rules (allow-lists, SMTP).
    pub executors: ExecutorConfig,
    /// The safety policy for automatic runs.
    pub safety: SafetyPolicy,
    /// How long an approval token is valid, seconds.
    pub approval_ttl_secs: u64,
    /// How often paused runs are checked for expired approvals, seconds.
    pub approval_sweep_secs: u64,
    /// Where approval requests are sent (a chat webhook or email); without one they are
    /// only visible in the API.
    pub approval_channel: Option<NotifyChannel>,
    /// Base URL of the API, for links in approval requests.
    pub public_url: String,
    /// Runs that may be in progress at once (firings wait beyond that).
    pub max_concurrent_runs: usize,
    /// Whether runs started by a rule roll back on failure.
    pub rollback_on_failure: bool,
}

impl Default for PlaybookConfig {
    fn default() -> Self {
        Self {
            executors: ExecutorConfig::default(),
            safety: SafetyPolicy::default(),
            approval_ttl_secs: 3600,
            approval_sweep_secs: 30,
            approval_channel: None,
            public_url: "http://localhost:8080".into(),
            max_concurrent_runs: 16,
            rollback_on_failure: true,
        }
    }
}

/// Who starts, approves or rejects a run (for the audit trail).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    /// User name, key id or `system`.
    pub name: String,
    /// What kind of actor.
    pub kind: ActorKind,
}

impl Actor {
    /// sightline itself (rule-driven runs).
    pub fn system() -> Self {
        Self {
            name: "system".into(),
            kind: ActorKind::System,
        }
    }
}

/// What to run, for whom, how.
#[derive(Clone, Debug)]
pub struct RunRequest {
    /// The playbook.
    pub template: ResponseTemplate,
    /// The subject it runs for.
    pub subject: Subject,
    /// What placeholders read (from the firing, or the subject alone).
    pub context: RenderContext,
    /// The rule that fired (`manual`, `autonomous` otherwise).
    pub rule_id: String,
    /// The firing that started it, if any (unique).
    pub firing_id: Option<String>,
    /// Who starts it.
    pub actor: Actor,
    /// Render only.
    pub dry_run: bool,
    /// Roll back on failure.
    pub rollback_on_failure: bool,
    /// Goes through the safety controller (runs nobody asked for explicitly).
    pub automatic: bool,
    /// When the trigger was received, for the trigger-to-first-step latency.
    pub received: Option<Instant>,
}

impl RunRequest {
    /// The request a firing makes for `template`.
    pub fn for_firing(firing: &Firing, template: ResponseTemplate, rollback: bool) -> Self {
        Self {
            context: RenderContext::for_firing(firing),
            subject: firing.subject.clone(),
            rule_id: firing.rule_id.clone(),
            firing_id: Some(firing.id.clone()),
            actor: Actor::system(),
            dry_run: false,
            rollback_on_failure: rollback,
            automatic: true,
            received: None,
            template,
        }
    }

    /// A request for a subject alone (API, autonomous service).
    pub fn for_subject(template: ResponseTemplate, subject: Subject, actor: Actor) -> Self {
        Self {
            context: RenderContext::for_subject(&subject),
            subject,
            rule_id: "manual".into(),
            firing_id: None,
            actor,
            dry_run: false,
            rollback_on_failure: false,
            automatic: false,
            received: None,
            template,
        }
    }
}

/// How many trigger-to-first-step samples are kept.
const LATENCY_SAMPLES: usize = 100_000;

/// The playbook engine (see the module docs). Cheap to share: hold it in an `Arc`.
#[derive(Debug)]
pub struct Engine {
    store: Arc<dyn Store>,
    executors: Executors,
    safety: SafetyController,
    config: PlaybookConfig,
    clock: Clock,
    runs: Arc<Semaphore>,
    latencies: Mutex<VecDeque<Duration>>,
}

fn now_of(clock: &Clock) -> i64 {
    clock.now_ms()
}

impl Engine {
    /// An engine over `store`; `log` is where `emit` steps publish.
    pub fn new(
        store: Arc<dyn Store>,
        log: Option<Arc<dyn EventLog>>,
        config: PlaybookConfig,
        clock: Clock,
    ) -> Arc<Self> {
        Arc::new(Self {
            executors: Executors::new(config.executors.clone(), log, clock.clone()),
            safety: SafetyController::new(config.safety.clone()),
            runs: Arc::new(Semaphore::new(config.max_concurrent_runs.max(1))),
            latencies: Mutex::new(VecDeque::new()),
            store,
            config,
            clock,
        })
    }

    /// The safety controller.
    pub fn safety(&self) -> &SafetyController {
        &self.safety
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Trigger-to-first-step latencies measured so far (for `RunRequest`s that carried
    /// `received`), oldest first; at most the last 100,000.
    pub fn latency_samples(&self) -> Vec<Duration> {
        self.latencies
            .lock()
            .map(|l| l.iter().copied().collect())
            .unwrap_or_default()
    }

    async fn audit(&self, actor: &Actor, action: &str, target: &str, details: serde_json::Value) {
        let mut entry =
            AuditEntry::new(now_of(&self.clock), &actor.name, actor.kind, action).target(target);
        entry.details = details;
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, action, target, "cannot append to the audit trail");
        }
    }

    /// Renders every step and rollback action of `template` for `ctx`.
    fn render_steps(
        template: &ResponseTemplate,
        ctx: &RenderContext,
    ) -> std::result::Result<Vec<StepRun>, executor::RenderError> {
        template
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let mut run = StepRun::pending(&step.name);
                run.approval_required = step.approval_required;
                run.max_execution_time = step.max_execution_time;
                run.rendered = Some(executor::render(
                    &format!("steps[{i}].action"),
                    &step.action,
                    ctx,
                )?);
                run.rendered_rollback = step
                    .rollback
                    .iter()
                    .enumerate()
                    .map(|(j, a)| executor::render(&format!("steps[{i}].rollback[{j}]"), a, ctx))
                    .collect::<std::result::Result<_, _>>()?;
                Ok(run)
            })
            .collect()
    }

    /// Starts a run: renders it, stores it, applies the safety controller to automatic
    /// runs, and (unless it is a dry-run, refused or paused) drives it in the background.
    /// Returns the execution as first stored, or `None` when its firing already started
    /// one.
    pub async fn start(self: &Arc<Self>, request: RunRequest) -> Result<Option<Execution>> {
        let now = now_of(&self.clock);
        let id = uuid::Uuid::now_v7().to_string();
        let ctx = request.context.clone().with_execution(&id);
        let template = &request.template;
        let (kind, value) = crate::executor::subject_json(&request.subject);
        let mut execution = Execution {
            id: id.clone(),
            rule_id: request.rule_id.clone(),
            firing_id: request.firing_id.clone(),
            template_id: template.id.clone(),
            template_name: template.name.clone(),
            max_execution_time: template.max_execution_time,
            subject: serde_json::json!({"kind": kind, "value": value}),
            status: ExecutionStatus::Pending,
            dry_run: request.dry_run,
            rollback_on_failure: request.rollback_on_failure,
            steps: template
                .steps
                .iter()
                .map(|s| StepRun::pending(&s.name))
                .collect(),
            started_by: request.actor.name.clone(),
            reason: None,
            created_at: now,
            updated_at: now,
        };
        match Self::render_steps(template, &ctx) {
            Ok(steps) => execution.steps = steps,
            Err(e) => {
                execution.status = ExecutionStatus::Failed;
                execution.reason = Some(e.to_string());
                for step in &mut execution.steps {
                    step.status = StepStatus::Skipped;
                }
            }
        }
        if request.dry_run && execution.status != ExecutionStatus::Failed {
            execution.status = ExecutionStatus::DryRun;
            for step in &mut execution.steps {
                step.status = StepStatus::DryRun;
            }
        }
        // Waits for a free run slot before storing, so a flood of firings backs up into
        // the bounded firing channel instead of piling up tasks.
        let permit = if execution.status.is_final() {
            None
        } else {
            self.runs.clone().acquire_owned().await.ok()
        };
        if !self.store.insert_execution(&execution).await? {
            metrics::counter!("sightline_respond_firings_duplicate_total").increment(1);
            tracing::debug!(firing = ?execution.firing_id, "firing already ran; skipped");
            return Ok(None);
        }
        // The safety controller runs only once the insert proved this is the first run
        // of its firing, so a replayed firing never consumes rate-limit budget.
        if !execution.status.is_final() && request.automatic {
            let actions: Vec<&RenderedAction> = execution
                .steps
                .iter()
                .flat_map(|s| s.rendered.iter().chain(s.rendered_rollback.iter()))
                .collect();
            let targets = safety::targets(&request.subject, &actions);
            match self.safety.admit(template, &targets, now) {
                Ok(()) => {}
                Err(refusal) if refusal.approvable() => {
                    // Too risky to start alone: a person approves the first step.
                    execution.reason = Some(refusal.to_string());
                    if let Some(first) = execution.steps.first_mut() {
                        first.approval_required = true;
                    }
                }
                Err(refusal) => {
                    metrics::counter!("sightline_respond_runs_refused_total").increment(1);
                    execution.status = ExecutionStatus::Rejected;
                    execution.reason = Some(format!("safety controller: {refusal}"));
                    for step in &mut execution.steps {
                        step.status = StepStatus::Skipped;
                    }
                }
            }
            if execution.reason.is_some() {
                self.save(&mut execution).await?;
            }
        }
        metrics::counter!("sightline_respond_runs_started_total", "status" => execution.status.as_str())
            .increment(1);
        let action = match execution.status {
            ExecutionStatus::DryRun => "execution.dry_run",
            ExecutionStatus::Rejected => "execution.refused",
            ExecutionStatus::Failed => "execution.failed",
            _ => "execution.start",
        };
        self.audit(
            &request.actor,
            action,
            &execution.id,
            serde_json::json!({
                "template_id": execution.template_id, "rule_id": execution.rule_id,
                "firing_id": execution.firing_id, "dry_run": execution.dry_run,
                "reason": execution.reason,
            }),
        )
        .await;
        if execution.status.is_final() {
            drop(permit);
        } else {
            let engine = self.clone();
            let running = execution.clone();
            let received = request.received;
            let span = tracing::info_span!("playbook", execution = %running.id, template = %running.template_id);
            tokio::spawn(
                async move {
                    let _permit = permit;
                    if let Err(e) = engine.drive(running, received).await {
                        tracing::error!(error = %e, "playbook run stopped");
                    }
                }
                .instrument(span),
            );
        }
        Ok(Some(execution))
    }

    async fn save(&self, execution: &mut Execution) -> Result<()> {
        execution.updated_at = now_of(&self.clock).max(execution.updated_at);
        self.store.save_execution(execution).await?;
        Ok(())
    }

    /// Runs the execution's remaining steps until it finishes or pauses for approval.
    async fn drive(&self, mut execution: Execution, mut received: Option<Instant>) -> Result<()> {
        let budget_ms = i64::try_from(execution.max_execution_time)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        for i in 0..execution.steps.len() {
            if execution.steps[i].status == StepStatus::Succeeded {
                continue;
            }
            if execution.steps[i].approval_required && execution.steps[i].approved_by.is_none() {
                return self.pause(execution, i).await;
            }
            let spent: i64 = execution
                .steps
                .iter()
                .filter_map(|s| Some(s.finished_at? - s.started_at?))
                .sum();
            let remaining = budget_ms - spent;
            let step_ms = i64::try_from(execution.steps[i].max_execution_time)
                .unwrap_or(i64::MAX / 1000)
                .saturating_mul(1000);
            let Some(action) = execution.steps[i].rendered.clone() else {
                return self
                    .fail(
                        execution,
                        i,
                        "step has no rendered action".into(),
                        String::new(),
                    )
                    .await;
            };
            if remaining <= 0 {
                return self
                    .fail(
                        execution,
                        i,
                        "run time limit exceeded".into(),
                        String::new(),
                    )
                    .await;
            }
            let limit = Duration::from_millis(u64::try_from(step_ms.min(remaining)).unwrap_or(0));
            execution.status = ExecutionStatus::Running;
            execution.steps[i].status = StepStatus::Running;
            execution.steps[i].started_at = Some(now_of(&self.clock));
            self.save(&mut execution).await?;
            if let Some(at) = received.take() {
                self.record_latency(at.elapsed());
            }
            let result = self.executors.run(&action, limit, &execution.id).await;
            let step = &mut execution.steps[i];
            step.finished_at = Some(now_of(&self.clock));
            match result {
                Ok(output) => {
                    step.status = StepStatus::Succeeded;
                    step.output = output;
                    self.save(&mut execution).await?;
                }
                Err(failure) => {
                    return self
                        .fail(execution, i, failure.message, failure.output)
                        .await;
                }
            }
        }
        execution.status = ExecutionStatus::Succeeded;
        self.save(&mut execution).await?;
        metrics::counter!("sightline_respond_runs_finished_total", "status" => "succeeded")
            .increment(1);
        self.audit(
            &Actor::system(),
            "execution.succeeded",
            &execution.id,
            serde_json::json!({"template_id": execution.template_id}),
        )
        .await;
        Ok(())
    }

    fn record_latency(&self, latency: Duration) {
        metrics::histogram!("sightline_respond_trigger_to_first_step_seconds")
            .record(latency.as_secs_f64());
        if let Ok(mut samples) = self.latencies.lock() {
            if samples.len() == LATENCY_SAMPLES {
                samples.pop_front();
            }
            samples.push_back(latency);
        }
    }

    /// Pauses before step `i`: stores a token hash, notifies, waits for [`Engine::decide`].
    async fn pause(&self, mut execution: Execution, i: usize) -> Result<()> {
        let now = now_of(&self.clock);
        let (token, hash) = approval::new_token();
        let ttl_ms = i64::try_from(self.config.approval_ttl_secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        let approval = Approval {
            id: uuid::Uuid::now_v7().to_string(),
            execution_id: execution.id.clone(),
            step_index: u32::try_from(i).unwrap_or(u32::MAX),
            token_hash: hash,
            created_at: now,
            expires_at: now.saturating_add(ttl_ms),
            used_at: None,
            decision: None,
            decided_by: None,
        };
        self.store.insert_approval(&approval).await?;
        execution.status = ExecutionStatus::AwaitingApproval;
        execution.steps[i].status = StepStatus::AwaitingApproval;
        self.save(&mut execution).await?;
        self.audit(
            &Actor::system(),
            "execution.awaiting_approval",
            &execution.id,
            serde_json::json!({"step": execution.steps[i].name, "expires_at": approval.expires_at}),
        )
        .await;
        let Some(channel) = &self.config.approval_channel else {
            return Ok(());
        };
        let base = self.config.public_url.trim_end_matches('/');
        let id = &execution.id;
        let message = format!(
            "sightline: playbook '{}' (execution {id}) waits for approval of step '{}'.\n\
             Approve: POST {base}/api/v1/executions/{id}/approve {{\"token\":\"{token}\"}}\n\
             Reject: POST {base}/api/v1/executions/{id}/reject {{\"token\":\"{token}\"}}\n\
             Details: {base}/api/v1/executions/{id} (the token expires in {} minutes, single use)",
            execution.template_name,
            execution.steps[i].name,
            self.config.approval_ttl_secs / 60,
        );
        let action = match channel {
            NotifyChannel::Webhook { url, format } => RenderedAction::Webhook {
                url: url.clone(),
                payload: executor::chat_payload(*format, &message),
            },
            NotifyChannel::Email { to, subject } => RenderedAction::Email {
                to: to.clone(),
                subject: subject.clone(),
                body: message,
            },
        };
        if let Err(e) = self
            .executors
            .run(&action, Duration::from_secs(10), &execution.id)
            .await
        {
            tracing::warn!(execution = %execution.id, error = %e, "approval request not delivered");
            execution.steps[i].output = format!("approval request not delivered: {e}");
            self.save(&mut execution).await?;
        }
        Ok(())
    }

    /// Step `i` failed: the rest are skipped and, if asked, the completed steps are rolled
    /// back in reverse order.
    async fn fail(
        &self,
        mut execution: Execution,
        i: usize,
        error: String,
        output: String,
    ) -> Result<()> {
        execution.steps[i].status = StepStatus::Failed;
        execution.steps[i].error = Some(error.clone());
        execution.steps[i].output = output;
        execution.steps[i]
            .finished_at
            .get_or_insert(now_of(&self.clock));
        for step in &mut execution.steps[i + 1..] {
            step.status = StepStatus::Skipped;
        }
        execution.status = ExecutionStatus::Failed;
        execution.reason = Some(format!(
            "step '{}' failed: {error}",
            execution.steps[i].name
        ));
        self.save(&mut execution).await?;
        metrics::counter!("sightline_respond_runs_finished_total", "status" => "failed")
            .increment(1);
        self.audit(
            &Actor::system(),
            "execution.failed",
            &execution.id,
            serde_json::json!({"step": execution.steps[i].name, "error": error}),
        )
        .await;
        if execution.rollback_on_failure {
            self.roll_back(execution, i).await?;
        }
        Ok(())
    }

    async fn roll_back(&self, mut execution: Execution, failed: usize) -> Result<()> {
        let mut rolled = Vec::new();
        let mut all_ok = true;
        for j in (0..failed).rev() {
            if execution.steps[j].status != StepStatus::Succeeded {
                continue;
            }
            let limit = Duration::from_secs(execution.steps[j].max_execution_time.max(1));
            let mut outputs = Vec::new();
            let mut ok = true;
            for action in execution.steps[j].rendered_rollback.clone() {
                match self.executors.run(&action, limit, &execution.id).await {
                    Ok(out) => outputs.push(out),
                    Err(e) => {
                        outputs.push(format!("rollback failed: {e}\n{}", e.output));
                        ok = false;
                        break;
                    }
                }
            }
            let step = &mut execution.steps[j];
            step.status = if ok {
                StepStatus::RolledBack
            } else {
                StepStatus::RollbackFailed
            };
            step.output = executor::truncate_utf8(
                format!("{}\n--- rollback ---\n{}", step.output, outputs.join("\n")),
                4 * executor::command::MAX_STREAM_BYTES,
            );
            all_ok &= ok;
            rolled.push(step.name.clone());
            self.save(&mut execution).await?;
        }
        if !rolled.is_empty() && all_ok {
            execution.status = ExecutionStatus::RolledBack;
        } else if !all_ok {
            execution.reason = Some(format!(
                "{}; rollback incomplete",
                execution.reason.as_deref().unwrap_or("failed")
            ));
        }
        self.save(&mut execution).await?;
        self.audit(
            &Actor::system(),
            "execution.rollback",
            &execution.id,
            serde_json::json!({"rolled_back": rolled, "complete": all_ok}),
        )
        .await;
        Ok(())
    }

    /// A person's answer to a paused run: checks the single-use token (constant time),
    /// then resumes the run (approve) or ends it as `rejected`. Returns the execution as
    /// it stands after the decision.
    pub async fn decide(
        self: &Arc<Self>,
        execution_id: &str,
        token: &str,
        approve: bool,
        actor: &Actor,
    ) -> Result<Execution> {
        self.decide_with(execution_id, Some(token), approve, actor)
            .await
    }

    /// The answer of an approver whose identity and role the caller has already checked
    /// (signed in to the API with the approver role): like [`decide`](Self::decide) without
    /// the token, which stays single use — this consumes it, so the link in the approval
    /// request stops working. The audit entry records that the role, not the token,
    /// authorised it.
    pub async fn decide_as_approver(
        self: &Arc<Self>,
        execution_id: &str,
        approve: bool,
        actor: &Actor,
    ) -> Result<Execution> {
        self.decide_with(execution_id, None, approve, actor).await
    }

    async fn decide_with(
        self: &Arc<Self>,
        execution_id: &str,
        token: Option<&str>,
        approve: bool,
        actor: &Actor,
    ) -> Result<Execution> {
        let now = now_of(&self.clock);
        let Some(mut execution) = self.store.get_execution(execution_id).await? else {
            return Err(RespondError::NotFound(format!(
                "execution '{execution_id}'"
            )));
        };
        if execution.status != ExecutionStatus::AwaitingApproval {
            return Err(RespondError::Conflict(format!(
                "execution '{execution_id}' is {}, not awaiting approval",
                execution.status.as_str()
            )));
        }
        let Some(approval) = self.store.open_approval(execution_id).await? else {
            return Err(RespondError::Conflict(format!(
                "execution '{execution_id}' has no open approval"
            )));
        };
        let verb = if approve { "approve" } else { "reject" };
        if let Some(token) = token
            && !approval::token_matches(token, &approval.token_hash)
        {
            self.audit(
                actor,
                &format!("execution.{verb}"),
                execution_id,
                serde_json::json!({"error": "token mismatch"}),
            )
            .await;
            return Err(RespondError::BadToken);
        }
        if approval.expires_at <= now {
            self.end_expired(execution, &approval, actor, now).await?;
            return Err(RespondError::Expired(approval.expires_at));
        }
        let decision = if approve { "approved" } else { "rejected" };
        if !self
            .store
            .consume_approval(&approval.id, decision, &actor.name, now)
            .await?
        {
            return Err(RespondError::Conflict(
                "the approval token was already used".into(),
            ));
        }
        let i = usize::try_from(approval.step_index).unwrap_or(usize::MAX);
        if i >= execution.steps.len() {
            return Err(RespondError::Conflict("approval names no step".into()));
        }
        let via = if token.is_some() { "token" } else { "role" };
        self.audit(
            actor,
            &format!("execution.{verb}"),
            execution_id,
            serde_json::json!({"step": execution.steps[i].name, "via": via}),
        )
        .await;
        if approve {
            execution.steps[i].approved_by = Some(actor.name.clone());
            execution.steps[i].status = StepStatus::Pending;
            execution.status = ExecutionStatus::Running;
            self.save(&mut execution).await?;
            let engine = self.clone();
            let running = execution.clone();
            let permits = self.runs.clone();
            let span = tracing::info_span!("playbook", execution = %running.id, template = %running.template_id);
            tokio::spawn(
                async move {
                    let _permit = permits.acquire_owned().await;
                    if let Err(e) = engine.drive(running, None).await {
                        tracing::error!(error = %e, "playbook run stopped");
                    }
                }
                .instrument(span),
            );
        } else {
            for step in &mut execution.steps[i..] {
                step.status = StepStatus::Skipped;
            }
            execution.status = ExecutionStatus::Rejected;
            execution.reason = Some(format!("rejected by {}", actor.name));
            self.save(&mut execution).await?;
        }
        Ok(execution)
    }

    /// Ends a paused run whose approval expired: the run cannot go on with it, and leaving
    /// it paused would hide it from everyone (a person can start a new run). Returns
    /// whether this call ended it (another node or request may have been first).
    async fn end_expired(
        &self,
        mut execution: Execution,
        approval: &Approval,
        actor: &Actor,
        now: i64,
    ) -> Result<bool> {
        if !self
            .store
            .consume_approval(&approval.id, "expired", &actor.name, now)
            .await?
        {
            return Ok(false);
        }
        for step in execution.steps.iter_mut().filter(|s| !s.status.is_done()) {
            step.status = StepStatus::Skipped;
        }
        execution.status = ExecutionStatus::Rejected;
        execution.reason = Some("approval expired".into());
        self.save(&mut execution).await?;
        self.audit(
            actor,
            "execution.approval_expired",
            &execution.id,
            serde_json::json!({"expired_at": approval.expires_at}),
        )
        .await;
        Ok(true)
    }

    /// Ends every run still awaiting an approval that has expired (as `rejected`, reason
    /// "approval expired", audited); returns how many. [`run_playbooks`] calls it every
    /// [`PlaybookConfig::approval_sweep_secs`], so an unanswered request does not leave a
    /// run paused forever.
    pub async fn expire_approvals(&self) -> Result<u64> {
        let now = now_of(&self.clock);
        let paused = self
            .store
            .query_executions(&ExecutionQuery {
                statuses: vec![ExecutionStatus::AwaitingApproval],
                limit: sightline_store::MAX_RESPONSE_ROWS,
                ..ExecutionQuery::default()
            })
            .await?;
        let mut ended = 0;
        for execution in paused {
            let Some(approval) = self.store.open_approval(&execution.id).await? else {
                continue;
            };
            if approval.expires_at <= now
                && self
                    .end_expired(execution, &approval, &Actor::system(), now)
                    .await?
            {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Marks runs left `pending` or `running` by a previous process as failed (see the
    /// module docs); returns how many.
    pub async fn recover(&self) -> Result<u64> {
        let stale = self
            .store
            .query_executions(&ExecutionQuery {
                statuses: vec![ExecutionStatus::Pending, ExecutionStatus::Running],
                limit: sightline_store::MAX_RESPONSE_ROWS,
                ..ExecutionQuery::default()
            })
            .await?;
        let mut n = 0;
        for mut execution in stale {
            for step in &mut execution.steps {
                step.status = match step.status {
                    StepStatus::Running => StepStatus::Failed,
                    StepStatus::Pending | StepStatus::AwaitingApproval => StepStatus::Skipped,
                    other => other,
                };
            }
            execution.status = ExecutionStatus::Failed;
            execution.reason = Some("interrupted by a restart; not resumed automatically".into());
            self.save(&mut execution).await?;
            self.audit(
                &Actor::system(),
                "execution.interrupted",
                &execution.id,
                serde_json::json!({"template_id": execution.template_id}),
            )
            .await;
            n += 1;
        }
        Ok(n)
    }
}

/// Consumes firings until `shutdown` resolves or the channel closes: each firing naming a
/// response template starts a run (at most once per firing id) under the safety
/// controller. Runs left unfinished by a previous process are marked failed first
/// ([`Engine::recover`]), and paused runs whose approval expired are ended every
/// [`PlaybookConfig::approval_sweep_secs`] ([`Engine::expire_approvals`]). The receiver is
/// borrowed so a supervisor can restart the loop on the same channel after an error.
///
/// A firing is never dropped for a store failure: reading its playbook and starting the
/// run are retried with growing pauses (up to [`MAX_STORE_BACKOFF`]) until they succeed or
/// the node stops, and meanwhile the bounded channel holds the rules runner back.
pub async fn run_playbooks(
    engine: Arc<Engine>,
    firings: &mut tokio::sync::mpsc::Receiver<Firing>,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<()> {
    let recovered = engine.recover().await?;
    if recovered > 0 {
        tracing::warn!(recovered, "marked interrupted playbook runs as failed");
    }
    let mut shutdown = std::pin::pin!(shutdown);
    let mut sweep = tokio::time::interval(Duration::from_secs(
        engine.config.approval_sweep_secs.max(1),
    ));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let firing = tokio::select! {
            () = &mut shutdown => return Ok(()),
            _ = sweep.tick() => {
                match engine.expire_approvals().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(ended = n, "ended runs whose approval expired"),
                    Err(e) => tracing::warn!(error = %e, "cannot check approvals for expiry"),
                }
                continue;
            }
            firing = firings.recv() => match firing {
                Some(f) => f,
                None => return Ok(()),
            },
        };
        let received = Instant::now();
        metrics::counter!("sightline_respond_firings_received_total").increment(1);
        let Some(template_id) = firing.response_template_id.as_deref() else {
            continue;
        };
        let read = retry_store(&mut shutdown, "read playbook", || {
            engine.store.get_template(template_id)
        });
        let template = match read.await {
            None => return Ok(()),
            Some(Ok(Some(t))) => t,
            Some(Ok(None)) => {
                metrics::counter!("sightline_respond_firings_rejected_total").increment(1);
                tracing::warn!(rule = %firing.rule_id, template_id, "rule names an unknown playbook");
                continue;
            }
            Some(Err(e)) => {
                metrics::counter!("sightline_respond_firings_rejected_total").increment(1);
                tracing::error!(firing = %firing.id, error = %e, "cannot read playbook");
                continue;
            }
        };
        let mut request =
            RunRequest::for_firing(&firing, template, engine.config.rollback_on_failure);
        request.received = Some(received);
        // A retried start is safe: the firing id makes a second insert a no-op.
        let started = retry_store(&mut shutdown, "start playbook run", || {
            engine.start(request.clone())
        });
        match started.await {
            None => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                metrics::counter!("sightline_respond_firings_rejected_total").increment(1);
                tracing::error!(firing = %firing.id, error = %e, "cannot start playbook run");
            }
        }
    }
}

/// The longest pause between two attempts at a store operation for a firing.
pub const MAX_STORE_BACKOFF: Duration = Duration::from_secs(5);

/// Runs `attempt` until it returns anything but a transient store error
/// ([`StoreError::is_transient`](sightline_store::StoreError::is_transient)), pausing 50 ms,
/// then twice as long each time (at most [`MAX_STORE_BACKOFF`]); `None` if `shutdown` came
/// first.
async fn retry_store<T, E, F, Fut>(
    shutdown: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
    what: &str,
    mut attempt: F,
) -> Option<Result<T>>
where
    F: FnMut() -> Fut,
    E: Into<RespondError>,
    Fut: std::future::Future<Output = std::result::Result<T, E>>,
{
    let mut pause = Duration::from_millis(50);
    loop {
        match attempt().await.map_err(Into::into) {
            Err(RespondError::Store(e)) if e.is_transient() => {
                metrics::counter!("sightline_respond_store_retries_total").increment(1);
                tracing::warn!(error = %e, retry_in = ?pause, "cannot {what}; retrying");
                tokio::select! {
                    () = shutdown.as_mut() => return None,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(MAX_STORE_BACKOFF);
            }
            other => return Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use sightline_store::StoreError;

    use super::*;

    fn disk_full() -> StoreError {
        StoreError::Io {
            path: "store.db".into(),
            source: std::io::Error::other("no space left on device"),
        }
    }

    #[tokio::test]
    async fn transient_store_failures_are_retried_until_they_pass() {
        let calls = AtomicU32::new(0);
        let mut never = std::pin::pin!(std::future::pending::<()>());
        let got = retry_store(&mut never, "read", || async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0..=2 => Err(disk_full()),
                _ => Ok::<_, StoreError>("playbook"),
            }
        })
        .await;
        assert!(matches!(got, Some(Ok("playbook"))));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn permanent_errors_return_at_once_and_shutdown_ends_the_wait() {
        let calls = AtomicU32::new(0);
        let mut never = std::pin::pin!(std::future::pending::<()>());
        let got = retry_store(&mut never, "start", || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>(StoreError::Conflict("execution exists".into()))
        })
        .await;
        assert!(matches!(
            got,
            Some(Err(RespondError::Store(StoreError::Conflict(_))))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let mut stop = std::pin::pin!(tokio::time::sleep(Duration::from_millis(200)));
        let got = retry_store(&mut stop, "read", || async { Err::<(), _>(disk_full()) }).await;
        assert!(
            got.is_none(),
            "a node that stops does not wait for the store"
        );
    }
}
