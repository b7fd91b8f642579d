//! Playbooks (response templates), their executions, approvals and autonomous decisions:
//! the shapes the response crate runs, the store keeps and the API shows.
//!
//! A [`ResponseTemplate`] is an ordered list of [`Step`]s; each step names one [`Action`]
//! (`http`, `command`, `notify`, `emit`, `noop`) whose string fields may hold
//! `{{subject.service_name}}`-style placeholders. An [`Execution`] records one run of a
//! template for one subject, step by step ([`StepRun`]), as it happens.
//!
//! [`ResponseTemplate::validate`] refuses a template with a precise field path
//! (`steps[2].action.args[0]`), never a panic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// Longest template / step name.
pub const MAX_NAME: usize = 128;
/// Most steps in one template.
pub const MAX_STEPS: usize = 64;
/// Most rollback actions of one step.
pub const MAX_ROLLBACK: usize = 16;
/// Most argv elements of a command.
pub const MAX_ARGS: usize = 128;
/// Longest single template string (URL, argument, message).
pub const MAX_TEMPLATE: usize = 16 * 1024;
/// Longest per-step / per-run time limit, in seconds (one day).
pub const MAX_EXECUTION_SECS: u64 = 24 * 60 * 60;

/// How dangerous a step (or a whole template) is; the safety controller compares it with
/// the configured most-risky level that may run without a person.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum RiskLevel {
    /// Read-only or informational.
    #[default]
    Low,
    /// Changes something, easily undone.
    Medium,
    /// Changes something that matters.
    High,
    /// Could take a service down.
    Critical,
}

impl RiskLevel {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
            RiskLevel::Critical => "critical",
        }
    }
}

/// What a step is for (the spec's step types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StepKind {
    /// Gathers information; changes nothing.
    Diagnostic,
    /// Changes the system to fix it.
    Remediation,
    /// Tells people.
    Notification,
    /// Hands the problem to people.
    Escalation,
}

/// HTTP method of an `http` action.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    Get,
    /// POST.
    #[default]
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl HttpMethod {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }
}

/// The JSON dialect of a chat webhook.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChatFormat {
    /// Slack incoming webhook (`{"text": …}`); Mattermost and Rocket.Chat accept it too.
    Slack,
    /// Microsoft Teams connector card.
    Teams,
}

/// Where a `notify` action goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum NotifyChannel {
    /// A chat webhook (sent under the `http` executor's rules).
    Webhook {
        /// The webhook URL (no placeholders).
        url: String,
        /// Payload dialect.
        format: ChatFormat,
    },
    /// An email through the configured SMTP relay.
    Email {
        /// Recipients (no placeholders).
        to: Vec<String>,
        /// Subject line (may hold placeholders).
        subject: String,
    },
}

/// One thing a step does. String fields marked "template" may hold `{{path}}`
/// placeholders filled from the subject; nothing is ever handed to a shell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Action {
    /// An HTTP request.
    Http {
        /// Method (default POST).
        #[serde(default)]
        method: HttpMethod,
        /// URL; placeholders only in the query string (values are percent-encoded).
        url: String,
        /// Static headers (no placeholders).
        #[serde(default)]
        headers: BTreeMap<String, String>,
        /// JSON body; placeholders in string values only (template).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
    },
    /// An allow-listed executable run with an argv, without a shell.
    Command {
        /// Absolute path of the executable (must be allow-listed; no placeholders).
        program: String,
        /// Arguments; each element is a template and stays exactly one argv element.
        #[serde(default)]
        args: Vec<String>,
    },
    /// A notification.
    Notify {
        /// Where it goes.
        channel: NotifyChannel,
        /// The text (template).
        message: String,
    },
    /// Publishes an event into `system-events` (a system-event input document whose
    /// string values are templates).
    Emit {
        /// The event to publish.
        event: serde_json::Value,
    },
    /// Does nothing (for tests and dry-runs); `fail: true` makes it fail, `sleep_ms`
    /// makes it take time.
    Noop {
        /// Fail instead of succeeding.
        #[serde(default)]
        fail: bool,
        /// Wait this long first.
        #[serde(default)]
        sleep_ms: u64,
    },
}

