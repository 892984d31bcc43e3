//! The stream port: one `PutRecords` call, answered per record. [`KinesisStream`] is the SDK
//! adapter, [`MemoryStream`] the in-memory one (with scripted throttling) that tests and the
//! simulations use. [`write_records`] packs records into calls and retries only the failed ones.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use eventfabric_core::retry::{ItemFailure, ItemResult, RetryStats, retry_items};
use eventfabric_core::{Deadline, RetryPolicy};

/// At most this many records per `PutRecords` call (Kinesis' limit).
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// At most this many bytes (data and partition keys) per call (Kinesis' limit: 5 MiB).
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;

/// One record for the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    pub partition_key: String,
    pub data: Vec<u8>,
}

impl StreamRecord {
    /// What the record counts against a call's 5 MiB.
    pub fn size(&self) -> usize {
        self.data.len().saturating_add(self.partition_key.len())
    }
}

/// One `PutRecords` call: one [`ItemResult`] per record, in order. A failed call is a failure
/// of each of its records (Retry when transient, Fail when refused).
pub trait RecordStream: Send + Sync {
    fn put_records(
        &self,
        records: &[&StreamRecord],
    ) -> impl Future<Output = Vec<ItemResult>> + Send;
}

/// Splits `records` (by position) into calls of at most 500 records and 5 MiB, in order.
pub fn calls(records: &[&StreamRecord]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    for (i, record) in records.iter().enumerate() {
        let size = record.size();
        if i > start
            && (i - start == MAX_RECORDS_PER_CALL
                || bytes.saturating_add(size) > MAX_BYTES_PER_CALL)
        {
            ranges.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes = bytes.saturating_add(size);
    }
    if start < records.len() {
        ranges.push(start..records.len());
    }
    ranges
}

/// What [`write_records`] did.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    /// One outcome per record, in order.
    pub outcomes: Vec<Result<(), ItemFailure>>,
    pub retry: RetryStats,
    /// `PutRecords` calls made.
    pub calls: usize,
}

/// Writes `records`: packed into calls, the calls of one attempt in parallel, then only the
/// records that failed transiently again with backoff, until each is in the stream, refused, or
/// out of attempts or time.
pub async fn write_records<S: RecordStream>(
    stream: &S,
    records: &[StreamRecord],
    policy: RetryPolicy,
    deadline: Deadline,
) -> WriteReport {
    let calls_made = std::sync::atomic::AtomicUsize::new(0);
    let (outcomes, retry) = retry_items(records.len(), policy, deadline, |pending| {
        let calls_made = &calls_made;
        async move {
            let batch: Vec<&StreamRecord> = pending.iter().map(|&i| &records[i]).collect();
            let ranges = calls(&batch);
            calls_made.fetch_add(ranges.len(), std::sync::atomic::Ordering::Relaxed);
            let answers = futures_util::future::join_all(
                ranges.iter().map(|r| stream.put_records(&batch[r.clone()])),
            )
            .await;
            answers.into_iter().flatten().collect()
        }
    })
    .await;
    WriteReport {
        outcomes,
        retry,
        calls: calls_made.into_inner(),
    }
}

/// `PutRecords` through the AWS SDK, to one stream (by name or ARN).
#[derive(Debug, Clone)]
pub struct KinesisStream {
    client: aws_sdk_kinesis::Client,
    stream: String,
}

impl KinesisStream {
    /// `stream` is the stream's name or ARN (`arn:` prefix).
    pub fn new(client: aws_sdk_kinesis::Client, stream: impl Into<String>) -> Self {
        Self {
            client,
            stream: stream.into(),
        }
    }
}

/// Record error codes worth another attempt (Kinesis returns only these two per record; a
/// KMS throttle arrives as a call error).
fn is_transient_record_code(code: &str) -> bool {
    matches!(
        code,
        "ProvisionedThroughputExceededException" | "InternalFailure"
    ) || eventfabric_core::aws::is_transient_code(code)
}

