//! The ingest API (`POST /api/ingest`): machine events, one or a batch of up to 500, checked
//! by field against the ingest envelope (`eventfabric_core::ingest`) and the registry's stream
//! topics, enriched with the ingest time and request id, and written to the ingest Kinesis
//! stream with `PutRecords` (≤ 500 records / 5 MiB per call, only failed records retried with
//! backoff, partition key = hash(entity_id, event_type)). The answer comes at once: see
//! [`handler`] for its shapes. Payload schemas and business rules are the stream processor's.
//!
//! Every AWS call goes through [`stream::RecordStream`], with the Kinesis adapter and an
//! in-memory one, so the whole function runs in tests.

pub mod handler;
pub mod metrics;
pub mod request;
pub mod stream;

pub use eventfabric_core::ingest::IngestRecord;
pub use handler::{DEFAULT_RETRY, Ingest, Rejected, StreamTopics};
pub use stream::{KinesisStream, MemoryStream, RecordStream, Script, StreamRecord};

/// Time kept back from the invocation deadline to answer: retries stop before it.
pub const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(500);

/// The function's settings, from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `STREAM_NAME`: the ingest stream's name or ARN.
    pub stream: String,
    /// `METRICS_NAMESPACE` (default `eventfabric`).
    pub metrics_namespace: String,
}

impl Settings {
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let stream = env("STREAM_NAME")
            .filter(|s| !s.is_empty())
            .ok_or("STREAM_NAME is not set: the ingest stream's name or ARN")?;
        Ok(Self {
            stream,
            metrics_namespace: env("METRICS_NAMESPACE").unwrap_or_else(|| "eventfabric".into()),
        })
    }
}