impl Action {
    /// The action's type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Http { .. } => "http",
            Action::Command { .. } => "command",
            Action::Notify { .. } => "notify",
            Action::Emit { .. } => "emit",
            Action::Noop { .. } => "noop",
        }
    }
}

/// One step of a playbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Name, unique within the template.
    pub name: String,
    /// What the step is for.
    pub kind: StepKind,
    /// What it does.
    pub action: Action,
    /// Pause for a person's approval before running it.
    #[serde(default)]
    pub approval_required: bool,
    /// What undoes it, run in order when a later step fails and the run asked for rollback.
    #[serde(default)]
    pub rollback: Vec<Action>,
    /// Time limit of the step, seconds.
    #[serde(default = "default_step_secs")]
    pub max_execution_time: u64,
    /// How dangerous it is.
    #[serde(default)]
    pub risk_level: RiskLevel,
}

fn default_step_secs() -> u64 {
    60
}

fn default_run_secs() -> u64 {
    600
}

/// A playbook: ordered steps run for a subject when a rule names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ResponseTemplate {
    /// Id (assigned at creation when absent).
    #[serde(default)]
    pub id: String,
    /// Name.
    pub name: String,
    /// What it is for.
    #[serde(default)]
    pub description: String,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Overall risk (at least the riskiest step's).
    #[serde(default)]
    pub risk_level: RiskLevel,
    /// Time limit of a whole run, seconds.
    #[serde(default = "default_run_secs")]
    pub max_execution_time: u64,
    /// Who created it.
    #[serde(default)]
    pub created_by: String,
    /// Created, epoch ms.
    #[serde(default)]
    pub created_at: i64,
    /// Last changed, epoch ms.
    #[serde(default)]
    pub updated_at: i64,
}

impl ResponseTemplate {
    /// The riskiest of the template's own level and its steps' levels.
    pub fn effective_risk(&self) -> RiskLevel {
        self.steps
            .iter()
            .map(|s| s.risk_level)
            .fold(self.risk_level, Ord::max)
    }

