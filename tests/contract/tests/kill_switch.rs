//! The forwarding kill switch on moto, as synthesized: the failure rate alarm's state change
//! matches the synthesized rule (and nothing else does), the synthesized state machine's one
//! task switches the parameter off (through its retry of a throttled call), and the forward
//! handler, reading the parameter through its SSM adapter, then refuses with 503 until the
//! parameter is set back on by hand.

use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use eventfabric_core::parameter::SsmParameter;
use eventfabric_core::{Deadline, MemorySink};
use eventfabric_registry::Registry;
use forward_api::switch::{Forwarding, SWITCH_TTL, switch};
use forward_api::{CompiledTopics, ForwardConfig, Forwarder, MemoryState, TokenVerifier};
use serde_json::{Value, json};

mod support;
use support::asl::{Machine, Outcome, TaskError, Tasks};
use support::{Moto, drain, queue, synthesized_template};

const PARAMETER: &str = "/eventfabric/dev/forwarding/enabled";
const ALARM_ARN: &str =
    "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:eventfabric-dev-forward-failure-rate";
const SECRET: &str = "eventfabric-local-only-session-secret-0001";
const NOW_MS: i64 = 1_767_225_600_000;

fn resource_of_type<'a>(template: &'a Value, kind: &str, id_part: &str) -> (&'a str, &'a Value) {
    template["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(id, r)| r["Type"] == kind && id.contains(id_part))
        .map(|(id, r)| (id.as_str(), r))
        .unwrap_or_else(|| panic!("no {kind} {id_part}* in the template"))
}

/// The synthesized rule's pattern with its one reference (the alarm's ARN) resolved.
fn synthesized_rule() -> Value {
    let template = synthesized_template("Stateless");
    let (_, rule) = resource_of_type(&template, "AWS::Events::Rule", "KillSwitchRule");
    let mut rule = rule["Properties"].clone();
    let alarm = &rule["EventPattern"]["resources"][0]["Fn::GetAtt"][0];
    let (_, declared) =
        resource_of_type(&template, "AWS::CloudWatch::Alarm", alarm.as_str().unwrap());
    assert_eq!(
        declared["Properties"]["AlarmName"],
        "eventfabric-dev-forward-failure-rate"
    );
    rule["EventPattern"]["resources"] = json!([ALARM_ARN]);
    rule
}

/// The synthesized definition, its partition and parameter references resolved.
fn synthesized_machine() -> Machine {
    let template = synthesized_template("Stateless");
    let (_, machine) = resource_of_type(
        &template,
        "AWS::StepFunctions::StateMachine",
        "KillSwitchStateMachine",
    );
    let (parameter_id, parameter) =
        resource_of_type(&template, "AWS::SSM::Parameter", "KillSwitchParameter");
    assert_eq!(parameter["Properties"]["Name"], PARAMETER);
    assert_eq!(parameter["Properties"]["Value"], "on", "created on");
    let text: String = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| match part {
            Value::String(s) => s.clone(),
            other if other["Ref"] == "AWS::Partition" => "aws".to_owned(),
            other if other["Ref"] == parameter_id => PARAMETER.to_owned(),
            other => panic!("a reference this test cannot resolve: {other}"),
        })
        .collect();
    Machine::parse(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// Runs `aws-sdk:ssm:putParameter` tasks against moto, the first `throttled` calls refused as
/// Parameter Store does under load.
struct SsmTasks {
    ssm: aws_sdk_ssm::Client,
    throttled: u32,
}

impl Tasks for SsmTasks {
    async fn call(&mut self, resource: &str, input: Value) -> Result<Value, TaskError> {
        assert_eq!(resource, "arn:aws:states:::aws-sdk:ssm:putParameter");
        if self.throttled > 0 {
            self.throttled -= 1;
            return Err(TaskError {
                error: "Ssm.SsmException".into(),
                cause: "Rate exceeded".into(),
            });
        }
        let out = self
            .ssm
            .put_parameter()
            .name(input["Name"].as_str().unwrap())
            .value(input["Value"].as_str().unwrap())
            .overwrite(input["Overwrite"].as_bool().unwrap())
            .send()
            .await
            .map_err(|e| TaskError {
                error: "Ssm.SdkError".into(),
                cause: aws_sdk_ssm::error::DisplayErrorContext(&e).to_string(),
            })?;
        Ok(json!({ "Version": out.version }))
    }
}

fn alarm_change(alarm_arn: &str, state: &str) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source("aws.cloudwatch")
        .detail_type("CloudWatch Alarm State Change")
        .resources(alarm_arn)
        .detail(
            json!({
                "alarmName": alarm_arn.rsplit(':').next().unwrap(),
                "state": { "value": state, "reason": "Threshold Crossed" },
                "previousState": { "value": "OK" },
            })
            .to_string(),
        )
        .build()
}

fn request() -> ApiGatewayV2httpRequest {
    let mut request: ApiGatewayV2httpRequest = serde_json::from_str(include_str!(
        "../../../lambdas/forward_api/fixtures/apigw-v2-forward.json"
    ))
    .unwrap();
    let token =
        forward_api::auth::mint(SECRET.as_bytes(), "sess-123", NOW_MS / 1000 + 600).unwrap();
    request
        .headers
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn the_failure_rate_alarm_switches_forwarding_off_until_it_is_switched_on_by_hand() {
    let moto = Moto::start();
    let config = support::sdk_config(&moto.endpoint).await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let ssm = aws_sdk_ssm::Client::new(&config);
    ssm.put_parameter()
        .name(PARAMETER)
        .value("on")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();

    // 1. Only the alarm's own ALARM state reaches the kill switch (a queue stands in for the
    //    state machine, which moto's EventBridge cannot start).
    let (url, arn) = queue(&sqs, "kill-switch-standin").await;
    support::put_synthesized_rule(&events, "default", &synthesized_rule(), &arn).await;
    let other_alarm =
        "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:eventfabric-dev-forward-failures";
    events
        .put_events()
        .entries(alarm_change(ALARM_ARN, "OK"))
        .entries(alarm_change(other_alarm, "ALARM"))
        .entries(alarm_change(ALARM_ARN, "ALARM"))
        .send()
        .await
        .unwrap();
    let delivered = drain(&sqs, &url, 1).await;
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0]["resources"], json!([ALARM_ARN]));
    assert_eq!(delivered[0]["detail"]["state"]["value"], "ALARM");

    // 2. The state machine switches forwarding off, through two throttled attempts.
    let mut tasks = SsmTasks {
        ssm: ssm.clone(),
        throttled: 2,
    };
    let execution = synthesized_machine()
        .run(delivered[0].clone(), "kill-switch-1", &mut tasks)
        .await;
    assert!(
        matches!(execution.outcome, Outcome::Succeeded(_)),
        "{:?}",
        execution.outcome
    );
    assert_eq!(execution.attempts("SwitchForwardingOff"), 3);
    let value = |ssm: aws_sdk_ssm::Client| async move {
        ssm.get_parameter()
            .name(PARAMETER)
            .send()
            .await
            .unwrap()
            .parameter
            .unwrap()
            .value
            .unwrap()
    };
    assert_eq!(value(ssm.clone()).await, "off");

    // 3. The forward function reads it and refuses; nothing reaches a bus.
    let topics = CompiledTopics::compile(&Registry::embedded().unwrap()).unwrap();
    let forwarder = Forwarder::new(
        topics,
        MemorySink::new(),
        MemoryState::new(),
        ForwardConfig::with_buses(
            "eventfabric-dev-session",
            Some("eventfabric-dev-analytics".into()),
        ),
    );
    let verifier = TokenVerifier::new(SECRET.as_bytes()).unwrap();
    // The function's own client: its read is checked against its role (cdk/iam/check-calls.ts).
    let function_ssm = aws_sdk_ssm::Client::new(
        &support::function_config(&moto.endpoint, "eventfabric-dev-forward-api").await,
    );
    let switch = switch(SsmParameter::new(function_ssm, PARAMETER));
    assert_eq!(switch.current().await, Forwarding::Off);
    let answer = |switch| {
        let (forwarder, verifier) = (&forwarder, &verifier);
        async move {
            forward_api::handle_switched(
                Some(switch),
                forwarder,
                verifier,
                &request(),
                NOW_MS,
                Deadline::NONE,
            )
            .await
        }
    };
    let refused = answer(&switch).await;
    assert_eq!(refused.status_code, 503);
    assert_eq!(refused.headers["retry-after"], "60");
    let Some(Body::Text(body)) = &refused.body else {
        panic!("a JSON body")
    };
    assert!(body.contains("forwarding_disabled"), "{body}");
    assert!(forwarder.sink().published().is_empty());

    // 4. Back on by hand (the runbook's command): forwarding resumes within the switch's TTL.
    ssm.put_parameter()
        .name(PARAMETER)
        .value("on")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    tokio::time::sleep(SWITCH_TTL + Duration::from_millis(100)).await;
    let forwarded = answer(&switch).await;
    assert_eq!(forwarded.status_code, 202);
    assert!(forwarded.body.is_some());
    assert!(
        !forwarder.sink().published().is_empty(),
        "the request's events were forwarded"
    );
}
