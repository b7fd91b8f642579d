//! The prompt for one event. Everything a producer wrote (ids, service and host names,
//! details, metadata, tags) is shown only inside untrusted-data blocks
//! (the helper incident analyses use: labelled, delimiter look-alikes defanged by
//! [`crate::llm::prompt::defang`], capped);
//! only what sightline itself derived (severity, source type, times) is plain text.

use std::fmt::Write as _;

use sightline_model::Event;

use crate::llm::prompt::{untrusted, untrusted_rules};

/// The system message.
pub const SYSTEM: &str = concat!(
    "You are sightline's event analyst for an operations team. You receive one event that a \
     monitored system reported with high severity. ",
    untrusted_rules!(),
    "List the possible root causes of the event, most likely first, what an operator could do \
     next, and related concerns worth checking; say how confident you are. Answer with one \
     JSON object matching the given schema and nothing else."
);

/// The user message presenting `event`.
pub fn user_message(event: &Event) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Event\nseverity: {}\nsource type: {}\ntimestamp (epoch ms): {}\nreceived at (epoch ms): {}",
        event.severity,
        event.source_type.as_str(),
        event.timestamp,
        event.received_at,
    );
    let attributes = format!(
        "event_id: {}\nservice: {}\nevent_type: {}\nenvironment: {}\nhost: {}\nsource: {}",
        event.event_id,
        event.service_name,
        event.event_type,
        event.environment,
        event.host.as_deref().unwrap_or("-"),
        event.source,
    );
    untrusted(&mut out, "event attributes", &attributes);
    untrusted(&mut out, "event details", &event.details);
    if !event.metadata.is_empty() || !event.tags.is_empty() {
        let extra = format!(
            "metadata: {}\ntags: {}",
            serde_json::Value::Object(event.metadata.clone()),
            serde_json::to_string(&event.tags).unwrap_or_default(),
        );
        untrusted(&mut out, "event metadata and tags", &extra);
    }
    out.push_str("\nExplain what probably caused this event and what to do about it.\n");
    out
}
