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

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

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

fn window_start(now_ms: i64) -> i64 {
    let now_s = now_ms.div_euclid(1000);
    now_s - now_s.rem_euclid(QUOTA_WINDOW_SECONDS)
}

fn retry_after(now_ms: i64) -> i64 {
    (window_start(now_ms) + QUOTA_WINDOW_SECONDS - now_ms.div_euclid(1000)).max(1)
}

// Keys carry the session id's length, so no session id / event id pair can spell another
// session's key (`a#b` + `c` versus `a` + `b#c`).
fn quota_key(session_id: &str, now_ms: i64) -> String {
    format!(
        "quota#{}#{session_id}#{}",
        session_id.len(),
        window_start(now_ms)
    )
}

fn claim_key(session_id: &str, id: &str) -> String {
    format!("idem#{}#{session_id}#{id}", session_id.len())
}

/// A key as DynamoDB would take it, or its refusal.
fn checked_key(key: String) -> Result<String, StateError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StateError::Refused(format!(
            "ValidationException: the key is {} bytes; a partition key holds at most {MAX_KEY_BYTES}",
            key.len()
        )));
    }
    Ok(key)
}

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

/// No cross-request state: every quota check passes and every claim is new. For benchmarks and
/// fuzzing, where the per-request path is the subject and remembered ids would skew it.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stateless;

impl SessionState for Stateless {
    async fn consume_quota(
        &self,
        _: &str,
        _: u32,
        _: u32,
        _: i64,
    ) -> Result<QuotaDecision, StateError> {
        Ok(QuotaDecision::Allowed)
    }

    async fn claim(&self, _: &str, ids: &[&str], _: i64, _: i64) -> Vec<Result<Claim, StateError>> {
        vec![Ok(Claim::New); ids.len()]
    }

    async fn confirm(&self, _: &str, _: &[&str], _: i64) -> Result<(), StateError> {
        Ok(())
    }

    async fn release(&self, _: &str, _: &[&str]) -> Result<(), StateError> {
        Ok(())
    }
}

/// The DynamoDB adapter: one table, partition key `pk` (string), TTL attribute `expiresAt`
/// (epoch seconds).
#[derive(Debug, Clone)]
pub struct DynamoState {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// An idempotency item, as stored.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClaimItem<'a> {
    pk: &'a str,
    expires_at: i64,
    /// Present while pending: until when the claim blocks others.
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_until: Option<i64>,
}

impl DynamoState {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn is_condition_failure<E, R>(error: &SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// Service error codes that mean "try later", not "this request is wrong".
fn is_transient_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "InternalServerError"
            | "ServiceUnavailable"
            | "TransactionConflictException"
    )
}

fn state_error<E, R>(error: SdkError<E, R>) -> StateError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            let code = e.code().unwrap_or("unknown");
            let detail = format!("{code}: {}", e.message().unwrap_or(""));
            if is_transient_code(code) {
                StateError::Unavailable(detail)
            } else {
                StateError::Refused(detail)
            }
        }
        // The request could not even be built: it would fail the same way every time.
        SdkError::ConstructionFailure(_) => {
            StateError::Refused(aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string())
        }
        // Timeouts, connection failures, unreadable answers.
        _ => StateError::Unavailable(
            aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
        ),
    }
}

impl SessionState for DynamoState {
    async fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> Result<QuotaDecision, StateError> {
        let exceeded = QuotaDecision::Exceeded {
            retry_after_seconds: retry_after(now_ms),
        };
        let Some(room) = limit.checked_sub(events) else {
            return Ok(exceeded);
        };
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(quota_key(session_id, now_ms)))
            .update_expression("ADD #events :n SET #expiresAt = :expires")
            .condition_expression("attribute_not_exists(#events) OR #events <= :room")
            .expression_attribute_names("#events", "events")
            .expression_attribute_names("#expiresAt", "expiresAt")
            .expression_attribute_values(":n", AttributeValue::N(events.to_string()))
            .expression_attribute_values(":room", AttributeValue::N(room.to_string()))
            .expression_attribute_values(
                ":expires",
                AttributeValue::N((window_start(now_ms) + QUOTA_WINDOW_SECONDS).to_string()),
            )
            .send()
            .await;
        match result {
            Ok(_) => Ok(QuotaDecision::Allowed),
            Err(e) if is_condition_failure(&e) => Ok(exceeded),
            Err(e) => Err(state_error(e)),
        }
    }

    async fn claim(
        &self,
        session_id: &str,
        ids: &[&str],
        lease_seconds: i64,
        now_ms: i64,
    ) -> Vec<Result<Claim, StateError>> {
        let now_s = now_ms.div_euclid(1000);
        // Conditional puts cannot be batched (BatchWriteItem has no conditions, and one
        // failed condition cancels a whole TransactWriteItems): one call per event, concurrently.
        let calls = ids.iter().map(|id| async move {
            let key = claim_key(session_id, id);
            let item = serde_dynamo::to_item(ClaimItem {
                pk: &key,
                expires_at: now_s + IDEMPOTENCY_TTL_SECONDS,
                lease_until: Some(now_s + lease_seconds),
            })
            .map_err(|e| StateError::Refused(format!("cannot encode the idempotency item: {e}")))?;
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(
                    "attribute_not_exists(pk) OR #expiresAt <= :now \
                     OR (attribute_exists(#leaseUntil) AND #leaseUntil <= :now)",
                )
                .expression_attribute_names("#expiresAt", "expiresAt")
                .expression_attribute_names("#leaseUntil", "leaseUntil")
                .expression_attribute_values(":now", AttributeValue::N(now_s.to_string()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(Claim::New),
                Err(e) if is_condition_failure(&e) => Ok(Claim::Duplicate),
                Err(e) => Err(state_error(e)),
            }
        });
        futures_util::future::join_all(calls).await
    }

    async fn confirm(&self, session_id: &str, ids: &[&str], now_ms: i64) -> Result<(), StateError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let now_s = now_ms.div_euclid(1000);
        // Unconditional puts of the confirmed item (no lease), 25 per BatchWriteItem call;
        // unprocessed items are sent again, a few times.
        for chunk in ids.chunks(25) {
            let mut requests = chunk
                .iter()
                .map(|id| {
                    let key = claim_key(session_id, id);
                    let item = serde_dynamo::to_item(ClaimItem {
                        pk: &key,
                        expires_at: now_s + IDEMPOTENCY_TTL_SECONDS,
                        lease_until: None,
                    })
                    .map_err(|e| {
                        StateError::Refused(format!("cannot encode the idempotency item: {e}"))
                    })?;
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(|e| StateError::Refused(e.to_string()))?;
                    Ok(WriteRequest::builder().put_request(put).build())
                })
                .collect::<Result<Vec<_>, StateError>>()?;
            for attempt in 0..3 {
                if requests.is_empty() {
                    break;
                }
                if attempt > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(50 << attempt)).await;
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(state_error)?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&self.table))
                    .unwrap_or_default();
            }
            if !requests.is_empty() {
                return Err(StateError::Unavailable(format!(
                    "{} idempotency keys left unconfirmed after 3 attempts",
                    requests.len()
                )));
            }
        }
        Ok(())
    }

    async fn release(&self, session_id: &str, ids: &[&str]) -> Result<(), StateError> {
        let calls = ids.iter().map(|id| async move {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("pk", AttributeValue::S(claim_key(session_id, id)))
                .send()
                .await
                .map(|_| ())
                .map_err(state_error)
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .collect()
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
