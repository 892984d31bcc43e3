//! The handler called directly, as API Gateway would, with an in-memory sink.

mod common;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use base64::Engine;
use common::{LOCAL_SECRET, NOW, body_json, config, fixture, forwarder, verifier};
use eventfabric_core::{Deadline, MemorySink};
use forward_api::{ForwardConfig, Forwarder, KeyRing, MemoryKeys, MemoryState, Redactor, handle};
use serde_json::{Value, json};

fn forwarder_with(sink: MemorySink) -> Forwarder<MemorySink, MemoryState> {
    forwarder(
        sink,
        MemoryState::new(),
        ForwardConfig::with_buses("session-bus", Some("analytics-bus".into())),
    )
}

fn with_body(body: Value) -> ApiGatewayV2httpRequest {
    let mut request = fixture();
    request.body = Some(body.to_string());
    request
}

fn client() -> Value {
    json!({"appVersion": "4.2.0", "sessionId": "sess-123", "tabId": "tab-1", "nonce": "n"})
}

fn event(id: &str, topic: &str, payload: Value) -> Value {
    json!({"id": id, "ts": NOW, "topic": topic, "payload": payload, "schemaVersion": "1.0.0"})
}

/// A valid `session.lifecycle.ended` event.
fn session_ended(id: &str) -> Value {
    event(
        id,
        "session.lifecycle.ended",
        json!({"tenantId": "acme", "reason": "closed", "durationMs": 5}),
    )
}

/// Handles a request whose `events` array is written as text (for what a `Value` cannot hold:
/// repeated names, undecodable escapes), expecting 202; the answer and the forwarder.
async fn forward_text(events: &str) -> (Value, Forwarder<MemorySink, MemoryState>) {
    let mut request = fixture();
    request.body = Some(format!(r#"{{"events": {events}, "client": {}}}"#, client()));
    let forwarder = forwarder_with(MemorySink::new());
    let response = handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 202);
    (body_json(&response), forwarder)
}

async fn forward(events: Vec<Value>) -> (Value, Vec<eventfabric_core::BusEntry<'static>>) {
    let forwarder = forwarder_with(MemorySink::new());
    let response = handle(
        &forwarder,
        &verifier(),
        &with_body(json!({"events": events, "client": client()})),
        NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(response.status_code, 202);
    (body_json(&response), forwarder.sink().published())
}

fn reasons(body: &Value) -> Vec<(String, String)> {
    body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap_or("<none>").to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_fixture_request_is_answered_event_by_event() {
    let forwarder = forwarder_with(MemorySink::new());
    let response = handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 202);
    assert_eq!(response.headers["content-type"], "application/json");
    let body = body_json(&response);
    assert_eq!(
        body["accepted"],
        json!(["evt-started", "evt-ended", "evt-summary", "evt-profile"])
    );
    assert_eq!(
        reasons(&body),
        vec![
            ("evt-unknown".into(), "unknown_topic".into()),
            ("evt-debug".into(), "topic_denied".into()),
            ("evt-invalid".into(), "schema_violation".into()),
            ("evt-no-ts".into(), "malformed_event".into()),
        ]
    );
    let invalid = &body["rejected"][2]["detail"];
    assert!(
        invalid.as_str().unwrap().starts_with("at /payload/score:"),
        "{invalid}"
    );
    let no_ts = &body["rejected"][3]["detail"];
    assert!(
        no_ts.as_str().unwrap().contains("missing field `ts`"),
        "{no_ts}"
    );

    let published = forwarder.sink().published();
    let types: Vec<&str> = published.iter().map(|e| &*e.detail_type).collect();
    // The alias `session.ended` is published under its canonical topic.
    assert_eq!(
        types,
        [
            "session.lifecycle.started",
            "session.lifecycle.ended",
            "session.summary.final",
            "user.profile.updated"
        ]
    );
}

#[tokio::test]
async fn events_map_onto_eventbridge_entries() {
    let forwarder = forwarder_with(MemorySink::new());
    handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE).await;
    let published = forwarder.sink().published();
    let started = &published[0];
    assert_eq!(started.id, "evt-started");
    assert_eq!(&*started.source, "nia.interface");
    assert_eq!(&*started.event_bus_name, "session-bus");
    assert_eq!(started.time_millis, Some(NOW - 1000));
    let detail: Value = serde_json::from_str(&started.detail).unwrap();
    assert_eq!(
        detail,
        json!({
            "id": "evt-started",
            "topic": "session.lifecycle.started",
            "schemaVersion": "1.0.0",
            "tenantId": "acme",
            "sessionId": "sess-123",
            "tabId": "tab-1",
            "appVersion": "4.2.0",
            "clientTs": "2025-12-31T23:59:59Z",
            // userAgent is in the topic's redactionHint.drop.
            "payload": {"tenantId": "acme", "locale": "en-GB"},
            "meta": {"page": "/chat"}
        })
    );
    // An RFC 3339 `ts` maps to the same Time.
    assert_eq!(published[1].time_millis, Some(NOW - 30_000));
}

#[tokio::test]
async fn high_pii_fields_never_leave() {
    let forwarder = forwarder_with(MemorySink::new());
    handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE).await;
    let profile = forwarder
        .sink()
        .published()
        .into_iter()
        .find(|e| e.id == "evt-profile")
        .unwrap();
    assert!(
        !profile.detail.contains("ada@example.com"),
        "{}",
        profile.detail
    );
    let detail: Value = serde_json::from_str(&profile.detail).unwrap();
    // `/email` dropped, `/userId` replaced by its keyed hash.
    let user_id = detail["payload"]["userId"].as_str().unwrap();
    assert!(user_id.starts_with("hmac-sha256:"), "{user_id}");
    assert!(!profile.detail.contains("u-7"), "{}", profile.detail);
    assert_eq!(
        detail["payload"],
        json!({"tenantId": "acme", "userId": user_id, "changedFields": ["email"]})
    );
}

