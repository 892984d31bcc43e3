//! The in-memory adapter: tests and local runs. It refuses what DynamoDB refuses (keys over
//! [`super::MAX_KEY_BYTES`]), so tests see the table's behaviour.

use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    Claim, IDEMPOTENCY_TTL_SECONDS, QUOTA_WINDOW_SECONDS, QuotaDecision, SessionState, StateError,
    checked_key, claim_key, quota_key, retry_after, window_start,
};

/// In-memory state, for tests and local runs.
#[derive(Debug, Default)]
pub struct MemoryState {
    /// quota key → (count, expires at); claim key → (lease until or 0 when confirmed, expires
    /// at), all in seconds
    items: Mutex<HashMap<String, (u64, i64)>>,
    fail: Option<StateError>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store whose every call fails as unavailable, to exercise the degraded path.
    pub fn unavailable() -> Self {
        Self {
            fail: Some(StateError::Unavailable("injected failure".into())),
            ..Self::default()
        }
    }

    /// A store that refuses every call as invalid (what a misconfigured table or role does).
    pub fn refusing() -> Self {
        Self {
            fail: Some(StateError::Refused("injected refusal".into())),
            ..Self::default()
        }
    }
}

impl SessionState for MemoryState {
    async fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> Result<QuotaDecision, StateError> {
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        let now_s = now_ms.div_euclid(1000);
        let key = checked_key(quota_key(session_id, now_ms))?;
        let mut items = self.items.lock().expect("state lock");
        let entry = items
            .entry(key)
            .or_insert((0, window_start(now_ms) + QUOTA_WINDOW_SECONDS));
        if entry.1 <= now_s {
            *entry = (0, window_start(now_ms) + QUOTA_WINDOW_SECONDS);
        }
        if entry.0 + u64::from(events) > u64::from(limit) {
            return Ok(QuotaDecision::Exceeded {
                retry_after_seconds: retry_after(now_ms),
            });
        }
        entry.0 += u64::from(events);
        Ok(QuotaDecision::Allowed)
    }

    async fn claim(
        &self,
        session_id: &str,
        ids: &[&str],
        lease_seconds: i64,
        now_ms: i64,
    ) -> Vec<Result<Claim, StateError>> {
        if let Some(e) = &self.fail {
            return ids.iter().map(|_| Err(e.clone())).collect();
        }
        let now_s = now_ms.div_euclid(1000);
        let mut items = self.items.lock().expect("state lock");
        ids.iter()
            .map(|id| {
                let key = checked_key(claim_key(session_id, id))?;
                let lease_until = u64::try_from(now_s + lease_seconds).unwrap_or(0);
                match items.get(&key) {
                    // Live, and confirmed or still within its lease.
                    Some((lease, expires))
                        if *expires > now_s
                            && (*lease == 0 || i64::try_from(*lease).unwrap_or(0) > now_s) =>
                    {
                        Ok(Claim::Duplicate)
                    }
                    _ => {
                        items.insert(key, (lease_until, now_s + IDEMPOTENCY_TTL_SECONDS));
                        Ok(Claim::New)
                    }
                }
            })
            .collect()
    }

    async fn confirm(&self, session_id: &str, ids: &[&str], now_ms: i64) -> Result<(), StateError> {
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        let now_s = now_ms.div_euclid(1000);
        let mut items = self.items.lock().expect("state lock");
        for id in ids {
            items.insert(
                checked_key(claim_key(session_id, id))?,
                (0, now_s + IDEMPOTENCY_TTL_SECONDS),
            );
        }
        Ok(())
    }

    async fn release(&self, session_id: &str, ids: &[&str]) -> Result<(), StateError> {
        if let Some(e) = &self.fail {
            return Err(e.clone());
        }
        let mut items = self.items.lock().expect("state lock");
        for id in ids {
            items.remove(&claim_key(session_id, id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_767_225_600_000; // a window boundary

    #[tokio::test]
    async fn quota_is_a_fixed_window_per_session() {
        let state = MemoryState::new();
        assert_eq!(
            state.consume_quota("s1", 8, 10, T0).await,
            Ok(QuotaDecision::Allowed)
        );
        // 8 + 3 > 10: refused whole, nothing counted.
        assert_eq!(
            state.consume_quota("s1", 3, 10, T0 + 15_000).await,
            Ok(QuotaDecision::Exceeded {
                retry_after_seconds: 45
            })
        );
        assert_eq!(
            state.consume_quota("s1", 2, 10, T0 + 15_000).await,
            Ok(QuotaDecision::Allowed)
        );
        // Another session has its own counter; the next window starts from zero.
        assert_eq!(
            state.consume_quota("s2", 10, 10, T0).await,
            Ok(QuotaDecision::Allowed)
        );
        assert_eq!(
            state.consume_quota("s1", 10, 10, T0 + 60_000).await,
            Ok(QuotaDecision::Allowed)
        );
        // A request larger than the whole quota never fits.
        assert!(matches!(
            state.consume_quota("s3", 11, 10, T0).await,
            Ok(QuotaDecision::Exceeded { .. })
        ));
    }

    #[test]
    fn keys_of_different_sessions_never_collide() {
        assert_ne!(claim_key("a#b", "c"), claim_key("a", "b#c"));
        assert_ne!(quota_key("a#1", T0), quota_key("a", T0));
    }

    #[tokio::test]
    async fn a_pending_claim_is_taken_over_when_its_lease_runs_out() {
        let state = MemoryState::new();
        assert_eq!(
            state.claim("s1", &["p", "c"], 30, T0).await,
            vec![Ok(Claim::New), Ok(Claim::New)]
        );
        state.confirm("s1", &["c"], T0).await.unwrap();
        // Within the lease both block; after it only the confirmed one does.
        assert_eq!(
            state.claim("s1", &["p", "c"], 30, T0 + 10_000).await,
            vec![Ok(Claim::Duplicate), Ok(Claim::Duplicate)]
        );
        assert_eq!(
            state.claim("s1", &["p", "c"], 30, T0 + 31_000).await,
            vec![Ok(Claim::New), Ok(Claim::Duplicate)]
        );
    }

    #[tokio::test]
    async fn claims_expire_after_the_window_and_can_be_released() {
        let state = MemoryState::new();
        assert_eq!(
            state.claim("s1", &["a", "b"], 30, T0).await,
            vec![Ok(Claim::New), Ok(Claim::New)]
        );
        state.confirm("s1", &["a"], T0).await.unwrap();
        assert_eq!(
            state.claim("s1", &["a", "c"], 30, T0 + 119_000).await,
            vec![Ok(Claim::Duplicate), Ok(Claim::New)]
        );
        // Same id in another session is not a duplicate.
        assert_eq!(
            state.claim("s2", &["a"], 30, T0).await,
            vec![Ok(Claim::New)]
        );
        // Two minutes later the key is dead even if still stored.
        assert_eq!(
            state.claim("s1", &["a"], 30, T0 + 120_000).await,
            vec![Ok(Claim::New)]
        );
        state.release("s1", &["b"]).await.unwrap();
        assert_eq!(
            state.claim("s1", &["b"], 30, T0 + 1_000).await,
            vec![Ok(Claim::New)]
        );
    }
}
