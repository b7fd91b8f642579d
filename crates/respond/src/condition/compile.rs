//! From a JSON condition document to a tree of typed predicates, refusing anything
//! malformed with the path to the fault.

use regex::{Regex, RegexBuilder};
use serde_json::{Map, Value};
use sightline_model::{AppliesTo, Severity};

use super::field::{Accessor, Norm, severity_rank};
use super::{Cmp, Lit, Node, Pred};
use crate::RespondError;

/// Deepest nesting of documents, combinators and `$not`.
pub const MAX_DEPTH: usize = 32;
/// Most predicates and combinators in one condition.
pub const MAX_NODES: usize = 1024;
/// Most values in one `$in`/`$nin` list.
pub const MAX_LIST: usize = 1024;
/// Longest string literal, in bytes.
pub const MAX_STRING: usize = 4096;
/// Longest regular expression source, in bytes.
pub const MAX_REGEX: usize = 1024;
/// Compiled-program size limit of one regular expression (bounds memory and compile time).
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

const OPERATORS: &str = "$eq, $ne, $gt, $gte, $lt, $lte, $in, $nin, $contains, $startswith, \
    $endswith, $regex, $exists, $timediff_lt, $timediff_gt, $not";

#[derive(Debug)]
pub(super) struct Compiler {
    kind: AppliesTo,
    nodes: usize,
}

