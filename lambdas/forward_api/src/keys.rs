//! The session token signing keys, kept current across a rotation of their secret.
//!
//! At start-up the function reads the secret's current value and, if it has one, its previous
//! value (Secrets Manager's `AWSCURRENT` and `AWSPREVIOUS` stages). After a rotation the issuer
//! signs with a value this container has not read yet: a token whose signature matches neither
//! held key makes the ring read the secret again, at most once per [`KeyRing::MIN_REFRESH_MS`],
//! so a flood of forged tokens cannot turn into a flood of Secrets Manager calls. If the read
//! fails the held keys stay in use (the request gets its 401) and the failure is logged and
//! counted.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

pub use eventfabric_core::token::keys::{KeySource, MemoryKeys, SecretsManagerKeys, SigningKeys};

use crate::auth::{Authenticator, SessionClaims, TokenVerifier};
use crate::request::RequestError;

/// The verifier built from the keys last read, and when they were read.
pub struct KeyRing<K: KeySource> {
    source: K,
    verifier: RwLock<Arc<TokenVerifier>>,
    last_read_ms: AtomicI64,
}

impl<K: KeySource> KeyRing<K> {
    /// Keys are read again at most this often (one minute).
    pub const MIN_REFRESH_MS: i64 = 60_000;

    /// Reads the keys; fails when they cannot be read or are too short (start-up must not
    /// go on without them).
    pub async fn load(source: K, now_ms: i64) -> Result<Self, String> {
        let verifier = Self::build(source.read().await?)?;
        Ok(Self {
            source,
            verifier: RwLock::new(Arc::new(verifier)),
            last_read_ms: AtomicI64::new(now_ms),
        })
    }

    fn build(keys: SigningKeys) -> Result<TokenVerifier, String> {
        TokenVerifier::with_previous(&keys.current, keys.previous.as_deref())
    }

    pub fn source(&self) -> &K {
        &self.source
    }

    /// Reads the keys again if the last read is over a minute old (one caller at a time wins
    /// the right to); the verifier to check with afterwards, or `None` when nothing was read.
    async fn refresh(&self, now_ms: i64) -> Option<Arc<TokenVerifier>> {
        let last = self.last_read_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) < Self::MIN_REFRESH_MS
            || self
                .last_read_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return None;
        }
        match self.source.read().await.and_then(Self::build) {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *self.verifier.write().unwrap() = fresh.clone();
                metrics::counter!(crate::metrics::SESSION_KEY_READS, "outcome" => "ok")
                    .increment(1);
                tracing::info!(
                    "session token keys read again: a token was signed with a key not held"
                );
                Some(fresh)
            }
            Err(error) => {
                metrics::counter!(crate::metrics::SESSION_KEY_READS, "outcome" => "error")
                    .increment(1);
                tracing::warn!(%error, "cannot read the session token keys again; keeping the held ones");
                None
            }
        }
    }
}

impl<K: KeySource> Authenticator for KeyRing<K> {
    /// Checks with the held keys; a token signed with none of them (and well formed otherwise)
    /// makes the ring read the keys again, at most once a minute, and check once more.
    async fn authenticate(
        &self,
        authorization: Option<&str>,
        now_ms: i64,
    ) -> Result<SessionClaims, RequestError> {
        let held = self.verifier.read().unwrap().clone();
        match held.check(authorization, now_ms) {
            Ok(claims) => Ok(claims),
            Err((error, true)) => match self.refresh(now_ms).await {
                Some(fresh) => fresh.verify(authorization, now_ms),
                None => Err(error),
            },
            Err((error, false)) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint;

    const FIRST: &[u8] = b"0123456789abcdef0123456789abcdef";
    const SECOND: &[u8] = b"fedcba9876543210fedcba9876543210";
    const THIRD: &[u8] = b"ffffffffffffffff0000000000000000";
    const NOW: i64 = 1_767_225_600_000;

    fn bearer(secret: &[u8]) -> String {
        format!("Bearer {}", mint(secret, "s", NOW / 1000 + 600).unwrap())
    }

    async fn passes<K: KeySource>(ring: &KeyRing<K>, secret: &[u8], at: i64) -> bool {
        ring.authenticate(Some(&bearer(secret)), at).await.is_ok()
    }

    #[tokio::test]
    async fn a_rotation_after_start_up_is_picked_up_by_the_first_token_of_the_new_key() {
        let ring = KeyRing::load(MemoryKeys::new(FIRST), NOW).await.unwrap();
        ring.source().rotate(SECOND);
        // Tokens of the held key need no read.
        assert!(passes(&ring, FIRST, NOW + 120_000).await);
        assert_eq!(ring.source().reads(), 1);
        // The first token of the new key reads the secret again; both keys then pass.
        assert!(passes(&ring, SECOND, NOW + 120_000).await);
        assert_eq!(ring.source().reads(), 2);
        assert!(passes(&ring, FIRST, NOW + 121_000).await);
        assert_eq!(ring.source().reads(), 2);
    }

    #[tokio::test]
    async fn foreign_signatures_read_the_secret_at_most_once_a_minute() {
        let ring = KeyRing::load(MemoryKeys::new(FIRST), NOW).await.unwrap();
        // Within a minute of start-up: no read.
        assert!(!passes(&ring, THIRD, NOW + 59_000).await);
        assert_eq!(ring.source().reads(), 1);
        for t in [61_000, 62_000, 100_000] {
            assert!(!passes(&ring, THIRD, NOW + t).await);
        }
        assert_eq!(
            ring.source().reads(),
            2,
            "one read in the minute after 61 s"
        );
        assert!(!passes(&ring, THIRD, NOW + 122_000).await);
        assert_eq!(ring.source().reads(), 3);
        // Missing, malformed or expired tokens never read.
        assert!(ring.authenticate(None, NOW + 500_000).await.is_err());
        assert!(
            ring.authenticate(Some("Bearer x"), NOW + 500_000)
                .await
                .is_err()
        );
        let expired = format!("Bearer {}", mint(FIRST, "s", NOW / 1000 - 600).unwrap());
        assert!(
            ring.authenticate(Some(&expired), NOW + 500_000)
                .await
                .is_err()
        );
        assert_eq!(ring.source().reads(), 3);
    }

    #[tokio::test]
    async fn a_failed_read_keeps_the_held_keys() {
        let ring = KeyRing::load(MemoryKeys::new(FIRST), NOW).await.unwrap();
        ring.source().break_reads();
        assert!(!passes(&ring, SECOND, NOW + 120_000).await);
        assert_eq!(ring.source().reads(), 2);
        assert!(passes(&ring, FIRST, NOW + 120_000).await);
        // Once the secret is readable again (and a minute has passed), the new key is picked up.
        ring.source().set(SECOND, Some(FIRST));
        assert!(passes(&ring, SECOND, NOW + 181_000).await);
    }

    #[tokio::test]
    async fn start_up_fails_without_readable_or_long_enough_keys() {
        let broken = MemoryKeys::default();
        assert_eq!(
            KeyRing::load(broken, NOW).await.err().unwrap(),
            "the secret cannot be read"
        );
        let short = MemoryKeys::new(b"short");
        assert!(
            KeyRing::load(short, NOW)
                .await
                .err()
                .unwrap()
                .contains("at least 32")
        );
        assert_eq!(
            format!(
                "{:?}",
                SigningKeys {
                    current: FIRST.to_vec(),
                    previous: None
                }
            ),
            "SigningKeys { .. }"
        );
    }
}
