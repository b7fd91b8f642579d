//! Approval tokens: single-use, expiring secrets that let a person approve or reject a
//! paused step. Only the token's SHA-256 is stored; a presented token is hashed and
//! compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A fresh token (256 random bits, hex) and its hash (hex SHA-256) to store.
pub fn new_token() -> (String, String) {
    let bytes: [u8; 32] = rand::random();
    let token = hex::encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The hex SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `token` is the one whose hash is `stored_hash` (constant time in the hash).
pub fn token_matches(token: &str, stored_hash: &str) -> bool {
    let presented = hash_token(token);
    presented.as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_their_hash() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 64);
        assert!(token_matches(&token, &hash));
        let (other, _) = new_token();
        assert_ne!(token, other);
        assert!(!token_matches(&other, &hash));
        assert!(!token_matches("", &hash));
    }
}
