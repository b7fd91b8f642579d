//! The analyst: every incident gets a root-cause analysis, with evidence.
//!
//! This is the "explain" stage of the pipeline (ingest → stream → detect → correlate →
//! **explain** → act). An incident arrives (from `incidents.detected`, a significant
//! `incidents.updated`, or `POST /api/v1/analysis/generate`); the analyst
//!
//! 1. gathers its **context** ([`context`]): the incident's anomalies and events,
//!    anomalies and 1-minute rollups of the affected services and their topology
//!    neighbours, `DEPLOYMENT` events shortly before, similar past incidents and the
//!    verdicts operators gave on their analyses;
//! 2. asks the **built-in analyst** ([`builtin`]), which ranks root-cause candidates by
//!    direction-aware causal reach in the topology, onset order, preceding deployments,
//!    own symptoms and operator feedback, and writes the full
//!    [`Analysis`](sightline_model::Analysis) schema with calibrated confidence and
//!    templated summaries, citing only ids from the context;
//! 3. returns the analysis, which the [`runner`] stores in `ai_analyses`, publishes on
//!    `analysis.completed` and caches as `analysis:{incidentId}` for an hour.
//!
//! [`engine::Analyst`] is the single code path all callers use. [`eval`] runs the
//! simulator's incident scenario through the real detectors and correlator into a real
//! SQLite store and scores the built-in analyst's top-1/top-3 root-cause accuracy against
//! the scenario's ground truth.
//!
//! With `[analyst.insights]` enabled, the same LLM provider also explains single
//! high-severity events as they arrive ([`insights`]): rate-limited, deduplicated by
//! fingerprint, stored in `event_insights` and published on `insights.generated`.
//!
//! Nothing here executes anything: suggested actions are text. Only the rules/approval
//! path (the `respond` crate) can act.
//!
//! ```
//! use sightline_analyst::builtin::BuiltinAnalyst;
//! use sightline_analyst::context::AnalysisContext;
//! # use sightline_model::{Incident, IncidentStatus, Severity, Topology};
//! # let incident = Incident {
//! #     id: "inc-1".into(), title: "db slow".into(), description: String::new(),
//! #     severity: Severity::High, score: 1.0, status: IncidentStatus::Open,
//! #     service_name: "db".into(), affected_services: vec!["db".into()],
//! #     detected_at: 1_000, updated_at: 1_000, acknowledged_at: None, resolved_at: None,
//! #     correlation_id: String::new(), fingerprint: String::new(),
//! #     labels: Default::default(), event_ids: vec![], anomaly_ids: vec![],
//! #     occurrences: 1, assignee: None, flapping: false, timeline: vec![],
//! # };
//! let ctx = AnalysisContext {
//!     incident,
//!     topology: Topology::default(),
//!     anomalies: vec![],
//!     nearby_anomalies: vec![],
//!     events: vec![],
//!     deployments: vec![],
//!     metric_shifts: vec![],
//!     similar: vec![],
//!     root_verdicts: vec![],
//! };
//! let analysis = BuiltinAnalyst.analyze(&ctx, 2_000);
//! assert_eq!(analysis.root_cause_service.as_deref(), Some("db"));
//! assert!(analysis.confidence < 0.5, "no evidence, no confidence");
//! assert!(analysis.evidence.is_empty());
//! ```

pub mod builtin;
mod config;
pub mod context;
pub mod engine;
mod error;
pub mod eval;
pub mod evidence;
pub mod insights;
pub mod llm;
pub mod runner;

pub use config::AnalystConfig;
pub use engine::Analyst;
pub use error::AnalystError;
