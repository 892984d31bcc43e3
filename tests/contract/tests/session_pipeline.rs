//! Contract: the session pipeline *as synthesized* — the state machine's definition with its
//! substitutions resolved from the template — runs the real step handlers in-process against
//! the moto emulator: summaries land in a table shaped like the synthesized one, and every
//! failure class ends either persisted or as a `session.pipeline.failed` event that the
//! synthesized failures rule routes to its queue. Nothing is lost.
//!
//! The flows run on `support::asl` (Lambda tasks cannot fail in moto, see there); the success
//! path also runs on moto's own Step Functions executor, and both must agree.
//!
//! Needs `moto_server` and `EVENTFABRIC_TEMPLATES_DIR`, as forward_routing.rs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use eventfabric_registry::Registry;
use serde_json::{Value, json};
use session_pipeline::compliance::Checker;
use session_pipeline::persistence::{DynamoSummaries, StoredSummary, SummaryStore};
use session_pipeline::{StepError, handler};

mod support;
use support::asl::{Execution, Machine, Outcome, TaskError, Tasks};
use support::{Moto, drain, queue, synthesized_resource, synthesized_template};

const BUS: &str = "eventfabric-dev-session";
const FAILURES_RULE: &str = "eventfabric-dev-session-pipeline-failures";
const TABLE: &str = "eventfabric-dev-session-summaries";
const ACCOUNT: &str = "123456789012";
const PUT_EVENTS: &str = "arn:aws:states:::events:putEvents";

/// The ARN of a function's `live` alias: what the synthesized tasks invoke (CodeDeploy shifts it).
fn function_arn(name: &str) -> String {
    format!(
        "arn:aws:lambda:{}:{ACCOUNT}:function:{name}:live",
        support::REGION
    )
}

/// The synthesized definition with its substitutions resolved: the live aliases' ARNs from
/// their functions' names, the bus name, and the literal ones as they are.
fn synthesized_definition() -> Value {
    let template = synthesized_template("SessionPipelineStateless");
    let machine = template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Type"] == "AWS::StepFunctions::StateMachine")
        .expect("the state machine is in the template")["Properties"]
        .clone();
    let mut text = machine["DefinitionString"].as_str().unwrap().to_owned();
    for (key, value) in machine["DefinitionSubstitutions"].as_object().unwrap() {
        let resolved = if let Some(s) = value.as_str() {
            s.to_owned()
        } else if let Some(alias) = value["Ref"]
            .as_str()
            .filter(|id| template["Resources"][id]["Type"] == "AWS::Lambda::Alias")
        {
            let alias = &template["Resources"][alias]["Properties"];
            assert_eq!(alias["Name"], "live", "{key} is the live alias");
            let function = alias["FunctionName"]["Ref"].as_str().unwrap();
            function_arn(
                template["Resources"][function]["Properties"]["FunctionName"]
                    .as_str()
                    .unwrap(),
            )
        } else if value.get("Fn::ImportValue").is_some() && key == "SessionBusName" {
            BUS.to_owned()
        } else {
            panic!("substitution {key} = {value} is not one this test knows how to resolve");
        };
        text = text.replace(&format!("${{{key}}}"), &resolved);
    }
    assert!(!text.contains("${"), "every placeholder is substituted");
    serde_json::from_str(&text).unwrap()
}

struct Emulated {
    moto: Moto,
    events: aws_sdk_eventbridge::Client,
    sqs: aws_sdk_sqs::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    /// The persistence step's own client: its calls are checked against its role.
    persistence: aws_sdk_dynamodb::Client,
    failures_url: String,
}

