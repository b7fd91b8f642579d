//! API keys for producers and integrations: `slk_<id>_<secret>`.
//!
//! The id is public (it names the key in lists and the audit log); the secret is 256 random
//! bits, shown once at creation and stored only as a digest. The prefix makes leaked keys
//! easy to find with secret scanners.

use std::net::IpAddr;

use ipnet::IpNet;
use sightline_model::ValidationError;

use crate::opaque;

/// The prefix every key starts with.
pub const PREFIX: &str = "slk_";

/// A new key: its id, the full token to hand out once, and the digest to store.
#[derive(Debug)]
pub struct NewKey {
    /// Public id.
    pub id: String,
    /// The whole key, `slk_<id>_<secret>`.
    pub token: String,
    /// SHA-256 digest of the secret part.
    pub secret_hash: String,
}

/// Generates a key.
pub fn generate() -> NewKey {
    let id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let secret = opaque::random_secret(32);
    NewKey {
        token: format!("{PREFIX}{id}_{secret}"),
        secret_hash: opaque::digest(&secret),
        id,
    }
}

/// Splits a presented key into id and secret; `None` when it is not shaped like a key.
pub fn parse(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let well_formed = id.len() == 16
        && id.bytes().all(|b| b.is_ascii_hexdigit())
        && !secret.is_empty()
        && secret.len() <= 128;
    well_formed.then_some((id, secret))
}

/// Parses and normalizes a source-address allow-list (`10.0.0.0/8`, `2001:db8::/32`, or a
/// bare address for a single host).
pub fn parse_networks(items: &[String]) -> Result<Vec<IpNet>, ValidationError> {
    items
        .iter()
        .map(|item| {
            let item = item.trim();
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ValidationError::new(
                        "allowed_ips",
                        format!("'{item}' is not an IP network like 10.0.0.0/8"),
                    )
                })
        })
        .collect()
}

/// Whether `ip` may use a key with this allow-list (empty: any address). IPv4 clients seen
/// as IPv4-mapped IPv6 addresses match IPv4 networks.
pub fn ip_allowed(networks: &[IpNet], ip: Option<IpAddr>) -> bool {
    if networks.is_empty() {
        return true;
    }
    let Some(ip) = ip else { return false };
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    networks.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_their_secret_matches_the_digest() {
        let key = generate();
        let (id, secret) = parse(&key.token).unwrap();
        assert_eq!(id, key.id);
        assert!(opaque::matches(secret, &key.secret_hash));
        assert_eq!(parse("slk_short_x"), None);
        assert_eq!(parse("Bearer abc"), None);
        assert_eq!(parse(&format!("slk_{}_", key.id)), None);
    }

    #[test]
    fn allow_lists_match_networks_and_mapped_addresses() {
        let nets = parse_networks(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
        assert!(ip_allowed(&nets, Some("10.1.2.3".parse().unwrap())));
        assert!(ip_allowed(&nets, Some("::ffff:10.9.9.9".parse().unwrap())));
        assert!(ip_allowed(&nets, Some("::1".parse().unwrap())));
        assert!(!ip_allowed(&nets, Some("192.168.1.1".parse().unwrap())));
        assert!(!ip_allowed(&nets, None));
        assert!(ip_allowed(&[], None));
        assert_eq!(
            parse_networks(&["10.0.0.0/33".into()]).unwrap_err().field,
            "allowed_ips"
        );
    }
}
