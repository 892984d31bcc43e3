//! The answer arrives before the invocation's deadline, with an outcome per event, however the
//! bus and the state store fail: never answering (virtual clock), or refusing connections
//! (the real SDK clients of `main.rs`, real clock).

mod common;

use std::time::Duration;

use common::{NOW, body_json, config, fixture, forwarder, verifier};
use eventfabric_core::{
    BusEntry, Deadline, EventBridgeApi, EventBridgeSink, EventSink, MemorySink, PublishError,
    RetryPolicy,
};
use forward_api::state::{Claim, QuotaDecision, StateError};
use forward_api::{DynamoState, SessionState, handle};
use serde_json::Value;

/// The fixture's events that pass every check (the others are rejected before any call).
const VALID_EVENTS: usize = 4;

fn publish_failures(body: &Value) -> usize {
    body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "publish_failed")
        .count()
}

/// A bus that accepts the connection and never answers.
struct SilentSink;

impl EventSink for SilentSink {
    async fn publish(&self, _: &[BusEntry<'_>], _: Deadline) -> Vec<Result<(), PublishError>> {
        std::future::pending().await
    }
}

/// A state store that never answers.
struct SilentState;

impl SessionState for SilentState {
    async fn consume_quota(
        &self,
        _: &str,
        _: u32,
        _: u32,
        _: i64,
    ) -> Result<QuotaDecision, StateError> {
        std::future::pending().await
    }

    async fn claim(&self, _: &str, _: &[&str], _: i64, _: i64) -> Vec<Result<Claim, StateError>> {
        std::future::pending().await
    }

    async fn confirm(&self, _: &str, _: &[&str], _: i64) -> Result<(), StateError> {
        std::future::pending().await
    }

    async fn release(&self, _: &str, _: &[&str]) -> Result<(), StateError> {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_bus_and_store_still_get_an_answer_before_the_deadline() {
    let forwarder = forwarder(
        EventBridgeSink::new(SilentPutEvents, RetryPolicy::default()),
        SilentState,
        config(),
    );
    let start = tokio::time::Instant::now();
    let answer_by = Deadline::after(Duration::from_secs(3));
    let response = handle(&forwarder, &verifier(), &fixture(), NOW, answer_by).await;
    let took = start.elapsed();
    assert!(took <= Duration::from_secs(3), "answered after {took:?}");
    assert_eq!(response.status_code, 202);
    let body = body_json(&response);
    assert_eq!(body["accepted"], serde_json::json!([]));
    assert_eq!(publish_failures(&body), VALID_EVENTS, "{body}");
    for r in body["rejected"].as_array().unwrap() {
        if r["reason"] == "publish_failed" {
            let detail = r["detail"].as_str().unwrap();
            assert!(detail.contains("before the deadline"), "{detail}");
        }
    }
}

/// PutEvents that never answers, behind the real retrying sink.
struct SilentPutEvents;

impl eventfabric_core::PutEventsApi for SilentPutEvents {
    async fn put_events(
        &self,
        _: &[&BusEntry<'_>],
    ) -> Result<
        Vec<eventfabric_core::eventbridge::EntryResult>,
        eventfabric_core::eventbridge::CallError,
    > {
        std::future::pending().await
    }
}

#[tokio::test(start_paused = true)]
async fn a_sink_that_ignores_its_deadline_is_cut_off_too() {
    let forwarder = forwarder(SilentSink, SilentState, config());
    let start = tokio::time::Instant::now();
    let answer_by = Deadline::after(Duration::from_secs(2));
    let response = handle(&forwarder, &verifier(), &fixture(), NOW, answer_by).await;
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_eq!(publish_failures(&body_json(&response)), VALID_EVENTS);
}

#[tokio::test(start_paused = true)]
async fn a_silent_store_costs_one_call_timeout_each_and_events_still_go_out() {
    let forwarder = forwarder(MemorySink::new(), SilentState, config());
    let start = tokio::time::Instant::now();
    let answer_by = Deadline::after(Duration::from_secs(9));
    let response = handle(&forwarder, &verifier(), &fixture(), NOW, answer_by).await;
    let body = body_json(&response);
    assert_eq!(
        body["accepted"].as_array().unwrap().len(),
        VALID_EVENTS,
        "{body}"
    );
    assert_eq!(forwarder.sink().published().len(), VALID_EVENTS);
    // Quota and claims together, then confirm: two store call timeouts (1 s each).
    assert_eq!(start.elapsed(), Duration::from_secs(2));
}

/// A local port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn with_aws_unreachable_the_answer_beats_the_deadline() {
    use aws_sdk_dynamodb::config::Credentials;
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let aws = eventfabric_core::aws::loader()
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .load()
        .await;
    // The clients exactly as main.rs builds them.
    let sink = EventBridgeSink::new(
        EventBridgeApi::new(forward_api::sdk::eventbridge(&aws)),
        RetryPolicy::default(),
    );
    let state = DynamoState::new(forward_api::sdk::dynamodb(&aws), "state");
    let forwarder = forwarder(sink, state, config());
    let budget = Duration::from_secs(3);
    let start = std::time::Instant::now();
    let response = handle(
        &forwarder,
        &verifier(),
        &fixture(),
        NOW,
        Deadline::after(budget),
    )
    .await;
    let took = start.elapsed();
    assert!(took < budget, "answered after {took:?}");
    let body = body_json(&response);
    assert_eq!(response.status_code, 202, "{body}");
    assert_eq!(publish_failures(&body), VALID_EVENTS, "{body}");
    println!("answered in {took:?} with AWS unreachable");
}
