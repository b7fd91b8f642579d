//! Email notifications through an SMTP relay (lettre, tokio transport, rustls).
//!
//! The connection is plain (a local or trusted relay), upgraded with STARTTLS, or TLS
//! from the first byte (`tls = "none" | "starttls" | "tls"`). With STARTTLS the upgrade is
//! required: a relay that does not offer it is refused rather than spoken to in clear.
//! Certificates are checked against the public roots plus an optional `ca_file`.
//! Credentials (`username`, `password`) are only sent over TLS, or to a loopback relay.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sightline_model::Secret;

use super::StepFailure;

/// How the connection to the relay is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP: a relay on this host or a trusted network.
    #[default]
    None,
    /// A plain connection upgraded with STARTTLS before anything else is sent (usually
    /// port 587); a relay that does not offer it is refused.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

/// The SMTP relay email notifications go through.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Relay host (also the name its certificate must carry).
    pub host: String,
    /// Relay port [default: 25, 587 with `starttls`, 465 with `tls`].
    #[serde(default)]
    pub port: Option<u16>,
    /// Sender address.
    pub from: String,
    /// Transport security.
    #[serde(default)]
    pub tls: SmtpTls,
    /// A PEM file of CA certificates trusted for the relay besides the public roots (a
    /// private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// User for SMTP AUTH (PLAIN or LOGIN); none: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for SMTP AUTH (set it with `SIGHTLINE_…__PASSWORD_FILE`; never printed).
    #[serde(default)]
    pub password: Secret,
}

impl SmtpConfig {
    /// The configured port, or the usual one for the transport security.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        })
    }

    fn transport(
        &self,
        limit: Duration,
    ) -> Result<AsyncSmtpTransport<Tokio1Executor>, StepFailure> {
        let tls = match self.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::Starttls => Tls::Required(self.tls_parameters()?),
            SmtpTls::Tls => Tls::Wrapper(self.tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(self.port())
            .tls(tls)
            .timeout(Some(limit));
        if let Some(user) = &self.username {
            let loopback = self.host == "localhost"
                || self.host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if self.tls == SmtpTls::None && !loopback {
                return Err(StepFailure::refused(
                    "smtp: credentials are only sent over TLS (set tls = \"starttls\" or \"tls\")",
                ));
            }
            builder = builder.credentials(Credentials::new(
                user.clone(),
                self.password.expose().to_owned(),
            ));
        }
        Ok(builder.build())
    }

    fn tls_parameters(&self) -> Result<TlsParameters, StepFailure> {
        let mut parameters = TlsParameters::builder(self.host.clone());
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                StepFailure::refused(format!("smtp.ca_file {}: {e}", path.display()))
            })?;
            let certificate = Certificate::from_pem(&pem).map_err(|e| {
                StepFailure::refused(format!("smtp.ca_file {}: {e}", path.display()))
            })?;
            parameters = parameters.add_root_certificate(certificate);
        }
        parameters
            .build()
            .map_err(|e| StepFailure::refused(format!("smtp TLS: {e}")))
    }
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
    let transport = config.transport(limit)?;
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
