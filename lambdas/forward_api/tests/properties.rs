//! Properties of the request reader and the per-event checks, over numbers from the whole
//! integer range and ids of any length and content: no panic; a 202 gives every event exactly
//! one documented outcome; nothing is forwarded without a claim the store took (the in-memory
//! store refuses keys DynamoDB would refuse); a repeated request sends nothing again.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use common::{LOCAL_SECRET, NOW, body_json, config, fixture, forwarder};
use eventfabric_core::{Deadline, MemorySink};
use forward_api::auth::mint;
use forward_api::request::id_problem;
use forward_api::state::{Claim, QuotaDecision, StateError};
use forward_api::{MemoryState, RejectReason, SessionState, TokenVerifier, handle};
use proptest::prelude::*;

/// The in-memory store, recording which ids it let through as new claims.
#[derive(Default)]
struct Recording {
    store: MemoryState,
    claimed: Mutex<BTreeSet<String>>,
}

impl SessionState for Recording {
    async fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> Result<QuotaDecision, StateError> {
        self.store
            .consume_quota(session_id, events, limit, now_ms)
            .await
    }

    async fn claim(
        &self,
        session_id: &str,
        ids: &[&str],
        lease_seconds: i64,
        now_ms: i64,
    ) -> Vec<Result<Claim, StateError>> {
        let results = self
            .store
            .claim(session_id, ids, lease_seconds, now_ms)
            .await;
        let mut claimed = self.claimed.lock().unwrap();
        for (id, result) in ids.iter().zip(&results) {
            if result == &Ok(Claim::New) {
                claimed.insert((*id).to_owned());
            }
        }
        results
    }

    async fn confirm(&self, s: &str, ids: &[&str], now_ms: i64) -> Result<(), StateError> {
        self.store.confirm(s, ids, now_ms).await
    }

    async fn release(&self, s: &str, ids: &[&str]) -> Result<(), StateError> {
        self.store.release(s, ids).await
    }
}

/// An id: usual ones, ones at and past the limit, huge ones, any characters, and a small pool
/// so that requests repeat ids.
fn id() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{1,16}",
        "[!-~]{120,136}",
        (2000usize..5000).prop_map(|n| "x".repeat(n)),
        "\\PC{0,40}",
        ".{0,10}",
        prop::sample::select(vec!["dup-a".to_owned(), "dup-b".to_owned(), String::new()]),
    ]
}

/// A `ts` as JSON text: any i64, any u64, near now, out-of-range and fractional numbers, and
/// strings.
fn ts() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        (-200_000i64..200_000).prop_map(|d| (NOW + d).to_string()),
        prop::sample::select(vec![
            "1e400".to_owned(),
            "-1e400".to_owned(),
            "0.5".to_owned(),
            "-0".to_owned(),
            "\"2026-01-01T00:00:00Z\"".to_owned(),
            "\"0000-01-01T00:00:00Z\"".to_owned(),
            "\"9999-12-31T23:59:59Z\"".to_owned(),
            "\"yesterday\"".to_owned(),
            "null".to_owned(),
            "[]".to_owned(),
        ]),
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "session.lifecycle.started".to_owned(),
            "session.ended".to_owned(),
            "debug.console.captured".to_owned(),
            "session.teleported".to_owned(),
        ]),
        "\\PC{0,20}",
    ]
}