    /// Checks the template; the error names the faulty field by path.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_name("name", &self.name)?;
        if self.description.len() > MAX_TEMPLATE {
            return Err(ValidationError::new("description", "is too long"));
        }
        check_secs("max_execution_time", self.max_execution_time)?;
        if self.steps.is_empty() {
            return Err(ValidationError::new("steps", "needs at least one step"));
        }
        if self.steps.len() > MAX_STEPS {
            return Err(ValidationError::new(
                "steps",
                format!("has more than {MAX_STEPS} steps"),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, step) in self.steps.iter().enumerate() {
            let at = format!("steps[{i}]");
            check_name(&format!("{at}.name"), &step.name)?;
            if !names.insert(step.name.as_str()) {
                return Err(ValidationError::new(
                    format!("{at}.name"),
                    format!("'{}' is used by an earlier step", step.name),
                ));
            }
            check_secs(&format!("{at}.max_execution_time"), step.max_execution_time)?;
            validate_action(&format!("{at}.action"), &step.action)?;
            if step.rollback.len() > MAX_ROLLBACK {
                return Err(ValidationError::new(
                    format!("{at}.rollback"),
                    format!("has more than {MAX_ROLLBACK} actions"),
                ));
            }
            for (j, action) in step.rollback.iter().enumerate() {
                validate_action(&format!("{at}.rollback[{j}]"), action)?;
            }
        }
        Ok(())
    }
}

fn check_name(field: &str, value: &str) -> Result<(), ValidationError> {
    if value.trim().is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME {
        return Err(ValidationError::new(
            field,
            format!("is longer than {MAX_NAME} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(field, "contains control characters"));
    }
    Ok(())
}

fn check_secs(field: &str, secs: u64) -> Result<(), ValidationError> {
    if secs == 0 || secs > MAX_EXECUTION_SECS {
        return Err(ValidationError::new(
            field,
            format!("must be between 1 and {MAX_EXECUTION_SECS} seconds"),
        ));
    }
    Ok(())
}

/// Checks a template string: length, balanced placeholders, and placeholder paths made of
/// `[A-Za-z0-9_.]` only.
fn check_template(field: &str, text: &str) -> Result<(), ValidationError> {
    if text.len() > MAX_TEMPLATE {
        return Err(ValidationError::new(field, "is too long"));
    }
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ValidationError::new(field, "has an unclosed '{{'"));
        };
        let path = after[..end].trim();
        if path.is_empty()
            || !path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        {
            return Err(ValidationError::new(
                field,
                format!("placeholder '{{{{{path}}}}}' is not a dotted path"),
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

fn no_placeholder(field: &str, text: &str) -> Result<(), ValidationError> {
    if text.contains("{{") {
        return Err(ValidationError::new(field, "may not hold placeholders"));
    }
    Ok(())
}

fn check_url(field: &str, url: &str) -> Result<(), ValidationError> {
    check_template(field, url)?;
    let lower = url.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(ValidationError::new(
            field,
            "must be an http:// or https:// URL",
        ));
    }
    // Placeholders may only fill the query string: the host, port and path are fixed at
    // creation, so event text can never choose where a request goes.
    let fixed = url.split('?').next().unwrap_or(url);
    no_placeholder(field, fixed).map_err(|_| {
        ValidationError::new(field, "may hold placeholders only in the query string")
    })?;
    Ok(())
}

fn check_json_templates(field: &str, value: &serde_json::Value) -> Result<(), ValidationError> {
    match value {
        serde_json::Value::String(s) => check_template(field, s),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_json_templates(&format!("{field}[{i}]"), v)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| {
            no_placeholder(&format!("{field}.{k}"), k)?;
            check_json_templates(&format!("{field}.{k}"), v)
        }),
        _ => Ok(()),
    }
}

fn validate_action(at: &str, action: &Action) -> Result<(), ValidationError> {
    match action {
        Action::Http {
            url, headers, body, ..
        } => {
            check_url(&format!("{at}.url"), url)?;
            for (name, value) in headers {
                let field = format!("{at}.headers.{name}");
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return Err(ValidationError::new(field, "is not a valid header name"));
                }
                no_placeholder(&field, value)?;
                if value.chars().any(char::is_control) {
                    return Err(ValidationError::new(field, "contains control characters"));
                }
            }
            if let Some(body) = body {
                check_json_templates(&format!("{at}.body"), body)?;
            }
        }
        Action::Command { program, args } => {
            let field = format!("{at}.program");
            no_placeholder(&field, program)?;
            if !program.starts_with('/') {
                return Err(ValidationError::new(field, "must be an absolute path"));
            }
            if args.len() > MAX_ARGS {
                return Err(ValidationError::new(
                    format!("{at}.args"),
                    format!("has more than {MAX_ARGS} elements"),
                ));
            }
            for (i, arg) in args.iter().enumerate() {
                check_template(&format!("{at}.args[{i}]"), arg)?;
                if arg.contains('\0') {
                    return Err(ValidationError::new(
                        format!("{at}.args[{i}]"),
                        "contains a NUL byte",
                    ));
                }
            }
        }
        Action::Notify { channel, message } => {
            check_template(&format!("{at}.message"), message)?;
            match channel {
                NotifyChannel::Webhook { url, .. } => {
                    let field = format!("{at}.channel.url");
                    no_placeholder(&field, url)?;
                    check_url(&field, url)?;
                }
                NotifyChannel::Email { to, subject } => {
                    if to.is_empty() {
                        return Err(ValidationError::new(
                            format!("{at}.channel.to"),
                            "needs at least one recipient",
                        ));
                    }
                    for (i, address) in to.iter().enumerate() {
                        let field = format!("{at}.channel.to[{i}]");
                        no_placeholder(&field, address)?;
                        if !address.contains('@') || address.chars().any(char::is_control) {
                            return Err(ValidationError::new(field, "is not an email address"));
                        }
                    }
                    let field = format!("{at}.channel.subject");
                    check_template(&field, subject)?;
                    if subject.contains(['\r', '\n']) {
                        return Err(ValidationError::new(field, "must be one line"));
                    }
                }
            }
        }
        Action::Emit { event } => {
            if !event.is_object() {
                return Err(ValidationError::new(
                    format!("{at}.event"),
                    "must be a JSON object (a system event)",
                ));
            }
            check_json_templates(&format!("{at}.event"), event)?;
        }
        Action::Noop { sleep_ms, .. } => {
            if *sleep_ms > MAX_EXECUTION_SECS * 1000 {
                return Err(ValidationError::new(
                    format!("{at}.sleep_ms"),
                    "is longer than a day",
                ));
            }
        }
    }
    Ok(())
}

/// Where an execution stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    /// Created, not started yet.
    Pending,
    /// Running a step.
    Running,
    /// Paused until a person approves or rejects the next step.
    AwaitingApproval,
    /// Every step succeeded.
    Succeeded,
    /// A step failed (and no rollback was asked for, or it was not possible).
    Failed,
    /// A step failed and the completed steps were rolled back.
    RolledBack,
    /// A person rejected a step, or the safety controller refused the run.
    Rejected,
    /// Rendered only; nothing ran.
    DryRun,
}

impl ExecutionStatus {
    /// Every status.
    pub const ALL: [ExecutionStatus; 8] = [
        ExecutionStatus::Pending,
        ExecutionStatus::Running,
        ExecutionStatus::AwaitingApproval,
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::RolledBack,
        ExecutionStatus::Rejected,
        ExecutionStatus::DryRun,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "pending",
            ExecutionStatus::Running => "running",
            ExecutionStatus::AwaitingApproval => "awaiting_approval",
            ExecutionStatus::Succeeded => "succeeded",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::RolledBack => "rolled_back",
            ExecutionStatus::Rejected => "rejected",
            ExecutionStatus::DryRun => "dry_run",
        }
    }

    /// Parses a name as written by [`as_str`](Self::as_str).
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                ValidationError::new(
                    field,
                    format!(
                        "'{s}' is not one of {}",
                        Self::ALL.map(ExecutionStatus::as_str).join(", ")
                    ),
                )
            })
    }

    /// Whether nothing more will happen to the execution.
    pub fn is_final(self) -> bool {
        !matches!(
            self,
            ExecutionStatus::Pending | ExecutionStatus::Running | ExecutionStatus::AwaitingApproval
        )
    }
}

