//! Signature checks for inbound webhooks, before the body is parsed.
//!
//! Two schemes are accepted:
//!
//! - **Standard Webhooks**: `webhook-id`, `webhook-timestamp` (epoch seconds) and
//!   `webhook-signature` (space-separated `v1,<base64>` entries) over `"{id}.{timestamp}.{body}"`;
//!   the timestamp must be within the tolerance and an id is accepted once (replays of a
//!   captured request are refused).
//! - **GitHub style**: `X-Hub-Signature-256: sha256=<hex>` over the body; `X-GitHub-Delivery`
//!   (when present) is the replay id. This scheme signs no timestamp, so a replay outside
//!   the remembered window cannot be told from a new delivery; prefer Standard Webhooks.
//!
//! Every active secret is tried (two during a rotation); comparisons are constant-time.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use sightline_model::Secret;

use crate::AuthError;

type HmacSha256 = Hmac<Sha256>;

/// Most remembered delivery ids; beyond it the oldest are forgotten first.
const MAX_REMEMBERED: usize = 100_000;

/// The headers a webhook request carries, as text.
#[derive(Clone, Copy, Debug, Default)]
pub struct WebhookHeaders<'a> {
    /// `webhook-id`.
    pub id: Option<&'a str>,
    /// `webhook-timestamp`.
    pub timestamp: Option<&'a str>,
    /// `webhook-signature`.
    pub signature: Option<&'a str>,
    /// `X-Hub-Signature-256`.
    pub hub_signature: Option<&'a str>,
    /// `X-GitHub-Delivery`.
    pub delivery: Option<&'a str>,
}

/// Verifies signed webhooks (see the module docs).
pub struct WebhookVerifier {
    keys: Vec<Vec<u8>>,
    tolerance: Duration,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for WebhookVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookVerifier")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

/// Delivery ids seen within the tolerance window, oldest first.
#[derive(Default)]
struct Seen {
    order: VecDeque<(u64, String)>,
    ids: HashSet<String>,
}

impl WebhookVerifier {
    /// A verifier for these secrets; `None` when there are none (signatures not required).
    pub fn new(secrets: &[Secret], tolerance: Duration) -> Result<Option<Self>, AuthError> {
        if secrets.is_empty() {
            return Ok(None);
        }
        let keys = secrets
            .iter()
            .map(|s| match s.expose().strip_prefix("whsec_") {
                Some(b64) => STANDARD.decode(b64).map_err(|e| {
                    AuthError::Config(format!("a whsec_ webhook secret is not base64: {e}"))
                }),
                None => Ok(s.expose().as_bytes().to_vec()),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(Self {
            keys,
            tolerance,
            seen: Mutex::new(Seen::default()),
        }))
    }

    /// Checks a request's signature against `body` at time `now_secs`.
    pub fn verify(
        &self,
        headers: &WebhookHeaders<'_>,
        body: &[u8],
        now_secs: u64,
    ) -> Result<(), AuthError> {
        let replay_id = if let Some(signatures) = headers.signature {
            let (Some(id), Some(ts)) = (headers.id, headers.timestamp) else {
                return Err(AuthError::unauthenticated(
                    "webhook-signature needs webhook-id and webhook-timestamp",
                ));
            };
            let ts_secs: u64 = ts
                .trim()
                .parse()
                .map_err(|_| AuthError::unauthenticated("webhook-timestamp is not a number"))?;
            if now_secs.abs_diff(ts_secs) > self.tolerance.as_secs() {
                return Err(AuthError::unauthenticated(
                    "webhook-timestamp is outside the tolerance",
                ));
            }
            let candidates: Vec<Vec<u8>> = signatures
                .split(' ')
                .filter_map(|entry| entry.strip_prefix("v1,"))
                .filter_map(|b64| STANDARD.decode(b64).ok())
                .collect();
            let valid = self.keys.iter().any(|key| {
                candidates.iter().any(|sig| {
                    let mut mac = mac(key);
                    mac.update(id.as_bytes());
                    mac.update(b".");
                    mac.update(ts.as_bytes());
                    mac.update(b".");
                    mac.update(body);
                    mac.verify_slice(sig).is_ok()
                })
            });
            if !valid {
                return Err(AuthError::unauthenticated(
                    "webhook signature does not match",
                ));
            }
            Some(id)
        } else if let Some(hub) = headers.hub_signature {
            let sig = hub
                .trim()
                .strip_prefix("sha256=")
                .and_then(|h| hex::decode(h).ok())
                .ok_or_else(|| AuthError::unauthenticated("X-Hub-Signature-256 is malformed"))?;
            let valid = self.keys.iter().any(|key| {
                let mut mac = mac(key);
                mac.update(body);
                mac.verify_slice(&sig).is_ok()
            });
            if !valid {
                return Err(AuthError::unauthenticated(
                    "webhook signature does not match",
                ));
            }
            headers.delivery
        } else {
            return Err(AuthError::unauthenticated("webhook signature required"));
        };
        match replay_id {
            Some(id) => self.remember(id, now_secs),
            None => Ok(()),
        }
    }

    /// Records a delivery id; refuses one already seen within the window.
    fn remember(&self, id: &str, now_secs: u64) -> Result<(), AuthError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Ids older than twice the tolerance can no longer pass the timestamp check.
        let horizon = now_secs.saturating_sub(2 * self.tolerance.as_secs());
        while let Some((at, _)) = seen.order.front() {
            if *at >= horizon && seen.order.len() < MAX_REMEMBERED {
                break;
            }
            if let Some((_, old)) = seen.order.pop_front() {
                seen.ids.remove(&old);
            }
        }
        if !seen.ids.insert(id.to_owned()) {
            return Err(AuthError::unauthenticated(format!(
                "webhook delivery '{id}' was already received (replay)"
            )));
        }
        seen.order.push_back((now_secs, id.to_owned()));
        Ok(())
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(e) => unreachable!("HMAC accepts keys of any length: {e}"),
    }
}

/// Signs `body` the Standard Webhooks way, for senders and tests: the `webhook-signature`
/// value for `id` and `timestamp`.
pub fn sign_standard(secret: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Signs `body` the GitHub way: the `X-Hub-Signature-256` value.
pub fn sign_hub(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn verifier(secrets: &[&str]) -> WebhookVerifier {
        let secrets: Vec<Secret> = secrets.iter().map(|s| Secret::new(*s)).collect();
        WebhookVerifier::new(&secrets, Duration::from_secs(300))
            .unwrap()
            .unwrap()
    }

    fn standard<'a>(id: &'a str, ts: &'a str, sig: &'a str) -> WebhookHeaders<'a> {
        WebhookHeaders {
            id: Some(id),
            timestamp: Some(ts),
            signature: Some(sig),
            ..WebhookHeaders::default()
        }
    }

