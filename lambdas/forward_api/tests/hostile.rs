//! Bad input and faults (issue 15): integer extremes, ids past their limits, client text in
//! messages, the Authorization scheme, and a state store that refuses instead of failing.
//! Each test failed before its fix.

mod common;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use common::{LOCAL_SECRET, NOW, body_json, config, fixture, forwarder, verifier};
use eventfabric_core::{Deadline, MemorySink};
use forward_api::auth::mint;
use forward_api::request::{MAX_CLIENT_FIELD_BYTES, MAX_ID_BYTES};
use forward_api::state::{Claim, QuotaDecision, StateError};
use forward_api::{Forwarder, MemoryState, SessionState, handle};
use serde_json::{Value, json};

fn client() -> Value {
    json!({"appVersion": "4.2.0", "sessionId": "sess-123", "tabId": "tab-1", "nonce": "n"})
}

fn started(id: &str) -> Value {
    json!({
        "id": id, "ts": NOW, "topic": "session.lifecycle.started",
        "payload": {"tenantId": "acme", "locale": "en"}, "schemaVersion": "1.0.0"
    })
}

fn request_text(body: String) -> ApiGatewayV2httpRequest {
    let mut request = fixture();
    request.body = Some(body);
    request
}

fn request(events: Value) -> ApiGatewayV2httpRequest {
    request_text(json!({"events": events, "client": client()}).to_string())
}

async fn answer<St: SessionState>(
    forwarder: &Forwarder<MemorySink, St>,
    request: &ApiGatewayV2httpRequest,
) -> (i64, Value) {
    let response = handle(forwarder, &verifier(), request, NOW, Deadline::NONE).await;
    (response.status_code, body_json(&response))
}

