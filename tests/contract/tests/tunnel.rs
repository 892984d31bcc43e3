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

/// End to end: the `tunnel` binary runs as the authorizer, the WebSocket routes, the
/// forwarding function and the notifier, each a process with its synthesized environment
/// behind a stand-in Lambda Runtime API; the agents' WebSocket API and its management API
/// are the stand-in gateway (token in the `Authorization` header, as synthesized); tables,
/// bucket, rollout parameter, token secret and bus are moto's. An HTTP request goes to the
/// agent over a real WebSocket, the agent answers on `response`, and the waiting invocation
/// answers the caller: woken by a push on the event-driven path, by its reads on polling.
mod end_to_end {
    use super::*;
    use eventfabric_standin::client::Client;
    use eventfabric_standin::{Function, Gateway, Handler, handler};
    use std::sync::{Arc, OnceLock};

    const CONNECTIONS: &str = "eventfabric-dev-tunnel-connections";
    const SECRET: &str = "eventfabric-dev-tunnel-token-secret";
    const BUCKET: &str = "eventfabric-dev-tunnel-bodies-123456789012";
    const ROLLOUT: &str = "/eventfabric/dev/tunnel/rollout";
    const AUDIENCE: &str = "eventfabric:tunnel.connect";
    const KEY: &[u8] = b"a-tunnel-signing-secret-of-32-bytes-or-more";

    fn agent_token(sub: &str, scope: &str) -> String {
        let exp = eventfabric_core::now_ms() / 1000 + 600;
        eventfabric_core::token::sign(
            KEY,
            &json!({"sub": sub, "aud": AUDIENCE, "exp": exp, "scope": scope}),
        )
        .unwrap()
    }

    struct Deployed {
        moto: Moto,
        gateway: Gateway,
        forward: Arc<Function>,
        notifier: Function,
    }

    async fn function(endpoint: &str, role: &str, resolved: &[(&str, String)]) -> Function {
        let template = synthesized_template("TunnelStateless");
        let name = format!("eventfabric-dev-tunnel-{role}");
        let vars = support::synthesized_function_env(&template, &name, resolved, endpoint);
        Function::start(support::function_binary("tunnel"), &name, vars)
            .await
            .unwrap()
    }

    /// A route handler for a function started after the gateway (it needs the gateway's URL).
    fn later(slot: &Arc<OnceLock<Arc<Function>>>) -> Handler {
        let slot = slot.clone();
        handler(move |event: Value| {
            let slot = slot.clone();
            async move {
                let f = slot
                    .get()
                    .expect("the connections function started")
                    .clone();
                f.invoke(&event).await
            }
        })
    }

