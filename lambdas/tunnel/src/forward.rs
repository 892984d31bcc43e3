//! The forwarding function: `ANY /tunnel/{agent}/{proxy+}` → pending item → the agent → wait
//! (pushed or polling, by the rollout) → the agent's answer to the caller.
//!
//! Answers: the agent's status, headers and body; 502 `agent_not_connected` when the agent
//! holds no connection (the item is deleted); 504 `agent_timeout` when no answer came by the
//! deadline (the item expires by TTL; a late answer is stored and nobody reads it); 503 when
//! the table is unavailable.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use metrics::counter;
use serde_json::json;
use tokio::time::Instant;

use crate::agent::{AgentLink, AgentRequest, BodyStore, Sent};
use crate::pending::{Pending, PendingStore, Status, StoredBody};
use crate::rollout::CachedRollout;
use crate::wait::{self, Backoff, WaitStats, Waited, WaiterChannel};
use eventfabric_core::parameter::ParameterSource;

/// A caller's request, as the HTTP API hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelRequest {
    pub request_id: String,
    pub agent_id: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Which way the request waited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Polling,
    EventDriven,
}

/// The caller's answer, and what it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelAnswer {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub path: Path,
    pub stats: WaitStats,
}

impl TunnelAnswer {
    fn error(status: u16, error: &str, message: &str, path: Path, stats: WaitStats) -> Self {
        let mut headers = BTreeMap::new();
        headers.insert("content-type".into(), "application/json".into());
        Self {
            status,
            headers,
            body: json!({"error": error, "message": message})
                .to_string()
                .into_bytes(),
            path,
            stats,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long the caller is kept waiting (under the HTTP API's 30 s).
    pub timeout: Duration,
    /// How long an item lives after its request (TTL).
    pub ttl: Duration,
    pub backoff: Backoff,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(25),
            ttl: Duration::from_secs(15 * 60),
            backoff: Backoff::default(),
        }
    }
}

pub struct Forwarder<P, A, W, R, B> {
    pub pending: P,
    pub agents: A,
    pub waiter: W,
    pub rollout: CachedRollout<R>,
    pub bodies: B,
    pub settings: Settings,
}

impl<P, A, W, R, B> Forwarder<P, A, W, R, B>
where
    P: PendingStore,
    A: AgentLink,
    W: WaiterChannel,
    R: ParameterSource,
    B: BodyStore,
{
    pub async fn forward(&self, request: TunnelRequest, now_ms: i64) -> TunnelAnswer {
        let deadline = Instant::now() + self.settings.timeout;
        let none = WaitStats::default();
        let rollout = self.rollout.current().await;
        let mut path = if rollout.event_driven(&request.request_id) {
            Path::EventDriven
        } else {
            Path::Polling
        };
        // The event-driven path needs this environment's connection; without one, poll.
        let mut waiter = None;
        if path == Path::EventDriven {
            match self.waiter.connection_id().await {
                Ok(id) => waiter = Some(id),
                Err(error) => {
                    tracing::warn!(%error, "no waiter connection; this request polls");
                    counter!("TunnelWaiterUnavailable").increment(1);
                    path = Path::Polling;
                }
            }
        }
        // The slot exists before the item: a push cannot come before it.
        let slot = waiter
            .as_ref()
            .map(|_| self.waiter.wakeups().register(&request.request_id));
        let item = Pending {
            request_id: request.request_id.clone(),
            agent_id: request.agent_id.clone(),
            status: Status::Pending,
            waiter,
            created_at: now_ms,
            expires_at: now_ms.div_euclid(1000) + self.settings.ttl.as_secs() as i64,
            completed_at: None,
            response: None,
        };
        if let Err(e) = self.pending.create(&item).await {
            self.waiter.wakeups().forget(&request.request_id);
            tracing::error!(error = %e, "pending item not created");
            return TunnelAnswer::error(
                503,
                "unavailable",
                "the tunnel cannot take requests now; retry",
                path,
                none,
            );
        }
        let to_agent = AgentRequest {
            request_id: request.request_id.clone(),
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
            body: STANDARD.encode(&request.body),
        };
        match self.agents.send(&request.agent_id, &to_agent, now_ms).await {
            Ok(Sent::Sent { .. }) => {}
            outcome => {
                self.waiter.wakeups().forget(&request.request_id);
                let _ = self.pending.delete(&request.request_id).await;
                return match outcome {
                    Ok(_) => TunnelAnswer::error(
                        502,
                        "agent_not_connected",
                        "the agent is not connected",
                        path,
                        none,
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "request not sent to the agent");
                        TunnelAnswer::error(
                            502,
                            "agent_unreachable",
                            "the request could not be sent to the agent",
                            path,
                            none,
                        )
                    }
                };
            }
        }
        let (waited, stats) = match slot {
            Some(slot) => {
                wait::until_pushed(
                    &self.pending,
                    &request.request_id,
                    slot,
                    self.waiter.wakeups(),
                    deadline,
                )
                .await
            }
            None => {
                wait::poll(
                    &self.pending,
                    &request.request_id,
                    deadline,
                    self.settings.backoff,
                )
                .await
            }
        };
        counter!("TunnelRequests", "path" => match path { Path::Polling => "polling", Path::EventDriven => "event_driven" })
            .increment(1);
        match waited {
            Waited::Answered(item) => self.answer(*item, path, stats).await,
            Waited::TimedOut => {
                counter!("TunnelTimeouts").increment(1);
                TunnelAnswer::error(
                    504,
                    "agent_timeout",
                    "the agent did not answer in time",
                    path,
                    stats,
                )
            }
            Waited::Missing => {
                TunnelAnswer::error(504, "agent_timeout", "the request expired", path, stats)
            }
            Waited::Failed(e) => {
                tracing::error!(error = %e, "answer not read");
                TunnelAnswer::error(
                    503,
                    "unavailable",
                    "the answer could not be read; retry",
                    path,
                    stats,
                )
            }
        }
    }

    async fn answer(&self, item: Pending, path: Path, stats: WaitStats) -> TunnelAnswer {
        let Some(response) = item.response else {
            return TunnelAnswer::error(
                502,
                "bad_agent_answer",
                "the stored answer is empty",
                path,
                stats,
            );
        };
        let body = match &response.body {
            StoredBody::Inline { base64, .. } => STANDARD.decode(base64).map_err(|e| e.to_string()),
            StoredBody::S3 { key, .. } => self.bodies.get(key).await,
        };
        match body {
            Ok(body) => TunnelAnswer {
                status: response.status,
                headers: response.headers,
                body,
                path,
                stats,
            },
            Err(e) => {
                tracing::error!(error = %e, "stored body not read");
                TunnelAnswer::error(
                    503,
                    "unavailable",
                    "the answer's body could not be read; retry",
                    path,
                    stats,
                )
            }
        }
    }
}
