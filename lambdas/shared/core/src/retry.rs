//! Item-level retries for AWS batch calls that answer per item (Kinesis `PutRecords`, DynamoDB
//! `BatchWriteItem`'s `UnprocessedItems`, SNS `PublishBatch`): only the items that failed
//! transiently go again, after a full-jitter exponential backoff, until they succeed, fail for
//! good, run out of attempts or the deadline comes. Every item ends with exactly one outcome.
//!
//! The caller's `attempt` closure makes the calls for the pending items (chunked and in parallel
//! as the API allows) and answers one [`ItemResult`] per pending item, in order; a failed call
//! is a failure of each of its items. (`EventBridgeSink` predates this module and keeps its own
//! loop, with the same policy type and the same outcomes.)

use std::future::Future;
use std::time::Duration;

use crate::deadline::Deadline;
use crate::eventbridge::RetryPolicy;

/// What one attempt did to one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemResult {
    Ok,
    /// Try again later (throttling, an internal error, a timeout): `code: message`.
    Retry(String),
    /// Refused for good (validation, permissions): `code: message`.
    Fail(String),
}

/// Why an item did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemFailure {
    /// The service refused it; trying again would fail the same way.
    Refused(String),
    /// It still failed transiently after `attempts` attempts, or the deadline came first.
    Exhausted { attempts: u32, last: String },
}

impl ItemFailure {
    pub fn is_transient(&self) -> bool {
        matches!(self, ItemFailure::Exhausted { .. })
    }
}

impl std::fmt::Display for ItemFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ItemFailure::Refused(m) => write!(f, "refused: {m}"),
            ItemFailure::Exhausted { attempts, last } => {
                write!(f, "still failing after {attempts} attempt(s): {last}")
            }
        }
    }
}

/// What [`retry_items`] did, beside the outcomes: for metrics and call-count figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryStats {
    /// Attempts made (the first one included).
    pub attempts: u32,
    /// Item retries (an item sent a second time counts one).
    pub item_retries: usize,
}

/// Runs `attempt` over the items `0..count` until each has an outcome (see the module).
pub async fn retry_items<F, Fut>(
    count: usize,
    policy: RetryPolicy,
    deadline: Deadline,
    mut attempt: F,
) -> (Vec<Result<(), ItemFailure>>, RetryStats)
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: Future<Output = Vec<ItemResult>>,
{
    let mut outcomes: Vec<Option<Result<(), ItemFailure>>> = vec![None; count];
    let mut last: Vec<String> = vec![String::new(); count];
    let mut pending: Vec<usize> = (0..count).collect();
    let mut stats = RetryStats::default();
    while !pending.is_empty() && stats.attempts < policy.max_attempts {
        if stats.attempts > 0 {
            let delay = policy.delay(stats.attempts.saturating_sub(1));
            if !deadline.allows(delay) {
                break;
            }
            tokio::time::sleep(delay).await;
            stats.item_retries = stats.item_retries.saturating_add(pending.len());
        }
        if !deadline.allows(Duration::ZERO) {
            break;
        }
        stats.attempts = stats.attempts.saturating_add(1);
        let sent = std::mem::take(&mut pending);
        let Some(results) = deadline.run(attempt(sent.clone())).await else {
            for &i in &sent {
                last[i] = "Timeout: no answer before the deadline".into();
            }
            pending = sent;
            break;
        };
        let mut results = results.into_iter();
        for i in sent {
            match results.next().unwrap_or_else(|| {
                ItemResult::Retry("InternalFailure: no result for the item".into())
            }) {
                ItemResult::Ok => outcomes[i] = Some(Ok(())),
                ItemResult::Fail(message) => outcomes[i] = Some(Err(ItemFailure::Refused(message))),
                ItemResult::Retry(message) => {
                    last[i] = message;
                    pending.push(i);
                }
            }
        }
    }
    for i in pending {
        let last = std::mem::take(&mut last[i]);
        outcomes[i] = Some(Err(ItemFailure::Exhausted {
            attempts: stats.attempts,
            last: if last.is_empty() {
                "Timeout: no time left for a call".into()
            } else {
                last
            },
        }));
    }
    (
        outcomes
            .into_iter()
            .map(|o| o.expect("every item has an outcome"))
            .collect(),
        stats,
    )
}

