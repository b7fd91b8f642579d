//! The answer the LLM must give: its JSON Schema (sent as `response_format`), a lenient
//! parser (providers wrap JSON in code fences or prose, omit optional fields) and a strict
//! validator whose error names the field, so the model can be told exactly what to fix.

use serde_json::{Value, json};
use sightline_model::{ActionRisk, SuggestedAction};

/// The name of the schema in `response_format`.
pub const SCHEMA_NAME: &str = "root_cause_analysis";

/// A validated answer.
#[derive(Clone, Debug, PartialEq)]
pub struct LlmAnswer {
    /// The probable root cause.
    pub root_cause: String,
    /// The service it is attributed to, if any.
    pub root_cause_service: Option<String>,
    /// The model's confidence, 0 to 1.
    pub confidence: f64,
    /// Services affected.
    pub impacted_services: Vec<String>,
    /// Proposed actions (text only).
    pub suggested_actions: Vec<SuggestedAction>,
    /// For engineers.
    pub technical_summary: String,
    /// For managers.
    pub executive_summary: String,
    /// Ids from the context the claims rest on.
    pub evidence: Vec<String>,
}

/// Why an answer was refused: the field (a JSON path) and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct SchemaError {
    /// Where, e.g. `$.suggested_actions[1].risk`.
    pub path: String,
    /// Why.
    pub reason: String,
}

pub(crate) fn err(path: impl Into<String>, reason: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.into(),
        reason: reason.into(),
    }
}

/// The JSON Schema of an answer.
pub fn json_schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": [
            "root_cause", "root_cause_service", "confidence", "impacted_services",
            "suggested_actions", "technical_summary", "executive_summary", "evidence"
        ],
        "properties": {
            "root_cause": {"type": "string", "description": "The probable root cause, one or two sentences."},
            "root_cause_service": {"type": ["string", "null"], "description": "The service at fault, from the context."},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "impacted_services": {"type": "array", "items": {"type": "string"}},
            "suggested_actions": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["title", "description", "risk", "command_hint"],
                    "properties": {
                        "title": {"type": "string"},
                        "description": {"type": "string"},
                        "risk": {"type": "string", "enum": ["low", "medium", "high"]},
                        "command_hint": {"type": ["string", "null"]}
                    }
                }
            },
            "technical_summary": {"type": "string"},
            "executive_summary": {"type": "string"},
            "evidence": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ids of anomalies, events, deployments, metrics or incidents from the context."
            }
        }
    })
}

/// The `response_format` of a chat-completions request asking for an analysis.
pub fn response_format() -> Value {
    structured_output(SCHEMA_NAME, json_schema())
}

/// The `response_format` asking for an answer that matches `schema`, named `name`
/// (structured output, strict).
pub fn structured_output(name: &str, schema: Value) -> Value {
    json!({
        "type": "json_schema",
        "json_schema": {"name": name, "strict": true, "schema": schema}
    })
}

/// The JSON object in a reply: the text itself, or the content of a code fence, or the
/// span from the first `{` to the last `}` (leading or trailing prose).
pub(crate) fn extract(text: &str) -> Option<Value> {
    let trimmed = text.trim();
    if let Ok(v) = serde_json::from_str::<Value>(trimmed) {
        return Some(v);
    }
    if let Some(start) = trimmed.find("```") {
        let rest = &trimmed[start + 3..];
        let body = rest.split_once('\n').map_or(rest, |(_, b)| b);
        if let Some(end) = body.find("```")
            && let Ok(v) = serde_json::from_str::<Value>(body[..end].trim())
        {
            return Some(v);
        }
    }
    let (start, end) = (trimmed.find('{')?, trimmed.rfind('}')?);
    if end <= start {
        return None;
    }
    serde_json::from_str(&trimmed[start..=end]).ok()
}

/// A string field (trimmed); `required` refuses null and empty text.
pub(crate) fn string(v: &Value, path: &str, required: bool) -> Result<Option<String>, SchemaError> {
    match v {
        Value::String(s) if required && s.trim().is_empty() => Err(err(path, "must not be empty")),
        Value::String(s) => Ok(Some(s.trim().to_owned())),
        Value::Null if !required => Ok(None),
        Value::Null => Err(err(path, "is required")),
        other => Err(err(path, format!("must be a string, not {other}"))),
    }
}

/// An array of non-empty strings; absent or null is empty.
pub(crate) fn strings(v: Option<&Value>, path: &str) -> Result<Vec<String>, SchemaError> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                string(item, &format!("{path}[{i}]"), true).map(Option::unwrap_or_default)
            })
            .collect(),
        Some(other) => Err(err(
            path,
            format!("must be an array of strings, not {other}"),
        )),
    }
}

