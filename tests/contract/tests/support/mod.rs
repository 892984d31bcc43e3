//! What the contract tests share: a moto server per test, the synthesized templates, SDK
//! clients on the emulator, queues and draining them.

#![allow(dead_code)] // each test binary uses its part

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_sqs::config::Credentials;
use serde_json::Value;

pub const REGION: &str = "eu-west-1";

/// SDK configuration for the emulator at `endpoint`: the functions' own HTTP client, test
/// credentials. For the test's own calls (creating tables, reading queues); a handler under
/// test gets [`function_config`].
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    config_as(endpoint, "test").await
}

/// SDK configuration for the handler of the synthesized function `function_name` (its
/// `FunctionName`, e.g. `eventfabric-dev-forward-api`): its calls carry that name as their
/// access key id, so the emulator's request log attributes each call to the function whose
/// role must allow it (`cdk/iam/check-calls.ts`, README "Each role proves its handler's calls").
pub async fn function_config(endpoint: &str, function_name: &str) -> aws_config::SdkConfig {
    assert!(
        function_name.starts_with("eventfabric-"),
        "a synthesized FunctionName, not '{function_name}'"
    );
    config_as(endpoint, function_name).await
}

async fn config_as(endpoint: &str, access_key_id: &str) -> aws_config::SdkConfig {
    eventfabric_core::aws::loader()
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(Credentials::new(
            access_key_id,
            "test",
            None,
            None,
            "contract-test",
        ))
        .load()
        .await
}

/// A synthesized resource's properties, by type and a property's value.
pub fn synthesized_resource(template: &Value, kind: &str, key: &str, value: &str) -> Value {
    template["Resources"]
        .as_object()
        .unwrap()
        .values()
        .find(|r| r["Type"] == kind && r["Properties"][key] == value)
        .map(|r| r["Properties"].clone())
        .unwrap_or_else(|| panic!("no {kind} with {key} = {value} in the template"))
}

/// A moto server on a free loopback port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// A port no other emulator of this test binary was given. The OS may hand the same free port
/// to two tests running at once (a listener is dropped before moto binds it); the second
/// moto then fails to bind, and its test talked to the first one's emulator until that one
/// was stopped ("connection refused" half way through a test).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap();
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

impl Moto {
    /// With `EVENTFABRIC_IAM_CALLS_DIR` set (scripts/test.sh sets it), the server records every
    /// request it serves (moto's recorder: method, URL, headers, body) to
    /// `<dir>/<test binary>-<port>.jsonl`, for the IAM check of the functions' roles.
    pub fn start() -> Self {
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let port = free_port();
        let mut command = Command::new(&program);
        if let Some(dir) = std::env::var_os("EVENTFABRIC_IAM_CALLS_DIR") {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).unwrap();
            let binary = std::env::current_exe()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "contract".into());
            command.env("MOTO_ENABLE_RECORDING", "True").env(
                "MOTO_RECORDER_FILEPATH",
                dir.join(format!("{binary}-{port}.jsonl")),
            );
        }
        let child = command
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

pub fn templates_dir() -> PathBuf {
    std::env::var_os("EVENTFABRIC_TEMPLATES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // `cargo test` sets CARGO_MANIFEST_DIR at run time: this checkout's, even for a
            // test binary compiled in another one (a shared target dir).
            let manifest_dir = std::env::var("CARGO_MANIFEST_DIR")
                .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").into());
            PathBuf::from(manifest_dir).join("../../target/templates")
        })
}

/// A synthesized dev template by stack id: `Stateful`, `Stateless`, `SessionPipelineStateless`…
pub fn synthesized_template(which: &str) -> Value {
    synthesized_env_template("dev", which)
}

