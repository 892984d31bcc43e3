//! A deterministic simulation of the forward request's AWS round trips: the real `handle`, the
//! real EventBridge sink (batching, entry retries, backoff) and the in-memory state store, with
//! every call delayed by a latency drawn from in-region figures, on tokio's paused clock (no
//! sleeping: 10,000 requests take well under a second).
//!
//!     cargo run -p forward-api --example round_trips
//!
//! (An example, not a benchmark: the clock is virtual, so the figures do not depend on the
//! build profile, and the debug build the tests made is reused.)
//!
//! Latencies: each DynamoDB call 3–10 ms, each PutEvents call 10–40 ms (uniform; seed fixed).
//! A claim is one PutItem per event, issued at once as `DynamoState` does, so it lasts as long
//! as the slowest of them. Reported: p50/p99 of the request's wall time, the p99 of PutEvents
//! calls alone, and sequential round trips per request (the longest chain of store and bus
//! calls that ran one after another).
//!
//! Two runs: without faults, for the latency target (p99 of the request at most twice the p99 of
//! a PutEvents call), and with the failure cases of the README: 2 % of PutEvents entries fail
//! retryably and 0.5 % of calls fail whole (the sink retries; what still fails is
//! `publish_failed` and the client sends it again), one session goes over its quota (429; it
//! resends after `Retry-After`), and 1 % of answers are lost (the client resends the whole
//! request). After each run every event must have been published exactly once and acknowledged
//! to its client. (The sink's backoff jitter comes from its own random source, not this seed,
//! so the run with faults moves by a few milliseconds between runs; the other does not.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use eventfabric_core::eventbridge::{CallError, EntryResult};
use eventfabric_core::{BusEntry, Deadline, EventBridgeSink, PutEventsApi, RetryPolicy};
use eventfabric_registry::Registry;
use forward_api::auth::mint;
use forward_api::state::{Claim, QuotaDecision, StateError};
use forward_api::{
    CompiledTopics, ForwardConfig, Forwarder, MemoryState, SessionState, TokenVerifier, handle,
};
use serde_json::{Value, json};
use tokio::time::Instant;

const NOW: i64 = 1_767_225_600_000;
const SECRET: &[u8] = b"simulation-secret-of-at-least-32-bytes";
const REQUESTS: usize = 10_000;
const SESSIONS: usize = 200;
const EVENTS_PER_REQUEST: usize = 10;
/// The session that sends far more than its quota.
const GREEDY: usize = 0;

/// Shared by every simulated call: the seeded generator and the calls of the request in flight.
struct World {
    rng: fastrand::Rng,
    faults: bool,
    /// (start, end) of each AWS call of the current request.
    calls: Vec<(Instant, Instant)>,
    put_events_ms: Vec<f64>,
    /// Times each event id reached the bus.
    published: BTreeMap<String, u32>,
}

type Shared = Arc<Mutex<World>>;

fn latency(world: &Shared, from_ms: u64, to_ms: u64) -> Duration {
    let micros = world.lock().unwrap().rng.u64(from_ms * 1000..=to_ms * 1000);
    Duration::from_micros(micros)
}

/// One call: waits its latency and records when it ran.
async fn call(world: &Shared, duration: Duration) {
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    world.lock().unwrap().calls.push((start, Instant::now()));
}

/// The in-memory store behind DynamoDB's latencies.
struct SlowState {
    store: MemoryState,
    world: Shared,
}

impl SlowState {
    fn dynamodb(&self) -> Duration {
        latency(&self.world, 3, 10)
    }

    /// `n` concurrent single-item calls: as long as the slowest.
    fn dynamodb_many(&self, n: usize) -> Duration {
        (0..n.max(1)).map(|_| self.dynamodb()).max().unwrap()
    }
}

impl SessionState for SlowState {
    async fn consume_quota(
        &self,
        session_id: &str,
        events: u32,
        limit: u32,
        now_ms: i64,
    ) -> Result<QuotaDecision, StateError> {
        call(&self.world, self.dynamodb()).await;
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
        call(&self.world, self.dynamodb_many(ids.len())).await;
        self.store
            .claim(session_id, ids, lease_seconds, now_ms)
            .await
    }

    async fn confirm(&self, session_id: &str, ids: &[&str], now_ms: i64) -> Result<(), StateError> {
        // BatchWriteItem: 25 items per call, one after another.
        for _ in ids.chunks(25) {
            call(&self.world, self.dynamodb()).await;
        }
        self.store.confirm(session_id, ids, now_ms).await
    }

    async fn release(&self, session_id: &str, ids: &[&str]) -> Result<(), StateError> {
        call(&self.world, self.dynamodb_many(ids.len())).await;
        self.store.release(session_id, ids).await
    }
}

/// PutEvents with its latency and injected failures; records what reached the bus.
struct SlowPutEvents {
    world: Shared,
}

