//! Rendering: an [`Action`] with `{{path}}` placeholders becomes the exact
//! [`RenderedAction`] that runs — the same pure function serves dry-runs and real runs, so
//! a dry-run shows byte for byte what would execute.
//!
//! Placeholders are filled only where a value cannot change the meaning of the rest:
//! inside one argv element (never a shell string), inside the URL's query string
//! (percent-encoded), and inside JSON string values. Hosts, paths, programs, headers and
//! recipients are fixed when the template is created (validation refuses placeholders
//! there).

use sightline_model::playbook::{ChatFormat, NotifyChannel};
use sightline_model::{Action, RenderedAction};

use crate::firing::{Firing, Subject};

/// What placeholders read from: `subject.*` (the event, anomaly or incident),
/// `subject_kind`, `rule.id`, `rule.name`, `firing.*` and `execution.id`.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderContext {
    root: serde_json::Value,
}

/// A placeholder that names nothing in the context.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: placeholder '{{{{{placeholder}}}}}' names nothing in the subject")]
pub struct RenderError {
    /// Where the template is (`action.args[1]`).
    pub field: String,
    /// The unknown path.
    pub placeholder: String,
}

impl RenderContext {
    /// The context of a subject alone (dry-runs, autonomous runs).
    pub fn for_subject(subject: &Subject) -> Self {
        let (kind, value) = subject_json(subject);
        Self {
            root: serde_json::json!({"subject": value, "subject_kind": kind}),
        }
    }

    /// The context of a firing: its subject plus the rule and firing fields.
    pub fn for_firing(firing: &Firing) -> Self {
        let mut ctx = Self::for_subject(&firing.subject);
        if let Some(root) = ctx.root.as_object_mut() {
            root.insert(
                "rule".into(),
                serde_json::json!({"id": firing.rule_id, "name": firing.rule_name}),
            );
            root.insert(
                "firing".into(),
                serde_json::json!({
                    "id": firing.id, "group_key": firing.group_key,
                    "match_count": firing.match_count, "fired_at": firing.fired_at,
                }),
            );
        }
        ctx
    }

    /// Adds `execution.id`.
    #[must_use]
    pub fn with_execution(mut self, execution_id: &str) -> Self {
        if let Some(root) = self.root.as_object_mut() {
            root.insert("execution".into(), serde_json::json!({"id": execution_id}));
        }
        self
    }

    /// The value at a dotted path, as text: strings as they are, numbers and booleans as
    /// JSON, null as empty, objects and arrays as JSON text.
    fn lookup(&self, path: &str) -> Option<String> {
        let mut at = &self.root;
        for part in path.split('.') {
            at = match at {
                serde_json::Value::Object(map) => map.get(part)?,
                serde_json::Value::Array(items) => items.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(match at {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        })
    }
}

/// The subject's kind name and its value as JSON.
pub(crate) fn subject_json(subject: &Subject) -> (&'static str, serde_json::Value) {
    // Serializing model structs (strings, numbers, JSON maps) cannot fail.
    let to = |v: Result<serde_json::Value, serde_json::Error>| v.unwrap_or_default();
    match subject {
        Subject::Event(e) => ("event", to(serde_json::to_value(e))),
        Subject::Anomaly(a) => ("anomaly", to(serde_json::to_value(a))),
        Subject::Incident(i) => ("incident", to(serde_json::to_value(i))),
    }
}

/// Fills the placeholders of one template string; `escape` transforms each inserted value.
fn fill(
    field: &str,
    template: &str,
    ctx: &RenderContext,
    escape: &dyn Fn(&str) -> String,
) -> Result<String, RenderError> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            // Validation refuses unclosed placeholders; keep the text literally if one
            // slips through rather than guessing.
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let path = after[..end].trim();
        let value = ctx.lookup(path).ok_or_else(|| RenderError {
            field: field.to_owned(),
            placeholder: path.to_owned(),
        })?;
        out.push_str(&escape(&value));
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn verbatim(value: &str) -> String {
    value.to_owned()
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Renders a string template, inserting values verbatim.
pub fn render_text(
    field: &str,
    template: &str,
    ctx: &RenderContext,
) -> Result<String, RenderError> {
    fill(field, template, ctx, &verbatim)
}

/// Renders a URL: the part before `?` is kept as written; placeholders in the query string
/// are percent-encoded, so a value can add neither parameters nor a fragment.
pub fn render_url(field: &str, url: &str, ctx: &RenderContext) -> Result<String, RenderError> {
    match url.split_once('?') {
        Some((base, query)) => Ok(format!(
            "{base}?{}",
            fill(field, query, ctx, &percent_encode)?
        )),
        None => Ok(url.to_owned()),
    }
}

/// Renders every string value of a JSON document (keys are never templates).
pub fn render_json(
    field: &str,
    value: &serde_json::Value,
    ctx: &RenderContext,
) -> Result<serde_json::Value, RenderError> {
    Ok(match value {
        serde_json::Value::String(s) => serde_json::Value::String(render_text(field, s, ctx)?),
        serde_json::Value::Array(items) => serde_json::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| render_json(&format!("{field}[{i}]"), v, ctx))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(&format!("{field}.{k}"), v, ctx)?)))
                .collect::<Result<_, RenderError>>()?,
        ),
        other => other.clone(),
    })
}

