//! The `http` executor (also carrying chat-webhook notifications): URL allow-list,
//! refusal of private, loopback, link-local and metadata addresses *after* DNS
//! resolution, a pinned connection to the address that was checked (so a second DNS
//! answer cannot rebind the request elsewhere), no redirects, timeouts, a truncated
//! response, and an HMAC-SHA256 signature of the body.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use sightline_model::Secret;
use sightline_model::playbook::HttpMethod;

use super::{StepFailure, truncate_utf8};

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>` when a signing secret is set.
pub const SIGNATURE_HEADER: &str = "x-sightline-signature-256";

/// Bytes of a response body kept in the step's output.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;

/// Where playbooks may send requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// URL prefixes requests must start with (`https://hooks.slack.com/`); empty: any
    /// URL whose address is public.
    pub allowed_urls: Vec<String>,
    /// Networks allowed although private/loopback/link-local (`10.0.0.0/8` for an
    /// internal API, `127.0.0.0/8` for tests). Never allowed otherwise.
    pub allow_private: Vec<IpNet>,
    /// Secret for the body signature header; unsigned when absent.
    pub signing_secret: Option<Secret>,
}

/// Whether an address is one a playbook must not reach unless configured: loopback,
/// private, link-local (169.254.0.0/16 holds the cloud metadata services), CGNAT
/// (100.100.100.200 is one too), unspecified, broadcast, multicast, reserved and
/// documentation ranges, IPv6 unique-local and link-local, and IPv4 embedded in IPv6
/// (mapped, compatible, NAT64) by the IPv4 rules.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let seg = ip.segments();
    // IPv4-compatible (::a.b.c.d, deprecated) and NAT64 (64:ff9b::/96) carry an IPv4
    // address a gateway would reach.
    if seg[..6] == [0; 6] || seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = seg[6].to_be_bytes();
        let [c, d] = seg[7].to_be_bytes();
        return internal_v4(Ipv4Addr::new(a, b, c, d));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7 (AWS IMDS fd00:ec2::254)
        || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
        || (seg[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation
}

impl HttpConfig {
    fn address_allowed(&self, ip: IpAddr) -> bool {
        !is_internal(ip) || self.allow_private.iter().any(|net| net.contains(&ip))
    }

    /// Checks the URL against the allow-list and resolves its host, refusing any
    /// internal address; returns the parsed URL and the one address to connect to.
    pub async fn check(&self, url: &str) -> Result<(reqwest::Url, SocketAddr), StepFailure> {
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| StepFailure::refused(format!("'{url}' is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(StepFailure::refused(format!("'{url}' is not http(s)")));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(StepFailure::refused("URLs with credentials are refused"));
        }
        if !self.allowed_urls.is_empty()
            && !self
                .allowed_urls
                .iter()
                .any(|p| parsed.as_str().starts_with(p.as_str()))
        {
            return Err(StepFailure::refused(format!(
                "'{url}' is not under an allow-listed URL"
            )));
        }
        let port = parsed
            .port_or_known_default()
            .ok_or_else(|| StepFailure::refused(format!("'{url}' has no port")))?;
        let addresses: Vec<SocketAddr> = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(url::Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(url::Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| {
                    StepFailure::failed(format!("cannot resolve '{name}': {e}"), String::new())
                })?
                .collect(),
            None => return Err(StepFailure::refused(format!("'{url}' has no host"))),
        };
        // Every answer must be acceptable: a name resolving to one public and one
        // internal address is refused rather than raced.
        if let Some(bad) = addresses.iter().find(|a| !self.address_allowed(a.ip())) {
            return Err(StepFailure::refused(format!(
                "'{url}' resolves to {}, an internal address playbooks may not reach",
                bad.ip()
            )));
        }
        let address = addresses.first().copied().ok_or_else(|| {
            StepFailure::failed(format!("'{url}' resolves to nothing"), String::new())
        })?;
        Ok((parsed, address))
    }

    /// Sends one request to the checked address; succeeds on a 2xx answer.
    pub async fn send(
        &self,
        method: HttpMethod,
        url: &str,
        headers: &BTreeMap<String, String>,
        body: Option<&serde_json::Value>,
        limit: Duration,
    ) -> Result<String, StepFailure> {
        let (parsed, address) = self.check(url).await?;
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(limit.min(Duration::from_secs(10)))
            .timeout(limit);
        if let Some(url::Host::Domain(name)) = parsed.host() {
            // Pins the connection to the address checked above (no second lookup).
            builder = builder.resolve(name, address);
        }
        let client = builder
            .build()
            .map_err(|e| StepFailure::failed(format!("http client: {e}"), String::new()))?;
        let method = reqwest::Method::from_bytes(method.as_str().as_bytes())
            .map_err(|e| StepFailure::refused(e.to_string()))?;
        let mut request = client.request(method, parsed);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).unwrap_or_default();
            if let Some(secret) = &self.signing_secret {
                request = request.header(
                    SIGNATURE_HEADER,
                    sightline_auth::webhook::sign_hub(secret.expose().as_bytes(), &bytes),
                );
            }
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let response = request.send().await.map_err(|e| {
            StepFailure::failed(format!("request to {address} failed: {e}"), String::new())
        })?;
        let status = response.status();
        let mut kept = Vec::new();
        let mut response = response;
        while let Ok(Some(chunk)) = response.chunk().await {
            let room = MAX_RESPONSE_BYTES.saturating_sub(kept.len());
            kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if room < chunk.len() {
                break;
            }
        }
        let output = truncate_utf8(
            format!(
                "HTTP {}\n{}",
                status.as_u16(),
                String::from_utf8_lossy(&kept)
            ),
            MAX_RESPONSE_BYTES + 64,
        );
        if status.is_success() {
            Ok(output)
        } else {
            Err(StepFailure::failed(
                format!("answered HTTP {}", status.as_u16()),
                output,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised_in_every_spelling() {
        for ip in [
            "169.254.169.254",
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.100.100.200",
            "0.0.0.0",
            "::1",
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "fd00:ec2::254",
            "fe80::1",
            "::",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_internal(ip), "{ip} must be internal");
        }
        for ip in ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_internal(ip), "{ip} is public");
        }
    }

    #[tokio::test]
    async fn allow_list_and_explicit_private_networks() {
        let config = HttpConfig {
            allowed_urls: vec!["http://127.0.0.1:9/".into()],
            allow_private: vec!["127.0.0.0/8".parse().unwrap()],
            signing_secret: None,
        };
        assert!(config.check("http://127.0.0.1:9/hook").await.is_ok());
        let err = config.check("http://127.0.0.2:9/hook").await.unwrap_err();
        assert!(err.message.contains("allow-listed"), "{err}");
        let err = HttpConfig::default()
            .check("http://user:pw@example.org/")
            .await
            .unwrap_err();
        assert!(err.message.contains("credentials"), "{err}");
    }
}
