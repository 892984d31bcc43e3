//! Live dashboard updates on a fixture batch of the ingest table's stream, with the in-memory
//! subscriptions, connections and management API: the subscription routes (scope, quota,
//! bad requests), what each subscriber receives, and one test per failure class showing
//! nothing is lost (a gone connection, an unavailable API, unavailable subscriptions, an
//! oversize state, records that are not entity states).

use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use aws_lambda_events::dynamodb::Event;
use eventfabric_websocket::connections::{Connection, ConnectionStore, MemoryConnections};
use eventfabric_websocket::push::{MemoryConnectionApi, Pusher};
use eventfabric_websocket::routes::RouteSettings;
use eventfabric_websocket::subscriptions::{MemorySubscriptions, SubscriptionStore};
use realtime::Dashboard;
use realtime::dashboard::{
    MAX_SUBSCRIPTIONS_PER_CONNECTION, connection_routes, entity_channel, subscription_route,
    type_channel,
};
use serde_json::{Value, json};

const NOW: i64 = 1_796_500_100_000;

type Memory = Dashboard<MemorySubscriptions, MemoryConnections, MemoryConnectionApi>;

fn batch() -> Event {
    serde_json::from_str(include_str!("../fixtures/ingest-stream.json")).unwrap()
}

fn request(
    connection: &str,
    scope: &str,
    route: &str,
    body: Value,
) -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "body": body.to_string(),
        "isBase64Encoded": false,
        "requestContext": {
            "routeKey": route,
            "eventType": "MESSAGE",
            "connectionId": connection,
            "connectedAt": NOW - 1_000,
            "requestTimeEpoch": NOW,
            "apiId": "abc",
            "stage": "live",
            "requestId": "r",
            "authorizer": {"principal": "user-1", "scope": scope, "principalId": "user-1"},
        }
    }))
    .unwrap()
}

fn subscribe(connection: &str, scope: &str, body: Value) -> ApiGatewayWebsocketProxyRequest {
    request(connection, scope, "subscribe", body)
}

