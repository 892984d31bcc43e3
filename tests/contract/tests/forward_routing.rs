//! Contract: the forward handler, run in-process against the moto emulator, publishes events
//! that the consumer rule *as synthesized by the CDK app* routes to the consumer queue —
//! exactly the accepted events, with the agreed envelope, and nothing else.
//!
//! Needs `moto_server` on PATH (or `MOTO_SERVER`) and synthesized templates in
//! `EVENTFABRIC_TEMPLATES_DIR`; scripts/test.sh provides both.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::BehaviorVersion;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_sdk_eventbridge::types::{PutEventsRequestEntry, Target};
use aws_sdk_sqs::config::Credentials;
use eventfabric_core::{EventBridgeApi, EventBridgeSink, RetryPolicy};
use eventfabric_registry::Registry;
use forward_api::{CompiledTopics, ForwardConfig, Forwarder, handle};
use serde_json::{Value, json};

const REGION: &str = "eu-west-1";
const BUS: &str = "eventfabric-dev-session";
const RULE: &str = "eventfabric-dev-session-consumer";
/// The clock of the fixture request (2026-01-01T00:00:00Z).
const FIXTURE_NOW: i64 = 1_767_225_600_000;

/// A moto server on a free loopback port, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Moto {
    fn start() -> Self {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start '{program}' ({e}): run scripts/setup.sh, which installs moto[server] into .tools/venv"));
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not listen on {endpoint} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Self { child, endpoint }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn templates_dir() -> PathBuf {
    std::env::var_os("EVENTFABRIC_TEMPLATES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/templates"
            ))
        })
}

/// The EventPattern of the consumer rule in the synthesized dev stateless template.
fn synthesized_consumer_pattern() -> Value {
    let assembly = templates_dir().join("dev/assembly-Dev");
    let template = std::fs::read_dir(&assembly)
        .unwrap_or_else(|e| {
            panic!(
                "no synthesized dev assembly at {} ({e}): run scripts/test.sh",
                assembly.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.contains("Stateless") && name.ends_with(".template.json")
        })
        .expect("stateless template");
    let template: Value =
        serde_json::from_str(&std::fs::read_to_string(template).unwrap()).unwrap();
    template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::Events::Rule" && r["Properties"]["Name"] == RULE)
        .map(|r| r["Properties"]["EventPattern"].clone())
        .expect("the consumer rule is in the template")
}

fn fixture() -> ApiGatewayV2httpRequest {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../lambdas/forward_api/fixtures/apigw-v2-forward.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

struct Emulated {
    _moto: Moto,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    consumer_queue_url: String,
}

/// Bus, consumer queue and the synthesized rule, in a fresh moto.
async fn emulate() -> Emulated {
    let moto = Moto::start();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new(
            "test",
            "test",
            None,
            None,
            "contract-test",
        ))
        .load()
        .await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    events.create_event_bus().name(BUS).send().await.unwrap();
    let queue_url = sqs
        .create_queue()
        .queue_name("session-consumer")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let queue_arn = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    events
        .put_rule()
        .name(RULE)
        .event_bus_name(BUS)
        .event_pattern(synthesized_consumer_pattern().to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule(RULE)
        .event_bus_name(BUS)
        .targets(
            Target::builder()
                .id("consumer")
                .arn(queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    Emulated {
        _moto: moto,
        events,
        sqs,
        consumer_queue_url: queue_url,
    }
}

/// Drains the queue until `expected` messages arrived, then waits once more for strays.
async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<Value> {
    let mut bodies = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut quiet_rounds = 0;
    while Instant::now() < deadline && (bodies.len() < expected || quiet_rounds < 2) {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() && bodies.len() >= expected {
            quiet_rounds += 1;
        }
        for m in messages {
            bodies.push(serde_json::from_str(m.body.as_deref().unwrap()).unwrap());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle.unwrap())
                .send()
                .await
                .unwrap();
        }
    }
    bodies
}

/// Runs the fixture request through the forward handler, publishing to `bus` in the emulator,
/// and returns the 202 answer.
async fn forward_fixture(env: &Emulated, bus: &str, retry: RetryPolicy) -> Value {
    let topics = CompiledTopics::compile(&Registry::embedded().unwrap()).unwrap();
    let sink = EventBridgeSink::new(EventBridgeApi::new(env.events.clone()), retry);
    let forwarder = Forwarder::new(topics, sink, ForwardConfig::with_buses(bus, None));
    let response = handle(&forwarder, &fixture(), FIXTURE_NOW).await;
    assert_eq!(response.status_code, 202);
    let Some(Body::Text(text)) = &response.body else {
        panic!("no body")
    };
    serde_json::from_str(text).unwrap()
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
}
