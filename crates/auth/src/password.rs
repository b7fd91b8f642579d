//! Password hashing with Argon2id (OWASP's recommended parameters: 19 MiB, 2 passes, 1 lane)
//! and the password policy.
//!
//! Hashing is deliberately slow (tens of milliseconds); callers on the async runtime run it
//! with `spawn_blocking`.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use sightline_model::ValidationError;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted (hashing cost is bounded by input size).
pub const MAX_LENGTH: usize = 1024;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Checks the password policy: length only (NIST SP 800-63B: no composition rules).
pub fn check_policy(password: &str) -> Result<(), ValidationError> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(ValidationError::new(
            "password",
            format!("must be at least {MIN_LENGTH} characters"),
        ));
    }
    if password.len() > MAX_LENGTH {
        return Err(ValidationError::new(
            "password",
            format!("must be at most {MAX_LENGTH} bytes"),
        ));
    }
    Ok(())
}

/// The PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`) of `password` with a fresh salt.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    match argon2().hash_password(password.as_bytes(), &salt) {
        Ok(hash) => hash.to_string(),
        // Only reachable with invalid parameters, which are constants here.
        Err(e) => unreachable!("argon2 with default parameters failed: {e}"),
    }
}

/// Whether `password` matches the PHC string `hash` (false for a malformed hash).
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of nothing anyone knows, verified against when a username does not exist, so a
/// failed login takes as long whether or not the user exists (no enumeration by timing).
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash(&crate::opaque::random_secret(32)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse battery staple");
        let b = hash("correct horse battery staple");
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(verify("correct horse battery staple", &a));
        assert!(!verify("correct horse battery stapl", &a));
        assert!(!verify("x", "not a phc string"));
    }

    #[test]
    fn policy_counts_characters() {
        assert!(check_policy("short").is_err());
        assert!(check_policy("ééééééééééé").is_err());
        assert!(check_policy("éééééééééééé").is_ok());
        assert!(check_policy(&"x".repeat(MAX_LENGTH + 1)).is_err());
    }
}
