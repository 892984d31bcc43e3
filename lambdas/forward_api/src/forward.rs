//! The forward use case: every event of a request is checked on its own, the survivors are
//! published, and the answer says what happened to each one.

// Every number here may come from a client: arithmetic is checked or saturating, and clippy
// holds new code to that.
#![deny(clippy::arithmetic_side_effects)]

use std::borrow::Cow;

use eventfabric_core::{
    BusEntry, Deadline, DetailHead, DetailWriter, EventSink, INTERFACE_SOURCE, PublishError,
};
use eventfabric_registry::{Bus, ForwardingPolicy};

use crate::config::ForwardConfig;
use crate::outcome::{ForwardOutcome, RejectReason, Rejection};
use crate::redact::Redactor;
use crate::request::{Event, EventSlot, ForwardRequest};
use crate::request::{bounded, echo};
use crate::state::{Claim, QuotaDecision, SessionState, StateError};
use crate::tape::{Item, Tape};
use crate::topics::{CompiledTopic, CompiledTopics, semver_major};

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

    /// Counts `events` against the session's quota (one conditional update), bounded by
    /// `deadline` like every store call.
    pub async fn admit(
        &self,
        session_id: &str,
        events: u32,
        now_ms: i64,
        deadline: Deadline,
    ) -> Result<QuotaDecision, StateError> {
        let quota = self.config.quota_events_per_minute;
        let consume = self.state.consume_quota(session_id, events, quota, now_ms);
        self.store_call(deadline, consume).await
    }

    /// Checks every event, counts the request against the session's quota while claiming the
    /// survivors' idempotency keys (one round trip for both), publishes what is new, and
    /// confirms or releases the claims: the answer, with every store failure the request went
    /// on without, by `answer_by` (the invocation's deadline less the time needed to send it).
    pub async fn forward(
        &self,
        request: ForwardRequest<'_>,
        now_ms: i64,
        answer_by: Deadline,
    ) -> Forwarded {
        let work = self.work_deadline(answer_by);
        let mut failures = Vec::new();
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

        // Quota and claims at once: both are needed before anything is published, neither
        // depends on the other. The price: a refused quota must undo the claims it raced.
        let session_id = client.session_id.as_str();
        let counted = u32::try_from(events.len()).unwrap_or(u32::MAX);
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let (quota, claims) = futures_util::future::join(
            self.admit(session_id, counted, now_ms, work),
            self.claim(session_id, &ids, now_ms, work),
        )
        .await;
        let refusal = match quota {
            Ok(QuotaDecision::Allowed) => None,
            Ok(QuotaDecision::Exceeded {
                retry_after_seconds,
            }) => Some(Answer::QuotaExceeded {
                retry_after_seconds,
            }),
            Err(error @ StateError::Unavailable(_)) => {
                // Fail open: the stage throttle still bounds the rate, and refusing every
                // request while the store is down would lose the events.
                failures.push(StoreFailure {
                    operation: StoreOperation::Quota,
                    events: events.len(),
                    error,
                });
                None
            }
            Err(error @ StateError::Refused(_)) => {
                failures.push(StoreFailure {
                    operation: StoreOperation::Quota,
                    events: events.len(),
                    error,
                });
                Some(Answer::QuotaRefused)
            }
        };
        if let Some(mut answer) = refusal {
            let taken: Vec<&str> = ids
                .iter()
                .zip(&claims)
                .filter(|(_, claim)| matches!(claim, Ok(Claim::New)))
                .map(|(id, _)| *id)
                .collect();
            if !taken.is_empty() {
                let release = self.state.release(session_id, &taken);
                if let Err(error) = self.store_call(answer_by, release).await {
                    // The claims stay pending until their lease runs out: a retry before that
                    // would be told `already_forwarded` for events never sent. So the client
                    // is told to wait that long.
                    if let Answer::QuotaExceeded {
                        retry_after_seconds,
                    } = &mut answer
                    {
                        *retry_after_seconds =
                            (*retry_after_seconds).max(self.config.claim_lease_seconds);
                    }
                    failures.push(StoreFailure {
                        operation: StoreOperation::Release,
                        events: taken.len(),
                        error,
                    });
                }
            }
            return Forwarded {
                answer,
                store_failures: failures,
            };
        }
        drop(ids);
        let (entries, entry_index) =
            keep_new(entries, entry_index, claims, &mut outcome, &mut failures);

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
        // Published: confirmed, so the lease no longer matters. Not published: released, so
        // the client's retry goes through. Independent calls, issued together.
        let published: Vec<&str> = outcome.accepted.iter().map(String::as_str).collect();
        let failed: Vec<&str> = unpublished
            .iter()
            .filter_map(|&i| outcome.rejected[i].id.as_deref())
            .collect();
        let (confirmed, released) = futures_util::future::join(
            async {
                if published.is_empty() {
                    return Ok(());
                }
                let confirm = self.state.confirm(session_id, &published, now_ms);
                self.store_call(answer_by, confirm).await
            },
            async {
                if failed.is_empty() {
                    return Ok(());
                }
                let release = self.state.release(session_id, &failed);
                self.store_call(answer_by, release).await
            },
        )
        .await;
        let (confirmed_events, released_events) = (published.len(), failed.len());
        drop((published, failed));
        if let Err(error) = confirmed {
            failures.push(StoreFailure {
                operation: StoreOperation::Confirm,
                events: confirmed_events,
                error,
            });
        }
        if let Err(error) = released {
            failures.push(StoreFailure {
                operation: StoreOperation::Release,
                events: released_events,
                error,
            });
        }
        outcome.rejected.sort_by_key(|r| r.index);
        Forwarded {
            answer: Answer::Events(outcome),
            store_failures: failures,
        }
    }

    /// Claims each id (pending for the lease), bounded like every store call; one result per
    /// id. No call for no ids.
    async fn claim(
        &self,
        session_id: &str,
        ids: &[&str],
        now_ms: i64,
        deadline: Deadline,
    ) -> Vec<Result<Claim, StateError>> {
        if ids.is_empty() {
            return Vec::new();
        }
        let lease = self.config.claim_lease_seconds;
        self.store_call(deadline, async {
            Ok(self.state.claim(session_id, ids, lease, now_ms).await)
        })
        .await
        .unwrap_or_else(|e| vec![Err(e); ids.len()])
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
        // Stream topics are `deny` (registry rule `route`): the forward API never reaches here
        // with one, but says so rather than panicking.
        let bus = topic.spec.bus.ok_or_else(|| {
            format!(
                "topic '{}' goes to a stream, not a bus: send it to the ingest API",
                topic.spec.topic
            )
        })?;
        let bus_name = match bus {
            Bus::Session => Some(self.config.session_bus.as_str()),
            Bus::Analytics => self.config.analytics_bus.as_deref(),
            // Produced topics only (registry rule `source`): never forwarded.
            Bus::App => None,
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

/// Keeps the entries whose claim is new. When the store is unavailable, the entry is forwarded
/// anyway: delivery is at least once and consumers dedupe on the event id, while refusing would
/// lose the event. When the store refuses the claim (the request is invalid to it), the entry
/// is not forwarded: that is no outage, and forwarding would let a client switch deduplication
/// off at will.
fn keep_new<'e>(
    mut entries: Vec<BusEntry<'e>>,
    mut entry_index: Vec<usize>,
    claims: Vec<Result<Claim, StateError>>,
    outcome: &mut ForwardOutcome,
    failures: &mut Vec<StoreFailure>,
) -> (Vec<BusEntry<'e>>, Vec<usize>) {
    let mut unavailable: Option<(usize, StateError)> = None;
    let mut refused: Option<(usize, StateError)> = None;
    let count = |slot: &mut Option<(usize, StateError)>, error: StateError| match slot {
        Some((n, _)) => *n = n.saturating_add(1),
        None => *slot = Some((1, error)),
    };
    // Compacted in place: kept entries move to the front, in order.
    let mut kept: usize = 0;
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
            Some(Err(error @ StateError::Refused(_))) => {
                let id = std::mem::take(&mut entries[i].id);
                outcome.rejected.push(Rejection {
                    detail: bounded(format!(
                        "not forwarded: the idempotency store refused its claim ({error})"
                    )),
                    id: Some(id),
                    index: entry_index[i],
                    reason: RejectReason::PublishFailed,
                });
                count(&mut refused, error);
                continue;
            }
            Some(Ok(Claim::New)) => {}
            Some(Err(error @ StateError::Unavailable(_))) => count(&mut unavailable, error),
            None => count(
                &mut unavailable,
                StateError::Unavailable("no answer for this claim".into()),
            ),
        }
        entries.swap(kept, i);
        entry_index.swap(kept, i);
        kept = kept.saturating_add(1);
    }
    entries.truncate(kept);
    entry_index.truncate(kept);
    for (events, error) in [unavailable, refused].into_iter().flatten() {
        failures.push(StoreFailure {
            operation: StoreOperation::Claim,
            events,
            error,
        });
    }
    (entries, entry_index)
}

