//! One Kinesis batch, record by record outcome (the core batch module's checkpoint rule):
//!
//! 1. **Check** each record ([`crate::validate`]). Malformed ones are published to the SNS
//!    topic ([`crate::malformed`]) and are done; a report SNS did not take is retried.
//! 2. **Collapse** the valid events to the newest per item (`entity_id`, `entity_type`; newest
//!    by event `timestamp`, stream order on a tie). The others are superseded within the batch
//!    and done: the table keeps the latest state, not every sample (the archive keeps those).
//! 3. **Guard**: read the stored timestamps of those items (`BatchGetItem`, consistent, 100
//!    keys per call). An event not newer than what is stored — a replay, a retried batch, a
//!    late event — is done without a write: `BatchWriteItem` has no conditions, so the check
//!    comes before it. Equal timestamps count as "not newer", which makes a redelivered batch
//!    write nothing twice.
//! 4. **Write** the rest (`BatchWriteItem`, 25 per call); `UnprocessedItems` and failed calls go
//!    again with backoff; what still fails is a batch item failure.
//!
//! The guard's one gap: two events for one item processed at the same moment by two
//! invocations. One item's events of one `event_type` share a partition key, so a shard and
//! one invocation at a time; only two *event types* of one entity can race, on two shards,
//! between one's read and the other's write (milliseconds). See the crate README.

use std::collections::HashMap;
use std::sync::Mutex;

use eventfabric_core::batch::{BatchOutcomes, Delivery, Outcome};
use eventfabric_core::retry::{ItemResult, chunked, retry_items};
use eventfabric_core::{Deadline, RetryPolicy, Timestamp};

use crate::malformed::{MAX_MESSAGES_PER_CALL, MalformedReport, MalformedSink};
use crate::table::{ItemKey, MAX_ITEMS_PER_WRITE, MAX_KEYS_PER_READ, Read, StateItem, StateTable};
use crate::validate::{Event, Topics};

/// One stream record: where it is, and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct InputRecord<'a> {
    pub sequence_number: &'a str,
    pub data: &'a [u8],
}

/// What one batch did, for logs, metrics and the call-count figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub records: usize,
    pub valid: usize,
    pub malformed: usize,
    /// Valid events not written because a newer one of the same item was in the batch.
    pub superseded: usize,
    /// Valid events not written because the table already held a state as new or newer.
    pub stale: usize,
    pub written: usize,
    /// Records left to retry (batch item failures before the checkpoint rule).
    pub retried: usize,
    pub read_calls: usize,
    pub write_calls: usize,
    pub publish_calls: usize,
}

/// The processor: compiled topics, the table and malformed-topic ports, the retry policy.
pub struct Processor<T, M> {
    topics: Topics,
    table: T,
    malformed: M,
    retry: RetryPolicy,
}

/// A batch's outcomes and what it did.
#[derive(Debug)]
pub struct BatchReport {
    pub outcomes: BatchOutcomes,
    pub stats: Stats,
}

/// Retries within one invocation: a few quick ones; past them the record goes back to the
/// stream, whose retries (bounded, then the on-failure destination) take over.
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: std::time::Duration::from_millis(50),
    max_delay: std::time::Duration::from_millis(1000),
};

impl<T: StateTable, M: MalformedSink> Processor<T, M> {
    pub fn new(topics: Topics, table: T, malformed: M, retry: RetryPolicy) -> Self {
        Self {
            topics,
            table,
            malformed,
            retry,
        }
    }

    pub fn table(&self) -> &T {
        &self.table
    }

    pub fn malformed(&self) -> &M {
        &self.malformed
    }