    async fn deploy(rollout: Value) -> Deployed {
        let moto = Moto::start();
        let endpoint = moto.endpoint.clone();
        let config = support::sdk_config(&endpoint).await;
        let dynamodb = aws_sdk_dynamodb::Client::new(&config);
        let stateful = synthesized_template("TunnelStateful");
        for table in [TABLE, CONNECTIONS] {
            let props = synthesized_resource(&stateful, "AWS::DynamoDB::Table", "TableName", table);
            support::create_synthesized_table(&dynamodb, &props).await;
        }
        let parameter = synthesized_resource(&stateful, "AWS::SSM::Parameter", "Name", ROLLOUT);
        aws_sdk_ssm::Client::new(&config)
            .put_parameter()
            .name(ROLLOUT)
            .value(rollout.to_string())
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .unwrap();
        assert_eq!(parameter["Type"], "String");
        let s3 = aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&config)
                .force_path_style(true)
                .build(),
        );
        s3.create_bucket()
            .bucket(BUCKET)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(support::REGION.into())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        aws_sdk_eventbridge::Client::new(&config)
            .create_event_bus()
            .name(BUS)
            .send()
            .await
            .unwrap();
        let secret = aws_sdk_secretsmanager::Client::new(&config)
            .create_secret()
            .name(SECRET)
            .secret_string(std::str::from_utf8(KEY).unwrap())
            .send()
            .await
            .unwrap()
            .arn
            .unwrap();

        let authorizer = Arc::new(
            function(
                &endpoint,
                "authorizer",
                &[("TOKEN_SECRET_ARN", secret.clone())],
            )
            .await,
        );
        let slot = Arc::new(OnceLock::new());
        let gateway = Gateway::builder()
            .authorizer(authorizer.handler())
            .identity_header("authorization")
            .route("$connect", later(&slot), false)
            .route("$disconnect", later(&slot), false)
            .route("$default", later(&slot), true)
            .route("response", later(&slot), true)
            .route("whoami", later(&slot), true)
            .start()
            .await
            .unwrap();
        let tables = [
            ("PENDING_TABLE_NAME", TABLE.to_owned()),
            ("CONNECTIONS_TABLE_NAME", CONNECTIONS.to_owned()),
            ("BODIES_BUCKET_NAME", BUCKET.to_owned()),
            ("WEBSOCKET_ENDPOINT", gateway.callback_url()),
        ];
        let connections = function(&endpoint, "connections", &tables).await;
        let _ = slot.set(Arc::new(connections));
        let mut forward_env = tables.to_vec();
        forward_env.push(("WAITER_WEBSOCKET_URL", gateway.websocket_url()));
        forward_env.push(("TOKEN_SECRET_ARN", secret));
        let forward = Arc::new(function(&endpoint, "forward", &forward_env).await);
        let notifier = function(
            &endpoint,
            "notifier",
            &[
                ("WEBSOCKET_ENDPOINT", gateway.callback_url()),
                ("APP_BUS_NAME", BUS.to_owned()),
            ],
        )
        .await;
        let _ = authorizer; // kept alive by the gateway's handler
        Deployed {
            moto,
            gateway,
            forward,
            notifier,
        }
    }

    /// `ANY /tunnel/agent-1/v1/items?page=2` as the HTTP API hands it to the function.
    fn http_event(request_id: &str, body: &str) -> Value {
        json!({
            "version": "2.0",
            "routeKey": "ANY /tunnel/{agent}/{proxy+}",
            "rawPath": "/tunnel/agent-1/v1/items",
            "rawQueryString": "page=2",
            "headers": {"content-type": "application/json", "x-caller": "c1"},
            "pathParameters": {"agent": "agent-1", "proxy": "v1/items"},
            "requestContext": {
                "requestId": request_id, "timeEpoch": 0, "apiId": "t", "stage": "$default",
                "http": {"method": "POST", "path": "/tunnel/agent-1/v1/items", "protocol": "HTTP/1.1",
                         "sourceIp": "192.0.2.1", "userAgent": "curl"}
            },
            "body": body,
            "isBase64Encoded": false
        })
    }

    /// The agent: takes one request, answers it with `answer_body`, returns the request.
    async fn answer_one(agent: &mut Client, answer_body: &[u8]) -> Value {
        use base64::Engine;
        let request = agent
            .next_json(Duration::from_secs(15))
            .await
            .expect("the agent receives the request");
        assert_eq!(request["type"], "request", "{request}");
        let reply = json!({
            "action": "response",
            "requestId": request["requestId"],
            "status": 201,
            "headers": {"content-type": "text/plain", "x-agent": "a1"},
            "body": base64::engine::general_purpose::STANDARD.encode(answer_body),
        });
        agent.send(&reply.to_string()).await;
        let accepted = agent.next_json(Duration::from_secs(10)).await.unwrap();
        assert_eq!(accepted["type"], "accepted", "{accepted}");
        request
    }

    /// The forwarding function's "request answered" log line for `request_id`.
    fn answered_log(forward: &Function, request_id: &str) -> Value {
        forward
            .logs()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| {
                l["fields"]["message"] == "request answered" && l["fields"]["request"] == request_id
            })
            .unwrap_or_else(|| panic!("no answer logged: {:?}", forward.logs()))
    }

    async fn through_the_tunnel(rollout: Value, answer_body: Vec<u8>) -> (Deployed, Value, Value) {
        let d = deploy(rollout).await;
        let mut agent = Client::connect_with_bearer(
            &d.gateway.websocket_url(),
            &agent_token("agent-1", "tunnel:agent"),
        )
        .await
        .unwrap();
        let forward = d.forward.clone();
        let caller =
            tokio::spawn(
                async move { forward.invoke(&http_event("Req1AbC=", r#"{"q":1}"#)).await },
            );
        let request = answer_one(&mut agent, &answer_body).await;
        assert_eq!(request["method"], "POST");
        assert_eq!(request["path"], "/v1/items");
        assert_eq!(request["query"], "page=2");
        assert_eq!(request["headers"]["x-caller"], "c1");
        assert_eq!(request["body"], "eyJxIjoxfQ==", "the caller's body, base64");
        let response = tokio::time::timeout(Duration::from_secs(30), caller)
            .await
            .expect("the caller is answered")
            .unwrap()
            .unwrap();
        let log = answered_log(&d.forward, "Req1AbC=");
        (d, response, log)
    }

    #[tokio::test]
    async fn event_driven_the_waiting_invocation_is_woken_by_a_push_and_reads_once() {
        let (d, response, log) = through_the_tunnel(
            json!({"useEventDriven": true, "canaryPercent": 100}),
            b"made by the agent".to_vec(),
        )
        .await;
        assert_eq!(response["statusCode"], 201, "{response}");
        assert_eq!(response["body"], "made by the agent");
        assert_eq!(response["headers"]["x-agent"], "a1");
        assert_eq!(log["fields"]["path"], "event_driven", "{log}");
        assert_eq!(log["fields"]["pushes"], 1, "woken by the push: {log}");
        assert_eq!(log["fields"]["reads"], 1, "one read after the push: {log}");
        assert!(
            d.gateway.posts(200) >= 2,
            "the request to the agent and the wake-up were posted"
        );

        // The notifier binary on the table's stream, as the synthesized mapping filters it:
        // one completion; it publishes HttpResponseReady and pushes the backup wake-up
        // (which finds no slot: the caller was answered).
        let stateless = synthesized_template("TunnelStateless");
        let mapping = stateless["Resources"]
            .as_object()
            .unwrap()
            .values()
            .find(|r| r["Type"] == "AWS::Lambda::EventSourceMapping")
            .unwrap()
            .clone();
        let pattern: Value = serde_json::from_str(
            mapping["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        let records: Vec<Value> = support::stream_records(&d.moto.endpoint, TABLE)
            .await
            .into_iter()
            .filter(|r| {
                pattern["eventName"][0] == r["eventName"]
                    && r["dynamodb"]["NewImage"]["status"]["S"]
                        == pattern["dynamodb"]["NewImage"]["status"]["S"][0]
            })
            .collect();
        assert_eq!(records.len(), 1, "one completion passes the filter");
        let batch = d
            .notifier
            .invoke(&json!({ "Records": records }))
            .await
            .unwrap();
        assert_eq!(batch["batchItemFailures"], json!([]), "{batch}");
    }

    #[tokio::test]
    async fn polling_with_the_flag_off_the_invocation_reads_until_the_answer_and_a_large_body_comes_from_s3()
     {
        let large: Vec<u8> = (0..70 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
        let (_d, response, log) = through_the_tunnel(
            json!({"useEventDriven": false, "canaryPercent": 100}),
            large.clone(),
        )
        .await;
        assert_eq!(response["statusCode"], 201, "{response}");
        assert_eq!(
            response["body"].as_str().unwrap().as_bytes(),
            &large[..],
            "the body over 64 KB went through the bucket"
        );
        assert_eq!(log["fields"]["path"], "polling", "{log}");
        assert_eq!(log["fields"]["pushes"], 0, "{log}");
        assert!(log["fields"]["reads"].as_u64().unwrap() >= 1, "{log}");
    }

    #[tokio::test]
    async fn an_agent_that_is_not_connected_gets_the_caller_a_502_and_a_token_without_the_agent_scope_cannot_answer()
     {
        let d = deploy(json!({"useEventDriven": true, "canaryPercent": 100})).await;
        let response = d.forward.invoke(&http_event("Req2AbC=", "")).await.unwrap();
        assert_eq!(response["statusCode"], 502, "{response}");
        assert!(
            response["body"]
                .as_str()
                .unwrap()
                .contains("agent_not_connected")
        );
        let mut impostor = Client::connect_with_bearer(
            &d.gateway.websocket_url(),
            &agent_token("agent-1", "tunnel:waiter"),
        )
        .await
        .unwrap();
        impostor
            .send(r#"{"action":"response","requestId":"Req2AbC=","status":200}"#)
            .await;
        let refused = impostor.next_json(Duration::from_secs(10)).await.unwrap();
        assert_eq!(refused["type"], "error", "{refused}");
        assert!(
            Client::connect(&d.gateway.websocket_url(), Some("query-token"))
                .await
                .is_err(),
            "the identity source is the Authorization header"
        );
    }
}
