//! Session tokens: an HS256 JWT in `Authorization: Bearer <token>`, signed by whoever opens the
//! browser session, with the same secret this function reads from Secrets Manager at start-up.
//!
//! Claims: `sub` = the session id the token was issued for, `aud` = [`AUDIENCE`], `exp` (seconds
//! since the epoch). A missing, malformed, wrongly signed, expired or wrong-audience token
//! answers 401; a valid token for another session than the body's `client.sessionId` answers 403.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::request::RequestError;

/// The `aud` every forward token must carry, so tokens minted for other services do not work
/// here.
pub const AUDIENCE: &str = "eventfabric:events.forward";

/// Clock difference tolerated on `exp`, in seconds.
const LEEWAY_SECONDS: i64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    /// The session id.
    pub sub: String,
    pub aud: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

/// Checks session tokens against one HMAC key (the signing secret's bytes).
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    /// Refuses keys shorter than 32 bytes: HS256 with a short key is brute-forceable.
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err(format!(
                "the session token secret is {} bytes; at least 32 are required",
                secret.len()
            ));
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        // Expiry is checked against the request's clock in `verify`, so the logic stays
        // testable with a fixed time.
        validation.validate_exp = false;
        Ok(Self {
            key: DecodingKey::from_secret(secret),
            validation,
        })
    }

    /// The claims of the `Authorization` header's bearer token, or a 401.
    pub fn verify(
        &self,
        authorization: Option<&str>,
        now_ms: i64,
    ) -> Result<SessionClaims, RequestError> {
        let header = authorization.ok_or_else(|| {
            unauthorized("an Authorization: Bearer <session token> header is required")
        })?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                unauthorized("the Authorization header must be 'Bearer <session token>'")
            })?;
        let claims = jsonwebtoken::decode::<SessionClaims>(token, &self.key, &self.validation)
            .map_err(|e| unauthorized(format!("invalid session token: {e}")))?
            .claims;
        if claims.exp + LEEWAY_SECONDS < now_ms.div_euclid(1000) {
            return Err(unauthorized("the session token has expired"));
        }
        Ok(claims)
    }
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
                "the session token was issued for another session than client.sessionId '{session_id}'"
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
    let claims = SessionClaims {
        sub: session_id.to_owned(),
        aud: AUDIENCE.to_owned(),
        exp,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| format!("cannot sign the session token: {e}"))
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
        let foreign = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &SessionClaims {
                sub: "sess-1".into(),
                aud: "another-service".into(),
                exp: NOW_S + 600,
            },
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        assert_eq!(
            status(v.verify(Some(&format!("Bearer {foreign}")), NOW_MS)),
            401
        );
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
    }
}
