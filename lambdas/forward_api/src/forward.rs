//! The forward use case: every event of a request is checked on its own, the survivors are
//! published, and the answer says what happened to each one.

// Every number here may come from a client: arithmetic is checked or saturating, and clippy
// holds new code to that.
#![deny(clippy::arithmetic_side_effects)]

use std::borrow::Cow;

use std::time::Duration;

use eventfabric_core::{
    BusEntry, Deadline, DetailHead, DetailWriter, EventSink, INTERFACE_SOURCE, PublishError,
};
use eventfabric_registry::{Bus, ForwardingPolicy};
use serde::Serialize;

use crate::redact::Redactor;
use crate::request::{Event, EventSlot, ForwardRequest, RequestLimits};
use crate::request::{bounded, echo};
use crate::state::{Claim, SessionState, StateError};
use crate::tape::{Item, Tape};
use crate::topics::{CompiledTopic, CompiledTopics, semver_major};

/// Why an event was not forwarded. The wire names are part of the API contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not a valid event envelope (missing or mistyped field).
    MalformedEvent,
    /// The same event id appears twice in one request.
    DuplicateEvent,
    /// The session already forwarded an event with this id within the idempotency window (2
    /// minutes): it is not sent again. A client retrying after a lost answer gets this for the
    /// events that did go through.
    AlreadyForwarded,
    UnknownTopic,
    /// The topic's forwarding policy is `deny`.
    TopicDenied,
    /// `schemaVersion` has another major version than the registry.
    UnsupportedSchemaVersion,
    SchemaViolation,
    PayloadTooLarge,
    /// Client timestamp older than the allowed clock skew.
    StaleEvent,
    /// Client timestamp further ahead than the allowed clock skew.
    FutureEvent,
    /// Dropped by the topic's sampling policy (deterministic on the event id).
    SampledOut,
    /// The topic needs a redaction this deployment cannot perform; never sent unredacted.
    RedactionUnavailable,
    /// Accepted by every check but not published (bus refused or retries ran out).
    PublishFailed,
}

impl RejectReason {
    pub const ALL: [RejectReason; 13] = [
        Self::MalformedEvent,
        Self::DuplicateEvent,
        Self::AlreadyForwarded,
        Self::UnknownTopic,
        Self::TopicDenied,
        Self::UnsupportedSchemaVersion,
        Self::SchemaViolation,
        Self::PayloadTooLarge,
        Self::StaleEvent,
        Self::FutureEvent,
        Self::SampledOut,
        Self::RedactionUnavailable,
        Self::PublishFailed,
    ];

    /// The wire name (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedEvent => "malformed_event",
            Self::DuplicateEvent => "duplicate_event",
            Self::AlreadyForwarded => "already_forwarded",
            Self::UnknownTopic => "unknown_topic",
            Self::TopicDenied => "topic_denied",
            Self::UnsupportedSchemaVersion => "unsupported_schema_version",
            Self::SchemaViolation => "schema_violation",
            Self::PayloadTooLarge => "payload_too_large",
            Self::StaleEvent => "stale_event",
            Self::FutureEvent => "future_event",
            Self::SampledOut => "sampled_out",
            Self::RedactionUnavailable => "redaction_unavailable",
            Self::PublishFailed => "publish_failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    /// The event id, or null when the event had none.
    pub id: Option<String>,
    /// Position of the event in the request, so id-less events can be matched too.
    pub index: usize,
    pub reason: RejectReason,
    /// A human-readable explanation (field, JSON pointer, limit).
    pub detail: String,
}

/// The 202 answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ForwardOutcome {
    pub accepted: Vec<String>,
    pub rejected: Vec<Rejection>,
}

/// Per-event limits and the bus names of this deployment.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub session_bus: String,
    pub analytics_bus: Option<String>,
    pub max_payload_bytes: usize,
    pub max_clock_skew_ms: i64,
    pub request: RequestLimits,
    /// Events one session may send per minute (see [`crate::state`] for the algorithm).
    pub quota_events_per_minute: u32,
    /// How long an idempotency claim stays pending before another request may take it over;
    /// must be longer than the function timeout.
    pub claim_lease_seconds: i64,
    /// The longest one state store call may take before it counts as unavailable (its normal
    /// latency is a few milliseconds): a hanging store must not eat the time publishing needs.
    pub store_call_timeout: Duration,
    /// Kept free before the answer deadline, after publishing stops, for confirming and
    /// releasing claims.
    pub cleanup_reserve: Duration,
}

