//! Rule-driven response: what sightline does about what it sees.
//!
//! Two halves meet here:
//!
//! - **trigger rules** decide *when*: a condition (a JSON document in the query language
//!   of the rules API) over events, anomalies or incidents, compiled once and evaluated
//!   without allocating, with count-in-window thresholds and throttles keyed by group;
//! - **playbooks** decide *what*: ordered steps (diagnostic, remediation, notification,
//!   escalation) run by executors (`http`, `command`, `notify`, `emit`, `noop`) behind a
//!   safety controller, with approvals, dry-run and rollback, every step recorded.
//!
//! Nothing an analyst (LLM or built-in) writes can run an action by itself: only a rule
//! firing, or a person approving, starts an execution.

mod error;
pub mod firing;

// --- playbooks: executors, engine, safety, approvals, autonomous decisions ---
pub mod approval;
pub mod decision;
pub mod executor;
pub mod playbook;
pub mod safety;

// Trigger rules: the condition language and the rule engine.
pub mod condition;
pub mod runner;
pub mod trigger;

pub use error::RespondError;
pub use firing::{Firing, Subject};
pub use playbook::{Actor, Engine, PlaybookConfig, RunRequest, run_playbooks};

// Trigger rules.
pub use condition::Condition;
pub use trigger::{CompiledRule, RuleSet, RuleSetState, Stats};

/// Result type of the response crate.
pub type Result<T, E = RespondError> = std::result::Result<T, E>;
