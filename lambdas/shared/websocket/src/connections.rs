//! The connections store: one item per open WebSocket connection.
//!
//! Table (`eventfabric-<env>-<system>-connections`): partition key `connectionId` (S); the
//! principal `principal` (S), `connectedAt` (N, epoch ms) and `expiresAt` (N, epoch seconds,
//! the table's TTL attribute: API Gateway ends every connection after 2 hours, so a record that
//! missed its `$disconnect` goes by itself); GSI `ByPrincipal` (`principal`, `connectedAt`),
//! projecting all attributes, for a principal's connections. TTL deletion lags by up to days,
//! so readers also filter on `expiresAt`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use aws_sdk_dynamodb::types::AttributeValue;
use eventfabric_core::aws::{SdkFailure, sdk_failure};
use serde::{Deserialize, Serialize};

/// The GSI of a principal's connections.
pub const BY_PRINCIPAL_INDEX: &str = "ByPrincipal";

/// One open connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub connection_id: String,
    pub principal: String,
    /// Epoch milliseconds.
    pub connected_at: i64,
    /// Epoch seconds (TTL).
    pub expires_at: i64,
}

impl Connection {
    /// A connection opened at `connected_at` (ms), expiring with API Gateway's 2-hour limit.
    pub fn opened(connection_id: &str, principal: &str, connected_at: i64) -> Self {
        Self {
            connection_id: connection_id.to_owned(),
            principal: principal.to_owned(),
            connected_at,
            expires_at: connected_at
                .div_euclid(1000)
                .saturating_add(crate::CONNECTION_LIFETIME_SECONDS),
        }
    }

    pub fn is_open(&self, now_ms: i64) -> bool {
        self.expires_at > now_ms.div_euclid(1000)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttling, a 5xx, a timeout: another attempt may succeed.
    #[error("the connections table is unavailable: {0}")]
    Unavailable(String),
    /// Permissions, a missing table, a bad request: the same call fails again.
    #[error("the connections table refused the call: {0}")]
    Refused(String),
}

impl From<SdkFailure> for StoreError {
    fn from(f: SdkFailure) -> Self {
        match f {
            SdkFailure::Transient(m) => StoreError::Unavailable(m),
            SdkFailure::Refused(m) => StoreError::Refused(m),
        }
    }
}

pub trait ConnectionStore: Send + Sync {
    /// The principal's connections still open at `now_ms`.
    fn open_of(
        &self,
        principal: &str,
        now_ms: i64,
    ) -> impl Future<Output = Result<Vec<Connection>, StoreError>> + Send;
    fn put(&self, connection: &Connection) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Deleting a connection that is not there succeeds (a `$disconnect` after a 410 cleanup).
    fn delete(&self, connection_id: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A store shared between handlers (a route and a pusher in one process).
impl<T: ConnectionStore> ConnectionStore for std::sync::Arc<T> {
    async fn open_of(&self, principal: &str, now_ms: i64) -> Result<Vec<Connection>, StoreError> {
        (**self).open_of(principal, now_ms).await
    }
    async fn put(&self, connection: &Connection) -> Result<(), StoreError> {
        (**self).put(connection).await
    }
    async fn delete(&self, connection_id: &str) -> Result<(), StoreError> {
        (**self).delete(connection_id).await
    }
}

/// The connections table through the AWS SDK.
#[derive(Debug, Clone)]
pub struct DynamoConnections {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoConnections {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl ConnectionStore for DynamoConnections {
    async fn open_of(&self, principal: &str, now_ms: i64) -> Result<Vec<Connection>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(BY_PRINCIPAL_INDEX)
                .key_condition_expression("principal = :p")
                .filter_expression("expiresAt > :now")
                .expression_attribute_values(":p", AttributeValue::S(principal.to_owned()))
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(now_ms.div_euclid(1000).to_string()),
                )
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| StoreError::from(sdk_failure(&e)))?;
            for item in page.items() {
                let connection: Connection = serde_dynamo::from_item(item.clone())
                    .map_err(|e| StoreError::Refused(format!("a connection item: {e}")))?;
                out.push(connection);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn put(&self, connection: &Connection) -> Result<(), StoreError> {
        let item = serde_dynamo::to_item(connection)
            .map_err(|e| StoreError::Refused(format!("a connection item: {e}")))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| StoreError::from(sdk_failure(&e)))?;
        Ok(())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("connectionId", AttributeValue::S(connection_id.to_owned()))
            .send()
            .await
            .map_err(|e| StoreError::from(sdk_failure(&e)))?;
        Ok(())
    }
}

/// Connections in memory; for tests, local runs and the WebSocket stand-in.
#[derive(Debug, Default)]
pub struct MemoryConnections {
    items: Mutex<HashMap<String, Connection>>,
    unavailable: Mutex<bool>,
}

impl MemoryConnections {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn all(&self) -> Vec<Connection> {
        let mut all: Vec<_> = self.items.lock().expect("lock").values().cloned().collect();
        all.sort_by(|a, b| a.connection_id.cmp(&b.connection_id));
        all
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

impl ConnectionStore for MemoryConnections {
    async fn open_of(&self, principal: &str, now_ms: i64) -> Result<Vec<Connection>, StoreError> {
        self.check()?;
        let mut open: Vec<_> = self
            .items
            .lock()
            .expect("lock")
            .values()
            .filter(|c| c.principal == principal && c.is_open(now_ms))
            .cloned()
            .collect();
        open.sort_by_key(|c| c.connected_at);
        Ok(open)
    }

    async fn put(&self, connection: &Connection) -> Result<(), StoreError> {
        self.check()?;
        self.items
            .lock()
            .expect("lock")
            .insert(connection.connection_id.clone(), connection.clone());
        Ok(())
    }

    async fn delete(&self, connection_id: &str) -> Result<(), StoreError> {
        self.check()?;
        self.items.lock().expect("lock").remove(connection_id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_expires_with_api_gateways_two_hours() {
        let c = Connection::opened("c1", "u1", 1_767_225_600_123);
        assert_eq!(c.expires_at, 1_767_225_600 + 7200);
        assert!(c.is_open(1_767_225_600_123 + 7_199_000));
        assert!(!c.is_open(1_767_225_600_000 + 7_200_000));
        // At the integer extremes: saturating, never wrapping into "long expired".
        assert_eq!(
            Connection::opened("c", "u", i64::MAX).expires_at,
            i64::MAX / 1000 + 7200
        );
    }

    #[test]
    fn items_use_the_tables_attribute_names() {
        let item: HashMap<String, AttributeValue> =
            serde_dynamo::to_item(Connection::opened("c1", "u1", 1000)).unwrap();
        let mut names: Vec<_> = item.keys().cloned().collect();
        names.sort();
        assert_eq!(
            names,
            ["connectedAt", "connectionId", "expiresAt", "principal"]
        );
    }
}
