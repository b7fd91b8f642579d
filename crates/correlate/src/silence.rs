//! Signal labels and silences: the label set a signal is grouped, silenced and matched by,
//! and [`CompiledSilences`], silences with their regular expressions compiled once.

use std::collections::BTreeMap;

use regex::Regex;
use sightline_model::{MatchOp, Silence};

use crate::CorrelateError;

/// A signal's labels: `service`, `signal`, `detector`, `severity`, `environment`, `host`
/// and the event's tags. A missing label reads as the empty string (Alertmanager's rule).
pub type Labels = BTreeMap<String, String>;

/// The value of `name` in `labels`, empty when absent.
pub(crate) fn label<'a>(labels: &'a Labels, name: &str) -> &'a str {
    labels.get(name).map_or("", String::as_str)
}

fn op_str(op: MatchOp) -> &'static str {
    match op {
        MatchOp::Equal => "=",
        MatchOp::NotEqual => "!=",
        MatchOp::Regex => "=~",
        MatchOp::NotRegex => "!~",
    }
}

#[derive(Debug, Clone)]
enum CompiledMatcher {
    Equal(String, String),
    NotEqual(String, String),
    Regex(String, Regex),
    NotRegex(String, Regex),
}

impl CompiledMatcher {
    fn matches(&self, labels: &Labels) -> bool {
        match self {
            CompiledMatcher::Equal(n, v) => label(labels, n) == v,
            CompiledMatcher::NotEqual(n, v) => label(labels, n) != v,
            CompiledMatcher::Regex(n, r) => r.is_match(label(labels, n)),
            CompiledMatcher::NotRegex(n, r) => !r.is_match(label(labels, n)),
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledSilence {
    silence: Silence,
    matchers: Vec<CompiledMatcher>,
}

/// Silences ready to match: regular expressions compiled once, anchored to the whole
/// value (`=~ "db.*"` matches `db-primary`, not `my-db`).
#[derive(Debug, Clone, Default)]
pub struct CompiledSilences {
    silences: Vec<CompiledSilence>,
}

impl CompiledSilences {
    /// Compiles and checks every silence; the first bad one is refused with an error that
    /// names the silence and the matcher. Nothing is half-applied.
    pub fn compile(silences: &[Silence]) -> Result<Self, CorrelateError> {
        let mut out = Vec::with_capacity(silences.len());
        for s in silences {
            if s.id.trim().is_empty() {
                return Err(CorrelateError::InvalidSilence {
                    silence_id: s.id.clone(),
                    reason: "empty id".into(),
                });
            }
            if s.matchers.is_empty() {
                return Err(CorrelateError::InvalidSilence {
                    silence_id: s.id.clone(),
                    reason: "no matchers: a silence must say what it silences".into(),
                });
            }
            if s.ends_at <= s.starts_at {
                return Err(CorrelateError::InvalidSilence {
                    silence_id: s.id.clone(),
                    reason: format!(
                        "ends_at ({}) is not after starts_at ({})",
                        s.ends_at, s.starts_at
                    ),
                });
            }
            let mut matchers = Vec::with_capacity(s.matchers.len());
            for (index, m) in s.matchers.iter().enumerate() {
                let err = |reason: String| CorrelateError::InvalidMatcher {
                    silence_id: s.id.clone(),
                    index,
                    name: m.name.clone(),
                    op: op_str(m.op),
                    value: m.value.clone(),
                    reason,
                };
                if m.name.trim().is_empty() {
                    return Err(err("empty label name".into()));
                }
                let compile = || {
                    Regex::new(&format!("^(?:{})$", m.value))
                        .map_err(|e| err(format!("invalid regular expression: {e}")))
                };
                matchers.push(match m.op {
                    MatchOp::Equal => CompiledMatcher::Equal(m.name.clone(), m.value.clone()),
                    MatchOp::NotEqual => CompiledMatcher::NotEqual(m.name.clone(), m.value.clone()),
                    MatchOp::Regex => CompiledMatcher::Regex(m.name.clone(), compile()?),
                    MatchOp::NotRegex => CompiledMatcher::NotRegex(m.name.clone(), compile()?),
                });
            }
            out.push(CompiledSilence {
                silence: s.clone(),
                matchers,
            });
        }
        Ok(Self { silences: out })
    }

    /// The first silence (in the order given) active at `now` whose matchers all match.
    pub fn matching(&self, labels: &Labels, now: i64) -> Option<&Silence> {
        self.silences
            .iter()
            .find(|s| s.silence.active_at(now) && s.matchers.iter().all(|m| m.matches(labels)))
            .map(|s| &s.silence)
    }

    /// The silences as given.
    pub fn silences(&self) -> Vec<Silence> {
        self.silences.iter().map(|s| s.silence.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::Matcher;

    fn silence(op: MatchOp, value: &str) -> Silence {
        Silence {
            id: "s1".into(),
            matchers: vec![Matcher {
                name: "service".into(),
                op,
                value: value.into(),
            }],
            starts_at: 0,
            ends_at: 100,
            created_by: "ops".into(),
            comment: "maintenance".into(),
            created_at: 0,
        }
    }

    fn labels(service: &str) -> Labels {
        Labels::from([("service".to_owned(), service.to_owned())])
    }

    #[test]
    fn regex_is_anchored() {
        let c = CompiledSilences::compile(&[silence(MatchOp::Regex, "db.*")]).expect("valid");
        assert!(c.matching(&labels("db-primary"), 1).is_some());
        assert!(c.matching(&labels("my-db"), 1).is_none());
        let c =
            CompiledSilences::compile(&[silence(MatchOp::NotRegex, "db|cache")]).expect("valid");
        assert!(c.matching(&labels("dbx"), 1).is_some());
        assert!(c.matching(&labels("db"), 1).is_none());
    }

    #[test]
    fn missing_label_is_empty() {
        let c = CompiledSilences::compile(&[silence(MatchOp::NotEqual, "db")]).expect("valid");
        assert!(c.matching(&Labels::new(), 1).is_some());
    }
}
