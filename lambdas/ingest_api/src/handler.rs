//! One `POST /api/ingest` request: body (400/413), each event's envelope and topic, then the
//! stream. Answers:
//!
//! - `202 {"accepted": n, "rejected": [{"index", "reason"}]}` — every accepted event is in the
//!   stream; rejected ones (a batch's bad events) are named by position with the field at fault.
//! - `400`/`413 {"error", "message"}` — the request as a whole (or its single event) is wrong.
//! - `503 {"error": "stream_throttled", …, "unwritten": [indices]}` with `Retry-After` — the
//!   stream still throttled some records after the retries; those (and only those) were not
//!   written and must be sent again. `500 {"error": "stream_refused", …}` likewise when the
//!   stream refused them (permissions, a missing stream).
//!
//! A record is either in the stream or reported to the caller: never dropped.

use std::collections::HashMap;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::http::{HeaderValue, header};
use eventfabric_core::http::{decode_body, json_response};
use eventfabric_core::ingest::{IngestEvent, MAX_EVENT_BYTES, json_kind, partition_key};
use eventfabric_core::{Deadline, RetryPolicy, Timestamp};
use eventfabric_registry::{Registry, Route, Stream};
use serde::Serialize;

use crate::metrics;
use crate::request::{self, MAX_BODY_BYTES};
use crate::stream::{RecordStream, StreamRecord, WriteReport, write_records};

/// Seconds a throttled caller is asked to wait.
pub const RETRY_AFTER_SECONDS: i64 = 1;

/// The retries of one request: about 1.5 s of backoff at most, well inside the function's
/// timeout, so a stream at its limit answers 503 quickly rather than holding the caller.
pub const DEFAULT_RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 5,
    base_delay: std::time::Duration::from_millis(50),
    max_delay: std::time::Duration::from_millis(800),
};

/// The topics of the ingest stream, by name and alias → canonical name.
#[derive(Debug, Clone)]
pub struct StreamTopics {
    by_name: HashMap<String, String>,
}

impl StreamTopics {
    pub fn from_registry(registry: &Registry) -> Self {
        let by_name = registry
            .topics()
            .iter()
            .filter(|t| t.route() == Some(Route::Stream(Stream::Ingest)))
            .flat_map(|t| {
                std::iter::once(&t.topic)
                    .chain(&t.aliases)
                    .map(|n| (n.clone(), t.topic.clone()))
            })
            .collect();
        Self { by_name }
    }

