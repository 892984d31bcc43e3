//! eventfabric core: the client event envelope, its EventBridge mapping, and the [`EventSink`]
//! port through which handlers publish, with an EventBridge adapter ([`EventBridgeSink`]) and an
//! in-memory one ([`MemorySink`]). Business logic depends on the trait, never on the SDK.

pub mod aws;
pub mod batch;
pub mod bus;
pub mod deadline;
#[cfg(feature = "emf")]
pub mod emf;
pub mod envelope;
pub mod eventbridge;
#[cfg(feature = "http")]
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod parameter;
#[cfg(feature = "publish")]
pub mod publish;
pub mod retry;
pub mod scan;
#[cfg(feature = "secrets")]
pub mod secrets;
pub mod settings;
pub mod sink;
pub mod text;
#[cfg(feature = "token")]
pub mod token;

pub use bus::{BusEntry, MAX_ENTRIES_PER_CALL, MAX_REQUEST_BYTES, batches};
pub use deadline::{Deadline, now_ms};
pub use envelope::{
    ClientInfo, DetailHead, DetailWriter, ForwardedDetail, Timestamp, write_json_str,
};
pub use eventbridge::{EventBridgeApi, EventBridgeSink, PutEventsApi, RetryPolicy};
pub use eventfabric_registry::manifest::INTERFACE_SOURCE;
pub use sink::{EventSink, MemorySink, PublishError};
