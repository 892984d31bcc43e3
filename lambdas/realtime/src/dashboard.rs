//! Live dashboard updates: the ingest state table's stream (latest state per entity, written by
//! the stream processor) pushed to the WebSocket connections subscribed to the entity's type or
//! to the entity.
//!
//! **Subscribing** (the `subscribe` and `unsubscribe` routes of the WebSocket API):
//! `{"action": "subscribe", "entityType": "volume"}` for every volume, with `"entityId":
//! "vol-0a1b"` for one; `unsubscribe` alike. The connect token must grant
//! `dashboard:<entityType>` in its `scope` claim (no claim, no dashboards); a connection holds
//! at most [`MAX_SUBSCRIPTIONS_PER_CONNECTION`]. The answer (route response) is
//! `{"type": "subscribed" | "unsubscribed", "entityType", "entityId"?}` or `{"type": "error",
//! "message"}` with the status 400, 403, 429 or 500. Subscriptions expire with their connection
//! and go at `$disconnect` or on the first 410.
//!
//! **Updates**: INSERT and MODIFY records (the event source mapping's filter, checked here
//! again) → per batch, the newest state of each entity (a dashboard shows the latest, not every
//! step between) → `{"type": "dashboard", "entityType", "entityId", "eventType", "timestamp",
//! "eventTime", "payload"}` → the subscribers of the type and of the entity, in parallel
//! ([`Pusher::push_to`]); a connection answering 410 loses its record and its subscriptions.
//!
//! **Failures**: an update that did not reach every subscriber (the management API unavailable
//! after its attempts, the subscribers not listed) fails its record, and Lambda delivers the
//! batch again from there (`ReportBatchItemFailures`; clients keep the newest `timestamp` per
//! entity, so a repeat changes nothing); past the mapping's retries or record age, the batch's
//! description goes to the alarmed on-failure queue. A record whose image is not an entity
//! state, or whose message would exceed 128 KB, is set aside with a log and a count, never
//! retried: a retry cannot change it, and the table still holds the state.

use std::collections::{BTreeSet, HashMap};

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::dynamodb::Event;
use aws_lambda_events::encodings::Body;
use eventfabric_core::batch::{BatchOutcomes, Delivery, Outcome};
use eventfabric_core::ingest::{MAX_ENTITY_ID_BYTES, MAX_ENTITY_TYPE_BYTES, StateItem};
use eventfabric_websocket::auth::{Identity, PRINCIPAL_CONTEXT_KEY, SCOPE_CONTEXT_KEY};
use eventfabric_websocket::connections::ConnectionStore;
use eventfabric_websocket::push::{ConnectionApi, Pusher};
use eventfabric_websocket::subscriptions::{Subscription, SubscriptionStore, drop_connection};
use eventfabric_websocket::{CONNECTION_LIFETIME_SECONDS, MAX_MESSAGE_BYTES};
use futures_util::StreamExt;
use metrics::counter;
use serde::Deserialize;
use serde_json::{Value, json};

/// Subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: usize = 20;
/// What a token's scope must hold for an entity type: `dashboard:<entityType>`.
pub const SCOPE_PREFIX: &str = "dashboard:";
/// Updates of one batch pushed at once.
const CONCURRENT_UPDATES: usize = 8;

pub const DASHBOARD_UPDATES: &str = "DashboardUpdates";
pub const DASHBOARD_RECORDS_SET_ASIDE: &str = "DashboardRecordsSetAside";

/// `%` and `#` escaped, so that no entity type or id can make another's channel.
fn escape(part: &str) -> String {
    part.replace('%', "%25").replace('#', "%23")
}

/// The channel of every entity of a type: `T#<type>`.
pub fn type_channel(entity_type: &str) -> String {
    format!("T#{}", escape(entity_type))
}

/// The channel of one entity: `E#<type>#<id>`.
pub fn entity_channel(entity_type: &str, entity_id: &str) -> String {
    format!("E#{}#{}", escape(entity_type), escape(entity_id))
}

