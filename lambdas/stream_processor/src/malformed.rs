//! Malformed events leave the stream for an SNS topic, once, as
//! `{timestamp, event_type, errors[], raw_event, severity}` (`critical` when more than
//! [`CRITICAL_ABOVE`] errors), and are not retried: the stream moves on. A report SNS did not
//! take makes its record a batch item failure, so the event is never lost between the two.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_sns::types::PublishBatchRequestEntry;
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use eventfabric_core::retry::ItemResult;
use serde::Serialize;

/// More errors than this make a report `critical`.
pub const CRITICAL_ABOVE: usize = 3;
/// Messages per `PublishBatch` call (SNS' limit).
pub const MAX_MESSAGES_PER_CALL: usize = 10;
/// The longest `raw_event` quoted, in bytes: an SNS message may be 256 KB, a batch 256 KB in
/// all; ingest records are at most 64 KB, anything longer was not written by the ingest API.
pub const MAX_RAW_EVENT_BYTES: usize = 24 * 1024;

/// One malformed event's report.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MalformedReport {
    /// When the processor found it, RFC 3339.
    pub timestamp: String,
    /// The record's `event_type`, when it could be read.
    pub event_type: Option<String>,
    pub errors: Vec<String>,
    /// The record as it was in the stream (UTF-8, lossy), cut to [`MAX_RAW_EVENT_BYTES`].
    pub raw_event: String,
    #[serde(default)]
    pub raw_event_truncated: bool,
    pub severity: Severity,
    /// Where it was in the stream, to find it again.
    pub sequence_number: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Critical,
}

impl MalformedReport {
    pub fn new(now: &str, data: &[u8], errors: Vec<String>, sequence_number: &str) -> Self {
        let event_type = serde_json::from_slice::<serde_json::Value>(data)
            .ok()
            .and_then(|v| v.get("event_type")?.as_str().map(str::to_owned));
        let mut raw_event = String::from_utf8_lossy(data).into_owned();
        let truncated = raw_event.len() > MAX_RAW_EVENT_BYTES;
        if truncated {
            let mut end = MAX_RAW_EVENT_BYTES;
            while !raw_event.is_char_boundary(end) {
                end -= 1;
            }
            raw_event.truncate(end);
        }
        Self {
            timestamp: now.to_owned(),
            event_type,
            severity: if errors.len() > CRITICAL_ABOVE {
                Severity::Critical
            } else {
                Severity::Warning
            },
            errors,
            raw_event,
            raw_event_truncated: truncated,
            sequence_number: sequence_number.to_owned(),
        }
    }

    pub fn to_message(&self) -> String {
        serde_json::to_string(self).expect("a report serializes")
    }
}

/// One `PublishBatch` call of at most 10 messages: one [`ItemResult`] per message, in order.
pub trait MalformedSink: Send + Sync {
    fn publish(&self, messages: &[&String]) -> impl Future<Output = Vec<ItemResult>> + Send;
}

/// SNS `PublishBatch` to the malformed-events topic.
#[derive(Debug, Clone)]
pub struct SnsTopic {
    client: aws_sdk_sns::Client,
    topic_arn: String,
}

impl SnsTopic {
    pub fn new(client: aws_sdk_sns::Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

impl MalformedSink for SnsTopic {
    async fn publish(&self, messages: &[&String]) -> Vec<ItemResult> {
        let entries: Result<Vec<_>, _> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                PublishBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message(m.as_str())
                    .build()
            })
            .collect();
        let entries = match entries {
            Ok(e) => e,
            Err(e) => return vec![ItemResult::Fail(format!("BuildError: {e}")); messages.len()],
        };
        match self
            .client
            .publish_batch()
            .topic_arn(&self.topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                let mut results =
                    vec![
                        ItemResult::Retry("InternalFailure: no result for the message".into());
                        messages.len()
                    ];
                for ok in output.successful() {
                    if let Some(i) = ok.id().and_then(|id| id.parse::<usize>().ok()) {
                        if let Some(slot) = results.get_mut(i) {
                            *slot = ItemResult::Ok;
                        }
                    }
                }
                for failed in output.failed() {
                    if let Ok(i) = failed.id().parse::<usize>() {
                        let message =
                            format!("{}: {}", failed.code(), failed.message().unwrap_or(""));
                        if let Some(slot) = results.get_mut(i) {
                            *slot = if failed.sender_fault() {
                                ItemResult::Fail(message)
                            } else {
                                ItemResult::Retry(message)
                            };
                        }
                    }
                }
                results
            }
            Err(e) => {
                // Every failure of the call is retried: a refused publish (a key policy, a
                // deleted topic) must not drop the report, and the record's retries are
                // bounded by the event source mapping and its on-failure destination.
                let message = match sdk_failure(&e) {
                    SdkFailure::Transient(m) | SdkFailure::Refused(m) => m,
                };
                vec![ItemResult::Retry(message); messages.len()]
            }
        }
    }
}

/// An in-memory topic: messages kept in order; scripted calls fail.
#[derive(Debug, Clone, Default)]
pub struct MemoryTopic {
    inner: Arc<Mutex<(Vec<String>, VecDeque<bool>)>>,
}

impl MemoryTopic {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next calls fail (true) or succeed (false), in order; later calls succeed.
    pub fn script(&self, failures: impl IntoIterator<Item = bool>) {
        self.inner.lock().unwrap().1.extend(failures);
    }

    pub fn messages(&self) -> Vec<String> {
        self.inner.lock().unwrap().0.clone()
    }

    pub fn reports(&self) -> Vec<MalformedReport> {
        self.messages()
            .iter()
            .map(|m| serde_json::from_str(m).expect("a report"))
            .collect()
    }
}

impl MalformedSink for MemoryTopic {
    async fn publish(&self, messages: &[&String]) -> Vec<ItemResult> {
        let mut inner = self.inner.lock().unwrap();
        assert!(messages.len() <= MAX_MESSAGES_PER_CALL);
        if inner.1.pop_front().unwrap_or(false) {
            return vec![
                ItemResult::Retry("InternalError: SNS is unavailable".into());
                messages.len()
            ];
        }
        inner.0.extend(messages.iter().map(|m| (*m).clone()));
        vec![ItemResult::Ok; messages.len()]
    }
}