/// The JSON payload of a chat webhook message.
pub fn chat_payload(format: ChatFormat, message: &str) -> serde_json::Value {
    match format {
        ChatFormat::Slack => serde_json::json!({ "text": message }),
        ChatFormat::Teams => serde_json::json!({
            "@type": "MessageCard",
            "@context": "https://schema.org/extensions",
            "summary": message.chars().take(120).collect::<String>(),
            "text": message,
        }),
    }
}

/// Renders an action for a context. `at` is the action's field path, for errors.
pub fn render(
    at: &str,
    action: &Action,
    ctx: &RenderContext,
) -> Result<RenderedAction, RenderError> {
    Ok(match action {
        Action::Http {
            method,
            url,
            headers,
            body,
        } => RenderedAction::Http {
            method: *method,
            url: render_url(&format!("{at}.url"), url, ctx)?,
            headers: headers.clone(),
            body: body
                .as_ref()
                .map(|b| render_json(&format!("{at}.body"), b, ctx))
                .transpose()?,
        },
        Action::Command { program, args } => {
            let mut argv = Vec::with_capacity(args.len() + 1);
            argv.push(program.clone());
            for (i, arg) in args.iter().enumerate() {
                argv.push(render_text(&format!("{at}.args[{i}]"), arg, ctx)?);
            }
            RenderedAction::Command { argv }
        }
        Action::Notify { channel, message } => {
            let message = render_text(&format!("{at}.message"), message, ctx)?;
            match channel {
                NotifyChannel::Webhook { url, format } => RenderedAction::Webhook {
                    url: url.clone(),
                    payload: chat_payload(*format, &message),
                },
                NotifyChannel::Email { to, subject } => RenderedAction::Email {
                    to: to.clone(),
                    // One header line: a value with line breaks cannot add headers.
                    subject: render_text(&format!("{at}.channel.subject"), subject, ctx)?
                        .replace(['\r', '\n'], " "),
                    body: message,
                },
            }
        }
        Action::Emit { event } => RenderedAction::Emit {
            event: render_json(&format!("{at}.event"), event, ctx)?,
        },
        Action::Noop { fail, sleep_ms } => RenderedAction::Noop {
            fail: *fail,
            sleep_ms: *sleep_ms,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{Event, Severity, SourceType};

    pub(crate) fn event(service: &str, details: &str) -> Event {
        Event {
            event_id: "ev-1".into(),
            service_name: service.into(),
            event_type: "ERROR".into(),
            timestamp: 1_700_000_000_000,
            environment: "prod".into(),
            details: details.into(),
            severity: Severity::High,
            metadata: serde_json::json!({"cpu": 97.5, "pod": "p-1"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            source: "test".into(),
            source_type: SourceType::Http,
            host: Some("web-1".into()),
            tags: Default::default(),
            fingerprint: "fp".into(),
            correlation_id: "c".into(),
            received_at: 1_700_000_000_000,
        }
    }

    fn ctx(details: &str) -> RenderContext {
        RenderContext::for_subject(&Subject::Event(Box::new(event("checkout", details))))
    }

    #[test]
    fn hostile_values_stay_inside_one_argv_element() {
        let nasty = "x; rm -rf / $(id) `id`\nsecond line";
        let action: Action = serde_json::from_value(serde_json::json!({
            "type": "command", "program": "/bin/echo",
            "args": ["--details={{subject.details}}", "{{subject.metadata.cpu}}"]
        }))
        .unwrap();
        let rendered = render("action", &action, &ctx(nasty)).unwrap();
        assert_eq!(
            rendered,
            RenderedAction::Command {
                argv: vec![
                    "/bin/echo".into(),
                    format!("--details={nasty}"),
                    "97.5".into()
                ]
            }
        );
    }

    #[test]
    fn query_values_are_percent_encoded_and_bodies_templated() {
        let action: Action = serde_json::from_value(serde_json::json!({
            "type": "http", "url": "http://hooks.example/p?svc={{subject.service_name}}&d={{subject.details}}",
            "body": {"text": "{{subject.details}} on {{subject.host}}", "n": 3}
        }))
        .unwrap();
        let rendered = render("action", &action, &ctx("a&b=c#d")).unwrap();
        let RenderedAction::Http { url, body, .. } = rendered else {
            panic!("http")
        };
        assert_eq!(url, "http://hooks.example/p?svc=checkout&d=a%26b%3Dc%23d");
        assert_eq!(
            body,
            Some(serde_json::json!({"text": "a&b=c#d on web-1", "n": 3}))
        );
    }

    #[test]
    fn unknown_placeholders_are_errors_naming_the_field() {
        let action: Action = serde_json::from_value(serde_json::json!({
            "type": "command", "program": "/bin/echo", "args": ["ok", "{{subject.nope}}"]
        }))
        .unwrap();
        let err = render("steps[0].action", &action, &ctx("")).unwrap_err();
        assert_eq!(err.field, "steps[0].action.args[1]");
        assert_eq!(err.placeholder, "subject.nope");
    }

    #[test]
    fn email_subjects_stay_one_line() {
        let action: Action = serde_json::from_value(serde_json::json!({
            "type": "notify", "message": "{{subject.details}}",
            "channel": {"type": "email", "to": ["ops@example.org"], "subject": "[{{subject.service_name}}] {{subject.details}}"}
        }))
        .unwrap();
        let RenderedAction::Email { subject, body, .. } =
            render("a", &action, &ctx("x\r\nBcc: evil@example.org")).unwrap()
        else {
            panic!("email")
        };
        assert_eq!(subject, "[checkout] x  Bcc: evil@example.org");
        assert_eq!(body, "x\r\nBcc: evil@example.org");
    }
}
