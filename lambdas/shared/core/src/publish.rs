//! The typed publisher every emitting function shares: a generated payload type
//! ([`eventfabric_topics::Topic`]) becomes a [`BusEntry`] on the bus, source and detail type the
//! registry gives it, with the application envelope as its detail ([`AppDetail`]), and goes out
//! through the [`EventSink`] port (PutEvents calls of ≤ 10 entries / 256 KB, only failed entries
//! retried: the EventBridge adapter's work).
//!
//! A payload cannot be put under another topic's names: they are constants of its type. Ids of
//! follow-up events are derived from the event that caused them ([`follow_up_id`]), so a
//! processor that handles the same event twice publishes the same ids, which consumers dedupe.

use std::collections::HashMap;

use eventfabric_topics::Topic;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::bus::BusEntry;
use crate::deadline::Deadline;
use crate::envelope::Timestamp;
use crate::sink::{EventSink, PublishError};

/// The detail of an application event, as published and as consumed: the event's own id
/// (EventBridge gives every PutEvents attempt a new one, so deduplication needs this), the
/// registry topic and version, when it happened, the event that caused it, and the payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDetail<P> {
    pub id: String,
    pub topic: String,
    pub schema_version: String,
    /// RFC 3339.
    pub occurred_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    pub payload: P,
}

/// An application event as received: the payload left as JSON text until its schema is
/// checked.
pub type ReceivedDetail = AppDetail<Box<RawValue>>;

/// Why an event could not be made into a bus entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrepareError {
    /// The deployment names no bus for the topic's registry bus.
    #[error("no {bus} bus is configured for {topic} (set {bus_variable})")]
    NoBus {
        bus: &'static str,
        topic: &'static str,
        bus_variable: String,
    },
    #[error("{topic}: the payload does not serialize: {message}")]
    Serialize {
        topic: &'static str,
        message: String,
    },
}

impl From<PrepareError> for PublishError {
    fn from(e: PrepareError) -> Self {
        PublishError::Rejected {
            code: "NotPrepared".into(),
            message: e.to_string(),
        }
    }
}

/// The deployed name of each registry bus (`app` → `eventfabric-dev-app`).
#[derive(Debug, Clone, Default)]
pub struct BusNames(HashMap<String, String>);

