//! The service dependency graph: which service calls which, and how much each matters.
//!
//! The correlator uses it to fold anomalies of dependent services into the incident of the
//! upstream-most one and to inhibit warnings downstream of a critical incident; the analyst
//! uses it to gather the neighbours' metrics. It comes from the config file and
//! `PUT /api/v1/topology`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::ValidationError;

/// One service in the graph.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceNode {
    /// The services this one calls (its dependencies: a fault there shows up here).
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// How much an incident here matters, 0.1 to 10; 1 when absent.
    #[serde(default = "default_criticality")]
    pub criticality: f64,
}

fn default_criticality() -> f64 {
    1.0
}

/// The whole graph, keyed by service name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Every known service.
    #[serde(default)]
    pub services: BTreeMap<String, ServiceNode>,
}

impl Topology {
    /// Checks the graph: criticalities in range, no dependency on an unknown service, no
    /// self-dependency. Cycles are allowed (real systems have them); walks stop at visited
    /// nodes.
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (name, node) in &self.services {
            if name.trim().is_empty() {
                return Err(ValidationError::new("services", "empty service name"));
            }
            if !(0.1..=10.0).contains(&node.criticality) || !node.criticality.is_finite() {
                return Err(ValidationError::new(
                    format!("services.{name}.criticality"),
                    format!("{} is outside 0.1..=10", node.criticality),
                ));
            }
            for dep in &node.depends_on {
                if dep == name {
                    return Err(ValidationError::new(
                        format!("services.{name}.depends_on"),
                        "a service cannot depend on itself",
                    ));
                }
                if !self.services.contains_key(dep) {
                    return Err(ValidationError::new(
                        format!("services.{name}.depends_on"),
                        format!("unknown service '{dep}': declare it under services"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The criticality of a service; 1 for unknown ones.
    pub fn criticality(&self, service: &str) -> f64 {
        self.services.get(service).map_or(1.0, |n| n.criticality)
    }

    /// The services `service` calls directly.
    pub fn dependencies(&self, service: &str) -> &[String] {
        self.services
            .get(service)
            .map_or(&[], |n| n.depends_on.as_slice())
    }

    /// The services that call `service` directly.
    pub fn dependents(&self, service: &str) -> Vec<&str> {
        self.services
            .iter()
            .filter(|(_, n)| n.depends_on.iter().any(|d| d == service))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Every service `service` depends on, directly or not (breadth first, no repeats,
    /// `service` itself excluded).
    pub fn upstream_of(&self, service: &str) -> BTreeSet<String> {
        self.walk(service, |s| {
            self.dependencies(s).iter().map(String::as_str).collect()
        })
    }

    /// Every service that depends on `service`, directly or not.
    pub fn downstream_of(&self, service: &str) -> BTreeSet<String> {
        self.walk(service, |s| self.dependents(s))
    }

    /// True when one of the two depends on the other, directly or not.
    pub fn related(&self, a: &str, b: &str) -> bool {
        a == b || self.upstream_of(a).contains(b) || self.upstream_of(b).contains(a)
    }

    fn walk<'a>(&'a self, start: &str, next: impl Fn(&str) -> Vec<&'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue: VecDeque<String> = VecDeque::from([start.to_owned()]);
        while let Some(s) = queue.pop_front() {
            for n in next(&s) {
                if n != start && seen.insert(n.to_owned()) {
                    queue.push_back(n.to_owned());
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph() -> Topology {
        let mut t = Topology::default();
        let mut add = |name: &str, deps: &[&str]| {
            t.services.insert(
                name.into(),
                ServiceNode {
                    depends_on: deps.iter().map(|d| d.to_string()).collect(),
                    criticality: 1.0,
                },
            );
        };
        add("frontend", &["checkout", "catalog"]);
        add("checkout", &["payments", "db"]);
        add("catalog", &["db"]);
        add("payments", &[]);
        add("db", &[]);
        t
    }

    #[test]
    fn walks_both_directions() {
        let t = graph();
        t.validate().unwrap();
        assert_eq!(
            t.upstream_of("frontend").into_iter().collect::<Vec<_>>(),
            ["catalog", "checkout", "db", "payments"]
        );
        assert_eq!(
            t.downstream_of("db").into_iter().collect::<Vec<_>>(),
            ["catalog", "checkout", "frontend"]
        );
        assert!(t.related("frontend", "db"));
        assert!(!t.related("payments", "catalog"));
    }

    #[test]
    fn rejects_unknown_dependencies() {
        let mut t = graph();
        t.services
            .get_mut("db")
            .unwrap()
            .depends_on
            .push("disk".into());
        let err = t.validate().unwrap_err();
        assert_eq!(err.field, "services.db.depends_on");
    }
}