/// What the request gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 202: each event's outcome.
    Events(ForwardOutcome),
    /// 429: the session is over its quota; nothing was forwarded or kept claimed.
    QuotaExceeded { retry_after_seconds: i64 },
    /// 500: the state store refused the quota update (a deployment fault); nothing was
    /// forwarded.
    QuotaRefused,
}

/// A request's answer and the state store calls it went on without.
#[derive(Debug, Clone, PartialEq)]
pub struct Forwarded {
    pub answer: Answer,
    pub store_failures: Vec<StoreFailure>,
}

/// A state store call that failed, and how many events it was for.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreFailure {
    pub operation: StoreOperation,
    pub events: usize,
    pub error: StateError,
}

/// The state store calls of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOperation {
    Quota,
    Claim,
    Confirm,
    Release,
}

impl StoreOperation {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quota => "quota",
            Self::Claim => "claim",
            Self::Confirm => "confirm",
            Self::Release => "release",
        }
    }

    /// What going on without the call means, for the log line.
    pub fn consequence(self) -> &'static str {
        match self {
            Self::Quota => "request let through without quota (unavailable) or refused (refused)",
            Self::Claim => {
                "events forwarded without deduplication (unavailable) or not forwarded (refused)"
            }
            Self::Confirm => {
                "published events stay pending: a retry after the claim lease may send them again (consumers dedupe)"
            }
            Self::Release => {
                "unpublished events stay claimed: a retry before the lease runs out is told already_forwarded"
            }
        }
    }
}
