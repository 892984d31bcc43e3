//! The whole tunnel in memory, on tokio's clock: the real forwarder, waiters, agent `response`
//! route and stream notifier, with simulated agents (answering after a latency), a simulated
//! DynamoDB stream (the table's changes reach the notifier as Lambda DynamoDB events after a
//! delay) and a simulated management API (the notifier's push reaches the waiter after a
//! latency). Under a paused clock (`#[tokio::test(start_paused = true)]`, or a runtime built
//! with `start_paused`) nothing sleeps for real and a run is deterministic: the failure-case
//! tests and `examples/simulate.rs` both drive it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eventfabric_core::publish::{BusNames, Publisher};
use eventfabric_core::{Deadline, MemorySink};
use eventfabric_websocket::push::{ConnectionApi, PostError};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::agent::{self, AgentLink, AgentRequest, MemoryBodies, Sent};
use crate::forward::{Forwarder, Settings, TunnelAnswer, TunnelRequest};
use crate::notifier::Notifier;
use crate::pending::{Change, MemoryPending};
use crate::rollout::{MemoryRollout, Rollout, cached};
use crate::wait::{MemoryWaiter, Wake};

/// How the simulated world behaves.
#[derive(Debug, Clone)]
pub struct Conditions {
    /// Each table call.
    pub table_latency: Duration,
    /// From a table write to the notifier's invocation (stream and event source mapping)...
    pub stream_delay: Duration,
    /// ...plus up to this much more, spread evenly over the records (deterministic).
    pub stream_jitter: Duration,
    /// From the notifier's post to the waiter's socket.
    pub push_latency: Duration,
    /// Pushes never arrive (a lost push).
    pub drop_pushes: bool,
    /// Every push arrives twice.
    pub duplicate_pushes: bool,
    /// The waiter's connection is closed: posts answer 410.
    pub waiter_gone: bool,
    /// The response route pushes the wake-up itself (else only the stream notifier does).
    pub direct_wake: bool,
}

impl Default for Conditions {
    fn default() -> Self {
        Self {
            table_latency: Duration::from_millis(5),
            stream_delay: Duration::from_millis(150),
            stream_jitter: Duration::ZERO,
            push_latency: Duration::from_millis(15),
            drop_pushes: false,
            duplicate_pushes: false,
            waiter_gone: false,
            direct_wake: true,
        }
    }
}

/// How long the agent takes to answer a request (`None`: it never does).
pub type AgentLatency = dyn Fn(&str) -> Option<Duration> + Send + Sync;

/// Agents that answer each request after the latency the test or simulation gives (`None`:
/// never), through the real `response` route.
pub struct SimAgents {
    pending: Arc<MemoryPending>,
    bodies: Arc<MemoryBodies>,
    latency: Arc<AgentLatency>,
    /// The response route's direct wake-up (none when the conditions turn it off).
    push: Option<Arc<SimPush>>,
    /// When each request's answer was stored.
    pub completed: Arc<Mutex<HashMap<String, Instant>>>,
}

impl AgentLink for SimAgents {
    async fn send(
        &self,
        agent_id: &str,
        request: &AgentRequest,
        _now_ms: i64,
    ) -> Result<Sent, String> {
        if agent_id == "offline" {
            return Ok(Sent::NotConnected);
        }
        let Some(latency) = (self.latency)(&request.request_id) else {
            return Ok(Sent::Sent {
                connection_id: format!("agent-{agent_id}"),
            });
        };
        let (pending, bodies, completed) = (
            self.pending.clone(),
            self.bodies.clone(),
            self.completed.clone(),
        );
        let push = self.push.clone();
        let (agent, request) = (agent_id.to_owned(), request.clone());
        tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            let body = STANDARD.encode(format!("answer to {} {}", request.method, request.path));
            let message =
                json!({"action": "response", "requestId": request.request_id, "status": 200,
                "headers": {"content-type": "text/plain"}, "body": body})
                .to_string();
            let answer = match &push {
                Some(push) => {
                    agent::respond(&*pending, &*bodies, &**push, &agent, &message, 0).await
                }
                None => agent::respond(&*pending, &*bodies, &NoPush, &agent, &message, 0).await,
            };
            if answer.status == 200 {
                completed
                    .lock()
                    .expect("lock")
                    .insert(request.request_id.clone(), Instant::now());
            }
        });
        Ok(Sent::Sent {
            connection_id: format!("agent-{agent_id}"),
        })
    }
}