fn payload() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(r#"{"tenantId": "acme", "locale": "en"}"#.to_owned()),
        any::<i64>().prop_map(|n| format!(r#"{{"tenantId": "acme", "locale": "en", "n": {n}}}"#)),
        any::<u64>().prop_map(|n| format!(
            r#"{{"tenantId": "acme", "durationMs": {n}, "reason": "closed"}}"#
        )),
        Just("[]".to_owned()),
    ]
}

/// One element of `events` as JSON text: an event (its fields possibly left out) or not an
/// object at all.
fn event() -> impl Strategy<Value = String> {
    let envelope = (
        id(),
        ts(),
        topic(),
        payload(),
        prop::sample::select(vec!["1.0.0", "2.0.0", "1", "x"]),
        any::<bool>(),
    )
        .prop_map(|(id, ts, topic, payload, version, with_ts)| {
            let id = serde_json::to_string(&id).unwrap();
            let topic = serde_json::to_string(&topic).unwrap();
            let ts = if with_ts {
                format!(r#""ts": {ts}, "#)
            } else {
                String::new()
            };
            format!(
                r#"{{"id": {id}, {ts}"topic": {topic}, "payload": {payload}, "schemaVersion": "{version}"}}"#
            )
        });
    prop_oneof![
        9 => envelope,
        1 => prop::sample::select(vec!["3".to_owned(), "null".to_owned(), "\"e\"".to_owned()]),
    ]
}

fn request(events: &[String], session_id: &str) -> ApiGatewayV2httpRequest {
    let mut request = fixture();
    let client = serde_json::json!({
        "appVersion": "4.2.0", "sessionId": session_id, "tabId": "tab-1", "nonce": "n"
    });
    request.body = Some(format!(
        r#"{{"events": [{}], "client": {client}}}"#,
        events.join(",")
    ));
    let token = mint(LOCAL_SECRET, session_id, NOW / 1000 + 600).unwrap();
    request
        .headers
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn every_event_gets_exactly_one_documented_outcome(
        events in prop::collection::vec(event(), 1..20),
    ) {
        let forwarder = forwarder(MemorySink::new(), Recording::default(), config());
        let verifier = TokenVerifier::new(LOCAL_SECRET).unwrap();
        let request = request(&events, "sess-123");
        let rt = runtime();
        let response = rt.block_on(handle(&forwarder, &verifier, &request, NOW, Deadline::NONE));
        prop_assert_eq!(response.status_code, 202);
        let body = body_json(&response);
        let accepted: Vec<&str> = body["accepted"].as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
        let rejected = body["rejected"].as_array().unwrap();
        prop_assert_eq!(accepted.len() + rejected.len(), events.len(), "{}", body);
        let indices: BTreeSet<u64> = rejected.iter().map(|r| r["index"].as_u64().unwrap()).collect();
        prop_assert_eq!(indices.len(), rejected.len(), "an index twice: {}", body);
        prop_assert!(indices.iter().all(|&i| (i as usize) < events.len()));
        let reasons: BTreeSet<&str> = RejectReason::ALL.iter().map(|r| r.as_str()).collect();
        for r in rejected {
            prop_assert!(reasons.contains(r["reason"].as_str().unwrap()), "{}", r);
            prop_assert!(r["detail"].as_str().unwrap().len() <= 303, "{}", r);
            if let Some(id) = r["id"].as_str() {
                prop_assert_eq!(id_problem(id), None, "an invalid id quoted back: {}", r);
            }
        }
        // Accepted: valid ids, each once, each published once, each claimed as new first.
        let unique: BTreeSet<&str> = accepted.iter().copied().collect();
        prop_assert_eq!(unique.len(), accepted.len());
        let claimed = forwarder.state().claimed.lock().unwrap().clone();
        let published = forwarder.sink().take();
        prop_assert_eq!(published.len(), accepted.len());
        for entry in &published {
            prop_assert_eq!(id_problem(&entry.id), None);
            prop_assert!(claimed.contains(&entry.id), "published without a claim: {}", entry.id);
            prop_assert!(unique.contains(entry.id.as_str()));
        }

        // The same request again: nothing is sent twice.
        let again = rt.block_on(handle(&forwarder, &verifier, &request, NOW, Deadline::NONE));
        let again = body_json(&again);
        prop_assert!(forwarder.sink().published().is_empty(), "sent twice: {}", again);
        let mut count = BTreeMap::new();
        for r in again["rejected"].as_array().unwrap() {
            *count.entry(r["reason"].as_str().unwrap().to_owned()).or_insert(0usize) += 1;
        }
        prop_assert_eq!(count.get("already_forwarded").copied().unwrap_or(0), accepted.len(), "{}", again);
    }

    #[test]
    fn any_session_id_is_answered_202_or_400_never_stored_when_invalid(
        session_id in prop_oneof!["[!-~]{1,140}", "\\PC{0,200}", (1000usize..4000).prop_map(|n| "s".repeat(n))],
    ) {
        let forwarder = forwarder(MemorySink::new(), Recording::default(), config());
        let verifier = TokenVerifier::new(LOCAL_SECRET).unwrap();
        let event = format!(r#"{{"id": "e1", "ts": {NOW}, "topic": "session.lifecycle.started", "payload": {{"tenantId": "acme", "locale": "en"}}, "schemaVersion": "1.0.0"}}"#);
        let request = request(&[event], &session_id);
        let response = runtime().block_on(handle(&forwarder, &verifier, &request, NOW, Deadline::NONE));
        match id_problem(&session_id) {
            None => prop_assert_eq!(response.status_code, 202),
            Some(_) => {
                prop_assert_eq!(response.status_code, 400);
                let message = body_json(&response)["message"].as_str().unwrap().to_owned();
                prop_assert!(message.starts_with("client.sessionId: "), "{}", message);
                prop_assert!(forwarder.state().claimed.lock().unwrap().is_empty());
                prop_assert!(forwarder.sink().published().is_empty());
            }
        }
    }
}