async fn dashboard(subscribed: &[(&str, &str)]) -> Memory {
    let connections = MemoryConnections::new();
    let subscriptions = MemorySubscriptions::new();
    for (connection, body) in subscribed {
        connections
            .put(&Connection::opened(connection, "user-1", NOW - 1_000))
            .await
            .unwrap();
        let body: Value = serde_json::from_str(body).unwrap();
        let answer = subscription_route(
            &subscriptions,
            &subscribe(connection, "dashboard:volume dashboard:pool", body),
            NOW,
        )
        .await;
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    let mut pusher = Pusher::new(connections, MemoryConnectionApi::new());
    pusher.retry_delay = Duration::from_millis(1);
    Dashboard::new(subscriptions, pusher)
}

/// What each connection received, as JSON.
fn received(d: &Memory) -> Vec<(String, Value)> {
    let mut got: Vec<_> = d
        .pusher()
        .api()
        .posted()
        .into_iter()
        .map(|(c, m)| (c, serde_json::from_slice(&m).unwrap()))
        .collect();
    got.sort_by(|a: &(String, Value), b| {
        (a.0.clone(), a.1["entityId"].to_string()).cmp(&(b.0.clone(), b.1["entityId"].to_string()))
    });
    got
}

#[tokio::test]
async fn subscribers_of_a_type_or_an_entity_get_its_newest_state_once_per_batch() {
    let d = dashboard(&[
        (
            "all-volumes",
            r#"{"action":"subscribe","entityType":"volume"}"#,
        ),
        (
            "one-volume",
            r#"{"action":"subscribe","entityType":"volume","entityId":"vol-0a1b"}"#,
        ),
        (
            "other-volume",
            r#"{"action":"subscribe","entityType":"volume","entityId":"vol-2"}"#,
        ),
        ("pools", r#"{"action":"subscribe","entityType":"pool"}"#),
    ])
    .await;
    let report = d.handle(&batch(), NOW).await;
    assert!(
        report
            .outcomes
            .dynamodb_response()
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(
        (report.updates, report.coalesced, report.set_aside),
        (2, 1, 1),
        "vol-0a1b's two records are one update; the foreign item is set aside"
    );
    let got = received(&d);
    let to: Vec<(&str, &str)> = got
        .iter()
        .map(|(c, m)| (c.as_str(), m["entityId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        to,
        [
            ("all-volumes", "vol-0a1b"),
            ("one-volume", "vol-0a1b"),
            ("pools", "pool-7")
        ]
    );
    let volume = &got[0].1;
    assert_eq!(volume["type"], "dashboard");
    assert_eq!(volume["entityType"], "volume");
    assert_eq!(
        volume["timestamp"], 1_796_500_000_003_i64,
        "the newest state"
    );
    assert_eq!(volume["payload"]["metrics"]["iops"], 1003);
    assert_eq!(got[2].1["payload"]["status"], "degraded");
}

#[tokio::test]
async fn a_subscription_needs_the_scope_a_valid_request_and_room() {
    let store = MemorySubscriptions::new();
    let volume = json!({"action": "subscribe", "entityType": "volume"});
    let refused = subscription_route(
        &store,
        &subscribe("c1", "dashboard:pool", volume.clone()),
        NOW,
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(
        refused.body["message"],
        "this connection's token does not grant dashboard:volume"
    );
    let no_scope = subscription_route(&store, &subscribe("c1", "", volume.clone()), NOW).await;
    assert_eq!(no_scope.status, 403, "no scope claim, no dashboards");
    for bad in [
        json!({"action": "subscribe"}),
        json!({"action": "subscribe", "entityType": ""}),
        json!({"action": "subscribe", "entityType": "volume", "entityId": "a b"}),
        json!({"action": "subscribe", "entityType": "volume", "extra": 1}),
        json!("not an object"),
    ] {
        let answer = subscription_route(
            &store,
            &subscribe("c1", "dashboard:volume", bad.clone()),
            NOW,
        )
        .await;
        assert_eq!(answer.status, 400, "{bad}: {answer:?}");
        assert_eq!(answer.body["type"], "error");
    }
    assert!(store.all().is_empty());

    let ok = subscription_route(
        &store,
        &subscribe("c1", "dashboard:volume", volume.clone()),
        NOW,
    )
    .await;
    assert_eq!(
        ok.body,
        json!({"type": "subscribed", "entityType": "volume"})
    );
    let sub = &store.all()[0];
    assert_eq!(sub.channel, type_channel("volume"));
    assert_eq!(
        sub.expires_at,
        (NOW - 1_000) / 1000 + 7200,
        "expires with its connection"
    );
    for i in 1..MAX_SUBSCRIPTIONS_PER_CONNECTION {
        let one =
            json!({"action": "subscribe", "entityType": "volume", "entityId": format!("vol-{i}")});
        assert_eq!(
            subscription_route(&store, &subscribe("c1", "dashboard:volume", one), NOW)
                .await
                .status,
            200
        );
    }
    let over = json!({"action": "subscribe", "entityType": "volume", "entityId": "vol-over"});
    assert_eq!(
        subscription_route(&store, &subscribe("c1", "dashboard:volume", over), NOW)
            .await
            .status,
        429
    );
    assert_eq!(
        subscription_route(
            &store,
            &subscribe("c1", "dashboard:volume", volume.clone()),
            NOW
        )
        .await
        .status,
        200,
        "subscribing again to a held channel is not one more"
    );
    let off = request(
        "c1",
        "dashboard:volume",
        "unsubscribe",
        json!({"action": "unsubscribe", "entityType": "volume"}),
    );
    assert_eq!(
        subscription_route(&store, &off, NOW).await.body["type"],
        "unsubscribed"
    );
    assert_eq!(store.all().len(), MAX_SUBSCRIPTIONS_PER_CONNECTION - 1);
}

#[test]
fn no_entity_type_or_id_can_name_another_entitys_channel() {
    assert_ne!(entity_channel("a#b", "c"), entity_channel("a", "b#c"));
    assert_ne!(entity_channel("a%23b", "c"), entity_channel("a#b", "c"));
    assert_ne!(type_channel("E#a#b"), entity_channel("a", "b"));
}

#[tokio::test]
async fn a_gone_subscriber_loses_its_record_and_subscriptions_and_the_others_still_get_it() {
    let d = dashboard(&[
        ("tab", r#"{"action":"subscribe","entityType":"volume"}"#),
        ("closed", r#"{"action":"subscribe","entityType":"volume"}"#),
        ("closed", r#"{"action":"subscribe","entityType":"pool"}"#),
    ])
    .await;
    d.pusher().api().close("closed");
    let report = d.handle(&batch(), NOW).await;
    assert!(
        report
            .outcomes
            .dynamodb_response()
            .batch_item_failures
            .is_empty(),
        "a gone connection is not a failure"
    );
    // One post to `closed` at least answered 410 (the other update may find it already gone).
    assert!(report.gone >= 1, "{report:?}");
    assert!(
        d.subscriptions()
            .channels_of("closed")
            .await
            .unwrap()
            .is_empty()
    );
    let open: Vec<_> = d
        .pusher()
        .store()
        .all()
        .into_iter()
        .map(|c| c.connection_id)
        .collect();
    assert_eq!(open, ["tab"]);
    assert_eq!(received(&d).len(), 1);
}

#[tokio::test]
async fn an_unavailable_api_fails_the_record_so_lambda_delivers_it_again() {
    let d = dashboard(&[("tab", r#"{"action":"subscribe","entityType":"pool"}"#)]).await;
    d.pusher().api().fail("tab", 3); // every attempt of one push
    let report = d.handle(&batch(), NOW).await;
    let failures = report.outcomes.dynamodb_response().batch_item_failures;
    assert_eq!(failures.len(), 1);
    assert_eq!(
        failures[0].item_identifier.as_deref(),
        Some("100003"),
        "the pool record: Lambda re-delivers from it"
    );
    // The redelivery, once the API is back: the subscriber gets it.
    let again = d.handle(&batch(), NOW).await;
    assert!(
        again
            .outcomes
            .dynamodb_response()
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(received(&d).len(), 1);
}

#[tokio::test]
async fn unavailable_subscriptions_fail_every_update_and_nothing_is_checkpointed_past_them() {
    let d = dashboard(&[("tab", r#"{"action":"subscribe","entityType":"volume"}"#)]).await;
    d.subscriptions().set_unavailable(true);
    let report = d.handle(&batch(), NOW).await;
    let failures = report.outcomes.dynamodb_response().batch_item_failures;
    assert_eq!(
        failures[0].item_identifier.as_deref(),
        Some("100002"),
        "the first update not pushed (vol-0a1b's newest record); the one before it is superseded"
    );
}

#[tokio::test]
async fn an_oversize_state_is_set_aside_with_a_count_not_retried() {
    let d = dashboard(&[("tab", r#"{"action":"subscribe","entityType":"volume"}"#)]).await;
    let mut event = batch();
    let big = serde_dynamo::to_item(json!({
        "entity_id": "vol-big", "entity_type": "volume", "event_type": "storage.metrics.sampled",
        "timestamp": 1, "event_time": "2026-12-05T12:00:00Z", "payload": {"blob": "x".repeat(130 * 1024)},
        "ingest_time": "2026-12-05T12:00:00Z", "request_id": "r", "sequence_number": "s"
    }))
    .unwrap();
    event.records.truncate(1);
    event.records[0].change.new_image = big;
    let report = d.handle(&event, NOW).await;
    assert_eq!(report.set_aside, 1);
    assert!(
        report
            .outcomes
            .dynamodb_response()
            .batch_item_failures
            .is_empty()
    );
    assert!(d.pusher().api().posted().is_empty());
}

#[tokio::test]
async fn disconnect_removes_the_connection_and_its_subscriptions() {
    let d = dashboard(&[
        ("tab", r#"{"action":"subscribe","entityType":"volume"}"#),
        ("tab", r#"{"action":"subscribe","entityType":"pool"}"#),
    ])
    .await;
    let settings = RouteSettings {
        connections_per_principal: 10,
    };
    let bye = request("tab", "", "$disconnect", json!(null));
    let (status, _) =
        connection_routes(d.pusher().store(), d.subscriptions(), settings, &bye, NOW).await;
    assert_eq!(status, 200);
    assert!(d.subscriptions().all().is_empty());
    assert!(d.pusher().store().all().is_empty());
    // subscribe goes to the subscription route through the same entry point.
    let sub = subscribe(
        "tab2",
        "dashboard:pool",
        json!({"action": "subscribe", "entityType": "pool"}),
    );
    let (status, response) =
        connection_routes(d.pusher().store(), d.subscriptions(), settings, &sub, NOW).await;
    assert_eq!(status, 200);
    assert_eq!(response.status_code, 200);
    assert_eq!(d.subscriptions().all().len(), 1);
}
