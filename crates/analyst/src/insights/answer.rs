//! The answer a model gives about one event: its JSON Schema (sent as `response_format`)
//! and its parser, built on the lenient extraction and strict field checks of
//! [`crate::llm::schema`], so a violation names the field the model must fix.

use serde_json::{Value, json};

use crate::llm::schema::{self, SchemaError, err, strings};

/// The name of the schema in `response_format`.
pub const SCHEMA_NAME: &str = "event_insight";

/// Most entries kept per list (the rest of a rambling answer is dropped).
const MAX_ENTRIES: usize = 10;

/// A validated answer.
#[derive(Clone, Debug, PartialEq)]
pub struct InsightAnswer {
    /// Possible root causes, most likely first (at least one).
    pub root_causes: Vec<String>,
    /// What an operator may do (text only).
    pub recommended_actions: Vec<String>,
    /// Other things worth checking.
    pub related_concerns: Vec<String>,
    /// The model's confidence, 0 to 1.
    pub confidence: f64,
    /// The event in a sentence or two.
    pub summary: String,
}

/// The JSON Schema of an answer.
pub fn json_schema() -> Value {
    let list = |description: &str| json!({"type": "array", "items": {"type": "string"}, "description": description});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["root_causes", "recommended_actions", "related_concerns", "confidence", "summary"],
        "properties": {
            "root_causes": list("Possible root causes of the event, most likely first."),
            "recommended_actions": list("What an operator could do next; proposals only."),
            "related_concerns": list("Other risks or systems worth checking."),
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "summary": {"type": "string", "description": "The event in one or two sentences."}
        }
    })
}

/// The `response_format` of a request for an insight.
pub fn response_format() -> Value {
    schema::structured_output(SCHEMA_NAME, json_schema())
}

/// Parses a reply leniently and validates it strictly.
pub fn parse(text: &str) -> Result<InsightAnswer, SchemaError> {
    let o = schema::object(text)?;
    let list = |name: &str| -> Result<Vec<String>, SchemaError> {
        let mut items = strings(o.get(name), &format!("$.{name}"))?;
        items.truncate(MAX_ENTRIES);
        Ok(items)
    };
    let root_causes = list("root_causes")?;
    if root_causes.is_empty() {
        return Err(err(
            "$.root_causes",
            "must name at least one possible cause",
        ));
    }
    Ok(InsightAnswer {
        root_causes,
        recommended_actions: list("recommended_actions")?,
        related_concerns: list("related_concerns")?,
        confidence: schema::confidence(o.get("confidence").unwrap_or(&Value::Null))?,
        summary: schema::string(o.get("summary").unwrap_or(&Value::Null), "$.summary", true)?
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_leniently_and_names_the_bad_field() {
        let good = r#"{"root_causes":["processor down","bad deploy"],"recommended_actions":[],
            "related_concerns":null,"confidence":"0.4","summary":"Payments fail."}"#;
        let a = parse(&format!("Sure:\n```json\n{good}\n```")).unwrap();
        assert_eq!(a.root_causes, ["processor down", "bad deploy"]);
        assert_eq!((a.confidence, a.related_concerns.len()), (0.4, 0));
        let none = good.replace(r#"["processor down","bad deploy"]"#, "[]");
        assert_eq!(parse(&none).unwrap_err().path, "$.root_causes");
        let bad = good.replace("\"0.4\"", "3");
        assert_eq!(parse(&bad).unwrap_err().path, "$.confidence");
        let empty = good.replace("Payments fail.", " ");
        assert_eq!(parse(&empty).unwrap_err().path, "$.summary");
        assert_eq!(parse("[1, 2]").unwrap_err().path, "$");
    }
}
