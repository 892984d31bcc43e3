//! Channel subscriptions of connections: a connection asks for the updates of a channel (the
//! realtime dashboards: an entity type, or one entity) and a pusher looks up a channel's
//! subscribers. A port with a DynamoDB and an in-memory adapter.
//!
//! Table `eventfabric-<env>-realtime-subscriptions`: partition key `channel`, sort key
//! `connectionId` (so a channel's subscribers are one query), GSI `ByConnection` on
//! `connectionId` + `channel` (keys only: a connection's channels, for `$disconnect` and 410
//! cleanup), TTL `expiresAt` set to the connection's own end (API Gateway's 2-hour limit), so a
//! subscription never outlives its connection by more than TTL's lag, and reads skip expired
//! ones.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::AttributeValue;
use eventfabric_core::aws::sdk_failure;
use serde::{Deserialize, Serialize};

use crate::connections::StoreError;

pub const BY_CONNECTION_INDEX: &str = "ByConnection";

/// One connection's subscription to one channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    pub channel: String,
    pub connection_id: String,
    pub principal: String,
    /// Epoch milliseconds.
    pub subscribed_at: i64,
    /// Epoch seconds (DynamoDB TTL): the connection's end.
    pub expires_at: i64,
}

pub trait SubscriptionStore: Send + Sync {
    /// Connection ids subscribed to `channel` and not expired at `now_ms`.
    fn subscribers(
        &self,
        channel: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    /// The channels a connection is subscribed to.
    fn channels_of(
        &self,
        connection_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;
    fn subscribe(
        &self,
        subscription: &Subscription,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Removing a subscription that is not there succeeds.
    fn unsubscribe(
        &self,
        channel: &str,
        connection_id: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Removes every subscription of a connection (`$disconnect`, a 410): how many there were.
pub async fn drop_connection<S: SubscriptionStore>(
    store: &S,
    connection_id: &str,
) -> Result<usize, StoreError> {
    let channels = store.channels_of(connection_id).await?;
    for channel in &channels {
        store.unsubscribe(channel, connection_id).await?;
    }
    Ok(channels.len())
}

impl<T: SubscriptionStore> SubscriptionStore for std::sync::Arc<T> {
    async fn subscribers(&self, channel: &str, now_ms: i64) -> Result<Vec<String>, StoreError> {
        (**self).subscribers(channel, now_ms).await
    }
    async fn channels_of(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        (**self).channels_of(connection_id).await
    }
    async fn subscribe(&self, subscription: &Subscription) -> Result<(), StoreError> {
        (**self).subscribe(subscription).await
    }
    async fn unsubscribe(&self, channel: &str, connection_id: &str) -> Result<(), StoreError> {
        (**self).unsubscribe(channel, connection_id).await
    }
}

/// The subscriptions table through the AWS SDK.
#[derive(Debug, Clone)]
pub struct DynamoSubscriptions {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoSubscriptions {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Every page of a query, each item's `attribute`.
    async fn query_all(
        &self,
        query: aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        attribute: &str,
    ) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = query
                .clone()
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::from(sdk_failure(&e)))?;
            for item in page.items() {
                match item.get(attribute) {
                    Some(AttributeValue::S(v)) => out.push(v.clone()),
                    _ => {
                        return Err(StoreError::Refused(format!(
                            "a subscription item without {attribute}"
                        )));
                    }
                }
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(out)
    }
}

impl SubscriptionStore for DynamoSubscriptions {
    async fn subscribers(&self, channel: &str, now_ms: i64) -> Result<Vec<String>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("channel = :c")
            .filter_expression("expiresAt > :now")
            .projection_expression("connectionId")
            .expression_attribute_values(":c", AttributeValue::S(channel.to_owned()))
            .expression_attribute_values(
                ":now",
                AttributeValue::N(now_ms.div_euclid(1000).to_string()),
            );
        self.query_all(query, "connectionId").await
    }

    async fn channels_of(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_CONNECTION_INDEX)
            .key_condition_expression("connectionId = :id")
            .expression_attribute_values(":id", AttributeValue::S(connection_id.to_owned()));
        self.query_all(query, "channel").await
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(subscription)
            .map_err(|e| StoreError::Refused(format!("a subscription item: {e}")))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::from(sdk_failure(&e)))?;
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str, connection_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("channel", AttributeValue::S(channel.to_owned()))
            .key("connectionId", AttributeValue::S(connection_id.to_owned()))
            .send()
            .await
            .map_err(|e| StoreError::from(sdk_failure(&e)))?;
        Ok(())
    }
}

/// Subscriptions in memory; for tests, local runs and the benchmarks.
#[derive(Debug, Default)]
pub struct MemorySubscriptions {
    items: Mutex<BTreeMap<(String, String), Subscription>>,
    unavailable: Mutex<bool>,
}

impl MemorySubscriptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn all(&self) -> Vec<Subscription> {
        self.items.lock().expect("lock").values().cloned().collect()
    }

    /// Every later call fails as unavailable (`true`) or works again (`false`).
    pub fn set_unavailable(&self, unavailable: bool) {
        *self.unavailable.lock().expect("lock") = unavailable;
    }

    fn check(&self) -> Result<(), StoreError> {
        if *self.unavailable.lock().expect("lock") {
            Err(StoreError::Unavailable("injected".into()))
        } else {
            Ok(())
        }
    }
}

impl SubscriptionStore for MemorySubscriptions {
    async fn subscribers(&self, channel: &str, now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.check()?;
        Ok(self
            .items
            .lock()
            .expect("lock")
            .values()
            .filter(|s| s.channel == channel && s.expires_at > now_ms.div_euclid(1000))
            .map(|s| s.connection_id.clone())
            .collect())
    }

    async fn channels_of(&self, connection_id: &str) -> Result<Vec<String>, StoreError> {
        self.check()?;
        Ok(self
            .items
            .lock()
            .expect("lock")
            .values()
            .filter(|s| s.connection_id == connection_id)
            .map(|s| s.channel.clone())
            .collect())
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<(), StoreError> {
        self.check()?;
        self.items.lock().expect("lock").insert(
            (
                subscription.channel.clone(),
                subscription.connection_id.clone(),
            ),
            subscription.clone(),
        );
        Ok(())
    }

    async fn unsubscribe(&self, channel: &str, connection_id: &str) -> Result<(), StoreError> {
        self.check()?;
        self.items
            .lock()
            .expect("lock")
            .remove(&(channel.to_owned(), connection_id.to_owned()));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_767_225_600_000;

    fn sub(channel: &str, connection: &str, expires_at: i64) -> Subscription {
        Subscription {
            channel: channel.into(),
            connection_id: connection.into(),
            principal: "user-1".into(),
            subscribed_at: NOW,
            expires_at,
        }
    }

    #[tokio::test]
    async fn subscribers_of_a_channel_skip_expired_ones_and_a_connection_drops_all_of_its() {
        let store = MemorySubscriptions::new();
        let later = NOW / 1000 + 3600;
        store.subscribe(&sub("volume", "c1", later)).await.unwrap();
        store
            .subscribe(&sub("volume", "c2", NOW / 1000 - 1))
            .await
            .unwrap();
        store.subscribe(&sub("pool", "c1", later)).await.unwrap();
        assert_eq!(store.subscribers("volume", NOW).await.unwrap(), ["c1"]);
        assert_eq!(drop_connection(&store, "c1").await.unwrap(), 2);
        assert!(store.subscribers("pool", NOW).await.unwrap().is_empty());
        assert_eq!(store.all().len(), 1, "c2's expired one is TTL's to remove");
    }
}
