//! The realtime system's single-table store and how an event's state changes are applied
//! exactly once.
//!
//! Table `eventfabric-<env>-realtime-app` (partition key `pk`, sort key `sk`, both S; TTL
//! `expiresAt`; GSI `ByKind` on `kind` + `createdAt` for listing one kind of item by time):
//!
//! | item | pk | sk |
//! |---|---|---|
//! | library item (generated content) | `USER#<userId>` | `CONTENT#<contentId>` |
//! | usage counter | `USER#<userId>` | `USAGE#<feature>#<period>` |
//! | knowledge item (research query completed) | `USER#<userId>` | `KNOWLEDGE#<queryId>` |
//! | brand profile's last change | `USER#<userId>` | `BRAND#<profileId>` |
//! | market trend | `TREND#<trendId>` | `TREND` |
//! | processed-event marker (TTL 7 days) | `EVENT#<event id>` | `EVENT` |
//!
//! An event's writes and its marker go in one `TransactWriteItems`, the marker on condition
//! that it does not exist: a redelivered event (EventBridge retries, a replay) finds the marker
//! and changes nothing — counters included, which a put-only dedupe could not promise.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use serde_json::{Map, Value};

/// How long a processed event is remembered: past EventBridge's 24 h of retries and the
/// targets' maximum event age, with room for a replay of the last days.
pub const MARKER_TTL_SECONDS: i64 = 7 * 24 * 60 * 60;
/// `TransactWriteItems` takes at most 100 items; one is the marker.
pub const MAX_WRITES_PER_EVENT: usize = 99;

/// One state change.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// An item, replaced whole (a repeat puts the same item).
    Put {
        pk: String,
        sk: String,
        attributes: Map<String, Value>,
    },
    /// A counter attribute increased by `by` (created at `by`).
    Add {
        pk: String,
        sk: String,
        attribute: &'static str,
        by: i64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The event was applied before: nothing changed now.
    Duplicate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("the app table is unavailable: {0}")]
    Unavailable(String),
    #[error("the app table refused the write: {0}")]
    Refused(String),
}

pub trait AppStore: Send + Sync {
    /// The writes of event `event_id`, all or none, once.
    fn apply(
        &self,
        event_id: &str,
        writes: &[Write],
        now_ms: i64,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send;
}

fn marker_key(event_id: &str) -> (String, String) {
    (format!("EVENT#{event_id}"), "EVENT".to_owned())
}

/// The app table through the AWS SDK.
#[derive(Debug, Clone)]
pub struct DynamoAppStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoAppStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    fn item(&self, write: &Write) -> Result<TransactWriteItem, StoreError> {
        let refused = |e: &dyn std::fmt::Display| StoreError::Refused(e.to_string());
        let key = |pk: &str, sk: &str| {
            HashMap::from([
                ("pk".to_owned(), AttributeValue::S(pk.to_owned())),
                ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
            ])
        };
        Ok(match write {
            Write::Put { pk, sk, attributes } => {
                let mut item: HashMap<String, AttributeValue> =
                    serde_dynamo::to_item(attributes).map_err(|e| refused(&e))?;
                item.extend(key(pk, sk));
                TransactWriteItem::builder()
                    .put(
                        Put::builder()
                            .table_name(&self.table)
                            .set_item(Some(item))
                            .build()
                            .map_err(|e| refused(&e))?,
                    )
                    .build()
            }
            Write::Add {
                pk,
                sk,
                attribute,
                by,
            } => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.table)
                        .set_key(Some(key(pk, sk)))
                        .update_expression("ADD #a :by")
                        .expression_attribute_names("#a", *attribute)
                        .expression_attribute_values(":by", AttributeValue::N(by.to_string()))
                        .build()
                        .map_err(|e| refused(&e))?,
                )
                .build(),
        })
    }
}