/// `(index, reason, detail)` of each rejection.
fn rejections(body: &Value) -> Vec<(u64, String, String)> {
    body["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
                r["detail"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn timestamps_at_the_integer_extremes_are_judged_not_wrapped() {
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config());
    // Numbers a `Value` cannot carry are written as text.
    let events = [
        (i64::MIN.to_string(), "stale_event"),
        ((i64::MIN + 1).to_string(), "stale_event"),
        ("-1".to_owned(), "stale_event"),
        ("0".to_owned(), "stale_event"),
        (i64::MAX.to_string(), "future_event"),
        ((i64::MAX as u64 + 1).to_string(), "malformed_event"),
        (u64::MAX.to_string(), "malformed_event"),
        ("1e400".to_owned(), "malformed_event"),
        ("-1e400".to_owned(), "malformed_event"),
        ("1.5".to_owned(), "malformed_event"),
        ("\"-9999-01-01T00:00:00Z\"".to_owned(), "malformed_event"),
        ("\"0000-01-01T00:00:00Z\"".to_owned(), "stale_event"),
        ("\"9999-12-31T23:59:59.999Z\"".to_owned(), "future_event"),
    ];
    let body = events
        .iter()
        .enumerate()
        .map(|(i, (ts, _))| {
            format!(
                r#"{{"id": "e{i}", "ts": {ts}, "topic": "session.lifecycle.started", "payload": {{"tenantId": "acme", "locale": "en"}}, "schemaVersion": "1.0.0"}}"#
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let request = request_text(format!(r#"{{"events": [{body}], "client": {}}}"#, client()));
    let (status, body) = answer(&forwarder, &request).await;
    assert_eq!(status, 202, "{body}");
    let got: Vec<(u64, String)> = rejections(&body)
        .into_iter()
        .map(|(i, reason, _)| (i, reason))
        .collect();
    let want: Vec<(u64, String)> = events
        .iter()
        .enumerate()
        .map(|(i, (_, reason))| (i as u64, (*reason).to_owned()))
        .collect();
    assert_eq!(got, want, "{body}");
    // The distance is reported as the magnitude it is, not a wrapped negative.
    let (_, _, detail) = &rejections(&body)[0];
    assert!(
        detail.starts_with(&format!(
            "ts is {} ms in the past",
            (NOW as i128 - i64::MIN as i128)
        )),
        "{detail}"
    );
    assert!(forwarder.sink().published().is_empty());
}

#[tokio::test]
async fn a_token_that_never_expires_is_accepted() {
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config());
    let mut request = request(json!([started("e1")]));
    let token = mint(LOCAL_SECRET, "sess-123", i64::MAX).unwrap();
    // The scheme in any case (RFC 9110).
    request
        .headers
        .insert("authorization", format!("BEARER {token}").parse().unwrap());
    let (status, body) = answer(&forwarder, &request).await;
    assert_eq!((status, &body["accepted"]), (202, &json!(["e1"])), "{body}");
}

#[tokio::test]
async fn ids_past_their_limits_are_malformed_and_never_reach_the_store() {
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config());
    let longest = "a".repeat(MAX_ID_BYTES);
    let too_long = "a".repeat(MAX_ID_BYTES + 1);
    // Long enough that `{sessionId, id}` is past DynamoDB's 2,048-byte key limit.
    let huge = "x".repeat(4096);
    let events = json!([
        started(&longest),
        started(&too_long),
        started(&huge),
        started(""),
        started("tab\there"),
        started("nul\u{0}"),
        started("with space"),
        started("é"),
        started("~!@#$%^&*()_+{}|:<>?-=[];',./`"),
    ]);
    let (status, body) = answer(&forwarder, &request(events.clone())).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        body["accepted"],
        json!([longest, "~!@#$%^&*()_+{}|:<>?-=[];',./`"]),
        "{body}"
    );
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 7);
    for r in rejected {
        assert_eq!(r["reason"], "malformed_event", "{r}");
        assert!(r["detail"].as_str().unwrap().contains("id: "), "{r}");
        // An id that cannot be one is not quoted back; the index identifies the event.
        assert_eq!(r["id"], Value::Null, "{r}");
        assert!(r["detail"].as_str().unwrap().len() < 300, "{r}");
    }
    assert_eq!(
        rejected[0]["detail"],
        format!(
            "not a valid event: id: is {} bytes long; the limit is {MAX_ID_BYTES}",
            MAX_ID_BYTES + 1
        )
    );
    // Deduplication holds for what was accepted: the same request again sends nothing.
    let (_, again) = answer(&forwarder, &request(events)).await;
    assert_eq!(again["accepted"], json!([]), "{again}");
    let reasons: Vec<_> = rejections(&again).into_iter().map(|r| r.1).collect();
    assert_eq!(
        reasons.iter().filter(|r| *r == "already_forwarded").count(),
        2
    );
    assert_eq!(forwarder.sink().published().len(), 2);
}

#[tokio::test]
async fn client_fields_past_their_limits_are_a_bad_request() {
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config());
    let cases = [
        (
            "sessionId",
            json!("s".repeat(MAX_ID_BYTES + 1)),
            "client.sessionId: is 129 bytes long",
        ),
        (
            "sessionId",
            json!("sess 123"),
            "client.sessionId: character 4 is not visible ASCII",
        ),
        (
            "sessionId",
            json!(""),
            "client.sessionId: must not be empty",
        ),
        (
            "tabId",
            json!("t".repeat(MAX_CLIENT_FIELD_BYTES + 1)),
            "client.tabId: is 129 bytes long",
        ),
        (
            "appVersion",
            json!("1.0\u{7}"),
            "client.appVersion: character 3 is a control character",
        ),
        (
            "nonce",
            json!("n".repeat(100_000)),
            "client.nonce: is 100000 bytes long",
        ),
    ];
    for (field, value, message) in cases {
        let mut client = client();
        client[field] = value;
        let request =
            request_text(json!({"events": [started("e1")], "client": client}).to_string());
        let (status, body) = answer(&forwarder, &request).await;
        assert_eq!(status, 400, "{field}: {body}");
        let got = body["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{field}: {got}");
    }
    assert!(forwarder.sink().published().is_empty());
}

#[tokio::test]
async fn messages_name_the_field_never_the_client_text() {
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), config());
    let secret = format!("SECRET-{}", "x".repeat(10_000));
    let bodies = [
        (
            json!(secret).to_string(),
            "body is not a valid forward request: body: invalid type: string, expected an object",
        ),
        (
            json!({"events": secret, "client": client()}).to_string(),
            "body is not a valid forward request: events: invalid type: string, expected an array",
        ),
        (
            json!({"events": [started("e1")], "client": secret}).to_string(),
            "body is not a valid forward request: client: invalid type: string",
        ),
        (
            json!({secret.clone(): 1, "events": [], "client": client()}).to_string(),
            "body is not a valid forward request: unknown field 'SECRET-xxx",
        ),
    ];
    for (body, message) in bodies {
        let (status, answer) = answer(&forwarder, &request_text(body)).await;
        assert_eq!(status, 400, "{answer}");
        let got = answer["message"].as_str().unwrap();
        assert!(got.starts_with(message), "{got}");
        assert!(got.len() < 300, "{} bytes: {got}", got.len());
        assert!(!got.contains(&"x".repeat(100)), "{got}");
    }
    // Per-event details are capped and escaped too.
    let mut unknown_topic = started("e1");
    unknown_topic["topic"] = json!(format!("t\u{1b}[31m{secret}"));
    let mut bad_ts = started("e2");
    bad_ts["ts"] = json!(secret);
    let mut extra = started("e3");
    extra[secret.as_str()] = json!(1);
    let (status, body) = answer(&forwarder, &request(json!([unknown_topic, bad_ts, extra]))).await;
    assert_eq!(status, 202);
    for (_, reason, detail) in rejections(&body) {
        assert!(detail.len() < 300, "{reason}: {} bytes", detail.len());
        assert!(!detail.contains('\u{1b}'), "{detail}");
    }
    assert!(
        rejections(&body)[0].2.contains("t\\u{1b}[31mSECRET-"),
        "{body}"
    );
}

/// Answers quota calls from memory and refuses every claim, as DynamoDB refuses a key it
/// cannot store.
struct RefusesClaims(MemoryState);

impl SessionState for RefusesClaims {
    async fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> Result<QuotaDecision, StateError> {
        self.0
            .consume_quota(session_id, events, limit, now_ms)
            .await
    }

