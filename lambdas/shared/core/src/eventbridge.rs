//! The EventBridge adapter of [`EventSink`]: packs entries into PutEvents calls (≤10 entries,
//! ≤256 KB) and retries only the entries that failed, with full-jitter exponential backoff.
//!
//! The retry logic is written against [`PutEventsApi`], so it is tested with a scripted fake;
//! [`EventBridgeApi`] is the thin SDK implementation.

use std::future::Future;
use std::time::Duration;

use aws_sdk_eventbridge::error::ProvideErrorMetadata;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::bus::{BusEntry, MAX_REQUEST_BYTES, batches};
use crate::deadline::Deadline;
use crate::sink::{EventSink, PublishError};

/// The outcome of one entry within a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryResult {
    Ok,
    Failed { code: String, message: String },
}

/// A whole call failed (network, throttling of the call, permissions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallError {
    pub code: String,
    pub message: String,
    pub retryable: bool,
}

/// One PutEvents call. Implementations return one result per entry, in order.
pub trait PutEventsApi: Send + Sync {
    fn put_events(
        &self,
        batch: &[&BusEntry<'_>],
    ) -> impl Future<Output = Result<Vec<EntryResult>, CallError>> + Send;
}

/// Entry error codes worth another attempt; anything else (MalformedDetail, AccessDenied…)
/// fails the same way every time.
fn is_retryable_entry_code(code: &str) -> bool {
    matches!(
        code,
        "InternalFailure" | "InternalException" | "ThrottlingException" | "ServiceUnavailable"
    )
}

/// How hard to try.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Total attempts per entry, the first one included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Four attempts within about a second: the forward API answers a browser, so a request
    /// must not hang on a degraded bus.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform delay in [0, min(max, base·2^retry)].
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1 << retry.min(16))
            .min(self.max_delay);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// Publishes through PutEvents with entry-level retries.
#[derive(Debug, Clone)]
pub struct EventBridgeSink<A = EventBridgeApi> {
    api: A,
    retry: RetryPolicy,
}

impl<A: PutEventsApi> EventBridgeSink<A> {
    pub fn new(api: A, retry: RetryPolicy) -> Self {
        Self { api, retry }
    }
}

