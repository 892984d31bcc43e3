//! The agent's side: sending it a request over the WebSocket API, and its `response` route.
//!
//! An agent connects with its own signed token (the agent id is the token's subject, through
//! the shared `$connect` authorizer). A request goes to its newest open connection as
//! `{"type": "request", "requestId", "method", "path", "query", "headers", "body"}` (body
//! base64). The agent answers with
//! `{"action": "response", "requestId", "status", "headers"?, "body"?}` (body base64). The
//! answer is stored only for a request of this agent that is still pending; a body over
//! [`INLINE_BODY_BYTES`] goes to the bodies bucket and the item holds its key.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use eventfabric_websocket::connections::ConnectionStore;
use eventfabric_websocket::push::{ConnectionApi, PostError};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::pending::{Completion, PendingStore, StoredBody, StoredResponse};

/// Largest body kept in the item (DynamoDB items are at most 400 KB; base64 adds a third).
pub const INLINE_BODY_BYTES: usize = 64 * 1024;

/// A request as the agent receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentRequest {
    pub request_id: String,
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Base64.
    #[serde(default)]
    pub body: String,
}

/// What sending to an agent did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Sent {
        connection_id: String,
    },
    /// The agent holds no open connection.
    NotConnected,
}

/// Sends a request to an agent.
pub trait AgentLink: Send + Sync {
    fn send(
        &self,
        agent_id: &str,
        request: &AgentRequest,
        now_ms: i64,
    ) -> impl Future<Output = Result<Sent, String>> + Send;
}

/// To the agent's newest open connection through the management API; a connection that
/// answers 410 is deleted and the next newest tried.
pub struct WebSocketAgents<S, A> {
    pub connections: S,
    pub api: A,
}

