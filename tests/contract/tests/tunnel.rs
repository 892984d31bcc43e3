//! The HTTP tunnel on moto: the pending requests table as the stateful template declares it
//! (stream and TTL), the real DynamoDB adapter and `response` route, the table's stream read
//! back from moto, the real notifier on those records, and `HttpResponseReady` reaching a queue
//! through the synthesized responses rule.

mod support;

use std::time::Duration;

use aws_lambda_events::dynamodb::Event;
use eventfabric_core::publish::{BusNames, Publisher};
use eventfabric_core::{Deadline, EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_websocket::push::MemoryConnectionApi;
use serde_json::{Value, json};
use support::{Moto, drain, queue, synthesized_resource, synthesized_template};
use tunnel::agent::{self, MemoryBodies};
use tunnel::notifier::Notifier;
use tunnel::pending::{
    Completion, DynamoPending, Pending, PendingStore, Status, StoredBody, StoredResponse,
};

const BUS: &str = "eventfabric-dev-app";
const TABLE: &str = "eventfabric-dev-tunnel-pending";
const RULE: &str = "eventfabric-dev-tunnel-responses";

fn pending(id: &str, waiter: Option<&str>) -> Pending {
    Pending {
        request_id: id.into(),
        agent_id: "agent-1".into(),
        status: Status::Pending,
        waiter: waiter.map(str::to_owned),
        created_at: 1_796_500_000_000,
        expires_at: 1_796_500_900,
        completed_at: None,
        response: None,
    }
}

#[tokio::test]
async fn a_completed_request_wakes_its_waiter_and_reaches_the_responses_queue_through_the_synthesized_rule()
 {
    let moto = Moto::start();
    let config = support::sdk_config(&moto.endpoint).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let props = synthesized_resource(
        &synthesized_template("TunnelStateful"),
        "AWS::DynamoDB::Table",
        "TableName",
        TABLE,
    );
    assert_eq!(
        props["StreamSpecification"]["StreamViewType"],
        "NEW_AND_OLD_IMAGES"
    );
    support::create_synthesized_table(&dynamodb, &props).await;
    events.create_event_bus().name(BUS).send().await.unwrap();
    let (url, arn) = queue(&sqs, "stand-in-tunnel-responses").await;
    let rule = synthesized_resource(
        &synthesized_template("TunnelStateless"),
        "AWS::Events::Rule",
        "Name",
        RULE,
    );
    support::put_synthesized_rule(&events, BUS, &rule, &arn).await;

    // The forwarder's item, then the agent's answer through the real route and adapter.
    let store = DynamoPending::new(dynamodb.clone(), TABLE);
    store
        .create(&pending("req-1", Some("waiter-conn")))
        .await
        .unwrap();
    assert!(
        store.create(&pending("req-1", None)).await.is_err(),
        "created once"
    );
    let route_push = MemoryConnectionApi::new();
    let message = json!({"action": "response", "requestId": "req-1", "status": 201,
        "headers": {"content-type": "text/plain"}, "body": "aGVsbG8="})
    .to_string();
    let answer = agent::respond(
        &store,
        &MemoryBodies::new(),
        &route_push,
        "agent-1",
        &message,
        1_796_500_000_300,
    )
    .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        route_push.posted()[0].0,
        "waiter-conn",
        "the route woke the waiter itself"
    );
    let again = agent::respond(
        &store,
        &MemoryBodies::new(),
        &route_push,
        "agent-1",
        &message,
        0,
    )
    .await;
    assert_eq!(again.body["duplicate"], true);
    let forged = agent::respond(
        &store,
        &MemoryBodies::new(),
        &route_push,
        "agent-2",
        &message,
        0,
    )
    .await;
    assert_eq!(forged.status, 404, "another agent cannot answer it");
    let other = StoredResponse {
        status: 200,
        headers: Default::default(),
        body: StoredBody::Inline {
            base64: String::new(),
            bytes: 0,
        },
    };
    assert_eq!(
        store
            .complete("req-404", "agent-1", &other, 0)
            .await
            .unwrap(),
        Completion::Unknown
    );
    let item = store.get("req-1").await.unwrap().unwrap();
    assert_eq!(item.status, Status::Completed);
    assert_eq!(item.response.unwrap().status, 201);

    // moto's stream: INSERT then one MODIFY (the repeated and forged answers changed nothing).
    let records = support::stream_records(&moto.endpoint, TABLE).await;
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["INSERT", "MODIFY"]);
    let event: Event = serde_json::from_value(json!({ "Records": records })).unwrap();
    let backup = MemoryConnectionApi::new();
    let notifier = Notifier {
        publisher: Publisher::new(
            EventBridgeSink::new(EventBridgeApi::new(events.clone()), RetryPolicy::default()),
            BusNames::new([("app", BUS)]),
        ),
        api: backup,
    };
    let report = notifier
        .handle(&event, Deadline::after(Duration::from_secs(10)))
        .await;
    assert!(
        report
            .outcomes
            .dynamodb_response()
            .batch_item_failures
            .is_empty()
    );
    assert_eq!(
        (
            report.completions,
            report.published,
            report.woken,
            report.skipped
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        notifier.api.posted()[0].0,
        "waiter-conn",
        "the backup wake-up"
    );

    let arrived: Vec<Value> = drain(&sqs, &url, 1).await;
    assert_eq!(arrived.len(), 1);
    assert_eq!(arrived[0]["source"], "http-tunnel.response");
    assert_eq!(arrived[0]["detail-type"], "HttpResponseReady");
    let payload = &arrived[0]["detail"]["payload"];
    assert_eq!(payload["requestId"], "req-1");
    assert_eq!(payload["status"], 201);
    assert_eq!(payload["bodyBytes"], 5);
    assert_eq!(payload["bodyStored"], "inline");

    // A redelivered batch publishes the same event id again (consumers dedupe on it).
    notifier
        .handle(&event, Deadline::after(Duration::from_secs(10)))
        .await;
    let again: Vec<Value> = drain(&sqs, &url, 1).await;
    assert_eq!(again[0]["detail"]["id"], arrived[0]["detail"]["id"]);
}
