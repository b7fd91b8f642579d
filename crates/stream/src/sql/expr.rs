//! Compiled expressions: the per-record form of a SQL expression, built once by the
//! planner and evaluated against a row (`&[Value]`) for every record.
//!
//! An [`Expr`] is a small tree of enum nodes with column references already resolved to
//! row indexes, `LIKE` patterns pre-split, and JSON paths pre-parsed, so evaluation does
//! no name lookups and no parsing of the query. Evaluation is total: SQL `NULL` flows
//! through (three-valued logic for `AND`/`OR`/`NOT`, comparisons with `NULL` are `NULL`),
//! and what SQL leaves undefined at run time — division by zero, integer overflow, a type
//! mismatch the planner could not see — yields `NULL` rather than an error.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::Value;
use crate::sql::schema::SqlType;

/// Arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (integer division when both sides are integers)
    Div,
    /// `%`
    Mod,
}

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>`, `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// Scalar functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `UCASE(s)`, `UPPER(s)`
    Upper,
    /// `LCASE(s)`, `LOWER(s)`
    Lower,
    /// `LEN(s)`, `LENGTH(s)`: characters
    Len,
    /// `ABS(x)`
    Abs,
    /// `ROUND(x)`, `ROUND(x, digits)`
    Round,
    /// `FLOOR(x)`
    Floor,
    /// `CEIL(x)`, `CEILING(x)`
    Ceil,
    /// `COALESCE(a, b, …)`, `IFNULL(a, b)`: the first non-null argument
    Coalesce,
    /// `CONCAT(a, b, …)`: string concatenation, `NULL`s skipped
    Concat,
}

/// One step of a JSON path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// An object member.
    Field(String),
    /// An array element.
    Index(usize),
}

/// A `LIKE` pattern element.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LikeTok {
    Char(char),
    /// `_`
    One,
    /// `%`
    Many,
}

/// A `LIKE` pattern, split once at compile time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikePattern {
    toks: Vec<LikeTok>,
    case_insensitive: bool,
}

impl LikePattern {
    /// Compiles `pattern` (`%` any run, `_` one character, `escape` quotes the next one).
    pub fn new(pattern: &str, escape: Option<char>, case_insensitive: bool) -> Self {
        let mut toks = Vec::with_capacity(pattern.len());
        let mut chars = pattern.chars();
        while let Some(c) = chars.next() {
            if Some(c) == escape {
                if let Some(next) = chars.next() {
                    toks.push(LikeTok::Char(fold(next, case_insensitive)));
                }
                continue;
            }
            toks.push(match c {
                '%' => LikeTok::Many,
                '_' => LikeTok::One,
                c => LikeTok::Char(fold(c, case_insensitive)),
            });
        }
        Self {
            toks,
            case_insensitive,
        }
    }

    /// Whether `s` matches (backtracking only to the last `%`: O(len(s) · len(pattern))).
    pub fn matches(&self, s: &str) -> bool {
        let p = &self.toks;
        let (mut pi, mut si) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while si < s.len() {
            let Some(c) = s[si..].chars().next() else {
                break;
            };
            let c_folded = fold(c, self.case_insensitive);
            match p.get(pi) {
                Some(LikeTok::One) => {
                    pi += 1;
                    si += c.len_utf8();
                    continue;
                }
                Some(LikeTok::Char(pc)) if *pc == c_folded => {
                    pi += 1;
                    si += c.len_utf8();
                    continue;
                }
                Some(LikeTok::Many) => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                _ => {}
            }
            match star {
                Some((sp, ss)) => {
                    let Some(skipped) = s[ss..].chars().next() else {
                        return false;
                    };
                    let next = ss + skipped.len_utf8();
                    star = Some((sp, next));
                    pi = sp + 1;
                    si = next;
                }
                None => return false,
            }
        }
        p[pi..].iter().all(|t| *t == LikeTok::Many)
    }
}

fn fold(c: char, case_insensitive: bool) -> char {
    if case_insensitive {
        c.to_lowercase().next().unwrap_or(c)
    } else {
        c
    }
}