/// A synthesized template of `env` (`dev`, `staging`, `prod`) by stack id.
pub fn synthesized_env_template(env: &str, which: &str) -> Value {
    let stage = format!("{}{}", env[..1].to_uppercase(), &env[1..]);
    let assembly = templates_dir().join(env).join(format!("assembly-{stage}"));
    let template = std::fs::read_dir(&assembly)
        .unwrap_or_else(|e| {
            panic!(
                "no synthesized {env} assembly at {} ({e}): run scripts/test.sh",
                assembly.display()
            )
        })
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            // `<Stage><stack id><8 hex digits>.template.json`: `Stateful` is not `SessionPipelineStateful`.
            let name = p.file_name().unwrap().to_string_lossy();
            name.strip_prefix(&format!("{stage}{which}"))
                .and_then(|rest| rest.strip_suffix(".template.json"))
                .is_some_and(|hash| hash.len() == 8 && hash.chars().all(|c| c.is_ascii_hexdigit()))
        })
        .unwrap_or_else(|| panic!("no {env} {which} template"));
    serde_json::from_str(&std::fs::read_to_string(template).unwrap()).unwrap()
}

pub async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    (url, arn)
}

/// Drains the queue until `expected` messages arrived, then waits once more for strays.
pub async fn drain(sqs: &aws_sdk_sqs::Client, url: &str, expected: usize) -> Vec<Value> {
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
pub mod asl;

/// A synthesized rule (its properties from a template) on `bus`, its target replaced by
/// `target_arn` (a queue standing in for a target moto cannot run), with the synthesized
/// target's `InputPath` when it has one.
pub async fn put_synthesized_rule(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    rule: &Value,
    target_arn: &str,
) {
    let name = rule["Name"].as_str().expect("the rule has a name");
    events
        .put_rule()
        .name(name)
        .event_bus_name(bus)
        .event_pattern(rule["EventPattern"].to_string())
        .send()
        .await
        .unwrap();
    let mut target = aws_sdk_eventbridge::types::Target::builder()
        .id("target")
        .arn(target_arn);
    if let Some(path) = rule["Targets"][0]["InputPath"].as_str() {
        target = target.input_path(path);
    }
    events
        .put_targets()
        .rule(name)
        .event_bus_name(bus)
        .targets(target.build().unwrap())
        .send()
        .await
        .unwrap();
}

/// A DynamoDB table as a synthesized template declares it (`props`: the resource's
/// properties): name, key schema, attribute types, global secondary indexes, its stream, and
/// TTL when it has one.
pub async fn create_synthesized_table(dynamodb: &aws_sdk_dynamodb::Client, props: &Value) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
        TimeToLiveSpecification,
    };
    let key_schema = |keys: &Value| -> Vec<KeySchemaElement> {
        keys.as_array()
            .unwrap()
            .iter()
            .map(|key| {
                KeySchemaElement::builder()
                    .attribute_name(key["AttributeName"].as_str().unwrap())
                    .key_type(KeyType::from(key["KeyType"].as_str().unwrap()))
                    .build()
                    .unwrap()
            })
            .collect()
    };
    let table = props["TableName"].as_str().expect("the table has a name");
    let mut create = dynamodb
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest);
    create = create.set_key_schema(Some(key_schema(&props["KeySchema"])));
    for index in props["GlobalSecondaryIndexes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        create = create.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(index["IndexName"].as_str().unwrap())
                .set_key_schema(Some(key_schema(&index["KeySchema"])))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(
                            index["Projection"]["ProjectionType"]
                                .as_str()
                                .unwrap_or("ALL"),
                        ))
                        .build(),
                )
                .build()
                .unwrap(),
        );
    }
    if let Some(view) = props["StreamSpecification"]["StreamViewType"].as_str() {
        create = create.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view))
                .build()
                .unwrap(),
        );
    }
    for attribute in props["AttributeDefinitions"].as_array().unwrap() {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(attribute["AttributeName"].as_str().unwrap())
                .attribute_type(ScalarAttributeType::from(
                    attribute["AttributeType"].as_str().unwrap(),
                ))
                .build()
                .unwrap(),
        );
    }
    create.send().await.unwrap();
    if props.get("TimeToLiveSpecification").is_none() {
        return;
    }
    dynamodb
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name(
                    props["TimeToLiveSpecification"]["AttributeName"]
                        .as_str()
                        .unwrap(),
                )
                .enabled(true)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