impl<S: ConnectionStore, A: ConnectionApi> AgentLink for WebSocketAgents<S, A> {
    async fn send(
        &self,
        agent_id: &str,
        request: &AgentRequest,
        now_ms: i64,
    ) -> Result<Sent, String> {
        let mut open = self
            .connections
            .open_of(agent_id, now_ms)
            .await
            .map_err(|e| e.to_string())?;
        open.sort_by_key(|c| std::cmp::Reverse(c.connected_at));
        let mut message = serde_json::to_value(request).map_err(|e| e.to_string())?;
        message["type"] = json!("request");
        let bytes = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
        for connection in open {
            match self.api.post(&connection.connection_id, &bytes).await {
                Ok(()) => {
                    return Ok(Sent::Sent {
                        connection_id: connection.connection_id,
                    });
                }
                Err(PostError::Gone) => {
                    let _ = self.connections.delete(&connection.connection_id).await;
                }
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(Sent::NotConnected)
    }
}

/// Agents in memory: what each was sent; an agent not marked connected is not.
#[derive(Debug, Default)]
pub struct MemoryAgents {
    connected: Mutex<Vec<String>>,
    sent: Mutex<Vec<(String, AgentRequest)>>,
}

impl MemoryAgents {
    pub fn new(connected: &[&str]) -> Self {
        Self {
            connected: Mutex::new(connected.iter().map(|s| s.to_string()).collect()),
            sent: Mutex::default(),
        }
    }

    pub fn sent(&self) -> Vec<(String, AgentRequest)> {
        self.sent.lock().expect("lock").clone()
    }
}

impl AgentLink for MemoryAgents {
    async fn send(
        &self,
        agent_id: &str,
        request: &AgentRequest,
        _now_ms: i64,
    ) -> Result<Sent, String> {
        if !self
            .connected
            .lock()
            .expect("lock")
            .iter()
            .any(|a| a == agent_id)
        {
            return Ok(Sent::NotConnected);
        }
        self.sent
            .lock()
            .expect("lock")
            .push((agent_id.to_owned(), request.clone()));
        Ok(Sent::Sent {
            connection_id: format!("conn-{agent_id}"),
        })
    }
}

/// Where bodies too large for the item go (the KMS-encrypted bodies bucket).
pub trait BodyStore: Send + Sync {
    fn put(&self, key: &str, body: &[u8]) -> impl Future<Output = Result<(), String>> + Send;
    fn get(&self, key: &str) -> impl Future<Output = Result<Vec<u8>, String>> + Send;
}

#[derive(Debug, Default)]
pub struct MemoryBodies {
    items: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBodies {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn keys(&self) -> Vec<String> {
        self.items.lock().expect("lock").keys().cloned().collect()
    }
}

impl BodyStore for MemoryBodies {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), String> {
        self.items
            .lock()
            .expect("lock")
            .insert(key.to_owned(), body.to_vec());
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        self.items
            .lock()
            .expect("lock")
            .get(key)
            .cloned()
            .ok_or_else(|| format!("no body at {key}"))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ResponseMessage {
    #[allow(dead_code)]
    action: String,
    request_id: String,
    status: u16,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    body: String,
}

/// The `response` route's answer to the agent: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteAnswer {
    pub status: i64,
    pub body: Value,
}

fn refused(status: i64, message: impl Into<String>) -> RouteAnswer {
    RouteAnswer {
        status,
        body: json!({"type": "error", "message": message.into()}),
    }
}

/// The wake-up a waiter receives: `{"type": "response_ready", "requestId"}`.
pub fn wake_up(request_id: &str) -> Vec<u8> {
    json!({"type": "response_ready", "requestId": request_id})
        .to_string()
        .into_bytes()
}

/// Stores agent `agent_id`'s answer (`message`, the route's body), then wakes the waiting
/// invocation directly through `waker` (the management API) when the item names its
/// connection. That push is the fast path; the stream notifier pushes again as the backup
/// (a failure here is logged, not the agent's problem: its answer is stored).
pub async fn respond<P: PendingStore, B: BodyStore, W: ConnectionApi>(
    pending: &P,
    bodies: &B,
    waker: &W,
    agent_id: &str,
    message: &str,
    now_ms: i64,
) -> RouteAnswer {
    let m: ResponseMessage = match serde_json::from_str(message) {
        Ok(m) => m,
        Err(e) => {
            return refused(
                400,
                format!(
                    "send {{\"action\":\"response\",\"requestId\",\"status\",\"headers\"?,\"body\"? (base64)}}: {e}"
                ),
            );
        }
    };
    // A DynamoDB key and part of an S3 key: bounded, visible ASCII, as every request id the
    // forwarder makes.
    if !eventfabric_websocket::valid_principal(&m.request_id) {
        return refused(400, "requestId: 1–128 visible ASCII characters");
    }
    if m.headers.len() > 100
        || m.headers.iter().any(|(k, v)| {
            k.is_empty()
                || k.len() > 256
                || v.len() > 8192
                || k.chars().chain(v.chars()).any(char::is_control)
        })
    {
        return refused(
            400,
            "headers: at most 100, names 1–256 and values up to 8,192 characters, no control characters",
        );
    }
    if !(100..=599).contains(&m.status) {
        return refused(400, format!("status {} is not an HTTP status", m.status));
    }
    let body = match STANDARD.decode(m.body.as_bytes()) {
        Ok(b) => b,
        Err(e) => return refused(400, format!("body: not base64: {e}")),
    };
    let stored = if body.len() <= INLINE_BODY_BYTES {
        StoredBody::Inline {
            base64: m.body.clone(),
            bytes: body.len() as u64,
        }
    } else {
        let key = format!("responses/{}/{}", agent_id, m.request_id);
        if let Err(e) = bodies.put(&key, &body).await {
            tracing::error!(request = %m.request_id, error = %e, "body not stored");
            return refused(500, "the response body could not be stored; send it again");
        }
        StoredBody::S3 {
            key,
            bytes: body.len() as u64,
        }
    };
    let response = StoredResponse {
        status: m.status,
        headers: m.headers,
        body: stored,
    };
    match pending
        .complete(&m.request_id, agent_id, &response, now_ms)
        .await
    {
        Ok(Completion::Completed { waiter }) => {
            if let Some(waiter) = waiter
                && let Err(e) = waker.post(&waiter, &wake_up(&m.request_id)).await
            {
                tracing::warn!(request = %m.request_id, error = %e, "direct wake-up not delivered; the stream notifier pushes again");
            }
            RouteAnswer {
                status: 200,
                body: json!({"type": "accepted", "requestId": m.request_id}),
            }
        }
        Ok(Completion::AlreadyCompleted) => RouteAnswer {
            status: 200,
            body: json!({"type": "accepted", "requestId": m.request_id, "duplicate": true}),
        },
        Ok(Completion::Unknown) => refused(
            404,
            format!(
                "no pending request {} for this agent (expired or never sent)",
                m.request_id
            ),
        ),
        Err(e) => {
            tracing::error!(request = %m.request_id, error = %e, "answer not stored");
            refused(500, "the answer could not be stored; send it again")
        }
    }
}

impl<T: BodyStore> BodyStore for std::sync::Arc<T> {
    async fn put(&self, key: &str, body: &[u8]) -> Result<(), String> {
        (**self).put(key, body).await
    }
    async fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        (**self).get(key).await
    }
}
