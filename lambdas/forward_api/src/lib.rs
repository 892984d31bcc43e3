//! `POST /api/events/forward`, in parts with one job each:
//!
//! - [`http`]: the API Gateway adapter ([`handle`]): token, body, answer, metrics and logs;
//! - [`forward`]: the use case ([`Forwarder`]): per-event checks, quota and idempotency
//!   claims, publishing through an [`eventfabric_core::EventSink`], confirming or releasing;
//! - [`request`] (the body and its limits), [`auth`] and [`keys`] (session tokens and their
//!   rotating secret), [`topics`] (the compiled registry), [`redact`], [`tape`] (the JSON the
//!   body is read into);
//! - [`state`]: the quota/idempotency port with its DynamoDB, in-memory and stateless
//!   adapters; [`sdk`]: the AWS clients as the function configures them;
//! - [`config`], [`outcome`] (the 202 body's wire types), [`metrics`].
//!
//! `main.rs` only reads the environment, wires the clients and runs the runtime.

pub mod auth;
pub mod config;
pub mod forward;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod outcome;
pub mod redact;
pub mod request;
pub mod sdk;
pub mod state;
pub mod switch;
pub mod tape;
pub mod topics;

pub use auth::{Authenticator, TokenVerifier};
pub use config::{ConfigError, ForwardConfig, Resources};
pub use forward::{Answer, Forwarded, Forwarder, StoreFailure, StoreOperation};
pub use http::{handle, handle_switched};
pub use keys::{KeyRing, KeySource, MemoryKeys, SecretsManagerKeys, SigningKeys};
pub use outcome::{ForwardOutcome, RejectReason, Rejection};
pub use redact::{RedactionPlan, Redactor};
pub use request::RequestError;
pub use state::{DynamoState, MemoryState, SessionState};
pub use topics::CompiledTopics;

/// Kept free before the invocation's deadline to serialize the answer, write the metrics and
/// hand the answer to the runtime API.
pub const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(200);

pub use eventfabric_core::now_ms;