fn action(v: &Value, path: &str) -> Result<SuggestedAction, SchemaError> {
    let Value::Object(o) = v else {
        return Err(err(path, "must be an object"));
    };
    let field = |name: &str| o.get(name).unwrap_or(&Value::Null);
    let risk = match field("risk") {
        Value::Null => ActionRisk::Medium,
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "low" => ActionRisk::Low,
            "medium" => ActionRisk::Medium,
            "high" => ActionRisk::High,
            other => {
                return Err(err(
                    format!("{path}.risk"),
                    format!("'{other}' is not one of low, medium, high"),
                ));
            }
        },
        other => {
            return Err(err(
                format!("{path}.risk"),
                format!("must be a string, not {other}"),
            ));
        }
    };
    Ok(SuggestedAction {
        title: string(field("title"), &format!("{path}.title"), true)?.unwrap_or_default(),
        description: string(field("description"), &format!("{path}.description"), false)?
            .unwrap_or_default(),
        risk,
        command_hint: string(
            field("command_hint"),
            &format!("{path}.command_hint"),
            false,
        )?
        .filter(|s| !s.is_empty()),
    })
}

/// The JSON object a reply holds (see [`extract`]).
pub(crate) fn object(text: &str) -> Result<serde_json::Map<String, Value>, SchemaError> {
    match extract(text) {
        Some(Value::Object(o)) => Ok(o),
        Some(_) => Err(err("$", "the answer must be a JSON object")),
        None => Err(err("$", "the answer is not a JSON object")),
    }
}

/// `$.confidence`: a number (quoted ones too: some providers quote numbers) within 0..1.
pub(crate) fn confidence(v: &Value) -> Result<f64, SchemaError> {
    let confidence = match v {
        Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .map_err(|_| err("$.confidence", format!("'{s}' is not a number")))?,
        Value::Null => return Err(err("$.confidence", "is required")),
        other => {
            return Err(err(
                "$.confidence",
                format!("must be a number, not {other}"),
            ));
        }
    };
    if !(0.0..=1.0).contains(&confidence) {
        return Err(err("$.confidence", format!("{confidence} is outside 0..1")));
    }
    Ok(confidence)
}

/// Parses a reply leniently and validates it strictly (see the module docs).
pub fn parse(text: &str) -> Result<LlmAnswer, SchemaError> {
    let o = object(text)?;
    let field = |name: &str| o.get(name).unwrap_or(&Value::Null);
    let confidence = confidence(field("confidence"))?;
    let actions = match o.get("suggested_actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, a)| action(a, &format!("$.suggested_actions[{i}]")))
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(err(
                "$.suggested_actions",
                format!("must be an array, not {other}"),
            ));
        }
    };
    Ok(LlmAnswer {
        root_cause: string(field("root_cause"), "$.root_cause", true)?.unwrap_or_default(),
        root_cause_service: string(field("root_cause_service"), "$.root_cause_service", false)?
            .filter(|s| !s.is_empty()),
        confidence,
        impacted_services: strings(o.get("impacted_services"), "$.impacted_services")?,
        suggested_actions: actions,
        technical_summary: string(field("technical_summary"), "$.technical_summary", true)?
            .unwrap_or_default(),
        executive_summary: string(field("executive_summary"), "$.executive_summary", true)?
            .unwrap_or_default(),
        evidence: strings(o.get("evidence"), "$.evidence")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"root_cause":"db pool exhausted","root_cause_service":"db",
        "confidence":0.8,"impacted_services":["db","api"],
        "suggested_actions":[{"title":"Restart db","description":"","risk":"medium","command_hint":null}],
        "technical_summary":"t","executive_summary":"e","evidence":["an-1"]}"#;

    #[test]
    fn parses_leniently() {
        let a = parse(GOOD).unwrap();
        assert_eq!(a.root_cause_service.as_deref(), Some("db"));
        let fenced = format!("Here is my analysis:\n```json\n{GOOD}\n```\nHope it helps.");
        assert_eq!(parse(&fenced).unwrap(), a);
        let prose = format!("Sure! {GOOD} Anything else?");
        assert_eq!(parse(&prose).unwrap(), a);
        // Optional fields missing, a quoted number.
        let minimal = r#"{"root_cause":"x","confidence":"0.5","technical_summary":"t",
            "executive_summary":"e"}"#;
        let m = parse(minimal).unwrap();
        assert_eq!((m.confidence, m.evidence.len()), (0.5, 0));
    }

    #[test]
    fn validates_strictly_naming_the_field() {
        let e = parse("no json here").unwrap_err();
        assert_eq!(e.path, "$");
        let e = parse(r#"{"root_cause":"x","confidence":1.7,"technical_summary":"t","executive_summary":"e"}"#)
            .unwrap_err();
        assert_eq!(e.path, "$.confidence");
        let e = parse(r#"{"confidence":0.5,"technical_summary":"t","executive_summary":"e"}"#)
            .unwrap_err();
        assert_eq!(e.path, "$.root_cause");
        let bad_risk = GOOD.replace("\"medium\"", "\"yolo\"");
        assert_eq!(
            parse(&bad_risk).unwrap_err().path,
            "$.suggested_actions[0].risk"
        );
    }
}