/// A function binary of this workspace, built by `cargo build -p <crate> --bin <name>`
/// (scripts/test.sh builds it before the contract tests): in `EVENTFABRIC_FUNCTION_BIN_DIR`,
/// else next to this test binary's own profile directory (`target/debug/<name>`).
pub fn function_binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("EVENTFABRIC_FUNCTION_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            // target/debug/deps/<test> → target/debug
            exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf()
        });
    let binary = dir.join(name);
    assert!(
        binary.is_file(),
        "no function binary at {}: build it with `cargo build -p {name} --bin {name}` (scripts/test.sh does)",
        binary.display()
    );
    binary
}

/// A synthesized function's environment as Lambda would give it: its literal variables as
/// synthesized, each variable the template resolves at deploy time (a reference, an import)
/// from `resolved` (a variable with neither fails the test: the template and the test
/// disagree), `AWS_LAMBDA_LOG_FORMAT` from its logging config, and the emulator's endpoint
/// and region.
pub fn synthesized_function_env(
    template: &Value,
    function_name: &str,
    resolved: &[(&str, String)],
    endpoint: &str,
) -> Vec<(String, String)> {
    let function = synthesized_resource(
        template,
        "AWS::Lambda::Function",
        "FunctionName",
        function_name,
    );
    let mut env = vec![
        ("AWS_ENDPOINT_URL".to_owned(), endpoint.to_owned()),
        ("AWS_REGION".to_owned(), REGION.to_owned()),
        ("AWS_DEFAULT_REGION".to_owned(), REGION.to_owned()),
        // The function's identity in the emulator's request log (see `function_config`).
        ("AWS_ACCESS_KEY_ID".to_owned(), function_name.to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "test".to_owned()),
    ];
    if let Some(format) = function["LoggingConfig"]["LogFormat"].as_str() {
        env.push(("AWS_LAMBDA_LOG_FORMAT".into(), format.to_ascii_uppercase()));
    }
    let variables = function["Environment"]["Variables"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, value) in variables {
        let value = match value.as_str() {
            Some(literal) => literal.to_owned(),
            None => resolved
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{function_name}: {name} is {value} in the template; give the test its value")),
        };
        env.push((name, value));
    }
    for (name, _) in resolved {
        assert!(
            env.iter().any(|(n, _)| n == name),
            "{function_name}: the template sets no {name}"
        );
    }
    env
}

/// Every record of a moto table's stream, from its start, as Lambda hands DynamoDB stream
/// records to a function (`aws_lambda_events::dynamodb::EventRecord` JSON).
pub async fn stream_records(endpoint: &str, table: &str) -> Vec<Value> {
    use aws_sdk_dynamodbstreams::types::{AttributeValue, ShardIteratorType};
    use std::collections::HashMap;
    let config = sdk_config(endpoint).await;
    let arn = aws_sdk_dynamodb::Client::new(&config)
        .describe_table()
        .table_name(table)
        .send()
        .await
        .unwrap()
        .table
        .unwrap()
        .latest_stream_arn
        .expect("the synthesized table has a stream");
    let streams = aws_sdk_dynamodbstreams::Client::new(&config);
    let shards = streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await
        .unwrap()
        .stream_description
        .unwrap()
        .shards
        .unwrap_or_default();
    let image = |i: Option<HashMap<String, AttributeValue>>| {
        serde_json::to_value(serde_dynamo::Item::from(i.unwrap_or_default())).unwrap()
    };
    let mut records = Vec::new();
    for shard in shards {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(shard.shard_id.unwrap())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        let out = streams
            .get_records()
            .shard_iterator(iterator)
            .send()
            .await
            .unwrap();
        for r in out.records.unwrap_or_default() {
            let change = r.dynamodb.unwrap();
            records.push(serde_json::json!({
                "eventID": r.event_id,
                "eventName": r.event_name.as_ref().unwrap().as_str(),
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "eventSourceARN": arn,
                "dynamodb": {
                    "Keys": image(change.keys),
                    "NewImage": image(change.new_image),
                    "OldImage": image(change.old_image),
                    "SequenceNumber": change.sequence_number,
                    "SizeBytes": change.size_bytes,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                }
            }));
        }
    }
    records
}