impl PutEventsApi for SlowPutEvents {
    async fn put_events(&self, batch: &[&BusEntry<'_>]) -> Result<Vec<EntryResult>, CallError> {
        let duration = latency(&self.world, 10, 40);
        call(&self.world, duration).await;
        let mut world = self.world.lock().unwrap();
        world.put_events_ms.push(duration.as_secs_f64() * 1000.0);
        if world.faults && world.rng.f64() < 0.005 {
            return Err(CallError {
                code: "ServiceUnavailable".into(),
                message: "injected".into(),
                retryable: true,
            });
        }
        Ok(batch
            .iter()
            .map(|entry| {
                if world.faults && world.rng.f64() < 0.02 {
                    EntryResult::Failed {
                        code: "InternalFailure".into(),
                        message: "injected".into(),
                    }
                } else {
                    *world.published.entry(entry.id.clone()).or_default() += 1;
                    EntryResult::Ok
                }
            })
            .collect())
    }
}

/// The longest chain of calls that ran one after another.
fn sequential_round_trips(calls: &[(Instant, Instant)]) -> usize {
    let mut calls = calls.to_vec();
    calls.sort_by_key(|&(_, end)| end);
    let mut chain = 0;
    let mut free_from = None;
    for (start, end) in calls {
        if free_from.is_none_or(|f| start >= f) {
            chain += 1;
            free_from = Some(end);
        }
    }
    chain
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn event(id: &str, ts: i64) -> Value {
    json!({"id": id, "ts": ts, "topic": "session.lifecycle.started",
           "payload": {"tenantId": "acme", "locale": "en-GB"}, "schemaVersion": "1.0.0"})
}

fn request(session: &str, token: &str, events: &[(String, i64)]) -> ApiGatewayV2httpRequest {
    let body = json!({
        "events": events.iter().map(|(id, ts)| event(id, *ts)).collect::<Vec<_>>(),
        "client": {"appVersion": "4.2.0", "sessionId": session, "tabId": "tab-1", "nonce": "n"},
    });
    let mut request = ApiGatewayV2httpRequest::default();
    request.body = Some(body.to_string());
    request
        .headers
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// The ids a 202 answer acknowledges: accepted now, or already forwarded by an earlier request
/// whose answer was lost. `publish_failed` events stay with the client, to be sent again; any
/// other rejection is a bug of the simulation's requests.
fn acknowledged_ids(response: &ApiGatewayV2httpResponse) -> Vec<String> {
    let Some(Body::Text(text)) = &response.body else {
        panic!("no body")
    };
    let body: Value = serde_json::from_str(text).unwrap();
    let mut done: Vec<String> = body["accepted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    for r in body["rejected"].as_array().unwrap() {
        match r["reason"].as_str().unwrap() {
            "already_forwarded" => done.push(r["id"].as_str().unwrap().to_owned()),
            "publish_failed" => {}
            other => panic!("unexpected rejection {other}: {r}"),
        }
    }
    done
}

/// Session `s`'s next request: the oldest events of its outbox, stamped just before `now_ms`.
fn next_request(
    s: usize,
    token: &str,
    outbox: &VecDeque<String>,
    now_ms: i64,
) -> ApiGatewayV2httpRequest {
    let events: Vec<(String, i64)> = outbox
        .iter()
        .take(EVENTS_PER_REQUEST)
        .map(|id| (id.clone(), now_ms - 200))
        .collect();
    request(&format!("sess-{s}"), token, &events)
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(simulate(false));
    runtime.block_on(simulate(true));
}

async fn simulate(faults: bool) {
    let world: Shared = Arc::new(Mutex::new(World {
        rng: fastrand::Rng::with_seed(20_261_128),
        faults,
        calls: Vec::new(),
        put_events_ms: Vec::new(),
        published: BTreeMap::new(),
    }));
    let topics = CompiledTopics::compile(&Registry::embedded().unwrap()).unwrap();
    let forwarder = Forwarder::new(
        topics,
        EventBridgeSink::new(
            SlowPutEvents {
                world: world.clone(),
            },
            RetryPolicy::default(),
        ),
        SlowState {
            store: MemoryState::new(),
            world: world.clone(),
        },
        ForwardConfig::with_buses("session-bus", None),
    );
    let verifier = TokenVerifier::new(SECRET).unwrap();
    let tokens: Vec<String> = (0..SESSIONS)
        .map(|s| mint(SECRET, &format!("sess-{s}"), NOW / 1000 + 86_400).unwrap())
        .collect();

    // Each session's events still to be acknowledged, oldest first; new ones are made as needed.
    let mut outbox: Vec<VecDeque<String>> = vec![VecDeque::new(); SESSIONS];
    // A session may not send before this (after a 429).
    let mut not_before = vec![Instant::now(); SESSIONS];
    let mut made = 0usize;
    let mut acknowledged: BTreeMap<String, u32> = BTreeMap::new();
    let (mut wall_ms, mut trips) = (Vec::new(), Vec::new());
    let (mut refused, mut lost_answers) = (0usize, 0usize);
    let start = Instant::now();
    let answer_budget = Duration::from_secs(10);

    let mut turn = 0usize;
    while wall_ms.len() < REQUESTS {
        // Round robin; with faults on, the greedy session takes every fifth turn.
        turn += 1;
        let s = if faults && turn % 5 == 0 {
            GREEDY
        } else {
            1 + turn % (SESSIONS - 1)
        };
        if Instant::now() < not_before[s] {
            continue;
        }
        while outbox[s].len() < EVENTS_PER_REQUEST {
            outbox[s].push_back(format!("s{s}-e{made}"));
            made += 1;
        }
        let now_ms = NOW + start.elapsed().as_millis() as i64;
        let request = next_request(s, &tokens[s], &outbox[s], now_ms);

        world.lock().unwrap().calls.clear();
        let began = Instant::now();
        let response = handle(
            &forwarder,
            &verifier,
            &request,
            now_ms,
            Deadline::after(answer_budget),
        )
        .await;
        wall_ms.push(began.elapsed().as_secs_f64() * 1000.0);
        trips.push(sequential_round_trips(&world.lock().unwrap().calls));

        if response.status_code == 429 {
            refused += 1;
            let seconds: u64 = response.headers["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            not_before[s] = Instant::now() + Duration::from_secs(seconds);
            continue;
        }
        assert_eq!(response.status_code, 202, "{:?}", response.body);
        if faults && world.lock().unwrap().rng.f64() < 0.01 {
            // The answer never reached the client: it sends the same events again.
            lost_answers += 1;
            continue;
        }
        let done = acknowledged_ids(&response);
        for id in done {
            *acknowledged.entry(id.clone()).or_default() += 1;
            outbox[s].retain(|e| *e != id);
        }
        // Spread requests over time as a busy fleet would: ~2 ms between arrivals.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // Drain: every session resends what is left until all of it is acknowledged.
    for s in 0..SESSIONS {
        let mut rounds = 0;
        while !outbox[s].is_empty() {
            rounds += 1;
            assert!(rounds < 100, "session {s} cannot get its events through");
            let wait = not_before[s].saturating_duration_since(Instant::now());
            tokio::time::sleep(wait).await;
            let now_ms = NOW + start.elapsed().as_millis() as i64;
            let request = next_request(s, &tokens[s], &outbox[s], now_ms);
            let response = handle(
                &forwarder,
                &verifier,
                &request,
                now_ms,
                Deadline::after(answer_budget),
            )
            .await;
            if response.status_code == 429 {
                tokio::time::sleep(Duration::from_secs(60)).await;
                continue;
            }
            let done = acknowledged_ids(&response);
            for id in done {
                *acknowledged.entry(id.clone()).or_default() += 1;
                outbox[s].retain(|e| *e != id);
            }
        }
    }

    let world = world.lock().unwrap();
    let lost: Vec<_> = acknowledged
        .keys()
        .filter(|id| !world.published.contains_key(*id))
        .collect();
    let doubled: Vec<_> = world.published.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(acknowledged.len(), made, "events never acknowledged");
    assert!(
        lost.is_empty(),
        "acknowledged but never published: {lost:?}"
    );
    assert!(doubled.is_empty(), "published more than once: {doubled:?}");

    wall_ms.sort_by(f64::total_cmp);
    let mut put_events = world.put_events_ms.clone();
    put_events.sort_by(f64::total_cmp);
    let mean_trips = trips.iter().sum::<usize>() as f64 / trips.len() as f64;
    let mut trip_counts = BTreeMap::new();
    for t in &trips {
        *trip_counts.entry(*t).or_insert(0usize) += 1;
    }
    let p99_put = percentile(&put_events, 99.0);
    let p99 = percentile(&wall_ms, 99.0);
    println!(
        "forward round trips, {}: {} requests simulated ({refused} refused with 429, {lost_answers} answers lost), {made} events",
        if faults { "with faults" } else { "no faults" },
        wall_ms.len()
    );
    println!(
        "  request wall time: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        percentile(&wall_ms, 50.0),
        p99,
        wall_ms[wall_ms.len() - 1]
    );
    if faults {
        println!(
            "  PutEvents call alone: p99 {p99_put:.1} ms (requests with failed entries wait for their retries: the latency target is for the run without faults)"
        );
    } else {
        let verdict = if p99 <= 2.0 * p99_put {
            "met"
        } else {
            "NOT met"
        };
        println!(
            "  PutEvents call alone: p99 {p99_put:.1} ms; target p99 <= 2 x that = {:.1} ms: {verdict}",
            2.0 * p99_put
        );
    }
    println!(
        "  sequential round trips per request: mean {mean_trips:.2}, distribution {trip_counts:?}"
    );
    println!("  every event published exactly once and acknowledged: yes ({made} events)");
}