fn invalid(path: &str, reason: impl Into<String>) -> RespondError {
    RespondError::Invalid {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Compiler {
    pub(super) fn new(kind: AppliesTo) -> Self {
        Self { kind, nodes: 0 }
    }

    fn count(&mut self, path: &str, depth: usize) -> Result<(), RespondError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(invalid(
                path,
                format!("condition too large: at most {MAX_NODES} predicates"),
            ));
        }
        if depth > MAX_DEPTH {
            return Err(invalid(
                path,
                format!("nested too deeply: at most {MAX_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    /// A condition document: an object whose keys are field paths or `$and/$or/$not`.
    pub(super) fn document(
        &mut self,
        v: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Node, RespondError> {
        self.count(path, depth)?;
        let Value::Object(map) = v else {
            return Err(invalid(
                path,
                format!("expected a condition object, got {}", kind_of(v)),
            ));
        };
        let mut children = Vec::with_capacity(map.len());
        for (key, val) in map {
            let p = format!("{path}.{key}");
            children.push(match key.as_str() {
                "$and" | "$or" => {
                    let Value::Array(items) = val else {
                        return Err(invalid(
                            &p,
                            format!("expected an array of conditions, got {}", kind_of(val)),
                        ));
                    };
                    if items.is_empty() {
                        return Err(invalid(&p, "expected at least one condition"));
                    }
                    let nodes = items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| self.document(item, &format!("{p}[{i}]"), depth + 1))
                        .collect::<Result<Vec<_>, _>>()?
                        .into_boxed_slice();
                    if key == "$and" {
                        Node::And(nodes)
                    } else {
                        Node::Or(nodes)
                    }
                }
                "$not" => Node::Not(Box::new(self.document(val, &p, depth + 1)?)),
                k if k.starts_with('$') => {
                    return Err(invalid(
                        &p,
                        format!("unknown combinator '{k}': expected $and, $or or $not"),
                    ));
                }
                k => {
                    let acc = Accessor::resolve(self.kind, k, &p)?;
                    let pred = self.field_value(&acc, val, &p, depth + 1)?;
                    Node::Test(acc, pred)
                }
            });
        }
        Ok(match children.len() {
            0 => Node::True,
            1 => children.pop().unwrap_or(Node::True),
            _ => Node::And(children.into_boxed_slice()),
        })
    }

    /// What a field maps to: a scalar (equality), an array (one of), or operators.
    fn field_value(
        &mut self,
        acc: &Accessor,
        v: &Value,
        path: &str,
        depth: usize,
    ) -> Result<Pred, RespondError> {
        self.count(path, depth)?;
        match v {
            Value::Array(_) => Ok(Pred::In(self.list(acc, v, path)?)),
            Value::Object(ops) => self.operators(acc, ops, path, depth),
            scalar => Ok(Pred::Eq(self.literal(acc, scalar, path)?)),
        }
    }

    fn operators(
        &mut self,
        acc: &Accessor,
        ops: &Map<String, Value>,
        path: &str,
        depth: usize,
    ) -> Result<Pred, RespondError> {
        if ops.is_empty() {
            return Err(invalid(
                path,
                "expected a value, an array of values or an operator object such as {\"$gt\": 5}",
            ));
        }
        let mut preds = Vec::with_capacity(ops.len());
        for (op, v) in ops {
            let p = format!("{path}.{op}");
            self.count(&p, depth)?;
            preds.push(match op.as_str() {
                "$eq" => Pred::Eq(self.literal(acc, v, &p)?),
                "$ne" => Pred::Ne(self.literal(acc, v, &p)?),
                "$gt" => Pred::Cmp(Cmp::Gt, self.ordinal(acc, v, &p)?),
                "$gte" => Pred::Cmp(Cmp::Gte, self.ordinal(acc, v, &p)?),
                "$lt" => Pred::Cmp(Cmp::Lt, self.ordinal(acc, v, &p)?),
                "$lte" => Pred::Cmp(Cmp::Lte, self.ordinal(acc, v, &p)?),
                "$in" => Pred::In(self.list(acc, v, &p)?),
                "$nin" => Pred::Nin(self.list(acc, v, &p)?),
                "$contains" => Pred::Contains(self.literal(acc, v, &p)?),
                "$startswith" => Pred::StartsWith(self.string(acc, v, &p)?),
                "$endswith" => Pred::EndsWith(self.string(acc, v, &p)?),
                "$regex" => Pred::Regex(Box::new(regex(v, &p)?)),
                "$exists" => match v {
                    Value::Bool(b) => Pred::Exists(*b),
                    other => {
                        return Err(invalid(
                            &p,
                            format!("expected true or false, got {}", kind_of(other)),
                        ));
                    }
                },
                "$timediff_lt" => Pred::TimediffLt(seconds_ms(v, &p)?),
                "$timediff_gt" => Pred::TimediffGt(seconds_ms(v, &p)?),
                "$not" => Pred::Not(Box::new(self.field_value(acc, v, &p, depth + 1)?)),
                other if other.starts_with('$') => {
                    return Err(invalid(
                        &p,
                        format!("unknown operator '{other}'; expected one of {OPERATORS}"),
                    ));
                }
                _ => {
                    return Err(invalid(
                        &p,
                        "not an operator: an operator object holds only $-operators; \
                         nested fields are written as dotted paths (metadata.a.b)",
                    ));
                }
            });
        }
        Ok(if preds.len() == 1 {
            preds.pop().unwrap_or(Pred::Exists(true))
        } else {
            Pred::All(preds.into_boxed_slice())
        })
    }

    /// A scalar literal, normalized for the field.
    fn literal(&self, acc: &Accessor, v: &Value, path: &str) -> Result<Lit, RespondError> {
        Ok(match v {
            Value::Null => Lit::Null,
            Value::Bool(b) => Lit::Bool(*b),
            Value::Number(n) => Lit::Num(number(n, path)?),
            Value::String(s) => {
                if s.len() > MAX_STRING {
                    return Err(invalid(
                        path,
                        format!("string longer than {MAX_STRING} bytes"),
                    ));
                }
                match acc.norm() {
                    Norm::AsIs => Lit::Str(s.as_str().into()),
                    Norm::Upper => Lit::Str(s.to_ascii_uppercase().into()),
                    Norm::Lower => Lit::Str(s.to_ascii_lowercase().into()),
                    Norm::Severity => Lit::Severity(severity(s, path)?),
                }
            }
            other => {
                return Err(invalid(
                    path,
                    format!(
                        "expected a string, number, boolean or null, got {}",
                        kind_of(other)
                    ),
                ));
            }
        })
    }

    fn string(&self, acc: &Accessor, v: &Value, path: &str) -> Result<Box<str>, RespondError> {
        if acc.norm() == Norm::Severity {
            return Err(invalid(
                path,
                "string operators do not apply to a severity: use a value, a list or $gte",
            ));
        }
        match self.literal(acc, v, path)? {
            Lit::Str(s) => Ok(s),
            _ => Err(invalid(
                path,
                format!("expected a string, got {}", kind_of(v)),
            )),
        }
    }

    /// The bound of an ordered comparison: a number, or a severity name on severity fields.
    fn ordinal(&self, acc: &Accessor, v: &Value, path: &str) -> Result<f64, RespondError> {
        match (v, acc.norm()) {
            (Value::Number(n), _) => number(n, path),
            (Value::String(s), Norm::Severity) => Ok(severity_rank(severity(s, path)?)),
            (_, Norm::Severity) => Err(invalid(
                path,
                format!("expected a number or a severity name, got {}", kind_of(v)),
            )),
            _ => Err(invalid(
                path,
                format!("expected a number, got {}", kind_of(v)),
            )),
        }
    }

    fn list(&self, acc: &Accessor, v: &Value, path: &str) -> Result<Box<[Lit]>, RespondError> {
        let Value::Array(items) = v else {
            return Err(invalid(
                path,
                format!("expected an array of values, got {}", kind_of(v)),
            ));
        };
        if items.is_empty() {
            return Err(invalid(path, "expected at least one value"));
        }
        if items.len() > MAX_LIST {
            return Err(invalid(path, format!("at most {MAX_LIST} values")));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| self.literal(acc, item, &format!("{path}[{i}]")))
            .collect()
    }
}

fn number(n: &serde_json::Number, path: &str) -> Result<f64, RespondError> {
    n.as_f64()
        .filter(|f| f.is_finite())
        .ok_or_else(|| invalid(path, "number out of range"))
}

fn severity(s: &str, path: &str) -> Result<Severity, RespondError> {
    Severity::parse("", s).map_err(|e| invalid(path, e.reason))
}

fn seconds_ms(v: &Value, path: &str) -> Result<i64, RespondError> {
    match v.as_f64() {
        Some(s) if s.is_finite() && (0.0..=1.0e10).contains(&s) => Ok((s * 1000.0) as i64),
        Some(_) => Err(invalid(
            path,
            "expected a number of seconds between 0 and 1e10",
        )),
        None => Err(invalid(
            path,
            format!("expected a number of seconds, got {}", kind_of(v)),
        )),
    }
}

fn regex(v: &Value, path: &str) -> Result<Regex, RespondError> {
    let Value::String(src) = v else {
        return Err(invalid(
            path,
            format!("expected a regular expression string, got {}", kind_of(v)),
        ));
    };
    if src.len() > MAX_REGEX {
        return Err(invalid(
            path,
            format!("regular expression longer than {MAX_REGEX} bytes"),
        ));
    }
    RegexBuilder::new(src)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .nest_limit(64)
        .build()
        .map_err(|e| invalid(path, format!("invalid regular expression: {e}")))
}