    pub fn canonical(&self, name: &str) -> Option<&str> {
        self.by_name.get(name).map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// The ingest service: topics, the stream port, the retry policy.
#[derive(Debug, Clone)]
pub struct Ingest<S> {
    topics: StreamTopics,
    stream: S,
    retry: RetryPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejected {
    pub index: usize,
    pub reason: String,
}

#[derive(Serialize)]
struct Accepted<'a> {
    accepted: usize,
    rejected: &'a [Rejected],
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct Unwritten<'a> {
    error: &'a str,
    message: &'a str,
    accepted: usize,
    rejected: &'a [Rejected],
    /// Positions in the request of the events that are not in the stream: send them again.
    unwritten: &'a [usize],
}

impl<S: RecordStream> Ingest<S> {
    pub fn new(topics: StreamTopics, stream: S, retry: RetryPolicy) -> Self {
        Self {
            topics,
            stream,
            retry,
        }
    }

    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Answers one request (see the module), by `deadline`.
    pub async fn handle(
        &self,
        request: &ApiGatewayV2httpRequest,
        now_ms: i64,
        deadline: Deadline,
    ) -> ApiGatewayV2httpResponse {
        let request_id = request.request_context.request_id.as_deref().unwrap_or("-");
        let body = match decode_body(
            request.body.as_deref(),
            request.is_base64_encoded,
            MAX_BODY_BYTES,
        ) {
            Ok(body) => body,
            Err(e) => {
                let code = if e.status() == 413 {
                    "payload_too_large"
                } else {
                    "bad_request"
                };
                return refuse(request_id, e.status(), code, &e.to_string());
            }
        };
        let events = match request::parse(&body) {
            Ok(events) => events,
            Err(e) => return refuse(request_id, e.status, e.code, &e.message),
        };
        let total = events.events.len();
        let ingest_time = Timestamp(now_ms);
        let mut rejected = Vec::new();
        let mut records = Vec::with_capacity(total);
        // Request position of each record.
        let mut positions = Vec::with_capacity(total);
        for (index, raw) in events.events.iter().enumerate() {
            match self.record(raw.get(), ingest_time, request_id) {
                Ok(record) => {
                    records.push(record);
                    positions.push(index);
                }
                Err(reason) => rejected.push(Rejected { index, reason }),
            }
        }
        metrics::events_received(total, rejected.len());
        if events.single {
            if let Some(r) = rejected.first() {
                return refuse(request_id, 400, "invalid_event", &r.reason);
            }
        }
        let WriteReport {
            outcomes,
            retry,
            calls,
        } = write_records(&self.stream, &records, self.retry, deadline).await;
        metrics::stream_writes(calls, retry.item_retries);
        let mut unwritten = Vec::new();
        let mut throttled = false;
        let mut last_failure = String::new();
        for (outcome, &index) in outcomes.iter().zip(&positions) {
            if let Err(failure) = outcome {
                throttled |= failure.is_transient();
                last_failure = failure.to_string();
                unwritten.push(index);
            }
        }
        let accepted = records.len() - unwritten.len();
        metrics::events_written(accepted, unwritten.len());
        tracing::info!(
            request_id,
            received = total,
            accepted,
            rejected = rejected.len(),
            unwritten = unwritten.len(),
            calls,
            record_retries = retry.item_retries,
            "ingest request"
        );
        if unwritten.is_empty() {
            return json_response(
                202,
                &Accepted {
                    accepted,
                    rejected: &rejected,
                },
            );
        }
        let message = format!(
            "{} of {} event(s) are not in the stream ({}); send those again",
            unwritten.len(),
            total,
            eventfabric_core::text::bounded(last_failure)
        );
        tracing::warn!(request_id, unwritten = unwritten.len(), message = %message, "records not written");
        let (status, error) = if throttled {
            (503, "stream_throttled")
        } else {
            (500, "stream_refused")
        };
        let mut response = json_response(
            status,
            &Unwritten {
                error,
                message: &message,
                accepted,
                rejected: &rejected,
                unwritten: &unwritten,
            },
        );
        if throttled {
            response
                .headers
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        response
    }

    /// One event's stream record, or why it is rejected (the fields at fault).
    fn record(
        &self,
        text: &str,
        ingest_time: Timestamp,
        request_id: &str,
    ) -> Result<StreamRecord, String> {
        if text.len() > MAX_EVENT_BYTES {
            return Err(format!(
                "event: {} bytes; at most {MAX_EVENT_BYTES}",
                text.len()
            ));
        }
        if !text.starts_with('{') {
            return Err(format!("event: must be an object, not {}", json_kind(text)));
        }
        let event: IngestEvent = serde_json::from_str(text)
            .map_err(|e| format!("event: {}", eventfabric_core::text::bounded(e.to_string())))?;
        let mut checked = event.check().map_err(|errors| {
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })?;
        let Some(topic) = self.topics.canonical(&checked.event_type) else {
            return Err(format!(
                "event_type: {} is not a topic of the ingest stream (schemas/topics)",
                eventfabric_core::text::echo(&checked.event_type)
            ));
        };
        topic.clone_into(&mut checked.event_type);
        let key = partition_key(&checked.entity_id, &checked.event_type);
        let record = checked.into_record(ingest_time, request_id);
        let data = serde_json::to_vec(&record).map_err(|e| format!("event: {e}"))?;
        Ok(StreamRecord {
            partition_key: key,
            data,
        })
    }
}

fn refuse(request_id: &str, status: u16, code: &str, message: &str) -> ApiGatewayV2httpResponse {
    let message = eventfabric_core::text::bounded(message.to_owned());
    tracing::info!(request_id, status, error = code, message = %message, "ingest request refused");
    metrics::request_refused(status);
    json_response(
        status,
        &ErrorBody {
            error: code,
            message: &message,
        },
    )
}
