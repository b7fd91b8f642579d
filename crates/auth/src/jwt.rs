//! Access tokens: short-lived JWTs sightline signs (HS256) and verifies, plus tokens from an
//! SSO provider (RS256/ES256, keys from files or a JWKS document).
//!
//! Verification refuses before looking at the payload: a header that does not parse
//! (including `alg: none`), an algorithm outside the configured allow-list, a missing or
//! unknown `kid`, and an algorithm other than the one the key was configured for (which
//! closes RS256→HS256 key confusion: a public key is never used as an HMAC secret). Then
//! the signature, `exp`/`nbf` (with leeway), `iss` and `aud` are checked.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sightline_model::{Role, Secret, User};

use crate::config::{JwtConfig, read_secret_file};
use crate::{AuthError, opaque};

/// The claims of an access token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The username (`preferred_username` in SSO tokens).
    #[serde(default, alias = "preferred_username")]
    pub name: String,
    /// The user's role. Tokens without one get the lowest role.
    #[serde(default = "default_role")]
    pub role: Role,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expiry (epoch seconds).
    pub exp: u64,
    /// Not before (epoch seconds).
    #[serde(default)]
    pub nbf: u64,
    /// Issued at (epoch seconds).
    #[serde(default)]
    pub iat: u64,
    /// Token id (for revocation on logout).
    #[serde(default)]
    pub jti: String,
}

fn default_role() -> Role {
    Role::Viewer
}

/// A verification key and the one algorithm it may be used with.
struct VerifyKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Signs and verifies access tokens (see the module docs).
pub struct TokenKeys {
    kid: String,
    signing: EncodingKey,
    verify: HashMap<String, VerifyKey>,
    allowed: Vec<Algorithm>,
    config: JwtConfig,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("kid", &self.kid)
            .field("verify_kids", &self.verify.keys().collect::<Vec<_>>())
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

fn parse_algorithm(name: &str) -> Result<Algorithm, AuthError> {
    match name.trim().to_ascii_uppercase().as_str() {
        "HS256" => Ok(Algorithm::HS256),
        "RS256" => Ok(Algorithm::RS256),
        "ES256" => Ok(Algorithm::ES256),
        other => Err(AuthError::Config(format!(
            "JWT algorithm '{other}' is not supported: use HS256, RS256 or ES256"
        ))),
    }
}

/// The signing secret: configured, from a file, or generated once in `data_dir`.
fn signing_secret(config: &JwtConfig, data_dir: Option<&Path>) -> Result<Secret, AuthError> {
    if !config.secret.is_empty() {
        return Ok(config.secret.clone());
    }
    if let Some(file) = &config.secret_file {
        return read_secret_file(file);
    }
    let Some(dir) = data_dir else {
        return Err(AuthError::Config(
            "no JWT signing secret: set auth.jwt.secret or auth.jwt.secret_file".into(),
        ));
    };
    let path = dir.join("auth").join("jwt.key");
    if path.exists() {
        return read_secret_file(&path);
    }
    let secret = opaque::random_secret(48);
    write_private(&path, &secret)?;
    Ok(Secret::new(secret))
}

/// Writes a file only the owner can read, creating its directory.
fn write_private(path: &Path, contents: &str) -> Result<(), AuthError> {
    let fail = |e: std::io::Error| AuthError::Config(format!("writing {}: {e}", path.display()));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(fail)?;
    std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(fail)?;
    file.sync_all().map_err(fail)
}

impl TokenKeys {
    /// Loads the keys `config` names; the signing key may be generated in `data_dir`. The
    /// JWKS document, when configured, is fetched here.
    pub async fn load(config: &JwtConfig, data_dir: Option<&Path>) -> Result<Self, AuthError> {
        let allowed = config
            .algorithms
            .iter()
            .map(|a| parse_algorithm(a))
            .collect::<Result<Vec<_>, _>>()?;
        let secret = signing_secret(config, data_dir)?;
        if secret.expose().len() < 32 {
            return Err(AuthError::Config(
                "the JWT signing secret must be at least 32 bytes".into(),
            ));
        }
        let kid = if config.kid.is_empty() {
            format!("hs-{}", &opaque::digest(secret.expose())[..12])
        } else {
            config.kid.clone()
        };
        let mut verify = HashMap::new();
        verify.insert(
            kid.clone(),
            VerifyKey {
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
            },
        );
        for extra in &config.verify_keys {
            let algorithm = parse_algorithm(&extra.algorithm)?;
            let key = Self::file_key(extra, algorithm)?;
            verify.insert(extra.kid.clone(), VerifyKey { algorithm, key });
        }
        if let Some(url) = &config.jwks_url {
            for (kid, key) in fetch_jwks(url).await? {
                verify.insert(kid, key);
            }
        }
        Ok(Self {
            kid,
            signing: EncodingKey::from_secret(secret.expose().as_bytes()),
            verify,
            allowed,
            config: config.clone(),
        })
    }

