//! The condition language of trigger rules: a JSON document compiled once into a tree of
//! typed predicates, evaluated per subject without allocating.
//!
//! ```json
//! {"event_type": "threshold_breach", "severity": ["critical", "high"],
//!  "metadata.cpu_usage": {"$gt": 90}}
//! ```
//!
//! - **Keys** are field paths of the subject (`service_name`, `metadata.a.b`, `tags.region`,
//!   `labels.team`) or the combinators `$and`, `$or` (arrays of documents) and `$not` (a
//!   document). Sibling keys are ANDed.
//! - **Values**: a scalar means equality, an array means "one of", an object holds
//!   operators (ANDed): `$eq $ne $gt $gte $lt $lte $in $nin $contains $startswith
//!   $endswith $regex $exists $timediff_lt $timediff_gt`, and `$not` over operators.
//!
//! Semantics, chosen to be unsurprising and total:
//! - a missing field (or an unset optional one) satisfies only `$ne`, `$nin`,
//!   `{"$exists": false}`, equality with `null`, and negations; never a comparison;
//! - no type coercion: `"90"` is not `90`, and a comparison across types is false;
//! - on a list (`affected_services`, a JSON array in metadata) a scalar test holds when
//!   any element satisfies it; `$contains` on a string is a substring test, on a list
//!   membership, on a map (`tags`, `labels`, a metadata object) key presence;
//! - `event_type` and `environment` are stored upper-case and `source_type`/`status`
//!   lower-case, so literals compared with them are case-normalized at compile time;
//!   severities are parsed (synonyms accepted) and ordered `info` < … < `critical`;
//! - `$timediff_lt: s` holds when the field's time (epoch ms, or an RFC 3339 string) lies
//!   less than `s` seconds before *now* (the evaluation's clock), `$timediff_gt` more.
//!
//! Evaluation allocates nothing: accessors borrow from the subject, literals were
//! normalized at compile time, and regular expressions were compiled once (the regex
//! engine keeps a per-thread scratch cache, filled on a thread's first match; later
//! matches reuse it). `tests/no_alloc.rs` checks this with a counting allocator.

mod compile;
mod field;

use regex::Regex;
use serde_json::Value;
use sightline_model::{AppliesTo, Severity};

pub use compile::{MAX_DEPTH, MAX_LIST, MAX_NODES, MAX_REGEX, MAX_STRING, REGEX_SIZE_LIMIT};
pub(crate) use field::Accessor;
use field::{FieldRef, severity_rank};

use crate::{RespondError, Subject};

/// A compiled condition over one kind of subject.
#[derive(Debug, Clone)]
pub struct Condition {
    kind: AppliesTo,
    root: Node,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    True,
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Not(Box<Node>),
    Test(Accessor, Pred),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Cmp {
    Gt,
    Gte,
    Lt,
    Lte,
}

#[derive(Debug, Clone)]
pub(crate) enum Lit {
    Null,
    Bool(bool),
    Num(f64),
    Str(Box<str>),
    Severity(Severity),
}

#[derive(Debug, Clone)]
pub(crate) enum Pred {
    Eq(Lit),
    Ne(Lit),
    Cmp(Cmp, f64),
    In(Box<[Lit]>),
    Nin(Box<[Lit]>),
    Contains(Lit),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Regex(Box<Regex>),
    Exists(bool),
    TimediffLt(i64),
    TimediffGt(i64),
    Not(Box<Pred>),
    All(Box<[Pred]>),
}

impl Condition {
    /// Compiles `doc` for subjects of `kind`. Errors are [`RespondError::Invalid`] with a
    /// path rooted at `conditions` (`conditions.$and[1].metadata.cpu_usage.$gt`).
    pub fn compile(kind: AppliesTo, doc: &Value) -> Result<Self, RespondError> {
        Self::compile_at(kind, doc, "conditions")
    }

    /// As [`Condition::compile`], with errors rooted at `root` instead of `conditions`.
    pub fn compile_at(kind: AppliesTo, doc: &Value, root: &str) -> Result<Self, RespondError> {
        let root = compile::Compiler::new(kind).document(doc, root, 0)?;
        Ok(Self { kind, root })
    }

    /// The kind of subject this condition reads.
    pub fn kind(&self) -> AppliesTo {
        self.kind
    }

    /// Whether `subject` satisfies the condition at `now_ms` (used by `$timediff_*`).
    /// A subject of another kind never matches.
    pub fn matches(&self, subject: &Subject, now_ms: i64) -> bool {
        let same_kind = matches!(
            (self.kind, subject),
            (AppliesTo::Events, Subject::Event(_))
                | (AppliesTo::Anomalies, Subject::Anomaly(_))
                | (AppliesTo::Incidents, Subject::Incident(_))
        );
        same_kind && node(&self.root, subject, now_ms)
    }

