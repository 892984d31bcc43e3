//! Session tokens: an HS256 JWT in `Authorization: Bearer <token>`, signed by whoever opens the
//! browser session, with the same secret this function reads from Secrets Manager. A token
//! signed with the secret's current or previous value passes, so rotating the secret does not
//! log out sessions whose tokens were signed just before (`keys.rs` re-reads the secret when a
//! token is signed with a key it does not hold yet).
//!
//! Claims: `sub` = the session id the token was issued for, `aud` = [`AUDIENCE`], `exp` (seconds
//! since the epoch). A missing, malformed, wrongly signed, expired or wrong-audience token
//! answers 401; a valid token for another session than the body's `client.sessionId` answers 403.

// Every number here may come from a client: arithmetic is checked or saturating, and clippy
// holds new code to that.
#![deny(clippy::arithmetic_side_effects)]

use std::future::Future;

use eventfabric_core::token::{self, Hs256Verifier};
use jsonwebtoken::errors::ErrorKind;
use serde::{Deserialize, Serialize};

use crate::request::RequestError;

/// The `aud` every forward token must carry, so tokens minted for other services do not work
/// here.
pub const AUDIENCE: &str = "eventfabric:events.forward";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The session id.
    pub sub: String,
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// Checks session tokens against the signing secret's current value and, during a rotation, its
/// previous one.
pub struct TokenVerifier(Hs256Verifier);

impl TokenVerifier {
    /// One key: the secret's current value.
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        Self::with_previous(secret, None)
    }

    /// The current value and, when the secret has one, its previous value.
    pub fn with_previous(current: &[u8], previous: Option<&[u8]>) -> Result<Self, String> {
        Hs256Verifier::new(AUDIENCE, &["exp", "sub", "aud"], current, previous)
            .map(Self)
            .map_err(|e| e.replace("token secret", "session token secret"))
    }

    /// The claims of the `Authorization` header's bearer token, or a 401.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        now_ms: i64,
    ) -> Result<SessionClaims, RequestError> {
        self.check(authorization, now_ms).map_err(|(e, _)| e)
    }

    /// [`Self::verify`], saying with a 401 whether the token was well formed but signed with
    /// none of the keys held: the one case where reading the secret again can help.
    pub(crate) fn check(
        &self,
        authorization: Option<&str>,
        now_ms: i64,
    ) -> Result<SessionClaims, (RequestError, bool)> {
        let token = bearer(authorization).map_err(|e| (e, false))?;
        let claims = self.0.decode::<SessionClaims>(token).map_err(|e| {
            let unknown_key = *e.kind() == ErrorKind::InvalidSignature;
            (
                unauthorized(format!("invalid session token: {e}")),
                unknown_key,
            )
        })?;
        if token::expired(claims.exp, now_ms) {
            return Err((unauthorized("the session token has expired"), false));
        }
        Ok(claims)
    }
}

/// Checks a request's `Authorization` header: a [`TokenVerifier`] with fixed keys, or a
/// [`crate::KeyRing`] that follows rotations of the signing secret.
pub trait Authenticator: Send + Sync {
    fn authenticate(
        &self,
        authorization: Option<&str>,
        now_ms: i64,
    ) -> impl Future<Output = Result<SessionClaims, RequestError>> + Send;
}

impl Authenticator for TokenVerifier {
    async fn authenticate(
        &self,
        authorization: Option<&str>,
        now_ms: i64,
    ) -> Result<SessionClaims, RequestError> {
        self.verify(authorization, now_ms)
    }
}

/// The token of an `Authorization: Bearer <token>` header, or a 401.
fn bearer(authorization: Option<&str>) -> Result<&str, RequestError> {
    let header = authorization.ok_or_else(|| {
        unauthorized("an Authorization: Bearer <session token> header is required")
    })?;
    token::bearer(header)
        .ok_or_else(|| unauthorized("the Authorization header must be 'Bearer <session token>'"))
}

/// 403 unless the token was issued for the session the body speaks for.
pub fn authorize_session(claims: &SessionClaims, session_id: &str) -> Result<(), RequestError> {
    if claims.sub == session_id {
        Ok(())
    } else {
        Err(RequestError {
            status: 403,
            code: "forbidden",
            message: format!(
                "the session token was issued for another session than client.sessionId {}",
                crate::request::echo(session_id)
            ),
        })
    }
}