/// A compiled expression over a row.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A constant.
    Literal(Value),
    /// The row's value at an index.
    Column(usize),
    /// `-x`
    Neg(Box<Expr>),
    /// `NOT x`
    Not(Box<Expr>),
    /// `a op b`
    Arith(ArithOp, Box<Expr>, Box<Expr>),
    /// `a op b`
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `a AND b`
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`
    Or(Box<Expr>, Box<Expr>),
    /// `a || b`
    StrConcat(Box<Expr>, Box<Expr>),
    /// `x IS [NOT] NULL`
    IsNull {
        /// Operand.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `x [NOT] IN (…)`
    InList {
        /// Operand.
        expr: Box<Expr>,
        /// Candidates.
        list: Vec<Expr>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `x [NOT] BETWEEN low AND high`
    Between {
        /// Operand.
        expr: Box<Expr>,
        /// Lower bound (inclusive).
        low: Box<Expr>,
        /// Upper bound (inclusive).
        high: Box<Expr>,
        /// `NOT BETWEEN`.
        negated: bool,
    },
    /// `x [NOT] LIKE 'pattern'`
    Like {
        /// Operand.
        expr: Box<Expr>,
        /// Compiled pattern.
        pattern: LikePattern,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `CASE [operand] WHEN … THEN … [ELSE …] END`
    Case {
        /// Simple-CASE operand.
        operand: Option<Box<Expr>>,
        /// `(condition or value, result)` pairs.
        whens: Vec<(Expr, Expr)>,
        /// `ELSE` result (`NULL` when absent).
        otherwise: Option<Box<Expr>>,
    },
    /// A scalar function call.
    Call(Func, Vec<Expr>),
    /// JSON path access into a JSON value.
    JsonPath {
        /// The JSON (or JSON text) operand.
        expr: Box<Expr>,
        /// Path from the root.
        path: Vec<PathStep>,
        /// Whether the result is text (`EXTRACTJSONFIELD`, `->>`) or the typed value (`->`).
        as_text: bool,
    },
    /// `CAST(x AS type)`
    Cast(Box<Expr>, SqlType),
}

impl Expr {
    /// Evaluates against a row.
    pub fn eval(&self, row: &[Value]) -> Value {
        match self {
            Expr::Literal(v) => v.clone(),
            Expr::Column(i) => row.get(*i).cloned().unwrap_or(Value::Null),
            Expr::Neg(e) => match e.eval(row) {
                Value::Int(i) => i.checked_neg().map_or(Value::Null, Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            },
            Expr::Not(e) => match e.eval(row) {
                Value::Bool(b) => Value::Bool(!b),
                _ => Value::Null,
            },
            Expr::Arith(op, a, b) => arith(*op, &a.eval(row), &b.eval(row)),
            Expr::Cmp(op, a, b) => compare(*op, &a.eval(row), &b.eval(row)),
            Expr::And(a, b) => match a.eval(row) {
                Value::Bool(false) => Value::Bool(false),
                left => match (left, b.eval(row)) {
                    (_, Value::Bool(false)) => Value::Bool(false),
                    (Value::Bool(true), Value::Bool(true)) => Value::Bool(true),
                    _ => Value::Null,
                },
            },
            Expr::Or(a, b) => match a.eval(row) {
                Value::Bool(true) => Value::Bool(true),
                left => match (left, b.eval(row)) {
                    (_, Value::Bool(true)) => Value::Bool(true),
                    (Value::Bool(false), Value::Bool(false)) => Value::Bool(false),
                    _ => Value::Null,
                },
            },
            Expr::StrConcat(a, b) => match (a.eval(row), b.eval(row)) {
                (Value::Null, _) | (_, Value::Null) => Value::Null,
                (x, y) => Value::string(format!("{x}{y}")),
            },
            Expr::IsNull { expr, negated } => Value::Bool(expr.eval(row).is_null() != *negated),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let v = expr.eval(row);
                if v.is_null() {
                    return Value::Null;
                }
                let mut saw_null = false;
                for item in list {
                    match compare(CmpOp::Eq, &v, &item.eval(row)) {
                        Value::Bool(true) => return Value::Bool(!negated),
                        Value::Bool(false) => {}
                        _ => saw_null = true,
                    }
                }
                if saw_null {
                    Value::Null
                } else {
                    Value::Bool(*negated)
                }
            }
            Expr::Between {
                expr,
                low,
                high,
                negated,
            } => {
                let v = expr.eval(row);
                let ge = compare(CmpOp::Ge, &v, &low.eval(row));
                let le = compare(CmpOp::Le, &v, &high.eval(row));
                match (ge, le) {
                    (Value::Bool(a), Value::Bool(b)) => Value::Bool((a && b) != *negated),
                    _ => Value::Null,
                }
            }
            Expr::Like {
                expr,
                pattern,
                negated,
            } => match expr.eval(row) {
                Value::String(s) => Value::Bool(pattern.matches(&s) != *negated),
                _ => Value::Null,
            },
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                let operand = operand.as_ref().map(|o| o.eval(row));
                for (cond, result) in whens {
                    let hit = match &operand {
                        Some(v) => compare(CmpOp::Eq, v, &cond.eval(row)),
                        None => cond.eval(row),
                    };
                    if hit == Value::Bool(true) {
                        return result.eval(row);
                    }
                }
                otherwise.as_ref().map_or(Value::Null, |e| e.eval(row))
            }
            Expr::Call(f, args) => call(*f, args, row),
            Expr::JsonPath {
                expr,
                path,
                as_text,
            } => json_path(&expr.eval(row), path, *as_text),
            Expr::Cast(e, ty) => cast(e.eval(row), *ty),
        }
    }

    /// Whether the expression reads no column (so it can be folded to a constant).
    pub fn is_constant(&self) -> bool {
        match self {
            Expr::Literal(_) => true,
            Expr::Column(_) => false,
            Expr::Neg(e) | Expr::Not(e) | Expr::Cast(e, _) => e.is_constant(),
            Expr::IsNull { expr, .. } | Expr::Like { expr, .. } => expr.is_constant(),
            Expr::JsonPath { expr, .. } => expr.is_constant(),
            Expr::Arith(_, a, b)
            | Expr::Cmp(_, a, b)
            | Expr::And(a, b)
            | Expr::Or(a, b)
            | Expr::StrConcat(a, b) => a.is_constant() && b.is_constant(),
            Expr::InList { expr, list, .. } => {
                expr.is_constant() && list.iter().all(Expr::is_constant)
            }
            Expr::Between {
                expr, low, high, ..
            } => expr.is_constant() && low.is_constant() && high.is_constant(),
            Expr::Case {
                operand,
                whens,
                otherwise,
            } => {
                operand.as_ref().is_none_or(|o| o.is_constant())
                    && whens
                        .iter()
                        .all(|(c, r)| c.is_constant() && r.is_constant())
                    && otherwise.as_ref().is_none_or(|o| o.is_constant())
            }
            Expr::Call(_, args) => args.iter().all(Expr::is_constant),
        }
    }
}

/// SQL arithmetic: integers stay integers (checked; overflow is `NULL`), anything with a
/// float is a float, division or modulo by zero is `NULL`.
pub fn arith(op: ArithOp, a: &Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => {
            let r = match op {
                ArithOp::Add => x.checked_add(*y),
                ArithOp::Sub => x.checked_sub(*y),
                ArithOp::Mul => x.checked_mul(*y),
                ArithOp::Div => x.checked_div(*y),
                ArithOp::Mod => x.checked_rem(*y),
            };
            r.map_or(Value::Null, Value::Int)
        }
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => {
                let r = match op {
                    ArithOp::Add => x + y,
                    ArithOp::Sub => x - y,
                    ArithOp::Mul => x * y,
                    ArithOp::Div if y == 0.0 => return Value::Null,
                    ArithOp::Div => x / y,
                    ArithOp::Mod if y == 0.0 => return Value::Null,
                    ArithOp::Mod => x % y,
                };
                Value::Float(r)
            }
            _ => Value::Null,
        },
    }
}

/// SQL comparison: `NULL` when either side is `NULL` or the types cannot be compared.
pub fn compare(op: CmpOp, a: &Value, b: &Value) -> Value {
    let ord = match (a, b) {
        (Value::Null, _) | (_, Value::Null) => return Value::Null,
        (Value::Int(_) | Value::Float(_), Value::Int(_) | Value::Float(_))
        | (Value::String(_), Value::String(_))
        | (Value::Bool(_), Value::Bool(_))
        | (Value::Json(_), Value::Json(_))
        | (Value::List(_), Value::List(_)) => a.sql_cmp(b),
        _ => return Value::Null,
    };
    Value::Bool(match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    })
}

fn call(f: Func, args: &[Expr], row: &[Value]) -> Value {
    let arg = |i: usize| args.get(i).map_or(Value::Null, |e| e.eval(row));
    match f {
        Func::Upper => match arg(0) {
            Value::String(s) => Value::string(s.to_uppercase()),
            _ => Value::Null,
        },
        Func::Lower => match arg(0) {
            Value::String(s) => Value::string(s.to_lowercase()),
            _ => Value::Null,
        },
        Func::Len => match arg(0) {
            Value::String(s) => Value::Int(s.chars().count() as i64),
            _ => Value::Null,
        },
        Func::Abs => match arg(0) {
            Value::Int(i) => i.checked_abs().map_or(Value::Null, Value::Int),
            Value::Float(x) => Value::Float(x.abs()),
            _ => Value::Null,
        },
        Func::Round => {
            let digits = match args.get(1).map(|e| e.eval(row)) {
                None => 0,
                Some(Value::Int(d)) => d.clamp(-18, 18) as i32,
                Some(_) => return Value::Null,
            };
            match arg(0) {
                Value::Int(i) if digits >= 0 => Value::Int(i),
                Value::Int(i) => {
                    let scale = 10f64.powi(-digits);
                    Value::Int(((i as f64 / scale).round() * scale) as i64)
                }
                Value::Float(x) if digits == 0 => Value::Int(x.round() as i64),
                Value::Float(x) => {
                    let scale = 10f64.powi(digits);
                    Value::Float((x * scale).round() / scale)
                }
                _ => Value::Null,
            }
        }
        Func::Floor => match arg(0) {
            Value::Int(i) => Value::Int(i),
            Value::Float(x) => Value::Float(x.floor()),
            _ => Value::Null,
        },
        Func::Ceil => match arg(0) {
            Value::Int(i) => Value::Int(i),
            Value::Float(x) => Value::Float(x.ceil()),
            _ => Value::Null,
        },
        Func::Coalesce => args
            .iter()
            .map(|e| e.eval(row))
            .find(|v| !v.is_null())
            .unwrap_or(Value::Null),
        Func::Concat => {
            let mut s = String::new();
            for v in args.iter().map(|e| e.eval(row)) {
                if !v.is_null() {
                    s.push_str(&v.to_string());
                }
            }
            Value::string(s)
        }
    }
}

/// Parses a ksqlDB JSON path (`$.a.b[0]`, `$['a']`) into steps.
pub fn parse_json_path(path: &str) -> Result<Vec<PathStep>, String> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| format!("JSON path '{path}' must start with '$'"))?;
    let bytes = rest.as_bytes();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'.' && bytes[end] != b'[' {
                    end += 1;
                }
                if end == start {
                    return Err(format!("empty field name in JSON path '{path}'"));
                }
                steps.push(PathStep::Field(rest[start..end].to_owned()));
                i = end;
            }
            b'[' => {
                let close = rest[i..]
                    .find(']')
                    .map(|c| i + c)
                    .ok_or_else(|| format!("unclosed '[' in JSON path '{path}'"))?;
                let inner = rest[i + 1..close].trim();
                let quoted = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')));
                match quoted {
                    Some(name) => steps.push(PathStep::Field(name.to_owned())),
                    None => steps.push(PathStep::Index(inner.parse().map_err(|_| {
                        format!("'{inner}' is not an array index in JSON path '{path}'")
                    })?)),
                }
                i = close + 1;
            }
            _ => return Err(format!("unexpected character in JSON path '{path}'")),
        }
    }
    Ok(steps)
}

fn json_path(v: &Value, path: &[PathStep], as_text: bool) -> Value {
    let text = match v {
        Value::Json(t) | Value::String(t) => t,
        _ => return Value::Null,
    };
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(text) else {
        return Value::Null;
    };
    let mut cur = &doc;
    for step in path {
        let next = match step {
            PathStep::Field(name) => cur.get(name.as_str()),
            PathStep::Index(i) => cur.get(*i),
        };
        match next {
            Some(n) => cur = n,
            None => return Value::Null,
        }
    }
    match cur {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::String(s) => Value::string(s),
        other if as_text => Value::string(other.to_string()),
        other => Value::from_json(other),
    }
}

/// `CAST(v AS ty)`; `NULL` when the value does not convert.
pub fn cast(v: Value, ty: SqlType) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        (SqlType::String, Value::String(s)) => Value::String(s),
        (SqlType::String, other) => Value::string(other.to_string()),
        (SqlType::BigInt, Value::Int(i)) => Value::Int(i),
        (SqlType::BigInt, Value::Float(f)) if f.is_finite() && f.abs() < 9.2e18 => {
            Value::Int(f.trunc() as i64)
        }
        (SqlType::BigInt, Value::String(s)) => s.trim().parse().map_or(Value::Null, Value::Int),
        (SqlType::BigInt, Value::Bool(b)) => Value::Int(i64::from(b)),
        (SqlType::Double, Value::Int(i)) => Value::Float(i as f64),
        (SqlType::Double, Value::Float(f)) => Value::Float(f),
        (SqlType::Double, Value::String(s)) => s.trim().parse().map_or(Value::Null, Value::Float),
        (SqlType::Boolean, Value::Bool(b)) => Value::Bool(b),
        (SqlType::Boolean, Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::Null,
        },
        (SqlType::Json, Value::Json(j)) => Value::Json(j),
        (SqlType::Json, Value::String(s)) => match serde_json::from_str::<serde_json::Value>(&s) {
            Ok(doc) => Value::Json(Arc::from(doc.to_string())),
            Err(_) => Value::Null,
        },
        (SqlType::Unknown, v) => v,
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(v: impl Into<Value>) -> Box<Expr> {
        Box::new(Expr::Literal(v.into()))
    }

    #[test]
    fn like_patterns() {
        let p = LikePattern::new("%err_r%", None, false);
        assert!(p.matches("an error here"));
        assert!(p.matches("errar"));
        assert!(!p.matches("eror"));
        assert!(LikePattern::new("a%", None, false).matches("a"));
        assert!(!LikePattern::new("a_", None, false).matches("a"));
        assert!(LikePattern::new("é_", None, false).matches("éx"));
        assert!(LikePattern::new("100\\%", Some('\\'), false).matches("100%"));
        assert!(!LikePattern::new("100\\%", Some('\\'), false).matches("1000"));
        assert!(LikePattern::new("ABC%", None, true).matches("abcdef"));
        assert!(LikePattern::new("%a%b%c%", None, false).matches("xxaxxbxxcxx"));
        assert!(!LikePattern::new("%a%b%c", None, false).matches("xxaxxbxxcxx"));
    }

    #[test]
    fn three_valued_logic() {
        let null = || lit(Value::Null);
        let t = || lit(true);
        let f = || lit(false);
        assert_eq!(Expr::And(null(), f()).eval(&[]), Value::Bool(false));
        assert_eq!(Expr::And(null(), t()).eval(&[]), Value::Null);
        assert_eq!(Expr::Or(null(), t()).eval(&[]), Value::Bool(true));
        assert_eq!(Expr::Or(null(), f()).eval(&[]), Value::Null);
        assert_eq!(Expr::Not(null()).eval(&[]), Value::Null);
        assert_eq!(
            Expr::Cmp(CmpOp::Eq, null(), lit(1i64)).eval(&[]),
            Value::Null
        );
        let in_list = Expr::InList {
            expr: lit(1i64),
            list: vec![Expr::Literal(Value::Int(2)), Expr::Literal(Value::Null)],
            negated: true,
        };
        assert_eq!(in_list.eval(&[]), Value::Null);
    }

    #[test]
    fn arithmetic_is_total() {
        assert_eq!(
            arith(ArithOp::Div, &Value::Int(7), &Value::Int(2)),
            Value::Int(3)
        );
        assert_eq!(
            arith(ArithOp::Div, &Value::Int(7), &Value::Float(2.0)),
            Value::Float(3.5)
        );
        assert_eq!(
            arith(ArithOp::Div, &Value::Int(7), &Value::Int(0)),
            Value::Null
        );
        assert_eq!(
            arith(ArithOp::Add, &Value::Int(i64::MAX), &Value::Int(1)),
            Value::Null
        );
        assert_eq!(
            arith(ArithOp::Add, &Value::string("a"), &Value::Int(1)),
            Value::Null
        );
    }

    #[test]
    fn json_paths() {
        let doc = Value::Json(Arc::from(r#"{"a":{"b":[10,{"c":"x"}]},"n":1.5}"#));
        let path = parse_json_path("$.a.b[1].c").unwrap();
        assert_eq!(json_path(&doc, &path, true), Value::string("x"));
        let path = parse_json_path("$['a'].b[0]").unwrap();
        assert_eq!(json_path(&doc, &path, false), Value::Int(10));
        assert_eq!(json_path(&doc, &path, true), Value::string("10"));
        let path = parse_json_path("$.missing").unwrap();
        assert_eq!(json_path(&doc, &path, true), Value::Null);
        assert!(parse_json_path("a.b").is_err());
        assert!(parse_json_path("$.a[").is_err());
        assert!(parse_json_path("$..a").is_err());
    }
}
