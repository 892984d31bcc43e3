//! A message to every open connection of a principal through the API Gateway management API
//! (`POST @connections/{id}`), in parallel. A connection that answers 410 Gone has closed
//! without its `$disconnect` reaching us: its record is deleted. A message over API Gateway's
//! 128 KB is refused before any call, with a log line naming its size. Outcomes are counted per
//! connection (EMF: `PushDelivered`, `PushGone`, `PushFailed`, `PushRefusedOversize`).

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_apigatewaymanagement::primitives::Blob;
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use futures_util::StreamExt;
use metrics::counter;

use crate::MAX_MESSAGE_BYTES;
use crate::connections::ConnectionStore;

pub const PUSH_DELIVERED: &str = "PushDelivered";
pub const PUSH_GONE: &str = "PushGone";
pub const PUSH_FAILED: &str = "PushFailed";
pub const PUSH_REFUSED_OVERSIZE: &str = "PushRefusedOversize";

/// Why one post failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// 410: the connection is closed.
    #[error("the connection is gone")]
    Gone,
    /// Throttling, a 5xx, a timeout: worth another attempt.
    #[error("the management API is unavailable: {0}")]
    Unavailable(String),
    /// Anything else (permissions, a payload the service refuses).
    #[error("the management API refused the post: {0}")]
    Refused(String),
}

/// One `POST @connections/{id}`.
pub trait ConnectionApi: Send + Sync {
    fn post(
        &self,
        connection_id: &str,
        data: &[u8],
    ) -> impl Future<Output = Result<(), PostError>> + Send;
}

/// The management API through the AWS SDK, at the API's callback URL
/// (`https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`).
#[derive(Debug, Clone)]
pub struct ManagementApi {
    client: aws_sdk_apigatewaymanagement::Client,
}

impl ManagementApi {
    pub fn new(config: &aws_sdk_apigatewaymanagement::config::Builder, endpoint: &str) -> Self {
        let config = config.clone().endpoint_url(endpoint).build();
        Self {
            client: aws_sdk_apigatewaymanagement::Client::from_conf(config),
        }
    }
}

impl ConnectionApi for ManagementApi {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
        match self
            .client
            .post_to_connection()
            .connection_id(connection_id)
            .data(Blob::new(data))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    e.as_service_error(),
                    Some(PostToConnectionError::GoneException(_))
                ) =>
            {
                Err(PostError::Gone)
            }
            Err(e) => Err(match sdk_failure(&e) {
                SdkFailure::Transient(m) => PostError::Unavailable(m),
                SdkFailure::Refused(m) => PostError::Refused(m),
            }),
        }
    }
}

/// Connections in memory: what was posted, per connection; connections marked gone answer
/// 410, failing ones 503 for a number of calls.
#[derive(Debug, Default)]
pub struct MemoryConnectionApi {
    posted: Mutex<Vec<(String, Vec<u8>)>>,
    gone: Mutex<Vec<String>>,
    failing: Mutex<Vec<(String, u32)>>,
}

impl MemoryConnectionApi {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn close(&self, connection_id: &str) {
        self.gone
            .lock()
            .expect("lock")
            .push(connection_id.to_owned());
    }

    /// The next `times` posts to the connection answer 503.
    pub fn fail(&self, connection_id: &str, times: u32) {
        self.failing
            .lock()
            .expect("lock")
            .push((connection_id.to_owned(), times));
    }

    pub fn posted(&self) -> Vec<(String, Vec<u8>)> {
        self.posted.lock().expect("lock").clone()
    }
}

impl ConnectionApi for MemoryConnectionApi {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        if self
            .gone
            .lock()
            .expect("lock")
            .iter()
            .any(|g| g == connection_id)
        {
            return Err(PostError::Gone);
        }
        {
            let mut failing = self.failing.lock().expect("lock");
            if let Some((_, times)) = failing
                .iter_mut()
                .find(|(c, t)| c == connection_id && *t > 0)
            {
                *times = times.saturating_sub(1);
                return Err(PostError::Unavailable("injected 503".into()));
            }
        }
        self.posted
            .lock()
            .expect("lock")
            .push((connection_id.to_owned(), data.to_vec()));
        Ok(())
    }
}

