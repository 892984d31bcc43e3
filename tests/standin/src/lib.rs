//! Stand-ins for the two transports the moto emulator lacks, so that end-to-end tests run the
//! platform's real handlers and only the transport around them is local:
//!
//! - [`runtime`]: the Lambda Runtime API. A function's release or debug binary runs as a
//!   process, exactly as Lambda (or `cargo lambda watch`) runs it, and a test invokes it with an
//!   event and gets its answer or its error.
//! - [`gateway`]: an API Gateway v2 WebSocket API. Real WebSocket clients connect to it; it
//!   runs the `$connect` authorizer (identity source: the `token` query parameter), the
//!   `$connect`, `$disconnect` and message routes (route selection on `$request.body.action`,
//!   route responses), and serves the management API (`POST`, `GET`, `DELETE`
//!   `@connections/{id}`, 410 `GoneException` for a closed connection, 413 over 128 KB) that the
//!   AWS SDK's `apigatewaymanagement` client calls.
//!
//! - [`client`]: a WebSocket client (connect with a token, send, receive JSON).
//!
//! Routes and the authorizer are [`Handler`]s: a function process ([`runtime::Function`]) or
//! any async closure taking and answering Lambda's JSON.

pub mod client;
pub mod gateway;
pub mod runtime;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

pub use gateway::{Gateway, GatewayBuilder};
pub use runtime::Function;

/// One Lambda invocation: an event in, the function's answer (or its error, as text) out.
pub type Handler =
    Arc<dyn Fn(Value) -> Pin<Box<dyn Future<Output = Result<Value, String>> + Send>> + Send + Sync>;

/// A [`Handler`] from an async closure.
pub fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, String>> + Send + 'static,
{
    Arc::new(move |event| Box::pin(f(event)))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}
