//! The metrics one request produces, as the EMF documents CloudWatch would ingest. Its own test
//! binary: the recorder is process-global.

mod common;

use common::{NOW, config, fixture, forwarder, verifier};
use eventfabric_core::{Deadline, MemorySink};
use forward_api::{MemoryState, handle};
use serde_json::Value;

#[tokio::test]
async fn a_request_emits_forwarded_dropped_and_refused_counts() {
    let collector = metrics_cloudwatch_embedded::Builder::new()
        .cloudwatch_namespace("eventfabric")
        .with_dimension("function", "forward-api")
        .with_timestamp(NOW as u64)
        .init()
        .unwrap();
    forward_api::metrics::describe();

    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config());
    let verifier = verifier();
    let request = fixture();
    handle(&forwarder, &verifier, &request, NOW, Deadline::NONE).await;
    let mut anonymous = request.clone();
    anonymous.headers.remove("authorization");
    handle(&forwarder, &verifier, &anonymous, NOW, Deadline::NONE).await;

    let mut out = Vec::new();
    collector.flush(&mut out).unwrap();
    let docs: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let value = |name: &str, dim: Option<(&str, &str)>| -> Option<Value> {
        docs.iter()
            .find(|d| {
                d.get(name).is_some()
                    && dim.is_none_or(|(k, v)| d.get(k).and_then(Value::as_str) == Some(v))
            })
            .map(|d| d[name].clone())
    };
    for doc in &docs {
        let meta = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(meta["Namespace"], "eventfabric", "{doc}");
        assert!(
            meta["Dimensions"][0]
                .as_array()
                .unwrap()
                .contains(&"function".into())
        );
    }
    assert_eq!(value("EventsForwarded", None), Some(4.into()), "{docs:?}");
    for reason in [
        "unknown_topic",
        "topic_denied",
        "schema_violation",
        "malformed_event",
    ] {
        assert_eq!(
            value("DroppedClientEvents", Some(("reason", reason))),
            Some(1.into()),
            "{reason}: {docs:?}"
        );
    }
    assert_eq!(
        value("RequestsRefused", Some(("status", "401"))),
        Some(1.into())
    );
    assert_eq!(value("ForwardFailures", None), None, "no failure, no datum");
    // The unit comes from `describe`.
    let forwarded = docs
        .iter()
        .find(|d| d.get("EventsForwarded").is_some())
        .unwrap();
    assert_eq!(
        forwarded["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
        "Count"
    );
}