#[tokio::test]
async fn without_a_hashing_key_hashed_fields_are_refused_not_sent() {
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config())
        .with_redactor(Redactor::without_hashing());
    let body = body_json(&handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE).await);
    let profile = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "evt-profile")
        .unwrap();
    assert_eq!(profile["reason"], "redaction_unavailable");
    assert!(
        forwarder
            .sink()
            .published()
            .iter()
            .all(|e| e.id != "evt-profile")
    );
}

fn without_header(name: &str) -> ApiGatewayV2httpRequest {
    let mut request = fixture();
    request.headers.remove(name);
    request
}

fn with_token(token: &str) -> ApiGatewayV2httpRequest {
    let mut request = fixture();
    request
        .headers
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

#[tokio::test]
async fn requests_without_a_valid_session_token_get_401() {
    let forwarder = forwarder_with(MemorySink::new());
    let missing = handle(
        &forwarder,
        &verifier(),
        &without_header("authorization"),
        NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(missing.status_code, 401);
    assert_eq!(body_json(&missing)["error"], "unauthorized");

    let forged = forward_api::auth::mint(
        b"not-the-deployment-secret-at-all!!",
        "sess-123",
        NOW / 1000 + 60,
    )
    .unwrap();
    assert_eq!(
        handle(
            &forwarder,
            &verifier(),
            &with_token(&forged),
            NOW,
            Deadline::NONE
        )
        .await
        .status_code,
        401
    );

    let expired = forward_api::auth::mint(LOCAL_SECRET, "sess-123", NOW / 1000 - 600).unwrap();
    let response = handle(
        &forwarder,
        &verifier(),
        &with_token(&expired),
        NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(response.status_code, 401);
    assert!(
        body_json(&response)["message"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    assert!(forwarder.sink().published().is_empty());
}

#[tokio::test]
async fn a_token_signed_after_a_rotation_of_the_secret_passes_without_a_restart() {
    let forwarder = forwarder_with(MemorySink::new());
    let keys = KeyRing::load(MemoryKeys::new(LOCAL_SECRET), NOW)
        .await
        .unwrap();
    let next = b"eventfabric-local-only-session-secret-0002";
    keys.source().rotate(next);
    let token = forward_api::auth::mint(next, "sess-123", NOW / 1000 + 600).unwrap();
    let status = |request: ApiGatewayV2httpRequest, at: i64| {
        let (forwarder, keys) = (&forwarder, &keys);
        async move {
            handle(forwarder, keys, &request, at, Deadline::NONE)
                .await
                .status_code
        }
    };
    // Within a minute of the last read the held keys are kept, so the new key is unknown.
    assert_eq!(status(with_token(&token), NOW + 1_000).await, 401);
    assert_eq!(keys.source().reads(), 1);
    // After it, the first token of the new key reads the secret again and passes.
    assert_eq!(status(with_token(&token), NOW + 61_000).await, 202);
    assert_eq!(keys.source().reads(), 2);
    // Tokens signed just before the rotation still pass (the previous value).
    assert_eq!(status(fixture(), NOW + 62_000).await, 202);
    assert_eq!(keys.source().reads(), 2);
}

#[tokio::test]
async fn a_token_for_another_session_gets_403() {
    let forwarder = forwarder_with(MemorySink::new());
    let other = forward_api::auth::mint(LOCAL_SECRET, "sess-999", NOW / 1000 + 60).unwrap();
    let response = handle(
        &forwarder,
        &verifier(),
        &with_token(&other),
        NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(response.status_code, 403);
    assert!(
        body_json(&response)["message"]
            .as_str()
            .unwrap()
            .contains("sess-123")
    );
    assert!(forwarder.sink().published().is_empty());
}

#[tokio::test]
async fn a_session_over_its_quota_gets_429_with_retry_after() {
    let mut config = config();
    config.quota_events_per_minute = 12; // the fixture has 8 events
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config);
    assert_eq!(
        handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE)
            .await
            .status_code,
        202
    );
    let published = forwarder.sink().take().len();
    let response = handle(
        &forwarder,
        &verifier(),
        &fixture(),
        NOW + 20_000,
        Deadline::NONE,
    )
    .await;
    assert_eq!(response.status_code, 429);
    assert_eq!(body_json(&response)["error"], "quota_exceeded");
    assert_eq!(response.headers["retry-after"], "40");
    assert!(
        forwarder.sink().published().is_empty(),
        "nothing of a refused request is sent"
    );
    // The next window has room again.
    assert_eq!(
        handle(
            &forwarder,
            &verifier(),
            &fixture(),
            NOW + 60_000,
            Deadline::NONE
        )
        .await
        .status_code,
        202
    );
    assert_eq!(published, 4);
}

#[tokio::test]
async fn a_repeated_request_is_reported_not_resent() {
    let forwarder = forwarder_with(MemorySink::new());
    let first = body_json(&handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE).await);
    assert_eq!(first["accepted"].as_array().unwrap().len(), 4);
    assert_eq!(forwarder.sink().take().len(), 4);

    let second = body_json(
        &handle(
            &forwarder,
            &verifier(),
            &fixture(),
            NOW + 30_000,
            Deadline::NONE,
        )
        .await,
    );
    assert_eq!(second["accepted"], json!([]));
    let already: Vec<_> = reasons(&second)
        .into_iter()
        .filter(|(_, r)| r == "already_forwarded")
        .map(|(id, _)| id)
        .collect();
    assert_eq!(
        already,
        ["evt-started", "evt-ended", "evt-summary", "evt-profile"]
    );
    assert!(forwarder.sink().published().is_empty());
}

#[tokio::test]
async fn an_event_whose_publishing_failed_can_be_retried() {
    let state = std::sync::Arc::new(MemoryState::new());
    let failing = forwarder(
        MemorySink::failing_for(["session.summary.final"]),
        state.clone(),
        config(),
    );
    let first = body_json(&handle(&failing, &verifier(), &fixture(), NOW, Deadline::NONE).await);
    assert_eq!(first["accepted"].as_array().unwrap().len(), 3);

    // Same state, healthy bus: only the failed event goes through on retry.
    let healthy = forwarder(MemorySink::new(), state, config());
    let retry = body_json(
        &handle(
            &healthy,
            &verifier(),
            &fixture(),
            NOW + 5_000,
            Deadline::NONE,
        )
        .await,
    );
    assert_eq!(retry["accepted"], json!(["evt-summary"]));
}

#[tokio::test]
async fn events_claimed_by_an_invocation_that_died_are_sent_by_the_retry_after_the_lease() {
    use forward_api::SessionState;
    let state = std::sync::Arc::new(MemoryState::new());
    // An invocation claimed these, then died before publishing (never confirmed or released).
    let ids = ["evt-started", "evt-ended", "evt-summary", "evt-profile"];
    state.claim("sess-123", &ids, 15, NOW).await;
    let mut config = config();
    config.claim_lease_seconds = 15;
    let forwarder = forwarder(MemorySink::new(), state, config);
    // While the lease runs, a concurrent retry must not send them twice.
    let early = body_json(
        &handle(
            &forwarder,
            &verifier(),
            &fixture(),
            NOW + 5_000,
            Deadline::NONE,
        )
        .await,
    );
    assert_eq!(early["accepted"], json!([]), "{early}");
    // After it, the retry sends them: nothing is lost to the dead invocation.
    let late = body_json(
        &handle(
            &forwarder,
            &verifier(),
            &fixture(),
            NOW + 16_000,
            Deadline::NONE,
        )
        .await,
    );
    assert_eq!(late["accepted"], json!(ids), "{late}");
    // And now they are confirmed: a further retry is a duplicate even after the lease.
    let again = body_json(
        &handle(
            &forwarder,
            &verifier(),
            &fixture(),
            NOW + 40_000,
            Deadline::NONE,
        )
        .await,
    );
    assert_eq!(again["accepted"], json!([]), "{again}");
}

#[tokio::test]
async fn an_unavailable_state_store_degrades_to_at_least_once() {
    let forwarder = forwarder(MemorySink::new(), MemoryState::unavailable(), config());
    let response = handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 202);
    assert_eq!(
        body_json(&response)["accepted"].as_array().unwrap().len(),
        4
    );
}

#[tokio::test]
async fn malformed_bodies_get_400_with_the_field_named() {
    let forwarder = forwarder_with(MemorySink::new());
    let mut request = fixture();
    request.body = Some(json!({"events": [], "client": client()}).to_string());
    let response = handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 400);
    assert_eq!(
        body_json(&response),
        json!({"error": "bad_request", "message": "events: must contain at least one event"})
    );

    request.body = Some(r#"{"events": [{}], "client": {"appVersion": "1"}}"#.into());
    let response = handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 400);
    assert!(
        body_json(&response)["message"]
            .as_str()
            .unwrap()
            .contains("missing field `sessionId`")
    );

    request.body = Some("events=1".into());
    assert_eq!(
        handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE)
            .await
            .status_code,
        400
    );
    assert!(forwarder.sink().published().is_empty());
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let forwarder = forwarder_with(MemorySink::new());
    let pad = "x".repeat(300 * 1024);
    let request = with_body(
        json!({"events": [event("e", "session.lifecycle.started", json!({"pad": pad}))], "client": client()}),
    );
    assert_eq!(
        handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE)
            .await
            .status_code,
        413
    );
}

