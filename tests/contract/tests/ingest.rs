//! Contract: the ingest stream end to end on moto, with its resources as synthesized. The
//! ingest handler runs in-process with the real Kinesis adapter (`PutRecords` into moto), the
//! records are read back from the stream and handed to the real stream processor as a Kinesis
//! event, which writes items into a moto table shaped like the synthesized one and reports
//! malformed events to the synthesized SNS topic, delivered to an SQS queue subscribed to it.
//!
//! `burst` sends 4,000 events/s through the same path and checks that none is lost or
//! duplicated; `INGEST_BURST_SECONDS` sets its length (1 in the test command; 30 for the
//! figure in the README).
//!
//! Needs `moto_server` and `EVENTFABRIC_TEMPLATES_DIR`, as forward_routing.rs.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_sdk_kinesis::types::ShardIteratorType;
use eventfabric_core::Deadline;
use eventfabric_registry::Registry;
use ingest_api::{DEFAULT_RETRY as INGEST_RETRY, Ingest, KinesisStream, StreamTopics};
use serde_json::{Value, json};
use stream_processor::{DynamoTable, MalformedReport, Processor, SnsTopic, StateItem, Topics};

mod support;
use support::{
    Moto, create_synthesized_table, drain, queue, synthesized_resource, synthesized_template,
};

const STREAM: &str = "eventfabric-dev-ingest";
const TABLE: &str = "eventfabric-dev-ingest-state";
const TOPIC: &str = "eventfabric-dev-ingest-malformed";

struct Emulated {
    _moto: Moto,
    kinesis: aws_sdk_kinesis::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    sqs: aws_sdk_sqs::Client,
    ingest: Ingest<KinesisStream>,
    processor: Processor<DynamoTable, SnsTopic>,
    malformed_url: String,
}

/// The stream, table and topic as the synthesized dev stateful stack declares them, the
/// functions' settings as the stateless stack gives them, and a queue on the topic.
async fn emulate() -> Emulated {
    emulate_with_shards(None).await
}

/// The same, with the stream's shard count of another environment's template.
async fn emulate_with_shards(shards_of: Option<&str>) -> Emulated {
    let stateful = synthesized_template("IngestStateful");
    let stateless = synthesized_template("IngestStateless");
    let moto = Moto::start();
    let config = support::sdk_config(&moto.endpoint).await;
    let kinesis = aws_sdk_kinesis::Client::new(&config);
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);

    let stream = synthesized_resource(&stateful, "AWS::Kinesis::Stream", "Name", STREAM);
    let shards = match shards_of {
        None => stream["ShardCount"].as_i64(),
        Some(env) => {
            let template = support::synthesized_env_template(env, "IngestStateful");
            let name = format!("eventfabric-{env}-ingest");
            synthesized_resource(&template, "AWS::Kinesis::Stream", "Name", &name)["ShardCount"]
                .as_i64()
        }
    };
    kinesis
        .create_stream()
        .stream_name(STREAM)
        .shard_count(shards.expect("the stream is provisioned") as i32)
        .send()
        .await
        .unwrap();
    create_synthesized_table(
        &dynamodb,
        &synthesized_resource(&stateful, "AWS::DynamoDB::Table", "TableName", TABLE),
    )
    .await;
    synthesized_resource(&stateful, "AWS::SNS::Topic", "TopicName", TOPIC);
    let topic_arn = sns
        .create_topic()
        .name(TOPIC)
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let (malformed_url, queue_arn) = queue(&sqs, "malformed-reports").await;
    sns.subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();

    // The functions get every setting they read from the synthesized environment.
    let env = |function: &str| -> HashMap<String, Value> {
        let f = synthesized_resource(
            &stateless,
            "AWS::Lambda::Function",
            "FunctionName",
            function,
        );
        serde_json::from_value(f["Environment"]["Variables"].clone()).unwrap()
    };
    let ingest_env = env("eventfabric-dev-ingest-api");
    ingest_api::Settings::from_env(|k| ingest_env.get(k).map(|_| "set".to_owned()))
        .expect("the ingest function's environment has its settings");
    let processor_env = env("eventfabric-dev-stream-processor");
    stream_processor::Settings::from_env(|k| processor_env.get(k).map(|_| "set".to_owned()))
        .expect("the processor's environment has its settings");

    // Each handler on its function's own identity: its calls are checked against its role.
    let ingest_config =
        support::function_config(&moto.endpoint, "eventfabric-dev-ingest-api").await;
    let processor_config =
        support::function_config(&moto.endpoint, "eventfabric-dev-stream-processor").await;
    let registry = Registry::embedded().unwrap();
    Emulated {
        ingest: Ingest::new(
            StreamTopics::from_registry(&registry),
            KinesisStream::new(aws_sdk_kinesis::Client::new(&ingest_config), STREAM),
            INGEST_RETRY,
        ),
        processor: Processor::new(
            Topics::compile(&registry).unwrap(),
            DynamoTable::new(aws_sdk_dynamodb::Client::new(&processor_config), TABLE),
            SnsTopic::new(aws_sdk_sns::Client::new(&processor_config), topic_arn),
            stream_processor::DEFAULT_RETRY,
        ),
        kinesis,
        dynamodb,
        sqs,
        malformed_url,
        _moto: moto,
    }
}

