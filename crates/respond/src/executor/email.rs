//! Email notifications through an SMTP relay (lettre, tokio transport).
//!
//! Plain SMTP only: the relay is expected to be local or on a trusted network (a TLS
//! stack for SMTP is not built in yet).

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};

use super::StepFailure;

/// The SMTP relay email notifications go through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host.
    pub host: String,
    /// Relay port.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Sender address.
    pub from: String,
}

fn default_port() -> u16 {
    25
}

/// Sends one plain-text email.
pub async fn send(
    config: Option<&SmtpConfig>,
    to: &[String],
    subject: &str,
    body: &str,
    limit: Duration,
) -> Result<String, StepFailure> {
    let Some(config) = config else {
        return Err(StepFailure::refused("no SMTP relay is configured"));
    };
    let mailbox = |what: &str, address: &str| {
        address
            .parse::<Mailbox>()
            .map_err(|e| StepFailure::refused(format!("{what} '{address}': {e}")))
    };
    let mut message = Message::builder()
        .from(mailbox("sender", &config.from)?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for address in to {
        message = message.to(mailbox("recipient", address)?);
    }
    let message = message
        .body(body.to_owned())
        .map_err(|e| StepFailure::refused(format!("email: {e}")))?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
        .port(config.port)
        .timeout(Some(limit))
        .build();
    let response = tokio::time::timeout(limit, transport.send(message))
        .await
        .map_err(|_| StepFailure::failed("SMTP relay timed out", String::new()))?
        .map_err(|e| StepFailure::failed(format!("SMTP: {e}"), String::new()))?;
    Ok(format!(
        "SMTP {} {}",
        response.code(),
        response.message().collect::<Vec<_>>().join(" ")
    ))
}
