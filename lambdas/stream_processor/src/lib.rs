//! The ingest stream's processor: Kinesis batches (enhanced fan-out, batch 100, window 5 s,
//! `ReportBatchItemFailures`) → the registry's payload schemas and business rules → the latest
//! state per entity in DynamoDB; malformed events to an SNS topic, once; transient failures as
//! batch item failures. [`process`] has the algorithm and how a late or replayed event never
//! overwrites a newer state; every AWS call goes through [`table::StateTable`] and
//! [`malformed::MalformedSink`], each with an SDK and an in-memory adapter.

pub mod malformed;
pub mod metrics;
pub mod process;
pub mod table;
pub mod validate;

use aws_lambda_events::event::kinesis::KinesisEvent;

pub use malformed::{MalformedReport, MemoryTopic, Severity, SnsTopic};
pub use process::{BatchReport, DEFAULT_RETRY, InputRecord, Processor, Stats};
pub use table::{DynamoTable, MemoryTable, StateItem, WriteScript};
pub use validate::Topics;

/// Time kept back from the invocation deadline to answer with the batch item failures.
pub const ANSWER_MARGIN: std::time::Duration = std::time::Duration::from_millis(1000);

/// The records of a Kinesis event, for [`Processor::process`].
pub fn input_records(event: &KinesisEvent) -> Vec<InputRecord<'_>> {
    event
        .records
        .iter()
        .map(|r| InputRecord {
            sequence_number: &r.kinesis.sequence_number,
            data: &r.kinesis.data,
        })
        .collect()
}

/// The function's settings, from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TABLE_NAME`: the state table.
    pub table: String,
    /// `MALFORMED_TOPIC_ARN`: where malformed events are reported.
    pub malformed_topic_arn: String,
    /// `METRICS_NAMESPACE` (default `eventfabric`).
    pub metrics_namespace: String,
}

impl Settings {
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let required = |name: &str, what: &str| {
            env(name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{name} is not set: {what}"))
        };
        Ok(Self {
            table: required("TABLE_NAME", "the state table's name")?,
            malformed_topic_arn: required(
                "MALFORMED_TOPIC_ARN",
                "the malformed-events topic's ARN",
            )?,
            metrics_namespace: env("METRICS_NAMESPACE").unwrap_or_else(|| "eventfabric".into()),
        })
    }
}
