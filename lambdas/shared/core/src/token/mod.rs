//! HS256 bearer tokens, shared by every function that checks one (the forward API's session
//! tokens, the WebSocket authorizer's user and agent tokens): a verifier holding the signing
//! secret's current and, during a rotation, previous value, checking signature, audience and
//! required claims; the issuer's signing; the `Authorization: Bearer` parse.
//!
//! Expiry is left to the caller, against the request's clock ([`expired`]), so the logic stays
//! testable with a fixed time.

// Every number here may come from a client: arithmetic is checked or saturating.
#![deny(clippy::arithmetic_side_effects)]

pub mod keys;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::Sha256;

/// Clock difference tolerated on `exp`, in seconds.
pub const LEEWAY_SECONDS: i64 = 30;

/// Shortest signing secret accepted: HS256 with a short key is brute-forceable.
pub const MIN_SECRET_BYTES: usize = 32;

/// Checks HS256 tokens of one audience against a secret's current and previous values.
pub struct Hs256Verifier {
    /// Current first.
    keys: Vec<DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for Hs256Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hs256Verifier")
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

/// Refuses keys shorter than [`MIN_SECRET_BYTES`].
fn check_length(secret: &[u8], which: &str) -> Result<(), String> {
    if secret.len() < MIN_SECRET_BYTES {
        return Err(format!(
            "the token secret's {which} value is {} bytes; at least {MIN_SECRET_BYTES} are required",
            secret.len()
        ));
    }
    Ok(())
}

impl Hs256Verifier {
    /// A verifier of tokens for `audience` that must carry every claim of `required`
    /// (`exp`, `sub`, `aud`…).
    pub fn new(
        audience: &str,
        required: &[&str],
        current: &[u8],
        previous: Option<&[u8]>,
    ) -> Result<Self, String> {
        check_length(current, "current")?;
        // A provider installed before is kept (`Err`): it can only be this one.
        let _ = HS256_ONLY.install_default();
        let mut keys = vec![DecodingKey::from_secret(current)];
        if let Some(previous) = previous {
            check_length(previous, "previous")?;
            keys.push(DecodingKey::from_secret(previous));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(required);
        validation.validate_exp = false;
        Ok(Self { keys, validation })
    }

    /// The token's claims under the first key whose signature matches; the current key's error
    /// when none does (`ErrorKind::InvalidSignature`: the one case where fresh keys can help).
    pub fn decode<C: DeserializeOwned>(&self, token: &str) -> Result<C, Error> {
        let mut first_error = None;
        for key in &self.keys {
            match jsonwebtoken::decode::<C>(token, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) if *e.kind() == ErrorKind::InvalidSignature => {
                    first_error.get_or_insert(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(first_error.unwrap_or_else(|| ErrorKind::InvalidSignature.into()))
    }
}

/// Whether a token with expiry `exp` (seconds) has expired at `now_ms`, with
/// [`LEEWAY_SECONDS`]. Saturating: `exp` is whatever the issuer wrote, up to `i64::MAX`
/// ("never").
pub fn expired(exp: i64, now_ms: i64) -> bool {
    exp.saturating_add(LEEWAY_SECONDS) < now_ms.div_euclid(1000)
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive
/// (RFC 9110 §11.1), followed by one or more spaces. `None` for anything else.
pub fn bearer(header: &str) -> Option<&str> {
    header
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty())
}

/// An HS256 JWT of `claims`: `base64url(header).base64url(claims).base64url(HMAC-SHA256)`
/// (RFC 7515): what an issuer does, and what local runs and tests use. Here rather than in
/// jsonwebtoken because its signer takes keys only through a crypto provider, and the one
/// installed here can only verify HS256 (below).
pub fn sign(secret: &[u8], claims: &impl Serialize) -> Result<String, String> {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims =
        serde_json::to_vec(claims).map_err(|e| format!("cannot encode the claims: {e}"))?;
    let mut token = format!(
        "{}.{}",
        b64.encode(br#"{"typ":"JWT","alg":"HS256"}"#),
        b64.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|e| e.to_string())?;
    mac.update(token.as_bytes());
    token.push('.');
    token.push_str(&b64.encode(mac.finalize().into_bytes()));
    Ok(token)
}

/// jsonwebtoken's crypto, for HS256 verification only, on RustCrypto's HMAC (in the tree
/// already). Its built-in providers each link every algorithm it supports (RSA, ECDSA,
/// EdDSA), code no function here runs: about 1 MB of a binary, a C library (aws-lc) or
/// the `rsa` crate with an open advisory (RUSTSEC-2023-0071).
static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: |_, _| Err(ErrorKind::InvalidAlgorithm.into()),
    verifier_factory: hs256_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

fn hs256_verifier(
    algorithm: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    if *algorithm != Algorithm::HS256 {
        return Err(ErrorKind::InvalidAlgorithm.into());
    }
    let mac = Hmac::<Sha256>::new_from_slice(key.try_get_as_bytes()?)
        .map_err(|_| ErrorKind::InvalidKeyFormat)?;
    Ok(Box::new(HmacVerifier(mac)))
}

struct HmacVerifier(Hmac<Sha256>);

impl jsonwebtoken::signature::Verifier<Vec<u8>> for HmacVerifier {
    fn verify(
        &self,
        message: &[u8],
        signature: &Vec<u8>,
    ) -> Result<(), jsonwebtoken::signature::Error> {
        let mut mac = self.0.clone();
        mac.update(message);
        // Constant-time comparison.
        mac.verify_slice(signature)
            .map_err(|_| jsonwebtoken::signature::Error::new())
    }
}

impl JwtVerifier for HmacVerifier {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        aud: String,
        exp: i64,
    }

    fn claims(aud: &str) -> Claims {
        Claims {
            sub: "u-1".into(),
            aud: aud.into(),
            exp: 2_000_000_000,
        }
    }

    #[test]
    fn signed_tokens_verify_for_their_audience_only() {
        let v = Hs256Verifier::new("a", &["exp", "sub", "aud"], SECRET, None).unwrap();
        let token = sign(SECRET, &claims("a")).unwrap();
        assert_eq!(v.decode::<Claims>(&token).unwrap(), claims("a"));
        let other = sign(SECRET, &claims("b")).unwrap();
        assert_eq!(
            *v.decode::<Claims>(&other).unwrap_err().kind(),
            ErrorKind::InvalidAudience
        );
        let forged = sign(b"another-secret-of-32-bytes-length!", &claims("a")).unwrap();
        assert_eq!(
            *v.decode::<Claims>(&forged).unwrap_err().kind(),
            ErrorKind::InvalidSignature
        );
    }

    #[test]
    fn the_previous_value_still_verifies_during_a_rotation() {
        let next = b"fedcba9876543210fedcba9876543210";
        let v = Hs256Verifier::new("a", &["aud"], next, Some(SECRET)).unwrap();
        assert!(
            v.decode::<Claims>(&sign(SECRET, &claims("a")).unwrap())
                .is_ok()
        );
        assert!(
            v.decode::<Claims>(&sign(next, &claims("a")).unwrap())
                .is_ok()
        );
        assert!(Hs256Verifier::new("a", &["aud"], b"short", None).is_err());
        assert!(Hs256Verifier::new("a", &["aud"], next, Some(b"short")).is_err());
    }

    #[test]
    fn expiry_saturates_and_the_bearer_scheme_is_case_insensitive() {
        assert!(!expired(i64::MAX, i64::MAX));
        assert!(expired(i64::MIN, 0));
        assert!(!expired(100, 100_000 + 29_000));
        assert!(expired(100, 100_000 + 31_000));
        assert_eq!(bearer("bEaReR  abc "), Some("abc"));
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