    /// Processes one batch (see the module) by `deadline`.
    pub async fn process(
        &self,
        records: &[InputRecord<'_>],
        now_ms: i64,
        deadline: Deadline,
    ) -> BatchReport {
        let mut outcomes = BatchOutcomes::new(
            Delivery::Ordered,
            records
                .iter()
                .map(|r| Some(r.sequence_number.to_owned()))
                .collect(),
        );
        let mut stats = Stats {
            records: records.len(),
            ..Stats::default()
        };
        let now = Timestamp(now_ms).to_rfc3339();

        let mut valid: Vec<(usize, Event)> = Vec::with_capacity(records.len());
        let mut reports: Vec<(usize, String)> = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match self.topics.check(record.data) {
                Ok(event) => valid.push((i, event)),
                Err(errors) => {
                    let report =
                        MalformedReport::new(&now, record.data, errors, record.sequence_number);
                    tracing::info!(
                        sequence_number = record.sequence_number,
                        event_type = report.event_type.as_deref().unwrap_or("-"),
                        severity = ?report.severity,
                        errors = report.errors.len(),
                        "malformed event"
                    );
                    reports.push((i, report.to_message()));
                }
            }
        }
        stats.valid = valid.len();
        stats.malformed = reports.len();

        // Malformed → SNS, 10 per call.
        if !reports.is_empty() {
            let calls = Mutex::new(0usize);
            let (published, _) = retry_items(reports.len(), self.retry, deadline, |pending| {
                let messages: Vec<&String> = pending.iter().map(|&p| &reports[p].1).collect();
                let calls = &calls;
                async move {
                    let (results, n) = chunked(&messages, MAX_MESSAGES_PER_CALL, |c| {
                        self.malformed.publish(c)
                    })
                    .await;
                    *calls.lock().unwrap() += n;
                    results
                }
            })
            .await;
            stats.publish_calls = calls.into_inner().unwrap();
            for ((i, _), result) in reports.iter().zip(published) {
                outcomes.set(
                    *i,
                    match result {
                        Ok(()) => Outcome::Done,
                        Err(e) => Outcome::Retry(format!("malformed report not published: {e}")),
                    },
                );
            }
        }

        // Newest per item; the rest superseded.
        let mut newest: HashMap<ItemKey, usize> = HashMap::new();
        for (v, (_, event)) in valid.iter().enumerate() {
            let key = (event.entity_id.clone(), event.entity_type.clone());
            match newest.get(&key) {
                Some(&w) if valid[w].1.timestamp > event.timestamp => {}
                _ => {
                    newest.insert(key, v);
                }
            }
        }
        let mut winners: Vec<usize> = newest.values().copied().collect();
        winners.sort_unstable();
        for (v, (i, _)) in valid.iter().enumerate() {
            if winners.binary_search(&v).is_err() {
                stats.superseded += 1;
                outcomes.set(*i, Outcome::Done);
            }
        }

        // Guard: stored timestamps.
        let keys: Vec<ItemKey> = winners
            .iter()
            .map(|&v| (valid[v].1.entity_id.clone(), valid[v].1.entity_type.clone()))
            .collect();
        let stored: Mutex<HashMap<usize, Option<i64>>> = Mutex::new(HashMap::new());
        let read_calls = Mutex::new(0usize);
        let (read, _) = retry_items(keys.len(), self.retry, deadline, |pending| {
            let keys = &keys;
            let stored = &stored;
            let read_calls = &read_calls;
            async move {
                let batch: Vec<&ItemKey> = pending.iter().map(|&k| &keys[k]).collect();
                let (answers, n) =
                    chunked(&batch, MAX_KEYS_PER_READ, |c| self.table.read_timestamps(c)).await;
                *read_calls.lock().unwrap() += n;
                let mut stored = stored.lock().unwrap();
                pending
                    .iter()
                    .zip(answers.into_iter().map(Some).chain(std::iter::repeat(None)))
                    .map(|(&k, answer)| match answer {
                        Some(Read::Found(ts)) => {
                            stored.insert(k, ts);
                            ItemResult::Ok
                        }
                        Some(Read::Retry(m)) => ItemResult::Retry(m),
                        None => ItemResult::Retry("InternalFailure: no answer for the key".into()),
                    })
                    .collect()
            }
        })
        .await;
        stats.read_calls = read_calls.into_inner().unwrap();
        let stored = stored.into_inner().unwrap();

        let mut to_write: Vec<(usize, StateItem)> = Vec::new();
        for (k, (&v, result)) in winners.iter().zip(read).enumerate() {
            let (i, event) = &mut valid[v];
            if let Err(e) = result {
                outcomes.set(*i, Outcome::Retry(format!("stored state not read: {e}")));
                continue;
            }
            let newer = match stored.get(&k).copied().flatten() {
                Some(ts) => event.timestamp.millis() > ts,
                None => true,
            };
            if newer {
                // The item takes the payload; the event is not read again.
                to_write.push((*i, item(event, records[*i].sequence_number)));
            } else {
                stats.stale += 1;
                outcomes.set(*i, Outcome::Done);
            }
        }

        // Write, 25 per call.
        let write_calls = Mutex::new(0usize);
        let (written, _) = retry_items(to_write.len(), self.retry, deadline, |pending| {
            let to_write = &to_write;
            let write_calls = &write_calls;
            async move {
                let batch: Vec<&StateItem> = pending.iter().map(|&p| &to_write[p].1).collect();
                let (results, n) =
                    chunked(&batch, MAX_ITEMS_PER_WRITE, |c| self.table.write(c)).await;
                *write_calls.lock().unwrap() += n;
                results
            }
        })
        .await;
        stats.write_calls = write_calls.into_inner().unwrap();
        for ((i, _), result) in to_write.iter().zip(written) {
            match result {
                Ok(()) => {
                    stats.written += 1;
                    outcomes.set(*i, Outcome::Done);
                }
                Err(e) => outcomes.set(*i, Outcome::Retry(format!("state not written: {e}"))),
            }
        }
        stats.retried = outcomes.counts().retried;
        BatchReport { outcomes, stats }
    }
}

/// The state item of a valid event. The payload moves into the item (a deep copy per event
/// was a tenth of the processor's time).
pub fn item(event: &mut Event, sequence_number: &str) -> StateItem {
    let payload = std::mem::take(&mut event.payload);
    let r = &*event;
    StateItem {
        entity_id: r.entity_id.clone(),
        entity_type: r.entity_type.clone(),
        event_type: r.event_type.clone(),
        timestamp: r.timestamp.millis(),
        event_time: r.timestamp.to_rfc3339(),
        payload,
        ingest_time: r.ingest_time.to_rfc3339(),
        request_id: r.request_id.clone(),
        sequence_number: sequence_number.to_owned(),
    }
}
