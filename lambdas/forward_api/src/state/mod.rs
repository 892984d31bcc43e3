//! Per-session state with a short life: the quota window and the idempotency keys.
//!
//! **Quota** — a fixed one-minute window per session: one atomic counter per
//! `(sessionId, minute)`, increased by the number of events of each request with a conditional
//! update that fails when the sum would pass the limit. A request that does not fit is refused as
//! a whole (429, `Retry-After` = seconds to the next window). At most one write per request; the
//! counter expires with its window (TTL). The price of the fixed window is that a client can send
//! up to twice the limit across a window boundary; the API stage throttle bounds the rate on top.
//!
//! **Idempotency** — one key per `(sessionId, event id)`, written with a conditional put that
//! fails when a live key exists. A key lives 2 minutes (the accepted clock skew): long enough to
//! catch the client retries that the skew check still lets through. Keys are claimed only for
//! events that passed every other check, as *pending* with a lease longer than the function's
//! timeout; once published they are *confirmed* (the lease removed, in batches), and when
//! publishing fails they are released, so a retry of a failed event is not mistaken for a
//! duplicate. A pending key whose lease ran out (the function died between claim and publish)
//! can be claimed again: that event is retried, not lost.
//!
//! TTL deletion in DynamoDB lags (up to days), so both conditions also compare `expiresAt` with
//! the current time instead of trusting that expired items are gone.

mod dynamodb;
mod memory;
mod stateless;

use std::future::Future;

pub use dynamodb::DynamoState;
pub use memory::MemoryState;
pub use stateless::Stateless;

/// How long an idempotency key lives.
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 120;
/// How long a claim stays pending before another request may take it over; longer than the
/// function timeout (`CLAIM_LEASE_SECONDS` in the deployment).
pub const DEFAULT_CLAIM_LEASE_SECONDS: i64 = 30;
/// Length of a quota window.
pub const QUOTA_WINDOW_SECONDS: i64 = 60;

/// Largest partition key DynamoDB accepts, in bytes. [`MemoryState`] refuses larger keys the
/// same way, so tests see what the table would do; the request checks keep ids well below it
/// ([`crate::request::MAX_ID_BYTES`]).
pub const MAX_KEY_BYTES: usize = 2048;

/// A state store call failed. The two kinds are handled differently: only an unavailable store
/// is worked around (fail open); a refusal is never, since the same request would be refused
/// again and working around it would let a client switch deduplication off at will.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Unreachable, throttled, failing on its side (5xx) or not answering in time.
    #[error("session state store unavailable: {0}")]
    Unavailable(String),
    /// Refused the request as invalid or forbidden (validation, permissions, missing table).
    #[error("session state store refused the request: {0}")]
    Refused(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaDecision {
    Allowed,
    /// Over the quota until the window ends, this many seconds from now.
    Exceeded {
        retry_after_seconds: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// First sight of this event id in the idempotency window.
    New,
    /// Already claimed within the window: a duplicate.
    Duplicate,
}

/// The port: an AWS adapter ([`DynamoState`]) and an in-memory one ([`MemoryState`]).
pub trait SessionState: Send + Sync {
    /// Counts `events` against the session's quota of `limit` events per window.
    fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> impl Future<Output = Result<QuotaDecision, StateError>> + Send;

    /// Claims each id for the session, pending for `lease_seconds`; one result per id, in order.
    fn claim(
        &self,
        session_id: &str,
        ids: &[&str],
        lease_seconds: i64,
        now_ms: i64,
    ) -> impl Future<Output = Vec<Result<Claim, StateError>>> + Send;

    /// Marks claims as done: the ids were published.
    fn confirm(
        &self,
        session_id: &str,
        ids: &[&str],
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send;

    /// Forgets claims, so the ids can be forwarded again (their publishing failed).
    fn release(
        &self,
        session_id: &str,
        ids: &[&str],
    ) -> impl Future<Output = Result<(), StateError>> + Send;
}

pub(crate) fn window_start(now_ms: i64) -> i64 {
    let now_s = now_ms.div_euclid(1000);
    now_s - now_s.rem_euclid(QUOTA_WINDOW_SECONDS)
}

pub(crate) fn retry_after(now_ms: i64) -> i64 {
    (window_start(now_ms) + QUOTA_WINDOW_SECONDS - now_ms.div_euclid(1000)).max(1)
}

// Keys carry the session id's length, so no session id / event id pair can spell another
// session's key (`a#b` + `c` versus `a` + `b#c`).
pub(crate) fn quota_key(session_id: &str, now_ms: i64) -> String {
    format!(
        "quota#{}#{session_id}#{}",
        session_id.len(),
        window_start(now_ms)
    )
}

pub(crate) fn claim_key(session_id: &str, id: &str) -> String {
    format!("idem#{}#{session_id}#{id}", session_id.len())
}

/// A key as DynamoDB would take it, or its refusal.
pub(crate) fn checked_key(key: String) -> Result<String, StateError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StateError::Refused(format!(
            "ValidationException: the key is {} bytes; a partition key holds at most {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key)
}

/// One store shared by several forwarders (as Lambda instances share one table).
impl<T: SessionState> SessionState for std::sync::Arc<T> {
    fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> impl Future<Output = Result<QuotaDecision, StateError>> + Send {
        (**self).consume_quota(session_id, events, limit, now_ms)
    }

    fn claim(
        &self,
        session_id: &str,
        ids: &[&str],
        lease_seconds: i64,
        now_ms: i64,
    ) -> impl Future<Output = Vec<Result<Claim, StateError>>> + Send {
        (**self).claim(session_id, ids, lease_seconds, now_ms)
    }

    fn confirm(
        &self,
        session_id: &str,
        ids: &[&str],
        now_ms: i64,
    ) -> impl Future<Output = Result<(), StateError>> + Send {
        (**self).confirm(session_id, ids, now_ms)
    }

    fn release(
        &self,
        session_id: &str,
        ids: &[&str],
    ) -> impl Future<Output = Result<(), StateError>> + Send {
        (**self).release(session_id, ids)
    }
}