    /// The values a field must equal for the condition to hold, when the condition's top
    /// level requires it (`{"event_type": "X"}` or `{"event_type": ["X","Y"], …}` directly or
    /// inside a top-level `$and`): the index keys of a rule set. `None` when not required.
    pub(crate) fn required_values(&self, which: fn(&Accessor) -> bool) -> Option<Vec<&str>> {
        fn find(n: &Node, which: fn(&Accessor) -> bool) -> Option<Vec<&str>> {
            match n {
                Node::Test(acc, pred) if which(acc) => match pred {
                    Pred::Eq(Lit::Str(s)) => Some(vec![&**s]),
                    Pred::In(list) => list
                        .iter()
                        .map(|l| match l {
                            Lit::Str(s) => Some(&**s),
                            _ => None,
                        })
                        .collect(),
                    _ => None,
                },
                Node::And(children) => children.iter().find_map(|c| find(c, which)),
                _ => None,
            }
        }
        find(&self.root, which)
    }
}

fn node(n: &Node, s: &Subject, now: i64) -> bool {
    match n {
        Node::True => true,
        Node::And(c) => c.iter().all(|n| node(n, s, now)),
        Node::Or(c) => c.iter().any(|n| node(n, s, now)),
        Node::Not(n) => !node(n, s, now),
        Node::Test(acc, pred) => test(pred, acc.get(s), now),
    }
}

/// Whether a scalar test holds for `f`, or for any element when `f` is a list.
fn any(f: FieldRef<'_>, t: &impl Fn(FieldRef<'_>) -> bool) -> bool {
    match f {
        FieldRef::StrList(l) => l.iter().any(|x| t(FieldRef::Str(x))),
        FieldRef::JsonArray(a) => a.iter().any(|v| match v {
            // One level only: a nested array is a value, not more elements.
            Value::Array(_) => false,
            v => t(FieldRef::from_json(v)),
        }),
        f => t(f),
    }
}

fn eq(f: FieldRef<'_>, lit: &Lit) -> bool {
    any(f, &|f| match (f, lit) {
        (FieldRef::Str(a), Lit::Str(b)) => a == &**b,
        (FieldRef::Num(a), Lit::Num(b)) => a == *b,
        (FieldRef::Bool(a), Lit::Bool(b)) => a == *b,
        (FieldRef::Severity(a), Lit::Severity(b)) => a == *b,
        (FieldRef::Null | FieldRef::Missing, Lit::Null) => true,
        _ => false,
    })
}

fn ordinal(f: FieldRef<'_>) -> Option<f64> {
    match f {
        FieldRef::Num(n) => Some(n),
        FieldRef::Severity(s) => Some(severity_rank(s)),
        _ => None,
    }
}

fn str_test(f: FieldRef<'_>, t: impl Fn(&str) -> bool) -> bool {
    any(f, &|f| matches!(f, FieldRef::Str(s) if t(s)))
}

fn time_ms(f: FieldRef<'_>) -> Option<i64> {
    match f {
        FieldRef::Num(n) if n.is_finite() => Some(n as i64),
        FieldRef::Str(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    }
}

fn test(p: &Pred, f: FieldRef<'_>, now: i64) -> bool {
    match p {
        Pred::Eq(l) => eq(f, l),
        Pred::Ne(l) => !eq(f, l),
        Pred::Cmp(op, bound) => any(f, &|f| {
            ordinal(f).is_some_and(|v| match op {
                Cmp::Gt => v > *bound,
                Cmp::Gte => v >= *bound,
                Cmp::Lt => v < *bound,
                Cmp::Lte => v <= *bound,
            })
        }),
        Pred::In(list) => list.iter().any(|l| eq(f, l)),
        Pred::Nin(list) => !list.iter().any(|l| eq(f, l)),
        Pred::Contains(lit) => match (f, lit) {
            (FieldRef::Str(s), Lit::Str(needle)) => s.contains(&**needle),
            (FieldRef::StrMap(m), Lit::Str(k)) => m.contains_key(&**k),
            (FieldRef::JsonObject(m), Lit::Str(k)) => m.contains_key(&**k),
            (FieldRef::StrList(_) | FieldRef::JsonArray(_), lit) => eq(f, lit),
            _ => false,
        },
        Pred::StartsWith(p) => str_test(f, |s| s.starts_with(&**p)),
        Pred::EndsWith(p) => str_test(f, |s| s.ends_with(&**p)),
        Pred::Regex(re) => str_test(f, |s| re.is_match(s)),
        Pred::Exists(want) => !matches!(f, FieldRef::Missing) == *want,
        Pred::TimediffLt(ms) => time_ms(f).is_some_and(|t| now.saturating_sub(t) < *ms),
        Pred::TimediffGt(ms) => time_ms(f).is_some_and(|t| now.saturating_sub(t) > *ms),
        Pred::Not(p) => !test(p, f, now),
        Pred::All(ps) => ps.iter().all(|p| test(p, f, now)),
    }
}

/// Reads a `group_by` path of a subject as key text (see [`Accessor`]).
pub(crate) fn render_field(acc: &Accessor, subject: &Subject, out: &mut String) {
    acc.get(subject).render(out);
}

#[cfg(test)]
mod tests;
