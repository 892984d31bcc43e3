//! The `$connect` authorizer: a REQUEST Lambda authorizer that allows the connection when it
//! carries a valid HS256 token for this API's audience, and hands the token's `sub` (the user,
//! or the agent) to the routes as the authorizer context's `principal`.
//!
//! The token comes in `Authorization: Bearer <token>` (servers, agents) or, since browsers
//! cannot set headers on a WebSocket, the `token` query parameter. Either way the principal is
//! what the token's signature covers: a query string can carry a token, never an identity.
//! API Gateway's access log format (CDK: `WebSocketApi` stage) leaves the query string out.
//!
//! The token's `scope` claim (space-separated, as OAuth's; at most 1,024 visible ASCII
//! characters and spaces) reaches the routes as the context's `scope`: what a connection may
//! subscribe to (the realtime dashboards: `dashboard:<entity type>`). No claim, no scopes.
//!
//! A refused connection gets a `Deny` policy (the client sees 403) and a log line with the
//! reason; the reason never goes back to the client.

use aws_lambda_events::apigw::{
    ApiGatewayCustomAuthorizerPolicy, ApiGatewayCustomAuthorizerRequestTypeRequest,
    ApiGatewayCustomAuthorizerResponse,
};
use aws_lambda_events::iam::{IamPolicyEffect, IamPolicyStatement};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use eventfabric_core::token::keys::KeySource;
use eventfabric_core::token::{self, Hs256Verifier};
use serde::Deserialize;
use serde_json::json;

/// The authorizer context key holding the principal id; routes read it from
/// `requestContext.authorizer.principal`.
pub const PRINCIPAL_CONTEXT_KEY: &str = "principal";
/// The authorizer context key holding the token's scopes (space-separated).
pub const SCOPE_CONTEXT_KEY: &str = "scope";
/// The longest `scope` claim taken (API Gateway's context values are strings; a route reads it
/// on every message).
pub const MAX_SCOPE_BYTES: usize = 1024;

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
    #[serde(default)]
    scope: Option<String>,
}

/// Who a token names and what it grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub principal: String,
    /// The `scope` claim, or empty.
    pub scope: String,
}

impl Identity {
    /// Whether the scopes include `scope` exactly.
    pub fn has_scope(scopes: &str, scope: &str) -> bool {
        scopes.split(' ').any(|s| s == scope)
    }
}

/// Why a connection was refused (logged, never sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("no token: neither an Authorization: Bearer header nor a token query parameter")]
    NoToken,
    #[error("the Authorization header is not 'Bearer <token>'")]
    BadScheme,
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Well formed, but signed with none of the held keys: forged, or signed with a key
    /// rotated in since the keys were read ([`RotatingAuthorizer`] reads them again).
    #[error("the token's signature matches no held key")]
    UnknownKey,
    #[error("the token has expired")]
    Expired,
    #[error("the token's subject is not 1–128 visible ASCII characters")]
    BadSubject,
    #[error("the token's scope is not at most 1,024 visible ASCII characters and spaces")]
    BadScope,
}

/// Checks `$connect` requests' tokens.
#[derive(Debug)]
pub struct ConnectAuthorizer {
    verifier: Hs256Verifier,
}

impl ConnectAuthorizer {
    /// Tokens for `audience`, signed with the secret's current or previous value.
    pub fn new(audience: &str, current: &[u8], previous: Option<&[u8]>) -> Result<Self, String> {
        Ok(Self {
            verifier: Hs256Verifier::new(audience, &["exp", "sub", "aud"], current, previous)?,
        })
    }

    /// The principal of a request, or why it is refused.
    pub fn principal(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
        now_ms: i64,
    ) -> Result<String, Refusal> {
        self.identity(request, now_ms).map(|i| i.principal)
    }

    /// The principal and scopes of a request, or why it is refused.
    pub fn identity(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
        now_ms: i64,
    ) -> Result<Identity, Refusal> {
        let token = match request.headers.get("authorization") {
            Some(header) => {
                let header = header.to_str().map_err(|_| Refusal::BadScheme)?;
                token::bearer(header).ok_or(Refusal::BadScheme)?
            }
            None => request
                .query_string_parameters
                .first("token")
                .filter(|t| !t.is_empty())
                .ok_or(Refusal::NoToken)?,
        };
        let claims: Claims = self.verifier.decode(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => Refusal::UnknownKey,
            _ => Refusal::Invalid(e.to_string()),
        })?;
        if token::expired(claims.exp, now_ms) {
            return Err(Refusal::Expired);
        }
        if !crate::valid_principal(&claims.sub) {
            return Err(Refusal::BadSubject);
        }
        let scope = claims.scope.unwrap_or_default();
        if scope.len() > MAX_SCOPE_BYTES
            || !scope.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        {
            return Err(Refusal::BadScope);
        }
        Ok(Identity {
            principal: claims.sub,
            scope,
        })
    }

    /// The authorizer's answer: `Allow` on the request's method ARN with the principal in the
    /// context, or `Deny`.
    pub fn authorize(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
        now_ms: i64,
    ) -> ApiGatewayCustomAuthorizerResponse {
        answer(
            request.method_arn.clone().unwrap_or_default(),
            self.identity(request, now_ms),
        )
    }
}

