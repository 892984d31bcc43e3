//! The platform's WebSocket connection layer (API Gateway v2 WebSocket APIs), shared by the
//! realtime system's notifications and the HTTP tunnel's agents:
//!
//! - [`auth`]: the `$connect` Lambda authorizer. The principal (a user, or an agent) comes from
//!   a signed token's `sub`, never from a bare query-string value.
//! - [`connections`]: the connections store port (per-principal quota, TTL, by-principal
//!   index) with a DynamoDB and an in-memory adapter.
//! - [`routes`]: `$connect`, `$disconnect` and `$default` (`ping` → `pong`).
//! - [`push`]: a message to every connection of a principal through the management API, in
//!   parallel; connections that answer 410 Gone are deleted, messages over 128 KB refused.
//! - [`subscriptions`]: channel subscriptions of connections (the realtime dashboards), with a
//!   DynamoDB and an in-memory adapter.

pub mod auth;
pub mod connections;
pub mod push;
pub mod routes;
pub mod subscriptions;

pub use auth::{ConnectAuthorizer, Identity, PRINCIPAL_CONTEXT_KEY, SCOPE_CONTEXT_KEY};
pub use connections::{
    Connection, ConnectionStore, DynamoConnections, MemoryConnections, StoreError,
};
pub use push::{ConnectionApi, ManagementApi, MemoryConnectionApi, PostError, PushReport, Pusher};

/// API Gateway's largest WebSocket message (frames are 32 KB; the service splits messages
/// into frames itself).
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// API Gateway closes a WebSocket connection after 2 hours, whatever happens on it: a
/// connection record expires (TTL) then.
pub const CONNECTION_LIFETIME_SECONDS: i64 = 2 * 60 * 60;

/// A principal id as tokens carry it: 1–128 visible ASCII characters (it is a DynamoDB key
/// and goes into logs).
pub fn valid_principal(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}