fn valid_name(name: &str, max: usize) -> bool {
    (1..=max).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_graphic())
}

/// A route's answer: its status and the body sent back to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAnswer {
    pub status: i64,
    pub body: Value,
}

impl RouteAnswer {
    fn error(status: i64, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({"type": "error", "message": message.into()}),
        }
    }

    pub fn response(&self) -> ApiGatewayProxyResponse {
        let mut r = ApiGatewayProxyResponse::default();
        r.status_code = self.status;
        r.body = Some(Body::Text(self.body.to_string()));
        r
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SubscriptionRequest {
    action: String,
    entity_type: Option<String>,
    entity_id: Option<String>,
}

/// The `subscribe` and `unsubscribe` routes.
pub async fn subscription_route<S: SubscriptionStore>(
    store: &S,
    request: &ApiGatewayWebsocketProxyRequest,
    now_ms: i64,
) -> RouteAnswer {
    let context = &request.request_context;
    let (Some(connection_id), Some(principal)) = (
        context.connection_id.as_deref(),
        context
            .authorizer
            .fields
            .get(PRINCIPAL_CONTEXT_KEY)
            .and_then(Value::as_str),
    ) else {
        return RouteAnswer::error(400, "no connection or principal in the request context");
    };
    let scope = context
        .authorizer
        .fields
        .get(SCOPE_CONTEXT_KEY)
        .and_then(Value::as_str)
        .unwrap_or_default();
    let body = request.body.as_deref().unwrap_or_default();
    let parsed: SubscriptionRequest = match serde_json::from_str(body) {
        Ok(p) => p,
        Err(e) => {
            return RouteAnswer::error(
                400,
                format!(
                    "send {{\"action\":\"subscribe\",\"entityType\":\"…\",\"entityId\":\"…\"?}}: {e}"
                ),
            );
        }
    };
    let subscribe = match parsed.action.as_str() {
        "subscribe" => true,
        "unsubscribe" => false,
        other => return RouteAnswer::error(400, format!("unknown action '{other}'")),
    };
    let Some(entity_type) = parsed
        .entity_type
        .filter(|t| valid_name(t, MAX_ENTITY_TYPE_BYTES))
    else {
        return RouteAnswer::error(
            400,
            format!("entityType: 1–{MAX_ENTITY_TYPE_BYTES} visible ASCII characters"),
        );
    };
    if let Some(id) = &parsed.entity_id
        && !valid_name(id, MAX_ENTITY_ID_BYTES)
    {
        return RouteAnswer::error(
            400,
            format!("entityId: 1–{MAX_ENTITY_ID_BYTES} visible ASCII characters"),
        );
    }
    let entity_id = parsed.entity_id;
    let channel = match &entity_id {
        Some(id) => entity_channel(&entity_type, id),
        None => type_channel(&entity_type),
    };
    let mut answer = json!({"entityType": entity_type});
    if let Some(id) = &entity_id {
        answer["entityId"] = json!(id);
    }
    let unavailable = |e: &dyn std::fmt::Display| {
        tracing::error!(connection = %connection_id, error = %e, "subscriptions unavailable");
        RouteAnswer::error(500, "subscriptions unavailable; try again")
    };
    if !subscribe {
        if let Err(e) = store.unsubscribe(&channel, connection_id).await {
            return unavailable(&e);
        }
        answer["type"] = json!("unsubscribed");
        return RouteAnswer {
            status: 200,
            body: answer,
        };
    }
    let needed = format!("{SCOPE_PREFIX}{entity_type}");
    if !Identity::has_scope(scope, &needed) {
        return RouteAnswer::error(
            403,
            format!("this connection's token does not grant {needed}"),
        );
    }
    let held = match store.channels_of(connection_id).await {
        Ok(h) => h,
        Err(e) => return unavailable(&e),
    };
    if !held.contains(&channel) && held.len() >= MAX_SUBSCRIPTIONS_PER_CONNECTION {
        return RouteAnswer::error(
            429,
            format!(
                "a connection holds at most {MAX_SUBSCRIPTIONS_PER_CONNECTION} subscriptions; unsubscribe from one first"
            ),
        );
    }
    let connected_at = context.connected_at;
    let subscription = Subscription {
        channel,
        connection_id: connection_id.to_owned(),
        principal: principal.to_owned(),
        subscribed_at: now_ms,
        expires_at: connected_at.div_euclid(1000) + CONNECTION_LIFETIME_SECONDS,
    };
    if let Err(e) = store.subscribe(&subscription).await {
        return unavailable(&e);
    }
    answer["type"] = json!("subscribed");
    RouteAnswer {
        status: 200,
        body: answer,
    }
}

/// The client message of an entity's state.
pub fn message(state: &StateItem) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "type": "dashboard",
        "entityType": state.entity_type,
        "entityId": state.entity_id,
        "eventType": state.event_type,
        "timestamp": state.timestamp,
        "eventTime": state.event_time,
        "payload": state.payload,
    }))
    .expect("a JSON value serializes")
}

