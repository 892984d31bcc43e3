//! Contract: the forward handler, run in-process against the moto emulator, publishes events
//! that the consumer rule *as synthesized by the CDK app* routes to the consumer queue —
//! exactly the accepted events, with the agreed envelope, and nothing else. The session token
//! secret comes from the emulator's Secrets Manager and the quota/idempotency state lives in a
//! DynamoDB table created with the key schema and TTL of the synthesized stateful template.
//!
//! Needs `moto_server` on PATH (or `MOTO_SERVER`) and synthesized templates in
//! `EVENTFABRIC_TEMPLATES_DIR`; scripts/test.sh provides both.

use std::collections::BTreeSet;
use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use eventfabric_core::secrets::SecretsManager;
use eventfabric_core::{Deadline, EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_registry::Registry;
use forward_api::{
    Authenticator, CompiledTopics, DynamoState, ForwardConfig, Forwarder, KeyRing, Redactor,
    SecretsManagerKeys, handle,
};
use serde_json::{Value, json};

mod support;
use support::{Moto, drain, queue, synthesized_template};

const BUS: &str = "eventfabric-dev-session";
const RULE: &str = "eventfabric-dev-session-consumer";
const ANALYTICS_BUS: &str = "eventfabric-dev-analytics";
const ANALYTICS_RULE: &str = "eventfabric-dev-analytics-archive";
/// The clock of the fixture request (2026-01-01T00:00:00Z).
const FUNCTION: &str = "eventfabric-dev-forward-api";
const FIXTURE_NOW: i64 = 1_767_225_600_000;
const STATE_TABLE: &str = "eventfabric-dev-forward-state";
const SECRET_NAME: &str = "eventfabric-dev-session-token-secret";
/// The local-only secret the fixture's token was signed with.
const LOCAL_SECRET: &str = "eventfabric-local-only-session-secret-0001";
const REDACTION_SECRET_NAME: &str = "eventfabric-dev-redaction-key";
const LOCAL_REDACTION_SECRET: &str = "eventfabric-local-only-redaction-key-0001";

/// The forward state table of the synthesized stateful template.
fn synthesized_state_table() -> Value {
    synthesized_template("Stateful")["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| {
            r["Type"] == "AWS::DynamoDB::Table" && r["Properties"]["TableName"] == STATE_TABLE
        })
        .map(|r| r["Properties"].clone())
        .expect("the forward state table is in the stateful template")
}

/// A rule of the synthesized dev stateless template, by name.
fn synthesized_rule(name: &str) -> Value {
    synthesized_template("Stateless")["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::Events::Rule" && r["Properties"]["Name"] == name)
        .map(|r| r["Properties"].clone())
        .unwrap_or_else(|| panic!("the rule {name} is in the template"))
}

fn fixture() -> ApiGatewayV2httpRequest {
    // Compiled in: a test binary reused from another checkout still carries this one's file.
    serde_json::from_str(include_str!(
        "../../../lambdas/forward_api/fixtures/apigw-v2-forward.json"
    ))
    .unwrap()
}

struct Emulated {
    moto: Moto,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    secrets: aws_sdk_secretsmanager::Client,
    consumer_queue_url: String,
    /// Stands in for the archive's Firehose stream (moto does not convert to Parquet): the
    /// synthesized analytics rule, pattern and input path as in the template, targets it.
    archive_queue_url: String,
}

/// The state table as the template declares it: key schema, attribute types, TTL attribute.
async fn create_state_table(dynamodb: &aws_sdk_dynamodb::Client) {
    support::create_synthesized_table(dynamodb, &synthesized_state_table()).await;
}