#[tokio::test]
async fn base64_bodies_are_decoded() {
    let forwarder = forwarder_with(MemorySink::new());
    let mut request = fixture();
    request.body =
        Some(base64::engine::general_purpose::STANDARD.encode(request.body.take().unwrap()));
    request.is_base64_encoded = true;
    let body = body_json(&handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE).await);
    assert_eq!(body["accepted"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn per_event_limits_reject_only_the_offender() {
    let ok = || json!({"tenantId": "acme", "locale": "en"});
    let mut stale = event("stale", "session.lifecycle.started", ok());
    stale["ts"] = json!(NOW - 121_000);
    let mut future = event("future", "session.lifecycle.started", ok());
    future["ts"] = json!(NOW + 121_000);
    let mut old_major = event("v2", "session.lifecycle.started", ok());
    old_major["schemaVersion"] = json!("2.0.0");
    let big = event(
        "big",
        "session.summary.final",
        json!({"tenantId": "a", "conversationId": "c", "turns": 1, "summary": "x".repeat(4100)}),
    );
    let mut bad_meta = event("meta", "session.lifecycle.started", ok());
    bad_meta["meta"] = json!(["not", "an", "object"]);
    let (body, published) = forward(vec![
        event("fine", "session.lifecycle.started", ok()),
        bad_meta,
        stale,
        future,
        old_major,
        big,
        event("fine", "session.lifecycle.started", ok()),
    ])
    .await;
    assert_eq!(body["accepted"], json!(["fine"]));
    assert_eq!(
        reasons(&body),
        vec![
            ("meta".into(), "malformed_event".into()),
            ("stale".into(), "stale_event".into()),
            ("future".into(), "future_event".into()),
            ("v2".into(), "unsupported_schema_version".into()),
            ("big".into(), "payload_too_large".into()),
            ("fine".into(), "duplicate_event".into()),
        ]
    );
    assert_eq!(published.len(), 1);
}

#[tokio::test]
async fn a_payload_repeating_a_member_is_refused_alone() {
    // Validators and consumers could read different values of a repeated name (serde_json
    // keeps the last, many parsers the first), so such a payload is malformed. Written as text:
    // a `Value` cannot hold the repetition.
    let ok = session_ended("fine");
    let repeated = format!(
        r#"{{"id": "twice", "ts": {NOW}, "topic": "session.lifecycle.ended", "schemaVersion": "1.0.0",
            "payload": {{"tenantId": "acme", "reason": "closed", "durationMs": 5, "tenantId": "other"}}}}"#
    );
    let (body, forwarder) = forward_text(&format!("[{ok}, {repeated}, 42]")).await;
    assert_eq!(body["accepted"], json!(["fine"]));
    assert_eq!(body["rejected"][0]["id"], "twice");
    assert_eq!(body["rejected"][0]["reason"], "malformed_event");
    let detail = body["rejected"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("member 'tenantId' appears more than once"),
        "{detail}"
    );
    assert_eq!(body["rejected"][1]["index"], 2);
    assert_eq!(
        body["rejected"][1]["detail"],
        "not a valid event: an event must be an object, not the number 42"
    );
    assert_eq!(forwarder.sink().published().len(), 1);
}