impl ForwardConfig {
    /// The limits of systems.md §1: 4 KB payloads, 2 minutes of clock skew, and requests of
    /// at most 50 events in 256 KB.
    pub fn with_buses(session_bus: impl Into<String>, analytics_bus: Option<String>) -> Self {
        Self {
            session_bus: session_bus.into(),
            analytics_bus,
            max_payload_bytes: 4 * 1024,
            max_clock_skew_ms: 2 * 60 * 1000,
            request: RequestLimits {
                max_body_bytes: 256 * 1024,
                max_events: 50,
            },
            quota_events_per_minute: 600,
            claim_lease_seconds: crate::state::DEFAULT_CLAIM_LEASE_SECONDS,
            store_call_timeout: Duration::from_secs(1),
            cleanup_reserve: Duration::from_millis(300),
        }
    }
}

/// The forwarding service: pure logic over an [`EventSink`] and a [`SessionState`].
pub struct Forwarder<S, St> {
    topics: CompiledTopics,
    sink: S,
    state: St,
    redactor: Redactor,
    config: ForwardConfig,
}

impl<S: EventSink, St: SessionState> Forwarder<S, St> {
    /// A forwarder without a hashing key: topics whose hints hash a present field are refused
    /// (`redaction_unavailable`) until [`Forwarder::with_redactor`] gives it one.
    pub fn new(topics: CompiledTopics, sink: S, state: St, config: ForwardConfig) -> Self {
        Self {
            topics,
            sink,
            state,
            redactor: Redactor::without_hashing(),
            config,
        }
    }

    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.redactor = redactor;
        self
    }

    pub fn state(&self) -> &St {
        &self.state
    }

    pub fn config(&self) -> &ForwardConfig {
        &self.config
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// Until when work (store calls, publish attempts) may run so that the answer, with claims
    /// confirmed or released, is ready by `answer_by`.
    pub fn work_deadline(&self, answer_by: Deadline) -> Deadline {
        answer_by.earlier_by(self.config.cleanup_reserve)
    }

    /// One state store call, bounded by `deadline` and the per-call timeout; a call that does
    /// not answer in time counts as the store being unavailable.
    pub(crate) async fn store_call<T>(
        &self,
        deadline: Deadline,
        call: impl Future<Output = Result<T, StateError>>,
    ) -> Result<T, StateError> {
        let timeout = self.config.store_call_timeout;
        deadline
            .or_within(timeout)
            .run(call)
            .await
            .unwrap_or_else(|| {
                Err(StateError::Unavailable(format!(
                    "no answer within {} ms",
                    deadline
                        .remaining()
                        .unwrap_or(timeout)
                        .min(timeout)
                        .as_millis()
                )))
            })
    }

    /// Checks every event, publishes the ones that pass, and reports each event's fate, all
    /// by `answer_by` (the invocation's deadline less the time needed to send the answer).
    pub async fn forward(
        &self,
        request: ForwardRequest<'_>,
        now_ms: i64,
        answer_by: Deadline,
    ) -> ForwardOutcome {
        let work = self.work_deadline(answer_by);
        let mut outcome = ForwardOutcome {
            accepted: Vec::with_capacity(request.events.len()),
            rejected: Vec::new(),
        };
        let mut entries = Vec::with_capacity(request.events.len());
        let mut entry_index = Vec::with_capacity(request.events.len());
        // Ids seen so far: a linear scan beats hashing for requests of at most a few dozen
        // events (the limit is 50).
        let mut seen: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(request.events.len());
        let ForwardRequest {
            events,
            client,
            mut values,
        } = request;
        let details = DetailWriter::new(&client.session_id, &client.tab_id, &client.app_version);

        // By reference: an event is ~140 bytes, and moving each out cost a copy.
        for (index, slot) in events.iter().enumerate() {
            let event = match slot {
                EventSlot::Event(event) => event,
                EventSlot::Malformed { id, detail } => {
                    outcome.rejected.push(Rejection {
                        id: id.clone(),
                        index,
                        reason: RejectReason::MalformedEvent,
                        detail: bounded(format!("not a valid event: {detail}")),
                    });
                    continue;
                }
            };
            let reject = |reason, detail: String| Rejection {
                id: Some(event.id.clone().into_owned()),
                index,
                reason,
                detail: bounded(detail),
            };
            if seen.contains(&event.id) {
                outcome.rejected.push(reject(
                    RejectReason::DuplicateEvent,
                    format!("event id '{}' appears more than once", event.id),
                ));
                continue;
            }
            seen.push(event.id.clone());
            match self.check_event(event, now_ms, &mut values) {
                Ok((topic, redacted)) => {
                    match self.entry(&details, event, topic, &values, redacted) {
                        Ok(entry) => {
                            entries.push(entry);
                            entry_index.push(index);
                        }
                        Err(detail) => outcome
                            .rejected
                            .push(reject(RejectReason::PublishFailed, detail)),
                    }
                }
                Err((reason, detail)) => outcome.rejected.push(reject(reason, detail)),
            }
        }
        drop(seen);

        let session_id = client.session_id.as_str();
        let (entries, entry_index) = self
            .claim_new(session_id, entries, entry_index, now_ms, work, &mut outcome)
            .await;

        let results = if entries.is_empty() {
            Vec::new()
        } else {
            // The sink stops by `work`; this bounds an adapter that would not.
            answer_by
                .run(self.sink.publish(&entries, work))
                .await
                .unwrap_or_else(|| {
                    let cut_off = PublishError::DeadlineReached {
                        attempts: 0,
                        code: "Timeout".into(),
                        message: "the sink did not answer before the deadline".into(),
                    };
                    vec![Err(cut_off); entries.len()]
                })
        };
        let mut unpublished = Vec::new();
        let ids = entries.into_iter().map(|entry| entry.id);
        for ((id, index), result) in ids.zip(entry_index).zip(results) {
            match result {
                Ok(()) => outcome.accepted.push(id),
                Err(e) => {
                    unpublished.push(outcome.rejected.len());
                    outcome.rejected.push(Rejection {
                        id: Some(id),
                        index,
                        reason: RejectReason::PublishFailed,
                        detail: bounded(e.to_string()),
                    });
                }
            }
        }
        if !outcome.accepted.is_empty() {
            let ids: Vec<&str> = outcome.accepted.iter().map(String::as_str).collect();
            let confirm = self.state.confirm(session_id, &ids, now_ms);
            if let Err(e) = self.store_call(answer_by, confirm).await {
                tracing::warn!(error = %e, events = ids.len(), "idempotency keys of published events not confirmed; a retry after the claim lease may send them again (consumers dedupe)");
                crate::metrics::state_store_error();
            }
        }
        if !unpublished.is_empty() {
            // Let the client's retry through: these ids were never delivered.
            let ids: Vec<&str> = unpublished
                .iter()
                .filter_map(|&i| outcome.rejected[i].id.as_deref())
                .collect();
            let release = self.state.release(session_id, &ids);
            if let Err(e) = self.store_call(answer_by, release).await {
                tracing::warn!(error = %e, events = ids.len(), "idempotency keys of unpublished events not released; a retry within 2 minutes will be reported as already_forwarded");
                crate::metrics::state_store_error();
            }
        }
        outcome.rejected.sort_by_key(|r| r.index);
        outcome
    }

    /// Claims the idempotency key of every entry and keeps the new ones. When the store is
    /// unavailable, the entry is forwarded anyway: delivery is at least once and consumers
    /// dedupe on the event id, while refusing would lose the event. When the store refuses the
    /// claim (the request is invalid to it), the entry is not forwarded: that is no outage, and
    /// forwarding would let a client switch deduplication off at will.
    async fn claim_new<'e>(
        &self,
        session_id: &str,
        mut entries: Vec<BusEntry<'e>>,
        mut entry_index: Vec<usize>,
        now_ms: i64,
        work: Deadline,
        outcome: &mut ForwardOutcome,
    ) -> (Vec<BusEntry<'e>>, Vec<usize>) {
        if entries.is_empty() {
            return (entries, entry_index);
        }
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let claims = self
            .store_call(work, async {
                Ok(self
                    .state
                    .claim(session_id, &ids, self.config.claim_lease_seconds, now_ms)
                    .await)
            })
            .await
            .unwrap_or_else(|e| vec![Err(e); ids.len()]);
        drop(ids);
        let mut unavailable = 0usize;
        let mut refused = 0usize;
        // Compacted in place: kept entries move to the front, in order.
        let mut kept = 0;
        let mut claims = claims.into_iter();
        for i in 0..entries.len() {
            // A store that answers for fewer entries than asked counts as failing for the rest.
            match claims.next() {
                Some(Ok(Claim::Duplicate)) => {
                    let id = std::mem::take(&mut entries[i].id);
                    outcome.rejected.push(Rejection {
                        detail: format!(
                            "event '{id}' was already forwarded for this session within the last 2 minutes"
                        ),
                        id: Some(id),
                        index: entry_index[i],
                        reason: RejectReason::AlreadyForwarded,
                    });
                    continue;
                }
                Some(Err(StateError::Refused(e))) => {
                    refused = refused.saturating_add(1);
                    let id = std::mem::take(&mut entries[i].id);
                    outcome.rejected.push(Rejection {
                        detail: bounded(format!(
                            "not forwarded: the idempotency store refused its claim ({e})"
                        )),
                        id: Some(id),
                        index: entry_index[i],
                        reason: RejectReason::PublishFailed,
                    });
                    continue;
                }
                Some(Ok(Claim::New)) => {}
                Some(Err(StateError::Unavailable(_))) | None => {
                    unavailable = unavailable.saturating_add(1);
                }
            }
            entries.swap(kept, i);
            entry_index.swap(kept, i);
            kept = kept.saturating_add(1);
        }
        entries.truncate(kept);
        entry_index.truncate(kept);
        if unavailable > 0 {
            tracing::warn!(
                events = unavailable,
                "idempotency store unavailable; forwarding without deduplication"
            );
            crate::metrics::state_store_error();
        }
        if refused > 0 {
            tracing::error!(
                events = refused,
                "idempotency store refused claims; those events were not forwarded"
            );
            crate::metrics::state_store_error();
        }
        (entries, entry_index)
    }

    /// The per-event checks, in the order that gives the most useful reason first. Returns the
    /// topic and whether redaction changed the payload, which it edits where it is in the
    /// request's tape (`values`).
    fn check_event<'t, 'r>(
        &'t self,
        event: &Event<'r>,
        now_ms: i64,
        values: &mut Tape<'r>,
    ) -> Result<(&'t CompiledTopic, bool), (RejectReason, String)> {
        let topic = self.topics.resolve(&event.topic).ok_or_else(|| {
            (
                RejectReason::UnknownTopic,
                format!("topic {} is not in the registry", echo(&event.topic)),
            )
        })?;
        let spec = &topic.spec;
        if event
            .meta
            .is_some_and(|m| !matches!(values.item(m.index), Item::Object { .. }))
        {
            return Err((
                RejectReason::MalformedEvent,
                "meta: must be an object".to_owned(),
            ));
        }
        if spec.forwarding_policy == ForwardingPolicy::Deny {
            return Err((
                RejectReason::TopicDenied,
                format!("topic '{}' is never forwarded", spec.topic),
            ));
        }
        if semver_major(&event.schema_version) != Some(topic.major) {
            return Err((
                RejectReason::UnsupportedSchemaVersion,
                format!(
                    "schemaVersion {} does not match the registry's {} (major {})",
                    echo(&event.schema_version),
                    spec.version,
                    topic.major
                ),
            ));
        }
        // In i128: `ts` is any i64 the client chose, and the distance between two i64 always
        // fits, so an ancient `ts` is stale by its true distance, never a wrapped-around future.
        let skew = i128::from(event.ts.millis()).saturating_sub(i128::from(now_ms));
        let max_skew = i128::from(self.config.max_clock_skew_ms);
        if skew < max_skew.saturating_neg() {
            return Err((
                RejectReason::StaleEvent,
                format!(
                    "ts is {} ms in the past; at most {max_skew} ms allowed",
                    skew.unsigned_abs(),
                ),
            ));
        }
        if skew > max_skew {
            return Err((
                RejectReason::FutureEvent,
                format!("ts is {skew} ms in the future; at most {max_skew} ms allowed"),
            ));
        }
        // The payload as the client sent it: the size the limit is about, measured without
        // re-serializing.
        let payload_bytes = event.payload.text.len();
        if payload_bytes > self.config.max_payload_bytes {
            return Err((
                RejectReason::PayloadTooLarge,
                format!(
                    "payload is {payload_bytes} bytes; the limit is {}",
                    self.config.max_payload_bytes
                ),
            ));
        }
        // What the body reader kept for this event to refuse: a value that cannot be decoded,
        // or an object repeating a member name.
        let repeats = |field: &str, at: usize| {
            if let Some(problem) = values.problem_in(at) {
                return Err((RejectReason::MalformedEvent, format!("{field}: {problem}")));
            }
            values
                .refuse_repeats(at)
                .map_err(|e| (RejectReason::MalformedEvent, format!("{field}: {e}")))
        };
        repeats("payload", event.payload.index)?;
        if let Some(meta) = event.meta {
            repeats("meta", meta.index)?;
        }
        // Checked where they are in the request's tape.
        let meta_node = event.meta.map(|m| values.node(m.index));
        if let Some(violation) = topic.violation(values.node(event.payload.index), meta_node) {
            return Err((RejectReason::SchemaViolation, violation));
        }
        if !topic.keeps_sample(&event.id) {
            return Err((
                RejectReason::SampledOut,
                format!("topic '{}' forwards a sample of its events", spec.topic),
            ));
        }
        let Some(plan) = topic.redaction.as_ref() else {
            return Ok((topic, false));
        };
        let redacted = self
            .redactor
            .redact_at(values, event.payload.index, Some(plan))
            .map_err(|detail| (RejectReason::RedactionUnavailable, detail))?;
        Ok((topic, redacted))
    }

    fn entry<'t>(
        &'t self,
        details: &DetailWriter,
        event: &Event,
        topic: &'t CompiledTopic,
        values: &Tape<'_>,
        redacted: bool,
    ) -> Result<BusEntry<'t>, String> {
        let bus = topic.spec.bus;
        let bus_name = match bus {
            Bus::Session => Some(self.config.session_bus.as_str()),
            Bus::Analytics => self.config.analytics_bus.as_deref(),
        }
        .ok_or_else(|| format!("no {} bus is configured for this deployment", bus.as_str()))?;
        let head = DetailHead {
            id: &event.id,
            topic: &topic.spec.topic,
            schema_version: &event.schema_version,
            tenant_id: values.string_member(event.payload.index, "tenantId"),
            client_ts: event.ts,
        };
        let raw = event.payload.text;
        let meta = event.meta.map(|m| m.text);
        let mut detail = String::with_capacity(
            raw.len()
                .saturating_add(meta.map_or(2, str::len))
                .saturating_add(320),
        );
        // The client's payload text goes out as is unless redaction changed it: no re-encoding
        // on the common path.
        details
            .write(
                &mut detail,
                head,
                |out| {
                    if redacted {
                        values.write_json_at(event.payload.index, out);
                    } else {
                        out.push_str(raw);
                    }
                },
                meta,
            )
            .map_err(|e| format!("cannot encode detail: {e}"))?;
        Ok(BusEntry {
            id: event.id.clone().into_owned(),
            event_bus_name: Cow::Borrowed(bus_name),
            source: Cow::Borrowed(INTERFACE_SOURCE),
            detail_type: Cow::Borrowed(&topic.spec.topic),
            time_millis: Some(event.ts.millis()),
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::HashSet;

    #[test]
    fn wire_names_match_the_serialized_form() {
        for reason in RejectReason::ALL {
            assert_eq!(
                serde_json::to_value(reason).unwrap(),
                Value::String(reason.as_str().to_owned())
            );
        }
        let distinct: HashSet<_> = RejectReason::ALL.iter().collect();
        assert_eq!(distinct.len(), RejectReason::ALL.len());
    }
}