    async fn claim(&self, _: &str, ids: &[&str], _: i64, _: i64) -> Vec<Result<Claim, StateError>> {
        let refused = StateError::Refused("ValidationException: key too large".into());
        vec![Err(refused); ids.len()]
    }

    async fn confirm(&self, s: &str, ids: &[&str], now_ms: i64) -> Result<(), StateError> {
        self.0.confirm(s, ids, now_ms).await
    }

    async fn release(&self, s: &str, ids: &[&str]) -> Result<(), StateError> {
        self.0.release(s, ids).await
    }
}

#[tokio::test]
async fn a_claim_the_store_refuses_is_not_forwarded_unclaimed() {
    let refusing = forwarder(
        MemorySink::new(),
        RefusesClaims(MemoryState::new()),
        config(),
    );
    let (status, body) = answer(&refusing, &request(json!([started("e1"), started("e2")]))).await;
    assert_eq!(status, 202);
    assert_eq!(body["accepted"], json!([]));
    assert_eq!(rejections(&body).len(), 2);
    for (_, reason, detail) in rejections(&body) {
        assert_eq!(reason, "publish_failed");
        assert!(detail.contains("refused its claim"), "{detail}");
    }
    assert!(refusing.sink().published().is_empty());

    // Unavailable is another matter: forwarded without deduplication (at least once).
    let unavailable = forwarder(MemorySink::new(), MemoryState::unavailable(), config());
    let (_, body) = answer(&unavailable, &request(json!([started("e1")]))).await;
    assert_eq!(body["accepted"], json!(["e1"]));
}

#[tokio::test]
async fn a_quota_update_the_store_refuses_fails_the_request_without_forwarding() {
    let refusing = forwarder(MemorySink::new(), MemoryState::refusing(), config());
    let (status, body) = answer(&refusing, &request(json!([started("e1")]))).await;
    assert_eq!(
        (status, body),
        (
            500,
            json!({"error": "internal_error", "message": "the session state store refused the quota update"})
        )
    );
    assert!(refusing.sink().published().is_empty());
}

/// Quota and claims go to the store together, so a request over its quota has raced claims
/// for its events; they are released, and the client's retry after `Retry-After` goes through.
#[tokio::test]
async fn a_request_over_its_quota_leaves_no_claims_behind() {
    let mut settings = config();
    settings.quota_events_per_minute = 4;
    // A lease longer than the wait, so a claim left behind would still block the retry.
    settings.claim_lease_seconds = 300;
    let forwarder = forwarder(MemorySink::new(), MemoryState::new(), settings);
    let first = request(json!([started("a1"), started("a2"), started("a3")]));
    assert_eq!(answer(&forwarder, &first).await.0, 202);
    let over = request(json!([started("b1"), started("b2")]));
    let response = handle(&forwarder, &verifier(), &over, NOW, Deadline::NONE).await;
    assert_eq!(response.status_code, 429);
    let retry = handle(&forwarder, &verifier(), &over, NOW + 60_000, Deadline::NONE).await;
    assert_eq!(body_json(&retry)["accepted"], json!(["b1", "b2"]));
}

/// Claims are taken, the quota says no, and the release fails: the claims stay pending until
/// their lease runs out, so the client is told to wait at least that long.
struct OverQuotaReleaseFails(MemoryState);

impl SessionState for OverQuotaReleaseFails {
    async fn consume_quota(
        &self,
        _: &str,
        _: u32,
        _: u32,
        _: i64,
    ) -> Result<QuotaDecision, StateError> {
        Ok(QuotaDecision::Exceeded {
            retry_after_seconds: 3,
        })
    }

    async fn claim(
        &self,
        s: &str,
        ids: &[&str],
        lease: i64,
        now_ms: i64,
    ) -> Vec<Result<Claim, StateError>> {
        self.0.claim(s, ids, lease, now_ms).await
    }

    async fn confirm(&self, s: &str, ids: &[&str], now_ms: i64) -> Result<(), StateError> {
        self.0.confirm(s, ids, now_ms).await
    }

    async fn release(&self, _: &str, _: &[&str]) -> Result<(), StateError> {
        Err(StateError::Unavailable("injected".into()))
    }
}

#[tokio::test]
async fn when_raced_claims_cannot_be_released_the_retry_waits_out_their_lease() {
    let mut settings = config();
    settings.claim_lease_seconds = 15;
    let forwarder = forwarder(
        MemorySink::new(),
        OverQuotaReleaseFails(MemoryState::new()),
        settings,
    );
    let response = handle(
        &forwarder,
        &verifier(),
        &request(json!([started("c1")])),
        NOW,
        Deadline::NONE,
    )
    .await;
    assert_eq!(response.status_code, 429);
    assert_eq!(response.headers["retry-after"], "15");
    // After the lease the pending claim is taken over: the event is not lost.
    let inner = &forwarder.state().0;
    assert_eq!(
        inner.claim("sess-123", &["c1"], 15, NOW + 16_000).await,
        vec![Ok(Claim::New)]
    );
}
