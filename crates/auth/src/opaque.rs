//! Opaque secrets (API-key secrets, refresh tokens, bootstrap tokens): generated from the
//! OS random source, stored only as SHA-256 digests, compared in constant time.
//!
//! A fast digest is right here, unlike for passwords: these secrets carry 256 bits of
//! entropy, so there is nothing to brute-force.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// `bytes` random bytes, base64url without padding.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// The SHA-256 digest of `secret`, hex.
pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` has the digest `expected`, in time independent of where they differ.
pub fn matches(secret: &str, expected: &str) -> bool {
    digest(secret).as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_digests_match() {
        let a = random_secret(32);
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_secret(32));
        let d = digest(&a);
        assert!(matches(&a, &d));
        assert!(!matches(&random_secret(32), &d));
        assert!(!matches(&a, ""));
    }
}