/// What one batch did.
#[derive(Debug)]
pub struct DashboardReport {
    pub outcomes: BatchOutcomes,
    /// Entity states pushed (after coalescing).
    pub updates: usize,
    /// Records superseded by a newer state of their entity in the same batch.
    pub coalesced: usize,
    /// Records set aside (not an entity state, or too large).
    pub set_aside: usize,
    pub delivered: usize,
    pub gone: usize,
}

/// The stream side: subscribers of each update, and the push.
pub struct Dashboard<S, C, A> {
    subscriptions: S,
    pusher: Pusher<C, A>,
}

impl<S: SubscriptionStore, C: ConnectionStore, A: ConnectionApi> Dashboard<S, C, A> {
    pub fn new(subscriptions: S, pusher: Pusher<C, A>) -> Self {
        Self {
            subscriptions,
            pusher,
        }
    }

    pub fn subscriptions(&self) -> &S {
        &self.subscriptions
    }

    pub fn pusher(&self) -> &Pusher<C, A> {
        &self.pusher
    }

    /// One batch of the ingest table's stream.
    pub async fn handle(&self, event: &Event, now_ms: i64) -> DashboardReport {
        let ids = event
            .records
            .iter()
            .map(|r| r.change.sequence_number.clone())
            .collect();
        let mut report = DashboardReport {
            outcomes: BatchOutcomes::new(Delivery::Ordered, ids),
            updates: 0,
            coalesced: 0,
            set_aside: 0,
            delivered: 0,
            gone: 0,
        };
        // The newest state of each entity, by timestamp (a later record wins a tie).
        let mut newest: HashMap<(String, String), (usize, StateItem)> = HashMap::new();
        for (index, record) in event.records.iter().enumerate() {
            if !matches!(record.event_name.as_str(), "INSERT" | "MODIFY") {
                report.outcomes.set(index, Outcome::Done);
                continue;
            }
            let state: StateItem = match serde_dynamo::from_item(record.change.new_image.clone()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(sequence = ?record.change.sequence_number, error = %e, "record set aside: its new image is not an entity state");
                    counter!(DASHBOARD_RECORDS_SET_ASIDE).increment(1);
                    report.set_aside += 1;
                    report.outcomes.set(index, Outcome::Done);
                    continue;
                }
            };
            let key = state.key();
            match newest.get(&key) {
                Some((_, held)) if held.timestamp > state.timestamp => {
                    report.coalesced += 1;
                    report.outcomes.set(index, Outcome::Done);
                }
                Some((earlier, _)) => {
                    report.coalesced += 1;
                    report.outcomes.set(*earlier, Outcome::Done);
                    newest.insert(key, (index, state));
                }
                None => {
                    newest.insert(key, (index, state));
                }
            }
        }
        let mut updates: Vec<(usize, StateItem)> = newest.into_values().collect();
        updates.sort_by_key(|(index, _)| *index);
        let results: Vec<(usize, UpdateResult)> = futures_util::stream::iter(updates)
            .map(|(index, state)| async move { (index, self.update(&state, now_ms).await) })
            .buffer_unordered(CONCURRENT_UPDATES)
            .collect()
            .await;
        for (index, result) in results {
            match result {
                UpdateResult::Pushed { delivered, gone } => {
                    report.updates += 1;
                    report.delivered += delivered;
                    report.gone += gone;
                    report.outcomes.set(index, Outcome::Done);
                }
                UpdateResult::SetAside => {
                    report.set_aside += 1;
                    report.outcomes.set(index, Outcome::Done);
                }
                UpdateResult::Retry(reason) => {
                    tracing::warn!(sequence = ?event.records[index].change.sequence_number, %reason, "update not pushed; Lambda delivers the batch again from it");
                    report.outcomes.set(index, Outcome::Retry(reason));
                }
            }
        }
        counter!(DASHBOARD_UPDATES).increment(report.updates as u64);
        report
    }

    async fn update(&self, state: &StateItem, now_ms: i64) -> UpdateResult {
        let message = message(state);
        if message.len() > MAX_MESSAGE_BYTES {
            tracing::error!(entity = %state.entity_id, entity_type = %state.entity_type, bytes = message.len(), limit = MAX_MESSAGE_BYTES, "update set aside: larger than a WebSocket message may be");
            counter!(DASHBOARD_RECORDS_SET_ASIDE).increment(1);
            return UpdateResult::SetAside;
        }
        let mut subscribers = BTreeSet::new();
        for channel in [
            type_channel(&state.entity_type),
            entity_channel(&state.entity_type, &state.entity_id),
        ] {
            match self.subscriptions.subscribers(&channel, now_ms).await {
                Ok(ids) => subscribers.extend(ids),
                Err(e) => return UpdateResult::Retry(format!("subscribers of {channel}: {e}")),
            }
        }
        if subscribers.is_empty() {
            return UpdateResult::Pushed {
                delivered: 0,
                gone: 0,
            };
        }
        let pushed = self
            .pusher
            .push_to(subscribers.into_iter().collect(), &message)
            .await;
        for gone in &pushed.gone_connections {
            if let Err(e) = drop_connection(&self.subscriptions, gone).await {
                tracing::warn!(connection = %gone, error = %e, "subscriptions of a gone connection not removed; they expire by TTL");
            }
        }
        if pushed.failed > 0 {
            return UpdateResult::Retry(format!(
                "{} of {} subscribers not reached",
                pushed.failed, pushed.connections
            ));
        }
        UpdateResult::Pushed {
            delivered: pushed.delivered,
            gone: pushed.gone,
        }
    }
}

