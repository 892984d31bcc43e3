//! The ingest function end to end on the in-memory stream: answers, records, and one test per
//! failure class showing that every event is either in the stream or reported to the caller.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use eventfabric_core::Deadline;
use eventfabric_core::ingest::partition_key;
use eventfabric_registry::Registry;
use ingest_api::{DEFAULT_RETRY, Ingest, IngestRecord, MemoryStream, Script, StreamTopics};
use serde_json::{Value, json};

const NOW_MS: i64 = 1_796_040_000_000;

fn ingest() -> Ingest<MemoryStream> {
    let topics = StreamTopics::from_registry(&Registry::embedded().unwrap());
    Ingest::new(topics, MemoryStream::new(), DEFAULT_RETRY)
}

fn request(body: &str) -> ApiGatewayV2httpRequest {
    let mut r: ApiGatewayV2httpRequest =
        serde_json::from_str(include_str!("../fixtures/apigw-v2-ingest.json")).unwrap();
    r.body = Some(body.to_owned());
    r
}

fn sample(entity: &str, iops: f64) -> Value {
    json!({
        "event_type": "storage.metrics.sampled",
        "timestamp": "2026-11-28T12:00:00.250Z",
        "entity_id": entity,
        "entity_type": "volume",
        "payload": {"metrics": {"iops": iops}}
    })
}

fn body_of(response: &ApiGatewayV2httpResponse) -> Value {
    match &response.body {
        Some(Body::Text(t)) => serde_json::from_str(t).unwrap(),
        other => panic!("no JSON body: {other:?}"),
    }
}

async fn send(
    ingest: &Ingest<MemoryStream>,
    body: &Value,
) -> (i64, Value, ApiGatewayV2httpResponse) {
    let response = ingest
        .handle(&request(&body.to_string()), NOW_MS, Deadline::NONE)
        .await;
    (response.status_code, body_of(&response), response)
}

fn written(ingest: &Ingest<MemoryStream>) -> Vec<IngestRecord> {
    ingest
        .stream()
        .records()
        .iter()
        .map(|r| serde_json::from_slice(&r.data).unwrap())
        .collect()
}

#[tokio::test]
async fn the_fixture_request_is_answered_202_with_its_bad_event_named() {
    let ingest = ingest();
    let response = ingest
        .handle(&request_fixture(), NOW_MS, Deadline::NONE)
        .await;
    assert_eq!(response.status_code, 202);
    assert_eq!(
        body_of(&response),
        json!({"accepted": 2, "rejected": [{"index": 2, "reason": "timestamp: must be an RFC 3339 timestamp or epoch milliseconds, not 'yesterday'"}]})
    );
    let records = written(&ingest);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].request_id, "req-fixture-1");
    assert_eq!(records[0].ingest_time.millis(), NOW_MS);
    assert_eq!(
        ingest.stream().records()[0].partition_key,
        partition_key("vol-0a1b2c", "storage.metrics.sampled")
    );
    assert_eq!(
        ingest.stream().records()[1].partition_key,
        partition_key("vol-0a1b2c", "storage.health.changed")
    );
}

fn request_fixture() -> ApiGatewayV2httpRequest {
    serde_json::from_str(include_str!("../fixtures/apigw-v2-ingest.json")).unwrap()
}

#[tokio::test]
async fn one_event_is_written_enriched_and_normalised() {
    let ingest = ingest();
    let mut event = sample("vol-1", 10.0);
    event["timestamp"] = json!("2026-11-28T13:00:00+01:00");
    let (status, body, _) = send(&ingest, &event).await;
    assert_eq!(status, 202);
    assert_eq!(body, json!({"accepted": 1, "rejected": []}));
    let record = serde_json::to_value(&written(&ingest)[0]).unwrap();
    assert_eq!(record["timestamp"], "2026-11-28T12:00:00Z");
    assert_eq!(record["ingest_time"], "2026-11-30T12:00:00Z");
    assert_eq!(record["payload"], json!({"metrics": {"iops": 10.0}}));
}