/// What one push did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Open connections of the principal.
    pub connections: usize,
    pub delivered: usize,
    /// Answered 410 (their records deleted, unless `cleanup_failed` says otherwise).
    pub gone: usize,
    /// Still failing after the attempts: the message did not reach them.
    pub failed: usize,
    /// Gone connections whose record could not be deleted (they expire by TTL).
    pub cleanup_failed: usize,
    /// The ids of the connections that answered 410.
    pub gone_connections: Vec<String>,
    /// Refused before any call: over [`MAX_MESSAGE_BYTES`].
    pub oversize: bool,
    /// The connections could not be listed.
    pub lookup_failed: Option<String>,
}

impl PushReport {
    /// Whether every open connection either got the message or is gone: what a caller needs
    /// to know to retry.
    pub fn complete(&self) -> bool {
        self.failed == 0 && self.lookup_failed.is_none() && !self.oversize
    }
}

/// Pushes to every connection of a principal.
#[derive(Debug)]
pub struct Pusher<S, A> {
    store: S,
    api: A,
    /// Posts in flight at once.
    pub concurrency: usize,
    /// Attempts per connection on an unavailable API.
    pub attempts: u32,
    pub retry_delay: Duration,
}

impl<S: ConnectionStore, A: ConnectionApi> Pusher<S, A> {
    pub fn new(store: S, api: A) -> Self {
        Self {
            store,
            api,
            concurrency: 32,
            attempts: 3,
            retry_delay: Duration::from_millis(50),
        }
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn api(&self) -> &A {
        &self.api
    }

    async fn post_with_retries(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        let mut attempt = 1;
        loop {
            match self.api.post(connection_id, data).await {
                Err(PostError::Unavailable(_)) if attempt < self.attempts => {
                    tokio::time::sleep(self.retry_delay.saturating_mul(1 << attempt.min(8))).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A message over API Gateway's limit: refused, logged, counted.
    fn refuse_oversize(to: &str, message: &[u8], report: &mut PushReport) -> bool {
        if message.len() <= MAX_MESSAGE_BYTES {
            return false;
        }
        tracing::error!(
            to = %to,
            bytes = message.len(),
            limit = MAX_MESSAGE_BYTES,
            "message refused: larger than a WebSocket message may be; send a smaller one or a link to the content"
        );
        counter!(PUSH_REFUSED_OVERSIZE).increment(1);
        report.oversize = true;
        true
    }

    /// Sends `message` to every open connection of `principal`.
    pub async fn push(&self, principal: &str, message: &[u8], now_ms: i64) -> PushReport {
        let mut report = PushReport::default();
        if Self::refuse_oversize(principal, message, &mut report) {
            return report;
        }
        let connections = match self.store.open_of(principal, now_ms).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(principal = %principal, error = %e, "connections not listed");
                report.lookup_failed = Some(e.to_string());
                return report;
            }
        };
        let ids = connections.into_iter().map(|c| c.connection_id).collect();
        self.post_all(ids, message, report).await
    }

    /// Sends `message` to each of `connection_ids` (a channel's subscribers), with the same
    /// retries, 410 cleanup and counts as [`Pusher::push`].
    pub async fn push_to(&self, connection_ids: Vec<String>, message: &[u8]) -> PushReport {
        let mut report = PushReport::default();
        if Self::refuse_oversize("subscribers", message, &mut report) {
            return report;
        }
        self.post_all(connection_ids, message, report).await
    }

    async fn post_all(
        &self,
        connection_ids: Vec<String>,
        message: &[u8],
        mut report: PushReport,
    ) -> PushReport {
        report.connections = connection_ids.len();
        let outcomes: Vec<(String, Result<(), PostError>)> =
            futures_util::stream::iter(connection_ids)
                .map(|id| async move {
                    let outcome = self.post_with_retries(&id, message).await;
                    (id, outcome)
                })
                .buffer_unordered(self.concurrency.max(1))
                .collect()
                .await;
        for (connection_id, outcome) in outcomes {
            match outcome {
                Ok(()) => report.delivered += 1,
                Err(PostError::Gone) => {
                    report.gone += 1;
                    if let Err(e) = self.store.delete(&connection_id).await {
                        tracing::warn!(connection = %connection_id, error = %e, "gone connection not deleted; it expires by TTL");
                        report.cleanup_failed += 1;
                    }
                    report.gone_connections.push(connection_id);
                }
                Err(e) => {
                    tracing::warn!(connection = %connection_id, error = %e, "push failed");
                    report.failed += 1;
                }
            }
        }
        counter!(PUSH_DELIVERED).increment(report.delivered as u64);
        counter!(PUSH_GONE).increment(report.gone as u64);
        counter!(PUSH_FAILED).increment(report.failed as u64);
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connections::{Connection, MemoryConnections};

    const NOW: i64 = 1_767_225_600_000;

    async fn pusher(
        connections: &[(&str, &str)],
    ) -> Pusher<MemoryConnections, MemoryConnectionApi> {
        let store = MemoryConnections::new();
        for (id, user) in connections {
            store.put(&Connection::opened(id, user, NOW)).await.unwrap();
        }
        let mut p = Pusher::new(store, MemoryConnectionApi::new());
        p.retry_delay = Duration::from_millis(1);
        p
    }

    #[tokio::test]
    async fn every_connection_of_the_user_gets_the_message_and_no_one_else() {
        let p = pusher(&[("a1", "u1"), ("a2", "u1"), ("b1", "u2")]).await;
        let report = p.push("u1", b"hello", NOW).await;
        assert_eq!((report.connections, report.delivered), (2, 2));
        assert!(report.complete());
        let mut to: Vec<_> = p.api().posted().into_iter().map(|(c, _)| c).collect();
        to.sort();
        assert_eq!(to, ["a1", "a2"]);
    }

    #[tokio::test]
    async fn a_gone_connection_is_deleted_and_the_others_still_get_it() {
        let p = pusher(&[("a1", "u1"), ("a2", "u1")]).await;
        p.api().close("a1");
        let report = p.push("u1", b"hello", NOW).await;
        assert_eq!((report.delivered, report.gone, report.failed), (1, 1, 0));
        assert!(report.complete(), "a gone connection is not a failure");
        let left: Vec<_> = p
            .store()
            .all()
            .into_iter()
            .map(|c| c.connection_id)
            .collect();
        assert_eq!(left, ["a2"]);
    }

    #[tokio::test]
    async fn an_unavailable_api_is_retried_then_reported() {
        let p = pusher(&[("a1", "u1"), ("a2", "u1")]).await;
        p.api().fail("a1", 2);
        p.api().fail("a2", 10);
        let report = p.push("u1", b"hello", NOW).await;
        assert_eq!((report.delivered, report.failed), (1, 1));
        assert!(
            !report.complete(),
            "the caller learns a connection missed it"
        );
        assert_eq!(
            p.store().all().len(),
            2,
            "a failing connection is not deleted"
        );
    }

    #[tokio::test]
    async fn an_oversize_message_is_refused_before_any_call() {
        let p = pusher(&[("a1", "u1")]).await;
        let report = p.push("u1", &vec![b'x'; MAX_MESSAGE_BYTES + 1], NOW).await;
        assert!(report.oversize && !report.complete());
        assert!(p.api().posted().is_empty());
        let report = p.push("u1", &vec![b'x'; MAX_MESSAGE_BYTES], NOW).await;
        assert_eq!(report.delivered, 1, "exactly 128 KB still goes");
    }

    #[tokio::test]
    async fn connections_that_cannot_be_listed_are_reported() {
        let p = pusher(&[("a1", "u1")]).await;
        p.store().set_unavailable(true);
        let report = p.push("u1", b"x", NOW).await;
        assert!(report.lookup_failed.is_some() && !report.complete());
    }
}