    fn file_key(
        extra: &crate::config::VerifyKeyConfig,
        algorithm: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        let bad = |e: &dyn std::fmt::Display| {
            AuthError::Config(format!("verify key '{}': {e}", extra.kid))
        };
        let from_file = || -> Result<Secret, AuthError> {
            let file = extra
                .file
                .as_deref()
                .ok_or_else(|| bad(&"needs `file` (or `secret` for HS256)"))?;
            read_secret_file(file)
        };
        match algorithm {
            Algorithm::HS256 => {
                let secret = if extra.secret.is_empty() {
                    from_file()?
                } else {
                    extra.secret.clone()
                };
                Ok(DecodingKey::from_secret(secret.expose().as_bytes()))
            }
            Algorithm::RS256 => {
                DecodingKey::from_rsa_pem(from_file()?.expose().as_bytes()).map_err(|e| bad(&e))
            }
            _ => DecodingKey::from_ec_pem(from_file()?.expose().as_bytes()).map_err(|e| bad(&e)),
        }
    }

    /// The `kid` new tokens carry.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Lifetime of an access token.
    pub fn ttl(&self) -> Duration {
        self.config.access_token_ttl
    }

    /// A signed access token for `user`, valid from `now_secs` for the configured lifetime.
    pub fn issue(&self, user: &User, now_secs: u64) -> Result<(String, Claims), AuthError> {
        let claims = Claims {
            sub: user.id.clone(),
            name: user.username.clone(),
            role: user.role,
            iss: self.config.issuer.clone(),
            aud: self.config.audience.clone(),
            exp: now_secs + self.config.access_token_ttl.as_secs().max(1),
            nbf: now_secs,
            iat: now_secs,
            jti: uuid::Uuid::new_v4().simple().to_string(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|e| AuthError::Config(format!("signing a token: {e}")))?;
        Ok((token, claims))
    }

    /// Verifies a token (see the module docs) and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| AuthError::unauthenticated(format!("malformed token: {e}")))?;
        if !self.allowed.contains(&header.alg) {
            return Err(AuthError::unauthenticated(format!(
                "algorithm {:?} is not allowed",
                header.alg
            )));
        }
        let key = match &header.kid {
            Some(kid) => self
                .verify
                .get(kid)
                .ok_or_else(|| AuthError::unauthenticated(format!("unknown kid '{kid}'")))?,
            None if self.verify.len() == 1 => self
                .verify
                .values()
                .next()
                .ok_or_else(|| AuthError::unauthenticated("no verification key"))?,
            None => return Err(AuthError::unauthenticated("token has no kid")),
        };
        if key.algorithm != header.alg {
            return Err(AuthError::unauthenticated(format!(
                "algorithm {:?} does not match the key's {:?}",
                header.alg, key.algorithm
            )));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = self.config.leeway_secs;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::unauthenticated(format!("invalid token: {e}")))
    }
}

/// Fetches a JWKS document and keeps the RS256/ES256 keys that carry a `kid`.
async fn fetch_jwks(url: &str) -> Result<Vec<(String, VerifyKey)>, AuthError> {
    let fail = |e: &dyn std::fmt::Display| AuthError::Config(format!("JWKS {url}: {e}"));
    let set: JwkSet = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| fail(&e))?
        .get(url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| fail(&e))?
        .json()
        .await
        .map_err(|e| fail(&e))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            AlgorithmParameters::EllipticCurve(_) => Algorithm::ES256,
            _ => continue,
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| fail(&e))?;
        keys.push((kid, VerifyKey { algorithm, key }));
    }
    Ok(keys)
}