#[tokio::test]
async fn a_value_that_cannot_be_decoded_fails_only_its_event() {
    // Well-formed JSON text whose value serde_json cannot hold: a lone surrogate (what
    // `JSON.stringify` writes for half an emoji) and a number out of range.
    let ok = session_ended("fine");
    let with = |id: &str, payload: &str| {
        format!(
            r#"{{"id": "{id}", "ts": {NOW}, "topic": "session.lifecycle.ended", "schemaVersion": "1.0.0", "payload": {payload}}}"#
        )
    };
    let surrogate = with(
        "half",
        r#"{"tenantId": "acme", "reason": "\ud83e", "durationMs": 5}"#,
    );
    let huge = with(
        "huge",
        r#"{"tenantId": "acme", "reason": "closed", "durationMs": 1e400}"#,
    );
    let bad_id = with(
        "\\udc00",
        r#"{"tenantId": "acme", "reason": "closed", "durationMs": 5}"#,
    );
    let (body, forwarder) = forward_text(&format!("[{surrogate}, {ok}, {huge}, {bad_id}]")).await;
    assert_eq!(body["accepted"], json!(["fine"]));
    let rejected: Vec<(u64, &str, &str)> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["reason"].as_str().unwrap(),
                r["detail"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(rejected.len(), 3, "{rejected:?}");
    for (&(index, reason, detail), (expected_index, expected)) in rejected.iter().zip([
        (0, "payload: string at byte"),
        (2, "payload: number at byte"),
        (3, "not a valid event: id: string at byte"),
    ]) {
        assert_eq!((index, reason), (expected_index, "malformed_event"));
        assert!(detail.starts_with(expected), "{detail}");
    }
    assert_eq!(forwarder.sink().published().len(), 1);

    // Text that is not JSON still fails the whole body.
    let mut request = fixture();
    request.body = Some(format!(
        r#"{{"events": [{ok}, {}], "client": {}}}"#,
        with("bad", r#"{"x": "\q"}"#),
        client()
    ));
    let response = handle(&forwarder, &verifier(), &request, NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 400);
}

#[tokio::test]
async fn publish_failures_are_reported_per_event() {
    let forwarder = forwarder_with(MemorySink::failing_for(["session.summary.final"]));
    let body = body_json(&handle(&forwarder, &verifier(), &fixture(), NOW, Deadline::NONE).await);
    assert_eq!(
        body["accepted"],
        json!(["evt-started", "evt-ended", "evt-profile"])
    );
    let failed: Vec<_> = body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["reason"] == "publish_failed")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["id"], "evt-summary");
    assert_eq!(failed[0]["index"], 2);
    assert!(
        failed[0]["detail"]
            .as_str()
            .unwrap()
            .contains("InternalFailure")
    );
}