    #[test]
    fn standard_webhooks_verify_once_within_tolerance() {
        let v = verifier(&["old-secret", "new-secret"]);
        let body = br#"{"message":"disk full"}"#;
        let sig = sign_standard(b"new-secret", "msg_1", NOW, body);
        let ts = NOW.to_string();
        v.verify(&standard("msg_1", &ts, &sig), body, NOW + 10)
            .unwrap();
        // Replayed id.
        assert!(
            v.verify(&standard("msg_1", &ts, &sig), body, NOW + 11)
                .is_err()
        );
        // The old secret still works during rotation; several signatures may be sent.
        let old = sign_standard(b"old-secret", "msg_2", NOW, body);
        let both = format!("v1,AAAA {old}");
        v.verify(&standard("msg_2", &ts, &both), body, NOW).unwrap();
        // One flipped bit in the body.
        let mut flipped = body.to_vec();
        flipped[3] ^= 1;
        let sig3 = sign_standard(b"new-secret", "msg_3", NOW, body);
        assert!(
            v.verify(&standard("msg_3", &ts, &sig3), &flipped, NOW)
                .is_err()
        );
        // Stale timestamp, even correctly signed.
        let old_ts = (NOW - 301).to_string();
        let stale = sign_standard(b"new-secret", "msg_4", NOW - 301, body);
        assert!(
            v.verify(&standard("msg_4", &old_ts, &stale), body, NOW)
                .is_err()
        );
        // Unsigned.
        assert!(v.verify(&WebhookHeaders::default(), body, NOW).is_err());
    }

    #[test]
    fn whsec_secrets_are_base64_and_hub_signatures_work() {
        let key = b"0123456789abcdef";
        let v = verifier(&[&format!("whsec_{}", STANDARD.encode(key))]);
        let body = b"[]";
        let ts = NOW.to_string();
        let sig = sign_standard(key, "m", NOW, body);
        v.verify(&standard("m", &ts, &sig), body, NOW).unwrap();
        let hub = sign_hub(key, body);
        let headers = WebhookHeaders {
            hub_signature: Some(&hub),
            delivery: Some("d-1"),
            ..WebhookHeaders::default()
        };
        v.verify(&headers, body, NOW).unwrap();
        assert!(v.verify(&headers, body, NOW).is_err(), "replayed delivery");
        let bad = WebhookHeaders {
            hub_signature: Some("sha256=zz"),
            ..WebhookHeaders::default()
        };
        assert!(v.verify(&bad, body, NOW).is_err());
    }

    #[test]
    fn remembered_ids_expire_after_the_window() {
        let v = verifier(&["s"]);
        v.remember("a", NOW).unwrap();
        assert!(v.remember("a", NOW + 1).is_err());
        v.remember("b", NOW + 601).unwrap();
        v.remember("a", NOW + 601).unwrap();
    }
}