impl AppStore for DynamoAppStore {
    async fn apply(
        &self,
        event_id: &str,
        writes: &[Write],
        now_ms: i64,
    ) -> Result<Applied, StoreError> {
        if writes.len() > MAX_WRITES_PER_EVENT {
            return Err(StoreError::Refused(format!(
                "{} writes for one event; at most {MAX_WRITES_PER_EVENT}",
                writes.len()
            )));
        }
        let (pk, sk) = marker_key(event_id);
        let expires = now_ms.div_euclid(1000).saturating_add(MARKER_TTL_SECONDS);
        let marker = Put::builder()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(pk))
            .item("sk", AttributeValue::S(sk))
            .item("kind", AttributeValue::S("processed_event".into()))
            .item("expiresAt", AttributeValue::N(expires.to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| StoreError::Refused(e.to_string()))?;
        let mut items = vec![TransactWriteItem::builder().put(marker).build()];
        for w in writes {
            items.push(self.item(w)?);
        }
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(Applied::Done),
            Err(e) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                    e.as_service_error()
                {
                    // The marker is item 0: its condition failing means "seen before".
                    let first = c.cancellation_reasons().first().and_then(|r| r.code());
                    if first == Some("ConditionalCheckFailed") {
                        return Ok(Applied::Duplicate);
                    }
                }
                Err(match sdk_failure(&e) {
                    SdkFailure::Transient(m) => StoreError::Unavailable(m),
                    SdkFailure::Refused(m) => StoreError::Refused(m),
                })
            }
        }
    }
}

/// The app table in memory: items by (pk, sk), with the same all-or-none, once semantics.
#[derive(Debug, Default)]
pub struct MemoryAppStore {
    items: Mutex<HashMap<(String, String), Map<String, Value>>>,
    failures: Mutex<u32>,
}

impl MemoryAppStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `n` applies fail as unavailable.
    pub fn fail_next(&self, n: u32) {
        *self.failures.lock().expect("lock") = n;
    }

    pub fn get(&self, pk: &str, sk: &str) -> Option<Map<String, Value>> {
        self.items
            .lock()
            .expect("lock")
            .get(&(pk.to_owned(), sk.to_owned()))
            .cloned()
    }

    /// Items that are not processed-event markers.
    pub fn data_items(&self) -> usize {
        self.items
            .lock()
            .expect("lock")
            .keys()
            .filter(|(pk, _)| !pk.starts_with("EVENT#"))
            .count()
    }
}

impl AppStore for MemoryAppStore {
    async fn apply(
        &self,
        event_id: &str,
        writes: &[Write],
        _now_ms: i64,
    ) -> Result<Applied, StoreError> {
        {
            let mut failures = self.failures.lock().expect("lock");
            if *failures > 0 {
                *failures -= 1;
                return Err(StoreError::Unavailable("injected".into()));
            }
        }
        let mut items = self.items.lock().expect("lock");
        let marker = marker_key(event_id);
        if items.contains_key(&marker) {
            return Ok(Applied::Duplicate);
        }
        items.insert(marker, Map::new());
        for w in writes {
            match w {
                Write::Put { pk, sk, attributes } => {
                    items.insert((pk.clone(), sk.clone()), attributes.clone());
                }
                Write::Add {
                    pk,
                    sk,
                    attribute,
                    by,
                } => {
                    let item = items.entry((pk.clone(), sk.clone())).or_default();
                    let now = item.get(*attribute).and_then(Value::as_i64).unwrap_or(0);
                    item.insert((*attribute).to_owned(), now.saturating_add(*by).into());
                }
            }
        }
        Ok(Applied::Done)
    }
}

/// A borrowed store is a store: several processors (a test's before and after) can share one.
impl<T: AppStore> AppStore for &T {
    fn apply(
        &self,
        event_id: &str,
        writes: &[Write],
        now_ms: i64,
    ) -> impl Future<Output = Result<Applied, StoreError>> + Send {
        (**self).apply(event_id, writes, now_ms)
    }
}