impl RecordStream for KinesisStream {
    async fn put_records(&self, records: &[&StreamRecord]) -> Vec<ItemResult> {
        let entries: Result<Vec<PutRecordsRequestEntry>, _> = records
            .iter()
            .map(|r| {
                PutRecordsRequestEntry::builder()
                    .partition_key(&r.partition_key)
                    .data(Blob::new(r.data.clone()))
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => return vec![ItemResult::Fail(format!("BuildError: {e}")); records.len()],
        };
        let request = self.client.put_records().set_records(Some(entries));
        let request = if self.stream.starts_with("arn:") {
            request.stream_arn(&self.stream)
        } else {
            request.stream_name(&self.stream)
        };
        match request.send().await {
            Ok(output) => output
                .records()
                .iter()
                .map(|r| match r.error_code() {
                    None => ItemResult::Ok,
                    Some(code) => {
                        let message = format!("{code}: {}", r.error_message().unwrap_or(""));
                        if is_transient_record_code(code) {
                            ItemResult::Retry(message)
                        } else {
                            ItemResult::Fail(message)
                        }
                    }
                })
                .collect(),
            Err(e) => {
                let result = match sdk_failure(&e) {
                    SdkFailure::Transient(m) => ItemResult::Retry(m),
                    SdkFailure::Refused(m) if m.starts_with("KMSThrottlingException") => {
                        ItemResult::Retry(m)
                    }
                    SdkFailure::Refused(m) => ItemResult::Fail(m),
                };
                vec![result; records.len()]
            }
        }
    }
}

/// What the in-memory stream does with the next call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Script {
    /// Throttle these positions of the call (the rest are written).
    Throttle(Vec<usize>),
    /// Throttle every record of the call.
    ThrottleAll,
    /// Refuse the call (e.g. AccessDenied).
    Refuse(String),
}

/// An in-memory stream: records kept in arrival order, with an optional script of failures,
/// one entry per call (calls beyond the script succeed).
#[derive(Debug, Clone, Default)]
pub struct MemoryStream {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    records: Vec<StreamRecord>,
    script: VecDeque<Script>,
    calls: usize,
    throttle_always: bool,
}

impl MemoryStream {
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues what the next calls do.
    pub fn script(&self, steps: impl IntoIterator<Item = Script>) {
        self.inner.lock().unwrap().script.extend(steps);
    }

    /// Throttles every record of every call from now on (a stream at its limit).
    pub fn throttle_always(&self, on: bool) {
        self.inner.lock().unwrap().throttle_always = on;
    }

    /// The records written so far, in order.
    pub fn records(&self) -> Vec<StreamRecord> {
        self.inner.lock().unwrap().records.clone()
    }

    pub fn calls(&self) -> usize {
        self.inner.lock().unwrap().calls
    }
}

const THROTTLED: &str = "ProvisionedThroughputExceededException: Rate exceeded for shard";

impl RecordStream for MemoryStream {
    async fn put_records(&self, records: &[&StreamRecord]) -> Vec<ItemResult> {
        let mut inner = self.inner.lock().unwrap();
        inner.calls += 1;
        assert!(
            records.len() <= MAX_RECORDS_PER_CALL,
            "a call of {} records",
            records.len()
        );
        let bytes: usize = records.iter().map(|r| r.size()).sum();
        assert!(bytes <= MAX_BYTES_PER_CALL, "a call of {bytes} bytes");
        let step = if inner.throttle_always {
            Some(Script::ThrottleAll)
        } else {
            inner.script.pop_front()
        };
        let throttled = |i: usize| match &step {
            Some(Script::ThrottleAll) => true,
            Some(Script::Throttle(positions)) => positions.contains(&i),
            _ => false,
        };
        if let Some(Script::Refuse(message)) = &step {
            return vec![ItemResult::Fail(message.clone()); records.len()];
        }
        let mut results = Vec::with_capacity(records.len());
        for (i, record) in records.iter().enumerate() {
            if throttled(i) {
                results.push(ItemResult::Retry(THROTTLED.into()));
            } else {
                inner.records.push((*record).clone());
                results.push(ItemResult::Ok);
            }
        }
        results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: usize) -> StreamRecord {
        StreamRecord {
            partition_key: "k".repeat(32),
            data: vec![b'x'; bytes],
        }
    }

    #[test]
    fn calls_hold_at_most_500_records_and_5_mib() {
        let small: Vec<StreamRecord> = (0..1201).map(|_| record(100)).collect();
        let refs: Vec<&StreamRecord> = small.iter().collect();
        assert_eq!(calls(&refs), vec![0..500, 500..1000, 1000..1201]);
        // 60 KB records: 5 MiB holds 85 of them with their keys.
        let big: Vec<StreamRecord> = (0..200).map(|_| record(60 * 1024)).collect();
        let refs: Vec<&StreamRecord> = big.iter().collect();
        let ranges = calls(&refs);
        assert_eq!(ranges[0], 0..85);
        for r in &ranges {
            let bytes: usize = refs[r.clone()].iter().map(|r| r.size()).sum();
            assert!(bytes <= MAX_BYTES_PER_CALL);
        }
        assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), 200);
        assert!(calls(&[]).is_empty());
    }
}
