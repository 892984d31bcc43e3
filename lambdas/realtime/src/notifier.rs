//! The realtime notifier: `Realtime Notification` and `Realtime Job Progress Update` events of
//! the app bus, pushed to every open WebSocket connection of their user
//! ([`eventfabric_websocket::Pusher`]).
//!
//! The message a client receives is `{"type": "notification" | "job_progress", "id": <the
//! event's id>, ...payload}`. A push that did not reach every open connection (the API
//! unavailable after its attempts, the connections not listed) fails the invocation, so
//! EventBridge retries it and, past its attempts, keeps it in the target's alarmed DLQ;
//! connections that already had it receive it again with the same `id`, which clients
//! dedupe. A message over 128 KB is refused (logged, counted) and fails too: retrying cannot
//! shrink it, but the DLQ keeps it for whoever must look.

use eventfabric_topics::{RealtimeJobProgressPayload, RealtimeNotificationPayload, Topic};
use eventfabric_websocket::connections::ConnectionStore;
use eventfabric_websocket::push::{ConnectionApi, PushReport, Pusher};
use serde_json::{Map, Value};

use crate::inbound::{Refused, Topics};

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("push incomplete for {user}: {report:?}")]
    Incomplete { user: String, report: PushReport },
}

/// The client message of a checked realtime event, and its user.
pub fn message(topic: &str, id: &str, payload: &Value) -> Result<(String, Vec<u8>), Refused> {
    let kind = match topic {
        RealtimeNotificationPayload::TOPIC => "notification",
        RealtimeJobProgressPayload::TOPIC => "job_progress",
        other => return Err(Refused(vec![format!("topic {other} is not pushed")])),
    };
    let user = payload
        .get("userId")
        .and_then(Value::as_str)
        .ok_or_else(|| Refused(vec!["detail.payload.userId: missing".into()]))?
        .to_owned();
    let mut out = Map::new();
    out.insert("type".into(), kind.into());
    out.insert("id".into(), id.into());
    if let Value::Object(fields) = payload {
        for (k, v) in fields {
            out.insert(k.clone(), v.clone());
        }
    }
    let bytes = serde_json::to_vec(&out).map_err(|e| Refused(vec![e.to_string()]))?;
    Ok((user, bytes))
}

pub struct Notifier<S, A> {
    topics: Topics,
    pusher: Pusher<S, A>,
}

impl<S: ConnectionStore, A: ConnectionApi> Notifier<S, A> {
    pub fn new(topics: Topics, pusher: Pusher<S, A>) -> Self {
        Self { topics, pusher }
    }

    pub fn pusher(&self) -> &Pusher<S, A> {
        &self.pusher
    }

    pub async fn notify(
        &self,
        event: &aws_lambda_events::eventbridge::EventBridgeEvent<Value>,
        now_ms: i64,
    ) -> Result<PushReport, NotifyError> {
        let inbound = self.topics.check(event)?;
        let (user, bytes) = message(inbound.topic, &inbound.id, &inbound.payload)?;
        let report = self.pusher.push(&user, &bytes, now_ms).await;
        if report.complete() {
            Ok(report)
        } else {
            Err(NotifyError::Incomplete { user, report })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eventfabric_websocket::connections::{Connection, MemoryConnections};
    use eventfabric_websocket::push::MemoryConnectionApi;
    use serde_json::json;

    const NOW: i64 = 1_796_472_000_000;

    fn event(payload: Value) -> aws_lambda_events::eventbridge::EventBridgeEvent<Value> {
        serde_json::from_value(json!({
            "version": "0", "id": "x", "detail-type": "Notification", "source": "bayon.coagent.realtime",
            "time": "2026-12-05T12:00:00Z", "region": "eu-west-1", "resources": [],
            "detail": {"id": "n-1", "topic": "realtime.notification", "schemaVersion": "1.0.0",
                       "occurredAt": "2026-12-05T12:00:00Z", "payload": payload}
        }))
        .unwrap()
    }

    async fn notifier(
        connections: &[(&str, &str)],
    ) -> Notifier<MemoryConnections, MemoryConnectionApi> {
        let store = MemoryConnections::new();
        for (id, user) in connections {
            store.put(&Connection::opened(id, user, NOW)).await.unwrap();
        }
        Notifier::new(
            Topics::embedded().unwrap(),
            Pusher::new(store, MemoryConnectionApi::new()),
        )
    }

    #[tokio::test]
    async fn a_notification_reaches_every_connection_of_its_user_as_a_typed_message() {
        let n = notifier(&[("a1", "user-1"), ("a2", "user-1"), ("b1", "user-2")]).await;
        let payload = json!({"userId": "user-1", "kind": "content_generated", "title": "Ready"});
        let report = n.notify(&event(payload), NOW).await.unwrap();
        assert_eq!(report.delivered, 2);
        let posted = n.pusher().api().posted();
        let message: Value = serde_json::from_slice(&posted[0].1).unwrap();
        assert_eq!(
            message,
            json!({"type": "notification", "id": "n-1", "userId": "user-1", "kind": "content_generated", "title": "Ready"})
        );
    }

    #[tokio::test]
    async fn an_incomplete_push_fails_the_invocation_for_a_retry() {
        let n = notifier(&[("a1", "user-1"), ("a2", "user-1")]).await;
        n.pusher().api().fail("a2", 100);
        n.pusher().api().close("a1");
        let payload = json!({"userId": "user-1", "kind": "alert", "title": "Price drop"});
        let err = n.notify(&event(payload), NOW).await.unwrap_err();
        let NotifyError::Incomplete { report, .. } = err else {
            panic!("{err}")
        };
        assert_eq!((report.gone, report.failed), (1, 1));
        let left: Vec<_> = n
            .pusher()
            .store()
            .all()
            .into_iter()
            .map(|c| c.connection_id)
            .collect();
        assert_eq!(
            left,
            ["a2"],
            "the gone connection was cleaned up, the failing one kept"
        );
    }

    #[tokio::test]
    async fn an_event_the_schema_refuses_is_not_pushed() {
        let n = notifier(&[("a1", "user-1")]).await;
        let err = n
            .notify(
                &event(json!({"userId": "user-1", "kind": "spam", "title": "x"})),
                NOW,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, NotifyError::Refused(_)));
        assert!(n.pusher().api().posted().is_empty());
    }
}