/// `Allow` on the method ARN with the principal in the context, or `Deny`.
fn answer(
    method_arn: String,
    identity: Result<Identity, Refusal>,
) -> ApiGatewayCustomAuthorizerResponse {
    {
        match identity {
            Ok(Identity { principal, scope }) => {
                tracing::info!(principal = %principal, "connection allowed");
                policy(
                    &principal,
                    IamPolicyEffect::Allow,
                    method_arn,
                    json!({ PRINCIPAL_CONTEXT_KEY: principal, SCOPE_CONTEXT_KEY: scope }),
                )
            }
            Err(refusal) => {
                tracing::warn!(reason = %refusal, "connection refused");
                policy("anonymous", IamPolicyEffect::Deny, method_arn, json!({}))
            }
        }
    }
}

/// The authorizer on keys read from a [`KeySource`], following a rotation: a token whose
/// signature matches none of the held keys makes it read the keys again, at most once per
/// [`RotatingAuthorizer::MIN_REFRESH_MS`] (a flood of forged tokens is not a flood of
/// Secrets Manager calls), then check once more. A failed read keeps the held keys.
pub struct RotatingAuthorizer<K> {
    source: K,
    audience: String,
    held: RwLock<Arc<ConnectAuthorizer>>,
    last_read_ms: AtomicI64,
}

impl<K: KeySource> RotatingAuthorizer<K> {
    pub const MIN_REFRESH_MS: i64 = 60_000;

    /// Reads the keys; fails when they cannot be read or are too short.
    pub async fn load(source: K, audience: &str, now_ms: i64) -> Result<Self, String> {
        let keys = source.read().await?;
        let held = ConnectAuthorizer::new(audience, &keys.current, keys.previous.as_deref())?;
        Ok(Self {
            source,
            audience: audience.to_owned(),
            held: RwLock::new(Arc::new(held)),
            last_read_ms: AtomicI64::new(now_ms),
        })
    }

    pub fn source(&self) -> &K {
        &self.source
    }

    async fn refresh(&self, now_ms: i64) -> Option<Arc<ConnectAuthorizer>> {
        let last = self.last_read_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < Self::MIN_REFRESH_MS
            || self
                .last_read_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        let fresh = self.source.read().await.and_then(|keys| {
            ConnectAuthorizer::new(&self.audience, &keys.current, keys.previous.as_deref())
        });
        match fresh {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *self.held.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
                tracing::info!("token keys read again: a token was signed with a key not held");
                Some(fresh)
            }
            Err(error) => {
                tracing::warn!(%error, "cannot read the token keys again; keeping the held ones");
                None
            }
        }
    }

    /// The principal of a request, or why it is refused.
    pub async fn principal(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
        now_ms: i64,
    ) -> Result<String, Refusal> {
        self.identity(request, now_ms).await.map(|i| i.principal)
    }

    /// The principal and scopes of a request ([`ConnectAuthorizer::identity`]).
    pub async fn identity(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
        now_ms: i64,
    ) -> Result<Identity, Refusal> {
        let held = self.held.read().unwrap_or_else(|e| e.into_inner()).clone();
        match held.identity(request, now_ms) {
            Err(Refusal::UnknownKey) => match self.refresh(now_ms).await {
                Some(fresh) => fresh.identity(request, now_ms),
                None => Err(Refusal::UnknownKey),
            },
            other => other,
        }
    }

    /// The authorizer's answer ([`ConnectAuthorizer::authorize`]).
    pub async fn authorize(
        &self,
        request: &ApiGatewayCustomAuthorizerRequestTypeRequest,
        now_ms: i64,
    ) -> ApiGatewayCustomAuthorizerResponse {
        answer(
            request.method_arn.clone().unwrap_or_default(),
            self.identity(request, now_ms).await,
        )
    }
}