fn unauthorized(message: impl Into<String>) -> RequestError {
    RequestError {
        status: 401,
        code: "unauthorized",
        message: message.into(),
    }
}

/// Signs a session token: what the session issuer does, and what local runs and tests use.
pub fn mint(secret: &[u8], session_id: &str, exp: i64) -> Result<String, String> {
    sign(
        secret,
        &SessionClaims {
            sub: session_id.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp,
        },
    )
}

/// An HS256 JWT of `claims` (the shared signer).
pub(crate) fn sign(secret: &[u8], claims: &impl Serialize) -> Result<String, String> {
    token::sign(secret, claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW_MS: i64 = 1_767_225_600_000;
    const NOW_S: i64 = NOW_MS / 1000;

    fn verifier() -> TokenVerifier {
        TokenVerifier::new(SECRET).unwrap()
    }

    fn status(r: Result<SessionClaims, RequestError>) -> u16 {
        r.map(|_| 200).unwrap_or_else(|e| e.status)
    }

    #[test]
    fn accepts_a_token_signed_with_the_secret() {
        let token = mint(SECRET, "sess-1", NOW_S + 600).unwrap();
        let claims = verifier()
            .verify(Some(&format!("Bearer {token}")), NOW_MS)
            .unwrap();
        assert_eq!(claims.sub, "sess-1");
        assert!(authorize_session(&claims, "sess-1").is_ok());
        assert_eq!(
            authorize_session(&claims, "sess-2").unwrap_err().status,
            403
        );
    }

    #[test]
    fn refuses_missing_malformed_forged_expired_and_foreign_tokens() {
        let v = verifier();
        assert_eq!(status(v.verify(None, NOW_MS)), 401);
        assert_eq!(status(v.verify(Some("Basic abc"), NOW_MS)), 401);
        assert_eq!(status(v.verify(Some("Bearer not-a-jwt"), NOW_MS)), 401);
        let forged = mint(b"another-secret-of-32-bytes-length!", "sess-1", NOW_S + 600).unwrap();
        assert_eq!(
            status(v.verify(Some(&format!("Bearer {forged}")), NOW_MS)),
            401
        );
        let expired = mint(SECRET, "sess-1", NOW_S - 60).unwrap();
        let err = v
            .verify(Some(&format!("Bearer {expired}")), NOW_MS)
            .unwrap_err();
        assert!(err.message.contains("expired"), "{err}");
        // Within the leeway it still passes.
        let just = mint(SECRET, "sess-1", NOW_S - 10).unwrap();
        assert_eq!(
            status(v.verify(Some(&format!("Bearer {just}")), NOW_MS)),
            200
        );
        let foreign = sign(
            SECRET,
            &SessionClaims {
                sub: "sess-1".into(),
                aud: "another-service".into(),
                exp: NOW_S + 600,
            },
        )
        .unwrap();
        assert_eq!(
            status(v.verify(Some(&format!("Bearer {foreign}")), NOW_MS)),
            401
        );
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let token = mint(SECRET, "sess-1", NOW_S + 600).unwrap();
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let header = format!("{scheme} {token}");
            assert_eq!(
                status(verifier().verify(Some(&header), NOW_MS)),
                200,
                "{scheme}"
            );
        }
        assert_eq!(
            status(verifier().verify(Some(&format!("Bearer   {token} ")), NOW_MS)),
            200
        );
        for header in [
            "Bearer",
            "Bearer ",
            "Bearerx abc",
            &format!("Token {token}"),
        ] {
            assert_eq!(
                status(verifier().verify(Some(header), NOW_MS)),
                401,
                "{header}"
            );
        }
    }

    /// A token signed with `SECRET` whose claims are the given JSON text.
    fn signed(claims: &str) -> String {
        use base64::Engine;
        use hmac::{KeyInit, Mac};
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let head = b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = b64.encode(claims.as_bytes());
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET).unwrap();
        mac.update(format!("{head}.{body}").as_bytes());
        let signature = b64.encode(mac.finalize().into_bytes());
        format!("Bearer {head}.{body}.{signature}")
    }

    #[test]
    fn expiry_at_the_integer_extremes_is_judged_not_wrapped() {
        let with_exp =
            |exp: &str| signed(&format!(r#"{{"sub":"s","aud":"{AUDIENCE}","exp":{exp}}}"#));
        // The largest expiry is "never": accepted, at any clock.
        let never = with_exp(&i64::MAX.to_string());
        for now in [NOW_MS, 0, i64::MAX, i64::MIN] {
            assert_eq!(
                status(verifier().verify(Some(&never), now)),
                200,
                "now {now}"
            );
        }
        // The smallest is long past (jsonwebtoken reads a negative `exp` as a missing one).
        let ancient = with_exp(&i64::MIN.to_string());
        assert_eq!(status(verifier().verify(Some(&ancient), NOW_MS)), 401);
        let err = verifier().verify(Some(&with_exp("0")), NOW_MS).unwrap_err();
        assert!(err.message.contains("expired"), "{err}");
        assert_eq!(
            status(verifier().verify(Some(&with_exp("-1")), NOW_MS)),
            401
        );
        // Not an i64 (past its range, fractional, a string): a malformed token, never a panic.
        for exp in [&u64::MAX.to_string(), "1e300", "1.5", r#""soon""#, "null"] {
            let err = verifier().verify(Some(&with_exp(exp)), NOW_MS).unwrap_err();
            assert_eq!(err.status, 401, "exp {exp}");
            assert!(err.message.len() < 300, "{err}");
        }
    }

    #[test]
    fn refuses_an_unsigned_token() {
        // alg=none with the right claims: must not pass.
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let body = b64.encode(
            format!(
                r#"{{"sub":"sess-1","aud":"{AUDIENCE}","exp":{}}}"#,
                NOW_S + 600
            )
            .as_bytes(),
        );
        let token = format!("Bearer {header}.{body}.");
        assert_eq!(status(verifier().verify(Some(&token), NOW_MS)), 401);
    }

    #[test]
    fn refuses_short_secrets() {
        assert!(TokenVerifier::new(b"short").is_err());
        let err = TokenVerifier::with_previous(SECRET, Some(b"short"))
            .err()
            .unwrap();
        assert!(err.contains("previous value is 5 bytes"), "{err}");
    }

    const NEXT: &[u8] = b"fedcba9876543210fedcba9876543210";

    #[test]
    fn during_a_rotation_tokens_of_the_current_and_the_previous_value_pass() {
        let rotated = TokenVerifier::with_previous(NEXT, Some(SECRET)).unwrap();
        for secret in [SECRET, NEXT] {
            let token = format!("Bearer {}", mint(secret, "sess-1", NOW_S + 600).unwrap());
            assert_eq!(status(rotated.verify(Some(&token), NOW_MS)), 200);
        }
        // The value before the previous one no longer passes.
        let older = b"0000000000111111111122222222223333";
        let token = format!("Bearer {}", mint(older, "sess-1", NOW_S + 600).unwrap());
        let err = rotated.verify(Some(&token), NOW_MS).unwrap_err();
        assert_eq!(err.status, 401);
        assert!(err.message.contains("InvalidSignature"), "{err}");
        assert!(rotated.check(Some(&token), NOW_MS).unwrap_err().1);
    }

    #[test]
    fn only_a_well_formed_token_with_a_foreign_signature_asks_for_fresh_keys() {
        let v = verifier();
        // Signed with a key not held yet (the secret was rotated since start-up).
        let next = format!("Bearer {}", mint(NEXT, "sess-1", NOW_S + 600).unwrap());
        assert!(v.check(Some(&next), NOW_MS).unwrap_err().1);
        // Everything else fails or passes on its own; fresh keys would not change that.
        let expired = format!("Bearer {}", mint(SECRET, "sess-1", NOW_S - 600).unwrap());
        for header in [
            None,
            Some("Basic abc"),
            Some("Bearer not-a-jwt"),
            Some(expired.as_str()),
        ] {
            assert!(!v.check(header, NOW_MS).unwrap_err().1, "{header:?}");
        }
        let valid = format!("Bearer {}", mint(SECRET, "sess-1", NOW_S + 600).unwrap());
        assert!(v.check(Some(&valid), NOW_MS).is_ok());
    }
}
