//! The pending requests table: one item per tunnelled request, from the moment the forwarding
//! function accepts it until its TTL.
//!
//! Table `eventfabric-<env>-tunnel-pending` (`pending_requests` in the plan): partition key
//! `requestId`; TTL `expiresAt`; stream `NEW_AND_OLD_IMAGES`, which the notifier reads. An item
//! is created `pending` with the agent it is for and, on the event-driven path, the WebSocket
//! connection of the waiting invocation (`waiter`); the agent's answer moves it to `completed`
//! once, on condition that it is still `pending` and the answering agent is its agent.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Completed,
}

/// Where a stored answer's body is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoredBody {
    /// In the item, base64 (binary-safe).
    Inline { base64: String, bytes: u64 },
    /// In the bodies bucket: too large for the item.
    S3 { key: String, bytes: u64 },
}

impl StoredBody {
    pub fn bytes(&self) -> u64 {
        match self {
            StoredBody::Inline { bytes, .. } | StoredBody::S3 { bytes, .. } => *bytes,
        }
    }
}

/// The agent's answer as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: StoredBody,
}

/// One pending request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub request_id: String,
    pub agent_id: String,
    pub status: Status,
    /// The WebSocket connection of the waiting invocation (event-driven path): where the
    /// notifier pushes the wake-up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiter: Option<String>,
    /// Epoch milliseconds.
    pub created_at: i64,
    /// Epoch seconds (DynamoDB TTL).
    pub expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<StoredResponse>,
}

/// What completing a request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// Stored; `waiter` is the waiting invocation's connection, when it has one.
    Completed { waiter: Option<String> },
    /// It was completed before (a repeated answer): nothing changed.
    AlreadyCompleted,
    /// No such request for this agent (expired, never made, or another agent's).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the pending requests table is unavailable: {0}")]
    Unavailable(String),
    #[error("the pending requests table refused the call: {0}")]
    Refused(String),
    #[error("a request with this id is already pending")]
    Exists,
}

impl From<SdkFailure> for StoreError {
    fn from(f: SdkFailure) -> Self {
        match f {
            SdkFailure::Transient(m) => StoreError::Unavailable(m),
            SdkFailure::Refused(m) => StoreError::Refused(m),
        }
    }
}

pub trait PendingStore: Send + Sync {
    /// Creates the item, on condition that there is none with its id.
    fn create(&self, pending: &Pending) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// A strongly consistent read.
    fn get(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<Pending>, StoreError>> + Send;
    /// Stores the answer, on condition that the request is `agent_id`'s and still pending.
    fn complete(
        &self,
        request_id: &str,
        agent_id: &str,
        response: &StoredResponse,
        now_ms: i64,
    ) -> impl Future<Output = Result<Completion, StoreError>> + Send;
    fn delete(&self, request_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The table through the AWS SDK.
#[derive(Debug, Clone)]
pub struct DynamoPending {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPending {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn is_condition_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata>(e: &E) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

impl PendingStore for DynamoPending {
    async fn create(&self, pending: &Pending) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(pending)
            .map_err(|e| StoreError::Refused(format!("a pending item: {e}")))?;
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(requestId)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                Err(StoreError::Exists)
            }
            Err(e) => Err(sdk_failure(&e).into()),
        }
    }

    async fn get(&self, request_id: &str) -> Result<Option<Pending>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("requestId", AttributeValue::S(request_id.to_owned()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::from(sdk_failure(&e)))?;
        out.item
            .map(|i| {
                serde_dynamo::from_item(i)
                    .map_err(|e| StoreError::Refused(format!("a pending item: {e}")))
            })
            .transpose()
    }

    async fn complete(
        &self,
        request_id: &str,
        agent_id: &str,
        response: &StoredResponse,
        now_ms: i64,
    ) -> Result<Completion, StoreError> {
        let response = serde_dynamo::to_attribute_value(response)
            .map_err(|e| StoreError::Refused(format!("a response: {e}")))?;
        match self
            .client
            .update_item()
            .table_name(&self.table)
            .key("requestId", AttributeValue::S(request_id.to_owned()))
            .update_expression("SET #s = :completed, #r = :response, completedAt = :now")
            .condition_expression(
                "attribute_exists(requestId) AND #s = :pending AND agentId = :agent",
            )
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#r", "response")
            .expression_attribute_values(":completed", AttributeValue::S("completed".into()))
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":agent", AttributeValue::S(agent_id.to_owned()))
            .expression_attribute_values(":response", response)
            .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew)
            .send()
            .await
        {
            Ok(out) => Ok(Completion::Completed {
                waiter: out
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get("waiter"))
                    .and_then(|v| v.as_s().ok())
                    .cloned(),
            }),
            Err(e) if e.as_service_error().is_some_and(is_condition_failure) => {
                // Why: only on this (rare) path is the item read.
                match self.get(request_id).await? {
                    Some(p) if p.agent_id == agent_id && p.status == Status::Completed => {
                        Ok(Completion::AlreadyCompleted)
                    }
                    _ => Ok(Completion::Unknown),
                }
            }
            Err(e) => Err(sdk_failure(&e).into()),
        }
    }

    async fn delete(&self, request_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("requestId", AttributeValue::S(request_id.to_owned()))
            .send()
            .await
            .map_err(|e| StoreError::from(sdk_failure(&e)))?;
        Ok(())
    }
}