/// Bus, consumer queue and the synthesized rule, in a fresh moto.
async fn emulate() -> Emulated {
    let moto = Moto::start();
    let config = support::sdk_config(&moto.endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let secrets = aws_sdk_secretsmanager::Client::new(&config);
    create_state_table(&dynamodb).await;
    secrets
        .create_secret()
        .name(SECRET_NAME)
        .secret_string(LOCAL_SECRET)
        .send()
        .await
        .unwrap();
    secrets
        .create_secret()
        .name(REDACTION_SECRET_NAME)
        .secret_string(LOCAL_REDACTION_SECRET)
        .send()
        .await
        .unwrap();

    events.create_event_bus().name(BUS).send().await.unwrap();
    events
        .create_event_bus()
        .name(ANALYTICS_BUS)
        .send()
        .await
        .unwrap();
    let (queue_url, queue_arn) = queue(&sqs, "session-consumer").await;
    let (archive_queue_url, archive_queue_arn) = queue(&sqs, "analytics-archive-standin").await;
    let archive_rule = synthesized_rule(ANALYTICS_RULE);
    support::put_synthesized_rule(&events, ANALYTICS_BUS, &archive_rule, &archive_queue_arn).await;
    support::put_synthesized_rule(&events, BUS, &synthesized_rule(RULE), &queue_arn).await;
    Emulated {
        moto,
        events,
        sqs,
        secrets,
        consumer_queue_url: queue_url,
        archive_queue_url,
    }
}

type EmulatedForwarder = Forwarder<EventBridgeSink<EventBridgeApi>, DynamoState>;

/// The forward function as `main.rs` wires it, on the emulator: secrets from Secrets Manager,
/// state in DynamoDB, events to `bus`.
async fn forwarder(
    env: &Emulated,
    bus: &str,
    retry: RetryPolicy,
    quota: u32,
) -> (EmulatedForwarder, Keys) {
    // A bus the synthesized role does not name (the publish-failure tests) is the test's own
    // setting, not the function's: those calls are not the deployed role's to allow.
    let fc = if bus == BUS {
        function_clients(env).await
    } else {
        function_clients_as(env, support::sdk_config(&env.moto.endpoint).await)
    };
    let keys = KeyRing::load(
        SecretsManagerKeys::new(SecretsManager::new(fc.secrets.clone()), SECRET_NAME),
        FIXTURE_NOW,
    )
    .await
    .unwrap();
    let redaction = SecretsManager::new(fc.secrets.clone())
        .string(REDACTION_SECRET_NAME)
        .await
        .unwrap();
    let topics = CompiledTopics::compile(&Registry::embedded().unwrap()).unwrap();
    let sink = EventBridgeSink::new(EventBridgeApi::new(fc.events.clone()), retry);
    let mut config = ForwardConfig::with_buses(bus, Some(ANALYTICS_BUS.to_owned()));
    config.quota_events_per_minute = quota;
    let forwarder = Forwarder::new(
        topics,
        sink,
        DynamoState::new(fc.dynamodb.clone(), STATE_TABLE),
        config,
    )
    .with_redactor(Redactor::from_secret(redaction.as_bytes()));
    (forwarder, keys)
}

/// The forward function's own clients: its calls carry its identity in the emulator's log.
struct FunctionClients {
    events: aws_sdk_eventbridge::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    secrets: aws_sdk_secretsmanager::Client,
}

async fn function_clients(env: &Emulated) -> FunctionClients {
    function_clients_as(
        env,
        support::function_config(&env.moto.endpoint, FUNCTION).await,
    )
}

fn function_clients_as(_env: &Emulated, config: aws_config::SdkConfig) -> FunctionClients {
    FunctionClients {
        events: aws_sdk_eventbridge::Client::new(&config),
        dynamodb: aws_sdk_dynamodb::Client::new(&config),
        secrets: aws_sdk_secretsmanager::Client::new(&config),
    }
}

/// The signing keys as the function holds them: from Secrets Manager, following rotations.
type Keys = KeyRing<SecretsManagerKeys>;

#[tokio::test]
async fn the_signing_keys_follow_a_rotation_in_secrets_manager() {
    let env = emulate().await;
    let fc = function_clients(&env).await;
    let keys = KeyRing::load(
        SecretsManagerKeys::new(SecretsManager::new(fc.secrets.clone()), SECRET_NAME),
        FIXTURE_NOW,
    )
    .await
    .expect("a secret never rotated has no previous value, which is fine");
    let next = "eventfabric-local-only-session-secret-0002";
    // What a rotation leaves behind: the new value AWSCURRENT, the old one AWSPREVIOUS.
    env.secrets
        .put_secret_value()
        .secret_id(SECRET_NAME)
        .secret_string(next)
        .send()
        .await
        .unwrap();
    let bearer = |secret: &str| {
        let token =
            forward_api::auth::mint(secret.as_bytes(), "sess-123", FIXTURE_NOW / 1000 + 600)
                .unwrap();
        format!("Bearer {token}")
    };
    let later = FIXTURE_NOW + 61_000;
    // The first token of the new value makes the ring read the secret again; both pass then.
    for secret in [next, LOCAL_SECRET] {
        assert!(
            keys.authenticate(Some(&bearer(secret)), later)
                .await
                .is_ok(),
            "a token signed with {secret} must pass after the rotation"
        );
    }
}

fn answer(response: &aws_lambda_events::apigw::ApiGatewayV2httpResponse) -> Value {
    let Some(Body::Text(text)) = &response.body else {
        panic!("no body")
    };
    serde_json::from_str(text).unwrap()
}

/// Runs the fixture request through the forward handler, publishing to `bus` in the emulator,
/// and returns the 202 answer.
async fn forward_fixture(env: &Emulated, bus: &str, retry: RetryPolicy) -> Value {
    let (forwarder, verifier) = forwarder(env, bus, retry, 600).await;
    let response = handle(
        &forwarder,
        &verifier,
        &fixture(),
        FIXTURE_NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(response.status_code, 202);
    answer(&response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_events_reach_the_consumer_queue_and_nothing_else_does() {
    let env = emulate().await;
    let answer = forward_fixture(&env, BUS, RetryPolicy::default()).await;
    let accepted: BTreeSet<String> = answer["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(accepted.len(), 4, "{answer}");

    // Events the rule must not route: another source, and a denied topic that some other
    // publisher put on the bus under the interface source.
    let strays = [
        ("other.app", "session.summary.final"),
        ("nia.interface", "debug.console.captured"),
    ];
    for (source, detail_type) in strays {
        env.events
            .put_events()
            .entries(
                PutEventsRequestEntry::builder()
                    .event_bus_name(BUS)
                    .source(source)
                    .detail_type(detail_type)
                    .detail(json!({"id": format!("stray-{source}")}).to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }

    let delivered = drain(&env.sqs, &env.consumer_queue_url, accepted.len()).await;
    let ids: BTreeSet<String> = delivered
        .iter()
        .map(|m| m["detail"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids, accepted,
        "the consumer queue must hold exactly the accepted events"
    );
    assert_eq!(
        delivered.len(),
        accepted.len(),
        "each accepted event is delivered once"
    );

    for message in &delivered {
        assert_eq!(message["source"], "nia.interface");
        assert_eq!(message["detail-type"], message["detail"]["topic"]);
        assert_eq!(message["detail"]["sessionId"], "sess-123");
        assert_eq!(message["detail"]["tenantId"], "acme");
    }
    let started = delivered
        .iter()
        .find(|m| m["detail"]["id"] == "evt-started")
        .unwrap();
    assert_eq!(started["detail-type"], "session.lifecycle.started");
    assert_eq!(started["time"], "2025-12-31T23:59:59Z");
    assert_eq!(
        started["detail"]["payload"],
        json!({"tenantId": "acme", "locale": "en-GB"})
    );
    // The alias was published under its canonical topic.
    let ended = delivered
        .iter()
        .find(|m| m["detail"]["id"] == "evt-ended")
        .unwrap();
    assert_eq!(ended["detail-type"], "session.lifecycle.ended");
    let profile = delivered
        .iter()
        .find(|m| m["detail"]["id"] == "evt-profile")
        .unwrap();
    assert!(
        profile["detail"]["payload"].get("email").is_none(),
        "high-PII field left the session: {profile}"
    );
    let user_id = profile["detail"]["payload"]["userId"].as_str().unwrap();
    assert!(user_id.starts_with("hmac-sha256:"), "{profile}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_failures_are_reported_per_event_not_lost() {
    let env = emulate().await;
    // A bus that does not exist: EventBridge refuses every entry of the call.
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    let answer = forward_fixture(&env, "no-such-bus", retry).await;
    assert_eq!(answer["accepted"], json!([]), "{answer}");
    let failed: Vec<&str> = answer["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "publish_failed")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        failed,
        ["evt-started", "evt-ended", "evt-summary", "evt-profile"]
    );
    assert!(drain(&env.sqs, &env.consumer_queue_url, 0).await.is_empty());

    // Their idempotency keys were released: the client's retry goes through once the bus works.
    let retried = forward_fixture(&env, BUS, RetryPolicy::default()).await;
    assert_eq!(
        retried["accepted"].as_array().unwrap().len(),
        4,
        "{retried}"
    );
    assert_eq!(drain(&env.sqs, &env.consumer_queue_url, 4).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_request_is_reported_as_already_forwarded_and_not_delivered_twice() {
    let env = emulate().await;
    let first = forward_fixture(&env, BUS, RetryPolicy::default()).await;
    assert_eq!(first["accepted"].as_array().unwrap().len(), 4, "{first}");
    // Another instance of the function (a fresh forwarder), the same table.
    let second = forward_fixture(&env, BUS, RetryPolicy::default()).await;
    assert_eq!(second["accepted"], json!([]), "{second}");
    let already: Vec<&str> = second["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "already_forwarded")
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        already,
        ["evt-started", "evt-ended", "evt-summary", "evt-profile"]
    );
    let delivered = drain(&env.sqs, &env.consumer_queue_url, 4).await;
    assert_eq!(delivered.len(), 4, "each event delivered once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_over_its_quota_is_refused_with_429() {
    let env = emulate().await;
    let (forwarder, verifier) = forwarder(&env, BUS, RetryPolicy::default(), 10).await;
    let first = handle(
        &forwarder,
        &verifier,
        &fixture(),
        FIXTURE_NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(first.status_code, 202);
    // 8 + 8 events > 10 within the same minute.
    let second = handle(
        &forwarder,
        &verifier,
        &fixture(),
        FIXTURE_NOW + 1_000,
        Deadline::NONE,
    )
    .await;
    assert_eq!(second.status_code, 429, "{:?}", second.body);
    assert_eq!(answer(&second)["error"], "quota_exceeded");
    assert_eq!(second.headers["retry-after"], "59");
    assert_eq!(drain(&env.sqs, &env.consumer_queue_url, 4).await.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_token_or_for_another_session_are_refused() {
    let env = emulate().await;
    let (forwarder, verifier) = forwarder(&env, BUS, RetryPolicy::default(), 600).await;
    let mut anonymous = fixture();
    anonymous.headers.remove("authorization");
    assert_eq!(
        handle(
            &forwarder,
            &verifier,
            &anonymous,
            FIXTURE_NOW,
            Deadline::NONE
        )
        .await
        .status_code,
        401
    );
    let other_session =
        forward_api::auth::mint(LOCAL_SECRET.as_bytes(), "sess-999", FIXTURE_NOW / 1000 + 60)
            .unwrap();
    let mut foreign = fixture();
    foreign.headers.insert(
        "authorization",
        format!("Bearer {other_session}").parse().unwrap(),
    );
    assert_eq!(
        handle(&forwarder, &verifier, &foreign, FIXTURE_NOW, Deadline::NONE)
            .await
            .status_code,
        403
    );
    assert!(drain(&env.sqs, &env.consumer_queue_url, 0).await.is_empty());
}

fn client_body(events: Vec<Value>) -> String {
    json!({"events": events, "client": {"appVersion": "4.2.0", "sessionId": "sess-123", "tabId": "tab-1", "nonce": "n"}}).to_string()
}

fn event(id: &str, topic: &str, payload: Value) -> Value {
    json!({"id": id, "ts": FIXTURE_NOW, "topic": topic, "payload": payload, "schemaVersion": "1.0.0"})
}

fn started(id: &str) -> Value {
    event(
        id,
        "session.lifecycle.started",
        json!({"tenantId": "acme", "locale": "en"}),
    )
}

fn with(mut event: Value, key: &str, value: Value) -> Value {
    event[key] = value;
    event
}

/// Sends `events` through the emulated forward function and returns the 202 answer.
async fn send(forwarder: &EmulatedForwarder, verifier: &Keys, events: Vec<Value>) -> Value {
    let mut request = fixture();
    request.body = Some(client_body(events));
    let response = handle(forwarder, verifier, &request, FIXTURE_NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 202, "{:?}", response.body);
    answer(&response)
}

/// The request is answered with exactly `expected` rejections (one per event, in order) and
/// nothing reaches the consumer queue or the archive route.
async fn assert_only_rejected(events: Vec<Value>, expected: &[&str]) -> Value {
    let env = emulate().await;
    let (forwarder, verifier) = forwarder(&env, BUS, RetryPolicy::default(), 10_000).await;
    let body = send(&forwarder, &verifier, events).await;
    let reasons: Vec<&str> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, expected, "{body}");
    let accepted = body["accepted"].as_array().unwrap().len();
    let delivered = drain(&env.sqs, &env.consumer_queue_url, accepted).await;
    assert_eq!(delivered.len(), accepted, "only accepted events are routed");
    assert!(drain(&env.sqs, &env.archive_queue_url, 0).await.is_empty());
    body
}

// One test per rejection reason (already_forwarded and publish_failed have their own above).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_malformed_event() {
    let body = assert_only_rejected(
        vec![json!({"id": "m1", "topic": "session.lifecycle.started"})],
        &["malformed_event"],
    )
    .await;
    assert_eq!(body["rejected"][0]["id"], "m1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_duplicate_event_in_one_request() {
    let body = assert_only_rejected(vec![started("d1"), started("d1")], &["duplicate_event"]).await;
    assert_eq!(
        body["accepted"],
        json!(["d1"]),
        "the first one goes through"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_unknown_topic() {
    assert_only_rejected(
        vec![event("u1", "session.teleported", json!({}))],
        &["unknown_topic"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_unsupported_schema_version() {
    assert_only_rejected(
        vec![with(started("v1"), "schemaVersion", json!("2.0.0"))],
        &["unsupported_schema_version"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_schema_violation_with_the_json_pointer() {
    let body = assert_only_rejected(
        vec![event(
            "s1",
            "session.lifecycle.started",
            json!({"tenantId": 7, "locale": "en"}),
        )],
        &["schema_violation"],
    )
    .await;
    let detail = body["rejected"][0]["detail"].as_str().unwrap();
    assert!(detail.starts_with("at /payload/tenantId:"), "{detail}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_payload_too_large() {
    assert_only_rejected(
        vec![event(
            "p1",
            "session.summary.final",
            json!({"tenantId": "a", "conversationId": "c", "turns": 1, "summary": "x".repeat(4100)}),
        )],
        &["payload_too_large"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_stale_and_future_events() {
    assert_only_rejected(
        vec![
            with(started("t1"), "ts", json!(FIXTURE_NOW - 121_000)),
            with(started("t2"), "ts", json!(FIXTURE_NOW + 121_000)),
        ],
        &["stale_event", "future_event"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_redaction_unavailable_without_a_hashing_key() {
    let env = emulate().await;
    let (forwarder, verifier) = forwarder(&env, BUS, RetryPolicy::default(), 600).await;
    let forwarder = forwarder.with_redactor(Redactor::without_hashing());
    let body = send(
        &forwarder,
        &verifier,
        vec![event(
            "r1",
            "user.profile.updated",
            json!({"tenantId": "acme", "userId": "u-7", "changedFields": ["name"]}),
        )],
    )
    .await;
    assert_eq!(
        body["rejected"][0]["reason"], "redaction_unavailable",
        "{body}"
    );
    assert!(drain(&env.sqs, &env.consumer_queue_url, 0).await.is_empty());
}

// One test per forwarding policy (`default`: the fixture test above).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_deny_never_reaches_a_bus() {
    assert_only_rejected(
        vec![event(
            "x1",
            "debug.console.captured",
            json!({"level": "error", "message": "m"}),
        )],
        &["topic_denied"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_sampled_forwards_a_deterministic_sample_to_the_analytics_archive() {
    let env = emulate().await;
    let (forwarder, verifier) = forwarder(&env, BUS, RetryPolicy::default(), 10_000).await;
    let events = || -> Vec<Value> {
        (0..40)
            .map(|i| {
                event(
                    &format!("ui-{i}"),
                    "ui.interaction.sampled",
                    json!({"tenantId": "acme", "element": "button", "action": "click"}),
                )
            })
            .collect()
    };
    let body = send(&forwarder, &verifier, events()).await;
    let kept: Vec<String> = body["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let sampled_out = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "sampled_out")
        .count();
    assert_eq!(kept.len() + sampled_out, 40, "{body}");
    assert!(
        (1..=12).contains(&kept.len()),
        "rate 0.1 kept {} of 40",
        kept.len()
    );
    // Analytics topics go to the analytics bus and its archive route, not the session consumer.
    let archived = drain(&env.sqs, &env.archive_queue_url, kept.len()).await;
    assert_eq!(archived.len(), kept.len());
    for record in &archived {
        // In AWS the archive receives the detail itself (the target's InputPath `$.detail`,
        // asserted in the CDK tests): the Glue table's columns. moto ignores InputPath and
        // delivers the whole event, so look inside it.
        let detail = record.get("detail").unwrap_or(record);
        assert_eq!(detail["topic"], "ui.interaction.sampled", "{record}");
        assert_eq!(detail["sessionId"], "sess-123");
        assert!(detail["clientTs"].is_string() && detail["payload"].is_object());
    }
    assert!(drain(&env.sqs, &env.consumer_queue_url, 0).await.is_empty());
    // Same ids, another session: the same decision (the sample is on the event id).
    let mut other = fixture();
    other.headers.insert(
        "authorization",
        format!(
            "Bearer {}",
            forward_api::auth::mint(LOCAL_SECRET.as_bytes(), "sess-456", FIXTURE_NOW / 1000 + 60)
                .unwrap()
        )
        .parse()
        .unwrap(),
    );
    other.body = Some(
        json!({"events": events(), "client": {"appVersion": "4.2.0", "sessionId": "sess-456", "tabId": "t", "nonce": "n"}})
            .to_string(),
    );
    let again = answer(&handle(&forwarder, &verifier, &other, FIXTURE_NOW, Deadline::NONE).await);
    assert_eq!(again["accepted"], json!(kept));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_conditional_forwards_only_the_redacted_payload() {
    let env = emulate().await;
    let (forwarder, verifier) = forwarder(&env, BUS, RetryPolicy::default(), 600).await;
    let body = send(
        &forwarder,
        &verifier,
        vec![event(
            "chat-1",
            "chat.message.sent",
            json!({"tenantId": "acme", "conversationId": "c-1", "messageId": "m-1", "authorId": "agent-7",
                   "role": "agent", "length": 11, "text": "hello world"}),
        )],
    )
    .await;
    assert_eq!(body["accepted"], json!(["chat-1"]), "{body}");
    let delivered = drain(&env.sqs, &env.consumer_queue_url, 1).await;
    assert_eq!(delivered.len(), 1);
    let payload = &delivered[0]["detail"]["payload"];
    assert!(payload.get("text").is_none(), "{payload}");
    assert!(!delivered[0].to_string().contains("agent-7"));
    assert!(
        payload["authorId"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
}