/// Where one step stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not reached yet.
    Pending,
    /// Waiting for a person.
    AwaitingApproval,
    /// Running.
    Running,
    /// Done.
    Succeeded,
    /// Failed (see `error`).
    Failed,
    /// Never ran (an earlier step failed or the run was rejected).
    Skipped,
    /// Succeeded, then undone by its rollback actions.
    RolledBack,
    /// Its rollback failed.
    RollbackFailed,
    /// Rendered by a dry run.
    DryRun,
}

impl StepStatus {
    /// Whether the step has run (successfully or not) and will not run again.
    pub fn is_done(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded
                | StepStatus::Failed
                | StepStatus::RolledBack
                | StepStatus::RollbackFailed
        )
    }
}

/// An action with every placeholder filled in: exactly what runs (or would run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RenderedAction {
    /// An HTTP request.
    Http {
        /// Method.
        method: HttpMethod,
        /// Final URL.
        url: String,
        /// Headers (the signature header is added at send time).
        headers: BTreeMap<String, String>,
        /// Final JSON body.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<serde_json::Value>,
    },
    /// A process: `argv[0]` is the program.
    Command {
        /// Program and arguments, exactly as passed to `execve`.
        argv: Vec<String>,
    },
    /// A chat webhook message.
    Webhook {
        /// Target URL.
        url: String,
        /// The JSON payload.
        payload: serde_json::Value,
    },
    /// An email.
    Email {
        /// Recipients.
        to: Vec<String>,
        /// Subject.
        subject: String,
        /// Body text.
        body: String,
    },
    /// An event to publish.
    Emit {
        /// The system-event input document.
        event: serde_json::Value,
    },
    /// Nothing.
    Noop {
        /// Fails when run.
        fail: bool,
        /// Sleeps first.
        sleep_ms: u64,
    },
}

