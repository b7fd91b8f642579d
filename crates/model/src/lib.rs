//! The vocabulary every other sightline crate speaks.
//!
//! sightline moves a handful of shapes through its pipeline, and this crate owns all of
//! them: the input shapes producers send (the Kafka monitoring spec's [`SystemEventInput`],
//! the generic [`WebhookInput`], the [`MetricInput`]), the one normalized [`Event`] and
//! [`Metric`] they become, the [`topics`] they travel on, and the [`ValidationError`] that
//! names the field and the reason whenever an input is refused.
//!
//! Decoding is *total*: every byte sequence either becomes a normalized value or a
//! [`ValidationError`]; nothing here panics on input.
//!
//! ```
//! use sightline_model::{decode, IngestContext, SourceType};
//!
//! let ctx = IngestContext::new(SourceType::Http, 1_700_000_000_000, "req-1");
//! let body = br#"{"service_name":"payment-service","event_type":"ERROR",
//!                 "timestamp":1699999999000,"details":"card declined 4021"}"#;
//! let event = decode::system_event(body, &ctx).expect("valid event");
//! assert_eq!(event.service_name, "payment-service");
//! assert_eq!(event.severity.as_str(), "high"); // derived from ERROR when absent
//!
//! let err = decode::system_event(br#"{"event_type":"ERROR"}"#, &ctx).unwrap_err();
//! assert_eq!(err.field, "service_name");
//! ```

mod analysis;
mod anomaly;
pub mod clock;
pub mod decode;
mod event;
pub mod fingerprint;
mod incident;
pub mod input;
mod insight;
mod metric;
pub mod playbook;
pub mod rule;
pub mod schemas;
mod secret;
mod security;
pub mod topics;
mod topology;
mod validation;

pub use analysis::{
    ActionRisk, Analysis, AnalysisStatus, AnalystKind, EvidenceKind, EvidenceRef, Feedback,
    FeedbackVerdict, SuggestedAction,
};
pub use anomaly::{Anomaly, Signal};
pub use clock::Clock;
pub use event::{Event, Severity, SourceType};
pub use incident::{
    Correlation, CorrelationKind, Incident, IncidentStatus, MatchOp, Matcher, Silence,
    TimelineEntry,
};
pub use input::{IngestContext, MetricInput, SystemEventInput, WebhookInput};
pub use insight::EventInsight;
pub use metric::Metric;
pub use playbook::{
    Action, Approval, Decision, DecisionKind, Execution, ExecutionStatus, RenderedAction,
    ResponseTemplate, RiskLevel, Step, StepKind, StepRun, StepStatus,
};
pub use rule::{AppliesTo, Throttle, TriggerRule, TriggerRuleSpec};
pub use secret::{REDACTED, Secret};
pub use security::{ActorKind, ApiKey, AuditEntry, Role, Scope, User};
pub use topology::{ServiceNode, Topology};
pub use validation::ValidationError;