/// The session bus with the synthesized failures rule to a queue, and the summaries table as
/// the stateful template declares it.
async fn emulate() -> Emulated {
    let moto = Moto::start();
    let config = support::sdk_config(&moto.endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    events.create_event_bus().name(BUS).send().await.unwrap();
    let (failures_url, failures_arn) = queue(&sqs, "session-pipeline-failures").await;
    let rule = synthesized_resource(
        &synthesized_template("SessionPipelineStateless"),
        "AWS::Events::Rule",
        "Name",
        FAILURES_RULE,
    );
    support::put_synthesized_rule(&events, BUS, &rule, &failures_arn).await;

    let table = synthesized_resource(
        &synthesized_template("SessionPipelineStateful"),
        "AWS::DynamoDB::Table",
        "TableName",
        TABLE,
    );
    support::create_synthesized_table(&dynamodb, &table).await;
    let persistence = aws_sdk_dynamodb::Client::new(
        &support::function_config(&moto.endpoint, "eventfabric-dev-session-persistence").await,
    );
    Emulated {
        moto,
        events,
        sqs,
        dynamodb,
        persistence,
        failures_url,
    }
}

/// The summaries table on the emulator, with failures injected before it is reached.
struct Flaky {
    inner: DynamoSummaries,
    failures: Mutex<Vec<StepError>>,
}

impl SummaryStore for Flaky {
    async fn put_if_newer(
        &self,
        item: &StoredSummary,
    ) -> Result<session_pipeline::document::Persisted, StepError> {
        let next = {
            let mut failures = self.failures.lock().unwrap();
            (!failures.is_empty()).then(|| failures.remove(0))
        };
        match next {
            Some(error) => Err(error),
            None => self.inner.put_if_newer(item).await,
        }
    }
}

/// The task resources of the definition, run as Lambda and EventBridge would run them.
struct Steps {
    checker: Checker,
    store: Flaky,
    events: aws_sdk_eventbridge::Client,
    /// Each Lambda task's result, in order (queued for moto's run of the same flow).
    results: Vec<Value>,
}

impl Steps {
    fn new(env: &Emulated, failures: Vec<StepError>) -> Self {
        Self {
            checker: Checker::from_json(Some(r#"{"flagTerms": ["refund"]}"#)).unwrap(),
            store: Flaky {
                inner: DynamoSummaries::new(env.persistence.clone(), TABLE),
                failures: Mutex::new(failures),
            },
            events: env.events.clone(),
            results: Vec::new(),
        }
    }
}

impl Tasks for Steps {
    async fn call(&mut self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let step =
            |name: &str| resource == function_arn(&format!("eventfabric-dev-session-{name}"));
        let result = if step("summary") {
            handler::summary(input)
        } else if step("sentiment") {
            handler::sentiment(input)
        } else if step("compliance") {
            handler::compliance(&self.checker, input)
        } else if step("persistence") {
            handler::persistence(&self.store, input, 1_800_000_000_000).await
        } else if resource == PUT_EVENTS {
            return put_events(&self.events, &input).await;
        } else {
            panic!("the definition calls {resource}, which is none of the pipeline's resources");
        };
        match result {
            Ok(value) => {
                self.results.push(value.clone());
                Ok(value)
            }
            // What Lambda reports for a function error: the error type, and a JSON cause.
            Err(e) => Err(TaskError {
                error: e.error_type().to_owned(),
                cause: json!({"errorType": e.error_type(), "errorMessage": e.to_string()})
                    .to_string(),
            }),
        }
    }
}

/// The `events:putEvents` integration: `Detail` objects are sent as JSON text.
async fn put_events(
    events: &aws_sdk_eventbridge::Client,
    input: &Value,
) -> Result<Value, TaskError> {
    let mut request = events.put_events();
    for entry in input["Entries"].as_array().unwrap() {
        request = request.entries(
            PutEventsRequestEntry::builder()
                .event_bus_name(entry["EventBusName"].as_str().unwrap())
                .source(entry["Source"].as_str().unwrap())
                .detail_type(entry["DetailType"].as_str().unwrap())
                .detail(entry["Detail"].to_string())
                .build(),
        );
    }
    let out = request.send().await.map_err(|e| TaskError {
        error: "EventBridge.EventBridgeException".into(),
        cause: aws_sdk_eventbridge::error::DisplayErrorContext(&e).to_string(),
    })?;
    if out.failed_entry_count > 0 {
        return Err(TaskError {
            error: "EventBridge.FailedEntry".into(),
            cause: format!("{:?}", out.entries),
        });
    }
    Ok(json!({"FailedEntryCount": 0}))
}

/// A `session.summary.final` event as the trigger rule hands it to the state machine.
fn summary_event(summary: &str) -> Value {
    json!({
        "version": "0", "id": "0c5e7f4a-9d1e-4b53-8f0e-6a2d3c4b5e6f",
        "detail-type": "session.summary.final", "source": "nia.interface",
        "account": ACCOUNT, "time": "2026-11-28T10:00:00Z", "region": support::REGION, "resources": [],
        "detail": {
            "id": "evt-77", "topic": "session.summary.final", "schemaVersion": "1.1.0", "tenantId": "acme",
            "sessionId": "sess-3", "tabId": "tab-1", "appVersion": "4.2.0",
            "clientTs": "2026-11-28T09:59:59.000Z",
            "payload": {
                "tenantId": "acme", "conversationId": "conv-2002", "turns": 2, "summary": summary,
                "participants": [{"id": "agent-1", "role": "agent"}, {"id": "cust-9", "role": "customer"}],
                "transcript": [
                    {"participantId": "cust-9", "text": "I want a refund, call me on +44 20 7946 0958"},
                    {"participantId": "agent-1", "text": "Done, the refund is on its way."}
                ]
            },
            "meta": {}
        }
    })
}

async fn run(env: &Emulated, event: Value, failures: Vec<StepError>) -> (Execution, Steps) {
    let machine = Machine::parse(&synthesized_definition()).unwrap();
    let mut steps = Steps::new(env, failures);
    let execution = machine
        .run(
            event,
            "arn:aws:states:eu-west-1:123456789012:express:test:run-1",
            &mut steps,
        )
        .await;
    (execution, steps)
}

async fn stored(env: &Emulated) -> Option<Value> {
    let out = env
        .dynamodb
        .get_item()
        .table_name(TABLE)
        .key(
            "tenantId",
            aws_sdk_dynamodb::types::AttributeValue::S("acme".into()),
        )
        .key(
            "conversationId",
            aws_sdk_dynamodb::types::AttributeValue::S("conv-2002".into()),
        )
        .send()
        .await
        .unwrap();
    out.item.map(|item| serde_dynamo::from_item(item).unwrap())
}

/// The failure events the synthesized rule delivered, each checked against the registry's
/// `session.pipeline.failed` schema.
async fn failure_events(env: &Emulated, expected: usize) -> Vec<Value> {
    let registry = Registry::embedded().unwrap();
    let spec = registry
        .topics()
        .iter()
        .find(|t| t.topic == "session.pipeline.failed")
        .unwrap();
    let schema = jsonschema::validator_for(&spec.payload_schema).unwrap();
    let delivered = drain(&env.sqs, &env.failures_url, expected).await;
    for event in &delivered {
        assert_eq!(event["source"], spec.source());
        assert_eq!(event["detail-type"], "session.pipeline.failed");
        let errors: Vec<String> = schema
            .iter_errors(&event["detail"])
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "the failure event breaks its registry schema: {errors:?}"
        );
    }
    delivered
}

#[tokio::test]
async fn the_synthesized_pipeline_persists_a_masked_summary_and_moto_runs_it_the_same() {
    let env = emulate().await;
    let event =
        summary_event("Customer asked for a refund; agent approved it. Very happy customer!");
    let (execution, steps) = run(&env, event.clone(), vec![]).await;
    let Outcome::Succeeded(output) = &execution.outcome else {
        panic!("{:?}", execution);
    };
    assert_eq!(
        execution.entered(),
        ["Summary", "Sentiment", "Compliance", "Persistence", "Done"]
    );
    assert_eq!(output["persistence"]["outcome"], "written");
    assert_eq!(
        output["compliance"]["outcome"], "flag",
        "a phone number and the term 'refund'"
    );
    let item = stored(&env).await.expect("the summary is persisted");
    assert_eq!(
        item["transcript"][0]["text"],
        "I want a refund, call me on [PHONE]"
    );
    assert_eq!(item["sentiment"]["summary"]["label"], "positive");
    assert!(failure_events(&env, 0).await.is_empty());

    // The same definition on moto's executor, its Lambda tasks answering what ours did.
    let moto_output = run_on_moto(&env, &event, &steps.results).await;
    assert_eq!(
        moto_output, *output,
        "moto and support::asl disagree on the data flow"
    );
}

/// Runs the synthesized definition on moto (parser mode) with the given Lambda results.
async fn run_on_moto(env: &Emulated, input: &Value, results: &[Value]) -> Value {
    let endpoint = &env.moto.endpoint;
    moto_post(
        endpoint,
        "/moto-api/config",
        &[],
        &json!({"stepfunctions": {"execute_state_machine": true}, "lambda": {"use_docker": false}}),
    );
    let results: Vec<String> = results.iter().map(Value::to_string).collect();
    moto_post(
        endpoint,
        "/moto-api/static/lambda-simple/response",
        &[],
        &json!({"results": results, "region": support::REGION}),
    );
    let machine = states(
        endpoint,
        "CreateStateMachine",
        json!({
            "name": "session-pipeline",
            "definition": synthesized_definition().to_string(),
            "roleArn": format!("arn:aws:iam::{ACCOUNT}:role/session-pipeline"),
        }),
    );
    let started = states(
        endpoint,
        "StartExecution",
        json!({"stateMachineArn": machine["stateMachineArn"], "name": "run-1", "input": input.to_string()}),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let described = states(
            endpoint,
            "DescribeExecution",
            json!({"executionArn": started["executionArn"]}),
        );
        match described["status"].as_str() {
            Some("RUNNING") => {
                assert!(
                    Instant::now() < deadline,
                    "moto's execution is still running"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Some("SUCCEEDED") => {
                return serde_json::from_str(described["output"].as_str().unwrap()).unwrap();
            }
            _ => panic!("moto's execution ended otherwise: {described}"),
        }
    }
}

/// One Step Functions API call on moto (JSON 1.0 protocol; moto reads the region from the
/// credential scope and checks no signature). Plain HTTP: the SDK crate for one test's three
/// calls cost the test build more than all of this.
fn states(endpoint: &str, action: &str, body: Value) -> Value {
    let target = format!("AWSStepFunctions.{action}");
    let scope = format!(
        "AWS4-HMAC-SHA256 Credential=test/20261128/{}/states/aws4_request, SignedHeaders=host, Signature=0",
        support::REGION
    );
    let answer = moto_post(
        endpoint,
        "/",
        &[
            ("X-Amz-Target", target.as_str()),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Authorization", scope.as_str()),
        ],
        &body,
    );
    serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{action}: {e}: {answer}"))
}

/// A POST to moto; returns the body of a 2xx answer.
fn moto_post(endpoint: &str, path: &str, headers: &[(&str, &str)], body: &Value) -> String {
    use std::io::{Read, Write};
    let address = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    let body = body.to_string();
    let mut request = format!(
        "POST {path} HTTP/1.0\r\nHost: {address}\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !headers.iter().any(|(name, _)| *name == "Content-Type") {
        request.push_str("Content-Type: application/json\r\n");
    }
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(
        head.starts_with("HTTP/1.1 2") || head.starts_with("HTTP/1.0 2"),
        "{path}: {answer}"
    );
    body.to_owned()
}

#[tokio::test]
async fn a_transient_store_error_is_retried_with_backoff_and_the_summary_persisted() {
    let env = emulate().await;
    let unavailable = || StepError::StoreUnavailable("ThrottlingException: slow down".into());
    let (execution, _) = run(
        &env,
        summary_event("Short call."),
        vec![unavailable(), unavailable()],
    )
    .await;
    assert!(
        matches!(execution.outcome, Outcome::Succeeded(_)),
        "{execution:?}"
    );
    assert_eq!(execution.attempts("Persistence"), 3);
    assert_eq!(execution.waits("Persistence"), [1.0, 2.0]);
    assert!(stored(&env).await.is_some());
    assert!(failure_events(&env, 0).await.is_empty());
}

#[tokio::test]
async fn a_summary_that_cannot_be_one_fails_into_a_failure_event_on_the_failures_queue() {
    let env = emulate().await;
    let (execution, _) = run(&env, summary_event("  \n "), vec![]).await;
    assert!(
        matches!(execution.outcome, Outcome::Failed { ref error, .. } if error == "SessionPipelineFailed"),
        "{execution:?}"
    );
    assert_eq!(
        execution.attempts("Summary"),
        1,
        "invalid input is not retried"
    );
    let delivered = failure_events(&env, 1).await;
    assert_eq!(delivered.len(), 1);
    let detail = &delivered[0]["detail"];
    assert_eq!(detail["step"], "summary");
    assert_eq!(detail["error"], "InvalidInput");
    assert_eq!(
        detail["sourceEventId"],
        "0c5e7f4a-9d1e-4b53-8f0e-6a2d3c4b5e6f"
    );
    assert!(
        detail["cause"]
            .as_str()
            .unwrap()
            .contains("detail.payload.summary: empty")
    );
    assert_eq!(
        detail["tenantId"],
        Value::Null,
        "unparsed input names no tenant"
    );
    assert!(stored(&env).await.is_none());
}

#[tokio::test]
async fn a_store_that_refuses_fails_into_a_failure_event_naming_the_conversation() {
    let env = emulate().await;
    let refused = StepError::StoreRefused("AccessDeniedException: not allowed".into());
    let (execution, _) = run(&env, summary_event("Short call."), vec![refused]).await;
    assert!(
        matches!(execution.outcome, Outcome::Failed { .. }),
        "{execution:?}"
    );
    assert_eq!(
        execution.attempts("Persistence"),
        1,
        "a refusal is not retried"
    );
    let delivered = failure_events(&env, 1).await;
    let detail = &delivered[0]["detail"];
    assert_eq!(
        (
            &detail["step"],
            &detail["error"],
            &detail["tenantId"],
            &detail["conversationId"]
        ),
        (
            &json!("persistence"),
            &json!("StoreRefused"),
            &json!("acme"),
            &json!("conv-2002")
        )
    );
    assert!(
        !detail["cause"].as_str().unwrap().contains("Short call"),
        "no summary text in the cause"
    );
}

#[tokio::test]
async fn a_store_unavailable_past_its_retries_is_reported_not_lost() {
    let env = emulate().await;
    let failures = (0..6)
        .map(|_| StepError::StoreUnavailable("ServiceUnavailable".into()))
        .collect();
    let (execution, _) = run(&env, summary_event("Short call."), failures).await;
    assert!(
        matches!(execution.outcome, Outcome::Failed { .. }),
        "{execution:?}"
    );
    assert_eq!(
        execution.attempts("Persistence"),
        6,
        "the first try and 5 retries"
    );
    assert_eq!(
        execution.waits("Persistence"),
        [1.0, 2.0, 4.0, 8.0, 10.0],
        "capped at 10 s"
    );
    let delivered = failure_events(&env, 1).await;
    assert_eq!(delivered[0]["detail"]["error"], "StoreUnavailable");
    assert!(stored(&env).await.is_none());
}

#[tokio::test]
async fn a_repeated_execution_writes_the_summary_once() {
    let env = emulate().await;
    let event = summary_event("Short call.");
    let (first, _) = run(&env, event.clone(), vec![]).await;
    let (second, _) = run(&env, event, vec![]).await;
    let outcome = |e: &Execution| match &e.outcome {
        Outcome::Succeeded(out) => out["persistence"]["outcome"].clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(outcome(&first), "written");
    assert_eq!(outcome(&second), "already_persisted");
    assert!(failure_events(&env, 0).await.is_empty());
}

#[tokio::test]
async fn a_replay_sends_archived_summaries_back_through_the_synthesized_trigger_rule_only() {
    use session_pipeline::replay::{Archive, EventBridgeArchive, Window};
    const TRIGGER_RULE: &str = "eventfabric-dev-session-pipeline-trigger";
    const ARCHIVE: &str = "eventfabric-dev-session-archive";
    let env = emulate().await;
    // The synthesized trigger rule, its target (the state machine) stood in for by a queue.
    let trigger = synthesized_resource(
        &synthesized_template("SessionPipelineStateless"),
        "AWS::Events::Rule",
        "Name",
        TRIGGER_RULE,
    );
    let (pipeline_url, pipeline_arn) = queue(&env.sqs, "pipeline-standin").await;
    support::put_synthesized_rule(&env.events, BUS, &trigger, &pipeline_arn).await;
    let bus_arn = env
        .events
        .describe_event_bus()
        .name(BUS)
        .send()
        .await
        .unwrap()
        .arn
        .unwrap();
    env.events
        .create_archive()
        .archive_name(ARCHIVE)
        .event_source_arn(bus_arn)
        .send()
        .await
        .unwrap();
    // One summary, as forwarding publishes it (Time = the client's timestamp).
    let event = summary_event("Archived call.");
    let at = aws_sdk_eventbridge::primitives::DateTime::from_millis(1_795_859_999_000);
    env.events
        .put_events()
        .entries(
            PutEventsRequestEntry::builder()
                .event_bus_name(BUS)
                .source("nia.interface")
                .detail_type("session.summary.final")
                .time(at)
                .detail(event["detail"].to_string())
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        drain(&env.sqs, &pipeline_url, 1).await.len(),
        1,
        "delivered once, live"
    );

    let mut archive = EventBridgeArchive::connect(env.events.clone(), ARCHIVE, TRIGGER_RULE, BUS)
        .await
        .unwrap();
    archive.poll = Duration::from_millis(200);
    let end = archive
        .replay(Window {
            from_ms: 1_795_859_940_000,
            to_ms: 1_795_860_060_000,
        })
        .await
        .unwrap();
    assert_eq!(end.state, "COMPLETED", "{end:?}");
    let replayed = drain(&env.sqs, &pipeline_url, 1).await;
    assert_eq!(
        replayed.len(),
        1,
        "the archived summary came back to the pipeline's rule"
    );
    assert_eq!(
        replayed[0]["detail"]["payload"]["conversationId"],
        "conv-2002"
    );
    assert!(
        failure_events(&env, 0).await.is_empty(),
        "and to no other rule"
    );
}