#[tokio::test]
async fn sampling_is_deterministic_and_close_to_the_rate() {
    let events: Vec<Value> = (0..50)
        .map(|i| {
            event(
                &format!("ui-{i}"),
                "ui.interaction.sampled",
                json!({"tenantId": "a", "element": "btn", "action": "click"}),
            )
        })
        .collect();
    let (first, _) = forward(events.clone()).await;
    let (second, _) = forward(events).await;
    assert_eq!(first, second, "the same ids must get the same decision");

    let mut kept = 0;
    for chunk in 0..20 {
        let events = (0..50)
            .map(|i| {
                event(
                    &format!("ui-{chunk}-{i}"),
                    "ui.interaction.sampled",
                    json!({"tenantId": "a", "element": "b", "action": "click"}),
                )
            })
            .collect();
        let (body, _) = forward(events).await;
        kept += body["accepted"].as_array().unwrap().len();
        assert!(reasons(&body).iter().all(|(_, r)| r == "sampled_out"));
    }
    // sampleRate 0.1 over 1000 ids.
    assert!((60..=140).contains(&kept), "kept {kept} of 1000");
}

/// The kill switch off: 503 with Retry-After, nothing published, nothing stored; back on, the
/// same request goes through.
#[tokio::test(start_paused = true)]
async fn the_kill_switch_refuses_every_request_until_it_is_back_on() {
    use eventfabric_core::parameter::MemoryParameter;
    use forward_api::handle_switched;
    use forward_api::switch::{SWITCH_TTL, switch};

    let forwarder = forwarder_with(MemorySink::new());
    let switch = switch(MemoryParameter::new("off"));
    let answer = |switch| {
        let forwarder = &forwarder;
        async move {
            handle_switched(
                switch,
                forwarder,
                &verifier(),
                &fixture(),
                NOW,
                Deadline::NONE,
            )
            .await
        }
    };
    let response = answer(Some(&switch)).await;
    assert_eq!(response.status_code, 503);
    assert_eq!(response.headers["retry-after"], "60");
    let body = body_json(&response);
    assert_eq!(body["error"], "forwarding_disabled");
    assert!(
        forwarder.sink().published().is_empty(),
        "nothing reached a bus"
    );

    switch.source().set(Ok("on".into()));
    tokio::time::advance(SWITCH_TTL).await;
    let response = answer(Some(&switch)).await;
    assert_eq!(response.status_code, 202);
    assert_eq!(forwarder.sink().published().len(), 4);
    // Without a switch parameter (local runs) forwarding is on.
    let none: Option<&forward_api::switch::Switch<MemoryParameter>> = None;
    let response = handle_switched(
        none,
        &forwarder_with(MemorySink::new()),
        &verifier(),
        &fixture(),
        NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(response.status_code, 202);
}