impl<A: PutEventsApi> EventSink for EventBridgeSink<A> {
    async fn publish(
        &self,
        entries: &[BusEntry<'_>],
        deadline: Deadline,
    ) -> Vec<Result<(), PublishError>> {
        let mut outcomes: Vec<Option<Result<(), PublishError>>> = vec![None; entries.len()];
        let mut last_error: Vec<(String, String)> = vec![Default::default(); entries.len()];
        let mut pending: Vec<usize> = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if e.size() > MAX_REQUEST_BYTES {
                outcomes[i] = Some(Err(PublishError::TooLarge { size: e.size() }));
            } else {
                pending.push(i);
            }
        }

        let mut attempt: u32 = 0;
        let mut out_of_time = false;
        while !pending.is_empty() && attempt < self.retry.max_attempts {
            if attempt > 0 {
                let delay = self.retry.delay(attempt.saturating_sub(1));
                // A retry that would start at the deadline cannot be answered before it.
                if !deadline.allows(delay) {
                    out_of_time = true;
                    break;
                }
                tokio::time::sleep(delay).await;
            }
            if !deadline.allows(Duration::ZERO) {
                out_of_time = true;
                break;
            }
            attempt = attempt.saturating_add(1);
            // References, not copies: details can be up to 256 KB per call.
            let batch_entries: Vec<&BusEntry<'_>> = pending.iter().map(|&i| &entries[i]).collect();
            let mut still_pending = Vec::new();
            for range in batches(&batch_entries) {
                let indices = &pending[range.clone()];
                if !deadline.allows(Duration::ZERO) {
                    // No call is started that could only be cut off.
                    out_of_time = true;
                    still_pending.extend_from_slice(indices);
                    continue;
                }
                crate::metrics::put_events_call(range.len());
                let Some(answer) = deadline
                    .run(self.api.put_events(&batch_entries[range]))
                    .await
                else {
                    out_of_time = true;
                    for &i in indices {
                        last_error[i] = ("Timeout".into(), "no answer before the deadline".into());
                        still_pending.push(i);
                    }
                    continue;
                };
                match answer {
                    Ok(results) => {
                        for (&i, result) in
                            indices
                                .iter()
                                .zip(results.into_iter().chain(std::iter::repeat(
                                    EntryResult::Failed {
                                        code: "InternalFailure".into(),
                                        message: "no result for entry".into(),
                                    },
                                )))
                        {
                            match result {
                                EntryResult::Ok => outcomes[i] = Some(Ok(())),
                                EntryResult::Failed { code, message }
                                    if is_retryable_entry_code(&code) =>
                                {
                                    last_error[i] = (code, message);
                                    still_pending.push(i);
                                }
                                EntryResult::Failed { code, message } => {
                                    outcomes[i] =
                                        Some(Err(PublishError::Rejected { code, message }));
                                }
                            }
                        }
                    }
                    Err(e) if e.retryable => {
                        for &i in indices {
                            last_error[i] = (e.code.clone(), e.message.clone());
                            still_pending.push(i);
                        }
                    }
                    Err(e) => {
                        for &i in indices {
                            outcomes[i] = Some(Err(PublishError::Rejected {
                                code: e.code.clone(),
                                message: e.message.clone(),
                            }));
                        }
                    }
                }
            }
            if !still_pending.is_empty() && !out_of_time {
                tracing::warn!(
                    attempt,
                    failed = still_pending.len(),
                    "PutEvents entries failed; retrying"
                );
            }
            pending = still_pending;
            if out_of_time {
                break;
            }
        }
        for i in pending {
            let (code, message) = std::mem::take(&mut last_error[i]);
            outcomes[i] = Some(Err(if out_of_time {
                let (code, message) = if code.is_empty() {
                    ("Timeout".into(), "no time left for a call".into())
                } else {
                    (code, message)
                };
                PublishError::DeadlineReached {
                    attempts: attempt,
                    code,
                    message,
                }
            } else {
                PublishError::RetriesExhausted {
                    attempts: attempt,
                    code,
                    message,
                }
            }));
        }
        outcomes
            .into_iter()
            .map(|o| o.expect("every entry has an outcome"))
            .collect()
    }
}