/// A change of an item, as the table's stream carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub old: Option<Pending>,
    pub new: Option<Pending>,
}

/// The table in memory: counts reads and writes, can take a simulated latency per call, and
/// sends every change to a stream tap (the simulation's and tests' DynamoDB stream).
#[derive(Debug, Default)]
pub struct MemoryPending {
    items: Mutex<HashMap<String, Pending>>,
    reads: AtomicU64,
    writes: AtomicU64,
    latency: Mutex<Duration>,
    stream: Mutex<Option<mpsc::UnboundedSender<Change>>>,
    unavailable: Mutex<bool>,
}

impl MemoryPending {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call takes `latency` (virtual time under a paused clock).
    pub fn with_latency(latency: Duration) -> Self {
        let store = Self::default();
        *store.latency.lock().expect("lock") = latency;
        store
    }

    /// Changes from now on go to the returned receiver.
    pub fn stream(&self) -> mpsc::UnboundedReceiver<Change> {
        let (tx, rx) = mpsc::unbounded_channel();
        *self.stream.lock().expect("lock") = Some(tx);
        rx
    }

    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    pub fn item(&self, request_id: &str) -> Option<Pending> {
        self.items.lock().expect("lock").get(request_id).cloned()
    }

    pub fn len(&self) -> usize {
        self.items.lock().expect("lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every later call fails as unavailable (`true`) or works again.
    pub fn set_unavailable(&self, unavailable: bool) {
        *self.unavailable.lock().expect("lock") = unavailable;
    }

    async fn call(&self) -> Result<(), StoreError> {
        let latency = *self.latency.lock().expect("lock");
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if *self.unavailable.lock().expect("lock") {
            return Err(StoreError::Unavailable("injected".into()));
        }
        Ok(())
    }

    fn emit(&self, old: Option<Pending>, new: Option<Pending>) {
        if let Some(tx) = self.stream.lock().expect("lock").as_ref() {
            let _ = tx.send(Change { old, new });
        }
    }
}

impl PendingStore for MemoryPending {
    async fn create(&self, pending: &Pending) -> Result<(), StoreError> {
        self.call().await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        {
            let mut items = self.items.lock().expect("lock");
            if items.contains_key(&pending.request_id) {
                return Err(StoreError::Exists);
            }
            items.insert(pending.request_id.clone(), pending.clone());
        }
        self.emit(None, Some(pending.clone()));
        Ok(())
    }

    async fn get(&self, request_id: &str) -> Result<Option<Pending>, StoreError> {
        self.call().await?;
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(self.item(request_id))
    }

    async fn complete(
        &self,
        request_id: &str,
        agent_id: &str,
        response: &StoredResponse,
        now_ms: i64,
    ) -> Result<Completion, StoreError> {
        self.call().await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        let (old, new) = {
            let mut items = self.items.lock().expect("lock");
            let Some(item) = items.get_mut(request_id).filter(|i| i.agent_id == agent_id) else {
                return Ok(Completion::Unknown);
            };
            if item.status == Status::Completed {
                return Ok(Completion::AlreadyCompleted);
            }
            let old = item.clone();
            item.status = Status::Completed;
            item.response = Some(response.clone());
            item.completed_at = Some(now_ms);
            (old, item.clone())
        };
        let waiter = new.waiter.clone();
        self.emit(Some(old), Some(new));
        Ok(Completion::Completed { waiter })
    }

    async fn delete(&self, request_id: &str) -> Result<(), StoreError> {
        self.call().await?;
        self.writes.fetch_add(1, Ordering::Relaxed);
        let old = self.items.lock().expect("lock").remove(request_id);
        if old.is_some() {
            self.emit(old, None);
        }
        Ok(())
    }
}

impl<T: PendingStore> PendingStore for std::sync::Arc<T> {
    async fn create(&self, pending: &Pending) -> Result<(), StoreError> {
        (**self).create(pending).await
    }
    async fn get(&self, request_id: &str) -> Result<Option<Pending>, StoreError> {
        (**self).get(request_id).await
    }
    async fn complete(
        &self,
        request_id: &str,
        agent_id: &str,
        response: &StoredResponse,
        now_ms: i64,
    ) -> Result<Completion, StoreError> {
        (**self)
            .complete(request_id, agent_id, response, now_ms)
            .await
    }
    async fn delete(&self, request_id: &str) -> Result<(), StoreError> {
        (**self).delete(request_id).await
    }
}
