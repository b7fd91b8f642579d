//! Stable fingerprints: one value for every repeat of the same problem.
//!
//! The fingerprint hashes the service, the event type and the event text with its variable
//! parts masked: any whitespace-separated token containing a digit (numbers, ids, IPs,
//! durations, hex hashes with digits) becomes `<*>`, and letters are lower-cased. So
//! `"timeout after 3012 ms on 10.0.0.7"` and `"Timeout after 45 ms on 10.0.0.9"` share one
//! fingerprint. The algorithm is part of the stored data's meaning: changing it is a
//! migration, so it is versioned by the `v1` prefix.

use xxhash_rust::xxh3::Xxh3;

/// The fingerprint of an event: `v1-` followed by 16 hex digits.
pub fn of(service_name: &str, event_type: &str, details: &str) -> String {
    let mut h = Xxh3::new();
    h.update(service_name.as_bytes());
    h.update(&[0x1f]);
    h.update(event_type.as_bytes());
    h.update(&[0x1f]);
    let mut lower = String::new();
    for token in details.split_whitespace() {
        if token.bytes().any(|b| b.is_ascii_digit()) {
            h.update(b"<*>");
        } else {
            lower.clear();
            lower.extend(token.chars().flat_map(char::to_lowercase));
            h.update(lower.as_bytes());
        }
        h.update(b" ");
    }
    format!("v1-{:016x}", h.digest())
}

#[cfg(test)]
mod tests {
    use super::of;

    #[test]
    fn masks_variable_tokens_and_case() {
        assert_eq!(
            of("api", "ERROR", "timeout after 3012 ms on 10.0.0.7"),
            of("api", "ERROR", "Timeout  after 45 ms on 10.0.0.9")
        );
    }

    #[test]
    fn differs_by_service_type_and_words() {
        let base = of("api", "ERROR", "connection refused");
        assert_ne!(base, of("db", "ERROR", "connection refused"));
        assert_ne!(base, of("api", "WARNING", "connection refused"));
        assert_ne!(base, of("api", "ERROR", "connection reset"));
        assert!(base.starts_with("v1-") && base.len() == 19);
    }
}