/// PutEvents through the AWS SDK.
#[derive(Debug, Clone)]
pub struct EventBridgeApi {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeApi {
    pub fn new(client: aws_sdk_eventbridge::Client) -> Self {
        Self { client }
    }
}

impl PutEventsApi for EventBridgeApi {
    async fn put_events(&self, batch: &[&BusEntry<'_>]) -> Result<Vec<EntryResult>, CallError> {
        let request_entries = batch
            .iter()
            .map(|e| {
                PutEventsRequestEntry::builder()
                    .event_bus_name(&*e.event_bus_name)
                    .source(&*e.source)
                    .detail_type(&*e.detail_type)
                    .detail(&e.detail)
                    .set_time(e.time_millis.map(DateTime::from_millis))
                    .build()
            })
            .collect();
        let output = self
            .client
            .put_events()
            .set_entries(Some(request_entries))
            .send()
            .await
            .map_err(|e| {
                use aws_sdk_eventbridge::error::SdkError;
                let retryable = match &e {
                    SdkError::ServiceError(s) => {
                        matches!(
                            s.err().code(),
                            Some("ThrottlingException" | "InternalException")
                        )
                    }
                    SdkError::ConstructionFailure(_) => false,
                    _ => true,
                };
                CallError {
                    code: e.code().unwrap_or("CallFailed").to_owned(),
                    message: aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string(),
                    retryable,
                }
            })?;
        Ok(output
            .entries()
            .iter()
            .map(|r| match r.error_code() {
                None => EntryResult::Ok,
                Some(code) => EntryResult::Failed {
                    code: code.to_owned(),
                    message: r.error_message().unwrap_or_default().to_owned(),
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Fails each detail type a scripted number of times with a given code, then succeeds.
    #[derive(Default)]
    struct ScriptedApi {
        failures: Mutex<HashMap<String, (u32, &'static str)>>,
        calls: Mutex<Vec<Vec<String>>>,
        call_error: Option<CallError>,
    }

    impl ScriptedApi {
        fn failing(script: &[(&str, u32, &'static str)]) -> Self {
            let failures = script
                .iter()
                .map(|(t, n, c)| ((*t).to_owned(), (*n, *c)))
                .collect();
            Self {
                failures: Mutex::new(failures),
                ..Self::default()
            }
        }
    }

    impl PutEventsApi for ScriptedApi {
        async fn put_events(&self, batch: &[&BusEntry<'_>]) -> Result<Vec<EntryResult>, CallError> {
            assert!(batch.len() <= 10, "a call carried {} entries", batch.len());
            self.calls
                .lock()
                .unwrap()
                .push(batch.iter().map(|e| e.id.clone()).collect());
            if let Some(e) = &self.call_error {
                return Err(e.clone());
            }
            let mut failures = self.failures.lock().unwrap();
            Ok(batch
                .iter()
                .map(|e| match failures.get_mut(&*e.detail_type) {
                    Some((n, code)) if *n > 0 => {
                        *n -= 1;
                        EntryResult::Failed {
                            code: (*code).into(),
                            message: "scripted".into(),
                        }
                    }
                    _ => EntryResult::Ok,
                })
                .collect())
        }
    }

    fn entry<'a>(id: &str, detail_type: &'a str) -> BusEntry<'a> {
        BusEntry {
            id: id.into(),
            event_bus_name: "bus".into(),
            source: "nia.interface".into(),
            detail_type: detail_type.into(),
            time_millis: Some(1),
            detail: "{}".into(),
        }
    }

    fn fast() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[tokio::test]
    async fn retries_only_the_failed_entries() {
        let sink = EventBridgeSink::new(
            ScriptedApi::failing(&[("flaky.topic", 1, "ThrottlingException")]),
            fast(),
        );
        let entries = vec![
            entry("a", "ok.topic"),
            entry("b", "flaky.topic"),
            entry("c", "ok.topic"),
        ];
        let outcomes = sink.publish(&entries, Deadline::NONE).await;
        assert_eq!(outcomes, vec![Ok(()), Ok(()), Ok(())]);
        assert_eq!(
            *sink.api.calls.lock().unwrap(),
            vec![vec!["a", "b", "c"], vec!["b"]]
        );
    }

    #[tokio::test]
    async fn batches_at_ten_entries() {
        let sink = EventBridgeSink::new(ScriptedApi::default(), fast());
        let entries: Vec<_> = (0..25).map(|i| entry(&i.to_string(), "ok.topic")).collect();
        assert!(
            sink.publish(&entries, Deadline::NONE)
                .await
                .iter()
                .all(Result::is_ok)
        );
        let sizes: Vec<usize> = sink
            .api
            .calls
            .lock()
            .unwrap()
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }

    #[tokio::test]
    async fn persistent_failures_are_reported_per_entry() {
        let api = ScriptedApi::failing(&[
            ("down.topic", 99, "InternalFailure"),
            ("bad.topic", 99, "MalformedDetail"),
        ]);
        let sink = EventBridgeSink::new(api, fast());
        let outcomes = sink
            .publish(
                &[
                    entry("a", "down.topic"),
                    entry("b", "bad.topic"),
                    entry("c", "ok"),
                ],
                Deadline::NONE,
            )
            .await;
        assert_eq!(
            outcomes[0],
            Err(PublishError::RetriesExhausted {
                attempts: 3,
                code: "InternalFailure".into(),
                message: "scripted".into()
            })
        );
        assert_eq!(
            outcomes[1],
            Err(PublishError::Rejected {
                code: "MalformedDetail".into(),
                message: "scripted".into()
            })
        );
        assert_eq!(outcomes[2], Ok(()));
        // The non-retryable entry was tried once; the retryable one three times.
        let calls = sink.api.calls.lock().unwrap();
        assert_eq!(*calls, vec![vec!["a", "b", "c"], vec!["a"], vec!["a"]]);
    }

    #[tokio::test]
    async fn a_failed_call_is_retried_and_then_reported() {
        let api = ScriptedApi {
            call_error: Some(CallError {
                code: "Dispatch".into(),
                message: "connection reset".into(),
                retryable: true,
            }),
            ..ScriptedApi::default()
        };
        let sink = EventBridgeSink::new(api, fast());
        let outcomes = sink.publish(&[entry("a", "x.y")], Deadline::NONE).await;
        assert!(
            matches!(&outcomes[0], Err(PublishError::RetriesExhausted { attempts: 3, code, .. }) if code == "Dispatch")
        );
    }

    #[tokio::test]
    async fn oversized_entries_are_refused_without_a_call() {
        let sink = EventBridgeSink::new(ScriptedApi::default(), fast());
        let mut big = entry("big", "x.y");
        big.detail = "x".repeat(300 * 1024);
        let outcomes = sink
            .publish(&[big, entry("a", "x.y")], Deadline::NONE)
            .await;
        assert!(matches!(outcomes[0], Err(PublishError::TooLarge { .. })));
        assert_eq!(outcomes[1], Ok(()));
        assert_eq!(*sink.api.calls.lock().unwrap(), vec![vec!["a"]]);
    }

    /// Never answers: a bus endpoint that accepts connections and then hangs.
    struct SilentApi;

    impl PutEventsApi for SilentApi {
        async fn put_events(&self, _: &[&BusEntry<'_>]) -> Result<Vec<EntryResult>, CallError> {
            std::future::pending().await
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_bus_is_given_up_at_the_deadline() {
        let sink = EventBridgeSink::new(SilentApi, RetryPolicy::default());
        let start = tokio::time::Instant::now();
        let deadline = Deadline::after(Duration::from_millis(700));
        let outcomes = sink
            .publish(&[entry("a", "x.y"), entry("b", "x.y")], deadline)
            .await;
        assert_eq!(start.elapsed(), Duration::from_millis(700));
        for outcome in outcomes {
            assert!(
                matches!(&outcome, Err(PublishError::DeadlineReached { attempts: 1, code, .. }) if code == "Timeout"),
                "{outcome:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_that_the_deadline_would_cut_off() {
        let api = ScriptedApi {
            call_error: Some(CallError {
                code: "Dispatch".into(),
                message: "connection refused".into(),
                retryable: true,
            }),
            ..ScriptedApi::default()
        };
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(400),
            max_delay: Duration::from_millis(400),
        };
        let sink = EventBridgeSink::new(api, policy);
        let start = tokio::time::Instant::now();
        let outcomes = sink
            .publish(
                &[entry("a", "x.y")],
                Deadline::after(Duration::from_millis(1)),
            )
            .await;
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "{:?}",
            start.elapsed()
        );
        assert!(
            matches!(&outcomes[0], Err(PublishError::DeadlineReached { code, .. }) if code == "Dispatch"),
            "{:?}",
            outcomes[0]
        );
        // A deadline already past makes no call at all.
        let calls = sink.api.calls.lock().unwrap().len();
        let outcomes = sink
            .publish(&[entry("b", "x.y")], Deadline::after(Duration::ZERO))
            .await;
        assert!(matches!(
            &outcomes[0],
            Err(PublishError::DeadlineReached { attempts: 0, .. })
        ));
        assert_eq!(sink.api.calls.lock().unwrap().len(), calls);
    }

    #[test]
    fn backoff_is_capped() {
        let p = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        };
        for retry in 0..12 {
            assert!(p.delay(retry) <= Duration::from_millis(400));
        }
    }
}
