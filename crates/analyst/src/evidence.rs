//! The evidence check: an answer may cite only ids that were in the context it was given,
//! and should cite something for its root cause. Invented ids and uncited or unsupported
//! claims are flagged in the stored analysis and lower its confidence.

use sightline_model::EvidenceRef;

use crate::context::AnalysisContext;

/// Confidence lost per invented id (at most [`MAX_INVENTED_PENALTY`] in all).
pub const INVENTED_PENALTY: f64 = 0.15;
/// Most confidence lost to invented ids.
pub const MAX_INVENTED_PENALTY: f64 = 0.6;
/// Confidence lost when nothing is cited.
pub const UNCITED_PENALTY: f64 = 0.3;
/// Confidence lost when the root-cause service is not in the context.
pub const UNKNOWN_SERVICE_PENALTY: f64 = 0.3;
/// Confidence lost when no cited evidence concerns the root-cause service.
pub const UNSUPPORTED_ROOT_PENALTY: f64 = 0.1;

/// The outcome of the check.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    /// The cited ids that exist in the context, with their kinds.
    pub evidence: Vec<EvidenceRef>,
    /// What was wrong.
    pub flags: Vec<String>,
    /// The confidence after the penalties.
    pub confidence: f64,
}

/// Checks an answer's citations and root cause against `ctx`.
pub fn check(
    ctx: &AnalysisContext,
    cited: &[String],
    root_cause_service: Option<&str>,
    impacted: &[String],
    confidence: f64,
) -> Checked {
    let known = ctx.known_ids();
    let mut evidence = Vec::new();
    let mut flags = Vec::new();
    let mut invented = 0.0;
    for id in cited {
        match known.get(id) {
            Some(kind) => {
                let r = EvidenceRef {
                    kind: *kind,
                    id: id.clone(),
                };
                if !evidence.contains(&r) {
                    evidence.push(r);
                }
            }
            None => {
                flags.push(format!("invented_id: '{id}' is not in the context"));
                invented += INVENTED_PENALTY;
            }
        }
    }
    let mut penalty = f64::min(invented, MAX_INVENTED_PENALTY);
    if evidence.is_empty() {
        flags.push("uncited: the answer cites no evidence from the context".into());
        penalty += UNCITED_PENALTY;
    }
    let mut services = ctx.candidate_services();
    for s in services.clone() {
        services.extend(ctx.topology.dependencies(&s).iter().cloned());
    }
    services.extend(ctx.topology.services.keys().cloned());
    if let Some(root) = root_cause_service {
        if !services.contains(root) {
            flags.push(format!(
                "unknown_service: root cause service '{root}' is not in the context"
            ));
            penalty += UNKNOWN_SERVICE_PENALTY;
        } else if !evidence.is_empty() && !supports(ctx, &evidence, root) {
            flags.push(format!(
                "unsupported_root: no cited evidence concerns '{root}'"
            ));
            penalty += UNSUPPORTED_ROOT_PENALTY;
        }
    }
    for s in impacted {
        if !services.contains(s) {
            flags.push(format!(
                "unknown_service: impacted service '{s}' is not in the context"
            ));
        }
    }
    Checked {
        evidence,
        flags,
        confidence: ((confidence - penalty).clamp(0.0, 1.0) * 100.0).round() / 100.0,
    }
}

/// Whether any cited item concerns `service`.
fn supports(ctx: &AnalysisContext, evidence: &[EvidenceRef], service: &str) -> bool {
    evidence.iter().any(|r| {
        let id = r.id.as_str();
        ctx.anomalies
            .iter()
            .chain(&ctx.nearby_anomalies)
            .any(|a| a.id == id && a.service_name == service)
            || ctx
                .events
                .iter()
                .chain(&ctx.deployments)
                .any(|e| e.event_id == id && e.service_name == service)
            || ctx
                .metric_shifts
                .iter()
                .any(|m| m.rollup_id == id && m.service == service)
            || ctx.similar.iter().any(|p| {
                p.incident_id == id
                    && (p.service_name == service
                        || p.affected_services.iter().any(|s| s == service))
            })
    })
}
