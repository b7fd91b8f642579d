//! Why a Kafka call failed. librdkafka reports connection failures — a refused TLS
//! handshake, rejected credentials, a plaintext client on a TLS port — only to a client
//! callback, while the call that waited for the connection fails later with a bare
//! "timed out". [`Diagnostics`] keeps the latest report so the error a caller gets says
//! what went wrong.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::LogError;

/// The latest connection failure librdkafka reported, shared by every client of one log.
#[derive(Clone, Debug, Default)]
pub(crate) struct Diagnostics {
    last: Arc<Mutex<Option<(Instant, String)>>>,
}

impl Diagnostics {
    fn record(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        let text = match code {
            Some(code) => format!("{code}: {reason}"),
            None => format!("{error}: {reason}"),
        };
        // "All brokers are down" follows the failure that took them down: it never hides it.
        let known = self
            .last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if !(known && code == Some(RDKafkaErrorCode::AllBrokersDown)) {
            self.remember(text);
        }
    }

    fn remember(&self, text: String) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), text));
    }

    /// The failure reported within `window`, if any.
    fn recent(&self, window: Duration) -> Option<String> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(at, _)| at.elapsed() < window)
            .map(|(_, text)| text.clone())
    }

    /// `error` as a [`LogError`], with the connection failure reported within `window`
    /// (the operation's own time bound) when there is one.
    pub(crate) fn explain(&self, error: KafkaError, window: Duration) -> LogError {
        match self.recent(window) {
            Some(cause) => LogError::Broker(format!("{error} (connection: {cause})")),
            None => LogError::Broker(error.to_string()),
        }
    }

    /// Logs and remembers a client error (the body of [`ClientContext::error`]).
    pub(crate) fn client_error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "Kafka client error");
        self.record(&error, reason);
    }

    /// Forwards a librdkafka log line to `tracing`, and remembers connection failures
    /// (facility `FAIL`): some, such as a broker closing the connection at once, are only
    /// logged, never reported to [`ClientContext::error`]. The body of
    /// [`ClientContext::log`].
    pub(crate) fn client_log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                tracing::error!(target: "librdkafka", facility, "{message}");
            }
            RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", facility, "{message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(target: "librdkafka", facility, "{message}");
            }
            RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", facility, "{message}"),
        }
        if facility == "FAIL" && !matches!(level, RDKafkaLogLevel::Debug) {
            self.remember(failure_text(message));
        }
    }
}

/// A connection failure as librdkafka logged it, with a hint where its words are cryptic.
fn failure_text(message: &str) -> String {
    // A broker that hangs up on the very first request (ApiVersion) mostly does so
    // because it expects another protocol: TLS when the client speaks plaintext.
    if message.contains("closed by peer") && message.contains("APIVERSION_QUERY") {
        format!(
            "{message}: the broker closed the connection at the first request; does \
             security.protocol match its listener (TLS or not)?"
        )
    } else {
        message.to_owned()
    }
}

/// The context of the producer, the admin client and the metadata and offset readers.
#[derive(Clone, Debug, Default)]
pub(crate) struct LogContext {
    pub(crate) diagnostics: Diagnostics,
}

impl ClientContext for LogContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.diagnostics.client_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.diagnostics.client_error(error, reason);
    }
}

/// The metadata and offset readers never join a group: no rebalance callbacks.
impl ConsumerContext for LogContext {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_names_the_recent_connection_failure() {
        let diagnostics = Diagnostics::default();
        let timeout = || KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut);
        let plain = diagnostics
            .explain(timeout(), Duration::from_secs(5))
            .to_string();
        assert!(!plain.contains("connection:"), "{plain}");
        diagnostics.record(
            &KafkaError::Global(RDKafkaErrorCode::Authentication),
            "SASL authentication error: invalid credentials",
        );
        let explained = diagnostics
            .explain(timeout(), Duration::from_secs(5))
            .to_string();
        assert!(
            explained.contains("invalid credentials") && explained.contains("Timed out"),
            "{explained}"
        );
        diagnostics.record(
            &KafkaError::Global(RDKafkaErrorCode::AllBrokersDown),
            "1/1 brokers are down",
        );
        let explained = diagnostics
            .explain(timeout(), Duration::from_secs(5))
            .to_string();
        assert!(explained.contains("invalid credentials"), "{explained}");
        // A connection closed at the first request hints at a protocol mismatch.
        diagnostics.client_log(
            RDKafkaLogLevel::Info,
            "FAIL",
            "sasl_plaintext://127.0.0.1:9093/bootstrap: Disconnected: connection closed by \
             peer: receive 0 after POLLIN (after 0ms in state APIVERSION_QUERY)",
        );
        let explained = diagnostics
            .explain(timeout(), Duration::from_secs(5))
            .to_string();
        assert!(explained.contains("security.protocol"), "{explained}");
        // A failure older than the operation's bound is not its cause.
        let stale = diagnostics.explain(timeout(), Duration::ZERO).to_string();
        assert!(!stale.contains("connection:"), "{stale}");
    }
}
