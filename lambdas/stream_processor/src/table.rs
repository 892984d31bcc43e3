//! The state table port: the latest event per entity (PK `entity_id`, SK `entity_type`; GSI
//! `EntityTypeIndex` on `entity_type` + `timestamp`). [`DynamoTable`] is the SDK adapter
//! (`BatchGetItem` of ≤ 100 keys, `BatchWriteItem` of ≤ 25 puts, items through `serde_dynamo`),
//! [`MemoryTable`] the in-memory one, with scripted unprocessed items and failed calls.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use eventfabric_core::retry::ItemResult;

/// Keys per `BatchGetItem` call.
pub const MAX_KEYS_PER_READ: usize = 100;
/// Puts per `BatchWriteItem` call.
pub const MAX_ITEMS_PER_WRITE: usize = 25;

/// An entity's latest state (the item shape, shared with the realtime dashboards that read
/// this table's stream).
pub use eventfabric_core::ingest::{ItemKey, StateItem};

/// One key's stored timestamp, or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// The stored item's `timestamp`, or none when there is no item.
    Found(Option<i64>),
    Retry(String),
}

pub trait StateTable: Send + Sync {
    /// One `BatchGetItem` of at most 100 keys: the stored timestamps, in order.
    fn read_timestamps(&self, keys: &[&ItemKey]) -> impl Future<Output = Vec<Read>> + Send;
    /// One `BatchWriteItem` of at most 25 puts: one result per item, in order (an unprocessed
    /// item is a Retry).
    fn write(&self, items: &[&StateItem]) -> impl Future<Output = Vec<ItemResult>> + Send;
}

/// The state table through the AWS SDK.
#[derive(Debug, Clone)]
pub struct DynamoTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn key_attributes(key: &ItemKey) -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("entity_id".to_owned(), AttributeValue::S(key.0.clone())),
        ("entity_type".to_owned(), AttributeValue::S(key.1.clone())),
    ])
}

fn key_of(item: &HashMap<String, AttributeValue>) -> Option<ItemKey> {
    let s = |name: &str| item.get(name)?.as_s().ok().cloned();
    Some((s("entity_id")?, s("entity_type")?))
}

fn failure_message<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    // A refused call (permissions, a missing table) is retried too: the record goes back to
    // the stream and, after the mapping's bounded retries, to its on-failure destination.
    match sdk_failure(e) {
        SdkFailure::Transient(m) | SdkFailure::Refused(m) => m,
    }
}

impl StateTable for DynamoTable {
    async fn read_timestamps(&self, keys: &[&ItemKey]) -> Vec<Read> {
        let request = KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(|k| key_attributes(k)).collect()))
            .consistent_read(true)
            .projection_expression("entity_id, entity_type, #ts")
            .expression_attribute_names("#ts", "timestamp")
            .build();
        let request = match request {
            Ok(r) => r,
            Err(e) => return vec![Read::Retry(format!("BuildError: {e}")); keys.len()],
        };
        let output = match self
            .client
            .batch_get_item()
            .request_items(&self.table, request)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return vec![Read::Retry(failure_message(&e)); keys.len()],
        };
        let mut found: HashMap<ItemKey, i64> = HashMap::new();
        for item in output
            .responses()
            .and_then(|r| r.get(&self.table))
            .into_iter()
            .flatten()
        {
            if let Some(key) = key_of(item) {
                let ts = item
                    .get("timestamp")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse::<i64>().ok())
                    .unwrap_or(i64::MIN);
                found.insert(key, ts);
            }
        }
        let unprocessed: Vec<ItemKey> = output
            .unprocessed_keys()
            .and_then(|u| u.get(&self.table))
            .map(|k| k.keys().iter().filter_map(key_of).collect())
            .unwrap_or_default();
        keys.iter()
            .map(|k| {
                if unprocessed.contains(k) {
                    Read::Retry("UnprocessedKeys: not read this time".into())
                } else {
                    Read::Found(found.get(*k).copied())
                }
            })
            .collect()
    }

    async fn write(&self, items: &[&StateItem]) -> Vec<ItemResult> {
        let mut requests = Vec::with_capacity(items.len());
        for item in items {
            let attributes: HashMap<String, AttributeValue> = match serde_dynamo::to_item(item) {
                Ok(a) => a,
                Err(e) => {
                    return vec![
                        ItemResult::Retry(format!("SerializationError: {e}"));
                        items.len()
                    ];
                }
            };
            match PutRequest::builder().set_item(Some(attributes)).build() {
                Ok(put) => requests.push(WriteRequest::builder().put_request(put).build()),
                Err(e) => return vec![ItemResult::Retry(format!("BuildError: {e}")); items.len()],
            }
        }
        let output = match self
            .client
            .batch_write_item()
            .request_items(&self.table, requests)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => return vec![ItemResult::Retry(failure_message(&e)); items.len()],
        };
        let unprocessed: Vec<ItemKey> = output
            .unprocessed_items()
            .and_then(|u| u.get(&self.table))
            .into_iter()
            .flatten()
            .filter_map(|w| w.put_request().and_then(|p| key_of(p.item())))
            .collect();
        items
            .iter()
            .map(|item| {
                if unprocessed.contains(&item.key()) {
                    ItemResult::Retry("UnprocessedItems: not written this time".into())
                } else {
                    ItemResult::Ok
                }
            })
            .collect()
    }
}

