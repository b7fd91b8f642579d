//! How a Kafka client proves who it talks to and who it is: TLS (with a private CA and,
//! optionally, a client certificate) and SASL (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512).
//!
//! Real clusters refuse plaintext and anonymous clients, so the same [`KafkaSecurity`]
//! table serves the event log (`[log.kafka.security]`) and every external source
//! (`[[sources.kafka]]` `security`). It is checked once at start — with errors naming the
//! key at fault and files that must be readable — and then becomes librdkafka properties
//! ([`KafkaSecurity::properties`]) for the producer, the consumers and the admin client.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sightline_model::Secret;

/// `security.protocol`: whether the connection is encrypted and whether it authenticates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityProtocol {
    /// Neither TLS nor SASL: trusted networks only (the default).
    #[default]
    Plaintext,
    /// TLS, no SASL (a client certificate, if any, is the identity).
    Ssl,
    /// SASL over an unencrypted connection (credentials travel in clear with PLAIN).
    SaslPlaintext,
    /// SASL over TLS: what managed Kafka services expect.
    SaslSsl,
}

impl SecurityProtocol {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "plaintext",
            SecurityProtocol::Ssl => "ssl",
            SecurityProtocol::SaslPlaintext => "sasl_plaintext",
            SecurityProtocol::SaslSsl => "sasl_ssl",
        }
    }

    /// Whether connections are encrypted.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether the client authenticates with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// `sasl.mechanism`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SaslMechanism {
    /// User name and password as they are (use it over TLS only).
    #[serde(rename = "PLAIN")]
    Plain,
    /// Salted challenge-response; the password never crosses the wire.
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    /// Like SCRAM-SHA-256 with SHA-512.
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
}