/// A management API that has no connections (the direct wake-up turned off).
pub struct NoPush;

impl ConnectionApi for NoPush {
    async fn post(&self, _connection_id: &str, _data: &[u8]) -> Result<(), PostError> {
        Err(PostError::Gone)
    }
}

/// The management API as the notifier and the response route see it: a post to the waiter's connection reaches its
/// wake-ups after the push latency.
pub struct SimPush {
    waiter: Arc<MemoryWaiter>,
    conditions: Conditions,
    pub posts: Mutex<u64>,
}

impl ConnectionApi for SimPush {
    async fn post(&self, connection_id: &str, data: &[u8]) -> Result<(), PostError> {
        *self.posts.lock().expect("lock") += 1;
        if self.conditions.waiter_gone || connection_id != self.waiter.id {
            return Err(PostError::Gone);
        }
        let request_id = serde_json::from_slice::<Value>(data)
            .ok()
            .and_then(|m| m["requestId"].as_str().map(str::to_owned))
            .unwrap_or_default();
        if self.conditions.drop_pushes {
            return Ok(());
        }
        let (waiter, latency, twice) = (
            self.waiter.clone(),
            self.conditions.push_latency,
            self.conditions.duplicate_pushes,
        );
        tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            waiter.wakeups.wake(&request_id);
            if twice {
                assert_eq!(
                    waiter.wakeups.wake(&request_id),
                    Wake::NoWaiter,
                    "a duplicate push finds no waiter"
                );
            }
        });
        Ok(())
    }
}

pub type SimForwarder =
    Forwarder<Arc<MemoryPending>, SimAgents, Arc<MemoryWaiter>, MemoryRollout, Arc<MemoryBodies>>;

/// The simulated tunnel.
pub struct World {
    pub pending: Arc<MemoryPending>,
    pub bodies: Arc<MemoryBodies>,
    pub waiter: Arc<MemoryWaiter>,
    pub forwarder: Arc<SimForwarder>,
    pub notifier: Arc<Notifier<MemorySink, SimPush>>,
    pub completed: Arc<Mutex<HashMap<String, Instant>>>,
    /// Notifier invocations so far.
    pub notifier_batches: Arc<Mutex<u64>>,
}

