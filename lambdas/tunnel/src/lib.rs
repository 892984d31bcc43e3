//! The HTTP tunnel (systems.md §3): `ANY /tunnel/{agent}/{proxy+}` → the forwarding function
//! stores the request in `pending_requests` and sends it to the agent over the WebSocket API;
//! the agent answers on its `response` route, which stores the answer; the table's stream
//! feeds the notifier, which publishes `HttpResponseReady` and wakes the waiting invocation
//! with a push; the waiter reads the answer once and returns it to the caller. The crate's
//! README has the design and its failure cases.
//!
//! - [`pending`]: the pending requests table (port, DynamoDB and in-memory adapters).
//! - [`rollout`]: `USE_EVENT_DRIVEN` and the canary percentage, read with a short cache.
//! - [`wait`]: the two ways to wait for the answer: the push (and one final read) or polling.
//! - [`forward`]: the forwarding function's logic.
//! - [`agent`]: the agent's `response` route.
//! - [`notifier`]: the stream notifier.
//! - [`routes`]: the tunnel WebSocket API's `response` and `whoami` routes.
//! - [`http`]: the HTTP API's request and response.
//! - [`waiter`]: the forwarding function's WebSocket connection (the pushes' receiver).
//! - [`aws`]: the rollout parameter (SSM) and the bodies bucket (S3).
//! - [`functions`]: the deployed roles of the one binary and their settings.
//! - [`sim`]: the whole tunnel in memory on a virtual clock (tests, `examples/simulate.rs`).

pub mod agent;
pub mod aws;
pub mod forward;
pub mod functions;
pub mod http;
pub mod notifier;
pub mod pending;
pub mod rollout;
pub mod routes;
pub mod sim;
pub mod wait;
pub mod waiter;