/// Calls `call` once per chunk of at most `size` of `items`, all chunks at once (one attempt
/// of a batch API: 25 items per `BatchWriteItem`, 10 per `PublishBatch`…). Returns the answers
/// in item order and the number of calls made.
pub async fn chunked<'b, T: ?Sized, R, F, Fut>(
    items: &'b [&'b T],
    size: usize,
    call: F,
) -> (Vec<R>, usize)
where
    F: Fn(&'b [&'b T]) -> Fut,
    Fut: Future<Output = Vec<R>>,
{
    let chunks: Vec<&'b [&'b T]> = items.chunks(size.max(1)).collect();
    let calls = chunks.len();
    let answers = futures_util::future::join_all(chunks.into_iter().map(call)).await;
    (answers.into_iter().flatten().collect(), calls)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(400),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn only_failed_items_go_again_until_they_succeed() {
        let calls = Mutex::new(Vec::new());
        let (outcomes, stats) = retry_items(4, policy(), Deadline::NONE, |pending| {
            calls.lock().unwrap().push(pending.clone());
            let first = calls.lock().unwrap().len() == 1;
            async move {
                pending
                    .iter()
                    .map(|&i| match (first, i) {
                        (true, 1) | (true, 3) => ItemResult::Retry("Throttled: slow down".into()),
                        (_, 2) => ItemResult::Fail("ValidationException: bad".into()),
                        _ => ItemResult::Ok,
                    })
                    .collect()
            }
        })
        .await;
        assert_eq!(*calls.lock().unwrap(), vec![vec![0, 1, 2, 3], vec![1, 3]]);
        assert_eq!(outcomes[0], Ok(()));
        assert_eq!(outcomes[1], Ok(()));
        assert_eq!(
            outcomes[2],
            Err(ItemFailure::Refused("ValidationException: bad".into()))
        );
        assert_eq!(
            stats,
            RetryStats {
                attempts: 2,
                item_retries: 2
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn items_still_failing_are_reported_with_their_last_error() {
        let (outcomes, stats) = retry_items(2, policy(), Deadline::NONE, |pending| async move {
            pending
                .iter()
                .map(|_| ItemResult::Retry("ProvisionedThroughputExceededException: rate".into()))
                .collect()
        })
        .await;
        assert_eq!(stats.attempts, 4);
        for o in outcomes {
            assert_eq!(
                o,
                Err(ItemFailure::Exhausted {
                    attempts: 4,
                    last: "ProvisionedThroughputExceededException: rate".into()
                })
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_stops_retries_and_every_item_keeps_an_outcome() {
        let deadline = Deadline::after(Duration::from_millis(30));
        let (outcomes, stats) = retry_items(3, policy(), deadline, |pending| async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            pending
                .iter()
                .map(|&i| {
                    if i == 0 {
                        ItemResult::Ok
                    } else {
                        ItemResult::Retry("InternalFailure: x".into())
                    }
                })
                .collect()
        })
        .await;
        assert!(stats.attempts <= 2, "{stats:?}");
        assert_eq!(outcomes[0], Ok(()));
        assert!(
            outcomes[1..]
                .iter()
                .all(|o| matches!(o, Err(e) if e.is_transient()))
        );
    }

    #[tokio::test]
    async fn chunked_calls_keep_item_order() {
        let items: Vec<u32> = (0..53).collect();
        let refs: Vec<&u32> = items.iter().collect();
        let (answers, calls) = chunked(&refs, 25, |chunk| async move {
            chunk.iter().map(|i| **i * 2).collect::<Vec<_>>()
        })
        .await;
        assert_eq!(calls, 3);
        assert_eq!(answers, items.iter().map(|i| i * 2).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_answer_retries_the_unanswered_items() {
        let mut first = true;
        let (outcomes, _) = retry_items(3, policy(), Deadline::NONE, |pending| {
            let short = std::mem::take(&mut first);
            async move {
                if short {
                    vec![ItemResult::Ok]
                } else {
                    pending.iter().map(|_| ItemResult::Ok).collect()
                }
            }
        })
        .await;
        assert!(outcomes.iter().all(Result::is_ok));
    }
}