/// What the in-memory table does with the next write call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScript {
    /// These positions come back unprocessed.
    Unprocessed(Vec<usize>),
    /// The call fails (throttled, or the function dies mid-batch).
    Fail,
}

#[derive(Debug, Default)]
struct MemoryInner {
    items: HashMap<ItemKey, StateItem>,
    /// Puts per key, to show nothing is written twice.
    puts: HashMap<ItemKey, usize>,
    write_script: VecDeque<WriteScript>,
    fail_reads: usize,
    reads: usize,
    writes: usize,
}

/// An in-memory state table.
#[derive(Debug, Clone, Default)]
pub struct MemoryTable {
    inner: Arc<Mutex<MemoryInner>>,
}

impl MemoryTable {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn script_writes(&self, steps: impl IntoIterator<Item = WriteScript>) {
        self.inner.lock().unwrap().write_script.extend(steps);
    }

    /// The next `n` read calls fail.
    pub fn fail_reads(&self, n: usize) {
        self.inner.lock().unwrap().fail_reads = n;
    }

    pub fn item(&self, entity_id: &str, entity_type: &str) -> Option<StateItem> {
        self.inner
            .lock()
            .unwrap()
            .items
            .get(&(entity_id.to_owned(), entity_type.to_owned()))
            .cloned()
    }

    pub fn len(&self) -> usize {
        self.inner.lock().unwrap().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many times each key was put.
    pub fn puts(&self) -> HashMap<ItemKey, usize> {
        self.inner.lock().unwrap().puts.clone()
    }

    /// `(BatchGetItem calls, BatchWriteItem calls)`.
    pub fn calls(&self) -> (usize, usize) {
        let inner = self.inner.lock().unwrap();
        (inner.reads, inner.writes)
    }
}

impl StateTable for MemoryTable {
    async fn read_timestamps(&self, keys: &[&ItemKey]) -> Vec<Read> {
        let mut inner = self.inner.lock().unwrap();
        assert!(keys.len() <= MAX_KEYS_PER_READ);
        inner.reads += 1;
        if inner.fail_reads > 0 {
            inner.fail_reads -= 1;
            return vec![
                Read::Retry("ProvisionedThroughputExceededException: reads".into());
                keys.len()
            ];
        }
        keys.iter()
            .map(|k| Read::Found(inner.items.get(*k).map(|i| i.timestamp)))
            .collect()
    }

    async fn write(&self, items: &[&StateItem]) -> Vec<ItemResult> {
        let mut inner = self.inner.lock().unwrap();
        assert!(items.len() <= MAX_ITEMS_PER_WRITE);
        inner.writes += 1;
        let step = inner.write_script.pop_front();
        if step == Some(WriteScript::Fail) {
            return vec![
                ItemResult::Retry("InternalServerError: the call failed".into());
                items.len()
            ];
        }
        items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                if matches!(&step, Some(WriteScript::Unprocessed(p)) if p.contains(&i)) {
                    return ItemResult::Retry("UnprocessedItems: not written this time".into());
                }
                *inner.puts.entry(item.key()).or_default() += 1;
                inner.items.insert(item.key(), (*item).clone());
                ItemResult::Ok
            })
            .collect()
    }
}