impl BusNames {
    pub fn new(names: impl IntoIterator<Item = (impl Into<String>, impl Into<String>)>) -> Self {
        Self(
            names
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// `<BUS>_BUS_NAME` for each registry bus that is set and not empty (`APP_BUS_NAME`).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Self {
        Self(
            ["app", "session", "analytics"]
                .into_iter()
                .filter_map(|bus| {
                    env(&bus_variable(bus))
                        .filter(|v| !v.is_empty())
                        .map(|v| (bus.to_owned(), v))
                })
                .collect(),
        )
    }

    pub fn get(&self, bus: &str) -> Option<&str> {
        self.0.get(bus).map(String::as_str)
    }
}

/// The environment variable naming a registry bus: `app` → `APP_BUS_NAME`.
pub fn bus_variable(bus: &str) -> String {
    format!("{}_BUS_NAME", bus.to_ascii_uppercase())
}

/// The id of an event caused by `cause_id`: the same cause, topic and key always give the same
/// id (a hex SHA-256 prefix of 32 characters), distinct keys distinct ids. `key` tells apart
/// several follow-ups of one topic (one notification per affected user).
pub fn follow_up_id(cause_id: &str, topic: &str, key: &str) -> String {
    let mut hash = Sha256::new();
    for part in [cause_id, topic, key] {
        // Length-prefixed: ("ab", "c") and ("a", "bc") differ.
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes bus entries of typed payloads and publishes them.
#[derive(Debug)]
pub struct Publisher<S> {
    sink: S,
    buses: BusNames,
}

impl<S: EventSink> Publisher<S> {
    pub fn new(sink: S, buses: BusNames) -> Self {
        Self { sink, buses }
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The bus entry of one event of topic `T`.
    pub fn entry<T: Topic>(
        &self,
        id: impl Into<String>,
        occurred_ms: i64,
        causation_id: Option<&str>,
        payload: &T,
    ) -> Result<BusEntry<'_>, PrepareError> {
        let bus = self.buses.get(T::BUS).ok_or_else(|| PrepareError::NoBus {
            bus: T::BUS,
            topic: T::TOPIC,
            bus_variable: bus_variable(T::BUS),
        })?;
        let id = id.into();
        let detail = AppDetail {
            id: id.clone(),
            topic: T::TOPIC.to_owned(),
            schema_version: T::VERSION.to_owned(),
            occurred_at: Timestamp(occurred_ms).to_rfc3339(),
            causation_id: causation_id.map(str::to_owned),
            payload,
        };
        let detail = serde_json::to_string(&detail).map_err(|e| PrepareError::Serialize {
            topic: T::TOPIC,
            message: e.to_string(),
        })?;
        Ok(BusEntry {
            id,
            event_bus_name: bus.into(),
            source: T::SOURCE.into(),
            detail_type: T::DETAIL_TYPE.into(),
            time_millis: Some(occurred_ms),
            detail,
        })
    }

    /// Publishes entries of any topics (from [`Self::entry`]); one outcome per entry, in
    /// order. The sink packs calls and retries only the entries that failed.
    pub async fn publish(
        &self,
        entries: &[BusEntry<'_>],
        deadline: Deadline,
    ) -> Vec<Result<(), PublishError>> {
        if entries.is_empty() {
            return Vec::new();
        }
        self.sink.publish(entries, deadline).await
    }

    /// One event of topic `T`: the convenience call for a function that emits one thing.
    pub async fn publish_one<T: Topic>(
        &self,
        id: impl Into<String>,
        occurred_ms: i64,
        causation_id: Option<&str>,
        payload: &T,
        deadline: Deadline,
    ) -> Result<(), PublishError> {
        let entry = self.entry(id, occurred_ms, causation_id, payload)?;
        self.publish(std::slice::from_ref(&entry), deadline)
            .await
            .pop()
            .unwrap_or(Ok(()))
    }
}

/// Convenience constructors of the payloads most functions emit, checked against their
/// schema's limits by the generated types (an empty or over-long field is an error here, not
/// a rejected event later).
pub mod events {
    use eventfabric_topics::{
        RealtimeJobProgressPayload, RealtimeJobProgressPayloadStatus, RealtimeNotificationPayload,
        RealtimeNotificationPayloadKind,
    };

    /// A `Realtime Notification` for every connection of `user_id`.
    pub fn notification(
        user_id: &str,
        kind: RealtimeNotificationPayloadKind,
        title: &str,
        body: Option<&str>,
        resource_id: Option<&str>,
    ) -> Result<RealtimeNotificationPayload, String> {
        let field = |name: &str, e: &dyn std::fmt::Display| format!("notification {name}: {e}");
        Ok(RealtimeNotificationPayload {
            user_id: user_id.parse().map_err(|e| field("userId", &e))?,
            kind,
            title: title.parse().map_err(|e| field("title", &e))?,
            body: body
                .map(str::parse)
                .transpose()
                .map_err(|e| field("body", &e))?,
            link: None,
            resource_id: resource_id
                .map(str::parse)
                .transpose()
                .map_err(|e| field("resourceId", &e))?,
        })
    }

    /// A `Realtime Job Progress Update` of `job_id` for `user_id`.
    pub fn job_progress(
        user_id: &str,
        job_id: &str,
        status: RealtimeJobProgressPayloadStatus,
        percent: i64,
        message: Option<&str>,
    ) -> Result<RealtimeJobProgressPayload, String> {
        let field = |name: &str, e: &dyn std::fmt::Display| format!("job progress {name}: {e}");
        // The generated type keeps string bounds, not integer ones: the schema's 0–100 is here.
        if !(0..=100).contains(&percent) {
            return Err(format!(
                "job progress percent: {percent} is not within 0–100"
            ));
        }
        Ok(RealtimeJobProgressPayload {
            user_id: user_id.parse().map_err(|e| field("userId", &e))?,
            job_id: job_id.parse().map_err(|e| field("jobId", &e))?,
            status,
            percent,
            message: message
                .map(str::parse)
                .transpose()
                .map_err(|e| field("message", &e))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::MemorySink;
    use eventfabric_topics::{RealtimeNotificationPayloadKind, StudioContentGeneratedPayload};
    use std::time::Duration;

    fn publisher(sink: MemorySink) -> Publisher<MemorySink> {
        Publisher::new(sink, BusNames::new([("app", "eventfabric-dev-app")]))
    }

    fn generated() -> StudioContentGeneratedPayload {
        serde_json::from_value(serde_json::json!({
            "userId": "u-1", "contentId": "c-1", "contentType": "blog_post", "title": "Spring"
        }))
        .unwrap()
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5))
    }

    #[tokio::test]
    async fn a_typed_payload_goes_to_its_bus_source_and_detail_type() {
        let p = publisher(MemorySink::new());
        p.publish_one("e-1", 1_767_225_600_000, None, &generated(), deadline())
            .await
            .unwrap();
        let out = p.sink().take();
        assert_eq!(out.len(), 1);
        let e = &out[0];
        assert_eq!(
            (&*e.event_bus_name, &*e.source, &*e.detail_type),
            (
                "eventfabric-dev-app",
                "bayon.coagent.studio",
                "Content Generated"
            )
        );
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(detail["id"], "e-1");
        assert_eq!(detail["topic"], "studio.content.generated");
        assert_eq!(detail["schemaVersion"], "1.0.0");
        assert_eq!(detail["occurredAt"], "2026-01-01T00:00:00Z");
        assert_eq!(detail["payload"]["contentType"], "blog_post");
        assert!(detail.get("causationId").is_none());
        // And it reads back as a received detail.
        let received: ReceivedDetail = serde_json::from_str(&e.detail).unwrap();
        assert_eq!(received.payload.get(), detail["payload"].to_string());
    }

    #[tokio::test]
    async fn an_unconfigured_bus_is_named_and_nothing_is_sent() {
        let p = Publisher::new(MemorySink::new(), BusNames::default());
        let err = p
            .publish_one("e-1", 0, None, &generated(), deadline())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("APP_BUS_NAME"), "{err}");
        assert!(p.sink().published().is_empty());
    }

    #[tokio::test]
    async fn every_entry_of_a_mixed_batch_gets_its_own_outcome() {
        let p = publisher(MemorySink::failing_for(["Notification"]));
        let note = events::notification(
            "u-1",
            RealtimeNotificationPayloadKind::ContentGenerated,
            "Your post is ready",
            None,
            Some("c-1"),
        )
        .unwrap();
        let entries = vec![
            p.entry("a", 0, None, &generated()).unwrap(),
            p.entry("b", 0, Some("a"), &note).unwrap(),
            p.entry("c", 0, None, &generated()).unwrap(),
        ];
        let outcomes = p.publish(&entries, deadline()).await;
        assert_eq!(outcomes.len(), 3);
        assert!(outcomes[0].is_ok() && outcomes[2].is_ok());
        assert!(
            outcomes[1].is_err(),
            "the failed entry is reported, not lost"
        );
        let ids: Vec<_> = p.sink().take().into_iter().map(|e| e.id).collect();
        assert_eq!(ids, ["a", "c"]);
    }

    #[test]
    fn follow_up_ids_are_stable_and_distinct() {
        let a = follow_up_id("evt-1", "realtime.notification", "u-1");
        assert_eq!(a, follow_up_id("evt-1", "realtime.notification", "u-1"));
        assert_eq!(a.len(), 32);
        assert_ne!(a, follow_up_id("evt-1", "realtime.notification", "u-2"));
        assert_ne!(a, follow_up_id("evt-2", "realtime.notification", "u-1"));
        assert_ne!(
            follow_up_id("ab", "c", ""),
            follow_up_id("a", "bc", ""),
            "parts are length-prefixed"
        );
    }

    #[test]
    fn convenience_payloads_hold_their_schema_limits() {
        let kind = RealtimeNotificationPayloadKind::UsageWarning;
        assert!(events::notification("", kind, "t", None, None).is_err());
        let long = "x".repeat(201);
        let err = events::notification("u", kind, &long, None, None).unwrap_err();
        assert!(err.contains("title"), "{err}");
        use eventfabric_topics::RealtimeJobProgressPayloadStatus as S;
        let p = events::job_progress("u", "j", S::Running, 40, None).unwrap();
        assert_eq!(p.percent, 40);
        assert!(events::job_progress("u", "j", S::Running, 101, None).is_err());
        assert!(events::job_progress("u", "j", S::Running, -1, None).is_err());
    }

    #[test]
    fn bus_names_come_from_the_environment() {
        let names = BusNames::from_env(|v| match v {
            "APP_BUS_NAME" => Some("eventfabric-dev-app".into()),
            "SESSION_BUS_NAME" => Some(String::new()),
            _ => None,
        });
        assert_eq!(names.get("app"), Some("eventfabric-dev-app"));
        assert_eq!(names.get("session"), None, "empty is unset");
    }
}