enum UpdateResult {
    Pushed { delivered: usize, gone: usize },
    SetAside,
    Retry(String),
}

/// Every route of the `connections` function: `subscribe` and `unsubscribe` here, the rest in
/// the shared routes; `$disconnect` also removes the connection's subscriptions.
pub async fn connection_routes<C: ConnectionStore, S: SubscriptionStore>(
    connections: &C,
    subscriptions: &S,
    settings: eventfabric_websocket::routes::RouteSettings,
    request: &ApiGatewayWebsocketProxyRequest,
    now_ms: i64,
) -> (i64, ApiGatewayProxyResponse) {
    let context = &request.request_context;
    match context.route_key.as_deref() {
        Some("subscribe" | "unsubscribe") => {
            let answer = subscription_route(subscriptions, request, now_ms).await;
            (answer.status, answer.response())
        }
        route => {
            let outcome =
                eventfabric_websocket::routes::handle(connections, settings, request, now_ms).await;
            if route == Some("$disconnect")
                && let Some(id) = context.connection_id.as_deref()
                && let Err(e) = drop_connection(subscriptions, id).await
            {
                tracing::warn!(connection = %id, error = %e, "subscriptions not removed at $disconnect; they expire by TTL");
            }
            (outcome.status(), outcome.response())
        }
    }
}