/// The record of one step of one execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StepRun {
    /// The step's name.
    pub name: String,
    /// Where it stands.
    pub status: StepStatus,
    /// The action as rendered for this subject (what runs / ran / would run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rendered: Option<RenderedAction>,
    /// Its rollback actions as rendered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rendered_rollback: Vec<RenderedAction>,
    /// Output (stdout/stderr, response body), truncated.
    #[serde(default)]
    pub output: String,
    /// Started, epoch ms.
    #[serde(default)]
    pub started_at: Option<i64>,
    /// Finished, epoch ms.
    #[serde(default)]
    pub finished_at: Option<i64>,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
    /// Whether it waits for a person before running (from the template, or set by the
    /// safety controller when the run is too risky to start alone).
    #[serde(default)]
    pub approval_required: bool,
    /// Who approved it.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// Its time limit, seconds (copied from the template at start, so a later template
    /// change never alters a run in progress).
    #[serde(default)]
    pub max_execution_time: u64,
}

impl StepRun {
    /// A step not reached yet.
    pub fn pending(name: &str) -> Self {
        Self {
            approval_required: false,
            approved_by: None,
            max_execution_time: 60,
            name: name.to_owned(),
            status: StepStatus::Pending,
            rendered: None,
            rendered_rollback: Vec::new(),
            output: String::new(),
            started_at: None,
            finished_at: None,
            error: None,
        }
    }
}

/// One run of a playbook for one subject (`rule_executions`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Execution {
    /// Id.
    pub id: String,
    /// The trigger rule that fired (or `manual` / `autonomous`).
    pub rule_id: String,
    /// The firing that started it: unique, so a replayed firing never runs twice.
    #[serde(default)]
    pub firing_id: Option<String>,
    /// The template run.
    pub template_id: String,
    /// Its name when the run started.
    #[serde(default)]
    pub template_name: String,
    /// Time limit of the whole run (time spent waiting for approval excluded), seconds.
    #[serde(default)]
    pub max_execution_time: u64,
    /// The subject (event, anomaly or incident) as JSON, `{"kind":…, "value":…}`.
    pub subject: serde_json::Value,
    /// Where it stands.
    pub status: ExecutionStatus,
    /// Rendered only.
    pub dry_run: bool,
    /// Roll completed steps back when a step fails.
    pub rollback_on_failure: bool,
    /// One record per template step, in order.
    pub steps: Vec<StepRun>,
    /// Who or what started it.
    pub started_by: String,
    /// Why it ended the way it did (failure, rejection, safety refusal).
    #[serde(default)]
    pub reason: Option<String>,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Last changed, epoch ms.
    pub updated_at: i64,
}

/// An approval request for one step of one execution. Only the token's SHA-256 is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Approval {
    /// Id.
    pub id: String,
    /// The paused execution.
    pub execution_id: String,
    /// The step waiting for it.
    pub step_index: u32,
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Created, epoch ms.
    pub created_at: i64,
    /// Expires, epoch ms.
    pub expires_at: i64,
    /// When it was used (single use), epoch ms.
    pub used_at: Option<i64>,
    /// `approved` or `rejected`, once used.
    pub decision: Option<String>,
    /// Who used it.
    pub decided_by: Option<String>,
}

/// What the autonomous service decided to do about a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecisionKind {
    /// Look closer (diagnostics only).
    Investigate,
    /// Run the recommended playbook.
    Automate,
    /// Hand to people.
    Escalate,
    /// Nothing to do.
    Ignore,
}

impl DecisionKind {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Investigate => "investigate",
            DecisionKind::Automate => "automate",
            DecisionKind::Escalate => "escalate",
            DecisionKind::Ignore => "ignore",
        }
    }
}

/// One recommended action of a decision: a playbook to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecommendedAction {
    /// Id within the decision (`a1`, `a2`, …), named by `execute`.
    pub action_id: String,
    /// The playbook.
    pub template_id: String,
    /// Its name.
    pub template_name: String,
    /// Its effective risk.
    pub risk_level: RiskLevel,
    /// Whether the safety controller would let it run without a person now.
    pub auto_allowed: bool,
    /// Why (or why not).
    pub reason: String,
}