fn request(id: usize, body: &Value) -> ApiGatewayV2httpRequest {
    let mut r = ApiGatewayV2httpRequest::default();
    r.body = Some(body.to_string());
    r.request_context.request_id = Some(format!("req-{id}"));
    r
}

fn answer(response: &aws_lambda_events::apigw::ApiGatewayV2httpResponse) -> Value {
    match &response.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("no body: {other:?}"),
    }
}

/// Every record in the stream, as the Kinesis events Lambda would deliver (one per shard and
/// `GetRecords` page, at most `batch` records each).
async fn read_back(kinesis: &aws_sdk_kinesis::Client, batch: usize) -> Vec<KinesisEvent> {
    let shards = kinesis
        .list_shards()
        .stream_name(STREAM)
        .send()
        .await
        .unwrap();
    let mut events = Vec::new();
    for shard in shards.shards() {
        let mut iterator = kinesis
            .get_shard_iterator()
            .stream_name(STREAM)
            .shard_id(shard.shard_id())
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .unwrap()
            .shard_iterator;
        while let Some(it) = iterator {
            let page = kinesis
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .unwrap();
            if page.records().is_empty() {
                break;
            }
            for chunk in page.records().chunks(batch) {
                let records: Vec<Value> = chunk
                    .iter()
                    .map(|r| {
                        json!({
                            "kinesis": {
                                "kinesisSchemaVersion": "1.0",
                                "partitionKey": r.partition_key(),
                                "sequenceNumber": r.sequence_number(),
                                "data": base64(r.data().as_ref()),
                                "approximateArrivalTimestamp": 1_796_040_000.0
                            },
                            "eventSource": "aws:kinesis",
                            "eventID": format!("{}:{}", shard.shard_id(), r.sequence_number()),
                            "eventSourceARN": format!("arn:aws:kinesis:eu-west-1:123456789012:stream/{STREAM}")
                        })
                    })
                    .collect();
                events.push(serde_json::from_value(json!({ "Records": records })).unwrap());
            }
            iterator = page.next_shard_iterator;
        }
    }
    events
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn item(dynamodb: &aws_sdk_dynamodb::Client, entity_id: &str) -> Option<StateItem> {
    use aws_sdk_dynamodb::types::AttributeValue;
    let out = dynamodb
        .get_item()
        .table_name(TABLE)
        .key("entity_id", AttributeValue::S(entity_id.into()))
        .key("entity_type", AttributeValue::S("volume".into()))
        .send()
        .await
        .unwrap();
    out.item.map(|i| serde_dynamo::from_item(i).unwrap())
}

fn now_ms() -> i64 {
    eventfabric_core::now_ms()
}

fn sample(entity: &str, ts_ms: i64, iops: f64) -> Value {
    json!({
        "event_type": "storage.metrics.sampled", "timestamp": ts_ms, "entity_id": entity,
        "entity_type": "volume", "payload": {"metrics": {"iops": iops}}
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_flow_from_the_api_through_kinesis_into_dynamodb_and_malformed_ones_to_sns() {
    let e = emulate().await;
    let t = now_ms() - 60_000;
    let body = json!({"events": [
        sample("vol-1", t, 100.0),
        sample("vol-1", t + 1000, 150.0),
        sample("vol-2", t, 5.0),
        // Passes the API (envelope fine), fails the schema and rules: reported, not stored.
        {"event_type": "storage.metrics.sampled", "timestamp": t, "entity_id": "vol-3", "entity_type": "volume",
         "payload": {"metrics": {"iops": -1, "latency_ms": "slow"}, "colour": "red"}},
        // Refused by the API: named in the answer, never in the stream.
        {"event_type": "storage.metrics.sampled", "entity_id": "vol-4", "entity_type": "volume", "payload": {}},
        {"event_type": "storage.health.changed", "timestamp": t + 500, "entity_id": "vol-2", "entity_type": "disk",
         "payload": {"status": "degraded"}}
    ]});
    let response = e
        .ingest
        .handle(&request(1, &body), now_ms(), Deadline::NONE)
        .await;
    assert_eq!(response.status_code, 202);
    let answer = answer(&response);
    assert_eq!(answer["accepted"], 5);
    assert_eq!(
        answer["rejected"],
        json!([{"index": 4, "reason": "timestamp: is required"}])
    );

    let batches = read_back(&e.kinesis, 100).await;
    let records: usize = batches.iter().map(|b| b.records.len()).sum();
    assert_eq!(records, 5, "every accepted event is in the stream, once");
    for batch in &batches {
        let report = e
            .processor
            .process(
                &stream_processor::input_records(batch),
                now_ms(),
                Deadline::NONE,
            )
            .await;
        assert!(
            report.outcomes.item_failures().is_empty(),
            "{:?}",
            report.stats
        );
    }

    let vol1 = item(&e.dynamodb, "vol-1").await.expect("vol-1 stored");
    assert_eq!(
        vol1.payload["metrics"]["iops"], 150.0,
        "the newest sample is the state"
    );
    assert_eq!(vol1.timestamp, t + 1000);
    assert_eq!(vol1.request_id, "req-1");
    assert!(item(&e.dynamodb, "vol-2").await.is_some());
    assert!(
        item(&e.dynamodb, "vol-3").await.is_none(),
        "malformed events are not stored"
    );

    let reports = drain(&e.sqs, &e.malformed_url, 1).await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let report: MalformedReport = serde_json::from_value(reports[0].clone()).unwrap();
    assert_eq!(
        report.event_type.as_deref(),
        Some("storage.metrics.sampled")
    );
    assert!(report.raw_event.contains("vol-3"));
    assert!(report.errors.len() >= 3, "{:?}", report.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_stream_writes_nothing_twice_and_keeps_the_newest_state() {
    let e = emulate().await;
    let t = now_ms() - 60_000;
    for (i, (ts, iops)) in [(t + 2000, 20.0), (t, 0.0)].into_iter().enumerate() {
        let response = e
            .ingest
            .handle(
                &request(i, &json!([sample("vol-1", ts, iops)])),
                now_ms(),
                Deadline::NONE,
            )
            .await;
        assert_eq!(response.status_code, 202);
    }
    // Each record delivered alone (the late one after the newer), then the whole stream again.
    for batch in read_back(&e.kinesis, 1)
        .await
        .iter()
        .chain(&read_back(&e.kinesis, 100).await)
    {
        let report = e
            .processor
            .process(
                &stream_processor::input_records(batch),
                now_ms(),
                Deadline::NONE,
            )
            .await;
        assert!(report.outcomes.item_failures().is_empty());
    }
    let state = item(&e.dynamodb, "vol-1").await.unwrap();
    assert_eq!(state.payload["metrics"]["iops"], 20.0);
    assert_eq!(state.timestamp, t + 2000);
}

/// 4,000 events/s for `INGEST_BURST_SECONDS` (default 1) through the ingest handler into moto,
/// then drained by the processor: zero lost, zero duplicated. Prints the achieved rates. The
/// stream has prod's shard count (the burst is prod's peak); moto numbers each record by
/// listing the shard's records, so its `PutRecords` slows as a shard fills, and the rate
/// achieved over a long burst is moto's, not the function's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst() {
    let seconds: usize = std::env::var("INGEST_BURST_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    const PER_SECOND: usize = 4000;
    const PER_REQUEST: usize = 500;
    let e = emulate_with_shards(Some("prod")).await;
    let t = now_ms() - 60_000;
    let total = seconds * PER_SECOND;

    // Paced: one second's requests (8 × 500 events) are sent from the start of each second; a
    // second that takes longer delays the next.
    let started = Instant::now();
    let mut accepted = 0usize;
    let mut puts = 0usize;
    for second in 0..seconds {
        let tick = started + Duration::from_secs(second as u64);
        tokio::time::sleep_until(tick.into()).await;
        let requests: Vec<Value> = (0..PER_SECOND / PER_REQUEST)
            .map(|r| {
                let events: Vec<Value> = (0..PER_REQUEST)
                    .map(|i| {
                        let n = second * PER_SECOND + r * PER_REQUEST + i;
                        sample(&format!("vol-{n:07}"), t, n as f64)
                    })
                    .collect();
                Value::Array(events)
            })
            .collect();
        // One request at a time: moto's Kinesis numbers a record `max + 1` without a lock, so
        // concurrent PutRecords calls overwrite each other's records in the emulator (4,000
        // sent four at a time arrived as 3,994). Deployed, each request is its own invocation.
        let mut answers = Vec::with_capacity(requests.len());
        for (r, body) in requests.iter().enumerate() {
            answers.push(
                e.ingest
                    .handle(&request(second * 100 + r, body), now_ms(), Deadline::NONE)
                    .await,
            );
        }
        for response in answers {
            assert_eq!(response.status_code, 202, "{:?}", response.body);
            accepted += answer(&response)["accepted"].as_u64().unwrap() as usize;
            puts += 1;
        }
    }
    let ingest_elapsed = started.elapsed();
    assert_eq!(accepted, total);

    let drain_started = Instant::now();
    let batches = read_back(&e.kinesis, 100).await;
    let in_stream: usize = batches.iter().map(|b| b.records.len()).sum();
    let mut stats = stream_processor::Stats::default();
    let results =
        futures_util::future::join_all(batches.chunks(batches.len().div_ceil(4).max(1)).map(
            |group| {
                let processor = &e.processor;
                async move {
                    let mut s = Vec::new();
                    for batch in group {
                        let report = processor
                            .process(
                                &stream_processor::input_records(batch),
                                now_ms(),
                                Deadline::NONE,
                            )
                            .await;
                        assert!(
                            report.outcomes.item_failures().is_empty(),
                            "{:?}",
                            report.stats
                        );
                        s.push(report.stats);
                    }
                    s
                }
            },
        ))
        .await;
    for s in results.into_iter().flatten() {
        stats.records += s.records;
        stats.written += s.written;
        stats.stale += s.stale;
        stats.superseded += s.superseded;
        stats.read_calls += s.read_calls;
        stats.write_calls += s.write_calls;
    }
    let drain_elapsed = drain_started.elapsed();
    let items = e
        .dynamodb
        .scan()
        .table_name(TABLE)
        .select(aws_sdk_dynamodb::types::Select::Count)
        .into_paginator()
        .send()
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|page| page.unwrap().count as usize)
        .sum::<usize>();

    println!(
        "burst: {total} events in {seconds} s target; ingest took {:.1} s ({:.0} events/s achieved, {puts} requests), \
         stream held {in_stream}; processor drained in {:.1} s ({:.0} records/s): {} written, {} stale, {} superseded; \
         {} BatchGetItem + {} BatchWriteItem calls ({:.1} per 10,000 events; minimum 100 + 400); items in the table {items}",
        ingest_elapsed.as_secs_f64(),
        total as f64 / ingest_elapsed.as_secs_f64(),
        drain_elapsed.as_secs_f64(),
        in_stream as f64 / drain_elapsed.as_secs_f64(),
        stats.written,
        stats.stale,
        stats.superseded,
        stats.read_calls,
        stats.write_calls,
        (stats.read_calls + stats.write_calls) as f64 * 10_000.0 / total as f64,
    );
    assert_eq!(in_stream, total, "zero lost, zero duplicated in the stream");
    assert_eq!(stats.written, total, "every event written once");
    assert_eq!(items, total, "one item per event's entity: zero lost");
}