impl World {
    /// A world whose agents answer after `latency(request_id)`, under `rollout`.
    pub fn new(
        rollout: Rollout,
        settings: Settings,
        conditions: Conditions,
        latency: impl Fn(&str) -> Option<Duration> + Send + Sync + 'static,
    ) -> World {
        let pending = Arc::new(MemoryPending::with_latency(conditions.table_latency));
        let bodies = Arc::new(MemoryBodies::new());
        let waiter = Arc::new(MemoryWaiter::new("waiter-connection-1"));
        let completed = Arc::new(Mutex::new(HashMap::new()));
        let push = Arc::new(SimPush {
            waiter: waiter.clone(),
            conditions: conditions.clone(),
            posts: Mutex::new(0),
        });
        let agents = SimAgents {
            pending: pending.clone(),
            bodies: bodies.clone(),
            latency: Arc::new(latency),
            push: conditions.direct_wake.then(|| push.clone()),
            completed: completed.clone(),
        };
        let forwarder = Arc::new(Forwarder {
            pending: pending.clone(),
            agents,
            waiter: waiter.clone(),
            rollout: cached(MemoryRollout::new(rollout), Duration::from_secs(30)),
            bodies: bodies.clone(),
            settings,
        });
        let notifier = Arc::new(Notifier {
            publisher: Publisher::new(
                MemorySink::default(),
                BusNames::new([("app", "eventfabric-dev-app")]),
            ),
            api: SimPush {
                waiter: waiter.clone(),
                conditions: conditions.clone(),
                posts: Mutex::new(0),
            },
        });
        let notifier_batches = Arc::new(Mutex::new(0));
        // The table's stream: each change reaches the notifier as a one-record Lambda event
        // after the stream delay (the mapping's filter: MODIFY to completed).
        let mut changes = pending.stream();
        let (n, batches) = (notifier.clone(), notifier_batches.clone());
        let (base, jitter) = (conditions.stream_delay, conditions.stream_jitter);
        tokio::spawn(async move {
            let mut sequence = 0u64;
            while let Some(change) = changes.recv().await {
                sequence += 1;
                if !passes_filter(&change) {
                    continue;
                }
                let event = stream_event(&change, sequence);
                let (n, batches) = (n.clone(), batches.clone());
                let spread = (sequence.wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
                let delay = base + jitter.mul_f64(spread);
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    *batches.lock().expect("lock") += 1;
                    let report = n
                        .handle(&event, Deadline::after(Duration::from_secs(10)))
                        .await;
                    assert!(
                        report
                            .outcomes
                            .dynamodb_response()
                            .batch_item_failures
                            .is_empty()
                    );
                });
            }
        });
        World {
            pending,
            bodies,
            waiter,
            forwarder,
            notifier,
            completed,
            notifier_batches,
        }
    }

    /// A caller's `GET /status` to `agent`.
    pub async fn call(&self, request_id: &str, agent: &str) -> TunnelAnswer {
        self.spawn_call(request_id, agent, "/status")
            .await
            .expect("the call")
    }

    /// A caller's `GET <path>` to `agent`, running while the test plays the agent's part.
    pub fn spawn_call(
        &self,
        request_id: &str,
        agent: &str,
        path: &str,
    ) -> tokio::task::JoinHandle<TunnelAnswer> {
        let request = TunnelRequest {
            request_id: request_id.to_owned(),
            agent_id: agent.to_owned(),
            method: "GET".into(),
            path: path.into(),
            query: String::new(),
            headers: Default::default(),
            body: Vec::new(),
        };
        let forwarder = self.forwarder.clone();
        tokio::spawn(async move { forwarder.forward(request, 1_796_500_000_000).await })
    }

    /// Events the notifier published.
    pub fn published(&self) -> usize {
        self.notifier.publisher.sink().published().len()
    }
}

/// The event source mapping's filter: MODIFY with the new status `completed`.
fn passes_filter(change: &Change) -> bool {
    matches!((&change.old, &change.new), (Some(_), Some(new)) if new.status == crate::pending::Status::Completed)
}

/// A one-record DynamoDB stream event, as Lambda delivers it.
pub fn stream_event(change: &Change, sequence: u64) -> aws_lambda_events::dynamodb::Event {
    let image = |p: &Option<crate::pending::Pending>| match p {
        Some(p) => serde_json::to_value(
            serde_dynamo::to_item::<_, serde_dynamo::Item>(p).expect("an item"),
        )
        .expect("JSON"),
        None => json!({}),
    };
    let name = match (&change.old, &change.new) {
        (None, Some(_)) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        _ => "REMOVE",
    };
    serde_json::from_value(json!({"Records": [{
        "eventID": format!("ev-{sequence}"),
        "eventName": name,
        "eventSource": "aws:dynamodb",
        "awsRegion": "eu-west-1",
        "dynamodb": {
            "Keys": {"requestId": {"S": change.new.as_ref().or(change.old.as_ref()).map(|p| p.request_id.clone()).unwrap_or_default()}},
            "NewImage": image(&change.new),
            "OldImage": image(&change.old),
            "SequenceNumber": format!("{sequence:021}"),
            "SizeBytes": 200,
            "StreamViewType": "NEW_AND_OLD_IMAGES"
        }
    }]}))
    .expect("a stream event")
}