fn policy(
    principal: &str,
    effect: IamPolicyEffect,
    method_arn: String,
    context: serde_json::Value,
) -> ApiGatewayCustomAuthorizerResponse {
    let mut statement = IamPolicyStatement::default();
    statement.action = vec!["execute-api:Invoke".into()];
    statement.effect = effect;
    statement.resource = vec![method_arn];
    let mut document = ApiGatewayCustomAuthorizerPolicy::default();
    document.version = Some("2012-10-17".into());
    document.statement = vec![statement];
    let mut response = ApiGatewayCustomAuthorizerResponse::default();
    response.principal_id = Some(principal.to_owned());
    response.policy_document = document;
    response.context = context;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    const AUDIENCE: &str = "eventfabric:realtime.connect";
    const NOW_MS: i64 = 1_767_225_600_000;

    #[derive(Serialize)]
    struct TestClaims<'a> {
        sub: &'a str,
        aud: &'a str,
        exp: i64,
    }

    fn token(sub: &str, aud: &str, exp: i64) -> String {
        token::sign(SECRET, &TestClaims { sub, aud, exp }).unwrap()
    }

    fn request(
        header: Option<&str>,
        query: Option<&str>,
    ) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
        let mut value = serde_json::from_str::<serde_json::Value>(include_str!(
            "../fixtures/authorizer-connect.json"
        ))
        .unwrap();
        if let Some(h) = header {
            value["headers"]["Authorization"] = h.into();
        }
        if let Some(q) = query {
            value["queryStringParameters"]["token"] = q.into();
        }
        serde_json::from_value(value).unwrap()
    }

    fn authorizer() -> ConnectAuthorizer {
        ConnectAuthorizer::new(AUDIENCE, SECRET, None).unwrap()
    }

    fn effect(r: &ApiGatewayCustomAuthorizerResponse) -> IamPolicyEffect {
        r.policy_document.statement[0].effect.clone()
    }

    #[test]
    fn a_valid_token_allows_with_its_subject_as_principal() {
        let t = token("user-1", AUDIENCE, NOW_MS / 1000 + 600);
        for req in [
            request(Some(&format!("Bearer {t}")), None),
            request(None, Some(&t)),
        ] {
            let r = authorizer().authorize(&req, NOW_MS);
            assert_eq!(effect(&r), IamPolicyEffect::Allow);
            assert_eq!(r.principal_id.as_deref(), Some("user-1"));
            assert_eq!(r.context[PRINCIPAL_CONTEXT_KEY], "user-1");
            assert_eq!(
                r.policy_document.statement[0].resource,
                ["arn:aws:execute-api:eu-west-1:123456789012:abcdef123/dev/$connect"]
            );
        }
    }

    #[test]
    fn the_scope_claim_reaches_the_context_and_a_bad_one_is_refused() {
        #[derive(Serialize)]
        struct Scoped<'a> {
            sub: &'a str,
            aud: &'a str,
            exp: i64,
            scope: &'a str,
        }
        let a = authorizer();
        let exp = NOW_MS / 1000 + 600;
        let scoped = token::sign(
            SECRET,
            &Scoped {
                sub: "user-1",
                aud: AUDIENCE,
                exp,
                scope: "dashboard:volume dashboard:pool",
            },
        )
        .unwrap();
        let r = a.authorize(&request(None, Some(&scoped)), NOW_MS);
        assert_eq!(
            r.context[SCOPE_CONTEXT_KEY],
            "dashboard:volume dashboard:pool"
        );
        assert!(Identity::has_scope(
            "dashboard:volume dashboard:pool",
            "dashboard:pool"
        ));
        assert!(!Identity::has_scope("dashboard:volume", "dashboard:vol"));
        let unscoped = token("user-1", AUDIENCE, exp);
        let r = a.authorize(&request(None, Some(&unscoped)), NOW_MS);
        assert_eq!(r.context[SCOPE_CONTEXT_KEY], "", "no claim, no scopes");
        let long = "x".repeat(MAX_SCOPE_BYTES + 1);
        for bad in [long.as_str(), "dashboard:volume\ninjected"] {
            let t = token::sign(
                SECRET,
                &Scoped {
                    sub: "user-1",
                    aud: AUDIENCE,
                    exp,
                    scope: bad,
                },
            )
            .unwrap();
            assert_eq!(
                a.identity(&request(None, Some(&t)), NOW_MS),
                Err(Refusal::BadScope)
            );
        }
    }

    #[test]
    fn expired_foreign_tampered_and_missing_tokens_are_denied() {
        let a = authorizer();
        let expired = token("user-1", AUDIENCE, NOW_MS / 1000 - 60);
        assert_eq!(
            a.principal(&request(None, Some(&expired)), NOW_MS),
            Err(Refusal::Expired)
        );
        let foreign = token("user-1", "eventfabric:events.forward", NOW_MS / 1000 + 600);
        assert!(matches!(
            a.principal(&request(None, Some(&foreign)), NOW_MS),
            Err(Refusal::Invalid(_))
        ));
        // Tampered: the claims of another user under the first token's signature.
        let good = token("user-1", AUDIENCE, NOW_MS / 1000 + 600);
        let other = token("user-2", AUDIENCE, NOW_MS / 1000 + 600);
        let parts: Vec<&str> = good.split('.').collect();
        let other_claims = other.split('.').nth(1).unwrap();
        let tampered = format!("{}.{}.{}", parts[0], other_claims, parts[2]);
        assert_eq!(
            a.principal(&request(None, Some(&tampered)), NOW_MS),
            Err(Refusal::UnknownKey),
            "a signature over other claims matches no key"
        );
        assert_eq!(
            a.principal(&request(None, None), NOW_MS),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            a.principal(&request(None, Some("")), NOW_MS),
            Err(Refusal::NoToken)
        );
        assert_eq!(
            a.principal(&request(Some(&format!("Basic {good}")), None), NOW_MS),
            Err(Refusal::BadScheme)
        );
        let r = a.authorize(&request(None, Some(&expired)), NOW_MS);
        assert_eq!(effect(&r), IamPolicyEffect::Deny);
        assert_eq!(
            r.context,
            json!({}),
            "a denied connection carries no principal"
        );
    }

    #[test]
    fn a_user_id_in_the_query_string_is_ignored_the_token_decides() {
        let t = token("user-1", AUDIENCE, NOW_MS / 1000 + 600);
        let mut req = request(None, Some(&t));
        req.query_string_parameters = format!("token={t}&userId=admin").parse().unwrap();
        assert_eq!(authorizer().principal(&req, NOW_MS).unwrap(), "user-1");
    }

    #[test]
    fn subjects_past_the_key_limits_are_refused() {
        let a = authorizer();
        for sub in [
            String::new(),
            "x".repeat(129),
            "a\u{1b}b".into(),
            "a b".into(),
        ] {
            let t = token(&sub, AUDIENCE, NOW_MS / 1000 + 600);
            assert_eq!(
                a.principal(&request(None, Some(&t)), NOW_MS),
                Err(Refusal::BadSubject),
                "{sub:?}"
            );
        }
        let t = token(&"x".repeat(128), AUDIENCE, NOW_MS / 1000 + 600);
        assert!(a.principal(&request(None, Some(&t)), NOW_MS).is_ok());
    }

    #[tokio::test]
    async fn a_rotation_is_followed_and_forged_tokens_read_at_most_once_a_minute() {
        use eventfabric_core::token::keys::MemoryKeys;
        const NEXT: &[u8] = b"fedcba9876543210fedcba9876543210";
        const FORGED: &[u8] = b"ffffffffffffffff0000000000000000";
        let signed = |secret: &[u8]| {
            let t = token::sign(
                secret,
                &TestClaims {
                    sub: "user-1",
                    aud: AUDIENCE,
                    exp: NOW_MS / 1000 + 3600,
                },
            )
            .unwrap();
            request(None, Some(&t))
        };
        let a = RotatingAuthorizer::load(MemoryKeys::new(SECRET), AUDIENCE, NOW_MS)
            .await
            .unwrap();
        a.source().rotate(NEXT);
        // Within a minute of the last read, a token of the new key is refused without a read.
        assert_eq!(
            a.principal(&signed(NEXT), NOW_MS + 30_000).await,
            Err(Refusal::UnknownKey)
        );
        assert_eq!(a.source().reads(), 1);
        // After it: read again, then both the new and the previous key pass.
        assert!(a.principal(&signed(NEXT), NOW_MS + 61_000).await.is_ok());
        assert!(a.principal(&signed(SECRET), NOW_MS + 62_000).await.is_ok());
        assert_eq!(a.source().reads(), 2);
        // Forged tokens: at most one read a minute, and refused.
        for t in [63_000, 64_000, 100_000] {
            assert_eq!(
                a.principal(&signed(FORGED), NOW_MS + t).await,
                Err(Refusal::UnknownKey)
            );
        }
        assert_eq!(a.source().reads(), 2);
        assert!(
            a.principal(&signed(FORGED), NOW_MS + 130_000)
                .await
                .is_err()
        );
        assert_eq!(a.source().reads(), 3);
        // A failed read keeps the held keys.
        a.source().break_reads();
        let r = a.authorize(&signed(NEXT), NOW_MS + 300_000).await;
        assert_eq!(effect(&r), IamPolicyEffect::Allow);
    }
}