#[tokio::test]
async fn a_single_bad_event_is_a_400_naming_every_field() {
    let ingest = ingest();
    let (status, body, _) = send(
        &ingest,
        &json!({"event_type": "storage.metrics.sampled", "payload": []}),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_event");
    assert_eq!(
        body["message"],
        "timestamp: is required; entity_id: is required; entity_type: is required; payload: must be an object, not an array"
    );
    assert!(ingest.stream().records().is_empty());
}

#[tokio::test]
async fn a_batch_keeps_its_good_events_and_names_the_bad_ones() {
    let ingest = ingest();
    let batch = json!({"events": [
        sample("vol-1", 1.0),
        {"event_type": "no.such.topic", "timestamp": 0, "entity_id": "x", "entity_type": "volume", "payload": {}},
        "not an event",
        sample("vol-2", 2.0),
        {"event_type": "chat.message.sent", "timestamp": 0, "entity_id": "x", "entity_type": "volume", "payload": {}},
    ]});
    let (status, body, _) = send(&ingest, &batch).await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"], 2);
    let reasons: Vec<(u64, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["index"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            (
                1,
                "event_type: 'no.such.topic' is not a topic of the ingest stream (schemas/topics)"
            ),
            (2, "event: must be an object, not a string"),
            // A bus topic is not a stream topic.
            (
                4,
                "event_type: 'chat.message.sent' is not a topic of the ingest stream (schemas/topics)"
            ),
        ]
    );
    let ids: Vec<String> = written(&ingest).into_iter().map(|r| r.entity_id).collect();
    assert_eq!(ids, ["vol-1", "vol-2"]);
}

#[tokio::test]
async fn oversize_requests_are_413_with_the_limit_named() {
    let ingest = ingest();
    let many: Vec<Value> = (0..501).map(|i| sample(&format!("v{i}"), 1.0)).collect();
    let (status, body, _) = send(&ingest, &Value::Array(many)).await;
    assert_eq!(status, 413);
    assert_eq!(
        body["message"],
        "events: 501 events; at most 500 per request"
    );
    let huge = "x".repeat(ingest_api::request::MAX_BODY_BYTES + 1);
    let response = ingest.handle(&request(&huge), NOW_MS, Deadline::NONE).await;
    assert_eq!(response.status_code, 413);
    let mut big = sample("vol-1", 1.0);
    big["payload"]["region"] = json!("r".repeat(70_000));
    let (status, body, _) = send(&ingest, &json!([big])).await;
    assert_eq!(status, 202);
    assert!(
        body["rejected"][0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("event: 70169 bytes; at most 65536"),
        "{body}"
    );
    assert!(ingest.stream().records().is_empty());
}

#[tokio::test]
async fn a_full_batch_of_500_goes_in_one_call() {
    let ingest = ingest();
    let batch: Vec<Value> = (0..500).map(|i| sample(&format!("vol-{i}"), 1.0)).collect();
    let (status, body, _) = send(&ingest, &Value::Array(batch)).await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"], 500);
    assert_eq!(ingest.stream().calls(), 1);
}

// Failure class: throttled PutRecords. Only the throttled records go again; every event ends
// up in the stream once.
#[tokio::test(start_paused = true)]
async fn throttled_records_alone_are_retried_and_none_is_written_twice() {
    let ingest = ingest();
    ingest
        .stream()
        .script([Script::Throttle(vec![1, 3, 4]), Script::Throttle(vec![0])]);
    let batch: Vec<Value> = (0..6).map(|i| sample(&format!("vol-{i}"), 1.0)).collect();
    let (status, body, _) = send(&ingest, &Value::Array(batch)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 6);
    let mut ids: Vec<String> = written(&ingest).into_iter().map(|r| r.entity_id).collect();
    assert_eq!(ids.len(), 6, "each event written exactly once");
    ids.sort();
    assert_eq!(ids, ["vol-0", "vol-1", "vol-2", "vol-3", "vol-4", "vol-5"]);
    // Calls: all six, then the three throttled, then the one throttled again.
    assert_eq!(ingest.stream().calls(), 3);
}

// Failure class: the stream still throttles after the retries. The caller hears 503 with
// Retry-After and exactly which events to send again; nothing is dropped silently.
#[tokio::test(start_paused = true)]
async fn a_stream_at_its_limit_answers_503_with_the_unwritten_events() {
    let ingest = ingest();
    // The first call throttles vol-1 (position 1); every retry, which carries vol-1 alone,
    // is throttled again.
    ingest.stream().script(
        std::iter::once(Script::Throttle(vec![1]))
            .chain(std::iter::repeat_n(Script::Throttle(vec![0]), 10)),
    );
    let batch = json!([
        sample("vol-0", 1.0),
        sample("vol-1", 1.0),
        {"bad": true},
        sample("vol-3", 1.0)
    ]);
    let (status, body, response) = send(&ingest, &batch).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(response.headers.get("retry-after").unwrap(), "1");
    assert_eq!(body["error"], "stream_throttled");
    assert_eq!(body["accepted"], 2);
    assert_eq!(body["unwritten"], json!([1]));
    assert_eq!(body["rejected"][0]["index"], 2);
    let ids: Vec<String> = written(&ingest).into_iter().map(|r| r.entity_id).collect();
    assert_eq!(
        ids,
        ["vol-0", "vol-3"],
        "accepted + unwritten + rejected = every event"
    );
}

// Failure class: the stream refuses the call (permissions, a missing stream): 500, every
// event named.
#[tokio::test]
async fn a_refused_call_is_a_500_naming_every_event() {
    let ingest = ingest();
    ingest
        .stream()
        .script([Script::Refuse("AccessDeniedException: not allowed".into())]);
    let (status, body, _) = send(&ingest, &json!([sample("a", 1.0), sample("b", 2.0)])).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"], "stream_refused");
    assert_eq!(body["unwritten"], json!([0, 1]));
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("AccessDeniedException"),
        "{body}"
    );
}

#[tokio::test]
async fn bodies_that_are_not_requests_are_400() {
    let ingest = ingest();
    for (body, message) in [
        ("", "request body is required"),
        ("{", "body: not JSON"),
        ("42", "body: must be an event object"),
        ("[]", "events: the batch is empty"),
    ] {
        let response = ingest.handle(&request(body), NOW_MS, Deadline::NONE).await;
        assert_eq!(response.status_code, 400, "{body}");
        let answer = body_of(&response);
        assert!(
            answer["message"].as_str().unwrap().starts_with(message),
            "{answer}"
        );
    }
}