/// A decision of the autonomous service (`decision_log`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Decision {
    /// Id.
    pub id: String,
    /// The event analysed, if any.
    #[serde(default)]
    pub event_id: Option<String>,
    /// The incident analysed, if any.
    #[serde(default)]
    pub incident_id: Option<String>,
    /// What to do.
    pub decision: DecisionKind,
    /// How sure, 0..=1.
    pub confidence: f64,
    /// Why, one line per consideration.
    pub reasoning: Vec<String>,
    /// Playbooks to run, best first.
    pub recommended_actions: Vec<RecommendedAction>,
    /// The context the caller gave.
    pub context: serde_json::Value,
    /// Who asked.
    pub requested_by: String,
    /// Feedback given later (`POST /autonomous/feedback`).
    #[serde(default)]
    pub feedback: Option<serde_json::Value>,
    /// When, epoch ms.
    pub created_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(steps: serde_json::Value) -> ResponseTemplate {
        serde_json::from_value(serde_json::json!({"name": "t", "steps": steps}))
            .expect("template shape")
    }

    #[test]
    fn a_valid_template_passes_and_defaults_fill_in() {
        let t = template(serde_json::json!([
            {"name": "diag", "kind": "diagnostic",
             "action": {"type": "command", "program": "/usr/bin/uptime", "args": ["{{subject.service_name}}"]}},
            {"name": "hook", "kind": "notification", "approval_required": true,
             "action": {"type": "http", "url": "https://hooks.example/x?svc={{subject.service_name}}",
                        "body": {"text": "{{subject.details}}"}},
             "rollback": [{"type": "noop"}]}
        ]));
        t.validate().expect("valid");
        assert_eq!(t.steps[0].max_execution_time, 60);
        assert_eq!(t.max_execution_time, 600);
    }

    #[test]
    fn refusals_name_the_field() {
        let cases = [
            (serde_json::json!([]), "steps"),
            (
                serde_json::json!([{"name": "a", "kind": "diagnostic",
                    "action": {"type": "command", "program": "uptime"}}]),
                "steps[0].action.program",
            ),
            (
                serde_json::json!([{"name": "a", "kind": "diagnostic",
                    "action": {"type": "command", "program": "/bin/x", "args": ["ok", "{{bad path}}"]}}]),
                "steps[0].action.args[1]",
            ),
            (
                serde_json::json!([{"name": "a", "kind": "diagnostic",
                    "action": {"type": "http", "url": "http://{{subject.host}}/x"}}]),
                "steps[0].action.url",
            ),
            (
                serde_json::json!([
                    {"name": "a", "kind": "diagnostic", "action": {"type": "noop"}},
                    {"name": "a", "kind": "diagnostic", "action": {"type": "noop"}}]),
                "steps[1].name",
            ),
            (
                serde_json::json!([{"name": "a", "kind": "diagnostic", "action": {"type": "noop"},
                    "rollback": [{"type": "emit", "event": "x"}]}]),
                "steps[0].rollback[0].event",
            ),
            (
                serde_json::json!([{"name": "a", "kind": "diagnostic", "max_execution_time": 0,
                    "action": {"type": "noop"}}]),
                "steps[0].max_execution_time",
            ),
        ];
        for (steps, field) in cases {
            let err = template(steps.clone()).validate().expect_err("invalid");
            assert_eq!(err.field, field, "{steps}: {err}");
        }
    }

    #[test]
    fn effective_risk_is_the_riskiest() {
        let mut t = template(serde_json::json!([
            {"name": "a", "kind": "remediation", "risk_level": "high", "action": {"type": "noop"}}
        ]));
        assert_eq!(t.effective_risk(), RiskLevel::High);
        t.risk_level = RiskLevel::Critical;
        assert_eq!(t.effective_risk(), RiskLevel::Critical);
    }

    #[test]
    fn statuses_round_trip() {
        for s in ExecutionStatus::ALL {
            assert_eq!(ExecutionStatus::parse("status", s.as_str()), Ok(s));
        }
        assert!(ExecutionStatus::parse("status", "nope").is_err());
    }
}