impl SaslMechanism {
    /// The name librdkafka and the configuration use.
    pub fn as_str(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// TLS and SASL settings of a Kafka client (`[log.kafka.security]`, or `security` in a
/// `[[sources.kafka]]` entry). The default is plaintext without authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaSecurity {
    /// `plaintext` (default), `ssl`, `sasl_plaintext` or `sasl_ssl`.
    pub protocol: SecurityProtocol,
    /// PEM file of the CA certificates that sign the brokers' certificates (a private CA).
    /// Unset: the system's trust store.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate, for brokers that require mutual TLS (needs `key_file`).
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// Password of an encrypted `key_file`; empty when the key is not encrypted.
    pub key_password: Secret,
    /// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`; required by the `sasl_*` protocols.
    pub sasl_mechanism: Option<SaslMechanism>,
    /// SASL user name; required by the `sasl_*` protocols.
    pub username: String,
    /// SASL password; required by the `sasl_*` protocols.
    pub password: Secret,
}

impl KafkaSecurity {
    /// Checks that the settings make one coherent configuration and that every file is
    /// readable now, so a node refuses to start rather than fail on its first connection.
    /// `prefix` is where the table sits (e.g. `log.kafka.security`); the message names the
    /// key at fault.
    pub fn validate(&self, prefix: &str) -> Result<(), String> {
        let protocol = self.protocol.as_str();
        if !self.protocol.uses_tls() {
            let tls_keys = [
                ("ca_file", self.ca_file.is_some()),
                ("cert_file", self.cert_file.is_some()),
                ("key_file", self.key_file.is_some()),
                ("key_password", !self.key_password.is_empty()),
            ];
            if let Some((key, _)) = tls_keys.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{prefix}.{key} is set but {prefix}.protocol = \"{protocol}\" does not use \
                     TLS (use \"ssl\" or \"sasl_ssl\")"
                ));
            }
        }
        if self.protocol.uses_sasl() {
            if self.sasl_mechanism.is_none() {
                return Err(format!(
                    "{prefix}.sasl_mechanism is required with {prefix}.protocol = \"{protocol}\" \
                     (PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
                ));
            }
            if self.username.is_empty() {
                return Err(format!(
                    "{prefix}.username is required with {prefix}.protocol = \"{protocol}\""
                ));
            }
            if self.password.is_empty() {
                return Err(format!(
                    "{prefix}.password is required with {prefix}.protocol = \"{protocol}\""
                ));
            }
        } else {
            let sasl_keys = [
                ("sasl_mechanism", self.sasl_mechanism.is_some()),
                ("username", !self.username.is_empty()),
                ("password", !self.password.is_empty()),
            ];
            if let Some((key, _)) = sasl_keys.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{prefix}.{key} is set but {prefix}.protocol = \"{protocol}\" does not use \
                     SASL (use \"sasl_plaintext\" or \"sasl_ssl\")"
                ));
            }
        }
        match (&self.cert_file, &self.key_file) {
            (Some(_), None) => return Err(format!("{prefix}.cert_file needs {prefix}.key_file")),
            (None, Some(_)) => return Err(format!("{prefix}.key_file needs {prefix}.cert_file")),
            _ => {}
        }
        if !self.key_password.is_empty() && self.key_file.is_none() {
            return Err(format!("{prefix}.key_password needs {prefix}.key_file"));
        }
        for (key, path) in [
            ("ca_file", &self.ca_file),
            ("cert_file", &self.cert_file),
            ("key_file", &self.key_file),
        ] {
            if let Some(path) = path {
                readable(path).map_err(|e| format!("{prefix}.{key}: {e}"))?;
            }
        }
        Ok(())
    }

    /// The librdkafka properties for these settings. With TLS and no `ca_file`, librdkafka
    /// is told to find the system's trust store: its OpenSSL is built into the binary and
    /// does not know where the distribution keeps it.
    pub fn properties(&self) -> Vec<(&'static str, String)> {
        let mut out = vec![("security.protocol", self.protocol.as_str().to_owned())];
        if self.protocol.uses_tls() {
            let ca = self
                .ca_file
                .as_deref()
                .map_or_else(|| "probe".to_owned(), path_text);
            out.push(("ssl.ca.location", ca));
            if let Some(cert) = &self.cert_file {
                out.push(("ssl.certificate.location", path_text(cert)));
            }
            if let Some(key) = &self.key_file {
                out.push(("ssl.key.location", path_text(key)));
            }
            if !self.key_password.is_empty() {
                out.push(("ssl.key.password", self.key_password.expose().to_owned()));
            }
        }
        if self.protocol.uses_sasl() {
            if let Some(mechanism) = self.sasl_mechanism {
                out.push(("sasl.mechanism", mechanism.as_str().to_owned()));
            }
            out.push(("sasl.username", self.username.clone()));
            out.push(("sasl.password", self.password.expose().to_owned()));
        }
        out
    }
}

/// Refuses a path that is missing, not a regular file, or unreadable by this process.
fn readable(path: &Path) -> Result<(), String> {
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let metadata = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if metadata.is_file() {
        Ok(())
    } else {
        Err(format!("{} is not a file", path.display()))
    }
}

fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl_ssl() -> KafkaSecurity {
        KafkaSecurity {
            protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(SaslMechanism::ScramSha512),
            username: "sightline".into(),
            password: Secret::new("s3cret"),
            ..KafkaSecurity::default()
        }
    }

    fn refusal(edit: impl FnOnce(&mut KafkaSecurity)) -> String {
        let mut security = sasl_ssl();
        edit(&mut security);
        security.validate("log.kafka.security").unwrap_err()
    }

    #[test]
    fn the_default_is_plaintext_and_valid() {
        let security = KafkaSecurity::default();
        assert_eq!(security.validate("x"), Ok(()));
        assert_eq!(
            security.properties(),
            [("security.protocol", "plaintext".to_owned())]
        );
    }

    #[test]
    fn sasl_needs_a_mechanism_a_user_and_a_password() {
        assert_eq!(sasl_ssl().validate("log.kafka.security"), Ok(()));
        assert!(
            refusal(|s| s.sasl_mechanism = None)
                .starts_with("log.kafka.security.sasl_mechanism is required"),
        );
        assert!(
            refusal(|s| s.username.clear()).starts_with("log.kafka.security.username is required")
        );
        assert!(
            refusal(|s| s.password = Secret::default())
                .starts_with("log.kafka.security.password is required")
        );
    }

    #[test]
    fn settings_the_protocol_would_ignore_are_refused() {
        let err = refusal(|s| s.protocol = SecurityProtocol::Ssl);
        assert!(
            err.contains("log.kafka.security.sasl_mechanism is set"),
            "{err}"
        );
        let err = refusal(|s| {
            s.protocol = SecurityProtocol::SaslPlaintext;
            s.ca_file = Some("/etc/hosts".into());
        });
        assert!(err.contains("log.kafka.security.ca_file is set"), "{err}");
    }

    #[test]
    fn a_client_certificate_needs_its_key_and_files_must_be_readable() {
        let dir = std::env::temp_dir();
        let err = refusal(|s| s.cert_file = Some(dir.join("cert.pem")));
        assert_eq!(
            err,
            "log.kafka.security.cert_file needs log.kafka.security.key_file"
        );
        let err = refusal(|s| s.key_password = Secret::new("k"));
        assert_eq!(
            err,
            "log.kafka.security.key_password needs log.kafka.security.key_file"
        );
        let missing = dir.join(format!("sightline-missing-{}.pem", std::process::id()));
        let err = refusal(|s| s.ca_file = Some(missing.clone()));
        assert!(
            err.starts_with("log.kafka.security.ca_file: cannot read"),
            "{err}"
        );
        let err = refusal(|s| s.ca_file = Some(dir.clone()));
        assert!(err.ends_with("is not a file"), "{err}");
    }

    #[test]
    fn settings_become_librdkafka_properties() {
        let mut security = sasl_ssl();
        security.ca_file = Some("/etc/kafka/ca.pem".into());
        security.cert_file = Some("/etc/kafka/client.pem".into());
        security.key_file = Some("/etc/kafka/client.key".into());
        security.key_password = Secret::new("kp");
        let properties = security.properties();
        let get = |key: &str| {
            properties
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("security.protocol"), Some("sasl_ssl"));
        assert_eq!(get("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        assert_eq!(
            get("ssl.certificate.location"),
            Some("/etc/kafka/client.pem")
        );
        assert_eq!(get("ssl.key.location"), Some("/etc/kafka/client.key"));
        assert_eq!(get("ssl.key.password"), Some("kp"));
        assert_eq!(get("sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(get("sasl.username"), Some("sightline"));
        assert_eq!(get("sasl.password"), Some("s3cret"));

        // TLS without a CA file uses the system's trust store; SASL settings stay out.
        let tls = KafkaSecurity {
            protocol: SecurityProtocol::Ssl,
            ..KafkaSecurity::default()
        };
        assert_eq!(
            tls.properties(),
            [
                ("security.protocol", "ssl".to_owned()),
                ("ssl.ca.location", "probe".to_owned())
            ]
        );
    }

    #[test]
    fn a_security_table_parses_from_toml_names() {
        let security: KafkaSecurity = serde_json::from_value(serde_json::json!({
            "protocol": "sasl_ssl",
            "sasl_mechanism": "SCRAM-SHA-256",
            "username": "u",
            "password": "p",
        }))
        .unwrap();
        assert_eq!(security.protocol, SecurityProtocol::SaslSsl);
        assert_eq!(security.sasl_mechanism, Some(SaslMechanism::ScramSha256));
        assert_eq!(security.password.expose(), "p");
        assert!(
            serde_json::from_value::<KafkaSecurity>(serde_json::json!({"protocol": "tls"}))
                .is_err()
        );
    }
}
